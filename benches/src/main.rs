//! `blindmatch-bench`: the whole service under load, against the physical
//! floor measured in the same run.
//!
//! 1. Times the primitives (the floor) in this process.
//! 2. Builds tables of several sizes with the library, on all cores.
//! 3. Starts the real `blindmatch-server serve` as a child process on
//!    loopback, pre-computes a pool of distinct vouchers (so the load
//!    generator spends little CPU in the window), and drives C concurrent
//!    streams of batches for D seconds at each concurrency, spread over
//!    `--sources` loopback addresses ([`blindmatch_benches::load`]); then
//!    once more from a single source at the best window's concurrency, a
//!    row of its own: one source is held to half the server's budget by
//!    design, so that row measures the fair share, the others the server.
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

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use blindmatch_benches::args::{Json, Load, Markdown, Served};
use blindmatch_benches::chart::{self, Panel};
use blindmatch_benches::floor::Floors;
use blindmatch_benches::items::sha_items;
use blindmatch_benches::load::{self, Window};
use blindmatch_benches::report::round;
use blindmatch_benches::stats::percentile;
use blindmatch_benches::{machine, service};
use blindmatch_client::{Client, SubmissionId, TableCache};
use blindmatch_proto::v1::SubmitRequest;
use blindmatch_proto::v1::voucher_service_client::VoucherServiceClient;
use blindmatch_protocol::table::HEADER_LEN;
use blindmatch_protocol::{
    BuiltTable, ClientTable, Matcher, OperatorVerifyingKey, ServerKey, TableBuilder, Voucher,
};
use clap::Parser;
use serde_json::json;

#[derive(Parser, Debug)]
#[command(
    name = "blindmatch-bench",
    about = "Load benchmark of the blindmatch service against the physical floor"
)]
#[command(mut_arg("entries", |a| a.help("Entries in the table the server serves (up to 10,000,000)")))]
#[command(mut_arg("duration", |a| a
    .help("Seconds of load at each concurrency (4 with --quick)")
    .default_value("15")
    .default_value_if("quick", "true", "4")))]
struct Args {
    /// Everything in under two minutes on 2 cores.
    #[arg(long)]
    quick: bool,
    #[command(flatten)]
    served: Served,
    #[command(flatten)]
    load: Load,
    /// Concurrent submission streams to measure, comma-separated.
    #[arg(long, value_delimiter = ',')]
    concurrency: Option<Vec<usize>>,
    #[command(flatten)]
    json: Json,
    #[command(flatten)]
    markdown: Markdown,
    /// Write the SVG chart here.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Also time OpenMined PSI (P-256, from PyPI, in a virtual environment that
    /// benches/peers/run.sh makes) and print our ratio to it.
    #[arg(long)]
    peers: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let entries = args.served.entries;
    if entries > 10_000_000 {
        bail!("--entries is at most 10,000,000");
    }
    let concurrency = args.concurrency.clone().unwrap_or(if args.quick {
        vec![1, 4, 16]
    } else {
        vec![1, 2, 4, 8, 16, 32]
    });
    let server_bin = args.served.bin()?;
    eprintln!("blindmatch-bench: {}", machine::summary());

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
    let (built, builds) = build_tables(&key, entries, args.quick)?;
    let build_peak_rss = machine::peak_rss_bytes(std::process::id()).unwrap_or(0);

    // 3. The pieces measured in process: client voucher creation and server
    //    match time, single thread.
    let (pool, client_voucher_us) = voucher_pool(&built, args.quick)?;
    let server_match_us = match_time(&key, &built, &pool)?;
    let k = built.table.header().k;
    let table_bytes = (HEADER_LEN + built.table.slots().len()) as f64;

    // 4. The real server, over loopback.
    let operator = service::write_table(dir.path(), &built)?;
    drop(built);
    let server = service::start(&server_bin, dir.path(), args.load.batch)?;
    let table_id = download(&server.url, operator, dir.path()).await?;
    let pool = Arc::new(pool);
    let single = single_latency(&server.url, &table_id, &pool, args.quick).await?;
    let mut windows = Vec::new();
    for &c in &concurrency {
        let w = load_window(&server, &table_id, &pool, &args.load, c, args.load.sources);
        windows.push(w.await?);
    }
    let single_source = match best(&windows)? {
        w if w.sources > 1 => {
            let c = w.concurrency;
            Some(load_window(&server, &table_id, &pool, &args.load, c, 1).await?)
        }
        _ => None,
    };
    let server_peak_rss = machine::peak_rss_bytes(server.child.id()).unwrap_or(0);
    drop(server);

