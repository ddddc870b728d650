//! The version-2 voucher (SPEC Section 14.7): the outer layer of Section 6
//! around a [`Share`] instead of the item, bound to the account id.
//!
//! ```text
//! prefix     = 0x02 || Encode(Q) || box_0 || ... || box_{k-1}
//! payload_ct = AES-256-GCM(K, aad = table_id || len(account_id) || account_id || prefix,
//!                          share encoding)
//! ```
//!
//! A real voucher's Q and boxes are Section 6's. A synthetic one sets
//! Q = γ·G, so that the server's α·Q = γ·L is known to the client, wraps K
//! under γ·L in one box j_syn drawn with the table's placement weights, and
//! fills the other boxes with random bytes. Both kinds do the same work: the
//! client computes the real outer layer and both shares every time, and
//! selects in constant time.

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use rand_core::CryptoRng;
use subtle::{Choice, ConditionallySelectable};
use zeroize::Zeroizing;

use super::{AccountKeys, Share, VOUCHER_ID_LEN, share_len};
use crate::encoding::ELEMENT_LEN;
use crate::error::Error;
use crate::item::Item;
use crate::kdf::{CONFIRM_LEN, KEY_LEN, SharedSecret, TAG_LEN, open_balanced, seal};
use crate::matcher::Matcher;
use crate::table::BuiltTable;
use crate::voucher::{
    BOX_LEN, ClientTable, PositionBox, QCheck, VoucherSecrets, decode_batch, decode_outer,
    outer_prefix,
};

pub use crate::table::THRESHOLD_VERSION;

/// The encoded length of a version-2 voucher: `1 + 32 + 80k + (1164 + 8s) + 16`.
pub const fn threshold_voucher_len(k: u8, s: u16) -> usize {
    1 + ELEMENT_LEN + k as usize * BOX_LEN + share_len(s) + TAG_LEN
}

/// A version-2 voucher as sent on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct ThresholdVoucher {
    q: [u8; ELEMENT_LEN],
    boxes: Vec<PositionBox>,
    /// The encrypted share encoding followed by its tag.
    payload: Vec<u8>,
}

impl core::fmt::Debug for ThresholdVoucher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ThresholdVoucher")
            .field("k", &self.boxes.len())
            .finish_non_exhaustive()
    }
}

impl ThresholdVoucher {
    /// The wire encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = prefix(&self.q, &self.boxes);
        out.extend_from_slice(&self.payload);
        out
    }

    /// Decodes a voucher for a table with `k` positions and a manifest with
    /// synthetic bound `s`.
    ///
    /// # Errors
    /// [`Error::Length`], [`Error::UnsupportedVersion`] for a first byte
    /// other than 2, or [`Error::InvalidPoint`] / [`Error::IdentityPoint`]
    /// for Q.
    pub fn decode(bytes: &[u8], k: u8, s: u16) -> Result<Self, Error> {
        ThresholdVoucher::decode_checking(bytes, k, s, QCheck::Here)
    }

    /// [`ThresholdVoucher::decode`] on each of a submission's vouchers, with
    /// every Q decoded at once (as [`crate::Voucher::decode_batch`]).
    ///
    /// # Errors
    /// The index and error of the first voucher that does not decode.
    pub fn decode_batch(
        vouchers: &[impl AsRef<[u8]>],
        k: u8,
        s: u16,
    ) -> Result<Vec<Self>, (usize, Error)> {
        decode_batch(
            vouchers,
            |b, check| ThresholdVoucher::decode_checking(b, k, s, check),
            |v| &v.q,
        )
    }

    fn decode_checking(bytes: &[u8], k: u8, s: u16, check: QCheck) -> Result<Self, Error> {
        let (q, boxes, rest) = decode_outer(
            bytes,
            k,
            threshold_voucher_len(k, s),
            THRESHOLD_VERSION,
            "threshold voucher",
            check,
        )?;
        Ok(ThresholdVoucher {
            q,
            boxes,
            payload: rest.to_vec(),
        })
    }

    /// The encoding of Q (what the submission digest hashes).
    pub fn q(&self) -> &[u8; ELEMENT_LEN] {
        &self.q
    }

    /// The number of positions.
    pub fn k(&self) -> u8 {
        u8::try_from(self.boxes.len()).unwrap_or(u8::MAX)
    }
}

