//! One drift run: for every model a monitor watches, the window's summaries against the
//! baseline's, decided feature by feature (see the module docs of `drift`), with persistence
//! over the previous windows, stored as results and exported as metrics.
//!
//! Only summaries are read: the window's buckets, and the baseline as stored summaries (an
//! uploaded dataset) or the merge of a time range's buckets. Merged time-range baselines are
//! cached (keyed by model and range, so a rolling baseline is merged once a day), which keeps
//! a run over 10 models × 100 features well under a second (`BENCHMARKS.md`). The statistics run
//! on a blocking thread.
//!
//! Results (job `drift:<monitor>`, one per model and window):
//! * subject `<class>/<feature>` (e.g. `input/age`): the feature's [`ColumnReport`] plus its
//!   class, whether it is alerting (drifted in ≥ N of the last M windows) and the window count;
//! * subject `_dataset`: the share of drifted features, the dataset decision, the top
//!   drifted features by effect and, with `ingest.segment_keys`, the inputs decided within each
//!   tracked segment, the segments where drift concentrates first.
//!
//! A run is a pure function of the stored summaries and the results of the previous windows, so
//! rerunning a past window reproduces its stored result.

use super::monitor::{BaselineSpec, Monitor};
use super::multivariate::{decide_window, WindowMultivariate};
use super::{compare, CategoryCounts, ColumnInput, ColumnReport, ColumnValues, Decision, Kind};
use crate::jobs::{Job, Output};
use crate::metrics::{DriftExport, DriftSeries, Metrics, MultivariateExport};
use crate::store::{ResultQuery, ResultRow, Store};
use crate::summary::delta::SeriesClass;
use crate::summary::FeatureSummary;
use async_trait::async_trait;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// (class, feature) → summary, ordered so that merging and reporting are deterministic.
pub type SummaryMap = BTreeMap<(SeriesClass, String), FeatureSummary>;

/// The subject under which a feature's result is stored.
pub fn subject(class: SeriesClass, name: &str) -> String {
    format!("{}/{}", class.as_str(), name)
}

/// (model, from, to).
type CacheKey = (String, i64, i64);

/// Features decided together: their options and (class, column) inputs.
type Group = (super::Options, Vec<(SeriesClass, ColumnInput)>);

/// Merged time-range baselines, by (model, from, to); holds the most recent few.
#[derive(Default)]
pub struct BaselineCache {
    entries: Mutex<Vec<(CacheKey, Arc<SummaryMap>)>>,
}

const CACHE_ENTRIES: usize = 64;

impl BaselineCache {
    fn get(&self, key: &(String, i64, i64)) -> Option<Arc<SummaryMap>> {
        let e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        e.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }
    fn put(&self, key: (String, i64, i64), v: Arc<SummaryMap>) {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        e.retain(|(k, _)| *k != key);
        e.push((key, v));
        if e.len() > CACHE_ENTRIES {
            e.remove(0);
        }
    }
}

/// Merge a model's summaries in `[from, to)` over versions and buckets.
pub async fn merged_summaries(
    store: &dyn Store,
    model: &str,
    from: i64,
    to: i64,
) -> Result<SummaryMap, crate::store::StoreError> {
    let rows = store.series().summaries(model, None, from, to).await?;
    let mut out = SummaryMap::new();
    for r in rows {
        match out.entry((r.class, r.name)) {
            std::collections::btree_map::Entry::Occupied(mut e) => e.get_mut().merge(&r.summary),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(r.summary);
            }
        }
    }
    Ok(out)
}

