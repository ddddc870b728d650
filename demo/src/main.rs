//! `blindmatch-demo`: the main job on a built-in list, in one command
//! (`cargo run --release -p blindmatch-demo`). It exits 0 only if the server
//! recorded exactly the listed items submitted, and on day 3 exactly those
//! of the account that crossed t.
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
//! Then "day 3": the operator signs version 3 in threshold mode (t = 3, s = 2,
//! SPEC Section 14) and two accounts upload: one stays below the threshold
//! (the server holds candidates and nothing else), the other crosses it (its
//! matches are revealed with their associated data, and its synthetic
//! vouchers are found out).
//! Then "day 4", the list audit (SPEC Section 15, [`audit`]): two hotlines
//! that list the demo's entries and some of their own audit version 3
//! against their own lists and co-sign it, and a second client pinned to
//! both requires both co-signatures. The operator then slips a hash only
//! hotline A lists into version 4: B's audit refuses and names the slot, B
//! does not co-sign, and the pinned client refuses version 4 while it keeps
//! submitting against version 3, which it audited.
//! Then "day 5", the transparency log (SPEC Section 16, [`tlog`]): versions
//! 4 and 5 are logged and cosigned by two real witnesses (litewitness and
//! omniwitness, when `scripts/witnesses.sh install` has built them; the day
//! is skipped, loudly, when it has not), a client pinned to the log accepts
//! version 5 with its proof, refuses a version served to it alone, and a
//! second table for version 5 is refused by `log append` and, forced into
//! the log by hand, found by the monitor.

mod audit;
mod tlog;

use std::collections::BTreeSet;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use blindmatch_client::{Client, Table, TableCache, Upload};
use blindmatch_protocol::threshold::{AccountSecret, SyntheticRate};
use blindmatch_protocol::{Item, ItemType};
use blindmatch_server::{BuildKind, BuildOptions, ServeConfig, keyfile, store};
use clap::Parser;
use sha2::{Digest, Sha256};

/// Run everything on a built-in sample list over loopback, and show what
/// each side saw. Exits 0 only if exactly the listed items submitted were
/// recorded.
#[derive(Debug, Parser)]
#[command(name = "blindmatch-demo", version)]
struct Args {
    /// Number of generated SHA-256 list entries (the known ones are added).
    #[arg(long, default_value_t = 100_000)]
    entries: usize,
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
    table: &Table,
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

/// Threshold mode's t and s in the demo: small, so that a handful of uploads
/// shows both sides of the threshold.
const DEMO_T: u16 = 3;
const DEMO_S: u16 = 2;

/// One account's uploads on day 3, by the labels of the samples (all listed
/// from day 2 on) and a few unlisted values.
struct DemoAccount {
    name: &'static str,
    /// The seed is SHA-256 of this: fixed so that every run tells the same
    /// story (which vouchers come out synthetic is the seed's secret coin,
    /// and these were picked for one account on each side of t). An app
    /// makes its secret with `blindmatch_client::account::create`, from the
    /// system's CSPRNG.
    seed_label: &'static str,
    listed: &'static [&'static str],
    unlisted: usize,
}

const DEMO_ACCOUNTS: [DemoAccount; 2] = [
    DemoAccount {
        name: "user-17",
        seed_label: "blindmatch demo account user-17 6",
        listed: &["sha256 (listed)", "md5 (listed)"],
        unlisted: 4,
    },
    DemoAccount {
        name: "user-42",
        seed_label: "blindmatch demo account user-42 0",
        listed: &[
            "sha1 (listed)",
            "pdq (listed)",
            "bytes (listed)",
            "sha256 (listed on day 2)",
        ],
        unlisted: 4,
    },
];

/// What one account sent on day 3, as its client knows it.
struct AccountRun {
    secret: AccountSecret,
    uploads: Vec<Upload>,
    /// Per upload: listed, and whether its voucher was synthetic (the
    /// client's secret; the server cannot tell below t).
    listed: Vec<bool>,
    synthetic: Vec<bool>,
}

