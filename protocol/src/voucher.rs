//! Vouchers: what a client sends for each item, and how it makes them.
//!
//! For item y with positions w_0 .. w_{k-1} in table T, the client draws fresh
//! non-zero scalars β, γ and a random 32-byte payload key K, and computes
//!
//! ```text
//! Q   = β·H(y) + γ·G
//! S_j = β·T[w_j] + γ·L                       for each j
//! (wrap_key_j, confirm_j) = KDF(S_j, table_id, Q, j)
//! box_j   = confirm_j || AES-256-GCM(wrap_key_j, K)
//! payload = AES-256-GCM(K, aad = table_id || version || Q || box_0 .. box_{k-1},
//!                       padded(y, ad))
//! ```
//!
//! If y is on the list at w_j then T\[w_j\] = α·H(y), and the server's α·Q equals
//! S_j; otherwise α·Q is independent of every S_j and no box opens. One Q and
//! one (β, γ) serve all k positions: SECURITY.md explains why that is safe.
//! The positions are never sent; the server tries all k boxes.
//!
//! The payload key is the Apple PSI design's inner key: the padded payload
//! (about 1.1 KB) is encrypted once, not k times, and each position only
//! wraps 32 bytes.

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::{RistrettoBasepointTable, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::encoding::{ELEMENT_LEN, array, decode_element};
use crate::error::Error;
use crate::hash_to_group::hash_item;
use crate::item::{Item, ItemType, MAX_ITEM_LEN};
use crate::kdf::{CONFIRM_LEN, KEY_LEN, SharedSecret, TAG_LEN, seal};
use crate::table::{BlindedTable, PROTOCOL_VERSION, Positions, SLOT_LEN};

/// Most associated data a voucher carries, in bytes.
pub const MAX_AD_LEN: usize = 1024;
/// Length of the padded payload plaintext:
/// `type (1) || len (1) || value padded to 64 || ad_len (2) || ad padded to 1024`.
pub const PAYLOAD_LEN: usize = 1 + 1 + MAX_ITEM_LEN + 2 + MAX_AD_LEN;
/// Length of the encrypted payload.
pub const PAYLOAD_CT_LEN: usize = PAYLOAD_LEN + TAG_LEN;
/// Length of one position's box: `confirm_j || wrapped payload key || tag`.
pub const BOX_LEN: usize = CONFIRM_LEN + KEY_LEN + TAG_LEN;

/// The encoded length of a voucher for a table with `k` positions:
/// `version (1) || Q (32) || k boxes (80 each) || payload (1108)`.
pub const fn voucher_len(k: u8) -> usize {
    1 + ELEMENT_LEN + k as usize * BOX_LEN + PAYLOAD_CT_LEN
}

/// What identifies a batch's content for retries (SPEC Section 12.3):
///
/// ```text
/// SHA-256("blindmatch-v1/submission-digest" || table_id || I2OSP(n, 4) || Q_1 || ... || Q_n)
/// ```
///
/// A server stores a batch sent again under the same submission id once if
/// this digest is the same, and refuses it (ALREADY_EXISTS) if not. Only Q
/// is hashed: a client reusing an id for another batch is a client bug,
/// which this catches; hashing every ciphertext byte as well would cost the
/// server ~7% of its CPU per voucher and catch nothing more that matters.
pub fn submission_digest(table_id: &crate::TableId, vouchers: &[Voucher]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"blindmatch-v1/submission-digest");
    h.update(table_id.0);
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

/// One position's box.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PositionBox {
    pub(crate) confirm: [u8; CONFIRM_LEN],
    /// The wrapped payload key followed by its tag.
    pub(crate) wrapped: [u8; KEY_LEN + TAG_LEN],
}

/// A voucher as sent on the wire. Its length depends only on the table's k.
#[derive(Clone, PartialEq, Eq)]
pub struct Voucher {
    pub(crate) q: [u8; ELEMENT_LEN],
    pub(crate) boxes: Vec<PositionBox>,
    pub(crate) payload: Box<[u8; PAYLOAD_CT_LEN]>,
}

