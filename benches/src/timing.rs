//! `blindmatch-timing`: does the server's response time tell a client whether
//! its vouchers matched?
//!
//! The real server (a child process, as in `blindmatch-bench`) receives, on
//! C concurrent streams, batches that are all-matching or all-non-matching,
//! chosen by a coin flip per request, so both kinds see the same load. The
//! benchmark then compares the two response-time distributions with a
//! two-sample Kolmogorov–Smirnov test, and does the same for the request
//! that *follows* a matching or a non-matching batch on the same stream (the
//! work of evaluating a match happens after the acknowledgement, so that is
//! where a difference would show). It runs twice: under load (C streams
//! back to back) and at low load (one stream, a pause between requests).
//!
//! As a positive control, a third kind of request, non-matching batches of
//! 3/4 the size, shows the difference the same run can detect.
//!
//! Build first: `cargo build --release -p blindmatch-server -p blindmatch-benches`,
//! then `target/release/blindmatch-timing`.

#![allow(
    clippy::cast_possible_truncation,
    reason = "benchmark arithmetic on counts and times"
)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use blindmatch_benches::args::{Json, Load, Served};
use blindmatch_benches::items::sha_items;
use blindmatch_benches::stats::{KsTest, ks_two_sample, percentile};
use blindmatch_benches::submit::submit_admitted;
use blindmatch_benches::{machine, service};
use blindmatch_client::{Client, SubmissionId};
use blindmatch_proto::v1::SubmitRequest;
use blindmatch_proto::v1::voucher_service_client::VoucherServiceClient;
use blindmatch_protocol::{ClientTable, OperatorVerifyingKey, TableBuilder};
use clap::Parser;
use rand::{RngExt, SeedableRng};
use serde_json::json;

#[derive(Parser, Debug)]
#[command(
    name = "blindmatch-timing",
    about = "Response times of all-matching against all-non-matching batches, compared"
)]
#[command(mut_arg("duration", |a| a.help("Seconds of each run (after one second of warm-up)")))]
struct Args {
    #[command(flatten)]
    served: Served,
    #[command(flatten)]
    load: Load,
    /// Concurrent streams in the loaded run.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Pause between requests in the low-load run, milliseconds.
    #[arg(long, default_value_t = 3)]
    pause_ms: u64,
    /// Seed of the coin flips (random by default; printed).
    #[arg(long)]
    seed: Option<u64>,
    #[command(flatten)]
    json: Json,
}

/// What a request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Every voucher matches.
    Match,
    /// No voucher matches.
    NoMatch,
    /// No voucher matches, and the batch is 3/4 the size: the control.
    Smaller,
}

/// One request: its kind, the kind of the request before it on its stream,
/// and its response time.
struct Sample {
    kind: Kind,
    previous: Option<Kind>,
    micros: f64,
}

/// Pools of vouchers made in advance, so the load generator spends its time
/// waiting for the server.
struct Pools {
    matching: Vec<Vec<u8>>,
    non_matching: Vec<Vec<u8>>,
}

impl Pools {
    fn batch(&self, kind: Kind, size: usize, at: usize) -> Vec<Vec<u8>> {
        let (pool, size) = match kind {
            Kind::Match => (&self.matching, size),
            Kind::NoMatch => (&self.non_matching, size),
            Kind::Smaller => (&self.non_matching, (size * 3 / 4).max(1)),
        };
        (0..size)
            .map(|i| pool[(at + i) % pool.len()].clone())
            .collect()
    }
}

/// Where the requests go and what they carry.
struct Target {
    url: String,
    table_id: Vec<u8>,
    pools: Arc<Pools>,
    batch: usize,
}