    // 5. Peers, in the same run.
    let peer = args.peers.then(|| peer(args.quick)).transpose()?;

    // 6. Report.
    let figures = Figures {
        quick: args.quick,
        entries,
        k,
        batch: args.load.batch,
        seconds: args.load.duration,
        cores: machine::cores(),
        floors,
        server_match_us,
        client_voucher_us,
        builds,
        build_peak_rss,
        table_bytes,
        single,
        windows,
        single_source,
        server_peak_rss,
        peer,
    };
    let doc = figures.json(started)?;
    let md = figures.markdown()?;
    // The files first: a reader of stdout that goes away must not cost them.
    args.json
        .write(&(serde_json::to_string_pretty(&doc)? + "\n"))?;
    args.markdown.write(&md)?;
    if let Some(p) = &args.svg {
        std::fs::write(p, figures.svg()).with_context(|| format!("--svg {}", p.display()))?;
    }
    blindmatch_benches::report::print(&md)?;
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// A built table and how long it took.
struct Build {
    entries: usize,
    seconds: f64,
}

fn build(key: &ServerKey, n: usize) -> anyhow::Result<(BuiltTable, Build)> {
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

/// Builds the served table of `entries` entries, and before it the smaller
/// ones of the scaling curve; returns the served one and every build's time
/// (the served one last).
fn build_tables(
    key: &ServerKey,
    entries: usize,
    quick: bool,
) -> anyhow::Result<(BuiltTable, Vec<Build>)> {
    let mut sizes: Vec<usize> = [
        10_000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000, 10_000_000,
    ]
    .into_iter()
    .filter(|&n| n < entries && (!quick || n <= 30_000))
    .collect();
    sizes.push(entries);
    let mut builds = Vec::new();
    let mut served = None;
    for &n in &sizes {
        let (built, b) = build(key, n)?;
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
    Ok((served.context("served table")?, builds))
}

/// The pool of distinct vouchers the load sends, made in advance, and the
/// client's time per voucher (one thread).
fn voucher_pool(built: &BuiltTable, quick: bool) -> anyhow::Result<(Vec<Vec<u8>>, f64)> {
    let client_table = ClientTable::new(built.table.clone())?;
    let probes = sha_items(if quick { 2048 } else { 8192 }, "bench probe");
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
    Ok((pool, client_voucher_us))
}

/// The server's match time per voucher in process (decode and open, one
/// thread, batches of 64).
fn match_time(key: &ServerKey, built: &BuiltTable, pool: &[Vec<u8>]) -> anyhow::Result<f64> {
    let k = built.table.header().k;
    let matcher = Matcher::new(key, &built.table, built.index.clone())?;
    let t = Instant::now();
    let mut opened = 0;
    for chunk in pool.chunks(64) {
        let vouchers: Vec<Voucher> = chunk
            .iter()
            .map(|b| Voucher::decode(b, k))
            .collect::<Result<_, _>>()?;
        opened += matcher.open_batch(&vouchers).len();
    }
    Ok(t.elapsed().as_secs_f64() * 1e6 / opened as f64)
}

/// Downloads the served table as a client does (into a cache under `dir`);
/// returns its id.
async fn download(
    url: &str,
    operator: OperatorVerifyingKey,
    dir: &Path,
) -> anyhow::Result<Vec<u8>> {
    let mut client = Client::connect(url, operator).await?;
    let manifest = client.manifest().await?;
    client
        .table(&manifest, &TableCache::new(dir.join("cache")))
        .await?;
    Ok(manifest.table_id().0.to_vec())
}

/// Low-load latency: one voucher at a time, 2 ms apart; µs each.
async fn single_latency(
    url: &str,
    table_id: &[u8],
    pool: &[Vec<u8>],
    quick: bool,
) -> anyhow::Result<Vec<f64>> {
    let mut raw = VoucherServiceClient::connect(url.to_string()).await?;
    let mut single = Vec::new();
    for i in 0..if quick { 200 } else { 1000 } {
        let t = Instant::now();
        raw.submit(SubmitRequest {
            table_id: table_id.to_vec(),
            vouchers: vec![pool[i % pool.len()].clone()],
            submission_id: { SubmissionId::random(&mut rand::rng()) }.0.to_vec(),
            account_id: Vec::new(),
        })
        .await?;
        single.push(t.elapsed().as_secs_f64() * 1e6);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(single)
}

/// One load window at `concurrency` from `sources` source addresses: each
/// stream sends the next `--batch` vouchers of the pool, from its own place
/// in it, for `--duration` seconds.
async fn load_window(
    server: &service::ServerProcess,
    table_id: &[u8],
    pool: &Arc<Vec<Vec<u8>>>,
    load: &Load,
    concurrency: usize,
    sources: u8,
) -> anyhow::Result<Window> {
    let batch = load.batch;
    let w = load::drive(server, table_id, concurrency, sources, load.duration, |c| {
        load::from_pool(pool, batch, c)
    })
    .await?;
    eprintln!(
        "concurrency {concurrency} from {} sources: {:.0} vouchers/s, p50 {:.0} µs, p99 {:.0} µs, server {:.2} CPU-µs/voucher, {} tries refused for memory",
        w.sources, w.vouchers_per_s, w.p50_us, w.p99_us, w.server_cpu_us_per_voucher, w.refused
    );
    Ok(w)
}

/// The window with the most vouchers per second.
fn best(windows: &[Window]) -> anyhow::Result<&Window> {
    windows
        .iter()
        .max_by(|a, b| a.vouchers_per_s.total_cmp(&b.vouchers_per_s))
        .context("no load window")
}

/// OpenMined PSI's figures (`benches/peers/run.sh`), as it prints them.
fn peer(quick: bool) -> anyhow::Result<serde_json::Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/run.sh");
    let n = if quick {
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
    serde_json::from_slice::<serde_json::Value>(&out.stdout).context("peer output")
}

/// Every figure of the run, for the report.
struct Figures {
    quick: bool,
    entries: usize,
    k: u8,
    batch: usize,
    seconds: f64,
    cores: usize,
    floors: Floors,
    server_match_us: f64,
    client_voucher_us: f64,
    /// The served table's last.
    builds: Vec<Build>,
    build_peak_rss: u64,
    table_bytes: f64,
    /// Single-voucher latencies at low load, µs.
    single: Vec<f64>,
    /// The concurrency sweep, from `--sources` source addresses.
    windows: Vec<Window>,
    /// The best window's concurrency from one source (when `--sources` is
    /// more than one): the fair share's cap, not the server's.
    single_source: Option<Window>,
    server_peak_rss: u64,
    peer: Option<serde_json::Value>,
}

impl Figures {
    /// The sweep's window with the most vouchers per second.
    fn best(&self) -> anyhow::Result<&Window> {
        best(&self.windows)
    }

    /// Every window: the sweep, then the single-source one.
    fn all_windows(&self) -> impl Iterator<Item = &Window> {
        self.windows.iter().chain(&self.single_source)
    }

    /// The served table's build rate, entries per second (all cores).
    fn build_entries_per_s(&self) -> anyhow::Result<f64> {
        let main_build = self.builds.last().context("a build")?;
        Ok(main_build.entries as f64 / main_build.seconds)
    }

    /// The end-to-end floor: every core at the server's floor per voucher.
    fn e2e_floor(&self) -> f64 {
        self.cores as f64 * 1e6 / self.floors.server_us()
    }

    /// Ours against OpenMined PSI's, per item and core: (build speedup,
    /// match speedup, its setup µs, its processing µs).
    fn peer_ratios(&self) -> anyhow::Result<Option<(f64, f64, f64, f64)>> {
        // Per item, one core each: our build per entry per core, and our match.
        let build_us_per_core = self.cores as f64 * 1e6 / self.build_entries_per_s()?;
        Ok(self.peer.as_ref().and_then(|p| {
            let setup = p["setup_us_per_item"].as_f64()?;
            let process = p["process_us_per_item"].as_f64()?;
            Some((
                setup / build_us_per_core,
                process / self.server_match_us,
                setup,
                process,
            ))
        }))
    }
}

impl Figures {
    /// The figures as JSON (`--json`); `started` is when the run began.
    fn json(&self, started: Instant) -> anyhow::Result<serde_json::Value> {
        let (cores, floors, entries) = (self.cores, &self.floors, self.entries);
        let best = self.best()?;
        let floor_server_us = floors.server_us();
        let floor_build_us = floors.build_us();
        let build_entries_per_s = self.build_entries_per_s()?;
        let build_ratio = (build_entries_per_s / cores as f64) / (1e6 / floor_build_us);
        let client_floor_us = floors.client_us(self.k);
        let mut doc = json!({
            "cpu": machine::cpu_model(),
            "cores": cores,
            "backend": machine::backend(),
            "arithmetic": machine::arithmetic().to_string(),
            "quick": self.quick,
            "entries": entries,
            "k": self.k,
            "batch": self.batch,
            "window_s": self.seconds,
            "floor_server_us": round(floor_server_us, 3),
            "server_match_us": round(self.server_match_us, 3),
            "server_match_ratio": round(floor_server_us / self.server_match_us, 3),
            "floor_build_us": round(floor_build_us, 3),
            "build_entries_per_s": round(build_entries_per_s, 0),
            "build_ratio": round(build_ratio, 3),
            "build_peak_rss_bytes": self.build_peak_rss,
            "builds": self.builds.iter().map(|b| json!({"entries": b.entries, "seconds": round(b.seconds, 3)})).collect::<Vec<_>>(),
            "e2e_vouchers_per_s": round(best.vouchers_per_s, 0),
            "e2e_concurrency": best.concurrency,
            "e2e_ratio": round(best.vouchers_per_s / self.e2e_floor(), 3),
            "latency_p50_us": round(percentile(&self.single, 50.0), 1),
            "latency_p99_us": round(percentile(&self.single, 99.0), 1),
            "server_peak_rss_bytes": self.server_peak_rss,
            "table_bytes": self.table_bytes,
            "table_bytes_per_entry": round(self.table_bytes / entries as f64, 2),
            "client_voucher_us": round(self.client_voucher_us, 2),
            "client_floor_us": round(client_floor_us, 2),
            "client_ratio": round(self.client_voucher_us / client_floor_us, 3),
            "floors_us": {
                "varbase_mul": round(floors.varbase_mul_us, 3),
                "fixed_base_mul": round(floors.fixed_base_mul_us, 3),
                "decompress": round(floors.decompress_us, 3),
                "batch_compress": round(floors.batch_compress_us, 3),
                "hash_to_group": round(floors.hash_to_group_us, 3),
                "kdf": round(floors.kdf_us, 3),
                "aead_open": round(floors.aead_open_us, 3),
            },
            "load": self.all_windows().map(|w| json!({
                "concurrency": w.concurrency,
                "sources": w.sources,
                "vouchers_per_s": round(w.vouchers_per_s, 0),
                "submissions_per_s": round(w.submissions_per_s, 1),
                "latency_p50_us": round(w.p50_us, 0),
                "latency_p99_us": round(w.p99_us, 0),
                "latency_p999_us": round(w.p999_us, 0),
                "server_cpu_us_per_voucher": round(w.server_cpu_us_per_voucher, 2),
                "server_cpu_over_match": round(w.server_cpu_us_per_voucher / self.server_match_us, 3),
                "tries_refused_for_memory": w.refused,
            })).collect::<Vec<_>>(),
            "seconds_total": round(started.elapsed().as_secs_f64(), 1),
        });
        // Beside the others (one json! of them all is past its macro's
        // recursion limit).
        doc["e2e_sources"] = json!(best.sources);
        doc["e2e_server_cpu_us_per_voucher"] = json!(round(best.server_cpu_us_per_voucher, 2));
        doc["e2e_server_cpu_over_match"] = json!(round(
            best.server_cpu_us_per_voucher / self.server_match_us,
            3
        ));
        doc["e2e_single_source_vouchers_per_s"] = json!(
            self.single_source
                .as_ref()
                .map(|w| round(w.vouchers_per_s, 0))
        );
        if let (Some(p), Some((b, m, _, _))) = (&self.peer, self.peer_ratios()?) {
            doc["peer"] = p.clone();
            doc["peer_build_speedup"] = json!(round(b, 2));
            doc["peer_match_speedup"] = json!(round(m, 2));
        }
        Ok(doc)
    }

    /// The Markdown summary (printed, and `--markdown`).
    fn markdown(&self) -> anyhow::Result<String> {
        let (cores, entries, k) = (self.cores, self.entries, self.k);
        let best = self.best()?;
        let floor_server_us = self.floors.server_us();
        let floor_build_us = self.floors.build_us();
        let server_match_us = self.server_match_us;
        let server_match_ratio = floor_server_us / server_match_us;
        let build_entries_per_s = self.build_entries_per_s()?;
        let build_ratio = (build_entries_per_s / cores as f64) / (1e6 / floor_build_us);
        let e2e_ratio = best.vouchers_per_s / self.e2e_floor();
        let client_voucher_us = self.client_voucher_us;
        let client_floor_us = self.floors.client_us(k);
        let mut md = String::new();
        md.push_str(&format!(
            "### blindmatch-bench{}\n\n{} · {} cores · backend {} · arithmetic {} · {} entries, k = {}, batches of {}, {} s windows\n\n",
            if self.quick { " --quick" } else { "" },
            machine::cpu_model(),
            cores,
            machine::backend(),
            machine::arithmetic(),
            entries,
            k,
            self.batch,
            self.seconds
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
            "| end to end over loopback gRPC (concurrency {}, {} sources) | {:.0} vouchers/s | {:.0} vouchers/s ({cores} × floor) | {e2e_ratio:.2} |\n",
            best.concurrency,
            best.sources,
            best.vouchers_per_s,
            self.e2e_floor()
        ));
        md.push_str(&format!(
            "| client voucher creation (k = {k}) | {client_voucher_us:.1} µs | {client_floor_us:.1} µs | {:.2}x |\n",
            client_voucher_us / client_floor_us
        ));
        md.push_str(&format!(
            "\nSingle voucher at low load: p50 {:.0} µs, p99 {:.0} µs. Table: {:.1} bytes/entry. Peak RSS: build {:.0} MiB (this process), server {:.0} MiB.\n\n",
            percentile(&self.single, 50.0),
            percentile(&self.single, 99.0),
            self.table_bytes / entries as f64,
            self.build_peak_rss as f64 / 1048576.0,
            self.server_peak_rss as f64 / 1048576.0
        ));
        md.push_str("| concurrency | sources | vouchers/s | submissions/s | p50 | p99 | p99.9 | server CPU µs/voucher | × match | tries refused for memory |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
        for w in self.all_windows() {
            md.push_str(&format!(
                "| {} | {} | {:.0} | {:.0} | {:.0} µs | {:.0} µs | {:.0} µs | {:.2} | {:.2} | {} |\n",
                w.concurrency,
                w.sources,
                w.vouchers_per_s,
                w.submissions_per_s,
                w.p50_us,
                w.p99_us,
                w.p999_us,
                w.server_cpu_us_per_voucher,
                w.server_cpu_us_per_voucher / server_match_us,
                w.refused
            ));
        }
        md.push_str(
            "\n× match: the server's CPU per voucher over its match time in process (the first row above). \
             One source is held to half the server's memory budget by design (its fair share); a row from one source measures that cap.\n",
        );
        if let Some((b, m, setup, process)) = self.peer_ratios()? {
            let build_us_per_core = cores as f64 * 1e6 / build_entries_per_s;
            md.push_str(&format!(
                "\nAgainst OpenMined PSI (P-256, one thread): table build {build_us_per_core:.1} µs/entry/core against its setup {setup:.1} µs/item ({b:.2}x faster); \
                 match {server_match_us:.1} µs/voucher against its request processing {process:.1} µs/item ({m:.2}x faster).\n"
            ));
        }
        md.push_str("\n| build entries | seconds | µs/entry |\n| --- | --- | --- |\n");
        for b in &self.builds {
            md.push_str(&format!(
                "| {} | {:.2} | {:.2} |\n",
                b.entries,
                b.seconds,
                b.seconds * 1e6 / b.entries as f64
            ));
        }
        Ok(md)
    }

    /// The SVG chart (`--svg`): throughput against concurrency, with the
    /// floor, and build time per entry against the table's size.
    fn svg(&self) -> String {
        let tput: Vec<(f64, f64)> = self
            .windows
            .iter()
            .map(|w| (w.concurrency as f64, w.vouchers_per_s))
            .collect();
        let scaling: Vec<(f64, f64)> = self
            .builds
            .iter()
            .map(|b| (b.entries as f64, b.seconds * 1e6 / b.entries as f64))
            .collect();
        let floor_line = self.e2e_floor();
        let floor_label = format!("floor: {floor_line:.0}/s");
        chart::render(&[
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
        ])
    }
}
