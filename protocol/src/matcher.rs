//! The server's side: open vouchers with one scalar multiplication each.
//!
//! ```text
//! S' = α·Q
//! for j in 0..k: (wrap_key_j, confirm_j) = KDF(S', table_id, Q, j)
//! the box whose confirm value matches (constant-time compare) is opened,
//! its payload key decrypts the payload, and the item is confirmed against
//! the server's own list at w_j.
//! ```
//!
//! The last step is what stops a forged match: a client that sets Q = γ·G can
//! make a box open for any item it likes, but it cannot make that item be on
//! the list.

use blindmatch_batchmul::{Backend, BatchMul};
use subtle::{Choice, ConditionallySelectable};
use zeroize::Zeroizing;

use crate::encoding::ELEMENT_LEN;
use crate::error::Error;
use crate::item::Item;
use crate::item::ItemType;
use crate::kdf::{KEY_LEN, SharedSecret, TAG_LEN, open_balanced};
use crate::key::ServerKey;
use crate::table::{BlindedTable, EntryIndex, Fingerprinter, TableHeader, TableId};
use crate::voucher::{PAYLOAD_LEN, Voucher, decode_payload};

/// A confirmed match.
#[derive(Clone, PartialEq, Eq)]
pub struct Match {
    /// The list entry the voucher was for.
    pub item: Item,
    /// The client's associated data.
    pub associated_data: Vec<u8>,
    /// The entry's index in the (deduplicated) list.
    pub entry: u32,
    /// Which of the k positions opened.
    pub position: u8,
}

impl core::fmt::Debug for Match {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The match record is the one place an item may be shown, and that is
        // done deliberately with `Item::to_hex`, not through Debug.
        f.debug_struct("Match")
            .field("entry", &self.entry)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

/// The server's matcher for one table.
pub struct Matcher {
    /// α, as the multiplier the server's hot loop runs on.
    alpha: BatchMul,
    fingerprinter: Fingerprinter,
    header: TableHeader,
    id: TableId,
    index: EntryIndex,
}

impl Matcher {
    /// A matcher for `table`, built under `key`, with its private `index`.
    ///
    /// # Errors
    /// [`Error::KeyMismatch`] if the table was built under another key, or
    /// [`Error::Length`] if the index is not for a table of this size.
    pub fn new(key: &ServerKey, table: &BlindedTable, index: EntryIndex) -> Result<Self, Error> {
        if table.header().public_key != *key.public_key() {
            return Err(Error::KeyMismatch);
        }
        if index.n_slots() != table.header().n_slots as usize {
            return Err(Error::Length {
                what: "entry index",
                expected: table.header().n_slots as usize,
                got: index.n_slots(),
            });
        }
        Ok(Matcher {
            alpha: BatchMul::new(key.scalar()),
            fingerprinter: Fingerprinter::new(key),
            header: *table.header(),
            id: *table.id(),
            index,
        })
    }

    /// The table's header.
    pub fn header(&self) -> &TableHeader {
        &self.header
    }

    /// The table's id.
    pub fn table_id(&self) -> &TableId {
        &self.id
    }

    /// The private index.
    pub fn index(&self) -> &EntryIndex {
        &self.index
    }

    /// The keyed fingerprint of `item` under this table's key.
    pub(crate) fn fingerprint(&self, item: &Item) -> [u8; 16] {
        self.fingerprinter.fingerprint(item)
    }

    /// Opens one voucher: `Ok(Some(m))` on a match, `Ok(None)` otherwise.
    ///
    /// # Errors
    /// [`Error::WrongK`] for a voucher made for another k;
    /// [`Error::MalformedPayload`] or [`Error::ForgedMatch`] for a voucher
    /// that opened but is not an honest match (a malicious client).
    pub fn open(&self, voucher: &Voucher) -> Result<Option<Match>, Error> {
        self.open_batch(core::slice::from_ref(voucher))
            .pop()
            .unwrap_or(Ok(None))
    }

    /// Opens a batch. The group work is one variable-base scalar
    /// multiplication per voucher, eight at a time where the CPU has
    /// AVX-512 IFMA ([`Matcher::backend`]).
    pub fn open_batch(&self, vouchers: &[Voucher]) -> Vec<Result<Option<Match>, Error>> {
        let shared = self.shared_batch(vouchers.iter().map(Voucher::q));
        vouchers
            .iter()
            .zip(shared)
            .map(|(v, s)| s.and_then(|s| self.finish(v, s)))
            .collect()
    }

    /// The arithmetic the matcher runs on (chosen once, for this CPU).
    pub fn backend(&self) -> Backend {
        self.alpha.backend()
    }

