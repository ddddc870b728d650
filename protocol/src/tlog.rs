//! The transparency log (SPEC Section 16): every table version the operator
//! publishes is an entry of an append-only Merkle log in the formats of the
//! C2SP transparency specifications, so that a table shown to one client
//! has to be shown to everyone.
//!
//! - [`note`]: signed notes (c2sp.org/signed-note): the log's Ed25519 key,
//!   verifier keys, and the witnesses' timestamped cosignatures
//!   (c2sp.org/tlog-cosignature, type `0x04`).
//! - [`checkpoint`]: the log's signed tree head (c2sp.org/tlog-checkpoint).
//! - [`tiles`]: where a log's hashes and entries live as static files
//!   (c2sp.org/tlog-tiles), and the tiles of a tree.
//! - [`proof`]: the offline proof a client checks (c2sp.org/tlog-proof),
//!   and the body of a witness's `add-checkpoint` (c2sp.org/tlog-witness).
//! - [`entry`]: what one entry of a blindmatch log holds.
//! - [`policy`]: what a client pins (the log's key, the witnesses' keys and
//!   a quorum) and the checks it makes.
//!
//! The Merkle tree is RFC 9162's, in [`crate::merkle`].
//!
//! Written here rather than taken from Cloudflare's `signed_note` and
//! `tlog_tiles` crates (azul), the maintained Rust implementations: their
//! only release (0.2.0) is built on ed25519-dalek 2, curve25519-dalek 4 and
//! sha2 0.10, and would put a second version of each in the tree beside the
//! ones the protocol uses. What is written is the parsing and encoding of
//! four text formats and the two proof algorithms of RFC 9162; it is checked
//! against the examples of the C2SP specifications, against Go's
//! `golang.org/x/mod/sumdb/note` (vectors in SPEC 16.8), and, in the tests
//! and the demo, by two real witnesses (torchwood's litewitness and
//! transparency-dev's omniwitness) that verify every checkpoint and
//! consistency proof the operator's tools produce.

pub mod checkpoint;
pub mod entry;
pub mod note;
pub mod policy;
pub mod proof;
pub mod tiles;
#[cfg(feature = "test-vectors")]
pub mod vectors;

pub use checkpoint::Checkpoint;
pub use entry::LogEntry;
pub use note::{CosignerKey, LogSigningKey, LogVerifyingKey, Note};
pub use policy::{LogPolicy, VerifiedCheckpoint, Witness};
pub use proof::{AddCheckpoint, TlogProof};

/// A SHA-256 output, as the log's tree uses it.
pub type Hash = crate::merkle::Hash;

/// Why a log object was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// A text or encoding breaks its format; names what, and how.
    #[error("{what}: {why}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// The checkpoint is another log's.
    #[error("the checkpoint is for log {found:?}, not the pinned {expected:?}")]
    Origin {
        /// The pinned origin.
        expected: String,
        /// The checkpoint's.
        found: String,
    },
    /// No valid signature by the log's key (or one that fails).
    #[error("the checkpoint carries no valid signature by the pinned log key {0}")]
    LogSignature(String),
    /// The pinned witnesses that cosigned do not make the quorum.
    #[error(
        "witness quorum not met: {} of {pinned} pinned witnesses cosigned the checkpoint ({}); the quorum is {rule}",
        found.len(), names(found)
    )]
    Quorum {
        /// The witnesses whose cosignatures verified.
        found: Vec<String>,
        /// The quorum rule (`2 of (a, b, c)`).
        rule: String,
        /// How many witnesses the policy pins.
        pinned: usize,
    },
    /// A cosignature from a pinned witness that does not verify.
    #[error("the cosignature of pinned witness {0} does not verify")]
    BadCosignature(String),
    /// The entry is not in the tree the checkpoint signs.
    #[error(
        "the inclusion proof of entry {index} does not lead to the root of checkpoint size {size}"
    )]
    Inclusion {
        /// The entry's index.
        index: u64,
        /// The checkpoint's tree size.
        size: u64,
    },
    /// The server sent no proof that the manifest is logged.
    #[error("no log proof: {0}")]
    Missing(&'static str),
    /// The server's checkpoint is smaller than one this client accepted
    /// before: the server is behind (or shows a shorter view of the log).
    #[error(
        "the server serves the log's checkpoint of size {offered}, older than the checkpoint of size {seen} this client accepted: the server is behind; the table held stays"
    )]
    Behind {
        /// The size served.
        offered: u64,
        /// The size accepted before.
        seen: u64,
    },
    /// The new checkpoint does not extend the one seen before: the log has
    /// forked, or rewritten its history.
    #[error(
        "the log's checkpoint of size {new} is not consistent with the checkpoint of size {old} seen before (a forked or rewritten log)"
    )]
    Inconsistent {
        /// The size of the checkpoint seen before.
        old: u64,
        /// The size of the new one.
        new: u64,
    },
}

fn names(found: &[String]) -> String {
    if found.is_empty() {
        "none".to_owned()
    } else {
        found.join(", ")
    }
}

pub(crate) fn malformed(what: &'static str, why: impl Into<String>) -> LogError {
    LogError::Malformed {
        what,
        why: why.into(),
    }
}

/// Standard base64 (RFC 4648 Section 4), as every C2SP text format uses it.
pub(crate) mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    pub(crate) fn encode(bytes: &[u8]) -> String {
        STANDARD.encode(bytes)
    }

    /// Decodes, refusing padding or trailing bits that are not canonical:
    /// one value has one text.
    pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
        let bytes = STANDARD.decode(text).ok()?;
        (STANDARD.encode(&bytes) == text).then_some(bytes)
    }

    pub(crate) fn decode_hash(text: &str) -> Option<super::Hash> {
        decode(text)?.try_into().ok()
    }
}

/// A decimal without leading zeroes (C2SP: "no leading zeroes unless 0").
pub(crate) fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}
