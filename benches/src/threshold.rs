//! `blindmatch-threshold-bench`: threshold mode (SPEC Section 14) through the
//! real server, against the floor measured in the same run.
//!
//! For each synthetic bound s it signs one table as a version-2 manifest
//! (t = 30 by default), starts `blindmatch-server serve` on it, makes a pool
//! of account-bound vouchers in process (timing the client), and drives C
//! concurrent streams of batches for D seconds ([`blindmatch_benches::load`]). Most accounts hold a few
//! matches (below t: candidates only); a few hold more than t, so that the
//! server detects, reconstructs and reveals during the run. It reports
//! vouchers per second and the server's CPU time per voucher, each as a
//! ratio to the floor (one variable-base multiplication, a decompression, a
//! batch compression and the KDF per voucher, as for version 1), and reads
//! back with `blindmatch-server matches --accounts --json` what was revealed.
//!
//! Build first: `cargo build --release -p blindmatch-server -p blindmatch-benches`,
//! then `target/release/blindmatch-threshold-bench --quick`.

#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    reason = "benchmark arithmetic on counts and times"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use blindmatch_benches::args::{Load, Served};
use blindmatch_benches::floor::Floors;
use blindmatch_benches::items::sha_items;
use blindmatch_benches::load::{self, Payload, Window};
use blindmatch_benches::{machine, service};
use blindmatch_client_core::{AccountSecret, SyntheticRate, Table, Upload};
use blindmatch_protocol::manifest::ThresholdParams;
use blindmatch_protocol::threshold::{placement_weights, threshold_voucher_len};
use blindmatch_protocol::{BuiltTable, ClientTable, Item, TableBuilder};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "blindmatch-threshold-bench",
    about = "Threshold mode through the real server, against the physical floor"
)]
#[command(mut_arg("entries", |a| a
    .help("Entries in the table (20,000 with --quick)")
    .default_value_if("quick", "true", "20000")))]
#[command(mut_arg("batch", |a| a
    .help("Vouchers per submission (one batch per account in the pool)")))]
#[command(mut_arg("duration", |a| a
    .help("Seconds of load per s (5 with --quick)")
    .default_value("15")
    .default_value_if("quick", "true", "5")))]
struct Args {
    /// A short run (about a minute on 2 cores).
    #[arg(long)]
    quick: bool,
    #[command(flatten)]
    served: Served,
    /// The threshold t.
    #[arg(long, default_value_t = 30)]
    threshold: u16,
    /// Synthetic bounds s to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = vec![0u16, 60, 90])]
    synthetic_bound: Vec<u16>,
    /// Accounts in the pool.
    #[arg(long, default_value_t = 32)]
    accounts: usize,
    /// Of them, accounts that cross the threshold (all their uploads listed).
    #[arg(long, default_value_t = 2)]
    crossing: usize,
    #[command(flatten)]
    load: Load,
    /// Concurrent submission streams.
    #[arg(long)]
    concurrency: Option<usize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    if args.crossing > args.accounts
        || args.load.batch <= usize::from(args.threshold) && args.crossing > 0
    {
        anyhow::bail!(
            "--crossing must be at most --accounts, and --batch above t for an account to cross"
        );
    }
    eprintln!("blindmatch-threshold-bench: {}", machine::summary());
    let floors = Floors::measure(if args.quick { 0.3 } else { 1.0 });

    let root = tempfile::tempdir()?;
    let bench = Bench::new(&args, root.path())?;
    let mut rows = Vec::new();
    for &s in &args.synthetic_bound {
        rows.push(bench.measure(s).await?);
    }
    report(&args, bench.k, floors.server_us(), &rows);
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// What every synthetic bound is measured with: one table, built once.
struct Bench<'a> {
    args: &'a Args,
    server_bin: PathBuf,
    /// The server key's file; each s has a directory of its own under `root`.
    key_path: PathBuf,
    root: &'a Path,
    built: BuiltTable,
    /// The table's placement weights, for its threshold parameters.
    weights: Vec<u32>,
    client_table: ClientTable,
    k: u8,
    /// One unlisted item per upload in the pool.
    probes: Vec<Item>,
}

