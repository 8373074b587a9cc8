//! Drift decisions: which statistic each column gets, and when a column (and a dataset) counts
//! as drifted. Pure: columns in, a report out. Used by `flywheel compare` and by the drift jobs.
//!
//! # The default decision (`--method auto`)
//!
//! A single threshold on a p-value flags everything on large samples (any difference is
//! "significant" at a million rows), and a single threshold on a distance flags noise on small
//! ones. flywheel's default therefore asks two questions of every column:
//!
//! 1. **Is the change big enough to matter?** The effect size passes its threshold: the
//!    normed Wasserstein distance (W1 divided by the reference's standard deviation, so 0.1
//!    means "the distribution moved a tenth of a standard deviation") ≥ 0.1 for numeric columns;
//!    the Jensen–Shannon distance (base 2, project binning) ≥ 0.05 for categorical and binary
//!    columns (about five percentage points of probability mass moved).
//! 2. **Is it real at this sample size?** The two-sample test (KS for numeric, chi-square for
//!    categorical and binary) is significant after Benjamini–Hochberg across all columns at a
//!    false-discovery rate of 0.05.
//!
//! A column is `drift` only when both hold, `no_drift` otherwise, and `insufficient_data` when
//! either side has fewer than `min_samples` (default 30) values. The dataset drifted when the
//! share of drifted columns (among those with a decision) reaches `drift_share` (default 0.5).
//! The reported `method` and `statistic` are those the auto rule selects (compatible with the
//! common default: reference ≤ 1000 values → KS / chi-square / z-test p-value; larger → normed
//! Wasserstein / Jensen–Shannon), with the effect and the adjusted p-value alongside.
//!
//! # An explicit `--method`
//!
//! The column is drifted when that method's statistic passes the threshold: p < threshold for
//! tests (default 0.05), statistic ≥ threshold for distances (default 0.1). `insufficient_data`
//! still applies.
//!
//! # `--compat evidently`
//!
//! Evidently's own choices and numbers: its method selection (by reference size and distinct
//! values), its binning (Sturges over the pooled sample), zero fill, natural-log JS,
//! goodness-of-fit chi-square, and thresholds; no minimum sample size and no second gate.

pub mod baseline;
pub mod bench;
pub mod columns;
pub mod monitor;
pub mod multivariate;
pub mod run;
pub mod sketch;

use crate::stats::binning::{self, BinningRule};
use crate::stats::categorical::{chi2_contingency, chisquare_goodness_of_fit, z_test_proportions};
use crate::stats::inference::benjamini_hochberg;
use crate::stats::two_sample::{
    anderson_ksamp, cramervonmises_2samp, energy_distance, ks_2samp, ks_2samp_missing_last,
    wasserstein, wasserstein_normed,
};
use crate::stats::{Sample, StatError, StatResult};
use crate::summary::FeatureSummary;
use serde::{Deserialize, Serialize};

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Numeric,
    Binary,
    Categorical,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Numeric => "numeric",
            Kind::Binary => "binary",
            Kind::Categorical => "categorical",
        }
    }
}

/// The values of one column on both sides.
#[derive(Debug, Clone)]
pub enum ColumnValues {
    Numeric {
        reference: Sample,
        current: Sample,
    },
    /// Categorical and binary columns as counts per category (missing already removed).
    Categorical(CategoryCounts),
    /// Numeric values known through stored summaries (the drift jobs): KS, Wasserstein, normed
    /// Wasserstein and the binned statistics (PSI, KL, JS, Hellinger) come from the quantile
    /// sketches ([`sketch`], error bounds there); statistics that need raw values (Anderson–
    /// Darling, Cramér–von Mises, energy) and counting numbers as categories are undefined.
    Summarised {
        reference: Box<FeatureSummary>,
        current: Box<FeatureSummary>,
    },
}

/// Counts per category on both sides, over the union of categories (sorted), and the missing
/// values of each side (kept apart: explicit methods drop them, the default decision counts them
/// as a category of their own).
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryCounts {
    pub keys: Vec<String>,
    pub reference: Vec<u64>,
    pub current: Vec<u64>,
    /// Missing values: `[reference, current]`.
    pub missing: [u64; 2],
}

