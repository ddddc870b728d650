//! Deltas: the slots that changed between two versions of a table, so a
//! client holding the old one catches up without downloading the whole new
//! one (SPEC Section 13.4).
//!
//! A delta carries no signature of its own: it is checked by what it
//! produces. The table it yields must hash to the digest and the table id of
//! the new version's signed manifest, so a delta that was tampered with,
//! truncated, or made for another base is refused as a whole.

use crate::error::Error;
use crate::manifest::Manifest;
use crate::merkle;
use crate::table::{BlindedTable, SLOT_LEN, TableId};

/// The changed slots of a table since `base`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TableDelta {
    /// The table the delta applies to.
    pub base: TableId,
    /// Changed slot numbers, strictly ascending.
    pub indices: Vec<u32>,
    /// Their new contents, 32 bytes each, in the same order.
    pub slots: Vec<u8>,
}

impl TableDelta {
    /// The slots of `new` that differ from `old` (same header).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if the headers differ.
    pub fn between(old: &BlindedTable, new: &BlindedTable) -> Result<Self, Error> {
        if old.header() != new.header() {
            return Err(Error::InvalidParameter {
                name: "delta headers",
                value: 0,
                allowed: "two versions with the same header",
            });
        }
        let mut delta = TableDelta {
            base: *old.id(),
            indices: Vec::new(),
            slots: Vec::new(),
        };
        for (i, (a, b)) in old
            .slots()
            .chunks_exact(SLOT_LEN)
            .zip(new.slots().chunks_exact(SLOT_LEN))
            .enumerate()
        {
            if a != b {
                delta.indices.push(u32::try_from(i).unwrap_or(u32::MAX));
                delta.slots.extend_from_slice(b);
            }
        }
        Ok(delta)
    }

    /// The delta of the slots `indices` of `new`, against base `base`.
    ///
    /// # Errors
    /// [`Error::InvalidSlot`] for an index outside the table.
    pub fn of_slots(base: TableId, new: &BlindedTable, indices: &[u32]) -> Result<Self, Error> {
        let mut slots = Vec::with_capacity(indices.len() * SLOT_LEN);
        for &i in indices {
            if i >= new.header().n_slots {
                return Err(Error::InvalidSlot(i));
            }
            slots.extend_from_slice(new.slot(i));
        }
        Ok(TableDelta {
            base,
            indices: indices.to_vec(),
            slots,
        })
    }

    /// Applies the delta to `base` and checks the result against the new
    /// version's (verified) manifest.
    ///
    /// # Errors
    /// [`Error::DeltaBase`] if `base` is not the delta's base,
    /// [`Error::InvalidParameter`] if the header changes or indices are out
    /// of order or range, [`Error::Length`] if slots and indices disagree,
    /// [`Error::DigestMismatch`] or [`Error::TableIdMismatch`] if the result
    /// is not the manifest's table.
    pub fn apply(&self, base: &BlindedTable, manifest: &Manifest) -> Result<BlindedTable, Error> {
        if *base.id() != self.base {
            return Err(Error::DeltaBase {
                expected: hex_id(&self.base),
                got: hex_id(base.id()),
            });
        }
        if *base.header() != manifest.header {
            return Err(Error::InvalidParameter {
                name: "delta header",
                value: 0,
                allowed: "the base's header (a new header needs a full download)",
            });
        }
        if self.slots.len() != self.indices.len() * SLOT_LEN {
            return Err(Error::Length {
                what: "delta slots",
                expected: self.indices.len() * SLOT_LEN,
                got: self.slots.len(),
            });
        }
        let n = base.header().n_slots;
        let mut last = None;
        for &i in &self.indices {
            if i >= n || last.is_some_and(|l| i <= l) {
                return Err(Error::InvalidParameter {
                    name: "delta slot index",
                    value: u64::from(i),
                    allowed: "ascending, below the slot count",
                });
            }
            last = Some(i);
        }
        let mut slots = base.slots().to_vec();
        for (&i, new) in self.indices.iter().zip(self.slots.chunks_exact(SLOT_LEN)) {
            let at = i as usize * SLOT_LEN;
            slots[at..at + SLOT_LEN].copy_from_slice(new);
        }
        if merkle::root(&merkle::leaves(&slots)) != manifest.digest {
            return Err(Error::DigestMismatch);
        }
        let table = BlindedTable::from_parts(manifest.header, slots)?;
        if *table.id() != manifest.table_id {
            return Err(Error::TableIdMismatch);
        }
        Ok(table)
    }

