//! The weekly report as data: what [`super::build`] gathers from the store and
//! [`super::render`] writes as Markdown and HTML. The JSON sidecar is this model serialised
//! (without the charts).

use crate::flywheel::health::{Arc, Funnel};
use crate::flywheel::learning_curve::Forecast;
use crate::store::AlertState;
use serde::Serialize;
use std::collections::BTreeMap;

/// The report of one ISO week.
#[derive(Debug, Clone, Serialize)]
pub struct WeeklyReport {
    /// `YYYY-Www`.
    pub week: String,
    /// First and last day of the week (UTC dates).
    pub from: String,
    pub to: String,
    /// The models' verdicts on one line.
    pub verdict: String,
    pub models: Vec<ModelSection>,
}

/// One model's week.
#[derive(Debug, Clone, Serialize)]
pub struct ModelSection {
    pub model: String,
    pub verdict: String,
    /// The last complete day the health figures cover.
    pub health_as_of: String,
    pub changes: Vec<Change>,
    /// Segments whose explicit feedback rate fell or rose significantly week over week, and
    /// those where the current version's positive share is significantly better or worse than
    /// the previous one's (from the health job's per-segment figures).
    pub feedback_segments: Vec<crate::flywheel::health::SegmentFeedback>,
    pub uplift_segments: Vec<(String, crate::flywheel::health::UpliftMetric)>,
    pub alerts: Vec<AlertLine>,
    pub arcs: BTreeMap<&'static str, Arc>,
    pub drift: DriftWeek,
    pub funnel: Funnel,
    /// The primary evaluation metric and its learning-curve forecast.
    pub metric: Option<String>,
    pub learning_curve: Forecast,
    #[serde(skip)]
    pub charts: Charts,
    /// Model performance over the week's days (realized and estimated), when the model sends
    /// outcomes and the performance job is on.
    pub performance: Option<crate::performance::Performance>,
    /// Data quality over the week's quality windows (absent when the quality job has none).
    pub quality: Option<QualityWeek>,
}

/// Data quality over the week: the verdicts summed up, the features that violated most, and
/// the pipeline's own `quality_failed` funnel stage beside them.
#[derive(Debug, Clone, Serialize)]
pub struct QualityWeek {
    pub summary: crate::quality::RangeSummary,
    /// (rule, feature, windows violated), most windows first (at most 8).
    pub top_violations: Vec<(String, String, usize)>,
    /// Items the pipeline reported at the `collected` and `quality_failed` stages this week.
    pub funnel_collected: u64,
    pub funnel_quality_failed: u64,
    /// The training-consent flags of the week's interactions.
    pub consent: crate::quality::ConsentShare,
    /// Weekly retention cohorts suppressed by k-anonymity (fewer than `health.k_anonymity`
    /// users), and all weekly cohorts shown.
    pub suppressed_cohorts: usize,
    pub cohorts: usize,
}

/// A figure this week against the previous week.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub metric: &'static str,
    pub this_week: Option<f64>,
    pub previous_week: Option<f64>,
    /// `this / previous − 1`.
    pub change: Option<f64>,
    /// Whether the figure is a share (rendered as a percentage).
    pub percent: bool,
}

/// An alert that fired (or was firing) during the week.
#[derive(Debug, Clone, Serialize)]
pub struct AlertLine {
    pub alertname: String,
    pub severity: String,
    pub state_now: AlertState,
    pub summary: String,
    pub started: Option<String>,
    pub resolved: Option<String>,
}

/// Drift over the week's drift windows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DriftWeek {
    /// Drift windows that ended in the week.
    pub windows: usize,
    /// Features that drifted in at least one window, largest score first (at most 10).
    pub features: Vec<DriftedFeature>,
    /// The joint comparison of the numeric inputs, over the windows that reached a decision.
    pub multivariate: Option<MultivariateWeek>,
    /// Segments whose inputs drifted (`key=value`, windows, inputs), most windows first (at
    /// most 5): where the drift concentrates.
    pub segments: Vec<(String, u64, Vec<String>)>,
}

/// Multivariate drift over the week's drift windows.
#[derive(Debug, Clone, Serialize)]
pub struct MultivariateWeek {
    /// The numeric inputs compared (of the window with the largest score).
    pub features: Vec<String>,
    /// Windows with a decision, and those above the band.
    pub windows: u64,
    pub drifted_windows: u64,
    /// The score of the window furthest above its band (relative to the band's upper bound),
    /// and that bound.
    pub largest_score: f64,
    pub band_upper: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DriftedFeature {
    pub feature: String,
    pub drifted_windows: u64,
    pub windows: u64,
    /// The largest score of a drifted window, and the method whose score it is.
    pub largest_score: f64,
    pub method: String,
}

/// Inline SVG charts (empty when there is nothing to draw).
#[derive(Debug, Clone, Default)]
pub struct Charts {
    pub volume: String,
    pub velocity: String,
    pub learning_curve: String,
    pub retention: String,
    pub drift: Vec<String>,
    /// Realized and estimated performance per day.
    pub performance: String,
    /// Reliability diagram of the newest well-labelled day.
    pub reliability: String,
}
