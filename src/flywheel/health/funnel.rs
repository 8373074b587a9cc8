//! The data funnel over the lookback: stage counts, conversions, yield, hoarding index, failure
//! reasons and training-consent violations.

use super::{Funnel, Inputs};
use crate::events::{Body, Stage, NO_TRAINING_CONSENT};
use std::collections::BTreeMap;

pub(super) fn funnel(inp: &Inputs) -> Funnel {
    let end = inp.end;
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
    let (withdrawn_users, withdrawn_days) = data_cutoff
        .map(|cut| withdrawn_after_training(inp, cut.div_euclid(86_400)))
        .unwrap_or((0, 0));
    let mut top_failure_reasons: Vec<(String, u64)> = failures.into_iter().collect();
    top_failure_reasons.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top_failure_reasons.truncate(5);
    Funnel {
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
        withdrawn_after_training_users: withdrawn_users,
        withdrawn_after_training_user_days: withdrawn_days,
        top_failure_reasons,
    }
}

/// Users whose first withdrawal of training consent came after days of theirs that lie before
/// the training data cutoff (day `cut_day`, exclusive), and how many such days.
fn withdrawn_after_training(inp: &Inputs, cut_day: i64) -> (u64, u64) {
    let mut first: BTreeMap<u64, i64> = BTreeMap::new();
    for &(d, u) in &inp.withdrawals {
        first.entry(u).and_modify(|x| *x = (*x).min(d)).or_insert(d);
    }
    let mut days: BTreeMap<u64, u64> = BTreeMap::new();
    for &(d, u) in &inp.activity {
        if let Some(&w) = first.get(&u) {
            if d < cut_day && d < w {
                *days.entry(u).or_insert(0) += 1;
            }
        }
    }
    (days.len() as u64, days.values().sum())
}
