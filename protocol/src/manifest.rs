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
use crate::table::{HEADER_LEN, PROTOCOL_VERSION, TableHeader, TableId};

/// Magic bytes that open a manifest statement.
pub const MANIFEST_MAGIC: [u8; 4] = *b"BMMF";
/// Length of an encoded [`Manifest`] statement.
pub const STATEMENT_LEN: usize = 4 + 1 + 8 + 8 + 32 + 32 + 4 + HEADER_LEN;
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
}

impl Manifest {
    /// `"BMMF" || 0x01 || I2OSP(version, 8) || I2OSP(created, 8) || table_id
    /// || digest || I2OSP(chunk_slots, 4) || header`.
    pub fn encode(&self) -> [u8; STATEMENT_LEN] {
        let mut out = [0u8; STATEMENT_LEN];
        out[..4].copy_from_slice(&MANIFEST_MAGIC);
        out[4] = PROTOCOL_VERSION;
        out[5..13].copy_from_slice(&self.version.to_be_bytes());
        out[13..21].copy_from_slice(&self.created.to_be_bytes());
        out[21..53].copy_from_slice(&self.table_id.0);
        out[53..85].copy_from_slice(&self.digest);
        out[85..89].copy_from_slice(&self.chunk_slots.to_be_bytes());
        out[89..].copy_from_slice(&self.header.encode());
        out
    }

    /// Decodes a statement (its signature is checked by [`SignedManifest::verify`]).
    ///
    /// # Errors
    /// [`Error::Length`], [`Error::BadMagic`], [`Error::UnsupportedVersion`],
    /// a header error, or [`Error::InvalidParameter`] for a chunk size other
    /// than [`CHUNK_SLOTS`] or a version of 0.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let b: [u8; STATEMENT_LEN] = array(bytes, "manifest")?;
        check_magic_version(&b, &MANIFEST_MAGIC, PROTOCOL_VERSION, "manifest")?;
        let m = Manifest {
            version: u64::from_be_bytes(array(&b[5..13], "manifest version")?),
            created: u64::from_be_bytes(array(&b[13..21], "manifest time")?),
            table_id: TableId(array(&b[21..53], "table id")?),
            digest: array(&b[53..85], "table digest")?,
            chunk_slots: u32::from_be_bytes(array(&b[85..89], "chunk size")?),
            header: TableHeader::decode(&b[89..])?,
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

fn signing_message(statement: &[u8; STATEMENT_LEN]) -> Vec<u8> {
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

    /// Decodes `statement || signature` *without* checking the signature:
    /// for the operator's own files. A client uses [`SignedManifest::verify`].
    ///
    /// # Errors
    /// As [`Manifest::decode`].
    pub fn decode_unverified(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() != STATEMENT_LEN + SIGNATURE_LEN {
            return Err(Error::Length {
                what: "signed manifest",
                expected: STATEMENT_LEN + SIGNATURE_LEN,
                got: bytes.len(),
            });
        }
        Ok(SignedManifest {
            manifest: Manifest::decode(&bytes[..STATEMENT_LEN])?,
            signature: array(&bytes[STATEMENT_LEN..], "manifest signature")?,
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
        let s: [u8; STATEMENT_LEN] = array(statement, "manifest")?;
        let sig: [u8; SIGNATURE_LEN] = array(signature, "manifest signature")?;
        key.0
            .verify_strict(&signing_message(&s), &Signature::from_bytes(&sig))
            .map_err(|_| Error::BadSignature)?;
        Ok(SignedManifest {
            manifest: Manifest::decode(&s)?,
            signature: sig,
        })
    }

    /// [`SignedManifest::verify`] on `statement || signature`.
    ///
    /// # Errors
    /// As [`SignedManifest::verify`].
    pub fn verify_encoded(bytes: &[u8], key: &OperatorVerifyingKey) -> Result<Self, Error> {
        if bytes.len() != STATEMENT_LEN + SIGNATURE_LEN {
            return Err(Error::Length {
                what: "signed manifest",
                expected: STATEMENT_LEN + SIGNATURE_LEN,
                got: bytes.len(),
            });
        }
        Self::verify(&bytes[..STATEMENT_LEN], &bytes[STATEMENT_LEN..], key)
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
        }
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
