//! Detection: which of an account's candidates are real (SPEC Section 14.5).
//!
//! This is the detectable hash function of the Apple PSI system (Section 4
//! of Bhowmick et al.), in the form of a kernel computation. A real voucher
//! with x-coordinate x carries the tag (D_1(x), ..., D_m(x)), where the D_j
//! are the account's secret polynomials of degree t − 2 over the detection
//! field; a synthetic one carries m uniformly random elements. Write each
//! candidate as the column
//!
//! ```text
//! c(x, z) = (1, x, x^2, ..., x^(t-2), z_1, ..., z_m)      (d = t − 1 + m entries)
//! ```
//!
//! Real columns are `[I; A]·(1, x, ..., x^(t-2))` for the m × (t − 1)
//! coefficient matrix A, so they all lie in one (t − 1)-dimensional
//! subspace W, and any t − 1 of them span it (a Vandermonde matrix with
//! distinct x). So:
//!
//! - with t − 1 or fewer real candidates the real columns are linearly
//!   independent, and their tags are t − 1 evaluations of random
//!   polynomials of degree t − 2: uniformly random, exactly like synthetic
//!   tags. Nothing distinguishes them;
//! - with t or more, the real columns are dependent, and every real column
//!   takes part in a dependency. If the s' ≤ m synthetic columns are
//!   linearly independent modulo W (they are, except with probability at
//!   most p^-(m − s' + 1)·p/(p − 1)), no dependency involves a synthetic
//!   column.
//!
//! The union of the supports of the matrix's kernel vectors is therefore the
//! set of real candidates. The server finds it with one Gaussian elimination
//! of the d × n matrix, O(d·n·min(d, n)) operations in the field.

use super::field::DetectionField;

/// Which columns of the `rows` × `columns.len()` matrix whose column i is
/// `columns[i]` take part in some vector of its kernel.
///
/// Every column must have `rows` entries (the caller builds them).
pub(crate) fn kernel_support<F: DetectionField>(rows: usize, columns: &[Vec<F>]) -> Vec<bool> {
    let n = columns.len();
    // Row-major copy: elimination works on rows.
    let mut m = vec![F::ZERO; rows * n];
    for (c, column) in columns.iter().enumerate() {
        for (r, &v) in column.iter().enumerate().take(rows) {
            m[r * n + c] = v;
        }
    }
    // Forward elimination to row echelon form, each pivot scaled to 1.
    let mut pivots: Vec<usize> = Vec::with_capacity(rows.min(n)); // pivot column of each row
    let mut is_pivot = vec![false; n];
    for c in 0..n {
        let r = pivots.len();
        if r == rows {
            break;
        }
        let Some(p) = (r..rows).find(|&i| !m[i * n + c].is_zero()) else {
            continue; // no pivot: column c is free
        };
        if p != r {
            for j in c..n {
                m.swap(p * n + j, r * n + j);
            }
        }
        let inv = m[r * n + c].inv();
        for j in c..n {
            m[r * n + j] = m[r * n + j].mul(inv);
        }
        for i in r + 1..rows {
            let f = m[i * n + c];
            if f.is_zero() {
                continue;
            }
            for j in c..n {
                m[i * n + j] = m[i * n + j].sub(f.mul(m[r * n + j]));
            }
        }
        pivots.push(c);
        is_pivot[c] = true;
    }
    // One kernel vector per free column f: v_f = 1, the other free entries
    // 0, and each pivot entry by back substitution, last pivot row first.
    let mut support = vec![false; n];
    let mut v = vec![F::ZERO; n];
    for f in (0..n).filter(|&c| !is_pivot[c]) {
        v.iter_mut().for_each(|e| *e = F::ZERO);
        v[f] = F::ONE;
        for (r, &pc) in pivots.iter().enumerate().rev() {
            let mut acc = F::ZERO;
            for j in pc + 1..n {
                if !v[j].is_zero() {
                    acc = acc.add(m[r * n + j].mul(v[j]));
                }
            }
            v[pc] = F::ZERO.sub(acc);
        }
        for (s, e) in support.iter_mut().zip(&v) {
            *s |= !e.is_zero();
        }
    }
    support
}

