//! Threshold mode (SPEC Section 14): the server learns nothing about an
//! account's matches until it holds t of them.
//!
//! In threshold mode the outer layer of a voucher (Sections 6 and 7: one
//! scalar multiplication per voucher on the server, k boxes) does not
//! release the item and the associated data. It releases a [`Share`]:
//!
//! ```text
//! x      x-coordinate, PRF of the voucher id                   (8 bytes)
//! share  P(x), P the account's polynomial of degree t − 1      (32 bytes)
//! tag    (D_1(x), ..., D_s(x)), the detection tag               (8·s bytes)
//! inner  the item and associated data, encrypted under a key
//!        derived from the account key P(0)                      (1,124 bytes)
//! ```
//!
//! Below t real shares an account's shares and tags are uniformly random and
//! its inner ciphertexts are under a key the server does not have. With t
//! real shares among at most s synthetic ones, [`reveal`] finds the real
//! ones (`detect`), interpolates P (`shamir`), derives the account key
//! and opens every real inner ciphertext. Synthetic vouchers (the account's
//! secret rate) always open the outer layer and carry a pseudo-random
//! share, tag and inner ciphertext, so below the threshold the server
//! cannot tell how many of an account's candidates are real.
//!
//! - [`account`]: the account secret and the keys derived from it.
//! - [`voucher`]: the version-2 voucher around a share, made by
//!   [`ClientTable::create_threshold_voucher`](crate::ClientTable::create_threshold_voucher)
//!   and opened by [`Matcher::open_threshold_batch`](crate::Matcher::open_threshold_batch).
//! - [`field`]: the detection field, integers modulo 2^61 − 1.
//! - `shamir`, `detect`: interpolation, and which candidates are real.

pub mod account;
mod detect;
pub mod field;
mod shamir;
#[cfg(feature = "test-vectors")]
pub mod vectors;
pub mod voucher;

use curve25519_dalek::scalar::Scalar;
use hkdf::Hkdf;
use rand_core::CryptoRng;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::encoding::SCALAR_LEN;
use crate::error::Error;
use crate::item::Item;
use crate::kdf::{KEY_LEN, TAG_LEN, open_balanced, seal};
use crate::voucher::{MAX_AD_LEN, PAYLOAD_LEN, decode_payload, encode_payload};
pub use account::{AccountKeys, AccountSecret, SyntheticRate};
use field::{DetectionField, Fp61};
pub use voucher::{
    Candidate, THRESHOLD_VERSION, ThresholdVoucher, Upload, VoucherAccount, placement_weights,
    submission_digest, threshold_voucher_len,
};

/// Length of a voucher id: the platform's name for one upload (a photo's
/// asset id, say). The same id always gives the same x, share and tag, so a
/// voucher made again for one id counts once.
pub const VOUCHER_ID_LEN: usize = 16;
pub use crate::manifest::{MAX_SYNTHETIC_BOUND, MAX_THRESHOLD};
/// Length of the inner ciphertext's nonce.
pub const INNER_NONCE_LEN: usize = 16;
/// Length of the inner layer: `nonce (16) || AES-256-GCM(payload) (1092 + 16)`.
pub const INNER_LEN: usize = INNER_NONCE_LEN + PAYLOAD_LEN + TAG_LEN;
/// HKDF salt of the inner key.
pub const INNER_KEY_SALT: &[u8] = b"blindmatch-v2/inner-key";

/// The length of an encoded [`Share`] for `s` tag elements:
/// `8 + 32 + 8·s + 1124`.
pub const fn share_len(s: u16) -> usize {
    8 + SCALAR_LEN + 8 * s as usize + INNER_LEN
}

/// What the outer layer of a threshold voucher releases on opening.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Share {
    x: u64,
    share: [u8; SCALAR_LEN],
    tag: Vec<u64>,
    inner: Vec<u8>,
}

