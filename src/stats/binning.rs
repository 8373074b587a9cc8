//! Histograms and the distances computed on them (PSI, KL, Jensen–Shannon, Hellinger).
//!
//! **The project's binning (default, `quantile`).** B = 10 bins. Inner edges are the reference
//! quantiles at 1/B … (B−1)/B with linear interpolation (numpy's default), duplicates removed. A
//! value v falls in the bin whose interval (e_{i−1}, e_i] contains it; the outer bins are open,
//! so values beyond the reference range still count. Categorical columns use one bin per
//! category over the union of both samples. For PSI and KL a share of 0 in either vector becomes
//! 1e-4 (no renormalising); JS uses the raw shares. `sturges` uses ⌈log₂ n⌉ + 1 equal-width bins
//! over the pooled range instead.
//!
//! **Evidently's binning** ([`evidently_shares`]) is reproduced for `--compat evidently`: Sturges
//! bins over the pooled sample when the reference has more than 20 distinct values, else one bin
//! per distinct value; its zero-fill rule; its JS in natural log.

use super::{fsum, Sample};
use std::collections::BTreeMap;

/// Share floor of the project's PSI and KL.
pub const SHARE_FLOOR: f64 = 1e-4;
pub const DEFAULT_BINS: usize = 10;

/// numpy's `quantile(sorted, q, method="linear")`, including its interpolation formula.
pub fn numpy_quantile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let virtual_index = (n - 1) as f64 * q;
    let prev = virtual_index.floor().clamp(0.0, (n - 1) as f64);
    let gamma = virtual_index - prev;
    let lo = prev as usize;
    let hi = (lo + 1).min(n - 1);
    let (a, b) = (sorted[lo], sorted[hi]);
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    }
}

/// Inner edges of the project's quantile bins, fitted on the reference (duplicates removed).
pub fn quantile_edges(reference: &Sample, bins: usize) -> Vec<f64> {
    let mut edges: Vec<f64> = (1..bins)
        .map(|i| numpy_quantile(reference.values(), i as f64 / bins as f64))
        .collect();
    edges.dedup();
    edges
}

/// Counts per bin (e_{i−1}, e_i] with open outer bins: `edges.len() + 1` counts.
pub fn counts_right_closed(sample: &Sample, edges: &[f64]) -> Vec<u64> {
    let v = sample.values();
    let mut out = Vec::with_capacity(edges.len() + 1);
    let mut prev = 0usize;
    for &e in edges {
        let upto = v.partition_point(|&x| x <= e);
        out.push((upto - prev) as u64);
        prev = upto;
    }
    out.push((v.len() - prev) as u64);
    out
}

/// numpy's `histogram_bin_edges(x, bins="sturges")` for a sample of `count` values spanning
/// [lo, hi].
pub fn sturges_edges(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    let (first, last) = if lo == hi {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    };
    let ptp = hi - lo;
    let nbins = if ptp > 0.0 && count > 0 {
        let width = ptp / ((count as f64).log2() + 1.0);
        ((last - first) / width).ceil().max(1.0) as usize
    } else {
        1
    };
    linspace(first, last, nbins + 1)
}

/// numpy.linspace(start, stop, num) with endpoint.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 1 {
        return vec![start];
    }
    let div = (num - 1) as f64;
    let delta = stop - start;
    let step = delta / div;
    let mut out: Vec<f64> = (0..num)
        .map(|i| {
            if step == 0.0 {
                i as f64 / div * delta + start
            } else {
                i as f64 * step + start
            }
        })
        .collect();
    out[num - 1] = stop;
    out
}

/// numpy.histogram counts over `edges`: bins [e_i, e_{i+1}), the last one closed; values
/// outside are not counted.
pub fn counts_left_closed(sample: &Sample, edges: &[f64]) -> Vec<u64> {
    let v = sample.values();
    let k = edges.len().saturating_sub(1);
    let mut cum: Vec<usize> = edges[..k]
        .iter()
        .map(|&e| v.partition_point(|&x| x < e))
        .collect();
    if let Some(&last) = edges.last() {
        cum.push(v.partition_point(|&x| x <= last));
    }
    cum.windows(2).map(|w| (w[1] - w[0]) as u64).collect()
}

/// Counts of each distinct value of the union of two samples, in sorted key order.
pub fn union_counts<K: Ord + Clone>(
    reference: impl IntoIterator<Item = K>,
    current: impl IntoIterator<Item = K>,
) -> (Vec<K>, Vec<u64>, Vec<u64>) {
    let mut m: BTreeMap<K, (u64, u64)> = BTreeMap::new();
    for k in reference {
        m.entry(k).or_default().0 += 1;
    }
    for k in current {
        m.entry(k).or_default().1 += 1;
    }
    let keys = m.keys().cloned().collect();
    let r = m.values().map(|v| v.0).collect();
    let c = m.values().map(|v| v.1).collect();
    (keys, r, c)
}

