//! Signed manifests: what a client pins a table to (SPEC Section 13.3).
//!
//! The operator signs, with an Ed25519 key (RFC 8032) kept apart from the
//! blinding key α, a statement naming one version of the table: its version
//! number, table id, Merkle digest, header (k, seed, n_slots, L) and time.
//! A client configured with the operator's verifying key accepts a table,
//! a chunk or a delta only if it hashes to a signed manifest's digest, so a
//! server cannot hand one user a table of its own making (a way to single
//! that user out) without the operator signing it, and the signed statement
//! is evidence anyone can compare.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

use crate::encoding::{array, check_magic_version};
use crate::error::Error;
use crate::merkle::{CHUNK_SLOTS, Hash};
use crate::table::{
    BlindedTable, HEADER_LEN, MAX_K, PROTOCOL_VERSION, THRESHOLD_VERSION, TableHeader, TableId,
};

/// Magic bytes that open a manifest statement.
pub const MANIFEST_MAGIC: [u8; 4] = *b"BMMF";
/// Length of an encoded version-1 [`Manifest`] statement (163 bytes).
pub const STATEMENT_LEN: usize = 4 + 1 + 8 + 8 + 32 + 32 + 4 + HEADER_LEN;
/// Length of the longest statement: version 2 with k = [`MAX_K`].
pub const MAX_STATEMENT_LEN: usize = STATEMENT_LEN + 4 + 4 * MAX_K as usize;
/// Where the header's k sits in a statement.
const K_OFFSET: usize = STATEMENT_LEN - HEADER_LEN + 5;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Prefix of the signed message: the statement is signed as
/// `"blindmatch-v1/manifest" || statement`, so that an operator key's
/// signature on a manifest can never be read as one on anything else.
const SIGNING_LABEL: &[u8] = b"blindmatch-v1/manifest";

/// One version of the table, as the operator states it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Manifest {
    /// Version number: 1 for a first build, +1 for each update.
    pub version: u64,
    /// When the table was built, in seconds since the Unix epoch.
    pub created: u64,
    /// The table id (SPEC Section 5.3): what vouchers are bound to.
    pub table_id: TableId,
    /// The Merkle root over the slot array's chunks ([`crate::merkle`]).
    pub digest: Hash,
    /// Slots per Merkle leaf; [`CHUNK_SLOTS`] in this version.
    pub chunk_slots: u32,
    /// The table's public parameters.
    pub header: TableHeader,
    /// Threshold mode's parameters: `Some` makes this a protocol version 2
    /// statement (SPEC Section 14.8), whose clients make version-2 vouchers.
    pub threshold: Option<ThresholdParams>,
}

/// What a version-2 statement adds (SPEC Section 14.8): the threshold t,
/// the synthetic bound s, and the table's placement weights, which
/// synthetic vouchers draw their opening box with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ThresholdParams {
    t: u16,
    s: u16,
    k: u8,
    weights: [u32; MAX_K as usize],
}

/// The largest threshold a manifest may announce.
pub const MAX_THRESHOLD: u16 = 256;
/// The largest synthetic bound s (tag elements) a manifest may announce.
pub const MAX_SYNTHETIC_BOUND: u16 = 256;

/// t in 1..=256, s in 0..=256.
pub(crate) fn check_parameters(t: u16, s: u16) -> Result<(), Error> {
    if t == 0 || t > MAX_THRESHOLD {
        return Err(Error::InvalidParameter {
            name: "threshold t",
            value: u64::from(t),
            allowed: "1 to 256",
        });
    }
    if s > MAX_SYNTHETIC_BOUND {
        return Err(Error::InvalidParameter {
            name: "synthetic bound s",
            value: u64::from(s),
            allowed: "0 to 256",
        });
    }
    Ok(())
}

