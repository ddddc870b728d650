//! Admission: what a request may hold of the server's memory, decided before
//! its body is buffered.
//!
//! Every `Submit` body announces its length in the gRPC frame prefix (five
//! bytes: a flag and a 32-bit length, gRPC over HTTP/2, "Length-Prefixed-
//! Message"). [`AdmissionLayer`] wraps each request's body, reads that prefix
//! from the first bytes, and reserves the memory the submission will need
//! from one global [`Budget`] (`--max-inflight-mib`) *before* the rest of the
//! body is read. A request that does not fit is refused at once with
//! RESOURCE_EXHAUSTED, a message saying it is retryable and a
//! `grpc-retry-pushback-ms` hint (gRFC A6); the bytes it already sent are
//! dropped. The reservation travels with the submission through the store
//! and the match workers and is released only once its results are
//! recorded, so the budget bounds everything a flood can make the server
//! hold, not just the bodies being read.
//!
//! **Fair share.** One source (a client address, an IPv6 /64, or with
//! mutual TLS the client certificate) may hold at most
//! `budget / max(2, sources holding a reservation)`: alone it gets half, so
//! the other half is always there for the next client, and with more clients
//! each gets an equal part. A source is always allowed one maximal request.
//!
//! **Deadlines.** A request body must be complete within the body timeout
//! (slow-POST); calls other than `Submit` may send at most
//! [`CHEAP_BODY_LIMIT`] bytes, whatever the services' own limits say.
//! Neither is under the budget: their own capacity.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tonic::Status;
use tonic::transport::server::TcpConnectInfo;

use crate::metrics::Metrics;

/// The path of the one call whose body is under the budget.
pub(crate) const SUBMIT_PATH: &str = "/blindmatch.v1.VoucherService/Submit";
/// The paths of gRPC reflection (v1 and v1alpha).
const REFLECTION_PREFIX: &str = "/grpc.reflection.";
/// Most bytes the body of any other call may have (they are all a few
/// bytes: a manifest request, a table id and an offset, a health check).
pub(crate) const CHEAP_BODY_LIMIT: usize = 64 << 10;
/// What a submission holds in memory for each byte of its message, from
/// receipt until it is recorded: the received bytes (prost's copy, then the
/// store's), and the decoded vouchers (about the same size: the payload is
/// kept as is, Q once as bytes and once as a point). Measured under the
/// flood benchmark (papers/BENCHMARKS.md): this is what keeps the resident
/// memory within the budget.
const MEMORY_PER_BYTE: usize = 2;
/// Fixed cost of one submission beyond its bytes (the request, its task,
/// its vouchers' vectors).
const MEMORY_PER_REQUEST: usize = 16 << 10;
/// The gRPC frame prefix: compressed flag (1) and length (4).
const PREFIX_LEN: usize = 5;
/// The retry hint sent with a refusal.
const PUSHBACK_MS: u64 = 200;

/// Who a request comes from, for the fair share (and the connection caps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    /// A client address; IPv6 addresses by their /64, since one host holds a
    /// whole /64 as easily as one address.
    Address(IpAddr),
    /// The SHA-256 of a client certificate (mutual TLS).
    Certificate([u8; 32]),
}

impl Source {
    /// The source of a connection from `ip`.
    pub(crate) fn address(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Source::Address(ip),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source::Address(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    Source::Address(IpAddr::V6(std::net::Ipv6Addr::new(
                        s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                    )))
                }
            },
        }
    }

    /// The source of a request, from its extensions: its client
    /// certificate, else its address.
    fn of(ext: &http::Extensions) -> Option<Self> {
        use sha2::Digest;
        use tonic::transport::server::TlsConnectInfo;
        if let Some(tls) = ext.get::<TlsConnectInfo<TcpConnectInfo>>() {
            if let Some(leaf) = tls.peer_certs().as_deref().and_then(|c| c.first()) {
                return Some(Source::Certificate(sha2::Sha256::digest(leaf).into()));
            }
            return tls.get_ref().remote_addr().map(|a| Source::address(a.ip()));
        }
        ext.get::<TcpConnectInfo>()
            .and_then(TcpConnectInfo::remote_addr)
            .map(|a| Source::address(a.ip()))
    }
}