impl Voucher {
    /// The wire encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(voucher_len(self.k()));
        self.encode_into(&mut out);
        out
    }

    /// Appends the wire encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&payload_aad_prefix(&self.q, &self.boxes));
        out.extend_from_slice(&self.payload[..]);
    }

    /// The payload's associated data: `table_id || version || Q || boxes`,
    /// i.e. the table id followed by every voucher byte before the payload.
    /// Binding the whole voucher makes it non-malleable: a flipped bit in any
    /// box, even one the server's key does not open, fails the payload tag.
    pub(crate) fn payload_aad(&self, table_id: &[u8; 32]) -> Vec<u8> {
        [&table_id[..], &payload_aad_prefix(&self.q, &self.boxes)].concat()
    }

    /// Decodes a voucher for a table with `k` positions.
    ///
    /// # Errors
    /// [`Error::Length`] unless the length is exactly [`voucher_len`]`(k)`,
    /// [`Error::UnsupportedVersion`], or [`Error::InvalidPoint`] /
    /// [`Error::IdentityPoint`] for Q.
    pub fn decode(bytes: &[u8], k: u8) -> Result<Self, Error> {
        Voucher::decode_checking(bytes, k, QCheck::Here)
    }

    /// [`Voucher::decode`] on each of a submission's vouchers, in order,
    /// with every Q decoded at once ([`blindmatch_batchmul::decodes`]:
    /// eight per register on AVX-512 IFMA): the same result for a fraction
    /// of the work.
    ///
    /// # Errors
    /// The index and error of the first voucher that does not decode.
    pub fn decode_batch(vouchers: &[impl AsRef<[u8]>], k: u8) -> Result<Vec<Self>, (usize, Error)> {
        decode_batch(
            vouchers,
            |b, check| Voucher::decode_checking(b, k, check),
            |v| &v.q,
        )
    }

    fn decode_checking(bytes: &[u8], k: u8, check: QCheck) -> Result<Self, Error> {
        let (q, boxes, rest) =
            decode_outer(bytes, k, voucher_len(k), PROTOCOL_VERSION, "voucher", check)?;
        Ok(Voucher {
            q,
            boxes,
            payload: Box::new(array(rest, "voucher payload")?),
        })
    }

    /// The number of positions (the table's k).
    pub fn k(&self) -> u8 {
        u8::try_from(self.boxes.len()).unwrap_or(u8::MAX)
    }

    /// The encoding of Q.
    pub fn q(&self) -> &[u8; ELEMENT_LEN] {
        &self.q
    }
}

impl core::fmt::Debug for Voucher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Voucher")
            .field("k", &self.k())
            .finish_non_exhaustive()
    }
}

/// `version || Q || box_0 || ... || box_{k-1}`.
fn payload_aad_prefix(q: &[u8; ELEMENT_LEN], boxes: &[PositionBox]) -> Vec<u8> {
    outer_prefix(PROTOCOL_VERSION, q, boxes)
}

/// `version || Q || box_0 || ... || box_{k-1}`, for either protocol version.
pub(crate) fn outer_prefix(version: u8, q: &[u8; ELEMENT_LEN], boxes: &[PositionBox]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + ELEMENT_LEN + boxes.len() * BOX_LEN + PAYLOAD_CT_LEN);
    out.push(version);
    out.extend_from_slice(q);
    for b in boxes {
        out.extend_from_slice(&b.confirm);
        out.extend_from_slice(&b.wrapped);
    }
    out
}