/// The baseline summaries of `model` for `window` under `spec`: an uploaded dataset's, or the
/// merge of a time range's buckets (cached). Shared by the drift and the quality jobs.
pub async fn baseline_summaries(
    store: &dyn Store,
    cache: &BaselineCache,
    spec: &BaselineSpec,
    model: &str,
    window: (i64, i64),
) -> anyhow::Result<Arc<SummaryMap>> {
    match spec {
        BaselineSpec::Dataset { name } => {
            let (_, sums) = store.series().baseline_summaries(name).await?.ok_or_else(|| {
                anyhow::anyhow!(
                    "baseline dataset {name:?} does not exist; upload it with POST /v1/baselines or `flywheel baseline upload`"
                )
            })?;
            Ok(Arc::new(
                sums.into_iter()
                    .map(|s| ((s.class, s.name), s.summary))
                    .collect(),
            ))
        }
        spec => {
            let (from, to) = spec.range_for(window.0, window.1).unwrap_or(window);
            let key = (model.to_owned(), from, to);
            if let Some(b) = cache.get(&key) {
                return Ok(b);
            }
            let b = Arc::new(merged_summaries(store, model, from, to).await?);
            cache.put(key, b.clone());
            Ok(b)
        }
    }
}

/// One feature's stored result.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct FeatureResult {
    pub class: String,
    pub feature: String,
    #[serde(flatten)]
    pub report: serde_json::Value,
    /// Drifted in at least N of the last M windows (this one included).
    pub alerting: bool,
    /// Windows among the last M (this one included) in which it drifted.
    pub drifted_windows: usize,
}

/// One of the most drifted features of a model in a window (alerting ones first, then by
/// effect).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct TopDrifted {
    pub class: String,
    pub feature: String,
    /// The value compared with `threshold` (see `ColumnReport`).
    pub score: Option<f64>,
    pub score_name: String,
    pub threshold: f64,
    pub statistic: Option<f64>,
    pub method: super::Method,
    /// Drifted in at least N of the last M windows.
    pub alerting: bool,
}

/// The dataset-level result of one model in one window (stored under subject `_dataset`; the
/// alert engine reads it as the drift job's findings).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct DatasetResult {
    pub monitor: String,
    /// The baseline in words (`rolling:7d`, `dataset:NAME`...).
    pub baseline: String,
    /// The baseline's time range (seconds), when it is one.
    pub baseline_range: Option<(i64, i64)>,
    /// Features compared.
    pub features: usize,
    /// Features with a decision (not `insufficient_data`).
    pub decided: usize,
    pub drifted: usize,
    pub share_drifted: f64,
    pub drift_share: f64,
    pub dataset_drift: bool,
    pub decision: Decision,
    /// Features drifted in at least N of the last M windows.
    pub alerting_features: usize,
    pub top_drifted: Vec<TopDrifted>,
    /// How the numeric inputs move together (absent when the monitor does not compare them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multivariate: Option<WindowMultivariate>,
    /// The inputs decided within each tracked segment (`ingest.segment_keys`), the segments
    /// where drift concentrates first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<SegmentDrift>,
}

/// One segment's inputs in a window against the same segment in the baseline.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct SegmentDrift {
    pub key: String,
    pub value: String,
    /// Interactions of the segment in the window, and their share among the key's.
    pub n: u64,
    pub share: f64,
    /// Inputs decided (not `insufficient_data`) and drifted.
    pub decided: usize,
    pub drifted: usize,
    /// The drifted inputs, largest score first.
    pub drifted_features: Vec<String>,
    pub largest_score: Option<f64>,
}

