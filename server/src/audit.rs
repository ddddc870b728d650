//! The operator's side of the list audit (SPEC Section 15): the bundle that
//! lets one organisation audit a table version against its own list
//! (`audit-bundle`), and the organisations' co-signatures attached to the
//! table file (`cosign`), which `serve` checks and serves.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use blindmatch_lists::Source;
use blindmatch_protocol::ItemType;
use blindmatch_protocol::audit::{AuditBundle, AuditList, CoSignature, OrgName};

use crate::{bundle, keyfile};

/// Options of `audit-bundle`, as its flags declare them (once: the CLI
/// flattens this struct).
#[derive(Debug, Clone, clap::Args)]
pub struct BundleOptions {
    /// The table file of the version to audit.
    #[arg(long, value_name = "PATH")]
    pub table: PathBuf,
    /// The server's blinding key (the table's).
    #[arg(long, value_name = "PATH")]
    pub key: PathBuf,
    /// The organisation's list, as it sent it, in any format `build` reads (the values it
    /// lists; its tombstoned values are not on it).
    #[arg(long, value_name = "[FORMAT:]FILE", value_parser = crate::cli::list_source())]
    pub list: Source,
    /// Type of bare values in a text list: md5, sha1, sha256, pdq or bytes.
    #[arg(long = "type", value_name = "TYPE")]
    pub default_type: Option<ItemType>,
    /// The table file of the version this organisation audited before: a delta bundle,
    /// naming only the slots changed since (the organisation keeps its audit state).
    #[arg(long, value_name = "PATH")]
    pub base: Option<PathBuf>,
    /// Where to write the bundle (mode 0600: it holds the table's filler key, for this
    /// organisation only).
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,
    /// Also write the public table (header and slots, what clients download) here.
    #[arg(long, value_name = "PATH")]
    pub public_table: Option<PathBuf>,
}

/// What `audit-bundle` made.
#[derive(Debug, Clone)]
pub struct BundleReport {
    /// Where the bundle was written.
    pub path: PathBuf,
    /// Its size.
    pub bytes: usize,
    /// The table version.
    pub version: u64,
    /// For a delta bundle, the version it starts from.
    pub base_version: Option<u64>,
    /// Distinct items on the list.
    pub listed: usize,
    /// Entry slots named (and proved).
    pub entries: usize,
    /// Fresh fillers named.
    pub fresh: usize,
    /// List items not in the table.
    pub absent: usize,
    /// Slots holding entries that are not on the list: the organisation's
    /// audit will refuse each of them.
    pub foreign: Vec<u32>,
    /// Seconds taken.
    pub seconds: f64,
}

/// `audit-bundle`: the bundle for one organisation's list over one table
/// version (SPEC 15.2), in full or, with a base, as a delta.
///
/// # Errors
/// Unreadable or mismatched files (a key that is not the table's, a base
/// with another header), a bad list, or a table file that does not record
/// its fresh fillers (built by an older version).
pub fn make_bundle(opts: &BundleOptions) -> anyhow::Result<BundleReport> {
    let started = Instant::now();
    let file = bundle::read(&opts.table, true)?;
    let placement = file
        .placement
        .as_ref()
        .context("the table file has no placement")?;
    let key = keyfile::read(&opts.key)?;
    let items = crate::build::read_list(&opts.list, opts.default_type, "no bundle was made")?;
    let list = AuditList::new(items)?;
    let base = opts
        .base
        .as_deref()
        .map(|p| bundle::read(p, false).with_context(|| format!("--base {}", p.display())))
        .transpose()?;
    let (audit, report) = AuditBundle::prove(
        &key,
        &file.manifest,
        &file.table,
        &file.index,
        placement,
        &list,
        base.as_ref().map(|b| &b.table),
        &mut rand::rng(),
    )
    .with_context(|| format!("audit bundle for {}", opts.table.display()))?;
    let encoded = audit.encode();
    keyfile::write_private(&opts.out, &encoded, "--out")?;
    if let Some(path) = &opts.public_table {
        std::fs::write(path, file.table.encode())
            .with_context(|| format!("--public-table {}", path.display()))?;
    }
    Ok(BundleReport {
        path: opts.out.clone(),
        bytes: encoded.len(),
        version: file.manifest.manifest.version,
        base_version: base.map(|b| b.manifest.manifest.version),
        listed: list.items().len(),
        entries: audit.entries.len(),
        fresh: audit.fresh.len(),
        absent: report.absent,
        foreign: report.foreign,
        seconds: started.elapsed().as_secs_f64(),
    })
}