impl CategoryCounts {
    pub fn from_values<'a>(
        reference: impl IntoIterator<Item = &'a str>,
        current: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let (keys, r, c) = binning::union_counts(reference, current);
        Self {
            keys: keys.into_iter().map(str::to_owned).collect(),
            reference: r,
            current: c,
            missing: [0, 0],
        }
    }

    /// Numeric values grouped as categories (for tests that treat few distinct values so).
    pub fn from_samples(reference: &Sample, current: &Sample) -> Self {
        let (keys, r, c) = binning::union_counts(
            reference.values().iter().map(|x| binning::OrdF64(*x)),
            current.values().iter().map(|x| binning::OrdF64(*x)),
        );
        Self {
            keys: keys.into_iter().map(|k| k.0.to_string()).collect(),
            reference: r,
            current: c,
            missing: [reference.dropped() as u64, current.dropped() as u64],
        }
    }

    pub fn n_reference(&self) -> usize {
        self.reference.iter().sum::<u64>() as usize
    }
    pub fn n_current(&self) -> usize {
        self.current.iter().sum::<u64>() as usize
    }
    fn binned(&self) -> binning::Binned {
        binning::Binned::from_counts(self.reference.clone(), self.current.clone())
    }
}

#[derive(Debug, Clone)]
pub struct ColumnInput {
    pub name: String,
    pub kind: Kind,
    pub values: ColumnValues,
}

impl ColumnInput {
    /// Missing (and non-finite) values on each side.
    fn missing(&self) -> (u64, u64) {
        match &self.values {
            ColumnValues::Numeric { reference, current } => {
                (reference.dropped() as u64, current.dropped() as u64)
            }
            ColumnValues::Categorical(c) => (c.missing[0], c.missing[1]),
            ColumnValues::Summarised { reference, current } => (
                reference.missing + reference.non_finite,
                current.missing + current.non_finite,
            ),
        }
    }

    /// Values with a value on each side (what explicit methods compare).
    fn sizes(&self) -> (usize, usize) {
        match &self.values {
            ColumnValues::Numeric { reference, current } => (reference.len(), current.len()),
            ColumnValues::Categorical(c) => (c.n_reference(), c.n_current()),
            ColumnValues::Summarised { reference, current } => {
                (reference.moments.n as usize, current.moments.n as usize)
            }
        }
    }
}

/// The statistic methods, by their command-line names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Auto,
    Ks,
    Chisquare,
    Ztest,
    Wasserstein,
    WassersteinNormed,
    Jensenshannon,
    Psi,
    Kl,
    Hellinger,
    Anderson,
    Cramervonmises,
    Energy,
}

impl Method {
    pub const ALL: [Method; 13] = [
        Method::Auto,
        Method::Ks,
        Method::Chisquare,
        Method::Ztest,
        Method::Wasserstein,
        Method::WassersteinNormed,
        Method::Jensenshannon,
        Method::Psi,
        Method::Kl,
        Method::Hellinger,
        Method::Anderson,
        Method::Cramervonmises,
        Method::Energy,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Auto => "auto",
            Method::Ks => "ks",
            Method::Chisquare => "chisquare",
            Method::Ztest => "ztest",
            Method::Wasserstein => "wasserstein",
            Method::WassersteinNormed => "wasserstein_normed",
            Method::Jensenshannon => "jensenshannon",
            Method::Psi => "psi",
            Method::Kl => "kl",
            Method::Hellinger => "hellinger",
            Method::Anderson => "anderson",
            Method::Cramervonmises => "cramervonmises",
            Method::Energy => "energy",
        }
    }
    pub fn parse(s: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == s)
    }
    /// Tests give a p-value (drift when p < threshold); the rest are distances.
    pub fn is_test(self) -> bool {
        matches!(
            self,
            Method::Ks
                | Method::Chisquare
                | Method::Ztest
                | Method::Anderson
                | Method::Cramervonmises
        )
    }
    fn applies_to(self, kind: Kind) -> bool {
        match self {
            Method::Ks
            | Method::Wasserstein
            | Method::WassersteinNormed
            | Method::Anderson
            | Method::Cramervonmises
            | Method::Energy => kind == Kind::Numeric,
            // Numeric values are tested as categories (Evidently does so for few distinct values).
            _ => true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compat {
    Flywheel,
    Evidently,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub method: Method,
    /// Overrides the method's threshold (explicit methods) or the effect threshold (auto).
    pub threshold: Option<f64>,
    pub binning: BinningRule,
    pub compat: Compat,
    pub min_samples: usize,
    pub fdr: f64,
    pub drift_share: f64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            method: Method::Auto,
            threshold: None,
            binning: BinningRule::default(),
            compat: Compat::Flywheel,
            min_samples: 30,
            fdr: DEFAULT_FDR,
            drift_share: 0.5,
        }
    }
}