/// The global budget of memory held by submissions in flight.
pub(crate) struct Budget {
    total: usize,
    /// A source may always hold one maximal request.
    min_share: usize,
    held: Mutex<Held>,
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct Held {
    total: usize,
    /// Only sources holding something: its length is the number of active
    /// sources.
    by_source: HashMap<Option<Source>, usize>,
}

/// Why a reservation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// The whole budget is held.
    #[error(
        "the server is at its memory budget for submissions in flight ({held_mib} of {total_mib} MiB): retryable, retry shortly with the same submission id"
    )]
    Budget { held_mib: usize, total_mib: usize },
    /// This source holds its fair share.
    #[error(
        "this client holds its fair share of the server's submission capacity ({held_mib} of {share_mib} MiB): retryable, retry once earlier submissions are acknowledged"
    )]
    Share { held_mib: usize, share_mib: usize },
}

impl Refusal {
    fn kind(&self) -> &'static str {
        match self {
            Refusal::Budget { .. } => "over_budget",
            Refusal::Share { .. } => "over_fair_share",
        }
    }
}

fn mib(bytes: usize) -> usize {
    bytes.div_ceil(1 << 20)
}

impl Budget {
    /// A budget of `total` bytes, in which a source may always hold
    /// `min_share` (one maximal request).
    pub(crate) fn new(total: usize, min_share: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Budget {
            total,
            min_share,
            held: Mutex::new(Held::default()),
            metrics,
        })
    }

    /// The memory a submission of `message_len` bytes is charged.
    pub(crate) fn charge(message_len: usize) -> usize {
        message_len
            .saturating_mul(MEMORY_PER_BYTE)
            .saturating_add(MEMORY_PER_REQUEST)
    }

    /// Reserves `bytes` for `source`, or says why not. Never waits.
    pub(crate) fn try_reserve(
        self: &Arc<Self>,
        source: Option<Source>,
        bytes: usize,
    ) -> Result<Reservation, Refusal> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let mine = held.by_source.get(&source).copied().unwrap_or(0);
        let active = held.by_source.len() + usize::from(mine == 0);
        let share = (self.total / active.max(2)).max(self.min_share);
        let refusal = if mine.saturating_add(bytes) > share {
            Some(Refusal::Share {
                held_mib: mib(mine),
                share_mib: mib(share),
            })
        } else if held.total.saturating_add(bytes) > self.total {
            Some(Refusal::Budget {
                held_mib: mib(held.total),
                total_mib: mib(self.total),
            })
        } else {
            None
        };
        if let Some(r) = refusal {
            drop(held);
            self.metrics.error(r.kind());
            return Err(r);
        }
        held.total += bytes;
        *held.by_source.entry(source).or_default() += bytes;
        self.metrics
            .inflight_bytes
            .set(i64::try_from(held.total).unwrap_or(i64::MAX));
        Ok(Reservation {
            budget: Arc::clone(self),
            source,
            bytes,
        })
    }

    fn release(&self, source: Option<Source>, bytes: usize) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.total = held.total.saturating_sub(bytes);
        if let Some(b) = held.by_source.get_mut(&source) {
            *b = b.saturating_sub(bytes);
            if *b == 0 {
                held.by_source.remove(&source);
            }
        }
        self.metrics
            .inflight_bytes
            .set(i64::try_from(held.total).unwrap_or(i64::MAX));
    }

    /// Bytes held now.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.held.lock().map_or(0, |h| h.total)
    }
}

/// Memory reserved for one submission; released when dropped.
pub(crate) struct Reservation {
    budget: Arc<Budget>,
    source: Option<Source>,
    bytes: usize,
}

impl Reservation {
    /// Who holds it.
    pub(crate) fn source(&self) -> Option<Source> {
        self.source
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.release(self.source, self.bytes);
    }
}