/// The figures of one synthetic bound s.
struct Row {
    s: u16,
    voucher_len: usize,
    client_us: f64,
    window: Window,
    revealed: usize,
    below: usize,
    candidates: u64,
}

/// One account's batch, sent again and again.
struct Batch {
    account_id: Vec<u8>,
    vouchers: Vec<Vec<u8>>,
}

impl<'a> Bench<'a> {
    /// Writes the server key under `root` and builds the table.
    fn new(args: &'a Args, root: &'a Path) -> anyhow::Result<Self> {
        let server_bin = args.served.bin()?;
        let key_path = root.join("server.key");
        let key = blindmatch_server::keyfile::write_new(&key_path)?;
        let items = sha_items(args.served.entries, "threshold bench entry");
        let built = TableBuilder::new([7; 32]).build(&key, items)?;
        let weights = placement_weights(&built);
        let client_table = ClientTable::new(built.table.clone())?;
        let k = built.table.header().k;
        let probes = sha_items(args.accounts * args.load.batch, "threshold bench probe");
        Ok(Bench {
            args,
            server_bin,
            key_path,
            root,
            built,
            weights,
            client_table,
            k,
            probes,
        })
    }

    /// Signs the table with threshold parameters (t, `s`), makes the pool,
    /// serves it under load, and reads back what was revealed.
    async fn measure(&self, s: u16) -> anyhow::Result<Row> {
        let args = self.args;
        let params = ThresholdParams::new(args.threshold, s, &self.weights)?;
        let dir = self.root.join(format!("s{s}"));
        std::fs::create_dir_all(&dir)?;
        std::fs::copy(&self.key_path, dir.join("server.key"))?;
        let (_, manifest) = service::write_table_with(&dir, &self.built, Some(params))?;
        let table = Table::new(self.client_table.clone(), &manifest)?;
        let (pool, client_us) = self.pool(&table, s)?;

        let server = service::start(&self.server_bin, &dir, args.load.batch)?;
        let pool = Arc::new(pool);
        let concurrency = args.concurrency.unwrap_or(8);
        let window = load::drive(
            &server,
            &self.built.table.id().0,
            concurrency,
            args.load.sources,
            args.load.duration,
            |c| {
                let pool = Arc::clone(&pool);
                let mut at = c % pool.len();
                move || {
                    let b = &pool[at];
                    at = (at + 1) % pool.len();
                    Payload {
                        vouchers: b.vouchers.clone(),
                        account_id: b.account_id.clone(),
                    }
                }
            },
        )
        .await?;
        drop(server);
        let (accounts, revealed, candidates) = revealed(&self.server_bin, &dir)?;
        eprintln!(
            "s = {s}: {:.0} vouchers/s, server {:.2} CPU-µs/voucher, client {client_us:.1} µs/voucher; {revealed} accounts revealed, {} with {candidates} candidates below t",
            window.vouchers_per_s,
            window.server_cpu_us_per_voucher,
            accounts - revealed
        );
        Ok(Row {
            s,
            voucher_len: threshold_voucher_len(self.k, s),
            client_us,
            window,
            revealed,
            below: accounts - revealed,
            candidates,
        })
    }

