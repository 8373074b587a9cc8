//! Flywheel health for one model as of the end of a complete day: feedback volume and rate,
//! improvement velocity, engagement uplift, retention, the data funnel, and the state of each
//! arc of the loop (input, learning, output, loop). Pure: stored data in, a [`Health`] out
//! (the health job in [`super::job`] loads the data, stores the result and exports metrics).
//!
//! Definitions (docs/STATISTICS.md, flywheel health), with what the stored summaries allow:
//! * **Week** = the 7 complete UTC days before the window end; week-over-week compares it with
//!   the 7 days before (complete periods only).
//! * **Explicit feedback rate** = explicit feedback events / interactions in the week, with a
//!   Wilson 95 % interval. Feedback is counted per event (deduplicated by `event_id`), not per
//!   distinct interaction: a user who votes twice on one interaction counts twice, so the rate
//!   is an upper bound of "interactions with feedback" (capped at 1). **Implicit coverage** is
//!   the same ratio for implicit signals.
//! * **Positive share** = explicit feedback values > 0 / explicit feedback values (from the
//!   quantile sketches: exact up to k values per summary, within the sketch's rank error after).
//! * **Usable volume** = items reaching `curated` in the data funnel.
//! * **Velocity**: Theil–Sen slope of the primary metric (sign-flipped when lower is better)
//!   over the last `k` cycles of the latest evaluation set, per cycle and per day, each with
//!   Sen's 90 % interval; gain per 1,000 new examples (mean of Δq / (new/1000)); loop latency =
//!   deploy time − data cutoff, per cycle whose version was deployed. A new evaluation set
//!   restarts the series.
//! * **Uplift**: the current version (latest first seen) against the previous one over each
//!   version's traffic in the lookback, per engagement signal: two-proportion z for 0/1 signals,
//!   Welch t from the summaries' moments otherwise; `insufficient_data` below `min_samples` a
//!   side. Observational (before/after): no randomisation is assumed.
//! * **Retention**: D1, D7, D30 ("return on") pooled over first-activity cohorts whose day N is
//!   complete, weekly cohort matrix (Monday-aligned), DAU/MAU stickiness over the week (MAU = 28
//!   days); cohorts and ratios over fewer than `k_anonymity` users are suppressed and flagged.
//! * **Funnel** (lookback): stage counts, conversions, yield = used / collected, hoarding index
//!   = 1 − used / collected-before-the-latest-data-cutoff, and `used_in_training` items without
//!   training consent (a hard violation).
//! * **Arcs** (the plateau rule of [`super::plateau`], replayed over the series so that the
//!   result is a pure function of the data):
//!   input = weekly usable volume (curated; feedback events when no funnel data), δ_min = 0,
//!   and PLATEAU at once when the last week falls below 70 % of the 4 weeks before with a
//!   Poisson lower tail < 0.01 (starvation);
//!   learning = the primary metric per cycle, δ_min configured or defaulted (the window and the
//!   recent view of [`super::plateau`]: PLATEAU within 3 cycles of a flattening, REGRESSING
//!   within 2 of a decline, on series whose noise is a tenth of their early gains);
//!   output = per-release uplift of the positive share: PLATEAU when the last 3 releases' upper
//!   bounds are below `uplift_delta_min`, REGRESSING when the latest is significantly negative,
//!   SLOWING when it is not significantly positive;
//!   loop = REGRESSING when weekly D7 retention regresses, SLOWING when loop latency trends up.

mod arcs;
mod feedback;
mod funnel;
mod retention;
mod segments;
mod uplift;
mod velocity;

use super::learning_curve;
use super::plateau::{self, ArcState, Evaluation};
use crate::events::Event;
use crate::store::{BucketCount, FunnelCount, SummaryRow};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const DAY: i64 = 86_400;
const WEEK: i64 = 7 * DAY;

