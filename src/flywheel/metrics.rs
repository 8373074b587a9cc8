//! The flywheel-health gauges: the health job's figures for the last complete day or week,
//! declared here next to the computation they export and registered in the application's one
//! registry. Names and help texts are listed in README.md (a test checks it).

use super::health::{state_code, Health};
use prometheus::{GaugeVec, Registry};
use std::collections::HashMap;
use std::sync::Mutex;

/// The flywheel-health gauges (the health job's figures for the last complete day or week).
pub struct HealthGauges {
    pub feedback_events: GaugeVec,
    pub feedback_rate: GaugeVec,
    pub feedback_rate_lower: GaugeVec,
    pub feedback_rate_upper: GaugeVec,
    pub positive_share: GaugeVec,
    pub usable_feedback: GaugeVec,
    pub feedback_change: GaugeVec,
    pub segments_feedback: GaugeVec,
    pub interactions: GaugeVec,
    pub velocity: GaugeVec,
    pub velocity_lower: GaugeVec,
    pub velocity_upper: GaugeVec,
    pub gain_per_1k: GaugeVec,
    pub expected_gain: GaugeVec,
    pub expected_gain_lower: GaugeVec,
    pub expected_gain_upper: GaugeVec,
    pub loop_latency: GaugeVec,
    pub eval_metric: GaugeVec,
    pub uplift: GaugeVec,
    pub uplift_lower: GaugeVec,
    pub uplift_upper: GaugeVec,
    pub retention: GaugeVec,
    pub stickiness: GaugeVec,
    pub funnel_conversion: GaugeVec,
    pub funnel_yield: GaugeVec,
    pub funnel_items: GaugeVec,
    pub hoarding: GaugeVec,
    pub consent_violations: GaugeVec,
    pub withdrawn_after_training: GaugeVec,
    pub arc_state: GaugeVec,
    /// model → engagement metric labels currently exported.
    uplift_series: Mutex<HashMap<String, Vec<String>>>,
}

