//! Building a table from a list (SPEC Section 5.4): dedup, positions,
//! cuckoo placement, blinding each entry and deriving the fillers.

use blindmatch_batchmul::BatchMul;
use curve25519_dalek::ristretto::RistrettoPoint;
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::cuckoo;
use super::index::{EntryIndex, FINGERPRINT_LEN, Fingerprinter};
use super::{
    BlindedTable, DEFAULT_K, MAX_K, MIN_K, MIN_SLOTS, Placement, SLOT_LEN, TableHeader,
    default_load_factor, positions,
};
use crate::encoding::array;
use crate::error::Error;
use crate::hash_to_group::{item_uniform_bytes, uniform_bytes};
use crate::item::Item;
use crate::key::ServerKey;
use crate::map_slice;

const FILLER_KEY_SALT: &[u8] = b"blindmatch-v1/filler-key";
const FILLER_DST: &[u8] = b"blindmatch-v1/filler/ristretto255_XMD:SHA-512_R255MAP_RO_";
const RESEED_LABEL: &[u8] = b"blindmatch-v1/reseed";
/// How many seeds a build tries before giving up.
const MAX_SEEDS: u32 = 16;

/// A table, its private index and the deduplicated list, as
/// [`TableBuilder::build`] returns them.
pub struct BuiltTable {
    /// The public table.
    pub table: BlindedTable,
    /// The server's private index.
    pub index: EntryIndex,
    /// The list after collapsing duplicates; entry numbers index into it.
    pub entries: Vec<Item>,
    /// Where each entry may move to, for later updates (operator-private).
    pub placement: Placement,
}

/// Builds blinded tables.
#[derive(Clone, Debug)]
pub struct TableBuilder {
    k: u8,
    load_factor: Option<f64>,
    seed: [u8; 32],
}

impl TableBuilder {
    /// A builder with the default k and load factor and the given initial seed
    /// (pick it at random; it is public).
    pub fn new(seed: [u8; 32]) -> Self {
        TableBuilder {
            k: DEFAULT_K,
            load_factor: None,
            seed,
        }
    }

    /// Sets k. Unless a load factor is set explicitly, the builder then uses
    /// [`default_load_factor`]`(k)`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] outside 2..=8.
    pub fn k(mut self, k: u8) -> Result<Self, Error> {
        if !(MIN_K..=MAX_K).contains(&k) {
            return Err(Error::InvalidParameter {
                name: "k",
                value: u64::from(k),
                allowed: "2..=8",
            });
        }
        self.k = k;
        Ok(self)
    }

    /// Sets the load factor (entries per slot).
    #[allow(
        clippy::cast_possible_truncation,
        reason = "the error reports a rounded percentage"
    )]
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] outside (0, 1).
    pub fn load_factor(mut self, load_factor: f64) -> Result<Self, Error> {
        if !(load_factor > 0.0 && load_factor < 1.0) {
            return Err(Error::InvalidParameter {
                name: "load factor (percent)",
                value: (load_factor * 100.0).clamp(0.0, 1e9) as u64,
                allowed: "strictly between 0 and 100",
            });
        }
        self.load_factor = Some(load_factor);
        Ok(self)
    }

    /// The number of slots a list of `n` distinct entries gets.
    ///
    /// # Errors
    /// [`Error::TooManyEntries`] if that would be 2^32 slots or more.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "`want` is checked to fit in u32 first"
    )]
    pub fn slots_for(&self, n: usize) -> Result<u32, Error> {
        let load = self
            .load_factor
            .unwrap_or_else(|| default_load_factor(self.k));
        let want = (n as f64 / load).ceil().max(f64::from(MIN_SLOTS));
        if n >= u32::MAX as usize || want >= f64::from(u32::MAX) {
            return Err(Error::TooManyEntries(n));
        }
        Ok(want as u32)
    }

    /// Builds the table for `items` under `key`.
    ///
    /// Duplicates are collapsed (the first occurrence keeps its index).
    /// Placement re-seeds on failure (seed' = SHA-256("blindmatch-v1/reseed" ||
    /// seed)), so the result is a function of the key, the initial seed and
    /// the list alone. The group work runs on all cores when the `parallel`
    /// feature is on.
    ///
    /// # Errors
    /// [`Error::TooManyEntries`], or [`Error::PlacementFailed`] if sixteen
    /// seeds in a row failed (only at load factors near the k-ary cuckoo
    /// threshold).
    pub fn build(
        &self,
        key: &ServerKey,
        items: impl IntoIterator<Item = Item>,
    ) -> Result<BuiltTable, Error> {
        self.build_with_progress(key, items, &|_, _| {})
    }

    /// [`TableBuilder::build`], calling `progress(done, n_slots)` each time
    /// another `done` slots are computed (from several threads; the `done`
    /// values add up to `n_slots`).
    ///
    /// # Errors
    /// As [`TableBuilder::build`].
    pub fn build_with_progress(
        &self,
        key: &ServerKey,
        items: impl IntoIterator<Item = Item>,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<BuiltTable, Error> {
        let entries = dedup(items);
        let n_slots = self.slots_for(entries.len())?;
        let mut seed = self.seed;
        let mut attempt = 0;
        let (slot_entry, pos) = loop {
            let pos = flat_positions(&entries, &seed, n_slots, self.k);
            let walk_seed = u64::from_be_bytes(array(&seed[..8], "seed")?);
            if let Some((slots, _)) = cuckoo::place(&pos, usize::from(self.k), n_slots, walk_seed) {
                break (slots, pos);
            }
            attempt += 1;
            if attempt == MAX_SEEDS {
                return Err(Error::PlacementFailed { attempts: attempt });
            }
            seed = Sha256::new()
                .chain_update(RESEED_LABEL)
                .chain_update(seed)
                .finalize()
                .into();
        };

        let header = TableHeader {
            k: self.k,
            seed,
            n_slots,
            public_key: *key.public_key(),
        };
        let slots = blind_slots(key, &seed, &slot_entry, &entries, progress);
        let table = BlindedTable::from_parts(header, slots)?;
        let fingerprinter = Fingerprinter::new(key);
        let fingerprint = map_slice(&slot_entry, |&e| match entries.get(e as usize) {
            Some(item) => fingerprinter.fingerprint(item),
            None => [0u8; FINGERPRINT_LEN],
        });
        let k_us = usize::from(self.k);
        let mut positions = vec![cuckoo::EMPTY; slot_entry.len() * k_us];
        for (out, &e) in positions.chunks_exact_mut(k_us).zip(&slot_entry) {
            if e != cuckoo::EMPTY {
                let at = e as usize * k_us;
                out.copy_from_slice(&pos[at..at + k_us]);
            }
        }
        let next_entry =
            u32::try_from(entries.len()).map_err(|_| Error::TooManyEntries(entries.len()))?;
        Ok(BuiltTable {
            table,
            index: EntryIndex {
                entry: slot_entry,
                fingerprint,
            },
            entries,
            placement: Placement {
                k: self.k,
                next_entry,
                positions,
                fresh: Some(Vec::new()),
            },
        })
    }
}

