//! # blindmatch-batchmul
//!
//! The server's hot loop: for every voucher, decode the client's point Q,
//! multiply it by the secret key α and encode the product (SPEC Section 7,
//! step 2). The table builder does the same to every H(y). Thousands of
//! independent points, one scalar.
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
//!   the tests on every machine.
//! - `field` (`src/field.rs`): GF(2^255 - 19) in radix 2^51 on the 52-bit
//!   multiplier, with the bounds that make lazy reduction safe.
//! - `point` (`src/point.rs`): RFC 9496 decoding and encoding and dalek's
//!   fixed-window multiplication, lane by lane.
//! - `ifma`: the only `unsafe` code, around the intrinsics.
//!
//! [`BatchMul`] chooses once, when it is made, between this kernel (where
//! the CPU has AVX-512 IFMA) and curve25519-dalek (everywhere else), and
//! says which it chose ([`BatchMul::backend`]). Both give the same bytes for
//! every input; the tests check that against dalek on random and edge-case
//! encodings with the portable lanes on every machine, and with the
//! instructions themselves where the CPU has them, or where an emulator
//! does: `emulate-ifma.sh` runs those tests on Bochs's Tiger Lake.
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
    /// The fastest backend this CPU runs.
    pub fn detect() -> Backend {
        #[cfg(target_arch = "x86_64")]
        if ifma::Avx512Ifma::detect().is_some() {
            return Backend::Avx512Ifma8;
        }
        Backend::Dalek
    }

    /// Whether this CPU runs this backend.
    pub fn is_available(self) -> bool {
        match self {
            Backend::Dalek => true,
            Backend::Avx512Ifma8 => Backend::detect() == Backend::Avx512Ifma8,
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

/// The error of [`BatchMul::with_backend`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unavailable(pub Backend);

impl core::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "this CPU cannot run the {} backend", self.0)
    }
}

impl std::error::Error for Unavailable {}

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
    /// [`Unavailable`] if this CPU cannot run it.
    pub fn with_backend(scalar: &Scalar, backend: Backend) -> Result<BatchMul, Unavailable> {
        if !backend.is_available() {
            return Err(Unavailable(backend));
        }
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

    /// For each encoding: decode it as a ristretto255 element (RFC 9496,
    /// Section 4.3.1), multiply by the scalar, and encode the product
    /// (Section 4.3.2); `None` where the input is not a valid encoding. The
    /// identity is valid (its encoding is all zeros, and so is its product's).
    pub fn mul_encoded(&self, encodings: &[[u8; 32]]) -> Vec<Option<[u8; 32]>> {
        match self.backend {
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512Ifma8 => match ifma::Avx512Ifma::detect() {
                Some(cpu) => self.kernel(encodings, |d, e| ifma::mul_encoded_x8(cpu, d, e)),
                // Unreachable: `with_backend` checked. Stay correct anyway.
                None => self.dalek(encodings),
            },
            _ => self.dalek(encodings),
        }
    }

    /// Eight at a time ([`eights`]).
    fn kernel(
        &self,
        encodings: &[[u8; 32]],
        x8: impl Fn(&[i8; 64], &[[u8; 32]; 8]) -> ([[u8; 32]; 8], [bool; 8]),
    ) -> Vec<Option<[u8; 32]>> {
        eights(encodings, |lanes| {
            let (products, valid) = x8(&self.digits, lanes);
            core::array::from_fn(|l| valid[l].then_some(products[l]))
        })
    }

    fn dalek(&self, encodings: &[[u8; 32]]) -> Vec<Option<[u8; 32]>> {
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
}

/// Whether each encoding is a valid ristretto255 encoding (RFC 9496,
/// Section 4.3.1): eight at a time on AVX-512 IFMA, with curve25519-dalek
/// elsewhere. For a server that must refuse a malformed Q before it
/// acknowledges a submission, at an eighth of a decoding per Q.
pub fn decodes(encodings: &[[u8; 32]]) -> Vec<bool> {
    #[cfg(target_arch = "x86_64")]
    if let Some(cpu) = ifma::Avx512Ifma::detect() {
        return eights(encodings, |e| ifma::decodes_x8(cpu, e));
    }
    encodings
        .iter()
        .map(|e| CompressedRistretto(*e).decompress().is_some())
        .collect()
}

/// Eight at a time, a last partial group padded with the identity's
/// encoding (so every group costs the same): `x8` on each group, its first
/// results kept.
fn eights<T: Copy>(encodings: &[[u8; 32]], x8: impl Fn(&[[u8; 32]; 8]) -> [T; 8]) -> Vec<T> {
    let mut out = Vec::with_capacity(encodings.len());
    for group in encodings.chunks(8) {
        let mut lanes = [[0u8; 32]; 8];
        lanes[..group.len()].copy_from_slice(group);
        out.extend_from_slice(&x8(&lanes)[..group.len()]);
    }
    out
}

/// [`decodes`] on the portable lanes (for the tests).
#[doc(hidden)]
pub fn decodes_portable(encodings: &[[u8; 32]]) -> Vec<bool> {
    eights(encodings, point::decodes::<lanes::Portable>)
}

/// One group of eight through the kernel on `lanes::Portable`, from the
/// scalar's bytes (below 2^255), with no branch anywhere on the way in or
/// out: what `tests/constant_time.rs` runs under valgrind with the scalar
/// and the points marked secret.
#[doc(hidden)]
pub fn mul_encoded_x8_portable(
    scalar: &[u8; 32],
    encodings: &[[u8; 32]; 8],
) -> ([[u8; 32]; 8], [bool; 8]) {
    let digits = Zeroizing::new(point::radix_16(scalar));
    point::mul_encoded::<lanes::Portable>(&digits, encodings)
}

/// The kernel on `lanes::Portable`: the same arithmetic as the AVX-512
/// path, without the instructions. Slow; for the tests.
#[doc(hidden)]
pub fn mul_encoded_portable(scalar: &Scalar, encodings: &[[u8; 32]]) -> Vec<Option<[u8; 32]>> {
    let m = BatchMul::on(Backend::Dalek, scalar);
    m.kernel(encodings, point::mul_encoded::<lanes::Portable>)
}