impl ThresholdParams {
    /// Checks `1 ≤ t ≤ 256`, `s ≤ 256`, and one weight per position (k of them).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming what is out of range.
    pub fn new(t: u16, s: u16, weights: &[u32]) -> Result<Self, Error> {
        check_parameters(t, s)?;
        let k = u8::try_from(weights.len())
            .ok()
            .filter(|k| (crate::table::MIN_K..=MAX_K).contains(k))
            .ok_or(Error::InvalidParameter {
                name: "placement weights",
                value: weights.len() as u64,
                allowed: "one per position, 2 to 8",
            })?;
        let mut w = [0u32; MAX_K as usize];
        w[..weights.len()].copy_from_slice(weights);
        Ok(ThresholdParams {
            t,
            s,
            k,
            weights: w,
        })
    }

    /// The threshold t.
    pub fn threshold(&self) -> u16 {
        self.t
    }

    /// The synthetic bound s (the detection tags' length, in elements).
    pub fn synthetic_bound(&self) -> u16 {
        self.s
    }

    /// w_0 .. w_{k−1}: entries placed at each position.
    pub fn weights(&self) -> &[u32] {
        &self.weights[..usize::from(self.k)]
    }
}

impl Manifest {
    /// The statement for `table` as version `version`, built at `created`
    /// (seconds since the Unix epoch), in threshold mode with `threshold`.
    /// The table id, the header and the digest (SPEC 13.2: the Merkle root
    /// over its chunks) all come from the table, so the statement describes
    /// exactly the table it is made for.
    pub fn for_table(
        table: &BlindedTable,
        version: u64,
        created: u64,
        threshold: Option<ThresholdParams>,
    ) -> Manifest {
        Manifest {
            version,
            created,
            table_id: *table.id(),
            digest: *crate::merkle::MerkleTree::new(table.slots()).root(),
            chunk_slots: CHUNK_SLOTS,
            header: *table.header(),
            threshold,
        }
    }

    /// The protocol version the statement is for: 1, or 2 in threshold mode.
    pub fn protocol_version(&self) -> u8 {
        if self.threshold.is_some() {
            THRESHOLD_VERSION
        } else {
            PROTOCOL_VERSION
        }
    }

