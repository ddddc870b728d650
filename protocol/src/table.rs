//! The blinded cuckoo table: what the server publishes and the client blinds
//! against.
//!
//! A table has `n_slots` slots of 32 bytes. Each list entry y is stored once,
//! as the encoding of α·H(y), in one of its k candidate slots (its *positions*,
//! a keyed hash of the typed item under the table's public seed). Every other
//! slot holds a pseudo-random element that no one without α can tell from a
//! real entry (SPEC.md "Table").

mod cuckoo;
mod update;

pub use update::{
    Base, PLACEMENT_MAGIC, Placement, UPDATE_LOAD_MARGIN, UpdateOptions, UpdatedTable, update,
    update_max_load,
};

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use hkdf::Hkdf;
use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

use crate::encoding::{ELEMENT_LEN, PublicKey, array, check_magic_version, decode_element};
use crate::error::Error;
use crate::hash_to_group::{hash_item, hash_to_ristretto255};
use crate::item::Item;
use crate::key::ServerKey;
use crate::map_slice;

/// Magic bytes that open a table header.
pub const TABLE_MAGIC: [u8; 4] = *b"BMTB";
/// Protocol version carried in tables and vouchers.
pub const PROTOCOL_VERSION: u8 = 1;
/// Length of an encoded [`TableHeader`].
pub const HEADER_LEN: usize = 4 + 1 + 1 + 32 + 4 + ELEMENT_LEN;
/// Length of one slot.
pub const SLOT_LEN: usize = ELEMENT_LEN;
/// Fewest hash choices a table may use.
pub const MIN_K: u8 = 2;
/// Most hash choices a table may use (one SHA-512 output gives eight).
pub const MAX_K: u8 = 8;
/// The k this implementation builds with; see papers/SPEC.md "Choice of k".
pub const DEFAULT_K: u8 = 3;
/// The load factor this implementation builds with for [`DEFAULT_K`]
/// (entries / slots); see [`default_load_factor`] for other k.
pub const DEFAULT_LOAD_FACTOR: f64 = 0.85;

/// The load factor the builder uses for `k` unless told otherwise: about 7
/// points below the k-ary cuckoo threshold (0.5, 0.918, 0.977, ... for k = 2,
/// 3, 4), measured in papers/SPEC.md Section 9.
pub fn default_load_factor(k: u8) -> f64 {
    match k {
        0..=2 => 0.45,
        3 => DEFAULT_LOAD_FACTOR,
        4 => 0.93,
        _ => 0.95,
    }
}
/// Smallest table built, so that a tiny list still hides its size within a
/// few entries.
pub const MIN_SLOTS: u32 = 16;

const POSITIONS_LABEL: &[u8] = b"blindmatch-v1/cuckoo-positions";
const TABLE_ID_LABEL: &[u8] = b"blindmatch-v1/table-id";
const FILLER_KEY_SALT: &[u8] = b"blindmatch-v1/filler-key";
const FILLER_DST: &[u8] = b"blindmatch-v1/filler/ristretto255_XMD:SHA-512_R255MAP_RO_";
const RESEED_LABEL: &[u8] = b"blindmatch-v1/reseed";
/// How many seeds a build tries before giving up.
const MAX_SEEDS: u32 = 16;

/// The public parameters of a table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TableHeader {
    /// Number of hash choices (positions) per item.
    pub k: u8,
    /// Public seed of the position function.
    pub seed: [u8; 32],
    /// Number of slots.
    pub n_slots: u32,
    /// The server's public key L.
    pub public_key: PublicKey,
}

impl TableHeader {
    /// `"BMTB" || version || k || seed || I2OSP(n_slots, 4) || L`.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..4].copy_from_slice(&TABLE_MAGIC);
        out[4] = PROTOCOL_VERSION;
        out[5] = self.k;
        out[6..38].copy_from_slice(&self.seed);
        out[38..42].copy_from_slice(&self.n_slots.to_be_bytes());
        out[42..].copy_from_slice(&self.public_key.to_bytes());
        out
    }

    /// Decodes and validates a header.
    ///
    /// # Errors
    /// [`Error::Length`], [`Error::BadMagic`], [`Error::UnsupportedVersion`],
    /// [`Error::InvalidParameter`] for k or n_slots out of range, or a
    /// public-key error.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let b: [u8; HEADER_LEN] = array(bytes, "table header")?;
        check_magic_version(&b, &TABLE_MAGIC, PROTOCOL_VERSION, "table header")?;
        let header = TableHeader {
            k: b[5],
            seed: array(&b[6..38], "table seed")?,
            n_slots: u32::from_be_bytes(array(&b[38..42], "slot count")?),
            public_key: PublicKey::decode(&b[42..])?,
        };
        header.validate()?;
        Ok(header)
    }

    fn validate(&self) -> Result<(), Error> {
        if !(MIN_K..=MAX_K).contains(&self.k) {
            return Err(Error::InvalidParameter {
                name: "k",
                value: u64::from(self.k),
                allowed: "2..=8",
            });
        }
        if self.n_slots == 0 {
            return Err(Error::InvalidParameter {
                name: "n_slots",
                value: 0,
                allowed: "1..=4294967295",
            });
        }
        Ok(())
    }

    /// Total length of the slot array in bytes.
    pub fn slots_len(&self) -> u64 {
        u64::from(self.n_slots) * SLOT_LEN as u64
    }

    /// The k candidate slots of an item (SPEC.md "Cuckoo positions"):
    ///
    /// ```text
    /// d   = SHA-512("blindmatch-v1/cuckoo-positions" || seed || type || len || value)
    /// w_j = OS2IP(d[8j .. 8j+8]) mod n_slots,   j = 0 .. k-1
    /// ```
    ///
    /// The modulo bias is below 2^-32 and only shifts where entries sit, which
    /// is public anyway.
    pub fn positions(&self, item: &Item) -> Positions {
        positions(&self.seed, self.n_slots, self.k, item)
    }
}

