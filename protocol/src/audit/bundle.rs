//! The audit bundle (SPEC Section 15.2): what the operator gives one
//! organisation for one table version, how the operator makes it
//! ([`AuditBundle::prove`]) and how the organisation checks it
//! ([`AuditBundle::verify`]).

use std::collections::HashMap;

use curve25519_dalek::RistrettoPoint;
use rand_core::CryptoRng;
use sha2::{Digest as _, Sha256};

use super::dleq::{PROOF_LEN, Pair, Proof, Suite};
use super::{AuditError, Claim, SlotFailure};
use crate::encoding::{ELEMENT_LEN, array, decode_element};
use crate::error::Error;
use crate::hash_to_group::hash_item;
use crate::item::{Item, ItemType};
use crate::key::ServerKey;
use crate::manifest::SignedManifest;
use crate::merkle::MerkleTree;
use crate::table::{
    BlindedTable, EntryIndex, Fingerprinter, Placement, SLOT_LEN, TableId, dedup, filler_half,
    filler_half_at, filler_key,
};

/// Magic bytes of an encoded [`AuditBundle`].
pub const BUNDLE_MAGIC: [u8; 4] = *b"BMAU";
/// Magic bytes of an encoded [`AuditState`].
pub const STATE_MAGIC: [u8; 4] = *b"BMAS";
const FORMAT_VERSION: u8 = 1;
/// The list digest's label (SPEC 15.1).
const LIST_LABEL: &[u8] = b"blindmatch-v1/audit-list";

/// An organisation's list as the audit numbers it (SPEC 15.1): deduplicated,
/// keeping each item's first occurrence, in the list's order, and its
/// digest `SHA-256("blindmatch-v1/audit-list" || I2OSP(n, 4) ||
/// item_encoding(y_0) || ... || item_encoding(y_{n−1}))`.
#[derive(Clone, Debug)]
pub struct AuditList {
    items: Vec<Item>,
    digest: [u8; 32],
}

impl AuditList {
    /// The list `items`, deduplicated as a build does.
    ///
    /// # Errors
    /// [`Error::TooManyEntries`] for more than 2^32 − 1 distinct items.
    pub fn new(items: impl IntoIterator<Item = Item>) -> Result<Self, Error> {
        let items = dedup(items);
        let n = u32::try_from(items.len()).map_err(|_| Error::TooManyEntries(items.len()))?;
        let mut h = Sha256::new();
        h.update(LIST_LABEL);
        h.update(n.to_be_bytes());
        let mut encoded = Vec::with_capacity(2 + crate::item::MAX_ITEM_LEN);
        for item in &items {
            encoded.clear();
            item.encode_into(&mut encoded);
            h.update(&encoded);
        }
        Ok(AuditList {
            items,
            digest: h.finalize().into(),
        })
    }

    /// The distinct items, numbered from 0.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// The list digest.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }
}

/// One entry slot of a bundle: the slot holds `α·H(y)` for item
/// `list_index` of the organisation's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntrySlot {
    /// The slot.
    pub slot: u32,
    /// The item's number in the [`AuditList`].
    pub list_index: u32,
}

/// What the operator gives an organisation for one table version (SPEC
/// 15.2). Every slot not named as an entry or a fresh filler is claimed to
/// hold its first build's filler. A *delta* bundle (`base` set) names only
/// the slots whose bytes changed since the version the organisation
/// audited; the others keep what that audit found.
#[derive(Clone, PartialEq, Eq)]
pub struct AuditBundle {
    /// The operator's signed statement of the table audited (SPEC 13.3):
    /// what the organisation co-signs.
    pub manifest: SignedManifest,
    /// For a delta bundle, the table audited before.
    pub base: Option<TableId>,
    /// The [`AuditList::digest`] of the list the bundle numbers.
    pub list_digest: [u8; 32],
    /// The table's filler key (SPEC 5.4): the organisation recomputes every
    /// filler with it.
    pub filler_key: [u8; 32],
    /// The slots holding entries of the list, ascending by slot.
    pub entries: Vec<EntrySlot>,
    /// The slots holding a fresh filler, with the version that wrote it,
    /// ascending by slot.
    pub fresh: Vec<(u32, u64)>,
    /// The batched DLEQ proof ([`Suite::AUDIT`]) that every entry slot
    /// holds `α·H(y)`, with `L = α·G` from the table's header.
    pub proof: Proof,
}

impl core::fmt::Debug for AuditBundle {
    /// Everything but the filler key, which is for one organisation's eyes
    /// (it tells which slots are empty) and never belongs in a log.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AuditBundle")
            .field("table_id", &self.manifest.manifest.table_id)
            .field("base", &self.base)
            .field("entries", &self.entries.len())
            .field("fresh", &self.fresh.len())
            .finish_non_exhaustive()
    }
}

