//! Building the next version of a table from the previous one, keeping every
//! unchanged entry in its slot (SPEC Section 13.1), so that consecutive
//! versions differ only in the slots that really changed and a client can
//! catch up with a small delta.

use blindmatch_batchmul::BatchMul;

use super::cuckoo::{self, EMPTY, Occupant};
use super::{
    BlindedTable, EntryIndex, FINGERPRINT_LEN, Fingerprinter, SLOT_LEN, Unblinded, blind, dedup,
    filler_key, filler_uniform_at, positions,
};
use crate::encoding::{array, check_magic_version};
use crate::error::Error;
use crate::hash_to_group::item_uniform_bytes;
use crate::item::Item;
use crate::key::ServerKey;
use crate::table::PROTOCOL_VERSION;

/// Magic bytes of an encoded [`Placement`].
pub const PLACEMENT_MAGIC: [u8; 4] = *b"BMPL";
/// Length of an encoded [`Placement`]'s header: magic, version, k, slot
/// count, next entry number.
pub(crate) const PLACEMENT_HEADER_LEN: usize = 4 + 1 + 1 + 4 + 4;
/// The encoding's version: 2 adds the fresh fillers' versions.
const PLACEMENT_VERSION: u8 = 2;

/// How far past its build load factor an update may fill a table before it
/// must be rebuilt larger: 4 points, still ~3 below the k = 3 threshold.
pub const UPDATE_LOAD_MARGIN: f64 = 0.04;

/// Empty slots, unchanged by the update, chosen by a keyed hash of the
/// version: at most `want` of them.
fn pick_decoys(fkey: &[u8; 32], version: u64, want: u32, now: &[u32], before: &[u32]) -> Vec<u32> {
    use sha2::{Digest, Sha256};
    let candidates = now
        .iter()
        .zip(before)
        .filter(|&(&a, &b)| a == EMPTY && b == EMPTY)
        .count();
    let want = (want as usize).min(candidates);
    let n = now.len() as u64;
    let mut picked = std::collections::BTreeSet::new();
    let mut counter = 0u32;
    while picked.len() < want && n > 0 {
        let d = Sha256::new()
            .chain_update(fkey)
            .chain_update(b"blindmatch-v1/decoys")
            .chain_update(version.to_be_bytes())
            .chain_update(counter.to_be_bytes())
            .finalize();
        counter = counter.wrapping_add(1);
        let mut word = [0u8; 8];
        word.copy_from_slice(&d[..8]);
        let s = u64::from_be_bytes(word) % n;
        if let (Ok(i), Ok(slot)) = (usize::try_from(s), u32::try_from(s))
            && now[i] == EMPTY
            && before[i] == EMPTY
        {
            picked.insert(slot);
        }
    }
    picked.into_iter().collect()
}

/// The most entries per slot [`update`] accepts for a table of `k` before a
/// rebuild is needed: the build's load factor plus [`UPDATE_LOAD_MARGIN`].
pub fn update_max_load(k: u8) -> f64 {
    super::default_load_factor(k) + UPDATE_LOAD_MARGIN
}

/// What an update needs to move entries without the list: for each slot,
/// the k positions of the entry in it. Operator-private (positions are a
/// hash of the item, so they name no item, but they are not published).
#[derive(Clone, PartialEq, Eq)]
pub struct Placement {
    pub(crate) k: u8,
    /// The entry number the next added entry gets: numbers are never reused,
    /// so a match record's entry number means one list entry forever.
    pub(crate) next_entry: u32,
    /// k positions per slot; [`EMPTY`] for an empty slot.
    pub(crate) positions: Vec<u32>,
    /// The empty slots holding a *fresh* filler (SPEC Section 5.4), with
    /// the version whose update wrote it, ascending by slot; every other
    /// empty slot holds its first build's filler. What the list audit tells
    /// an organisation (SPEC Section 15). `None` for a placement written
    /// before this was recorded (encoding version 1): unknown, and so it
    /// stays through updates until a first build.
    pub(crate) fresh: Option<Vec<(u32, u64)>>,
}