/// The column of one candidate: `(1, x, ..., x^(t-2), tag_1, ..., tag_m)`.
pub(crate) fn column<F: DetectionField>(t: usize, x: F, tag: &[F]) -> Vec<F> {
    let mut col = Vec::with_capacity(t - 1 + tag.len());
    let mut power = F::ONE;
    for _ in 0..t.saturating_sub(1) {
        col.push(power);
        power = power.mul(x);
    }
    col.extend_from_slice(tag);
    col
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::threshold::field::Fp61;
    use rand::{Rng, RngExt, SeedableRng};

    /// Integers modulo a small prime, where detection's failure probability
    /// is large enough to measure.
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    pub(crate) struct Small<const P: u64>(u64);

    impl<const P: u64> DetectionField for Small<P> {
        const ZERO: Self = Small(0);
        const ONE: Self = Small(1);
        fn reduce(v: u64) -> Self {
            Small(v % P)
        }
        fn add(self, o: Self) -> Self {
            Small((self.0 + o.0) % P)
        }
        fn sub(self, o: Self) -> Self {
            Small((self.0 + P - o.0) % P)
        }
        fn mul(self, o: Self) -> Self {
            Small(self.0 * o.0 % P)
        }
        fn inv(self) -> Self {
            let mut acc = Small(1);
            for _ in 0..P - 2 {
                acc = acc.mul(self);
            }
            acc
        }
    }

    /// One trial: `real` real and `synthetic` synthetic candidates for an
    /// account with threshold t and m tag elements. Returns the detected
    /// set and the truth.
    pub(crate) fn trial<F: DetectionField>(
        rng: &mut impl Rng,
        p: u64,
        t: usize,
        m: usize,
        real: usize,
        synthetic: usize,
    ) -> (Vec<bool>, Vec<bool>) {
        let el = |rng: &mut dyn Rng| F::reduce(rng.next_u64() % p);
        // m polynomials of degree t − 2.
        let d: Vec<Vec<F>> = (0..m)
            .map(|_| (0..t - 1).map(|_| el(rng)).collect())
            .collect();
        // Distinct x-coordinates, in a shuffled order of real and synthetic.
        let mut xs: Vec<u64> = Vec::new();
        while xs.len() < real + synthetic {
            let x = 1 + rng.next_u64() % (p - 1);
            if !xs.contains(&x) {
                xs.push(x);
            }
        }
        let mut truth: Vec<bool> = (0..real + synthetic).map(|i| i < real).collect();
        for i in (1..truth.len()).rev() {
            let j = rng.random_range(0..=i);
            truth.swap(i, j);
        }
        let columns: Vec<Vec<F>> = xs
            .iter()
            .zip(&truth)
            .map(|(&x, &is_real)| {
                let x = F::reduce(x);
                let tag: Vec<F> = if is_real {
                    d.iter()
                        .map(|poly| poly.iter().rev().fold(F::ZERO, |acc, &c| acc.mul(x).add(c)))
                        .collect()
                } else {
                    (0..m).map(|_| el(rng)).collect()
                };
                column(t, x, &tag)
            })
            .collect();
        (kernel_support(t - 1 + m, &columns), truth)
    }

    #[test]
    fn finds_exactly_the_real_candidates() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let p = crate::threshold::field::DETECTION_PRIME;
        for &(t, m, real, synthetic) in &[
            (2, 0, 2, 0),
            (2, 3, 2, 3),
            (3, 4, 3, 4),
            (5, 6, 9, 6),
            (30, 90, 30, 90),
            (30, 90, 31, 0),
            (30, 60, 40, 60),
        ] {
            for _ in 0..3 {
                let (found, truth) = trial::<Fp61>(&mut rng, p, t, m, real, synthetic);
                assert_eq!(
                    found, truth,
                    "t={t} m={m} real={real} synthetic={synthetic}"
                );
            }
        }
    }

    #[test]
    fn below_the_threshold_nothing_is_found() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let p = crate::threshold::field::DETECTION_PRIME;
        for &(t, m, real, synthetic) in &[
            (2, 3, 1, 3),
            (5, 6, 4, 6),
            (30, 90, 29, 90),
            (30, 90, 29, 0),
        ] {
            for _ in 0..3 {
                let (found, _) = trial::<Fp61>(&mut rng, p, t, m, real, synthetic);
                assert!(found.iter().all(|&f| !f), "t={t} real={real}");
            }
        }
    }

    /// The failure probability SPEC Section 14.5 states, measured in a field
    /// small enough for failures to happen: with s' = m synthetic candidates
    /// detection fails when they are dependent modulo W, with probability
    /// 1 − Π_{j=1..m} (1 − p^-j) ≈ 1/(p − 1).
    #[test]
    fn failure_rate_matches_the_bound_in_a_small_field() {
        const P: u64 = 257;
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let (t, m, trials) = (4, 5, 20_000); // m = 5 below too
        let failures = (0..trials)
            .filter(|_| {
                let (found, truth) = trial::<Small<P>>(&mut rng, P, t, m, t, m);
                found != truth
            })
            .count();
        let expected: f64 = 1.0
            - (1..=5i32)
                .map(|j| 1.0 - (P as f64).powi(-j))
                .product::<f64>();
        let measured = failures as f64 / trials as f64;
        println!(
            "detection failures in F_{P}: {failures} of {trials} = {measured:.5}, stated {expected:.5}"
        );
        // Binomial standard deviation at 20,000 trials is ~0.00044 here; a
        // fixed seed keeps this deterministic, the margin keeps it honest.
        assert!(
            (measured - expected).abs() < 4.0 * (expected / trials as f64).sqrt(),
            "measured {measured}, stated {expected}"
        );
        // And one synthetic fewer than m makes failure ~p times rarer.
        let fewer = (0..trials)
            .filter(|_| {
                let (found, truth) = trial::<Small<P>>(&mut rng, P, t, m, t, m - 1);
                found != truth
            })
            .count();
        assert!(fewer * 20 < failures.max(20), "{fewer} vs {failures}");
    }
}
