//! `blindmatch-audit-bench`: the list audit (SPEC Section 15) at scale, in
//! process: the operator's bundle (its size and the time to prove it), an
//! organisation's full audit, and a daily delta audit, each against the
//! floor measured in the same run: hashing every listed item to the group
//! once (`H(y)`), which any audit of a list has to do.
//!
//! `target/release/blindmatch-audit-bench --entries 100000,1000000`

#![allow(
    clippy::cast_precision_loss,
    reason = "benchmark arithmetic on counts and times"
)]

use std::time::Instant;

use blindmatch_benches::items::sha_items;
use blindmatch_benches::machine;
use blindmatch_protocol::audit::{AuditBundle, AuditList};
use blindmatch_protocol::hash_to_group::hash_item;
use blindmatch_protocol::manifest::{Manifest, OperatorSigningKey};
use blindmatch_protocol::table::{Base, UpdateOptions, update};
use blindmatch_protocol::{ServerKey, TableBuilder};
use clap::Parser;
use rayon::prelude::*;

#[derive(Parser, Debug)]
#[command(
    name = "blindmatch-audit-bench",
    about = "The list audit at scale, against the floor"
)]
struct Args {
    /// Table sizes (entries), comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = vec![100_000usize, 1_000_000])]
    entries: Vec<usize>,
    /// Entries added and removed by the daily update the delta audit checks.
    #[arg(long, default_value_t = 1000)]
    churn: usize,
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!("# blindmatch-audit-bench on {}", machine::summary());
    let key = ServerKey::generate(&mut rand::rng());
    let signing = OperatorSigningKey::generate(&mut rand::rng());
    for &n in &args.entries {
        // The organisation lists the table's entries and 10% more.
        let items = sha_items(n + n / 10, "audit");
        let t = Instant::now();
        let built = TableBuilder::new([1; 32]).build(&key, items[..n].to_vec())?;
        let build_s = secs(t);
        let sign = |table, v| Manifest::for_table(table, v, 0, None).sign(&signing);
        let list = AuditList::new(items.clone())?;
        let t = Instant::now();
        items.par_iter().for_each(|i| {
            std::hint::black_box(hash_item(i));
        });
        let floor_s = secs(t);
        let manifest = sign(&built.table, 1);
        let t = Instant::now();
        let (bundle, _) = AuditBundle::prove(
            &key,
            &manifest,
            &built.table,
            &built.index,
            &built.placement,
            &list,
            None,
            &mut rand::rng(),
        )?;
        let prove_s = secs(t);
        let bytes = bundle.encode().len();
        let t = Instant::now();
        let state = bundle.verify(&built.table, &list, None)?.state;
        let verify_s = secs(t);

        // A day's update: `churn` removed, `churn` added (from the list's
        // extra 10%), 16 decoys; the operator's delta bundle and the
        // organisation's delta audit from the state above.
        let next: Vec<_> = items[args.churn..n + args.churn].to_vec();
        let v2 = update(
            &key,
            Base::from(&built),
            next,
            &UpdateOptions {
                decoys: 16,
                ..UpdateOptions::new(2, 3)
            },
        )?;
        let manifest2 = sign(&v2.table, 2);
        let t = Instant::now();
        let (delta, _) = AuditBundle::prove(
            &key,
            &manifest2,
            &v2.table,
            &v2.index,
            &v2.placement,
            &list,
            Some(&built.table),
            &mut rand::rng(),
        )?;
        let delta_prove_s = secs(t);
        let t = Instant::now();
        let audited = delta.verify(&v2.table, &list, Some(&state))?;
        let delta_verify_s = secs(t);

        println!(
            "\n## {n} entries ({} slots; table built in {build_s:.1} s), list of {}",
            built.table.header().n_slots,
            list.items().len()
        );
        println!(
            "floor: H(y) for every listed item: {floor_s:.2} s ({:.2} µs per item on {} cores)",
            floor_s * 1e6 / items.len() as f64,
            machine::cores()
        );
        println!(
            "full bundle: {bytes} bytes ({:.1} per entry); proved in {prove_s:.2} s ({:.2}x the floor)",
            bytes as f64 / n as f64,
            prove_s / floor_s
        );
        println!(
            "full audit: {verify_s:.2} s ({:.2}x the floor): {} entries proved, every slot checked",
            verify_s / floor_s,
            bundle.entries.len()
        );
        println!(
            "delta ({} added, {} removed, {} slots changed): bundle {} bytes, proved in {delta_prove_s:.2} s; audited in {delta_verify_s:.2} s ({} entries proved, {} fillers recomputed, {} slots kept)",
            args.churn,
            args.churn,
            v2.changed.len(),
            delta.encode().len(),
            audited.entries_proved,
            audited.fillers_recomputed,
            audited.slots_kept
        );
    }
    Ok(())
}
