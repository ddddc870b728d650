//! `blindmatch-delta`: what a daily update costs a client, in bytes.
//!
//! Builds a table of N entries (version 1) and serves it with the real
//! server (a child process); a client downloads it in full. Then it builds
//! version 2 in place (`table::update`: N - R entries kept, A added), the
//! server swaps to it on SIGHUP, and the same client catches up with a
//! delta. It reports the bytes received each way against the floor: the
//! changed slots' own size (32 bytes each), and the time of each step.
//!
//! Build first: `cargo build --release -p blindmatch-server -p blindmatch-benches`,
//! then `target/release/blindmatch-delta`.

#![allow(
    clippy::cast_possible_truncation,
    reason = "benchmark arithmetic on counts and times"
)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use blindmatch_benches::items::sha_items;
use blindmatch_benches::{machine, service};
use blindmatch_client::{Client, Fetched, TableCache};
use blindmatch_protocol::table::{SLOT_LEN, UpdateOptions, update};
use blindmatch_protocol::{ClientTable, TableBuilder};
use blindmatch_server::bundle::History;
use clap::Parser;
use serde_json::json;

#[derive(Parser, Debug)]
#[command(
    name = "blindmatch-delta",
    about = "Bytes a client receives for a table update: delta against full download"
)]
struct Args {
    /// Entries in version 1.
    #[arg(long, default_value_t = 1_000_000)]
    entries: usize,
    /// Entries added in version 2.
    #[arg(long, default_value_t = 1000)]
    add: usize,
    /// Entries of version 1 removed in version 2.
    #[arg(long, default_value_t = 0)]
    remove: usize,
    /// Empty slots given a fresh filler besides the real changes (`build --decoys`).
    #[arg(long, default_value_t = 0)]
    decoys: u32,
    /// The server binary [default: blindmatch-server next to this one].
    #[arg(long)]
    server: Option<PathBuf>,
    /// Also write the results here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.remove <= args.entries, "--remove exceeds --entries");
    let bin = service::server_bin(args.server.as_deref())?;
    println!(
        "machine: {} ({} cores), dalek backend {}",
        machine::cpu_model(),
        machine::cores(),
        machine::backend()
    );
    let dir = tempfile::tempdir()?;
    let key = blindmatch_server::keyfile::write_new(&dir.path().join("server.key"))?;

    let items = sha_items(args.entries, "entry");
    let started = Instant::now();
    let v1 = TableBuilder::new([42; 32]).build(&key, items.clone())?;
    let full_build = started.elapsed().as_secs_f64();
    let operator = service::write_table(dir.path(), &v1)?;
    let n_slots = v1.table.header().n_slots;
    println!(
        "version 1: {} entries, {n_slots} slots, {:.1} MB, built in {full_build:.1} s",
        args.entries,
        v1.table.slots().len() as f64 / 1e6
    );

    let server = service::start(&bin, dir.path(), 64)?;
    let cache = TableCache::new(dir.path().join("cache"));
    let mut client = Client::connect(&server.url, operator).await?;
    let m1 = client.manifest().await?;
    let started = Instant::now();
    let (t1, how) = client.fetch_table(&m1, &cache).await?;
    let full_fetch = started.elapsed().as_secs_f64();
    let Fetched::Full {
        bytes: full_bytes, ..
    } = how
    else {
        anyhow::bail!("version 1 was not downloaded in full: {how:?}");
    };
    let started = Instant::now();
    let c1 = ClientTable::new(t1)?;
    let full_validate = started.elapsed().as_secs_f64();
    let c1 = blindmatch_client::Table::new(c1, m1.verified())?;