    /// `"BMMF" || version || I2OSP(version, 8) || I2OSP(created, 8) || table_id
    /// || digest || I2OSP(chunk_slots, 4) || header`, and for version 2
    /// `|| I2OSP(t, 2) || I2OSP(s, 2) || I2OSP(w_j, 4) for each j`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_STATEMENT_LEN);
        out.extend_from_slice(&MANIFEST_MAGIC);
        out.push(self.protocol_version());
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&self.created.to_be_bytes());
        out.extend_from_slice(&self.table_id.0);
        out.extend_from_slice(&self.digest);
        out.extend_from_slice(&self.chunk_slots.to_be_bytes());
        out.extend_from_slice(&self.header.encode());
        if let Some(p) = &self.threshold {
            out.extend_from_slice(&p.t.to_be_bytes());
            out.extend_from_slice(&p.s.to_be_bytes());
            for w in p.weights() {
                out.extend_from_slice(&w.to_be_bytes());
            }
        }
        out
    }

    /// The length of the statement that `bytes` starts with, from its
    /// version byte and, for version 2, the header's k; `None` if `bytes`
    /// is too short to tell or names no version this crate speaks.
    pub fn statement_len(bytes: &[u8]) -> Option<usize> {
        match (bytes.get(4)?, bytes.get(K_OFFSET)?) {
            (&PROTOCOL_VERSION, _) => Some(STATEMENT_LEN),
            (&THRESHOLD_VERSION, &k) if (crate::table::MIN_K..=MAX_K).contains(&k) => {
                Some(STATEMENT_LEN + 4 + 4 * usize::from(k))
            }
            _ => None,
        }
    }

    /// Decodes a statement (its signature is checked by [`SignedManifest::verify`]).
    ///
    /// # Errors
    /// [`Error::Length`], [`Error::BadMagic`], [`Error::UnsupportedVersion`],
    /// a header error, or [`Error::InvalidParameter`] for a chunk size other
    /// than [`CHUNK_SLOTS`] or a version of 0.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let version = bytes.get(4).copied();
        let v2 = version == Some(THRESHOLD_VERSION);
        check_magic_version(
            bytes,
            &MANIFEST_MAGIC,
            if v2 {
                THRESHOLD_VERSION
            } else {
                PROTOCOL_VERSION
            },
            "manifest",
        )?;
        let expected = Self::statement_len(bytes).unwrap_or(STATEMENT_LEN);
        if bytes.len() != expected {
            return Err(Error::Length {
                what: "manifest",
                expected,
                got: bytes.len(),
            });
        }
        let b: [u8; STATEMENT_LEN] = array(&bytes[..STATEMENT_LEN], "manifest")?;
        let header = TableHeader::decode(&b[89..])?;
        let threshold = if v2 {
            let rest = &bytes[STATEMENT_LEN..];
            let weights: Vec<u32> = rest[4..]
                .chunks_exact(4)
                .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
                .collect();
            Some(ThresholdParams::new(
                u16::from_be_bytes([rest[0], rest[1]]),
                u16::from_be_bytes([rest[2], rest[3]]),
                &weights,
            )?)
        } else {
            None
        };
        let m = Manifest {
            version: u64::from_be_bytes(array(&b[5..13], "manifest version")?),
            created: u64::from_be_bytes(array(&b[13..21], "manifest time")?),
            table_id: TableId(array(&b[21..53], "table id")?),
            digest: array(&b[53..85], "table digest")?,
            chunk_slots: u32::from_be_bytes(array(&b[85..89], "chunk size")?),
            header,
            threshold,
        };
        if m.chunk_slots != CHUNK_SLOTS {
            return Err(Error::InvalidParameter {
                name: "chunk_slots",
                value: u64::from(m.chunk_slots),
                allowed: "2048",
            });
        }
        if m.version == 0 {
            return Err(Error::InvalidParameter {
                name: "manifest version",
                value: 0,
                allowed: "1 or more",
            });
        }
        Ok(m)
    }

    /// Signs the statement.
    pub fn sign(self, key: &OperatorSigningKey) -> SignedManifest {
        let signature = key.0.sign(&signing_message(&self.encode())).to_bytes();
        SignedManifest {
            manifest: self,
            signature,
        }
    }
}

fn signing_message(statement: &[u8]) -> Vec<u8> {
    [SIGNING_LABEL, statement].concat()
}

/// A manifest and the operator's signature on it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SignedManifest {
    /// The statement.
    pub manifest: Manifest,
    /// Ed25519 over `"blindmatch-v1/manifest" || statement`.
    pub signature: [u8; SIGNATURE_LEN],
}

impl SignedManifest {
    /// `statement || signature`.
    pub fn encode(&self) -> Vec<u8> {
        [&self.manifest.encode()[..], &self.signature].concat()
    }

    /// Splits `statement || signature` at the statement's length.
    fn split(bytes: &[u8]) -> Result<(&[u8], &[u8]), Error> {
        let expected = Manifest::statement_len(bytes).unwrap_or(STATEMENT_LEN) + SIGNATURE_LEN;
        if bytes.len() != expected {
            return Err(Error::Length {
                what: "signed manifest",
                expected,
                got: bytes.len(),
            });
        }
        Ok(bytes.split_at(expected - SIGNATURE_LEN))
    }

    /// Decodes `statement || signature` *without* checking the signature:
    /// for the operator's own files. A client uses [`SignedManifest::verify`].
    ///
    /// # Errors
    /// As [`Manifest::decode`].
    pub fn decode_unverified(bytes: &[u8]) -> Result<Self, Error> {
        let (statement, signature) = Self::split(bytes)?;
        Ok(SignedManifest {
            manifest: Manifest::decode(statement)?,
            signature: array(signature, "manifest signature")?,
        })
    }