/// SPEC Section 7, step 1, for either protocol version: the exact length,
/// the version byte, Q (canonical, not the identity) and the k boxes.
/// Returns Q's encoding, the boxes and the payload bytes after them. Q is
/// decoded here only to be checked: the server multiplies it by α from its
/// encoding, eight at a time ([`blindmatch_batchmul`]).
#[allow(clippy::type_complexity)]
pub(crate) fn decode_outer<'a>(
    bytes: &'a [u8],
    k: u8,
    expected: usize,
    version: u8,
    what: &'static str,
    check: QCheck,
) -> Result<([u8; ELEMENT_LEN], Vec<PositionBox>, &'a [u8]), Error> {
    if bytes.len() != expected {
        return Err(Error::Length {
            what,
            expected,
            got: bytes.len(),
        });
    }
    if bytes[0] != version {
        return Err(Error::UnsupportedVersion {
            what,
            version: bytes[0],
        });
    }
    let q: [u8; ELEMENT_LEN] = array(&bytes[1..1 + ELEMENT_LEN], "voucher Q")?;
    match check {
        QCheck::Here => {
            decode_element(&q, "voucher Q")?;
        }
        QCheck::Batched if q == [0u8; ELEMENT_LEN] => {
            return Err(Error::IdentityPoint("voucher Q"));
        }
        QCheck::Batched => {}
    }
    let mut rest = &bytes[1 + ELEMENT_LEN..];
    let mut boxes = Vec::with_capacity(usize::from(k));
    for _ in 0..k {
        boxes.push(PositionBox {
            confirm: array(&rest[..CONFIRM_LEN], "voucher box")?,
            wrapped: array(&rest[CONFIRM_LEN..BOX_LEN], "voucher box")?,
        });
        rest = &rest[BOX_LEN..];
    }
    Ok((q, boxes, rest))
}

/// Who decodes a voucher's Q: [`decode_outer`] itself, or [`decode_batch`]
/// for every voucher of a submission at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QCheck {
    /// Decode it here (one decoding per voucher).
    Here,
    /// Refuse only the identity here; the caller decodes every Q together.
    Batched,
}

/// Decodes `vouchers` in order with `decode` (given [`QCheck::Batched`]),
/// then every Q at once, and reports what one-by-one decoding would: the
/// first voucher that does not decode, whether for its Q or otherwise.
pub(crate) fn decode_batch<T>(
    vouchers: &[impl AsRef<[u8]>],
    decode: impl Fn(&[u8], QCheck) -> Result<T, Error>,
    q: impl Fn(&T) -> &[u8; ELEMENT_LEN],
) -> Result<Vec<T>, (usize, Error)> {
    let mut decoded = Vec::with_capacity(vouchers.len());
    let mut failed = None;
    for (i, v) in vouchers.iter().enumerate() {
        match decode(v.as_ref(), QCheck::Batched) {
            Ok(t) => decoded.push(t),
            Err(e) => {
                failed = Some((i, e));
                break;
            }
        }
    }
    // Every voucher before the first that failed otherwise: does its Q decode?
    let qs: Vec<[u8; ELEMENT_LEN]> = decoded.iter().map(|t| *q(t)).collect();
    if let Some(i) = blindmatch_batchmul::decodes(&qs).iter().position(|ok| !ok) {
        return Err((i, Error::InvalidPoint("voucher Q")));
    }
    match failed {
        Some(f) => Err(f),
        None => Ok(decoded),
    }
}

/// The per-voucher secrets: β, γ and the payload key. Zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct VoucherSecrets {
    beta: Scalar,
    pub(crate) gamma: Scalar,
    pub(crate) payload_key: [u8; KEY_LEN],
}

impl VoucherSecrets {
    /// Fresh secrets: β and γ uniform and non-zero, K uniform.
    pub fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        let mut nonzero = || loop {
            let s = Scalar::random(rng);
            if s != Scalar::ZERO {
                break s;
            }
        };
        let (beta, gamma) = (nonzero(), nonzero());
        let mut payload_key = [0u8; KEY_LEN];
        rng.fill_bytes(&mut payload_key);
        VoucherSecrets {
            beta,
            gamma,
            payload_key,
        }
    }

    /// Fixed secrets, for test vectors only.
    ///
    /// # Errors
    /// [`Error::InvalidScalar`] or [`Error::ZeroScalar`] for β or γ.
    #[cfg(any(test, feature = "test-vectors"))]
    pub fn from_bytes(
        beta: [u8; 32],
        gamma: [u8; 32],
        payload_key: [u8; KEY_LEN],
    ) -> Result<Self, Error> {
        Ok(VoucherSecrets {
            beta: crate::encoding::decode_scalar(beta, "beta")?,
            gamma: crate::encoding::decode_scalar(gamma, "gamma")?,
            payload_key,
        })
    }
}

