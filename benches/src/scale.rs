//! `blindmatch-scale`: what an operator and a client meet at 10^7 entries.
//!
//! Everything runs as the operator and an app would run it: the real
//! `blindmatch-server` builds the table from a list file and the next
//! version from a list with a daily change (`build --base`), serves it, and
//! takes a load of vouchers; the real `blindmatch` CLI client fetches and
//! validates it, and so does the Node ready client on the WebAssembly core. Each child
//! process is timed, and its peak memory read from the kernel when it is
//! reaped (`wait4(2)`, through a fresh copy of this binary: `run_measured`), so
//! no figure includes this benchmark's own memory.
//!
//! The goals (issue 26) are printed next to each figure with their ratio:
//! build under 5 minutes on 2 cores, server RSS under the table file + 300
//! MiB, client peak memory under 1.5 x the table it downloads.
//!
//! Build first: `cargo build --release -p blindmatch-server -p blindmatch-client
//! -p blindmatch-benches`; for the WebAssembly row, `bindings/js/test.sh`
//! (it leaves the npm package installed in `$CARGO_TARGET_DIR/bindings/js/scratch`).

#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    reason = "benchmark arithmetic on counts, bytes and times"
)]

use std::fmt::Write as _;
use std::io::{BufWriter, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use blindmatch_benches::args::{Json, Load, Markdown};
use blindmatch_benches::load;
use blindmatch_benches::machine;
use blindmatch_benches::service::{ServerProcess, server_bin};
use blindmatch_client::{Client, Fetched, TableCache};
use blindmatch_protocol::{ClientTable, Item, ItemType, OperatorVerifyingKey};
use clap::Parser;
use serde_json::json;
use sha2::{Digest, Sha256};

#[derive(Parser, Debug)]
#[command(
    name = "blindmatch-scale",
    about = "Build, update, serve, match and validate a table of --entries entries with the real binaries"
)]
struct Args {
    /// Entries in version 1.
    #[arg(long, default_value_t = 10_000_000)]
    entries: usize,
    /// The daily change, as a fraction of the entries: half of it removed, half added.
    #[arg(long, default_value_t = 0.001)]
    change: f64,
    /// Directory of `blindmatch-server` and `blindmatch` [default: this binary's].
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// A directory where Node resolves the `blindmatch` npm package (for the WebAssembly
    /// row) [default: $CARGO_TARGET_DIR/bindings/js/scratch if it has one].
    #[arg(long, value_name = "DIR")]
    wasm_dir: Option<PathBuf>,
    /// Leave out the WebAssembly row.
    #[arg(long, conflicts_with = "wasm_dir")]
    skip_wasm: bool,
    /// Where to put the lists, tables and store (several GB at 10^7) [default: a temporary
    /// directory].
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Concurrent submission streams of the match load.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    #[command(flatten)]
    load: Load,
    #[command(flatten)]
    json: Json,
    #[command(flatten)]
    markdown: Markdown,
}

/// A child process's wall time and peak resident set, from `wait4`.
struct Measured {
    seconds: f64,
    peak_rss: u64,
    stdout: String,
}

/// The hidden first argument that makes this binary [`measure_child`].
const MEASURE: &str = "--measure-child";
/// Where [`measure_child`] writes the child's peak, in bytes.
const PEAK_FILE: &str = "BLINDMATCH_SCALE_PEAK_FILE";

/// Runs `cmd` to its end; its stdout is captured, its stderr passed on.
///
/// Not as our own child: Linux starts a child's `ru_maxrss` at its
/// parent's peak (exec records the high-water mark of the memory it
/// replaces, a copy of the parent's), and this process holds a 10^7-entry
/// table by then. A fresh copy of this binary, small, runs `cmd` instead
/// and reports its peak ([`measure_child`]).
fn run_measured(what: &str, cmd: &mut Command) -> anyhow::Result<Measured> {
    let peak_file = tempfile::NamedTempFile::new()?;
    let mut via = Command::new(std::env::current_exe()?);
    via.arg(MEASURE).arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => via.env(k, v),
            None => via.env_remove(k),
        };
    }
    via.env(PEAK_FILE, peak_file.path());
    let started = Instant::now();
    let out = via
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("starting {what}"))?;
    let seconds = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    ensure!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}",
        out.status
    );
    let peak_rss = std::fs::read_to_string(peak_file.path())?
        .trim()
        .parse()
        .with_context(|| format!("{what}: no peak reported"))?;
    Ok(Measured {
        seconds,
        peak_rss,
        stdout,
    })
}

