//! Model performance with and without labels, per model and daily window, from the stored
//! summaries only (no raw prediction or label is kept). Pure here; [`job`] loads, stores and
//! exports.
//!
//! * **Realized** performance is computed from the `outcome` summaries of each window (the
//!   window of the *prediction*, so labels that arrive late update the window they belong to):
//!   binary classifiers from the score distributions of the two true classes (accuracy,
//!   precision, recall, F1 at `threshold`, ROC AUC with its error bound, expected calibration
//!   error and a reliability diagram); regressors from the moments of the error (MAE, RMSE,
//!   bias). With it: the label coverage (outcomes / scored predictions) and the label delay
//!   (median and p90 of `occurred_at − predicted_at`).
//! * **Estimated** performance (binary classifiers with probability scores): an isotonic
//!   calibration map fitted on the reference period's outcomes turns every scored prediction of
//!   the window into an expected positive probability, from which come the expected confusion
//!   matrix and AUC (confidence-based performance estimation, as NannyML's CBPE, here on the
//!   window's score sketch). It assumes that `P(label | score)` is the same as in the reference
//!   (covariate shift is fine, concept shift is not: it cannot be seen without labels), and that
//!   the reference's labels are not selected by their value. It is reported invalid (with why)
//!   without a labelled reference (`min_labels` outcomes of both classes) or when more than
//!   `max_extrapolated` of the window's scores lie outside the reference's score range.
//! * **Degradation** of a window against the reference period: a drop of the primary metric
//!   (binary: accuracy; regression: MAE) by at least the configured effect that is also
//!   significant at `alpha` (two-proportion z-test; Welch's t on the absolute errors). Realized
//!   and estimated are decided apart, so the estimate can warn before labels arrive.
//!
//! The reference period is the `reference_days` days before the `lookback_days` daily windows
//! the job reports (`[end − (lookback + reference) days, end − lookback days)`), shared by every
//! window of a run so that they are comparable.

pub mod job;
pub mod metrics;

use crate::stats::inference::{two_proportions, welch_from_moments};
use crate::stats::performance::{
    confusion, expected_auc, expected_confusion, reliability, roc_auc, Calibration, Confusion,
    ReliabilityBin,
};
use crate::store::SummaryRow;
use crate::summary::delta::{outcome, SeriesClass};
use crate::summary::FeatureSummary;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const DAY: i64 = 86_400;

/// Score bins the calibration map is fitted on (see [`Calibration::fit_binned`]).
pub const CALIBRATION_BINS: usize = 20;

/// `[performance]` in the config file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PerformanceConfig {
    /// Run the performance job at all.
    pub enabled: bool,
    /// When it runs (cron, UTC); it covers the days complete at that time.
    pub schedule: String,
    /// A binary prediction is positive when its score is at least this.
    pub threshold: f64,
    /// Daily windows reported per run (outcomes arriving late update them on the next run).
    pub lookback_days: u32,
    /// Days before the lookback whose outcomes are the reference (calibration and the level a
    /// drop is measured from).
    pub reference_days: u32,
    /// Fewer labelled predictions than this: no realized figure is exported or decided on, and
    /// a reference with fewer cannot calibrate an estimate.
    pub min_labels: u64,
    /// Label coverage from which a window's estimate is compared with its realized value.
    pub min_coverage: f64,
    /// The smallest drop of accuracy (absolute) that counts as degradation.
    pub min_accuracy_drop: f64,
    /// The smallest relative increase of the MAE that counts as degradation.
    pub min_mae_increase: f64,
    /// Significance level of the degradation tests.
    pub alpha: f64,
    /// Share of a window's scores outside the reference's score range above which the estimate
    /// is invalid (extrapolated).
    pub max_extrapolated: f64,
    /// Bins of the reliability diagram.
    pub reliability_bins: usize,
    /// Missed runs caught up after downtime.
    pub max_catch_up: usize,
}

impl Default for PerformanceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            schedule: "0 25 0 * * *".into(),
            threshold: 0.5,
            lookback_days: 7,
            reference_days: 7,
            min_labels: 200,
            min_coverage: 0.8,
            min_accuracy_drop: 0.02,
            min_mae_increase: 0.1,
            alpha: 0.01,
            max_extrapolated: 0.05,
            reliability_bins: 10,
            max_catch_up: 7,
        }
    }
}

