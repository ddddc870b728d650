//! Server key files: written once with mode 0600, refused if others can read
//! them.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use blindmatch_protocol::ServerKey;
use blindmatch_protocol::manifest::{OperatorSigningKey, OperatorVerifyingKey};
use blindmatch_protocol::tlog::LogSigningKey;
use zeroize::Zeroizing;

/// Generates a key and writes it to `path` (mode 0600), refusing to overwrite.
///
/// # Errors
/// If the file exists or cannot be written.
pub fn write_new(path: &Path) -> anyhow::Result<ServerKey> {
    let key = ServerKey::generate(&mut rand::rng());
    write_secret(path, &key.to_bytes()[..])?;
    Ok(key)
}

/// Generates an operator signing key and writes it to `path` (mode 0600),
/// and its verifying key, which clients pin, in hex to
/// [`public_key_path`]`(path)`; refuses to overwrite either.
///
/// # Errors
/// If a file exists or cannot be written.
pub fn write_new_signing(path: &Path) -> anyhow::Result<OperatorSigningKey> {
    let key = OperatorSigningKey::generate(&mut rand::rng());
    let public = public_key_path(path);
    if public.exists() {
        bail!(
            "verifying key file {} exists (it is never overwritten)",
            public.display()
        );
    }
    write_secret(path, &key.encode())?;
    let vk = hex::encode(key.verifying_key().to_bytes());
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&public)
        .and_then(|mut f| f.write_all(format!("{vk}\n").as_bytes()))
        .with_context(|| format!("verifying key file {}", public.display()))?;
    Ok(key)
}

/// Where [`write_new_signing`] writes the verifying key of the signing key
/// at `signing_key`: the same path with `.pub` appended.
pub fn public_key_path(signing_key: &Path) -> PathBuf {
    let mut p = signing_key.as_os_str().to_owned();
    p.push(".pub");
    p.into()
}

/// `--operator-key HEX|PATH`: the operator's verifying key as 64 hex digits,
/// or a file holding them (as [`write_new_signing`] writes it).
///
/// # Errors
/// If it is neither, naming the value.
pub fn operator_key(value: &str) -> anyhow::Result<OperatorVerifyingKey> {
    let text = if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        value.to_owned()
    } else {
        std::fs::read_to_string(value)
            .with_context(|| format!("{value}: neither 64 hex digits nor a readable file"))?
    };
    blindmatch_client_core::operator_key_from_hex(&text)
        .with_context(|| format!("operator key {value}"))
}

/// Reads an operator signing key file, refusing one that group or others
/// may read.
///
/// # Errors
/// If the file is missing, too open, or not a valid signing key.
pub fn read_signing(path: &Path) -> anyhow::Result<OperatorSigningKey> {
    check_private(path, "signing key file")?;
    let bytes = Zeroizing::new(
        std::fs::read(path).with_context(|| format!("signing key file {}", path.display()))?,
    );
    OperatorSigningKey::decode(&bytes)
        .with_context(|| format!("signing key file {}", path.display()))
}

/// Generates the transparency log's signing key for the log `origin` and
/// writes it to `path` (mode 0600, in the text form of signed notes), and
/// its verifier key, which clients and witnesses pin, to
/// [`public_key_path`]`(path)`; refuses to overwrite either.
///
/// # Errors
/// If a file exists or cannot be written, or `origin` is not a valid key
/// name.
pub fn write_new_log_key(path: &Path, origin: &str) -> anyhow::Result<LogSigningKey> {
    let key = LogSigningKey::generate(origin, &mut rand::rng()).context("--origin")?;
    let public = public_key_path(path);
    if public.exists() {
        bail!(
            "verifier key file {} exists (it is never overwritten)",
            public.display()
        );
    }
    write_secret(path, key.to_text().as_bytes())?;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&public)
        .and_then(|mut f| f.write_all(format!("{}\n", key.verifying_key()).as_bytes()))
        .with_context(|| format!("verifier key file {}", public.display()))?;
    Ok(key)
}

/// Reads the transparency log's signing key, refusing a file that group
/// or others may read.
///
/// # Errors
/// If the file is missing, too open, or not a log key.
pub fn read_log_key(path: &Path) -> anyhow::Result<LogSigningKey> {
    check_private(path, "log key file")?;
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("log key file {}", path.display()))?,
    );
    LogSigningKey::from_text(&text).with_context(|| format!("log key file {}", path.display()))
}

fn write_secret(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("key file {} (it is never overwritten)", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing key file {}", path.display()))
}

/// Writes `bytes` to `path`, replacing it, readable by its owner only: a
/// temporary file of mode 0600 in the same directory, synced, then renamed
/// over `path`, so that a crash leaves the old file or the new one, and a
/// file that was readable by others before is not reused. For files that
/// are not keys but must stay private (an audit bundle, which holds a filler
/// key; an organisation's audit state).
///
/// # Errors
/// On I/O failure; `what` names the file in the message.
pub fn write_private(path: &Path, bytes: &[u8], what: &str) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| {
        format!(
            "{what} {}: creating a file in {}",
            path.display(),
            dir.display()
        )
    })?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("{what} {}", path.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("writing {what} {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("{what} {}", path.display()))?;
    Ok(())
}

/// Refuses a secret file that group or others may read.
///
/// # Errors
/// If the file is missing or too open; the message names `what` and the fix.
pub fn check_private(path: &Path, what: &str) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path).with_context(|| format!("{what} {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{what} {} has mode {mode:03o}: others can read it; run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

/// Reads a key file, refusing one that group or others may read.
///
/// # Errors
/// If the file is missing, too open, or not a valid key.
pub fn read(path: &Path) -> anyhow::Result<ServerKey> {
    check_private(path, "key file")?;
    let bytes = Zeroizing::new(
        std::fs::read(path).with_context(|| format!("key file {}", path.display()))?,
    );
    ServerKey::from_bytes(&bytes).with_context(|| format!("key file {}", path.display()))
}
