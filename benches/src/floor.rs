//! The physical floor: the primitives each protocol operation must compute,
//! timed in this process, so that every other figure can be read as a ratio
//! to it.

use std::hint::black_box;
use std::time::Instant;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use blindmatch_protocol::hash_to_group::hash_item;
use blindmatch_protocol::{Item, ItemType};
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use hkdf::Hkdf;
use sha2::Sha256;

use crate::stats::median;

/// Per-operation times of the primitives, in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Floors {
    /// Variable-base scalar multiplication.
    pub varbase_mul_us: f64,
    /// Fixed-base scalar multiplication.
    pub fixed_base_mul_us: f64,
    /// Decompression of an element.
    pub decompress_us: f64,
    /// One element's share of `double_and_compress_batch` over 1024 elements.
    pub batch_compress_us: f64,
    /// Hash to the group of a SHA-256 item.
    pub hash_to_group_us: f64,
    /// HKDF-SHA256 extract and a 64-byte expand.
    pub kdf_us: f64,
    /// AES-256-GCM open of a 48-byte box (32 bytes and the tag).
    pub aead_open_us: f64,
    /// AES-256-GCM seal of the 1092-byte payload.
    pub aead_seal_payload_us: f64,
}

/// Median over 7 rounds of the time per call of `f`, in microseconds.
fn per_op_us(iters: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters / 4 {
        f();
    }
    let rounds: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / f64::from(iters)
        })
        .collect();
    median(&rounds)
}

impl Floors {
    /// Times every primitive (about two seconds; `scale` < 1 shortens it).
    pub fn measure(scale: f64) -> Floors {
        let n = |base: f64| ((base * scale) as u32).max(20);
        let mut rng = rand::rng();
        let s = Scalar::random(&mut rng);
        let p = RistrettoPoint::random(&mut rng);
        let enc = p.compress();
        let points: Vec<RistrettoPoint> = (0..1024)
            .map(|_| RistrettoPoint::random(&mut rng))
            .collect();
        let item = Item::new(ItemType::Sha256, &[7; 32]).unwrap_or_else(|_| unreachable!());
        let cipher = Aes256Gcm::new(&[3u8; 32].into());
        let nonce = Nonce::from([0u8; 12]);
        let mut boxed = [0u8; 32];
        let tag: Tag = cipher
            .encrypt_inout_detached(&nonce, &[], boxed.as_mut_slice().into())
            .unwrap_or_else(|_| unreachable!());
        let mut payload = vec![0u8; 1092];
        Floors {
            varbase_mul_us: per_op_us(n(2000.0), || {
                black_box(black_box(s) * black_box(p));
            }),
            fixed_base_mul_us: per_op_us(n(4000.0), || {
                black_box(RistrettoPoint::mul_base(black_box(&s)));
            }),
            decompress_us: per_op_us(n(10000.0), || {
                black_box(black_box(enc).decompress());
            }),
            batch_compress_us: per_op_us(n(40.0), || {
                black_box(RistrettoPoint::double_and_compress_batch(black_box(
                    &points,
                )));
            }) / points.len() as f64,
            hash_to_group_us: per_op_us(n(5000.0), || {
                black_box(hash_item(black_box(&item)));
            }),
            kdf_us: per_op_us(n(50000.0), || {
                let hk =
                    Hkdf::<Sha256>::new(Some(b"blindmatch-v1/voucher-kdf"), black_box(&[1u8; 32]));
                let mut okm = [0u8; 64];
                let _ = hk.expand(&[0u8; 65], &mut okm);
                black_box(okm);
            }),
            aead_open_us: per_op_us(n(100000.0), || {
                let c = Aes256Gcm::new(black_box(&[3u8; 32].into()));
                let mut b = boxed;
                let _ =
                    black_box(c.decrypt_inout_detached(&nonce, &[], b.as_mut_slice().into(), &tag));
            }),
            aead_seal_payload_us: per_op_us(n(50000.0), || {
                let _ = black_box(cipher.encrypt_inout_detached(
                    &nonce,
                    &[],
                    payload.as_mut_slice().into(),
                ));
            }),
        }
    }

    /// The server's floor per voucher: decompress Q, one variable-base
    /// multiplication, a share of batch compression, the KDF, one AEAD open,
    /// and the payload's opening, which every voucher does since evaluation
    /// is constant-work (SECURITY 7): one GHASH and one CTR pass over the
    /// payload, what sealing it costs. The list lookup that every voucher
    /// also does (its positions and a keyed fingerprint, two short hashes)
    /// is left out.
    pub fn server_us(&self) -> f64 {
        self.decompress_us
            + self.varbase_mul_us
            + self.batch_compress_us
            + self.kdf_us
            + self.aead_open_us
            + self.aead_seal_payload_us
    }

    /// The builder's floor per entry: hash to the group, one variable-base
    /// multiplication, a share of batch compression.
    pub fn build_us(&self) -> f64 {
        self.hash_to_group_us + self.varbase_mul_us + self.batch_compress_us
    }

    /// The client's floor per voucher for a table with `k` positions: hash to
    /// the group; β·H and β·T_j (k + 1 variable-base multiplications); γ·G and
    /// γ·L (two fixed-base); k decompressions; k + 1 batch-compression shares;
    /// k KDFs, k box seals (about one AEAD open each) and the payload seal.
    pub fn client_us(&self, k: u8) -> f64 {
        let k = f64::from(k);
        self.hash_to_group_us
            + (k + 1.0) * self.varbase_mul_us
            + 2.0 * self.fixed_base_mul_us
            + k * self.decompress_us
            + (k + 1.0) * self.batch_compress_us
            + k * (self.kdf_us + self.aead_open_us)
            + self.aead_seal_payload_us
    }
}
