//! The transparency log a client may require (SPEC Section 16.6): its
//! policy from the text an app pins, in c2sp.org/tlog-policy form or as a
//! log key, witness keys and a quorum; what
//! [`crate::VerifiedManifest::require_logged`] takes.

use blindmatch_protocol::tlog::{CosignerKey, LogPolicy, LogVerifyingKey};

use crate::Error;

/// A policy file's text (c2sp.org/tlog-policy): one `log` line, `witness`
/// lines, optional `group`s and one `quorum` line.
///
/// # Errors
/// [`Error::Log`] naming the line that is wrong.
pub fn log_policy(text: &str) -> Result<LogPolicy, Error> {
    LogPolicy::parse(text).map_err(Error::Log)
}

/// The log with verifier key `log_key` (`origin+keyid+key`), with `quorum`
/// of the witnesses `witness_keys` (`name+keyid+key`) required; a quorum of
/// 0 with no witnesses checks the log's signature and proofs only.
///
/// # Errors
/// [`Error::Log`] for a key that does not parse or a quorum out of range.
pub fn log_policy_from_keys(
    log_key: &str,
    witness_keys: &[&str],
    quorum: usize,
) -> Result<LogPolicy, Error> {
    let log = LogVerifyingKey::parse(log_key).map_err(Error::Log)?;
    let witnesses = witness_keys
        .iter()
        .map(|k| CosignerKey::parse(k))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::Log)?;
    LogPolicy::new(log, &witnesses, quorum).map_err(Error::Log)
}
