//! The data-quality gauges, declared next to the evaluation they export and registered in the
//! application's one registry. Names and help texts are listed in README.md (a test checks it).
//! Label values are bounded: `rule` comes from the configured rules, `model` from
//! [`crate::metrics::Metrics::model_label`].

use super::Verdict;
use prometheus::{GaugeVec, Registry};

pub struct QualityGauges {
    pub verdict: GaugeVec,
    pub violations: GaugeVec,
    pub checked: GaugeVec,
    pub violation_ratio: GaugeVec,
}

impl QualityGauges {
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let g =
            |name, help, labels: &[&str]| crate::metrics::gauge_vec(registry, name, help, labels);
        Ok(Self {
            verdict: g("flywheel_quality_verdict", "Data-quality verdict of the newest quality window: 0 pass, 1 warn (a warn-severity rule was violated), 2 fail (a fail-severity rule was violated).", &["model"])?,
            violations: g("flywheel_quality_violations", "Violations of a data-quality rule in the newest quality window (features, or event types for freshness and volume).", &["model", "rule"])?,
            checked: g("flywheel_quality_checked", "Evaluations of a data-quality rule in the newest quality window (features, or event types, with enough values to decide).", &["model", "rule"])?,
            violation_ratio: g("flywheel_quality_violation_ratio", "flywheel_quality_violations divided by flywheel_quality_checked (absent when nothing was checked).", &["model", "rule"])?,
        })
    }

    /// Export one model's verdict; ratios without a value are removed, not left stale.
    pub fn publish(&self, model: &str, v: &Verdict) {
        self.verdict
            .with_label_values(&[model])
            .set(v.verdict.code());
        for t in &v.rules {
            let labels = [model, t.rule.as_str()];
            self.violations
                .with_label_values(&labels)
                .set(t.violations as f64);
            self.checked
                .with_label_values(&labels)
                .set(t.evaluated as f64);
            if t.evaluated > 0 {
                self.violation_ratio
                    .with_label_values(&labels)
                    .set(t.violations as f64 / t.evaluated as f64);
            } else {
                let _ = self.violation_ratio.remove_label_values(&labels);
            }
        }
    }
}