impl core::fmt::Debug for Share {
    // A share is key material: show its shape only.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Share")
            .field("tag_len", &self.tag.len())
            .finish_non_exhaustive()
    }
}

impl Share {
    /// The share of a real voucher for `item`: P(x), the real tag, and the
    /// item and `associated_data` under the account key.
    ///
    /// # Errors
    /// [`Error::AssociatedDataTooLong`] beyond [`MAX_AD_LEN`] bytes.
    pub fn real<R: CryptoRng + ?Sized>(
        keys: &AccountKeys,
        voucher_id: &[u8; VOUCHER_ID_LEN],
        item: &Item,
        associated_data: &[u8],
        rng: &mut R,
    ) -> Result<Self, Error> {
        let mut nonce = [0u8; INNER_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        Self::real_with(keys, voucher_id, item, associated_data, nonce)
    }

    pub(crate) fn real_with(
        keys: &AccountKeys,
        voucher_id: &[u8; VOUCHER_ID_LEN],
        item: &Item,
        associated_data: &[u8],
        nonce: [u8; INNER_NONCE_LEN],
    ) -> Result<Self, Error> {
        if associated_data.len() > MAX_AD_LEN {
            return Err(Error::AssociatedDataTooLong {
                len: associated_data.len(),
                max: MAX_AD_LEN,
            });
        }
        let x = keys.choose(voucher_id).x;
        let mut inner = vec![0u8; INNER_LEN];
        inner[..INNER_NONCE_LEN].copy_from_slice(&nonce);
        let body = &mut inner[INNER_NONCE_LEN..INNER_NONCE_LEN + PAYLOAD_LEN];
        encode_payload(item, associated_data, body);
        let key = inner_key(&keys.key_scalar(), &nonce);
        let tag = seal(&key, &x.to_be_bytes(), body);
        inner[INNER_NONCE_LEN + PAYLOAD_LEN..].copy_from_slice(&tag);
        Ok(Share {
            x,
            share: keys.share(x).to_bytes(),
            tag: keys.tag(x).iter().map(|e| e.value()).collect(),
            inner,
        })
    }

    /// The share of a synthetic voucher: the x of `voucher_id`, its
    /// pseudo-random share and tag, and a random inner layer.
    pub fn synthetic<R: CryptoRng + ?Sized>(
        keys: &AccountKeys,
        voucher_id: &[u8; VOUCHER_ID_LEN],
        rng: &mut R,
    ) -> Self {
        let mut inner = vec![0u8; INNER_LEN];
        rng.fill_bytes(&mut inner);
        Self::synthetic_with(keys, voucher_id, inner)
    }

    pub(crate) fn synthetic_with(
        keys: &AccountKeys,
        voucher_id: &[u8; VOUCHER_ID_LEN],
        inner: Vec<u8>,
    ) -> Self {
        let x = keys.choose(voucher_id).x;
        let (share, tag) = keys.synthetic(voucher_id);
        Share {
            x,
            share: share.to_bytes(),
            tag: tag.iter().map(|e| e.value()).collect(),
            inner,
        }
    }

    /// The x-coordinate: what the server dedups an account's shares by.
    pub fn x(&self) -> u64 {
        self.x
    }

    /// The number of tag elements.
    pub fn tag_len(&self) -> usize {
        self.tag.len()
    }

    /// `I2OSP(x, 8) || ScalarEncode(share) || I2OSP(tag_j, 8)... || inner`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + SCALAR_LEN + 8 * self.tag.len() + INNER_LEN);
        out.extend_from_slice(&self.x.to_be_bytes());
        out.extend_from_slice(&self.share);
        for e in &self.tag {
            out.extend_from_slice(&e.to_be_bytes());
        }
        out.extend_from_slice(&self.inner);
        out
    }