impl Placement {
    /// How many entries sit at each position j, w_0 .. w_{k−1}: threshold
    /// mode's placement weights (SPEC 14.7, 14.8). An entry whose positions
    /// repeat counts at the first j naming its slot, as Section 10 defines
    /// `position`.
    pub fn weights(&self) -> Vec<u32> {
        let k = usize::from(self.k);
        let mut w = vec![0u32; k];
        for (slot, positions) in self.positions.chunks_exact(k.max(1)).enumerate() {
            if let Some(j) = positions.iter().position(|&p| p as usize == slot) {
                w[j] = w[j].saturating_add(1);
            }
        }
        w
    }

    /// The fresh fillers, `(slot, version)` ascending by slot, if known
    /// (see the field).
    pub fn fresh_fillers(&self) -> Option<&[(u32, u64)]> {
        self.fresh.as_deref()
    }

    /// `"BMPL" || 0x02 || k || I2OSP(n_slots, 4) || I2OSP(next_entry, 4) ||
    /// per slot k × I2OSP(position, 4) || I2OSP(n_fresh, 4) || n_fresh ×
    /// (I2OSP(slot, 4) || I2OSP(version, 8))`; a placement whose fresh
    /// fillers are unknown keeps version 1's encoding (without the list).
    pub fn encode(&self) -> Vec<u8> {
        let k = usize::from(self.k).max(1);
        let n = u32::try_from(self.positions.len() / k).unwrap_or(u32::MAX);
        let fresh = self.fresh.as_deref().unwrap_or_default();
        let mut out = Vec::with_capacity(
            PLACEMENT_HEADER_LEN + self.positions.len() * 4 + 4 + fresh.len() * 12,
        );
        out.extend_from_slice(&PLACEMENT_MAGIC);
        out.push(if self.fresh.is_some() {
            PLACEMENT_VERSION
        } else {
            PROTOCOL_VERSION
        });
        out.push(self.k);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&self.next_entry.to_be_bytes());
        for p in &self.positions {
            out.extend_from_slice(&p.to_be_bytes());
        }
        if self.fresh.is_some() {
            out.extend_from_slice(&u32::try_from(fresh.len()).unwrap_or(u32::MAX).to_be_bytes());
            for (slot, version) in fresh {
                out.extend_from_slice(&slot.to_be_bytes());
                out.extend_from_slice(&version.to_be_bytes());
            }
        }
        out
    }

    /// Decodes [`Placement::encode`].
    ///
    /// # Errors
    /// [`Error::Length`], [`Error::BadMagic`], [`Error::UnsupportedVersion`],
    /// or [`Error::InvalidParameter`] for a position outside the table.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let head: [u8; PLACEMENT_HEADER_LEN] = bytes
            .get(..PLACEMENT_HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(Error::Length {
                what: "placement",
                expected: PLACEMENT_HEADER_LEN,
                got: bytes.len(),
            })?;
        let with_fresh = head[4] == PLACEMENT_VERSION;
        if !with_fresh {
            check_magic_version(&head, &PLACEMENT_MAGIC, PROTOCOL_VERSION, "placement")?;
        } else if head[..4] != PLACEMENT_MAGIC {
            return Err(Error::BadMagic("placement"));
        }
        let k = head[5];
        let n = u32::from_be_bytes(array(&head[6..10], "placement")?);
        let next_entry = u32::from_be_bytes(array(&head[10..14], "placement")?);
        let body = &bytes[PLACEMENT_HEADER_LEN..];
        let want = u64::from(n) * u64::from(k) * 4;
        let too_short = || Error::Length {
            what: "placement",
            expected: usize::try_from(want).unwrap_or(usize::MAX),
            got: body.len(),
        };
        let (body, rest) = if with_fresh {
            let at = usize::try_from(want).map_err(|_| too_short())?;
            body.split_at_checked(at).ok_or_else(too_short)?
        } else {
            (body, &[][..])
        };
        if body.len() as u64 != want {
            return Err(too_short());
        }
        let fresh = if with_fresh {
            Some(decode_fresh(rest, n)?)
        } else {
            None
        };
        let positions: Vec<u32> = body
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if let Some(&bad) = positions.iter().find(|&&p| p != EMPTY && p >= n) {
            return Err(Error::InvalidParameter {
                name: "placement position",
                value: u64::from(bad),
                allowed: "below the slot count",
            });
        }
        Ok(Placement {
            k,
            next_entry,
            positions,
            fresh,
        })
    }
}