/// What [`AuditBundle::prove`] found besides the bundle.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProveReport {
    /// Slots holding an entry that is not on the organisation's list: the
    /// organisation's audit will refuse each of them.
    pub foreign: Vec<u32>,
    /// Items of the list that are not in the table.
    pub absent: usize,
}

impl AuditBundle {
    /// The operator's side: the bundle for `list` over `table` (with its
    /// private `index` and `placement`, which records the fresh fillers).
    /// Given `base`, the table the organisation audited before (same
    /// header), a delta bundle: only the slots whose bytes differ from it.
    ///
    /// # Errors
    /// [`AuditError::Unrecorded`] for a placement written before fresh
    /// fillers were recorded; [`AuditError::Mismatch`] if `index`,
    /// `placement` or `base` do not fit `table`; an [`Error`] from the
    /// proof.
    #[allow(
        clippy::too_many_arguments,
        reason = "the operator's whole record of one version"
    )]
    pub fn prove<R: CryptoRng + ?Sized>(
        key: &ServerKey,
        manifest: &SignedManifest,
        table: &BlindedTable,
        index: &EntryIndex,
        placement: &Placement,
        list: &AuditList,
        base: Option<&BlindedTable>,
        rng: &mut R,
    ) -> Result<(AuditBundle, ProveReport), AuditError> {
        let r = zeroize::Zeroizing::new(curve25519_dalek::Scalar::random(rng));
        Self::prove_with_r(key, manifest, table, index, placement, list, base, &r)
    }

    /// [`AuditBundle::prove`] with the proof's random scalar given (the
    /// test vectors'). Never use one `r` for two proofs under one key.
    #[allow(
        clippy::too_many_arguments,
        reason = "the operator's whole record of one version"
    )]
    pub(crate) fn prove_with_r(
        key: &ServerKey,
        manifest: &SignedManifest,
        table: &BlindedTable,
        index: &EntryIndex,
        placement: &Placement,
        list: &AuditList,
        base: Option<&BlindedTable>,
        r: &curve25519_dalek::Scalar,
    ) -> Result<(AuditBundle, ProveReport), AuditError> {
        let header = table.header();
        let n = header.n_slots as usize;
        if header.public_key != *key.public_key() {
            return Err(AuditError::Mismatch("the key is not the table's"));
        }
        if manifest.manifest.table_id != *table.id() {
            return Err(AuditError::Mismatch("the manifest names another table"));
        }
        if index.n_slots() != n {
            return Err(AuditError::Mismatch(
                "the entry index has another slot count",
            ));
        }
        let fresh_all = placement.fresh_fillers().ok_or(AuditError::Unrecorded)?;
        if let Some(b) = base
            && b.header() != header
        {
            return Err(AuditError::Mismatch(
                "the base table has another header: audit in full",
            ));
        }
        let changed = |s: u32| {
            base.is_none_or(|b| {
                let at = s as usize * SLOT_LEN;
                b.slots()[at..at + SLOT_LEN] != table.slots()[at..at + SLOT_LEN]
            })
        };
        // Which slot each list item is in, found by the index's keyed
        // fingerprints at the item's positions (no scalar multiplication).
        let fingerprinter = Fingerprinter::new(key);
        let found: Vec<Option<u32>> = crate::map_slice(list.items(), |item| {
            let fp = fingerprinter.fingerprint(item);
            header
                .positions(item)
                .as_slice()
                .iter()
                .copied()
                .find(|&s| index.confirm(s, &fp).is_some())
        });
        let mut owner = vec![u32::MAX; n];
        let mut absent = 0;
        for (i, slot) in found.iter().enumerate() {
            match slot {
                Some(s) => owner[*s as usize] = u32::try_from(i).unwrap_or(u32::MAX),
                None => absent += 1,
            }
        }
        let mut entries = Vec::new();
        let mut foreign = Vec::new();
        for s in 0..header.n_slots {
            let o = owner[s as usize];
            if o != u32::MAX {
                if changed(s) {
                    entries.push(EntrySlot {
                        slot: s,
                        list_index: o,
                    });
                }
            } else if index.entry_at(s).is_some() {
                foreign.push(s);
            }
        }
        let fresh: Vec<(u32, u64)> = fresh_all
            .iter()
            .copied()
            .filter(|&(s, _)| changed(s))
            .collect();
        let pairs = entry_pairs(table, list, &entries);
        let proof = Suite::AUDIT
            .prove_with(key.scalar(), &pairs, r)
            .map_err(AuditError::Bundle)?
            .proof;
        let bundle = AuditBundle {
            manifest: *manifest,
            base: base.map(|b| *b.id()),
            list_digest: *list.digest(),
            filler_key: *filler_key(key, &header.seed),
            entries,
            fresh,
            proof,
        };
        Ok((bundle, ProveReport { foreign, absent }))
    }

    /// The organisation's side (SPEC 15.3): checks that every slot of
    /// `table` is an entry of `list` (proved), or the filler the bundle
    /// claims (recomputed). A delta bundle needs `base`, the state of the
    /// audit of the version it starts from. Returns the state of this
    /// audit, the base of the next.
    ///
    /// # Errors
    /// [`AuditError::Refused`] naming every slot that failed (and whether
    /// the proof did); [`AuditError::Mismatch`] for a bundle made for
    /// another table, list or base; [`AuditError::Bundle`] for a bundle
    /// that breaks its own rules.
    pub fn verify(
        &self,
        table: &BlindedTable,
        list: &AuditList,
        base: Option<&AuditState>,
    ) -> Result<Audited, AuditError> {
        let header = *table.header();
        let n = header.n_slots;
        let statement = &self.manifest.manifest;
        if statement.table_id != *table.id() {
            return Err(AuditError::Mismatch(
                "the bundle was made for another table",
            ));
        }
        if statement.header != header || statement.digest != *MerkleTree::new(table.slots()).root()
        {
            return Err(AuditError::Mismatch(
                "the bundle's statement does not describe this table (header or digest differ)",
            ));
        }
        if self.list_digest != *list.digest() {
            return Err(AuditError::Mismatch(
                "the bundle was made for another list (or another version of this one)",
            ));
        }
        let base = match (self.base, base) {
            (None, _) => None,
            (Some(id), Some(b)) if b.table.id() == &id => {
                if b.table.header() != &header {
                    return Err(AuditError::Mismatch(
                        "the audited base has another header: a delta bundle cannot apply",
                    ));
                }
                Some(b)
            }
            (Some(_), _) => {
                return Err(AuditError::Mismatch(
                    "a delta bundle from a table this organisation has no audit state of",
                ));
            }
        };
        self.check_structure(n, list)?;

        let mut failures = Vec::new();
        // What each slot is claimed to be: the bundle's claims first, then
        // (for a delta) what the base audit found for unchanged slots.
        let mut claim: Vec<Claim> = vec![Claim::Filler; n as usize];
        let mut inherited: Vec<(u32, Item)> = Vec::new();
        let mut listed = vec![false; n as usize];
        for e in &self.entries {
            claim[e.slot as usize] = Claim::Entry(e.list_index);
            listed[e.slot as usize] = true;
        }
        for &(s, v) in &self.fresh {
            claim[s as usize] = Claim::Fresh(v);
            listed[s as usize] = true;
        }
        // A delta checks only what changed: slots whose bytes equal the
        // base's keep the base audit's finding.
        let mut to_check: Vec<u32> = Vec::new();
        if let Some(b) = base {
            let on_list: HashMap<&Item, u32> = list
                .items()
                .iter()
                .enumerate()
                .map(|(i, item)| (item, u32::try_from(i).unwrap_or(u32::MAX)))
                .collect();
            let mut base_claims = b.claims();
            for s in 0..n {
                let at = s as usize * SLOT_LEN;
                let same = b.table.slots()[at..at + SLOT_LEN] == table.slots()[at..at + SLOT_LEN];
                if !same || listed[s as usize] {
                    to_check.push(s);
                    continue;
                }
                match base_claims.take(s) {
                    StateClaim::Entry(item) => {
                        if on_list.contains_key(&item) {
                            claim[s as usize] = Claim::Kept;
                            inherited.push((s, item));
                        } else {
                            failures.push(SlotFailure::NoLongerListed { slot: s });
                            claim[s as usize] = Claim::Kept;
                        }
                    }
                    StateClaim::Fresh(v) => claim[s as usize] = Claim::KeptFresh(v),
                    StateClaim::Filler => claim[s as usize] = Claim::KeptFiller,
                }
            }
        } else {
            to_check = (0..n).collect();
        }

        // Entries: at one of the item's positions, and proved together.
        for e in &self.entries {
            let item = &list.items()[e.list_index as usize];
            if !header.positions(item).as_slice().contains(&e.slot) {
                failures.push(SlotFailure::Misplaced {
                    slot: e.slot,
                    list_index: e.list_index,
                });
            }
        }
        let (pairs, undecodable) = decode_pairs(table, list, &self.entries);
        failures.extend(undecodable);
        let proof_ok = Suite::AUDIT
            .verify(header.public_key.point(), &pairs, &self.proof)
            .map_err(AuditError::Bundle)?;

        // Fillers: recomputed for every slot checked that is not an entry.
        let fillers: Vec<(u32, Claim)> = to_check
            .iter()
            .map(|&s| (s, claim[s as usize]))
            .filter(|(_, c)| matches!(c, Claim::Filler | Claim::Fresh(_)))
            .collect();
        let recomputed = recompute_fillers(&self.filler_key, &fillers);
        for ((s, c), bytes) in fillers.iter().zip(&recomputed) {
            let at = *s as usize * SLOT_LEN;
            if table.slots()[at..at + SLOT_LEN] != bytes[..] {
                failures.push(SlotFailure::NotAFiller {
                    slot: *s,
                    claimed: *c,
                });
            }
        }
        failures.sort_by_key(SlotFailure::slot);
        if !failures.is_empty() || !proof_ok {
            return Err(AuditError::Refused {
                slots: failures,
                proof_failed: !proof_ok,
            });
        }

        let mut entries: Vec<(u32, Item)> = self
            .entries
            .iter()
            .map(|e| (e.slot, list.items()[e.list_index as usize].clone()))
            .chain(inherited)
            .collect();
        entries.sort_unstable_by_key(|(s, _)| *s);
        let mut fresh: Vec<(u32, u64)> = claim
            .iter()
            .enumerate()
            .filter_map(|(s, c)| match c {
                Claim::Fresh(v) | Claim::KeptFresh(v) => Some((u32::try_from(s).ok()?, *v)),
                _ => None,
            })
            .collect();
        fresh.sort_unstable_by_key(|(s, _)| *s);
        Ok(Audited {
            entries_proved: self.entries.len(),
            fillers_recomputed: fillers.len(),
            slots_kept: n as usize - to_check.len(),
            state: AuditState {
                table: table.clone(),
                entries,
                fresh,
            },
        })
    }

    /// The rules a bundle keeps whatever the table: slots below `n`,
    /// ascending, each named once; list numbers within the list; fresh
    /// versions from 1.
    fn check_structure(&self, n: u32, list: &AuditList) -> Result<(), AuditError> {
        let rule = |name: &'static str, value: u64, allowed: &'static str| {
            AuditError::Bundle(Error::InvalidParameter {
                name,
                value,
                allowed,
            })
        };
        let ascending = |slots: &[u32]| {
            slots.windows(2).all(|w| w[0] < w[1]) && slots.last().is_none_or(|&s| s < n)
        };
        const SLOTS: &str = "ascending slots below the slot count, each named once";
        if !ascending(&self.entries.iter().map(|e| e.slot).collect::<Vec<_>>()) {
            return Err(rule("bundle entry slots", u64::from(n), SLOTS));
        }
        if !ascending(&self.fresh.iter().map(|f| f.0).collect::<Vec<_>>()) {
            return Err(rule("bundle fresh filler slots", u64::from(n), SLOTS));
        }
        let mut items = std::collections::HashSet::with_capacity(self.entries.len());
        for e in &self.entries {
            if e.list_index as usize >= list.items().len() {
                return Err(rule(
                    "bundle list index",
                    u64::from(e.list_index),
                    "below the list's length",
                ));
            }
            if !items.insert(e.list_index) {
                return Err(rule(
                    "bundle list index",
                    u64::from(e.list_index),
                    "each list item in one slot at most (a table holds an entry once)",
                ));
            }
        }
        if let Some(&(slot, _)) = self.fresh.iter().find(|&&(_, v)| v == 0) {
            return Err(rule(
                "bundle fresh filler version",
                u64::from(slot),
                "versions from 1 (the value is the slot)",
            ));
        }
        let entry_slots: std::collections::HashSet<u32> =
            self.entries.iter().map(|e| e.slot).collect();
        if let Some(&(slot, _)) = self.fresh.iter().find(|(s, _)| entry_slots.contains(s)) {
            return Err(rule(
                "bundle slot named both an entry and a fresh filler",
                u64::from(slot),
                "each slot named once",
            ));
        }
        Ok(())
    }

    /// `"BMAU" || 0x01 || I2OSP(len(manifest), 2) || manifest (statement ||
    /// signature) || base (32 bytes, zero for a full bundle) || list_digest || filler_key || I2OSP(n_entries, 4) ||
    /// n_entries × (I2OSP(slot, 4) || I2OSP(list_index, 4)) ||
    /// I2OSP(n_fresh, 4) || n_fresh × (I2OSP(slot, 4) || I2OSP(version, 8))
    /// || proof` (SPEC 15.2).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            5 + 4 * 32 + 8 + self.entries.len() * 8 + self.fresh.len() * 12 + PROOF_LEN,
        );
        let manifest = self.manifest.encode();
        out.extend_from_slice(&BUNDLE_MAGIC);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(
            &u16::try_from(manifest.len())
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
        out.extend_from_slice(&manifest);
        out.extend_from_slice(&self.base.map_or([0u8; 32], |b| b.0));
        out.extend_from_slice(&self.list_digest);
        out.extend_from_slice(&self.filler_key);
        out.extend_from_slice(&len32(self.entries.len()));
        for e in &self.entries {
            out.extend_from_slice(&e.slot.to_be_bytes());
            out.extend_from_slice(&e.list_index.to_be_bytes());
        }
        out.extend_from_slice(&len32(self.fresh.len()));
        for (s, v) in &self.fresh {
            out.extend_from_slice(&s.to_be_bytes());
            out.extend_from_slice(&v.to_be_bytes());
        }
        out.extend_from_slice(&self.proof.encode());
        out
    }

    /// Decodes [`AuditBundle::encode`]. The counts are checked against the
    /// bytes present before anything is allocated for them.
    ///
    /// # Errors
    /// [`Error::BadMagic`], [`Error::UnsupportedVersion`], [`Error::Length`]
    /// or [`Error::InvalidScalar`] (the proof).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, "audit bundle");
        r.magic_version(&BUNDLE_MAGIC)?;
        let len = usize::from(u16::from_be_bytes(r.array()?));
        let manifest = SignedManifest::decode_unverified(r.take(len)?)?;
        let base: [u8; 32] = r.array()?;
        let list_digest = r.array()?;
        let filler_key = r.array()?;
        let n = r.count(8)?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            entries.push(EntrySlot {
                slot: r.u32()?,
                list_index: r.u32()?,
            });
        }
        let n = r.count(12)?;
        let mut fresh = Vec::with_capacity(n);
        for _ in 0..n {
            fresh.push((r.u32()?, r.u64()?));
        }
        let proof = Proof::decode(r.take(PROOF_LEN)?)?;
        r.end()?;
        Ok(AuditBundle {
            manifest,
            base: (base != [0u8; 32]).then_some(TableId(base)),
            list_digest,
            filler_key,
            entries,
            fresh,
            proof,
        })
    }
}