/// The inputs of each tracked segment decided against the same segment in the baseline (the
/// monitor's options, its input features only), ranked: most drifted inputs first, then the
/// largest score. Segments with fewer than `min_samples` interactions on either side are left
/// out. Pure.
pub fn segment_drift(
    monitor: &Monitor,
    baseline: &SummaryMap,
    current: &SummaryMap,
) -> Vec<SegmentDrift> {
    use crate::summary::delta::parse_segment_series_name;
    type BySegment = BTreeMap<(String, String), SummaryMap>;
    let split = |m: &SummaryMap| -> BySegment {
        let mut out = BySegment::new();
        for ((class, name), s) in m {
            if *class != SeriesClass::SegmentInput {
                continue;
            }
            if let Some((k, v, f)) = parse_segment_series_name(name) {
                out.entry((k.to_owned(), v.to_owned()))
                    .or_default()
                    .insert((SeriesClass::Input, f.to_owned()), s.clone());
            }
        }
        out
    };
    let (base, cur) = (split(baseline), split(current));
    let volume = |m: &SummaryMap| m.values().map(FeatureSummary::total).max().unwrap_or(0);
    let mut key_totals: BTreeMap<&str, u64> = BTreeMap::new();
    for ((k, _), m) in &cur {
        *key_totals.entry(k.as_str()).or_insert(0) += volume(m);
    }
    let mut inputs_only = monitor.clone();
    inputs_only.classes = vec![SeriesClass::Input];
    let min = monitor.options.min_samples as u64;
    let mut out = Vec::new();
    for ((k, v), c) in &cur {
        let Some(b) = base.get(&(k.clone(), v.clone())) else {
            continue;
        };
        let n = volume(c);
        if n < min || volume(b) < min {
            continue;
        }
        let decided = decide(&inputs_only, b, c);
        let mut drifted: Vec<(f64, String)> = decided
            .iter()
            .filter(|(_, r)| r.decision == Decision::Drift)
            .map(|(_, r)| (r.score.unwrap_or(0.0), r.column.clone()))
            .collect();
        drifted.sort_by(|a, b| b.0.total_cmp(&a.0));
        out.push(SegmentDrift {
            key: k.clone(),
            value: v.clone(),
            n,
            share: n as f64 / key_totals.get(k.as_str()).copied().unwrap_or(n).max(1) as f64,
            decided: decided
                .iter()
                .filter(|(_, r)| r.decision != Decision::InsufficientData)
                .count(),
            drifted: drifted.len(),
            largest_score: drifted.first().map(|d| d.0),
            drifted_features: drifted.into_iter().map(|d| d.1).collect(),
        });
    }
    out.sort_by(|a, b| {
        b.drifted
            .cmp(&a.drifted)
            .then_with(|| {
                b.largest_score
                    .unwrap_or(0.0)
                    .total_cmp(&a.largest_score.unwrap_or(0.0))
            })
            .then_with(|| (&a.key, &a.value).cmp(&(&b.key, &b.value)))
    });
    out
}

/// The key under which previous multivariate drifts are counted for persistence.
const MULTIVARIATE: &str = "_multivariate";

/// What a drift run found: each model's dataset result.
pub type DriftFindings = Vec<(String, DatasetResult)>;

pub struct DriftJob {
    pub monitor: Monitor,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub cache: Arc<BaselineCache>,
    pub metric_top_features: usize,
    /// The newest window exported as metrics, per model (catch-up runs of older windows do
    /// not overwrite newer figures).
    exported: crate::jobs::Newest,
}

impl DriftJob {
    pub fn new(
        monitor: Monitor,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        cache: Arc<BaselineCache>,
        metric_top_features: usize,
    ) -> Self {
        Self {
            monitor,
            store,
            metrics,
            cache,
            metric_top_features,
            exported: crate::jobs::Newest::default(),
        }
    }

    /// Windows among the previous M−1 (by time) in which each subject drifted.
    async fn previous_drifts(
        &self,
        model: &str,
        window: (i64, i64),
    ) -> anyhow::Result<HashMap<String, usize>> {
        let (_, m) = self.monitor.persistence;
        let mut out = HashMap::new();
        if m <= 1 {
            return Ok(out);
        }
        let w = self.monitor.window_secs;
        let rows = self
            .store
            .jobs()
            .results(&ResultQuery {
                job_prefix: Some(self.name()),
                model: Some(model.to_owned()),
                from: Some(window.1 - m as i64 * w),
                to: Some(window.1 - w),
                ..Default::default()
            })
            .await?;
        for r in rows.into_iter().filter(|r| r.job == self.name()) {
            let drift =
                |v: &serde_json::Value| v.get("decision").and_then(|d| d.as_str()) == Some("drift");
            if r.subject == "_dataset" && r.data.get("multivariate").is_some_and(drift) {
                *out.entry(MULTIVARIATE.to_owned()).or_insert(0) += 1;
            }
            if drift(&r.data) {
                *out.entry(r.subject).or_insert(0) += 1;
            }
        }
        Ok(out)
    }