/// The default decision's effect threshold for numeric columns: KS D over the whole population
/// (missing values included) of at least 0.01, i.e. at least 1 % of the population moved across
/// some value (docs/STATISTICS.md says why).
pub const NUMERIC_EFFECT_THRESHOLD: f64 = 0.01;
/// The default decision's effect threshold for categorical and binary columns: a Jensen–Shannon
/// distance (base 2, missing values as a category) of at least 0.01, about a 1.2-point move
/// between two halves of a binary column; a new category at 1 % is 0.07 (docs/STATISTICS.md).
pub const CATEGORICAL_EFFECT_THRESHOLD: f64 = 0.01;
/// The default decision's false-discovery rate (Benjamini–Hochberg across the columns).
pub const DEFAULT_FDR: f64 = 0.005;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Drift,
    NoDrift,
    InsufficientData,
}

/// How a column's score is compared with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DriftWhen {
    /// Effects and distances: drift when the score reaches the threshold.
    #[serde(rename = ">=")]
    AtLeast,
    /// p-values: drift when the score is below the threshold.
    #[serde(rename = "<")]
    Below,
    /// Evidently's KS rule: drift when the p-value is at most the threshold.
    #[serde(rename = "<=")]
    AtMost,
}

impl DriftWhen {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftWhen::AtLeast => ">=",
            DriftWhen::Below => "<",
            DriftWhen::AtMost => "<=",
        }
    }
    fn passes(self, score: f64, threshold: f64) -> bool {
        match self {
            DriftWhen::AtLeast => score >= threshold,
            DriftWhen::Below => score < threshold,
            DriftWhen::AtMost => score <= threshold,
        }
    }
}

/// The result for one column. `docs/STATISTICS.md` defines every field in one table.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnReport {
    pub column: String,
    pub kind: Kind,
    /// The method the column was decided with (`auto`: the default decision).
    pub method: Method,
    /// The method's own statistic: KS D, χ², z, A², CvM T, W1, normed W1, PSI, KL, JS, Hellinger
    /// or energy distance; under the default decision KS D (numeric) or χ² (categorical).
    pub statistic: Option<f64>,
    /// What `statistic` is: `ks_d`, `chi2`, `z`, `anderson_a2`, `cvm_t` or the distance's name.
    pub statistic_name: &'static str,
    /// The p-value, unadjusted: the method's (tests only); under the default decision the
    /// significance test's (numeric: twice the smaller of the KS and the binned chi-square
    /// p-values).
    pub p_value: Option<f64>,
    /// The p-value adjusted by Benjamini–Hochberg across the columns compared together.
    pub p_adjusted: Option<f64>,
    /// The value compared with `threshold`.
    pub score: Option<f64>,
    /// What `score` is: `ks_d` / `ks_d_lower_bound` (sketches) or `jensenshannon` under the
    /// default decision, `p_value` for explicit tests, else the distance's name.
    pub score_name: &'static str,
    pub threshold: f64,
    /// How `score` is compared with `threshold`.
    pub drift_when: DriftWhen,
    /// Default decision only: `p_adjusted` must also be at most this (the false-discovery rate).
    pub alpha: Option<f64>,
    pub drifted: bool,
    pub decision: Decision,
    /// Values on each side, missing ones excluded.
    pub n_reference: usize,
    pub n_current: usize,
    /// Missing or non-finite values on each side.
    pub missing_reference: u64,
    pub missing_current: u64,
    /// Why there is no statistic, when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl ColumnReport {
    /// How far past its threshold the score is (1 = at the threshold), comparable across
    /// methods: `score / threshold` for effects and distances, the ratio of the decimal
    /// logarithms for p-values. 0 without a score.
    pub fn strength(&self) -> f64 {
        match (self.score, self.drift_when) {
            (None, _) => 0.0,
            (Some(s), DriftWhen::AtLeast) => s / self.threshold.max(1e-12),
            (Some(p), _) => -p.max(1e-300).log10() / -self.threshold.max(1e-300).log10(),
        }
    }

    /// The `method` label of the drift metrics: what the score measures (`ks_d`,
    /// `jensenshannon`, a distance), or the test whose p-value it is.
    /// Stable across windows: a sketch's lower bound is labelled `ks_d` like the exact D.
    pub fn score_label(&self) -> &'static str {
        match self.score_name {
            "p_value" => self.method.as_str(),
            "ks_d_lower_bound" => "ks_d",
            s => s,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub columns: Vec<ColumnReport>,
    pub drifted_columns: usize,
    pub share_drifted: f64,
    pub dataset_drift: bool,
    /// The joint comparison of the numeric columns (`flywheel compare`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multivariate: Option<multivariate::MultivariateReport>,
}

