//! The batched discrete-log-equality proof of RFC 9497 Section 2.2.
//!
//! A prover who knows k proves that `B = k·A` and `D[i] = k·C[i]` for every
//! i, with one proof of two scalars (`c`, `s`) whatever the batch's size:
//! the pairs are folded into one, `M = Σ d_i·C[i]` and `Z = Σ d_i·D[i]`,
//! with weights `d_i` hashed from the whole batch (Section 2.2.1,
//! `ComputeComposites`), and the Chaum-Pedersen proof of Section 2.2.1's
//! `GenerateProof` is made for `(A, B, M, Z)`.
//!
//! Written here rather than taken from the `voprf` crate, which implements
//! this proof for its own OPRF flow: that crate depends on
//! curve25519-dalek 4 (this tree has one curve25519-dalek, version 5), takes
//! its batch as blinded OPRF elements, and encodes each element's index in
//! two bytes (`I2OSP(i, 2)`), so a batch holds at most 65,536 pairs; an
//! audit proves a million. [`Suite::RFC9497_VOPRF`] is RFC 9497's own
//! encoding, checked against the RFC's test vectors
//! (`tests/rfc_vectors.rs`); [`Suite::AUDIT`] differs from it only in its
//! context string and the width of the index (SPEC Section 15.3).

use curve25519_dalek::traits::{Identity, VartimeMultiscalarMul};
use curve25519_dalek::{RistrettoPoint, Scalar};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::encoding::{SCALAR_LEN, array, decode_scalar_allow_zero};
use crate::error::Error;
use crate::hash_to_group::expand_message_xmd_sha512;

/// The encoding choices of one use of the proof: its context string (which
/// names the DSTs, RFC 9497 Section 2.2), how many bytes each element's
/// index takes in `ComputeComposites`, and whether the seed binds the whole
/// batch.
///
/// **Why the audit binds the batch.** RFC 9497 derives each weight `d_i`
/// from `(seed, i, C_i, D_i)` with a seed of B alone. There the client
/// chooses C and a batch is small. In the audit the prover chooses every D
/// (it builds the table) for a batch of up to 2^32 pairs: with per-pair
/// weights it could try many values of extra slots, each contributing an
/// independent `d_j·e_j` to the error, and solve for a subset that cancels
/// one false slot's error (a k-sum problem: Wagner, CRYPTO 2002; about 2^33
/// work with 2^10 extra pairs). Hashing every `C_i || D_i` into the seed
/// first makes every weight depend on every pair, so changing any slot
/// draws all the weights anew.
#[derive(Clone, Copy, Debug)]
pub struct Suite {
    context: &'static [u8],
    index_len: usize,
    bind_batch: bool,
}

impl Suite {
    /// RFC 9497's VOPRF mode for ristretto255-SHA512 (Section 3.1,
    /// `contextString = "OPRFV1-" || I2OSP(1, 1) || "-ristretto255-SHA512"`):
    /// only to check this code against the RFC's vectors.
    pub const RFC9497_VOPRF: Suite = Suite::rfc9497(b"OPRFV1-\x01-ristretto255-SHA512");

    /// The list audit's proof (SPEC Section 15.3): `T[slot_i] = α·H(y_i)`
    /// with `L = α·G`.
    pub const AUDIT: Suite = Suite {
        context: b"blindmatch-v1/audit-dleq",
        index_len: 4,
        bind_batch: true,
    };

    /// RFC 9497's encoding under `context` (a two-byte index, a seed of B
    /// alone): for its vectors, of any mode (POPRF's context differs). Not
    /// for a batch whose D the prover chooses (see the type's doc).
    #[doc(hidden)]
    pub const fn rfc9497(context: &'static [u8]) -> Suite {
        Suite {
            context,
            index_len: 2,
            bind_batch: false,
        }
    }