/// Every intermediate of one voucher, for the interop vectors.
#[derive(Default)]
#[cfg_attr(not(feature = "test-vectors"), allow(dead_code))]
pub(crate) struct VoucherTrace {
    pub(crate) h: [u8; 32],
    pub(crate) positions: Vec<u32>,
    pub(crate) slots: Vec<[u8; 32]>,
    pub(crate) shared: Vec<[u8; 32]>,
    pub(crate) wrap_keys: Vec<[u8; 32]>,
    pub(crate) payload_plain: Vec<u8>,
}

/// A table ready for voucher creation: every slot validated, and L
/// precomputed for fixed-base multiplication.
#[derive(Clone)]
pub struct ClientTable {
    table: BlindedTable,
    l_table: RistrettoBasepointTable,
}

impl ClientTable {
    /// Validates every slot of a table and prepares it for vouchers.
    ///
    /// All slots are checked up front, not lazily: if a bad slot were only
    /// found when an item landed on it, whether a client submits would depend
    /// on its item, and a malicious server could learn that.
    ///
    /// # Errors
    /// [`Error::InvalidSlot`] naming the first slot that is not a canonical,
    /// non-identity element.
    pub fn new(table: BlindedTable) -> Result<Self, Error> {
        const CHUNK: usize = 4096;
        let slots = table.slots();
        let chunks: Vec<(usize, &[u8])> = slots.chunks(CHUNK * SLOT_LEN).enumerate().collect();
        let bad = crate::map_slice(&chunks, |&(c, bytes)| {
            bytes.chunks_exact(SLOT_LEN).enumerate().find_map(|(i, s)| {
                let s: [u8; SLOT_LEN] = s.try_into().unwrap_or([0; SLOT_LEN]);
                decode_element(&s, "table slot")
                    .err()
                    .map(|_| u32::try_from(c * CHUNK + i).unwrap_or(u32::MAX))
            })
        });
        if let Some(slot) = bad.into_iter().flatten().next() {
            return Err(Error::InvalidSlot(slot));
        }
        let l_table = RistrettoBasepointTable::create(table.header().public_key.point());
        Ok(ClientTable { table, l_table })
    }

    /// The next version of this table: `delta` applied and checked against
    /// the new version's (verified) manifest, and only the changed slots
    /// validated, since every other slot was validated when this one was
    /// made (SPEC Section 13.4). A daily delta of a million-entry table is
    /// validated in microseconds instead of the seconds [`ClientTable::new`]
    /// takes.
    ///
    /// # Errors
    /// As [`TableDelta::apply`], or [`Error::InvalidSlot`] for a changed slot
    /// that is not a valid element.
    ///
    /// [`TableDelta::apply`]: crate::TableDelta::apply
    pub fn updated(
        &self,
        delta: &crate::TableDelta,
        manifest: &crate::manifest::Manifest,
    ) -> Result<Self, Error> {
        let table = delta.apply(&self.table, manifest)?;
        for &i in &delta.indices {
            table.slot_element(i)?;
        }
        // Same header, so the same public key L.
        Ok(ClientTable {
            table,
            l_table: self.l_table.clone(),
        })
    }

    /// The table.
    pub fn table(&self) -> &BlindedTable {
        &self.table
    }

    /// Makes a voucher for `item` carrying `associated_data`.
    ///
    /// # Errors
    /// [`Error::AssociatedDataTooLong`] beyond [`MAX_AD_LEN`] bytes.
    pub fn create_voucher<R: CryptoRng + ?Sized>(
        &self,
        item: &Item,
        associated_data: &[u8],
        rng: &mut R,
    ) -> Result<Voucher, Error> {
        loop {
            let secrets = VoucherSecrets::random(rng);
            match self.seal(item, associated_data, &secrets, None) {
                // Q = identity has probability ~2^-252; draw again.
                Err(Error::IdentityPoint(_)) => continue,
                other => return other,
            }
        }
    }

