//! `blindmatch-flood`: does the server stay up, bounded and fair while one
//! source floods it?
//!
//! The real server runs as a child process (as in `blindmatch-bench`). One
//! *flooding source* (its own loopback address, 127.0.0.2 by default) opens N
//! HTTP/2 connections, each with M concurrent `Submit` calls of the largest
//! message the server accepts (its `--max-batch` vouchers), back to back,
//! with a fresh submission id each time. Beside it, optionally, the same
//! source holds *slow senders* (a `Submit` whose body trickles in at 64 bytes
//! every half second: slow-POST) and *idle connections* (TCP connections that
//! never speak). Meanwhile an *honest client* from another address
//! (127.0.0.1) calls `GetManifest` and submits a small batch in a loop, and
//! measures both.
//!
//! It reports the server's resident memory (at start, and the peak), the
//! honest client's latencies, every call by status, what happened to the
//! slow senders and idle connections, and whether the server was still
//! alive, as Markdown and JSON, with the targets beside each figure.
//! Targets are reported, never asserted: the host is shared.
//!
//! Build first: `cargo build --release -p blindmatch-server -p blindmatch-benches`,
//! then `target/release/blindmatch-flood`.

#![allow(
    clippy::cast_possible_truncation,
    reason = "benchmark arithmetic on counts and times"
)]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use blindmatch_benches::args::{Json, Load, Markdown, Served};
use blindmatch_benches::items::sha_items;
use blindmatch_benches::report::Printed;
use blindmatch_benches::stats::percentile;
use blindmatch_benches::{machine, service};
use blindmatch_client::SubmissionId;
use blindmatch_proto::v1::table_service_client::TableServiceClient;
use blindmatch_proto::v1::voucher_service_client::VoucherServiceClient;
use blindmatch_proto::v1::{GetManifestRequest, SubmitRequest};
use blindmatch_protocol::{ClientTable, TableBuilder};
use clap::Parser;
use serde_json::json;
use tonic::transport::Endpoint;

#[derive(Parser, Debug)]
#[command(
    name = "blindmatch-flood",
    about = "One source floods the server with maximal submissions; an honest client measures"
)]
#[command(mut_arg("batch", |a| a
    .help("Vouchers per flooding submission (the server's --max-batch, so the largest message it accepts)")
    .default_value("1024")))]
#[command(mut_arg("duration", |a| a.help("Seconds of flood")))]
struct Args {
    #[command(flatten)]
    served: Served,
    /// Flooding connections.
    #[arg(long, default_value_t = 60)]
    connections: usize,
    /// Concurrent `Submit` calls on each flooding connection.
    #[arg(long, default_value_t = 64)]
    streams: usize,
    #[command(flatten)]
    load: Load,
    /// Slow senders (slow-POST), held open by the flooding source.
    #[arg(long, default_value_t = 0)]
    slow: usize,
    /// Idle HTTP/2 connections (nothing after the handshake), held open from
    /// the slow senders' address.
    #[arg(long, default_value_t = 0)]
    idle: usize,
    /// Vouchers per honest submission.
    #[arg(long, default_value_t = 16)]
    honest_batch: usize,
    /// Pause between the honest client's rounds, milliseconds.
    #[arg(long, default_value_t = 20)]
    honest_pause_ms: u64,
    /// The flooding source's address (any loopback address works on Linux).
    #[arg(long, default_value = "127.0.0.2")]
    flood_addr: IpAddr,
    /// The address of the slow senders and idle connections (their own, so
    /// that the flood's connections do not keep them out, and the other way
    /// round).
    #[arg(long, default_value = "127.0.0.3")]
    slow_addr: IpAddr,
    /// The honest client's address.
    #[arg(long, default_value = "127.0.0.1")]
    honest_addr: IpAddr,
    /// More flags for `serve` (repeat; e.g. `--serve-arg=--max-inflight-mib=64`).
    #[arg(long, allow_hyphen_values = true)]
    serve_arg: Vec<String>,
    #[command(flatten)]
    json: Json,
    #[command(flatten)]
    markdown: Markdown,
}

