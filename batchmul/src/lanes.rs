//! Eight 64-bit lanes, and the handful of operations the field arithmetic
//! needs on them.
//!
//! The arithmetic in [`crate::field`] and [`crate::point`] is written once,
//! generic over [`Lanes`]. Two types implement it:
//!
//! - `Ifma` (in [`crate::ifma`]): one 512-bit register, each operation one
//!   AVX-512 instruction. This is what runs.
//! - `Portable`: eight `u64`s and a loop per operation, with the
//!   instructions' exact semantics written out in plain Rust. It is slow and
//!   never chosen at run time, and compiled only for the tests (this crate's
//!   own, and its `test-hooks` feature for those in `tests/`); it exists so that the arithmetic itself is
//!   tested, byte for byte against curve25519-dalek, on every machine,
//!   including the many that have no AVX-512 IFMA (CI's among them). What is
//!   then left untested on such a machine is only the one-line mapping of each
//!   method to its instruction in `ifma.rs`.

/// Eight independent 64-bit lanes.
///
/// A *mask* is a value whose every lane is either all ones or all zeros;
/// the methods that take or return one say so.
pub(crate) trait Lanes: Copy {
    /// Every lane `x`.
    fn splat(x: u64) -> Self;
    /// Lane `i` is `a[i]`.
    fn from_array(a: [u64; 8]) -> Self;
    /// The lanes as an array.
    fn to_array(self) -> [u64; 8];
    /// Lane-wise wrapping addition.
    fn add(self, rhs: Self) -> Self;
    /// Lane-wise wrapping subtraction.
    fn sub(self, rhs: Self) -> Self;
    /// Lane-wise AND.
    fn and(self, rhs: Self) -> Self;
    /// Lane-wise OR.
    fn or(self, rhs: Self) -> Self;
    /// Lane-wise XOR.
    fn xor(self, rhs: Self) -> Self;
    /// Lane-wise logical shift right by `N` (< 64).
    fn shr<const N: u32>(self) -> Self;
    /// Lane-wise shift left by `N` (< 64).
    fn shl<const N: u32>(self) -> Self;
    /// `self + lo52(x[51:0] · y[51:0])`: the low 52 bits of the 104-bit
    /// product of the low 52 bits of each operand, added to `self`
    /// (`vpmadd52luq`). Bits 52 to 63 of `x` and `y` are ignored.
    fn madd52lo(self, x: Self, y: Self) -> Self;
    /// `self + hi52(x[51:0] · y[51:0])`: the product's bits 52 to 103
    /// (`vpmadd52huq`).
    fn madd52hi(self, x: Self, y: Self) -> Self;
    /// The mask of the lanes where `self == rhs`.
    fn eq(self, rhs: Self) -> Self;

    /// Field multiplication on five limbs of eight elements
    /// ([`crate::field::mul`]). A method so that a backend can compile it,
    /// once, for its instructions: the curve code calls it hundreds of times,
    /// and inlining it at every call would make one enormous function.
    #[inline]
    fn fe_mul(x: &[Self; 5], y: &[Self; 5]) -> [Self; 5] {
        crate::field::mul(x, y)
    }

    /// Field squaring ([`crate::field::square`]); see [`Lanes::fe_mul`].
    #[inline]
    fn fe_square(x: &[Self; 5]) -> [Self; 5] {
        crate::field::square(x)
    }

    /// `x^((p-5)/8)` ([`crate::field::pow_p58`]); see [`Lanes::fe_mul`].
    #[inline]
    fn fe_pow_p58(x: &[Self; 5]) -> [Self; 5] {
        crate::field::pow_p58(x)
    }

    /// A field element's limbs carried ([`crate::field::carry_limbs`]).
    /// Inline on the instructions (a dozen of them); out of line on the
    /// portable lanes, where it is a hundred, for compile time.
    #[inline(always)]
    fn fe_carry(z: &[Self; 5]) -> [Self; 5] {
        crate::field::carry_limbs(z)
    }

    /// A field element's canonical limbs
    /// ([`crate::field::canonical_limbs`]); see [`Lanes::fe_carry`].
    #[inline(always)]
    fn fe_canonical(x: &[Self; 5]) -> [Self; 5] {
        crate::field::canonical_limbs(x)
    }

    /// Zero in every lane.
    #[inline(always)]
    fn zero() -> Self {
        Self::splat(0)
    }

    /// `b` in the lanes where `mask` is set, `a` elsewhere.
    #[inline(always)]
    fn select(mask: Self, a: Self, b: Self) -> Self {
        a.xor(mask.and(a.xor(b)))
    }
}

#[cfg(any(test, feature = "test-hooks"))]
/// Eight lanes in plain Rust: the reference semantics of [`Lanes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Portable([u64; 8]);

#[cfg(any(test, feature = "test-hooks"))]
impl Portable {
    #[inline(always)]
    fn map2(self, rhs: Self, f: impl Fn(u64, u64) -> u64) -> Self {
        let mut out = [0; 8];
        for ((o, a), b) in out.iter_mut().zip(self.0).zip(rhs.0) {
            *o = f(a, b);
        }
        Portable(out)
    }

    #[inline(always)]
    fn map(self, f: impl Fn(u64) -> u64) -> Self {
        Portable(self.0.map(f))
    }
}