/// Runs `streams` streams for `seconds` (plus one of warm-up, discarded).
async fn run(
    target: &Target,
    streams: usize,
    pause: Duration,
    seconds: f64,
    seed: u64,
) -> anyhow::Result<(Vec<Sample>, u64)> {
    let start = Instant::now();
    let refused = Arc::new(AtomicU64::new(0));
    let warm = Duration::from_secs(1);
    let end = warm + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for s in 0..streams {
        let mut client = VoucherServiceClient::connect(target.url.clone())
            .await?
            .max_decoding_message_size(16 << 20);
        let (pools, table_id, batch, refused) = (
            Arc::clone(&target.pools),
            target.table_id.clone(),
            target.batch,
            Arc::clone(&refused),
        );
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (s as u64).wrapping_mul(0x9e37));
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut previous = None;
            let mut at = s * 7919;
            while start.elapsed() < end {
                let kind = match rng.random_range(0..5u8) {
                    0 | 1 => Kind::Match,
                    2 | 3 => Kind::NoMatch,
                    _ => Kind::Smaller,
                };
                let vouchers = pools.batch(kind, batch, at);
                at += batch;
                // A try refused for memory (decided before the body is read,
                // so whatever it holds) is sent again; the accepted try is
                // the sample.
                let submission_id = { SubmissionId::random(&mut rand::rng()) }.0.to_vec();
                let admitted = submit_admitted(
                    &mut client,
                    SubmitRequest {
                        table_id: table_id.clone(),
                        vouchers,
                        submission_id,
                        account_id: Vec::new(),
                    },
                )
                .await?;
                refused.fetch_add(u64::from(admitted.refused), Ordering::Relaxed);
                let micros = admitted.took.as_secs_f64() * 1e6;
                if start.elapsed() > warm {
                    samples.push(Sample {
                        kind,
                        previous,
                        micros,
                    });
                }
                previous = Some(kind);
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
            Ok::<_, tonic::Status>(samples)
        }));
    }
    let mut samples = Vec::new();
    for t in tasks {
        samples.extend(t.await??);
    }
    Ok((samples, refused.load(Ordering::Relaxed)))
}

fn times(samples: &[Sample], pick: impl Fn(&Sample) -> bool) -> Vec<f64> {
    samples
        .iter()
        .filter(|s| pick(s))
        .map(|s| s.micros)
        .collect()
}

fn summary(v: &[f64]) -> serde_json::Value {
    json!({
        "n": v.len(),
        "p10_us": percentile(v, 10.0),
        "p50_us": percentile(v, 50.0),
        "p90_us": percentile(v, 90.0),
        "p99_us": percentile(v, 99.0),
    })
}

fn ks_json(t: &KsTest) -> serde_json::Value {
    json!({ "d": t.d, "p_value": t.p_value, "d_critical_5pct": t.d_critical_5pct })
}

