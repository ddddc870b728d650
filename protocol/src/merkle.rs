//! The table digest: a Merkle tree over the slot array's chunks, so that a
//! download can be checked chunk by chunk, resumed, and checked again as a
//! whole after a delta is applied (SPEC Section 13.2).
//!
//! The tree is the Merkle Tree Hash of RFC 9162 Section 2.1.1 (Certificate
//! Transparency 2.0) with SHA-256: leaf hash `SHA-256(0x00 || chunk)`, node
//! hash `SHA-256(0x01 || left || right)`, and an unbalanced split at the
//! largest power of two below the number of leaves. Inclusion proofs are its
//! audit paths (Section 2.1.3), verified with the algorithm of Section
//! 2.1.3.2.
//!
//! Hand-written, about a hundred lines. `rs_merkle` is on `sha2` 0.10 (a
//! second SHA-2 in the tree). `ct-merkle` 0.3 is on our `digest` 0.11 and
//! implements RFC 6962, but its memory-backed tree keeps every leaf value,
//! here 64 KiB chunks, so the server would hold a second copy of the table
//! (37.6 MB at 10^6 entries), and it describes itself as unaudited. What is
//! used here is the two algorithms of RFC 9162 Section 2.1, checked by the
//! tests below for every tree size up to nine leaves and, independently, by
//! `papers/interop/blindmatch_v1.py` against the vectors.

use sha2::{Digest, Sha256};

use crate::error::Error;
// A slot is one encoded element (SPEC Section 5.2).
use crate::encoding::ELEMENT_LEN as SLOT_LEN;

/// Slots per Merkle leaf (and per download chunk): 64 KiB of slots.
pub const CHUNK_SLOTS: u32 = 2048;
/// A SHA-256 output.
pub type Hash = [u8; 32];

/// RFC 9162 Section 2.1.1: the hash of a leaf.
pub fn leaf_hash(chunk: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0u8])
        .chain_update(chunk)
        .finalize()
        .into()
}

fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([1u8])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The largest power of two strictly below `n` (n >= 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// The number of leaves of a slot array of `slots_len` bytes
/// (`ceil(n_slots / CHUNK_SLOTS)`).
pub fn leaf_count(slots_len: u64) -> u64 {
    slots_len.div_ceil(u64::from(CHUNK_SLOTS) * SLOT_LEN as u64)
}

/// The leaf hashes of a slot array.
pub fn leaves(slots: &[u8]) -> Vec<Hash> {
    crate::map_slice(
        &slots
            .chunks(CHUNK_SLOTS as usize * SLOT_LEN)
            .collect::<Vec<_>>(),
        |c| leaf_hash(c),
    )
}

/// The Merkle Tree Hash of `leaves` (RFC 9162 Section 2.1.1). An empty
/// tree's hash is SHA-256 of the empty string; tables always have slots.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// A Merkle tree kept whole, to hand out inclusion proofs.
#[derive(Clone, Debug)]
pub struct MerkleTree {
    root: Hash,
    /// Audit path of every leaf, leaf level first.
    paths: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// Builds the tree over a slot array.
    pub fn new(slots: &[u8]) -> Self {
        let leaves = leaves(slots);
        let mut paths = vec![Vec::new(); leaves.len()];
        let root = if leaves.is_empty() {
            Sha256::digest([]).into()
        } else {
            Self::fill(&leaves, &mut paths)
        };
        MerkleTree { root, paths }
    }

    /// Hashes a subtree and appends, to each of its leaves' paths, the
    /// sibling met at each level: inner levels return (and push) first, so
    /// each path runs from the leaf up, as RFC 9162 Section 2.1.3.1 orders it.
    fn fill(leaves: &[Hash], paths: &mut [Vec<Hash>]) -> Hash {
        if leaves.len() == 1 {
            return leaves[0];
        }
        let k = split(leaves.len());
        let (lp, rp) = paths.split_at_mut(k);
        let left = Self::fill(&leaves[..k], lp);
        let right = Self::fill(&leaves[k..], rp);
        lp.iter_mut().for_each(|p| p.push(right));
        rp.iter_mut().for_each(|p| p.push(left));
        node_hash(&left, &right)
    }

    /// The root: the table digest.
    pub fn root(&self) -> &Hash {
        &self.root
    }

    /// The audit path of leaf `index`, if there is such a leaf.
    pub fn proof(&self, index: u64) -> Option<&[Hash]> {
        self.paths
            .get(usize::try_from(index).ok()?)
            .map(Vec::as_slice)
    }
}

/// Checks that `chunk` is leaf `index` of the `size`-leaf tree whose root is
/// `root`, given its audit path (RFC 9162 Section 2.1.3.2).
///
/// # Errors
/// [`Error::DigestMismatch`] if the path does not lead to `root`.
pub fn verify(
    root: &Hash,
    index: u64,
    size: u64,
    chunk: &[u8],
    path: &[Hash],
) -> Result<(), Error> {
    if index >= size {
        return Err(Error::DigestMismatch);
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = leaf_hash(chunk);
    for p in path {
        if sn == 0 {
            return Err(Error::DigestMismatch);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn == 0 && r == *root {
        Ok(())
    } else {
        Err(Error::DigestMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(n_chunks_and_a_bit: usize) -> Vec<u8> {
        (0..n_chunks_and_a_bit * SLOT_LEN)
            .map(|i| u8::try_from(i % 251).unwrap_or(0))
            .collect()
    }

    #[test]
    fn every_proof_verifies_for_every_tree_size_and_nothing_else_does() {
        let chunk = CHUNK_SLOTS as usize;
        for n_leaves in 1..=9usize {
            // The last leaf is short, as a table's last chunk usually is.
            let s = slots(chunk * (n_leaves - 1) + 5);
            let tree = MerkleTree::new(&s);
            assert_eq!(tree.root(), &root(&leaves(&s)));
            let size = leaf_count(s.len() as u64);
            assert_eq!(size, n_leaves as u64);
            for (i, c) in s.chunks(chunk * SLOT_LEN).enumerate() {
                let i = i as u64;
                let path = tree.proof(i).unwrap();
                verify(tree.root(), i, size, c, path).unwrap();
                let mut bad = c.to_vec();
                bad[0] ^= 1;
                assert!(verify(tree.root(), i, size, &bad, path).is_err());
                if size > 1 {
                    assert!(verify(tree.root(), (i + 1) % size, size, c, path).is_err());
                    assert!(verify(tree.root(), i, size, c, &path[1..]).is_err());
                }
            }
        }
    }

    /// RFC 9162 Section 2.1.1 by hand for three leaves: the split is 2 + 1.
    #[test]
    fn three_leaves_split_two_and_one() {
        let l: Vec<Hash> = [b"a", b"b", b"c"].iter().map(|d| leaf_hash(*d)).collect();
        assert_eq!(root(&l), node_hash(&node_hash(&l[0], &l[1]), &l[2]));
    }
}