/// `0x02 || Q || box_0 || ... || box_{k-1}`.
fn prefix(q: &[u8; ELEMENT_LEN], boxes: &[PositionBox]) -> Vec<u8> {
    outer_prefix(THRESHOLD_VERSION, q, boxes)
}

/// `table_id || I2OSP(len(account_id), 1) || account_id || prefix`.
fn payload_aad(
    table_id: &[u8; 32],
    account_id: &[u8],
    q: &[u8; ELEMENT_LEN],
    boxes: &[PositionBox],
) -> Vec<u8> {
    let mut aad = Vec::with_capacity(32 + 1 + account_id.len() + 1 + 32 + boxes.len() * BOX_LEN);
    aad.extend_from_slice(table_id);
    aad.push(u8::try_from(account_id.len()).unwrap_or(u8::MAX));
    aad.extend_from_slice(account_id);
    aad.extend_from_slice(&prefix(q, boxes));
    aad
}

/// The digest a server remembers a threshold-mode submission by (SPEC
/// 14.9, after 12.3): `SHA-256("blindmatch-v2/submission-digest" ||
/// table_id || I2OSP(len(account_id), 1) || account_id || I2OSP(n, 4) ||
/// Encode(Q_1) || ... || Encode(Q_n))`. The same batch sent again under
/// another account is other content.
pub fn submission_digest(
    table_id: &crate::TableId,
    account_id: &[u8],
    vouchers: &[ThresholdVoucher],
) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"blindmatch-v2/submission-digest");
    h.update(table_id.0);
    h.update([u8::try_from(account_id.len()).unwrap_or(u8::MAX)]);
    h.update(account_id);
    h.update(
        u32::try_from(vouchers.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    for v in vouchers {
        h.update(v.q());
    }
    h.finalize().into()
}

/// How many of a table's entries sit at each position j: the weights a
/// synthetic voucher draws its open box with (SPEC 14.7), published in the
/// version-2 manifest.
pub fn placement_weights(built: &BuiltTable) -> Vec<u32> {
    built.placement.weights()
}

/// j in 0..weights.len() with probability weights[j] / Σ weights (uniform if
/// every weight is 0), from 64 random bits, without a branch on the draw.
fn draw(weights: &[u32], r: u64) -> u8 {
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    let (weights, total): (Vec<u64>, u64) = if total == 0 {
        (vec![1; weights.len()], weights.len() as u64)
    } else {
        (weights.iter().map(|&w| u64::from(w)).collect(), total)
    };
    // r mod total has a bias below total / 2^64: at most 2^-32 for any
    // table, far below what a server could measure per account.
    let point = r % total.max(1);
    let mut acc = 0u64;
    let mut j = 0u8;
    for (i, w) in weights.iter().enumerate() {
        acc += w;
        // j = the number of cumulative sums not above the point.
        j += u8::from(acc <= point) & u8::from(i + 1 < weights.len());
    }
    j
}

/// Who makes threshold vouchers, under which manifest (SPEC 14.7): the
/// account's keys for the manifest's t and s, the account id every voucher
/// is bound to, and the manifest's placement weights.
#[derive(Clone, Copy)]
pub struct VoucherAccount<'a> {
    /// [`crate::threshold::AccountSecret::keys`] for the manifest's t and s.
    pub keys: &'a AccountKeys,
    /// The account id (`SubmitRequest.account_id`).
    pub account_id: &'a [u8],
    /// The manifest's placement weights
    /// ([`crate::manifest::ThresholdParams::weights`]).
    pub weights: &'a [u32],
}