    /// The pool: one batch per account, and the client's time per voucher.
    /// Accounts below t hold one listed upload in 32; crossing accounts only
    /// listed ones. A synthetic rate of s / 4 per batch keeps the expected
    /// synthetic count well under s (SPEC 14.5), none with s = 0.
    fn pool(&self, table: &Table, s: u16) -> anyhow::Result<(Vec<Batch>, f64)> {
        let (args, batch) = (self.args, self.args.load.batch);
        let rate = if s == 0 {
            SyntheticRate::NONE
        } else {
            SyntheticRate::from_probability((f64::from(s) / 4.0 / batch as f64).min(1.0))
        };
        let mut pool = Vec::with_capacity(args.accounts);
        let mut listed = self.built.entries.iter().step_by(7);
        let mut made = 0usize;
        let mut client_seconds = 0.0;
        for a in 0..args.accounts {
            let id = format!("bench-account-{a}").into_bytes();
            let account = AccountSecret::generate(&id, rate, &mut rand::rng())?;
            let crossing = a < args.crossing;
            let uploads: Vec<Upload> = (0..batch)
                .map(|i| {
                    let n = a * batch + i;
                    let item = if crossing || i % 32 == 0 {
                        listed
                            .next()
                            .cloned()
                            .unwrap_or_else(|| self.probes[n].clone())
                    } else {
                        self.probes[n].clone()
                    };
                    let mut voucher_id = [0u8; 16];
                    voucher_id[..8].copy_from_slice(&(n as u64).to_be_bytes());
                    Upload {
                        voucher_id,
                        item,
                        associated_data: format!("bench upload {n}").into_bytes(),
                    }
                })
                .collect();
            let clock = Instant::now();
            let submission = table.account_submission(&account, &uploads, &mut rand::rng())?;
            client_seconds += clock.elapsed().as_secs_f64();
            made += submission.vouchers.len();
            pool.push(Batch {
                account_id: id,
                vouchers: submission.vouchers,
            });
        }
        Ok((pool, client_seconds * 1e6 / made as f64))
    }
}

/// What the server revealed, from `blindmatch-server matches --accounts
/// --json` on its data directory: (accounts, accounts revealed, candidates
/// of the accounts below t).
fn revealed(server_bin: &Path, dir: &Path) -> anyhow::Result<(usize, usize, u64)> {
    let out = Command::new(server_bin)
        .args(["matches", "--accounts", "--json", "--data"])
        .arg(dir.join("data"))
        .output()
        .context("blindmatch-server matches")?;
    if !out.status.success() {
        anyhow::bail!(
            "blindmatch-server matches: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let accounts: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).context("matches --accounts --json")?;
    let revealed = accounts
        .iter()
        .filter(|a| a["real"].as_u64().unwrap_or(0) > 0)
        .count();
    let candidates: u64 = accounts
        .iter()
        .map(|a| a["unrevealed"].as_u64().unwrap_or(0))
        .sum();
    Ok((accounts.len(), revealed, candidates))
}

/// Prints the Markdown summary.
fn report(args: &Args, k: u8, floor_server_us: f64, rows: &[Row]) {
    let cores = machine::cores();
    let (entries, t) = (args.served.entries, args.threshold);
    let (concurrency, seconds) = (args.concurrency.unwrap_or(8), args.load.duration);
    let sources = concurrency.min(usize::from(args.load.sources));
    println!(
        "### blindmatch-threshold-bench{}\n\n{} · {} cores · backend {} · {entries} entries, k = {k}, t = {t}, {} accounts ({} crossing) × {} uploads, {concurrency} streams from {sources} source addresses, {seconds} s windows\n",
        if args.quick { " --quick" } else { "" },
        machine::cpu_model(),
        cores,
        machine::backend(),
        args.accounts,
        args.crossing,
        args.load.batch,
    );
    println!(
        "Floor per voucher on the server: {floor_server_us:.2} µs (one core); end to end: {:.0} vouchers/s ({cores} × floor).\n",
        cores as f64 * 1e6 / floor_server_us
    );
    println!(
        "| s | voucher bytes | client µs/voucher | vouchers/s | ratio to {cores} × floor | server CPU µs/voucher | floor / CPU | accounts revealed | accounts below t (candidates) |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for r in rows {
        let w = &r.window;
        println!(
            "| {} | {} | {:.1} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} ({}) |",
            r.s,
            r.voucher_len,
            r.client_us,
            w.vouchers_per_s,
            w.vouchers_per_s / (cores as f64 * 1e6 / floor_server_us),
            w.server_cpu_us_per_voucher,
            floor_server_us / w.server_cpu_us_per_voucher,
            r.revealed,
            r.below,
            r.candidates
        );
    }
}
