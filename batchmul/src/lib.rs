//! # blindmatch-batchmul
//!
//! The server's hot loop: for every voucher, decode the client's point Q,
//! multiply it by the secret key α and encode the product (SPEC Section 7,
//! step 2). The table builder does the same to every H(y), from the 64
//! bytes RFC 9380 hashes each item to ([`BatchMul::mul_uniform`]: RFC 9496's
//! Elligator map twice, an addition, α·, encoding), and doubles its fillers
//! ([`double_uniform`]). Thousands of independent points, one scalar.
//!
//! curve25519-dalek computes one point at a time. Its AVX-512 IFMA backend
//! spreads the four coordinates of that one point over a 256-bit vector,
//! which needs shuffles and blends between the steps of each formula and
//! leaves half of a 512-bit register unused. Here each 64-bit lane of a
//! 512-bit register holds a *different point*: eight points, each lane doing
//! exactly what curve25519-dalek's serial code does for one, in step. There
//! is nothing to shuffle, and because all eight share α they share each of
//! its window digits, so the constant-time table scan uses one mask per
//! entry for all lanes.
//!
//! ## How it is put together
//!
//! - `lanes` (`src/lanes.rs`): the dozen lane operations the arithmetic
//!   needs, as a trait with two implementations: one AVX-512 instruction
//!   each (`ifma`), and the same semantics in plain Rust (`Portable`), used by
//!   the tests on every machine (compiled only for them: feature
//!   `test-hooks`).
//! - `field` (`src/field.rs`): GF(2^255 - 19) in radix 2^51 on the 52-bit
//!   multiplier, with the bounds that make lazy reduction safe.
//! - `point` (`src/point.rs`): RFC 9496 decoding, encoding and one-way
//!   map, and dalek's fixed-window multiplication, lane by lane.
//! - `ifma`: the only `unsafe` code, around the intrinsics.
//!
//! [`BatchMul`] chooses once, when it is made, between this kernel (where
//! the CPU has AVX-512 IFMA) and curve25519-dalek (everywhere else), and
//! says which it chose ([`BatchMul::backend`]). Both give the same bytes for
//! every input; the tests check that against dalek on random and edge-case
//! inputs and RFC 9496's vectors, with the portable lanes on every machine,
//! and with the instructions themselves where the CPU has them, or where an
//! emulator does: `emulate-ifma.sh` runs those tests on Bochs's Tiger Lake.
//! And before a process first uses the kernel, the kernel must give dalek's
//! bytes on a fixed set of inputs on this very CPU (a known-answer test,
//! [`Backend::availability`]); if it does not, dalek is used and
//! [`Unavailable::FailedSelfTest`] says why.
//!
//! ## Constant time
//!
//! The kernel's code has no branch and no memory index that depends on α or
//! on a point: every step is the same sequence of lane operations whatever
//! the values (see `field` (`src/field.rs`) and `point` (`src/point.rs`) for
//! the two places where a choice is made, both by masks). Which inputs
//! decoded is computed the same way and looked at only at the end, lane by
//! lane; it is public anyway (a voucher whose Q does not decode is refused).
//! α's radix-16 digits are zeroized when the [`BatchMul`] is dropped.

// Elsewhere than on x86_64, and outside this crate's tests, nothing runs the
// kernel: its generic code is checked by the compiler but never
// instantiated, so it costs no code, and saying so per item would hide the
// warning where it matters.
#![cfg_attr(
    not(any(target_arch = "x86_64", feature = "test-hooks")),
    allow(dead_code)
)]

mod field;
#[cfg(target_arch = "x86_64")]
mod ifma;
mod lanes;
mod point;

use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use zeroize::Zeroizing;

/// The arithmetic a [`BatchMul`] runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// This crate's kernel: eight points per AVX-512 register.
    Avx512Ifma8,
    /// curve25519-dalek, one point at a time, with whichever of its
    /// backends it chose for this CPU.
    Dalek,
}

impl Backend {
    /// The fastest backend this CPU runs correctly: the kernel where the
    /// CPU has AVX-512 IFMA and the kernel passed its known-answer test
    /// ([`Backend::availability`]), curve25519-dalek everywhere else.
    pub fn detect() -> Backend {
        match Backend::Avx512Ifma8.availability() {
            Ok(()) => Backend::Avx512Ifma8,
            Err(_) => Backend::Dalek,
        }
    }

    /// Whether this machine runs this backend.
    pub fn is_available(self) -> bool {
        self.availability().is_ok()
    }

