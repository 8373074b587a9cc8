//! The performance gauges, declared next to the computation they export and registered in the
//! application's one registry. Names and help texts are listed in README.md (a test checks it).
//! Label values are bounded: `metric` and `kind` come from fixed lists, `model` from
//! [`crate::metrics::Metrics::model_label`].

use super::{Performance, PerformanceConfig, Realized};
use prometheus::{GaugeVec, Registry};

/// Every `metric` label value, so that a model's figures are replaced, never left stale.
const METRICS: [&str; 9] = [
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "calibration_error",
    "mae",
    "rmse",
    "bias",
];
const KINDS: [&str; 3] = ["realized", "estimated", "reference"];

pub struct PerformanceGauges {
    pub performance: GaugeVec,
    pub coverage: GaugeVec,
    pub delay: GaugeVec,
    pub degraded: GaugeVec,
    pub estimation_error: GaugeVec,
}

impl PerformanceGauges {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let g =
            |name, help, labels: &[&str]| crate::metrics::gauge_vec(registry, name, help, labels);
        Ok(Self {
            performance: g("flywheel_model_performance", "Model performance by metric (accuracy, precision, recall, f1, roc_auc, calibration_error; mae, rmse, bias) and kind: realized (the newest complete day with enough labels), estimated (the newest complete day, from its scores before labels arrive), reference (the reference period).", &["model", "metric", "kind"])?,
            coverage: g("flywheel_label_coverage_ratio", "Share of the newest complete day's scored predictions that have an outcome so far.", &["model"])?,
            delay: g("flywheel_label_delay_seconds", "Time from prediction to outcome over the newest complete day with enough labels, by quantile (0.5, 0.9).", &["model", "quantile"])?,
            degraded: g("flywheel_model_performance_degraded", "1 when performance dropped against the reference by at least the configured effect, significantly; by kind (realized: the newest day with enough labels; estimated: the newest day, before its labels).", &["model", "kind"])?,
            estimation_error: g("flywheel_performance_estimation_error", "Mean absolute difference between estimated and realized accuracy over the recent days whose labels have arrived.", &["model"])?,
        })
    }

    /// Export one model's figures; figures without a value are removed, not left stale.
    pub fn publish(&self, model: &str, p: &Performance, config: &PerformanceConfig) {
        let set = |v: &GaugeVec, labels: &[&str], x: Option<f64>| match x {
            Some(x) if x.is_finite() => v.with_label_values(labels).set(x),
            _ => {
                let _ = v.remove_label_values(labels);
            }
        };
        for kind in KINDS {
            for metric in METRICS {
                let _ = self.performance.remove_label_values(&[model, metric, kind]);
            }
        }
        let put = |kind: &str, r: &Realized| {
            if let Some(b) = &r.binary {
                for (metric, x) in [
                    ("accuracy", b.accuracy),
                    ("precision", b.precision),
                    ("recall", b.recall),
                    ("f1", b.f1),
                    ("roc_auc", b.roc_auc),
                    ("calibration_error", b.calibration_error),
                ] {
                    set(&self.performance, &[model, metric, kind], x);
                }
            }
            if let Some(g) = &r.regression {
                for (metric, x) in [("mae", g.mae), ("rmse", g.rmse), ("bias", g.bias)] {
                    set(&self.performance, &[model, metric, kind], Some(x));
                }
            }
        };
        if p.reference_labelled >= config.min_labels {
            put("reference", &p.reference);
        }
        let labelled = p.newest_labelled(config.min_labels);
        if let Some(w) = labelled {
            put("realized", &w.realized);
        }
        let newest = p.newest();
        if let Some(e) = newest.and_then(|w| w.estimated.as_ref()) {
            for (metric, x) in [
                ("accuracy", e.accuracy),
                ("precision", e.precision),
                ("recall", e.recall),
                ("f1", e.f1),
                ("roc_auc", e.roc_auc),
            ] {
                set(&self.performance, &[model, metric, "estimated"], x);
            }
        }
        set(&self.coverage, &[model], newest.and_then(|w| w.coverage));
        set(
            &self.delay,
            &[model, "0.5"],
            labelled.and_then(|w| w.delay_median_secs),
        );
        set(
            &self.delay,
            &[model, "0.9"],
            labelled.and_then(|w| w.delay_p90_secs),
        );
        let flag = |d: Option<&super::Degradation>| d.map(|d| if d.degraded { 1.0 } else { 0.0 });
        set(
            &self.degraded,
            &[model, "realized"],
            flag(labelled.and_then(|w| w.degraded_realized.as_ref())),
        );
        set(
            &self.degraded,
            &[model, "estimated"],
            flag(newest.and_then(|w| w.degraded_estimated.as_ref())),
        );
        set(&self.estimation_error, &[model], p.estimation_mae);
    }
}
