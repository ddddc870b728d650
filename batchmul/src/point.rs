//! ristretto255 decoding, multiplication by one scalar, and encoding, for
//! eight points at once.
//!
//! The points live on the twisted Edwards curve -x² + y² = 1 + d·x²·y²
//! (edwards25519), in the coordinate systems of Hisil, Wong, Carter and
//! Dawson (2008) as curve25519-dalek names them: extended (X:Y:Z:T),
//! projective (X:Y:Z), "completed" ((X:Z),(Y:T)) and projective Niels
//! (Y+X, Y-X, Z, 2d·T). The formulas are dalek's serial ones
//! (`backend::serial::curve_models`), lane by lane; the decoding and
//! encoding are RFC 9496, Sections 4.3.1 and 4.3.2, step for step as dalek
//! writes them, so that every lane gives dalek's bytes.
//!
//! The multiplication is dalek's fixed-window method
//! (`backend::serial::scalar_mul::variable_base`): 64 signed radix-16 digits,
//! a table of 1·P to 8·P per point, four doublings and one addition per digit.
//! All eight lanes share the scalar, so they share each digit: the table
//! look-up scans all eight entries with one mask per entry made from the
//! digit, identical in every lane. No branch and no address depends on the
//! scalar or on a point.

use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::field::{
    EDWARDS_D, EDWARDS_D_MINUS_ONE_SQUARED, EDWARDS_D2, Fe, INVSQRT_A_MINUS_D,
    ONE_MINUS_EDWARDS_D_SQUARED, SQRT_AD_MINUS_ONE, SQRT_M1, bytes_from_limbs, limbs_from_bytes,
};
use crate::lanes::Lanes;

/// Extended coordinates: x = X/Z, y = Y/Z, x·y = T/Z.
#[derive(Clone, Copy)]
struct Extended<L> {
    x: Fe<L>,
    y: Fe<L>,
    z: Fe<L>,
    t: Fe<L>,
}

/// Projective coordinates: x = X/Z, y = Y/Z.
#[derive(Clone, Copy)]
struct Projective<L> {
    x: Fe<L>,
    y: Fe<L>,
    z: Fe<L>,
}

/// Completed coordinates: x = X/Z, y = Y/T.
#[derive(Clone, Copy)]
struct Completed<L> {
    x: Fe<L>,
    y: Fe<L>,
    z: Fe<L>,
    t: Fe<L>,
}

/// Projective Niels coordinates, the form added from the look-up table.
#[derive(Clone, Copy)]
struct Niels<L> {
    y_plus_x: Fe<L>,
    y_minus_x: Fe<L>,
    z: Fe<L>,
    t2d: Fe<L>,
}

impl<L: Lanes> Completed<L> {
    #[inline(always)]
    fn to_projective(self) -> Projective<L> {
        Projective {
            x: self.x.mul(&self.t),
            y: self.y.mul(&self.z),
            z: self.z.mul(&self.t),
        }
    }

    #[inline(always)]
    fn to_extended(self) -> Extended<L> {
        Extended {
            x: self.x.mul(&self.t),
            y: self.y.mul(&self.z),
            z: self.z.mul(&self.t),
            t: self.x.mul(&self.y),
        }
    }
}

impl<L: Lanes> Projective<L> {
    /// 2·self (dalek's `ProjectivePoint::double`).
    #[inline(always)]
    fn double(&self) -> Completed<L> {
        let xx = self.x.square();
        let yy = self.y.square();
        let zz = self.z.square();
        let zz2 = zz.add(&zz);
        let x_plus_y_sq = self.x.add(&self.y).square();
        let yy_plus_xx = yy.add(&xx);
        let yy_minus_xx = yy.sub(&xx);
        Completed {
            x: x_plus_y_sq.sub(&yy_plus_xx),
            y: yy_plus_xx,
            z: yy_minus_xx,
            t: zz2.sub(&yy_minus_xx),
        }
    }
}

impl<L: Lanes> Extended<L> {
    /// self + other (dalek's `EdwardsPoint + ProjectiveNielsPoint`).
    #[inline(always)]
    fn add_niels(&self, other: &Niels<L>) -> Completed<L> {
        let pp = self.y.add(&self.x).mul(&other.y_plus_x);
        let mm = self.y.sub(&self.x).mul(&other.y_minus_x);
        let tt2d = self.t.mul(&other.t2d);
        let zz = self.z.mul(&other.z);
        let zz2 = zz.add(&zz);
        Completed {
            x: pp.sub(&mm),
            y: pp.add(&mm),
            z: zz2.add(&tt2d),
            t: zz2.sub(&tt2d),
        }
    }

