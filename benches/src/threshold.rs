//! `blindmatch-threshold-bench`: threshold mode (SPEC Section 14) through the
//! real server, against the floor measured in the same run.
//!
//! For each synthetic bound s it signs one table as a version-2 manifest
//! (t = 30 by default), starts `blindmatch-server serve` on it, makes a pool
//! of account-bound vouchers in process (timing the client), and drives C
//! concurrent streams of batches for D seconds. Most accounts hold a few
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

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use blindmatch_benches::floor::Floors;
use blindmatch_benches::items::sha_items;
use blindmatch_benches::submit::submit_admitted;
use blindmatch_benches::{machine, service};
use blindmatch_client::SubmissionId;
use blindmatch_client_core::{AccountSecret, SyntheticRate, Table, Upload};
use blindmatch_proto::v1::SubmitRequest;
use blindmatch_proto::v1::voucher_service_client::VoucherServiceClient;
use blindmatch_protocol::manifest::ThresholdParams;
use blindmatch_protocol::threshold::{placement_weights, threshold_voucher_len};
use blindmatch_protocol::{ClientTable, TableBuilder};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "blindmatch-threshold-bench",
    about = "Threshold mode through the real server, against the physical floor"
)]
struct Args {
    /// A short run (about a minute on 2 cores).
    #[arg(long)]
    quick: bool,
    /// Entries in the table.
    #[arg(long)]
    entries: Option<usize>,
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
    /// Vouchers per submission (one batch per account in the pool).
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Concurrent submission streams.
    #[arg(long)]
    concurrency: Option<usize>,
    /// Seconds of load per s.
    #[arg(long)]
    duration: Option<f64>,
    /// The server binary [default: blindmatch-server next to this binary].
    #[arg(long)]
    server_bin: Option<std::path::PathBuf>,
}

/// One account's batch, sent again and again.
struct Batch {
    account_id: Vec<u8>,
    vouchers: Vec<Vec<u8>>,
}

/// What one load window came to.
struct Window {
    vouchers_per_s: f64,
    server_cpu_us_per_voucher: f64,
}

