//! What one list file says, record by record, turned into its current
//! state: the values it lists, the values it tombstoned, and counts of
//! everything else.
//!
//! Every format is a sequence of records, and a later record about the same
//! thing replaces an earlier one, as the APIs' clients merge their pages
//! (python-threatexchange's `fetch_value_merge`, and StopNCII's "a later
//! record for the same SignalType+Hash completely replaces" it). What "the
//! same thing" is depends on the format:
//!
//! - a value ([`Tally::value`]): StopNCII, TCAP and ThreatExchange records
//!   are about one hash each, and the last record about a value says
//!   whether it is listed or tombstoned;
//! - an entry ([`Tally::entry`]): an NCMEC entry (member and id) carries
//!   several fingerprints, and its deletion (`<deletedImage>`) names only
//!   the entry. Its last record decides; the fingerprints of a deleted
//!   entry's earlier records are what the deletion tombstones.
//!
//! A value is listed if its last record (or a current entry) lists it;
//! else tombstoned if a deletion covers it; every other occurrence is a
//! repetition. The listed values keep the order of their first occurrence
//! in the file, as the protocol's dedup does (SPEC 15.1 numbers a list
//! that way).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use blindmatch_protocol::{Item, ItemType};
use sha2::{Digest, Sha256};

use crate::error::{BAD_KEPT, BadRecord, Error, Location};
use crate::format::Format;

/// The most distinct unsupported type names a report keeps; the rest are
/// counted together (a file could name millions).
const NAMES_KEPT: usize = 32;
/// The name they are counted under.
const OTHER_NAMES: &str = "(other names)";

/// What one source's values of one type came to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TypeCounts {
    /// Values of this type read, every occurrence.
    pub read: u64,
    /// Distinct values the source lists now: they go in.
    pub listed: u64,
    /// Distinct values the source deleted (withdrawn, negative) and does
    /// not list.
    pub tombstoned: u64,
}

impl TypeCounts {
    /// The other occurrences: the same value again, or an earlier version
    /// of a record the file replaces.
    pub fn repeated(&self) -> u64 {
        self.read - self.listed - self.tombstoned
    }
}

/// What one source's values came to, by type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// The types blindmatch matches exactly.
    pub types: BTreeMap<ItemType, TypeCounts>,
    /// Values of types it cannot match exactly (PhotoDNA, TMK, ...), by the
    /// source's name for the type: counted, never put in.
    pub unsupported: BTreeMap<String, u64>,
    /// Deleted entries none of whose values is in the file (NCMEC names a
    /// deleted entry only by its id): nothing to remove from this source.
    pub deletions_without_values: u64,
}

impl Counts {
    /// Sums over types.
    pub fn total(&self) -> TypeCounts {
        self.types
            .values()
            .fold(TypeCounts::default(), |a, c| TypeCounts {
                read: a.read + c.read,
                listed: a.listed + c.listed,
                tombstoned: a.tombstoned + c.tombstoned,
            })
    }

    /// Values of unsupported types, all names together.
    pub fn unsupported_total(&self) -> u64 {
        self.unsupported.values().sum()
    }
}

/// One list file read: its current state.
#[derive(Debug, Clone)]
pub struct SourceList {
    /// The file.
    pub path: PathBuf,
    /// Its format (named, or read from it).
    pub format: Format,
    /// The values it lists, each once, in order of first occurrence.
    pub items: Vec<Item>,
    /// The values it tombstoned and does not list, each once.
    pub tombstoned: Vec<Item>,
    /// What came of its values.
    pub counts: Counts,
}

/// Whose last record decides an occurrence's fate.
#[derive(Clone, Copy)]
enum Origin {
    /// The value's own (StopNCII, TCAP, ThreatExchange, text).
    Value { deleted: bool },
    /// The entry's, by its index in [`Tally::entries`] (NCMEC).
    Entry { entry: u32, record: u32 },
}

/// An NCMEC-style entry: its last record, whether that deletes it, and
/// whether any record of it held a value.
#[derive(Clone, Copy)]
struct EntryState {
    last: u32,
    deleted: bool,
    has_values: bool,
}

/// A record of an entry, as [`Tally::entry`] returns it: give it to
/// [`Tally::entry_value`] for each of its values.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EntryRecord {
    entry: u32,
    record: u32,
}

/// Collects one file's records as its parser reads them.
pub(crate) struct Tally {
    path: PathBuf,
    rows: Vec<(Item, Origin)>,
    entry_ids: HashMap<[u8; 16], u32>,
    entries: Vec<EntryState>,
    records: u32,
    unsupported: BTreeMap<String, u64>,
    bad: Vec<BadRecord>,
    bad_total: u64,
}