/// The outcome of [`trial_placement`].
#[derive(Clone, Copy, Debug)]
pub struct PlacementTrial {
    /// Whether every entry found a slot with the first seed.
    pub placed: bool,
    /// Evictions per entry (when placed).
    pub evictions_per_entry: f64,
}

/// Places `n` synthetic SHA-256 entries with one seed and reports how it went,
/// without any group arithmetic: for choosing k and the load factor
/// (`examples/cuckoo-params.rs`).
///
/// # Errors
/// As [`TableBuilder::slots_for`].
pub fn trial_placement(
    n: usize,
    k: u8,
    load_factor: f64,
    seed: [u8; 32],
) -> Result<PlacementTrial, Error> {
    let builder = TableBuilder::new(seed).k(k)?.load_factor(load_factor)?;
    let n_slots = builder.slots_for(n)?;
    let range: Vec<u64> = (0..n as u64).collect();
    let entries: Vec<Item> = map_slice(&range, |i| {
        let value: [u8; 32] = Sha256::digest(i.to_be_bytes()).into();
        Item::new(crate::item::ItemType::Sha256, &value).unwrap_or_else(|_| unreachable!())
    });
    let pos = flat_positions(&entries, &seed, n_slots, k);
    let walk_seed = u64::from_be_bytes(array(&seed[..8], "seed")?);
    Ok(
        match cuckoo::place(&pos, usize::from(k), n_slots, walk_seed) {
            Some((_, ev)) => PlacementTrial {
                placed: true,
                evictions_per_entry: ev as f64 / n.max(1) as f64,
            },
            None => PlacementTrial {
                placed: false,
                evictions_per_entry: f64::NAN,
            },
        },
    )
}

/// Collapses duplicates, keeping first occurrences in order, without cloning
/// a single item (the set holds references: 8 bytes an entry, not 66).
pub(crate) fn dedup(items: impl IntoIterator<Item = Item>) -> Vec<Item> {
    let mut items: Vec<Item> = items.into_iter().collect();
    let keep: Vec<bool> = {
        let mut seen = std::collections::HashSet::with_capacity(items.len());
        items.iter().map(|i| seen.insert(i)).collect()
    };
    let mut keep = keep.into_iter();
    items.retain(|_| keep.next().unwrap_or(false));
    items.shrink_to_fit();
    items
}

/// Every entry's k positions in one flat array (`k` u32s an entry).
fn flat_positions(entries: &[Item], seed: &[u8; 32], n_slots: u32, k: u8) -> Vec<u32> {
    let k_us = usize::from(k);
    let mut flat = vec![0u32; entries.len() * k_us];
    let fill = |(out, item): (&mut [u32], &Item)| {
        out.copy_from_slice(positions(seed, n_slots, k, item).as_slice())
    };
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        flat.par_chunks_mut(k_us)
            .zip(entries.par_iter())
            .for_each(fill);
    }
    #[cfg(not(feature = "parallel"))]
    flat.chunks_mut(k_us).zip(entries.iter()).for_each(fill);
    flat
}

