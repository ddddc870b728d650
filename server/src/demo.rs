//! `blindmatch-server demo`: the main job on a built-in list, in one command.
//!
//! In a temporary directory it writes a sample list (by default 100,000
//! generated SHA-256 values plus known values of every item type), runs
//! `keygen` and `build`, starts the real gRPC server on an ephemeral loopback
//! port, and runs the real client library: fetch the manifest, download and
//! verify the table, submit vouchers for a mix of listed and unlisted items.
//! Then "day 2": the operator builds version 2 of the table in place with
//! one more entry, the server swaps to it without a restart, the client
//! catches up with a delta and checks two more items. It prints side by
//! side what the client saw (acknowledgements only) and what the server
//! recorded in its match database (the matches, and nothing about the rest).

use std::collections::BTreeSet;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use blindmatch_client::{Client, TableCache};
use blindmatch_protocol::{Item, ItemType};
use sha2::{Digest, Sha256};

use crate::{BuildOptions, ServeConfig};

/// Flags of `demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Number of generated SHA-256 list entries (the known ones are added).
    #[arg(long, default_value_t = 100_000)]
    pub entries: usize,
}

/// One thing the sample client submits.
struct Submission {
    label: &'static str,
    item: Item,
    listed: bool,
    associated_data: String,
    /// Listed (or checked) from version 2 on.
    day2: bool,
}

fn sample_submissions() -> anyhow::Result<Vec<Submission>> {
    let mut out = Vec::new();
    let mut add = |label: &'static str, t, hex: &str, listed, ad: &str| -> anyhow::Result<()> {
        out.push(Submission {
            label,
            item: Item::parse(t, hex).with_context(|| format!("built-in sample {label}"))?,
            listed,
            associated_data: ad.to_string(),
            day2: label.contains("day 2"),
        });
        Ok(())
    };
    // SHA-256 of the empty string, MD5 of "abc", SHA-1 of "abc": recognisable values.
    add(
        "sha256 (listed)",
        ItemType::Sha256,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        true,
        "upload 1001 / user 17",
    )?;
    add(
        "md5 (listed)",
        ItemType::Md5,
        "900150983cd24fb0d6963f7d28e17f72",
        true,
        "upload 1002 / user 17",
    )?;
    add(
        "sha1 (listed)",
        ItemType::Sha1,
        "a9993e364706816aba3e25717850c26c9cd0d89d",
        true,
        "upload 1003 / user 42",
    )?;
    add(
        "pdq (listed)",
        ItemType::Pdq,
        "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22",
        true,
        "upload 1004 / user 42",
    )?;
    add(
        "bytes (listed)",
        ItemType::Bytes,
        "0123456789abcdef0123456789abcdef0123456789abcdef",
        true,
        "upload 1005 / user 99",
    )?;
    add(
        "sha256 (unlisted)",
        ItemType::Sha256,
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        false,
        "upload 2001 / user 17",
    )?;
    add(
        "md5 (unlisted)",
        ItemType::Md5,
        "5d41402abc4b2a76b9719d911017c592",
        false,
        "upload 2002 / user 42",
    )?;
    add(
        "pdq (unlisted)",
        ItemType::Pdq,
        "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b23",
        false,
        "upload 2003 / user 42",
    )?;
    add(
        "sha256 bytes as pdq (unlisted)",
        ItemType::Pdq,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        false,
        "upload 2004 / user 99",
    )?;
    // SHA-256 of "abc": put on the list on day 2.
    add(
        "sha256 (listed on day 2)",
        ItemType::Sha256,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        true,
        "upload 3001 / user 17",
    )?;
    add(
        "sha1 (unlisted, day 2)",
        ItemType::Sha1,
        "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d",
        false,
        "upload 3002 / user 42",
    )?;
    Ok(out)
}

/// Submits each item on its own, so that each acknowledgement can be shown;
/// returns what the client saw for each.
async fn check_each(
    client: &mut Client,
    manifest: &blindmatch_client::Manifest,
    table: &blindmatch_protocol::ClientTable,
    submissions: impl Iterator<Item = &Submission>,
) -> anyhow::Result<Vec<String>> {
    let mut saw = Vec::new();
    for s in submissions {
        let item = [(s.item.clone(), s.associated_data.clone().into_bytes())];
        let n = client.check(manifest, table, &item).await?;
        saw.push(format!("ack: {n} accepted"));
    }
    Ok(saw)
}

/// Writes the demo list: `entries` generated SHA-256 values and the listed
/// samples (those listed on day 2 only if `day2`).
fn write_list(
    path: &std::path::Path,
    entries: usize,
    submissions: &[Submission],
    day2: bool,
) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(f, "# blindmatch demo list")?;
    for i in 0..entries {
        writeln!(
            f,
            "sha256 {}",
            hex::encode(Sha256::digest(format!("blindmatch demo entry {i}")))
        )?;
    }
    for s in submissions.iter().filter(|s| s.listed && (day2 || !s.day2)) {
        writeln!(f, "{} {}", s.item.item_type(), s.item.to_hex())?;
    }
    f.flush()?;
    Ok(())
}