/// `[health]` in the config file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Run the health job at all.
    pub enabled: bool,
    /// When the health job runs (cron, UTC). It covers the days complete at that time.
    pub schedule: String,
    /// Cycles in the velocity and plateau window.
    pub k: usize,
    /// The evaluation metric that measures the model; empty: the first metric of the latest
    /// evaluation.
    pub primary_metric: String,
    /// Minimum worthwhile gain per cycle, per metric; unset: 0.1 × the median gain of the
    /// first k cycles (reported as defaulted).
    pub delta_min: BTreeMap<String, f64>,
    /// Minimum worthwhile uplift of the positive share per release (output arc).
    pub uplift_delta_min: f64,
    /// Smallest relative change of a segment's explicit feedback rate, week over week, that is
    /// reported as `fell` or `rose` (it must also be significant, q ≤ 0.01 across segments).
    pub segment_min_change: f64,
    /// Engagement signals compared between versions; empty: every feedback signal seen (the 10
    /// most frequent).
    pub engagement: Vec<String>,
    /// Fewer values than this on a side: uplift and rates say `insufficient_data`.
    pub min_samples: u64,
    /// Cohorts and retention ratios over fewer users are suppressed.
    pub k_anonymity: u64,
    /// How far back the job reads (days).
    pub lookback_days: u32,
    /// Missed runs caught up after downtime.
    pub max_catch_up: usize,
    /// `[performance]` when the performance job is enabled (set by the config, not read from
    /// `[health]`): the output arc and the report read model performance with it.
    #[serde(skip)]
    pub performance: Option<crate::performance::PerformanceConfig>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            schedule: "0 15 0 * * *".into(),
            k: plateau::DEFAULT_K,
            primary_metric: String::new(),
            delta_min: BTreeMap::new(),
            uplift_delta_min: 0.005,
            segment_min_change: 0.2,
            engagement: Vec::new(),
            min_samples: 100,
            k_anonymity: 10,
            lookback_days: 90,
            max_catch_up: 7,
            performance: None,
        }
    }
}

impl HealthConfig {
    pub fn check(&self, errors: &mut Vec<String>) {
        if self.k < plateau::MIN_POINTS {
            errors.push(format!(
                "health.k: {} is below the minimum of {}",
                self.k,
                plateau::MIN_POINTS
            ));
        }
        if !(self.segment_min_change >= 0.0 && self.segment_min_change.is_finite()) {
            errors.push("health.segment_min_change: must be a non-negative number".into());
        }
        if !(self.uplift_delta_min >= 0.0 && self.uplift_delta_min.is_finite()) {
            errors.push("health.uplift_delta_min: must be a non-negative number".into());
        }
        for (m, d) in &self.delta_min {
            if !(d.is_finite() && *d >= 0.0) {
                errors.push(format!(
                    "health.delta_min.{m}: must be a non-negative number"
                ));
            }
        }
        if self.min_samples == 0 {
            errors.push("health.min_samples: must be at least 1".into());
        }
        if self.k_anonymity == 0 {
            errors.push("health.k_anonymity: must be at least 1".into());
        }
        if !(14..=400).contains(&self.lookback_days) {
            errors.push("health.lookback_days: must be between 14 and 400".into());
        }
    }
}

/// Everything the computation reads for one model.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// Window end (seconds, start of a UTC day): everything before it is complete.
    pub end: i64,
    /// Event counts over the lookback.
    pub counts: Vec<BucketCount>,
    /// Feedback summaries (explicit and implicit) over the lookback.
    pub feedback: Vec<SummaryRow>,
    /// Per-segment counts of interactions and feedback (class `segment_counts`) over the
    /// lookback.
    pub segment_counts: Vec<SummaryRow>,
    /// Data-funnel counts over the lookback.
    pub funnel: Vec<FunnelCount>,
    /// Evaluations and deploys (all stored; those at or after `end` are ignored).
    pub evals: Vec<Event>,
    pub deploys: Vec<Event>,
    /// (day number, user) pairs over the lookback.
    pub activity: Vec<(i64, u64)>,
    /// (day number, user) of events sent with `consent.training = false`, over the lookback.
    pub withdrawals: Vec<(i64, u64)>,
    /// Model performance as of `end`, when outcomes were sent and the performance job is on.
    pub performance: Option<crate::performance::Performance>,
}

