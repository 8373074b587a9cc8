//! Drift statistics computed from stored summaries (the service never re-reads raw rows).
//!
//! A [`FeatureSummary`]'s KLL sketch stands for a weighted empirical distribution; the
//! statistics below are the exact statistics **of those weighted distributions**. While a
//! sketch has seen at most `k` values it holds every value and the results equal the exact
//! ones (`stats::two_sample`, `stats::binning`) bit for bit up to summation order. Past that,
//! each CDF is off by at most the sketch's normalised rank error ε (≈ 0.6 % at k = 512), so:
//!
//! * KS D is within 2ε of the exact D;
//! * PSI, KL and JS on the quantile bins move with the bin shares, each within 2ε;
//! * Wasserstein is within 2ε·(max − min) in the worst case, far less on smooth data.
//!
//! Measured on 1M-value samples (test `sketch_statistics_track_exact_ones_on_a_million_values`):
//! the errors stay under 0.01 on KS D and under 0.005 on PSI and JS, which the test asserts.
//! Category counts are exact under the category cap, so chi-square and JS on categorical
//! features are the exact statistics.

use crate::stats::binning::{self, Binned, BinningRule, Divergences};
use crate::stats::{undefined, StatResult};
use crate::summary::{FeatureSummary, Kll};

/// The weighted empirical CDF of a sketch: sorted distinct values and cumulative weights.
#[derive(Debug, Clone)]
pub struct SketchCdf {
    values: Vec<f64>,
    cum: Vec<u64>,
    total: u64,
}