/// Evidently's column types (`infer_column_type` of evidently 0.7, applied to the current
/// data): an integer column with at most this many distinct values is categorical.
pub const EVIDENTLY_INTEGER_CARDINALITY: usize = 10;

/// The column as Evidently types it: a numeric column whose current values are all integers,
/// none missing (pandas `int64`), with at most [`EVIDENTLY_INTEGER_CARDINALITY`] distinct values,
/// becomes categorical (its values counted as categories); anything else is unchanged (`None`).
/// pandas reads a column with a missing cell, or written as `3.0`, as float (numeric); from
/// parsed numbers flywheel cannot see how `3.0` was written, so such a column counts as integer
/// here.
pub fn evidently_view(input: &ColumnInput) -> Option<ColumnInput> {
    let ColumnValues::Numeric { reference, current } = &input.values else {
        return None;
    };
    let integers = current
        .values()
        .iter()
        .all(|x| x.fract() == 0.0 && x.abs() < 9.0e15);
    if input.kind != Kind::Numeric
        || current.is_empty()
        || current.dropped() > 0
        || !integers
        || current.distinct() > EVIDENTLY_INTEGER_CARDINALITY
    {
        return None;
    }
    Some(ColumnInput {
        name: input.name.clone(),
        kind: Kind::Categorical,
        values: ColumnValues::Categorical(CategoryCounts::from_samples(reference, current)),
    })
}

/// Evidently's default method (registry `_get_default_stattest`), by reference size and the
/// number of distinct pooled values.
pub fn evidently_method(input: &ColumnInput) -> Method {
    let (n_ref, _) = input.sizes();
    let distinct = match &input.values {
        ColumnValues::Numeric { reference, current } => {
            Sample::pooled_distinct(reference, current).len()
        }
        ColumnValues::Categorical(c) => c.keys.len(),
        // Stored summaries hold a sketch, not every distinct value; past k values there are many.
        ColumnValues::Summarised { reference, current } => {
            (reference.sketch.retained() + current.sketch.retained()).max(6)
        }
    };
    let numeric_many = input.kind == Kind::Numeric && distinct > 5;
    if n_ref <= 1000 {
        if numeric_many {
            Method::Ks
        } else if distinct > 2 {
            Method::Chisquare
        } else {
            Method::Ztest
        }
    } else if numeric_many {
        Method::WassersteinNormed
    } else {
        Method::Jensenshannon
    }
}

fn default_threshold(m: Method) -> f64 {
    if m.is_test() {
        0.05
    } else {
        0.1
    }
}

/// Category counts of a column (numeric values grouped by value), for chi-square and friends.
fn counts_of(values: &ColumnValues) -> StatResult<std::borrow::Cow<'_, CategoryCounts>> {
    match values {
        ColumnValues::Categorical(c) => Ok(std::borrow::Cow::Borrowed(c)),
        ColumnValues::Numeric { reference, current } => Ok(std::borrow::Cow::Owned(
            CategoryCounts::from_samples(reference, current),
        )),
        ColumnValues::Summarised { .. } => Err(needs_raw("counting values as categories")),
    }
}

