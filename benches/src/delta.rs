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

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use blindmatch_benches::args::{Json, Served};
use blindmatch_benches::items::sha_items;
use blindmatch_benches::service::ServerProcess;
use blindmatch_benches::{machine, service};
use blindmatch_client::{Client, Fetched, Manifest, TableCache};
use blindmatch_protocol::table::{SLOT_LEN, UpdateOptions, UpdatedTable, update};
use blindmatch_protocol::{BuiltTable, ClientTable, TableBuilder};
use blindmatch_server::bundle::History;
use clap::Parser;
use serde_json::json;

#[derive(Parser, Debug)]
#[command(
    name = "blindmatch-delta",
    about = "Bytes a client receives for a table update: delta against full download"
)]
#[command(mut_arg("entries", |a| a.help("Entries in version 1").default_value("1000000")))]
// This benchmark's flag for the server binary was always --server.
#[command(mut_arg("server_bin", |a| a.long("server").value_name("SERVER")))]
struct Args {
    #[command(flatten)]
    served: Served,
    /// Entries added in version 2.
    #[arg(long, default_value_t = 1000)]
    add: usize,
    /// Entries of version 1 removed in version 2.
    #[arg(long, default_value_t = 0)]
    remove: usize,
    /// Empty slots given a fresh filler besides the real changes (`build --decoys`).
    #[arg(long, default_value_t = 0)]
    decoys: u32,
    #[command(flatten)]
    json: Json,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let entries = args.served.entries;
    anyhow::ensure!(args.remove <= entries, "--remove exceeds --entries");
    let bin = args.served.bin()?;
    println!(
        "machine: {} ({} cores), dalek backend {}",
        machine::cpu_model(),
        machine::cores(),
        machine::backend()
    );
    let dir = tempfile::tempdir()?;
    let key = blindmatch_server::keyfile::write_new(&dir.path().join("server.key"))?;

    let items = sha_items(entries, "entry");
    let started = Instant::now();
    let v1 = TableBuilder::new([42; 32]).build(&key, items.clone())?;
    let full_build = started.elapsed().as_secs_f64();
    let operator = service::write_table(dir.path(), &v1)?;
    let n_slots = v1.table.header().n_slots;
    println!(
        "version 1: {entries} entries, {n_slots} slots, {:.1} MB, built in {full_build:.1} s",
        v1.table.slots().len() as f64 / 1e6
    );

    let server = service::start(&bin, dir.path(), 64)?;
    let cache = TableCache::new(dir.path().join("cache"));
    let mut client = Client::connect(&server.url, operator).await?;
    let (c1, full) = download(&mut client, &cache).await?;

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
    write_v2(dir.path(), &v1, &v2)?;
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
    let m2 = swap(&server, &mut client).await?;
    // Both versions are held during the grace period.
    let rss_grace = machine::rss_bytes(pid).unwrap_or(0);
    let (delta_bytes, delta_fetch) = refresh(&mut client, &c1, &m2, &cache, &v2).await?;

    let figures = Figures {
        k: v1.table.header().k,
        n_slots,
        added: v2.added,
        removed: v2.removed,
        changed,
        full,
        delta_bytes,
        delta_fetch,
        full_build,
        update_build,
        rss_before,
        rss_grace,
    };
    let out = figures.report(&args);
    args.json
        .write(&(serde_json::to_string_pretty(&out)? + "\n"))
}

/// Version 1 as the client downloaded it in full.
struct Full {
    bytes: u64,
    /// Seconds to fetch it, proofs included.
    fetch: f64,
    /// Seconds to validate the whole table.
    validate: f64,
}

/// The client downloads version 1 in full and validates it.
async fn download(
    client: &mut Client,
    cache: &TableCache,
) -> anyhow::Result<(blindmatch_client::Table, Full)> {
    let m1 = client.manifest().await?;
    let started = Instant::now();
    let (t1, how) = client.fetch_table(&m1, cache).await?;
    let fetch = started.elapsed().as_secs_f64();
    let Fetched::Full { bytes, .. } = how else {
        anyhow::bail!("version 1 was not downloaded in full: {how:?}");
    };
    let started = Instant::now();
    let c1 = ClientTable::new(t1)?;
    let validate = started.elapsed().as_secs_f64();
    let c1 = blindmatch_client::Table::new(c1, m1.verified())?;
    Ok((
        c1,
        Full {
            bytes,
            fetch,
            validate,
        },
    ))
}

/// Writes version 2 over the served table file, signed by the same
/// operator key, with the history that makes its delta from version 1.
fn write_v2(dir: &Path, v1: &BuiltTable, v2: &UpdatedTable) -> anyhow::Result<()> {
    let signing = blindmatch_server::keyfile::read_signing(&dir.join("operator.sign"))?;
    let n_slots = v1.table.header().n_slots;
    let history = History::next(1, *v1.table.id(), &History::default(), &v2.changed, n_slots);
    blindmatch_server::bundle::write_parts(
        &dir.join("table.bmt"),
        &v2.table,
        &v2.index,
        &blindmatch_server::sign_version(&v2.table, 2, None, &signing),
        &history,
        &v2.placement,
        &[],
    )?;
    Ok(())
}

