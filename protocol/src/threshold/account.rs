//! The account secret (SPEC Section 14.1): what one account's devices share,
//! and everything derived from it.
//!
//! The file holds a 32-byte seed, the synthetic rate and the account id it
//! belongs to; every key is derived from the seed with HKDF-SHA256. Deriving
//! rather than storing the polynomial keeps the format fixed whatever the
//! threshold: devices that share one file agree on the polynomial for any t
//! a manifest announces, and the polynomials for two thresholds are
//! independent, so shares made under t = 10 never combine with shares made
//! under t = 30.

use curve25519_dalek::scalar::Scalar;
use hkdf::Hkdf;
use rand_core::CryptoRng;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::VOUCHER_ID_LEN;
use super::field::{DetectionField, Fp61};
use crate::encoding::check_magic_version;
use crate::error::Error;
use crate::manifest::check_parameters;

/// Most bytes of an account id.
pub const MAX_ACCOUNT_ID_LEN: usize = 64;
/// Length of the account file: `"BMAS" || 0x01 || id_len || id padded to 64
/// || seed (32) || rate (4)`.
pub const ACCOUNT_FILE_LEN: usize = 4 + 1 + 1 + MAX_ACCOUNT_ID_LEN + 32 + 4;
const MAGIC: &[u8; 4] = b"BMAS";
const VERSION: u8 = 1;

/// HKDF salt of the account key schedule.
pub(crate) const ACCOUNT_SALT: &[u8] = b"blindmatch-v2/account";
const POLY_LABEL: &[u8] = b"blindmatch-v2/poly";
const DETECT_LABEL: &[u8] = b"blindmatch-v2/detect";
const VOUCHER_LABEL: &[u8] = b"blindmatch-v2/voucher";
const SYNTHETIC_LABEL: &[u8] = b"blindmatch-v2/synthetic";

/// A synthetic rate: the probability that a voucher is synthetic is
/// `rate / 2^32`. Kept secret with the account (SECURITY.md 8).
#[derive(Clone, Copy, PartialEq, Eq, Default, Zeroize)]
pub struct SyntheticRate(pub u32);

impl SyntheticRate {
    /// No synthetic vouchers.
    pub const NONE: SyntheticRate = SyntheticRate(0);

    /// The rate closest to probability `p` (clamped to [0, 1 − 2^-32]).
    pub fn from_probability(p: f64) -> Self {
        let scaled = (p.clamp(0.0, 1.0) * 4_294_967_296.0).round();
        // In [0, 2^32]; the top value saturates to 2^32 − 1.
        SyntheticRate(if scaled >= 4_294_967_295.0 {
            u32::MAX
        } else {
            // Non-negative and below 2^32 − 1 after the clamp.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            {
                scaled as u32
            }
        })
    }

    /// The rate of probability `p`, which must be a number from 0 to 1:
    /// what an app or a binding passes on from a user or a setting.
    ///
    /// # Errors
    /// [`Error::InvalidSyntheticRate`] for NaN or a number outside [0, 1].
    pub fn try_from_probability(p: f64) -> Result<Self, Error> {
        if (0.0..=1.0).contains(&p) {
            Ok(Self::from_probability(p))
        } else {
            Err(Error::InvalidSyntheticRate)
        }
    }

    /// The probability this rate stands for.
    pub fn probability(self) -> f64 {
        f64::from(self.0) / 4_294_967_296.0
    }
}

impl core::fmt::Debug for SyntheticRate {
    // The rate is secret: the server must not learn it.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SyntheticRate(..)")
    }
}

/// One account's secret, as its devices store and share it. Zeroized on
/// drop; `Debug` shows the account id only.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AccountSecret {
    account_id: Vec<u8>,
    seed: [u8; 32],
    rate: SyntheticRate,
}

impl core::fmt::Debug for AccountSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AccountSecret")
            .field("account_id_len", &self.account_id.len())
            .finish_non_exhaustive()
    }
}

impl AccountSecret {
    /// A new secret for `account_id` (1 to 64 bytes, chosen by the platform)
    /// with a fresh random seed.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an empty or too long account id.
    pub fn generate<R: CryptoRng + ?Sized>(
        account_id: &[u8],
        rate: SyntheticRate,
        rng: &mut R,
    ) -> Result<Self, Error> {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        Self::from_parts(account_id, seed, rate)
    }

    /// A secret from its parts (also the test vectors' entry point).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for an empty or too long account id.
    pub fn from_parts(
        account_id: &[u8],
        seed: [u8; 32],
        rate: SyntheticRate,
    ) -> Result<Self, Error> {
        check_account_id(account_id)?;
        Ok(AccountSecret {
            account_id: account_id.to_vec(),
            seed,
            rate,
        })
    }