fn needs_raw(what: &'static str) -> StatError {
    StatError::Undefined {
        statistic: what,
        reason: "needs raw values; stored summaries support ks, wasserstein, wasserstein_normed, psi, kl, jensenshannon and hellinger".into(),
    }
}

/// Successes and trials per side, "success" being any value but the first key (Evidently's rule).
fn binary_counts(c: &CategoryCounts) -> (u64, u64, u64, u64) {
    let n1: u64 = c.reference.iter().sum();
    let n2: u64 = c.current.iter().sum();
    let (z1, z2) = (
        c.reference.first().copied().unwrap_or(0),
        c.current.first().copied().unwrap_or(0),
    );
    (n1 - z1, n1, n2 - z2, n2)
}

/// Compute one method on one column: (its statistic, its p-value for tests).
pub fn compute(
    method: Method,
    input: &ColumnInput,
    binning_rule: BinningRule,
    compat: Compat,
) -> StatResult<(f64, Option<f64>)> {
    if !method.applies_to(input.kind) {
        return Err(StatError::Undefined {
            statistic: "method",
            reason: format!(
                "{} does not apply to a {} column",
                method.as_str(),
                input.kind.as_str()
            ),
        });
    }
    let numeric = match &input.values {
        ColumnValues::Numeric { reference, current } => Some((reference, current)),
        _ => None,
    };
    let binned = || -> StatResult<binning::Binned> {
        match (&input.values, compat) {
            (ColumnValues::Numeric { reference, current }, Compat::Flywheel) => {
                Ok(binning::bin_numeric(reference, current, binning_rule))
            }
            (ColumnValues::Numeric { reference, current }, Compat::Evidently) => {
                Ok(binning::evidently_shares(reference, current))
            }
            (ColumnValues::Categorical(c), _) => Ok(c.binned()),
            (ColumnValues::Summarised { reference, current }, _) => {
                sketch::bin(reference, current, binning_rule)
            }
        }
    };
    let summarised = match &input.values {
        ColumnValues::Summarised { reference, current } => Some((&**reference, &**current)),
        _ => None,
    };
    let need = |side: usize| -> StatResult<()> {
        if side == 0 {
            Err(StatError::Undefined {
                statistic: "method",
                reason: "a sample is empty".into(),
            })
        } else {
            Ok(())
        }
    };
    let (nr, nc) = input.sizes();
    need(nr)?;
    need(nc)?;
    match method {
        Method::Auto => unreachable!("auto is resolved before compute"),
        Method::Ks if summarised.is_some() => {
            let (r, c) = summarised.ok_or_else(|| not_numeric("ks"))?;
            let (d, p) = sketch::ks(r, c)?;
            Ok((d, Some(p)))
        }
        Method::Wasserstein if summarised.is_some() => {
            let (r, c) = summarised.ok_or_else(|| not_numeric("wasserstein"))?;
            Ok((sketch::wasserstein(r, c)?, None))
        }
        Method::WassersteinNormed if summarised.is_some() => {
            let (r, c) = summarised.ok_or_else(|| not_numeric("wasserstein_normed"))?;
            Ok((sketch::wasserstein_normed(r, c)?, None))
        }
        Method::Energy | Method::Anderson | Method::Cramervonmises if summarised.is_some() => {
            Err(needs_raw("method"))
        }
        Method::Ks => {
            let (r, c) = numeric.ok_or_else(|| not_numeric("ks"))?;
            let k = ks_2samp(r, c)?;
            Ok((k.statistic, Some(k.p_value)))
        }
        Method::Wasserstein => {
            let (r, c) = numeric.ok_or_else(|| not_numeric("wasserstein"))?;
            Ok((wasserstein(r, c)?, None))
        }
        Method::WassersteinNormed => {
            let (r, c) = numeric.ok_or_else(|| not_numeric("wasserstein_normed"))?;
            Ok((wasserstein_normed(r, c)?, None))
        }
        Method::Energy => {
            let (r, c) = numeric.ok_or_else(|| not_numeric("energy"))?;
            Ok((energy_distance(r, c)?, None))
        }
        Method::Anderson => {
            let (r, c) = numeric.ok_or_else(|| not_numeric("anderson"))?;
            let t = anderson_ksamp(r, c)?;
            Ok((t.statistic, t.p_value))
        }
        Method::Cramervonmises => {
            let (r, c) = numeric.ok_or_else(|| not_numeric("cramervonmises"))?;
            let t = cramervonmises_2samp(r, c)?;
            Ok((t.statistic, t.p_value))
        }
        Method::Chisquare => {
            let c = counts_of(&input.values)?;
            Ok(match compat {
                Compat::Flywheel => {
                    let t = chi2_contingency(&c.reference, &c.current, true)?;
                    (t.statistic, Some(t.p_value))
                }
                Compat::Evidently => {
                    let t = chisquare_goodness_of_fit(&c.reference, &c.current)?;
                    (t.statistic, t.p_value)
                }
            })
        }
        Method::Ztest => {
            let counts = counts_of(&input.values)?;
            let (x1, n1, x2, n2) = binary_counts(&counts);
            let t = z_test_proportions(x1, n1, x2, n2)?;
            Ok((t.statistic, Some(t.p_value.unwrap_or(1.0))))
        }
        Method::Jensenshannon => {
            let b = binned()?;
            let base = match compat {
                Compat::Flywheel => Some(2.0),
                Compat::Evidently => None,
            };
            Ok((binning::js_distance(&b.reference, &b.current, base), None))
        }
        Method::Psi | Method::Kl => {
            let b = binned()?;
            let (r, c) = match compat {
                Compat::Flywheel => (
                    binning::floor_zero_shares(&b.reference),
                    binning::floor_zero_shares(&b.current),
                ),
                Compat::Evidently => (
                    binning::evidently_fill(&b.reference),
                    binning::evidently_fill(&b.current),
                ),
            };
            Ok(if method == Method::Psi {
                (binning::psi(&r, &c), None)
            } else {
                (
                    binning::kl_divergence(&r, &c, compat == Compat::Evidently),
                    None,
                )
            })
        }
        Method::Hellinger => match (&input.values, compat) {
            (ColumnValues::Numeric { reference, current }, Compat::Evidently) => Ok((
                binning::hellinger_evidently_numeric(reference, current),
                None,
            )),
            _ => {
                let b = binned()?;
                Ok((binning::hellinger_shares(&b.reference, &b.current), None))
            }
        },
    }
}