    /// Whether this machine runs this backend, and if not, why.
    ///
    /// The kernel is used only after it has given curve25519-dalek's bytes
    /// for a fixed set of inputs on this CPU, once per process (a
    /// known-answer test, as FIPS 140 modules run at power-on): the
    /// instructions are new, and a CPU, an emulator or a hypervisor that
    /// gets one of them wrong in a way these inputs show should cost speed,
    /// not give wrong bytes. (It is a smoke test, not a proof: the tests in
    /// `tests/` are what check the kernel on many inputs.)
    ///
    /// # Errors
    /// [`Unavailable`], saying why.
    pub fn availability(self) -> Result<(), Unavailable> {
        match self {
            Backend::Dalek => Ok(()),
            Backend::Avx512Ifma8 => {
                #[cfg(target_arch = "x86_64")]
                {
                    kernel().map(|_| ())
                }
                #[cfg(not(target_arch = "x86_64"))]
                {
                    Err(Unavailable::NoInstructions(self))
                }
            }
        }
    }
}

impl core::fmt::Display for Backend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Backend::Avx512Ifma8 => "avx512ifma-8way",
            Backend::Dalek => "curve25519-dalek",
        })
    }
}

/// Why a [`Backend`] is not available here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unavailable {
    /// This CPU does not have the instructions.
    NoInstructions(Backend),
    /// This CPU has the instructions, but the kernel's known-answer test
    /// gave bytes other than curve25519-dalek's: a fault of the CPU, of
    /// whatever emulates it, or of this crate. The backend is not used.
    FailedSelfTest(Backend),
}

impl core::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Unavailable::NoInstructions(b) => write!(f, "this CPU cannot run the {b} backend"),
            Unavailable::FailedSelfTest(b) => write!(
                f,
                "the {b} backend gave wrong results in its known-answer test on this CPU, \
                 so it is not used"
            ),
        }
    }
}

impl std::error::Error for Unavailable {}

/// The kernel, if this CPU runs it and it passed its known-answer test:
/// decided once per process.
#[cfg(target_arch = "x86_64")]
fn kernel() -> Result<ifma::Avx512Ifma, Unavailable> {
    static KERNEL: std::sync::OnceLock<Result<ifma::Avx512Ifma, Unavailable>> =
        std::sync::OnceLock::new();
    *KERNEL.get_or_init(|| {
        let cpu =
            ifma::Avx512Ifma::detect().ok_or(Unavailable::NoInstructions(Backend::Avx512Ifma8))?;
        if known_answers_agree(
            |d, e| ifma::mul_encoded_x8(cpu, d, e),
            |e| ifma::decodes_x8(cpu, e),
            |d, u| ifma::mul_uniform_x8(cpu, d, u),
            |u| ifma::double_uniform_x8(cpu, u),
        ) {
            Ok(cpu)
        } else {
            Err(Unavailable::FailedSelfTest(Backend::Avx512Ifma8))
        }
    })
}