/// A rate with its Wilson interval, or why there is none.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Rate {
    pub numerator: u64,
    pub denominator: u64,
    pub estimate: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    /// `ok`, or `insufficient_data` below the minimum sample size.
    pub status: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SignalVolume {
    pub kind: &'static str,
    pub signal: String,
    pub events_7d: u64,
    pub events_prev_7d: u64,
    pub change: Option<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Feedback {
    pub interactions_7d: u64,
    pub interactions_prev_7d: u64,
    pub explicit_7d: u64,
    pub explicit_prev_7d: u64,
    pub implicit_7d: u64,
    pub implicit_prev_7d: u64,
    pub usable_7d: u64,
    pub usable_prev_7d: u64,
    pub explicit_rate: Rate,
    pub implicit_coverage: Rate,
    pub positive_share: Rate,
    /// Week-over-week relative change (complete weeks).
    pub change: BTreeMap<&'static str, Option<f64>>,
    pub by_signal: Vec<SignalVolume>,
    /// Per model version: interactions, explicit rate, positive share over the week.
    pub by_version: Vec<VersionFeedback>,
    /// Per segment (`key=value` of `ingest.segment_keys`): the explicit feedback rate this week
    /// against the week before; segments whose rate fell first.
    pub by_segment: Vec<SegmentFeedback>,
}

/// One segment's explicit feedback rate, this week against the week before.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SegmentFeedback {
    /// `key=value` (`(other)` for the values past `ingest.segment_values`).
    pub segment: String,
    pub interactions_7d: u64,
    pub interactions_prev_7d: u64,
    pub explicit_rate: Rate,
    pub explicit_rate_prev: Rate,
    pub positive_share: Rate,
    /// Relative change of the rate, `current / previous − 1`.
    pub change: Option<f64>,
    /// Rate this week − the week before (two-proportion z-test), its p-value, and the
    /// Benjamini–Hochberg q-value across the model's segments.
    pub difference: Option<f64>,
    pub p_value: Option<f64>,
    pub q_value: Option<f64>,
    /// `fell` or `rose` (q ≤ 0.01 and a relative change of at least
    /// `health.segment_min_change`), `steady`, or `insufficient_data` (fewer than
    /// `min_samples` interactions in a week).
    pub decision: &'static str,
}

