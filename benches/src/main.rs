//! `blindmatch-bench`: the whole service under load, against the physical
//! floor measured in the same run.
//!
//! 1. Times the primitives (the floor) in this process.
//! 2. Builds tables of several sizes with the library, on all cores.
//! 3. Starts the real `blindmatch-server serve` as a child process on
//!    loopback, pre-computes a pool of distinct vouchers (so the load
//!    generator spends little CPU in the window), and drives C concurrent
//!    streams of batches for D seconds at each concurrency.
//! 4. Measures single-voucher latency at low load.
//! 5. Prints a Markdown summary with every figure and its ratio to the floor,
//!    and writes JSON and an SVG chart when asked.
//!
//! Build first: `cargo build --release -p blindmatch-server -p blindmatch-benches`,
//! then `target/release/blindmatch-bench --quick --json out.json`.

#![allow(
    clippy::cast_possible_truncation,
    reason = "benchmark arithmetic on counts and times"
)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use blindmatch_benches::chart::{self, Panel};
use blindmatch_benches::floor::Floors;
use blindmatch_benches::items::sha_items;
use blindmatch_benches::stats::percentile;
use blindmatch_benches::submit::submit_admitted;
use blindmatch_benches::{machine, service};
use blindmatch_client::{Client, SubmissionId, TableCache};
use blindmatch_proto::v1::SubmitRequest;
use blindmatch_proto::v1::voucher_service_client::VoucherServiceClient;
use blindmatch_protocol::table::HEADER_LEN;
use blindmatch_protocol::{ClientTable, Matcher, ServerKey, TableBuilder, Voucher};
use clap::Parser;
use serde_json::json;

#[derive(Parser, Debug)]
#[command(
    name = "blindmatch-bench",
    about = "Load benchmark of the blindmatch service against the physical floor"
)]
struct Args {
    /// Everything in under two minutes on 2 cores.
    #[arg(long)]
    quick: bool,
    /// Entries in the table the server serves (up to 10,000,000).
    #[arg(long)]
    entries: Option<usize>,
    /// Vouchers per submission.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Concurrent submission streams to measure, comma-separated.
    #[arg(long, value_delimiter = ',')]
    concurrency: Option<Vec<usize>>,
    /// Seconds of load at each concurrency.
    #[arg(long)]
    duration: Option<f64>,
    /// Write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the Markdown summary here (it is always printed).
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Write the SVG chart here.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Also time OpenMined PSI (P-256, from PyPI, in a virtual environment that
    /// benches/peers/run.sh makes) and print our ratio to it.
    #[arg(long)]
    peers: bool,
    /// The server binary [default: blindmatch-server next to this binary].
    #[arg(long)]
    server_bin: Option<PathBuf>,
}

/// A built table and how long it took.
struct Build {
    entries: usize,
    seconds: f64,
}

fn build(key: &ServerKey, n: usize) -> anyhow::Result<(blindmatch_protocol::BuiltTable, Build)> {
    let items = sha_items(n, "bench entry");
    let mut seed = [0u8; 32];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut seed);
    let t = Instant::now();
    let built = TableBuilder::new(seed).build(key, items)?;
    let seconds = t.elapsed().as_secs_f64();
    Ok((
        built,
        Build {
            entries: n,
            seconds,
        },
    ))
}

/// One load window.
struct Window {
    concurrency: usize,
    /// Tries refused for memory (and sent again after the server's hint).
    refused: u64,
    vouchers_per_s: f64,
    submissions_per_s: f64,
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    server_cpu_us_per_voucher: f64,
}