/// A successful audit.
#[derive(Clone, Debug)]
pub struct Audited {
    /// Entry slots proved by this bundle.
    pub entries_proved: usize,
    /// Filler slots recomputed.
    pub fillers_recomputed: usize,
    /// Slots a delta audit kept from its base (0 for a full audit).
    pub slots_kept: usize,
    /// What this audit found: the base of the next delta audit.
    pub state: AuditState,
}

/// What an organisation keeps of an audit it passed (SPEC 15.4), to audit
/// the next version from: the table, and for every slot what it holds (an
/// item of its list, a fresh filler of some version, or else its first
/// build's filler). Organisation-private: it names the list's entries in
/// the table.
#[derive(Clone)]
pub struct AuditState {
    /// The audited table.
    pub table: BlindedTable,
    /// Entry slots and their items, ascending by slot.
    pub entries: Vec<(u32, Item)>,
    /// Fresh filler slots and their versions, ascending by slot.
    pub fresh: Vec<(u32, u64)>,
}

enum StateClaim {
    Entry(Item),
    Fresh(u64),
    Filler,
}

/// A walk over a state's slots in ascending order.
struct StateClaims<'a> {
    entries: std::iter::Peekable<std::slice::Iter<'a, (u32, Item)>>,
    fresh: std::iter::Peekable<std::slice::Iter<'a, (u32, u64)>>,
}

