//! Shamir sharing of the account key over the ristretto255 scalar field
//! (SPEC Section 14.3): the client evaluates its polynomial P of degree
//! t − 1 at a voucher's x-coordinate; the server, holding t points of P,
//! interpolates it.
//!
//! Interpolation uses Newton's divided differences: O(t²) multiplications
//! and one batch inversion of the t(t − 1)/2 differences x_i − x_j, after
//! which P can be evaluated anywhere in O(t), at 0 for the key and at every
//! other candidate's x to tell real shares from synthetic ones.

use curve25519_dalek::scalar::Scalar;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// P(x) for P with coefficients `coefficients[i]` of x^i (Horner's rule).
pub(crate) fn evaluate(coefficients: &[Scalar], x: u64) -> Scalar {
    let x = Scalar::from(x);
    coefficients
        .iter()
        .rev()
        .fold(Scalar::ZERO, |acc, c| acc * x + c)
}

/// The polynomial through given points, in Newton form. Its coefficients are
/// what the account's secret polynomial is, so it is zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct Interpolated {
    xs: Vec<Scalar>,
    /// Divided differences f[x_0], f[x_0, x_1], ..., f[x_0 .. x_{t-1}].
    differences: Vec<Scalar>,
}

impl Interpolated {
    /// The polynomial of degree below `points.len()` through `points`
    /// (x, P(x)). `None` if two x-coordinates are equal (callers pass
    /// distinct ones) or there are no points.
    pub(crate) fn new(points: &[(u64, Scalar)]) -> Option<Self> {
        let n = points.len();
        if n == 0 {
            return None;
        }
        let xs: Vec<Scalar> = points.iter().map(|&(x, _)| Scalar::from(x)).collect();
        // Every difference x_i − x_{i−k} the table needs, inverted at once.
        let mut inverses = Vec::with_capacity(n * (n - 1) / 2);
        for k in 1..n {
            for i in k..n {
                inverses.push(xs[i] - xs[i - k]);
            }
        }
        if inverses.contains(&Scalar::ZERO) {
            return None;
        }
        Scalar::invert_batch_alloc(&mut inverses);
        let mut dd: Vec<Scalar> = points.iter().map(|&(_, y)| y).collect();
        let mut next = inverses.iter();
        for k in 1..n {
            // Row k of the table, bottom up, so dd[i - 1] is still row k − 1.
            let row: Vec<Scalar> = next.by_ref().take(n - k).copied().collect();
            for i in (k..n).rev() {
                dd[i] = (dd[i] - dd[i - 1]) * row[i - k];
            }
        }
        Some(Interpolated {
            xs,
            differences: dd,
        })
    }

    /// The polynomial's value at `x`.
    pub(crate) fn at(&self, x: Scalar) -> Scalar {
        let n = self.differences.len();
        let mut v = self.differences[n - 1];
        for i in (0..n - 1).rev() {
            v = v * (x - self.xs[i]) + self.differences[i];
        }
        v
    }

    /// The constant term P(0): the account's key scalar.
    pub(crate) fn at_zero(&self) -> Scalar {
        self.at(Scalar::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scalar(seed: u64) -> Scalar {
        Scalar::from(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)) * Scalar::from(seed | 1)
    }

    proptest! {
        #[test]
        fn t_points_give_back_the_polynomial(t in 1usize..40, seed in any::<u64>(), x0 in 1u64..1 << 60) {
            let coefficients: Vec<Scalar> = (0..t as u64).map(|i| scalar(seed ^ i)).collect();
            let points: Vec<(u64, Scalar)> = (0..t as u64)
                .map(|i| (x0 + 7 * i, evaluate(&coefficients, x0 + 7 * i)))
                .collect();
            let p = Interpolated::new(&points).unwrap();
            prop_assert_eq!(p.at_zero(), coefficients[0]);
            // Anywhere else too.
            prop_assert_eq!(p.at(Scalar::from(3u8)), evaluate(&coefficients, 3));
            // t − 1 points give a polynomial of lower degree: another constant
            // term (unless by a 2^-252 accident).
            if t > 1 {
                let fewer = Interpolated::new(&points[1..]).unwrap();
                prop_assert_ne!(fewer.at_zero(), coefficients[0]);
            }
        }
    }

    #[test]
    fn repeated_x_is_refused() {
        let p = [(5, Scalar::ONE), (5, Scalar::ONE)];
        assert!(Interpolated::new(&p).is_none());
        assert!(Interpolated::new(&[]).is_none());
    }
}