    /// The context string.
    pub fn context(&self) -> &'static [u8] {
        self.context
    }

    /// `HashToScalar(x)` of RFC 9497 Section 4.1 under this suite's
    /// context: `expand_message_xmd(x, "HashToScalar-" || contextString,
    /// 64)` as a little-endian integer mod ℓ.
    pub fn hash_to_scalar(&self, parts: &[&[u8]]) -> Scalar {
        let mut dst = b"HashToScalar-".to_vec();
        dst.extend_from_slice(self.context);
        let mut wide = [0u8; 64];
        if expand_message_xmd_sha512(parts, &dst, &mut wide).is_err() {
            unreachable!("64 bytes is a valid expand_message_xmd length");
        }
        Scalar::from_bytes_mod_order_wide(&wide)
    }

    /// The seed of `ComputeComposites`: `Hash(I2OSP(len(Bm), 2) || Bm ||
    /// I2OSP(len(seedDST), 2) || seedDST)` with `seedDST = "Seed-" ||
    /// contextString` and Hash SHA-512; for the audit, followed by the
    /// batch's digest (SPEC 15.3): `SHA-512("blindmatch-v1/audit-batch" ||
    /// I2OSP(m, 4) || C_0 || D_0 || ... || C_{m−1} || D_{m−1})`.
    pub(crate) fn seed(&self, b: &RistrettoPoint, pairs: &[Pair]) -> [u8; 64] {
        use sha2::Digest as _;
        let bm = b.compress();
        let mut seed_dst = b"Seed-".to_vec();
        seed_dst.extend_from_slice(self.context);
        let mut h = sha2::Sha512::new();
        h.update(32u16.to_be_bytes());
        h.update(bm.as_bytes());
        h.update(
            u16::try_from(seed_dst.len())
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
        h.update(&seed_dst);
        if self.bind_batch {
            let mut batch = sha2::Sha512::new();
            batch.update(b"blindmatch-v1/audit-batch");
            // `weights` refuses a bound batch of more than 2^32 − 1 pairs.
            batch.update(u32::try_from(pairs.len()).unwrap_or(u32::MAX).to_be_bytes());
            for p in pairs {
                batch.update(p.c_bytes);
                batch.update(p.d_bytes);
            }
            h.update(batch.finalize());
        }
        h.finalize().into()
    }

    /// The weight `d_i` of pair i: `HashToScalar(I2OSP(len(seed), 2) || seed
    /// || I2OSP(i, index_len) || I2OSP(32, 2) || Ci || I2OSP(32, 2) || Di ||
    /// "Composite")`.
    fn weight(&self, seed: &[u8; 64], i: usize, c: &[u8; 32], d: &[u8; 32]) -> Scalar {
        let index = (i as u64).to_be_bytes();
        let index = &index[8 - self.index_len..];
        let len = 32u16.to_be_bytes();
        self.hash_to_scalar(&[
            &64u16.to_be_bytes(),
            seed,
            index,
            &len,
            c,
            &len,
            d,
            b"Composite",
        ])
    }

    /// The weights of every pair (on all cores with the `parallel`
    /// feature).
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] if the batch has more pairs than the
    /// index width can number.
    pub(crate) fn weights(&self, b: &RistrettoPoint, pairs: &[Pair]) -> Result<Vec<Scalar>, Error> {
        // Indices 0..m fit the index width; a bound batch also writes m
        // itself in four bytes.
        let mut max = 1u64 << (8 * self.index_len.min(7));
        if self.bind_batch {
            max = max.min(u64::from(u32::MAX));
        }
        if pairs.len() as u64 > max {
            return Err(Error::InvalidParameter {
                name: "proof batch size",
                value: pairs.len() as u64,
                allowed: "at most 2^(8 · index bytes) pairs (2^32 − 1 for the audit)",
            });
        }
        let seed = self.seed(b, pairs);
        let indexed: Vec<(usize, &Pair)> = pairs.iter().enumerate().collect();
        Ok(crate::map_slice(&indexed, |(i, p)| {
            self.weight(&seed, *i, &p.c_bytes, &p.d_bytes)
        }))
    }

    /// `c = HashToScalar(I2OSP(32, 2) || Bm || I2OSP(32, 2) || a0 || ... ||
    /// I2OSP(32, 2) || a3 || "Challenge")` (RFC 9497 Section 2.2.1).
    fn challenge(&self, b: &RistrettoPoint, a: [&RistrettoPoint; 4]) -> Scalar {
        let len = 32u16.to_be_bytes();
        let [bm, a0, a1, a2, a3] = [b, a[0], a[1], a[2], a[3]].map(|p| p.compress().to_bytes());
        self.hash_to_scalar(&[
            &len,
            &bm,
            &len,
            &a0,
            &len,
            &a1,
            &len,
            &a2,
            &len,
            &a3,
            b"Challenge",
        ])
    }

    /// `GenerateProof(k, A, B, C, D)` with `A = G`, `B = k·G` (RFC 9497
    /// Section 2.2.1, with `ComputeCompositesFast`: `Z = k·M`). `r` is
    /// drawn from `rng`.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for more pairs than the index width
    /// numbers.
    pub fn prove<R: CryptoRng + ?Sized>(
        &self,
        k: &Scalar,
        pairs: &[Pair],
        rng: &mut R,
    ) -> Result<Proof, Error> {
        let r = Zeroizing::new(Scalar::random(rng));
        Ok(self.prove_with(k, pairs, &r)?.proof)
    }

    /// [`Suite::prove`] with a given `r` (RFC 9497's `ProofRandomScalar`),
    /// and every intermediate value, for test vectors. Never use a fixed
    /// `r` for two proofs under one key: it reveals k.
    #[doc(hidden)]
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for more pairs than the index width
    /// numbers.
    pub fn prove_with(&self, k: &Scalar, pairs: &[Pair], r: &Scalar) -> Result<Proving, Error> {
        let b = RistrettoPoint::mul_base(k);
        let weights = self.weights(&b, pairs)?;
        // M holds only public values: a variable-time sum is safe. k enters
        // through constant-time multiplications only.
        let m = sum_of_products(&weights, pairs.iter().map(|p| p.c));
        let z = k * m;
        let t2 = RistrettoPoint::mul_base(r);
        let t3 = r * m;
        let c = self.challenge(&b, [&m, &z, &t2, &t3]);
        let s = r - c * k;
        Ok(Proving {
            proof: Proof { c, s },
            composite_m: m,
            composite_z: z,
            t2,
            t3,
        })
    }

    /// `VerifyProof(A, B, C, D, proof)` with `A = G` (RFC 9497 Section
    /// 2.2.2): whether the proof shows `log_G(B) = log_{C[i]}(D[i])` for
    /// every pair.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] for more pairs than the index width
    /// numbers; a proof that does not verify is `Ok(false)`.
    pub fn verify(&self, b: &RistrettoPoint, pairs: &[Pair], proof: &Proof) -> Result<bool, Error> {
        let weights = self.weights(b, pairs)?;
        let m = sum_of_products(&weights, pairs.iter().map(|p| p.c));
        let z = sum_of_products(&weights, pairs.iter().map(|p| p.d));
        let t2 = RistrettoPoint::vartime_double_scalar_mul_basepoint(&proof.c, b, &proof.s);
        let t3 = RistrettoPoint::vartime_multiscalar_mul([proof.s, proof.c], [m, z]);
        Ok(self.challenge(b, [&m, &z, &t2, &t3]) == proof.c)
    }
}