impl Tally {
    pub(crate) fn new(path: PathBuf) -> Self {
        Tally {
            path,
            rows: Vec::new(),
            entry_ids: HashMap::new(),
            entries: Vec::new(),
            records: 0,
            unsupported: BTreeMap::new(),
            bad: Vec::new(),
            bad_total: 0,
        }
    }

    /// A record about one value: listed, or deleted (tombstoned).
    pub(crate) fn value(&mut self, item: Item, deleted: bool) {
        self.rows.push((item, Origin::Value { deleted }));
    }

    /// A record of the entry `member`/`id` (NCMEC), which replaces any
    /// earlier record of it; `deleted` if it is the entry's deletion.
    pub(crate) fn entry(&mut self, member: &str, id: &str, deleted: bool) -> EntryRecord {
        // The key is a 128-bit digest, not the strings: NCMEC has millions
        // of entries, and a collision would need 2^64 of them.
        let mut key = [0u8; 16];
        let digest = Sha256::new()
            .chain_update((member.len() as u64).to_be_bytes())
            .chain_update(member)
            .chain_update(id)
            .finalize();
        key.copy_from_slice(&digest[..16]);
        let record = self.records;
        self.records = self.records.saturating_add(1);
        let next = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
        let entry = *self.entry_ids.entry(key).or_insert(next);
        if entry == next {
            self.entries.push(EntryState {
                last: record,
                deleted,
                has_values: false,
            });
        } else if let Some(state) = self.entries.get_mut(entry as usize) {
            state.last = record;
            state.deleted = deleted;
        }
        EntryRecord { entry, record }
    }

    /// A value of an entry's record.
    pub(crate) fn entry_value(&mut self, record: EntryRecord, item: Item) {
        if let Some(state) = self.entries.get_mut(record.entry as usize) {
            state.has_values = true;
        }
        self.rows.push((
            item,
            Origin::Entry {
                entry: record.entry,
                record: record.record,
            },
        ));
    }

    /// A value of a type blindmatch cannot match exactly, by the source's
    /// name for it.
    pub(crate) fn unsupported(&mut self, name: &str) {
        let name = printable(name);
        let name = if self.unsupported.len() >= NAMES_KEPT && !self.unsupported.contains_key(&name)
        {
            OTHER_NAMES.to_owned()
        } else {
            name
        };
        *self.unsupported.entry(name).or_default() += 1;
    }

    /// A record that cannot be read.
    pub(crate) fn bad(&mut self, at: Location, field: Option<&str>, message: impl Into<String>) {
        self.bad_total += 1;
        if self.bad.len() < BAD_KEPT {
            self.bad.push(BadRecord {
                at,
                field: field.map(printable),
                message: message.into(),
            });
        }
    }

    /// Whether any record was seen at all.
    fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.unsupported.is_empty() && self.entries.is_empty()
    }

    /// The file's current state.
    ///
    /// # Errors
    /// [`Error::BadRecords`] if any record was bad, [`Error::Empty`] if
    /// there was none.
    pub(crate) fn finish(self, format: Format) -> Result<SourceList, Error> {
        let path = self.path.display().to_string();
        if self.bad_total > 0 {
            return Err(Error::BadRecords {
                path,
                bad: self.bad,
                total: self.bad_total,
            });
        }
        if self.is_empty() {
            return Err(Error::Empty { path });
        }
        #[derive(Default)]
        struct Fate {
            /// The last record about the value itself: deleted or not.
            last_value: Option<bool>,
            /// Some current entry lists it.
            current: bool,
            /// Some deleted entry held it.
            deleted: bool,
            /// Already given its place in the output.
            placed: bool,
        }
        let mut counts = Counts {
            unsupported: self.unsupported,
            ..Counts::default()
        };
        let mut fates: HashMap<&Item, Fate> = HashMap::with_capacity(self.rows.len());
        for (item, origin) in &self.rows {
            counts.types.entry(item.item_type()).or_default().read += 1;
            let fate = fates.entry(item).or_default();
            match *origin {
                Origin::Value { deleted } => fate.last_value = Some(deleted),
                Origin::Entry { entry, record } => {
                    if let Some(state) = self.entries.get(entry as usize) {
                        if state.deleted {
                            fate.deleted = true;
                        } else if state.last == record {
                            fate.current = true;
                        }
                    }
                }
            }
        }
        let mut items = Vec::new();
        let mut tombstoned = Vec::new();
        for (item, _) in &self.rows {
            let Some(fate) = fates.get_mut(item) else {
                continue;
            };
            if fate.placed {
                continue;
            }
            fate.placed = true;
            let c = counts.types.entry(item.item_type()).or_default();
            if fate.current || fate.last_value == Some(false) {
                c.listed += 1;
                items.push(item.clone());
            } else if fate.deleted || fate.last_value == Some(true) {
                c.tombstoned += 1;
                tombstoned.push(item.clone());
            }
        }
        counts.deletions_without_values = self
            .entries
            .iter()
            .filter(|e| e.deleted && !e.has_values)
            .count() as u64;
        Ok(SourceList {
            path: self.path,
            format,
            items,
            tombstoned,
            counts,
        })
    }
}