    /// The account id this secret belongs to.
    pub fn account_id(&self) -> &[u8] {
        &self.account_id
    }

    /// The synthetic rate.
    pub fn rate(&self) -> SyntheticRate {
        self.rate
    }

    /// The file encoding, [`ACCOUNT_FILE_LEN`] bytes. Store it readable by
    /// its owner only.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(ACCOUNT_FILE_LEN));
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        // 1..=64, checked at construction.
        out.push(u8::try_from(self.account_id.len()).unwrap_or(0));
        out.extend_from_slice(&self.account_id);
        out.resize(6 + MAX_ACCOUNT_ID_LEN, 0);
        out.extend_from_slice(&self.seed);
        out.extend_from_slice(&self.rate.0.to_be_bytes());
        out
    }

    /// Decodes an account file.
    ///
    /// # Errors
    /// [`Error::Length`], [`Error::BadMagic`], [`Error::UnsupportedVersion`],
    /// [`Error::InvalidParameter`] for an id length outside 1..=64, or
    /// [`Error::MalformedAccount`] for non-zero padding after the id.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() != ACCOUNT_FILE_LEN {
            return Err(Error::Length {
                what: "account file",
                expected: ACCOUNT_FILE_LEN,
                got: bytes.len(),
            });
        }
        check_magic_version(bytes, MAGIC, VERSION, "account file")?;
        let len = usize::from(bytes[5]);
        if len == 0 || len > MAX_ACCOUNT_ID_LEN {
            return Err(id_error(len));
        }
        if bytes[6 + len..6 + MAX_ACCOUNT_ID_LEN]
            .iter()
            .any(|&b| b != 0)
        {
            return Err(Error::MalformedAccount(
                "non-zero padding after the account id",
            ));
        }
        let at = 6 + MAX_ACCOUNT_ID_LEN;
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&bytes[at..at + 32]);
        let rate = SyntheticRate(u32::from_be_bytes([
            bytes[at + 32],
            bytes[at + 33],
            bytes[at + 34],
            bytes[at + 35],
        ]));
        let secret = AccountSecret::from_parts(&bytes[6..6 + len], seed, rate);
        seed.zeroize();
        secret
    }

    /// The keys for threshold `t` and `s` tag elements (a manifest's
    /// parameters), derived once and used for every voucher under them.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for t outside 1..=256 or s above 256.
    pub fn keys(&self, t: u16, s: u16) -> Result<AccountKeys, Error> {
        check_parameters(t, s)?;
        let (prk_bytes, prk) = Hkdf::<Sha256>::extract(Some(ACCOUNT_SALT), &self.seed);
        let mut stored = Zeroizing::new([0u8; 32]);
        stored.copy_from_slice(&prk_bytes);
        let tb = t.to_be_bytes();
        let coefficients = (0..t)
            .map(|i| {
                let mut wide = Zeroizing::new([0u8; 64]);
                expand(&prk, &[POLY_LABEL, &tb, &i.to_be_bytes()], &mut wide[..]);
                Scalar::from_bytes_mod_order_wide(&wide)
            })
            .collect();
        let degree = usize::from(t) - 1; // coefficients per detection polynomial
        let detection = (1..=s)
            .map(|j| {
                let mut bytes = Zeroizing::new(vec![0u8; 8 * degree]);
                expand(&prk, &[DETECT_LABEL, &tb, &j.to_be_bytes()], &mut bytes[..]);
                bytes
                    .chunks_exact(8)
                    .map(|c| Fp61::from_be_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect()
            })
            .collect();
        Ok(AccountKeys {
            prk: stored,
            t,
            s,
            rate: self.rate,
            coefficients,
            detection,
        })
    }
}

fn id_error(len: usize) -> Error {
    Error::InvalidParameter {
        name: "account id length",
        value: len as u64,
        allowed: "1 to 64 bytes",
    }
}

fn check_account_id(id: &[u8]) -> Result<(), Error> {
    if id.is_empty() || id.len() > MAX_ACCOUNT_ID_LEN {
        return Err(id_error(id.len()));
    }
    Ok(())
}

fn expand(prk: &Hkdf<Sha256>, info: &[&[u8]], out: &mut [u8]) {
    if prk.expand_multi_info(info, out).is_err() {
        unreachable!("at most 8 + 64 + 8·256 bytes, within HKDF-SHA256's 8160-byte limit");
    }
}

/// What one voucher id decides (SPEC Section 14.4): its x-coordinate and
/// whether the voucher is synthetic.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct VoucherChoice {
    pub(crate) x: u64,
    pub(crate) synthetic: bool,
}

