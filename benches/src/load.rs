//! One load window against the real server: C concurrent submission
//! streams for D seconds, then until the server is idle.
//!
//! `blindmatch-bench` and `blindmatch-threshold-bench` measure the same
//! thing this way and differ only in what a submission holds (a rotating
//! slice of a pool of vouchers, or one account's whole batch and its
//! account id): that is what each passes in, as a [`Payload`] maker per
//! stream.
//!
//! The streams are spread over S loopback source addresses (127.0.0.1,
//! 127.0.0.2, ...: on Linux all of 127/8 is loopback), each stream's
//! socket bound to its source before it connects ([`connect`]). The
//! server's admission holds one source to half its budget (its fair share,
//! `server/src/admission.rs`), so a window from one source measures that
//! cap; from several, the server.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use blindmatch_client::SubmissionId;
use blindmatch_proto::v1::SubmitRequest;
use blindmatch_proto::v1::voucher_service_client::VoucherServiceClient;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::machine;
use crate::service::ServerProcess;
use crate::stats::percentile;
use crate::submit::submit_admitted;

/// What one submission of a stream holds.
pub struct Payload {
    /// The vouchers.
    pub vouchers: Vec<Vec<u8>>,
    /// The account they are bound to (threshold mode), or empty.
    pub account_id: Vec<u8>,
}

/// What one load window came to.
#[derive(Debug, Clone)]
pub struct Window {
    /// Concurrent submission streams.
    pub concurrency: usize,
    /// Source addresses they were spread over (at most one per stream).
    pub sources: usize,
    /// Tries refused for memory (and sent again after the server's hint).
    pub refused: u64,
    /// Vouchers acknowledged, per second until the server was idle again.
    pub vouchers_per_s: f64,
    /// Submissions acknowledged, per second until the server was idle again.
    pub submissions_per_s: f64,
    /// Median time of a submission as the client waits for it (refused
    /// tries included), µs.
    pub p50_us: f64,
    /// Its 99th percentile, µs.
    pub p99_us: f64,
    /// Its 99.9th percentile, µs.
    pub p999_us: f64,
    /// The server's CPU time (user and system) per voucher, µs.
    pub server_cpu_us_per_voucher: f64,
}

/// Drives `server` with `concurrency` streams for `seconds`, stream `c`
/// from [`source`]`(c % sources)`: stream `c` sends what `stream(c)` makes, one submission after the other, each under
/// a fresh submission id (as a real client does: the server remembers it),
/// to the table `table_id`. A submission refused for memory is sent again
/// after the server's hint ([`submit_admitted`]).
///
/// The payload is made (its vouchers copied from a pool made in advance)
/// before a submission's clock starts; the request around it (the table id
/// and the submission id) after, as a client's own work.
///
/// # Errors
/// If a stream cannot connect, or a submission fails otherwise.
pub async fn drive<S>(
    server: &ServerProcess,
    table_id: &[u8],
    concurrency: usize,
    sources: u8,
    seconds: f64,
    mut stream: impl FnMut(usize) -> S,
) -> anyhow::Result<Window>
where
    S: FnMut() -> Payload + Send + 'static,
{
    let pid = server.child.id();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let cpu0 = machine::cpu_seconds(pid).unwrap_or(0.0);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..concurrency {
        let mut client = connect(&server.url, source(c % usize::from(sources.max(1))))
            .await?
            .max_decoding_message_size(16 << 20);
        let (stop, sent, refused, table_id) = (
            stop.clone(),
            sent.clone(),
            refused.clone(),
            table_id.to_vec(),
        );
        let mut next = stream(c);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let Payload {
                    vouchers,
                    account_id,
                } = next();
                let t = Instant::now();
                let r = submit_admitted(
                    &mut client,
                    SubmitRequest {
                        table_id: table_id.clone(),
                        vouchers,
                        submission_id: { SubmissionId::random(&mut rand::rng()) }.0.to_vec(),
                        account_id,
                    },
                )
                .await?;
                // Refused tries included: what a client waits.
                latencies.push(t.elapsed().as_secs_f64() * 1e6);
                refused.fetch_add(u64::from(r.refused), Ordering::Relaxed);
                sent.fetch_add(u64::from(r.response.accepted), Ordering::Relaxed);
            }
            Ok::<_, tonic::Status>(latencies)
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let vouchers = sent.load(Ordering::Relaxed) as f64;
    // Let the server finish what it acknowledged (what it holds stored and
    // not yet evaluated is bounded by its in-flight budget), so that its CPU
    // time covers exactly these vouchers, and the rate counts evaluated
    // vouchers, not acknowledgements that ran ahead.
    let idle_since = machine::wait_idle(pid).await;
    let elapsed = idle_since.duration_since(t0).as_secs_f64();
    let cpu = machine::cpu_seconds(pid).unwrap_or(0.0) - cpu0;
    Ok(Window {
        concurrency,
        sources: concurrency.min(usize::from(sources.max(1))),
        refused: refused.load(Ordering::Relaxed),
        vouchers_per_s: vouchers / elapsed,
        submissions_per_s: latencies.len() as f64 / elapsed,
        p50_us: percentile(&latencies, 50.0),
        p99_us: percentile(&latencies, 99.0),
        p999_us: percentile(&latencies, 99.9),
        server_cpu_us_per_voucher: cpu * 1e6 / vouchers.max(1.0),
    })
}