/// Where a `Submit` body leaves its reservation, for the handler to take
/// (request extensions carry it from the layer to the handler).
#[derive(Clone, Default)]
pub(crate) struct ReservationSlot(Arc<Mutex<Option<Reservation>>>);

impl ReservationSlot {
    /// Takes the reservation, if the body made one.
    pub(crate) fn take(&self) -> Option<Reservation> {
        self.0.lock().ok().and_then(|mut r| r.take())
    }

    fn put(&self, r: Reservation) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(r);
        }
    }
}

/// Admission settings.
#[derive(Clone)]
pub(crate) struct Admission {
    pub(crate) budget: Arc<Budget>,
    pub(crate) body_timeout: Duration,
    pub(crate) metrics: Arc<Metrics>,
}

/// The tower layer in front of every gRPC service.
#[derive(Clone)]
pub(crate) struct AdmissionLayer(pub(crate) Admission);

impl<S> tower_layer::Layer<S> for AdmissionLayer {
    type Service = AdmissionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AdmissionService {
            inner,
            admission: self.0.clone(),
        }
    }
}

/// The layer's service.
#[derive(Clone)]
pub(crate) struct AdmissionService<S> {
    inner: S,
    admission: Admission,
}

impl<S, R> tower_service::Service<http::Request<tonic::body::Body>> for AdmissionService<S>
where
    S: tower_service::Service<http::Request<tonic::body::Body>, Response = http::Response<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let a = &self.admission;
        let path = request.uri().path();
        // Reflection is the one call whose request is a stream a tool may
        // keep open (an interactive session): no body deadline for it.
        let deadline = (!path.starts_with(REFLECTION_PREFIX)).then_some(a.body_timeout);
        let (mut parts, body) = request.into_parts();
        let mode = if parts.uri.path() == SUBMIT_PATH {
            let slot = ReservationSlot::default();
            parts.extensions.insert(slot.clone());
            Mode::Submit {
                budget: Arc::clone(&a.budget),
                source: Source::of(&parts.extensions),
                slot,
                prefix: Vec::with_capacity(PREFIX_LEN),
            }
        } else {
            Mode::Cheap { read: 0 }
        };
        let body = AdmittedBody::new(body, mode, deadline, &a.metrics);
        self.inner.call(http::Request::from_parts(
            parts,
            tonic::body::Body::new(body),
        ))
    }
}

enum Mode {
    /// Under the budget: reserve once the prefix is read.
    Submit {
        budget: Arc<Budget>,
        source: Option<Source>,
        slot: ReservationSlot,
        /// The prefix bytes seen so far; emptied (and no longer collected)
        /// once the reservation is made.
        prefix: Vec<u8>,
    },
    /// Not under the budget, but small.
    Cheap { read: usize },
    /// Reserved, or refused: nothing more to check.
    Done,
}

/// A request body with admission applied.
struct AdmittedBody {
    inner: tonic::body::Body,
    mode: Mode,
    /// When the body must be complete, and the timeout it came from.
    deadline: Option<(Pin<Box<tokio::time::Sleep>>, Duration)>,
    metrics: Arc<Metrics>,
    failed: bool,
}

impl AdmittedBody {
    fn new(
        inner: tonic::body::Body,
        mode: Mode,
        timeout: Option<Duration>,
        metrics: &Arc<Metrics>,
    ) -> Self {
        AdmittedBody {
            inner,
            mode,
            deadline: timeout.map(|t| (Box::pin(tokio::time::sleep(t)), t)),
            metrics: Arc::clone(metrics),
            failed: false,
        }
    }