/// The key that makes filler slots unpredictable without α:
/// `HKDF-SHA256(salt = "blindmatch-v1/filler-key", IKM = α, info = seed)`.
pub(crate) fn filler_key(key: &ServerKey, seed: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    let hk = Hkdf::<Sha256>::new(Some(FILLER_KEY_SALT), key.scalar().as_bytes());
    if hk.expand(seed, &mut out[..]).is_err() {
        unreachable!("32 bytes is within HKDF's limit");
    }
    out
}

/// Half the element stored in empty slot `i`:
/// `hash_to_ristretto255(filler_key || I2OSP(i, 4), FILLER_DST)`; the slot
/// holds its double (the SPEC's filler, kept from when real slots were
/// computed by halving and doubling too).
pub(crate) fn filler_half(filler_key: &[u8; 32], i: u32) -> RistrettoPoint {
    RistrettoPoint::from_uniform_bytes(&filler_uniform(filler_key, i))
}

/// The 64 bytes behind [`filler_half`].
pub(crate) fn filler_uniform(filler_key: &[u8; 32], i: u32) -> [u8; 64] {
    uniform_bytes(&[filler_key, &i.to_be_bytes()], FILLER_DST)
}

/// Half the fresh filler an update to `version` puts in slot `i` when it
/// empties it: `hash_to_ristretto255(filler_key || I2OSP(i, 4) ||
/// I2OSP(version, 8), FILLER_DST)`. Fresh, so that a slot emptied again
/// never returns to a value it held before (which would tell a client that
/// kept both versions that the value in between was a real entry).
pub(crate) fn filler_half_at(filler_key: &[u8; 32], i: u32, version: u64) -> RistrettoPoint {
    RistrettoPoint::from_uniform_bytes(&filler_uniform_at(filler_key, i, version))
}

/// The 64 bytes behind [`filler_half_at`].
pub(crate) fn filler_uniform_at(filler_key: &[u8; 32], i: u32, version: u64) -> [u8; 64] {
    uniform_bytes(
        &[filler_key, &i.to_be_bytes(), &version.to_be_bytes()],
        FILLER_DST,
    )
}

/// What a slot holds before it is blinded: the 64 bytes that a real
/// entry's H(y), or a filler's half, is derived from.
pub(crate) enum Unblinded {
    /// A real entry: the slot holds α·H(y).
    Entry([u8; 64]),
    /// A filler: the slot holds twice the element derived from these bytes.
    Filler([u8; 64]),
}

/// The bytes of many slots, in order: real entries multiplied by α,
/// fillers doubled, eight at a time where blindmatch-batchmul's kernel runs
/// (and with curve25519-dalek's batched encoding elsewhere).
pub(crate) fn blind(alpha: &BatchMul, slots: &[Unblinded], out: &mut [u8]) {
    let (mut entries, mut fillers) = (Vec::new(), Vec::new());
    for s in slots {
        match s {
            Unblinded::Entry(u) => entries.push(*u),
            Unblinded::Filler(u) => fillers.push(*u),
        }
    }
    let mut entries = alpha.mul_uniform(&entries).into_iter();
    let mut fillers = blindmatch_batchmul::double_uniform(&fillers).into_iter();
    for (s, dst) in slots.iter().zip(out.chunks_exact_mut(SLOT_LEN)) {
        let bytes = match s {
            Unblinded::Entry(_) => entries.next(),
            Unblinded::Filler(_) => fillers.next(),
        };
        // Each list has exactly one result per slot of its kind.
        if let Some(b) = bytes {
            dst.copy_from_slice(&b);
        }
    }
}

/// Computes every slot's bytes.
fn blind_slots(
    key: &ServerKey,
    seed: &[u8; 32],
    slot_entry: &[u32],
    entries: &[Item],
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Vec<u8> {
    const CHUNK: usize = 1024;
    let alpha = BatchMul::new(key.scalar());
    let fkey = filler_key(key, seed);
    let total = slot_entry.len() as u64;
    // Each chunk of slots is computed straight into its place in the output.
    let fill = |(c, (out, chunk)): (usize, (&mut [u8], &[u32]))| {
        let slots: Vec<Unblinded> = chunk
            .iter()
            .enumerate()
            .map(|(i, &e)| match entries.get(e as usize) {
                Some(item) => Unblinded::Entry(item_uniform_bytes(item)),
                None => Unblinded::Filler(filler_uniform(
                    &fkey,
                    u32::try_from(c * CHUNK + i).unwrap_or(u32::MAX),
                )),
            })
            .collect();
        blind(&alpha, &slots, out);
        progress(chunk.len() as u64, total);
    };
    let mut slots = vec![0u8; slot_entry.len() * SLOT_LEN];
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        slots
            .par_chunks_mut(CHUNK * SLOT_LEN)
            .zip(slot_entry.par_chunks(CHUNK))
            .enumerate()
            .for_each(fill);
    }
    #[cfg(not(feature = "parallel"))]
    slots
        .chunks_mut(CHUNK * SLOT_LEN)
        .zip(slot_entry.chunks(CHUNK))
        .enumerate()
        .for_each(fill);
    slots
}