impl StateClaims<'_> {
    /// What the state says of `slot`; slots must be asked in ascending
    /// order.
    fn take(&mut self, slot: u32) -> StateClaim {
        while self.entries.next_if(|(s, _)| *s < slot).is_some() {}
        while self.fresh.next_if(|(s, _)| *s < slot).is_some() {}
        if let Some((_, item)) = self.entries.next_if(|(s, _)| *s == slot) {
            return StateClaim::Entry(item.clone());
        }
        if let Some((_, v)) = self.fresh.next_if(|(s, _)| *s == slot) {
            return StateClaim::Fresh(*v);
        }
        StateClaim::Filler
    }
}

impl core::fmt::Debug for AuditState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AuditState")
            .field("table_id", self.table.id())
            .field("entries", &self.entries.len())
            .field("fresh", &self.fresh.len())
            .finish()
    }
}

impl PartialEq for AuditState {
    fn eq(&self, other: &Self) -> bool {
        self.table.id() == other.table.id()
            && self.entries == other.entries
            && self.fresh == other.fresh
    }
}

impl AuditState {
    fn claims(&self) -> StateClaims<'_> {
        StateClaims {
            entries: self.entries.iter().peekable(),
            fresh: self.fresh.iter().peekable(),
        }
    }

    /// `"BMAS" || 0x01 || I2OSP(len(table), 8) || table (header || slots)
    /// || I2OSP(n_entries, 4) || n_entries × (I2OSP(slot, 4) ||
    /// item_encoding(y)) || I2OSP(n_fresh, 4) || n_fresh × (I2OSP(slot, 4)
    /// || I2OSP(version, 8))`.
    pub fn encode(&self) -> Vec<u8> {
        let table = self.table.encode();
        let mut out = Vec::with_capacity(13 + table.len() + self.entries.len() * 40);
        out.extend_from_slice(&STATE_MAGIC);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&(table.len() as u64).to_be_bytes());
        out.extend_from_slice(&table);
        out.extend_from_slice(&len32(self.entries.len()));
        for (s, item) in &self.entries {
            out.extend_from_slice(&s.to_be_bytes());
            item.encode_into(&mut out);
        }
        out.extend_from_slice(&len32(self.fresh.len()));
        for (s, v) in &self.fresh {
            out.extend_from_slice(&s.to_be_bytes());
            out.extend_from_slice(&v.to_be_bytes());
        }
        out
    }

    /// Decodes [`AuditState::encode`] (the table's id is recomputed).
    ///
    /// # Errors
    /// A decoding error naming what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, "audit state");
        r.magic_version(&STATE_MAGIC)?;
        let len = usize::try_from(r.u64()?).map_err(|_| r.short())?;
        let table = BlindedTable::decode(r.take(len)?)?;
        let n_slots = table.header().n_slots;
        let n = r.count(7)?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let slot = r.u32()?;
            let code = r.take(2)?;
            let item_type = ItemType::from_code(code[0])?;
            let item = Item::new(item_type, r.take(usize::from(code[1]))?)?;
            entries.push((slot, item));
        }
        let n = r.count(12)?;
        let mut fresh = Vec::with_capacity(n);
        for _ in 0..n {
            fresh.push((r.u32()?, r.u64()?));
        }
        r.end()?;
        let ascending = |slots: Vec<u32>| {
            slots.windows(2).all(|w| w[0] < w[1]) && slots.last().is_none_or(|&s| s < n_slots)
        };
        if !ascending(entries.iter().map(|e| e.0).collect())
            || !ascending(fresh.iter().map(|f| f.0).collect())
        {
            return Err(Error::InvalidParameter {
                name: "audit state slots",
                value: 0,
                allowed: "ascending slots below the slot count",
            });
        }
        Ok(AuditState {
            table,
            entries,
            fresh,
        })
    }
}