fn not_numeric(m: &'static str) -> StatError {
    StatError::Undefined {
        statistic: m,
        reason: "needs a numeric column".into(),
    }
}

/// The two gates of the default decision for one column.
struct Gates {
    /// The significance statistic and the p-value of the significance test.
    statistic: f64,
    statistic_name: &'static str,
    p_value: f64,
    /// The effect compared with the threshold.
    score: f64,
    score_name: &'static str,
    threshold: f64,
}

/// Reference-quantile bins of the default decision's binned test.
pub const SIGNIFICANCE_BINS: usize = 20;

/// Effect and significance of the default decision, over the whole population of each side
/// (missing values are a value of their own: a missing-rate change is a change).
///
/// * Numeric: the effect is KS D; significance is the smaller of two p-values, doubled
///   (Bonferroni): KS, which sees shifts of the bulk, and chi-square over 20 reference-quantile
///   bins plus a missing cell, which sees what KS is slow to see (a heavier tail, a new value of
///   an integer column, a change of the missing rate).
/// * From summaries: the sketch's lower bound of D, and KS on it; the second test is chi-square
///   on the exact counts of missing values (a sketch's bin counts are approximate, so a binned
///   test on them would read sketch error as drift).
/// * Categorical and binary: the effect is the Jensen–Shannon distance (base 2), significance
///   chi-square homogeneity, both with missing values as a category.
fn gates(input: &ColumnInput, effect_threshold: Option<f64>) -> StatResult<Gates> {
    let numeric_threshold = effect_threshold.unwrap_or(NUMERIC_EFFECT_THRESHOLD);
    match (&input.values, input.kind) {
        (ColumnValues::Numeric { reference, current }, Kind::Numeric) => {
            let k = ks_2samp_missing_last(reference, current)?;
            let edges = binning::quantile_edges(reference, SIGNIFICANCE_BINS);
            let cells = |s: &Sample| {
                let mut c = binning::counts_right_closed(s, &edges);
                c.push(s.dropped() as u64);
                c
            };
            let chi = chi2_contingency(&cells(reference), &cells(current), true)?;
            Ok(Gates {
                statistic: k.statistic,
                statistic_name: "ks_d",
                p_value: (2.0 * k.p_value.min(chi.p_value)).min(1.0),
                score: k.statistic,
                score_name: "ks_d",
                threshold: numeric_threshold,
            })
        }
        (ColumnValues::Summarised { reference, current }, _) => {
            // A sketch knows D within `err`: both gates use the lower bound, so that sketch error
            // alone never reads as drift on a large window.
            let (d, err) = sketch::ks_missing_last(reference, current)?;
            let low = (d - err).max(0.0);
            let absent = |s: &FeatureSummary| s.missing + s.non_finite;
            let n = |s: &FeatureSummary| s.sketch.count() + absent(s);
            let p_ks = sketch::ks_p_value(n(reference), n(current), low);
            let p_value = if absent(reference) + absent(current) == 0 {
                p_ks
            } else {
                let chi = chi2_contingency(
                    &[reference.sketch.count(), absent(reference)],
                    &[current.sketch.count(), absent(current)],
                    true,
                )?;
                (2.0 * p_ks.min(chi.p_value)).min(1.0)
            };
            Ok(Gates {
                statistic: d,
                statistic_name: "ks_d",
                p_value,
                score: low,
                score_name: if err > 0.0 {
                    "ks_d_lower_bound"
                } else {
                    "ks_d"
                },
                threshold: numeric_threshold,
            })
        }
        _ => {
            let c = counts_of(&input.values)?;
            // Missing values as one more category.
            let (mut r, mut k) = (c.reference.clone(), c.current.clone());
            if c.missing != [0, 0] {
                r.push(c.missing[0]);
                k.push(c.missing[1]);
            }
            let b = binning::Binned::from_counts(r, k);
            let t = chi2_contingency(&b.reference_counts, &b.current_counts, true)?;
            Ok(Gates {
                statistic: t.statistic,
                statistic_name: "chi2",
                p_value: t.p_value,
                score: binning::js_distance(&b.reference, &b.current, Some(2.0)),
                score_name: "jensenshannon",
                threshold: effect_threshold.unwrap_or(CATEGORICAL_EFFECT_THRESHOLD),
            })
        }
    }
}

