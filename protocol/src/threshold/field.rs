//! The detection field: integers modulo the Mersenne prime p = 2^61 − 1
//! (SPEC Section 14.2).
//!
//! Shares of the account key live in the ristretto255 scalar field, since
//! their constant term is a 252-bit key. Detection tags do not need that
//! size: they only have to make a random tag fall into a fixed subspace with
//! negligible probability, and 2^-61 per synthetic voucher is negligible. A
//! 64-bit field makes a tag element 8 bytes instead of 32 (720 instead of
//! 2,880 bytes per voucher at s = 90), and the server's Gaussian elimination
//! at t = 30, s = 90 (a 119 × 120 matrix) take about a millisecond instead of
//! the tens of milliseconds scalar-field arithmetic costs.
//!
//! Written here rather than taken from a crate: the arithmetic of a
//! Mersenne prime is a dozen lines (a 128-bit product folded once), the
//! crates that have a 64-bit prime field (Plonky3's, winterfell's) bring a
//! proof system's dependencies along, and the tests below check every
//! operation against plain `u128` arithmetic. Every operation is branch-free
//! on its operands: clients compute tags from their secret detection key.

use zeroize::Zeroize;

/// The detection prime, 2^61 − 1.
pub const DETECTION_PRIME: u64 = (1 << 61) - 1;

/// What the detection algorithm needs of a prime field. Implemented by
/// [`Fp61`]; the tests also implement it for a small prime, where the
/// probability that detection fails is large enough to measure.
pub(crate) trait DetectionField: Copy + Eq + core::fmt::Debug {
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// The element `v mod p`.
    fn reduce(v: u64) -> Self;
    /// Sum.
    fn add(self, other: Self) -> Self;
    /// Difference.
    fn sub(self, other: Self) -> Self;
    /// Product.
    fn mul(self, other: Self) -> Self;
    /// Multiplicative inverse; the inverse of 0 is 0.
    fn inv(self) -> Self;
    /// `self == 0`, on public values only.
    fn is_zero(self) -> bool {
        self == Self::ZERO
    }
}

/// An element of the detection field, always reduced: `0 ≤ value < p`.
#[derive(Clone, Copy, PartialEq, Eq, Default, Zeroize)]
pub struct Fp61(u64);

impl core::fmt::Debug for Fp61 {
    // Elements are tags and their key; print nothing of them.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Fp61(..)")
    }
}

impl Fp61 {
    /// The element with canonical value `v`, if `v < p`.
    pub fn new(v: u64) -> Option<Self> {
        (v < DETECTION_PRIME).then_some(Fp61(v))
    }

    /// The canonical value, in `[0, p)`.
    pub fn value(self) -> u64 {
        self.0
    }

    /// `OS2IP(bytes) mod p` for 8 big-endian bytes (SPEC Section 14.2).
    pub fn from_be_bytes(bytes: [u8; 8]) -> Self {
        Fp61::reduce(u64::from_be_bytes(bytes))
    }

    /// Reduces a value below 2^62 + p (one conditional subtraction per step,
    /// done with a mask).
    fn fold(v: u64) -> u64 {
        let v = (v & DETECTION_PRIME) + (v >> 61);
        // v < 2^61 + 2: subtract p once if v ≥ p.
        let (d, borrow) = v.overflowing_sub(DETECTION_PRIME);
        let keep = 0u64.wrapping_sub(u64::from(borrow));
        (v & keep) | (d & !keep)
    }

    fn pow(self, mut e: u64) -> Self {
        // Square and multiply over all 64 bits of a public exponent.
        let mut acc = Fp61(1);
        let mut base = self;
        for _ in 0..64 {
            let bit = e & 1;
            let m = acc.mul(base);
            let mask = 0u64.wrapping_sub(bit);
            acc = Fp61((m.0 & mask) | (acc.0 & !mask));
            base = base.mul(base);
            e >>= 1;
        }
        acc
    }
}

impl DetectionField for Fp61 {
    const ZERO: Self = Fp61(0);
    const ONE: Self = Fp61(1);

    fn reduce(v: u64) -> Self {
        // v < 2^64 = 8·2^61: two folds bring it below p.
        Fp61(Fp61::fold(Fp61::fold(v)))
    }

    fn add(self, other: Self) -> Self {
        // Both < 2^61, so the sum < 2^62 and one fold reduces it.
        Fp61(Fp61::fold(self.0 + other.0))
    }

    fn sub(self, other: Self) -> Self {
        Fp61(Fp61::fold(self.0 + DETECTION_PRIME - other.0))
    }

    // The casts keep the low 64 bits on purpose; the mask or shift before
    // them says which bits are wanted.
    #[allow(clippy::cast_possible_truncation)]
    fn mul(self, other: Self) -> Self {
        // 2^61 ≡ 1 (mod p): the 122-bit product is lo + hi with
        // lo = bits 0..61 and hi = bits 61..122, each below 2^61.
        let prod = u128::from(self.0) * u128::from(other.0);
        let lo = (prod as u64) & DETECTION_PRIME;
        let hi = (prod >> 61) as u64;
        Fp61(Fp61::fold(lo + hi))
    }

    fn inv(self) -> Self {
        // Fermat: a^(p-2) = a^-1, and 0^(p-2) = 0.
        self.pow(DETECTION_PRIME - 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: u128 = DETECTION_PRIME as u128;

    fn el(v: u64) -> Fp61 {
        Fp61::reduce(v)
    }

    #[test]
    fn edges() {
        assert_eq!(el(DETECTION_PRIME), Fp61::ZERO);
        assert_eq!(el(u64::MAX).value(), (u64::MAX as u128 % P) as u64);
        assert_eq!(el(DETECTION_PRIME - 1).add(Fp61::ONE), Fp61::ZERO);
        assert_eq!(Fp61::ZERO.sub(Fp61::ONE).value(), DETECTION_PRIME - 1);
        assert_eq!(Fp61::ZERO.inv(), Fp61::ZERO);
        assert_eq!(el(DETECTION_PRIME - 1).inv(), el(DETECTION_PRIME - 1));
        assert_eq!(Fp61::new(DETECTION_PRIME), None);
        assert_eq!(Fp61::from_be_bytes([0xff; 8]), el(u64::MAX));
    }

    proptest! {
        #[test]
        fn matches_u128_arithmetic(a in any::<u64>(), b in any::<u64>()) {
            let (x, y) = (el(a), el(b));
            let (a, b) = (u128::from(a) % P, u128::from(b) % P);
            prop_assert_eq!(u128::from(x.value()), a);
            prop_assert_eq!(u128::from(x.add(y).value()), (a + b) % P);
            prop_assert_eq!(u128::from(x.sub(y).value()), (a + P - b) % P);
            prop_assert_eq!(u128::from(x.mul(y).value()), a * b % P);
            if a != 0 {
                prop_assert_eq!(x.mul(x.inv()), Fp61::ONE);
            }
        }
    }
}