    /// self + other (dalek's `EdwardsPoint + EdwardsPoint`).
    #[inline(always)]
    fn add(&self, other: &Self) -> Self {
        self.add_niels(&other.to_niels()).to_extended()
    }

    /// 2·self (dalek's `EdwardsPoint::double`).
    #[inline(always)]
    fn double(&self) -> Self {
        Projective {
            x: self.x,
            y: self.y,
            z: self.z,
        }
        .double()
        .to_extended()
    }

    #[inline(always)]
    fn to_niels(self) -> Niels<L> {
        Niels {
            y_plus_x: self.y.add(&self.x),
            y_minus_x: self.y.sub(&self.x),
            z: self.z,
            t2d: self.t.mul(&Fe::splat(EDWARDS_D2)),
        }
    }
}

impl<L: Lanes> Niels<L> {
    /// The identity: (1, 1, 1, 0).
    #[inline(always)]
    fn identity() -> Self {
        Niels {
            y_plus_x: Fe::one(),
            y_minus_x: Fe::one(),
            z: Fe::one(),
            t2d: Fe::zero(),
        }
    }

    #[inline(always)]
    fn select(&self, other: &Self, mask: L) -> Self {
        Niels {
            y_plus_x: self.y_plus_x.select(&other.y_plus_x, mask),
            y_minus_x: self.y_minus_x.select(&other.y_minus_x, mask),
            z: self.z.select(&other.z, mask),
            t2d: self.t2d.select(&other.t2d, mask),
        }
    }
}

/// The table 1·P, 2·P, ..., 8·P (dalek's `LookupTable<ProjectiveNielsPoint>`).
struct Table<L>([Niels<L>; 8]);

impl<L: Lanes> Table<L> {
    #[inline(always)]
    fn new(p: &Extended<L>) -> Self {
        let first = p.to_niels();
        let mut entries = [first; 8];
        for j in 0..7 {
            entries[j + 1] = p.add_niels(&entries[j]).to_extended().to_niels();
        }
        Table(entries)
    }

    /// digit·P for a digit in [-8, 8], shared by all lanes and secret: every
    /// entry is read and the one wanted is kept by a mask made without a
    /// branch (dalek's `LookupTable::select`).
    #[inline(always)]
    fn select(&self, digit: i8) -> Niels<L> {
        // |digit| without a branch: the sign's mask is 0 or -1.
        let sign = digit >> 7;
        let abs = digit.wrapping_add(sign) ^ sign;
        let mut t = Niels::identity();
        for (j, entry) in (1i8..).zip(&self.0) {
            t = t.select(entry, mask_of(abs.ct_eq(&j)));
        }
        // -(Y+X, Y-X, Z, 2dT) = (Y-X, Y+X, Z, -2dT).
        let negative = mask_of(subtle::Choice::from((sign & 1).cast_unsigned()));
        let negated = Niels {
            y_plus_x: t.y_minus_x,
            y_minus_x: t.y_plus_x,
            z: t.z,
            t2d: t.t2d.neg(),
        };
        t.select(&negated, negative)
    }
}

/// A mask in every lane from a choice: all ones or all zeros.
#[inline(always)]
fn mask_of<L: Lanes>(c: subtle::Choice) -> L {
    let mut m = 0u64;
    m.conditional_assign(&u64::MAX, c);
    L::splat(m)
}

/// The scalar as 64 signed radix-16 digits in [-8, 8], least significant
/// first (dalek's `Scalar::as_radix_16`, which is crate-private there). The
/// scalar must be below 2^255, as every reduced scalar is.
pub(crate) fn radix_16(bytes: &[u8; 32]) -> [i8; 64] {
    let mut d = [0i8; 64];
    for (i, b) in bytes.iter().enumerate() {
        // Nibbles are below 16: the casts cannot wrap.
        d[2 * i] = (b & 15).cast_signed();
        d[2 * i + 1] = (b >> 4).cast_signed();
    }
    // Recentre each digit from [0, 16) to [-8, 8), carrying into the next;
    // the last one takes the final carry and stays at most 8 because the
    // top nibble is at most 7.
    for i in 0..63 {
        let carry = (d[i] + 8) >> 4;
        d[i] -= carry << 4;
        d[i + 1] += carry;
    }
    d
}

/// scalar·P (dalek's `variable_base::mul`).
#[inline(always)]
fn mul<L: Lanes>(p: &Extended<L>, digits: &[i8; 64]) -> Extended<L> {
    let table = Table::new(p);
    let identity = Extended {
        x: Fe::zero(),
        y: Fe::one(),
        z: Fe::one(),
        t: Fe::zero(),
    };
    let mut acc = identity.add_niels(&table.select(digits[63]));
    for &digit in digits[..63].iter().rev() {
        let mut q = acc.to_projective().double();
        q = q.to_projective().double();
        q = q.to_projective().double();
        q = q.to_projective().double();
        acc = q.to_extended().add_niels(&table.select(digit));
    }
    acc.to_extended()
}