fn positions(seed: &[u8; 32], n_slots: u32, k: u8, item: &Item) -> Positions {
    let mut encoded = Vec::with_capacity(2 + crate::item::MAX_ITEM_LEN);
    item.encode_into(&mut encoded);
    let d = Sha512::new()
        .chain_update(POSITIONS_LABEL)
        .chain_update(seed)
        .chain_update(&encoded)
        .finalize();
    let mut w = [0u32; MAX_K as usize];
    for (j, slot) in w.iter_mut().enumerate().take(usize::from(k)) {
        let mut word = [0u8; 8];
        word.copy_from_slice(&d[8 * j..8 * j + 8]);
        // The remainder is < n_slots <= u32::MAX.
        *slot = u32::try_from(u64::from_be_bytes(word) % u64::from(n_slots)).unwrap_or(0);
    }
    Positions { w, k }
}

/// An item's k candidate slots.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Positions {
    w: [u32; MAX_K as usize],
    k: u8,
}

impl Positions {
    /// The positions w_0 .. w_{k-1}.
    pub fn as_slice(&self) -> &[u32] {
        &self.w[..usize::from(self.k)]
    }
}

/// The table id: SHA-256 over the header and every slot.
///
/// ```text
/// table_id = SHA-256("blindmatch-v1/table-id" || header || slot_0 || ... || slot_{n-1})
/// ```
///
/// It names the exact table content: the client checks its download against
/// it, and every voucher key is bound to it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TableId(pub [u8; 32]);

/// Computes a [`TableId`] over a table streamed in pieces.
#[derive(Clone)]
pub struct TableIdHasher(Sha256);

impl TableIdHasher {
    /// Starts with the header.
    pub fn new(header: &TableHeader) -> Self {
        TableIdHasher(
            Sha256::new()
                .chain_update(TABLE_ID_LABEL)
                .chain_update(header.encode()),
        )
    }

    /// Feeds the next bytes of the slot array.
    pub fn update(&mut self, slots: &[u8]) {
        self.0.update(slots);
    }

    /// The id.
    pub fn finish(self) -> TableId {
        TableId(self.0.finalize().into())
    }
}

/// A complete table: header, slots and id. This is what clients download.
#[derive(Clone)]
pub struct BlindedTable {
    header: TableHeader,
    slots: Vec<u8>,
    id: TableId,
}

impl BlindedTable {
    /// A table from its header and slot bytes; computes the id.
    ///
    /// Slots are not decompressed here (that costs ~4 µs each); a client
    /// validates them all once in [`crate::ClientTable::new`].
    ///
    /// # Errors
    /// [`Error::Length`] if `slots` is not exactly `n_slots * 32` bytes.
    pub fn from_parts(header: TableHeader, slots: Vec<u8>) -> Result<Self, Error> {
        if slots.len() as u64 != header.slots_len() {
            return Err(Error::Length {
                what: "table slots",
                expected: usize::try_from(header.slots_len()).unwrap_or(usize::MAX),
                got: slots.len(),
            });
        }
        let mut hasher = TableIdHasher::new(&header);
        hasher.update(&slots);
        Ok(BlindedTable {
            header,
            slots,
            id: hasher.finish(),
        })
    }

    /// Decodes `header || slots` as one buffer.
    ///
    /// # Errors
    /// As [`TableHeader::decode`] and [`BlindedTable::from_parts`].
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() < HEADER_LEN {
            return Err(Error::Length {
                what: "table",
                expected: HEADER_LEN,
                got: bytes.len(),
            });
        }
        let header = TableHeader::decode(&bytes[..HEADER_LEN])?;
        Self::from_parts(header, bytes[HEADER_LEN..].to_vec())
    }

    /// `header || slots`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.slots.len());
        out.extend_from_slice(&self.header.encode());
        out.extend_from_slice(&self.slots);
        out
    }

    /// The header.
    pub fn header(&self) -> &TableHeader {
        &self.header
    }

    /// The id.
    pub fn id(&self) -> &TableId {
        &self.id
    }

    /// The slot array, `n_slots * 32` bytes.
    pub fn slots(&self) -> &[u8] {
        &self.slots
    }

    /// One slot's bytes; `i` must be below `n_slots`.
    pub(crate) fn slot(&self, i: u32) -> &[u8; SLOT_LEN] {
        let start = i as usize * SLOT_LEN;
        self.slots[start..start + SLOT_LEN]
            .try_into()
            .unwrap_or(&[0u8; SLOT_LEN])
    }

    /// Decodes one slot.
    pub(crate) fn slot_element(&self, i: u32) -> Result<RistrettoPoint, Error> {
        decode_element(self.slot(i), "table slot").map_err(|_| Error::InvalidSlot(i))
    }
}

/// Receives a table in chunks, as a resumable download does, and checks
/// each chunk against the signed manifest's Merkle digest as it arrives
/// (SPEC Section 13.2), and the whole against the digest and table id.
pub struct TableAssembler {
    manifest: crate::manifest::Manifest,
    slots: Vec<u8>,
}