impl SketchCdf {
    pub fn new(k: &Kll) -> Self {
        let items = k.weighted_items();
        let mut values = Vec::with_capacity(items.len());
        let mut cum: Vec<u64> = Vec::with_capacity(items.len());
        let mut acc = 0u64;
        for (v, w) in items {
            acc += w;
            if values.last() == Some(&v) {
                if let Some(last) = cum.last_mut() {
                    *last = acc;
                }
            } else {
                values.push(v);
                cum.push(acc);
            }
        }
        Self {
            values,
            cum,
            total: acc,
        }
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Fraction of weight ≤ x.
    pub fn cdf(&self, x: f64) -> f64 {
        let i = self.values.partition_point(|&v| v <= x);
        if i == 0 || self.total == 0 {
            0.0
        } else {
            self.cum[i - 1] as f64 / self.total as f64
        }
    }

    /// numpy-style linear quantile of the weighted sample (positions (n−1)·q over the expanded
    /// values).
    pub fn quantile(&self, q: f64) -> f64 {
        let n = self.total;
        if n == 0 {
            return f64::NAN;
        }
        let pos = (n - 1) as f64 * q;
        let lo = pos.floor() as u64;
        let frac = pos - lo as f64;
        let at = |rank: u64| -> f64 {
            // value of the rank-th (0-based) expanded element
            let i = self.cum.partition_point(|&c| c <= rank);
            self.values[i.min(self.values.len() - 1)]
        };
        let (a, b) = (at(lo), at((lo + 1).min(n - 1)));
        if frac >= 0.5 {
            b - (b - a) * (1.0 - frac)
        } else {
            a + (b - a) * frac
        }
    }

    fn iter(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        let t = self.total as f64;
        self.values
            .iter()
            .zip(&self.cum)
            .map(move |(&v, &c)| (v, c as f64 / t))
    }
}

fn cdfs(r: &FeatureSummary, c: &FeatureSummary) -> StatResult<(SketchCdf, SketchCdf)> {
    if r.sketch.count() == 0 || c.sketch.count() == 0 {
        return undefined("sketch", "both summaries need at least one numeric value");
    }
    Ok((SketchCdf::new(&r.sketch), SketchCdf::new(&c.sketch)))
}

/// Merge-walk the two step CDFs: calls `f(x, next_x, F_r(x), F_c(x))` for each pooled value.
fn walk(r: &SketchCdf, c: &SketchCdf, mut f: impl FnMut(f64, Option<f64>, f64, f64)) {
    let rv: Vec<(f64, f64)> = r.iter().collect();
    let cv: Vec<(f64, f64)> = c.iter().collect();
    let (mut i, mut j) = (0usize, 0usize);
    let (mut fr, mut fc) = (0.0, 0.0);
    while i < rv.len() || j < cv.len() {
        let x = match (rv.get(i), cv.get(j)) {
            (Some(a), Some(b)) => a.0.min(b.0),
            (Some(a), None) => a.0,
            (None, Some(b)) => b.0,
            (None, None) => break,
        };
        while i < rv.len() && rv[i].0 <= x {
            fr = rv[i].1;
            i += 1;
        }
        while j < cv.len() && cv[j].0 <= x {
            fc = cv[j].1;
            j += 1;
        }
        let next = match (rv.get(i), cv.get(j)) {
            (Some(a), Some(b)) => Some(a.0.min(b.0)),
            (Some(a), None) => Some(a.0),
            (None, Some(b)) => Some(b.0),
            (None, None) => None,
        };
        f(x, next, fr, fc);
    }
}

/// KS statistic D between two summaries, and its asymptotic p-value at the true counts.
pub fn ks(r: &FeatureSummary, c: &FeatureSummary) -> StatResult<(f64, f64)> {
    let (a, b) = cdfs(r, c)?;
    let mut d = 0.0f64;
    walk(&a, &b, |_, _, fr, fc| d = d.max((fr - fc).abs()));
    Ok((d, ks_p_value(a.total(), b.total(), d)))
}

/// KS over the whole population of each summary, missing and non-finite values counted as one
/// value above every finite one (as [`crate::stats::two_sample::ks_2samp_missing_last`] on raw
/// values): `(D, error)`, where the exact D lies within `error` of it (the sum of the two
/// sketches' rank errors, 0 while both are exact).
pub fn ks_missing_last(r: &FeatureSummary, c: &FeatureSummary) -> StatResult<(f64, f64)> {
    let absent = |s: &FeatureSummary| s.missing + s.non_finite;
    let (tr, tc) = (r.sketch.count() + absent(r), c.sketch.count() + absent(c));
    if tr == 0 || tc == 0 {
        return undefined("ks", "both summaries need at least one value");
    }
    let scale = |s: &FeatureSummary, t: u64| s.sketch.count() as f64 / t as f64;
    let (sr, sc) = (scale(r, tr), scale(c, tc));
    let mut d = 0.0f64;
    if r.sketch.count() > 0 && c.sketch.count() > 0 {
        let (a, b) = cdfs(r, c)?;
        walk(&a, &b, |_, _, fr, fc| d = d.max((fr * sr - fc * sc).abs()));
    }
    // The finite shares (the CDFs just below +∞), which the walk may not reach when a side has
    // no finite value.
    d = d.max((sr - sc).abs());
    Ok((d, r.sketch.rank_error() * sr + c.sketch.rank_error() * sc))
}

/// The two-sided KS p-value of `d` for populations of `n1` and `n2`, from the limiting
/// Kolmogorov distribution with Stephens' small-sample correction,
/// `Q(λ) = 2 Σ (−1)^(k−1) exp(−2k²λ²)` at `λ = (√n + 0.12 + 0.11/√n)·d`, `n = n1·n2/(n1+n2)`.
/// A sketch's D is approximate anyway; the exact distribution (`kstwo`) would cost up to
/// milliseconds a feature for no real gain in precision.
pub fn ks_p_value(n1: u64, n2: u64, d: f64) -> f64 {
    let (n1, n2) = (n1 as f64, n2 as f64);
    if n1 == 0.0 || n2 == 0.0 || d <= 0.0 {
        return 1.0;
    }
    let en = (n1 * n2 / (n1 + n2)).sqrt();
    let lambda = (en + 0.12 + 0.11 / en) * d;
    if lambda < 0.3 {
        return 1.0; // the series converges slowly here and the sum is 1 to 1e-9
    }
    let mut sum = 0.0;
    for k in 1..=100 {
        let k = f64::from(k);
        let term = (-2.0 * k * k * lambda * lambda).exp();
        sum += if k as u32 % 2 == 1 { term } else { -term };
        if term < 1e-16 {
            break;
        }
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

/// W1 between two summaries.
pub fn wasserstein(r: &FeatureSummary, c: &FeatureSummary) -> StatResult<f64> {
    let (a, b) = cdfs(r, c)?;
    let mut w = 0.0f64;
    walk(&a, &b, |x, next, fr, fc| {
        if let Some(n) = next {
            w += (fr - fc).abs() * (n - x);
        }
    });
    Ok(w)
}

/// W1 divided by max(population std of the reference, 0.001), the std from the exact moments.
pub fn wasserstein_normed(r: &FeatureSummary, c: &FeatureSummary) -> StatResult<f64> {
    let w = wasserstein(r, c)?;
    let sd = r.moments.variance_pop().unwrap_or(0.0).sqrt();
    Ok(w / sd.max(0.001))
}

/// Shares of both summaries over the project's bins (quantile bins fitted on the reference
/// sketch, or equal-width bins over the pooled range).
pub fn bin(r: &FeatureSummary, c: &FeatureSummary, rule: BinningRule) -> StatResult<Binned> {
    let (a, b) = cdfs(r, c)?;
    let edges: Vec<f64> = match rule {
        BinningRule::Quantile(bins) => {
            let mut e: Vec<f64> = (1..bins.max(1))
                .map(|i| a.quantile(i as f64 / bins as f64))
                .collect();
            e.dedup();
            e
        }
        BinningRule::Sturges | BinningRule::EqualWidth(_) => {
            let (lo, hi) = (r.min.min(c.min), r.max.max(c.max));
            let all = binning::sturges_edges(lo, hi, (a.total() + b.total()) as usize);
            let all = match rule {
                BinningRule::EqualWidth(k) => (0..=k)
                    .map(|i| lo + (hi - lo) * i as f64 / k.max(1) as f64)
                    .collect(),
                _ => all,
            };
            // Inner edges only; outer bins are open here.
            all[1..all.len().saturating_sub(1)].to_vec()
        }
    };
    let counts = |s: &SketchCdf| -> Vec<u64> {
        let mut out = Vec::with_capacity(edges.len() + 1);
        let mut prev = 0.0;
        for &e in &edges {
            let f = s.cdf(e) * s.total() as f64;
            out.push((f - prev).round() as u64);
            prev = f;
        }
        out.push((s.total() as f64 - prev).round().max(0.0) as u64);
        out
    };
    Ok(Binned::from_counts(counts(&a), counts(&b)))
}

/// PSI, KL and JS (base 2) between two numeric summaries.
pub fn divergences(
    r: &FeatureSummary,
    c: &FeatureSummary,
    rule: BinningRule,
) -> StatResult<Divergences> {
    Ok(binning::divergences(&bin(r, c, rule)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Sample;
    use crate::stats::{special, two_sample};
    use rand::{rngs::StdRng, SeedableRng};
    use rand_distr::{Distribution, Normal, Poisson};

    fn summarise(xs: &[f64]) -> FeatureSummary {
        let mut s = FeatureSummary::default();
        xs.iter().for_each(|&x| s.add_number(x));
        s
    }

    #[test]
    fn the_limiting_ks_p_value_tracks_the_exact_one() {
        // Against scipy's exact two-sided kstwo at the same effective n (within 0.01 absolute
        // where p matters, and monotone in d).
        for (n1, n2) in [(2_000u64, 48_000u64), (10_000, 10_000), (500, 800)] {
            let en = (n1 * n2) as f64 / (n1 + n2) as f64;
            let mut last = 1.0;
            for i in 1..60 {
                let d = i as f64 * 0.002;
                let p = ks_p_value(n1, n2, d);
                let exact = special::kstwo_sf(en.round() as u64, d);
                assert!(
                    (p - exact).abs() < 0.01,
                    "n1={n1} n2={n2} d={d}: {p} vs {exact}"
                );
                assert!(p <= last + 1e-12);
                last = p;
            }
        }
        assert_eq!(ks_p_value(100, 100, 0.0), 1.0);
    }

    fn check_pair(r: &[f64], c: &[f64], tag: &str) {
        let (sr, sc) = (summarise(r), summarise(c));
        let (er, ec) = (Sample::new(r.to_vec()), Sample::new(c.to_vec()));
        let exact_ks = two_sample::ks_2samp_asymp(&er, &ec).expect("ks").statistic;
        let (d, _) = ks(&sr, &sc).expect("ks");
        assert!((d - exact_ks).abs() <= 0.01, "{tag}: KS {d} vs {exact_ks}");
        let exact = binning::divergences(&binning::bin_numeric(&er, &ec, BinningRule::default()));
        let approx = divergences(&sr, &sc, BinningRule::default()).expect("div");
        assert!(
            (approx.psi - exact.psi).abs() <= 0.005,
            "{tag}: PSI {} vs {}",
            approx.psi,
            exact.psi
        );
        assert!(
            (approx.js - exact.js).abs() <= 0.005,
            "{tag}: JS {} vs {}",
            approx.js,
            exact.js
        );
        let ew = two_sample::wasserstein_normed(&er, &ec).expect("w");
        let aw = wasserstein_normed(&sr, &sc).expect("w");
        assert!((aw - ew).abs() <= 0.01, "{tag}: normed W {aw} vs {ew}");
        eprintln!(
            "{tag}: |ΔD| = {:.2e}, |ΔPSI| = {:.2e}, |ΔJS| = {:.2e}, |ΔW normed| = {:.2e}",
            (d - exact_ks).abs(),
            (approx.psi - exact.psi).abs(),
            (approx.js - exact.js).abs(),
            (aw - ew).abs()
        );
    }

    #[test]
    fn sketch_statistics_track_exact_ones_on_a_million_values() {
        let mut rng = StdRng::seed_from_u64(11);
        let n = 1_000_000;
        let norm = Normal::new(0.0, 1.0).expect("normal");
        let r: Vec<f64> = (0..n).map(|_| norm.sample(&mut rng)).collect();
        let same: Vec<f64> = (0..n).map(|_| norm.sample(&mut rng)).collect();
        let shifted: Vec<f64> = (0..n).map(|_| norm.sample(&mut rng) + 0.2).collect();
        check_pair(&r, &same, "normal, no drift");
        check_pair(&r, &shifted, "normal, 0.2 sd shift");
        let pois = Poisson::new(3.0).expect("poisson");
        let p1: Vec<f64> = (0..n).map(|_| pois.sample(&mut rng)).collect();
        let pois2 = Poisson::new(3.3).expect("poisson");
        let p2: Vec<f64> = (0..n).map(|_| pois2.sample(&mut rng)).collect();
        check_pair(&p1, &p2, "poisson with ties");
    }

    /// The service's pattern: a baseline merged from many hourly summaries against one hour.
    #[test]
    fn merged_hourly_summaries_track_exact_statistics() {
        let mut rng = StdRng::seed_from_u64(5);
        let norm = Normal::new(0.0, 1.0).expect("normal");
        for trial in 0..20 {
            let hours: Vec<Vec<f64>> = (0..24)
                .map(|_| (0..400).map(|_| norm.sample(&mut rng)).collect())
                .collect();
            let mut merged = FeatureSummary::default();
            for h in &hours {
                merged.merge(&summarise(h));
            }
            let all: Vec<f64> = hours.concat();
            let cur: Vec<f64> = (0..400).map(|_| norm.sample(&mut rng)).collect();
            let sc = summarise(&cur);
            let (er, ec) = (Sample::new(all), Sample::new(cur));
            let ew = two_sample::wasserstein_normed(&er, &ec).expect("w");
            let aw = wasserstein_normed(&merged, &sc).expect("w");
            let ed = two_sample::ks_2samp_asymp(&er, &ec).expect("ks").statistic;
            let (ad, _) = ks(&merged, &sc).expect("ks");
            assert!(
                (aw - ew).abs() <= 0.01 && (ad - ed).abs() <= 0.012,
                "trial {trial}: normed W {aw} vs {ew}, D {ad} vs {ed}"
            );
        }
    }

    #[test]
    fn small_summaries_are_exact() {
        let r: Vec<f64> = (0..300).map(|i| (i as f64 * 0.37).sin()).collect();
        let c: Vec<f64> = (0..200).map(|i| (i as f64 * 0.53).cos() + 0.1).collect();
        let (sr, sc) = (summarise(&r), summarise(&c));
        let (er, ec) = (Sample::new(r.clone()), Sample::new(c.clone()));
        let (d, _) = ks(&sr, &sc).expect("ks");
        assert!((d - two_sample::ks_2samp(&er, &ec).expect("ks").statistic).abs() < 1e-12);
        let w = wasserstein(&sr, &sc).expect("w");
        assert!((w - two_sample::wasserstein(&er, &ec).expect("w")).abs() < 1e-12);
        let a = divergences(&sr, &sc, BinningRule::default()).expect("d");
        let e = binning::divergences(&binning::bin_numeric(&er, &ec, BinningRule::default()));
        assert!((a.psi - e.psi).abs() < 1e-12 && (a.js - e.js).abs() < 1e-12);
    }

    #[test]
    fn empty_summaries_are_undefined() {
        let e = FeatureSummary::default();
        let s = summarise(&[1.0, 2.0]);
        assert!(ks(&e, &s).is_err());
        assert!(wasserstein(&s, &e).is_err());
    }
}