#[cfg(any(test, feature = "test-hooks"))]
const LOW52: u64 = (1 << 52) - 1;

/// The 104-bit product of the low 52 bits of `x` and `y`.
#[cfg(any(test, feature = "test-hooks"))]
#[inline(always)]
fn product52(x: u64, y: u64) -> u128 {
    u128::from(x & LOW52) * u128::from(y & LOW52)
}

#[cfg(any(test, feature = "test-hooks"))]
#[allow(
    clippy::cast_possible_truncation,
    reason = "the 52-bit halves of a 104-bit product fit in u64"
)]
impl Lanes for Portable {
    #[inline(always)]
    fn splat(x: u64) -> Self {
        Portable([x; 8])
    }
    #[inline(always)]
    fn from_array(a: [u64; 8]) -> Self {
        Portable(a)
    }
    #[inline(always)]
    fn to_array(self) -> [u64; 8] {
        self.0
    }
    #[inline(always)]
    fn add(self, rhs: Self) -> Self {
        self.map2(rhs, u64::wrapping_add)
    }
    #[inline(always)]
    fn sub(self, rhs: Self) -> Self {
        self.map2(rhs, u64::wrapping_sub)
    }
    #[inline(always)]
    fn and(self, rhs: Self) -> Self {
        self.map2(rhs, |a, b| a & b)
    }
    #[inline(always)]
    fn or(self, rhs: Self) -> Self {
        self.map2(rhs, |a, b| a | b)
    }
    #[inline(always)]
    fn xor(self, rhs: Self) -> Self {
        self.map2(rhs, |a, b| a ^ b)
    }
    #[inline(always)]
    fn shr<const N: u32>(self) -> Self {
        self.map(|a| a >> N)
    }
    #[inline(always)]
    fn shl<const N: u32>(self) -> Self {
        self.map(|a| a << N)
    }
    #[inline(always)]
    fn madd52lo(self, x: Self, y: Self) -> Self {
        let mut out = self.0;
        for ((o, a), b) in out.iter_mut().zip(x.0).zip(y.0) {
            *o = o.wrapping_add((product52(a, b) as u64) & LOW52);
        }
        Portable(out)
    }
    #[inline(always)]
    fn madd52hi(self, x: Self, y: Self) -> Self {
        let mut out = self.0;
        for ((o, a), b) in out.iter_mut().zip(x.0).zip(y.0) {
            *o = o.wrapping_add((product52(a, b) >> 52) as u64);
        }
        Portable(out)
    }
    // Out of line, as on the instructions (see `ifma.rs`), and more of them:
    // inlined, each operation is eight scalar ones, and the curve code
    // became functions of hundreds of kilobytes that took rustc minutes.
    #[inline(never)]
    fn fe_mul(x: &[Self; 5], y: &[Self; 5]) -> [Self; 5] {
        crate::field::mul(x, y)
    }
    #[inline(never)]
    fn fe_square(x: &[Self; 5]) -> [Self; 5] {
        crate::field::square(x)
    }
    #[inline(never)]
    fn fe_pow_p58(x: &[Self; 5]) -> [Self; 5] {
        crate::field::pow_p58(x)
    }
    #[inline(never)]
    fn fe_carry(z: &[Self; 5]) -> [Self; 5] {
        crate::field::carry_limbs(z)
    }
    #[inline(never)]
    fn fe_canonical(x: &[Self; 5]) -> [Self; 5] {
        crate::field::canonical_limbs(x)
    }
    #[inline(always)]
    fn eq(self, rhs: Self) -> Self {
        // Through `subtle`, whose optimisation barrier keeps the compiler
        // from knowing that the mask is 0 or all ones: a plain
        // `0 - (a == b) as u64` let it turn a later `select` into a branch,
        // which tests/constant_time.rs caught under valgrind.
        use subtle::{ConditionallySelectable, ConstantTimeEq};
        self.map2(rhs, |a, b| {
            let mut mask = 0u64;
            mask.conditional_assign(&u64::MAX, a.ct_eq(&b));
            mask
        })
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation, reason = "the test's products fit")]
mod tests {
    use super::*;

    #[test]
    fn madd52_uses_only_the_low_52_bits_of_each_operand() {
        let x = Portable::splat((1 << 52) | 3);
        let y = Portable::splat(u64::MAX);
        // y's low 52 bits are 2^52 - 1; x's are 3.
        let p = 3 * u128::from(LOW52);
        assert_eq!(
            Portable::splat(1).madd52lo(x, y).0[0],
            1 + (p as u64 & LOW52)
        );
        assert_eq!(Portable::splat(1).madd52hi(x, y).0[0], 1 + (p >> 52) as u64);
    }

    #[test]
    fn select_and_eq_are_lane_wise() {
        let a = Portable::from_array([0, 1, 2, 3, 4, 5, 6, 7]);
        let b = Portable::from_array([0, 9, 2, 9, 4, 9, 6, 9]);
        let m = a.eq(b);
        assert_eq!(m.0, [u64::MAX, 0, u64::MAX, 0, u64::MAX, 0, u64::MAX, 0]);
        assert_eq!(Portable::select(m, b, a).0, [0, 9, 2, 9, 4, 9, 6, 9]);
        assert_eq!(
            Portable::select(m, a, Portable::zero()).0,
            [0, 1, 0, 3, 0, 5, 0, 7]
        );
    }
}
