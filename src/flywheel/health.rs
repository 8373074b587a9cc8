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

use super::learning_curve;
use super::plateau::{self, ArcState, Evaluation, Memory};
use super::retention::{self, Activity, Mode};
use crate::events::{Body, Event, EventType, Stage, NO_TRAINING_CONSENT};
use crate::stats::inference::{self, Interval};
use crate::stats::trend::{mann_kendall, sen_slope_xy};
use crate::store::{BucketCount, FunnelCount, SummaryRow};
use crate::summary::delta::SeriesClass;
use crate::summary::FeatureSummary;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

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
            engagement: Vec::new(),
            min_samples: 100,
            k_anonymity: 10,
            lookback_days: 90,
            max_catch_up: 7,
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
    /// Data-funnel counts over the lookback.
    pub funnel: Vec<FunnelCount>,
    /// Evaluations and deploys (all stored; those at or after `end` are ignored).
    pub evals: Vec<Event>,
    pub deploys: Vec<Event>,
    /// (day number, user) pairs over the lookback.
    pub activity: Vec<(i64, u64)>,
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

fn rate(num: u64, den: u64, min: u64) -> Rate {
    let num = num.min(den);
    let iv: Option<Interval> = inference::wilson(num, den, 0.95).ok();
    Rate {
        numerator: num,
        denominator: den,
        estimate: iv.map(|i| i.estimate),
        lower: iv.map(|i| i.lower),
        upper: iv.map(|i| i.upper),
        status: if den >= min {
            "ok"
        } else {
            "insufficient_data"
        },
    }
}

/// Relative change `cur / prev − 1`, when `prev > 0`.
fn change(cur: u64, prev: u64) -> Option<f64> {
    (prev > 0).then(|| cur as f64 / prev as f64 - 1.0)
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
    pub by_version: Vec<Value>,
}

type Value = serde_json::Value;

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
    pub weekly_cohorts: Vec<retention::CohortRow>,
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

