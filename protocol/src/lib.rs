//! # blindmatch-protocol
//!
//! The cryptographic core of blindmatch: a server-output private set
//! intersection on ristretto255 in the style of the Apple PSI system
//! (Bhowmick, Boneh, Myers, Talwar, Tarbe, 2021). The server holds a list of
//! hashes and a secret key α; a client holds items. For each item the server
//! learns only whether it is on the list (and, on a match, the item and the
//! client's associated data); the client learns nothing about the result.
//!
//! This crate is pure: no I/O, no async, no clock. Randomness comes in through
//! a [`rand_core::CryptoRng`] argument. The wire format, every DST and every
//! key derivation are written down in `papers/SPEC.md`; the security argument
//! is in `papers/SECURITY.md`.
//!
//! ## The protocol, step by step
//!
//! **1. The server makes a key** α and publishes L = α·G.
//!
//! ```
//! use blindmatch_protocol::{Item, ItemType, ServerKey, TableBuilder};
//! let key = ServerKey::generate(&mut rand::rng());
//! # let _ = key.public_key();
//! ```
//!
//! **2. The server builds a blinded cuckoo table** from its list: each entry y
//! is stored once, as α·H(y), in one of its k candidate slots, and every other
//! slot holds a pseudo-random element. [`TableBuilder::build`] returns the
//! public [`BlindedTable`] and the private [`EntryIndex`].
//!
//! ```
//! # use blindmatch_protocol::{Item, ItemType, ServerKey, TableBuilder};
//! # let key = ServerKey::generate(&mut rand::rng());
//! let listed = Item::parse(ItemType::Sha256, &"ab".repeat(32))?;
//! let built = TableBuilder::new([7u8; 32]).build(&key, vec![listed.clone()])?;
//! let wire: Vec<u8> = built.table.encode(); // what clients download
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **3. The client** decodes and validates the table, then makes a
//! [`Voucher`] per item. Every voucher has the same size.
//!
//! ```
//! # use blindmatch_protocol::{Item, ItemType, ServerKey, TableBuilder};
//! use blindmatch_protocol::{BlindedTable, ClientTable};
//! # let key = ServerKey::generate(&mut rand::rng());
//! # let listed = Item::parse(ItemType::Sha256, &"ab".repeat(32))?;
//! # let wire = TableBuilder::new([7u8; 32]).build(&key, vec![listed.clone()])?.table.encode();
//! let client = ClientTable::new(BlindedTable::decode(&wire)?)?;
//! let voucher = client.create_voucher(&listed, b"upload 42", &mut rand::rng())?;
//! let bytes: Vec<u8> = voucher.encode();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! **4. The server** opens each voucher with one scalar multiplication.
//!
//! ```
//! # use blindmatch_protocol::{Item, ItemType, ServerKey, TableBuilder, BlindedTable, ClientTable};
//! use blindmatch_protocol::{Matcher, Voucher};
//! # let key = ServerKey::generate(&mut rand::rng());
//! # let listed = Item::parse(ItemType::Sha256, &"ab".repeat(32))?;
//! # let built = TableBuilder::new([7u8; 32]).build(&key, vec![listed.clone()])?;
//! # let client = ClientTable::new(BlindedTable::decode(&built.table.encode())?)?;
//! # let bytes = client.create_voucher(&listed, b"upload 42", &mut rand::rng())?.encode();
//! let matcher = Matcher::new(&key, &built.table, built.index)?;
//! let voucher = Voucher::decode(&bytes, matcher.header().k)?;
//! let found = matcher.open(&voucher)?.expect("listed item matches");
//! assert_eq!(found.item, listed);
//! assert_eq!(found.associated_data, b"upload 42");
//!
//! let other = Item::parse(ItemType::Sha256, &"cd".repeat(32))?;
//! let v = client.create_voucher(&other, b"", &mut rand::rng())?;
//! assert!(matcher.open(&v)?.is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Threshold mode (SPEC Section 14, protocol version 2)
//!
//! An account's vouchers release Shamir shares of an account key instead of
//! the item; the server learns the items and associated data only once it
//! holds t real shares, and synthetic vouchers (at a rate the account keeps
//! secret) hide how many it holds below that.
//!
//! ```
//! # use blindmatch_protocol::{Item, ItemType, ServerKey, TableBuilder, BlindedTable, ClientTable, Matcher};
//! use blindmatch_protocol::threshold::{
//!     AccountSecret, Outcome, SyntheticRate, Upload, VoucherAccount, placement_weights, reveal,
//! };
//! # let key = ServerKey::generate(&mut rand::rng());
//! # let listed: Vec<Item> = (0..3u8).map(|i| Item::new(ItemType::Sha256, &[i; 32])).collect::<Result<_, _>>()?;
//! # let built = TableBuilder::new([7u8; 32]).build(&key, listed.clone())?;
//! # let client = ClientTable::new(BlindedTable::decode(&built.table.encode())?)?;
//! # let weights = placement_weights(&built);
//! # let matcher = Matcher::new(&key, &built.table, built.index.clone())?;
//! // The account's devices share one secret (store `encode()`, mode 0600).
//! let account = AccountSecret::generate(b"user-42", SyntheticRate::NONE, &mut rand::rng())?;
//! let keys = account.keys(3, 2)?; // the manifest's t and s
//!
//! let mut shares = Vec::new();
//! for (n, item) in listed.iter().enumerate() {
//!     let voucher_id = [n as u8; 16]; // the platform's name for the upload
//!     let sender = VoucherAccount { keys: &keys, account_id: account.account_id(), weights: &weights };
//!     let upload = Upload::new(&voucher_id, item.clone(), b"upload".to_vec())?;
//!     let v = client.create_threshold_voucher(&sender, &upload, &mut rand::rng())?;
//!     // The server opens it with one scalar multiplication: a candidate.
//!     let opened = matcher.open_threshold_batch(2, &[(account.account_id(), &v)]);
//!     let candidate = opened.into_iter().next().expect("one result")?.expect("listed");
//!     shares.push(candidate.share);
//!     // Below t = 3 the server learns nothing of the items.
//!     let outcome = reveal(3, &shares)?;
//!     assert_eq!(matches!(outcome, Outcome::Revealed(_)), n == 2);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Layout
//! The modules follow the protocol's steps, each importing only those
//! before it (no module imports one that imports it back):
//! - [`encoding`], [`error`], [`item`]: wire encodings, errors, typed hash
//!   values and their parsing.
//! - [`hash_to_group`], [`key`], [`kdf`]: RFC 9380 hash to ristretto255, the
//!   server key and its file, the voucher key schedule and AEAD.
//! - [`table`]: the operator builds a table: header, positions, id
//!   ([`table`] itself), building ([`table::TableBuilder`]), the private
//!   entry index ([`table::EntryIndex`]) and the next version built in
//!   place ([`table::update`]).
//! - [`merkle`], [`manifest`]: the table's digest and the operator's signed
//!   statement of each version.
//! - [`download`], [`delta`]: the client receives it: chunks checked against
//!   the signed digest, or the changes since the version it holds.
//! - [`voucher`]: the client makes vouchers.
//! - [`matcher`]: the server opens them.
//! - [`threshold`]: threshold mode's inner layer: the account secret, Shamir
//!   shares of the account key, detection tags, synthetic shares, and the
//!   server's detection and reconstruction (SPEC Section 14).
//!
//! The `test-vectors` feature adds deterministic entry points and the interop
//! vector generator. Never enable it in a deployed build.

