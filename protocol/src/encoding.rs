//! Decoding of the fixed-size wire values: points, scalars, and the public key.
//!
//! Every decoder rejects wrong lengths, non-canonical encodings and the
//! identity with a typed [`Error`]; none of them panics. Model: voprf's
//! `deserialize_elem`.

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;

use crate::error::Error;

/// Length of an encoded ristretto255 element (RFC 9496 Section 4.3.2).
pub const ELEMENT_LEN: usize = 32;
/// Length of an encoded scalar (32 bytes, little-endian, reduced mod ℓ).
pub const SCALAR_LEN: usize = 32;

/// Copies a slice into a fixed array, or says which value had the wrong length.
pub(crate) fn array<const N: usize>(bytes: &[u8], what: &'static str) -> Result<[u8; N], Error> {
    bytes.try_into().map_err(|_| Error::Length {
        what,
        expected: N,
        got: bytes.len(),
    })
}

/// Checks the `magic || version` prefix of a blindmatch file or wire value;
/// the caller has checked that `bytes` holds at least five bytes.
pub(crate) fn check_magic_version(
    bytes: &[u8],
    magic: &[u8; 4],
    version: u8,
    what: &'static str,
) -> Result<(), Error> {
    if bytes.get(..4) != Some(&magic[..]) {
        return Err(Error::BadMagic(what));
    }
    match bytes.get(4) {
        Some(&v) if v == version => Ok(()),
        found => Err(Error::UnsupportedVersion {
            what,
            version: found.copied().unwrap_or(0),
        }),
    }
}

/// RFC 9496 Section 4.3.1 `Decode`, then a check that the element is not the
/// identity (whose only canonical encoding is 32 zero bytes).
pub(crate) fn decode_element(
    bytes: &[u8; ELEMENT_LEN],
    what: &'static str,
) -> Result<RistrettoPoint, Error> {
    if bytes == &[0u8; ELEMENT_LEN] {
        return Err(Error::IdentityPoint(what));
    }
    CompressedRistretto(*bytes)
        .decompress()
        .ok_or(Error::InvalidPoint(what))
}

/// A canonical scalar, zero allowed (a proof's c and s).
pub(crate) fn decode_scalar_allow_zero(
    bytes: [u8; SCALAR_LEN],
    what: &'static str,
) -> Result<Scalar, Error> {
    Option::<Scalar>::from(Scalar::from_canonical_bytes(bytes)).ok_or(Error::InvalidScalar(what))
}

/// A canonical, non-zero scalar.
pub(crate) fn decode_scalar(bytes: [u8; SCALAR_LEN], what: &'static str) -> Result<Scalar, Error> {
    let s = decode_scalar_allow_zero(bytes, what)?;
    if s == Scalar::ZERO {
        return Err(Error::ZeroScalar(what));
    }
    Ok(s)
}

/// The server's public key L = α·G, a non-identity element.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey {
    point: RistrettoPoint,
    encoded: [u8; ELEMENT_LEN],
}

impl PublicKey {
    pub(crate) fn from_point(point: RistrettoPoint) -> Self {
        PublicKey {
            encoded: point.compress().to_bytes(),
            point,
        }
    }

    /// Decodes a public key.
    ///
    /// # Errors
    /// [`Error::Length`], [`Error::InvalidPoint`] or [`Error::IdentityPoint`].
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let encoded = array(bytes, "public key")?;
        let point = decode_element(&encoded, "public key")?;
        Ok(PublicKey { point, encoded })
    }

    /// The 32-byte canonical encoding.
    pub fn to_bytes(&self) -> [u8; ELEMENT_LEN] {
        self.encoded
    }

    pub(crate) fn point(&self) -> &RistrettoPoint {
        &self.point
    }
}

impl core::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Public, but still a point: keep it out of logs, show a short prefix
        // that is enough to tell keys apart when debugging configuration.
        write!(
            f,
            "PublicKey({:02x}{:02x}{:02x}{:02x}…)",
            self.encoded[0], self.encoded[1], self.encoded[2], self.encoded[3]
        )
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation, reason = "test sizes are small")]
mod tests {
    use super::*;
    use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;

    #[test]
    fn rejects_identity_wrong_length_and_non_canonical() {
        assert_eq!(
            PublicKey::decode(&[0u8; 32]),
            Err(Error::IdentityPoint("public key"))
        );
        assert_eq!(
            PublicKey::decode(&[1u8; 31]),
            Err(Error::Length {
                what: "public key",
                expected: 32,
                got: 31
            })
        );
        // A negative field element (RFC 9496 A.2).
        let mut neg = [0u8; 32];
        neg[0] = 1;
        assert_eq!(
            PublicKey::decode(&neg),
            Err(Error::InvalidPoint("public key"))
        );
        let g = RISTRETTO_BASEPOINT_POINT.compress().to_bytes();
        assert_eq!(PublicKey::decode(&g).unwrap().to_bytes(), g);
    }

    #[test]
    fn scalars_must_be_canonical_and_non_zero() {
        assert_eq!(decode_scalar([0; 32], "s"), Err(Error::ZeroScalar("s")));
        assert_eq!(
            decode_scalar([0xff; 32], "s"),
            Err(Error::InvalidScalar("s"))
        );
        let mut one = [0u8; 32];
        one[0] = 1;
        assert_eq!(decode_scalar(one, "s").unwrap(), Scalar::ONE);
    }
}