fn len32(n: usize) -> [u8; 4] {
    u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes()
}

/// The operator's pairs `(H(y), T[slot])`: the slots were found by the
/// index, and the prover reads them only as bytes.
pub(crate) fn entry_pairs(
    table: &BlindedTable,
    list: &AuditList,
    entries: &[EntrySlot],
) -> Vec<Pair> {
    crate::map_slice(entries, |e| {
        Pair::for_prover(
            hash_item(&list.items()[e.list_index as usize]),
            slot_bytes(table, e.slot),
        )
    })
}

/// The organisation's pairs, and a failure for each entry slot that does
/// not hold a valid element (its pair is left out: the audit fails anyway).
fn decode_pairs(
    table: &BlindedTable,
    list: &AuditList,
    entries: &[EntrySlot],
) -> (Vec<Pair>, Vec<SlotFailure>) {
    let decoded = crate::map_slice(entries, |e| {
        let bytes = slot_bytes(table, e.slot);
        decode_element(&bytes, "table slot")
            .map(|d| Pair::new(hash_item(&list.items()[e.list_index as usize]), d, bytes))
            .map_err(|_| SlotFailure::NotAnElement { slot: e.slot })
    });
    let mut pairs = Vec::with_capacity(decoded.len());
    let mut failures = Vec::new();
    for d in decoded {
        match d {
            Ok(p) => pairs.push(p),
            Err(f) => failures.push(f),
        }
    }
    (pairs, failures)
}

