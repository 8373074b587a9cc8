//! The Prometheus registry of the service and the metrics of its machinery (ingest, HTTP,
//! tasks, drift, alerts). The flywheel-health gauges are declared next to health
//! (`flywheel::metrics`) and registered in the same registry.
//!
//! One [`prometheus::Registry`] is owned by the application (never the global default, so tests
//! running several apps in one process stay isolated). Names are `flywheel_<what>_<unit>`, in
//! base units; counters end in `_total`. Label values that come from clients (model ids) are
//! bounded: the first `MAX_MODEL_LABELS` models get their own series, later ones share `_other`.
//! README.md lists every metric; a test checks the list against this module.

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// At most this many distinct `model` label values; more share the value `_other`.
/// Declare a gauge vector in `registry` (the application's one registry): the one constructor
/// the modules that export figures share.
pub fn gauge_vec(
    registry: &prometheus::Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<prometheus::GaugeVec, prometheus::Error> {
    let v = prometheus::GaugeVec::new(prometheus::Opts::new(name, help), labels)?;
    registry.register(Box::new(v.clone()))?;
    Ok(v)
}

pub const MAX_MODEL_LABELS: usize = 100;

pub struct Metrics {
    registry: Registry,
    pub events_ingested: IntCounterVec,
    pub events_rejected: IntCounterVec,
    pub events_duplicate: IntCounter,
    pub category_overflow: IntCounter,
    pub http_request_duration: HistogramVec,
    pub store_write_duration: HistogramVec,
    pub ingest_queue_batches: IntGauge,
    pub ingest_pending_events: IntGauge,
    pub ingest_overload: IntCounter,
    pub build_info: IntGaugeVec,
    pub task_last_success: GaugeVec,
    pub task_runs: IntCounterVec,
    pub task_duration: HistogramVec,
    pub task_interval: GaugeVec,
    pub drift_score: GaugeVec,
    pub drift_threshold: GaugeVec,
    pub drift_p_value: GaugeVec,
    pub drift_detected: GaugeVec,
    pub drifted_features_ratio: GaugeVec,
    pub drift_features: GaugeVec,
    pub dataset_drift: GaugeVec,
    pub multivariate_score: GaugeVec,
    pub multivariate_threshold: GaugeVec,
    pub multivariate_detected: GaugeVec,
    pub alert_notifications: IntCounterVec,
    pub alerts_firing: GaugeVec,
    models: Mutex<HashSet<String>>,
    /// (monitor, model) → the per-feature label sets currently exported, so that a feature that
    /// leaves the top list is removed rather than left stale.
    drift_series: Mutex<HashMap<(String, String), Vec<FeatureLabels>>>,
}

/// model, monitor, feature, kind, method.
type FeatureLabels = [String; 5];

/// One feature's drift figures, as exported.
#[derive(Debug, Clone)]
pub struct DriftSeries {
    pub feature: String,
    pub kind: String,
    pub method: String,
    pub score: Option<f64>,
    pub threshold: f64,
    pub p_value: Option<f64>,
    /// The persistent (N of M windows) decision.
    pub alerting: bool,
}

/// What a drift run exports for one (monitor, model).
#[derive(Debug, Clone)]
pub struct DriftExport {
    pub monitor: String,
    pub model: String,
    /// Every feature, largest effect first; the first `top` get their own series.
    pub features: Vec<DriftSeries>,
    pub top: usize,
    pub drifted_ratio: f64,
    pub dataset_drift: bool,
    /// The multivariate comparison, when it reached a decision (else its series are removed).
    pub multivariate: Option<MultivariateExport>,
    /// decision → number of features.
    pub decisions: Vec<(&'static str, usize)>,
}

/// A window's multivariate drift, as exported.
#[derive(Debug, Clone, Copy)]
pub struct MultivariateExport {
    pub score: f64,
    /// The band's upper bound.
    pub threshold: f64,
    /// The persistent (N of M windows) decision.
    pub alerting: bool,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let events_ingested = IntCounterVec::new(
            Opts::new(
                "flywheel_events_ingested_total",
                "Events accepted and made durable, by event type and model.",
            ),
            &["event_type", "model"],
        )?;
        let events_rejected = IntCounterVec::new(
            Opts::new(
                "flywheel_events_rejected_total",
                "Events rejected by validation, by reason.",
            ),
            &["reason"],
        )?;
        let events_duplicate = IntCounter::new(
            "flywheel_events_duplicate_total",
            "Events whose event_id was already seen within the dedup horizon (counted once).",
        )?;
        let category_overflow = IntCounter::new(
            "flywheel_category_overflow_total",
            "Category values that arrived after a feature reached its category cap (the heavy-hitters sketch evicted a smaller category to \"other\").",
        )?;
        let http_request_duration = HistogramVec::new(
            HistogramOpts::new(
                "flywheel_http_request_duration_seconds",
                "HTTP request latency, by route template and status class.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "status_class"],
        )?;
        let store_write_duration = HistogramVec::new(
            HistogramOpts::new(
                "flywheel_store_write_duration_seconds",
                "Store write latency, by operation (journal, checkpoint).",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["operation"],
        )?;
        let ingest_queue_batches = IntGauge::new(
            "flywheel_ingest_queue_batches",
            "Batches waiting to be made durable.",
        )?;
        let ingest_pending_events = IntGauge::new(
            "flywheel_ingest_pending_events",
            "Events journaled but not yet folded into the stored summaries.",
        )?;
        let ingest_overload = IntCounter::new(
            "flywheel_ingest_overload_total",
            "Requests answered 503 because the ingest queue was full.",
        )?;
        let build_info = IntGaugeVec::new(
            Opts::new(
                "flywheel_build_info",
                "Build information; the value is always 1.",
            ),
            &["version"],
        )?;
        let task_last_success = GaugeVec::new(
            Opts::new(
                "flywheel_task_last_success_timestamp_seconds",
                "When each scheduled task last finished successfully (Unix time, service clock).",
            ),
            &["task"],
        )?;
        let task_runs = IntCounterVec::new(
            Opts::new(
                "flywheel_task_runs_total",
                "Scheduled task runs, by task and outcome (success, failure).",
            ),
            &["task", "outcome"],
        )?;
        let task_duration = HistogramVec::new(
            HistogramOpts::new(
                "flywheel_task_duration_seconds",
                "Wall time of scheduled task runs, by task.",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
            ]),
            &["task"],
        )?;
        let task_interval = GaugeVec::new(
            Opts::new(
                "flywheel_task_interval_seconds",
                "Time between two scheduled fires of each task (from its cron schedule); alert rules compare the age of the last success with it.",
            ),
            &["task"],
        )?;
        let feature_labels = &["model", "monitor", "feature", "kind", "method"];
        let drift_score = GaugeVec::new(
            Opts::new(
                "flywheel_drift_score",
                "Drift score of a feature in the latest window, the value compared with flywheel_drift_threshold: the effect under the default decision (method ks_d: KS D over the whole population; jensenshannon: JS distance of the shares), else the method's p-value or distance. The features furthest past their thresholds per model.",
            ),
            feature_labels,
        )?;
        let drift_threshold = GaugeVec::new(
            Opts::new(
                "flywheel_drift_threshold",
                "The threshold flywheel_drift_score is compared with (same labels).",
            ),
            feature_labels,
        )?;
        let drift_p_value = GaugeVec::new(
            Opts::new(
                "flywheel_drift_p_value",
                "p-value of the feature's drift test in the latest window, Benjamini-Hochberg adjusted across the model's features.",
            ),
            feature_labels,
        )?;
        let drift_detected = GaugeVec::new(
            Opts::new(
                "flywheel_drift_detected",
                "1 when the feature drifted in at least N of the last M windows (the monitor's persistence), else 0.",
            ),
            feature_labels,
        )?;
        let drifted_features_ratio = GaugeVec::new(
            Opts::new(
                "flywheel_drifted_features_ratio",
                "Share of a model's features (with a decision) that drifted in the latest window.",
            ),
            &["model", "monitor"],
        )?;
        let drift_features = GaugeVec::new(
            Opts::new(
                "flywheel_drift_features",
                "Features of a model by decision in the latest window (drift, no_drift, insufficient_data): the aggregate over every feature, including those without their own series.",
            ),
            &["model", "monitor", "decision"],
        )?;
        let dataset_drift = GaugeVec::new(
            Opts::new(
                "flywheel_dataset_drift_detected",
                "1 when the share of drifted features reached the monitor's drift_share in the latest window.",
            ),
            &["model", "monitor"],
        )?;
        let multivariate_score = GaugeVec::new(
            Opts::new(
                "flywheel_multivariate_drift_score",
                "Expected squared PCA reconstruction error of the model's numeric inputs in the latest window (standardised units), under a principal-component model of the baseline: how far the inputs' joint structure (their correlations) moved.",
            ),
            &["model", "monitor"],
        )?;
        let multivariate_threshold = GaugeVec::new(
            Opts::new(
                "flywheel_multivariate_drift_threshold",
                "Upper bound of the band of flywheel_multivariate_drift_score: mean + 3 sd of the baseline's own windows.",
            ),
            &["model", "monitor"],
        )?;
        let multivariate_detected = GaugeVec::new(
            Opts::new(
                "flywheel_multivariate_drift_detected",
                "1 when the multivariate score was above its band in at least N of the last M windows (the monitor's persistence), else 0.",
            ),
            &["model", "monitor"],
        )?;
        let alert_notifications = IntCounterVec::new(
            Opts::new(
                "flywheel_alert_notifications_total",
                "Alert notifications by receiver (alertmanager, webhook, queue) and outcome (sent, retried, failed, dropped).",
            ),
            &["receiver", "outcome"],
        )?;
        let alerts_firing = GaugeVec::new(
            Opts::new(
                "flywheel_alerts_firing",
                "The service's own alerts currently firing, by severity.",
            ),
            &["severity"],
        )?;
        registry.register(Box::new(alert_notifications.clone()))?;
        registry.register(Box::new(alerts_firing.clone()))?;
        for sev in ["critical", "warning"] {
            alerts_firing.with_label_values(&[sev]).set(0.0);
        }
        for receiver in ["alertmanager", "webhook"] {
            for outcome in ["sent", "retried", "failed"] {
                alert_notifications.with_label_values(&[receiver, outcome]);
            }
        }
        alert_notifications.with_label_values(&["queue", "dropped"]);
        for c in [
            Box::new(task_last_success.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(task_runs.clone()),
            Box::new(task_duration.clone()),
            Box::new(task_interval.clone()),
            Box::new(drift_score.clone()),
            Box::new(drift_threshold.clone()),
            Box::new(drift_p_value.clone()),
            Box::new(drift_detected.clone()),
            Box::new(drifted_features_ratio.clone()),
            Box::new(drift_features.clone()),
            Box::new(dataset_drift.clone()),
            Box::new(multivariate_score.clone()),
            Box::new(multivariate_threshold.clone()),
            Box::new(multivariate_detected.clone()),
        ] {
            registry.register(c)?;
        }
        for c in [
            Box::new(events_ingested.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(events_rejected.clone()),
            Box::new(events_duplicate.clone()),
            Box::new(category_overflow.clone()),
            Box::new(http_request_duration.clone()),
            Box::new(store_write_duration.clone()),
            Box::new(ingest_queue_batches.clone()),
            Box::new(ingest_pending_events.clone()),
            Box::new(ingest_overload.clone()),
            Box::new(build_info.clone()),
        ] {
            registry.register(c)?;
        }
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        // Known label sets start at 0 rather than absent.
        for r in crate::events::RejectReason::ALL {
            events_rejected.with_label_values(&[r.as_str()]);
        }
        for op in ["journal", "checkpoint"] {
            store_write_duration.with_label_values(&[op]);
        }
        Ok(Self {
            registry,
            events_ingested,
            events_rejected,
            events_duplicate,
            category_overflow,
            http_request_duration,
            store_write_duration,
            ingest_queue_batches,
            ingest_pending_events,
            ingest_overload,
            build_info,
            task_last_success,
            task_runs,
            task_duration,
            task_interval,
            drift_score,
            drift_threshold,
            drift_p_value,
            drift_detected,
            drifted_features_ratio,
            drift_features,
            dataset_drift,
            multivariate_score,
            multivariate_threshold,
            multivariate_detected,
            alert_notifications,
            alerts_firing,
            models: Mutex::new(HashSet::new()),
            drift_series: Mutex::new(HashMap::new()),
        })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The `model` label value for a model id, bounded to [`MAX_MODEL_LABELS`] distinct values.
    pub fn model_label(&self, model: &str) -> String {
        let mut seen = match self.models.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if seen.contains(model) {
            return model.to_owned();
        }
        if seen.len() < MAX_MODEL_LABELS {
            seen.insert(model.to_owned());
            model.to_owned()
        } else {
            "_other".to_owned()
        }
    }

    /// The classic text exposition format (0.0.4), which promtool and every Prometheus parse.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let enc = TextEncoder::new();
        if let Err(e) = enc.encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    pub fn observe_store_write(&self, op: &str, secs: f64) {
        self.store_write_duration
            .with_label_values(&[op])
            .observe(secs);
    }
}

impl Metrics {
    /// Register a scheduled task so its series exist (at 0) before its first run.
    pub fn declare_task(&self, task: &str, interval_secs: Option<f64>) {
        if let Some(i) = interval_secs {
            self.task_interval.with_label_values(&[task]).set(i);
        }
        for outcome in ["success", "failure"] {
            self.task_runs.with_label_values(&[task, outcome]);
        }
        self.task_duration.with_label_values(&[task]);
    }

    /// A success of `task` recorded in the store (possibly by another replica) at `at_us`: the
    /// last-success gauge moves forward to it, never back, so every replica exports the
    /// deployment's last success and a replica that never ran the job does not look stale.
    pub fn note_task_success(&self, task: &str, at_us: i64) {
        let g = self.task_last_success.with_label_values(&[task]);
        let at = at_us as f64 / 1e6;
        if at > g.get() {
            g.set(at);
        }
    }

    pub fn observe_task(&self, task: &str, outcome: &str, secs: f64, now_us: i64) {
        self.task_runs.with_label_values(&[task, outcome]).inc();
        self.task_duration.with_label_values(&[task]).observe(secs);
        if outcome == "success" {
            self.task_last_success
                .with_label_values(&[task])
                .set(now_us as f64 / 1e6);
        }
    }

    /// Export a drift run's latest figures for one (monitor, model), replacing the previous.
    pub fn publish_drift(&self, d: &DriftExport) {
        let model = self.model_label(&d.model);
        let key = (d.monitor.clone(), model.clone());
        let mut series = match self.drift_series.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(old) = series.remove(&key) {
            for l in old {
                let l: Vec<&str> = l.iter().map(String::as_str).collect();
                for g in [
                    &self.drift_score,
                    &self.drift_threshold,
                    &self.drift_p_value,
                    &self.drift_detected,
                ] {
                    let _ = g.remove_label_values(&l);
                }
            }
        }
        let mut now = Vec::new();
        for f in d.features.iter().take(d.top) {
            let l = [
                model.clone(),
                d.monitor.clone(),
                f.feature.clone(),
                f.kind.clone(),
                f.method.clone(),
            ];
            let lr: Vec<&str> = l.iter().map(String::as_str).collect();
            if let Some(s) = f.score {
                self.drift_score.with_label_values(&lr).set(s);
            }
            self.drift_threshold.with_label_values(&lr).set(f.threshold);
            if let Some(p) = f.p_value {
                self.drift_p_value.with_label_values(&lr).set(p);
            }
            self.drift_detected
                .with_label_values(&lr)
                .set(if f.alerting { 1.0 } else { 0.0 });
            now.push(l);
        }
        series.insert(key, now);
        self.drifted_features_ratio
            .with_label_values(&[&model, &d.monitor])
            .set(d.drifted_ratio);
        self.dataset_drift
            .with_label_values(&[&model, &d.monitor])
            .set(if d.dataset_drift { 1.0 } else { 0.0 });
        let mv = [
            &self.multivariate_score,
            &self.multivariate_threshold,
            &self.multivariate_detected,
        ];
        match d.multivariate {
            Some(m) => {
                let values = [m.score, m.threshold, if m.alerting { 1.0 } else { 0.0 }];
                for (g, v) in mv.into_iter().zip(values) {
                    g.with_label_values(&[&model, &d.monitor]).set(v);
                }
            }
            None => {
                for g in mv {
                    let _ = g.remove_label_values(&[&model, &d.monitor]);
                }
            }
        }
        for (decision, n) in &d.decisions {
            self.drift_features
                .with_label_values(&[model.as_str(), d.monitor.as_str(), decision])
                .set(*n as f64);
        }
    }
}
