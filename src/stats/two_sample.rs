//! Two-sample tests and distances on numeric samples, as scipy defines them.

use super::special;
use super::{fsum, undefined, Sample, StatResult, TestResult};

/// How a KS p-value was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KsMethod {
    Exact,
    Asymptotic,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct KsResult {
    pub statistic: f64,
    pub p_value: f64,
    pub method: KsMethod,
}

/// scipy switches from the exact to the asymptotic p-value above this sample size.
pub const KS_MAX_EXACT_N: usize = 10_000;

/// The KS statistic as an exact fraction: `max |i·n2 − j·n1|` over the pooled values, so that
/// D = h / (n1·n2).
fn ks_numerator(a: &[f64], b: &[f64]) -> u128 {
    let (n1, n2) = (a.len() as i128, b.len() as i128);
    let (mut i, mut j) = (0usize, 0usize);
    let mut best: u128 = 0;
    while i < a.len() || j < b.len() {
        let v = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        while i < a.len() && a[i] <= v {
            i += 1;
        }
        while j < b.len() && b[j] <= v {
            j += 1;
        }
        let diff = (i as i128 * n2 - j as i128 * n1).unsigned_abs();
        best = best.max(diff);
    }
    best
}

/// Two-sample Kolmogorov–Smirnov test, two-sided, `method="auto"` as in scipy: exact when both
/// samples have at most 10,000 values (falling back to asymptotic if the exact computation
/// leaves floating-point range), else the asymptotic p-value `kstwo.sf(D, round(n·m/(n+m)))`.
pub fn ks_2samp(a: &Sample, b: &Sample) -> StatResult<KsResult> {
    ks_2samp_with(a, b, a.len().max(b.len()) <= KS_MAX_EXACT_N)
}

/// KS with the asymptotic p-value regardless of size (scipy `method="asymp"`).
pub fn ks_2samp_asymp(a: &Sample, b: &Sample) -> StatResult<KsResult> {
    ks_2samp_with(a, b, false)
}

fn ks_2samp_with(a: &Sample, b: &Sample, exact: bool) -> StatResult<KsResult> {
    if a.is_empty() || b.is_empty() {
        return undefined("ks", "both samples need at least one value");
    }
    let (n1, n2) = (a.len() as u64, b.len() as u64);
    let h = ks_numerator(a.values(), b.values());
    let d = h as f64 / (n1 as f64 * n2 as f64);
    if exact {
        if let Some((d_exact, p)) = special::ks_2samp_exact_sf(n1, n2, d) {
            return Ok(KsResult {
                statistic: d_exact,
                p_value: p.clamp(0.0, 1.0),
                method: KsMethod::Exact,
            });
        }
    }
    let (m, n) = if n1 >= n2 { (n1, n2) } else { (n2, n1) };
    let en = (m as f64 * n as f64) / (m as f64 + n as f64);
    let p = special::kstwo_sf(en.round_ties_even() as u64, d);
    Ok(KsResult {
        statistic: d,
        p_value: p.clamp(0.0, 1.0),
        method: KsMethod::Asymptotic,
    })
}

/// KS over the whole population of each side: the missing and non-finite values a [`Sample`]
/// dropped count as one value above every finite value. D is then the largest share of either
/// population on one side of a cut point, missing values included, so a change of the missing
/// rate moves D as much as a shift of the values does (a 2-point rise of the missing share is
/// D = 0.02). Without missing values this is [`ks_2samp`] exactly. The p-value follows scipy's
/// rule at the full sizes (exact up to 10,000 values a side); the tie block of missing values
/// makes it conservative.
pub fn ks_2samp_missing_last(a: &Sample, b: &Sample) -> StatResult<KsResult> {
    if a.dropped() == 0 && b.dropped() == 0 {
        return ks_2samp(a, b);
    }
    let (n1, n2) = (
        (a.len() + a.dropped()) as u64,
        (b.len() + b.dropped()) as u64,
    );
    if n1 == 0 || n2 == 0 {
        return undefined("ks", "both samples need at least one value");
    }
    // max |i·N2 − j·N1| over the pooled finite values (i, j: values ≤ v); at +∞ both are whole.
    let (va, vb) = (a.values(), b.values());
    let (mut i, mut j) = (0usize, 0usize);
    let mut h: u128 = 0;
    while i < va.len() || j < vb.len() {
        let v = match (va.get(i), vb.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => break,
        };
        while i < va.len() && va[i] <= v {
            i += 1;
        }
        while j < vb.len() && vb[j] <= v {
            j += 1;
        }
        h = h.max((i as i128 * n2 as i128 - j as i128 * n1 as i128).unsigned_abs());
    }
    let d = h as f64 / (n1 as f64 * n2 as f64);
    if n1.max(n2) as usize <= KS_MAX_EXACT_N {
        if let Some((d_exact, p)) = special::ks_2samp_exact_sf(n1, n2, d) {
            return Ok(KsResult {
                statistic: d_exact,
                p_value: p.clamp(0.0, 1.0),
                method: KsMethod::Exact,
            });
        }
    }
    let (m, n) = if n1 >= n2 { (n1, n2) } else { (n2, n1) };
    let en = (m as f64 * n as f64) / (m as f64 + n as f64);
    Ok(KsResult {
        statistic: d,
        p_value: special::kstwo_sf(en.round_ties_even() as u64, d).clamp(0.0, 1.0),
        method: KsMethod::Asymptotic,
    })
}

