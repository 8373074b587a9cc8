//! Feedback volume and rate over the last complete week against the week before, per signal and
//! per model version (docs/STATISTICS.md, flywheel health).

use super::{Feedback, HealthConfig, Inputs, Rate, SignalVolume, VersionFeedback, WEEK};
use crate::events::{EventType, Stage};
use crate::stats::inference::{self, Interval};
use crate::summary::delta::SeriesClass;
use crate::summary::FeatureSummary;
use std::collections::BTreeMap;

/// What the feedback pass gathers that the uplift needs: per signal, events this week and the
/// week before; per version, every signal's summary and the explicit feedback's.
pub(super) struct Tallies {
    pub signals: BTreeMap<(SeriesClass, String), (u64, u64)>,
    pub by_version_all: BTreeMap<String, BTreeMap<String, FeatureSummary>>,
    pub explicit_by_version: BTreeMap<String, FeatureSummary>,
    /// Per segment and version, explicit feedback and its positives over the lookback.
    pub segment_versions: super::segments::ByVersion,
}

pub(super) fn rate(num: u64, den: u64, min: u64) -> Rate {
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

/// Count of values > 0 in a summary (exact while the sketch is exact).
pub(super) fn positives(s: &FeatureSummary) -> u64 {
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

pub(super) fn feedback(cfg: &HealthConfig, inp: &Inputs) -> (Feedback, Tallies) {
    let (segment_weeks, segment_versions) = super::segments::tallies(inp);
    let end = inp.end;
    let week = (end - WEEK, end);
    let prev_week = (end - 2 * WEEK, end - WEEK);
    let in_range = |t: i64, r: (i64, i64)| t >= r.0 && t < r.1;
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
    let by_version: Vec<VersionFeedback> = by_version_week
        .iter()
        .map(|(v, s)| {
            let n = interactions_by_version(v);
            VersionFeedback {
                version: v.clone(),
                interactions_7d: n,
                explicit_rate: rate(s.moments.n, n, min),
                positive_share: rate(positives(s), s.moments.n, min),
            }
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
        by_segment: super::segments::by_segment(cfg, segment_weeks),
    };

    (
        feedback,
        Tallies {
            signals,
            by_version_all,
            explicit_by_version,
            segment_versions,
        },
    )
}
