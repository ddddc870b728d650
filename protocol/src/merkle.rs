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
    if verify_inclusion(root, index, size, &leaf_hash(chunk), path) {
        Ok(())
    } else {
        Err(Error::DigestMismatch)
    }
}

/// Whether `leaf` (a leaf hash) is leaf `index` of the `size`-leaf tree
/// whose root is `root`, given its audit path (RFC 9162 Section 2.1.3.2).
pub fn verify_inclusion(root: &Hash, index: u64, size: u64, leaf: &Hash, path: &[Hash]) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if sn == 0 {
            return false;
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
    sn == 0 && r == *root
}

/// The audit path of leaf `index` in the tree over `leaves`: `PATH(m, D[n])`
/// of RFC 9162 Section 2.1.3.1, leaf level first. Empty for an index out of
/// range.
pub fn inclusion_proof(leaves: &[Hash], index: usize) -> Vec<Hash> {
    let mut path = Vec::new();
    if index < leaves.len() {
        path_into(leaves, index, &mut path);
    }
    path
}

fn path_into(leaves: &[Hash], m: usize, out: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split(leaves.len());
    if m < k {
        path_into(&leaves[..k], m, out);
        out.push(root(&leaves[k..]));
    } else {
        path_into(&leaves[k..], m - k, out);
        out.push(root(&leaves[..k]));
    }
}

/// The consistency proof from the tree over the first `old` leaves to the
/// tree over all of `leaves`: `PROOF(m, D[n])` of RFC 9162 Section
/// 2.1.4.1. Empty when `old` is 0 or the whole tree (nothing to prove), or
/// out of range.
pub fn consistency_proof(leaves: &[Hash], old: usize) -> Vec<Hash> {
    let mut proof = Vec::new();
    if old > 0 && old < leaves.len() {
        subproof(old, leaves, true, &mut proof);
    }
    proof
}

/// `SUBPROOF(m, D[n], b)` (RFC 9162 Section 2.1.4.1).
fn subproof(m: usize, leaves: &[Hash], whole: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !whole {
            out.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &leaves[..k], whole, out);
        out.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, out);
        out.push(root(&leaves[..k]));
    }
}

