//! Account secret files for threshold mode (SPEC Section 14.1).
//!
//! The file is the 106-byte encoding of [`AccountSecret`]: the account id,
//! a 32-byte seed every key is derived from, and the synthetic rate. An app
//! keeps it as it keeps the account's other secrets, and syncs it between
//! the account's devices (all of them must make shares of one polynomial).
//! On disk it is written once with mode 0600, and read only if group and
//! others cannot read it.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use blindmatch_protocol::threshold::AccountSecret;
use zeroize::Zeroizing;

use crate::ClientError;

fn error(path: &Path, reason: impl std::fmt::Display) -> ClientError {
    ClientError::Account {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Makes a new account secret for `account_id` with synthetic rate `rate`
/// (a probability, 0 to 1) and writes it to `path` (mode 0600; an existing
/// file is never overwritten).
///
/// # Errors
/// [`ClientError::Account`] for an id outside 1..=64 bytes, a rate that is
/// not a probability, or a file that exists or cannot be written.
pub fn create(path: &Path, account_id: &[u8], rate: f64) -> Result<AccountSecret, ClientError> {
    let secret = blindmatch_client_core::generate_account(account_id, rate, &mut rand::rng())
        .map_err(|e| error(path, e))?;
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| error(path, format!("{e} (an account file is never overwritten)")))?;
    f.write_all(&secret.encode())
        .and_then(|()| f.sync_all())
        .map_err(|e| error(path, e))?;
    Ok(secret)
}

/// Reads an account secret, refusing a file that group or others may read.
///
/// # Errors
/// [`ClientError::Account`] naming what is wrong.
pub fn read(path: &Path) -> Result<AccountSecret, ClientError> {
    let meta = std::fs::metadata(path).map_err(|e| error(path, e))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(error(
            path,
            format!(
                "mode {mode:03o}: others can read it; run `chmod 600 {}`",
                path.display()
            ),
        ));
    }
    let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| error(path, e))?);
    blindmatch_client_core::decode_account(&bytes).map_err(|e| error(path, e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn an_account_file_is_private_written_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("account");
        let made = create(&path, b"user-1", 0.25).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let back = read(&path).unwrap();
        assert_eq!(back.account_id(), b"user-1");
        assert_eq!(back.rate(), made.rate());
        assert_eq!(*back.encode(), *made.encode());
        // Never overwritten.
        assert!(create(&path, b"user-2", 0.0).is_err());
        // Too open: refused, with the fix.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        // Bad parameters name themselves.
        let e = create(&dir.path().join("b"), b"", 0.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("account id"), "{e}");
        assert!(create(&dir.path().join("c"), b"u", 1.5).is_err());
        // A damaged file is refused by the protocol's decoder.
        let bad = dir.path().join("bad");
        std::fs::write(&bad, [0u8; 10]).unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read(&bad).is_err());
    }
}