/// The name of a method's own statistic.
fn statistic_name(m: Method) -> &'static str {
    match m {
        Method::Ks => "ks_d",
        Method::Chisquare => "chi2",
        Method::Ztest => "z",
        Method::Anderson => "anderson_a2",
        Method::Cramervonmises => "cvm_t",
        m => m.as_str(),
    }
}

/// The name of a method's statistic when it is the score (distances).
fn distance_name(m: Method) -> &'static str {
    m.as_str()
}

/// Decide one column before the Benjamini–Hochberg step (which [`compare`] applies to every
/// column with a p-value).
fn decide_column(input: &ColumnInput, opts: &Options) -> ColumnReport {
    let typed = (opts.compat == Compat::Evidently)
        .then(|| evidently_view(input))
        .flatten();
    let mut rep = decide_typed(typed.as_ref().unwrap_or(input), opts);
    if typed.is_some() && rep.note.is_none() {
        rep.note = Some(format!(
            "integer values, at most {EVIDENTLY_INTEGER_CARDINALITY} distinct in the current data: categorical, as Evidently types the column"
        ));
    }
    rep
}

fn decide_typed(input: &ColumnInput, opts: &Options) -> ColumnReport {
    let (nr, nc) = input.sizes();
    let (mr, mc) = input.missing();
    let default_decision = opts.method == Method::Auto && opts.compat == Compat::Flywheel;
    let method = match (opts.method, opts.compat) {
        (Method::Auto, Compat::Flywheel) => Method::Auto,
        (Method::Auto, Compat::Evidently) => evidently_method(input),
        (m, _) => m,
    };
    let threshold = match (opts.method, opts.threshold) {
        (Method::Auto, _) | (_, None) => default_threshold(method),
        (_, Some(t)) => t,
    };
    let drift_when = if !method.is_test() || default_decision {
        DriftWhen::AtLeast
    } else if opts.compat == Compat::Evidently && method == Method::Ks {
        // Evidently's KS rule is p ≤ threshold; every other test, p < threshold.
        DriftWhen::AtMost
    } else {
        DriftWhen::Below
    };
    let mut rep = ColumnReport {
        column: input.name.clone(),
        kind: input.kind,
        method,
        statistic: None,
        statistic_name: statistic_name(method),
        p_value: None,
        p_adjusted: None,
        score: None,
        score_name: if method.is_test() && !default_decision {
            "p_value"
        } else {
            distance_name(method)
        },
        threshold,
        drift_when,
        alpha: default_decision.then_some(opts.fdr),
        drifted: false,
        decision: Decision::InsufficientData,
        n_reference: nr,
        n_current: nc,
        missing_reference: mr,
        missing_current: mc,
        note: None,
    };
    // The default decision counts missing values (a side that went all-missing is a change);
    // explicit methods compare the values present.
    let (sr, sc) = if default_decision {
        (nr + mr as usize, nc + mc as usize)
    } else {
        (nr, nc)
    };
    let min = if opts.compat == Compat::Evidently {
        1
    } else {
        opts.min_samples.max(1)
    };
    if sr < min || sc < min {
        rep.note = Some(format!(
            "fewer than {min} values on a side (reference {sr}, current {sc})"
        ));
        return rep;
    }
    if default_decision {
        match gates(input, opts.threshold) {
            Ok(g) => {
                rep.statistic = Some(g.statistic);
                rep.statistic_name = g.statistic_name;
                rep.p_value = Some(g.p_value);
                rep.score = Some(g.score);
                rep.score_name = g.score_name;
                rep.threshold = g.threshold;
                // Decided (and possibly drifted) once the p-values are adjusted.
                rep.decision = Decision::NoDrift;
            }
            Err(e) => rep.note = Some(e.to_string()),
        }
        return rep;
    }
    match compute(method, input, opts.binning, opts.compat) {
        Ok((stat, p)) => {
            rep.statistic = Some(stat);
            rep.p_value = p;
            let score = if method.is_test() {
                p.unwrap_or(f64::NAN)
            } else {
                stat
            };
            rep.score = Some(score);
            rep.drifted = drift_when.passes(score, threshold);
            rep.decision = if rep.drifted {
                Decision::Drift
            } else {
                Decision::NoDrift
            };
        }
        Err(e) => {
            rep.note = Some(e.to_string());
        }
    }
    rep
}

