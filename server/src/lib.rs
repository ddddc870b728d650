//! blindmatch match server.
//!
//! The cryptography lives in [`blindmatch_protocol`]; this crate turns it into
//! what an operator runs:
//!
//! - [`keygen`]: a new server key in a 0600 file ([`keyfile`]);
//!   [`signing_keygen`]: the operator's Ed25519 signing key;
//! - [`build`]: a hash list ([`list`]) into a table file ([`bundle`]): the
//!   public blinded table, the private entry index, the signed manifest,
//!   and, for a version built from the previous one, the changes since;
//! - [`serve`]: the gRPC service (`service`: table download, voucher
//!   submission; plus health and reflection), a match worker, and the match
//!   store ([`store`], SQLite);
//! - [`matches()`]: the recorded matches;
//! - [`demo`]: all of it on a built-in list, over loopback.
//!
//! `src/main.rs` only parses flags and calls these.

mod admission;
pub mod bundle;
pub mod config;
mod connections;
pub mod demo;
mod generation;
pub mod keyfile;
mod limits;
pub mod list;
pub mod metrics;
mod pipeline;
pub mod serve;
mod service;
pub mod store;
mod submission;
pub mod wire;

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use blindmatch_protocol::manifest::{
    Manifest, OperatorSigningKey, OperatorVerifyingKey, SignedManifest, ThresholdParams,
};
use blindmatch_protocol::merkle::{CHUNK_SLOTS, MerkleTree};
use blindmatch_protocol::table::{Base, UpdateOptions};
use blindmatch_protocol::{BlindedTable, Item, ItemType, TableBuilder};

pub use blindmatch_protocol as protocol;
pub use connections::ConnectionLimits;
pub use generation::Swap;
pub use pipeline::Retention;
pub use serve::{Limits, ServeConfig, ServerHandle, TlsFiles};

/// `keygen --out PATH`.
///
/// # Errors
/// If the file exists or cannot be written.
pub fn keygen(out: &Path) -> anyhow::Result<()> {
    let key = keyfile::write_new(out)?;
    println!("wrote server key {} (mode 0600)", out.display());
    println!("public key: {}", hex::encode(key.public_key().to_bytes()));
    Ok(())
}

/// `keygen --signing --out PATH`: the operator's Ed25519 signing key
/// (0600), and its verifying key in hex, printed and written to
/// `PATH.pub`, for clients to pin.
///
/// # Errors
/// If either file exists or cannot be written.
pub fn signing_keygen(out: &Path) -> anyhow::Result<OperatorVerifyingKey> {
    let key = keyfile::write_new_signing(out)?;
    let vk = hex::encode(key.verifying_key().to_bytes());
    let public = public_key_path(out);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&public)
        .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{vk}\n").as_bytes()))
        .with_context(|| format!("verifying key file {}", public.display()))?;
    println!("wrote operator signing key {} (mode 0600)", out.display());
    println!("operator verifying key (clients pin it): {vk}");
    println!("also written to {}", public.display());
    Ok(key.verifying_key())
}

/// Where `signing_keygen` writes the verifying key of `signing_key`.
pub fn public_key_path(signing_key: &Path) -> PathBuf {
    let mut p = signing_key.as_os_str().to_owned();
    p.push(".pub");
    p.into()
}

/// Options of `build`.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Type of bare values in the list.
    pub default_type: Option<ItemType>,
    /// Hash choices; the protocol default if `None`.
    pub k: Option<u8>,
    /// Load factor; the default for k if `None`.
    pub load_factor: Option<f64>,
    /// Show a progress bar (on a terminal).
    pub progress: bool,
    /// The operator's signing key, which signs the new version's manifest.
    pub signing_key: PathBuf,
    /// The previous version's table file: build the next version in place.
    pub base: Option<PathBuf>,
    /// With a base: empty slots given a fresh filler besides the real
    /// changes, to blur which slots those touched (SECURITY.md 6.1).
    pub decoys: u32,
    /// Threshold mode (SPEC Section 14): `Some((t, s))` signs a version-2
    /// manifest with threshold t and synthetic bound s; `Some((0, _))`
    /// signs version 1; `None` keeps the base's mode (version 1 without a
    /// base).
    pub threshold: Option<(u16, u16)>,
}

/// The threshold parameters a build signs: `opts.threshold`, else the
/// base's, with this version's placement weights.
fn threshold_of(
    opts: &BuildOptions,
    base: Option<&bundle::Bundle>,
    weights: &[u32],
) -> anyhow::Result<Option<ThresholdParams>> {
    let ts = match opts.threshold {
        Some((0, _)) => None,
        Some(ts) => Some(ts),
        None => base
            .and_then(|b| b.manifest.manifest.threshold)
            .map(|p| (p.threshold(), p.synthetic_bound())),
    };
    ts.map(|(t, s)| ThresholdParams::new(t, s, weights))
        .transpose()
        .context("--threshold / --synthetic-bound")
}

