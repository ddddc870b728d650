//! `build`: hash lists into a signed table file.
//!
//! Every list is read first ([`crate::lists`]: each file is its source's
//! complete current state; a value any list lists goes in) and nothing is
//! built if any record of any list is bad. A first version is a new table
//! ([`TableBuilder`]); the next version of a table file given as its base keeps every entry still
//! listed in its slot (SPEC Section 13.1, [`blindmatch_protocol::table::update`]),
//! so that clients catch up with a small delta, unless that is impossible
//! (the list outgrew the table, or the key changed), when a new table is
//! built and the report says why. Either way the manifest is signed with
//! the operator's key, in threshold mode if asked (SPEC 14.8).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use blindmatch_lists::{Combined, Report, Source};
use blindmatch_protocol::manifest::{
    Manifest, OperatorSigningKey, SignedManifest, ThresholdParams,
};
use blindmatch_protocol::table::{Base, HEADER_LEN, UpdateOptions};
use blindmatch_protocol::{BlindedTable, Item, ItemType, TableBuilder};

use crate::{bundle, keyfile};

/// Options of `build`.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Type of bare values in text lists.
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
    /// changes, to blur which slots those touched (SECURITY.md 6.1); at
    /// least one is placed whatever this says (SPEC 13.1).
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

/// What `build` did; its `Display` is the summary `build` prints.
pub struct BuildReport {
    /// Where it was written.
    pub path: PathBuf,
    /// The file written.
    pub bundle: bundle::Bundle,
    /// Entries in the table.
    pub entries: usize,
    /// What each list gave, by type, and what was left out; its `Display`
    /// is the table `build --report` prints.
    pub lists: Report,
    /// With a base: of the entries removed, how many a list tombstoned
    /// (the rest are no longer listed by any list).
    pub removed_tombstoned: usize,
    /// How.
    pub kind: BuildKind,
    /// Seconds spent building.
    pub seconds: f64,
}

/// Signs version `version` of `table`, built now, in threshold mode (a
/// version-2 statement, SPEC 14.8) with `threshold`.
pub fn sign_version(
    table: &BlindedTable,
    version: u64,
    threshold: Option<ThresholdParams>,
    key: &OperatorSigningKey,
) -> SignedManifest {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Manifest::for_table(table, version, now, threshold).sign(key)
}

/// Reads every list, refusing them all if any record of any is bad or a
/// list is empty; `nothing` says what was then not done ("no table was
/// built").
///
/// # Errors
/// Every list's error, each naming its file, record or line and field.
pub(crate) fn read_lists(
    sources: &[Source],
    default_type: Option<ItemType>,
    nothing: &str,
) -> anyhow::Result<Combined> {
    let combined = blindmatch_lists::read_all(sources, default_type)
        .map_err(|e| anyhow::anyhow!("{nothing}: {e}"))?;
    if combined.items.is_empty() {
        bail!(
            "{nothing}: no list lists a value blindmatch can match ({})",
            combined.report.left_out()
        );
    }
    Ok(combined)
}

/// Reads one list (an organisation's, for the audit): the values it lists,
/// in order of first occurrence, as [`read_lists`] reads it.
///
/// # Errors
/// As [`read_lists`].
pub(crate) fn read_list(
    source: &Source,
    default_type: Option<ItemType>,
    nothing: &str,
) -> anyhow::Result<Vec<Item>> {
    let list = blindmatch_lists::read(source, default_type)
        .map_err(|e| anyhow::anyhow!("{nothing}: {e}"))?;
    if list.items.is_empty() {
        bail!(
            "{nothing}: {} lists no value blindmatch can match",
            source.path.display()
        );
    }
    Ok(list.items)
}

/// [`build_from`] one list file, its format read from it.
///
/// # Errors
/// As [`build_from`].
pub fn build(
    list_path: &Path,
    key_path: &Path,
    out: &Path,
    opts: &BuildOptions,
) -> anyhow::Result<BuildReport> {
    build_from(&[Source::from(list_path)], key_path, out, opts)
}

