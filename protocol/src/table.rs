//! The blinded cuckoo table: what the server publishes and the client blinds
//! against.
//!
//! A table has `n_slots` slots of 32 bytes. Each list entry y is stored once,
//! as the encoding of α·H(y), in one of its k candidate slots (its *positions*,
//! a keyed hash of the typed item under the table's public seed). Every other
//! slot holds a pseudo-random element that no one without α can tell from a
//! real entry (SPEC.md "Table").

mod build;
mod cuckoo;
mod index;
mod update;

pub use build::{BuiltTable, PlacementTrial, TableBuilder, trial_placement};
pub(crate) use build::{
    Unblinded, blind, dedup, filler_half, filler_half_at, filler_key, filler_uniform_at,
};
pub use index::{EntryIndex, EntryIndexDecoder, INDEX_HEADER_LEN, INDEX_MAGIC};
pub(crate) use index::{FINGERPRINT_LEN, Fingerprinter};

pub use update::{
    Base, PLACEMENT_MAGIC, Placement, UPDATE_LOAD_MARGIN, UpdateOptions, UpdatedTable,
    count_in_base, update, update_max_load,
};

use curve25519_dalek::ristretto::RistrettoPoint;
use sha2::{Digest, Sha256, Sha512};

use crate::encoding::{ELEMENT_LEN, PublicKey, array, check_magic_version, decode_element};
use crate::error::Error;
use crate::item::Item;

/// Magic bytes that open a table header.
pub const TABLE_MAGIC: [u8; 4] = *b"BMTB";
/// Protocol version carried in tables and vouchers.
pub const PROTOCOL_VERSION: u8 = 1;
/// Protocol version 2, threshold mode (SPEC Section 14): the version byte of
/// its manifests and vouchers.
pub const THRESHOLD_VERSION: u8 = 2;
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

    /// [`BlindedTable::decode`] of a buffer it may keep: the slots stay
    /// where they are (the header is moved out of their way), so a table
    /// read from a file is held once, not twice.
    ///
    /// # Errors
    /// As [`BlindedTable::decode`].
    pub fn decode_owned(mut bytes: Vec<u8>) -> Result<Self, Error> {
        if bytes.len() < HEADER_LEN {
            return Err(Error::Length {
                what: "table",
                expected: HEADER_LEN,
                got: bytes.len(),
            });
        }
        let header = TableHeader::decode(&bytes[..HEADER_LEN])?;
        bytes.drain(..HEADER_LEN);
        Self::from_parts(header, bytes)
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

/// Bytes per Merkle leaf (and download chunk).
pub const CHUNK_LEN: usize = crate::merkle::CHUNK_SLOTS as usize * SLOT_LEN;

#[cfg(test)]
#[allow(clippy::cast_possible_truncation, reason = "test sizes are small")]
mod tests {
    use super::index::INDEX_RECORD_LEN;
    use super::*;
    use crate::hash_to_group::hash_item;
    use crate::item::ItemType;
    use crate::key::ServerKey;
    use curve25519_dalek::scalar::Scalar;

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
    fn decode_owned_is_decode() {
        let key = ServerKey::generate(&mut rand::rng());
        let built = TableBuilder::new([9; 32]).build(&key, items(500)).unwrap();
        let encoded = built.table.encode();
        let owned = BlindedTable::decode_owned(encoded.clone()).unwrap();
        assert_eq!(owned.encode(), encoded);
        assert_eq!(owned.id(), built.table.id());
        for bad in [
            encoded[..HEADER_LEN - 1].to_vec(),
            encoded[..encoded.len() - 1].to_vec(),
            [&[0u8][..], &encoded[1..]].concat(),
        ] {
            assert_eq!(
                BlindedTable::decode_owned(bad.clone()).err(),
                BlindedTable::decode(&bad).err()
            );
            assert!(BlindedTable::decode(&bad).is_err());
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
}
