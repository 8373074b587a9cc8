//! Improvement velocity and variance reduction (docs/STATISTICS.md, velocity and CUPED): ordinary least squares
//! with its inference, gain per doubling of training data, data efficiency, and CUPED-adjusted
//! uplift. Pure functions; the reference values of docs/STATISTICS.md are the tests.

use crate::stats::inference::{welch, Difference};
use crate::stats::{undefined, StatResult};
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Simple linear regression y = a + b·x with the usual inference on b.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ols {
    pub slope: f64,
    pub intercept: f64,
    /// Standard error of the slope.
    pub se: f64,
    /// Two-sided p-value of slope = 0 (t with n − 2 degrees of freedom).
    pub p_value: f64,
    pub r_squared: f64,
    /// 95 % confidence interval of the slope.
    pub lower: f64,
    pub upper: f64,
}

pub fn ols(x: &[f64], y: &[f64]) -> StatResult<Ols> {
    if x.len() != y.len() {
        return undefined("ols", "x and y differ in length");
    }
    let n = x.len();
    if n < 3 {
        return undefined("ols", format!("needs at least 3 points, has {n}"));
    }
    let nf = n as f64;
    let (mx, my) = (x.iter().sum::<f64>() / nf, y.iter().sum::<f64>() / nf);
    let sxx: f64 = x.iter().map(|v| (v - mx) * (v - mx)).sum();
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let syy: f64 = y.iter().map(|v| (v - my) * (v - my)).sum();
    if sxx == 0.0 {
        return undefined("ols", "all x values are equal");
    }
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let sse: f64 = x
        .iter()
        .zip(y)
        .map(|(a, b)| {
            let r = b - (intercept + slope * a);
            r * r
        })
        .sum();
    let dof = nf - 2.0;
    let se = (sse / dof / sxx).sqrt();
    let r_squared = if syy == 0.0 { 1.0 } else { 1.0 - sse / syy };
    let t = StudentsT::new(0.0, 1.0, dof).map_err(|e| crate::stats::StatError::Undefined {
        statistic: "ols",
        reason: e.to_string(),
    })?;
    let (p_value, q) = if se > 0.0 {
        (2.0 * t.sf((slope / se).abs()), t.inverse_cdf(0.975))
    } else {
        (0.0, t.inverse_cdf(0.975))
    };
    Ok(Ols {
        slope,
        intercept,
        se,
        p_value,
        r_squared,
        lower: slope - q * se,
        upper: slope + q * se,
    })
}

/// Quality gained per doubling of the training data: OLS of the metric on log₂(examples).
pub fn gain_per_doubling(metric: &[f64], total_examples: &[f64]) -> StatResult<Ols> {
    if total_examples.iter().any(|&n| n <= 0.0) {
        return undefined("gain_per_doubling", "example counts must be positive");
    }
    let x: Vec<f64> = total_examples.iter().map(|n| n.log2()).collect();
    ols(&x, metric)
}

/// Per-cycle gains Δq and data efficiency η = Δq per 1,000 new examples (`None` where no new
/// examples were added).
pub fn data_efficiency(metric: &[f64], total_examples: &[f64]) -> Vec<(f64, Option<f64>)> {
    metric
        .windows(2)
        .zip(total_examples.windows(2))
        .map(|(q, n)| {
            let dq = q[1] - q[0];
            let new = n[1] - n[0];
            (dq, (new > 0.0).then(|| dq / (new / 1000.0)))
        })
        .collect()
}

/// CUPED (Deng et al. 2013) with a pooled θ = cov(pre, post) / var(pre) over both groups,
/// centred at the pooled pre-period mean, then Welch on the adjusted outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Cuped {
    pub theta: f64,
    pub pre_mean: f64,
    pub adjusted: Difference,
}

