//! `blindmatch-server demo`: the main job on a built-in list, in one process.
//!
//! It generates a sample list (by default 100,000 SHA-256 values plus a few
//! known values of every item type), a key and a table, then plays the client:
//! it downloads the table bytes, validates them and makes vouchers for a mix
//! of listed and unlisted items. The server opens the vouchers. The output
//! shows side by side what the client saw (acknowledgements only) and what
//! the server learned (the matches, nothing about the rest).
//!
//! The transport here is a byte buffer in memory; the gRPC service replaces it
//! when the match-service work lands, and this command will then run over
//! loopback.

use std::collections::BTreeSet;
use std::time::Instant;

use anyhow::{Context, bail};
use blindmatch_protocol::{
    BlindedTable, ClientTable, Item, ItemType, Matcher, ServerKey, TableBuilder, Voucher,
    voucher_len,
};
use sha2::{Digest, Sha256};

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
}

fn sample_submissions() -> anyhow::Result<Vec<Submission>> {
    let mut out = Vec::new();
    let mut add = |label, t, hex: &str, listed, ad: &str| -> anyhow::Result<()> {
        out.push(Submission {
            label,
            item: Item::parse(t, hex).with_context(|| format!("built-in sample {label}"))?,
            listed,
            associated_data: ad.to_string(),
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
    Ok(out)
}

/// Runs the demo; `Ok(true)` if the server recorded exactly the listed items
/// that were submitted.
///
/// # Errors
/// Only on an internal failure (building the table, a decode error).
pub fn run(args: &DemoArgs) -> anyhow::Result<bool> {
    let submissions = sample_submissions()?;
    let mut list: Vec<Item> = (0..args.entries)
        .map(|i| {
            Item::new(
                ItemType::Sha256,
                &Sha256::digest(format!("blindmatch demo entry {i}")),
            )
        })
        .collect::<Result<_, _>>()?;
    list.extend(
        submissions
            .iter()
            .filter(|s| s.listed)
            .map(|s| s.item.clone()),
    );

    println!("== server: list of {} entries", list.len());
    let key = ServerKey::generate(&mut rand::rng());
    let mut seed = [0u8; 32];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut seed);
    let started = Instant::now();
    let built = TableBuilder::new(seed).build(&key, list)?;
    let header = *built.table.header();
    let table_bytes = built.table.encode();
    println!(
        "   built table: {} slots, k = {}, {:.1} MB, in {:.2} s",
        header.n_slots,
        header.k,
        table_bytes.len() as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let matcher = Matcher::new(&key, &built.table, built.index)?;

    println!(
        "== client: downloads {} bytes and validates every slot",
        table_bytes.len()
    );
    let started = Instant::now();
    let client = ClientTable::new(BlindedTable::decode(&table_bytes)?)?;
    println!("   validated in {:.2} s", started.elapsed().as_secs_f64());

    let mut rng = rand::rng();
    let mut wire = Vec::new();
    for s in &submissions {
        wire.push(
            client
                .create_voucher(&s.item, s.associated_data.as_bytes(), &mut rng)?
                .encode(),
        );
    }
    // Every voucher has one size, whatever the item and associated data.
    if wire.iter().any(|w| w.len() != voucher_len(header.k)) {
        bail!("voucher sizes differ");
    }

    println!();
    println!(
        "{:<34} | {:<22} | server recorded",
        "client submitted", "client saw"
    );
    println!("{:-<34}-+-{:-<22}-+-{:-<40}", "", "", "");
    let mut recorded = BTreeSet::new();
    for (s, w) in submissions.iter().zip(&wire) {
        let voucher = Voucher::decode(w, header.k)?;
        let outcome = matcher.open(&voucher)?;
        let server_view = match &outcome {
            Some(m) => {
                recorded.insert((m.item.item_type(), m.item.to_hex()));
                format!(
                    "MATCH entry {} {} {}… ad={:?}",
                    m.entry,
                    m.item.item_type(),
                    &m.item.to_hex()[..12],
                    String::from_utf8_lossy(&m.associated_data)
                )
            }
            None => "(nothing)".to_string(),
        };
        println!(
            "{:<34} | {:<22} | {server_view}",
            s.label,
            format!("ack, {} B sent", w.len())
        );
    }

    let expected: BTreeSet<_> = submissions
        .iter()
        .filter(|s| s.listed)
        .map(|s| (s.item.item_type(), s.item.to_hex()))
        .collect();
    println!();
    let ok = recorded == expected;
    if ok {
        println!(
            "OK: the server recorded exactly the {} listed items submitted and nothing about the {} others; \
             the client saw the same acknowledgement for all {}.",
            expected.len(),
            submissions.len() - expected.len(),
            submissions.len()
        );
    } else {
        println!("FAIL: recorded matches differ from the listed items submitted");
    }
    Ok(ok)
}
