//! Arithmetic in GF(2^255 - 19), eight elements at a time.
//!
//! An element is five limbs in radix 2^51, `x = Σ x_i · 2^(51·i)`, and each
//! limb is a [`Lanes`] value holding that limb of eight independent elements.
//!
//! **Why radix 2^51 on a 52-bit multiplier.** `vpmadd52luq`/`vpmadd52huq`
//! multiply the low 52 bits of their operands and ignore the rest, so every
//! limb that goes into a multiplication must be below 2^52. With 51-bit limbs
//! a limb has one bit of headroom: after the carry step below a limb is below
//! 2^51 + 2^18, which the multiplier takes whole. (In radix 2^52 there is no
//! headroom at all, and every addition would need a full carry chain before
//! the next multiplication; lazy reduction is where the speed of this
//! representation comes from.)
//!
//! **The invariant.** Every [`Fe`] this module hands out is *carried*: each
//! limb is below 2^51 + 2^18 (limb 0) or 2^51 + 2^13 (the others). Each
//! operation ends with [`carry`], which takes limbs of up to 64 bits back to
//! that bound with five shifts, five masks and five additions, all limbs in
//! parallel (no sequential carry chain). Only [`Fe::to_canonical`] produces
//! the unique representative below p, as the encodings need.
//!
//! **Multiplication.** The product of two 52-bit limbs is 104 bits; the
//! instructions give its low and high 52 bits separately. Since
//! 2^52 = 2 · 2^51, the high half of `x_i · y_j` belongs at limb `i + j + 1`
//! with weight 2: the product is accumulated as `lo_k + 2·hi_k` per position
//! `k = 0..9`, and positions 5 to 9 fold into 0 to 4 with 2^255 ≡ 19. A fold
//! multiplies by 19 with the same instructions, which again see only 52 bits
//! of the accumulator, so each accumulator is split at bit 52 first. The
//! bounds are worked out at each step in [`Fe::mul`].
//!
//! Nothing here branches on or indexes by a value: the only data-dependent
//! operations are lane-wise masks ([`Lanes::eq`]) and selections
//! ([`Lanes::select`]).

use crate::lanes::Lanes;

/// 2^51 - 1.
const MASK51: u64 = (1 << 51) - 1;

/// Eight field elements in radix 2^51, carried (see the module's notes).
#[derive(Clone, Copy)]
pub(crate) struct Fe<L>(pub(crate) [L; 5]);

/// 16·p, limb by limb: `16·(2^51 - 19)` and `16·(2^51 - 1)`. Subtracting a
/// carried limb (< 2^51 + 2^18) from these never goes below zero.
const SIXTEEN_P: [u64; 5] = [
    (1 << 55) - 304,
    (1 << 55) - 16,
    (1 << 55) - 16,
    (1 << 55) - 16,
    (1 << 55) - 16,
];

/// Takes limbs of up to 64 bits to carried limbs: limb i keeps its low 51
/// bits and gains limb i-1's carry; limb 0 gains 19 times limb 4's (the
/// carry out of 2^255). The carries are below 2^13, so limb 0 ends below
/// 2^51 + 19·2^13 < 2^51 + 2^18 and the others below 2^51 + 2^13.
#[inline(always)]
fn carry<L: Lanes>(z: [L; 5]) -> Fe<L> {
    Fe(L::fe_carry(&z))
}

/// [`carry`]'s work, on the limbs (called through [`Lanes::fe_carry`]).
#[inline(always)]
pub(crate) fn carry_limbs<L: Lanes>(z: &[L; 5]) -> [L; 5] {
    let mask = L::splat(MASK51);
    let c = [
        z[0].shr::<51>(),
        z[1].shr::<51>(),
        z[2].shr::<51>(),
        z[3].shr::<51>(),
        z[4].shr::<51>(),
    ];
    [
        z[0].and(mask).madd52lo(c[4], L::splat(19)),
        z[1].and(mask).add(c[0]),
        z[2].and(mask).add(c[1]),
        z[3].and(mask).add(c[2]),
        z[4].and(mask).add(c[3]),
    ]
}