/// Whether `proof` shows that the `old`-leaf tree with root `old_root` is a
/// prefix of the `new`-leaf tree with root `new_root` (RFC 9162 Section
/// 2.1.4.2). Equal sizes need an empty proof and equal roots; from the
/// empty tree there is nothing to prove.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    if old == 0 {
        return proof.is_empty();
    }
    // Step 1: if `old` is a power of two, the old root is the proof's
    // implicit first element.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    // Steps 2-4.
    let (mut fn_, mut sn) = (old - 1, new - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    // Step 5.
    for c in rest {
        if sn == 0 {
            return false;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 6.
    fr == *old_root && sr == *new_root && sn == 0
}

/// The hashes of every perfect subtree of a tree of leaves, so that the root
/// of any prefix, and any audit path or consistency proof, costs
/// O(log² n) hashes instead of O(n): what a server that answers proofs for
/// every request keeps (SPEC 16.5), so that a client choosing the sizes it
/// asks about cannot make it rehash the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tree {
    /// `levels[l][j]` is the hash of leaves `j·2^l .. (j+1)·2^l`.
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    /// The tree over `leaves` (leaf hashes).
    pub fn new(leaves: Vec<Hash>) -> Self {
        let mut levels = vec![leaves];
        loop {
            let last = levels.last().map_or(&[][..], Vec::as_slice);
            if last.len() < 2 {
                break;
            }
            let up: Vec<Hash> = last
                .chunks_exact(2)
                .map(|p| node_hash(&p[0], &p[1]))
                .collect();
            levels.push(up);
        }
        Tree { levels }
    }

    /// The number of leaves.
    pub fn size(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    /// The leaf hashes.
    pub fn leaves(&self) -> &[Hash] {
        self.levels.first().map_or(&[], Vec::as_slice)
    }

    /// `MTH(D[start..end])` for a range the RFC's recursion reaches: `start`
    /// a multiple of the largest power of two not above `end − start`, as
    /// every left subtree and every range below is.
    fn range_root(&self, start: usize, end: usize) -> Hash {
        let n = end - start;
        if n == 0 {
            return Sha256::digest([]).into();
        }
        if n.is_power_of_two() && start.is_multiple_of(n) {
            return self.levels[n.trailing_zeros() as usize][start / n];
        }
        let k = split(n);
        node_hash(
            &self.range_root(start, start + k),
            &self.range_root(start + k, end),
        )
    }

    /// The root of the first `size` leaves (`size` at most [`Tree::size`]).
    pub fn root(&self, size: usize) -> Hash {
        self.range_root(0, size.min(self.size()))
    }

    /// [`inclusion_proof`] of leaf `index` in the first `size` leaves.
    pub fn inclusion_proof(&self, index: usize, size: usize) -> Vec<Hash> {
        let size = size.min(self.size());
        let mut out = Vec::new();
        if index < size {
            self.path_into(index, 0, size, &mut out);
        }
        out
    }

    fn path_into(&self, m: usize, start: usize, end: usize, out: &mut Vec<Hash>) {
        let n = end - start;
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            self.path_into(m, start, start + k, out);
            out.push(self.range_root(start + k, end));
        } else {
            self.path_into(m - k, start + k, end, out);
            out.push(self.range_root(start, start + k));
        }
    }

    /// [`consistency_proof`] from the first `old` leaves to the first
    /// `new`.
    pub fn consistency_proof(&self, old: usize, new: usize) -> Vec<Hash> {
        let new = new.min(self.size());
        let mut out = Vec::new();
        if old > 0 && old < new {
            self.subproof(old, 0, new, true, &mut out);
        }
        out
    }

    fn subproof(&self, m: usize, start: usize, end: usize, whole: bool, out: &mut Vec<Hash>) {
        let n = end - start;
        if m == n {
            if !whole {
                out.push(self.range_root(start, end));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, start, start + k, whole, out);
            out.push(self.range_root(start + k, end));
        } else {
            self.subproof(m - k, start + k, end, false, out);
            out.push(self.range_root(start, start + k));
        }
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

    /// Every inclusion and consistency proof between every pair of sizes up
    /// to 40 verifies, and no proof verifies for a wrong size, root or
    /// truncated path.
    #[test]
    fn inclusion_and_consistency_for_every_size() {
        let all: Vec<Hash> = (0u32..40).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for n in 1..=all.len() {
            let leaves = &all[..n];
            let r = root(leaves);
            for i in 0..n {
                let p = inclusion_proof(leaves, i);
                assert!(verify_inclusion(&r, i as u64, n as u64, &leaves[i], &p));
                assert!(!verify_inclusion(
                    &r,
                    i as u64,
                    n as u64,
                    &leaf_hash(b"absent"),
                    &p
                ));
                if n > 1 {
                    let j = (i + 1) % n;
                    assert!(!verify_inclusion(&r, j as u64, n as u64, &leaves[i], &p));
                }
                if !p.is_empty() {
                    assert!(!verify_inclusion(
                        &r,
                        i as u64,
                        n as u64,
                        &leaves[i],
                        &p[1..]
                    ));
                }
            }
            for m in 0..=n {
                let old_root = root(&leaves[..m]);
                let p = consistency_proof(leaves, m);
                assert!(
                    verify_consistency(m as u64, n as u64, &old_root, &r, &p),
                    "{m} -> {n}"
                );
                if m > 0 && m < n {
                    let wrong = root(&all[1..=m]);
                    assert!(!verify_consistency(m as u64, n as u64, &wrong, &r, &p));
                    assert!(!verify_consistency(
                        m as u64, n as u64, &old_root, &old_root, &p
                    ));
                    assert!(!verify_consistency(
                        m as u64 + 1,
                        n as u64,
                        &old_root,
                        &r,
                        &p
                    ));
                    let mut short = p.clone();
                    short.pop();
                    assert!(!verify_consistency(
                        m as u64, n as u64, &old_root, &r, &short
                    ));
                }
            }
        }
    }

    /// The kept tree gives the same roots and proofs as the recursion over
    /// the leaves, for every size, index and pair of sizes up to 70.
    #[test]
    fn the_kept_tree_agrees_with_the_recursion() {
        let all: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let tree = Tree::new(all.clone());
        assert_eq!(tree.size(), 70);
        for n in 0..=all.len() {
            assert_eq!(tree.root(n), root(&all[..n]), "root {n}");
            for i in 0..n {
                assert_eq!(
                    tree.inclusion_proof(i, n),
                    inclusion_proof(&all[..n], i),
                    "path {i} of {n}"
                );
            }
            for m in 0..=n {
                assert_eq!(
                    tree.consistency_proof(m, n),
                    consistency_proof(&all[..n], m),
                    "{m} -> {n}"
                );
            }
        }
    }
}