    /// Checks the signature of `statement` under the pinned key and returns
    /// the manifest. Strict verification (RFC 8032 Section 5.1.7 with
    /// canonical S and no small-order keys or R), so one statement has one
    /// valid signature per key.
    ///
    /// # Errors
    /// [`Error::BadSignature`], or a decoding error.
    pub fn verify(
        statement: &[u8],
        signature: &[u8],
        key: &OperatorVerifyingKey,
    ) -> Result<Self, Error> {
        if statement.len() > MAX_STATEMENT_LEN {
            return Err(Error::Length {
                what: "manifest",
                expected: Manifest::statement_len(statement).unwrap_or(STATEMENT_LEN),
                got: statement.len(),
            });
        }
        let sig: [u8; SIGNATURE_LEN] = array(signature, "manifest signature")?;
        key.0
            .verify_strict(&signing_message(statement), &Signature::from_bytes(&sig))
            .map_err(|_| Error::BadSignature)?;
        Ok(SignedManifest {
            manifest: Manifest::decode(statement)?,
            signature: sig,
        })
    }

    /// [`SignedManifest::verify`] on `statement || signature`.
    ///
    /// # Errors
    /// As [`SignedManifest::verify`].
    pub fn verify_encoded(bytes: &[u8], key: &OperatorVerifyingKey) -> Result<Self, Error> {
        let (statement, signature) = Self::split(bytes)?;
        Self::verify(statement, signature, key)
    }
}

/// Magic bytes of an operator signing key file.
pub const SIGNING_KEY_MAGIC: [u8; 4] = *b"BMSG";
/// Length of an encoded [`OperatorSigningKey`]: magic, version, seed, public key.
pub const SIGNING_KEY_LEN: usize = 4 + 1 + 32 + 32;

/// The operator's Ed25519 signing key (zeroized on drop by ed25519-dalek).
pub struct OperatorSigningKey(SigningKey);

impl OperatorSigningKey {
    /// A new random key.
    pub fn generate(rng: &mut impl rand_core::CryptoRng) -> Self {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut seed[..]);
        OperatorSigningKey(SigningKey::from_bytes(&seed))
    }

    /// The key of a fixed 32-byte seed (RFC 8032 Section 5.1.5): for the
    /// test vectors.
    #[cfg(any(test, feature = "test-vectors"))]
    pub fn from_seed(seed: [u8; 32]) -> Self {
        OperatorSigningKey(SigningKey::from_bytes(&seed))
    }

    /// Ed25519 over `message` (RFC 8032 Section 5.1.6); callers prefix a
    /// label of their own, so that no signature reads as one on anything
    /// else.
    pub(crate) fn sign_message(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        use ed25519_dalek::Signer as _;
        self.0.sign(message).to_bytes()
    }

    /// The key whose public half clients pin.
    pub fn verifying_key(&self) -> OperatorVerifyingKey {
        OperatorVerifyingKey(self.0.verifying_key())
    }

    /// `"BMSG" || 0x01 || seed || public key` (the public key lets a reader
    /// detect a damaged file).
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(SIGNING_KEY_LEN));
        out.extend_from_slice(&SIGNING_KEY_MAGIC);
        out.push(PROTOCOL_VERSION);
        out.extend_from_slice(self.0.as_bytes());
        out.extend_from_slice(self.0.verifying_key().as_bytes());
        out
    }

    /// Decodes [`OperatorSigningKey::encode`].
    ///
    /// # Errors
    /// [`Error::Length`], [`Error::BadMagic`], [`Error::UnsupportedVersion`],
    /// or [`Error::InvalidOperatorKey`] if the stored public key is not the seed's.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let b: Zeroizing<[u8; SIGNING_KEY_LEN]> = Zeroizing::new(array(bytes, "signing key")?);
        check_magic_version(&b[..], &SIGNING_KEY_MAGIC, PROTOCOL_VERSION, "signing key")?;
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(array(&b[5..37], "signing key")?);
        let key = SigningKey::from_bytes(&seed);
        if key.verifying_key().as_bytes()[..] != b[37..] {
            return Err(Error::InvalidOperatorKey(
                "the signing key file's public key is not its seed's",
            ));
        }
        Ok(OperatorSigningKey(key))
    }
}