/// The fresh fillers' list of an encoded placement: a count, then
/// ascending `(slot, version)` records of 12 bytes, slots below `n`.
fn decode_fresh(bytes: &[u8], n: u32) -> Result<Vec<(u32, u64)>, Error> {
    let count = bytes.get(..4).ok_or(Error::Length {
        what: "placement fresh fillers",
        expected: 4,
        got: bytes.len(),
    })?;
    let count = u32::from_be_bytes(array(count, "placement fresh fillers")?) as usize;
    let records = &bytes[4..];
    if records.len() as u64 != count as u64 * 12 {
        return Err(Error::Length {
            what: "placement fresh fillers",
            expected: count.saturating_mul(12),
            got: records.len(),
        });
    }
    let mut out = Vec::with_capacity(count);
    for r in records.chunks_exact(12) {
        let slot = u32::from_be_bytes(array(&r[..4], "placement fresh fillers")?);
        let version = u64::from_be_bytes(array(&r[4..], "placement fresh fillers")?);
        if slot >= n || out.last().is_some_and(|&(last, _)| last >= slot) || version == 0 {
            return Err(Error::InvalidParameter {
                name: "placement fresh filler",
                value: u64::from(slot),
                allowed: "ascending slots below the slot count, versions from 1",
            });
        }
        out.push((slot, version));
    }
    Ok(out)
}

impl core::fmt::Debug for Placement {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Placement")
            .field("k", &self.k)
            .field("next_entry", &self.next_entry)
            .finish_non_exhaustive()
    }
}

/// The next version of a table, as [`update`] returns it.
pub struct UpdatedTable {
    /// The public table: same header as the base.
    pub table: BlindedTable,
    /// The server's private index.
    pub index: EntryIndex,
    /// The placement, for the update after this one.
    pub placement: Placement,
    /// The slots whose bytes differ from the base, ascending.
    pub changed: Vec<u32>,
    /// Entries of the new list already in the base.
    pub kept: usize,
    /// Entries added.
    pub added: usize,
    /// Base entries not in the new list, removed.
    pub removed: usize,
}

/// The version an update starts from: its table, private index and
/// placement, which always travel together.
#[derive(Clone, Copy)]
pub struct Base<'a> {
    /// The public table.
    pub table: &'a BlindedTable,
    /// Its private index.
    pub index: &'a EntryIndex,
    /// Its placement.
    pub placement: &'a Placement,
}

impl<'a> From<&'a super::BuiltTable> for Base<'a> {
    fn from(b: &'a super::BuiltTable) -> Self {
        Base {
            table: &b.table,
            index: &b.index,
            placement: &b.placement,
        }
    }
}

impl<'a> From<&'a UpdatedTable> for Base<'a> {
    fn from(u: &'a UpdatedTable) -> Self {
        Base {
            table: &u.table,
            index: &u.index,
            placement: &u.placement,
        }
    }
}

/// How [`update`] builds the next version.
#[derive(Clone, Copy, Debug)]
pub struct UpdateOptions {
    /// The new version's number (fresh fillers are drawn for it).
    pub version: u64,
    /// The most entries per slot the table may hold before a rebuild is
    /// needed; [`update_max_load`] by default.
    pub max_load: f64,
    /// Empty slots that nothing else changed to give a fresh filler as
    /// well. Without α a refreshed filler cannot be told from an entry added
    /// or removed, so decoys blur which slots a real change touched
    /// (papers/SECURITY.md Section 6.1); they cost 36 bytes each in the
    /// delta. They are chosen by a keyed hash of the version
    /// (`SHA-256(filler_key || "blindmatch-v1/decoys" || I2OSP(version, 8) ||
    /// I2OSP(counter, 4))`), so clients cannot predict them; at most the
    /// number of such empty slots are refreshed.
    pub decoys: u32,
}

impl UpdateOptions {
    /// Version `version` of a table of `k`, with the default capacity and
    /// no decoys.
    pub fn new(version: u64, k: u8) -> Self {
        UpdateOptions {
            version,
            max_load: update_max_load(k),
            decoys: 0,
        }
    }
}

