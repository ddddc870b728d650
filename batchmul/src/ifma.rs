//! [`Lanes`] on one AVX-512 register, and the entry points compiled for it.
//!
//! This is the crate's only `unsafe` code. Two kinds of operation need it:
//!
//! - Calling an intrinsic from a method of [`Ifma`]. Those methods carry no
//!   `#[target_feature]` of their own (trait methods cannot); they are
//!   `#[inline(always)]` and are only ever inlined into the functions here
//!   compiled with `avx512f` and `avx512ifma`: the entry points
//!   ([`mul_encoded`], [`decodes`], [`mul_uniform`], [`double_uniform`]),
//!   and [`fe_mul`], [`fe_square`] and [`fe_pow_p58`], which they call. `Ifma` is private
//!   to this module and those are its only users, so no `Ifma` value exists
//!   outside code compiled for those features.
//! - Calling an entry point itself, which is only done through an
//!   [`Avx512Ifma`] token: the proof that the CPU was asked and said yes.

#![allow(unsafe_code)]

use core::arch::x86_64::{
    __m512i, _mm512_add_epi64, _mm512_and_si512, _mm512_cmpeq_epi64_mask, _mm512_madd52hi_epu64,
    _mm512_madd52lo_epu64, _mm512_maskz_set1_epi64, _mm512_or_si512, _mm512_set1_epi64,
    _mm512_slli_epi64, _mm512_srli_epi64, _mm512_sub_epi64, _mm512_xor_si512,
};

use crate::lanes::Lanes;

/// Proof that this CPU runs AVX-512F and AVX-512 IFMA instructions.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx512Ifma(());