/// An account's keys for one (t, s). Zeroized on drop.
#[derive(Clone)]
pub struct AccountKeys {
    /// HKDF-Extract(ACCOUNT_SALT, seed).
    prk: Zeroizing<[u8; 32]>,
    t: u16,
    s: u16,
    rate: SyntheticRate,
    /// a_0 .. a_{t-1}: P(x) = Σ a_i x^i, and a_0 is the account key.
    coefficients: Vec<Scalar>,
    /// d_{j,0} .. d_{j,t-2} for j = 1 .. s.
    detection: Vec<Vec<Fp61>>,
}

impl Drop for AccountKeys {
    fn drop(&mut self) {
        self.coefficients.zeroize();
        self.detection.iter_mut().for_each(|d| d.zeroize());
        self.rate.zeroize();
    }
}

impl core::fmt::Debug for AccountKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AccountKeys")
            .field("t", &self.t)
            .field("s", &self.s)
            .finish_non_exhaustive()
    }
}

impl AccountKeys {
    /// The threshold.
    pub fn threshold(&self) -> u16 {
        self.t
    }

    /// The number of tag elements (the manifest's synthetic bound).
    pub fn synthetic_bound(&self) -> u16 {
        self.s
    }

    fn hkdf(&self) -> Hkdf<Sha256> {
        match Hkdf::<Sha256>::from_prk(&self.prk[..]) {
            Ok(h) => h,
            Err(_) => unreachable!("a 32-byte PRK is HashLen"),
        }
    }

    /// Whether the voucher of `voucher_id` is synthetic (SPEC 14.4): the
    /// client's own secret, for an app or a demo that wants to show it. It
    /// must never leave the device.
    pub fn is_synthetic(&self, voucher_id: &[u8; VOUCHER_ID_LEN]) -> bool {
        self.choose(voucher_id).synthetic
    }

    /// x and the synthetic coin of `voucher_id`.
    pub(crate) fn choose(&self, voucher_id: &[u8; VOUCHER_ID_LEN]) -> VoucherChoice {
        let mut r = Zeroizing::new([0u8; 12]);
        expand(&self.hkdf(), &[VOUCHER_LABEL, voucher_id], &mut r[..]);
        let mut xb = [0u8; 8];
        xb.copy_from_slice(&r[..8]);
        let x = u64::from_be_bytes(xb) % (super::field::DETECTION_PRIME - 1) + 1;
        let coin = u32::from_be_bytes([r[8], r[9], r[10], r[11]]);
        VoucherChoice {
            x,
            // s = 0 leaves detection no room for synthetic shares.
            synthetic: self.s > 0 && coin < self.rate.0,
        }
    }

    /// The real share P(x).
    pub(crate) fn share(&self, x: u64) -> Scalar {
        super::shamir::evaluate(&self.coefficients, x)
    }

    /// The real tag (D_1(x), ..., D_s(x)).
    pub(crate) fn tag(&self, x: u64) -> Vec<Fp61> {
        let x = Fp61::reduce(x);
        self.detection
            .iter()
            .map(|d| d.iter().rev().fold(Fp61::ZERO, |acc, &c| acc.mul(x).add(c)))
            .collect()
    }

    /// A synthetic voucher's share and tag: pseudo-random, and the same
    /// every time for one voucher id, as a real voucher's are.
    pub(crate) fn synthetic(&self, voucher_id: &[u8; VOUCHER_ID_LEN]) -> (Scalar, Vec<Fp61>) {
        let mut r = Zeroizing::new(vec![0u8; 64 + 8 * usize::from(self.s)]);
        expand(
            &self.hkdf(),
            &[SYNTHETIC_LABEL, &self.t.to_be_bytes(), voucher_id],
            &mut r[..],
        );
        let mut wide = Zeroizing::new([0u8; 64]);
        wide.copy_from_slice(&r[..64]);
        let share = Scalar::from_bytes_mod_order_wide(&wide);
        let tag = r[64..]
            .chunks_exact(8)
            .map(|c| Fp61::from_be_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        (share, tag)
    }

    /// For the test vectors: the PRK, P's coefficients, the D_j's, and the
    /// 12 bytes of Section 14.4 for a voucher id.
    #[cfg(feature = "test-vectors")]
    pub(crate) fn trace(
        &self,
        voucher_id: &[u8; VOUCHER_ID_LEN],
    ) -> ([u8; 32], Vec<Scalar>, Vec<Vec<Fp61>>, [u8; 12]) {
        let mut r = [0u8; 12];
        expand(&self.hkdf(), &[VOUCHER_LABEL, voucher_id], &mut r[..]);
        (
            *self.prk,
            self.coefficients.clone(),
            self.detection.clone(),
            r,
        )
    }

    /// The account key scalar a_0 = P(0).
    pub(crate) fn key_scalar(&self) -> Scalar {
        self.coefficients[0]
    }
}
