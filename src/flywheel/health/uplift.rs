//! Engagement uplift: the current model version against the previous one, per engagement
//! signal, and the positive share of each release against the one before (observational).

use super::feedback::{positives, Tallies};
use super::{HealthConfig, Inputs, Uplift, UpliftMetric};
use crate::stats::inference;
use crate::summary::FeatureSummary;
use std::collections::BTreeMap;

fn is_binary(s: &FeatureSummary) -> bool {
    s.moments.n > 0
        && s.sketch
            .weighted_items()
            .iter()
            .all(|(x, _)| *x == 0.0 || *x == 1.0)
}

fn empty_metric(metric: &str, test: &'static str, n1: u64, n2: u64) -> UpliftMetric {
    UpliftMetric {
        metric: metric.to_owned(),
        test,
        previous: None,
        current: None,
        difference: None,
        lower: None,
        upper: None,
        p_value: None,
        n_previous: n1,
        n_current: n2,
        decision: "insufficient_data",
    }
}

/// Fill in a test's difference, interval and decision, when both sides have `min` values.
fn decide(
    mut u: UpliftMetric,
    result: crate::stats::StatResult<inference::Difference>,
    min: u64,
) -> UpliftMetric {
    if u.n_previous < min || u.n_current < min {
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

/// The uplift of a proportion `x / n`, previous against current (two-proportion z).
pub(super) fn proportion_uplift(
    metric: &str,
    (x1, n1): (u64, u64),
    (x2, n2): (u64, u64),
    min: u64,
) -> UpliftMetric {
    let mut u = empty_metric(metric, "two_proportion_z", n1, n2);
    if n1 > 0 && n2 > 0 {
        u.previous = Some(x1 as f64 / n1 as f64);
        u.current = Some(x2 as f64 / n2 as f64);
    }
    decide(u, inference::two_proportions(x1, n1, x2, n2, 0.95), min)
}

fn uplift_metric(
    metric: &str,
    prev: &FeatureSummary,
    cur: &FeatureSummary,
    min: u64,
    positive_share: bool,
) -> UpliftMetric {
    let (n1, n2) = (prev.moments.n, cur.moments.n);
    if positive_share {
        return proportion_uplift(metric, (positives(prev), n1), (positives(cur), n2), min);
    }
    if is_binary(prev) && is_binary(cur) {
        let ones = |s: &FeatureSummary| (s.moments.mean * s.moments.n as f64).round() as u64;
        return proportion_uplift(metric, (ones(prev), n1), (ones(cur), n2), min);
    }
    let mut u = empty_metric(metric, "welch_t", n1, n2);
    if n1 > 0 && n2 > 0 {
        u.previous = Some(prev.moments.mean);
        u.current = Some(cur.moments.mean);
    }
    let result = inference::welch_from_moments(
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
    );
    decide(u, result, min)
}

pub(super) fn uplift(cfg: &HealthConfig, inp: &Inputs, t: &Tallies) -> Uplift {
    let end = inp.end;
    let min = cfg.min_samples;
    let Tallies {
        signals,
        by_version_all,
        explicit_by_version,
        segment_versions,
    } = t;
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
    let by_segment = match (&previous_version, &current_version) {
        (Some(p), Some(c)) => super::segments::uplift_by_segment(cfg, segment_versions, p, c),
        _ => Vec::new(),
    };
    Uplift {
        current_version,
        previous_version,
        observational: true,
        metrics,
        releases,
        by_segment,
    }
}
