//! The server's private entry index (which slot holds which entry) and
//! entry fingerprints: what the server keeps beside the public table to name
//! the entry a voucher opened to (SPEC Sections 5.4 and 7).

use hkdf::Hkdf;
use sha2::Sha256;

use super::{PROTOCOL_VERSION, cuckoo};
use crate::encoding::{array, check_magic_version};
use crate::error::Error;
use crate::item::Item;
use crate::key::ServerKey;

/// Magic bytes that open an encoded [`EntryIndex`].
pub const INDEX_MAGIC: [u8; 4] = *b"BMIX";
const FINGERPRINT_SALT: &[u8] = b"blindmatch-v1/entry-fingerprint";
/// Length of an entry fingerprint.
pub(crate) const FINGERPRINT_LEN: usize = 16;
/// Length of one slot record in an encoded index: entry (4) and fingerprint (16).
pub(super) const INDEX_RECORD_LEN: usize = 4 + FINGERPRINT_LEN;

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
    pub(super) entry: Vec<u32>,
    pub(super) fingerprint: Vec<[u8; FINGERPRINT_LEN]>,
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
