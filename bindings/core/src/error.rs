//! What a client refuses, and why.

/// Why the client refused what a server sent, or what the app asked.
///
/// Every variant names the problem without an item, a key or associated
/// data, so it is safe to log and to show. Bindings map it to their
/// language's idiom (an exception class per variant in Python, a sealed
/// class in Kotlin, an `Error` enum in Swift, an `Error` with a `kind` in
/// JavaScript, a code in C).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server's table is in threshold mode (protocol version 2, SPEC
    /// Section 14): its vouchers are made under an account secret.
    #[error(
        "the server's table is in threshold mode (protocol version 2, t = {t}): make the submission under an account secret"
    )]
    ThresholdMode {
        /// The manifest's threshold.
        t: u16,
    },
    /// An account submission for a table in protocol version 1, which has
    /// no threshold: the server would refuse the account id.
    #[error(
        "the server's table is not in threshold mode (protocol version 1): make the submission without an account"
    )]
    NotThresholdMode,
    /// The manifest's signature does not verify under the pinned operator
    /// key: it was not signed by the operator, or it was altered.
    #[error("manifest signature does not verify under the pinned operator key")]
    BadSignature,
    /// The server offered a version older than one this client verified
    /// before: a rollback to a list missing newer entries.
    #[error(
        "the server offers table version {offered}, older than version {seen} seen before: refused (rollback)"
    )]
    Rollback {
        /// The version offered.
        offered: u64,
        /// The newest version seen.
        seen: u64,
    },
    /// The server offered a different table under a version number this
    /// client has seen: two tables signed as the same version, which is how
    /// one user would be singled out. Both manifests are evidence.
    #[error(
        "the server offers table {offered} as version {version}, which was table {seen} before: two tables under one version (equivocation); refused"
    )]
    Equivocation {
        /// The version number.
        version: u64,
        /// The table id offered now (hex).
        offered: String,
        /// The table id seen before (hex).
        seen: String,
    },
    /// The manifest was built longer ago than the app allows: the list may
    /// have stopped being updated.
    #[error(
        "the server's table version {version} was built {age_seconds} s ago, more than the {max_seconds} s allowed: refused (stale list)"
    )]
    TooOld {
        /// Its version.
        version: u64,
        /// Its age.
        age_seconds: u64,
        /// The bound.
        max_seconds: u64,
    },
    /// A chunk, table or delta is not what the signed manifest describes:
    /// it does not hash to the digest or the table id, or a slot is not a
    /// valid element. Nothing of it was kept.
    #[error("{what}: {source}")]
    Invalid {
        /// What was being checked ("table chunk", "delta", "table", ...).
        what: &'static str,
        /// The protocol's reason.
        source: blindmatch_protocol::Error,
    },
    /// A message is malformed before any cryptography is involved (a proof
    /// hash that is not 32 bytes, a delta index cut in half, a delta larger
    /// than the table).
    #[error("{0}")]
    Malformed(&'static str),
    /// An item or its associated data cannot be made into a voucher (a bad
    /// hash value, associated data over 1 KiB).
    #[error(transparent)]
    Input(blindmatch_protocol::Error),
    /// The saved [`crate::History`] does not verify under the operator key:
    /// damaged, or from another operator. Starting a new one loses the
    /// rollback protection of what the damaged one recorded.
    #[error("saved manifest history does not verify under this operator key: {0}")]
    History(blindmatch_protocol::Error),
}

impl Error {
    pub(crate) fn invalid(what: &'static str) -> impl FnOnce(blindmatch_protocol::Error) -> Self {
        move |source| Error::Invalid { what, source }
    }
}

impl From<blindmatch_protocol::ItemError> for Error {
    fn from(e: blindmatch_protocol::ItemError) -> Self {
        Error::Input(e.into())
    }
}