/// ∫ |F_a − F_b|^p dx over the pooled sample (scipy's `_cdf_distance` for p = 1, 2), in one
/// merge pass without allocating.
fn cdf_distance(a: &Sample, b: &Sample, p: u32) -> f64 {
    let (va, vb) = (a.values(), b.values());
    let (na, nb) = (va.len() as f64, vb.len() as f64);
    let (mut ia, mut ib) = (0usize, 0usize);
    let mut prev: Option<f64> = None;
    let mut diff = 0.0f64;
    let terms = std::iter::from_fn(|| {
        // Next pooled value, in order.
        let x = match (va.get(ia), vb.get(ib)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => return None,
        };
        let term = prev.map(|p0| {
            let delta = x - p0;
            if p == 1 {
                diff * delta
            } else {
                diff * diff * delta
            }
        });
        while ia < va.len() && va[ia] <= x {
            ia += 1;
        }
        while ib < vb.len() && vb[ib] <= x {
            ib += 1;
        }
        diff = (ia as f64 / na - ib as f64 / nb).abs();
        prev = Some(x);
        Some(term.unwrap_or(0.0))
    });
    fsum(terms)
}

/// First Wasserstein distance between the empirical distributions.
pub fn wasserstein(a: &Sample, b: &Sample) -> StatResult<f64> {
    if a.is_empty() || b.is_empty() {
        return undefined("wasserstein", "both samples need at least one value");
    }
    Ok(cdf_distance(a, b, 1))
}

/// Wasserstein divided by max(population std of the reference, 0.001) (Evidently's normed
/// Wasserstein, scale-free so one threshold fits every feature).
pub fn wasserstein_normed(reference: &Sample, current: &Sample) -> StatResult<f64> {
    let w = wasserstein(reference, current)?;
    let sd = reference.std_pop().unwrap_or(0.0);
    Ok(w / sd.max(0.001))
}

/// Energy distance, scipy's definition: sqrt(2) · sqrt(∫ (F_a − F_b)² dx).
pub fn energy_distance(a: &Sample, b: &Sample) -> StatResult<f64> {
    if a.is_empty() || b.is_empty() {
        return undefined("energy", "both samples need at least one value");
    }
    Ok(std::f64::consts::SQRT_2 * cdf_distance(a, b, 2).sqrt())
}

