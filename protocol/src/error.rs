//! The errors of the protocol crate.
//!
//! [`Error`] for everything but items (wire values, keys, tables,
//! vouchers), and [`ItemError`], defined with the items it is about
//! ([`crate::item`]) and re-exported here. Both name what is wrong without
//! ever carrying a secret or an item value, so they are safe to log.

pub use crate::item::ItemError;

/// Every other protocol failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An item failed to parse or decode.
    #[error(transparent)]
    Item(#[from] ItemError),
    /// A fixed-size wire value has the wrong length.
    #[error("{what}: expected {expected} bytes, got {got}")]
    Length {
        /// The value being decoded.
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Given length.
        got: usize,
    },
    /// Bytes that are not the canonical encoding of a ristretto255 element
    /// (RFC 9496 Section 4.3.1).
    #[error("{0}: not a canonical ristretto255 encoding")]
    InvalidPoint(&'static str),
    /// The identity element where a non-identity element is required.
    #[error("{0}: the identity element is not allowed")]
    IdentityPoint(&'static str),
    /// Bytes that are not a canonical scalar (not reduced mod ℓ).
    #[error("{0}: not a canonical scalar")]
    InvalidScalar(&'static str),
    /// A zero scalar where a non-zero one is required.
    #[error("{0}: the zero scalar is not allowed")]
    ZeroScalar(&'static str),
    /// A value does not start with the expected magic bytes.
    #[error("{0}: wrong magic bytes (not a blindmatch {0})")]
    BadMagic(&'static str),
    /// A protocol or format version this implementation does not speak.
    #[error(
        "{what}: unsupported version {version} (not a version this implementation speaks for it)"
    )]
    UnsupportedVersion {
        /// The value being decoded.
        what: &'static str,
        /// The version found.
        version: u8,
    },
    /// An operator (Ed25519, RFC 8032) key that cannot be used: not a valid
    /// public key encoding, a small-order (weak) key, or a signing key file
    /// whose stored public key is not its seed's.
    #[error("operator key: {0}")]
    InvalidOperatorKey(&'static str),
    /// A server key file whose public key does not match its secret scalar.
    #[error("server key: the stored public key does not match the secret scalar")]
    KeyMismatch,
    /// A table parameter is out of range.
    #[error("table parameter {name} = {value} is out of range ({allowed})")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// The offending value.
        value: u64,
        /// The allowed range.
        allowed: &'static str,
    },
    /// Associated data longer than [`crate::MAX_AD_LEN`].
    #[error("associated data is {len} bytes, at most {max} are allowed")]
    AssociatedDataTooLong {
        /// Given length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A list too large for a table (more than 2^32 - 2 entries).
    #[error("list has {0} entries, more than a table can hold")]
    TooManyEntries(usize),
    /// Cuckoo insertion failed for every seed tried.
    #[error("cuckoo placement failed after {attempts} seeds (load factor too high?)")]
    PlacementFailed {
        /// How many seeds were tried.
        attempts: u32,
    },
    /// A downloaded table does not hash to the id its manifest announced.
    #[error("table content does not match its table id (corrupted or substituted download)")]
    TableIdMismatch,
    /// A table slot that a voucher needs holds no valid group element.
    #[error("table slot {0} is not a valid non-identity ristretto255 element")]
    InvalidSlot(u32),
    /// A voucher is for a different table shape than the one it was given to.
    #[error("voucher has {got} positions, the table uses k = {expected}")]
    WrongK {
        /// The table's k.
        expected: usize,
        /// The voucher's.
        got: usize,
    },
    /// A voucher opened under the server's key for an item that is not on the
    /// list at the position that opened: a forgery (for instance Q = γ·G).
    #[error("voucher opened for an item that is not on the list at that position (forged)")]
    ForgedMatch,
    /// A voucher opened under the server's key but its payload is malformed:
    /// only a malicious client produces this.
    #[error("voucher payload is malformed ({0})")]
    MalformedPayload(&'static str),
    /// A chunk, table or delta does not hash to the digest its signed
    /// manifest announced.
    #[error("content does not match the signed manifest's digest (tampered or corrupted)")]
    DigestMismatch,
    /// A manifest's signature does not verify under the operator's key.
    #[error("manifest signature does not verify under the pinned operator key")]
    BadSignature,
    /// A delta's base is not the table it is being applied to.
    #[error("delta is for base table {expected}, not the table held ({got})")]
    DeltaBase {
        /// The base the delta names (hex).
        expected: String,
        /// The table it was applied to (hex).
        got: String,
    },
    /// A synthetic rate that is not a probability (SPEC 14.1).
    #[error("synthetic rate: not a probability from 0 to 1")]
    InvalidSyntheticRate,
    /// An account file whose fields are out of their format (SPEC 14.1).
    #[error("account file is malformed ({0})")]
    MalformedAccount(&'static str),
    /// An incremental build cannot keep the base's slots: the list outgrew
    /// the table, the key changed, or placement failed. Build in full.
    #[error("cannot update the base table in place: {0}; build a new table instead")]
    NeedsRebuild(&'static str),
}
