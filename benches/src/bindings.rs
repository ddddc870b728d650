//! `blindmatch-bindings-bench`: the native side of the bindings benchmark
//! (`bindings/bench.sh`). Builds a table of `--entries` entries, writes its
//! public encoding to `--out` for the language bindings to load, and prints
//! what native Rust takes for the same work in the same run: validating the
//! table (on all cores, and on one, as WebAssembly does) and making
//! vouchers through the client core, per voucher. One JSON object per line.

use std::time::Instant;

use anyhow::Context;
use blindmatch_client_core::Table;
use blindmatch_protocol::{BlindedTable, ClientTable, Item, ItemType, ServerKey, TableBuilder};
use clap::Parser;
use sha2::Digest;

#[derive(Parser)]
struct Args {
    /// Entries in the table.
    #[arg(long, default_value_t = 1_000_000)]
    entries: u32,
    /// Where to write the encoded table.
    #[arg(long)]
    out: std::path::PathBuf,
    /// Vouchers to make for the per-voucher figure.
    #[arg(long, default_value_t = 2048)]
    vouchers: usize,
}

/// The benchmark's items: SHA-256 of the index, for every binding alike.
fn item(i: u32) -> Item {
    // A 32-byte value is always a valid SHA-256 item.
    Item::new(ItemType::Sha256, &sha2::Sha256::digest(i.to_be_bytes()))
        .unwrap_or_else(|_| unreachable!("32 bytes"))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let key = ServerKey::generate(&mut rand::rng());
    let started = Instant::now();
    let built = TableBuilder::new([3; 32])
        .build(&key, (0..args.entries).map(item).collect::<Vec<_>>())
        .context("building the table")?;
    let encoded = built.table.encode();
    std::fs::write(&args.out, &encoded).with_context(|| format!("{}", args.out.display()))?;
    eprintln!(
        "built {} entries in {:.1} s; wrote {} ({} bytes)",
        args.entries,
        started.elapsed().as_secs_f64(),
        args.out.display(),
        encoded.len()
    );

    let t = Instant::now();
    let table = Table::unverified(ClientTable::new(BlindedTable::decode(&encoded)?)?);
    let all_cores = t.elapsed().as_secs_f64();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let t = Instant::now();
    pool.install(|| ClientTable::new(BlindedTable::decode(&encoded)?))?;
    let one_core = t.elapsed().as_secs_f64();
    println!(
        "{{\"binding\": \"rust\", \"entries\": {}, \"validate_s\": {all_cores:.3}, \"validate_one_core_s\": {one_core:.3}}}",
        args.entries
    );

    // Batches of 64, as an app submits them; items listed and not.
    let items: Vec<(Item, Vec<u8>)> = (0..64u32)
        .map(|i| (item(i * 2), b"bench".to_vec()))
        .collect();
    let rounds = args.vouchers.div_ceil(64);
    let mut rng = rand::rng();
    let t = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(table.submission(&items, &mut rng)?);
    }
    let per = t.elapsed().as_secs_f64() / (rounds * 64) as f64 * 1e6;
    println!("{{\"binding\": \"rust\", \"voucher_us\": {per:.1}}}");
    Ok(())
}