/// Bytes per Merkle leaf (and download chunk).
pub const CHUNK_LEN: usize = crate::merkle::CHUNK_SLOTS as usize * SLOT_LEN;

impl TableAssembler {
    /// Starts a download of the table `manifest` (already verified) names.
    ///
    /// `already` is what an interrupted download kept: whole chunks, checked
    /// when they arrived and checked again, with the rest, by
    /// [`TableAssembler::finish`]. The next chunk must start at its end.
    ///
    /// # Errors
    /// [`Error::Length`] if `already` is longer than the table or not a whole
    /// number of chunks (see [`TableAssembler::resumable`]).
    pub fn new(manifest: &crate::manifest::Manifest, already: Vec<u8>) -> Result<Self, Error> {
        let len = manifest.header.slots_len();
        if already.len() as u64 > len
            || (already.len() as u64) < len && !already.len().is_multiple_of(CHUNK_LEN)
        {
            return Err(Error::Length {
                what: "resumed table download",
                expected: already.len() - already.len() % CHUNK_LEN,
                got: already.len(),
            });
        }
        Ok(TableAssembler {
            manifest: *manifest,
            slots: already,
        })
    }

    /// How much of `len` bytes kept from an interrupted download can be
    /// resumed from: whole chunks only.
    pub fn resumable(len: usize) -> usize {
        len - len % CHUNK_LEN
    }

    /// Where the next chunk starts, in bytes from the first slot.
    pub fn offset(&self) -> u64 {
        self.slots.len() as u64
    }

    /// Appends the chunk that starts at `offset`, after checking its Merkle
    /// inclusion proof against the manifest's digest.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if `offset` is not where the download
    /// stands, [`Error::Length`] if the chunk is not a whole leaf (the last
    /// may be short), or [`Error::DigestMismatch`] if the proof fails.
    pub fn push(&mut self, offset: u64, chunk: &[u8], proof: &[[u8; 32]]) -> Result<(), Error> {
        if offset != self.offset() {
            return Err(Error::InvalidParameter {
                name: "chunk offset",
                value: offset,
                allowed: "the number of bytes received so far",
            });
        }
        let total = self.manifest.header.slots_len();
        let want = (total - offset).min(CHUNK_LEN as u64);
        if chunk.len() as u64 != want {
            return Err(Error::Length {
                what: "table chunk",
                expected: usize::try_from(want).unwrap_or(usize::MAX),
                got: chunk.len(),
            });
        }
        crate::merkle::verify(
            &self.manifest.digest,
            offset / CHUNK_LEN as u64,
            crate::merkle::leaf_count(total),
            chunk,
            proof,
        )?;
        self.slots.extend_from_slice(chunk);
        Ok(())
    }

    /// The finished table.
    ///
    /// # Errors
    /// [`Error::Length`] if the download is incomplete, or
    /// [`Error::DigestMismatch`] / [`Error::TableIdMismatch`] if the content
    /// is not the manifest's table.
    pub fn finish(self) -> Result<BlindedTable, Error> {
        if crate::merkle::root(&crate::merkle::leaves(&self.slots)) != self.manifest.digest {
            return Err(if self.offset() < self.manifest.header.slots_len() {
                Error::Length {
                    what: "table download",
                    expected: usize::try_from(self.manifest.header.slots_len())
                        .unwrap_or(usize::MAX),
                    got: self.slots.len(),
                }
            } else {
                Error::DigestMismatch
            });
        }
        let table = BlindedTable::from_parts(self.manifest.header, self.slots)?;
        if table.id != self.manifest.table_id {
            return Err(Error::TableIdMismatch);
        }
        Ok(table)
    }
}

/// Magic bytes that open an encoded [`EntryIndex`].
pub const INDEX_MAGIC: [u8; 4] = *b"BMIX";
const FINGERPRINT_SALT: &[u8] = b"blindmatch-v1/entry-fingerprint";
/// Length of an entry fingerprint.
const FINGERPRINT_LEN: usize = 16;
/// Length of one slot record in an encoded index: entry (4) and fingerprint (16).
const INDEX_RECORD_LEN: usize = 4 + FINGERPRINT_LEN;

/// Keyed fingerprints of list entries:
/// `HKDF-Expand(HKDF-Extract("blindmatch-v1/entry-fingerprint", α), item_encoding, 16)`.
///
/// Keyed so that an index file, on its own, does not let anyone test guesses
/// against the list; 128 bits so that finding an unlisted item with a listed
/// entry's fingerprint is a second-preimage search on HMAC-SHA256.
#[derive(Clone)]
pub(crate) struct Fingerprinter(Hkdf<Sha256>);

impl Fingerprinter {
    pub(crate) fn new(key: &ServerKey) -> Self {
        Fingerprinter(Hkdf::<Sha256>::new(
            Some(FINGERPRINT_SALT),
            key.scalar().as_bytes(),
        ))
    }

    pub(crate) fn fingerprint(&self, item: &Item) -> [u8; FINGERPRINT_LEN] {
        let mut encoded = Vec::with_capacity(2 + crate::item::MAX_ITEM_LEN);
        item.encode_into(&mut encoded);
        let mut out = [0u8; FINGERPRINT_LEN];
        if self.0.expand(&encoded, &mut out).is_err() {
            unreachable!("16 bytes is within HKDF's limit");
        }
        out
    }
}

