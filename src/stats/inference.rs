//! Intervals and tests for the flywheel metrics: Wilson score interval, Welch's t-test, the
//! two-proportion difference, and Benjamini–Hochberg across many tests.

use super::categorical::{normal_ppf, normal_sf};
use super::{undefined, StatResult};
use statrs::distribution::{ContinuousCDF, StudentsT};

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Interval {
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
}

/// Wilson score interval for `successes` of `n` at `confidence` (e.g. 0.95).
pub fn wilson(successes: u64, n: u64, confidence: f64) -> StatResult<Interval> {
    if n == 0 {
        return undefined("wilson", "no trials");
    }
    if successes > n {
        return undefined("wilson", "more successes than trials");
    }
    let z = normal_ppf(1.0 - (1.0 - confidence) / 2.0);
    let nf = n as f64;
    let p = successes as f64 / nf;
    let z2 = z * z;
    let denom = 1.0 + z2 / nf;
    let centre = (p + z2 / (2.0 * nf)) / denom;
    let half = z * (p * (1.0 - p) / nf + z2 / (4.0 * nf * nf)).sqrt() / denom;
    Ok(Interval {
        estimate: p,
        lower: (centre - half).max(0.0),
        upper: (centre + half).min(1.0),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Difference {
    /// treatment − control.
    pub difference: f64,
    pub lower: f64,
    pub upper: f64,
    pub statistic: f64,
    pub p_value: f64,
    /// Degrees of freedom (Welch) or `None` (z-test).
    pub dof: Option<f64>,
}

/// Welch's unequal-variance t-test of treatment − control, two-sided, with the confidence interval
/// of the difference at `confidence`.
pub fn welch(control: &[f64], treatment: &[f64], confidence: f64) -> StatResult<Difference> {
    let stats = |x: &[f64]| -> Option<(f64, f64, f64)> {
        let v: Vec<f64> = x.iter().copied().filter(|a| a.is_finite()).collect();
        if v.len() < 2 {
            return None;
        }
        let n = v.len() as f64;
        let m = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / (n - 1.0);
        Some((n, m, var))
    };
    let (Some((n1, m1, v1)), Some((n2, m2, v2))) = (stats(control), stats(treatment)) else {
        return undefined("welch", "each group needs at least 2 values");
    };
    welch_from_moments((n1, m1, v1), (n2, m2, v2), confidence)
}

/// Welch's test from each group's (n, mean, sample variance): what stored summaries keep.
pub fn welch_from_moments(
    (n1, m1, v1): (f64, f64, f64),
    (n2, m2, v2): (f64, f64, f64),
    confidence: f64,
) -> StatResult<Difference> {
    if n1 < 2.0 || n2 < 2.0 {
        return undefined("welch", "each group needs at least 2 values");
    }
    let (a, b) = (v1 / n1, v2 / n2);
    let se2 = a + b;
    if se2 <= 0.0 {
        return undefined("welch", "both groups have zero variance");
    }
    let se = se2.sqrt();
    let dof = se2 * se2 / (a * a / (n1 - 1.0) + b * b / (n2 - 1.0));
    let diff = m2 - m1;
    let t = diff / se;
    let dist = StudentsT::new(0.0, 1.0, dof).map_err(|e| super::StatError::Undefined {
        statistic: "welch",
        reason: e.to_string(),
    })?;
    let p = 2.0 * dist.sf(t.abs());
    let q = dist.inverse_cdf(1.0 - (1.0 - confidence) / 2.0);
    Ok(Difference {
        difference: diff,
        lower: diff - q * se,
        upper: diff + q * se,
        statistic: t,
        p_value: p.min(1.0),
        dof: Some(dof),
    })
}

/// Difference of two proportions (treatment x2/n2 − control x1/n1): pooled z-test for the
/// p-value, unpooled (Wald) interval for the difference.
pub fn two_proportions(
    x1: u64,
    n1: u64,
    x2: u64,
    n2: u64,
    confidence: f64,
) -> StatResult<Difference> {
    if n1 == 0 || n2 == 0 {
        return undefined("two_proportions", "each group needs at least one trial");
    }
    let (p1, p2) = (x1 as f64 / n1 as f64, x2 as f64 / n2 as f64);
    let pooled = (x1 + x2) as f64 / (n1 + n2) as f64;
    let se_pooled = (pooled * (1.0 - pooled) * (1.0 / n1 as f64 + 1.0 / n2 as f64)).sqrt();
    let diff = p2 - p1;
    let (z, p) = if se_pooled > 0.0 {
        let z = diff / se_pooled;
        (z, (2.0 * normal_sf(z.abs())).min(1.0))
    } else {
        (0.0, 1.0)
    };
    let se = (p1 * (1.0 - p1) / n1 as f64 + p2 * (1.0 - p2) / n2 as f64).sqrt();
    let q = normal_ppf(1.0 - (1.0 - confidence) / 2.0);
    Ok(Difference {
        difference: diff,
        lower: diff - q * se,
        upper: diff + q * se,
        statistic: z,
        p_value: p,
        dof: None,
    })
}

/// Benjamini–Hochberg adjusted p-values (q-values), in the input order. A test is significant at
/// false-discovery rate `alpha` when its adjusted p-value is ≤ alpha.
pub fn benjamini_hochberg(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut adjusted = vec![1.0; m];
    let mut running = 1.0f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        let q = p_values[i] * m as f64 / (rank + 1) as f64;
        running = running.min(q).min(1.0);
        adjusted[i] = running;
    }
    adjusted
}
