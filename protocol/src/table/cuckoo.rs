//! Cuckoo placement: give every entry one of its k candidate slots.
//!
//! Hand-written because no maintained crate does what the protocol needs: the
//! candidate positions are fixed by the protocol (a keyed hash the client
//! recomputes, SPEC.md "Cuckoo positions"), there is no stash (every entry
//! must sit in one of its own k slots or the client could not find it), and a
//! failure must be reported so the caller re-seeds, not papered over.
//! Crates such as `cuckoofilter` store fingerprints under their own hashing.
//!
//! The algorithm is the random-walk insertion of Fotakis, Pagh, Sanders and
//! Spirakis ("Space efficient hash tables with worst case constant access
//! time", 2005) for k >= 3, which for k = 2 is Pagh and Rodler's cuckoo
//! hashing. It is not part of the wire protocol: any placement that puts each
//! entry in one of its k positions is valid.

/// Marks an empty slot.
pub(crate) const EMPTY: u32 = u32::MAX;

/// Evictions one insertion may cause before the build gives up on this seed.
/// Random-walk insertion needs O(1) expected evictions below the load
/// threshold and O(log n) with high probability; 2,000 keeps a failure at the
/// default load factor out of reach for tables of up to 10^8 entries while
/// bounding the work spent on a hopeless seed.
const MAX_EVICTIONS: u32 = 2_000;

/// Places entries `0..positions.len()` into `n_slots` slots.
///
/// `positions[k*e .. k*e + k]` are entry e's candidate slots (a flat array:
/// 4k bytes an entry, not a vector each). Returns, per slot, the
/// entry in it or [`EMPTY`], and the total number of evictions; `None` if
/// some insertion exceeded the eviction budget (the caller re-seeds).
pub(crate) fn place(
    positions: &[u32],
    k: usize,
    n_slots: u32,
    walk_seed: u64,
) -> Option<(Vec<u32>, u64)> {
    let mut slots = vec![EMPTY; n_slots as usize];
    let mut rng = SplitMix64(walk_seed);
    let mut total_evictions = 0u64;
    for entry in 0..positions.len() / k {
        let mut current = u32::try_from(entry).ok()?;
        let mut came_from = EMPTY;
        let mut evictions = 0;
        'insert: loop {
            let at = current as usize * k;
            let candidates = &positions[at..at + k];
            for &p in candidates {
                if slots[p as usize] == EMPTY {
                    slots[p as usize] = current;
                    total_evictions += u64::from(evictions);
                    break 'insert;
                }
            }
            if evictions == MAX_EVICTIONS {
                return None;
            }
            evictions += 1;
            // Evict from a random candidate, not the slot we were just pushed
            // out of (that would undo the last step).
            let k = candidates.len() as u64;
            let mut pick = candidates[usize::try_from(rng.next() % k).unwrap_or(0)];
            if pick == came_from && k > 1 {
                let i = candidates.iter().position(|&p| p == pick).unwrap_or(0);
                pick = candidates[(i + 1) % candidates.len()];
            }
            current = core::mem::replace(&mut slots[pick as usize], current);
            came_from = pick;
        }
    }
    Some((slots, total_evictions))
}

/// One slot's occupant, as an update moves it: its entry number, keyed
/// fingerprint and k positions.
#[derive(Clone, Copy)]
pub(crate) struct Occupant {
    pub(crate) entry: u32,
    pub(crate) fingerprint: [u8; 16],
    pub(crate) positions: [u32; 8],
}

/// The slot-indexed state an update works on: per slot its entry (or
/// [`EMPTY`]), fingerprint, and the entry's k positions.
pub(crate) struct Slots<'a> {
    pub(crate) entry: &'a mut [u32],
    pub(crate) fingerprint: &'a mut [[u8; 16]],
    pub(crate) positions: &'a mut [u32],
    pub(crate) k: usize,
}