    /// Multivariate drift of a model's inputs in `window`, when the monitor compares them.
    async fn multivariate(
        &self,
        model: &str,
        window: (i64, i64),
        previous: &HashMap<String, usize>,
    ) -> anyhow::Result<Option<WindowMultivariate>> {
        if !self.monitor.multivariate {
            return Ok(None);
        }
        let Some((from, to)) = self.monitor.baseline.range_for(window.0, window.1) else {
            return Ok(None);
        };
        let series = self.store.series();
        let baseline = series.joint_moments(model, from, to).await?;
        let current = series.joint_moments(model, window.0, window.1).await?;
        let mut mv = decide_window(
            &baseline,
            &current,
            from,
            self.monitor.window_secs,
            self.monitor.options.min_samples as u64,
        );
        let (n, m) = self.monitor.persistence;
        let windows = previous.get(MULTIVARIATE).copied().unwrap_or(0)
            + usize::from(mv.decision == Decision::Drift);
        mv.alerting = windows >= n;
        mv.drifted_windows = windows.min(m);
        Ok(Some(mv))
    }
}

/// The column input for one feature, from its two summaries; `None` when a side has no values.
fn column(name: &str, r: &FeatureSummary, c: &FeatureSummary) -> Option<ColumnInput> {
    let numeric = r.moments.n > 0 || c.moments.n > 0;
    let categorical = r.categories.total() > 0 || c.categories.total() > 0;
    let values = if numeric && !categorical {
        ColumnValues::Summarised {
            reference: Box::new(r.clone()),
            current: Box::new(c.clone()),
        }
    } else if categorical {
        let mut keys: std::collections::BTreeSet<&str> = r
            .categories
            .counts
            .keys()
            .chain(c.categories.counts.keys())
            .map(String::as_str)
            .collect();
        let other = r.categories.other + c.categories.other > 0;
        if other {
            keys.insert("(other)");
        }
        let count = |s: &FeatureSummary, k: &str| {
            if k == "(other)" && !s.categories.counts.contains_key(k) {
                s.categories.other
            } else {
                s.categories.counts.get(k).copied().unwrap_or(0)
            }
        };
        ColumnValues::Categorical(CategoryCounts {
            reference: keys.iter().map(|k| count(r, k)).collect(),
            current: keys.iter().map(|k| count(c, k)).collect(),
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
            missing: [r.missing, c.missing],
        })
    } else {
        return None;
    };
    let kind = match &values {
        ColumnValues::Categorical(cc) => {
            if cc.keys.iter().all(|k| k == "true" || k == "false") {
                Kind::Binary
            } else {
                Kind::Categorical
            }
        }
        _ => Kind::Numeric,
    };
    Some(ColumnInput {
        name: name.to_owned(),
        kind,
        values,
    })
}

/// Decide every watched feature of one model. Pure (runs on a blocking thread).
pub fn decide(
    monitor: &Monitor,
    baseline: &SummaryMap,
    current: &SummaryMap,
) -> Vec<(SeriesClass, ColumnReport)> {
    let empty = FeatureSummary::default();
    let keys: std::collections::BTreeSet<&(SeriesClass, String)> = baseline
        .keys()
        .chain(current.keys())
        .filter(|(class, name)| monitor.classes.contains(class) && monitor.watches_feature(name))
        .collect();
    // Features with the same options are decided together (one Benjamini–Hochberg step).
    let mut groups: BTreeMap<&'static str, Group> = BTreeMap::new();
    for key in keys {
        let (class, name) = key;
        let r = baseline.get(key).unwrap_or(&empty);
        let c = current.get(key).unwrap_or(&empty);
        if let Some(col) = column(name, r, c) {
            let opts = monitor.options_for(name);
            groups
                .entry(opts.method.as_str())
                .or_insert_with(|| (opts, Vec::new()))
                .1
                .push((*class, col));
        }
    }
    let mut out = Vec::new();
    for (_, (opts, cols)) in groups {
        let (classes, inputs): (Vec<SeriesClass>, Vec<ColumnInput>) = cols.into_iter().unzip();
        let report = compare(&inputs, &opts);
        out.extend(classes.into_iter().zip(report.columns));
    }
    out
}

