//! The voucher key schedule (SPEC.md, "Key schedule") and the AEAD calls.
//!
//! For position j the shared element S_j (client: β·T\[w_j\] + γ·L; server:
//! α·Q) goes through HKDF-SHA256 (RFC 5869):
//!
//! ```text
//! prk   = HKDF-Extract(salt = "blindmatch-v1/voucher-kdf", IKM = encode(S))
//! okm_j = HKDF-Expand(prk, info = table_id || encode(Q) || I2OSP(j, 1), 64)
//! wrap_key_j = okm_j[0..32]      (AES-256-GCM key for the payload key)
//! confirm_j  = okm_j[32..64]     (key-confirmation value, sent in clear)
//! ```
//!
//! `confirm_j` makes the scheme key-committing: the server opens a ciphertext
//! only after `confirm_j` matched in constant time, and finding a second S with
//! the same confirm value is a collision of HKDF's 256-bit output. AES-GCM's tag
//! alone would not do: a client could craft one ciphertext valid under two keys
//! (Len, Grubbs, Ristenpart, "Partitioning Oracle Attacks", USENIX Security 2021).
//!
//! Each AEAD key encrypts exactly one message (the server key differs per
//! voucher because β and γ are fresh, and j is in the info), so the all-zero
//! nonce is safe (RFC 5116 Section 2.1 only forbids nonce reuse under one key).

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hkdf::Hkdf;
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

/// HKDF salt of the voucher key schedule.
pub const VOUCHER_KDF_SALT: &[u8] = b"blindmatch-v1/voucher-kdf";
/// Length of an AEAD key (AES-256-GCM).
pub const KEY_LEN: usize = 32;
/// Length of a key-confirmation value.
pub const CONFIRM_LEN: usize = 32;
/// Length of an AES-GCM tag.
pub const TAG_LEN: usize = 16;
/// The nonce: every AEAD key in blindmatch encrypts exactly one message.
const ZERO_NONCE: [u8; 12] = [0u8; 12];

/// HKDF-Extract of one shared element.
pub(crate) struct SharedSecret(Hkdf<Sha256>);

impl SharedSecret {
    pub(crate) fn extract(shared: &[u8; 32]) -> Self {
        SharedSecret(Hkdf::<Sha256>::new(Some(VOUCHER_KDF_SALT), shared))
    }

    /// The wrap key and confirm value of position `j`.
    pub(crate) fn expand(&self, table_id: &[u8; 32], q: &[u8; 32], j: u8) -> PositionKeys {
        let mut okm = Zeroizing::new([0u8; KEY_LEN + CONFIRM_LEN]);
        let expanded = self.0.expand_multi_info(&[table_id, q, &[j]], &mut okm[..]);
        if expanded.is_err() {
            unreachable!("64 bytes is within HKDF-SHA256's 8160-byte limit");
        }
        let mut keys = PositionKeys {
            wrap_key: Zeroizing::new([0u8; KEY_LEN]),
            confirm: [0u8; CONFIRM_LEN],
        };
        keys.wrap_key.copy_from_slice(&okm[..KEY_LEN]);
        keys.confirm.copy_from_slice(&okm[KEY_LEN..]);
        keys
    }
}

/// The keys one position contributes.
pub(crate) struct PositionKeys {
    pub(crate) wrap_key: Zeroizing<[u8; KEY_LEN]>,
    pub(crate) confirm: [u8; CONFIRM_LEN],
}

impl PositionKeys {
    /// Constant-time comparison with a received confirm value.
    pub(crate) fn confirms(&self, received: &[u8; CONFIRM_LEN]) -> Choice {
        self.confirm.ct_eq(received)
    }
}

/// AES-256-GCM seal in place with the zero nonce; returns the tag.
pub(crate) fn seal(key: &[u8; KEY_LEN], aad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
    let cipher = Aes256Gcm::new(key.into());
    match cipher.encrypt_inout_detached(&Nonce::from(ZERO_NONCE), aad, buf.into()) {
        Ok(tag) => tag.into(),
        Err(_) => unreachable!("AES-GCM accepts messages of up to 2^36 bytes"),
    }
}

/// AES-256-GCM open in place with the zero nonce; `false` if the tag is wrong.
#[cfg(test)]
pub(crate) fn open(key: &[u8; KEY_LEN], aad: &[u8], buf: &mut [u8], tag: &[u8; TAG_LEN]) -> bool {
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .decrypt_inout_detached(&Nonce::from(ZERO_NONCE), aad, buf.into(), &Tag::from(*tag))
        .is_ok()
}

