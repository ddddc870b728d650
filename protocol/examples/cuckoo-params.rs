//! Measures cuckoo placement for each k and load factor: how often a seed
//! fails and how many evictions an insertion costs. This is the data behind
//! the choice of k and load factor in papers/SPEC.md ("Choice of k").
//!
//! `cargo run --release -p blindmatch-protocol --example cuckoo-params [N] [SEEDS]`

use blindmatch_protocol::table::trial_placement;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let seeds: u8 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(5);
    println!("n = {n}, {seeds} seeds per cell");
    println!("| k | load | table bytes/entry | seeds failed | evictions/entry |");
    println!("|---|------|-------------------|--------------|-----------------|");
    for (k, loads) in [
        (2u8, &[0.40, 0.45, 0.49, 0.52][..]),
        (3, &[0.80, 0.85, 0.88, 0.90, 0.92][..]),
        (4, &[0.90, 0.93, 0.95, 0.97][..]),
    ] {
        for &load in loads {
            let mut failed = 0;
            let mut ev = 0.0;
            for s in 0..seeds {
                let t = trial_placement(n, k, load, [s; 32])?;
                if t.placed {
                    ev += t.evictions_per_entry;
                } else {
                    failed += 1;
                }
            }
            let ok = f64::from(seeds - failed).max(1.0);
            println!(
                "| {k} | {load:.2} | {:.1} | {failed}/{seeds} | {:.3} |",
                32.0 / load,
                ev / ok
            );
        }
    }
    Ok(())
}