impl<L: Lanes> Fe<L> {
    /// The same constant in every lane, from canonical limbs.
    #[inline(always)]
    pub(crate) fn splat(limbs: [u64; 5]) -> Self {
        Fe(limbs.map(L::splat))
    }

    /// Zero in every lane.
    #[inline(always)]
    pub(crate) fn zero() -> Self {
        Self::splat([0; 5])
    }

    /// One in every lane.
    #[inline(always)]
    pub(crate) fn one() -> Self {
        Self::splat([1, 0, 0, 0, 0])
    }

    /// Lane `l` is the element with limbs `limbs[l]` (each below 2^51).
    #[inline(always)]
    pub(crate) fn from_limbs(limbs: &[[u64; 5]; 8]) -> Self {
        let limb = |i: usize| L::from_array(core::array::from_fn(|l| limbs[l][i]));
        Fe([limb(0), limb(1), limb(2), limb(3), limb(4)])
    }

    /// `self + rhs`.
    #[inline(always)]
    pub(crate) fn add(&self, rhs: &Self) -> Self {
        // Carried limbs are below 2^52 each; their sum is below 2^53.
        carry(core::array::from_fn(|i| self.0[i].add(rhs.0[i])))
    }

    /// `self - rhs`, as `self + 16p - rhs` so that no limb goes negative.
    #[inline(always)]
    pub(crate) fn sub(&self, rhs: &Self) -> Self {
        carry(core::array::from_fn(|i| {
            self.0[i].add(L::splat(SIXTEEN_P[i])).sub(rhs.0[i])
        }))
    }

    /// `-self`.
    #[inline(always)]
    pub(crate) fn neg(&self) -> Self {
        Self::zero().sub(self)
    }

    /// `rhs` in the lanes where `mask` is set, `self` elsewhere.
    #[inline(always)]
    pub(crate) fn select(&self, rhs: &Self, mask: L) -> Self {
        Fe(core::array::from_fn(|i| {
            L::select(mask, self.0[i], rhs.0[i])
        }))
    }

    /// `-self` in the lanes where `mask` is set.
    #[inline(always)]
    pub(crate) fn negate_where(&self, mask: L) -> Self {
        self.select(&self.neg(), mask)
    }

    /// `self · rhs` (see [`mul`]).
    #[inline(always)]
    pub(crate) fn mul(&self, rhs: &Self) -> Self {
        Fe(L::fe_mul(&self.0, &rhs.0))
    }

    /// `self²` (see [`square`]).
    #[inline(always)]
    pub(crate) fn square(&self) -> Self {
        Fe(L::fe_square(&self.0))
    }

    /// `self^(2^k)`, for k ≥ 1.
    #[inline(always)]
    pub(crate) fn pow2k(&self, k: u32) -> Self {
        let mut z = self.square();
        for _ in 1..k {
            z = z.square();
        }
        z
    }

    /// The canonical limbs (the value below p), as `to_bytes` needs them.
    #[inline(always)]
    pub(crate) fn to_canonical(self) -> [L; 5] {
        L::fe_canonical(&self.0)
    }

    /// The mask of the lanes whose value is negative in the sense of
    /// RFC 9496, Section 4.1: its canonical encoding is odd.
    #[inline(always)]
    pub(crate) fn is_negative(&self) -> L {
        let low = self.to_canonical()[0].and(L::splat(1));
        L::zero().sub(low)
    }

    /// The mask of the lanes whose value is zero.
    #[inline(always)]
    pub(crate) fn is_zero(&self) -> L {
        let c = self.to_canonical();
        c[0].or(c[1]).or(c[2]).or(c[3]).or(c[4]).eq(L::zero())
    }

    /// The mask of the lanes where `self == rhs`.
    #[inline(always)]
    pub(crate) fn ct_eq(&self, rhs: &Self) -> L {
        self.sub(rhs).is_zero()
    }