/// How many of `items` are entries of `base`, decided as [`update`] decides
/// which entries it keeps (by the keyed fingerprints of the index, without
/// the base's list): what a build reports of the entries it removed, such
/// as how many of them a list tombstoned.
///
/// # Errors
/// [`Error::NeedsRebuild`] if the key is not the base's.
pub fn count_in_base(key: &ServerKey, base: Base<'_>, items: &[Item]) -> Result<usize, Error> {
    let header = *base.table.header();
    if header.public_key != *key.public_key() {
        return Err(Error::NeedsRebuild("the key is not the base table's key"));
    }
    let fingerprinter = Fingerprinter::new(key);
    let held = crate::map_slice(items, |item| {
        let fp = fingerprinter.fingerprint(item);
        positions(&header.seed, header.n_slots, header.k, item)
            .as_slice()
            .iter()
            .any(|&s| base.index.confirm(s, &fp).is_some())
    });
    Ok(held.into_iter().filter(|&h| h).count())
}

/// Builds the next version of a table from its base and the complete new
/// list.
///
/// Entries of `items` already in the base stay in their slots; base entries
/// not in `items` leave their slot to a fresh filler (drawn for the new
/// version); new entries are inserted along the shortest eviction path,
/// which may move a few existing entries to another of their positions.
/// Which entries are in the base is decided by the keyed fingerprints of
/// the index, so the base's list is not needed.
///
/// # Errors
/// [`Error::NeedsRebuild`] if the key is not the base's, the list has grown
/// past `max_load`, or an insertion fails; [`Error::InvalidParameter`] if
/// the placement does not fit the base.
pub fn update(
    key: &ServerKey,
    base: Base<'_>,
    items: impl IntoIterator<Item = Item>,
    opts: &UpdateOptions,
) -> Result<UpdatedTable, Error> {
    let Base {
        table: base,
        index,
        placement,
    } = base;
    let UpdateOptions {
        version,
        max_load,
        decoys,
    } = *opts;
    let header = *base.header();
    if header.public_key != *key.public_key() {
        return Err(Error::NeedsRebuild("the key is not the base table's key"));
    }
    let (k, n) = (usize::from(header.k), header.n_slots as usize);
    if placement.k != header.k || placement.positions.len() != n * k || index.n_slots() != n {
        return Err(Error::InvalidParameter {
            name: "placement or index slot count",
            value: index.n_slots() as u64,
            allowed: "the base table's slot count",
        });
    }
    let entries = dedup(items);
    let fingerprinter = Fingerprinter::new(key);
    let looked_up = crate::map_slice(&entries, |item| {
        let pos = positions(&header.seed, header.n_slots, header.k, item);
        let fp = fingerprinter.fingerprint(item);
        let at = pos
            .as_slice()
            .iter()
            .copied()
            .find(|&s| index.confirm(s, &fp).is_some());
        (pos, fp, at)
    });

    let mut entry = index.entry.clone();
    let mut fingerprint = index.fingerprint.clone();
    let mut slot_positions = placement.positions.clone();
    let mut keep = vec![false; n];
    let mut additions = Vec::new();
    for (i, (_, _, at)) in looked_up.iter().enumerate() {
        match at {
            Some(s) => keep[*s as usize] = true,
            None => additions.push(i),
        }
    }
    let mut removed = 0;
    for s in 0..n {
        if entry[s] != EMPTY && !keep[s] {
            entry[s] = EMPTY;
            fingerprint[s] = [0u8; FINGERPRINT_LEN];
            slot_positions[s * k..s * k + k].fill(EMPTY);
            removed += 1;
        }
    }
    let kept = entries.len() - additions.len();
    if entries.len() as f64 > header.n_slots as f64 * max_load {
        return Err(Error::NeedsRebuild(
            "the list has outgrown the table's capacity",
        ));
    }
    let added_from = placement.next_entry;
    let next_entry = u32::try_from(additions.len())
        .ok()
        .and_then(|a| added_from.checked_add(a))
        .ok_or(Error::TooManyEntries(additions.len()))?;

    let mut slots = cuckoo::Slots {
        entry: &mut entry,
        fingerprint: &mut fingerprint,
        positions: &mut slot_positions,
        k,
    };
    for (number, &i) in (added_from..).zip(&additions) {
        let (pos, fp, _) = &looked_up[i];
        let mut p = [EMPTY; 8];
        p[..k].copy_from_slice(pos.as_slice());
        slots
            .insert(Occupant {
                entry: number,
                fingerprint: *fp,
                positions: p,
            })
            .ok_or(Error::NeedsRebuild("cuckoo insertion failed"))?;
    }

    // Where each base entry was, to copy its bytes when it moved: α·H(y)
    // does not depend on the slot.
    let mut old_slot = vec![EMPTY; added_from as usize];
    for (s, &e) in index.entry.iter().enumerate() {
        if let Some(o) = old_slot.get_mut(e as usize) {
            *o = u32::try_from(s).unwrap_or(EMPTY);
        }
    }
    let mut changed: Vec<u32> = (0..n)
        .filter(|&s| entry[s] != index.entry[s])
        .filter_map(|s| u32::try_from(s).ok())
        .collect();

    // New values: moved entries are copied; added entries and fresh
    // fillers are computed, halved and batch-compressed as in a full build.
    let fkey = filler_key(key, &header.seed);
    if decoys > 0 {
        changed.extend(pick_decoys(&fkey, version, decoys, &entry, &index.entry));
        changed.sort_unstable();
    }
    let mut new_slots = base.slots().to_vec();
    let mut to_compute: Vec<u32> = Vec::new();
    for &s in &changed {
        let e = entry[s as usize];
        match old_slot.get(e as usize) {
            Some(&from) if from != EMPTY => {
                let (from, to) = (from as usize * SLOT_LEN, s as usize * SLOT_LEN);
                let bytes: [u8; SLOT_LEN] = array(&base.slots()[from..from + SLOT_LEN], "slot")?;
                new_slots[to..to + SLOT_LEN].copy_from_slice(&bytes);
            }
            _ => to_compute.push(s),
        }
    }
    let unblinded: Vec<Unblinded> = crate::map_slice(&to_compute, |&s| {
        let e = entry[s as usize];
        match e
            .checked_sub(added_from)
            .and_then(|a| additions.get(a as usize))
        {
            Some(&i) => Unblinded::Entry(item_uniform_bytes(&entries[i])),
            None => Unblinded::Filler(filler_uniform_at(&fkey, s, version)),
        }
    });
    let mut computed = vec![0u8; to_compute.len() * SLOT_LEN];
    blind(&BatchMul::new(key.scalar()), &unblinded, &mut computed);
    for (&s, bytes) in to_compute.iter().zip(computed.chunks_exact(SLOT_LEN)) {
        let at = s as usize * SLOT_LEN;
        new_slots[at..at + SLOT_LEN].copy_from_slice(bytes);
    }
    // A slot whose occupant changed but whose bytes did not (an entry
    // removed and re-added elsewhere cannot do that; kept for exactness)
    // is not sent in a delta.
    let changed: Vec<u32> = changed
        .into_iter()
        .filter(|&s| {
            let at = s as usize * SLOT_LEN;
            new_slots[at..at + SLOT_LEN] != base.slots()[at..at + SLOT_LEN]
        })
        .collect();

    // The fresh fillers: the base's in slots still empty and unchanged,
    // and this version's in every changed slot left empty.
    let fresh = placement.fresh.as_ref().map(|base_fresh| {
        let mut next: Vec<(u32, u64)> = base_fresh
            .iter()
            .copied()
            .filter(|&(s, _)| entry[s as usize] == EMPTY && changed.binary_search(&s).is_err())
            .chain(
                changed
                    .iter()
                    .filter(|&&s| entry[s as usize] == EMPTY)
                    .map(|&s| (s, version)),
            )
            .collect();
        next.sort_unstable_by_key(|&(s, _)| s);
        next
    });
    Ok(UpdatedTable {
        table: BlindedTable::from_parts(header, new_slots)?,
        index: EntryIndex { entry, fingerprint },
        placement: Placement {
            k: header.k,
            next_entry,
            positions: slot_positions,
            fresh,
        },
        changed,
        kept,
        added: additions.len(),
        removed,
    })
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation, reason = "test sizes are small")]
mod tests {
    use super::*;
    use crate::hash_to_group::hash_item;
    use crate::item::ItemType;
    use crate::table::TableBuilder;
    use crate::{ClientTable, Matcher, TableDelta};
    use sha2::{Digest, Sha256};