/// The server's private side of a table: which entry sits in which slot.
///
/// Per slot it keeps the entry number (its index in the deduplicated list) and
/// a 16-byte keyed fingerprint of the entry's item: 20 bytes a slot, not the
/// items themselves. The matcher uses it to confirm that a decrypted item is
/// really the list entry at the position that opened, so a client cannot forge
/// a match.
#[derive(Clone, PartialEq, Eq)]
pub struct EntryIndex {
    entry: Vec<u32>,
    fingerprint: Vec<[u8; FINGERPRINT_LEN]>,
}

impl EntryIndex {
    /// The number of slots the index covers.
    pub fn n_slots(&self) -> usize {
        self.entry.len()
    }

    /// The entry stored in `slot`, if any.
    pub fn entry_at(&self, slot: u32) -> Option<u32> {
        match self.entry.get(slot as usize) {
            Some(&e) if e != cuckoo::EMPTY => Some(e),
            _ => None,
        }
    }

    /// The slot an entry was placed in (a linear search: for tests and tools).
    pub fn slot_of(&self, entry: u32) -> Option<u32> {
        self.entry
            .iter()
            .position(|&e| e == entry)
            .and_then(|s| u32::try_from(s).ok())
    }

    /// The entry in `slot` if its fingerprint is `fingerprint`.
    pub(crate) fn confirm(&self, slot: u32, fingerprint: &[u8; FINGERPRINT_LEN]) -> Option<u32> {
        let e = self.entry_at(slot)?;
        (self.fingerprint.get(slot as usize) == Some(fingerprint)).then_some(e)
    }

    /// `"BMIX" || I2OSP(1, 1) || I2OSP(n_slots, 4) || per slot: I2OSP(entry, 4) || fingerprint`,
    /// with entry `0xffffffff` for an empty slot. Server-private; not part of
    /// the wire protocol.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(INDEX_HEADER_LEN + self.entry.len() * INDEX_RECORD_LEN);
        out.extend_from_slice(&INDEX_MAGIC);
        out.push(PROTOCOL_VERSION);
        out.extend_from_slice(
            &u32::try_from(self.entry.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        for (e, fp) in self.entry.iter().zip(&self.fingerprint) {
            out.extend_from_slice(&e.to_be_bytes());
            out.extend_from_slice(fp);
        }
        out
    }

    /// Decodes [`EntryIndex::encode`].
    ///
    /// # Errors
    /// [`Error::Length`], [`Error::BadMagic`] or [`Error::UnsupportedVersion`].
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let header: [u8; INDEX_HEADER_LEN] = bytes
            .get(..INDEX_HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(Error::Length {
                what: "entry index",
                expected: INDEX_HEADER_LEN,
                got: bytes.len(),
            })?;
        let mut decoder = EntryIndexDecoder::new(&header, bytes.len() as u64)?;
        decoder.push(&bytes[INDEX_HEADER_LEN..])?;
        decoder.finish()
    }
}

/// Length of the header of an encoded [`EntryIndex`]: magic, version, slot count.
pub const INDEX_HEADER_LEN: usize = 9;

/// Decodes an [`EntryIndex`] fed in pieces, so that a large one (235 MB at
/// ten million entries) is never held twice while loading.
pub struct EntryIndexDecoder {
    n: usize,
    pending: Vec<u8>,
    index: EntryIndex,
}

impl EntryIndexDecoder {
    /// Starts decoding an index whose encoding is `total_len` bytes long and
    /// begins with `header`.
    ///
    /// # Errors
    /// [`Error::BadMagic`], [`Error::UnsupportedVersion`], or [`Error::Length`]
    /// if `total_len` is not what the header's slot count implies (checked
    /// before anything is allocated for it).
    pub fn new(header: &[u8; INDEX_HEADER_LEN], total_len: u64) -> Result<Self, Error> {
        check_magic_version(header, &INDEX_MAGIC, PROTOCOL_VERSION, "entry index")?;
        let n = u32::from_be_bytes(array(&header[5..9], "entry index")?) as usize;
        let want = INDEX_HEADER_LEN as u64 + n as u64 * INDEX_RECORD_LEN as u64;
        if total_len != want {
            return Err(Error::Length {
                what: "entry index",
                expected: usize::try_from(want).unwrap_or(usize::MAX),
                got: usize::try_from(total_len).unwrap_or(usize::MAX),
            });
        }
        Ok(EntryIndexDecoder {
            n,
            pending: Vec::with_capacity(INDEX_RECORD_LEN),
            index: EntryIndex {
                entry: Vec::with_capacity(n),
                fingerprint: Vec::with_capacity(n),
            },
        })
    }