/// The known-answer test: each of a kernel's four entry points, on one
/// group of eight inputs each, against curve25519-dalek. The inputs cover
/// what the formulas treat differently: the identity, an invalid and a
/// non-canonical encoding, negative and non-negative coordinates (from
/// several multiples of the base point), and a scalar with digits of
/// both signs.
#[cfg(any(target_arch = "x86_64", test, feature = "test-hooks"))]
fn known_answers_agree(
    mul_encoded: impl Fn(&[i8; 64], &[[u8; 32]; 8]) -> ([[u8; 32]; 8], [bool; 8]),
    decodes: impl Fn(&[[u8; 32]; 8]) -> [bool; 8],
    mul_uniform: impl Fn(&[i8; 64], &[[u8; 64]; 8]) -> [[u8; 32]; 8],
    double_uniform: impl Fn(&[[u8; 64]; 8]) -> [[u8; 32]; 8],
) -> bool {
    use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
    let scalar = Scalar::from_bytes_mod_order(core::array::from_fn(|i| {
        // 0x00, 0x97, 0x2e, ...: every nibble value, both digit signs.
        u8::try_from((i * 151) % 256).unwrap_or(0)
    }));
    let digits = point::radix_16(scalar.as_bytes());
    let mut encodings: [[u8; 32]; 8] = core::array::from_fn(|i| {
        (Scalar::from(u64::try_from(i).unwrap_or(0) * 0x9e37_79b9 + 3) * RISTRETTO_BASEPOINT_POINT)
            .compress()
            .to_bytes()
    });
    // The identity; p itself (non-canonical zero); a point's encoding with
    // bit 255 set.
    encodings[0] = [0; 32];
    encodings[5] = {
        let mut p = [0xff; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        p
    };
    encodings[6][31] |= 0x80;
    let uniform: [[u8; 64]; 8] = core::array::from_fn(|i| {
        core::array::from_fn(|j| u8::try_from((i * 64 + j) * 89 % 256).unwrap_or(0))
    });

    let want_points = encodings.map(|e| CompressedRistretto(e).decompress());
    let want_products = want_points.map(|p| p.map(|p| (scalar * p).compress().to_bytes()));
    let (products, valid) = mul_encoded(&digits, &encodings);
    let got_products: [Option<[u8; 32]>; 8] =
        core::array::from_fn(|l| valid[l].then_some(products[l]));
    let from_uniform = uniform.map(|u| RistrettoPoint::from_uniform_bytes(&u));
    got_products == want_products
        && decodes(&encodings) == want_points.map(|p| p.is_some())
        && mul_uniform(&digits, &uniform)
            == from_uniform.map(|p| (scalar * p).compress().to_bytes())
        && double_uniform(&uniform) == from_uniform.map(|p| (p + p).compress().to_bytes())
}

/// Multiplies many ristretto255 encodings by one secret scalar.
pub struct BatchMul {
    backend: Backend,
    /// The scalar's signed radix-16 digits, for the kernel.
    digits: Zeroizing<[i8; 64]>,
    /// Half the scalar, for dalek's path: (s/2)·Q is doubled during batch
    /// encoding, which shares one field inversion across the batch.
    half: Zeroizing<Scalar>,
}

impl core::fmt::Debug for BatchMul {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BatchMul")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl BatchMul {
    /// A multiplier by `scalar` on the fastest backend this CPU runs.
    pub fn new(scalar: &Scalar) -> BatchMul {
        BatchMul::on(Backend::detect(), scalar)
    }

    /// A multiplier by `scalar` on `backend` (to compare the two).
    ///
    /// # Errors
    /// [`Unavailable`] if this machine does not run it.
    pub fn with_backend(scalar: &Scalar, backend: Backend) -> Result<BatchMul, Unavailable> {
        backend.availability()?;
        Ok(BatchMul::on(backend, scalar))
    }

    fn on(backend: Backend, scalar: &Scalar) -> BatchMul {
        BatchMul {
            backend,
            digits: Zeroizing::new(point::radix_16(scalar.as_bytes())),
            half: Zeroizing::new(scalar * Scalar::from(2u8).invert()),
        }
    }

    /// The backend this multiplier runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The kernel's CPU token, if this multiplier runs on the kernel.
    #[cfg(target_arch = "x86_64")]
    fn cpu(&self) -> Option<ifma::Avx512Ifma> {
        match self.backend {
            // `on` is only given a backend that was available, so this is
            // always `Ok`; dalek's path stays correct anyway.
            Backend::Avx512Ifma8 => kernel().ok(),
            Backend::Dalek => None,
        }
    }

    /// For each encoding: decode it as a ristretto255 element (RFC 9496,
    /// Section 4.3.1), multiply by the scalar, and encode the product
    /// (Section 4.3.2); `None` where the input is not a valid encoding. The
    /// identity is valid (its encoding is all zeros, and so is its product's).
    pub fn mul_encoded(&self, encodings: &[[u8; 32]]) -> Vec<Option<[u8; 32]>> {
        #[cfg(target_arch = "x86_64")]
        if let Some(cpu) = self.cpu() {
            return self.kernel(encodings, |d, e| ifma::mul_encoded_x8(cpu, d, e));
        }
        let points: Vec<Option<RistrettoPoint>> = encodings
            .iter()
            .map(|e| CompressedRistretto(*e).decompress())
            .collect();
        let halves: Vec<RistrettoPoint> = points.iter().flatten().map(|q| *self.half * q).collect();
        let mut products = RistrettoPoint::double_and_compress_batch(&halves).into_iter();
        points
            .iter()
            .map(|p| p.and_then(|_| products.next().map(|c| c.to_bytes())))
            .collect()
    }

    /// For each 64-byte string: derive a ristretto255 element from it
    /// (RFC 9496, Section 4.3.4, curve25519-dalek's
    /// `RistrettoPoint::from_uniform_bytes`, the last step of RFC 9380's
    /// `hash_to_ristretto255`), multiply by the scalar, and encode the
    /// product: what the table builder computes for every entry.
    pub fn mul_uniform(&self, uniform: &[[u8; 64]]) -> Vec<[u8; 32]> {
        #[cfg(target_arch = "x86_64")]
        if let Some(cpu) = self.cpu() {
            return eights(uniform, [0; 64], |u| {
                ifma::mul_uniform_x8(cpu, &self.digits, u)
            });
        }
        let halves: Vec<RistrettoPoint> = uniform
            .iter()
            .map(|u| *self.half * RistrettoPoint::from_uniform_bytes(u))
            .collect();
        encodings(&RistrettoPoint::double_and_compress_batch(&halves))
    }

    /// Eight at a time ([`eights`]).
    #[cfg(any(target_arch = "x86_64", feature = "test-hooks"))]
    fn kernel(
        &self,
        encodings: &[[u8; 32]],
        x8: impl Fn(&[i8; 64], &[[u8; 32]; 8]) -> ([[u8; 32]; 8], [bool; 8]),
    ) -> Vec<Option<[u8; 32]>> {
        eights(encodings, [0; 32], |lanes| {
            let (products, valid) = x8(&self.digits, lanes);
            core::array::from_fn(|l| valid[l].then_some(products[l]))
        })
    }
}

/// For each 64-byte string: derive a ristretto255 element from it (as
/// [`BatchMul::mul_uniform`] does), double it and encode the result: the
/// table builder's filler slots, which hold twice a hashed point. Eight at a
/// time on the kernel where [`Backend::detect`] chose it, with
/// curve25519-dalek elsewhere.
pub fn double_uniform(uniform: &[[u8; 64]]) -> Vec<[u8; 32]> {
    #[cfg(target_arch = "x86_64")]
    if let Ok(cpu) = kernel() {
        return eights(uniform, [0; 64], |u| ifma::double_uniform_x8(cpu, u));
    }
    let points: Vec<RistrettoPoint> = uniform
        .iter()
        .map(RistrettoPoint::from_uniform_bytes)
        .collect();
    encodings(&RistrettoPoint::double_and_compress_batch(&points))
}

/// Whether each encoding is a valid ristretto255 encoding (RFC 9496,
/// Section 4.3.1): eight at a time on the kernel where [`Backend::detect`]
/// chose it, with curve25519-dalek elsewhere. For a server that must refuse
/// a malformed Q before it acknowledges a submission, at an eighth of a
/// decoding per Q.
pub fn decodes(encodings: &[[u8; 32]]) -> Vec<bool> {
    #[cfg(target_arch = "x86_64")]
    if let Ok(cpu) = kernel() {
        return eights(encodings, [0; 32], |e| ifma::decodes_x8(cpu, e));
    }
    encodings
        .iter()
        .map(|e| CompressedRistretto(*e).decompress().is_some())
        .collect()
}

fn encodings(points: &[CompressedRistretto]) -> Vec<[u8; 32]> {
    points.iter().map(CompressedRistretto::to_bytes).collect()
}

/// Eight at a time, a last partial group padded with `pad` (the identity's
/// encoding, or any 64 bytes, so that every group costs the same): `x8` on
/// each group, its first results kept.
fn eights<I: Copy, T: Copy>(inputs: &[I], pad: I, x8: impl Fn(&[I; 8]) -> [T; 8]) -> Vec<T> {
    let mut out = Vec::with_capacity(inputs.len());
    for group in inputs.chunks(8) {
        let mut lanes = [pad; 8];
        lanes[..group.len()].copy_from_slice(group);
        out.extend_from_slice(&x8(&lanes)[..group.len()]);
    }
    out
}

/// The four computations on the portable lanes, each compiled once: they
/// are `#[inline(always)]` for the instructions' sake, and inlined into each
/// of the test hooks below they made functions of hundreds of kilobytes
/// that took rustc many minutes.
#[cfg(any(test, feature = "test-hooks"))]
mod portable {
    use crate::{lanes::Portable, point};

    #[inline(never)]
    pub(crate) fn mul_encoded(
        digits: &[i8; 64],
        encodings: &[[u8; 32]; 8],
    ) -> ([[u8; 32]; 8], [bool; 8]) {
        point::mul_encoded::<Portable>(digits, encodings)
    }

    #[inline(never)]
    pub(crate) fn decodes(encodings: &[[u8; 32]; 8]) -> [bool; 8] {
        point::decodes::<Portable>(encodings)
    }

    #[inline(never)]
    pub(crate) fn mul_uniform(digits: &[i8; 64], uniform: &[[u8; 64]; 8]) -> [[u8; 32]; 8] {
        point::mul_uniform::<Portable>(digits, uniform)
    }

    #[inline(never)]
    pub(crate) fn double_uniform(uniform: &[[u8; 64]; 8]) -> [[u8; 32]; 8] {
        point::double_uniform::<Portable>(uniform)
    }
}

/// [`decodes`] on the portable lanes (for the tests).
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub fn decodes_portable(encodings: &[[u8; 32]]) -> Vec<bool> {
    eights(encodings, [0; 32], portable::decodes)
}

/// [`BatchMul::mul_uniform`] on the portable lanes (for the tests).
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub fn mul_uniform_portable(scalar: &Scalar, uniform: &[[u8; 64]]) -> Vec<[u8; 32]> {
    let digits = Zeroizing::new(point::radix_16(scalar.as_bytes()));
    eights(uniform, [0; 64], |u| portable::mul_uniform(&digits, u))
}

/// [`double_uniform`] on the portable lanes (for the tests).
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub fn double_uniform_portable(uniform: &[[u8; 64]]) -> Vec<[u8; 32]> {
    eights(uniform, [0; 64], portable::double_uniform)
}

/// Whether the portable lanes pass the known-answer test that the kernel
/// must pass before it is used (for the tests: the test itself must be
/// able to pass).
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub fn portable_passes_known_answers() -> bool {
    known_answers_agree(
        portable::mul_encoded,
        portable::decodes,
        portable::mul_uniform,
        portable::double_uniform,
    )
}

/// One group of eight through the kernel on `lanes::Portable`, from the
/// scalar's bytes (below 2^255), with no branch anywhere on the way in or
/// out: what `tests/constant_time.rs` runs under valgrind with the scalar
/// and the points marked secret.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub fn mul_encoded_x8_portable(
    scalar: &[u8; 32],
    encodings: &[[u8; 32]; 8],
) -> ([[u8; 32]; 8], [bool; 8]) {
    let digits = Zeroizing::new(point::radix_16(scalar));
    portable::mul_encoded(&digits, encodings)
}