impl Avx512Ifma {
    /// Asks the CPU (std caches the answer).
    pub(crate) fn detect() -> Option<Self> {
        (std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512ifma"))
            .then_some(Avx512Ifma(()))
    }
}

/// Eight lanes in one 512-bit register.
#[derive(Clone, Copy)]
struct Ifma(__m512i);

// SAFETY (every `unsafe` block in this impl): the intrinsic (or `fe_mul`,
// `fe_square`, `fe_pow_p58`) needs avx512f or avx512ifma, and this code only runs inlined
// into functions compiled with both, called only on a CPU that has them
// (module notes).
// The transmutes reinterpret 64 bytes as 64 bytes; every bit pattern is a
// valid `[u64; 8]` and a valid `__m512i`.
impl Lanes for Ifma {
    #[inline(always)]
    fn splat(x: u64) -> Self {
        Ifma(unsafe { _mm512_set1_epi64(x.cast_signed()) })
    }
    #[inline(always)]
    fn from_array(a: [u64; 8]) -> Self {
        Ifma(unsafe { core::mem::transmute::<[u64; 8], __m512i>(a) })
    }
    #[inline(always)]
    fn to_array(self) -> [u64; 8] {
        unsafe { core::mem::transmute::<__m512i, [u64; 8]>(self.0) }
    }
    #[inline(always)]
    fn add(self, rhs: Self) -> Self {
        Ifma(unsafe { _mm512_add_epi64(self.0, rhs.0) })
    }
    #[inline(always)]
    fn sub(self, rhs: Self) -> Self {
        Ifma(unsafe { _mm512_sub_epi64(self.0, rhs.0) })
    }
    #[inline(always)]
    fn and(self, rhs: Self) -> Self {
        Ifma(unsafe { _mm512_and_si512(self.0, rhs.0) })
    }
    #[inline(always)]
    fn or(self, rhs: Self) -> Self {
        Ifma(unsafe { _mm512_or_si512(self.0, rhs.0) })
    }
    #[inline(always)]
    fn xor(self, rhs: Self) -> Self {
        Ifma(unsafe { _mm512_xor_si512(self.0, rhs.0) })
    }
    #[inline(always)]
    fn shr<const N: u32>(self) -> Self {
        Ifma(unsafe { _mm512_srli_epi64::<N>(self.0) })
    }
    #[inline(always)]
    fn shl<const N: u32>(self) -> Self {
        Ifma(unsafe { _mm512_slli_epi64::<N>(self.0) })
    }
    #[inline(always)]
    fn madd52lo(self, x: Self, y: Self) -> Self {
        Ifma(unsafe { _mm512_madd52lo_epu64(self.0, x.0, y.0) })
    }
    #[inline(always)]
    fn madd52hi(self, x: Self, y: Self) -> Self {
        Ifma(unsafe { _mm512_madd52hi_epu64(self.0, x.0, y.0) })
    }
    #[inline(always)]
    fn eq(self, rhs: Self) -> Self {
        Ifma(unsafe { _mm512_maskz_set1_epi64(_mm512_cmpeq_epi64_mask(self.0, rhs.0), -1) })
    }
    // Through a pointer the optimiser cannot see through, so that the
    // multiplication stays one function called from hundreds of places
    // instead of being inlined into each (one copy fits the instruction
    // cache; two hundred do not). `#[inline(never)]` does not do this:
    // rustc applies it to a target-feature function only at call sites
    // compiled with those features, and this method is not.
    #[inline(always)]
    fn fe_mul(x: &[Self; 5], y: &[Self; 5]) -> [Self; 5] {
        let f: unsafe fn(&[Ifma; 5], &[Ifma; 5]) -> [Ifma; 5] = fe_mul;
        unsafe { core::hint::black_box(f)(x, y) }
    }
    #[inline(always)]
    fn fe_square(x: &[Self; 5]) -> [Self; 5] {
        let f: unsafe fn(&[Ifma; 5]) -> [Ifma; 5] = fe_square;
        unsafe { core::hint::black_box(f)(x) }
    }
    #[inline(always)]
    fn fe_pow_p58(x: &[Self; 5]) -> [Self; 5] {
        let f: unsafe fn(&[Ifma; 5]) -> [Ifma; 5] = fe_pow_p58;
        unsafe { core::hint::black_box(f)(x) }
    }
}

/// [`crate::field::pow_p58`], compiled for the instructions.
#[target_feature(enable = "avx512f,avx512ifma")]
fn fe_pow_p58(x: &[Ifma; 5]) -> [Ifma; 5] {
    crate::field::pow_p58(x)
}

/// [`crate::field::mul`], compiled for the instructions.
#[target_feature(enable = "avx512f,avx512ifma")]
fn fe_mul(x: &[Ifma; 5], y: &[Ifma; 5]) -> [Ifma; 5] {
    crate::field::mul(x, y)
}

/// [`crate::field::square`], compiled for the instructions.
#[target_feature(enable = "avx512f,avx512ifma")]
fn fe_square(x: &[Ifma; 5]) -> [Ifma; 5] {
    crate::field::square(x)
}

/// [`crate::point::mul_encoded`] on AVX-512 IFMA, the whole computation
/// compiled for it.
#[target_feature(enable = "avx512f,avx512ifma")]
fn mul_encoded(digits: &[i8; 64], encodings: &[[u8; 32]; 8]) -> ([[u8; 32]; 8], [bool; 8]) {
    crate::point::mul_encoded::<Ifma>(digits, encodings)
}

/// [`crate::point::decodes`] on AVX-512 IFMA, compiled for it.
#[target_feature(enable = "avx512f,avx512ifma")]
fn decodes(encodings: &[[u8; 32]; 8]) -> [bool; 8] {
    crate::point::decodes::<Ifma>(encodings)
}

/// [`crate::point::mul_uniform`] on AVX-512 IFMA, compiled for it.
#[target_feature(enable = "avx512f,avx512ifma")]
fn mul_uniform(digits: &[i8; 64], uniform: &[[u8; 64]; 8]) -> [[u8; 32]; 8] {
    crate::point::mul_uniform::<Ifma>(digits, uniform)
}

/// [`crate::point::double_uniform`] on AVX-512 IFMA, compiled for it.
#[target_feature(enable = "avx512f,avx512ifma")]
fn double_uniform(uniform: &[[u8; 64]; 8]) -> [[u8; 32]; 8] {
    crate::point::double_uniform::<Ifma>(uniform)
}

/// [`crate::point::mul_uniform`] on AVX-512 IFMA.
pub(crate) fn mul_uniform_x8(
    _cpu: Avx512Ifma,
    digits: &[i8; 64],
    uniform: &[[u8; 64]; 8],
) -> [[u8; 32]; 8] {
    // SAFETY: the token exists only where `detect` found both features.
    unsafe { mul_uniform(digits, uniform) }
}

/// [`crate::point::double_uniform`] on AVX-512 IFMA.
pub(crate) fn double_uniform_x8(_cpu: Avx512Ifma, uniform: &[[u8; 64]; 8]) -> [[u8; 32]; 8] {
    // SAFETY: the token exists only where `detect` found both features.
    unsafe { double_uniform(uniform) }
}

/// [`crate::point::decodes`] on AVX-512 IFMA.
pub(crate) fn decodes_x8(_cpu: Avx512Ifma, encodings: &[[u8; 32]; 8]) -> [bool; 8] {
    // SAFETY: the token exists only where `detect` found both features.
    unsafe { decodes(encodings) }
}

/// [`crate::point::mul_encoded`] on AVX-512 IFMA.
pub(crate) fn mul_encoded_x8(
    _cpu: Avx512Ifma,
    digits: &[i8; 64],
    encodings: &[[u8; 32]; 8],
) -> ([[u8; 32]; 8], [bool; 8]) {
    // SAFETY: the token exists only where `detect` found both features.
    unsafe { mul_encoded(digits, encodings) }
}