/// Decide every column (in parallel) and the dataset. Every p-value is adjusted by
/// Benjamini–Hochberg across the columns; the default decision needs the adjusted p-value at
/// most `fdr` *and* the effect at its threshold, explicit tests decide on their raw p-value (as
/// the method is defined) and report the adjusted one beside it.
pub fn compare(columns: &[ColumnInput], opts: &Options) -> Report {
    use rayon::prelude::*;
    let mut reports: Vec<ColumnReport> =
        columns.par_iter().map(|c| decide_column(c, opts)).collect();
    let tests: Vec<(usize, f64)> = reports
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.p_value.map(|p| (i, p)))
        .collect();
    if !tests.is_empty() {
        let adjusted = benjamini_hochberg(&tests.iter().map(|t| t.1).collect::<Vec<_>>());
        for ((i, _), q) in tests.iter().zip(adjusted) {
            let r = &mut reports[*i];
            r.p_adjusted = Some(q);
            if let Some(alpha) = r.alpha {
                let big = r.score.is_some_and(|e| r.drift_when.passes(e, r.threshold));
                r.drifted = big && q <= alpha;
                r.decision = if r.drifted {
                    Decision::Drift
                } else {
                    Decision::NoDrift
                };
            }
        }
    }
    let decided = reports
        .iter()
        .filter(|r| r.decision != Decision::InsufficientData)
        .count();
    let drifted = reports.iter().filter(|r| r.drifted).count();
    let share = if decided == 0 {
        0.0
    } else {
        drifted as f64 / decided as f64
    };
    Report {
        columns: reports,
        drifted_columns: drifted,
        share_drifted: share,
        dataset_drift: decided > 0 && share >= opts.drift_share,
        multivariate: None,
    }
}

#[cfg(test)]
mod tests;