/// RFC 9496, Section 4.3.1. Returns the points and the mask of the lanes
/// that decoded; the others hold whatever the formulas gave, are computed
/// on like the rest, and are thrown away by the caller.
#[inline(always)]
fn decode<L: Lanes>(encodings: &[[u8; 32]; 8]) -> (Extended<L>, L) {
    let limbs = encodings.map(|e| limbs_from_bytes(&e));
    let s = Fe::<L>::from_limbs(&limbs);

    // Step 1: s must be canonical (its encoding re-encodes to the input,
    // which also refuses bit 255) and non-negative.
    let canonical = canonical_bytes(&s);
    let is_canonical = L::from_array(core::array::from_fn(|l| {
        let mut m = 0u64;
        m.conditional_assign(&u64::MAX, canonical[l].ct_eq(&encodings[l]));
        m
    }));
    let s_is_negative = s.is_negative();

    // Step 2.
    let one = Fe::one();
    let ss = s.square();
    let u1 = one.sub(&ss);
    let u2 = one.add(&ss);
    let u2_sqr = u2.square();
    let v = Fe::splat(EDWARDS_D).neg().mul(&u1.square()).sub(&u2_sqr);
    let (ok, invsqrt) = v.mul(&u2_sqr).invsqrt();
    let den_x = invsqrt.mul(&u2);
    let den_y = invsqrt.mul(&den_x).mul(&v);
    let x = s.add(&s).mul(&den_x);
    let x = x.negate_where(x.is_negative());
    let y = u1.mul(&den_y);
    let t = x.mul(&y);

    let all = L::splat(u64::MAX);
    let valid = is_canonical
        .and(s_is_negative.xor(all))
        .and(ok)
        .and(t.is_negative().xor(all))
        .and(y.is_zero().xor(all));
    (Extended { x, y, z: one, t }, valid)
}

/// RFC 9496, Section 4.3.2 (dalek's `RistrettoPoint::compress`).
#[inline(always)]
fn encode<L: Lanes>(p: &Extended<L>) -> [[u8; 32]; 8] {
    let (x, y, z, t) = (p.x, p.y, p.z, p.t);
    let u1 = z.add(&y).mul(&z.sub(&y));
    let u2 = x.mul(&y);
    let (_, invsqrt) = u1.mul(&u2.square()).invsqrt();
    let i1 = invsqrt.mul(&u1);
    let i2 = invsqrt.mul(&u2);
    let z_inv = i1.mul(&i2.mul(&t));
    let sqrt_m1 = Fe::splat(SQRT_M1);
    let ix = x.mul(&sqrt_m1);
    let iy = y.mul(&sqrt_m1);
    let enchanted_denominator = i1.mul(&Fe::splat(INVSQRT_A_MINUS_D));
    let rotate = t.mul(&z_inv).is_negative();
    let x = x.select(&iy, rotate);
    let y = y.select(&ix, rotate);
    let den_inv = i2.select(&enchanted_denominator, rotate);
    let y = y.negate_where(x.mul(&z_inv).is_negative());
    let s = den_inv.mul(&z.sub(&y));
    let s = s.negate_where(s.is_negative());
    canonical_bytes(&s)
}

/// RFC 9496, Section 4.3.4's MAP (dalek's
/// `RistrettoPoint::elligator_ristretto_flavor`), step for step.
#[inline(always)]
fn elligator<L: Lanes>(r0: &Fe<L>) -> Extended<L> {
    let all = L::splat(u64::MAX);
    let one = Fe::one();
    let minus_one = one.neg();
    let d = Fe::splat(EDWARDS_D);
    let r = Fe::splat(SQRT_M1).mul(&r0.square());
    let n_s = r.add(&one).mul(&Fe::splat(ONE_MINUS_EDWARDS_D_SQUARED));
    let den = minus_one.sub(&d.mul(&r)).mul(&r.add(&d));
    let (ns_d_is_sq, s) = Fe::sqrt_ratio_i(&n_s, &den);
    // s' = -|s·r0|.
    let s_prime = s.mul(r0);
    let s_prime = s_prime.negate_where(s_prime.is_negative().xor(all));
    let not_square = ns_d_is_sq.xor(all);
    let s = s.select(&s_prime, not_square);
    let c = minus_one.select(&r, not_square);
    let n_t = c
        .mul(&r.sub(&one))
        .mul(&Fe::splat(EDWARDS_D_MINUS_ONE_SQUARED))
        .sub(&den);
    let s_sq = s.square();
    // The map's point in completed coordinates, as dalek builds it.
    Completed {
        x: s.add(&s).mul(&den),
        y: one.sub(&s_sq),
        z: n_t.mul(&Fe::splat(SQRT_AD_MINUS_ONE)),
        t: one.add(&s_sq),
    }
    .to_extended()
}