/// Counts to shares (of their own total).
pub fn shares(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    counts
        .iter()
        .map(|&c| {
            if total == 0 {
                0.0
            } else {
                c as f64 / total as f64
            }
        })
        .collect()
}

/// The project's floor: a share of 0 becomes 1e-4 (no renormalising).
pub fn floor_zero_shares(s: &[f64]) -> Vec<f64> {
    s.iter()
        .map(|&x| if x == 0.0 { SHARE_FLOOR } else { x })
        .collect()
}

/// Evidently's zero fill, per vector: with m the smallest non-zero share, a 0 becomes m/1e6 if
/// m ≤ 1e-4, else 1e-4 (no renormalising).
pub fn evidently_fill(s: &[f64]) -> Vec<f64> {
    let m = s
        .iter()
        .copied()
        .filter(|&x| x > 0.0)
        .fold(f64::INFINITY, f64::min);
    let fill = if m <= 1e-4 { m / 1e6 } else { 1e-4 };
    s.iter().map(|&x| if x == 0.0 { fill } else { x }).collect()
}

/// PSI = Σ (c − r)·ln(c / r). Shares must be positive (apply a floor first).
pub fn psi(reference: &[f64], current: &[f64]) -> f64 {
    fsum(
        reference
            .iter()
            .zip(current)
            .map(|(&r, &c)| (c - r) * (c / r).ln()),
    )
}

/// KL(reference ‖ current) = Σ r·ln(r / c); with `renormalise`, both vectors are first scaled
/// to sum to 1 (scipy.stats.entropy does).
pub fn kl_divergence(reference: &[f64], current: &[f64], renormalise: bool) -> f64 {
    let (sr, sc) = if renormalise {
        (
            fsum(reference.iter().copied()),
            fsum(current.iter().copied()),
        )
    } else {
        (1.0, 1.0)
    };
    fsum(reference.iter().zip(current).map(|(&r, &c)| {
        let (p, q) = (r / sr, c / sc);
        rel_entr(p, q)
    }))
}

fn rel_entr(x: f64, y: f64) -> f64 {
    if x > 0.0 && y > 0.0 {
        x * (x / y).ln()
    } else if x == 0.0 && y >= 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// Jensen–Shannon distance (the square root of the divergence), as
/// `scipy.spatial.distance.jensenshannon(p, q, base)`: each vector is renormalised to sum to 1;
/// `base = None` is the natural log. With base 2 it lies in [0, 1].
pub fn js_distance(p: &[f64], q: &[f64], base: Option<f64>) -> f64 {
    let (sp, sq) = (fsum(p.iter().copied()), fsum(q.iter().copied()));
    let mut left = Vec::with_capacity(p.len());
    let mut right = Vec::with_capacity(p.len());
    for (&a, &b) in p.iter().zip(q) {
        let (a, b) = (a / sp, b / sq);
        let m = (a + b) / 2.0;
        left.push(rel_entr(a, m));
        right.push(rel_entr(b, m));
    }
    let mut js = fsum(left) + fsum(right);
    if let Some(b) = base {
        js /= b.ln();
    }
    (js / 2.0).max(0.0).sqrt()
}

/// Hellinger distance between two share vectors: sqrt(1 − Σ sqrt(p·q)), clipped to [0, 1].
pub fn hellinger_shares(p: &[f64], q: &[f64]) -> f64 {
    let bc = fsum(p.iter().zip(q).map(|(&a, &b)| (a * b).sqrt()));
    (1.0 - bc.clamp(0.0, 1.0)).sqrt()
}

/// Evidently's numeric Hellinger: density histograms on Sturges edges over the *distinct* values
/// of the union, Bhattacharyya coefficient Σ sqrt(h_r·h_c)·w with w the mean bin width.
pub fn hellinger_evidently_numeric(reference: &Sample, current: &Sample) -> f64 {
    let distinct = Sample::pooled_distinct(reference, current);
    let (lo, hi) = (distinct[0], distinct[distinct.len() - 1]);
    let edges = sturges_edges(lo, hi, distinct.len());
    let density = |s: &Sample| -> Vec<f64> {
        let counts = counts_left_closed(s, &edges);
        let total: u64 = counts.iter().sum();
        counts
            .iter()
            .zip(edges.windows(2))
            .map(|(&c, w)| c as f64 / (total as f64 * (w[1] - w[0])))
            .collect()
    };
    let (hr, hc) = (density(reference), density(current));
    let w = (edges[edges.len() - 1] - edges[0]) / (edges.len() - 1) as f64;
    let bc = fsum(hr.iter().zip(&hc).map(|(&a, &b)| (a * b).sqrt() * w));
    (1.0 - bc.clamp(0.0, 1.0)).sqrt()
}

/// Reference and current shares over common bins.
#[derive(Debug, Clone, PartialEq)]
pub struct Binned {
    pub reference: Vec<f64>,
    pub current: Vec<f64>,
    pub reference_counts: Vec<u64>,
    pub current_counts: Vec<u64>,
}

impl Binned {
    pub fn from_counts(reference_counts: Vec<u64>, current_counts: Vec<u64>) -> Self {
        Self {
            reference: shares(&reference_counts),
            current: shares(&current_counts),
            reference_counts,
            current_counts,
        }
    }
}

/// How numeric columns are binned by the project's PSI, KL and JS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinningRule {
    /// Reference quantiles (the default), with this many bins.
    Quantile(usize),
    /// ⌈log₂ n⌉ + 1 equal-width bins over the pooled range (numpy's "sturges").
    Sturges,
    /// This many equal-width bins over the pooled range.
    EqualWidth(usize),
}