    /// Feeds the next bytes after the header.
    ///
    /// # Errors
    /// [`Error::Length`] if more records arrive than the header announced.
    pub fn push(&mut self, mut bytes: &[u8]) -> Result<(), Error> {
        while !bytes.is_empty() {
            let take = (INDEX_RECORD_LEN - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.pending.len() == INDEX_RECORD_LEN {
                if self.index.entry.len() == self.n {
                    return Err(Error::Length {
                        what: "entry index",
                        expected: self.n,
                        got: self.n + 1,
                    });
                }
                self.index.entry.push(u32::from_be_bytes(array(
                    &self.pending[..4],
                    "entry index",
                )?));
                self.index
                    .fingerprint
                    .push(array(&self.pending[4..], "entry index")?);
                self.pending.clear();
            }
        }
        Ok(())
    }

    /// The index.
    ///
    /// # Errors
    /// [`Error::Length`] if fewer records arrived than the header announced.
    pub fn finish(self) -> Result<EntryIndex, Error> {
        if self.index.entry.len() != self.n || !self.pending.is_empty() {
            return Err(Error::Length {
                what: "entry index",
                expected: self.n,
                got: self.index.entry.len(),
            });
        }
        Ok(self.index)
    }
}

impl core::fmt::Debug for EntryIndex {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EntryIndex")
            .field("n_slots", &self.n_slots())
            .finish_non_exhaustive()
    }
}

/// A table, its private index and the deduplicated list, as
/// [`TableBuilder::build`] returns them.
pub struct BuiltTable {
    /// The public table.
    pub table: BlindedTable,
    /// The server's private index.
    pub index: EntryIndex,
    /// The list after collapsing duplicates; entry numbers index into it.
    pub entries: Vec<Item>,
    /// Where each entry may move to, for later updates (operator-private).
    pub placement: Placement,
}

/// Builds blinded tables.
#[derive(Clone, Debug)]
pub struct TableBuilder {
    k: u8,
    load_factor: Option<f64>,
    seed: [u8; 32],
}

impl TableBuilder {
    /// A builder with the default k and load factor and the given initial seed
    /// (pick it at random; it is public).
    pub fn new(seed: [u8; 32]) -> Self {
        TableBuilder {
            k: DEFAULT_K,
            load_factor: None,
            seed,
        }
    }

    /// Sets k. Unless a load factor is set explicitly, the builder then uses
    /// [`default_load_factor`]`(k)`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] outside 2..=8.
    pub fn k(mut self, k: u8) -> Result<Self, Error> {
        if !(MIN_K..=MAX_K).contains(&k) {
            return Err(Error::InvalidParameter {
                name: "k",
                value: u64::from(k),
                allowed: "2..=8",
            });
        }
        self.k = k;
        Ok(self)
    }

    /// Sets the load factor (entries per slot).
    #[allow(
        clippy::cast_possible_truncation,
        reason = "the error reports a rounded percentage"
    )]
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] outside (0, 1).
    pub fn load_factor(mut self, load_factor: f64) -> Result<Self, Error> {
        if !(load_factor > 0.0 && load_factor < 1.0) {
            return Err(Error::InvalidParameter {
                name: "load factor (percent)",
                value: (load_factor * 100.0).clamp(0.0, 1e9) as u64,
                allowed: "strictly between 0 and 100",
            });
        }
        self.load_factor = Some(load_factor);
        Ok(self)
    }

    /// The number of slots a list of `n` distinct entries gets.
    ///
    /// # Errors
    /// [`Error::TooManyEntries`] if that would be 2^32 slots or more.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "`want` is checked to fit in u32 first"
    )]
    pub fn slots_for(&self, n: usize) -> Result<u32, Error> {
        let load = self
            .load_factor
            .unwrap_or_else(|| default_load_factor(self.k));
        let want = (n as f64 / load).ceil().max(f64::from(MIN_SLOTS));
        if n >= u32::MAX as usize || want >= f64::from(u32::MAX) {
            return Err(Error::TooManyEntries(n));
        }
        Ok(want as u32)
    }

    /// Builds the table for `items` under `key`.
    ///
    /// Duplicates are collapsed (the first occurrence keeps its index).
    /// Placement re-seeds on failure (seed' = SHA-256("blindmatch-v1/reseed" ||
    /// seed)), so the result is a function of the key, the initial seed and
    /// the list alone. The group work runs on all cores when the `parallel`
    /// feature is on.
    ///
    /// # Errors
    /// [`Error::TooManyEntries`], or [`Error::PlacementFailed`] if sixteen
    /// seeds in a row failed (only at load factors near the k-ary cuckoo
    /// threshold).
    pub fn build(
        &self,
        key: &ServerKey,
        items: impl IntoIterator<Item = Item>,
    ) -> Result<BuiltTable, Error> {
        self.build_with_progress(key, items, &|_, _| {})
    }

    /// [`TableBuilder::build`], calling `progress(done, n_slots)` each time
    /// another `done` slots are computed (from several threads; the `done`
    /// values add up to `n_slots`).
    ///
    /// # Errors
    /// As [`TableBuilder::build`].
    pub fn build_with_progress(
        &self,
        key: &ServerKey,
        items: impl IntoIterator<Item = Item>,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<BuiltTable, Error> {
        let entries = dedup(items);
        let n_slots = self.slots_for(entries.len())?;
        let mut seed = self.seed;
        let mut attempt = 0;
        let (slot_entry, pos) = loop {
            let pos = flat_positions(&entries, &seed, n_slots, self.k);
            let walk_seed = u64::from_be_bytes(array(&seed[..8], "seed")?);
            if let Some((slots, _)) = cuckoo::place(&pos, usize::from(self.k), n_slots, walk_seed) {
                break (slots, pos);
            }
            attempt += 1;
            if attempt == MAX_SEEDS {
                return Err(Error::PlacementFailed { attempts: attempt });
            }
            seed = Sha256::new()
                .chain_update(RESEED_LABEL)
                .chain_update(seed)
                .finalize()
                .into();
        };

        let header = TableHeader {
            k: self.k,
            seed,
            n_slots,
            public_key: *key.public_key(),
        };
        let slots = blind_slots(key, &seed, &slot_entry, &entries, progress);
        let table = BlindedTable::from_parts(header, slots)?;
        let fingerprinter = Fingerprinter::new(key);
        let fingerprint = map_slice(&slot_entry, |&e| match entries.get(e as usize) {
            Some(item) => fingerprinter.fingerprint(item),
            None => [0u8; FINGERPRINT_LEN],
        });
        let k_us = usize::from(self.k);
        let mut positions = vec![cuckoo::EMPTY; slot_entry.len() * k_us];
        for (out, &e) in positions.chunks_exact_mut(k_us).zip(&slot_entry) {
            if e != cuckoo::EMPTY {
                let at = e as usize * k_us;
                out.copy_from_slice(&pos[at..at + k_us]);
            }
        }
        let next_entry =
            u32::try_from(entries.len()).map_err(|_| Error::TooManyEntries(entries.len()))?;
        Ok(BuiltTable {
            table,
            index: EntryIndex {
                entry: slot_entry,
                fingerprint,
            },
            entries,
            placement: Placement {
                k: self.k,
                next_entry,
                positions,
            },
        })
    }
}