fn demo_accounts(submissions: &[Submission]) -> anyhow::Result<Vec<AccountRun>> {
    let mut out = Vec::new();
    for a in &DEMO_ACCOUNTS {
        // A quarter of the vouchers synthetic: within s = 2 among the
        // t + s = 5 latest with high probability (papers/SECURITY.md 9).
        let secret = AccountSecret::from_parts(
            a.name.as_bytes(),
            Sha256::digest(a.seed_label.as_bytes()).into(),
            SyntheticRate::from_probability(0.25),
        )?;
        let keys = secret.keys(DEMO_T, DEMO_S)?;
        let mut uploads = Vec::new();
        let mut listed = Vec::new();
        for label in a.listed {
            let s = submissions
                .iter()
                .find(|s| s.label == *label)
                .context("a demo account names a sample that does not exist")?;
            listed.push(true);
            uploads.push((s.item.clone(), format!("day 3 / {} / {label}", a.name)));
        }
        for i in 0..a.unlisted {
            let value = Sha256::digest(format!("{} private photo {i}", a.name));
            listed.push(false);
            uploads.push((
                Item::new(ItemType::Sha256, &value)?,
                format!("day 3 / {} / private photo {i}", a.name),
            ));
        }
        let uploads: Vec<Upload> = uploads
            .into_iter()
            .map(|(item, ad)| {
                // The platform's id for the upload: here a hash of its name.
                let mut voucher_id = [0u8; 16];
                voucher_id.copy_from_slice(&Sha256::digest(ad.as_bytes())[..16]);
                Upload {
                    voucher_id,
                    item,
                    associated_data: ad.into_bytes(),
                }
            })
            .collect();
        let synthetic = uploads
            .iter()
            .map(|u| keys.is_synthetic(&u.voucher_id))
            .collect();
        out.push(AccountRun {
            secret,
            uploads,
            listed,
            synthetic,
        });
    }
    Ok(out)
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
async fn run(args: &Args) -> anyhow::Result<bool> {
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
    keyfile::write_new(&key)?;
    let signing_key = dir.path().join("operator.sign");
    let operator = keyfile::write_new_signing(&signing_key)?.verifying_key();
    let opts = BuildOptions {
        default_type: None,
        k: None,
        load_factor: None,
        progress: false,
        signing_key,
        base: None,
        decoys: 0,
        threshold: None,
    };
    let (l, k, t, o) = (list.clone(), key.clone(), table.clone(), opts.clone());
    let report =
        tokio::task::spawn_blocking(move || blindmatch_server::build(&l, &k, &t, &o)).await??;
    let header = *report.bundle.table.header();
    println!(
        "== server: built and signed table version 1 of {} entries in {:.2} s: {} slots, k = {}",
        report.entries, report.seconds, header.n_slots, header.k
    );
    drop(report);

    let server = blindmatch_server::serve::start(ServeConfig::new(
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
            ..opts.clone()
        },
    );
    let report =
        tokio::task::spawn_blocking(move || blindmatch_server::build(&l, &k, &t, &o)).await??;
    std::fs::rename(&next, &table).context("publishing version 2")?;
    let swap = server.reload().await?;
    if let BuildKind::Update { added, changed, .. } = report.kind {
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
            manifest.version(),
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

    // Day 3: threshold mode. Version 3 (one more entry, so that there is a
    // new table to swap to) is signed with t and s; the client follows the
    // manifest and makes version-2 vouchers under each account's secret.
    write_list(&list, args.entries + 1, &submissions, true)?;
    let (l, k, t, o) = (
        list.clone(),
        key.clone(),
        next.clone(),
        BuildOptions {
            base: Some(table.clone()),
            threshold: Some((DEMO_T, DEMO_S)),
            ..opts
        },
    );
    tokio::task::spawn_blocking(move || blindmatch_server::build(&l, &k, &t, &o)).await??;
    std::fs::rename(&next, &table).context("publishing version 3")?;
    let swap = server.reload().await?;
    println!(
        "== server: day 3: signed version 3 in threshold mode (t = {DEMO_T}, s = {DEMO_S}) and {swap}"
    );
    let manifest = client.manifest().await?;
    let (cached, _) = client.refresh(&cached, &manifest, &cache).await?;
    let runs = demo_accounts(&submissions)?;
    let mut day3_vouchers = 0u64;
    for run in &runs {
        let n = client
            .check_account(&manifest, &cached, &run.secret, &run.uploads)
            .await?;
        day3_vouchers += n as u64;
    }
    if !server
        .wait_processed(
            submissions.len() as u64 + day3_vouchers,
            Duration::from_secs(30),
        )
        .await
    {
        bail!("the server did not process the day-3 vouchers within 30 s");
    }
    let audit_ok = day4(&dir, &server, (&key, operator), (&list, &table, &next)).await?;
    let log_ok = tlog::day5(&tlog::Operator {
        dir: dir.path(),
        key: &key,
        operator,
        list: &list,
        table: &table,
    })
    .await?;
    let records = store::read_all(&data)?;
    let accounts = store::sqlite::read_accounts(&data)?;
    server.shutdown().await?;
    let (records, threshold_records): (Vec<_>, Vec<_>) =
        records.into_iter().partition(|r| r.account_hex.is_none());

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
    let threshold_ok = show_threshold(&runs, &threshold_records, &accounts);
    println!();
    let ok = recorded == expected
        && records.len() == expected.len()
        && acks_identical
        && threshold_ok
        && audit_ok
        && log_ok != Some(false);
    if ok {
        println!(
            "OK: the server recorded exactly the {} listed items submitted, with their associated data, and \
             nothing about the {} others; the client saw the same acknowledgement for all {}.",
            expected.len(),
            submissions.len() - expected.len(),
            submissions.len()
        );
        println!(
            "OK: in threshold mode the server learned nothing of the account below t but a count of candidates \
             it cannot split into real and synthetic, and, of the account that crossed t, exactly its listed uploads."
        );
        println!(
            "OK: the list audit: both hotlines co-signed the table they audited; the version with a hash one of them \
             does not list was refused by that hotline, naming the slot, and by the client that requires both."
        );
        if log_ok.is_some() {
            println!(
                "OK: the transparency log: both versions logged and cosigned by both witnesses; the client accepted the \
                 logged version with its proof and refused one served to it alone; a second table for a logged version \
                 was refused by the append and, forced in by hand, found by the monitor."
            );
        }
    } else {
        println!("FAIL: the recorded matches are not exactly the listed items submitted");
    }
    Ok(ok)
}

/// Day 4: the list audit. Returns whether it went as SPEC Section 15 says:
/// both hotlines co-sign version 3, the pinned client accepts it; B refuses
/// version 4 naming the slot of the slipped hash, the pinned client refuses
/// version 4, and its submissions against version 3 are still acknowledged.
async fn day4(
    dir: &tempfile::TempDir,
    server: &blindmatch_server::ServerHandle,
    (key, operator): (&std::path::Path, blindmatch_protocol::OperatorVerifyingKey),
    (list, table, next): (&std::path::Path, &std::path::Path, &std::path::Path),
) -> anyhow::Result<bool> {
    use audit::{Organisation, Outcome};
    let orgs = [
        Organisation::new(dir.path(), "Hotline A", list)?,
        Organisation::new(dir.path(), "Hotline B", list)?,
    ];
    let v3 = dir.path().join("table.v3");
    std::fs::copy(table, &v3)?;
    let mut cosignatures = Vec::new();
    for org in &orgs {
        match org.audit(dir.path(), (key, operator), &v3, None)? {
            Outcome::CoSigned(c) => cosignatures.push(c),
            Outcome::Refused(why) => bail!("{} refused version 3: {why}", org.name),
        }
    }
    let attached = blindmatch_server::audit::attach(table, &cosignatures)?;
    server.reload().await?;
    println!(
        "== audit: day 4: {} audited version 3 against their own lists (every slot an entry of theirs or a filler) and co-signed it; the operator attached both",
        orgs.iter()
            .map(|o| o.name.as_str())
            .collect::<Vec<_>>()
            .join(" and ")
    );
    let mut pinned = Client::connect(&server.url(), operator).await?;
    let keys: Vec<_> = orgs.iter().map(|o| o.key).collect();
    pinned.set_quorum(Some(blindmatch_client::core::quorum(&keys, 2)?));
    let m3 = pinned.manifest().await?;
    let cache = TableCache::new(dir.path().join("pinned-cache"));
    let t3 = pinned.table(&m3, &cache).await?;
    let names: Vec<&str> = m3.cosigners().iter().map(|(_, n)| n.as_str()).collect();
    println!(
        "== client (pinned to both, 2 of 2): version 3 co-signed by {}: accepted",
        names.join(", ")
    );

    // Version 4 slips in a hash only A lists.
    let slipped = audit::own_item("Hotline A", 7);
    let mut text = std::fs::read_to_string(list)?;
    text.push_str(&format!("sha256 {}\n", slipped.to_hex()));
    std::fs::write(list, text)?;
    let opts = BuildOptions {
        default_type: None,
        k: None,
        load_factor: None,
        progress: false,
        signing_key: dir.path().join("operator.sign"),
        base: Some(table.to_owned()),
        decoys: 1,
        threshold: None,
    };
    let (l, k, t) = (list.to_owned(), key.to_owned(), next.to_owned());
    tokio::task::spawn_blocking(move || blindmatch_server::build(&l, &k, &t, &opts)).await??;
    let (a, b) = (
        orgs[0].audit(dir.path(), (key, operator), next, Some(&v3))?,
        orgs[1].audit(dir.path(), (key, operator), next, Some(&v3))?,
    );
    let a_signed = match a {
        Outcome::CoSigned(c) => c,
        Outcome::Refused(why) => bail!("A refused version 4, which holds only its entries: {why}"),
    };
    let b_refusal = match b {
        Outcome::Refused(why) => why,
        Outcome::CoSigned(_) => bail!("B co-signed version 4, which holds a hash it does not list"),
    };
    let named = b_refusal
        .lines()
        .find(|l| l.trim_start().starts_with("slot "));
    println!(
        "== audit: day 4: the operator slipped a hash only {} lists into version 4; {} passed its delta audit and co-signed; {} refused: {}",
        orgs[0].name,
        orgs[0].name,
        orgs[1].name,
        named.map_or("(no slot named)", str::trim)
    );
    blindmatch_server::audit::attach(next, &[a_signed])?;
    std::fs::rename(next, table).context("publishing version 4")?;
    server.reload().await?;
    let refused = pinned.manifest().await;
    let refused_ok = matches!(
        &refused,
        Err(blindmatch_client::ClientError::Refused(
            blindmatch_client::core::Error::BelowQuorum {
                found: 1,
                required: 2,
                ..
            }
        ))
    );
    match &refused {
        Err(e) => println!("== client (pinned to both): version 4 refused: {e}"),
        Ok(m) => println!(
            "== client (pinned to both): version 4 ACCEPTED (v{})",
            m.version()
        ),
    }
    // It keeps working on version 3, still accepted for the grace period.
    let carol = blindmatch_client::core::generate_account(b"carol", 0.0, &mut rand::rng())?;
    let mut voucher_id = [0u8; 16];
    voucher_id.copy_from_slice(&Sha256::digest("day 4 / carol")[..16]);
    let uploads = [Upload {
        voucher_id,
        item: Item::new(ItemType::Sha256, &Sha256::digest("carol's photo"))?,
        associated_data: b"day 4 / carol".to_vec(),
    }];
    let sent = pinned.check_account(&m3, &t3, &carol, &uploads).await?;
    println!(
        "== client (pinned to both): still submitting against version 3, which it audited: {sent} voucher(s) acknowledged"
    );
    Ok(attached.now.len() == 2 && named.is_some() && refused_ok && sent > 0)
}

/// Prints day 3 from both sides; returns whether the server recorded
/// exactly what SPEC 14.6 says it must: nothing for an account with fewer
/// than t real listed vouchers, and every real listed upload of one with t.
fn show_threshold(
    runs: &[AccountRun],
    records: &[store::MatchRecord],
    accounts: &[store::AccountSummary],
) -> bool {
    println!();
    println!("day 3, threshold mode (t = {DEMO_T}, s = {DEMO_S}):");
    println!(
        "{:<9} | {:<44} | server knows",
        "account", "client sent (its own secret)"
    );
    println!("{:-<9}-+-{:-<44}-+-{:-<50}", "", "", "");
    let mut ok = true;
    for run in runs {
        let id = run.secret.account_id();
        let hex_id = hex::encode(id);
        let real_listed = run
            .listed
            .iter()
            .zip(&run.synthetic)
            .filter(|&(&l, &s)| l && !s)
            .count();
        let synthetic = run.synthetic.iter().filter(|&&s| s).count();
        let summary = accounts.iter().find(|a| a.account_hex == hex_id);
        let mine: Vec<_> = records
            .iter()
            .filter(|r| r.account_hex.as_deref() == Some(hex_id.as_str()))
            .collect();
        let sent = format!(
            "{} uploads: {real_listed} listed (real), {synthetic} synthetic",
            run.uploads.len()
        );
        let knows = match summary {
            Some(a) if a.real == 0 => {
                format!("{} candidates, nothing else (below t)", a.unrevealed)
            }
            Some(a) => format!(
                "crossed t: {} matches revealed, {} synthetic found out",
                a.real, a.synthetic
            ),
            None => "nothing".to_string(),
        };
        println!("{:<9} | {sent:<44} | {knows}", String::from_utf8_lossy(id));
        for r in &mine {
            println!(
                "{:<9} | {:<44} |   MATCH entry {} {} {}… ad={:?}",
                "",
                "",
                r.entry,
                r.item_type,
                &r.item_hex[..12],
                String::from_utf8_lossy(&r.associated_data)
            );
        }
        // What must hold: below t real listed vouchers nothing is recorded;
        // at t or more, exactly the real listed uploads.
        let expected: BTreeSet<Vec<u8>> = if real_listed >= usize::from(DEMO_T) {
            run.uploads
                .iter()
                .zip(run.listed.iter().zip(&run.synthetic))
                .filter(|&(_, (&l, &s))| l && !s)
                .map(|(u, _)| u.associated_data.clone())
                .collect()
        } else {
            BTreeSet::new()
        };
        let got: BTreeSet<Vec<u8>> = mine.iter().map(|r| r.associated_data.clone()).collect();
        ok &= got == expected && mine.len() == expected.len();
    }
    // The story needs one account on each side of t.
    let crossed = runs
        .iter()
        .filter(|r| {
            r.listed
                .iter()
                .zip(&r.synthetic)
                .filter(|&(&l, &s)| l && !s)
                .count()
                >= usize::from(DEMO_T)
        })
        .count();
    ok && crossed == 1
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    // The demo tells its own story on stdout; the service's log shows
    // warnings only (RUST_LOG overrides).
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .init();
    match run(&args).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