    /// `self^((p-5)/8)` ([`pow_p58`]).
    #[inline(always)]
    fn pow_p58(&self) -> Self {
        Fe(L::fe_pow_p58(&self.0))
    }

    /// `(was_nonzero_square, r)` with `r = |sqrt(1/self)|` where that
    /// exists: `SQRT_RATIO_M1(1, self)` ([`Fe::sqrt_ratio_i`]).
    #[inline(always)]
    pub(crate) fn invsqrt(&self) -> (L, Self) {
        Self::sqrt_ratio_i(&Self::one(), self)
    }

    /// `(was_square, r)`: RFC 9496, Section 4.2, `SQRT_RATIO_M1(u, v)`,
    /// step for step as curve25519-dalek's `FieldElement::sqrt_ratio_i`, so
    /// that every lane, including zero and non-squares, gives the same `r`:
    /// `|sqrt(u/v)|` where u/v is a non-zero square, `|sqrt(i·u/v)|` where
    /// it is not, and 0 where u or v is.
    #[inline(always)]
    pub(crate) fn sqrt_ratio_i(u: &Self, v: &Self) -> (L, Self) {
        let sqrt_m1 = Self::splat(SQRT_M1);
        let v3 = v.square().mul(v);
        let v7 = v3.square().mul(v);
        // r = (u·v³)·(u·v⁷)^((p-5)/8).
        let mut r = u.mul(&v3).mul(&u.mul(&v7).pow_p58());
        let check = v.mul(&r.square());
        let minus_u = u.neg();
        let correct_sign = check.ct_eq(u);
        let flipped_sign = check.ct_eq(&minus_u);
        let flipped_sign_i = check.ct_eq(&minus_u.mul(&sqrt_m1));
        let r_prime = sqrt_m1.mul(&r);
        r = r.select(&r_prime, flipped_sign.or(flipped_sign_i));
        r = r.negate_where(r.is_negative());
        (correct_sign.or(flipped_sign), r)
    }
}

/// [`Fe::to_canonical`]'s work (called through [`Lanes::fe_canonical`]).
#[inline(always)]
pub(crate) fn canonical_limbs<L: Lanes>(limbs: &[L; 5]) -> [L; 5] {
    let mask = L::splat(MASK51);
    let l = *limbs;
    // A carried value is below 2^255 + 2^18 < 2p, so subtracting p at
    // most once is enough. q = 1 exactly when x ≥ p, i.e. when x + 19
    // reaches 2^255: propagate the carry of x + 19 through the limbs.
    let mut q = l[0].add(L::splat(19)).shr::<51>();
    q = l[1].add(q).shr::<51>();
    q = l[2].add(q).shr::<51>();
    q = l[3].add(q).shr::<51>();
    q = l[4].add(q).shr::<51>();
    // x - p·q = x + 19·q - 2^255·q: add 19·q, carry through, and drop
    // bit 255.
    let mut r = l;
    r[0] = r[0].madd52lo(q, L::splat(19));
    r[1] = r[1].add(r[0].shr::<51>());
    r[0] = r[0].and(mask);
    r[2] = r[2].add(r[1].shr::<51>());
    r[1] = r[1].and(mask);
    r[3] = r[3].add(r[2].shr::<51>());
    r[2] = r[2].and(mask);
    r[4] = r[4].add(r[3].shr::<51>());
    r[3] = r[3].and(mask);
    r[4] = r[4].and(mask);
    r
}