/// AES-256-GCM open in place with the zero nonce, costing the same whether
/// the tag is right or wrong: the AEAD checks the tag (GHASH) and, only if it
/// is right, applies the keystream; on a wrong tag this applies the same
/// keystream itself, so both outcomes do one GHASH and one CTR pass over
/// the buffer. `buf` then holds the plaintext, or (wrong tag) bytes that are
/// not it; the caller decides only after all its work is done.
///
/// The keystream is GCM's (NIST SP 800-38D, Section 7.2: for a 96-bit IV,
/// J0 = IV || 0^31 || 1 and the plaintext is encrypted from inc32(J0)), taken
/// from the same `aes` and `ctr` crates aes-gcm uses; a test checks it
/// against aes-gcm's own decryption. No crate offers a GCM decryption whose
/// cost does not depend on the tag.
pub(crate) fn open_balanced(
    key: &[u8; KEY_LEN],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Choice {
    #[cfg(test)]
    work::OPENINGS.with(|n| n.set(n.get() + 1));
    let cipher = Aes256Gcm::new(key.into());
    let ok = cipher
        .decrypt_inout_detached(&Nonce::from(ZERO_NONCE), aad, buf.into(), &Tag::from(*tag))
        .is_ok();
    if !ok {
        gcm_keystream(key, buf);
    }
    Choice::from(u8::from(ok))
}

/// Counts of the work done, for the tests that check that a non-matching
/// voucher costs what a matching one does.
#[cfg(test)]
pub(crate) mod work {
    thread_local! {
        /// AEAD openings (`open_balanced`) on this thread.
        pub(crate) static OPENINGS: core::cell::Cell<u32> = const { core::cell::Cell::new(0) };
        /// List lookups (the matcher's confirm step), on this thread.
        pub(crate) static LOOKUPS: core::cell::Cell<u32> = const { core::cell::Cell::new(0) };
    }

    /// (openings, lookups) done by `f` on this thread.
    pub(crate) fn count<T>(f: impl FnOnce() -> T) -> (T, u32, u32) {
        let (o, l) = (OPENINGS.with(|n| n.get()), LOOKUPS.with(|n| n.get()));
        let out = f();
        (
            out,
            OPENINGS.with(|n| n.get()) - o,
            LOOKUPS.with(|n| n.get()) - l,
        )
    }
}

/// XORs GCM's keystream for the zero nonce into `buf`.
fn gcm_keystream(key: &[u8; KEY_LEN], buf: &mut [u8]) {
    use ctr::cipher::{KeyIvInit, StreamCipher};
    let mut iv = [0u8; 16];
    iv[..12].copy_from_slice(&ZERO_NONCE);
    iv[15] = 2;
    let mut ctr = ctr::Ctr32BE::<aes::Aes256>::new(key.into(), &iv.into());
    ctr.apply_keystream(buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keystream_is_gcms() {
        // What `open_balanced` applies on a wrong tag is exactly what the
        // AEAD applies on a right one: seal, then XOR the keystream back out.
        let key = [7u8; KEY_LEN];
        for len in [0usize, 1, 16, 32, 33, 1092] {
            let plain: Vec<u8> = (0..len)
                .map(|i| u8::try_from(i * 31 % 251).unwrap())
                .collect();
            let mut ct = plain.clone();
            let _ = seal(&key, b"aad", &mut ct);
            let mut back = ct.clone();
            gcm_keystream(&key, &mut back);
            assert_eq!(back, plain, "length {len}");
        }
    }

    #[test]
    fn open_balanced_opens_and_refuses_like_open() {
        let key = [9u8; KEY_LEN];
        let mut ct = b"thirty-two bytes of payload key!".to_vec();
        let tag = seal(&key, b"", &mut ct);
        let mut buf = ct.clone();
        assert!(bool::from(open_balanced(&key, b"", &mut buf, &tag)));
        assert_eq!(&buf, b"thirty-two bytes of payload key!");
        let mut bad = tag;
        bad[0] ^= 1;
        let mut buf = ct.clone();
        assert!(!bool::from(open_balanced(&key, b"", &mut buf, &bad)));
        // A wrong tag still decrypts, and so costs the same keystream.
        assert_eq!(&buf, b"thirty-two bytes of payload key!");
        let mut plain = ct.clone();
        assert!(open(&key, b"", &mut plain, &tag));
    }
}