/// The `i`th loopback source address: 127.0.0.1, 127.0.0.2, ... (`i`
/// below 254, as `--sources` allows).
pub fn source(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, u8::try_from(i % 254 + 1).unwrap_or(1))
}

/// A submission client of the server at `url` (`http://IP:PORT`) on a
/// connection from `from` ([`channel`]).
///
/// # Errors
/// As [`channel`].
pub async fn connect(url: &str, from: Ipv4Addr) -> anyhow::Result<VoucherServiceClient<Channel>> {
    Ok(VoucherServiceClient::new(channel(url, from).await?))
}

/// A connection to the server at `url` (`http://IP:PORT`) from `from` (port
/// chosen by the kernel), so that the server sees `from` as the source, for
/// its admission and its connection caps.
///
/// # Errors
/// If `url` is not `http://IP:PORT`, or the socket cannot be bound or
/// connected.
pub async fn channel(url: &str, from: Ipv4Addr) -> anyhow::Result<Channel> {
    let endpoint = Endpoint::from_shared(url.to_string())?;
    let to: SocketAddrV4 = endpoint
        .uri()
        .authority()
        .and_then(|a| a.as_str().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("{url}: not http://IPV4:PORT"))?;
    let channel = endpoint
        .connect_with_connector(tower::service_fn(move |_: Uri| async move {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddrV4::new(from, 0).into())?;
            let stream = socket.connect(to.into()).await?;
            // What tonic's own connector sets (Endpoint::tcp_nodelay): a
            // small response is not held back waiting for more.
            stream.set_nodelay(true)?;
            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
        }))
        .await?;
    Ok(channel)
}

/// Stream `c`'s payloads for a version-1 load: each submission the next
/// `batch` vouchers of `pool`, from the stream's own place in it (so that
/// streams do not send the same vouchers at once).
pub fn from_pool(
    pool: &Arc<Vec<Vec<u8>>>,
    batch: usize,
    c: usize,
) -> impl FnMut() -> Payload + Send + 'static {
    let pool = Arc::clone(pool);
    let mut at = (c * 7919 * batch) % pool.len();
    move || {
        let vouchers = (0..batch)
            .map(|i| pool[(at + i) % pool.len()].clone())
            .collect();
        at = (at + batch) % pool.len();
        Payload {
            vouchers,
            account_id: Vec::new(),
        }
    }
}