    fn items(range: core::ops::Range<usize>) -> Vec<Item> {
        range
            .map(|i| Item::new(ItemType::Sha256, &Sha256::digest(i.to_be_bytes())).unwrap())
            .collect()
    }

    fn opts(version: u64, max_load: f64) -> UpdateOptions {
        UpdateOptions {
            version,
            max_load,
            decoys: 0,
        }
    }

    fn matches(table: &BlindedTable, matcher: &Matcher, item: &Item) -> bool {
        let client = ClientTable::new(table.clone()).unwrap();
        let v = client.create_voucher(item, b"", &mut rand::rng()).unwrap();
        matcher.open(&v).unwrap().is_some()
    }

    #[test]
    fn an_update_keeps_unchanged_entries_and_changes_only_what_it_must() {
        let key = ServerKey::generate(&mut rand::rng());
        let v1 = TableBuilder::new([4; 32])
            .build(&key, items(0..3000))
            .unwrap();
        // v2: 200 removed (0..200), 150 added (3000..3150).
        let v2 = update(
            &key,
            (&v1).into(),
            items(200..3150),
            &opts(2, update_max_load(3)),
        )
        .unwrap();
        assert_eq!((v2.kept, v2.added, v2.removed), (2800, 150, 200));
        assert_eq!(v2.table.header(), v1.table.header());
        // Of the removed, those named are counted in the base (v1), not in v2.
        let named = items(150..260); // 50 removed, 60 kept
        assert_eq!(count_in_base(&key, (&v1).into(), &named).unwrap(), 110);
        assert_eq!(count_in_base(&key, (&v2).into(), &named).unwrap(), 60);
        assert_eq!(
            count_in_base(&key, (&v2).into(), &items(5000..5010)).unwrap(),
            0
        );
        let stranger = ServerKey::generate(&mut rand::rng());
        assert!(count_in_base(&stranger, (&v1).into(), &named).is_err());
        // Exactly the slots reported differ.
        let delta = TableDelta::between(&v1.table, &v2.table).unwrap();
        assert_eq!(delta.indices, v2.changed);
        // Each added entry changes at least its own slot; each removal its
        // own; moves change two. Far below the table's size.
        assert!(v2.changed.len() >= 350, "{}", v2.changed.len());
        assert!(v2.changed.len() < 1200, "{}", v2.changed.len());

        // Every entry of the new list sits at one of its positions as α·H(y),
        // and the index and placement agree.
        let h = v2.table.header();
        let fp = Fingerprinter::new(&key);
        for item in items(200..3150) {
            let pos = h.positions(&item);
            let slot = pos
                .as_slice()
                .iter()
                .copied()
                .find(|&s| v2.index.confirm(s, &fp.fingerprint(&item)).is_some())
                .expect("entry in one of its slots");
            let expected = (key.scalar() * hash_item(&item)).compress();
            assert_eq!(v2.table.slot(slot), expected.as_bytes());
            let at = slot as usize * 3;
            assert_eq!(&v2.placement.positions[at..at + 3], pos.as_slice());
        }
        // Entry numbers are not reused.
        assert_eq!(v2.placement.next_entry, 3150);

        let matcher = Matcher::new(&key, &v2.table, v2.index.clone()).unwrap();
        assert!(matches(&v2.table, &matcher, &items(3100..3101)[0]));
        assert!(matches(&v2.table, &matcher, &items(500..501)[0]));
        assert!(
            !matches(&v2.table, &matcher, &items(10..11)[0]),
            "removed entry still matches"
        );
    }