#[derive(Debug, Serialize)]
struct ModelDetail {
    features: usize,
    drifted: usize,
    insufficient: usize,
    share_drifted: f64,
    dataset_drift: bool,
    /// Largest current-window sample over the features.
    n_current_max: usize,
    n_reference_max: usize,
}

#[async_trait]
impl Job for DriftJob {
    type Findings = DriftFindings;
    fn name(&self) -> String {
        self.monitor.job_name()
    }
    fn schedule(&self) -> &crate::jobs::schedule::CronSchedule {
        &self.monitor.schedule
    }
    fn max_catch_up(&self) -> usize {
        self.monitor.max_catch_up
    }
    fn window_for(&self, fired_at: i64) -> (i64, i64) {
        self.monitor.window_for(fired_at)
    }

    async fn run(
        &self,
        _fired_at: i64,
        window: (i64, i64),
    ) -> anyhow::Result<Output<DriftFindings>> {
        let models: Vec<String> = crate::store::models_before(self.store.as_ref(), i64::MAX)
            .await?
            .into_iter()
            .filter(|m| self.monitor.watches_model(m))
            .collect();
        let job = self.name();
        let mut results = Vec::new();
        let mut findings = Vec::new();
        let mut details = BTreeMap::new();
        for model in models {
            let current = merged_summaries(self.store.as_ref(), &model, window.0, window.1).await?;
            if current.is_empty() {
                continue;
            }
            let baseline = baseline_summaries(
                self.store.as_ref(),
                &self.cache,
                &self.monitor.baseline,
                &model,
                window,
            )
            .await?;
            let previous = self.previous_drifts(&model, window).await?;
            let multivariate = self.multivariate(&model, window, &previous).await?;
            let monitor = self.monitor.clone();
            let (decided, segments) = tokio::task::spawn_blocking(move || {
                let segments = if monitor.classes.contains(&SeriesClass::Input) {
                    segment_drift(&monitor, &baseline, &current)
                } else {
                    Vec::new()
                };
                (decide(&monitor, &baseline, &current), segments)
            })
            .await?;
            let (n, m) = self.monitor.persistence;
            let mut features: Vec<(FeatureResult, &ColumnReport)> = Vec::new();
            for (class, rep) in &decided {
                let subj = subject(*class, &rep.column);
                let windows = previous.get(&subj).copied().unwrap_or(0)
                    + usize::from(rep.decision == Decision::Drift);
                let fr = FeatureResult {
                    class: class.as_str().to_owned(),
                    feature: rep.column.clone(),
                    report: serde_json::to_value(rep)?,
                    alerting: windows >= n,
                    drifted_windows: windows.min(m),
                };
                features.push((fr, rep));
            }
            let decided_n = decided
                .iter()
                .filter(|(_, r)| r.decision != Decision::InsufficientData)
                .count();
            let drifted = decided.iter().filter(|(_, r)| r.drifted).count();
            let share = if decided_n == 0 {
                0.0
            } else {
                drifted as f64 / decided_n as f64
            };
            let dataset_drift = decided_n > 0 && share >= self.monitor.options.drift_share;
            let mut ranked: Vec<&(FeatureResult, &ColumnReport)> = features.iter().collect();
            ranked.sort_by(|a, b| {
                b.0.alerting
                    .cmp(&a.0.alerting)
                    .then(b.1.drifted.cmp(&a.1.drifted))
                    .then(b.1.strength().total_cmp(&a.1.strength()))
                    .then(a.0.feature.cmp(&b.0.feature))
            });
            let top_drifted: Vec<TopDrifted> = ranked
                .iter()
                .filter(|(f, r)| r.drifted || f.alerting)
                .take(10)
                .map(|(f, r)| TopDrifted {
                    class: f.class.clone(),
                    feature: f.feature.clone(),
                    score: r.score,
                    score_name: r.score_name.to_owned(),
                    threshold: r.threshold,
                    statistic: r.statistic,
                    method: r.method,
                    alerting: f.alerting,
                })
                .collect();
            let dataset = DatasetResult {
                monitor: self.monitor.name.clone(),
                baseline: self.monitor.baseline.describe(),
                baseline_range: self.monitor.baseline.range_for(window.0, window.1),
                features: decided.len(),
                decided: decided_n,
                drifted,
                share_drifted: share,
                drift_share: self.monitor.options.drift_share,
                dataset_drift,
                decision: if decided_n == 0 {
                    Decision::InsufficientData
                } else if dataset_drift {
                    Decision::Drift
                } else {
                    Decision::NoDrift
                },
                alerting_features: features.iter().filter(|f| f.0.alerting).count(),
                top_drifted,
                multivariate,
                segments,
            };
            // Metrics: only for the newest window seen (catch-up runs come oldest first).
            if self.exported.advance(&model, window.1) {
                let series = ranked
                    .iter()
                    .map(|(f, r)| DriftSeries {
                        feature: f.feature.clone(),
                        kind: f.class.clone(),
                        method: r.score_label().into(),
                        score: r.score,
                        threshold: r.threshold,
                        p_value: r.p_adjusted.or(r.p_value),
                        alerting: f.alerting,
                    })
                    .collect();
                let count = |d: Decision| decided.iter().filter(|(_, r)| r.decision == d).count();
                self.metrics.publish_drift(&DriftExport {
                    monitor: self.monitor.name.clone(),
                    model: model.clone(),
                    features: series,
                    top: self.metric_top_features,
                    drifted_ratio: share,
                    dataset_drift,
                    multivariate: dataset.multivariate.as_ref().and_then(|mv| {
                        Some(MultivariateExport {
                            score: mv.score?,
                            threshold: mv.band?.upper,
                            alerting: mv.alerting,
                        })
                    }),
                    decisions: vec![
                        ("drift", count(Decision::Drift)),
                        ("no_drift", count(Decision::NoDrift)),
                        ("insufficient_data", count(Decision::InsufficientData)),
                    ],
                });
            }
            details.insert(
                model.clone(),
                ModelDetail {
                    features: decided.len(),
                    drifted,
                    insufficient: decided
                        .iter()
                        .filter(|(_, r)| r.decision == Decision::InsufficientData)
                        .count(),
                    share_drifted: share,
                    dataset_drift,
                    n_current_max: decided.iter().map(|(_, r)| r.n_current).max().unwrap_or(0),
                    n_reference_max: decided
                        .iter()
                        .map(|(_, r)| r.n_reference)
                        .max()
                        .unwrap_or(0),
                },
            );
            for (fr, _) in &features {
                results.push(ResultRow {
                    job: job.clone(),
                    model: model.clone(),
                    subject: subject(
                        SeriesClass::parse(&fr.class).unwrap_or(SeriesClass::Input),
                        &fr.feature,
                    ),
                    window_start: window.0,
                    window_end: window.1,
                    data: serde_json::to_value(fr)?,
                });
            }
            results.push(ResultRow {
                job: job.clone(),
                model: model.clone(),
                subject: "_dataset".into(),
                window_start: window.0,
                window_end: window.1,
                data: serde_json::to_value(&dataset)?,
            });
            findings.push((model.clone(), dataset));
        }
        Ok(Output {
            detail: serde_json::json!({
                "monitor": self.monitor.name,
                "baseline": self.monitor.baseline.describe(),
                "config_hash": self.monitor.config_hash,
                "models": details,
            }),
            results,
            findings,
        })
    }
}