    /// Decodes a share with `s` tag elements.
    ///
    /// # Errors
    /// [`Error::Length`], or [`Error::MalformedPayload`] for an x outside
    /// [1, p − 1], a share that is not a canonical scalar, or a tag element
    /// not below p. Only a malicious client produces these.
    pub fn decode(bytes: &[u8], s: u16) -> Result<Self, Error> {
        if bytes.len() != share_len(s) {
            return Err(Error::Length {
                what: "share",
                expected: share_len(s),
                got: bytes.len(),
            });
        }
        let be = |b: &[u8]| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_be_bytes(a)
        };
        let x = be(&bytes[..8]);
        if x == 0 || x >= field::DETECTION_PRIME {
            return Err(Error::MalformedPayload("share x-coordinate"));
        }
        let mut share = [0u8; SCALAR_LEN];
        share.copy_from_slice(&bytes[8..8 + SCALAR_LEN]);
        if bool::from(Scalar::from_canonical_bytes(share).is_none()) {
            return Err(Error::MalformedPayload("share is not a canonical scalar"));
        }
        let tag_at = 8 + SCALAR_LEN;
        let tag: Vec<u64> = bytes[tag_at..tag_at + 8 * usize::from(s)]
            .chunks_exact(8)
            .map(be)
            .collect();
        if tag.iter().any(|&e| e >= field::DETECTION_PRIME) {
            return Err(Error::MalformedPayload("tag element not below 2^61 - 1"));
        }
        Ok(Share {
            x,
            share,
            tag,
            inner: bytes[tag_at + 8 * usize::from(s)..].to_vec(),
        })
    }

    fn share_scalar(&self) -> Scalar {
        // Canonical: checked by `decode`, or made by `to_bytes`.
        Scalar::from_canonical_bytes(self.share).unwrap_or(Scalar::ZERO)
    }
}

/// The AEAD key of one inner ciphertext:
/// `HKDF-Expand(HKDF-Extract(INNER_KEY_SALT, ScalarEncode(a_0)), nonce, 32)`.
/// Each nonce is fresh, so each key encrypts one message (zero AEAD nonce).
pub(crate) fn inner_key(a0: &Scalar, nonce: &[u8; INNER_NONCE_LEN]) -> Zeroizing<[u8; KEY_LEN]> {
    let ikm = Zeroizing::new(a0.to_bytes());
    let h = Hkdf::<Sha256>::new(Some(INNER_KEY_SALT), &ikm[..]);
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    if h.expand(nonce, &mut key[..]).is_err() {
        unreachable!("32 bytes is within HKDF-SHA256's limit");
    }
    key
}

/// One real share, opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// The inner layer opened: the item and the associated data. The
    /// server still checks the item against its list (SPEC 14.6, step 8).
    Item {
        /// The share's index in the slice given to [`reveal`].
        index: usize,
        /// The item the client sealed.
        item: Item,
        /// Its associated data.
        associated_data: Vec<u8>,
    },
    /// The share is on the account's polynomial but its inner layer does
    /// not open or parse: only the account's own client can make this.
    Malformed {
        /// The share's index.
        index: usize,
        /// What is wrong.
        error: Error,
    },
}

/// The outcome of [`reveal`] for one account's shares.
#[derive(Debug)]
pub enum Outcome {
    /// Fewer than t real shares were found: nothing is learned.
    Below,
    /// t or more shares take part in a dependency but do not lie on one
    /// polynomial of degree t − 1: more than s synthetic shares among the
    /// t + s examined, shares of another account or another threshold, a
    /// client that does not follow the protocol, or the probability-2^-60
    /// failure of SPEC 14.5. Nothing is opened.
    Inconsistent,
    /// The threshold is crossed.
    Revealed(Revealed),
}

/// An account whose threshold is crossed.
#[derive(Debug)]
pub struct Revealed {
    /// Every real share, opened, in the order given.
    pub real: Vec<Opened>,
    /// The indices of the shares that are not on the polynomial: synthetic
    /// (or forged).
    pub synthetic: Vec<usize>,
}