/// How a version was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildKind {
    /// A new table (first version, or no base given).
    Full,
    /// The next version of the base, unchanged entries in their slots.
    Update {
        /// Entries already in the base.
        kept: usize,
        /// Entries added.
        added: usize,
        /// Entries removed.
        removed: usize,
        /// Slots that differ from the base.
        changed: usize,
    },
    /// A base was given but could not be kept (the reason): a new table,
    /// which clients download in full.
    Rebuilt(String),
}

/// What `build` did.
pub struct BuildReport {
    /// The file written.
    pub bundle: bundle::Bundle,
    /// Entries in the table.
    pub entries: usize,
    /// Lines that held an entry, duplicates included.
    pub lines: usize,
    /// How.
    pub kind: BuildKind,
    /// Seconds spent building.
    pub seconds: f64,
}

/// Signs version `version` of `table`, in threshold mode (a version-2
/// statement, SPEC 14.8) with `threshold`.
pub fn sign_version(
    table: &BlindedTable,
    version: u64,
    threshold: Option<ThresholdParams>,
    key: &OperatorSigningKey,
) -> SignedManifest {
    Manifest {
        version,
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        table_id: *table.id(),
        digest: *MerkleTree::new(table.slots()).root(),
        chunk_slots: CHUNK_SLOTS,
        header: *table.header(),
        threshold,
    }
    .sign(key)
}

/// Parses a list file, refusing it whole if any line is bad or it is empty.
fn read_list(list_path: &Path, default_type: Option<ItemType>) -> anyhow::Result<Vec<Item>> {
    let file = std::fs::File::open(list_path)
        .with_context(|| format!("--list {}", list_path.display()))?;
    let parsed = list::parse(BufReader::new(file), default_type)
        .with_context(|| format!("reading {}", list_path.display()))?;
    if !parsed.bad.is_empty() {
        const SHOWN: usize = 20;
        let mut msg = format!(
            "{}: {} bad line(s); no table was built",
            list_path.display(),
            parsed.bad.len()
        );
        for b in parsed.bad.iter().take(SHOWN) {
            msg.push_str(&format!("\n  line {}: {}", b.line, b.message));
        }
        if parsed.bad.len() > SHOWN {
            msg.push_str(&format!("\n  ... and {} more", parsed.bad.len() - SHOWN));
        }
        bail!(msg);
    }
    if parsed.items.is_empty() {
        // Almost surely the wrong file; a table of fillers alone matches nothing.
        bail!(
            "{}: no entries (only blank lines and comments); no table was built",
            list_path.display()
        );
    }
    Ok(parsed.items)
}