/// One upload in threshold mode (SPEC Section 14.4): the platform's id for
/// it, the item, and its associated data. The same upload sent again must
/// keep its voucher id: one id gives one share, so a resubmission counts
/// once toward t. An app without an asset id of 16 bytes hashes the one it
/// has (the first 16 bytes of its SHA-256, say), or draws 16 random bytes
/// and keeps them with the upload.
#[derive(Clone)]
pub struct Upload {
    /// 16 bytes naming the upload, unique among the account's uploads.
    pub voucher_id: [u8; VOUCHER_ID_LEN],
    /// The item.
    pub item: Item,
    /// Its associated data (at most 1 KiB), sealed in the inner layer.
    pub associated_data: Vec<u8>,
}

impl Upload {
    /// An upload whose voucher id comes as bytes (from an app or a
    /// binding): it must be [`VOUCHER_ID_LEN`] long.
    ///
    /// # Errors
    /// [`Error::Length`] for a voucher id of another length.
    pub fn new(voucher_id: &[u8], item: Item, associated_data: Vec<u8>) -> Result<Self, Error> {
        let voucher_id = voucher_id.try_into().map_err(|_| Error::Length {
            what: "voucher id",
            expected: VOUCHER_ID_LEN,
            got: voucher_id.len(),
        })?;
        Ok(Upload {
            voucher_id,
            item,
            associated_data,
        })
    }
}

impl core::fmt::Debug for Upload {
    /// Nothing of the upload: its item and associated data are the user's.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Upload").finish_non_exhaustive()
    }
}

impl ClientTable {
    /// Makes a threshold voucher for `upload` under `account`'s keys for
    /// this manifest's t and s (SPEC Section 14.7). The upload's voucher id
    /// (Section 14.4) and the account's rate decide whether the voucher is
    /// synthetic.
    ///
    /// # Errors
    /// [`Error::AssociatedDataTooLong`] beyond 1024 bytes.
    pub fn create_threshold_voucher<R: CryptoRng + ?Sized>(
        &self,
        account: &VoucherAccount<'_>,
        upload: &Upload,
        rng: &mut R,
    ) -> Result<ThresholdVoucher, Error> {
        loop {
            let r = VoucherRandomness::random(self.table().header().k, rng);
            match self.create_threshold_voucher_with(account, upload, &r) {
                // Q = identity has probability ~2^-252; draw again.
                Err(Error::IdentityPoint(_)) => continue,
                other => return other,
            }
        }
    }