    /// Checks a data frame against the mode; `Err` refuses the request.
    fn admit(&mut self, data: &Bytes) -> Result<(), Status> {
        match &mut self.mode {
            Mode::Done => Ok(()),
            Mode::Cheap { read } => {
                *read += data.len();
                if *read > CHEAP_BODY_LIMIT {
                    self.metrics.error("body_too_large");
                    return Err(Status::resource_exhausted(format!(
                        "request body over {CHEAP_BODY_LIMIT} bytes: this call's requests are small"
                    )));
                }
                Ok(())
            }
            Mode::Submit {
                budget,
                source,
                slot,
                prefix,
            } => {
                let need = PREFIX_LEN - prefix.len();
                prefix.extend_from_slice(&data[..need.min(data.len())]);
                if prefix.len() < PREFIX_LEN {
                    return Ok(());
                }
                let len = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]);
                // A length over the service's limit is refused by tonic's
                // decoder as soon as it reads this prefix, before buffering.
                let bytes = Budget::charge(usize::try_from(len).unwrap_or(usize::MAX));
                let r = budget.try_reserve(*source, bytes);
                match r {
                    Ok(r) => {
                        slot.put(r);
                        self.mode = Mode::Done;
                        Ok(())
                    }
                    Err(refusal) => {
                        self.mode = Mode::Done;
                        let mut status = Status::resource_exhausted(refusal.to_string());
                        if let Ok(v) = PUSHBACK_MS.to_string().parse() {
                            status.metadata_mut().insert("grpc-retry-pushback-ms", v);
                        }
                        Err(status)
                    }
                }
            }
        }
    }
}

impl Body for AdmittedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {
                let Some((deadline, timeout)) = &mut this.deadline else {
                    return Poll::Pending;
                };
                ready!(deadline.as_mut().poll(cx));
                this.failed = true;
                this.metrics.error("slow_body");
                Poll::Ready(Some(Err(Status::deadline_exceeded(format!(
                    "request body not received within {}",
                    humantime::format_duration(*timeout)
                )))))
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref()
                    && let Err(status) = this.admit(data)
                {
                    this.failed = true;
                    return Poll::Ready(Some(Err(status)));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(total: usize, min: usize) -> Arc<Budget> {
        Budget::new(total, min, Arc::new(Metrics::new()))
    }

    fn ip(s: &str) -> Option<Source> {
        Some(Source::address(s.parse().unwrap()))
    }

    #[test]
    fn a_lone_source_gets_half_and_leaves_the_rest_to_others() {
        let b = budget(100, 10);
        let a: Vec<_> = (0..5)
            .map(|_| b.try_reserve(ip("10.0.0.1"), 10).unwrap())
            .collect();
        assert!(matches!(
            b.try_reserve(ip("10.0.0.1"), 10),
            Err(Refusal::Share { .. })
        ));
        // Another source gets in, up to its half.
        let c: Vec<_> = (0..5)
            .map(|_| b.try_reserve(ip("10.0.0.2"), 10).unwrap())
            .collect();
        assert_eq!(b.held(), 100);
        assert!(matches!(
            b.try_reserve(ip("10.0.0.3"), 10),
            Err(Refusal::Budget { .. })
        ));
        drop(a);
        drop(c);
        assert_eq!(b.held(), 0, "everything is released");
    }

    #[test]
    fn the_share_shrinks_with_more_sources() {
        let b = budget(90, 1);
        let _one = b.try_reserve(ip("10.0.0.1"), 30).unwrap();
        let _two = b.try_reserve(ip("10.0.0.2"), 30).unwrap();
        // Two sources active: 45 each.
        let more = b.try_reserve(ip("10.0.0.1"), 10).unwrap();
        drop(more);
        let _three = b.try_reserve(ip("10.0.0.3"), 30).unwrap();
        // Three: 30 each; the first may not take more.
        assert!(matches!(
            b.try_reserve(ip("10.0.0.1"), 1),
            Err(Refusal::Share { .. })
        ));
    }

    #[test]
    fn a_source_may_always_hold_one_maximal_request() {
        let b = budget(100, 80);
        let r = b.try_reserve(ip("10.0.0.1"), 80).unwrap();
        assert!(b.try_reserve(ip("10.0.0.1"), 1).is_err());
        drop(r);
    }

    #[test]
    fn ipv6_sources_are_their_64_prefix_and_mapped_v4_is_v4() {
        assert_eq!(ip("2001:db8:1:2:3:4:5:6"), ip("2001:db8:1:2::9"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("::ffff:10.0.0.1"), ip("10.0.0.1"));
    }
}
