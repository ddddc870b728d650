//! The flags the benchmarks share, declared once and flattened into each
//! binary's `Args` (`#[command(flatten)]`), so that a flag has one name, one
//! type and one meaning everywhere.
//!
//! Where a binary's flag says something more specific or has another
//! default, that binary changes it with `mut_arg` on its own `Args` (its
//! help text, its default, or a default that depends on `--quick` through
//! `default_value_if`), so that its `--help` stays exact.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The table a benchmark builds and the server binary that serves it.
#[derive(clap::Args, Debug, Clone)]
pub struct Served {
    /// Entries in the table.
    #[arg(long, default_value_t = 100_000)]
    pub entries: usize,
    /// The server binary [default: blindmatch-server next to this binary].
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
}

impl Served {
    /// The server binary to start: `--server-bin`, or `blindmatch-server`
    /// next to this binary.
    ///
    /// # Errors
    /// If this binary's path is unknown.
    pub fn bin(&self) -> anyhow::Result<PathBuf> {
        crate::service::server_bin(self.server_bin.as_deref())
    }
}

/// The submissions a benchmark sends: how large, and for how long.
#[derive(clap::Args, Debug, Clone)]
pub struct Load {
    /// Vouchers per submission.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,
    /// Loopback source addresses the streams are spread over (127.0.0.1,
    /// 127.0.0.2, ...), as many clients would send: the server's admission
    /// holds one source to half its budget by design (its fair share), so a
    /// single source measures that cap rather than the server.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=254))]
    pub sources: u8,
}

/// `--json`: the figures as JSON, besides what is printed.
#[derive(clap::Args, Debug, Clone)]
pub struct Json {
    /// Write the figures as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl Json {
    /// Writes `text` to the `--json` file, if one was given.
    ///
    /// # Errors
    /// If the file cannot be written.
    pub fn write(&self, text: &str) -> anyhow::Result<()> {
        write_to("--json", self.json.as_deref(), text)
    }
}

/// `--markdown`: the printed summary, kept in a file too.
#[derive(clap::Args, Debug, Clone)]
pub struct Markdown {
    /// Write the Markdown summary here (it is always printed).
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

impl Markdown {
    /// Writes `text` to the `--markdown` file, if one was given.
    ///
    /// # Errors
    /// If the file cannot be written.
    pub fn write(&self, text: &str) -> anyhow::Result<()> {
        write_to("--markdown", self.markdown.as_deref(), text)
    }
}

/// Writes `text` to `path` if there is one; an error names the flag.
///
/// # Errors
/// If the file cannot be written.
pub fn write_to(flag: &str, path: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match path {
        Some(p) => std::fs::write(p, text).with_context(|| format!("{flag} {}", p.display())),
        None => Ok(()),
    }
}