/// `x^((p-5)/8) = x^(2^252 - 3)`, by curve25519-dalek's addition chain
/// (`FieldElement::pow_p58`): 250 squarings, 11 multiplications. Called
/// through [`Lanes::fe_pow_p58`], out of line: inlined at each of the
/// three or four inverse square roots of a pipeline, its 261 calls made
/// functions of hundreds of kilobytes that took rustc many minutes.
#[inline(always)]
pub(crate) fn pow_p58<L: Lanes>(x: &[L; 5]) -> [L; 5] {
    let x = Fe(*x);
    let t0 = x.square(); // 2
    let t1 = t0.pow2k(2); // 8
    let t2 = x.mul(&t1); // 9
    let t3 = t0.mul(&t2); // 11
    let t4 = t3.square(); // 22
    let t5 = t2.mul(&t4); // 2^5 - 1
    let t7 = t5.pow2k(5).mul(&t5); // 2^10 - 1
    let t9 = t7.pow2k(10).mul(&t7); // 2^20 - 1
    let t11 = t9.pow2k(20).mul(&t9); // 2^40 - 1
    let t13 = t11.pow2k(10).mul(&t7); // 2^50 - 1
    let t15 = t13.pow2k(50).mul(&t13); // 2^100 - 1
    let t17 = t15.pow2k(100).mul(&t15); // 2^200 - 1
    let t19 = t17.pow2k(50).mul(&t13); // 2^250 - 1
    t19.pow2k(2).mul(&x).0 // 2^252 - 3
}

/// `x · y`: the limbs of carried elements in, carried limbs out.
#[inline(always)]
pub(crate) fn mul<L: Lanes>(x: &[L; 5], y: &[L; 5]) -> [L; 5] {
    // lo[k]: the low halves of the products x_i·y_j with i + j = k;
    // hi[k]: the high halves of those with i + j = k - 1, which weigh
    // 2^52 = 2·2^51 at position k - 1, that is 2 at position k.
    // At most five products meet at a position, so both stay below
    // 5·2^52, and position k's value z_k = lo[k] + 2·hi[k] below 2^56.
    let mut lo = [L::zero(); 10];
    let mut hi = [L::zero(); 10];
    for i in 0..5 {
        for j in 0..5 {
            lo[i + j] = lo[i + j].madd52lo(x[i], y[j]);
            hi[i + j + 1] = hi[i + j + 1].madd52hi(x[i], y[j]);
        }
    }
    fold(lo, hi)
}

/// `x²`, with the products `x_i·x_j` (i ≠ j) computed once and doubled:
/// 15 products instead of 25.
#[inline(always)]
pub(crate) fn square<L: Lanes>(x: &[L; 5]) -> [L; 5] {
    // Doubling an operand would take it to 2^53, too wide for the
    // multiplier, so the cross products are accumulated apart and
    // doubled afterwards.
    let mut lo = [L::zero(); 10];
    let mut hi = [L::zero(); 10];
    let mut lo2 = [L::zero(); 10];
    let mut hi2 = [L::zero(); 10];
    for i in 0..5 {
        lo[2 * i] = lo[2 * i].madd52lo(x[i], x[i]);
        hi[2 * i + 1] = hi[2 * i + 1].madd52hi(x[i], x[i]);
        for j in i + 1..5 {
            lo2[i + j] = lo2[i + j].madd52lo(x[i], x[j]);
            hi2[i + j + 1] = hi2[i + j + 1].madd52hi(x[i], x[j]);
        }
    }
    // At most one square and two cross products meet at a position, so
    // lo[k] + 2·lo2[k] < 5·2^52, and likewise for hi: the bounds of
    // `mul`, which is what `fold` assumes.
    let lo = core::array::from_fn(|k| lo[k].add(lo2[k].shl::<1>()));
    let hi = core::array::from_fn(|k| hi[k].add(hi2[k].shl::<1>()));
    fold(lo, hi)
}