/// The outcome of [`trial_placement`].
#[derive(Clone, Copy, Debug)]
pub struct PlacementTrial {
    /// Whether every entry found a slot with the first seed.
    pub placed: bool,
    /// Evictions per entry (when placed).
    pub evictions_per_entry: f64,
}

/// Places `n` synthetic SHA-256 entries with one seed and reports how it went,
/// without any group arithmetic: for choosing k and the load factor
/// (`examples/cuckoo-params.rs`).
///
/// # Errors
/// As [`TableBuilder::slots_for`].
pub fn trial_placement(
    n: usize,
    k: u8,
    load_factor: f64,
    seed: [u8; 32],
) -> Result<PlacementTrial, Error> {
    let builder = TableBuilder::new(seed).k(k)?.load_factor(load_factor)?;
    let n_slots = builder.slots_for(n)?;
    let range: Vec<u64> = (0..n as u64).collect();
    let entries: Vec<Item> = map_slice(&range, |i| {
        let value: [u8; 32] = Sha256::digest(i.to_be_bytes()).into();
        Item::new(crate::item::ItemType::Sha256, &value).unwrap_or_else(|_| unreachable!())
    });
    let pos = flat_positions(&entries, &seed, n_slots, k);
    let walk_seed = u64::from_be_bytes(array(&seed[..8], "seed")?);
    Ok(
        match cuckoo::place(&pos, usize::from(k), n_slots, walk_seed) {
            Some((_, ev)) => PlacementTrial {
                placed: true,
                evictions_per_entry: ev as f64 / n.max(1) as f64,
            },
            None => PlacementTrial {
                placed: false,
                evictions_per_entry: f64::NAN,
            },
        },
    )
}

/// Collapses duplicates, keeping first occurrences in order, without cloning
/// a single item (the set holds references: 8 bytes an entry, not 66).
fn dedup(items: impl IntoIterator<Item = Item>) -> Vec<Item> {
    let mut items: Vec<Item> = items.into_iter().collect();
    let keep: Vec<bool> = {
        let mut seen = std::collections::HashSet::with_capacity(items.len());
        items.iter().map(|i| seen.insert(i)).collect()
    };
    let mut keep = keep.into_iter();
    items.retain(|_| keep.next().unwrap_or(false));
    items.shrink_to_fit();
    items
}

/// Every entry's k positions in one flat array (`k` u32s an entry).
fn flat_positions(entries: &[Item], seed: &[u8; 32], n_slots: u32, k: u8) -> Vec<u32> {
    let k_us = usize::from(k);
    let mut flat = vec![0u32; entries.len() * k_us];
    let fill = |(out, item): (&mut [u32], &Item)| {
        out.copy_from_slice(positions(seed, n_slots, k, item).as_slice())
    };
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        flat.par_chunks_mut(k_us)
            .zip(entries.par_iter())
            .for_each(fill);
    }
    #[cfg(not(feature = "parallel"))]
    flat.chunks_mut(k_us).zip(entries.iter()).for_each(fill);
    flat
}

/// The key that makes filler slots unpredictable without α:
/// `HKDF-SHA256(salt = "blindmatch-v1/filler-key", IKM = α, info = seed)`.
fn filler_key(key: &ServerKey, seed: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    let hk = Hkdf::<Sha256>::new(Some(FILLER_KEY_SALT), key.scalar().as_bytes());
    if hk.expand(seed, &mut out[..]).is_err() {
        unreachable!("32 bytes is within HKDF's limit");
    }
    out
}

/// Half the element stored in empty slot `i`:
/// `hash_to_ristretto255(filler_key || I2OSP(i, 4), FILLER_DST)`; the slot
/// holds its double, like real slots, because of the batch compression below.
fn filler_half(filler_key: &[u8; 32], i: u32) -> RistrettoPoint {
    hash_to_ristretto255(&[filler_key, &i.to_be_bytes()], FILLER_DST)
}

/// Half the fresh filler an update to `version` puts in slot `i` when it
/// empties it: `hash_to_ristretto255(filler_key || I2OSP(i, 4) ||
/// I2OSP(version, 8), FILLER_DST)`. Fresh, so that a slot emptied again
/// never returns to a value it held before (which would tell a client that
/// kept both versions that the value in between was a real entry).
fn filler_half_at(filler_key: &[u8; 32], i: u32, version: u64) -> RistrettoPoint {
    hash_to_ristretto255(
        &[filler_key, &i.to_be_bytes(), &version.to_be_bytes()],
        FILLER_DST,
    )
}