/// The operator's public key, which clients pin.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct OperatorVerifyingKey(VerifyingKey);

impl OperatorVerifyingKey {
    /// The 32-byte encoding (RFC 8032 Section 5.1.5).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Strict Ed25519 verification of `signature` over `message` (SPEC
    /// 13.3, rule 1).
    pub(crate) fn verify_message(&self, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
        self.0
            .verify_strict(message, &Signature::from_bytes(signature))
            .is_ok()
    }

    /// Decodes 32 bytes; refuses weak (small-order) keys.
    ///
    /// # Errors
    /// [`Error::Length`], or [`Error::InvalidOperatorKey`] for bytes that
    /// are not an Ed25519 public key or are a small-order one.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let b: [u8; 32] = array(bytes, "operator key")?;
        let key = VerifyingKey::from_bytes(&b)
            .map_err(|_| Error::InvalidOperatorKey("not a valid Ed25519 public key"))?;
        if key.is_weak() {
            return Err(Error::InvalidOperatorKey(
                "a small-order (weak) Ed25519 key, which anything verifies under",
            ));
        }
        // SPEC 13.3: a canonical encoding only (y below 2^255 − 19), as
        // RFC 8032 Section 5.1.3 decodes; curve25519-dalek reduces y instead.
        if key.to_edwards().compress().to_bytes() != b {
            return Err(Error::InvalidOperatorKey(
                "not the canonical encoding of its point",
            ));
        }
        Ok(OperatorVerifyingKey(key))
    }
}