    /// SPEC Section 7, steps 3 to 5, for either protocol version: compares
    /// every box's confirm value in constant time, takes the first that
    /// confirms (box 0, with the all-zero key, when none does), and unwraps
    /// the payload key from it. Returns (a box confirmed, which box, the
    /// payload key, whether it unwrapped); the work is the same whatever
    /// the voucher holds.
    pub(crate) fn open_boxes(
        &self,
        q: &[u8; 32],
        boxes: &[crate::voucher::PositionBox],
        shared: &SharedSecret,
    ) -> (Choice, u8, Zeroizing<[u8; KEY_LEN]>, Choice) {
        let mut found = Choice::from(0);
        let mut hit = 0u8;
        let mut hit_key = Zeroizing::new([0u8; KEY_LEN]);
        for (j, b) in boxes.iter().enumerate() {
            let j = u8::try_from(j).unwrap_or(u8::MAX);
            let keys = shared.expand(&self.id.0, q, j);
            let take = keys.confirms(&b.confirm) & !found;
            hit.conditional_assign(&j, take);
            for (dst, src) in hit_key.iter_mut().zip(keys.wrap_key.iter()) {
                dst.conditional_assign(src, take);
            }
            found |= take;
        }
        let b = &boxes[usize::from(hit)];
        let mut payload_key = Zeroizing::new([0u8; KEY_LEN]);
        payload_key.copy_from_slice(&b.wrapped[..KEY_LEN]);
        let tag: [u8; TAG_LEN] = b.wrapped[KEY_LEN..].try_into().unwrap_or([0; TAG_LEN]);
        let key_opened = open_balanced(&hit_key, &[], &mut payload_key[..], &tag);
        (found, hit, payload_key, key_opened)
    }

    /// The shared secret of each Q: Encode(α·Q), from Q's encoding. Q was
    /// checked when its voucher was decoded, so the error (a Q that does
    /// not decode) is for a voucher that was built by hand.
    pub(crate) fn shared_batch<'a>(
        &self,
        qs: impl Iterator<Item = &'a [u8; ELEMENT_LEN]>,
    ) -> Vec<Result<SharedSecret, Error>> {
        let qs: Vec<[u8; ELEMENT_LEN]> = qs.copied().collect();
        let products = Zeroizing::new(self.alpha.mul_encoded(&qs));
        products
            .iter()
            .map(|s| match s {
                Some(s) => Ok(SharedSecret::extract(s)),
                None => Err(Error::InvalidPoint("voucher Q")),
            })
            .collect()
    }

    /// Opens one voucher with the same work whatever it holds: every box is
    /// tried, both AEAD openings and the payload parse run, and the list is
    /// consulted, on every voucher; what came out is looked at only at the
    /// end. A match is allowed to be learnt by the server, but the time its
    /// evaluation takes must not tell the client anything (SECURITY 7.1).
    fn finish(&self, voucher: &Voucher, shared: SharedSecret) -> Result<Option<Match>, Error> {
        if voucher.k() != self.header.k {
            return Err(Error::WrongK {
                expected: usize::from(self.header.k),
                got: voucher.boxes.len(),
            });
        }
        let (found, hit, payload_key, key_opened) =
            self.open_boxes(voucher.q(), &voucher.boxes, &shared);
        let mut plain = Zeroizing::new(voucher.payload[..PAYLOAD_LEN].to_vec());
        let tag: [u8; TAG_LEN] = voucher.payload[PAYLOAD_LEN..]
            .try_into()
            .unwrap_or([0; TAG_LEN]);
        let aad = voucher.payload_aad(&self.id.0);
        let payload_opened = open_balanced(&payload_key, &aad, &mut plain, &tag);

        // Parse, and consult the list at the position that opened: on every
        // voucher. When the bytes do not parse (every non-matching voucher),
        // a stand-in made of them is looked up instead, so that it lands on
        // a slot as random as a real item's (a fixed stand-in would always
        // hit the same cached slot).
        let parsed = decode_payload(&plain);
        let stand_in = Item::new(ItemType::Sha256, &plain[2..34]);
        let item = match (&parsed, &stand_in) {
            (Ok((item, _)), _) | (_, Ok(item)) => item,
            (Err(_), Err(_)) => return Err(Error::MalformedPayload("item length")),
        };
        let w = self.header.positions(item).as_slice()[usize::from(hit)];
        let entry = self.index.confirm(w, &self.fingerprinter.fingerprint(item));
        #[cfg(test)]
        crate::kdf::work::LOOKUPS.with(|n| n.set(n.get() + 1));

        // Only now look at what came out.
        if !bool::from(found) {
            return Ok(None);
        }
        if !bool::from(key_opened) {
            return Err(Error::MalformedPayload("payload key does not decrypt"));
        }
        if !bool::from(payload_opened) {
            return Err(Error::MalformedPayload("payload does not decrypt"));
        }
        let (item, associated_data) = parsed?;
        // Is this item on our list, at the position that opened?
        match entry {
            Some(entry) => Ok(Some(Match {
                item,
                associated_data,
                entry,
                position: hit,
            })),
            _ => Err(Error::ForgedMatch),
        }
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation, reason = "test sizes are small")]
mod tests {
    use super::*;
    use crate::item::ItemType;
    use crate::kdf::seal;
    use crate::table::TableBuilder;
    use crate::voucher::{ClientTable, PAYLOAD_CT_LEN, PositionBox, encode_payload};
    use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
    use curve25519_dalek::ristretto::RistrettoPoint;
    use curve25519_dalek::scalar::Scalar;

    fn item(i: u8) -> Item {
        Item::new(ItemType::Sha256, &[i; 32]).unwrap()
    }

