//! `blindmatch-log-bench`: the transparency log (SPEC Section 16) at the
//! sizes a daily list reaches (a year, ten years of versions): what a
//! `GetManifest` response carries for it (the tlog-proof and the
//! consistency proof, in bytes), what a client spends checking them, and
//! what the operator spends appending a version and collecting the
//! witnesses' cosignatures, with two real witnesses (`scripts/witnesses.sh`;
//! without them that column says so). The client's check is set against
//! the floor measured in the same run: the Ed25519 verifications it cannot
//! avoid (the log's signature and one per witness in the quorum).
//!
//! `target/release/blindmatch-log-bench --entries 365,3650`

#![allow(
    clippy::cast_precision_loss,
    reason = "benchmark arithmetic on counts and times"
)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use blindmatch_benches::machine;
use blindmatch_client_core::VerifiedManifest;
use blindmatch_protocol::manifest::{Manifest, OperatorSigningKey};
use blindmatch_protocol::merkle;
use blindmatch_protocol::tlog::{LogEntry, LogPolicy, TlogProof};
use blindmatch_protocol::{Item, ItemType, ServerKey, TableBuilder};
use blindmatch_server::tlog::{self, WitnessOptions};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "blindmatch-log-bench",
    about = "The transparency log: proof sizes, the client's check, append and cosign"
)]
struct Args {
    /// Log sizes (entries, one per version), comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = vec![365usize, 3650])]
    entries: Vec<usize>,
    /// Client checks timed per size.
    #[arg(long, default_value_t = 2000)]
    checks: u32,
}

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/witnesses.sh")
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!("# blindmatch-log-bench on {}", machine::summary());
    let witnesses_built = Command::new(script())
        .arg("bin")
        .output()
        .is_ok_and(|o| o.status.success());
    if !witnesses_built {
        println!(
            "# witnesses not built (scripts/witnesses.sh install): append and cosign times are not measured"
        );
    }
    let key = ServerKey::generate(&mut rand::rng());
    let operator = OperatorSigningKey::generate(&mut rand::rng());
    let items = (0u8..8)
        .map(|i| Item::new(ItemType::Sha256, &[i; 32]))
        .collect::<Result<Vec<_>, _>>()?;
    let table = TableBuilder::new([1; 32]).build(&key, items)?;
    println!(
        "{:>8} | {:>11} {:>12} | {:>10} {:>9} {:>6} | {:>10} {:>10}",
        "entries",
        "proof bytes",
        "consistency",
        "check µs",
        "floor µs",
        "ratio",
        "append ms",
        "witness ms"
    );
    for &n in &args.entries {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("log");
        let log_key = dir.path().join("log.key");
        let origin = "bench.blindmatch.example/log";
        let vkey = tlog::init(&log, origin, &log_key)?.vkey.to_string();
        let key_file = blindmatch_server::keyfile::read_log_key(&log_key)?;
        // n versions of a table, each signed; written in one go.
        let entries: Vec<LogEntry> = (1..=n as u64)
            .map(|v| {
                LogEntry::new(
                    Manifest::for_table(&table.table, v, v, None).sign(&operator),
                    Vec::new(),
                )
            })
            .collect::<Result<_, _>>()?;
        let raw: Vec<Vec<u8>> = entries.iter().map(LogEntry::encode).collect();
        tlog::write_log(&log, &key_file, &raw, 0)?;

        // The witnesses (real ones) see the log at n entries, then the
        // operator appends version n + 1 and asks them again: the daily
        // cost.
        let (append_ms, witness_ms, policy) = if witnesses_built {
            let wdir = dir.path().join("w");
            let out = Command::new(script())
                .arg("start")
                .arg(&wdir)
                .arg(origin)
                .arg(&vkey)
                .output()?;
            anyhow::ensure!(out.status.success(), "starting the witnesses");
            let lines = String::from_utf8(out.stdout)?;
            let policy = LogPolicy::parse(&format!(
                "log {vkey}\n{lines}group both all lite omni\nquorum both\n"
            ))?;
            let options = WitnessOptions {
                attempts: 1,
                timeout: Duration::from_secs(10),
            };
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(tlog::witness(&log, &policy, options))?;
            let next = dir.path().join("next.bmt");
            write_table_file(&next, &table, &operator, n as u64 + 1)?;
            let t = Instant::now();
            tlog::append(&log, &key_file, &next)?;
            let append = t.elapsed();
            let t = Instant::now();
            let report = rt.block_on(tlog::witness(&log, &policy, options))?;
            let witness = t.elapsed();
            let _ = Command::new(script()).arg("stop").arg(&wdir).status();
            anyhow::ensure!(report.quorum_met, "the witnesses did not cosign: {report}");
            (
                Some(append.as_secs_f64() * 1e3),
                Some(witness.as_secs_f64() * 1e3),
                policy,
            )
        } else {
            let policy = LogPolicy::parse(&format!("log {vkey}\nquorum none\n"))?;
            (None, None, policy)
        };

        // What GetManifest carries for the newest entry, for a client that
        // held the checkpoint of a week before.
        let state = tlog::read(&log, policy.log())?;
        let size = state.leaves.len();
        let index = size - 1;
        let proof = TlogProof {
            extra: None,
            index: index as u64,
            path: merkle::inclusion_proof(&state.leaves, index),
            checkpoint: state.note.clone(),
        };
        let held = size.saturating_sub(7).max(1);
        let consistency = merkle::consistency_proof(&state.leaves, held);
        let proof_text = proof.encode();
        let consistency_bytes: Vec<Vec<u8>> = consistency.iter().map(|h| h.to_vec()).collect();
        let entry = &state.entries[index];
        let signed = entry.manifest;
        let (statement, signature) = (signed.manifest.encode(), signed.signature);
        let operator_key = operator.verifying_key();
        // The client's check: the manifest's signature is not counted (it is
        // the same with or without a log); the log's part is.
        let verified = VerifiedManifest::verify(&statement, &signature, &operator_key)?;
        let t = Instant::now();
        for _ in 0..args.checks {
            let m = verified.clone().require_logged(
                &policy,
                proof_text.as_bytes(),
                &consistency_bytes,
                entry.cosignatures(),
            )?;
            std::hint::black_box(m);
        }
        let check_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(args.checks);
        // The floor: the Ed25519 verifications of the checkpoint (the log's
        // and one per cosignature the policy checks).
        let verifications = 1 + state.note.signatures().len().saturating_sub(1);
        let t = Instant::now();
        for _ in 0..args.checks {
            for _ in 0..verifications {
                std::hint::black_box(VerifiedManifest::verify(
                    &statement,
                    &signature,
                    &operator_key,
                )?);
            }
        }
        let floor_us = t.elapsed().as_secs_f64() * 1e6 / f64::from(args.checks);
        let show = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
        println!(
            "{:>8} | {:>11} {:>12} | {:>10.1} {:>9.1} {:>6.2} | {:>10} {:>10}",
            size,
            proof_text.len(),
            consistency.len() * 32,
            check_us,
            floor_us,
            check_us / floor_us,
            show(append_ms),
            show(witness_ms)
        );
    }
    Ok(())
}

/// A table file for version `v` of `table`, as `build` writes one.
fn write_table_file(
    path: &Path,
    table: &blindmatch_protocol::BuiltTable,
    operator: &OperatorSigningKey,
    v: u64,
) -> anyhow::Result<()> {
    let bundle = blindmatch_server::bundle::Bundle {
        table: table.table.clone(),
        index: table.index.clone(),
        manifest: Manifest::for_table(&table.table, v, v, None).sign(operator),
        history: blindmatch_server::bundle::History::default(),
        placement: Some(table.placement.clone()),
        cosignatures: Vec::new(),
    };
    blindmatch_server::bundle::write(path, &bundle)
}