    #[test]
    fn a_freed_slot_gets_a_fresh_filler_each_time() {
        let key = ServerKey::generate(&mut rand::rng());
        let v1 = TableBuilder::new([5; 32])
            .build(&key, items(0..100))
            .unwrap();
        let v2 = update(&key, (&v1).into(), items(1..100), &opts(2, 0.9)).unwrap();
        assert_eq!(v2.removed, 1);
        let freed = v1.index.slot_of(0).unwrap();
        assert!(v2.changed.contains(&freed));
        assert_eq!(v2.index.entry_at(freed), None);
        // A valid element, and not the item's blinded value.
        v2.table.slot_element(freed).unwrap();
        assert_ne!(v2.table.slot(freed), v1.table.slot(freed));
        // Add it back (it may land elsewhere), remove it again: the freed
        // slot never repeats an earlier value.
        let v3 = update(&key, (&v2).into(), items(0..100), &opts(3, 0.9)).unwrap();
        let v4 = update(&key, (&v3).into(), items(1..100), &opts(4, 0.9)).unwrap();
        let freed4 = v3.index.slot_of(100).unwrap();
        let seen = [
            v1.table.slot(freed4),
            v2.table.slot(freed4),
            v3.table.slot(freed4),
        ];
        assert!(!seen.contains(&v4.table.slot(freed4)));
        // The new entry got a new number (100), not the removed one's (0).
        assert_eq!(v3.index.entry_at(freed4), Some(100));
    }