async fn load(
    url: &str,
    pid: u32,
    table_id: &[u8],
    pool: &Arc<Vec<Batch>>,
    concurrency: usize,
    seconds: f64,
) -> anyhow::Result<Window> {
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let cpu0 = machine::cpu_seconds(pid).unwrap_or(0.0);
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..concurrency {
        let mut client = VoucherServiceClient::connect(url.to_string())
            .await?
            .max_decoding_message_size(16 << 20);
        let (stop, sent, pool, table_id) =
            (stop.clone(), sent.clone(), pool.clone(), table_id.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut at = c % pool.len();
            while !stop.load(Ordering::Relaxed) {
                let b = &pool[at];
                at = (at + 1) % pool.len();
                let request = SubmitRequest {
                    table_id: table_id.clone(),
                    vouchers: b.vouchers.clone(),
                    submission_id: SubmissionId::random(&mut rand::rng()).0.to_vec(),
                    account_id: b.account_id.clone(),
                };
                let r = submit_admitted(&mut client, request).await?;
                sent.fetch_add(u64::from(r.response.accepted), Ordering::Relaxed);
            }
            Ok::<_, tonic::Status>(())
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await??;
    }
    // Wait for the server to evaluate what it acknowledged, so that its CPU
    // time covers exactly these vouchers (as blindmatch-bench does).
    let idle_since = machine::wait_idle(pid).await;
    let vouchers = sent.load(Ordering::Relaxed) as f64;
    let elapsed = idle_since.duration_since(t0).as_secs_f64();
    let cpu = machine::cpu_seconds(pid).unwrap_or(0.0) - cpu0;
    Ok(Window {
        vouchers_per_s: vouchers / elapsed,
        server_cpu_us_per_voucher: cpu * 1e6 / vouchers.max(1.0),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let cores = machine::cores();
    let entries = args
        .entries
        .unwrap_or(if args.quick { 20_000 } else { 100_000 });
    let concurrency = args.concurrency.unwrap_or(8);
    let seconds = args.duration.unwrap_or(if args.quick { 5.0 } else { 15.0 });
    let server_bin = service::server_bin(args.server_bin.as_deref())?;
    let t = args.threshold;
    if args.crossing > args.accounts || args.batch <= usize::from(t) && args.crossing > 0 {
        anyhow::bail!(
            "--crossing must be at most --accounts, and --batch above t for an account to cross"
        );
    }
    eprintln!(
        "blindmatch-threshold-bench: {} ({} cores, backend {})",
        machine::cpu_model(),
        cores,
        machine::backend()
    );
    let floors = Floors::measure(if args.quick { 0.3 } else { 1.0 });
    let floor_server_us = floors.server_us();

    let root = tempfile::tempdir()?;
    let key_path = root.path().join("server.key");
    let key = blindmatch_server::keyfile::write_new(&key_path)?;
    let items = sha_items(entries, "threshold bench entry");
    let built = TableBuilder::new([7; 32]).build(&key, items)?;
    let weights = placement_weights(&built);
    let client_table = ClientTable::new(built.table.clone())?;
    let k = built.table.header().k;
    let probes = sha_items(args.accounts * args.batch, "threshold bench probe");

    let mut rows = Vec::new();
    for &s in &args.synthetic_bound {
        let params = ThresholdParams::new(t, s, &weights)?;
        let dir = root.path().join(format!("s{s}"));
        std::fs::create_dir_all(&dir)?;
        std::fs::copy(&key_path, dir.join("server.key"))?;
        let (_, manifest) = service::write_table_with(&dir, &built, Some(params))?;
        let table = Table::new(client_table.clone(), &manifest)?;

        // The pool: one batch per account. Accounts below t hold one listed
        // upload in 32; crossing accounts only listed ones. A synthetic
        // rate of s / 4 per batch keeps the expected synthetic count well
        // under s (SPEC 14.5), none with s = 0.
        let rate = if s == 0 {
            SyntheticRate::NONE
        } else {
            SyntheticRate::from_probability((f64::from(s) / 4.0 / args.batch as f64).min(1.0))
        };
        let mut pool = Vec::with_capacity(args.accounts);
        let mut listed = built.entries.iter().step_by(7);
        let mut made = 0usize;
        let mut client_seconds = 0.0;
        for a in 0..args.accounts {
            let id = format!("bench-account-{a}").into_bytes();
            let account = AccountSecret::generate(&id, rate, &mut rand::rng())?;
            let crossing = a < args.crossing;
            let uploads: Vec<Upload> = (0..args.batch)
                .map(|i| {
                    let n = a * args.batch + i;
                    let item = if crossing || i % 32 == 0 {
                        listed.next().cloned().unwrap_or_else(|| probes[n].clone())
                    } else {
                        probes[n].clone()
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
        let client_us = client_seconds * 1e6 / made as f64;

        let server = service::start(&server_bin, &dir, args.batch)?;
        let pid = server.child.id();
        let pool = Arc::new(pool);
        let w = load(
            &server.url,
            pid,
            &built.table.id().0,
            &pool,
            concurrency,
            seconds,
        )
        .await?;
        drop(server);
        let out = Command::new(&server_bin)
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
        eprintln!(
            "s = {s}: {:.0} vouchers/s, server {:.2} CPU-µs/voucher, client {client_us:.1} µs/voucher; {revealed} accounts revealed, {} with {candidates} candidates below t",
            w.vouchers_per_s,
            w.server_cpu_us_per_voucher,
            accounts.len() - revealed
        );
        rows.push((
            s,
            threshold_voucher_len(k, s),
            client_us,
            w,
            revealed,
            accounts.len() - revealed,
            candidates,
        ));
    }

    println!(
        "### blindmatch-threshold-bench{}\n\n{} · {} cores · backend {} · {entries} entries, k = {k}, t = {t}, {} accounts ({} crossing) × {} uploads, {concurrency} streams, {seconds} s windows\n",
        if args.quick { " --quick" } else { "" },
        machine::cpu_model(),
        cores,
        machine::backend(),
        args.accounts,
        args.crossing,
        args.batch,
    );
    println!(
        "Floor per voucher on the server: {floor_server_us:.2} µs (one core); end to end: {:.0} vouchers/s ({cores} × floor).\n",
        cores as f64 * 1e6 / floor_server_us
    );
    println!(
        "| s | voucher bytes | client µs/voucher | vouchers/s | ratio to {cores} × floor | server CPU µs/voucher | floor / CPU | accounts revealed | accounts below t (candidates) |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for (s, len, client_us, w, revealed, below, candidates) in &rows {
        println!(
            "| {s} | {len} | {client_us:.1} | {:.0} | {:.2} | {:.2} | {:.2} | {revealed} | {below} ({candidates}) |",
            w.vouchers_per_s,
            w.vouchers_per_s / (cores as f64 * 1e6 / floor_server_us),
            w.server_cpu_us_per_voucher,
            floor_server_us / w.server_cpu_us_per_voucher
        );
    }
    eprintln!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
