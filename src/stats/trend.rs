//! Trend tests for short series (learning curves, weekly volumes): Mann–Kendall with the tie
//! correction and Theil–Sen's slope with Sen's confidence interval (R `trend::sens.slope` rule).

use super::categorical::{normal_ppf, normal_sf};
use super::{undefined, StatResult};

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MannKendall {
    pub n: usize,
    pub s: i64,
    /// Var(S) with the tie correction.
    pub var_s: f64,
    /// Continuity-corrected standard score.
    pub z: f64,
    pub p_two_sided: f64,
    /// One-sided p-value for an upward trend.
    pub p_up: f64,
    /// One-sided p-value for a downward trend.
    pub p_down: f64,
    /// Kendall's τ_a = S / (n(n−1)/2).
    pub tau: f64,
}

/// Mann–Kendall trend test. Needs at least 3 finite values.
pub fn mann_kendall(x: &[f64]) -> StatResult<MannKendall> {
    let x: Vec<f64> = x.iter().copied().filter(|v| v.is_finite()).collect();
    let n = x.len();
    if n < 3 {
        return undefined("mann_kendall", format!("needs at least 3 values, has {n}"));
    }
    let mut s: i64 = 0;
    for i in 0..n {
        for j in (i + 1)..n {
            s += match x[j].partial_cmp(&x[i]) {
                Some(std::cmp::Ordering::Greater) => 1,
                Some(std::cmp::Ordering::Less) => -1,
                _ => 0,
            };
        }
    }
    let mut sorted = x.clone();
    sorted.sort_by(f64::total_cmp);
    let mut ties = 0.0f64;
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && sorted[j + 1] == sorted[i] {
            j += 1;
        }
        let t = (j - i + 1) as f64;
        ties += t * (t - 1.0) * (2.0 * t + 5.0);
        i = j + 1;
    }
    let nf = n as f64;
    let var_s = (nf * (nf - 1.0) * (2.0 * nf + 5.0) - ties) / 18.0;
    let z = if var_s <= 0.0 || s == 0 {
        0.0
    } else if s > 0 {
        (s as f64 - 1.0) / var_s.sqrt()
    } else {
        (s as f64 + 1.0) / var_s.sqrt()
    };
    Ok(MannKendall {
        n,
        s,
        var_s,
        z,
        p_two_sided: (2.0 * normal_sf(z.abs())).min(1.0),
        p_up: normal_sf(z),
        p_down: normal_sf(-z),
        tau: s as f64 / (nf * (nf - 1.0) / 2.0),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SenSlope {
    /// Median of the pairwise slopes, per step of the index.
    pub slope: f64,
    pub lower: f64,
    pub upper: f64,
    /// Confidence level of [lower, upper].
    pub confidence: f64,
}

/// Theil–Sen slope of `y` against its index, with Sen's confidence interval at `confidence`
/// (e.g. 0.9): C = z_{1−α/2}·sqrt(Var S), ranks round((k − C)/2) and round((k + C)/2 + 1)
/// (round half to even, as R), clamped to [1, k], of the k sorted pairwise slopes.
pub fn sen_slope(y: &[f64], confidence: f64) -> StatResult<SenSlope> {
    let x: Vec<f64> = (0..y.len()).map(|i| i as f64).collect();
    sen_slope_xy(&x, y, confidence)
}

/// Theil–Sen slope of `y` against `x` (pairs with equal x are skipped).
pub fn sen_slope_xy(x: &[f64], y: &[f64], confidence: f64) -> StatResult<SenSlope> {
    if x.len() != y.len() {
        return undefined("sen_slope", "x and y differ in length");
    }
    let pts: Vec<(f64, f64)> = x
        .iter()
        .zip(y)
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .map(|(a, b)| (*a, *b))
        .collect();
    let mut slopes = Vec::with_capacity(pts.len() * pts.len() / 2);
    for i in 0..pts.len() {
        for j in (i + 1)..pts.len() {
            let dx = pts[j].0 - pts[i].0;
            if dx != 0.0 {
                slopes.push((pts[j].1 - pts[i].1) / dx);
            }
        }
    }
    if slopes.is_empty() || pts.len() < 3 {
        return undefined(
            "sen_slope",
            format!("needs at least 3 points, has {}", pts.len()),
        );
    }
    slopes.sort_by(f64::total_cmp);
    let k = slopes.len();
    let slope = if k % 2 == 1 {
        slopes[k / 2]
    } else {
        (slopes[k / 2 - 1] + slopes[k / 2]) / 2.0
    };
    let ys: Vec<f64> = pts.iter().map(|p| p.1).collect();
    let var_s = mann_kendall(&ys)?.var_s;
    let c = normal_ppf(1.0 - (1.0 - confidence) / 2.0) * var_s.sqrt();
    let kf = k as f64;
    let lo = ((kf - c) / 2.0).round_ties_even().clamp(1.0, kf) as usize;
    let up = ((kf + c) / 2.0 + 1.0).round_ties_even().clamp(1.0, kf) as usize;
    Ok(SenSlope {
        slope,
        lower: slopes[lo - 1],
        upper: slopes[up - 1],
        confidence,
    })
}