impl PerformanceConfig {
    pub fn check(&self, errors: &mut Vec<String>) {
        let unit = |v: f64| v.is_finite() && (0.0..=1.0).contains(&v);
        if !self.threshold.is_finite() {
            errors.push("performance.threshold: must be a finite number".into());
        }
        if !(1..=90).contains(&self.lookback_days) {
            errors.push("performance.lookback_days: must be between 1 and 90".into());
        }
        if !(1..=90).contains(&self.reference_days) {
            errors.push("performance.reference_days: must be between 1 and 90".into());
        }
        if self.min_labels == 0 {
            errors.push("performance.min_labels: must be at least 1".into());
        }
        for (name, v) in [
            ("min_coverage", self.min_coverage),
            ("min_accuracy_drop", self.min_accuracy_drop),
            ("max_extrapolated", self.max_extrapolated),
        ] {
            if !unit(v) {
                errors.push(format!("performance.{name}: must be within [0, 1]"));
            }
        }
        if !(self.min_mae_increase.is_finite() && self.min_mae_increase >= 0.0) {
            errors.push("performance.min_mae_increase: must be a non-negative number".into());
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            errors.push("performance.alpha: must be within (0, 1)".into());
        }
        if !(2..=100).contains(&self.reliability_bins) {
            errors.push("performance.reliability_bins: must be between 2 and 100".into());
        }
    }

    /// The reference period and the first window of a run ending at `end`.
    pub fn reference(&self, end: i64) -> (i64, i64) {
        let start = end - i64::from(self.lookback_days) * DAY;
        (start - i64::from(self.reference_days) * DAY, start)
    }
}

/// What a model's outcomes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    BinaryClassification,
    Regression,
    /// No outcome yet.
    Unknown,
}

/// Realized binary classification performance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinaryRealized {
    pub labelled: u64,
    pub positives: u64,
    pub confusion: Confusion,
    pub accuracy: Option<f64>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    pub roc_auc: Option<f64>,
    /// |AUC from the sketches − exact AUC| is at most this (0 while the sketches are exact).
    pub roc_auc_error_bound: f64,
    /// Bound of the accuracy's error from the sketches (0 while exact).
    pub accuracy_error_bound: f64,
    pub calibration_error: Option<f64>,
    pub reliability: Vec<ReliabilityBin>,
}

/// Realized regression performance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionRealized {
    pub labelled: u64,
    pub mae: f64,
    pub rmse: f64,
    /// Mean of prediction − actual.
    pub bias: f64,
}

/// Estimated binary performance of a window's predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimated {
    pub predictions: u64,
    pub confusion: Confusion,
    pub accuracy: Option<f64>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    pub roc_auc: Option<f64>,
}

/// Why a window has no estimate, or `ok`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EstimateStatus {
    Ok,
    /// Estimation applies to binary classifiers only.
    NotApplicable,
    /// The reference has fewer than `min_labels` outcomes or lacks a class.
    NoReference,
    /// No scored prediction in the window.
    NoPredictions,
    /// Too many of the window's scores lie outside the reference's score range.
    Extrapolated,
}

/// Performance over one set of outcome and prediction summaries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Realized {
    pub binary: Option<BinaryRealized>,
    pub regression: Option<RegressionRealized>,
}

/// A degradation decision against the reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Degradation {
    /// `accuracy` or `mae`.
    pub metric: String,
    pub reference: f64,
    pub value: f64,
    /// value − reference.
    pub change: f64,
    pub p_value: f64,
    pub degraded: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionPerformance {
    pub version: String,
    pub predictions: u64,
    pub labelled: u64,
    pub coverage: Option<f64>,
    pub realized: Realized,
}

/// One daily window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowPerformance {
    pub start: i64,
    pub end: i64,
    /// Scored predictions (interactions with a `prediction.score`).
    pub predictions: u64,
    /// Predictions with an outcome so far.
    pub labelled: u64,
    /// labelled / predictions, capped at 1; `None` without predictions.
    pub coverage: Option<f64>,
    pub delay_median_secs: Option<f64>,
    pub delay_p90_secs: Option<f64>,
    pub realized: Realized,
    pub estimated: Option<Estimated>,
    pub estimate_status: EstimateStatus,
    /// Share of the window's scores outside the reference's score range.
    pub extrapolated_share: Option<f64>,
    /// Estimated − realized accuracy, once coverage reaches `min_coverage` with `min_labels`.
    pub estimation_error: Option<f64>,
    pub degraded_realized: Option<Degradation>,
    pub degraded_estimated: Option<Degradation>,
    pub by_version: Vec<VersionPerformance>,
}

