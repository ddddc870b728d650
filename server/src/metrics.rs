//! Prometheus metrics and the admin listener (`/metrics`, `/live`, `/ready`).
//!
//! Counters never carry an item, a point, a key or associated data: only
//! counts, kinds of error, latencies, the table's public id and size. They
//! are served on a separate listener for the operator, never to clients.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A label naming one kind of thing.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    /// The kind.
    pub kind: &'static str,
}

/// The table served.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabel {
    /// Its id, hex.
    pub table_id: String,
}

/// Everything the server counts.
pub struct Metrics {
    registry: Registry,
    /// Submissions by outcome: `stored`, `duplicate` (a retry), `refused`.
    pub submissions: Family<Kind, Counter>,
    /// Vouchers acknowledged.
    pub vouchers: Counter,
    /// Match records written.
    pub matches: Counter,
    /// Vouchers that opened but were malformed or forged.
    pub rejected_vouchers: Counter,
    /// Threshold mode: candidates stored (real and synthetic alike; a
    /// resubmitted voucher counts again here, once in the store).
    pub candidates: Counter,
    /// Threshold mode: account examinations, by outcome (below,
    /// inconsistent, revealed). Never an account id.
    pub examinations: Family<Kind, Counter>,
    /// Refused requests by kind of error.
    pub errors: Family<Kind, Counter>,
    /// Time from receiving a submission to acknowledging it.
    pub submit_seconds: Histogram,
    /// Submissions this replica holds, stored and not yet recorded.
    pub pending: Gauge,
    /// Submissions pending in the whole store, every replica's.
    pub store_pending: Gauge,
    /// Submit calls being handled right now.
    pub in_flight: Gauge,
    /// Bytes of the in-flight budget held by submissions (`--max-inflight-mib`).
    pub inflight_bytes: Gauge,
    /// Open client connections.
    pub connections: Gauge,
    /// Table versions held, by id: 1 served, 2 accepted during a grace period.
    pub table: Family<TableLabel, Gauge>,
    /// Slots in the table served.
    pub table_slots: Gauge,
    /// Version number of the table served.
    pub table_version: Gauge,
    /// Per replaced version still accepted: when its grace period ends, in
    /// seconds since the Unix epoch (an alert's clock: the wall clock of
    /// the moment it was set plus the grace left then).
    pub table_grace_ends: Family<TableLabel, Gauge>,
    /// 1 while the match store answers, 0 from an operation that found it
    /// unreachable until one succeeds (the heartbeat asks it four times per
    /// lease, so this follows the store with or without traffic).
    pub store_up: Gauge,
    /// Webhook: match records the receiver answered 2xx to.
    pub webhook_delivered: Counter,
    /// Webhook: failed attempts, by kind (`status`: an answer but not 2xx;
    /// `unreachable`; `timeout`).
    pub webhook_failures: Family<Kind, Counter>,
    /// Webhook: match records not yet delivered (as of the last look).
    pub webhook_backlog: Gauge,
    /// Webhook: how long ago the record being delivered was recorded, in
    /// seconds (updated at each attempt; 0 when nothing waits).
    pub webhook_oldest_seconds: Gauge,
    /// Webhook: Unix time of the last delivery answered 2xx.
    pub webhook_last_delivered: Gauge,
    /// Webhook: 1 on the replica that delivers, 0 on the others.
    pub webhook_deliverer: Gauge,
    /// Whether the server is ready: table loaded, not shutting down.
    ready: AtomicBool,
    /// The same as a metric: what `/ready` answers, for Prometheus.
    ready_gauge: Gauge,
}