fn severity(s: ArcState) -> u8 {
    match s {
        ArcState::Insufficient => 0,
        ArcState::Ok => 1,
        ArcState::Slowing => 2,
        ArcState::Plateau => 3,
        ArcState::Regressing => 4,
    }
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

fn rfc(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// Replay the plateau rule over every prefix of `series` (a pure function of the series).
pub fn replay(series: &[f64], delta_min: Option<f64>, k: usize) -> Option<Evaluation> {
    let mut mem = Memory::default();
    let mut last = None;
    for n in plateau::MIN_POINTS.min(series.len())..=series.len() {
        if n == 0 {
            continue;
        }
        let ev = plateau::evaluate(&series[..n], delta_min, k, mem);
        mem = ev.memory;
        last = Some(ev);
    }
    last
}

/// Count of values > 0 in a summary (exact while the sketch is exact).
fn positives(s: &FeatureSummary) -> u64 {
    let n = s.moments.n;
    if n == 0 {
        return 0;
    }
    let le0 = (s.sketch.cdf(0.0) * n as f64).round() as u64;
    n.saturating_sub(le0)
}

fn merge_into(map: &mut BTreeMap<String, FeatureSummary>, key: &str, s: &FeatureSummary) {
    match map.get_mut(key) {
        Some(m) => m.merge(s),
        None => {
            map.insert(key.to_owned(), s.clone());
        }
    }
}

fn is_binary(s: &FeatureSummary) -> bool {
    s.moments.n > 0
        && s.sketch
            .weighted_items()
            .iter()
            .all(|(x, _)| *x == 0.0 || *x == 1.0)
}

fn uplift_metric(
    metric: &str,
    prev: &FeatureSummary,
    cur: &FeatureSummary,
    min: u64,
    positive_share: bool,
) -> UpliftMetric {
    let (n1, n2) = (prev.moments.n, cur.moments.n);
    let mut u = UpliftMetric {
        metric: metric.to_owned(),
        test: "welch_t",
        previous: None,
        current: None,
        difference: None,
        lower: None,
        upper: None,
        p_value: None,
        n_previous: n1,
        n_current: n2,
        decision: "insufficient_data",
    };
    let result = if positive_share || is_binary(prev) && is_binary(cur) {
        u.test = "two_proportion_z";
        let (x1, x2) = if positive_share {
            (positives(prev), positives(cur))
        } else {
            (
                (prev.moments.mean * n1 as f64).round() as u64,
                (cur.moments.mean * n2 as f64).round() as u64,
            )
        };
        if n1 > 0 && n2 > 0 {
            u.previous = Some(x1 as f64 / n1 as f64);
            u.current = Some(x2 as f64 / n2 as f64);
        }
        inference::two_proportions(x1, n1, x2, n2, 0.95)
    } else {
        if n1 > 0 && n2 > 0 {
            u.previous = Some(prev.moments.mean);
            u.current = Some(cur.moments.mean);
        }
        inference::welch_from_moments(
            (
                n1 as f64,
                prev.moments.mean,
                prev.moments.variance_sample().unwrap_or(0.0),
            ),
            (
                n2 as f64,
                cur.moments.mean,
                cur.moments.variance_sample().unwrap_or(0.0),
            ),
            0.95,
        )
    };
    if n1 < min || n2 < min {
        return u;
    }
    if let Ok(d) = result {
        u.difference = Some(d.difference);
        u.lower = Some(d.lower);
        u.upper = Some(d.upper);
        u.p_value = Some(d.p_value);
        u.decision = if d.lower > 0.0 {
            "better"
        } else if d.upper < 0.0 {
            "worse"
        } else {
            "no_difference"
        };
    }
    u
}

/// Compute the health of one model.
pub fn compute(model: &str, cfg: &HealthConfig, inp: &Inputs) -> Health {
    let end = inp.end;
    let week = (end - WEEK, end);
    let prev_week = (end - 2 * WEEK, end - WEEK);
    let in_range = |t: i64, r: (i64, i64)| t >= r.0 && t < r.1;

    // ---- feedback volume and rate ----
    let count_in = |et: EventType, r: (i64, i64)| -> u64 {
        inp.counts
            .iter()
            .filter(|c| c.event_type == et && in_range(c.bucket, r))
            .map(|c| c.n)
            .sum()
    };
    let mut signals: BTreeMap<(SeriesClass, String), (u64, u64)> = BTreeMap::new();
    let mut explicit_week = FeatureSummary::default();
    // version → explicit summary over the week; version → signal → summary over the lookback.
    let mut by_version_week: BTreeMap<String, FeatureSummary> = BTreeMap::new();
    let mut by_version_all: BTreeMap<String, BTreeMap<String, FeatureSummary>> = BTreeMap::new();
    let mut explicit_by_version: BTreeMap<String, FeatureSummary> = BTreeMap::new();
    for r in inp.feedback.iter().filter(|r| r.bucket < end) {
        let slot = signals.entry((r.class, r.name.clone())).or_default();
        if in_range(r.bucket, week) {
            slot.0 += r.summary.moments.n;
        } else if in_range(r.bucket, prev_week) {
            slot.1 += r.summary.moments.n;
        }
        if r.class == SeriesClass::FeedbackExplicit {
            if in_range(r.bucket, week) {
                explicit_week.merge(&r.summary);
                merge_into(&mut by_version_week, &r.version, &r.summary);
            }
            merge_into(&mut explicit_by_version, &r.version, &r.summary);
        }
        merge_into(
            by_version_all.entry(r.version.clone()).or_default(),
            &r.name,
            &r.summary,
        );
    }
    let sum_class = |c: SeriesClass, cur: bool| -> u64 {
        signals
            .iter()
            .filter(|((cl, _), _)| *cl == c)
            .map(|(_, v)| if cur { v.0 } else { v.1 })
            .sum()
    };
    let funnel_in = |st: Stage, r: (i64, i64)| -> u64 {
        inp.funnel
            .iter()
            .filter(|f| f.stage == st && in_range(f.day, r))
            .map(|f| f.n)
            .sum()
    };
    let interactions_7d = count_in(EventType::Interaction, week);
    let interactions_prev_7d = count_in(EventType::Interaction, prev_week);
    let (explicit_7d, explicit_prev_7d) = (
        sum_class(SeriesClass::FeedbackExplicit, true),
        sum_class(SeriesClass::FeedbackExplicit, false),
    );
    let (implicit_7d, implicit_prev_7d) = (
        sum_class(SeriesClass::FeedbackImplicit, true),
        sum_class(SeriesClass::FeedbackImplicit, false),
    );
    let usable_7d = funnel_in(Stage::Curated, week);
    let usable_prev_7d = funnel_in(Stage::Curated, prev_week);
    let min = cfg.min_samples;
    let interactions_by_version = |v: &str| -> u64 {
        inp.counts
            .iter()
            .filter(|c| {
                c.event_type == EventType::Interaction && c.version == v && in_range(c.bucket, week)
            })
            .map(|c| c.n)
            .sum()
    };
    let by_version: Vec<Value> = by_version_week
        .iter()
        .map(|(v, s)| {
            let n = interactions_by_version(v);
            json!({
                "version": v,
                "interactions_7d": n,
                "explicit_rate": rate(s.moments.n, n, min),
                "positive_share": rate(positives(s), s.moments.n, min),
            })
        })
        .collect();
    let feedback = Feedback {
        interactions_7d,
        interactions_prev_7d,
        explicit_7d,
        explicit_prev_7d,
        implicit_7d,
        implicit_prev_7d,
        usable_7d,
        usable_prev_7d,
        explicit_rate: rate(explicit_7d, interactions_7d, min),
        implicit_coverage: rate(implicit_7d, interactions_7d, min),
        positive_share: rate(positives(&explicit_week), explicit_week.moments.n, min),
        change: [
            (
                "interactions",
                change(interactions_7d, interactions_prev_7d),
            ),
            ("explicit_feedback", change(explicit_7d, explicit_prev_7d)),
            ("implicit_feedback", change(implicit_7d, implicit_prev_7d)),
            ("usable", change(usable_7d, usable_prev_7d)),
        ]
        .into_iter()
        .collect(),
        by_signal: signals
            .iter()
            .map(|((c, name), (cur, prev))| SignalVolume {
                kind: if *c == SeriesClass::FeedbackExplicit {
                    "explicit"
                } else {
                    "implicit"
                },
                signal: name.clone(),
                events_7d: *cur,
                events_prev_7d: *prev,
                change: change(*cur, *prev),
            })
            .collect(),
        by_version,
    };

    // ---- velocity ----
    let velocity = velocity(cfg, inp);

    // ---- uplift ----
    // Versions by first interaction seen (deploys when no interactions).
    let mut first_seen: BTreeMap<String, i64> = BTreeMap::new();
    for c in inp.counts.iter().filter(|c| c.bucket < end) {
        let e = first_seen.entry(c.version.clone()).or_insert(i64::MAX);
        *e = (*e).min(c.first_us);
    }
    let mut versions: Vec<(i64, String)> = first_seen.into_iter().map(|(v, t)| (t, v)).collect();
    versions.sort();
    let empty = FeatureSummary::default();
    let releases: Vec<(String, UpliftMetric)> = versions
        .windows(2)
        .map(|w| {
            let (p, c) = (&w[0].1, &w[1].1);
            let m = uplift_metric(
                "positive_share",
                explicit_by_version.get(p).unwrap_or(&empty),
                explicit_by_version.get(c).unwrap_or(&empty),
                min,
                true,
            );
            (c.clone(), m)
        })
        .collect();
    let (previous_version, current_version) = match versions.len() {
        0 => (None, None),
        1 => (None, Some(versions[0].1.clone())),
        n => (
            Some(versions[n - 2].1.clone()),
            Some(versions[n - 1].1.clone()),
        ),
    };
    let mut metrics = Vec::new();
    if let (Some(p), Some(c)) = (&previous_version, &current_version) {
        if let Some((_, m)) = releases.last() {
            metrics.push(m.clone());
        }
        let names: Vec<String> = if cfg.engagement.is_empty() {
            let mut all: Vec<(u64, String)> = signals
                .iter()
                .map(|((_, name), (a, b))| (a + b, name.clone()))
                .collect();
            all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            all.dedup_by(|a, b| a.1 == b.1);
            all.into_iter().take(10).map(|x| x.1).collect()
        } else {
            cfg.engagement.clone()
        };
        for name in names {
            let get = |v: &str| by_version_all.get(v).and_then(|m| m.get(&name));
            metrics.push(uplift_metric(
                &name,
                get(p).unwrap_or(&empty),
                get(c).unwrap_or(&empty),
                min,
                false,
            ));
        }
    }
    let uplift = Uplift {
        current_version,
        previous_version,
        observational: true,
        metrics,
        releases,
    };

    // ---- retention ----
    let activity = Activity::from_pairs(inp.activity.iter().copied());
    let last_day = end / DAY - 1;
    let kmin = cfg.k_anonymity;
    let retained = |n: i64| {
        let r = retention::n_day(&activity, n, last_day, Mode::ReturnOn);
        let suppressed = r.denominator < kmin;
        Retained {
            days: n,
            value: if suppressed { None } else { r.value() },
            numerator: if suppressed { 0 } else { r.numerator },
            denominator: r.denominator,
            suppressed,
        }
    };
    // Weekly cohorts aligned to Mondays (day 4 of the epoch was a Monday).
    let monday = |d: i64| d - (d - 4).rem_euclid(7);
    let origin = monday(last_day - 7 * 8);
    let in_window: Activity =
        Activity::from_pairs(inp.activity.iter().copied().filter(|(d, _)| *d >= origin));
    let weekly_cohorts = retention::cohort_matrix(&in_window, origin, 7, 7, last_day, kmin);
    let d7_by_week: Vec<f64> = {
        // Pooled D7 of each weekly cohort whose day 7 is complete.
        let mut by_week: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
        let mut days_of: BTreeMap<u64, BTreeSet<i64>> = BTreeMap::new();
        for (d, u) in &inp.activity {
            days_of.entry(*u).or_default().insert(*d);
        }
        for days in days_of.values() {
            let Some(&first) = days.iter().next() else {
                continue;
            };
            if first + 7 > last_day {
                continue;
            }
            let w = monday(first);
            let e = by_week.entry(w).or_default();
            e.1 += 1;
            e.0 += u64::from(days.contains(&(first + 7)));
        }
        by_week
            .values()
            .filter(|(_, n)| *n >= kmin)
            .map(|(r, n)| *r as f64 / *n as f64)
            .collect()
    };
    let dau_week: Vec<usize> = (last_day - 6..=last_day)
        .map(|d| activity.active_on(d))
        .collect();
    let mau = activity.active_within(last_day, 28);
    let retention = Retention {
        d1: retained(1),
        d7: retained(7),
        d30: retained(30),
        stickiness: if (mau as u64) < kmin {
            None
        } else {
            retention::stickiness(&activity, last_day - 6, last_day, 28)
        },
        dau: dau_week.last().copied().unwrap_or(0),
        mau,
        weekly_cohorts,
        d7_by_week,
    };

    // ---- funnel ----
    let mut stages: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let mut violations = 0u64;
    for f in inp.funnel.iter().filter(|f| f.day < end) {
        *stages.entry(f.stage.as_str()).or_insert(0) += f.n;
        if f.stage == Stage::QualityFailed && !f.reason.is_empty() {
            *failures.entry(f.reason.clone()).or_insert(0) += f.n;
        }
        if f.stage == Stage::UsedInTraining && f.reason == NO_TRAINING_CONSENT {
            violations += f.n;
        }
    }
    let st = |s: Stage| stages.get(s.as_str()).copied().unwrap_or(0);
    let conv = |a: Stage, b: Stage| {
        let d = st(a);
        (d > 0).then(|| st(b) as f64 / d as f64)
    };
    let data_cutoff = inp
        .evals
        .iter()
        .filter(|e| e.occurred_at_secs() < end)
        .filter_map(|e| match &e.body {
            Body::ModelEval {
                train_data: Some(t),
                ..
            } => t.data_cutoff_at.map(|us| us.div_euclid(1_000_000)),
            _ => None,
        })
        .max();
    let hoarding_index = data_cutoff.and_then(|cut| {
        let before: u64 = inp
            .funnel
            .iter()
            .filter(|f| f.stage == Stage::Collected && f.day < cut)
            .map(|f| f.n)
            .sum();
        (before > 0).then(|| 1.0 - st(Stage::UsedInTraining).min(before) as f64 / before as f64)
    });
    let mut top_failure_reasons: Vec<(String, u64)> = failures.into_iter().collect();
    top_failure_reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top_failure_reasons.truncate(5);
    let funnel = Funnel {
        conversions: [
            (
                "quality_passed",
                conv(Stage::Collected, Stage::QualityPassed),
            ),
            ("consented", conv(Stage::QualityPassed, Stage::Consented)),
            ("curated", conv(Stage::Consented, Stage::Curated)),
            (
                "used_in_training",
                conv(Stage::Curated, Stage::UsedInTraining),
            ),
        ]
        .into_iter()
        .collect(),
        yield_ratio: conv(Stage::Collected, Stage::UsedInTraining),
        stages,
        hoarding_index,
        data_cutoff,
        training_consent_violations: violations,
        top_failure_reasons,
    };

    // ---- arcs ----
    let mut arcs = BTreeMap::new();
    arcs.insert("input", input_arc(inp, end));
    arcs.insert("learning", learning_arc(cfg, &velocity));
    arcs.insert("output", output_arc(cfg, &uplift));
    arcs.insert("loop", loop_arc(&velocity, &retention));
    let overall = arcs
        .values()
        .map(|a| a.state)
        .max_by_key(|s| severity(*s))
        .unwrap_or(ArcState::Insufficient);
    let stalled: Vec<String> = arcs
        .iter()
        .filter(|(_, a)| severity(a.state) >= 2)
        .map(|(n, a)| format!("{n} {:?}", a.state).to_uppercase())
        .collect();
    let verdict = if violations > 0 {
        format!(
            "PRIVACY VIOLATION: {violations} items used in training without training consent; stop the training pipeline and purge them"
        )
    } else if stalled.is_empty() {
        let unknown: Vec<&str> = arcs
            .iter()
            .filter(|(_, a)| a.state == ArcState::Insufficient)
            .map(|(n, _)| *n)
            .collect();
        let ok: Vec<&str> = arcs
            .iter()
            .filter(|(_, a)| a.state == ArcState::Ok)
            .map(|(n, _)| *n)
            .collect();
        if unknown.len() * 2 >= arcs.len() {
            // Most arcs cannot be judged: saying "turning" would claim what the data cannot show.
            format!(
                "Not enough data yet to say whether the flywheel is turning: the {} arc{} lack{} data{}",
                unknown.join(", "),
                if unknown.len() == 1 { "" } else { "s" },
                if unknown.len() == 1 { "s" } else { "" },
                if ok.is_empty() {
                    " (send model_eval, feedback and data_lifecycle events)".to_owned()
                } else {
                    format!("; {} OK so far", ok.join(", "))
                }
            )
        } else if severity(overall) >= 2 || !unknown.is_empty() {
            format!(
                "The flywheel is turning: {} OK ({} not judged yet: too little data)",
                ok.join(", "),
                unknown.join(", ")
            )
        } else {
            "The flywheel is turning: every arc is OK".to_owned()
        }
    } else {
        let worst = arcs
            .iter()
            .max_by_key(|(_, a)| severity(a.state))
            .map(|(n, a)| (*n, a.advice))
            .unwrap_or(("", ""));
        format!(
            "The flywheel is stalling ({}): {}",
            stalled.join(", "),
            worst.1
        )
    };
    Health {
        model: model.to_owned(),
        window_end: end,
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

/// One evaluation of the primary metric.
struct EvalPoint {
    at: i64,
    value: f64,
    higher_is_better: bool,
    new_examples: Option<u64>,
    total_examples: Option<u64>,
    cutoff_us: Option<i64>,
    version: String,
}

fn velocity(cfg: &HealthConfig, inp: &Inputs) -> Velocity {
    let end = inp.end;
    let mut evals: Vec<&Event> = inp
        .evals
        .iter()
        .filter(|e| e.occurred_at_secs() < end)
        .collect();
    evals.sort_by_key(|e| e.occurred_at_us);
    let mut v = Velocity {
        metric: None,
        eval_set: None,
        cycles: 0,
        series: Vec::new(),
        higher_is_better: true,
        per_cycle: None,
        per_day: None,
        gain_per_1k_examples: None,
        loop_latency_seconds: None,
        loop_latency_series: Vec::new(),
        learning_curve: learning_curve::forecast(&[], true, None),
        note: None,
    };
    let Some(latest) = evals.last() else {
        v.note = Some("no model_eval events yet".into());
        return v;
    };
    let Body::ModelEval {
        eval_set, metrics, ..
    } = &latest.body
    else {
        return v;
    };
    let metric = if cfg.primary_metric.is_empty() {
        metrics.first().map(|m| m.name.clone())
    } else {
        Some(cfg.primary_metric.clone())
    };
    let Some(metric) = metric else {
        v.note = Some("the latest evaluation has no metrics".into());
        return v;
    };
    let mut by_cycle: BTreeMap<u64, EvalPoint> = BTreeMap::new();
    for e in &evals {
        if let Body::ModelEval {
            cycle,
            eval_set: es,
            metrics,
            train_data,
        } = &e.body
        {
            if es != eval_set {
                continue;
            }
            if let Some(m) = metrics.iter().find(|m| m.name == metric) {
                by_cycle.insert(
                    *cycle,
                    EvalPoint {
                        at: e.occurred_at_secs(),
                        value: m.value,
                        higher_is_better: m.higher_is_better,
                        new_examples: train_data.as_ref().and_then(|t| t.new_examples),
                        total_examples: train_data.as_ref().and_then(|t| t.total_examples),
                        cutoff_us: train_data.as_ref().and_then(|t| t.data_cutoff_at),
                        version: e.model.version.clone(),
                    },
                );
            }
        }
    }
    v.metric = Some(metric.clone());
    v.eval_set = Some(eval_set.clone());
    v.cycles = by_cycle.len();
    v.series = by_cycle.iter().map(|(c, x)| (*c, x.value)).collect();
    v.higher_is_better = by_cycle.values().last().is_none_or(|x| x.higher_is_better);
    if v.cycles == 0 {
        v.note = Some(format!(
            "the latest evaluation set {eval_set:?} has no {metric:?} values"
        ));
        return v;
    }
    let rows: Vec<_> = by_cycle.iter().collect();
    let window = &rows[rows.len().saturating_sub(cfg.k)..];
    let oriented = |x: f64, hib: bool| if hib { x } else { -x };
    let ys: Vec<f64> = window
        .iter()
        .map(|(_, r)| oriented(r.value, r.higher_is_better))
        .collect();
    let cs: Vec<f64> = window.iter().map(|(c, _)| **c as f64).collect();
    let ts: Vec<f64> = window
        .iter()
        .map(|(_, r)| (r.at - window[0].1.at) as f64 / DAY as f64)
        .collect();
    let slope = |x: &[f64]| {
        sen_slope_xy(x, &ys, 0.90).ok().map(|s| Slope {
            estimate: s.slope,
            lower: s.lower,
            upper: s.upper,
        })
    };
    v.per_cycle = slope(&cs);
    v.per_day = slope(&ts);
    let effs: Vec<f64> = window
        .windows(2)
        .filter_map(|w| {
            let (a, b) = (w[0].1, w[1].1);
            let dq = oriented(b.value, b.higher_is_better) - oriented(a.value, a.higher_is_better);
            b.new_examples
                .filter(|n| *n > 0)
                .map(|n| dq / (n as f64 / 1000.0))
        })
        .collect();
    if !effs.is_empty() {
        v.gain_per_1k_examples = Some(effs.iter().sum::<f64>() / effs.len() as f64);
    }
    // The learning curve: every evaluation with its training size; the next cycle adds the mean
    // new examples of the window (or the mean growth of the training size when not given).
    let sized: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|(_, r)| r.total_examples.map(|n| (n as f64, r.value)))
        .collect();
    let news: Vec<f64> = window
        .iter()
        .filter_map(|(_, r)| r.new_examples.map(|n| n as f64))
        .collect();
    let new_per_cycle = if news.is_empty() {
        let w: Vec<f64> = sized[sized.len().saturating_sub(cfg.k)..]
            .iter()
            .map(|p| p.0)
            .collect();
        (w.len() >= 2).then(|| (w[w.len() - 1] - w[0]) / (w.len() - 1) as f64)
    } else {
        Some(news.iter().sum::<f64>() / news.len() as f64)
    };
    v.learning_curve = learning_curve::forecast(&sized, v.higher_is_better, new_per_cycle);
    // Loop latency: the first deploy of the evaluated version at or after its data cutoff.
    let mut lat = Vec::new();
    for (_, r) in &rows {
        let Some(cut_us) = r.cutoff_us else {
            continue;
        };
        let deployed = inp
            .deploys
            .iter()
            .filter(|d| d.model.version == r.version && d.occurred_at_us >= cut_us)
            .filter(|d| d.occurred_at_secs() < end)
            .map(|d| d.occurred_at_us)
            .min();
        if let Some(d) = deployed {
            lat.push((d - cut_us) as f64 / 1e6);
        }
    }
    if !lat.is_empty() {
        let mut recent: Vec<f64> = lat[lat.len().saturating_sub(cfg.k)..].to_vec();
        recent.sort_by(f64::total_cmp);
        let n = recent.len();
        v.loop_latency_seconds = Some(if n % 2 == 1 {
            recent[n / 2]
        } else {
            (recent[n / 2 - 1] + recent[n / 2]) / 2.0
        });
    }
    v.loop_latency_series = lat;
    v
}

fn describe(ev: &Evaluation, unit: &str) -> String {
    match (ev.slope, ev.ci90_lower, ev.ci90_upper, ev.p_up) {
        (Some(s), Some(lo), Some(up), Some(p)) => format!(
            "Sen slope {s:.4} {unit} (90% CI {lo:.4} to {up:.4}), Mann-Kendall p_up {p:.3} over the last {} points; δ_min {}{}",
            ev.window,
            ev.delta_min.map_or("n/a".to_owned(), |d| format!("{d:.4}")),
            if ev.delta_min_defaulted { " (defaulted: 0.1 × median early gain)" } else { "" }
        ),
        _ => format!("{} points; the rule needs at least {}", ev.window, plateau::MIN_POINTS),
    }
}

fn arc_from(
    name: &'static str,
    ev: Option<Evaluation>,
    unit: &str,
    since: impl Fn(usize) -> String,
) -> Arc {
    match ev {
        Some(ev) => Arc {
            state: ev.state,
            why: describe(&ev, unit),
            since: ev.since_index.map(since),
            advice: plateau::advice(name, ev.state),
            evaluation: Some(ev),
        },
        None => Arc {
            state: ArcState::Insufficient,
            why: "no data yet".into(),
            since: None,
            advice: "",
            evaluation: None,
        },
    }
}

fn input_arc(inp: &Inputs, end: i64) -> Arc {
    // Weekly usable volume over complete weeks ending at `end` (curated, else feedback events).
    let weeks = 12i64;
    let has_funnel = inp.funnel.iter().any(|f| f.stage == Stage::Curated);
    let series: Vec<f64> = (0..weeks)
        .rev()
        .map(|w| {
            let r = (end - (w + 1) * WEEK, end - w * WEEK);
            if has_funnel {
                inp.funnel
                    .iter()
                    .filter(|f| f.stage == Stage::Curated && f.day >= r.0 && f.day < r.1)
                    .map(|f| f.n as f64)
                    .sum()
            } else {
                inp.counts
                    .iter()
                    .filter(|c| {
                        c.event_type == EventType::Feedback && c.bucket >= r.0 && c.bucket < r.1
                    })
                    .map(|c| c.n as f64)
                    .sum()
            }
        })
        .collect();
    // Leading empty weeks are before the model existed.
    let first = series.iter().position(|x| *x > 0.0).unwrap_or(series.len());
    let series = &series[first..];
    let ev = replay(series, Some(0.0), plateau::DEFAULT_K);
    let offset = weeks as usize - series.len();
    let mut arc = arc_from("input", ev, "items/week", |i| {
        rfc(end - (weeks - (offset + i) as i64) * WEEK)
    });
    // Starvation: the last week against the mean λ₀ of the 4 before it fell
    // below 70 % and is improbable under Poisson(λ₀) (both: counts are overdispersed).
    let mut drop = String::new();
    if series.len() >= 5 {
        let x = series[series.len() - 1];
        let lambda = series[series.len() - 5..series.len() - 1]
            .iter()
            .sum::<f64>()
            / 4.0;
        if lambda > 0.0 {
            use statrs::distribution::{DiscreteCDF, Poisson};
            let p = Poisson::new(lambda).map(|d| d.cdf(x as u64)).unwrap_or(1.0);
            let ratio = x / lambda;
            drop = format!(
                "; last week {x:.0} is {:.0} % of the 4-week mean {lambda:.0} (Poisson lower tail p = {p:.2e})",
                ratio * 100.0
            );
            if ratio < 0.7 && p < 0.01 && arc.state != ArcState::Regressing {
                arc.state = ArcState::Plateau;
                arc.advice = plateau::advice("input", ArcState::Plateau);
                arc.since = Some(rfc(end - WEEK));
                drop.push_str(": the input is starved");
            }
        }
    }
    arc.why = format!(
        "weekly {} {}: {}{drop}",
        if has_funnel {
            "usable (curated) items"
        } else {
            "feedback events"
        },
        series
            .iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        arc.why
    );
    arc
}

fn learning_arc(cfg: &HealthConfig, v: &Velocity) -> Arc {
    let Some(metric) = &v.metric else {
        return arc_from("learning", None, "", |_| String::new());
    };
    let sign = if v.higher_is_better { 1.0 } else { -1.0 };
    let oriented: Vec<f64> = v.series.iter().map(|(_, x)| sign * x).collect();
    let ev = replay(&oriented, cfg.delta_min.get(metric).copied(), cfg.k);
    let cycles: Vec<u64> = v.series.iter().map(|(c, _)| *c).collect();
    arc_from("learning", ev, &format!("{metric}/cycle"), |i| {
        format!("cycle {}", cycles.get(i).copied().unwrap_or(0))
    })
}

fn output_arc(cfg: &HealthConfig, u: &Uplift) -> Arc {
    let usable: Vec<&(String, UpliftMetric)> = u
        .releases
        .iter()
        .filter(|(_, m)| m.decision != "insufficient_data")
        .collect();
    let Some((ver, last)) = usable.last() else {
        return Arc {
            state: ArcState::Insufficient,
            why: "fewer than two versions with enough explicit feedback".into(),
            since: None,
            advice: "",
            evaluation: None,
        };
    };
    let up = last.upper.unwrap_or(0.0);
    let lo = last.lower.unwrap_or(0.0);
    let last3: Vec<&&(String, UpliftMetric)> = usable.iter().rev().take(3).collect();
    let state = if up < 0.0 {
        ArcState::Regressing
    } else if last3.len() == 3
        && last3
            .iter()
            .all(|(_, m)| m.upper.is_some_and(|x| x < cfg.uplift_delta_min))
    {
        ArcState::Plateau
    } else if lo <= 0.0 {
        ArcState::Slowing
    } else {
        ArcState::Ok
    };
    Arc {
        state,
        why: format!(
            "positive-share uplift of {ver} over the previous version: {:+.4} (95% CI {lo:+.4} to {up:+.4}, n {} vs {}); last {} releases' upper bounds {} (δ_min {})",
            last.difference.unwrap_or(0.0),
            last.n_current,
            last.n_previous,
            last3.len(),
            last3.iter().map(|(_, m)| format!("{:+.4}", m.upper.unwrap_or(0.0))).collect::<Vec<_>>().join(", "),
            cfg.uplift_delta_min
        ),
        since: (severity(state) >= 2).then(|| ver.clone()),
        advice: plateau::advice("output", state),
        evaluation: None,
    }
}

fn loop_arc(v: &Velocity, r: &Retention) -> Arc {
    let ret = replay(&r.d7_by_week, Some(0.0), plateau::DEFAULT_K);
    let lat_up = (v.loop_latency_series.len() >= plateau::MIN_POINTS)
        .then(|| mann_kendall(&v.loop_latency_series).ok())
        .flatten();
    let retention_regressing = ret
        .as_ref()
        .is_some_and(|e| e.state == ArcState::Regressing);
    let latency_rising = lat_up.as_ref().is_some_and(|m| m.p_up < 0.05);
    let state = if retention_regressing {
        ArcState::Regressing
    } else if latency_rising {
        ArcState::Slowing
    } else if ret.is_some() || lat_up.is_some() {
        ArcState::Ok
    } else {
        ArcState::Insufficient
    };
    let why = format!(
        "weekly D7 retention {}; loop latency {}",
        ret.as_ref().map_or(
            "n/a (fewer than 6 complete weekly cohorts)".into(),
            |e| format!("{:?}: {}", e.state, describe(e, "per week"))
        ),
        lat_up
            .as_ref()
            .map_or("n/a (fewer than 6 deployed cycles)".into(), |m| format!(
                "Mann-Kendall p_up {:.3} over {} cycles (median {:.0} s)",
                m.p_up,
                v.loop_latency_series.len(),
                v.loop_latency_seconds.unwrap_or(0.0)
            )),
    );
    Arc {
        state,
        why,
        since: None,
        advice: plateau::advice("loop", state),
        evaluation: ret,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{EvalMetric, ModelRef, TrainData};

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