/// One model version's feedback over the week.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VersionFeedback {
    pub version: String,
    pub interactions_7d: u64,
    pub explicit_rate: Rate,
    pub positive_share: Rate,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Slope {
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Velocity {
    pub metric: Option<String>,
    pub eval_set: Option<String>,
    /// Evaluations in the series (this evaluation set).
    pub cycles: usize,
    /// (cycle, value as measured) over the series.
    pub series: Vec<(u64, f64)>,
    /// Whether a larger value of the metric is better (the arcs flip it when not).
    pub higher_is_better: bool,
    pub per_cycle: Option<Slope>,
    pub per_day: Option<Slope>,
    pub gain_per_1k_examples: Option<f64>,
    pub loop_latency_seconds: Option<f64>,
    pub loop_latency_series: Vec<f64>,
    /// The learning curve over every evaluation of the set that says how many examples its
    /// model was trained on (`train_data.total_examples`), and what the next cycle and twice the
    /// data are expected to bring ([`super::learning_curve`]).
    pub learning_curve: learning_curve::Forecast,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UpliftMetric {
    pub metric: String,
    /// `two_proportion_z` or `welch_t`.
    pub test: &'static str,
    pub previous: Option<f64>,
    pub current: Option<f64>,
    pub difference: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub p_value: Option<f64>,
    pub n_previous: u64,
    pub n_current: u64,
    /// `better`, `worse`, `no_difference` or `insufficient_data`.
    pub decision: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Uplift {
    pub current_version: Option<String>,
    pub previous_version: Option<String>,
    pub observational: bool,
    pub metrics: Vec<UpliftMetric>,
    /// Positive-share uplift of each release against the one before, oldest first.
    pub releases: Vec<(String, UpliftMetric)>,
    /// Positive-share uplift of the current version against the previous one in each segment.
    pub by_segment: Vec<(String, UpliftMetric)>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Retained {
    pub days: i64,
    pub value: Option<f64>,
    pub numerator: u64,
    pub denominator: u64,
    pub suppressed: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Retention {
    pub d1: Retained,
    pub d7: Retained,
    pub d30: Retained,
    pub stickiness: Option<f64>,
    pub dau: usize,
    pub mau: usize,
    /// Weekly cohorts (Monday-aligned), offsets 0..=7; `None` cells are incomplete or
    /// suppressed.
    pub weekly_cohorts: Vec<crate::flywheel::retention::CohortRow>,
    /// Pooled D7 per weekly cohort (complete ones), oldest first: the loop arc's series.
    pub d7_by_week: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Funnel {
    pub stages: BTreeMap<&'static str, u64>,
    pub conversions: BTreeMap<&'static str, Option<f64>>,
    pub yield_ratio: Option<f64>,
    pub hoarding_index: Option<f64>,
    #[serde(serialize_with = "crate::clock::serde_as::opt_secs")]
    pub data_cutoff: Option<i64>,
    pub training_consent_violations: u64,
    /// Users who withdrew training consent (`consent.training = false`) after some of their
    /// data had been collected before the latest training data cutoff, and their active days
    /// before that cutoff and before the withdrawal: data already used in training whose consent
    /// was taken back.
    pub withdrawn_after_training_users: u64,
    pub withdrawn_after_training_user_days: u64,
    pub top_failure_reasons: Vec<(String, u64)>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Arc {
    pub state: ArcState,
    /// The figures behind the state, in words.
    pub why: String,
    /// When the slowdown started (RFC 3339 or a cycle), where a changepoint was found.
    pub since: Option<String>,
    pub advice: &'static str,
    pub evaluation: Option<Evaluation>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Health {
    pub model: String,
    #[serde(serialize_with = "crate::clock::serde_as::secs")]
    pub window_end: i64,
    pub feedback: Feedback,
    pub velocity: Velocity,
    pub uplift: Uplift,
    pub retention: Retention,
    pub funnel: Funnel,
    pub arcs: BTreeMap<&'static str, Arc>,
    /// The worst arc state; `OK` when every arc with data is OK.
    pub overall: ArcState,
    /// One line a person can read.
    pub verdict: String,
}

/// Numeric code of a state for the `flywheel_arc_state` gauge.
pub fn state_code(s: ArcState) -> f64 {
    match s {
        ArcState::Insufficient => -1.0,
        ArcState::Ok => 0.0,
        ArcState::Slowing => 1.0,
        ArcState::Plateau => 2.0,
        ArcState::Regressing => 3.0,
    }
}

/// Compute the health of one model.
pub fn compute(model: &str, cfg: &HealthConfig, inp: &Inputs) -> Health {
    let (feedback, tallies) = feedback::feedback(cfg, inp);
    let velocity = velocity::velocity(cfg, inp);
    let uplift = uplift::uplift(cfg, inp, &tallies);
    let retention = retention::retention(cfg, inp);
    let funnel = funnel::funnel(inp);
    let (arcs, overall, verdict) = arcs::arcs(
        cfg,
        inp,
        &velocity,
        &uplift,
        &retention,
        funnel.training_consent_violations,
    );
    Health {
        model: model.to_owned(),
        window_end: inp.end,
        feedback,
        velocity,
        uplift,
        retention,
        funnel,
        arcs,
        overall,
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Body, EvalMetric, ModelRef, TrainData};

    fn eval(cycle: u64, day: i64, set: &str, value: f64, hib: bool, cutoff_day: i64) -> Event {
        Event {
            event_id: format!("e{cycle}{set}"),
            occurred_at_us: day * DAY * 1_000_000,
            model: ModelRef {
                id: "m".into(),
                version: format!("v{cycle}"),
            },
            user_key: None,
            consent_training: None,
            body: Body::ModelEval {
                cycle,
                eval_set: set.into(),
                metrics: vec![EvalMetric {
                    name: "loss".into(),
                    value,
                    higher_is_better: hib,
                }],
                train_data: Some(TrainData {
                    total_examples: Some(1000 * cycle),
                    new_examples: Some(1000),
                    feedback_examples: None,
                    data_cutoff_at: Some(cutoff_day * DAY * 1_000_000),
                }),
            },
        }
    }

    fn deploy(cycle: u64, day: i64, hour: i64) -> Event {
        Event {
            event_id: format!("d{cycle}"),
            occurred_at_us: (day * DAY + hour * 3600) * 1_000_000,
            model: ModelRef {
                id: "m".into(),
                version: format!("v{cycle}"),
            },
            user_key: None,
            consent_training: None,
            body: Body::Deploy { traffic_share: 1.0 },
        }
    }

    #[test]
    fn lower_is_better_metrics_are_oriented_and_a_new_eval_set_restarts_the_series() {
        // A loss falling 0.01 a cycle on set A (10 cycles), then 3 cycles on set B.
        let mut evals: Vec<Event> = (1..=10)
            .map(|c| eval(c, c as i64, "A", 1.0 - 0.01 * c as f64, false, c as i64 - 1))
            .collect();
        evals.extend((11..=13).map(|c| eval(c, c as i64, "B", 0.5, false, c as i64 - 1)));
        let mut inp = Inputs {
            end: 20 * DAY,
            evals,
            ..Default::default()
        };
        let h = compute("m", &HealthConfig::default(), &inp);
        assert_eq!(h.velocity.eval_set.as_deref(), Some("B"));
        assert_eq!(h.velocity.cycles, 3, "set B restarted the series");
        assert_eq!(h.arcs["learning"].state, ArcState::Insufficient);
        // Only set A: improving (the loss falls, so the oriented slope is +0.01 per cycle).
        inp.evals
            .retain(|e| matches!(&e.body, Body::ModelEval { eval_set, .. } if eval_set == "A"));
        let h = compute("m", &HealthConfig::default(), &inp);
        let s = h.velocity.per_cycle.expect("slope");
        assert!((s.estimate - 0.01).abs() < 1e-9, "{s:?}");
        assert!((s.estimate - 0.01).abs() < 1e-9 && s.lower <= s.estimate && s.estimate <= s.upper);
        assert!((h.velocity.gain_per_1k_examples.expect("gain") - 0.01).abs() < 1e-9);
        assert_eq!(h.arcs["learning"].state, ArcState::Ok);
        // Per day: one cycle a day, so the same slope.
        assert!((h.velocity.per_day.expect("per day").estimate - 0.01).abs() < 1e-9);
        // One arc OK and three without data: the verdict does not call the flywheel turning.
        let insufficient = h
            .arcs
            .values()
            .filter(|a| a.state == ArcState::Insufficient)
            .count();
        assert_eq!(insufficient, 3, "{:?}", h.arcs);
        assert!(
            h.verdict
                .starts_with("Not enough data yet to say whether the flywheel is turning")
                && h.verdict.contains("learning OK so far"),
            "{}",
            h.verdict
        );
    }

    #[test]
    fn a_withdrawal_after_data_went_into_training_is_counted_against_that_data() {
        // Training data cut off at the start of day 7.
        let evals = vec![eval(1, 8, "A", 0.5, true, 7)];
        let activity = vec![
            // User 1: days 2 and 3 before the cutoff, day 9 after; withdrew on day 10.
            (2, 1),
            (3, 1),
            (9, 1),
            // User 2 withdrew on day 1, before any of their data was collected.
            (2, 2),
            // User 3: only after the cutoff (day 8), withdrew on day 9.
            (8, 3),
            // User 4 never withdrew.
            (5, 4),
        ];
        let withdrawals = vec![(10, 1), (12, 1), (1, 2), (9, 3)];
        let inp = Inputs {
            end: 20 * DAY,
            evals,
            activity,
            withdrawals,
            ..Default::default()
        };
        let h = compute("m", &HealthConfig::default(), &inp);
        assert_eq!(h.funnel.withdrawn_after_training_users, 1);
        assert_eq!(h.funnel.withdrawn_after_training_user_days, 2);
        // Without a training cutoff nothing is known to have been used.
        let inp = Inputs {
            evals: Vec::new(),
            ..inp
        };
        let h = compute("m", &HealthConfig::default(), &inp);
        assert_eq!(h.funnel.withdrawn_after_training_users, 0);
    }

    #[test]
    fn loop_latency_is_cutoff_to_deploy() {
        let evals: Vec<Event> = (1..=4)
            .map(|c| eval(c, 2 * c as i64, "A", 0.5, true, 2 * c as i64 - 1))
            .collect();
        // Deploys 1 day + c hours after each cutoff; the first deploy after the cutoff counts.
        let deploys: Vec<Event> = (1..=4).map(|c| deploy(c, 2 * c as i64, c as i64)).collect();
        let inp = Inputs {
            end: 20 * DAY,
            evals,
            deploys,
            ..Default::default()
        };
        let h = compute("m", &HealthConfig::default(), &inp);
        assert_eq!(
            h.velocity.loop_latency_series,
            vec![90_000.0, 93_600.0, 97_200.0, 100_800.0]
        );
        assert_eq!(h.velocity.loop_latency_seconds, Some(95_400.0));
    }

    #[test]
    fn nothing_yet_is_insufficient_not_ok() {
        let h = compute(
            "m",
            &HealthConfig::default(),
            &Inputs {
                end: 10 * DAY,
                ..Default::default()
            },
        );
        assert!(h.arcs.values().all(|a| a.state == ArcState::Insufficient));
        assert_eq!(h.overall, ArcState::Insufficient);
        assert!(h.verdict.starts_with("Not enough data"), "{}", h.verdict);
        assert_eq!(h.feedback.explicit_rate.status, "insufficient_data");
    }
}