fn slot_bytes(table: &BlindedTable, slot: u32) -> [u8; ELEMENT_LEN] {
    let at = slot as usize * SLOT_LEN;
    let mut out = [0u8; ELEMENT_LEN];
    out.copy_from_slice(&table.slots()[at..at + SLOT_LEN]);
    out
}

/// The bytes each claimed filler must have: `Encode(2 · half)`, computed
/// in chunks with one inversion each (as the builder does).
fn recompute_fillers(filler_key: &[u8; 32], fillers: &[(u32, Claim)]) -> Vec<[u8; 32]> {
    const CHUNK: usize = 1024;
    let chunks: Vec<&[(u32, Claim)]> = fillers.chunks(CHUNK).collect();
    crate::map_slice(&chunks, |chunk| {
        let halves: Vec<RistrettoPoint> = chunk
            .iter()
            .map(|&(s, c)| match c {
                Claim::Fresh(v) => filler_half_at(filler_key, s, v),
                _ => filler_half(filler_key, s),
            })
            .collect();
        RistrettoPoint::double_and_compress_batch(&halves)
            .into_iter()
            .map(|p| p.to_bytes())
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

/// A cursor over an encoding that names what it decodes in its errors.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader { bytes, at: 0, what }
    }

    fn short(&self) -> Error {
        Error::Length {
            what: self.what,
            expected: self.at + 1,
            got: self.bytes.len(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.at.checked_add(n).ok_or_else(|| self.short())?;
        let out = self.bytes.get(self.at..end).ok_or(Error::Length {
            what: self.what,
            expected: end,
            got: self.bytes.len(),
        })?;
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        array(self.take(N)?, self.what)
    }

    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn magic_version(&mut self, magic: &[u8; 4]) -> Result<(), Error> {
        let head = self.take(5)?;
        crate::encoding::check_magic_version(head, magic, FORMAT_VERSION, self.what)
    }

    /// A count of records at least `min_len` bytes each, refused if the
    /// bytes left cannot hold them.
    fn count(&mut self, min_len: usize) -> Result<usize, Error> {
        let n = self.u32()? as usize;
        let left = self.bytes.len() - self.at;
        if n.saturating_mul(min_len) > left {
            return Err(Error::Length {
                what: self.what,
                expected: self.at.saturating_add(n.saturating_mul(min_len)),
                got: self.bytes.len(),
            });
        }
        Ok(n)
    }

    fn end(&self) -> Result<(), Error> {
        if self.at == self.bytes.len() {
            Ok(())
        } else {
            Err(Error::Length {
                what: self.what,
                expected: self.at,
                got: self.bytes.len(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditError, Claim, SlotFailure};
    use crate::table::{Base, TableBuilder, UpdateOptions, update};

    fn items(range: core::ops::Range<u32>) -> Vec<Item> {
        range
            .map(|i| Item::new(ItemType::Sha256, &Sha256::digest(i.to_be_bytes())).unwrap())
            .collect()
    }

    struct Fixture {
        key: ServerKey,
        built: crate::table::BuiltTable,
        manifest: SignedManifest,
    }

    fn signed(table: &BlindedTable, version: u64) -> SignedManifest {
        crate::manifest::Manifest::for_table(table, version, 1_700_000_000, None)
            .sign(&crate::manifest::OperatorSigningKey::from_seed([5; 32]))
    }

    /// A table of items 0..100; the organisation's list is items 0..150.
    fn fixture() -> (Fixture, AuditList) {
        let key = ServerKey::generate(&mut rand::rng());
        let built = TableBuilder::new([3; 32])
            .build(&key, items(0..100))
            .unwrap();
        let manifest = signed(&built.table, 1);
        (
            Fixture {
                key,
                built,
                manifest,
            },
            AuditList::new(items(0..150)).unwrap(),
        )
    }

    fn prove(fx: &Fixture, list: &AuditList) -> (AuditBundle, ProveReport) {
        AuditBundle::prove(
            &fx.key,
            &fx.manifest,
            &fx.built.table,
            &fx.built.index,
            &fx.built.placement,
            list,
            None,
            &mut rand::rng(),
        )
        .unwrap()
    }

    fn refused(e: AuditError) -> (Vec<SlotFailure>, bool) {
        match e {
            AuditError::Refused {
                slots,
                proof_failed,
            } => (slots, proof_failed),
            other => panic!("not refused: {other}"),
        }
    }

    #[test]
    fn a_table_inside_the_list_passes_and_round_trips() {
        let (fx, list) = fixture();
        let (bundle, report) = prove(&fx, &list);
        assert_eq!(
            report,
            ProveReport {
                foreign: vec![],
                absent: 50
            }
        );
        assert_eq!(bundle.entries.len(), 100);
        let decoded = AuditBundle::decode(&bundle.encode()).unwrap();
        assert_eq!(decoded, bundle);
        let audited = decoded.verify(&fx.built.table, &list, None).unwrap();
        assert_eq!(audited.entries_proved, 100);
        assert_eq!(
            audited.fillers_recomputed,
            fx.built.table.header().n_slots as usize - 100
        );
        let state = AuditState::decode(&audited.state.encode()).unwrap();
        assert_eq!(state, audited.state);
        for cut in [0, 5, 40, bundle.encode().len() - 1] {
            assert!(AuditBundle::decode(&bundle.encode()[..cut]).is_err());
        }
    }

    #[test]
    fn an_entry_not_on_the_list_is_named_whatever_the_bundle_claims() {
        let (fx, _) = fixture();
        // This organisation's list lacks item 7, which the table holds.
        let list =
            AuditList::new(items(0..150).into_iter().filter(|i| *i != items(7..8)[0])).unwrap();
        let (bundle, report) = prove(&fx, &list);
        let slot = fx.built.index.slot_of(7).unwrap();
        assert_eq!(report.foreign, vec![slot]);
        // Claimed as a filler (what an honest tool writes): named.
        let (slots, proof_failed) =
            refused(bundle.verify(&fx.built.table, &list, None).unwrap_err());
        assert_eq!(
            slots,
            [SlotFailure::NotAFiller {
                slot,
                claimed: Claim::Filler
            }]
        );
        assert!(!proof_failed);
        // Claimed as an entry of the list: the proof fails.
        let mut lying = bundle.clone();
        let other = items(120..121)[0].clone();
        let at = list.items().iter().position(|i| *i == other).unwrap();
        lying.entries.push(EntrySlot {
            slot,
            list_index: u32::try_from(at).unwrap(),
        });
        lying.entries.sort_by_key(|e| e.slot);
        let (slots, proof_failed) =
            refused(lying.verify(&fx.built.table, &list, None).unwrap_err());
        assert!(proof_failed);
        assert!(slots.iter().all(|f| f.slot() == slot), "{slots:?}");
    }

    #[test]
    fn a_filler_claimed_for_an_entry_or_a_tampered_proof_is_refused() {
        let (fx, list) = fixture();
        let (bundle, _) = prove(&fx, &list);
        let mut dropped = bundle.clone();
        let gone = dropped.entries.remove(10);
        let (slots, proof_failed) =
            refused(dropped.verify(&fx.built.table, &list, None).unwrap_err());
        assert_eq!(
            slots,
            [SlotFailure::NotAFiller {
                slot: gone.slot,
                claimed: Claim::Filler
            }]
        );
        assert!(proof_failed, "the proof was made for the whole set");
        let mut tampered = bundle.clone();
        tampered.proof.s += curve25519_dalek::Scalar::ONE;
        let (slots, proof_failed) =
            refused(tampered.verify(&fx.built.table, &list, None).unwrap_err());
        assert!(slots.is_empty() && proof_failed);
        let mut key_flipped = bundle.clone();
        key_flipped.filler_key[0] ^= 1;
        let (slots, _) = refused(
            key_flipped
                .verify(&fx.built.table, &list, None)
                .unwrap_err(),
        );
        assert_eq!(slots.len(), fx.built.table.header().n_slots as usize - 100);
        let other = AuditList::new(items(0..151)).unwrap();
        assert!(matches!(
            bundle.verify(&fx.built.table, &other, None),
            Err(AuditError::Mismatch(_))
        ));
    }

    #[test]
    fn a_delta_audit_checks_only_what_changed_and_agrees_with_a_full_one() {
        let (fx, list) = fixture();
        let (bundle, _) = prove(&fx, &list);
        let v1 = bundle.verify(&fx.built.table, &list, None).unwrap().state;
        // Version 2: items 0..10 removed, 100..110 added, 3 decoys.
        let v2 = update(
            &fx.key,
            Base::from(&fx.built),
            items(10..110),
            &UpdateOptions {
                decoys: 3,
                ..UpdateOptions::new(2, 3)
            },
        )
        .unwrap();
        // Removed entries' slots not taken by an added one, and decoys.
        let fresh = v2.placement.fresh_fillers().unwrap();
        assert!(
            fresh
                .iter()
                .all(|&(s, v)| v == 2 && v2.index.entry_at(s).is_none())
        );
        assert!((3..=13).contains(&fresh.len()), "{}", fresh.len());
        let v2_manifest = signed(&v2.table, 2);
        let (delta, report) = AuditBundle::prove(
            &fx.key,
            &v2_manifest,
            &v2.table,
            &v2.index,
            &v2.placement,
            &list,
            Some(&fx.built.table),
            &mut rand::rng(),
        )
        .unwrap();
        assert!(report.foreign.is_empty());
        assert!(delta.entries.len() >= 10 && delta.entries.len() < 40);
        let audited = delta.verify(&v2.table, &list, Some(&v1)).unwrap();
        assert_eq!(audited.entries_proved, delta.entries.len());
        assert_eq!(
            audited.slots_kept,
            v2.table.header().n_slots as usize - v2.changed.len()
        );
        let full = prove(
            &Fixture {
                key: fx.key.clone(),
                built: crate::table::BuiltTable {
                    table: v2.table.clone(),
                    index: v2.index.clone(),
                    entries: Vec::new(),
                    placement: v2.placement.clone(),
                },
                manifest: v2_manifest,
            },
            &list,
        )
        .0
        .verify(&v2.table, &list, None)
        .unwrap();
        assert_eq!(full.state, audited.state);
        // Without the base state, or from another one, a delta cannot apply.
        assert!(matches!(
            delta.verify(&v2.table, &list, None),
            Err(AuditError::Mismatch(_))
        ));
        assert!(matches!(
            delta.verify(&v2.table, &list, Some(&audited.state)),
            Err(AuditError::Mismatch(_))
        ));
        // An organisation that took item 50 off its list refuses its slot,
        // kept from the base.
        let shorter =
            AuditList::new(items(0..150).into_iter().filter(|i| *i != items(50..51)[0])).unwrap();
        let (delta, _) = AuditBundle::prove(
            &fx.key,
            &v2_manifest,
            &v2.table,
            &v2.index,
            &v2.placement,
            &shorter,
            Some(&fx.built.table),
            &mut rand::rng(),
        )
        .unwrap();
        let (slots, proof_failed) =
            refused(delta.verify(&v2.table, &shorter, Some(&v1)).unwrap_err());
        assert_eq!(
            slots,
            [SlotFailure::NoLongerListed {
                slot: v2.index.slot_of(50).unwrap()
            }]
        );
        assert!(!proof_failed);
    }
}