    /// [`ClientTable::create_threshold_voucher`] with every random value
    /// given: for the test vectors, and the one place the work is done.
    pub(crate) fn create_threshold_voucher_with(
        &self,
        sender: &VoucherAccount<'_>,
        upload: &Upload,
        r: &VoucherRandomness,
    ) -> Result<ThresholdVoucher, Error> {
        let VoucherAccount {
            keys: account,
            account_id,
            weights,
        } = *sender;
        let Upload {
            voucher_id,
            item,
            associated_data,
        } = upload;
        let synthetic = Choice::from(u8::from(account.choose(voucher_id).synthetic));
        let real_share = Share::real_with(account, voucher_id, item, associated_data, r.nonce)?;
        let synthetic_share = Share::synthetic_with(account, voucher_id, r.synthetic_inner.clone());
        let table_id = &self.table().id().0;
        let secrets = &r.secrets;
        // The real outer layer, always.
        let (mut q, mut boxes, _) = self.outer(item, secrets, None)?;
        // The synthetic one, always: Q = γ·G, S = γ·L, one box of k.
        let syn_q = (&secrets.gamma * RISTRETTO_BASEPOINT_TABLE)
            .compress()
            .to_bytes();
        let shared = (self.l_table() * &secrets.gamma).compress().to_bytes();
        let j_syn = draw(weights, r.draw);
        let keys = SharedSecret::extract(&shared).expand(table_id, &syn_q, j_syn);
        let mut opened = PositionBox {
            confirm: keys.confirm,
            wrapped: [0u8; KEY_LEN + TAG_LEN],
        };
        opened.wrapped[..KEY_LEN].copy_from_slice(&secrets.payload_key);
        let tag = seal(&keys.wrap_key, &[], &mut opened.wrapped[..KEY_LEN]);
        opened.wrapped[KEY_LEN..].copy_from_slice(&tag);
        for (j, (b, fake)) in boxes.iter_mut().zip(&r.fake_boxes).enumerate() {
            let is_open = Choice::from(u8::from(j == usize::from(j_syn)));
            let syn_box = select_box(fake, &opened, is_open);
            *b = select_box(b, &syn_box, synthetic);
        }
        for (dst, src) in q.iter_mut().zip(syn_q.iter()) {
            dst.conditional_assign(src, synthetic);
        }
        // The share: both were made; take one.
        let real_bytes = Zeroizing::new(real_share.encode());
        let syn_bytes = Zeroizing::new(synthetic_share.encode());
        let mut payload: Vec<u8> = real_bytes
            .iter()
            .zip(syn_bytes.iter())
            .map(|(r, s)| u8::conditional_select(r, s, synthetic))
            .collect();
        let aad = payload_aad(table_id, account_id, &q, &boxes);
        let tag = seal(&secrets.payload_key, &aad, &mut payload);
        payload.extend_from_slice(&tag);
        Ok(ThresholdVoucher { q, boxes, payload })
    }
}

/// Every random value one threshold voucher needs.
pub(crate) struct VoucherRandomness {
    pub(crate) secrets: VoucherSecrets,
    /// 64 bits for the synthetic box's draw.
    pub(crate) draw: u64,
    /// What a synthetic voucher's k − 1 closed boxes hold (one per j; the
    /// open one's is unused).
    pub(crate) fake_boxes: Vec<PositionBox>,
    /// The real share's inner nonce.
    pub(crate) nonce: [u8; super::INNER_NONCE_LEN],
    /// The synthetic share's inner layer.
    pub(crate) synthetic_inner: Vec<u8>,
}

impl VoucherRandomness {
    fn random<R: CryptoRng + ?Sized>(k: u8, rng: &mut R) -> Self {
        let secrets = VoucherSecrets::random(rng);
        let mut b = [0u8; 8];
        rng.fill_bytes(&mut b);
        let fake_boxes = (0..k)
            .map(|_| {
                let mut fake = PositionBox {
                    confirm: [0u8; CONFIRM_LEN],
                    wrapped: [0u8; KEY_LEN + TAG_LEN],
                };
                rng.fill_bytes(&mut fake.confirm);
                rng.fill_bytes(&mut fake.wrapped);
                fake
            })
            .collect();
        let mut nonce = [0u8; super::INNER_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mut synthetic_inner = vec![0u8; super::INNER_LEN];
        rng.fill_bytes(&mut synthetic_inner);
        VoucherRandomness {
            secrets,
            draw: u64::from_be_bytes(b),
            fake_boxes,
            nonce,
            synthetic_inner,
        }
    }
}

fn select_box(a: &PositionBox, b: &PositionBox, choice: Choice) -> PositionBox {
    let mut out = a.clone();
    for (o, n) in out.confirm.iter_mut().zip(b.confirm.iter()) {
        o.conditional_assign(n, choice);
    }
    for (o, n) in out.wrapped.iter_mut().zip(b.wrapped.iter()) {
        o.conditional_assign(n, choice);
    }
    out
}

/// What the server keeps of a threshold voucher that opened: the share and
/// the box that opened (SPEC 14.9). No item, no associated data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The share the outer layer released.
    pub share: Share,
    /// Which of the k boxes opened (j*).
    pub position: u8,
}