/// Calls by outcome: "OK", or the gRPC code's name; and the first message
/// seen with each.
#[derive(Default)]
struct Outcomes(Mutex<(BTreeMap<String, u64>, BTreeMap<String, String>)>);

impl Outcomes {
    fn add(&self, outcome: String) {
        if let Ok(mut m) = self.0.lock() {
            *m.0.entry(outcome).or_default() += 1;
        }
    }

    fn add_with(&self, outcome: String, message: Option<String>) {
        if let (Some(msg), Ok(mut m)) = (message, self.0.lock()) {
            m.1.entry(outcome.clone())
                .or_insert_with(|| msg.chars().take(160).collect());
        }
        self.add(outcome);
    }

    fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().map(|m| m.0.clone()).unwrap_or_default()
    }

    fn examples(&self) -> BTreeMap<String, String> {
        self.0.lock().map(|m| m.1.clone()).unwrap_or_default()
    }
}

fn channel(url: &str, from: IpAddr) -> anyhow::Result<Endpoint> {
    Ok(Endpoint::from_shared(url.to_string())?
        .local_address(Some(from))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60)))
}

/// A flooding connection, over raw HTTP/2: `streams` `Submit` calls at a
/// time until `end`, each the same pre-encoded message (shared, not copied:
/// the flooder spends its CPU sending, not encoding). A refused or closed
/// connection is opened again, as an attacker would.
async fn flood_connection(
    server: SocketAddr,
    from: IpAddr,
    streams: usize,
    message: bytes::Bytes,
    end: Instant,
    outcomes: Arc<Outcomes>,
    refused_connects: Arc<AtomicU64>,
) {
    while Instant::now() < end {
        let handshake = match connect_from(from, server).await {
            Ok(tcp) => h2::client::handshake(tcp).await.ok(),
            Err(_) => None,
        };
        let Some((client, conn)) = handshake else {
            refused_connects.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        tokio::spawn(conn);
        let mut tasks = Vec::new();
        for _ in 0..streams {
            let (client, message, outcomes) =
                (client.clone(), message.clone(), Arc::clone(&outcomes));
            tasks.push(tokio::spawn(async move {
                while Instant::now() < end {
                    let outcome = submit_raw(client.clone(), server, message.clone()).await;
                    let closed = outcome.is_err();
                    let (code, message) = outcome.unwrap_or_else(|e| (e, None));
                    outcomes.add_with(code, message);
                    if closed {
                        // The connection is gone (refused at a cap, or cut).
                        return;
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        refused_connects.fetch_add(u64::from(Instant::now() < end), Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The headers of a `Submit` call.
fn submit_request(server: SocketAddr) -> http::Request<()> {
    http::Request::builder()
        .method("POST")
        .uri(format!(
            "http://{server}/blindmatch.v1.VoucherService/Submit"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap_or_default()
}

/// One `Submit` over raw HTTP/2: `Ok((status, message))` for an answered
/// call (the gRPC code's name, and its grpc-message), `Err` when the
/// connection failed.
async fn submit_raw(
    client: h2::client::SendRequest<bytes::Bytes>,
    server: SocketAddr,
    message: bytes::Bytes,
) -> Result<(String, Option<String>), String> {
    let mut client = client
        .ready()
        .await
        .map_err(|_| "connection closed".to_string())?;
    let (response, mut body) = client
        .send_request(submit_request(server), false)
        .map_err(|_| "connection closed".to_string())?;
    // Refused early, the stream is reset under us: that is an answer.
    let _ = body.send_data(message, true);
    let response = match response.await {
        Ok(r) => r,
        Err(e) if e.is_io() || e.is_go_away() => return Err("connection closed".into()),
        Err(e) => return Ok((format!("stream reset ({:?})", e.reason()), None)),
    };
    let status = |h: &http::HeaderMap| {
        h.get("grpc-status").map(|v| {
            let message = h
                .get("grpc-message")
                .and_then(|m| m.to_str().ok())
                .map(|m| m.replace("%20", " "));
            (
                format!("{:?}", tonic::Code::from_bytes(v.as_bytes())),
                message,
            )
        })
    };
    if let Some(s) = status(response.headers()) {
        return Ok(s);
    }
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        let Ok(chunk) = chunk else {
            return Ok(("stream reset".into(), None));
        };
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    Ok(match body.trailers().await {
        Ok(Some(t)) => status(&t).unwrap_or_else(|| ("no grpc-status".into(), None)),
        _ => ("no trailers".into(), None),
    })
}

/// What became of the slow senders.
#[derive(Default)]
struct SlowReport {
    opened: AtomicU64,
    /// Cut off by the server: time from the request's headers to the end.
    cut_ms: Mutex<Vec<f64>>,
    statuses: Outcomes,
}

/// Opens a `Submit` announcing a maximal message and sends its body at 64
/// bytes every 500 ms, over raw HTTP/2; again whenever the server ends it.
async fn slow_sender(
    server: SocketAddr,
    from: IpAddr,
    message_len: usize,
    end: Instant,
    report: Arc<SlowReport>,
) {
    while Instant::now() < end {
        let Ok(stream) = connect_from(from, server).await else {
            report.statuses.add("connection refused".into());
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let Ok((client, conn)) = h2::client::handshake(stream).await else {
            report.statuses.add("handshake failed".into());
            continue;
        };
        tokio::spawn(conn);
        let Ok(mut client) = client.ready().await else {
            continue;
        };
        let Ok((response, mut body)) = client.send_request(submit_request(server), false) else {
            continue;
        };
        report.opened.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let mut prefix = vec![0u8];
        prefix.extend_from_slice(&u32::try_from(message_len).unwrap_or(u32::MAX).to_be_bytes());
        let _ = body.send_data(prefix.into(), false);
        let trickle = async {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if body.send_data(vec![0u8; 64].into(), false).is_err() {
                    break;
                }
            }
        };
        let outcome = tokio::select! {
            r = response => match r {
                Ok(resp) => resp
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .map_or_else(|| format!("HTTP {}", resp.status()), |s| {
                        format!("{:?}", tonic::Code::from_bytes(s.as_bytes()))
                    }),
                Err(e) => format!("stream reset ({})", e.reason().map_or("no reason".into(), |r| format!("{r:?}"))),
            },
            () = trickle => "send failed".into(),
            () = tokio::time::sleep(end.saturating_duration_since(Instant::now())) => {
                report.statuses.add("still open at the end".into());
                return;
            }
        };
        if let Ok(mut v) = report.cut_ms.lock() {
            v.push(started.elapsed().as_secs_f64() * 1e3);
        }
        report.statuses.add(outcome);
    }
}

async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = match from {
        IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

/// Holds an HTTP/2 connection that, once its handshake is done, never sends
/// another byte; returns how long until the server closed it (`None`: still
/// open at `end`, or refused).
async fn idle_connection(server: SocketAddr, from: IpAddr, end: Instant) -> Option<f64> {
    let stream = connect_from(from, server).await.ok()?;
    let started = Instant::now();
    let (_client, conn) = h2::client::handshake::<_>(stream).await.ok()?;
    tokio::select! {
        _ = conn => Some(started.elapsed().as_secs_f64()),
        () = tokio::time::sleep(end.saturating_duration_since(Instant::now())) => None,
    }
}

/// The honest client's samples.
#[derive(Default)]
struct Honest {
    manifest_ms: Vec<f64>,
    submit_ms: Vec<f64>,
    manifest: BTreeMap<String, u64>,
    submit: BTreeMap<String, u64>,
}

async fn honest(
    endpoint: Endpoint,
    request: SubmitRequest,
    pause: Duration,
    start_at: Instant,
    end: Instant,
) -> anyhow::Result<Honest> {
    let channel = endpoint.connect().await.context("honest client: connect")?;
    let mut tables = TableServiceClient::new(channel.clone());
    let mut vouchers = VoucherServiceClient::new(channel);
    tokio::time::sleep_until(start_at.into()).await;
    let mut out = Honest::default();
    fn count<T>(m: &mut BTreeMap<String, u64>, r: &Result<T, tonic::Status>) {
        let k = match r {
            Ok(_) => "OK".into(),
            Err(s) => format!("{:?}", s.code()),
        };
        *m.entry(k).or_default() += 1;
    }
    while Instant::now() < end {
        let t = Instant::now();
        let r = tables.get_manifest(GetManifestRequest::default()).await;
        out.manifest_ms.push(t.elapsed().as_secs_f64() * 1e3);
        count(&mut out.manifest, &r);
        let mut req = request.clone();
        req.submission_id = { SubmissionId::random(&mut rand::rng()) }.0.to_vec();
        let t = Instant::now();
        let r = vouchers.submit(req).await;
        out.submit_ms.push(t.elapsed().as_secs_f64() * 1e3);
        count(&mut out.submit, &r);
        tokio::time::sleep(pause).await;
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.served.entries == 0 || args.load.batch == 0 || args.honest_batch == 0 {
        anyhow::bail!("--entries, --batch and --honest-batch must be at least 1");
    }
    let server_bin = args.served.bin()?;
    let dir = tempfile::tempdir()?;
    let messages = Messages::new(&args, dir.path())?;

    let mut server =
        service::start_with(&server_bin, dir.path(), args.load.batch, &args.serve_arg)?;
    let pid = server.child.id();
    let addr: SocketAddr = server
        .url
        .trim_start_matches("http://")
        .parse()
        .context("server address")?;
    // Loaded and serving: this is the table's footprint plus the idle server.
    let base_rss = machine::rss_bytes(pid).unwrap_or(0);
    let cpu_before = machine::cpu_seconds(pid).unwrap_or(0.0);
    let (sampled, sampler) = sample_rss(pid, base_rss);
    let seen = run(&args, &server.url, addr, &messages).await?;
    sampler.abort();
    let alive = server.child.try_wait()?.is_none();
    let peak_rss = machine::peak_rss_bytes(pid)
        .unwrap_or(0)
        .max(sampled.load(Ordering::Relaxed));
    let cpu = machine::cpu_seconds(pid).unwrap_or(f64::NAN) - cpu_before;
    drop(server);

    let figures = Figures::new(&messages, base_rss, peak_rss, cpu, alive, seen);
    let md = figures.markdown(&args);
    args.markdown.write(md.text())?;
    args.json
        .write(&serde_json::to_string_pretty(&figures.json(&args))?)
}

/// What the flood and the honest client send, made before the server starts.
struct Messages {
    /// One maximal submission, encoded and framed once, shared by every call.
    flood: bytes::Bytes,
    /// Its length unframed.
    flood_len: usize,
    /// The honest client's submission (a fresh id each time).
    honest: SubmitRequest,
    /// The size of the table file the server loads.
    table_file: u64,
}

impl Messages {
    /// Builds the table under a new key in `dir`, writes it for the server,
    /// and makes the messages.
    fn new(args: &Args, dir: &Path) -> anyhow::Result<Messages> {
        let key = blindmatch_server::keyfile::write_new(&dir.join("server.key"))?;
        let mut table_seed = [0u8; 32];
        rand::Rng::fill_bytes(&mut rand::rng(), &mut table_seed);
        let entries = sha_items(args.served.entries, "flood entry");
        let built = TableBuilder::new(table_seed).build(&key, entries.clone())?;
        let table = ClientTable::new(built.table.clone())?;
        service::write_table(dir, &built)?;
        let table_id = built.table.id().0.to_vec();
        drop(built);
        let mut rng = rand::rng();
        // The flood: distinct non-matching vouchers, one maximal batch, sent
        // again and again under fresh ids (each is stored and evaluated anew).
        let probes = sha_items(args.load.batch, "flood probe");
        // No submission id: the server names each copy itself, so every copy is
        // stored and evaluated anew (copies under one client-chosen id would be
        // retries, stored once: the cheap path). Encoded and framed once, and
        // shared by every call.
        let flood_body = prost::Message::encode_to_vec(&SubmitRequest {
            table_id: table_id.clone(),
            vouchers: probes
                .iter()
                .map(|p| Ok(table.create_voucher(p, &[0u8; 1024], &mut rng)?.encode()))
                .collect::<anyhow::Result<_>>()?,
            submission_id: Vec::new(),
            account_id: Vec::new(),
        });
        let flood_len = flood_body.len();
        let mut framed = Vec::with_capacity(flood_len + 5);
        framed.push(0);
        framed.extend_from_slice(&u32::try_from(flood_len).unwrap_or(u32::MAX).to_be_bytes());
        framed.extend_from_slice(&flood_body);
        drop(flood_body);
        // The honest client: half listed items, half not.
        let honest = SubmitRequest {
            table_id,
            account_id: Vec::new(),
            vouchers: (0..args.honest_batch)
                .map(|i| {
                    let item = if i % 2 == 0 {
                        entries[i % entries.len()].clone()
                    } else {
                        sha_items(i + 1, "honest probe")[i].clone()
                    };
                    Ok(table.create_voucher(&item, b"honest", &mut rng)?.encode())
                })
                .collect::<anyhow::Result<_>>()?,
            submission_id: Vec::new(),
        };
        Ok(Messages {
            flood: bytes::Bytes::from(framed),
            flood_len,
            honest,
            table_file: std::fs::metadata(dir.join("table.bmt"))?.len(),
        })
    }
}

/// Samples the resident memory of `pid` every 50 ms into the returned
/// maximum (from `base`) until the task is aborted; the kernel's high-water
/// mark is read at the end too.
fn sample_rss(pid: u32, base: u64) -> (Arc<AtomicU64>, tokio::task::JoinHandle<()>) {
    let sampling = Arc::new(AtomicU64::new(base));
    let peak = Arc::clone(&sampling);
    let sampler = tokio::spawn(async move {
        loop {
            if let Some(r) = machine::rss_bytes(pid) {
                peak.fetch_max(r, Ordering::Relaxed);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    (sampling, sampler)
}

/// What the run's participants saw; read once the server is gone.
struct Seen {
    honest: Honest,
    /// Seconds until the server closed each idle connection it closed.
    idle_closed: Vec<f64>,
    idle_open: usize,
    outcomes: Arc<Outcomes>,
    refused_connects: Arc<AtomicU64>,
    slow: Arc<SlowReport>,
}

/// The flood for `--duration`, with the slow senders, idle connections and
/// the honest client beside it; returns once the honest client and the slow
/// senders are done and the flood's last calls have ended (or 10 s more).
async fn run(
    args: &Args,
    url: &str,
    addr: SocketAddr,
    messages: &Messages,
) -> anyhow::Result<Seen> {
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(args.load.duration);
    let outcomes = Arc::new(Outcomes::default());
    let refused_connects = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        tasks.push(tokio::spawn(flood_connection(
            addr,
            args.flood_addr,
            args.streams,
            messages.flood.clone(),
            end,
            Arc::clone(&outcomes),
            Arc::clone(&refused_connects),
        )));
    }
    // The slow senders, idle connections and the honest client each run on
    // a runtime of their own: the flood keeps this process's runtime busy,
    // and what they measure must be the server, not that.
    let slow = Arc::new(SlowReport::default());
    let others = {
        let (slow, slow_addr, n_slow, n_idle) =
            (Arc::clone(&slow), args.slow_addr, args.slow, args.idle);
        let message_len = messages.flood_len;
        std::thread::spawn(move || -> anyhow::Result<Vec<Option<f64>>> {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(async move {
                    let mut slow_tasks = Vec::new();
                    for _ in 0..n_slow {
                        slow_tasks.push(tokio::spawn(slow_sender(
                            addr,
                            slow_addr,
                            message_len,
                            end,
                            Arc::clone(&slow),
                        )));
                    }
                    let idle: Vec<_> = (0..n_idle)
                        .map(|_| tokio::spawn(idle_connection(addr, slow_addr, end)))
                        .collect();
                    let mut out = Vec::new();
                    for t in idle {
                        out.push(t.await.ok().flatten());
                    }
                    for t in slow_tasks {
                        let _ = t.await;
                    }
                    Ok(out)
                })
        })
    };
    // The honest client starts once the flood is under way.
    let honest = {
        let endpoint = channel(url, args.honest_addr)?;
        let pause = Duration::from_millis(args.honest_pause_ms);
        let start_at = t0 + Duration::from_secs_f64((args.load.duration / 10.0).min(2.0));
        let request = messages.honest.clone();
        std::thread::spawn(move || -> anyhow::Result<Honest> {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(honest(endpoint, request, pause, start_at, end))
        })
    };
    let honest = honest
        .join()
        .map_err(|_| anyhow::anyhow!("the honest client panicked"))??;
    let mut idle_closed = Vec::new();
    let mut idle_open = 0usize;
    for t in others
        .join()
        .map_err(|_| anyhow::anyhow!("the slow senders panicked"))??
    {
        match t {
            Some(s) => idle_closed.push(s),
            None => idle_open += 1,
        }
    }
    // The flood's last calls may still be in flight: give them a moment.
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        for t in tasks {
            let _ = t.await;
        }
    })
    .await;
    Ok(Seen {
        honest,
        idle_closed,
        idle_open,
        outcomes,
        refused_connects,
        slow,
    })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 20)
}

fn latency_json(v: &[f64]) -> serde_json::Value {
    json!({
        "n": v.len(),
        "p50_ms": percentile(v, 50.0),
        "p99_ms": percentile(v, 99.0),
        "max_ms": percentile(v, 100.0),
    })
}

fn statuses(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "none".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

/// Every figure of the run, read once the server is gone.
struct Figures {
    message_len: usize,
    table_file: u64,
    base_rss: u64,
    peak_rss: u64,
    /// Server CPU seconds during the run.
    cpu: f64,
    alive: bool,
    honest: Honest,
    idle_closed: Vec<f64>,
    idle_open: usize,
    flood: BTreeMap<String, u64>,
    flood_examples: BTreeMap<String, String>,
    refused_connects: u64,
    slow_opened: u64,
    slow_statuses: BTreeMap<String, u64>,
    /// Milliseconds until the server ended each slow sender it ended.
    slow_cut: Vec<f64>,
}

impl Figures {
    fn new(
        messages: &Messages,
        base_rss: u64,
        peak_rss: u64,
        cpu: f64,
        alive: bool,
        seen: Seen,
    ) -> Figures {
        Figures {
            message_len: messages.flood_len,
            table_file: messages.table_file,
            base_rss,
            peak_rss,
            cpu,
            alive,
            honest: seen.honest,
            idle_closed: seen.idle_closed,
            idle_open: seen.idle_open,
            flood: seen.outcomes.snapshot(),
            flood_examples: seen.outcomes.examples(),
            refused_connects: seen.refused_connects.load(Ordering::Relaxed),
            slow_opened: seen.slow.opened.load(Ordering::Relaxed),
            slow_statuses: seen.slow.statuses.snapshot(),
            slow_cut: seen
                .slow
                .cut_ms
                .lock()
                .map(|v| v.clone())
                .unwrap_or_default(),
        }
    }

    /// The Markdown report, printed as it is written, with the targets
    /// beside each figure.
    fn markdown(&self, args: &Args) -> Printed {
        let mut md = Printed::default();
        let growth = self.peak_rss.saturating_sub(self.base_rss);
        md.line(format!(
            "blindmatch-flood: {}, {} entries; {} connections x {} streams of {}-voucher submissions ({:.2} MiB each) from {} for {:.0} s, {} slow senders and {} idle connections from {}; honest client from {} (GetManifest, then {} vouchers, every {} ms); serve flags: {}",
            machine::summary(),
            args.served.entries,
            args.connections,
            args.streams,
            args.load.batch,
            mib(self.message_len as u64),
            args.flood_addr,
            args.load.duration,
            args.slow,
            args.idle,
            args.slow_addr,
            args.honest_addr,
            args.honest_batch,
            args.honest_pause_ms,
            if args.serve_arg.is_empty() {
                "defaults".into()
            } else {
                args.serve_arg.join(" ")
            },
        ));
        md.line("");
        md.line("| figure | measured | target | |");
        md.line("| --- | ---: | ---: | --- |");
        md.line(format!(
            "| server alive at the end | {} | yes | {} |",
            if self.alive { "yes" } else { "**no**" },
            verdict(self.alive)
        ));
        md.line(format!(
            "| server RSS: loaded, peak (growth) | {:.0} MiB, {:.0} MiB (+{:.0} MiB) | growth < 300 MiB | {} |",
            mib(self.base_rss),
            mib(self.peak_rss),
            mib(growth),
            verdict(growth < 300 << 20)
        ));
        let latency_row = |what: &str, v: &[f64], target_ms: f64| {
            let p99 = percentile(v, 99.0);
            format!(
                "| honest {what} p50 / p99 / max | {:.1} / {p99:.1} / {:.1} ms (n = {}) | p99 < {target_ms:.0} ms | {} |",
                percentile(v, 50.0),
                percentile(v, 100.0),
                v.len(),
                verdict(p99 < target_ms)
            )
        };
        md.line(latency_row("GetManifest", &self.honest.manifest_ms, 250.0));
        md.line(latency_row("Submit", &self.honest.submit_ms, 500.0));
        md.line("");
        md.line(format!(
            "- table file: {:.1} MiB; server CPU during the flood: {:.1} s",
            mib(self.table_file),
            self.cpu
        ));
        md.line(format!(
            "- honest GetManifest by status: {}",
            statuses(&self.honest.manifest)
        ));
        md.line(format!(
            "- honest Submit by status: {}",
            statuses(&self.honest.submit)
        ));
        md.line(format!(
            "- flood Submit by status: {}; flood connections refused or closed before use: {}",
            statuses(&self.flood),
            self.refused_connects
        ));
        for (code, message) in &self.flood_examples {
            md.line(format!("  - flood {code}, e.g.: {message}"));
        }
        if args.slow > 0 {
            md.line(format!(
                "- slow senders: {} opened, {} ended by the server (after p50 {:.1} s, max {:.1} s); outcomes: {}",
                self.slow_opened,
                self.slow_cut.len(),
                percentile(&self.slow_cut, 50.0) / 1e3,
                percentile(&self.slow_cut, 100.0) / 1e3,
                statuses(&self.slow_statuses)
            ));
        }
        if args.idle > 0 {
            md.line(format!(
                "- idle connections: {} closed by the server (after p50 {:.1} s, max {:.1} s), {} still open at the end",
                self.idle_closed.len(),
                percentile(&self.idle_closed, 50.0),
                percentile(&self.idle_closed, 100.0),
                self.idle_open
            ));
        }
        md
    }

    /// The figures as JSON (`--json`).
    fn json(&self, args: &Args) -> serde_json::Value {
        json!({
            "cpu": machine::cpu_model(),
            "cores": machine::cores(),
            "backend": machine::backend(),
            "entries": args.served.entries,
            "connections": args.connections,
            "streams": args.streams,
            "batch": args.load.batch,
            "message_bytes": self.message_len,
            "slow_senders": args.slow,
            "idle_connections": args.idle,
            "duration_s": args.load.duration,
            "serve_args": args.serve_arg,
            "server_alive": self.alive,
            "table_file_bytes": self.table_file,
            "rss_loaded_bytes": self.base_rss,
            "rss_peak_bytes": self.peak_rss,
            "server_cpu_s": self.cpu,
            "honest_get_manifest": latency_json(&self.honest.manifest_ms),
            "honest_submit": latency_json(&self.honest.submit_ms),
            "honest_get_manifest_by_status": self.honest.manifest,
            "honest_submit_by_status": self.honest.submit,
            "flood_submit_by_status": self.flood,
            "flood_submit_example_messages": self.flood_examples,
            "flood_connections_refused": self.refused_connects,
            "slow": {
                "opened": self.slow_opened,
                "ended_by_server": self.slow_cut.len(),
                "ended_after_p50_ms": percentile(&self.slow_cut, 50.0),
                "by_outcome": self.slow_statuses,
            },
            "idle": {
                "closed_by_server": self.idle_closed.len(),
                "closed_after_p50_s": percentile(&self.idle_closed, 50.0),
                "still_open": self.idle_open,
            },
            "targets": {
                "rss_growth_bytes_below": 300u64 << 20,
                "get_manifest_p99_ms_below": 250,
                "submit_p99_ms_below": 500,
            },
        })
    }
}