impl HealthGauges {
    /// Declare the gauges in `registry` (the application's one registry).
    pub fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let g =
            |name, help, labels: &[&str]| crate::metrics::gauge_vec(registry, name, help, labels);
        Ok(Self {
            feedback_events: g("flywheel_feedback_events", "Feedback events over the last 7 complete days, by kind (explicit, implicit).", &["model", "kind"])?,
            feedback_rate: g("flywheel_feedback_rate_ratio", "Feedback events per interaction over the last 7 complete days, by kind (explicit: the explicit feedback rate; implicit: implicit coverage).", &["model", "kind"])?,
            feedback_rate_lower: g("flywheel_feedback_rate_ratio_lower", "Lower bound of the Wilson 95% interval of flywheel_feedback_rate_ratio.", &["model", "kind"])?,
            feedback_rate_upper: g("flywheel_feedback_rate_ratio_upper", "Upper bound of the Wilson 95% interval of flywheel_feedback_rate_ratio.", &["model", "kind"])?,
            positive_share: g("flywheel_positive_feedback_ratio", "Share of explicit feedback values > 0 over the last 7 complete days.", &["model"])?,
            usable_feedback: g("flywheel_usable_feedback_items", "Items that reached the curated stage of the data funnel over the last 7 complete days.", &["model"])?,
            feedback_change: g("flywheel_feedback_change_ratio", "Week-over-week relative change (last 7 complete days against the 7 before), by series (interactions, explicit_feedback, implicit_feedback, usable).", &["model", "series"])?,
            segments_feedback: g("flywheel_segments_feedback_changed", "Segments (ingest.segment_keys) whose explicit feedback rate fell or rose significantly over the last 7 complete days against the 7 before (q <= 0.01 across segments, relative change >= health.segment_min_change), by direction (fell, rose).", &["model", "direction"])?,
            interactions: g("flywheel_interactions", "Interactions over the last 7 complete days.", &["model"])?,
            velocity: g("flywheel_improvement_velocity", "Theil-Sen slope of the primary evaluation metric (oriented so that up is better) over the last k cycles, per cycle or per day.", &["model", "per"])?,
            velocity_lower: g("flywheel_improvement_velocity_lower", "Lower bound of Sen's 90% interval of flywheel_improvement_velocity.", &["model", "per"])?,
            velocity_upper: g("flywheel_improvement_velocity_upper", "Upper bound of Sen's 90% interval of flywheel_improvement_velocity.", &["model", "per"])?,
            gain_per_1k: g("flywheel_gain_per_1k_examples", "Mean gain of the primary metric per 1,000 new training examples over the last k cycles.", &["model"])?,
            expected_gain: g("flywheel_expected_gain", "Gain of the primary evaluation metric (as measured) that the learning curve expects from the next cycle or from twice the training data, by horizon (next_cycle, doubling).", &["model", "horizon"])?,
            expected_gain_lower: g("flywheel_expected_gain_lower", "Lower bound of the 90% bootstrap interval of flywheel_expected_gain.", &["model", "horizon"])?,
            expected_gain_upper: g("flywheel_expected_gain_upper", "Upper bound of the 90% bootstrap interval of flywheel_expected_gain.", &["model", "horizon"])?,
            loop_latency: g("flywheel_loop_latency_seconds", "Median time from a training data cutoff to the deploy of the model trained on it, over the last k cycles.", &["model"])?,
            eval_metric: g("flywheel_eval_metric", "The latest value of the primary evaluation metric.", &["model", "metric"])?,
            uplift: g("flywheel_engagement_uplift", "Difference of an engagement metric between the current and the previous model version (two-proportion or Welch).", &["model", "metric"])?,
            uplift_lower: g("flywheel_engagement_uplift_lower", "Lower bound of the 95% interval of flywheel_engagement_uplift.", &["model", "metric"])?,
            uplift_upper: g("flywheel_engagement_uplift_upper", "Upper bound of the 95% interval of flywheel_engagement_uplift.", &["model", "metric"])?,
            retention: g("flywheel_retention_ratio", "N-day retention (return on day N) pooled over complete daily cohorts, for N = 1, 7, 30.", &["model", "day"])?,
            stickiness: g("flywheel_stickiness_ratio", "Mean DAU over the last 7 complete days divided by the 28-day active users.", &["model"])?,
            funnel_conversion: g("flywheel_funnel_conversion_ratio", "Data-funnel conversion into a stage from the stage before it, over the lookback.", &["model", "stage"])?,
            funnel_yield: g("flywheel_funnel_yield_ratio", "Items used in training divided by items collected, over the lookback.", &["model"])?,
            funnel_items: g("flywheel_funnel_items", "Items per data-funnel stage over the lookback.", &["model", "stage"])?,
            hoarding: g("flywheel_hoarding_index_ratio", "Share of the data collected before the latest training cutoff that was never used in training.", &["model"])?,
            consent_violations: g("flywheel_training_consent_violations", "Items used in training without training consent (must be 0).", &["model"])?,
            withdrawn_after_training: g("flywheel_consent_withdrawn_after_training_users", "Users who withdrew training consent after data of theirs collected before the latest training data cutoff (data already used in training whose consent was taken back), over the lookback.", &["model"])?,
            arc_state: g("flywheel_arc_state", "State of an arc of the flywheel: -1 insufficient data, 0 OK, 1 SLOWING, 2 PLATEAU, 3 REGRESSING.", &["model", "arc"])?,
            uplift_series: Mutex::new(HashMap::new()),
        })
    }
}

