//! Tests on category counts: chi-square homogeneity of the 2×K table and the pooled
//! two-proportion z-test.

use super::{fsum, undefined, StatResult, TestResult};
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Chi2Result {
    pub statistic: f64,
    pub p_value: f64,
    pub dof: usize,
}

pub(crate) fn chi2_sf(x: f64, dof: f64) -> f64 {
    if x.is_infinite() {
        return 0.0;
    }
    match ChiSquared::new(dof) {
        Ok(d) => d.sf(x),
        Err(_) => f64::NAN,
    }
}

pub(crate) fn normal_sf(z: f64) -> f64 {
    match Normal::new(0.0, 1.0) {
        Ok(n) => n.sf(z),
        Err(_) => f64::NAN,
    }
}

pub(crate) fn normal_ppf(p: f64) -> f64 {
    match Normal::new(0.0, 1.0) {
        Ok(n) => n.inverse_cdf(p),
        Err(_) => f64::NAN,
    }
}

/// Chi-square test of homogeneity on the 2×K table `[reference; current]` of counts per category
/// (`scipy.stats.chi2_contingency`). Categories whose total is zero are dropped. With
/// `correction`, Yates' continuity correction is applied when the table has one degree of freedom
/// (scipy's default); it never applies for K > 2. One category: statistic 0, p = 1.
pub fn chi2_contingency(
    reference: &[u64],
    current: &[u64],
    correction: bool,
) -> StatResult<Chi2Result> {
    if reference.len() != current.len() {
        return undefined("chisquare", "the two count vectors differ in length");
    }
    let cols: Vec<(f64, f64)> = reference
        .iter()
        .zip(current)
        .filter(|(r, c)| **r + **c > 0)
        .map(|(r, c)| (*r as f64, *c as f64))
        .collect();
    let n_ref: f64 = cols.iter().map(|c| c.0).sum();
    let n_cur: f64 = cols.iter().map(|c| c.1).sum();
    if n_ref == 0.0 || n_cur == 0.0 {
        return undefined("chisquare", "both samples need at least one value");
    }
    let dof = cols.len() - 1;
    if dof == 0 {
        return Ok(Chi2Result {
            statistic: 0.0,
            p_value: 1.0,
            dof,
        });
    }
    let total = n_ref + n_cur;
    let terms = cols.iter().flat_map(|&(r, c)| {
        let col = r + c;
        [(r, n_ref * col / total), (c, n_cur * col / total)]
    });
    let stat = fsum(terms.map(|(o, e)| {
        let o = if dof == 1 && correction {
            let diff = e - o;
            o + diff.abs().min(0.5) * diff.signum()
        } else {
            o
        };
        (o - e) * (o - e) / e
    }));
    Ok(Chi2Result {
        statistic: stat,
        p_value: chi2_sf(stat, dof as f64),
        dof,
    })
}

/// Pooled two-proportion z-test, two-sided: successes x1 of n1 against x2 of n2.
/// z = (p1 − p2) / sqrt(P(1−P)(1/n1 + 1/n2)), P the pooled share. When both samples hold one
/// and the same class there is no difference to test: z = 0 and p = 1 (Evidently gives p = 1).
pub fn z_test_proportions(x1: u64, n1: u64, x2: u64, n2: u64) -> StatResult<TestResult> {
    if n1 == 0 || n2 == 0 {
        return undefined("ztest", "both samples need at least one value");
    }
    let (p1, p2) = (x1 as f64 / n1 as f64, x2 as f64 / n2 as f64);
    let pooled = (p1 * n1 as f64 + p2 * n2 as f64) / (n1 + n2) as f64;
    let var = pooled * (1.0 - pooled) * (1.0 / n1 as f64 + 1.0 / n2 as f64);
    if var == 0.0 {
        // Both samples hold one and the same class: no difference, z = 0 and p = 1.
        return Ok(TestResult {
            statistic: 0.0,
            p_value: Some(1.0),
        });
    }
    let z = (p1 - p2) / var.sqrt();
    Ok(TestResult {
        statistic: z,
        p_value: Some(2.0 * normal_sf(z.abs())),
    })
}

/// Evidently's categorical "chisquare" test: goodness of fit of the current counts against the
/// reference shares scaled to the current size. A category absent from the reference gives an
/// infinite statistic and p = 0.
pub fn chisquare_goodness_of_fit(reference: &[u64], current: &[u64]) -> StatResult<TestResult> {
    let n_ref: u64 = reference.iter().sum();
    let n_cur: u64 = current.iter().sum();
    if n_ref == 0 || n_cur == 0 || reference.len() != current.len() {
        return undefined("chisquare", "both samples need at least one value");
    }
    let k = reference.len();
    let scale = n_cur as f64 / n_ref as f64;
    let mut stat = 0.0;
    let mut terms = Vec::with_capacity(k);
    for (r, c) in reference.iter().zip(current) {
        let e = *r as f64 * scale;
        let o = *c as f64;
        if e == 0.0 {
            if o > 0.0 {
                stat = f64::INFINITY;
            }
            continue;
        }
        terms.push((o - e) * (o - e) / e);
    }
    if stat.is_finite() {
        stat = fsum(terms);
    }
    let p = if k < 2 {
        1.0
    } else {
        chi2_sf(stat, (k - 1) as f64)
    };
    Ok(TestResult {
        statistic: stat,
        p_value: Some(p),
    })
}