impl fmt::Display for BundleReport {
    /// What `audit-bundle` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.base_version {
            Some(b) => format!("delta bundle from version {b}"),
            None => "full bundle".to_owned(),
        };
        writeln!(
            f,
            "wrote {} ({kind} for version {}, {} bytes, mode 0600: it holds the filler key; give it to this organisation only) in {:.1} s",
            self.path.display(),
            self.version,
            self.bytes,
            self.seconds
        )?;
        writeln!(
            f,
            "{} distinct items listed: {} entry slot(s) proved, {} not in the table; {} fresh filler(s) named",
            self.listed, self.entries, self.absent, self.fresh
        )?;
        if !self.foreign.is_empty() {
            let shown: Vec<String> = self.foreign.iter().take(20).map(u32::to_string).collect();
            writeln!(
                f,
                "WARNING: {} slot(s) hold entries that are not on this list; the organisation's audit will refuse the table and name them: {}{}",
                self.foreign.len(),
                shown.join(", "),
                if self.foreign.len() > 20 { ", ..." } else { "" }
            )?;
        }
        Ok(())
    }
}

/// What `cosign --add` did.
#[derive(Debug, Clone, Default)]
pub struct Attached {
    /// Organisations whose co-signature was added.
    pub added: Vec<OrgName>,
    /// Organisations whose earlier co-signature (same key) was replaced.
    pub replaced: Vec<OrgName>,
    /// Every organisation that co-signed the table now.
    pub now: Vec<OrgName>,
    /// The table version.
    pub version: u64,
}

/// `cosign --table FILE --add FILE...`: checks each co-signature over the
/// table's statement (refusing, with the organisation's name, one that
/// does not verify) and rewrites the table file with them. A co-signature
/// by a key already attached replaces it.
///
/// # Errors
/// An unreadable file, a co-signature that does not decode or does not
/// verify; nothing is written then.
pub fn attach(table: &Path, files: &[PathBuf]) -> anyhow::Result<Attached> {
    let mut file = bundle::read(table, true)?;
    let statement = file.manifest.manifest.encode();
    let version = file.manifest.manifest.version;
    let mut out = Attached {
        version,
        ..Attached::default()
    };
    for path in files {
        let bytes =
            std::fs::read(path).with_context(|| format!("co-signature {}", path.display()))?;
        let c = CoSignature::decode(&bytes)
            .with_context(|| format!("co-signature {}", path.display()))?;
        bundle::check_cosignature(&c, &statement, version)
            .with_context(|| format!("co-signature {}", path.display()))?;
        match file
            .cosignatures
            .iter_mut()
            .find(|o| o.org_key == c.org_key)
        {
            Some(old) => {
                out.replaced.push(c.name.clone());
                *old = c;
            }
            None => {
                out.added.push(c.name.clone());
                file.cosignatures.push(c);
            }
        }
    }
    if file.cosignatures.len() > blindmatch_protocol::audit::cosign::MAX_COSIGNATURES {
        bail!(
            "{} co-signatures: a manifest carries at most {}",
            file.cosignatures.len(),
            blindmatch_protocol::audit::cosign::MAX_COSIGNATURES
        );
    }
    bundle::write(table, &file)?;
    out.now = file.cosignatures.iter().map(|c| c.name.clone()).collect();
    Ok(out)
}

impl fmt::Display for Attached {
    /// What `cosign` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |v: &[OrgName]| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.iter().map(OrgName::as_str).collect::<Vec<_>>().join(", ")
            }
        };
        writeln!(
            f,
            "version {}: added {}; replaced {}; co-signed now by {} (serve reloads it on SIGHUP)",
            self.version,
            names(&self.added),
            names(&self.replaced),
            names(&self.now)
        )
    }
}