impl Metrics {
    /// Registers every metric under the `blindmatch_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("blindmatch");
        let m = Metrics {
            submissions: Family::default(),
            vouchers: Counter::default(),
            matches: Counter::default(),
            rejected_vouchers: Counter::default(),
            candidates: Counter::default(),
            examinations: Family::default(),
            errors: Family::default(),
            // 100 µs to ~3 s.
            submit_seconds: Histogram::new(exponential_buckets(1e-4, 2.0, 15)),
            pending: Gauge::default(),
            store_pending: Gauge::default(),
            in_flight: Gauge::default(),
            inflight_bytes: Gauge::default(),
            connections: Gauge::default(),
            table: Family::default(),
            table_slots: Gauge::default(),
            table_version: Gauge::default(),
            table_grace_ends: Family::default(),
            store_up: Gauge::default(),
            webhook_delivered: Counter::default(),
            webhook_failures: Family::default(),
            webhook_backlog: Gauge::default(),
            webhook_oldest_seconds: Gauge::default(),
            webhook_last_delivered: Gauge::default(),
            webhook_deliverer: Gauge::default(),
            ready: AtomicBool::new(false),
            ready_gauge: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "submissions",
            "Submit calls by outcome (stored, duplicate, refused)",
            m.submissions.clone(),
        );
        registry.register("vouchers", "Vouchers acknowledged", m.vouchers.clone());
        registry.register("matches", "Match records written", m.matches.clone());
        registry.register(
            "rejected_vouchers",
            "Vouchers that opened but were malformed or forged",
            m.rejected_vouchers.clone(),
        );
        registry.register(
            "candidates",
            "Threshold mode: vouchers that opened and were stored as candidates",
            m.candidates.clone(),
        );
        registry.register(
            "examinations",
            "Threshold mode: account examinations by outcome",
            m.examinations.clone(),
        );
        registry.register("errors", "Refused requests by kind", m.errors.clone());
        registry.register(
            "submit_duration_seconds",
            "Time from receiving a submission to acknowledging it",
            m.submit_seconds.clone(),
        );
        registry.register(
            "pending_submissions",
            "Submissions this replica holds, stored and not yet evaluated and recorded",
            m.pending.clone(),
        );
        registry.register(
            "store_pending_submissions",
            "Submissions pending in the whole store (every replica's), read at each heartbeat",
            m.store_pending.clone(),
        );
        registry.register(
            "submissions_in_flight",
            "Submit calls being handled",
            m.in_flight.clone(),
        );
        registry.register(
            "inflight_budget_bytes",
            "Bytes of the in-flight memory budget held by submissions, from receipt until recorded",
            m.inflight_bytes.clone(),
        );
        registry.register(
            "connections",
            "Open client connections",
            m.connections.clone(),
        );
        registry.register(
            "table",
            "Table versions held, by id: 1 served, 2 still accepted (grace period)",
            m.table.clone(),
        );
        registry.register(
            "table_version",
            "Version number of the table served",
            m.table_version.clone(),
        );
        registry.register(
            "table_slots",
            "Slots in the table served",
            m.table_slots.clone(),
        );
        registry.register(
            "table_grace_ends_timestamp_seconds",
            "Per replaced table version still accepted: when its grace period ends (Unix time)",
            m.table_grace_ends.clone(),
        );
        registry.register(
            "store_up",
            "1 while the match store answers, 0 while it is unreachable",
            m.store_up.clone(),
        );
        registry.register(
            "ready",
            "1 while the server is ready (what /ready answers 200 for), else 0",
            m.ready_gauge.clone(),
        );
        registry.register(
            "webhook_delivered",
            "Webhook: match records the receiver answered 2xx to",
            m.webhook_delivered.clone(),
        );
        registry.register(
            "webhook_failed_attempts",
            "Webhook: failed attempts by kind (status, unreachable, timeout); each is retried",
            m.webhook_failures.clone(),
        );
        registry.register(
            "webhook_backlog",
            "Webhook: match records not yet delivered",
            m.webhook_backlog.clone(),
        );
        registry.register(
            "webhook_oldest_undelivered_seconds",
            "Webhook: age of the record being delivered, updated at each attempt (0: none waits)",
            m.webhook_oldest_seconds.clone(),
        );
        registry.register(
            "webhook_last_delivered_timestamp_seconds",
            "Webhook: Unix time of the last delivery answered 2xx",
            m.webhook_last_delivered.clone(),
        );
        registry.register(
            "webhook_deliverer",
            "Webhook: 1 on the replica that delivers, 0 on the others",
            m.webhook_deliverer.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts a refused request.
    pub fn error(&self, kind: &'static str) {
        self.errors.get_or_create(&Kind { kind }).inc();
    }

    /// Marks the server ready or not.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
        self.ready_gauge.set(i64::from(ready));
    }

    /// Whether the server is ready.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// What `POST /reload` calls: reloads the table and says what happened.
pub type ReloadFn = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = anyhow::Result<String>> + Send>>
        + Send
        + Sync,
>;

/// Serves `/metrics`, `/live` and `/ready` on `addr` until `shutdown`
/// resolves, `POST /reload` if `reload` is given, and the transparency
/// log's files under `/log/` (read-only) if `log_dir` is; returns the
/// address bound.
///
/// # Errors
/// If the address cannot be bound.
pub async fn serve_admin(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    reload: Option<ReloadFn>,
    log_dir: Option<std::path::PathBuf>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    use axum::http::{StatusCode, header};
    use axum::routing::{get, post};
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("--admin-listen {addr}"))?;
    let bound = listener.local_addr()?;
    let (m1, m2) = (Arc::clone(&metrics), metrics);
    let app = axum::Router::new()
        .route(
            "/metrics",
            get(move || async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    m1.render(),
                )
            }),
        )
        .route("/live", get(|| async { "live\n" }))
        .route(
            "/ready",
            get(move || async move {
                if m2.is_ready() {
                    (StatusCode::OK, "ready\n")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
                }
            }),
        );
    let app = match reload {
        Some(reload) => app.route(
            "/reload",
            post(move || async move {
                match reload().await {
                    Ok(what) => (StatusCode::OK, format!("{what}\n")),
                    Err(e) => {
                        tracing::error!(
                            error = format!("{e:#}"),
                            "reload failed; the current version stays"
                        );
                        (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            format!("reload failed: {e:#}\n"),
                        )
                    }
                }
            }),
        ),
        None => app,
    };
    let app = match log_dir {
        Some(dir) => app.route(
            "/log/{*path}",
            get(
                move |axum::extract::Path(path): axum::extract::Path<String>| {
                    let dir = dir.clone();
                    async move { log_file(&dir, &path).await }
                },
            ),
        ),
        None => app,
    };
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "admin listener failed");
        }
    });
    Ok((bound, task))
}

