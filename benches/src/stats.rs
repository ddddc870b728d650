//! Percentiles and medians.

/// The `p`-th percentile (0..=100) of `v`, by nearest rank; `v` need not be
/// sorted. `NaN` for an empty slice.
pub fn percentile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * s.len() as f64).ceil().max(1.0) as usize;
    s[rank.min(s.len()) - 1]
}

/// The median.
pub fn median(v: &[f64]) -> f64 {
    percentile(v, 50.0)
}

/// A two-sample Kolmogorov–Smirnov test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsTest {
    /// The largest distance between the two empirical distribution functions.
    pub d: f64,
    /// Probability of a distance at least `d` if both samples come from one
    /// distribution (asymptotic, independent samples).
    pub p_value: f64,
    /// The distance that would be significant at the 5% level for these
    /// sample sizes: what the test could have detected.
    pub d_critical_5pct: f64,
}

/// The two-sample Kolmogorov–Smirnov test of `a` against `b` (Numerical
/// Recipes, 3rd ed., Section 14.3.3: the asymptotic distribution with
/// Stephens' correction for the effective sample size).
pub fn ks_two_sample(a: &[f64], b: &[f64]) -> KsTest {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0, 0, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        // Step past every value equal to x in both samples (ties).
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    let en = (n * m / (n + m)).sqrt();
    KsTest {
        d,
        p_value: q_ks((en + 0.12 + 0.11 / en) * d),
        d_critical_5pct: 1.358 / en,
    }
}

/// The Kolmogorov distribution's complement, Q(λ) = 2 Σ (−1)^(j−1) e^(−2j²λ²).
fn q_ks(lambda: f64) -> f64 {
    if lambda < 0.2 {
        return 1.0; // the series converges slowly here and its value is 1 to 1e-9
    }
    let mut sum = 0.0;
    let mut sign = 1.0;
    for j in 1..=100 {
        let term = (-2.0 * f64::from(j * j) * lambda * lambda).exp();
        sum += sign * term;
        if term < 1e-12 {
            break;
        }
        sign = -sign;
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kolmogorov_distribution() {
        // Tabulated: Q(1.36) = 0.0494, Q(1.63) = 0.0098, Q(0.5) = 0.9639.
        assert!((q_ks(1.36) - 0.0494).abs() < 5e-4, "{}", q_ks(1.36));
        assert!((q_ks(1.63) - 0.0098).abs() < 5e-4, "{}", q_ks(1.63));
        assert!((q_ks(0.5) - 0.9639).abs() < 5e-4, "{}", q_ks(0.5));
    }

    #[test]
    fn ks_distances() {
        let a: Vec<f64> = (0..1000).map(f64::from).collect();
        let same = ks_two_sample(&a, &a);
        assert_eq!(same.d, 0.0);
        assert!(same.p_value > 0.99);
        let b: Vec<f64> = a.iter().map(|x| x + 1000.0).collect();
        let apart = ks_two_sample(&a, &b);
        assert_eq!(apart.d, 1.0);
        assert!(apart.p_value < 1e-12);
        // Shifted by a tenth of the range: D = 0.1, p ~ 6e-5 for n = m = 1000.
        let c: Vec<f64> = a.iter().map(|x| x + 100.0).collect();
        let shifted = ks_two_sample(&a, &c);
        assert!((shifted.d - 0.1).abs() < 1e-9, "{shifted:?}");
        assert!(
            shifted.p_value < 1e-3 && shifted.p_value > 1e-5,
            "{shifted:?}"
        );
        assert!((shifted.d_critical_5pct - 0.0607).abs() < 1e-3);
    }

    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 99.9), 100.0);
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 0.0), 1.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