/// Runs the demo; `Ok(true)` if the server recorded exactly the listed items
/// that were submitted.
///
/// # Errors
/// On an internal failure (files, the server, the client).
pub async fn run(args: &DemoArgs) -> anyhow::Result<bool> {
    let submissions = sample_submissions()?;
    let dir = tempfile::tempdir().context("temporary directory")?;
    let (list, key, table, data) = (
        dir.path().join("list.txt"),
        dir.path().join("server.key"),
        dir.path().join("table.bmt"),
        dir.path().join("data"),
    );

    // The operator's side: a list file, two keys, a table.
    write_list(&list, args.entries, &submissions, false)?;
    crate::keyfile::write_new(&key)?;
    let signing_key = dir.path().join("operator.sign");
    let operator = crate::keyfile::write_new_signing(&signing_key)?.verifying_key();
    let opts = BuildOptions {
        default_type: None,
        k: None,
        load_factor: None,
        progress: false,
        signing_key,
        base: None,
        decoys: 0,
    };
    let (l, k, t, o) = (list.clone(), key.clone(), table.clone(), opts.clone());
    let report = tokio::task::spawn_blocking(move || crate::build(&l, &k, &t, &o)).await??;
    let header = *report.bundle.table.header();
    println!(
        "== server: built and signed table version 1 of {} entries in {:.2} s: {} slots, k = {}",
        report.entries, report.seconds, header.n_slots, header.k
    );
    drop(report);

    let server = crate::serve::start(ServeConfig::new(
        table.clone(),
        key.clone(),
        data.clone(),
        "127.0.0.1:0".parse()?,
    ))
    .await?;
    println!("== server: listening on {}", server.url());

    // The app's side: the real client library over loopback gRPC.
    let started = Instant::now();
    let mut client = Client::connect(&server.url(), operator).await?;
    let manifest = client.manifest().await?;
    let cache = TableCache::new(dir.path().join("cache"));
    let cached = client.table(&manifest, &cache).await?;
    println!(
        "== client: checked the operator's signature, downloaded the table ({:.1} MB) checking each chunk, validated it, in {:.2} s",
        header.slots_len() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let day1 = submissions.iter().filter(|s| !s.day2);
    let mut saw = check_each(&mut client, &manifest, &cached, day1).await?;

    // Day 2: version 2, built in place from version 1, swapped in while
    // serving; the client catches up with only the changed slots.
    write_list(&list, args.entries, &submissions, true)?;
    let next = dir.path().join("table.next");
    let (l, k, t, o) = (
        list.clone(),
        key.clone(),
        next.clone(),
        BuildOptions {
            base: Some(table.clone()),
            ..opts
        },
    );
    let report = tokio::task::spawn_blocking(move || crate::build(&l, &k, &t, &o)).await??;
    std::fs::rename(&next, &table).context("publishing version 2")?;
    let swap = server.reload().await?;
    if let crate::BuildKind::Update { added, changed, .. } = report.kind {
        println!(
            "== server: day 2: built version 2 in place ({added} entry added, {changed} slot{} changed) and {swap}",
            if changed == 1 { "" } else { "s" }
        );
    }
    let manifest = client.manifest().await?;
    let (cached, fetched) = client.refresh(&cached, &manifest, &cache).await?;
    if let blindmatch_client::Fetched::Delta { slots, bytes, .. } = fetched {
        println!(
            "== client: caught up to version {} with a delta of {slots} slot{} ({bytes} bytes, against {:.1} MB in full), verified against the signed digest, only those slots validated",
            manifest.version,
            if slots == 1 { "" } else { "s" },
            header.slots_len() as f64 / 1e6
        );
    } else {
        bail!("version 2 did not arrive as a delta: {fetched:?}");
    }
    let day2 = submissions.iter().filter(|s| s.day2);
    saw.extend(check_each(&mut client, &manifest, &cached, day2).await?);
    if !server
        .wait_processed(submissions.len() as u64, Duration::from_secs(30))
        .await
    {
        bail!("the server did not process the vouchers within 30 s");
    }
    let records = crate::store::read_all(&data)?;
    server.shutdown().await?;

    println!();
    println!(
        "{:<32} | {:<15} | server recorded",
        "client submitted", "client saw"
    );
    println!("{:-<32}-+-{:-<15}-+-{:-<50}", "", "", "");
    for (s, ack) in submissions.iter().zip(&saw) {
        let rec = records
            .iter()
            .find(|r| r.item_type == s.item.item_type().name() && r.item_hex == s.item.to_hex());
        let server_view = match rec {
            Some(r) => format!(
                "MATCH entry {} {} {}… ad={:?}",
                r.entry,
                r.item_type,
                &r.item_hex[..12],
                String::from_utf8_lossy(&r.associated_data)
            ),
            None => "(nothing)".to_string(),
        };
        println!("{:<32} | {:<15} | {server_view}", s.label, ack);
    }

    let recorded: BTreeSet<(String, String, Vec<u8>)> = records
        .iter()
        .map(|r| {
            (
                r.item_type.clone(),
                r.item_hex.clone(),
                r.associated_data.clone(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String, Vec<u8>)> = submissions
        .iter()
        .filter(|s| s.listed)
        .map(|s| {
            (
                s.item.item_type().name().to_string(),
                s.item.to_hex(),
                s.associated_data.clone().into_bytes(),
            )
        })
        .collect();
    let acks_identical = saw.iter().all(|a| a == &saw[0]);
    println!();
    let ok = recorded == expected && records.len() == expected.len() && acks_identical;
    if ok {
        println!(
            "OK: the server recorded exactly the {} listed items submitted, with their associated data, and \
             nothing about the {} others; the client saw the same acknowledgement for all {}.",
            expected.len(),
            submissions.len() - expected.len(),
            submissions.len()
        );
    } else {
        println!("FAIL: the recorded matches are not exactly the listed items submitted");
    }
    Ok(ok)
}