    /// Makes a voucher with fixed secrets. Only for test vectors: a voucher
    /// made this way is predictable and linkable.
    ///
    /// # Errors
    /// As [`ClientTable::create_voucher`], and [`Error::IdentityPoint`] if
    /// the secrets make Q the identity.
    #[cfg(any(test, feature = "test-vectors"))]
    pub fn create_voucher_with(
        &self,
        item: &Item,
        associated_data: &[u8],
        secrets: &VoucherSecrets,
    ) -> Result<Voucher, Error> {
        self.seal(item, associated_data, secrets, None)
    }

    pub(crate) fn seal(
        &self,
        item: &Item,
        associated_data: &[u8],
        secrets: &VoucherSecrets,
        mut trace: Option<&mut VoucherTrace>,
    ) -> Result<Voucher, Error> {
        if associated_data.len() > MAX_AD_LEN {
            return Err(Error::AssociatedDataTooLong {
                len: associated_data.len(),
                max: MAX_AD_LEN,
            });
        }
        let (q, boxes, h) = self.outer(item, secrets, trace.as_deref_mut())?;
        let table_id = &self.table.id().0;
        let mut payload = Box::new([0u8; PAYLOAD_CT_LEN]);
        encode_payload(item, associated_data, &mut payload[..PAYLOAD_LEN]);
        if let Some(t) = trace {
            t.h = h;
            t.payload_plain = payload[..PAYLOAD_LEN].to_vec();
        }
        let mut voucher = Voucher { q, boxes, payload };
        let aad = voucher.payload_aad(table_id);
        let tag = seal(
            &secrets.payload_key,
            &aad,
            &mut voucher.payload[..PAYLOAD_LEN],
        );
        voucher.payload[PAYLOAD_LEN..].copy_from_slice(&tag);
        Ok(voucher)
    }

    /// The outer layer of a voucher for `item` (SPEC Section 6, steps 2 to
    /// 6): Q's encoding, the k boxes wrapping the payload key, and the
    /// encoding of H(y). Shared by both protocol versions.
    #[allow(clippy::type_complexity)]
    pub(crate) fn outer(
        &self,
        item: &Item,
        secrets: &VoucherSecrets,
        mut trace: Option<&mut VoucherTrace>,
    ) -> Result<([u8; ELEMENT_LEN], Vec<PositionBox>, [u8; 32]), Error> {
        let header = self.table.header();
        let table_id = &self.table.id().0;
        let positions: Positions = header.positions(item);
        let h = hash_item(item);

        // Work with β/2 and γ/2 so that one double_and_compress_batch call
        // yields the encodings of Q and every S_j with a single inversion.
        let half = Scalar::from(2u8).invert();
        let beta_half = Zeroizing::new(secrets.beta * half);
        let gamma_half = Zeroizing::new(secrets.gamma * half);
        let gamma_l = &self.l_table * &*gamma_half;
        let mut halves = Vec::with_capacity(1 + positions.as_slice().len());
        halves.push(*beta_half * h + &*gamma_half * RISTRETTO_BASEPOINT_TABLE);
        for &w in positions.as_slice() {
            halves.push(*beta_half * self.table.slot_element(w)? + gamma_l);
        }
        let encoded = RistrettoPoint::double_and_compress_batch(&halves);
        halves.zeroize();
        let q = encoded[0].to_bytes();
        if q == [0u8; ELEMENT_LEN] {
            return Err(Error::IdentityPoint("voucher Q"));
        }

        let mut boxes = Vec::with_capacity(encoded.len() - 1);
        for (j, s) in encoded[1..].iter().enumerate() {
            let j8 = u8::try_from(j).unwrap_or(u8::MAX);
            let keys = SharedSecret::extract(s.as_bytes()).expand(table_id, &q, j8);
            let mut wrapped = [0u8; KEY_LEN + TAG_LEN];
            wrapped[..KEY_LEN].copy_from_slice(&secrets.payload_key);
            let tag = seal(&keys.wrap_key, &[], &mut wrapped[..KEY_LEN]);
            wrapped[KEY_LEN..].copy_from_slice(&tag);
            boxes.push(PositionBox {
                confirm: keys.confirm,
                wrapped,
            });
            if let Some(t) = trace.as_deref_mut() {
                t.positions.push(positions.as_slice()[j]);
                t.slots.push(*self.table.slot(positions.as_slice()[j]));
                t.shared.push(s.to_bytes());
                t.wrap_keys.push(*keys.wrap_key);
            }
        }
        Ok((q, boxes, h.compress().to_bytes()))
    }