/// Runs detection and, at t real shares, reconstruction and decryption over
/// one account's shares (SPEC Section 14.6), given in the order the server
/// received them.
///
/// Shares with an x seen before count once. Detection examines at most
/// t + s distinct shares, the most recent (a matrix of t − 1 + s rows has a
/// kernel made of real columns only while it has at most s synthetic ones,
/// and t real plus s synthetic is t + s columns); every share is then
/// classified against the interpolated polynomial.
///
/// # Errors
/// [`Error::InvalidParameter`] for t outside 1..=256.
pub fn reveal(t: u16, shares: &[Share]) -> Result<Outcome, Error> {
    crate::manifest::check_parameters(t, 0)?;
    let t = usize::from(t);
    let mut distinct: Vec<usize> = Vec::with_capacity(shares.len());
    {
        let mut seen = std::collections::HashSet::with_capacity(shares.len());
        for (i, s) in shares.iter().enumerate() {
            if seen.insert(s.x) {
                distinct.push(i);
            }
        }
    }
    if distinct.len() < t {
        return Ok(Outcome::Below);
    }
    let m = distinct
        .iter()
        .map(|&i| shares[i].tag.len())
        .min()
        .unwrap_or(0);
    let d = t - 1 + m;
    let window = &distinct[distinct.len().saturating_sub(t + m)..];
    let columns: Vec<Vec<Fp61>> = window
        .iter()
        .map(|&i| {
            let s = &shares[i];
            let tag: Vec<Fp61> = s.tag[..m].iter().map(|&e| Fp61::reduce(e)).collect();
            detect::column(t, Fp61::reduce(s.x), &tag)
        })
        .collect();
    let support = detect::kernel_support(d, &columns);
    let found: Vec<usize> = window
        .iter()
        .zip(&support)
        .filter_map(|(&i, &real)| real.then_some(i))
        .collect();
    if found.len() < t {
        return Ok(Outcome::Below);
    }
    let points: Vec<(u64, Scalar)> = found[..t]
        .iter()
        .map(|&i| (shares[i].x, shares[i].share_scalar()))
        .collect();
    let Some(poly) = shamir::Interpolated::new(&points) else {
        return Ok(Outcome::Inconsistent);
    };
    let on_poly = |s: &Share| poly.at(Scalar::from(s.x)) == s.share_scalar();
    if !found.iter().all(|&i| on_poly(&shares[i])) {
        return Ok(Outcome::Inconsistent);
    }
    let a0 = Zeroizing::new(poly.at_zero());
    let mut real = Vec::new();
    let mut synthetic = Vec::new();
    for (index, s) in shares.iter().enumerate() {
        if on_poly(s) {
            real.push(open_inner(&a0, index, s));
        } else {
            synthetic.push(index);
        }
    }
    Ok(Outcome::Revealed(Revealed { real, synthetic }))
}

fn open_inner(a0: &Scalar, index: usize, s: &Share) -> Opened {
    let mut nonce = [0u8; INNER_NONCE_LEN];
    nonce.copy_from_slice(&s.inner[..INNER_NONCE_LEN]);
    let key = inner_key(a0, &nonce);
    let mut body = Zeroizing::new(s.inner[INNER_NONCE_LEN..INNER_NONCE_LEN + PAYLOAD_LEN].to_vec());
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&s.inner[INNER_NONCE_LEN + PAYLOAD_LEN..]);
    if !bool::from(open_balanced(&key, &s.x.to_be_bytes(), &mut body, &tag)) {
        return Opened::Malformed {
            index,
            error: Error::MalformedPayload("inner layer does not open under the account key"),
        };
    }
    match decode_payload(&body) {
        Ok((item, associated_data)) => Opened::Item {
            index,
            item,
            associated_data,
        },
        Err(error) => Opened::Malformed { index, error },
    }
}

#[cfg(test)]
mod tests;