/// `blindmatch-scale --measure-child PROGRAM ARGS...`: runs the program with
/// this process's stdio, writes its peak resident set (`wait4`) to the file
/// `$BLINDMATCH_SCALE_PEAK_FILE`, and exits with its status.
fn measure_child(mut args: impl Iterator<Item = std::ffi::OsString>) -> anyhow::Result<()> {
    let program = args.next().context("--measure-child: no program")?;
    let mut child = Command::new(&program)
        .args(args)
        .env_remove(PEAK_FILE)
        .spawn()
        .with_context(|| format!("starting {}", program.to_string_lossy()))?;
    let used = wait4::Wait4::wait4(&mut child).context("wait4")?;
    let file = std::env::var_os(PEAK_FILE).context("no peak file named")?;
    std::fs::write(file, used.rusage.maxrss.to_string())?;
    std::process::exit(used.status.code().unwrap_or(1));
}

/// The benchmark's entries: SHA-256 of `"{salt} {i}"`, as list lines.
fn item_value(salt: &str, i: usize) -> [u8; 32] {
    Sha256::digest(format!("{salt} {i}")).into()
}

fn write_list(path: &Path, parts: &[(&str, std::ops::Range<usize>)]) -> anyhow::Result<usize> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut n = 0;
    let mut line = String::with_capacity(80);
    for (salt, range) in parts {
        for i in range.clone() {
            line.clear();
            line.push_str("sha256 ");
            line.push_str(&hex::encode(item_value(salt, i)));
            line.push('\n');
            out.write_all(line.as_bytes())?;
            n += 1;
        }
    }
    out.flush()?;
    Ok(n)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