    // Version 2, in place.
    let mut next = items[args.remove..].to_vec();
    next.extend(sha_items(args.add, "added"));
    let started = Instant::now();
    let opts = UpdateOptions {
        decoys: args.decoys,
        ..UpdateOptions::new(2, v1.table.header().k)
    };
    let v2 = update(&key, (&v1).into(), next, &opts)?;
    let update_build = started.elapsed().as_secs_f64();
    let signing = blindmatch_server::keyfile::read_signing(&dir.path().join("operator.sign"))?;
    let history = History::next(1, *v1.table.id(), &History::default(), &v2.changed, n_slots);
    blindmatch_server::bundle::write_parts(
        &dir.path().join("table.bmt"),
        &v2.table,
        &v2.index,
        &blindmatch_server::sign_version(&v2.table, 2, None, &signing),
        &history,
        &v2.placement,
    )?;
    let changed = v2.changed.len();
    println!(
        "version 2: {} kept, {} added, {} removed, {} decoys; {changed} slots changed ({:.2} per change); built in {update_build:.2} s",
        v2.kept,
        v2.added,
        v2.removed,
        args.decoys,
        changed as f64 / (v2.added + v2.removed).max(1) as f64
    );
    let pid = server.child.id();
    let rss_before = machine::rss_bytes(pid).unwrap_or(0);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .context("kill -HUP")?;
    anyhow::ensure!(status.success(), "kill -HUP failed");
    let deadline = Instant::now() + Duration::from_secs(120);
    let m2 = loop {
        let m = client.manifest().await?;
        if m.version() == 2 {
            break m;
        }
        anyhow::ensure!(Instant::now() < deadline, "the server did not swap");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // Both versions are held during the grace period.
    let rss_grace = machine::rss_bytes(pid).unwrap_or(0);

    // What an app holding version 1 does: refresh it. The delta is fetched,
    // applied, checked against the signed digest, and only its slots are
    // validated.
    let started = Instant::now();
    let (c2, how) = client.refresh(&c1, &m2, &cache).await?;
    let delta_fetch = started.elapsed().as_secs_f64();
    let by_delta = c2.client_table().table();
    let Fetched::Delta {
        slots,
        bytes: delta_bytes,
        ..
    } = how
    else {
        anyhow::bail!("version 2 did not come as a delta: {how:?}");
    };
    anyhow::ensure!(
        slots == changed,
        "the delta has {slots} slots, {changed} changed"
    );
    anyhow::ensure!(
        by_delta.encode() == v2.table.encode(),
        "delta result differs from version 2"
    );

    let floor = changed * SLOT_LEN;
    let ratio = delta_bytes as f64 / floor.max(1) as f64;
    println!("\nbytes received by the client:");
    println!(
        "  full download of version 1: {full_bytes:>12} B  ({full_fetch:.2} s, proofs included)"
    );
    println!(
        "  delta 1 -> 2:               {delta_bytes:>12} B  ({delta_fetch:.3} s, refresh: applied, verified, changed slots validated)"
    );
    println!("  changed slots' own size:    {floor:>12} B  (the floor: {changed} x 32)");
    println!(
        "  delta / floor = {ratio:.3} (target <= 2);  full / delta = {:.0}x",
        full_bytes as f64 / delta_bytes.max(1) as f64
    );
    println!(
        "  build: full {full_build:.1} s, update {update_build:.2} s ({:.0}x faster)",
        full_build / update_build.max(1e-9)
    );
    let k = f64::from(v1.table.header().k);
    let ratio_touched = f64::from(n_slots) / (k * changed as f64).max(1.0);
    println!(
        "  a client testing whether an update touched an item it holds: likelihood ratio ~ n_slots / (k x changed) = {ratio_touched:.1}"
    );
    println!(
        "  server resident set: {:.0} MiB serving version 1; {:.0} MiB holding both during the grace period",
        rss_before as f64 / 1048576.0,
        rss_grace as f64 / 1048576.0
    );
    println!(
        "  client: validating a whole table {full_validate:.2} s; refreshing by delta (fetch, apply, digest, validate the changed slots) {delta_fetch:.3} s"
    );

    let out = json!({
        "machine": {"cpu": machine::cpu_model(), "cores": machine::cores(), "backend": machine::backend()},
        "entries": args.entries, "added": v2.added, "removed": v2.removed, "decoys": args.decoys, "n_slots": n_slots,
        "changed_slots": changed,
        "changed_per_change": changed as f64 / (v2.added + v2.removed).max(1) as f64,
        "bytes": {"full": full_bytes, "delta": delta_bytes, "floor": floor},
        "delta_over_floor": ratio,
        "touched_likelihood_ratio": ratio_touched,
        "server_rss_bytes": {"serving_v1": rss_before, "grace_both": rss_grace},
        "full_over_delta": full_bytes as f64 / delta_bytes.max(1) as f64,
        "seconds": {"full_build": full_build, "update_build": update_build, "full_fetch": full_fetch, "full_validate": full_validate, "delta_refresh": delta_fetch},
    });
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&out)? + "\n")
            .with_context(|| format!("--json {}", path.display()))?;
    }
    Ok(())
}