/// Tells the server to load version 2 (SIGHUP) and waits until it serves
/// it; returns its manifest.
async fn swap(server: &ServerProcess, client: &mut Client) -> anyhow::Result<Manifest> {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.child.id().to_string()])
        .status()
        .context("kill -HUP")?;
    anyhow::ensure!(status.success(), "kill -HUP failed");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let m = client.manifest().await?;
        if m.version() == 2 {
            return Ok(m);
        }
        anyhow::ensure!(Instant::now() < deadline, "the server did not swap");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What an app holding version 1 does: refresh it. The delta is fetched,
/// applied, checked against the signed digest, and only its slots are
/// validated. Returns the bytes received and the seconds it took, once the
/// result is checked to be version 2.
async fn refresh(
    client: &mut Client,
    c1: &blindmatch_client::Table,
    m2: &Manifest,
    cache: &TableCache,
    v2: &UpdatedTable,
) -> anyhow::Result<(u64, f64)> {
    let started = Instant::now();
    let (c2, how) = client.refresh(c1, m2, cache).await?;
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
    let changed = v2.changed.len();
    anyhow::ensure!(
        slots == changed,
        "the delta has {slots} slots, {changed} changed"
    );
    anyhow::ensure!(
        by_delta.encode() == v2.table.encode(),
        "delta result differs from version 2"
    );
    Ok((delta_bytes, delta_fetch))
}

/// Every figure of the run.
struct Figures {
    k: u8,
    n_slots: u32,
    added: usize,
    removed: usize,
    changed: usize,
    full: Full,
    delta_bytes: u64,
    delta_fetch: f64,
    full_build: f64,
    update_build: f64,
    rss_before: u64,
    rss_grace: u64,
}

impl Figures {
    /// Prints the comparison, and returns it as JSON.
    fn report(&self, args: &Args) -> serde_json::Value {
        let (full_bytes, delta_bytes, changed) = (self.full.bytes, self.delta_bytes, self.changed);
        let floor = changed * SLOT_LEN;
        let ratio = delta_bytes as f64 / floor.max(1) as f64;
        println!("\nbytes received by the client:");
        println!(
            "  full download of version 1: {full_bytes:>12} B  ({:.2} s, proofs included)",
            self.full.fetch
        );
        println!(
            "  delta 1 -> 2:               {delta_bytes:>12} B  ({:.3} s, refresh: applied, verified, changed slots validated)",
            self.delta_fetch
        );
        println!("  changed slots' own size:    {floor:>12} B  (the floor: {changed} x 32)");
        println!(
            "  delta / floor = {ratio:.3} (target <= 2);  full / delta = {:.0}x",
            full_bytes as f64 / delta_bytes.max(1) as f64
        );
        println!(
            "  build: full {:.1} s, update {:.2} s ({:.0}x faster)",
            self.full_build,
            self.update_build,
            self.full_build / self.update_build.max(1e-9)
        );
        let k = f64::from(self.k);
        let ratio_touched = f64::from(self.n_slots) / (k * changed as f64).max(1.0);
        println!(
            "  a client testing whether an update touched an item it holds: likelihood ratio ~ n_slots / (k x changed) = {ratio_touched:.1}"
        );
        println!(
            "  server resident set: {:.0} MiB serving version 1; {:.0} MiB holding both during the grace period",
            self.rss_before as f64 / 1048576.0,
            self.rss_grace as f64 / 1048576.0
        );
        println!(
            "  client: validating a whole table {:.2} s; refreshing by delta (fetch, apply, digest, validate the changed slots) {:.3} s",
            self.full.validate, self.delta_fetch
        );
        json!({
            "machine": {"cpu": machine::cpu_model(), "cores": machine::cores(), "backend": machine::backend()},
            "entries": args.served.entries, "added": self.added, "removed": self.removed, "decoys": args.decoys, "n_slots": self.n_slots,
            "changed_slots": changed,
            "changed_per_change": changed as f64 / (self.added + self.removed).max(1) as f64,
            "bytes": {"full": full_bytes, "delta": delta_bytes, "floor": floor},
            "delta_over_floor": ratio,
            "touched_likelihood_ratio": ratio_touched,
            "server_rss_bytes": {"serving_v1": self.rss_before, "grace_both": self.rss_grace},
            "full_over_delta": full_bytes as f64 / delta_bytes.max(1) as f64,
            "seconds": {"full_build": self.full_build, "update_build": self.update_build, "full_fetch": self.full.fetch, "full_validate": self.full.validate, "delta_refresh": self.delta_fetch},
        })
    }
}