/// `GET path` on the admin listener; the status code.
fn http_status(addr: &str, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `serve` on the table file `table`; returns once `/ready` says 200, with
/// the seconds that took.
fn start_server(
    bin: &Path,
    dir: &Path,
    table: &Path,
    batch: usize,
) -> anyhow::Result<(ServerProcess, String, f64)> {
    let port = free_port()?;
    let admin = format!("127.0.0.1:{}", free_port()?);
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args(["serve", "--plaintext", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--admin-listen", &admin, "--max-batch", &batch.to_string()])
        .arg("--table")
        .arg(table)
        .arg("--key")
        .arg(dir.join("server.key"))
        .arg("--data")
        .arg(dir.join("data"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting blindmatch-server serve")?;
    let deadline = started + Duration::from_secs(600);
    while http_status(&admin, "/ready") != Some(200) {
        if let Some(status) = child.try_wait()? {
            bail!("the server exited before it was ready: {status}");
        }
        ensure!(
            Instant::now() < deadline,
            "the server was not ready in 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let ready = started.elapsed().as_secs_f64();
    let server = ServerProcess {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    Ok((server, admin, ready))
}

/// What the run measured.
#[derive(Default)]
struct Figures {
    list_bytes: u64,
    build_s: f64,
    build_peak: u64,
    table_file: u64,
    table_public: u64,
    update_s: f64,
    update_peak: u64,
    update_line: String,
    delta_bytes: u64,
    delta_slots: usize,
    refresh_s: f64,
    start_s: f64,
    rss_ready: u64,
    rss_loaded: u64,
    rss_grace: u64,
    server_peak: u64,
    vouchers_per_s: f64,
    cpu_us: f64,
    p99_us: f64,
    fetch_s: f64,
    validate_s: f64,
    cli_s: f64,
    cli_peak: u64,
    wasm: Option<(f64, u64)>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut argv = std::env::args_os().skip(1);
    if argv.next().is_some_and(|a| a == MEASURE) {
        return measure_child(argv);
    }
    let args = Args::parse();
    ensure!(args.entries >= 2000, "--entries: at least 2000");
    ensure!(
        args.change > 0.0 && args.change <= 1.0,
        "--change: a fraction in (0, 1]"
    );
    let bin_dir = match &args.bin_dir {
        Some(d) => d.clone(),
        None => server_bin(None)?
            .parent()
            .context("this binary's directory")?
            .to_path_buf(),
    };
    let server = bin_dir.join("blindmatch-server");
    let cli = bin_dir.join("blindmatch");
    let tmp;
    let dir = match &args.work_dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let n = args.entries;
    let half = ((n as f64 * args.change) / 2.0).round().max(1.0) as usize;
    println!("machine: {}", machine::summary());
    let mut f = Figures::default();

    // The operator's keys and lists.
    for (out, signing) in [("server.key", false), ("operator.sign", true)] {
        let mut c = Command::new(&server);
        c.args(["keygen", "--out"]).arg(dir.join(out));
        if signing {
            c.arg("--signing");
        }
        run_measured("keygen", &mut c)?;
    }
    let operator = std::fs::read_to_string(dir.join("operator.sign.pub"))?;
    let operator = operator.trim().to_string();
    let t = Instant::now();
    write_list(&dir.join("v1.txt"), &[("entry", 0..n)])?;
    write_list(
        &dir.join("v2.txt"),
        &[("entry", half..n), ("added", 0..half)],
    )?;
    f.list_bytes = std::fs::metadata(dir.join("v1.txt"))?.len();
    eprintln!(
        "lists written in {:.1} s ({:.0} MiB)",
        t.elapsed().as_secs_f64(),
        mib(f.list_bytes)
    );

    // Version 1, then version 2 in place.
    let build = |list: &str, out: &str, base: Option<&str>| {
        let mut c = Command::new(&server);
        c.arg("build")
            .arg("--list")
            .arg(dir.join(list))
            .arg("--key")
            .arg(dir.join("server.key"))
            .arg("--signing-key")
            .arg(dir.join("operator.sign"))
            .arg("--out")
            .arg(dir.join(out));
        if let Some(b) = base {
            c.arg("--base").arg(dir.join(b));
        }
        run_measured("blindmatch-server build", &mut c)
    };
    let v1 = build("v1.txt", "v1.bmt", None)?;
    print!("{}", v1.stdout);
    (f.build_s, f.build_peak) = (v1.seconds, v1.peak_rss);
    f.table_file = std::fs::metadata(dir.join("v1.bmt"))?.len();
    let v2 = build("v2.txt", "v2.bmt", Some("v1.bmt"))?;
    print!("{}", v2.stdout);
    (f.update_s, f.update_peak) = (v2.seconds, v2.peak_rss);
    f.update_line = v2.stdout.lines().next().unwrap_or_default().to_string();

    // Serve version 1; the bench's client downloads and validates it.
    std::fs::copy(dir.join("v1.bmt"), dir.join("table.bmt"))?;
    let (srv, _admin, ready) =
        start_server(&server, &dir, &dir.join("table.bmt"), args.load.batch)?;
    f.start_s = ready;
    let pid = srv.child.id();
    f.rss_ready = machine::rss_bytes(pid).unwrap_or(0);
    println!(
        "server ready in {ready:.1} s, RSS {:.0} MiB",
        mib(f.rss_ready)
    );
    let key: OperatorVerifyingKey = blindmatch_client::core::operator_key_from_hex(&operator)?;
    let cache = TableCache::new(dir.join("bench-cache"));
    let mut client = Client::connect(&srv.url, key).await?;
    let m1 = client.manifest().await?;
    let t = Instant::now();
    let (t1, how) = client.fetch_table(&m1, &cache).await?;
    f.fetch_s = t.elapsed().as_secs_f64();
    ensure!(
        matches!(how, Fetched::Full { .. }),
        "version 1 not downloaded in full"
    );
    f.table_public = t1.encode().len() as u64;
    let t = Instant::now();
    let c1 = ClientTable::new(t1)?;
    f.validate_s = t.elapsed().as_secs_f64();
    println!(
        "client (in process): download {:.1} s, validation {:.1} s",
        f.fetch_s, f.validate_s
    );

    // Match load: one voucher in a hundred for a listed item.
    let mut rng = rand::rng();
    let pool: Vec<Vec<u8>> = (0..8192)
        .map(|i| {
            let (salt, j) = if i % 100 == 0 {
                ("entry", n - 1 - i)
            } else {
                ("probe", i)
            };
            let item = Item::new(ItemType::Sha256, &item_value(salt, j))?;
            Ok(c1
                .create_voucher(&item, format!("scale {i}").as_bytes(), &mut rng)?
                .encode())
        })
        .collect::<anyhow::Result<_>>()?;
    let pool = Arc::new(pool);
    let batch = args.load.batch;
    let w = load::drive(
        &srv,
        &m1.table_id().0,
        args.concurrency,
        args.load.sources,
        args.load.duration,
        |c| load::from_pool(&pool, batch, c),
    )
    .await?;
    (f.vouchers_per_s, f.cpu_us, f.p99_us) =
        (w.vouchers_per_s, w.server_cpu_us_per_voucher, w.p99_us);
    f.rss_loaded = machine::rss_bytes(pid).unwrap_or(0);
    println!(
        "match load ({} streams x {batch} from {} sources): {:.0} vouchers/s, server {:.1} CPU-us/voucher, p99 {:.0} us, RSS {:.0} MiB",
        args.concurrency,
        w.sources,
        w.vouchers_per_s,
        w.server_cpu_us_per_voucher,
        w.p99_us,
        mib(f.rss_loaded)
    );

    // The real CLI client, from an empty cache: download and validation.
    let cli_run = run_measured(
        "blindmatch fetch",
        Command::new(&cli)
            .args(["fetch", "--server", &srv.url, "--operator-key", &operator])
            .arg("--cache")
            .arg(dir.join("cli-cache")),
    )?;
    (f.cli_s, f.cli_peak) = (cli_run.seconds, cli_run.peak_rss);
    println!(
        "blindmatch fetch (download + validation, empty cache): {:.1} s, peak {:.0} MiB",
        f.cli_s,
        mib(f.cli_peak)
    );

    // Version 2: the server swaps on SIGHUP, the client refreshes by delta.
    let tmp_table = dir.join("table.bmt.new");
    std::fs::copy(dir.join("v2.bmt"), &tmp_table)?;
    std::fs::rename(&tmp_table, dir.join("table.bmt"))?;
    let c1 = blindmatch_client::Table::new(c1, m1.verified())?;
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()?;
    ensure!(status.success(), "kill -HUP failed");
    let deadline = Instant::now() + Duration::from_secs(600);
    let m2 = loop {
        let m = client.manifest().await?;
        if m.version() == 2 {
            break m;
        }
        ensure!(Instant::now() < deadline, "the server did not swap");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    f.rss_grace = machine::rss_bytes(pid).unwrap_or(0);
    let t = Instant::now();
    let (_c2, how) = client.refresh(&c1, &m2, &cache).await?;
    f.refresh_s = t.elapsed().as_secs_f64();
    let Fetched::Delta { slots, bytes, .. } = how else {
        bail!("version 2 did not come as a delta: {how:?}");
    };
    (f.delta_slots, f.delta_bytes) = (slots, bytes);
    f.server_peak = machine::peak_rss_bytes(pid).unwrap_or(0);

    // WebAssembly: the Node ready client (`blindmatch/client`), from an
    // empty cache, as an app's first refresh runs it: download, checks,
    // validation of every slot and the cache write, in one thread.
    let wasm_dir = args.wasm_dir.clone().or_else(|| {
        let d = PathBuf::from(std::env::var_os("CARGO_TARGET_DIR")?).join("bindings/js/scratch");
        (!args.skip_wasm && d.join("node_modules/blindmatch").exists()).then_some(d)
    });
    match wasm_dir {
        Some(wd) => {
            let script = wd.join("scale-refresh.mjs");
            std::fs::write(&script, WASM_SCRIPT)?;
            let r = run_measured(
                "node (the WebAssembly client's refresh)",
                Command::new("node")
                    .arg(&script)
                    .arg(&srv.url)
                    .arg(&operator)
                    .arg(dir.join("node-cache")),
            );
            let _ = std::fs::remove_file(&script);
            let r = r?;
            let seconds: f64 = r
                .stdout
                .trim()
                .parse()
                .with_context(|| format!("node printed {:?}", r.stdout))?;
            println!(
                "WebAssembly (Node client's refresh, empty cache): {seconds:.1} s, node peak {:.0} MiB",
                mib(r.peak_rss)
            );
            f.wasm = Some((seconds, r.peak_rss));
        }
        None if args.skip_wasm => println!("WebAssembly row left out (--skip-wasm)"),
        None => println!(
            "!! SKIPPED: WebAssembly row: no npm package (run bindings/js/test.sh, or give --wasm-dir)"
        ),
    }
    drop(srv);

    let md = f.report(&args, half);
    print!("\n{md}");
    args.markdown.write(&md)?;
    args.json
        .write(&(serde_json::to_string_pretty(&f.json(&args, half))? + "\n"))
}

/// The Node client's first refresh; prints its seconds.
const WASM_SCRIPT: &str = r#"import { Client } from "blindmatch/client";
const [url, operatorKey, cacheDir] = process.argv.slice(2);
const client = new Client(url, operatorKey, { cacheDir });
const t = performance.now();
await client.refresh();
console.log(((performance.now() - t) / 1000).toFixed(3));
client.close();
"#;

impl Figures {
    fn report(&self, args: &Args, half: usize) -> String {
        let table = self.table_public as f64;
        let server_goal = self.table_file + 300 * 1_048_576;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "| {} entries; daily change {} removed + {} added | measured | goal | ratio |",
            args.entries, half, half
        );
        let _ = writeln!(s, "| --- | ---: | ---: | ---: |");
        let mut row = |what: &str, measured: String, goal: String, ratio: String| {
            let _ = writeln!(s, "| {what} | {measured} | {goal} | {ratio} |");
        };
        row(
            "build (`blindmatch-server build`), wall / peak RSS",
            format!("{:.0} s / {:.0} MiB", self.build_s, mib(self.build_peak)),
            "300 s".into(),
            format!("{:.2}", self.build_s / 300.0),
        );
        row(
            "table file (server) / public table (clients)",
            format!(
                "{:.0} MiB / {:.0} MiB",
                mib(self.table_file),
                mib(self.table_public)
            ),
            String::new(),
            String::new(),
        );
        row(
            "next version (`build --base`), wall / peak RSS",
            format!("{:.1} s / {:.0} MiB", self.update_s, mib(self.update_peak)),
            String::new(),
            String::new(),
        );
        row(
            "delta to a client: bytes (changed slots) / refresh",
            format!(
                "{:.2} MiB ({} slots) / {:.2} s",
                mib(self.delta_bytes),
                self.delta_slots,
                self.refresh_s
            ),
            String::new(),
            format!(
                "{:.0}x smaller than the table",
                table / self.delta_bytes.max(1) as f64
            ),
        );
        row(
            "server start-up to ready / RSS when ready",
            format!("{:.1} s / {:.0} MiB", self.start_s, mib(self.rss_ready)),
            format!("RSS < {:.0} MiB", mib(server_goal)),
            format!("{:.2}", self.rss_ready as f64 / server_goal as f64),
        );
        row(
            "server RSS after the load / with both versions (grace) / peak",
            format!(
                "{:.0} / {:.0} / {:.0} MiB",
                mib(self.rss_loaded),
                mib(self.rss_grace),
                mib(self.server_peak)
            ),
            format!("< {:.0} MiB", mib(server_goal)),
            format!("{:.2}", self.rss_loaded as f64 / server_goal as f64),
        );
        row(
            "match throughput / server CPU per voucher / p99",
            format!(
                "{:.0} vouchers/s / {:.1} us / {:.0} ms",
                self.vouchers_per_s,
                self.cpu_us,
                self.p99_us / 1e3
            ),
            String::new(),
            String::new(),
        );
        row(
            "client, native (`blindmatch fetch`, empty cache): wall / peak RSS",
            format!("{:.1} s / {:.0} MiB", self.cli_s, mib(self.cli_peak)),
            format!("< {:.0} MiB", 1.5 * mib(self.table_public)),
            format!("{:.2} of the table", self.cli_peak as f64 / table),
        );
        row(
            "client, native, in process: download / validation",
            format!("{:.1} s / {:.1} s", self.fetch_s, self.validate_s),
            String::new(),
            String::new(),
        );
        if let Some((secs, peak)) = self.wasm {
            row(
                "client, WebAssembly (Node `Client.refresh`, empty cache): wall / peak RSS",
                format!("{secs:.1} s / {:.0} MiB", mib(peak)),
                format!("< {:.0} MiB", 1.5 * mib(self.table_public)),
                format!("{:.2} of the table", peak as f64 / table),
            );
        }
        s
    }

    fn json(&self, args: &Args, half: usize) -> serde_json::Value {
        json!({
            "machine": {"cpu": machine::cpu_model(), "cores": machine::cores(), "backend": machine::backend()},
            "entries": args.entries, "removed": half, "added": half,
            "list_bytes": self.list_bytes,
            "build": {"seconds": self.build_s, "peak_rss": self.build_peak},
            "table_bytes": {"file": self.table_file, "public": self.table_public},
            "update": {"seconds": self.update_s, "peak_rss": self.update_peak, "summary": self.update_line},
            "delta": {"bytes": self.delta_bytes, "slots": self.delta_slots, "refresh_seconds": self.refresh_s},
            "server": {"ready_seconds": self.start_s, "rss_ready": self.rss_ready, "rss_after_load": self.rss_loaded, "rss_grace": self.rss_grace, "peak_rss": self.server_peak},
            "load": {"concurrency": args.concurrency, "sources": args.concurrency.min(usize::from(args.load.sources)), "batch": args.load.batch, "seconds": args.load.duration, "vouchers_per_s": self.vouchers_per_s, "server_cpu_us_per_voucher": self.cpu_us, "p99_us": self.p99_us},
            "client_native": {"cli_fetch_seconds": self.cli_s, "cli_peak_rss": self.cli_peak, "download_seconds": self.fetch_s, "validate_seconds": self.validate_s},
            "client_wasm": self.wasm.map(|(s, p)| json!({"refresh_seconds": s, "node_peak_rss": p})),
        })
    }
}