/// Folds the product's positions 5 to 9 into 0 to 4 (2^255 ≡ 19) and
/// carries. Position k holds `lo[k] + 2·hi[k]`, each part below 5·2^52
/// (so every position below 15·2^52 < 2^56).
#[inline(always)]
fn fold<L: Lanes>(lo: [L; 10], hi: [L; 10]) -> [L; 5] {
    let r19 = L::splat(19);
    // z_k for k = 5..9, below 2^56: split as z = zl + zh·2^52 because the
    // multiplier sees only zl. Then 19·z at position k - 5 is
    //   lo52(19·zl)              at position k - 5, weight 1,
    //   hi52(19·zl) + 19·zh      at position k - 5, weight 2^52 = 2·2^51,
    // i.e. at position k - 4 with weight 2. (zh < 2^4 and
    // hi52(19·zl) < 19: both small.)
    let z: [L; 5] = core::array::from_fn(|i| lo[i + 5].add(hi[i + 5].shl::<1>()));
    let mut out_lo: [L; 5] = core::array::from_fn(|i| lo[i]);
    let mut out_hi: [L; 5] = core::array::from_fn(|i| hi[i]);
    for i in 0..5 {
        out_lo[i] = out_lo[i].madd52lo(r19, z[i]);
    }
    // Positions 5..8 land at 1..4 with weight 2.
    for i in 0..4 {
        out_hi[i + 1] = out_hi[i + 1]
            .madd52hi(r19, z[i])
            .madd52lo(r19, z[i].shr::<52>());
    }
    // Position 9 lands at 5 with weight 2, and folds once more: 2·t at
    // position 5 is 2·19·t at position 0, i.e. 19·t there with weight 2.
    // t < 19 + 19·2^4, so 19·t is exact in one madd52lo.
    let t = L::zero()
        .madd52hi(r19, z[4])
        .madd52lo(r19, z[4].shr::<52>());
    out_hi[0] = out_hi[0].madd52lo(r19, t);
    // out_lo < 6·2^52 and out_hi < 5·2^52 + 2^10, so lo + 2·hi < 2^56:
    // well within the 64 bits `carry` takes.
    carry(core::array::from_fn(|i| {
        out_lo[i].add(out_hi[i].shl::<1>())
    }))
    .0
}

/// sqrt(-1) (curve25519-dalek's `constants::SQRT_M1`, checked in the tests).
pub(crate) const SQRT_M1: [u64; 5] = [
    1718705420411056,
    234908883556509,
    2233514472574048,
    2117202627021982,
    765476049583133,
];

/// Edwards d = -121665/121666 (dalek's `constants::EDWARDS_D`).
pub(crate) const EDWARDS_D: [u64; 5] = [
    929955233495203,
    466365720129213,
    1662059464998953,
    2033849074728123,
    1442794654840575,
];

/// 2d (dalek's `constants::EDWARDS_D2`).
pub(crate) const EDWARDS_D2: [u64; 5] = [
    1859910466990425,
    932731440258426,
    1072319116312658,
    1815898335770999,
    633789495995903,
];

/// 1/sqrt(a - d) with a = -1 (dalek's `constants::INVSQRT_A_MINUS_D`).
pub(crate) const INVSQRT_A_MINUS_D: [u64; 5] = [
    278908739862762,
    821645201101625,
    8113234426968,
    1777959178193151,
    2118520810568447,
];

/// 1 - d² (dalek's `constants::ONE_MINUS_EDWARDS_D_SQUARED`), for the
/// Elligator map.
pub(crate) const ONE_MINUS_EDWARDS_D_SQUARED: [u64; 5] = [
    1136626929484150,
    1998550399581263,
    496427632559748,
    118527312129759,
    45110755273534,
];

/// (d - 1)² (dalek's `constants::EDWARDS_D_MINUS_ONE_SQUARED`).
pub(crate) const EDWARDS_D_MINUS_ONE_SQUARED: [u64; 5] = [
    1507062230895904,
    1572317787530805,
    683053064812840,
    317374165784489,
    1572899562415810,
];

/// sqrt(a·d - 1) with a = -1 (dalek's `constants::SQRT_AD_MINUS_ONE`).
pub(crate) const SQRT_AD_MINUS_ONE: [u64; 5] = [
    2241493124984347,
    425987919032274,
    2207028919301688,
    1220490630685848,
    974799131293748,
];