async fn load(
    url: &str,
    pid: u32,
    table_id: &[u8],
    pool: &Arc<Vec<Vec<u8>>>,
    batch: usize,
    concurrency: usize,
    seconds: f64,
) -> anyhow::Result<Window> {
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let cpu0 = machine::cpu_seconds(pid).unwrap_or(0.0);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..concurrency {
        let mut client = VoucherServiceClient::connect(url.to_string())
            .await?
            .max_decoding_message_size(16 << 20);
        let (stop, sent, refused, pool, table_id) = (
            stop.clone(),
            sent.clone(),
            refused.clone(),
            pool.clone(),
            table_id.to_vec(),
        );
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut at = (c * 7919 * batch) % pool.len();
            while !stop.load(Ordering::Relaxed) {
                let vouchers: Vec<Vec<u8>> = (0..batch)
                    .map(|i| pool[(at + i) % pool.len()].clone())
                    .collect();
                at = (at + batch) % pool.len();
                let t = Instant::now();
                let r = submit_admitted(
                    &mut client,
                    SubmitRequest {
                        table_id: table_id.clone(),
                        vouchers,
                        // As a real client does: the server remembers it.
                        submission_id: { SubmissionId::random(&mut rand::rng()) }.0.to_vec(),
                        account_id: Vec::new(),
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
        refused: refused.load(Ordering::Relaxed),
        vouchers_per_s: vouchers / elapsed,
        submissions_per_s: latencies.len() as f64 / elapsed,
        p50_us: percentile(&latencies, 50.0),
        p99_us: percentile(&latencies, 99.0),
        p999_us: percentile(&latencies, 99.9),
        server_cpu_us_per_voucher: cpu * 1e6 / vouchers.max(1.0),
    })
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let cores = machine::cores();
    let entries = args.entries.unwrap_or(100_000);
    if entries > 10_000_000 {
        bail!("--entries is at most 10,000,000");
    }
    let concurrency = args.concurrency.clone().unwrap_or(if args.quick {
        vec![1, 4, 16]
    } else {
        vec![1, 2, 4, 8, 16, 32]
    });
    let seconds = args.duration.unwrap_or(if args.quick { 4.0 } else { 15.0 });
    let server_bin = service::server_bin(args.server_bin.as_deref())?;
    eprintln!(
        "blindmatch-bench: {} ({} cores, backend {})",
        machine::cpu_model(),
        cores,
        machine::backend()
    );

    // 1. The floor.
    let floors = Floors::measure(if args.quick { 0.3 } else { 1.0 });
    eprintln!(
        "floor: server {:.2} µs/voucher, build {:.2} µs/entry",
        floors.server_us(),
        floors.build_us()
    );

    // 2. Builds: the served table, and smaller ones for the scaling curve.
    let dir = tempfile::tempdir()?;
    let key = blindmatch_server::keyfile::write_new(&dir.path().join("server.key"))?;
    let mut sizes: Vec<usize> = [
        10_000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000, 10_000_000,
    ]
    .into_iter()
    .filter(|&n| n < entries && (!args.quick || n <= 30_000))
    .collect();
    sizes.push(entries);
    let mut builds = Vec::new();
    let mut served = None;
    for &n in &sizes {
        let (built, b) = build(&key, n)?;
        eprintln!(
            "build {n}: {:.2} s ({:.0} entries/s)",
            b.seconds,
            n as f64 / b.seconds
        );
        builds.push(b);
        if n == entries {
            served = Some(built);
        }
    }
    let build_peak_rss = machine::peak_rss_bytes(std::process::id()).unwrap_or(0);
    let built = served.context("served table")?;
    let main_build = builds.last().context("a build")?;
    let build_entries_per_s = main_build.entries as f64 / main_build.seconds;
    let table_bytes = (HEADER_LEN + built.table.slots().len()) as f64;

    // 3. The pieces measured in process: client voucher creation and server
    //    match time, single thread.
    let client_table = ClientTable::new(built.table.clone())?;
    let probes = sha_items(if args.quick { 2048 } else { 8192 }, "bench probe");
    let mut listed = built.entries.iter().step_by(97).cloned();
    let mut rng = rand::rng();
    let t = Instant::now();
    let mut pool = Vec::with_capacity(probes.len());
    for (i, p) in probes.iter().enumerate() {
        // One voucher in a hundred is for a listed item, so matches are recorded too.
        let item = if i % 100 == 0 {
            listed.next().unwrap_or_else(|| p.clone())
        } else {
            p.clone()
        };
        pool.push(
            client_table
                .create_voucher(&item, format!("bench {i}").as_bytes(), &mut rng)?
                .encode(),
        );
    }
    let client_voucher_us = t.elapsed().as_secs_f64() * 1e6 / pool.len() as f64;
    let k = built.table.header().k;
    let matcher = Matcher::new(&key, &built.table, built.index.clone())?;
    let t = Instant::now();
    let mut opened = 0;
    for chunk in pool.chunks(64) {
        let vouchers: Vec<Voucher> = chunk
            .iter()
            .map(|b| Voucher::decode(b, k))
            .collect::<Result<_, _>>()?;
        opened += matcher.open_batch(&vouchers).len();
    }
    let server_match_us = t.elapsed().as_secs_f64() * 1e6 / opened as f64;
    drop(matcher);

    // 4. The real server, over loopback.
    let operator = service::write_table(dir.path(), &built)?;
    drop(built);
    let server = service::start(&server_bin, dir.path(), args.batch)?;
    let pid = server.child.id();
    let mut client = Client::connect(&server.url, operator).await?;
    let manifest = client.manifest().await?;
    client
        .table(&manifest, &TableCache::new(dir.path().join("cache")))
        .await?;
    let pool = Arc::new(pool);
    let table_id = manifest.table_id().0.to_vec();

    // Low-load latency: one voucher at a time.
    let mut raw = VoucherServiceClient::connect(server.url.clone()).await?;
    let mut single = Vec::new();
    for i in 0..if args.quick { 200 } else { 1000 } {
        let t = Instant::now();
        raw.submit(SubmitRequest {
            table_id: table_id.clone(),
            vouchers: vec![pool[i % pool.len()].clone()],
            submission_id: { SubmissionId::random(&mut rand::rng()) }.0.to_vec(),
            account_id: Vec::new(),
        })
        .await?;
        single.push(t.elapsed().as_secs_f64() * 1e6);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    let mut windows = Vec::new();
    for &c in &concurrency {
        let w = load(&server.url, pid, &table_id, &pool, args.batch, c, seconds).await?;
        eprintln!(
            "concurrency {c}: {:.0} vouchers/s, p50 {:.0} µs, p99 {:.0} µs, server {:.2} CPU-µs/voucher, {} tries refused for memory",
            w.vouchers_per_s, w.p50_us, w.p99_us, w.server_cpu_us_per_voucher, w.refused
        );
        windows.push(w);
    }
    let server_peak_rss = machine::peak_rss_bytes(pid).unwrap_or(0);
    drop(server);

    // 5. Peers, in the same run.
    let peer = if args.peers {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/run.sh");
        let n = if args.quick {
            ("10000", "2000")
        } else {
            ("50000", "10000")
        };
        eprintln!("peer: OpenMined PSI via {script}");
        let out = Command::new("bash")
            .args([script, n.0, n.1])
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("running {script}"))?;
        if !out.status.success() {
            bail!("{script} failed");
        }
        Some(serde_json::from_slice::<serde_json::Value>(&out.stdout).context("peer output")?)
    } else {
        None
    };

    // 6. Report.
    let best = windows
        .iter()
        .max_by(|a, b| a.vouchers_per_s.total_cmp(&b.vouchers_per_s))
        .context("no load window")?;
    let floor_server_us = floors.server_us();
    let floor_build_us = floors.build_us();
    let server_match_ratio = floor_server_us / server_match_us;
    let build_ratio = (build_entries_per_s / cores as f64) / (1e6 / floor_build_us);
    let e2e_ratio = best.vouchers_per_s / (cores as f64 * 1e6 / floor_server_us);
    let client_floor_us = floors.client_us(k);
    let doc = json!({
        "cpu": machine::cpu_model(),
        "cores": cores,
        "backend": machine::backend(),
        "quick": args.quick,
        "entries": entries,
        "k": k,
        "batch": args.batch,
        "window_s": seconds,
        "floor_server_us": round(floor_server_us, 3),
        "server_match_us": round(server_match_us, 3),
        "server_match_ratio": round(server_match_ratio, 3),
        "floor_build_us": round(floor_build_us, 3),
        "build_entries_per_s": round(build_entries_per_s, 0),
        "build_ratio": round(build_ratio, 3),
        "build_peak_rss_bytes": build_peak_rss,
        "builds": builds.iter().map(|b| json!({"entries": b.entries, "seconds": round(b.seconds, 3)})).collect::<Vec<_>>(),
        "e2e_vouchers_per_s": round(best.vouchers_per_s, 0),
        "e2e_concurrency": best.concurrency,
        "e2e_ratio": round(e2e_ratio, 3),
        "latency_p50_us": round(percentile(&single, 50.0), 1),
        "latency_p99_us": round(percentile(&single, 99.0), 1),
        "server_peak_rss_bytes": server_peak_rss,
        "table_bytes": table_bytes,
        "table_bytes_per_entry": round(table_bytes / entries as f64, 2),
        "client_voucher_us": round(client_voucher_us, 2),
        "client_floor_us": round(client_floor_us, 2),
        "client_ratio": round(client_voucher_us / client_floor_us, 3),
        "floors_us": {
            "varbase_mul": round(floors.varbase_mul_us, 3),
            "fixed_base_mul": round(floors.fixed_base_mul_us, 3),
            "decompress": round(floors.decompress_us, 3),
            "batch_compress": round(floors.batch_compress_us, 3),
            "hash_to_group": round(floors.hash_to_group_us, 3),
            "kdf": round(floors.kdf_us, 3),
            "aead_open": round(floors.aead_open_us, 3),
        },
        "load": windows.iter().map(|w| json!({
            "concurrency": w.concurrency,
            "vouchers_per_s": round(w.vouchers_per_s, 0),
            "submissions_per_s": round(w.submissions_per_s, 1),
            "latency_p50_us": round(w.p50_us, 0),
            "latency_p99_us": round(w.p99_us, 0),
            "latency_p999_us": round(w.p999_us, 0),
            "server_cpu_us_per_voucher": round(w.server_cpu_us_per_voucher, 2),
            "tries_refused_for_memory": w.refused,
        })).collect::<Vec<_>>(),
        "seconds_total": round(started.elapsed().as_secs_f64(), 1),
    });
    let mut doc = doc;
    // Per item, one core each: our build per entry per core, and our match.
    let build_us_per_core = cores as f64 * 1e6 / build_entries_per_s;
    let peer_ratios = peer.as_ref().and_then(|p| {
        let setup = p["setup_us_per_item"].as_f64()?;
        let process = p["process_us_per_item"].as_f64()?;
        Some((
            setup / build_us_per_core,
            process / server_match_us,
            setup,
            process,
        ))
    });
    if let (Some(p), Some((b, m, _, _))) = (&peer, peer_ratios) {
        doc["peer"] = p.clone();
        doc["peer_build_speedup"] = json!(round(b, 2));
        doc["peer_match_speedup"] = json!(round(m, 2));
    }

    let mut md = String::new();
    md.push_str(&format!(
        "### blindmatch-bench{}\n\n{} · {} cores · backend {} · {} entries, k = {}, batches of {}, {} s windows\n\n",
        if args.quick { " --quick" } else { "" },
        machine::cpu_model(),
        cores,
        machine::backend(),
        entries,
        k,
        args.batch,
        seconds
    ));
    md.push_str("| figure | measured | floor | ratio |\n| --- | --- | --- | --- |\n");
    md.push_str(&format!(
        "| server match, per voucher (1 thread, decode + open) | {server_match_us:.2} µs | {floor_server_us:.2} µs | {server_match_ratio:.2} |\n"
    ));
    md.push_str(&format!(
        "| table build ({entries} entries, {cores} cores) | {build_entries_per_s:.0} entries/s | {:.0} entries/s/core | {build_ratio:.2} |\n",
        1e6 / floor_build_us
    ));
    md.push_str(&format!(
        "| end to end over loopback gRPC (concurrency {}) | {:.0} vouchers/s | {:.0} vouchers/s ({cores} × floor) | {e2e_ratio:.2} |\n",
        best.concurrency,
        best.vouchers_per_s,
        cores as f64 * 1e6 / floor_server_us
    ));
    md.push_str(&format!(
        "| client voucher creation (k = {k}) | {client_voucher_us:.1} µs | {client_floor_us:.1} µs | {:.2}x |\n",
        client_voucher_us / client_floor_us
    ));
    md.push_str(&format!(
        "\nSingle voucher at low load: p50 {:.0} µs, p99 {:.0} µs. Table: {:.1} bytes/entry. Peak RSS: build {:.0} MiB (this process), server {:.0} MiB.\n\n",
        percentile(&single, 50.0),
        percentile(&single, 99.0),
        table_bytes / entries as f64,
        build_peak_rss as f64 / 1048576.0,
        server_peak_rss as f64 / 1048576.0
    ));
    md.push_str("| concurrency | vouchers/s | submissions/s | p50 | p99 | p99.9 | server CPU µs/voucher | tries refused for memory |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for w in &windows {
        md.push_str(&format!(
            "| {} | {:.0} | {:.0} | {:.0} µs | {:.0} µs | {:.0} µs | {:.2} | {} |\n",
            w.concurrency,
            w.vouchers_per_s,
            w.submissions_per_s,
            w.p50_us,
            w.p99_us,
            w.p999_us,
            w.server_cpu_us_per_voucher,
            w.refused
        ));
    }
    if let Some((b, m, setup, process)) = peer_ratios {
        md.push_str(&format!(
            "\nAgainst OpenMined PSI (P-256, one thread): table build {build_us_per_core:.1} µs/entry/core against its setup {setup:.1} µs/item ({b:.2}x faster); \
             match {server_match_us:.1} µs/voucher against its request processing {process:.1} µs/item ({m:.2}x faster).\n"
        ));
    }
    md.push_str("\n| build entries | seconds | µs/entry |\n| --- | --- | --- |\n");
    for b in &builds {
        md.push_str(&format!(
            "| {} | {:.2} | {:.2} |\n",
            b.entries,
            b.seconds,
            b.seconds * 1e6 / b.entries as f64
        ));
    }
    print!("{md}");

    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_string_pretty(&doc)? + "\n")
            .with_context(|| format!("--json {}", p.display()))?;
    }
    if let Some(p) = &args.markdown {
        std::fs::write(p, &md).with_context(|| format!("--markdown {}", p.display()))?;
    }
    if let Some(p) = &args.svg {
        let tput: Vec<(f64, f64)> = windows
            .iter()
            .map(|w| (w.concurrency as f64, w.vouchers_per_s))
            .collect();
        let scaling: Vec<(f64, f64)> = builds
            .iter()
            .map(|b| (b.entries as f64, b.seconds * 1e6 / b.entries as f64))
            .collect();
        let floor_line = cores as f64 * 1e6 / floor_server_us;
        let floor_label = format!("floor: {floor_line:.0}/s");
        let svg = chart::render(&[
            Panel {
                title: "vouchers/s against concurrent streams",
                x_label: "concurrent streams",
                y_label: "vouchers/s",
                points: &tput,
                reference: Some((floor_line, &floor_label)),
                log_x: true,
            },
            Panel {
                title: "build time per entry (flat = linear in N)",
                x_label: "entries (log scale)",
                y_label: "µs per entry (all cores)",
                points: &scaling,
                reference: None,
                log_x: true,
            },
        ]);
        std::fs::write(p, svg).with_context(|| format!("--svg {}", p.display()))?;
    }
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
