//! The statistics core (definitions in `docs/STATISTICS.md`). **Pure**: slices in, typed results out; no async, no I/O, no
//! clock. Every function is checked against scipy-computed vectors (`tests/fixtures/oracles/`,
//! via `tests.rs`) and against properties (bounds, symmetry, identity, order invariance).
//!
//! Conventions:
//! * Missing values are dropped before every statistic: a [`Sample`] keeps only finite values,
//!   sorted (NaN and ±inf are counted in `dropped`).
//! * Where a statistic is undefined for the input (an empty sample, all values identical for a
//!   test that needs spread), the result is [`StatError::Undefined`] saying which and why, never
//!   NaN or a panic.
//! * Logs are natural unless a name says otherwise (`js_distance` takes the base).
//!
//! Modules: [`two_sample`] (KS, Wasserstein, energy, Anderson–Darling, Cramér–von Mises),
//! [`categorical`] (chi-square, two-proportion z), [`binning`] (histograms, PSI, KL, JS,
//! Hellinger, the project's and Evidently's binning), [`trend`] (Mann–Kendall, Theil–Sen),
//! [`inference`] (Wilson, Welch, two-proportion difference, Benjamini–Hochberg), [`special`]
//! (distribution functions the crates lack).

pub mod binning;
pub mod categorical;
pub mod inference;
pub mod multivariate;
pub mod performance;
pub mod special;
pub mod trend;
pub mod two_sample;

/// A statistic that cannot be computed for this input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatError {
    #[error("{statistic} is undefined here: {reason}")]
    Undefined {
        statistic: &'static str,
        reason: String,
    },
}

pub type StatResult<T> = Result<T, StatError>;

pub(crate) fn undefined<T>(statistic: &'static str, reason: impl Into<String>) -> StatResult<T> {
    Err(StatError::Undefined {
        statistic,
        reason: reason.into(),
    })
}

/// A statistic with an optional p-value.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct TestResult {
    pub statistic: f64,
    pub p_value: Option<f64>,
}

/// A numeric sample with missing values removed, sorted ascending.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    values: Vec<f64>,
    dropped: usize,
}

impl Sample {
    /// Keep the finite values of `raw` (NaN, ±inf and `None` are missing) and sort them.
    pub fn new(raw: impl IntoIterator<Item = f64>) -> Self {
        let mut dropped = 0;
        let mut values: Vec<f64> = raw
            .into_iter()
            .filter(|x| {
                let ok = x.is_finite();
                dropped += usize::from(!ok);
                ok
            })
            .collect();
        values.sort_unstable_by(f64::total_cmp);
        Self { values, dropped }
    }

    pub fn from_options(raw: impl IntoIterator<Item = Option<f64>>) -> Self {
        Self::new(raw.into_iter().map(|x| x.unwrap_or(f64::NAN)))
    }

    pub fn values(&self) -> &[f64] {
        &self.values
    }
    pub fn len(&self) -> usize {
        self.values.len()
    }
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    /// How many missing or non-finite values were removed.
    pub fn dropped(&self) -> usize {
        self.dropped
    }
    /// Number of distinct values.
    pub fn distinct(&self) -> usize {
        let mut n = 0;
        let mut last = None;
        for &x in &self.values {
            if last != Some(x) {
                n += 1;
                last = Some(x);
            }
        }
        n
    }
    pub fn mean(&self) -> Option<f64> {
        (!self.is_empty()).then(|| self.values.iter().sum::<f64>() / self.len() as f64)
    }
    /// Population standard deviation (ddof = 0), two-pass.
    pub fn std_pop(&self) -> Option<f64> {
        let m = self.mean()?;
        let ss: f64 = self.values.iter().map(|x| (x - m) * (x - m)).sum();
        Some((ss / self.len() as f64).sqrt())
    }
    /// The distinct values of two samples together, ascending (a merge of the sorted values).
    pub fn pooled_distinct(a: &Sample, b: &Sample) -> Vec<f64> {
        let (va, vb) = (a.values(), b.values());
        let mut out: Vec<f64> = Vec::with_capacity(va.len() + vb.len());
        let (mut i, mut j) = (0, 0);
        while i < va.len() || j < vb.len() {
            let x = if j >= vb.len() || (i < va.len() && va[i] <= vb[j]) {
                i += 1;
                va[i - 1]
            } else {
                j += 1;
                vb[j - 1]
            };
            if out.last() != Some(&x) {
                out.push(x);
            }
        }
        out
    }

    /// Number of values ≤ x.
    pub fn count_le(&self, x: f64) -> usize {
        self.values.partition_point(|&v| v <= x)
    }
    /// Number of values < x.
    pub fn count_lt(&self, x: f64) -> usize {
        self.values.partition_point(|&v| v < x)
    }
}

/// Accurate sum: plain sums over blocks of 64, combined with Neumaier compensation (error of
/// the order of numpy's pairwise summation, at nearly the speed of a plain loop).
pub(crate) fn fsum(xs: impl IntoIterator<Item = f64>) -> f64 {
    let mut sum = 0.0f64;
    let mut c = 0.0f64;
    let mut add = |x: f64| {
        let t = sum + x;
        if sum.abs() >= x.abs() {
            c += (sum - t) + x;
        } else {
            c += (x - t) + sum;
        }
        sum = t;
    };
    let mut block = 0.0f64;
    let mut n = 0u32;
    for x in xs {
        block += x;
        n += 1;
        if n == 64 {
            add(block);
            block = 0.0;
            n = 0;
        }
    }
    add(block);
    sum + c
}

#[cfg(test)]
pub(crate) mod tests;