/// `build --list FILE --key PATH --signing-key PATH --out PATH [--base PATH]`:
/// parses the whole list first and builds nothing if any line is bad.
///
/// With a base, the new version keeps every entry of the base that is
/// still listed in its slot (SPEC Section 13.1) and its history of changes
/// grows by this version's; if that is impossible (the list outgrew the
/// table, or the key changed: a rotation) a new table is built, and the
/// report says why.
///
/// # Errors
/// Bad lines (each with its number), unreadable files, or a build failure.
pub fn build(
    list_path: &Path,
    key_path: &Path,
    out: &Path,
    opts: &BuildOptions,
) -> anyhow::Result<BuildReport> {
    if let Some((t, s)) = opts.threshold.filter(|&(t, _)| t != 0) {
        // Checked before the build, which may take minutes.
        ThresholdParams::new(t, s, &[0, 0]).context("--threshold / --synthetic-bound")?;
    }
    let key = keyfile::read(key_path)?;
    let signing = keyfile::read_signing(&opts.signing_key)?;
    let items = read_list(list_path, opts.default_type)?;
    let lines = items.len();
    let base = match &opts.base {
        Some(b) => Some(bundle::read(b, true).with_context(|| format!("--base {}", b.display()))?),
        None => None,
    };
    let started = Instant::now();
    let mut rebuilt = None;
    if let Some(base) = &base {
        let k = base.table.header().k;
        if opts.k.is_some_and(|want| want != k) {
            bail!(
                "--k {} differs from the base table's k = {k}: build without --base",
                opts.k.unwrap_or(k)
            );
        }
        let placement = base
            .placement
            .as_ref()
            .context("the base has no placement")?;
        let version = base.manifest.manifest.version + 1;
        let mut update_opts = UpdateOptions::new(version, k);
        if let Some(l) = opts.load_factor {
            update_opts.max_load = l + blindmatch_protocol::table::UPDATE_LOAD_MARGIN;
        }
        update_opts.decoys = opts.decoys;
        let from = Base {
            table: &base.table,
            index: &base.index,
            placement,
        };
        match blindmatch_protocol::table::update(&key, from, items.clone(), &update_opts) {
            Ok(u) => {
                let history = bundle::History::next(
                    base.manifest.manifest.version,
                    *base.table.id(),
                    &base.history,
                    &u.changed,
                    base.table.header().n_slots,
                );
                let threshold = threshold_of(opts, Some(base), &u.placement.weights())?;
                let manifest = sign_version(&u.table, version, threshold, &signing);
                let kind = BuildKind::Update {
                    kept: u.kept,
                    added: u.added,
                    removed: u.removed,
                    changed: u.changed.len(),
                };
                let bundle = bundle::Bundle {
                    table: u.table,
                    index: u.index,
                    manifest,
                    history,
                    placement: Some(u.placement),
                };
                let seconds = started.elapsed().as_secs_f64();
                bundle::write(out, &bundle)?;
                return Ok(BuildReport {
                    bundle,
                    entries: u.kept + u.added,
                    lines,
                    kind,
                    seconds,
                });
            }
            Err(blindmatch_protocol::Error::NeedsRebuild(why)) => rebuilt = Some(why.to_string()),
            Err(e) => return Err(e.into()),
        }
    }

    let mut seed = [0u8; 32];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut seed);
    let mut builder = TableBuilder::new(seed);
    if let Some(k) = opts.k {
        builder = builder.k(k)?;
    }
    if let Some(l) = opts.load_factor {
        builder = builder.load_factor(l)?;
    }
    let bar = if opts.progress {
        indicatif::ProgressBar::new(0)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} slots, {per_sec}, eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let built = builder.build_with_progress(&key, items, &|done, total| {
        bar.set_length(total);
        bar.inc(done);
    })?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let version = base.as_ref().map_or(1, |b| b.manifest.manifest.version + 1);
    let threshold = threshold_of(opts, base.as_ref(), &built.placement.weights())?;
    let manifest = sign_version(&built.table, version, threshold, &signing);
    let entries = built.entries.len();
    let bundle = bundle::Bundle {
        table: built.table,
        index: built.index,
        manifest,
        history: bundle::History::default(),
        placement: Some(built.placement),
    };
    bundle::write(out, &bundle)?;
    Ok(BuildReport {
        bundle,
        entries,
        lines,
        kind: rebuilt.map_or(BuildKind::Full, BuildKind::Rebuilt),
        seconds,
    })
}

/// `matches (--data DIR | --store URL) [--accounts] [--json]`: the match
/// records, then threshold mode's accounts with candidates and their
/// counts; with `--accounts`, the accounts only.
///
/// # Errors
/// If the store cannot be read.
pub fn matches(store: &store::Location, json: bool, accounts_only: bool) -> anyhow::Result<()> {
    let accounts = store::read_accounts(store)?;
    if accounts_only && json {
        println!("{}", serde_json::to_string_pretty(&accounts)?);
        return Ok(());
    }
    let records = if accounts_only {
        Vec::new()
    } else {
        store::read_matches(store)?
    };
    if json {
        // The match records alone, as before threshold mode: `--accounts --json`
        // prints the accounts.
        println!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(());
    }
    if !accounts_only && records.is_empty() {
        println!("no matches recorded");
    } else if !accounts_only {
        println!(
            "{:<24}  {:<7}  {:>7}  {:<32}  {:<64}  associated data",
            "received", "type", "entry", "submission", "item"
        );
        for r in &records {
            println!(
                "{:<24}  {:<7}  {:>7}  {:<32}  {:<64}  {}{}",
                r.received_at(),
                r.item_type,
                r.entry,
                r.submission_id,
                r.item_hex,
                String::from_utf8_lossy(&r.associated_data).escape_debug(),
                r.account_hex
                    .as_ref()
                    .map_or_else(String::new, |a| format!("  (account {a})"))
            );
        }
        println!("{} match(es)", records.len());
    }
    if !accounts.is_empty() {
        // Threshold mode: below t the server holds candidates and nothing
        // else; their count mixes real and synthetic vouchers.
        println!();
        println!(
            "{:<32}  {:>4}  {:>10}  {:>8}  {:>9}  {:>8}",
            "account (threshold mode)", "t", "unrevealed", "revealed", "synthetic", "rejected"
        );
        for a in &accounts {
            println!(
                "{:<32}  {:>4}  {:>10}  {:>8}  {:>9}  {:>8}",
                a.account_hex, a.t, a.unrevealed, a.real, a.synthetic, a.rejected
            );
        }
        println!(
            "{} account(s) with candidates; below t the count is all the server knows",
            accounts.len()
        );
    }
    Ok(())
}