/// The five 51-bit limbs of a 32-byte little-endian encoding, bit 255
/// ignored (as RFC 9496's decoding does before its canonicity check).
pub(crate) fn limbs_from_bytes(b: &[u8; 32]) -> [u64; 5] {
    let w = |i: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&b[8 * i..8 * i + 8]);
        u64::from_le_bytes(word)
    };
    let (w0, w1, w2, w3) = (w(0), w(1), w(2), w(3));
    [
        w0 & MASK51,
        ((w0 >> 51) | (w1 << 13)) & MASK51,
        ((w1 >> 38) | (w2 << 26)) & MASK51,
        ((w2 >> 25) | (w3 << 39)) & MASK51,
        (w3 >> 12) & MASK51,
    ]
}

/// The 32-byte little-endian encoding of canonical limbs.
pub(crate) fn bytes_from_limbs(l: &[u64; 5]) -> [u8; 32] {
    let words = [
        l[0] | (l[1] << 51),
        (l[1] >> 13) | (l[2] << 38),
        (l[2] >> 26) | (l[3] << 25),
        (l[3] >> 39) | (l[4] << 12),
    ];
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(8).zip(words) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lanes::Portable;

    fn fe(limbs: [u64; 5]) -> Fe<Portable> {
        Fe::splat(limbs)
    }

    fn small(x: u64) -> Fe<Portable> {
        fe([x, 0, 0, 0, 0])
    }

    fn assert_same(a: &Fe<Portable>, b: &Fe<Portable>, what: &str) {
        let (a, b) = (a.to_canonical(), b.to_canonical());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.to_array(), y.to_array(), "{what}");
        }
    }

    /// The constants copied from curve25519-dalek, checked from their
    /// definitions rather than against dalek (whose field type is private).
    #[test]
    fn constants_are_what_their_names_say() {
        let one = small(1);
        let d = fe(EDWARDS_D);
        // d = -121665/121666.
        assert_same(&d.mul(&small(121_666)), &small(121_665).neg(), "d");
        assert_same(&fe(EDWARDS_D2), &d.add(&d), "2d");
        assert_same(&fe(SQRT_M1).square(), &one.neg(), "sqrt(-1)");
        assert_same(
            &fe(ONE_MINUS_EDWARDS_D_SQUARED),
            &one.sub(&d.square()),
            "1 - d²",
        );
        assert_same(
            &fe(EDWARDS_D_MINUS_ONE_SQUARED),
            &d.sub(&one).square(),
            "(d - 1)²",
        );
        // a·d - 1 with a = -1.
        let ad_minus_one = d.neg().sub(&one);
        assert_same(
            &fe(SQRT_AD_MINUS_ONE).square(),
            &ad_minus_one,
            "sqrt(a·d - 1)",
        );
        // 1/sqrt(a - d): its square times (a - d) is one.
        let a_minus_d = one.neg().sub(&d);
        assert_same(
            &fe(INVSQRT_A_MINUS_D).square().mul(&a_minus_d),
            &one,
            "1/sqrt(a - d)",
        );
    }

    #[test]
    fn sqrt_ratio_i_finds_square_roots_and_says_when_there_are_none() {
        let one = small(1);
        // 4/1 is a square: |sqrt| = 2 (even, so non-negative).
        let (ok, r) = Fe::sqrt_ratio_i(&small(4), &one);
        assert_eq!(ok.to_array(), [u64::MAX; 8]);
        assert_same(&r, &small(2), "sqrt(4)");
        // 2 is not a square mod p: r² = i·2 instead.
        let (ok, r) = Fe::sqrt_ratio_i(&small(2), &one);
        assert_eq!(ok.to_array(), [0; 8]);
        assert_same(&r.square(), &fe(SQRT_M1).mul(&small(2)), "sqrt(2i)");
        // u = 0: the root is zero and counts as found (as in dalek); v = 0
        // with u ≠ 0 has none.
        let (ok, r) = Fe::sqrt_ratio_i(&small(0), &one);
        assert_eq!(ok.to_array(), [u64::MAX; 8]);
        assert_same(&r, &small(0), "sqrt(0)");
        let (ok, _) = Fe::sqrt_ratio_i(&one, &small(0));
        assert_eq!(ok.to_array(), [0; 8]);
    }
}