/// Computes every slot's bytes.
///
/// A real slot is α·H(y). We compute (α/2)·H(y) and let
/// `double_and_compress_batch` double it while it compresses a whole chunk
/// with one field inversion (~0.5 µs a point against ~4 µs for `compress`).
fn blind_slots(
    key: &ServerKey,
    seed: &[u8; 32],
    slot_entry: &[u32],
    entries: &[Item],
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Vec<u8> {
    const CHUNK: usize = 1024;
    let half_alpha = Zeroizing::new(key.scalar() * Scalar::from(2u8).invert());
    let fkey = filler_key(key, seed);
    let total = slot_entry.len() as u64;
    // Each chunk of slots is computed straight into its place in the output.
    let fill = |(c, (out, chunk)): (usize, (&mut [u8], &[u32]))| {
        let halves: Vec<RistrettoPoint> = chunk
            .iter()
            .enumerate()
            .map(|(i, &e)| match entries.get(e as usize) {
                Some(item) => *half_alpha * hash_item(item),
                None => filler_half(&fkey, u32::try_from(c * CHUNK + i).unwrap_or(u32::MAX)),
            })
            .collect();
        let compressed = RistrettoPoint::double_and_compress_batch(&halves);
        for (dst, point) in out.chunks_exact_mut(SLOT_LEN).zip(&compressed) {
            dst.copy_from_slice(point.as_bytes());
        }
        progress(chunk.len() as u64, total);
    };
    let mut slots = vec![0u8; slot_entry.len() * SLOT_LEN];
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        slots
            .par_chunks_mut(CHUNK * SLOT_LEN)
            .zip(slot_entry.par_chunks(CHUNK))
            .enumerate()
            .for_each(fill);
    }
    #[cfg(not(feature = "parallel"))]
    slots
        .chunks_mut(CHUNK * SLOT_LEN)
        .zip(slot_entry.chunks(CHUNK))
        .enumerate()
        .for_each(fill);
    slots
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation, reason = "test sizes are small")]
mod tests {
    use super::*;
    use crate::item::ItemType;

    fn items(n: usize) -> Vec<Item> {
        (0..n)
            .map(|i| Item::new(ItemType::Sha256, &Sha256::digest(i.to_be_bytes())).unwrap())
            .collect()
    }

    #[test]
    fn every_k_builds_with_its_default_load_factor() {
        let key = ServerKey::generate(&mut rand::rng());
        for k in MIN_K..=MAX_K {
            let built = TableBuilder::new([k; 32])
                .k(k)
                .unwrap()
                .build(&key, items(3000))
                .unwrap();
            assert_eq!(built.table.header().k, k);
            assert!(built.table.header().n_slots >= 3000);
        }
    }