    /// A voucher made without knowing any table entry: Q = γ·G, so the
    /// server's α·Q = γ·L, which the client can compute for every box.
    fn forge(m: &Matcher, l: &RistrettoPoint, item: &Item) -> Voucher {
        let gamma = Scalar::from(0xdead_beefu64);
        let q_point = gamma * RISTRETTO_BASEPOINT_POINT;
        let q = q_point.compress().to_bytes();
        let s = (gamma * l).compress().to_bytes();
        let shared = SharedSecret::extract(&s);
        let payload_key = [5u8; KEY_LEN];
        let boxes = (0..m.header.k)
            .map(|j| {
                let keys = shared.expand(&m.id.0, &q, j);
                let mut wrapped = [0u8; KEY_LEN + TAG_LEN];
                wrapped[..KEY_LEN].copy_from_slice(&payload_key);
                let tag = seal(&keys.wrap_key, &[], &mut wrapped[..KEY_LEN]);
                wrapped[KEY_LEN..].copy_from_slice(&tag);
                PositionBox {
                    confirm: keys.confirm,
                    wrapped,
                }
            })
            .collect();
        let mut v = Voucher {
            q,
            boxes,
            payload: Box::new([0u8; PAYLOAD_CT_LEN]),
        };
        encode_payload(item, b"forged", &mut v.payload[..PAYLOAD_LEN]);
        let aad = v.payload_aad(&m.id.0);
        let tag = seal(&payload_key, &aad, &mut v.payload[..PAYLOAD_LEN]);
        v.payload[PAYLOAD_LEN..].copy_from_slice(&tag);
        v
    }

    fn setup() -> (ServerKey, crate::table::BuiltTable) {
        let key = ServerKey::generate(&mut rand::rng());
        let built = TableBuilder::new([4; 32])
            .build(&key, (0..40).map(item))
            .unwrap();
        (key, built)
    }

    #[test]
    fn a_forged_voucher_for_an_unlisted_item_is_caught() {
        let (key, built) = setup();
        let l = *key.public_key().point();
        let m = Matcher::new(&key, &built.table, built.index).unwrap();
        // The forgery does open (that is the attack) ...
        let v = forge(&m, &l, &item(200));
        // ... but the item is not on the list, so it is refused.
        assert_eq!(m.open(&v), Err(Error::ForgedMatch));
    }

    #[test]
    fn a_forged_voucher_for_a_listed_item_at_the_wrong_position_is_caught() {
        let (key, built) = setup();
        let l = *key.public_key().point();
        let index = built.index.clone();
        let entries = built.entries.clone();
        let m = Matcher::new(&key, &built.table, built.index).unwrap();
        // Box 0 opens in a forgery; find a listed entry that is *not* at w_0.
        let e = (0..40u32)
            .find(|&e| {
                let it = &entries[e as usize];
                index.slot_of(e) != Some(m.header.positions(it).as_slice()[0])
            })
            .unwrap();
        let v = forge(&m, &l, &entries[e as usize]);
        assert_eq!(m.open(&v), Err(Error::ForgedMatch));
    }

    #[test]
    fn confirm_is_checked_before_any_decryption() {
        let (key, built) = setup();
        let client = ClientTable::new(built.table.clone()).unwrap();
        let m = Matcher::new(&key, &built.table, built.index).unwrap();
        let mut v = client
            .create_voucher(&item(3), b"", &mut rand::rng())
            .unwrap();
        let hit = m.open(&v).unwrap().unwrap().position;
        // Keep the box's (valid) ciphertext but change its confirm value: the
        // server must not even try the AEAD.
        v.boxes[usize::from(hit)].confirm[0] ^= 1;
        assert_eq!(m.open(&v), Ok(None));
    }

    #[test]
    fn every_voucher_costs_the_same_work_matching_or_not() {
        let (key, built) = setup();
        let client = ClientTable::new(built.table.clone()).unwrap();
        let m = Matcher::new(&key, &built.table, built.index).unwrap();
        let listed = client
            .create_voucher(&item(3), b"ad", &mut rand::rng())
            .unwrap();
        let unlisted = client
            .create_voucher(&item(203), b"ad", &mut rand::rng())
            .unwrap();
        let mut tampered = listed.clone();
        tampered.payload[0] ^= 1;
        let (r, openings, lookups) = crate::kdf::work::count(|| m.open(&listed));
        assert!(r.unwrap().is_some());
        assert_eq!((openings, lookups), (2, 1), "a match: key, payload, lookup");
        for (what, v) in [("non-matching", &unlisted), ("tampered", &tampered)] {
            let (_, o, l) = crate::kdf::work::count(|| m.open(v));
            assert_eq!(
                (o, l),
                (openings, lookups),
                "a {what} voucher does the same work"
            );
        }
    }

    #[test]
    fn matcher_refuses_a_table_built_under_another_key() {
        let (_, built) = setup();
        let other = ServerKey::generate(&mut rand::rng());
        assert!(matches!(
            Matcher::new(&other, &built.table, built.index),
            Err(Error::KeyMismatch)
        ));
    }
}