/// RFC 9496, Section 4.3.4: the element derived from 64 uniform bytes, the
/// sum of MAP on each half (each taken mod 2^255, then as a field element,
/// as RFC 9496 and dalek's `FieldElement::from_bytes` do).
#[inline(always)]
fn from_uniform<L: Lanes>(uniform: &[[u8; 64]; 8]) -> Extended<L> {
    let half = |h: usize| {
        Fe::<L>::from_limbs(&uniform.map(|u| {
            let mut b = [0u8; 32];
            b.copy_from_slice(&u[32 * h..32 * h + 32]);
            limbs_from_bytes(&b)
        }))
    };
    elligator(&half(0)).add(&elligator(&half(1)))
}

/// Each lane's canonical 32-byte encoding.
#[inline(always)]
fn canonical_bytes<L: Lanes>(f: &Fe<L>) -> [[u8; 32]; 8] {
    let c = f.to_canonical().map(L::to_array);
    core::array::from_fn(|l| bytes_from_limbs(&[c[0][l], c[1][l], c[2][l], c[3][l], c[4][l]]))
}

/// Whether each of eight encodings decodes (RFC 9496, Section 4.3.1).
#[inline(always)]
pub(crate) fn decodes<L: Lanes>(encodings: &[[u8; 32]; 8]) -> [bool; 8] {
    decode::<L>(encodings).1.to_array().map(|m| m != 0)
}

/// For each of eight encodings: decode it as a ristretto255 element,
/// multiply by the scalar whose radix-16 digits are `digits`, and encode
/// the product. Returns the encodings and, per lane, whether the input
/// decoded (the encoding in a lane that did not is meaningless).
#[inline(always)]
pub(crate) fn mul_encoded<L: Lanes>(
    digits: &[i8; 64],
    encodings: &[[u8; 32]; 8],
) -> ([[u8; 32]; 8], [bool; 8]) {
    let (p, valid) = decode::<L>(encodings);
    let out = encode(&mul(&p, digits));
    (out, valid.to_array().map(|m| m != 0))
}

/// For each of eight 64-byte strings: derive the element (RFC 9496,
/// Section 4.3.4), multiply by the scalar whose radix-16 digits are
/// `digits`, and encode the product.
#[inline(always)]
pub(crate) fn mul_uniform<L: Lanes>(digits: &[i8; 64], uniform: &[[u8; 64]; 8]) -> [[u8; 32]; 8] {
    encode(&mul(&from_uniform::<L>(uniform), digits))
}

/// For each of eight 64-byte strings: derive the element, double it and
/// encode the result (what the table builder puts in a filler slot).
#[inline(always)]
pub(crate) fn double_uniform<L: Lanes>(uniform: &[[u8; 64]; 8]) -> [[u8; 32]; 8] {
    encode(&from_uniform::<L>(uniform).double())
}

#[cfg(test)]
mod tests {
    use curve25519_dalek::Scalar;
    use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
    use curve25519_dalek::ristretto::CompressedRistretto;

    use super::*;
    use crate::lanes::Portable;

    #[test]
    fn radix_16_digits_recompose_the_scalar() {
        let s = Scalar::from_bytes_mod_order([0xa7; 32]);
        let d = radix_16(s.as_bytes());
        assert!(d.iter().all(|&x| (-8..=8).contains(&x)));
        let mut acc = Scalar::ZERO;
        for &x in d.iter().rev() {
            acc *= Scalar::from(16u8);
            let mag = Scalar::from(x.unsigned_abs());
            acc += if x < 0 { -mag } else { mag };
        }
        assert_eq!(acc, s);
    }

    #[test]
    fn portable_lanes_give_dalek_bytes_on_multiples_of_the_base_point() {
        let scalar = Scalar::from_bytes_mod_order([0x5c; 32]);
        let inputs: [[u8; 32]; 8] = core::array::from_fn(|i| {
            (Scalar::from(i as u64 * 1_000_003 + 7) * RISTRETTO_BASEPOINT_POINT)
                .compress()
                .to_bytes()
        });
        let (out, valid) = mul_encoded::<Portable>(&radix_16(scalar.as_bytes()), &inputs);
        for l in 0..8 {
            let q = CompressedRistretto(inputs[l]).decompress();
            assert!(valid[l]);
            assert_eq!(
                out[l],
                (scalar * q.unwrap_or_default()).compress().to_bytes()
            );
        }
    }
}