    /// Bytes on the wire: 4 per index and 32 per slot.
    pub fn wire_len(&self) -> usize {
        self.indices.len() * 4 + self.slots.len()
    }
}

fn hex_id(id: &TableId) -> String {
    id.0.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::{Item, ItemType};
    use crate::table::{TableBuilder, UpdateOptions, update};
    use crate::{ServerKey, TableId};

    fn items(range: core::ops::Range<u32>) -> Vec<Item> {
        range
            .map(|i| {
                Item::new(ItemType::Sha256, &[&i.to_be_bytes()[..], &[0; 28]].concat()).unwrap()
            })
            .collect()
    }

    fn manifest(t: &BlindedTable, version: u64) -> Manifest {
        Manifest::for_table(t, version, 0, None)
    }

    #[test]
    fn a_delta_applied_is_the_new_table_and_a_tampered_one_is_refused() {
        let key = ServerKey::generate(&mut rand::rng());
        let v1 = TableBuilder::new([8; 32])
            .build(&key, items(0..5000))
            .unwrap();
        let v2 = update(
            &key,
            (&v1).into(),
            items(10..5100),
            &UpdateOptions {
                version: 2,
                max_load: 0.9,
                decoys: 0,
            },
        )
        .unwrap();
        let m2 = manifest(&v2.table, 2);
        let delta = TableDelta::of_slots(*v1.table.id(), &v2.table, &v2.changed).unwrap();
        assert_eq!(delta, TableDelta::between(&v1.table, &v2.table).unwrap());
        let applied = delta.apply(&v1.table, &m2).unwrap();
        assert_eq!(applied.encode(), v2.table.encode());
        assert!(
            delta.wire_len() < v2.table.slots().len() / 10,
            "{} changed",
            delta.indices.len()
        );

        let mut bad = delta.clone();
        bad.slots[7] ^= 1;
        assert_eq!(bad.apply(&v1.table, &m2).err(), Some(Error::DigestMismatch));
        let mut bad = delta.clone();
        bad.indices.pop();
        assert!(matches!(
            bad.apply(&v1.table, &m2),
            Err(Error::Length { .. })
        ));
        let mut bad = delta.clone();
        bad.indices.swap(0, 1);
        assert!(matches!(
            bad.apply(&v1.table, &m2),
            Err(Error::InvalidParameter { .. })
        ));
        let mut bad = delta.clone();
        bad.base = TableId([0; 32]);
        assert!(matches!(
            bad.apply(&v1.table, &m2),
            Err(Error::DeltaBase { .. })
        ));
        // Dropping a changed slot (and its bytes) leaves the old value.
        let mut bad = delta.clone();
        bad.indices.remove(0);
        bad.slots.drain(..32);
        assert_eq!(bad.apply(&v1.table, &m2).err(), Some(Error::DigestMismatch));
        // Applied to the wrong base (v2 itself).
        assert!(delta.apply(&v2.table, &m2).is_err());

        // A client holding a validated v1 validates only the changed slots.
        let c1 = crate::ClientTable::new(v1.table.clone()).unwrap();
        let c2 = c1.updated(&delta, &m2).unwrap();
        assert_eq!(c2.table().encode(), v2.table.encode());
        // A signed version whose changed slot is not a valid element (what
        // a malicious operator could sign) is refused, naming the slot.
        let mut bad_slots = v2.table.slots().to_vec();
        let i = delta.indices[0];
        bad_slots[i as usize * 32..i as usize * 32 + 32].copy_from_slice(&[0xff; 32]);
        let bad_table = BlindedTable::from_parts(*v2.table.header(), bad_slots).unwrap();
        let bad_delta = TableDelta::of_slots(*v1.table.id(), &bad_table, &delta.indices).unwrap();
        assert_eq!(
            c1.updated(&bad_delta, &manifest(&bad_table, 2)).err(),
            Some(Error::InvalidSlot(i))
        );
    }
}
