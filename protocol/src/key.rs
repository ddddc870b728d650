//! The server's secret key α and its public key L = α·G.

use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::encoding::{
    ELEMENT_LEN, PublicKey, SCALAR_LEN, array, check_magic_version, decode_scalar,
};
use crate::error::Error;

/// Magic bytes that open a key file.
pub const KEY_MAGIC: [u8; 4] = *b"BMSK";
/// Length of the key file encoding: magic, version, α, L.
pub const KEY_ENCODED_LEN: usize = 4 + 1 + SCALAR_LEN + ELEMENT_LEN;
const KEY_VERSION: u8 = 1;

/// The list operator's secret: a non-zero scalar α.
///
/// Zeroized on drop; `Debug` shows only the public key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ServerKey {
    alpha: Scalar,
    #[zeroize(skip)]
    public: PublicKey,
}

impl ServerKey {
    /// A fresh key from a cryptographically secure RNG.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        loop {
            let alpha = Scalar::random(rng);
            // Probability 2^-252; loop rather than argue it away.
            if alpha != Scalar::ZERO {
                return Self::from_scalar(alpha);
            }
        }
    }

    pub(crate) fn from_scalar(alpha: Scalar) -> Self {
        ServerKey {
            public: PublicKey::from_point(RistrettoPoint::mul_base(&alpha)),
            alpha,
        }
    }

    /// A key from the 32-byte little-endian encoding of α, for test vectors
    /// and the fuzz targets' fixed tables.
    ///
    /// # Errors
    /// [`Error::InvalidScalar`] or [`Error::ZeroScalar`].
    #[cfg(any(test, feature = "test-vectors", feature = "fuzzing"))]
    pub fn from_scalar_bytes(bytes: [u8; SCALAR_LEN]) -> Result<Self, Error> {
        Ok(Self::from_scalar(decode_scalar(bytes, "server key")?))
    }

    /// The public key L = α·G that clients blind with.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    pub(crate) fn scalar(&self) -> &Scalar {
        &self.alpha
    }

    /// The stable file encoding: `"BMSK" || 0x01 || α (32 bytes LE) || L (32 bytes)`.
    ///
    /// L is stored so that decoding detects a corrupted or truncated file.
    pub fn to_bytes(&self) -> Zeroizing<[u8; KEY_ENCODED_LEN]> {
        let mut out = Zeroizing::new([0u8; KEY_ENCODED_LEN]);
        out[..4].copy_from_slice(&KEY_MAGIC);
        out[4] = KEY_VERSION;
        out[5..5 + SCALAR_LEN].copy_from_slice(self.alpha.as_bytes());
        out[5 + SCALAR_LEN..].copy_from_slice(&self.public.to_bytes());
        out
    }

    /// Decodes [`ServerKey::to_bytes`].
    ///
    /// # Errors
    /// [`Error::Length`], [`Error::BadMagic`], [`Error::UnsupportedVersion`],
    /// [`Error::InvalidScalar`], [`Error::ZeroScalar`] or [`Error::KeyMismatch`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let bytes: Zeroizing<[u8; KEY_ENCODED_LEN]> = Zeroizing::new(array(bytes, "server key")?);
        check_magic_version(&bytes[..], &KEY_MAGIC, KEY_VERSION, "server key")?;
        let scalar_bytes = Zeroizing::new(array::<SCALAR_LEN>(
            &bytes[5..5 + SCALAR_LEN],
            "server key",
        )?);
        let key = Self::from_scalar(decode_scalar(*scalar_bytes, "server key")?);
        let stored = &bytes[5 + SCALAR_LEN..];
        if !bool::from(key.public.to_bytes().ct_eq(stored)) {
            return Err(Error::KeyMismatch);
        }
        Ok(key)
    }
}

impl core::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ServerKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation, reason = "test sizes are small")]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_detects_damage() {
        let key = ServerKey::generate(&mut rand::rng());
        let bytes = key.to_bytes();
        let back = ServerKey::from_bytes(&bytes[..]).unwrap();
        assert_eq!(back.public_key(), key.public_key());

        assert_eq!(
            ServerKey::from_bytes(&bytes[..10]).unwrap_err(),
            Error::Length {
                what: "server key",
                expected: KEY_ENCODED_LEN,
                got: 10
            }
        );
        let mut bad = *bytes;
        bad[0] = b'X';
        assert_eq!(
            ServerKey::from_bytes(&bad).unwrap_err(),
            Error::BadMagic("server key")
        );
        let mut bad = *bytes;
        bad[4] = 2;
        assert!(matches!(
            ServerKey::from_bytes(&bad),
            Err(Error::UnsupportedVersion { version: 2, .. })
        ));
        let mut bad = *bytes;
        bad[6] ^= 1;
        assert_eq!(ServerKey::from_bytes(&bad).unwrap_err(), Error::KeyMismatch);
        let mut bad = *bytes;
        bad[5..37].copy_from_slice(&[0; 32]);
        assert_eq!(
            ServerKey::from_bytes(&bad).unwrap_err(),
            Error::ZeroScalar("server key")
        );
        let mut bad = *bytes;
        bad[5..37].copy_from_slice(&[0xff; 32]);
        assert_eq!(
            ServerKey::from_bytes(&bad).unwrap_err(),
            Error::InvalidScalar("server key")
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let key = ServerKey::from_scalar(Scalar::from(0x1234_5678u64));
        let shown = format!("{key:?}");
        assert!(!shown.contains("alpha"), "{shown}");
        assert!(!shown.contains("78563412"), "{shown}");
    }
}
