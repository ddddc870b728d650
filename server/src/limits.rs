//! The per-client rate limit on submissions, as a tonic interceptor (a tower
//! layer in front of `VoucherService`), keyed by the peer's IP address.
//!
//! `governor` keeps one generic cell rate algorithm state per address; a
//! background task forgets addresses idle for longer than a refill, so the
//! map does not grow with every address ever seen.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tonic::{Request, Status};

use crate::metrics::Metrics;

/// The interceptor: passes everything when no limit is set.
#[derive(Clone)]
pub(crate) struct RateLimit {
    limiter: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    per_second: u32,
    metrics: Arc<Metrics>,
}

impl RateLimit {
    /// A limit of `per_second` submissions a second per address, with a
    /// burst of as many (`None`: no limit). Must be called inside a Tokio
    /// runtime when a limit is set (it starts the forgetting task).
    pub(crate) fn new(per_second: Option<NonZeroU32>, metrics: Arc<Metrics>) -> Self {
        let limiter = per_second.map(|n| Arc::new(RateLimiter::keyed(Quota::per_second(n))));
        if let Some(l) = &limiter {
            let weak = Arc::downgrade(l);
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(60));
                loop {
                    every.tick().await;
                    let Some(l) = weak.upgrade() else { return };
                    l.retain_recent();
                    l.shrink_to_fit();
                }
            });
        }
        RateLimit {
            limiter,
            per_second: per_second.map_or(0, NonZeroU32::get),
            metrics,
        }
    }
}

impl tonic::service::Interceptor for RateLimit {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let (Some(limiter), Some(peer)) = (&self.limiter, request.remote_addr()) else {
            return Ok(request);
        };
        if limiter.check_key(&peer.ip()).is_err() {
            self.metrics.error("rate_limited");
            return Err(Status::resource_exhausted(format!(
                "rate limit: at most {} submissions a second from one address; retry later",
                self.per_second
            )));
        }
        Ok(request)
    }
}