/// One pair of the statement, `D = k·C`, with the encodings the weights
/// hash (the verifier decoded them from these bytes; the prover computed
/// them).
#[derive(Clone, Copy, Debug)]
pub struct Pair {
    /// C, here H(y).
    pub c: RistrettoPoint,
    /// D, here the table slot.
    pub d: RistrettoPoint,
    /// `Encode(C)`.
    pub c_bytes: [u8; 32],
    /// `Encode(D)`.
    pub d_bytes: [u8; 32],
}

impl Pair {
    /// The pair `(c, d)` with d given as its (already validated) encoding.
    pub fn new(c: RistrettoPoint, d: RistrettoPoint, d_bytes: [u8; 32]) -> Self {
        Pair {
            c,
            d,
            c_bytes: c.compress().to_bytes(),
            d_bytes,
        }
    }

    /// A pair as the prover needs it: [`Suite::prove`] reads D only as the
    /// bytes the weights hash (it computes `Z = k·M`), so D is not decoded
    /// (a decompression saved per pair; `d` is the identity here).
    pub fn for_prover(c: RistrettoPoint, d_bytes: [u8; 32]) -> Self {
        Pair {
            c,
            d: RistrettoPoint::identity(),
            c_bytes: c.compress().to_bytes(),
            d_bytes,
        }
    }
}

/// A proof: `SerializeScalar(c) || SerializeScalar(s)` (RFC 9497 Section
/// 2.2.1), 64 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proof {
    /// The challenge.
    pub c: Scalar,
    /// The response.
    pub s: Scalar,
}

/// The length of an encoded [`Proof`].
pub const PROOF_LEN: usize = 2 * SCALAR_LEN;

impl Proof {
    /// `c || s`, each 32 bytes little-endian.
    pub fn encode(&self) -> [u8; PROOF_LEN] {
        let mut out = [0u8; PROOF_LEN];
        out[..32].copy_from_slice(self.c.as_bytes());
        out[32..].copy_from_slice(self.s.as_bytes());
        out
    }

    /// Decodes [`Proof::encode`]: both scalars canonical (RFC 9497's
    /// `DeserializeScalar`; zero is allowed).
    ///
    /// # Errors
    /// [`Error::Length`] or [`Error::InvalidScalar`].
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let bytes: [u8; PROOF_LEN] = array(bytes, "proof")?;
        Ok(Proof {
            c: decode_scalar_allow_zero(array(&bytes[..32], "proof")?, "proof c")?,
            s: decode_scalar_allow_zero(array(&bytes[32..], "proof")?, "proof s")?,
        })
    }
}

/// A proof with the values it was computed from, for test vectors.
#[derive(Clone, Copy, Debug)]
pub struct Proving {
    /// The proof.
    pub proof: Proof,
    /// `M = Σ d_i·C[i]`.
    pub composite_m: RistrettoPoint,
    /// `Z = k·M`.
    pub composite_z: RistrettoPoint,
    /// `t2 = r·G`.
    pub t2: RistrettoPoint,
    /// `t3 = r·M`.
    pub t3: RistrettoPoint,
}

/// `Σ w_i·P_i` in variable time (public values only), in pieces on all
/// cores with the `parallel` feature: one Pippenger sum per piece.
fn sum_of_products(
    weights: &[Scalar],
    points: impl ExactSizeIterator<Item = RistrettoPoint>,
) -> RistrettoPoint {
    /// Pieces large enough that Pippenger's cost per point stays low.
    const PIECE: usize = 1 << 16;
    let points: Vec<RistrettoPoint> = points.collect();
    let pieces: Vec<usize> = (0..points.len().div_ceil(PIECE)).collect();
    crate::map_slice(&pieces, |&p| {
        let range = p * PIECE..((p + 1) * PIECE).min(points.len());
        RistrettoPoint::vartime_multiscalar_mul(&weights[range.clone()], &points[range])
    })
    .into_iter()
    .fold(RistrettoPoint::identity(), |acc, x| acc + x)
}