impl Default for BinningRule {
    fn default() -> Self {
        BinningRule::Quantile(DEFAULT_BINS)
    }
}

/// The project's binning of a numeric pair.
pub fn bin_numeric(reference: &Sample, current: &Sample, rule: BinningRule) -> Binned {
    match rule {
        BinningRule::Quantile(b) => {
            let edges = quantile_edges(reference, b.max(1));
            Binned::from_counts(
                counts_right_closed(reference, &edges),
                counts_right_closed(current, &edges),
            )
        }
        BinningRule::Sturges | BinningRule::EqualWidth(_) => {
            let lo = reference.values()[0].min(current.values()[0]);
            let hi =
                reference.values()[reference.len() - 1].max(current.values()[current.len() - 1]);
            let edges = match rule {
                BinningRule::EqualWidth(b) => {
                    let (f, l) = if lo == hi {
                        (lo - 0.5, hi + 0.5)
                    } else {
                        (lo, hi)
                    };
                    linspace(f, l, b.max(1) + 1)
                }
                _ => sturges_edges(lo, hi, reference.len() + current.len()),
            };
            Binned::from_counts(
                counts_left_closed(reference, &edges),
                counts_left_closed(current, &edges),
            )
        }
    }
}

/// One bin per category over the union of both samples.
pub fn bin_categorical(reference: &[String], current: &[String]) -> Binned {
    let (_, r, c) = union_counts(reference.iter(), current.iter());
    Binned::from_counts(r, c)
}

/// The project's PSI, KL and JS (base 2) of a column pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Divergences {
    pub psi: f64,
    pub kl: f64,
    pub js: f64,
}

pub fn divergences(b: &Binned) -> Divergences {
    let (r, c) = (
        floor_zero_shares(&b.reference),
        floor_zero_shares(&b.current),
    );
    Divergences {
        psi: psi(&r, &c),
        kl: kl_divergence(&r, &c, false),
        js: js_distance(&b.reference, &b.current, Some(2.0)),
    }
}

/// Evidently's shares for PSI, KL and JS on a numeric column (`get_binned_data`): Sturges bins
/// over the pooled sample when the reference has more than 20 distinct values, else one bin per
/// distinct value of the union. (Categorical columns bin one per category, as ours.)
pub fn evidently_shares(r: &Sample, c: &Sample) -> Binned {
    if r.distinct() > 20 {
        let lo = r.values()[0].min(c.values()[0]);
        let hi = r.values()[r.len() - 1].max(c.values()[c.len() - 1]);
        let edges = sturges_edges(lo, hi, r.len() + c.len());
        let rc = counts_left_closed(r, &edges);
        let cc = counts_left_closed(c, &edges);
        let (nr, nc) = (r.len() as f64, c.len() as f64);
        Binned {
            reference: rc.iter().map(|&x| x as f64 / nr).collect(),
            current: cc.iter().map(|&x| x as f64 / nc).collect(),
            reference_counts: rc,
            current_counts: cc,
        }
    } else {
        let (_, rc, cc) = union_counts(
            r.values().iter().map(|x| OrdF64(*x)),
            c.values().iter().map(|x| OrdF64(*x)),
        );
        Binned::from_counts(rc, cc)
    }
}

/// A total order on finite floats, for grouping.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrdF64(pub f64);
impl Eq for OrdF64 {}
impl PartialOrd for OrdF64 {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for OrdF64 {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&o.0)
    }
}