/// A model's performance as of `end`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Performance {
    pub model: String,
    pub end: i64,
    pub task: Task,
    pub threshold: f64,
    pub reference_start: i64,
    pub reference_end: i64,
    pub reference: Realized,
    pub reference_labelled: u64,
    /// Daily windows, oldest first; the last is the newest complete day.
    pub windows: Vec<WindowPerformance>,
    /// Mean |estimated − realized| accuracy over the windows with enough labels.
    pub estimation_mae: Option<f64>,
    pub estimation_windows: usize,
}

impl Performance {
    /// The newest window with at least `min_labels` outcomes (what realized figures describe).
    pub fn newest_labelled(&self, min_labels: u64) -> Option<&WindowPerformance> {
        self.windows.iter().rev().find(|w| w.labelled >= min_labels)
    }
    pub fn newest(&self) -> Option<&WindowPerformance> {
        self.windows.last()
    }
}

/// Outcome and score summaries of one span, merged.
#[derive(Debug, Clone, Default)]
struct Span {
    outcomes: BTreeMap<String, FeatureSummary>,
    scores: Option<FeatureSummary>,
}

impl Span {
    fn add(&mut self, row: &SummaryRow) {
        match row.class {
            SeriesClass::Outcome => merge_into(
                self.outcomes
                    .entry(row.name.clone())
                    .or_insert_with(|| empty_like(&row.summary)),
                &row.summary,
            ),
            SeriesClass::Prediction if row.name == "score" => merge_into(
                self.scores.get_or_insert_with(|| empty_like(&row.summary)),
                &row.summary,
            ),
            _ => {}
        }
    }
    fn numbers(&self, name: &str) -> u64 {
        self.outcomes.get(name).map_or(0, |s| s.moments.n)
    }
    fn labelled(&self) -> u64 {
        self.numbers(outcome::DELAY)
    }
    fn predictions(&self) -> u64 {
        self.scores.as_ref().map_or(0, |s| s.moments.n)
    }
    fn task(&self) -> Task {
        if self.numbers(outcome::POSITIVE) + self.numbers(outcome::NEGATIVE) > 0 {
            Task::BinaryClassification
        } else if self.numbers(outcome::ERROR) > 0 {
            Task::Regression
        } else {
            Task::Unknown
        }
    }
}

fn empty_like(s: &FeatureSummary) -> FeatureSummary {
    FeatureSummary::new(s.sketch.k(), s.category_cap as usize)
}

fn merge_into(into: &mut FeatureSummary, s: &FeatureSummary) {
    into.merge(s);
}

/// A summary's sketch as (score, weight) pairs, sorted, weights scaled to its count.
fn weighted(s: Option<&FeatureSummary>) -> (Vec<(f64, f64)>, f64) {
    let Some(s) = s else {
        return (Vec::new(), 0.0);
    };
    let items = s.sketch.weighted_items();
    let total: u64 = items.iter().map(|p| p.1).sum();
    if total == 0 {
        return (Vec::new(), 0.0);
    }
    let scale = s.moments.n as f64 / total as f64;
    (
        items
            .into_iter()
            .map(|(x, w)| (x, w as f64 * scale))
            .collect(),
        s.sketch.rank_error(),
    )
}

fn realized(span: &Span, config: &PerformanceConfig) -> Realized {
    let (pos, neg) = (
        span.outcomes.get(outcome::POSITIVE),
        span.outcomes.get(outcome::NEGATIVE),
    );
    let binary = (pos.is_some() || neg.is_some()).then(|| {
        let (p, ep) = weighted(pos);
        let (n, en) = weighted(neg);
        let c = confusion(&p, &n, config.threshold);
        let (np, nn) = (
            pos.map_or(0, |s| s.moments.n),
            neg.map_or(0, |s| s.moments.n),
        );
        let total = (np + nn).max(1) as f64;
        let rel = reliability(&p, &n, config.reliability_bins);
        BinaryRealized {
            labelled: np + nn,
            positives: np,
            accuracy: c.accuracy(),
            precision: c.precision(),
            recall: c.recall(),
            f1: c.f1(),
            confusion: c,
            roc_auc: roc_auc(&p, &n),
            roc_auc_error_bound: ep + en,
            accuracy_error_bound: (ep * np as f64 + en * nn as f64) / total,
            calibration_error: rel.as_ref().map(|r| r.1),
            reliability: rel.map(|r| r.0).unwrap_or_default(),
        }
    });
    let regression = span
        .outcomes
        .get(outcome::ERROR)
        .filter(|e| e.moments.n > 0)
        .map(|e| {
            let m = &e.moments;
            let var = m.variance_pop().unwrap_or(0.0);
            RegressionRealized {
                labelled: m.n,
                mae: span
                    .outcomes
                    .get(outcome::ABS_ERROR)
                    .map_or(f64::NAN, |a| a.moments.mean),
                rmse: (m.mean * m.mean + var).sqrt(),
                bias: m.mean,
            }
        });
    Realized { binary, regression }
}