    #[test]
    fn index_encoding_round_trips_and_rejects_damage() {
        let key = ServerKey::generate(&mut rand::rng());
        let built = TableBuilder::new([5; 32]).build(&key, items(30)).unwrap();
        let bytes = built.index.encode();
        assert_eq!(EntryIndex::decode(&bytes).unwrap(), built.index);
        assert!(matches!(
            EntryIndex::decode(&bytes[..bytes.len() - 1]),
            Err(Error::Length { .. })
        ));
        assert!(matches!(
            EntryIndex::decode(&bytes[..3]),
            Err(Error::Length { .. })
        ));
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert_eq!(
            EntryIndex::decode(&bad),
            Err(Error::BadMagic("entry index"))
        );
        let mut bad = bytes;
        bad[5..9].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            EntryIndex::decode(&bad),
            Err(Error::Length { .. })
        ));
    }

    #[test]
    fn index_decodes_from_pieces_of_any_size() {
        let key = ServerKey::generate(&mut rand::rng());
        let built = TableBuilder::new([6; 32]).build(&key, items(40)).unwrap();
        let bytes = built.index.encode();
        let header: [u8; INDEX_HEADER_LEN] = bytes[..INDEX_HEADER_LEN].try_into().unwrap();
        for piece in [1, 7, 20, 33, 1000] {
            let mut d = EntryIndexDecoder::new(&header, bytes.len() as u64).unwrap();
            for chunk in bytes[INDEX_HEADER_LEN..].chunks(piece) {
                d.push(chunk).unwrap();
            }
            assert_eq!(d.finish().unwrap(), built.index, "pieces of {piece}");
        }
        // Too few records, or one too many, is an error.
        let mut d = EntryIndexDecoder::new(&header, bytes.len() as u64).unwrap();
        d.push(&bytes[INDEX_HEADER_LEN..bytes.len() - 1]).unwrap();
        assert!(d.finish().is_err());
        let mut d = EntryIndexDecoder::new(&header, bytes.len() as u64).unwrap();
        d.push(&bytes[INDEX_HEADER_LEN..]).unwrap();
        assert!(d.push(&[0; INDEX_RECORD_LEN]).is_err());
    }

    #[test]
    fn every_entry_sits_at_one_of_its_positions_as_alpha_h() {
        let key = ServerKey::generate(&mut rand::rng());
        let list = items(200);
        let built = TableBuilder::new([3; 32])
            .build(&key, list.clone())
            .unwrap();
        let header = built.table.header();
        for (e, item) in list.iter().enumerate() {
            let slot = built.index.slot_of(e as u32).unwrap();
            assert!(header.positions(item).as_slice().contains(&slot));
            let expected = (key.scalar() * hash_item(item)).compress();
            assert_eq!(built.table.slot(slot), expected.as_bytes());
        }
    }

    #[test]
    fn build_is_deterministic_and_collapses_duplicates() {
        let key = ServerKey::from_scalar(Scalar::from(77u8));
        let mut list = items(50);
        list.extend(items(10));
        let a = TableBuilder::new([9; 32])
            .build(&key, list.clone())
            .unwrap();
        let b = TableBuilder::new([9; 32])
            .build(&key, list.clone())
            .unwrap();
        assert_eq!(a.entries.len(), 50);
        assert_eq!(a.entries[..], list[..50]);
        assert_eq!(a.table.encode(), b.table.encode());
        assert_eq!(a.table.id(), b.table.id());
    }

    #[test]
    fn empty_list_gives_a_table_of_fillers() {
        let key = ServerKey::generate(&mut rand::rng());
        let built = TableBuilder::new([0; 32]).build(&key, Vec::new()).unwrap();
        assert_eq!(built.table.header().n_slots, MIN_SLOTS);
        for i in 0..MIN_SLOTS {
            built.table.slot_element(i).unwrap();
            assert_eq!(built.index.entry_at(i), None);
        }
    }

    #[test]
    fn header_round_trips_and_rejects_bad_fields() {
        let key = ServerKey::generate(&mut rand::rng());
        let built = TableBuilder::new([1; 32]).build(&key, items(20)).unwrap();
        let bytes = built.table.encode();
        let back = BlindedTable::decode(&bytes).unwrap();
        assert_eq!(back.id(), built.table.id());

        let mut bad = bytes.clone();
        bad[5] = 9;
        assert!(matches!(
            BlindedTable::decode(&bad),
            Err(Error::InvalidParameter { name: "k", .. })
        ));
        let mut bad = bytes.clone();
        bad[38..42].copy_from_slice(&0u32.to_be_bytes());
        assert!(matches!(
            BlindedTable::decode(&bad),
            Err(Error::InvalidParameter {
                name: "n_slots",
                ..
            })
        ));
        let mut bad = bytes.clone();
        bad[4] = 2;
        assert!(matches!(
            BlindedTable::decode(&bad),
            Err(Error::UnsupportedVersion { .. })
        ));
        assert!(matches!(
            BlindedTable::decode(&bytes[..HEADER_LEN + 31]),
            Err(Error::Length { .. })
        ));
        assert!(matches!(
            BlindedTable::decode(&bytes[..10]),
            Err(Error::Length { .. })
        ));
    }

    fn manifest_of(t: &BlindedTable) -> crate::manifest::Manifest {
        crate::manifest::Manifest {
            version: 1,
            created: 0,
            table_id: *t.id(),
            digest: *crate::merkle::MerkleTree::new(t.slots()).root(),
            chunk_slots: crate::merkle::CHUNK_SLOTS,
            header: *t.header(),
            threshold: None,
        }
    }

    #[test]
    fn assembler_checks_each_chunk_and_resumes_at_a_chunk() {
        let key = ServerKey::generate(&mut rand::rng());
        // About 2.4 chunks of slots.
        let built = TableBuilder::new([1; 32]).build(&key, items(4200)).unwrap();
        let m = manifest_of(&built.table);
        let tree = crate::merkle::MerkleTree::new(built.table.slots());
        let slots = built.table.slots();
        let chunks: Vec<&[u8]> = slots.chunks(CHUNK_LEN).collect();
        assert_eq!(chunks.len(), 3);

        let mut a = TableAssembler::new(&m, chunks[0].to_vec()).unwrap();
        assert_eq!(a.offset(), CHUNK_LEN as u64);
        assert!(
            a.push(0, chunks[0], tree.proof(0).unwrap()).is_err(),
            "out of order"
        );
        assert!(
            a.push(a.offset(), &chunks[1][..64], tree.proof(1).unwrap())
                .is_err(),
            "short chunk"
        );
        let mut bad = chunks[1].to_vec();
        bad[100] ^= 1;
        assert_eq!(
            a.push(a.offset(), &bad, tree.proof(1).unwrap()),
            Err(Error::DigestMismatch)
        );
        assert_eq!(
            a.push(a.offset(), chunks[1], tree.proof(0).unwrap()),
            Err(Error::DigestMismatch)
        );
        a.push(a.offset(), chunks[1], tree.proof(1).unwrap())
            .unwrap();
        a.push(a.offset(), chunks[2], tree.proof(2).unwrap())
            .unwrap();
        assert_eq!(a.finish().unwrap().id(), built.table.id());

        // A damaged resumed part is caught at the end.
        let mut damaged = chunks[0].to_vec();
        damaged[5] ^= 1;
        let mut a = TableAssembler::new(&m, damaged).unwrap();
        a.push(a.offset(), chunks[1], tree.proof(1).unwrap())
            .unwrap();
        a.push(a.offset(), chunks[2], tree.proof(2).unwrap())
            .unwrap();
        assert_eq!(a.finish().err(), Some(Error::DigestMismatch));

        assert!(
            TableAssembler::new(&m, slots[..64].to_vec()).is_err(),
            "not a whole chunk"
        );
        let a = TableAssembler::new(&m, chunks[0].to_vec()).unwrap();
        assert!(matches!(a.finish(), Err(Error::Length { .. })));
    }
}