/// One file of the log directory (c2sp.org/tlog-tiles): `checkpoint`, or a
/// tile or entry bundle. Any other path is refused before the file system
/// is touched, so nothing outside the log's files can be read.
async fn log_file(dir: &std::path::Path, path: &str) -> axum::response::Response {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let (content_type, cache) = if path == "checkpoint" {
        ("text/plain; charset=utf-8", "no-cache")
    } else if is_tile_path(path) {
        (
            "application/octet-stream",
            "public, max-age=31536000, immutable",
        )
    } else {
        return (StatusCode::NOT_FOUND, "not a log file\n").into_response();
    };
    match tokio::fs::read(dir.join(path)).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, cache),
            ],
            bytes,
        )
            .into_response(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            (StatusCode::NOT_FOUND, "no such log file\n").into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, path, "reading a log file");
            (StatusCode::INTERNAL_SERVER_ERROR, "log file unreadable\n").into_response()
        }
    }
}

/// `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`, with `N` in
/// 3-digit groups of which all but the last start with `x`.
fn is_tile_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("tile/") else {
        return false;
    };
    let (rest, width) = match rest.split_once(".p/") {
        Some((r, w)) => (r, Some(w)),
        None => (rest, None),
    };
    if width.is_some_and(|w| {
        w.parse::<u16>().map_or(true, |n| !(1..=255).contains(&n)) || w.starts_with('0')
    }) {
        return false;
    }
    let mut parts = rest.split('/');
    let level_ok = parts.next().is_some_and(|l| {
        l == "entries"
            || (l.parse::<u8>().is_ok_and(|n| n < 64) && (l == "0" || !l.starts_with('0')))
    });
    let groups: Vec<&str> = parts.collect();
    let digits = |g: &str| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit());
    level_ok
        && !groups.is_empty()
        && groups.iter().enumerate().all(|(i, g)| {
            if i + 1 == groups.len() {
                digits(g)
            } else {
                g.strip_prefix('x').is_some_and(digits)
            }
        })
}

/// Asks the admin listener at `addr` for `endpoint` (`ready` or `live`)
/// over plain HTTP, as `blindmatch-server health` does for a container's
/// health check (the image has no shell or curl): `Ok` with the answer for
/// a 200, `Err` naming the status or the failure otherwise. An unspecified
/// address (the listener bound to every interface) is asked on loopback.
pub async fn probe(
    mut addr: SocketAddr,
    endpoint: &str,
    timeout: std::time::Duration,
) -> Result<String, String> {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let url = format!("http://{addr}/{endpoint}");
    let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let answer = tokio::time::timeout(timeout, async {
        let response = client.get(uri).await.map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        // "ready\n", "not ready\n": a few bytes.
        let body = http_body_util::BodyExt::collect(http_body_util::Limited::new(
            response.into_body(),
            4 << 10,
        ))
        .await
        .map_err(|e| format!("{url}: reading the answer: {e}"))?
        .to_bytes();
        Ok::<_, String>((status, String::from_utf8_lossy(&body).trim().to_owned()))
    })
    .await
    .map_err(|_| format!("{url}: no answer within {timeout:?}"))??;
    match answer {
        (status, body) if status == http::StatusCode::OK => Ok(body),
        (status, body) => Err(format!("{url}: {status} {body}")),
    }
}

#[cfg(test)]
mod log_path_tests {
    use super::is_tile_path;

    #[test]
    fn only_tile_paths_are_served() {
        for ok in [
            "tile/0/000",
            "tile/0/x001/x234/067",
            "tile/entries/000.p/3",
            "tile/1/000.p/255",
        ] {
            assert!(is_tile_path(ok), "{ok}");
        }
        for bad in [
            "tile/0/../checkpoint",
            "tile/0/00",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/64/000",
            "tile/00/000",
            "tile/entries/x000",
            "tile/0/000/",
            "../etc/passwd",
            "tile/0/000.p/01",
        ] {
            assert!(!is_tile_path(bad), "{bad}");
        }
    }
}