/// `build --list [FORMAT:]FILE... --key PATH --signing-key PATH --out PATH
/// [--base PATH]`: reads every list first and builds nothing if any record
/// is bad. The table holds every value some list lists.
///
/// With a base, the new version keeps every entry of the base that is
/// still listed in its slot (SPEC Section 13.1) and its history of changes
/// grows by this version's; if that is impossible (the list outgrew the
/// table, or the key changed: a rotation) a new table is built, and the
/// report says why.
///
/// # Errors
/// Bad records (each with its file, number and field), unreadable files,
/// or a build failure.
pub fn build_from(
    sources: &[Source],
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
    let Combined {
        items,
        tombstoned,
        report: lists,
    } = read_lists(sources, opts.default_type, "no table was built")?;
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
        // Every version has a table id no earlier version had (SPEC 13.1):
        // the server swaps versions by table id, clients bind a statement's
        // terms (mode, t, s) to it, and vouchers are bound to it. A fresh
        // filler is a value its slot never held, so one decoy (SECURITY
        // 6.1) per version guarantees it, also when the list did not
        // change, only the mode did, or the list came back to an earlier
        // version's; it costs 36 bytes of delta.
        update_opts.decoys = opts.decoys.max(1);
        let from = Base {
            table: &base.table,
            index: &base.index,
            placement,
        };
        let updated = blindmatch_protocol::table::update(&key, from, items.clone(), &update_opts);
        match updated {
            Ok(u) => {
                // Tombstoned values are listed by no list, so any the base
                // held were removed: how many, for the report.
                let removed_tombstoned =
                    blindmatch_protocol::table::count_in_base(&key, from, &tombstoned)?;
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
                    cosignatures: Vec::new(),
                    placement: Some(u.placement),
                };
                let seconds = started.elapsed().as_secs_f64();
                bundle::write(out, &bundle)?;
                return Ok(BuildReport {
                    path: out.to_path_buf(),
                    bundle,
                    entries: u.kept + u.added,
                    lists,
                    removed_tombstoned,
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
        cosignatures: Vec::new(),
    };
    bundle::write(out, &bundle)?;
    Ok(BuildReport {
        path: out.to_path_buf(),
        bundle,
        entries,
        lists,
        removed_tombstoned: 0,
        kind: rebuilt.map_or(BuildKind::Full, BuildKind::Rebuilt),
        seconds,
    })
}

impl fmt::Display for BuildReport {
    /// What `build` prints: how the version was built, its size and time,
    /// what the lists held that was left out, its mode, its table id and
    /// digest. (`build --report` prints [`BuildReport::lists`] before it.)
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let table = &self.bundle.table;
        let h = table.header();
        let m = &self.bundle.manifest.manifest;
        let out = self.path.display();
        match &self.kind {
            BuildKind::Update {
                kept,
                added,
                removed,
                changed,
            } => {
                let tombstoned = if *removed > 0 {
                    format!(" ({} of them tombstoned)", self.removed_tombstoned)
                } else {
                    String::new()
                };
                writeln!(
                    f,
                    "built {out} version {} from version {}: {kept} entries kept, {added} added, {removed} removed{tombstoned}; {changed} of {} slots changed, in {:.1} s",
                    m.version,
                    m.version - 1,
                    h.n_slots,
                    self.seconds
                )?;
            }
            kind => {
                if let BuildKind::Rebuilt(why) = kind {
                    writeln!(
                        f,
                        "the base could not be kept ({why}): built a new table; clients download it in full"
                    )?;
                }
                writeln!(
                    f,
                    "built {out} version {}: {} entries, {} slots, k = {}, {:.1} MB, in {:.1} s ({:.0} entries/s)",
                    m.version,
                    self.entries,
                    h.n_slots,
                    h.k,
                    (HEADER_LEN + table.slots().len()) as f64 / 1e6,
                    self.seconds,
                    self.entries as f64 / self.seconds.max(1e-9)
                )?;
            }
        }
        // Never silent: what the lists held that is not in the table.
        writeln!(f, "{}", self.lists.left_out())?;
        if let Some(p) = &m.threshold {
            writeln!(
                f,
                "threshold mode (protocol version 2): t = {}, s = {}, placement weights {:?}",
                p.threshold(),
                p.synthetic_bound(),
                p.weights()
            )?;
        }
        writeln!(f, "table id {}", hex::encode(table.id().0))?;
        write!(f, "digest   {}", hex::encode(m.digest))
    }
}