impl Matcher {
    /// SPEC 14.6, step 8: is `item`, revealed from a candidate that opened
    /// at box `position` under this table, the list entry in the slot
    /// w_position(item)? `Some(entry)` if so; `None` for an unlisted item,
    /// or a listed one at another position (a synthetic or forged voucher
    /// carrying a listed item's share: never a match record).
    pub fn confirm(&self, item: &Item, position: u8) -> Option<u32> {
        let positions = self.header().positions(item);
        let w = *positions.as_slice().get(usize::from(position))?;
        self.index().confirm(w, &self.fingerprint(item))
    }

    /// Opens a batch of threshold vouchers, each with the account id it was
    /// submitted under, for a manifest with synthetic bound `s`: one scalar
    /// multiplication per voucher, as for version 1. `Ok(Some(_))` for a
    /// voucher that opened (a real match or a synthetic voucher: the server
    /// cannot tell which), `Ok(None)` for one that did not.
    ///
    /// # Errors
    /// Per voucher: [`Error::WrongK`], or [`Error::MalformedPayload`] for a
    /// voucher that opened but whose payload does not decrypt or decode.
    pub fn open_threshold_batch(
        &self,
        s: u16,
        vouchers: &[(&[u8], &ThresholdVoucher)],
    ) -> Vec<Result<Option<Candidate>, Error>> {
        let shared = self.shared_batch(vouchers.iter().map(|(_, v)| &v.q));
        vouchers
            .iter()
            .zip(shared)
            .map(|(&(account_id, v), shared)| {
                let shared = shared?;
                if v.k() != self.header().k {
                    return Err(Error::WrongK {
                        expected: usize::from(self.header().k),
                        got: v.boxes.len(),
                    });
                }
                let (found, hit, payload_key, key_opened) =
                    self.open_boxes(&v.q, &v.boxes, &shared);
                let body_len = v.payload.len() - TAG_LEN;
                let mut plain = Zeroizing::new(v.payload[..body_len].to_vec());
                let tag: [u8; TAG_LEN] = v.payload[body_len..].try_into().unwrap_or([0; TAG_LEN]);
                let aad = payload_aad(&self.table_id().0, account_id, &v.q, &v.boxes);
                let opened = open_balanced(&payload_key, &aad, &mut plain, &tag);
                let share = Share::decode(&plain, s);
                if !bool::from(found) {
                    return Ok(None);
                }
                if !bool::from(key_opened) {
                    return Err(Error::MalformedPayload("payload key does not decrypt"));
                }
                if !bool::from(opened) {
                    return Err(Error::MalformedPayload("payload does not decrypt"));
                }
                Ok(Some(Candidate {
                    share: share?,
                    position: hit,
                }))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::ItemType;
    use crate::key::ServerKey;
    use crate::table::TableBuilder;
    use crate::threshold::{AccountSecret, Opened, Outcome, SyntheticRate, reveal};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn item(i: u32) -> Item {
        Item::new(
            ItemType::Sha256,
            &[&i.to_be_bytes()[..], &[3u8; 28]].concat(),
        )
        .unwrap()
    }

    fn id(i: u32) -> [u8; VOUCHER_ID_LEN] {
        let mut v = [9u8; VOUCHER_ID_LEN];
        v[..4].copy_from_slice(&i.to_be_bytes());
        v
    }

    #[test]
    fn listed_items_and_synthetic_vouchers_open_unlisted_ones_do_not() {
        let mut rng = StdRng::seed_from_u64(30);
        let key = ServerKey::generate(&mut rng);
        let built = TableBuilder::new([5; 32])
            .build(&key, (0..50).map(item))
            .unwrap();
        let weights = placement_weights(&built);
        assert_eq!(weights.iter().sum::<u32>(), 50);
        let client = ClientTable::new(built.table.clone()).unwrap();
        let matcher = Matcher::new(&key, &built.table, built.index.clone()).unwrap();
        let (t, s) = (4u16, 6u16);
        let secret =
            AccountSecret::generate(b"acct", SyntheticRate::from_probability(0.3), &mut rng)
                .unwrap();
        let keys = secret.keys(t, s).unwrap();
        let mut candidates = Vec::new();
        let (mut synthetic, mut real_listed) = (0, 0);
        for i in 0..40u32 {
            // Even ids: listed items; odd ids: unlisted ones.
            let it = if i % 2 == 0 { item(i) } else { item(1000 + i) };
            let sender = VoucherAccount {
                keys: &keys,
                account_id: b"acct",
                weights: &weights,
            };
            let upload = Upload::new(&id(i), it, b"ad".to_vec()).unwrap();
            let v = client
                .create_threshold_voucher(&sender, &upload, &mut rng)
                .unwrap();
            let wire = v.encode();
            assert_eq!(wire.len(), threshold_voucher_len(3, s));
            let back = ThresholdVoucher::decode(&wire, 3, s).unwrap();
            let is_synthetic = keys.choose(&id(i)).synthetic;
            synthetic += u32::from(is_synthetic);
            let opened = matcher
                .open_threshold_batch(s, &[(b"acct", &back)])
                .pop()
                .unwrap()
                .unwrap();
            if is_synthetic || i % 2 == 0 {
                let c = opened.expect("synthetic and listed vouchers open");
                real_listed += u32::from(!is_synthetic);
                candidates.push(c);
            } else {
                assert!(opened.is_none(), "an unlisted real voucher does not open");
            }
            // Under another account id the outer tag fails.
            let moved = matcher
                .open_threshold_batch(s, &[(b"other", &back)])
                .pop()
                .unwrap();
            if is_synthetic || i % 2 == 0 {
                assert!(matches!(moved, Err(Error::MalformedPayload(_))));
            }
        }
        assert!(synthetic > 0 && real_listed >= u32::from(t));
        let positions: Vec<u8> = candidates.iter().map(|c| c.position).collect();
        let shares: Vec<Share> = candidates.into_iter().map(|c| c.share).collect();
        let Outcome::Revealed(r) = reveal(t, &shares).unwrap() else {
            panic!("no reveal")
        };
        // Step 8: every real, listed share is confirmed at the box that
        // opened; the synthetic ones carry nothing to confirm.
        for o in &r.real {
            let Opened::Item {
                index, item: got, ..
            } = o
            else {
                panic!("{o:?}")
            };
            assert!(matcher.confirm(got, positions[*index]).is_some());
            let other = (positions[*index] + 1) % 3;
            let at_other = matcher.header().positions(got).as_slice()[usize::from(other)]
                == matcher.header().positions(got).as_slice()[usize::from(positions[*index])];
            assert_eq!(matcher.confirm(got, other).is_some(), at_other);
        }
        assert_eq!(matcher.confirm(&item(1001), 0), None);
        assert_eq!(r.real.len(), real_listed as usize);
        assert_eq!(r.synthetic.len(), synthetic as usize);
        for o in &r.real {
            let Opened::Item { item: got, .. } = o else {
                panic!("{o:?}")
            };
            assert!(built.entries.contains(got));
        }
    }

    #[test]
    fn the_synthetic_box_follows_the_weights() {
        let mut counts = [0u32; 3];
        let mut rng = StdRng::seed_from_u64(31);
        for _ in 0..30_000 {
            counts[usize::from(draw(&[6, 3, 1], rand::Rng::next_u64(&mut rng)))] += 1;
        }
        for (c, w) in counts.iter().zip([0.6, 0.3, 0.1]) {
            let f = f64::from(*c) / 30_000.0;
            assert!((f - w).abs() < 0.015, "{counts:?}");
        }
        assert_eq!(draw(&[0, 0, 0], 5), 2);
        assert_eq!(draw(&[0, 5, 0], 3), 1);
    }
}