    #[test]
    fn updates_that_cannot_keep_the_slots_say_so() {
        let key = ServerKey::generate(&mut rand::rng());
        let v1 = TableBuilder::new([6; 32])
            .build(&key, items(0..1000))
            .unwrap();
        let grown = update(
            &key,
            (&v1).into(),
            items(0..1100),
            &opts(2, update_max_load(3)),
        );
        assert!(matches!(grown.err(), Some(Error::NeedsRebuild(_))));
        let other = ServerKey::generate(&mut rand::rng());
        let rotated = update(&other, (&v1).into(), items(0..10), &opts(2, 0.9));
        assert!(matches!(rotated.err(), Some(Error::NeedsRebuild(_))));
        // Nothing changed: an empty delta.
        let same = update(&key, (&v1).into(), items(0..1000), &opts(2, 0.9)).unwrap();
        assert!(same.changed.is_empty());
        assert_eq!(same.table.id(), v1.table.id());
    }

    #[test]
    fn decoys_refresh_unchanged_empty_slots_and_nothing_else() {
        let key = ServerKey::generate(&mut rand::rng());
        let v1 = TableBuilder::new([8; 32])
            .build(&key, items(0..2000))
            .unwrap();
        let list = || items(5..2010);
        let plain = update(&key, (&v1).into(), list(), &opts(2, 0.9)).unwrap();
        let with = update(
            &key,
            (&v1).into(),
            list(),
            &UpdateOptions {
                decoys: 50,
                ..opts(2, 0.9)
            },
        )
        .unwrap();
        assert_eq!(with.changed.len(), plain.changed.len() + 50);
        assert_eq!(with.index, plain.index, "decoys move no entry");
        let decoys: Vec<u32> = with
            .changed
            .iter()
            .copied()
            .filter(|s| !plain.changed.contains(s))
            .collect();
        for &s in &decoys {
            assert_eq!((v1.index.entry_at(s), with.index.entry_at(s)), (None, None));
            assert_ne!(with.table.slot(s), v1.table.slot(s));
            with.table.slot_element(s).unwrap();
        }
        // The delta is exactly the changed slots, and the choice is keyed:
        // another key picks other slots.
        assert_eq!(
            TableDelta::between(&v1.table, &with.table).unwrap().indices,
            with.changed
        );
        let other = ServerKey::generate(&mut rand::rng());
        let v1b = TableBuilder::new([8; 32])
            .build(&other, items(0..2000))
            .unwrap();
        let withb = update(
            &other,
            (&v1b).into(),
            list(),
            &UpdateOptions {
                decoys: 50,
                ..opts(2, 0.9)
            },
        )
        .unwrap();
        let decoys_b: Vec<u32> = withb
            .changed
            .iter()
            .copied()
            .filter(|s| !plain.changed.contains(s))
            .collect();
        assert_ne!(decoys, decoys_b);
        // More decoys than empty slots: all of them, no hang.
        let all = update(
            &key,
            (&v1).into(),
            list(),
            &UpdateOptions {
                decoys: u32::MAX,
                ..opts(2, 0.9)
            },
        )
        .unwrap();
        let empty = (0..v1.table.header().n_slots)
            .filter(|&s| v1.index.entry_at(s).is_none() && all.index.entry_at(s).is_none())
            .count();
        assert_eq!(all.changed.len(), plain.changed.len() + empty);
    }

    #[test]
    fn placement_round_trips_and_refuses_damage() {
        let key = ServerKey::generate(&mut rand::rng());
        let v1 = TableBuilder::new([7; 32])
            .build(&key, items(0..50))
            .unwrap();
        let bytes = v1.placement.encode();
        assert_eq!(Placement::decode(&bytes).unwrap(), v1.placement);
        assert!(Placement::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut bad = bytes.clone();
        let at = bytes.len() - 4;
        bad[at..].copy_from_slice(&(v1.table.header().n_slots).to_be_bytes());
        assert!(Placement::decode(&bad).is_err());
    }
}