impl HealthGauges {
    /// Export one model's health figures; figures without a value are removed, not left stale.
    /// `model` is the bounded label value of `h.model` ([`crate::metrics::Metrics::model_label`]).
    pub fn publish(&self, model: &str, h: &Health) {
        let m = model.to_owned();
        let g = self;
        let set = |v: &GaugeVec, labels: &[&str], x: Option<f64>| match x {
            Some(x) if x.is_finite() => v.with_label_values(labels).set(x),
            _ => {
                let _ = v.remove_label_values(labels);
            }
        };
        let f = &h.feedback;
        for (kind, n, r) in [
            ("explicit", f.explicit_7d, &f.explicit_rate),
            ("implicit", f.implicit_7d, &f.implicit_coverage),
        ] {
            set(&g.feedback_events, &[&m, kind], Some(n as f64));
            set(&g.feedback_rate, &[&m, kind], r.estimate);
            set(&g.feedback_rate_lower, &[&m, kind], r.lower);
            set(&g.feedback_rate_upper, &[&m, kind], r.upper);
        }
        set(&g.positive_share, &[&m], f.positive_share.estimate);
        set(&g.usable_feedback, &[&m], Some(f.usable_7d as f64));
        set(&g.interactions, &[&m], Some(f.interactions_7d as f64));
        for (series, c) in &f.change {
            set(&g.feedback_change, &[&m, series], *c);
        }
        for direction in ["fell", "rose"] {
            let n = f
                .by_segment
                .iter()
                .filter(|s| s.decision == direction)
                .count();
            set(&g.segments_feedback, &[&m, direction], Some(n as f64));
        }
        let v = &h.velocity;
        for (per, s) in [("cycle", &v.per_cycle), ("day", &v.per_day)] {
            set(&g.velocity, &[&m, per], s.as_ref().map(|s| s.estimate));
            set(&g.velocity_lower, &[&m, per], s.as_ref().map(|s| s.lower));
            set(&g.velocity_upper, &[&m, per], s.as_ref().map(|s| s.upper));
        }
        set(&g.gain_per_1k, &[&m], v.gain_per_1k_examples);
        let lc = &v.learning_curve;
        for (horizon, e) in [
            ("next_cycle", &lc.next_cycle_gain),
            ("doubling", &lc.doubling_gain),
        ] {
            set(&g.expected_gain, &[&m, horizon], e.map(|e| e.estimate));
            set(
                &g.expected_gain_lower,
                &[&m, horizon],
                e.and_then(|e| e.lower),
            );
            set(
                &g.expected_gain_upper,
                &[&m, horizon],
                e.and_then(|e| e.upper),
            );
        }
        set(&g.loop_latency, &[&m], v.loop_latency_seconds);
        if let Some(metric) = &v.metric {
            set(&g.eval_metric, &[&m, metric], v.series.last().map(|x| x.1));
        }
        {
            let mut series = self.uplift_series.lock().unwrap_or_else(|p| p.into_inner());
            for old in series.remove(&m).unwrap_or_default() {
                for gv in [&g.uplift, &g.uplift_lower, &g.uplift_upper] {
                    let _ = gv.remove_label_values(&[&m, &old]);
                }
            }
            let mut now = Vec::new();
            for u in h.uplift.metrics.iter().take(10) {
                set(&g.uplift, &[&m, &u.metric], u.difference);
                set(&g.uplift_lower, &[&m, &u.metric], u.lower);
                set(&g.uplift_upper, &[&m, &u.metric], u.upper);
                now.push(u.metric.clone());
            }
            series.insert(m.clone(), now);
        }
        let r = &h.retention;
        for (day, x) in [("1", &r.d1), ("7", &r.d7), ("30", &r.d30)] {
            set(&g.retention, &[&m, day], x.value);
        }
        set(&g.stickiness, &[&m], r.stickiness);
        for (stage, c) in &h.funnel.conversions {
            set(&g.funnel_conversion, &[&m, stage], *c);
        }
        for (stage, n) in &h.funnel.stages {
            set(&g.funnel_items, &[&m, stage], Some(*n as f64));
        }
        set(&g.funnel_yield, &[&m], h.funnel.yield_ratio);
        set(&g.hoarding, &[&m], h.funnel.hoarding_index);
        set(
            &g.consent_violations,
            &[&m],
            Some(h.funnel.training_consent_violations as f64),
        );
        set(
            &g.withdrawn_after_training,
            &[&m],
            Some(h.funnel.withdrawn_after_training_users as f64),
        );
        for (arc, a) in &h.arcs {
            set(&g.arc_state, &[&m, arc], Some(state_code(a.state)));
        }
    }
}