    /// The precomputed table of L, for fixed-base multiplications by L.
    pub(crate) fn l_table(&self) -> &RistrettoBasepointTable {
        &self.l_table
    }
}

/// `type || len || value || 0* (to 64) || I2OSP(ad_len, 2) || ad || 0* (to 1024)`.
pub(crate) fn encode_payload(item: &Item, ad: &[u8], out: &mut [u8]) {
    out[0] = item.item_type().code();
    out[1] = u8::try_from(item.value().len()).unwrap_or(0);
    out[2..2 + item.value().len()].copy_from_slice(item.value());
    let ad_at = 2 + MAX_ITEM_LEN;
    out[ad_at..ad_at + 2].copy_from_slice(&u16::try_from(ad.len()).unwrap_or(0).to_be_bytes());
    out[ad_at + 2..ad_at + 2 + ad.len()].copy_from_slice(ad);
}

/// [`decode_payload`] for the fuzz targets: a forged voucher (Q = γ·G, SPEC
/// Section 8) lets a hostile client make the server decrypt any payload it
/// likes, so this parser faces arbitrary bytes.
///
/// # Errors
/// As the payload parse of SPEC Section 7, step 7.
#[cfg(feature = "fuzzing")]
pub fn fuzz_decode_payload(p: &[u8; PAYLOAD_LEN]) -> Result<(Item, Vec<u8>), Error> {
    decode_payload(p)
}

/// Parses a payload plaintext strictly: known type, valid length, all padding
/// zero. Only a malicious client can make a confirmed payload fail this.
///
/// The server runs it on every voucher, also on the garbage a non-matching
/// one decrypts to, so it does the same work whatever the bytes: every
/// padding byte is read, the item and the associated data are always
/// copied, and which check failed is decided at the end.
pub(crate) fn decode_payload(p: &[u8]) -> Result<(Item, Vec<u8>), Error> {
    let code = ItemType::from_code(p[0]);
    let known = code.is_ok();
    let item_type = code.unwrap_or(ItemType::Bytes);
    let len = usize::from(p[1]);
    let value_len = len.min(MAX_ITEM_LEN);
    let item = Item::new(item_type, &p[2..2 + value_len]);
    let ad_at = 2 + MAX_ITEM_LEN;
    let ad_len = usize::from(u16::from_be_bytes([p[ad_at], p[ad_at + 1]]));
    let ad_field = &p[ad_at + 2..ad_at + 2 + MAX_AD_LEN];
    // Every padding byte, OR-ed in under a mask rather than sliced off, so
    // that the loop's length does not depend on the lengths read.
    let mut padding = 0u8;
    for (i, &b) in p[2..ad_at].iter().enumerate() {
        padding |= b & 0u8.wrapping_sub(u8::from(i >= len));
    }
    for (i, &b) in ad_field.iter().enumerate() {
        padding |= b & 0u8.wrapping_sub(u8::from(i >= ad_len));
    }
    let mut ad = ad_field.to_vec();
    ad.truncate(ad_len);
    if !known {
        return Err(Error::MalformedPayload("unknown item type"));
    }
    let Ok(item) = item else {
        return Err(Error::MalformedPayload("item length"));
    };
    if len > MAX_ITEM_LEN {
        return Err(Error::MalformedPayload("item length"));
    }
    if ad_len > MAX_AD_LEN {
        return Err(Error::MalformedPayload("associated data length"));
    }
    if padding != 0 {
        return Err(Error::MalformedPayload("non-zero padding"));
    }
    Ok((item, ad))
}
