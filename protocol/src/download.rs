//! The client's download of a table (SPEC Section 13.2): chunks in order,
//! each checked against the signed manifest's Merkle digest as it arrives,
//! resumable at a chunk boundary, and the whole checked against the digest
//! and table id at the end.

use crate::error::Error;
use crate::manifest::Manifest;
use crate::table::{BlindedTable, CHUNK_LEN};

/// The most [`TableAssembler::new`] reserves ahead of the chunks: 2 GiB,
/// the slots of a table of about 5 x 10^7 entries.
const MAX_RESERVE: usize = 2 << 30;

/// Receives a table in chunks, as a resumable download does, and checks
/// each chunk against the signed manifest's Merkle digest as it arrives
/// (SPEC Section 13.2), and the whole against the digest and table id.
pub struct TableAssembler {
    manifest: Manifest,
    slots: Vec<u8>,
}

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
    pub fn new(manifest: &Manifest, mut already: Vec<u8>) -> Result<Self, Error> {
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
        // The whole table's room at once: grown by doubling as chunks
        // arrive, the buffer would end up to twice the table, and each
        // reallocation holds the old and the new one (papers/BENCHMARKS.md,
        // "Scale"). Capped, so that a signed header naming an absurd size
        // costs nothing until that many bytes really arrive.
        let rest = usize::try_from(len).unwrap_or(usize::MAX) - already.len();
        already.reserve_exact(rest.min(MAX_RESERVE));
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
        if *table.id() != self.manifest.table_id {
            return Err(Error::TableIdMismatch);
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::{Item, ItemType};
    use crate::key::ServerKey;
    use crate::table::TableBuilder;
    use sha2::{Digest, Sha256};

    fn items(n: usize) -> Vec<Item> {
        (0..n)
            .map(|i| Item::new(ItemType::Sha256, &Sha256::digest(i.to_be_bytes())).unwrap())
            .collect()
    }

    fn manifest_of(t: &BlindedTable) -> Manifest {
        Manifest::for_table(t, 1, 0, None)
    }

    #[test]
    fn assembler_holds_the_table_once() {
        let key = ServerKey::generate(&mut rand::rng());
        let built = TableBuilder::new([2; 32]).build(&key, items(4200)).unwrap();
        let m = manifest_of(&built.table);
        let tree = crate::merkle::MerkleTree::new(built.table.slots());
        let len = built.table.slots().len();
        let mut a = TableAssembler::new(&m, Vec::new()).unwrap();
        // Room for the whole table before the first chunk, and never more.
        assert_eq!(a.slots.capacity(), len);
        for (i, chunk) in (0..).zip(built.table.slots().chunks(CHUNK_LEN)) {
            a.push(a.offset(), chunk, tree.proof(i).unwrap()).unwrap();
        }
        assert_eq!(a.slots.capacity(), len);
        let table = a.finish().unwrap();
        assert_eq!(table.encode(), built.table.encode());
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