/// The comparisons of one run, printed and returned as JSON.
fn report(name: &str, (samples, refused): &(Vec<Sample>, u64)) -> serde_json::Value {
    let matching = times(samples, |s| s.kind == Kind::Match);
    let non_matching = times(samples, |s| s.kind == Kind::NoMatch);
    let smaller = times(samples, |s| s.kind == Kind::Smaller);
    // The request after a matching / non-matching one, of a full-size kind.
    let full = |s: &Sample| s.kind != Kind::Smaller;
    let after_match = times(samples, |s| full(s) && s.previous == Some(Kind::Match));
    let after_non = times(samples, |s| full(s) && s.previous == Some(Kind::NoMatch));
    let own = ks_two_sample(&matching, &non_matching);
    let next = ks_two_sample(&after_match, &after_non);
    let control = ks_two_sample(&smaller, &non_matching);
    println!("\n### {name}\n");
    println!("tries refused for memory and sent again (not samples): {refused}\n");
    println!("| requests | n | p10 µs | p50 µs | p90 µs | p99 µs |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (label, v) in [
        ("all-matching", &matching),
        ("all-non-matching", &non_matching),
        ("after an all-matching one", &after_match),
        ("after an all-non-matching one", &after_non),
        ("control: non-matching, 3/4 size", &smaller),
    ] {
        println!(
            "| {label} | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
            v.len(),
            percentile(v, 10.0),
            percentile(v, 50.0),
            percentile(v, 90.0),
            percentile(v, 99.0)
        );
    }
    println!("\n| comparison | KS D | p-value | D significant at 5% |");
    println!("| --- | ---: | ---: | ---: |");
    for (label, t) in [
        ("matching vs non-matching", &own),
        ("after matching vs after non-matching", &next),
        ("control: 3/4 size vs full size", &control),
    ] {
        println!(
            "| {label} | {:.4} | {:.3} | {:.4} |",
            t.d, t.p_value, t.d_critical_5pct
        );
    }
    json!({
        "all_matching": summary(&matching),
        "all_non_matching": summary(&non_matching),
        "after_matching": summary(&after_match),
        "after_non_matching": summary(&after_non),
        "control_smaller": summary(&smaller),
        "ks_matching_vs_non_matching": ks_json(&own),
        "ks_after_matching_vs_after_non_matching": ks_json(&next),
        "ks_control_smaller_vs_full": ks_json(&control),
        "tries_refused_for_memory": refused,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (entries, batch) = (args.served.entries, args.load.batch);
    if batch < 2 || args.concurrency == 0 || entries == 0 {
        anyhow::bail!("--batch must be at least 2, --concurrency and --entries at least 1");
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let server_bin = args.served.bin()?;
    println!(
        "blindmatch-timing: {}, {entries} entries, batches of {batch}, seed {seed}",
        machine::summary()
    );

    let dir = tempfile::tempdir()?;
    let (operator, pools) = prepare(entries, dir.path())?;
    let server = service::start(&server_bin, dir.path(), batch)?;
    let manifest = Client::connect(&server.url, operator)
        .await?
        .manifest()
        .await?;
    let target = Target {
        url: server.url.clone(),
        table_id: manifest.table_id().0.to_vec(),
        pools: Arc::new(pools),
        batch,
    };

    let duration = args.load.duration;
    let loaded = run(&target, args.concurrency, Duration::ZERO, duration, seed)
        .await
        .context("loaded run")?;
    let pause = Duration::from_millis(args.pause_ms);
    let idle = run(&target, 1, pause, duration, seed.rotate_left(17))
        .await
        .context("low-load run")?;
    let cpu = machine::cpu_seconds(server.child.id()).unwrap_or(f64::NAN);
    drop(server);

    let loaded_json = report(
        &format!("Under load: {} streams back to back", args.concurrency),
        &loaded,
    );
    let idle_json = report(
        &format!(
            "Low load: one stream, {} ms between requests",
            args.pause_ms
        ),
        &idle,
    );
    println!("\nserver CPU over both runs: {cpu:.1} s");
    let out = json!({
        "cpu": machine::cpu_model(),
        "cores": machine::cores(),
        "backend": machine::backend(),
        "entries": entries,
        "batch": batch,
        "concurrency": args.concurrency,
        "duration_s": duration,
        "pause_ms": args.pause_ms,
        "seed": seed,
        "loaded": loaded_json,
        "low_load": idle_json,
    });
    args.json.write(&serde_json::to_string_pretty(&out)?)
}

/// Builds a table of `entries` entries under a new key in `dir` and writes
/// it for the server; returns the operator's key and the pools: 2,048
/// distinct vouchers of each kind, every matching one a different listed
/// entry with its own associated data.
fn prepare(entries: usize, dir: &Path) -> anyhow::Result<(OperatorVerifyingKey, Pools)> {
    let key = blindmatch_server::keyfile::write_new(&dir.join("server.key"))?;
    let mut table_seed = [0u8; 32];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut table_seed);
    let entries = sha_items(entries, "timing entry");
    let built = TableBuilder::new(table_seed).build(&key, entries.clone())?;
    let table = ClientTable::new(built.table.clone())?;
    let operator = service::write_table(dir, &built)?;
    drop(built);

    let mut rng = rand::rng();
    let pool_size = 2048;
    let matching = entries
        .iter()
        .cycle()
        .take(pool_size)
        .enumerate()
        .map(|(i, e)| {
            Ok(table
                .create_voucher(e, format!("m {i}").as_bytes(), &mut rng)?
                .encode())
        })
        .collect::<anyhow::Result<_>>()?;
    let non_matching = sha_items(pool_size, "timing probe")
        .iter()
        .enumerate()
        .map(|(i, e)| {
            Ok(table
                .create_voucher(e, format!("n {i}").as_bytes(), &mut rng)?
                .encode())
        })
        .collect::<anyhow::Result<_>>()?;
    Ok((
        operator,
        Pools {
            matching,
            non_matching,
        },
    ))
}
