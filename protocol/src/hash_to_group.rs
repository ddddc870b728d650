//! Hashing items to ristretto255, exactly as RFC 9380 Appendix B says.
//!
//! `hash_to_ristretto255(msg) = ristretto255_map(expand_message_xmd(msg, DST, 64))`
//! with SHA-512 (RFC 9380 Section 5.3.1) and the one-way map of RFC 9496
//! Section 4.3.4 (`RistrettoPoint::from_uniform_bytes`). This is the same
//! construction RFC 9497 uses for its ristretto255-SHA512 suite, which is how
//! the conformance tests check it. It is *not* `RistrettoPoint::hash_from_bytes`,
//! which maps SHA-512(msg) and ignores the DST.

use core::num::NonZero;

use curve25519_dalek::RistrettoPoint;
use hash2curve::{ExpandMsg, ExpandMsgXmd, Expander};
use sha2::Sha512;
use sha2::digest::typenum::U16;

use crate::error::Error;
use crate::item::{Item, ItemType};

/// The ciphersuite identifier of RFC 9380 Appendix B for this hash.
pub const SUITE_ID: &str = "ristretto255_XMD:SHA-512_R255MAP_RO_";

/// Prefix of every item DST; the item type name follows.
const ITEM_DST_PREFIX: &[u8] = b"blindmatch-v1/hash-to-group/ristretto255_XMD:SHA-512_R255MAP_RO_/";

/// The RFC 9380 domain-separation tag for items of one type:
/// `"blindmatch-v1/hash-to-group/ristretto255_XMD:SHA-512_R255MAP_RO_/" || type name`.
///
/// It names the protocol, its version, the suite and the item type, so values
/// of different types map to independent points (RFC 9380 Section 3.1).
pub fn item_dst(item_type: ItemType) -> Vec<u8> {
    let mut dst = ITEM_DST_PREFIX.to_vec();
    dst.extend_from_slice(item_type.name().as_bytes());
    dst
}

/// `expand_message_xmd` with SHA-512 (RFC 9380 Section 5.3.1), filling `out`.
///
/// The message is the concatenation of `msg_parts`. A DST longer than 255
/// bytes is first hashed as RFC 9380 Section 5.3.3 says.
///
/// # Errors
/// [`Error::InvalidParameter`] if `out` is empty or longer than 255 · 64 bytes
/// (RFC 9380 Section 5.3.1, step 2).
pub fn expand_message_xmd_sha512(
    msg_parts: &[&[u8]],
    dst: &[u8],
    out: &mut [u8],
) -> Result<(), Error> {
    let bad_len = Error::InvalidParameter {
        name: "expand_message_xmd length",
        value: out.len() as u64,
        allowed: "1..=16320",
    };
    let Some(len) = u16::try_from(out.len()).ok().and_then(NonZero::new) else {
        return Err(bad_len);
    };
    let dst = [dst];
    // RFC 9380 Section 8.9: k = 128 for ristretto255, i.e. 16 bytes.
    let Ok(mut expander) =
        <ExpandMsgXmd<Sha512> as ExpandMsg<U16>>::expand_message(msg_parts, &dst, len)
    else {
        return Err(bad_len);
    };
    expander.fill_bytes(out).map_err(|_| bad_len)?;
    Ok(())
}

/// `hash_to_ristretto255(msg)` of RFC 9380 Appendix B under `dst`.
pub fn hash_to_ristretto255(msg_parts: &[&[u8]], dst: &[u8]) -> RistrettoPoint {
    RistrettoPoint::from_uniform_bytes(&uniform_bytes(msg_parts, dst))
}

/// The 64 bytes `hash_to_ristretto255` maps to the group:
/// `expand_message_xmd(msg, dst, 64)`. The table builder hashes with this
/// and leaves the map to blindmatch-batchmul, eight at a time.
pub(crate) fn uniform_bytes(msg_parts: &[&[u8]], dst: &[u8]) -> [u8; 64] {
    let mut uniform = [0u8; 64];
    if expand_message_xmd_sha512(msg_parts, dst, &mut uniform).is_err() {
        unreachable!("64 bytes is a valid expand_message_xmd length");
    }
    uniform
}

/// H(item): the item's value hashed under its type's DST.
pub fn hash_item(item: &Item) -> RistrettoPoint {
    hash_to_ristretto255(&[item.value()], &item_dst(item.item_type()))
}

/// The 64 uniform bytes behind [`hash_item`].
pub(crate) fn item_uniform_bytes(item: &Item) -> [u8; 64] {
    uniform_bytes(&[item.value()], &item_dst(item.item_type()))
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation, reason = "test sizes are small")]
mod tests {
    use super::*;

    #[test]
    fn bad_output_lengths_are_errors_not_panics() {
        assert!(expand_message_xmd_sha512(&[b"x"], b"dst", &mut []).is_err());
        assert!(expand_message_xmd_sha512(&[b"x"], b"dst", &mut vec![0u8; 255 * 64 + 1]).is_err());
        assert!(expand_message_xmd_sha512(&[b"x"], b"dst", &mut vec![0u8; 255 * 64]).is_ok());
        // A DST over 255 bytes is hashed (RFC 9380 Section 5.3.3), not refused.
        assert!(expand_message_xmd_sha512(&[b"x"], &[b'd'; 300], &mut [0u8; 32]).is_ok());
    }

    #[test]
    fn types_are_domain_separated() {
        let v = [7u8; 32];
        let a = hash_item(&Item::new(ItemType::Sha256, &v).unwrap());
        let b = hash_item(&Item::new(ItemType::Pdq, &v).unwrap());
        let c = hash_item(&Item::new(ItemType::Bytes, &v).unwrap());
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(b, c);
    }

    #[test]
    fn dst_names_protocol_version_suite_and_type() {
        let dst = item_dst(ItemType::Pdq);
        let dst = core::str::from_utf8(&dst).unwrap();
        assert!(dst.starts_with("blindmatch-v1/"));
        assert!(dst.contains(SUITE_ID));
        assert!(dst.ends_with("/pdq"));
    }
}