pub mod audit;
pub mod delta;
pub mod download;
pub mod encoding;
pub mod error;
pub mod hash_to_group;
pub mod item;
pub mod kdf;
pub mod key;
pub mod list;
pub mod manifest;
pub mod matcher;
pub mod merkle;
pub mod table;
pub mod threshold;
pub mod tlog;
#[cfg(feature = "test-vectors")]
pub mod vectors;
pub mod voucher;

pub use delta::TableDelta;
pub use download::TableAssembler;
pub use encoding::PublicKey;
pub use error::Error;
pub use item::{Item, ItemError, ItemType, MAX_ITEM_LEN};
pub use key::ServerKey;
pub use manifest::{Manifest, OperatorSigningKey, OperatorVerifyingKey, SignedManifest};
pub use matcher::{Match, Matcher};
pub use table::{
    BlindedTable, BuiltTable, EntryIndex, PROTOCOL_VERSION, TableBuilder, TableHeader, TableId,
};
pub use voucher::{
    ClientTable, MAX_AD_LEN, Voucher, VoucherSecrets, submission_digest, voucher_len,
};
#[cfg(feature = "fuzzing")]
pub use voucher::{PAYLOAD_LEN, fuzz_decode_payload};

/// `slice.iter().map(f).collect()`, on all cores with the `parallel` feature.
pub(crate) fn map_slice<T: Sync, U: Send>(
    slice: &[T],
    f: impl Fn(&T) -> U + Sync + Send,
) -> Vec<U> {
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        slice.par_iter().map(f).collect()
    }
    #[cfg(not(feature = "parallel"))]
    {
        slice.iter().map(f).collect()
    }
}
