//! The real server as a child process: what the load and timing benchmarks
//! measure.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context;

/// A running `blindmatch-server serve`, killed when dropped.
pub struct ServerProcess {
    /// The child process.
    pub child: Child,
    /// `http://ADDR` it listens on.
    pub url: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server binary: `given`, or `blindmatch-server` next to this binary.
///
/// # Errors
/// If this binary's path is unknown.
pub fn server_bin(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    Ok(match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()?.with_file_name("blindmatch-server"),
    })
}

/// Writes `dir/table.bmt` for [`start`], version 1, signed by a new
/// operator key in `dir/operator.sign`; `dir/server.key` must hold the key
/// the table was built with (`blindmatch_server::keyfile::write_new`).
/// Returns the operator's verifying key, for clients.
///
/// # Errors
/// If a file cannot be written.
pub fn write_table(
    dir: &Path,
    built: &blindmatch_protocol::BuiltTable,
) -> anyhow::Result<blindmatch_protocol::OperatorVerifyingKey> {
    Ok(write_table_with(dir, built, None)?.0)
}

/// [`write_table`] in threshold mode when `threshold` is given (a
/// version-2 manifest, SPEC 14.8); also returns the manifest, verified as a
/// client would.
///
/// # Errors
/// If a file cannot be written.
pub fn write_table_with(
    dir: &Path,
    built: &blindmatch_protocol::BuiltTable,
    threshold: Option<blindmatch_protocol::manifest::ThresholdParams>,
) -> anyhow::Result<(
    blindmatch_protocol::OperatorVerifyingKey,
    blindmatch_client_core::VerifiedManifest,
)> {
    let signing = blindmatch_server::keyfile::write_new_signing(&dir.join("operator.sign"))?;
    let signed = blindmatch_server::sign_version(&built.table, 1, threshold, &signing);
    blindmatch_server::bundle::write_parts(
        &dir.join("table.bmt"),
        &built.table,
        &built.index,
        &signed,
        &blindmatch_server::bundle::History::default(),
        &built.placement,
        &[],
    )?;
    let operator = signing.verifying_key();
    let manifest = blindmatch_client_core::VerifiedManifest::verify(
        &signed.manifest.encode(),
        &signed.signature,
        &operator,
    )?;
    Ok((operator, manifest))
}

/// Starts `bin serve` on a free loopback port with the table and key in
/// `dir`, a data directory under it, and batches of at most `batch`.
///
/// # Errors
/// If the binary cannot be started or does not announce its address.
pub fn start(bin: &Path, dir: &Path, batch: usize) -> anyhow::Result<ServerProcess> {
    start_with(bin, dir, batch, &[])
}

/// [`start`] with more `serve` flags (`extra`), e.g. `--max-inflight-mib 64`.
///
/// # Errors
/// As [`start`].
pub fn start_with(
    bin: &Path,
    dir: &Path,
    batch: usize,
    extra: &[String],
) -> anyhow::Result<ServerProcess> {
    let mut child = Command::new(bin)
        .args([
            "serve",
            "--plaintext",
            "--listen",
            "127.0.0.1:0",
            "--max-batch",
            &batch.max(1).to_string(),
        ])
        .arg("--table")
        .arg(dir.join("table.bmt"))
        .arg("--key")
        .arg(dir.join("server.key"))
        // The default store unless `extra` names one.
        .args(if extra.iter().any(|a| a == "--store" || a == "--data") {
            Vec::new()
        } else {
            vec!["--data".into(), dir.join("data")]
        })
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (build it: cargo build --release -p blindmatch-server)",
                bin.display()
            )
        })?;
    let stdout = child.stdout.take().context("server stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let url = line
        .trim()
        .rsplit(' ')
        .next()
        .filter(|u| u.starts_with("http://"))
        .with_context(|| format!("unexpected first line from the server: {line:?}"))?
        .to_string();
    Ok(ServerProcess { child, url })
}