impl Slots<'_> {
    fn take(&mut self, slot: usize, incoming: Occupant) -> Occupant {
        let k = self.k;
        let mut out = Occupant {
            entry: self.entry[slot],
            fingerprint: self.fingerprint[slot],
            positions: [EMPTY; 8],
        };
        out.positions[..k].copy_from_slice(&self.positions[slot * k..slot * k + k]);
        self.entry[slot] = incoming.entry;
        self.fingerprint[slot] = incoming.fingerprint;
        self.positions[slot * k..slot * k + k].copy_from_slice(&incoming.positions[..k]);
        out
    }

    /// Inserts one more entry into a placed table along the *shortest*
    /// eviction path: a breadth-first search from its k positions through
    /// the occupants' other positions to the nearest empty slot. A full
    /// build can use the cheaper random walk; an update wants to move as few
    /// entries as possible, because every slot it changes is sent in the
    /// next delta and shows clients that something changed there (at load
    /// 0.85 the walk changed ~8 slots per insertion, this ~2.)
    ///
    /// Returns the number of entries moved, or `None` if no empty slot is
    /// reachable within [`MAX_SEARCH`] slots (nothing is changed then).
    pub(crate) fn insert(&mut self, new: Occupant) -> Option<u32> {
        let k = self.k;
        // (slot, index of the node we came from); roots have no parent.
        let mut nodes: Vec<(u32, Option<usize>)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for &p in &new.positions[..k] {
            if seen.insert(p) {
                nodes.push((p, None));
            }
        }
        let mut next = 0;
        let found = loop {
            let &(slot, _) = nodes.get(next)?;
            if self.entry[slot as usize] == EMPTY {
                break next;
            }
            if nodes.len() > MAX_SEARCH {
                return None;
            }
            let at = slot as usize * k;
            for i in 0..k {
                let p = self.positions[at + i];
                if p != EMPTY && seen.insert(p) {
                    nodes.push((p, Some(next)));
                }
            }
            next += 1;
        };
        // Walk back from the empty slot: each occupant moves one step down
        // the path, and the new entry takes the root.
        let mut moved = 0;
        let mut at = found;
        while let Some(parent) = nodes[at].1 {
            let from = nodes[parent].0 as usize;
            let to = nodes[at].0 as usize;
            let occupant = self.take(from, vacant());
            self.take(to, occupant);
            moved += 1;
            at = parent;
        }
        self.take(nodes[at].0 as usize, new);
        Some(moved)
    }
}

/// Slots an update's search may visit for one insertion before it gives up
/// (and the operator rebuilds): far beyond what a table below its load
/// threshold needs.
const MAX_SEARCH: usize = 1 << 20;

fn vacant() -> Occupant {
    Occupant {
        entry: EMPTY,
        fingerprint: [0; 16],
        positions: [EMPTY; 8],
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, seedable generator for the
/// eviction walk, which needs to be cheap and reproducible, not secret.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation, reason = "test sizes are small")]
mod tests {
    use super::*;

    fn random_positions(n: usize, k: usize, n_slots: u32, seed: u64) -> Vec<u32> {
        let mut rng = SplitMix64(seed);
        (0..n * k)
            .map(|_| (rng.next() % u64::from(n_slots)) as u32)
            .collect()
    }

    #[test]
    fn every_entry_lands_in_one_of_its_own_slots_exactly_once() {
        let n_slots = 10_000;
        let pos = random_positions(8_500, 3, n_slots, 1);
        let (slots, _) = place(&pos, 3, n_slots, 7).expect("placement at load 0.85, k = 3");
        let mut seen = vec![false; pos.len() / 3];
        for (s, &e) in slots.iter().enumerate() {
            if e != EMPTY {
                let e3 = e as usize * 3;
                assert!(pos[e3..e3 + 3].contains(&(s as u32)));
                assert!(!seen[e as usize], "entry {e} placed twice");
                seen[e as usize] = true;
            }
        }
        assert!(seen.iter().all(|&x| x), "an entry was dropped");
    }

    #[test]
    fn impossible_placement_is_reported() {
        // Three entries that can only go into two slots.
        let pos = [0u32, 1, 0, 1, 1, 0];
        assert!(place(&pos, 2, 4, 1).is_none());
    }
}