/// Anderson–Darling k-sample test for k = 2 (Scholz & Stephens 1987), midrank version (valid
/// with ties), as `scipy.stats.anderson_ksamp`: the statistic is the normalised
/// (A²_akN − (k−1)) / σ, and the p-value is interpolated from the published table and clipped
/// to [0.001, 0.25].
pub fn anderson_ksamp(a: &Sample, b: &Sample) -> StatResult<TestResult> {
    if a.is_empty() || b.is_empty() {
        return undefined("anderson", "both samples need at least one value");
    }
    let samples = [a, b];
    let k = 2.0f64;
    let n = [a.len() as f64, b.len() as f64];
    let nn = n[0] + n[1];
    if nn < 4.0 {
        return undefined("anderson", "needs at least 4 values in all");
    }
    // Pooled sorted Z and its distinct values Z*.
    let mut z: Vec<f64> = a.values().iter().chain(b.values()).copied().collect();
    z.sort_unstable_by(f64::total_cmp);
    let mut zstar = z.clone();
    zstar.dedup();
    if zstar.len() < 2 {
        return undefined("anderson", "all values are identical");
    }
    let all_distinct = zstar.len() == z.len();
    let mut a2 = 0.0f64;
    for (si, s) in samples.iter().enumerate() {
        let terms = zstar.iter().map(|&zj| {
            let left = z.partition_point(|&v| v < zj) as f64;
            let lj = if all_distinct {
                1.0
            } else {
                z.partition_point(|&v| v <= zj) as f64 - left
            };
            let bj = left + lj / 2.0;
            let right_s = s.count_le(zj) as f64;
            let fij = right_s - s.count_lt(zj) as f64;
            let mij = right_s - fij / 2.0;
            lj / nn * (nn * mij - bj * n[si]).powi(2) / (bj * (nn - bj) - nn * lj / 4.0)
        });
        a2 += fsum(terms) / n[si];
    }
    a2 *= (nn - 1.0) / nn;

    let h_big: f64 = n.iter().map(|x| 1.0 / x).sum();
    // hs_cs = cumsum(1 / arange(N-1, 1, -1)); h = hs_cs[-1] + 1; g = sum(hs_cs / arange(2, N))
    let big_n = nn as usize;
    let mut hs_cs = Vec::with_capacity(big_n.saturating_sub(2));
    let mut acc = 0.0;
    for i in (2..big_n).rev() {
        acc += 1.0 / i as f64;
        hs_cs.push(acc);
    }
    let h = hs_cs.last().copied().unwrap_or(0.0) + 1.0;
    let g: f64 = fsum(hs_cs.iter().enumerate().map(|(i, v)| v / (i + 2) as f64));
    let aa = (4.0 * g - 6.0) * (k - 1.0) + (10.0 - 6.0 * g) * h_big;
    let bb = (2.0 * g - 4.0) * k * k + 8.0 * h * k + (2.0 * g - 14.0 * h - 4.0) * h_big - 8.0 * h
        + 4.0 * g
        - 6.0;
    let cc = (6.0 * h + 2.0 * g - 2.0) * k * k
        + (4.0 * h - 4.0 * g + 6.0) * k
        + (2.0 * h - 6.0) * h_big
        + 4.0 * h;
    let dd = (2.0 * h + 6.0) * k * k - 4.0 * h * k;
    let sigmasq =
        (aa * nn.powi(3) + bb * nn * nn + cc * nn + dd) / ((nn - 1.0) * (nn - 2.0) * (nn - 3.0));
    let m = k - 1.0;
    let stat = (a2 - m) / sigmasq.sqrt();

    const B0: [f64; 7] = [0.675, 1.281, 1.645, 1.96, 2.326, 2.573, 3.085];
    const B1: [f64; 7] = [-0.245, 0.25, 0.678, 1.149, 1.822, 2.364, 3.615];
    const B2: [f64; 7] = [-0.105, -0.305, -0.362, -0.391, -0.396, -0.345, -0.154];
    const SIG: [f64; 7] = [0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001];
    let critical: Vec<f64> = (0..7)
        .map(|i| B0[i] + B1[i] / m.sqrt() + B2[i] / m)
        .collect();
    let cmin = critical.iter().cloned().fold(f64::INFINITY, f64::min);
    let cmax = critical.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let p = if stat < cmin {
        0.25
    } else if stat > cmax {
        0.001
    } else {
        let logsig: Vec<f64> = SIG.iter().map(|s| s.ln()).collect();
        let c = polyfit2(&critical, &logsig);
        (c[0] * stat * stat + c[1] * stat + c[2]).exp()
    };
    Ok(TestResult {
        statistic: stat,
        p_value: Some(p),
    })
}