/// A name or field from a file, as it may be shown: at most 40
/// characters, anything but printable ASCII as `?` (a terminal must not
/// take a file's bytes as commands).
pub(crate) fn printable(name: &str) -> String {
    name.chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// A hash value of `item_type` from hex text (trimmed, either case). The
/// error says what is wrong in the words of the formats' documents ("not
/// 32 hex digits"), never the value.
pub(crate) fn hex_value(item_type: ItemType, text: &str) -> Result<Item, String> {
    let t = text.trim();
    let digits = item_type.fixed_len().map_or_else(
        || "1 to 128 hex digits".to_owned(),
        |n| format!("{} hex digits", 2 * n),
    );
    if t.is_empty() {
        return Err(format!("empty (expected {digits})"));
    }
    if let Some(offset) = t.chars().position(|c| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "not {digits}: a character that is not a hex digit at offset {offset}"
        ));
    }
    Item::parse(item_type, t).map_err(|_| format!("not {digits}: {} digits", t.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md5(n: u8) -> Item {
        Item::new(ItemType::Md5, &[n; 16]).unwrap()
    }

    #[test]
    fn a_later_record_about_a_value_replaces_an_earlier_one() {
        let mut t = Tally::new("x".into());
        t.value(md5(1), false);
        t.value(md5(2), false);
        t.value(md5(1), true); // withdrawn
        t.value(md5(3), true);
        t.value(md5(3), false); // back
        t.value(md5(2), false);
        let s = t.finish(Format::StopNcii).unwrap();
        assert_eq!(s.items, vec![md5(2), md5(3)]);
        assert_eq!(s.tombstoned, vec![md5(1)]);
        let c = s.counts.types[&ItemType::Md5];
        assert_eq!((c.read, c.listed, c.tombstoned, c.repeated()), (6, 2, 1, 3));
    }

    #[test]
    fn an_entry_deletion_tombstones_its_earlier_values() {
        let mut t = Tally::new("x".into());
        let a = t.entry("42", "image1", false);
        t.entry_value(a, md5(1));
        t.entry_value(a, md5(2));
        let b = t.entry("43", "image1", false); // another member's entry
        t.entry_value(b, md5(2));
        t.entry("42", "image1", true);
        t.entry("42", "image9", true); // not in the file
        let c = t.entry("44", "v", false);
        t.entry_value(c, md5(3));
        let c2 = t.entry("44", "v", false); // updated: another value
        t.entry_value(c2, md5(4));
        let s = t.finish(Format::Ncmec).unwrap();
        // md5(2) is still listed by member 43's entry; md5(3) was replaced.
        assert_eq!(s.items, vec![md5(2), md5(4)]);
        assert_eq!(s.tombstoned, vec![md5(1)]);
        assert_eq!(s.counts.deletions_without_values, 1);
        let c = s.counts.types[&ItemType::Md5];
        assert_eq!((c.read, c.listed, c.tombstoned, c.repeated()), (5, 2, 1, 2));
    }

    #[test]
    fn bad_records_refuse_the_file_and_nothing_at_all_is_empty() {
        let mut t = Tally::new("f.xml".into());
        t.value(md5(1), false);
        for n in 0..30 {
            t.bad(Location::Line(n), Some("f"), "wrong");
        }
        let Err(Error::BadRecords { bad, total, .. }) = t.finish(Format::Text) else {
            panic!("accepted");
        };
        assert_eq!((bad.len(), total), (BAD_KEPT, 30));
        assert!(matches!(
            Tally::new("e".into()).finish(Format::Tcap),
            Err(Error::Empty { .. })
        ));
        let mut t = Tally::new("u".into());
        t.unsupported("VideoTMK\u{1b}[31m");
        let s = t.finish(Format::StopNcii).unwrap();
        assert_eq!(s.counts.unsupported["VideoTMK?[31m"], 1);
    }

    #[test]
    fn hex_values_are_checked_without_showing_them() {
        assert!(hex_value(ItemType::Md5, " D41D8CD98F00B204E9800998ECF8427E\n").is_ok());
        let e = hex_value(ItemType::Md5, "d41d8cd98f00b204e9800998ecf8427").unwrap_err();
        assert_eq!(e, "not 32 hex digits: 31 digits");
        let e = hex_value(ItemType::Pdq, "zz").unwrap_err();
        assert!(e.starts_with("not 64 hex digits: a character"), "{e}");
        assert_eq!(
            hex_value(ItemType::Sha1, "  ").unwrap_err(),
            "empty (expected 40 hex digits)"
        );
    }
}
