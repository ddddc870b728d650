//! blindmatch match server.
//!
//! The cryptography lives in [`blindmatch_protocol`]; this crate turns it into
//! what an operator runs:
//!
//! - [`keygen`]: a new server key in a 0600 file ([`keyfile`]);
//! - [`build`]: a hash list ([`list`]) into a table file ([`bundle`]): the
//!   public blinded table plus the private entry index;
//! - [`serve`]: the gRPC service ([`service`]: table download, voucher
//!   submission; plus health and reflection), a match worker, and the match
//!   store ([`store`], SQLite);
//! - [`matches`]: the recorded matches;
//! - [`demo`]: all of it on a built-in list, over loopback.
//!
//! `src/main.rs` only parses flags and calls these.

pub mod bundle;
pub mod config;
pub mod demo;
pub mod keyfile;
mod limits;
pub mod list;
pub mod metrics;
mod pipeline;
pub mod serve;
mod service;
pub mod store;

use std::io::BufReader;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use blindmatch_protocol::{BuiltTable, ItemType, TableBuilder};

pub use blindmatch_protocol as protocol;
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
}

/// What `build` did.
pub struct BuildReport {
    /// The table and index.
    pub built: BuiltTable,
    /// Lines that held an entry, duplicates included.
    pub lines: usize,
    /// Seconds spent building.
    pub seconds: f64,
}

/// `build --list FILE --key PATH --out PATH`: parses the whole list first
/// and builds nothing if any line is bad.
///
/// # Errors
/// Bad lines (each with its number), unreadable files, or a build failure.
pub fn build(
    list_path: &Path,
    key_path: &Path,
    out: &Path,
    opts: &BuildOptions,
) -> anyhow::Result<BuildReport> {
    let key = keyfile::read(key_path)?;
    let file = std::fs::File::open(list_path)
        .with_context(|| format!("--list {}", list_path.display()))?;
    let parsed = list::parse(BufReader::new(file), opts.default_type)
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
    let lines = parsed.items.len();
    if lines == 0 {
        // Almost surely the wrong file; a table of fillers alone matches nothing.
        bail!(
            "{}: no entries (only blank lines and comments); no table was built",
            list_path.display()
        );
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
    let started = Instant::now();
    let built = builder.build_with_progress(&key, parsed.items, &|done, total| {
        bar.set_length(total);
        bar.inc(done);
    })?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    bundle::write(out, &built.table, &built.index)?;
    Ok(BuildReport {
        built,
        lines,
        seconds,
    })
}

/// `matches --data DIR [--json]`.
///
/// # Errors
/// If the database cannot be read.
pub fn matches(data: &Path, json: bool) -> anyhow::Result<()> {
    let records = store::read_all(data)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(());
    }
    if records.is_empty() {
        println!("no matches recorded");
        return Ok(());
    }
    println!(
        "{:<24}  {:<7}  {:>7}  {:<32}  {:<64}  associated data",
        "received", "type", "entry", "submission", "item"
    );
    for r in &records {
        println!(
            "{:<24}  {:<7}  {:>7}  {:<32}  {:<64}  {}",
            r.received_at(),
            r.item_type,
            r.entry,
            r.submission_id,
            r.item_hex,
            String::from_utf8_lossy(&r.associated_data).escape_debug()
        );
    }
    println!("{} match(es)", records.len());
    Ok(())
}