fn estimate(
    span: &Span,
    cal: Option<&Calibration>,
    config: &PerformanceConfig,
) -> (Option<Estimated>, EstimateStatus, Option<f64>) {
    let Some(cal) = cal else {
        return (None, EstimateStatus::NoReference, None);
    };
    let (scores, _) = weighted(span.scores.as_ref());
    if scores.is_empty() {
        return (None, EstimateStatus::NoPredictions, None);
    }
    let outside = cal.outside_share(&scores).max(0.0);
    if outside > config.max_extrapolated {
        return (None, EstimateStatus::Extrapolated, Some(outside));
    }
    let c = expected_confusion(&scores, cal, config.threshold);
    (
        Some(Estimated {
            predictions: span.predictions(),
            accuracy: c.accuracy(),
            precision: c.precision(),
            recall: c.recall(),
            f1: c.f1(),
            roc_auc: expected_auc(&scores, cal),
            confusion: c,
        }),
        EstimateStatus::Ok,
        Some(outside),
    )
}

/// Accuracy of a window (count, rate) against the reference's.
fn accuracy_drop(
    reference: (u64, f64),
    window: (u64, f64),
    config: &PerformanceConfig,
) -> Option<Degradation> {
    let (nr, ar) = reference;
    let (nw, aw) = window;
    let xr = (ar * nr as f64).round() as u64;
    let xw = (aw * nw as f64).round() as u64;
    let d = two_proportions(xr, nr, xw.min(nw), nw, 0.95).ok()?;
    Some(Degradation {
        metric: "accuracy".into(),
        reference: ar,
        value: aw,
        change: aw - ar,
        p_value: d.p_value,
        degraded: aw - ar <= -config.min_accuracy_drop && d.p_value < config.alpha,
    })
}

fn mae_increase(
    reference: &FeatureSummary,
    window: &FeatureSummary,
    config: &PerformanceConfig,
) -> Option<Degradation> {
    let stats = |s: &FeatureSummary| {
        Some((
            s.moments.n as f64,
            s.moments.mean,
            s.moments.variance_sample()?,
        ))
    };
    let d = welch_from_moments(stats(reference)?, stats(window)?, 0.95).ok()?;
    let (r, w) = (reference.moments.mean, window.moments.mean);
    Some(Degradation {
        metric: "mae".into(),
        reference: r,
        value: w,
        change: w - r,
        p_value: d.p_value,
        degraded: w - r >= config.min_mae_increase * r.abs() && w > r && d.p_value < config.alpha,
    })
}