pub fn cuped(
    pre_control: &[f64],
    post_control: &[f64],
    pre_treatment: &[f64],
    post_treatment: &[f64],
    confidence: f64,
) -> StatResult<Cuped> {
    if pre_control.len() != post_control.len() || pre_treatment.len() != post_treatment.len() {
        return undefined("cuped", "pre and post differ in length");
    }
    let pre: Vec<f64> = pre_control.iter().chain(pre_treatment).copied().collect();
    let post: Vec<f64> = post_control.iter().chain(post_treatment).copied().collect();
    let n = pre.len() as f64;
    if n < 3.0 {
        return undefined("cuped", "needs at least 3 users");
    }
    let (mx, my) = (pre.iter().sum::<f64>() / n, post.iter().sum::<f64>() / n);
    let cov: f64 = pre
        .iter()
        .zip(&post)
        .map(|(a, b)| (a - mx) * (b - my))
        .sum::<f64>()
        / (n - 1.0);
    let var: f64 = pre.iter().map(|a| (a - mx) * (a - mx)).sum::<f64>() / (n - 1.0);
    if var == 0.0 {
        return undefined("cuped", "the pre-period metric has no variance");
    }
    let theta = cov / var;
    let adjust = |pre: &[f64], post: &[f64]| -> Vec<f64> {
        pre.iter()
            .zip(post)
            .map(|(x, y)| y - theta * (x - mx))
            .collect()
    };
    let adjusted = welch(
        &adjust(pre_control, post_control),
        &adjust(pre_treatment, post_treatment),
        confidence,
    )?;
    Ok(Cuped {
        theta,
        pre_mean: mx,
        adjusted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    const Q: [f64; 10] = [
        0.610, 0.640, 0.660, 0.690, 0.700, 0.720, 0.730, 0.730, 0.740, 0.740,
    ];
    const N: [f64; 10] = [
        10e3, 14e3, 20e3, 28e3, 40e3, 56e3, 80e3, 113e3, 160e3, 226e3,
    ];

    /// Reference values of docs/STATISTICS.md (velocity).
    #[test]
    fn golden_velocity() {
        let eff = data_efficiency(&Q, &N);
        let dq: Vec<f64> = eff.iter().map(|e| (e.0 * 100.0).round() / 100.0).collect();
        assert_eq!(dq, vec![0.03, 0.02, 0.03, 0.01, 0.02, 0.01, 0.0, 0.01, 0.0]);
        let eta: Vec<f64> = eff.iter().map(|e| e.1.expect("new examples")).collect();
        for (g, w) in eta.iter().zip([
            0.0075, 0.0033333, 0.00375, 0.00083333, 0.00125, 0.00041667, 0.0, 0.00021277, 0.0,
        ]) {
            assert!((g - w).abs() < 1e-7, "{eta:?}");
        }
        let g = gain_per_doubling(&Q, &N).expect("ols");
        assert!(close(g.slope, 0.0285518799, 1e-8), "{g:?}");
        assert!(close(g.se, 0.0032824982, 1e-7));
        assert!(close(g.p_value, 2.3796e-5, 1e-4), "{}", g.p_value);
        assert!(close(g.r_squared, 0.9043737, 1e-6));
        assert!(
            close(g.lower, 0.0209824254, 1e-7) && close(g.upper, 0.0361213344, 1e-8),
            "{g:?}"
        );
        let last5 = gain_per_doubling(&Q[5..], &N[5..]).expect("ols");
        assert!(close(last5.slope, 0.0099629308, 1e-7), "{last5:?}");
        assert!(close(last5.lower, 0.0037061194, 1e-6) && close(last5.upper, 0.0162197423, 1e-7));
        let days: Vec<f64> = (0..10).map(|i| 7.0 * i as f64).collect();
        let per_day = ols(&days, &Q).expect("ols");
        assert!(close(per_day.slope, 0.0020432900, 1e-7), "{per_day:?}");
    }

    /// Reference values of docs/STATISTICS.md (CUPED).
    #[test]
    fn golden_cuped() {
        let c = cuped(
            &[5., 8., 6., 9., 7., 4., 10., 6.],
            &[6., 9., 7., 10., 8., 5., 11., 6.],
            &[4., 9., 7., 8., 6., 5., 11., 7.],
            &[6., 11., 9., 10., 8., 6., 13., 9.],
            0.95,
        )
        .expect("cuped");
        assert!(close(c.theta, 1.0625, 1e-12));
        assert!(close(c.pre_mean, 7.0, 1e-12));
        assert!(close(c.adjusted.difference, 0.984375, 1e-12));
        assert!(close(c.adjusted.statistic, 5.7804073, 1e-7), "{c:?}");
        assert!(close(c.adjusted.p_value, 4.8905e-5, 1e-4), "{c:?}");
        let raw = welch(
            &[6., 9., 7., 10., 8., 5., 11., 6.],
            &[6., 11., 9., 10., 8., 6., 13., 9.],
            0.95,
        )
        .expect("welch");
        assert!(close(raw.statistic, 1.1062442, 1e-7) && close(raw.p_value, 0.2875265, 1e-6));
    }

    #[test]
    fn degenerate_inputs_are_undefined() {
        assert!(ols(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_err());
        assert!(ols(&[1.0, 2.0], &[1.0, 2.0]).is_err());
        assert!(gain_per_doubling(&[0.1, 0.2, 0.3], &[0.0, 1.0, 2.0]).is_err());
        assert!(cuped(&[1., 1.], &[1., 2.], &[1.], &[3.], 0.95).is_err());
    }
}