impl core::fmt::Debug for OperatorSigningKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OperatorSigningKey")
            .field("verifying_key", &self.verifying_key())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        let key = crate::ServerKey::generate(&mut rand::rng());
        Manifest {
            version: 7,
            created: 1_790_000_000,
            table_id: TableId([1; 32]),
            digest: [2; 32],
            chunk_slots: CHUNK_SLOTS,
            header: TableHeader {
                k: 3,
                seed: [3; 32],
                n_slots: 100,
                public_key: *key.public_key(),
            },
            threshold: None,
        }
    }

    #[test]
    fn a_version_2_statement_signs_t_s_and_the_weights() {
        let op = OperatorSigningKey::generate(&mut rand::rng());
        let mut m = manifest();
        m.threshold = Some(ThresholdParams::new(30, 60, &[50, 30, 20]).unwrap());
        let signed = m.sign(&op);
        let bytes = signed.encode();
        assert_eq!(bytes.len(), STATEMENT_LEN + 16 + SIGNATURE_LEN);
        assert_eq!(bytes[4], 2);
        let vk = op.verifying_key();
        let back = SignedManifest::verify_encoded(&bytes, &vk).unwrap();
        assert_eq!(back, signed);
        let p = back.manifest.threshold.unwrap();
        assert_eq!(
            (p.threshold(), p.synthetic_bound(), p.weights()),
            (30, 60, &[50, 30, 20][..])
        );
        // Every added byte is signed.
        for i in STATEMENT_LEN..STATEMENT_LEN + 16 {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert!(
                SignedManifest::verify_encoded(&bad, &vk).is_err(),
                "byte {i}"
            );
        }
        // Relabelled as version 1 (and cut to its length) it does not verify.
        let mut v1 = bytes[..STATEMENT_LEN].to_vec();
        v1[4] = 1;
        v1.extend_from_slice(&bytes[bytes.len() - SIGNATURE_LEN..]);
        assert_eq!(
            SignedManifest::verify_encoded(&v1, &vk),
            Err(Error::BadSignature)
        );
        // t out of range is refused when decoding, as a parameter.
        let mut t0 = m.encode();
        t0[STATEMENT_LEN..STATEMENT_LEN + 2].copy_from_slice(&0u16.to_be_bytes());
        assert!(matches!(
            Manifest::decode(&t0),
            Err(Error::InvalidParameter {
                name: "threshold t",
                ..
            })
        ));
        assert!(ThresholdParams::new(30, 60, &[1]).is_err());
        assert!(ThresholdParams::new(257, 0, &[1, 2]).is_err());
        // A truncated version-2 statement is a length error.
        assert!(matches!(
            Manifest::decode(&m.encode()[..STATEMENT_LEN + 4]),
            Err(Error::Length { .. })
        ));
    }

    #[test]
    fn a_signed_manifest_verifies_and_any_change_is_refused() {
        let op = OperatorSigningKey::generate(&mut rand::rng());
        let signed = manifest().sign(&op);
        let bytes = signed.encode();
        let vk = op.verifying_key();
        assert_eq!(SignedManifest::verify_encoded(&bytes, &vk).unwrap(), signed);
        for i in [
            0,
            5,
            12,
            20,
            30,
            60,
            88,
            100,
            STATEMENT_LEN,
            bytes.len() - 1,
        ] {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert!(
                SignedManifest::verify_encoded(&bad, &vk).is_err(),
                "byte {i}"
            );
        }
        let other = OperatorSigningKey::generate(&mut rand::rng()).verifying_key();
        assert_eq!(
            SignedManifest::verify_encoded(&bytes, &other),
            Err(Error::BadSignature)
        );
        assert!(SignedManifest::verify_encoded(&bytes[1..], &vk).is_err());
    }

    #[test]
    fn signing_keys_round_trip_and_damage_is_detected() {
        let op = OperatorSigningKey::generate(&mut rand::rng());
        let enc = op.encode();
        let back = OperatorSigningKey::decode(&enc).unwrap();
        assert_eq!(back.verifying_key(), op.verifying_key());
        let mut bad = enc.to_vec();
        bad[10] ^= 1;
        assert!(matches!(
            OperatorSigningKey::decode(&bad).err(),
            Some(Error::InvalidOperatorKey(_))
        ));
        // A small-order point (the identity, 0x01 || 0*) is refused, and the
        // message says Ed25519, not ristretto255.
        let mut weak = [0u8; 32];
        weak[0] = 1;
        let err = OperatorVerifyingKey::from_bytes(&weak).unwrap_err();
        assert!(matches!(err, Error::InvalidOperatorKey(_)));
        assert!(err.to_string().contains("Ed25519"), "{err}");
        // A non-canonical encoding of a valid point: y + p for a small y
        // that is on the curve and not of small order.
        let p_plus = |y: u8| {
            // p = 2^255 − 19: p + y, little-endian, y < 19.
            let mut b = [0xffu8; 32];
            b[0] = 0xed + y;
            b[31] = 0x7f;
            b
        };
        let noncanonical = (2u8..19)
            .map(p_plus)
            .find(|b| {
                curve25519_dalek::edwards::CompressedEdwardsY(*b)
                    .decompress()
                    .is_some_and(|pt| !pt.is_small_order())
            })
            .expect("some y in 2..19 is a regular point");
        assert!(matches!(
            OperatorVerifyingKey::from_bytes(&noncanonical),
            Err(Error::InvalidOperatorKey(_))
        ));
        let vk = op.verifying_key().to_bytes();
        assert_eq!(
            OperatorVerifyingKey::from_bytes(&vk).unwrap(),
            op.verifying_key()
        );
        // The identity is a small-order point.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(OperatorVerifyingKey::from_bytes(&identity).is_err());
    }
}