/// Performance of one model as of `end` (the start of a UTC day) from the outcome and
/// prediction-score summary rows of `[reference start, end)` (any versions and buckets).
pub fn compute(
    model: &str,
    config: &PerformanceConfig,
    end: i64,
    rows: &[SummaryRow],
) -> Performance {
    let (ref_start, ref_end) = config.reference(end);
    let mut reference = Span::default();
    let days = config.lookback_days as usize;
    let mut windows: Vec<Span> = vec![Span::default(); days];
    let mut versions: Vec<BTreeMap<String, Span>> = vec![BTreeMap::new(); days];
    for r in rows {
        if r.bucket >= ref_start && r.bucket < ref_end {
            reference.add(r);
        } else if r.bucket >= ref_end && r.bucket < end {
            let i = ((r.bucket - ref_end) / DAY) as usize;
            if let Some(w) = windows.get_mut(i) {
                w.add(r);
                versions[i].entry(r.version.clone()).or_default().add(r);
            }
        }
    }
    let task = std::iter::once(&reference)
        .chain(windows.iter())
        .map(Span::task)
        .find(|t| *t != Task::Unknown)
        .unwrap_or(Task::Unknown);
    let reference_realized = realized(&reference, config);
    let calibration = match (&reference_realized.binary, task) {
        (Some(b), Task::BinaryClassification)
            if b.labelled >= config.min_labels && b.positives > 0 && b.positives < b.labelled =>
        {
            let (p, _) = weighted(reference.outcomes.get(outcome::POSITIVE));
            let (n, _) = weighted(reference.outcomes.get(outcome::NEGATIVE));
            Calibration::fit_binned(&p, &n, CALIBRATION_BINS)
        }
        _ => None,
    };
    let ref_accuracy = reference_realized
        .binary
        .as_ref()
        .filter(|b| b.labelled >= config.min_labels)
        .and_then(|b| Some((b.labelled, b.accuracy?)));
    let ref_abs_error = reference
        .outcomes
        .get(outcome::ABS_ERROR)
        .filter(|s| s.moments.n >= config.min_labels);

    let mut out = Vec::with_capacity(days);
    for (i, span) in windows.iter().enumerate() {
        let start = ref_end + i as i64 * DAY;
        let predictions = span.predictions();
        let labelled = span.labelled();
        let coverage = (predictions > 0).then(|| (labelled as f64 / predictions as f64).min(1.0));
        let delay = span.outcomes.get(outcome::DELAY);
        let r = realized(span, config);
        let (estimated, estimate_status, extrapolated_share) = match task {
            Task::BinaryClassification => estimate(span, calibration.as_ref(), config),
            _ => (None, EstimateStatus::NotApplicable, None),
        };
        let realized_accuracy = r
            .binary
            .as_ref()
            .filter(|b| b.labelled >= config.min_labels)
            .and_then(|b| Some((b.labelled, b.accuracy?)));
        let estimation_error = match (&estimated, realized_accuracy, coverage) {
            (Some(e), Some((_, a)), Some(c)) if c >= config.min_coverage => {
                e.accuracy.map(|ea| ea - a)
            }
            _ => None,
        };
        let degraded_realized = match task {
            Task::BinaryClassification => ref_accuracy
                .zip(realized_accuracy)
                .and_then(|(rf, w)| accuracy_drop(rf, w, config)),
            Task::Regression => match (ref_abs_error, span.outcomes.get(outcome::ABS_ERROR)) {
                (Some(rf), Some(w)) if w.moments.n >= config.min_labels => {
                    mae_increase(rf, w, config)
                }
                _ => None,
            },
            Task::Unknown => None,
        };
        let degraded_estimated = match (&estimated, ref_accuracy) {
            (Some(e), Some(rf)) => e
                .accuracy
                .and_then(|a| accuracy_drop(rf, (e.predictions, a), config)),
            _ => None,
        };
        let by_version = versions[i]
            .iter()
            .filter(|(_, s)| s.labelled() > 0 || s.predictions() > 0)
            .map(|(v, s)| VersionPerformance {
                version: v.clone(),
                predictions: s.predictions(),
                labelled: s.labelled(),
                coverage: (s.predictions() > 0)
                    .then(|| (s.labelled() as f64 / s.predictions() as f64).min(1.0)),
                realized: {
                    // The reliability diagram is the window's, not repeated per version.
                    let mut r = realized(s, config);
                    if let Some(b) = r.binary.as_mut() {
                        b.reliability.clear();
                    }
                    r
                },
            })
            .collect();
        out.push(WindowPerformance {
            start,
            end: start + DAY,
            predictions,
            labelled,
            coverage,
            delay_median_secs: delay.and_then(|d| d.sketch.quantile(0.5)),
            delay_p90_secs: delay.and_then(|d| d.sketch.quantile(0.9)),
            realized: r,
            estimated,
            estimate_status,
            extrapolated_share,
            estimation_error,
            degraded_realized,
            degraded_estimated,
            by_version,
        });
    }
    let errors: Vec<f64> = out.iter().filter_map(|w| w.estimation_error).collect();
    Performance {
        model: model.to_owned(),
        end,
        task,
        threshold: config.threshold,
        reference_start: ref_start,
        reference_end: ref_end,
        reference_labelled: reference.labelled(),
        reference: reference_realized,
        estimation_mae: (!errors.is_empty())
            .then(|| errors.iter().map(|e| e.abs()).sum::<f64>() / errors.len() as f64),
        estimation_windows: errors.len(),
        windows: out,
    }
}

/// The classes the computation reads.
pub const CLASSES: [SeriesClass; 2] = [SeriesClass::Outcome, SeriesClass::Prediction];

#[cfg(test)]
mod tests;