/// Least-squares quadratic fit y ≈ c0·x² + c1·x + c2 (numpy.polyfit, degree 2).
fn polyfit2(x: &[f64], y: &[f64]) -> [f64; 3] {
    // Solve the normal equations with column scaling, as numpy scales the Vandermonde columns.
    let cols: Vec<[f64; 3]> = x.iter().map(|&v| [v * v, v, 1.0]).collect();
    let mut scale = [0.0f64; 3];
    for c in &cols {
        for k in 0..3 {
            scale[k] += c[k] * c[k];
        }
    }
    let scale: Vec<f64> = scale.iter().map(|s| s.sqrt()).collect();
    let mut ata = [[0.0f64; 3]; 3];
    let mut atb = [0.0f64; 3];
    for (c, &yy) in cols.iter().zip(y) {
        let cs = [c[0] / scale[0], c[1] / scale[1], c[2] / scale[2]];
        for r in 0..3 {
            atb[r] += cs[r] * yy;
            for s in 0..3 {
                ata[r][s] += cs[r] * cs[s];
            }
        }
    }
    let sol = solve3(ata, atb);
    [sol[0] / scale[0], sol[1] / scale[1], sol[2] / scale[2]]
}

fn solve3(mut a: [[f64; 3]; 3], mut b: [f64; 3]) -> [f64; 3] {
    for col in 0..3 {
        let piv = (col..3)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap_or(col);
        a.swap(col, piv);
        b.swap(col, piv);
        for r in (col + 1)..3 {
            let f = a[r][col] / a[col][col];
            let pivot_row = a[col];
            for (x, p) in a[r].iter_mut().zip(pivot_row).skip(col) {
                *x -= f * p;
            }
            b[r] -= f * b[col];
        }
    }
    let mut x = [0.0f64; 3];
    for r in (0..3).rev() {
        let s: f64 = ((r + 1)..3).map(|c| a[r][c] * x[c]).sum();
        x[r] = (b[r] - s) / a[r][r];
    }
    x
}

/// Two-sample Cramér–von Mises test (Anderson 1962), as `scipy.stats.cramervonmises_2samp`
/// with `method="auto"`: exact p-value when both samples have at most 20 values, else the
/// asymptotic (Csörgő–Faraway) one.
pub fn cramervonmises_2samp(a: &Sample, b: &Sample) -> StatResult<TestResult> {
    if a.len() < 2 || b.len() < 2 {
        return undefined("cramervonmises", "both samples need at least two values");
    }
    let (nx, ny) = (a.len(), b.len());
    // Midranks of the pooled sample.
    let mut pooled: Vec<(f64, usize)> = a
        .values()
        .iter()
        .map(|&v| (v, 0))
        .chain(b.values().iter().map(|&v| (v, 1)))
        .collect();
    pooled.sort_by(|p, q| p.0.total_cmp(&q.0));
    let mut ranks = vec![0.0f64; pooled.len()];
    let mut i = 0;
    while i < pooled.len() {
        let mut j = i;
        while j + 1 < pooled.len() && pooled[j + 1].0 == pooled[i].0 {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for rk in ranks.iter_mut().take(j + 1).skip(i) {
            *rk = r;
        }
        i = j + 1;
    }
    let (mut rx, mut ry) = (Vec::with_capacity(nx), Vec::with_capacity(ny));
    for (k, p) in pooled.iter().enumerate() {
        if p.1 == 0 {
            rx.push(ranks[k]);
        } else {
            ry.push(ranks[k]);
        }
    }
    let u = nx as f64
        * fsum(
            rx.iter()
                .enumerate()
                .map(|(i, r)| (r - (i + 1) as f64).powi(2)),
        )
        + ny as f64
            * fsum(
                ry.iter()
                    .enumerate()
                    .map(|(j, r)| (r - (j + 1) as f64).powi(2)),
            );
    let k = (nx * ny) as f64;
    let nn = (nx + ny) as f64;
    let t = u / (k * nn) - (4.0 * k - 1.0) / (6.0 * nn);
    let p = if nx.max(ny) <= 20 {
        special::cvm_2samp_exact_sf(u, nx as u64, ny as u64)
    } else {
        let et = (1.0 + 1.0 / nn) / 6.0;
        let vt = (nn + 1.0)
            * (4.0 * k * nn - 3.0 * ((nx * nx) as f64 + (ny * ny) as f64) - 2.0 * k)
            / (45.0 * nn * nn * 4.0 * k);
        let tn = 1.0 / 6.0 + (t - et) / (45.0 * vt).sqrt();
        if tn < 0.003 {
            1.0
        } else {
            (1.0 - special::cvm_inf_cdf(tn)).max(0.0)
        }
    };
    Ok(TestResult {
        statistic: t,
        p_value: Some(p.clamp(0.0, 1.0)),
    })
}