/// One group of eight 64-byte strings through the table builder's kernel
/// on `lanes::Portable` ([`BatchMul::mul_uniform`] and [`double_uniform`]),
/// for `tests/constant_time.rs`: the list's items are secret too.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub fn uniform_x8_portable(
    scalar: &[u8; 32],
    uniform: &[[u8; 64]; 8],
) -> ([[u8; 32]; 8], [[u8; 32]; 8]) {
    let digits = Zeroizing::new(point::radix_16(scalar));
    (
        portable::mul_uniform(&digits, uniform),
        portable::double_uniform(uniform),
    )
}

/// The kernel on `lanes::Portable`: the same arithmetic as the AVX-512
/// path, without the instructions. Slow; for the tests.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub fn mul_encoded_portable(scalar: &Scalar, encodings: &[[u8; 32]]) -> Vec<Option<[u8; 32]>> {
    let m = BatchMul::on(Backend::Dalek, scalar);
    m.kernel(encodings, portable::mul_encoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The known-answer test must refuse a kernel that is wrong in any one
    /// of its entry points, even in one lane.
    #[test]
    fn known_answer_test_refuses_a_wrong_kernel() {
        let flip = |mut b: [[u8; 32]; 8]| {
            b[3][7] ^= 1;
            b
        };
        assert!(!known_answers_agree(
            |d, e| {
                let (p, v) = portable::mul_encoded(d, e);
                (flip(p), v)
            },
            portable::decodes,
            portable::mul_uniform,
            portable::double_uniform,
        ));
        assert!(!known_answers_agree(
            portable::mul_encoded,
            |e| {
                let mut v = portable::decodes(e);
                v[5] = !v[5];
                v
            },
            portable::mul_uniform,
            portable::double_uniform,
        ));
        assert!(!known_answers_agree(
            portable::mul_encoded,
            portable::decodes,
            |d, u| flip(portable::mul_uniform(d, u)),
            portable::double_uniform,
        ));
        assert!(!known_answers_agree(
            portable::mul_encoded,
            portable::decodes,
            portable::mul_uniform,
            |u| flip(portable::double_uniform(u)),
        ));
        assert!(known_answers_agree(
            portable::mul_encoded,
            portable::decodes,
            portable::mul_uniform,
            portable::double_uniform,
        ));
    }
}
