use super::rules::{RawQuality, RawRule, Rule};
use super::*;
use std::sync::Arc;

const H: i64 = 3600;

fn rules(extra: Vec<RawRule>) -> Vec<Rule> {
    let raw = RawQuality {
        rules: extra,
        ..Default::default()
    };
    let mut errors = Vec::new();
    let q = raw.validate(Some(H), &mut errors).expect("valid rules");
    q.rules
}

fn numbers(xs: impl IntoIterator<Item = f64>) -> FeatureSummary {
    let mut s = FeatureSummary::default();
    for x in xs {
        s.add_number(x);
    }
    s
}

fn cats<'a>(xs: impl IntoIterator<Item = &'a str>) -> FeatureSummary {
    let mut s = FeatureSummary::default();
    for x in xs {
        s.add_category(x);
    }
    s
}

fn key(name: &str) -> (SeriesClass, String) {
    (SeriesClass::Input, name.to_owned())
}

fn count(t: EventType, bucket: i64, n: u64) -> BucketCount {
    BucketCount {
        version: "v1".into(),
        event_type: t,
        bucket,
        n,
        first_us: bucket * 1_000_000,
    }
}

/// A stationary model: `price` uniform on [0, 100), `plan` in three categories, interactions
/// every hour of the week before a window at hour 200.
fn stationary() -> Inputs {
    let window = (200 * H, 201 * H);
    let mut baseline = SummaryMap::new();
    baseline.insert(
        key("price"),
        numbers((0..5000).map(|i| (i % 1000) as f64 / 10.0)),
    );
    baseline.insert(
        key("plan"),
        cats((0..5000).map(|i| ["free", "pro", "team"][i % 3])),
    );
    let mut current = SummaryMap::new();
    current.insert(
        key("price"),
        numbers((0..1000).map(|i| (i as f64 * 0.097) % 100.0)),
    );
    current.insert(
        key("plan"),
        cats((0..1000).map(|i| ["free", "pro", "team"][i % 3])),
    );
    let counts = (200 - 168..201)
        .map(|h| count(EventType::Interaction, h * H, 1000))
        .collect();
    let week_ago = vec![count(EventType::Interaction, (200 - 168) * H, 1000)];
    Inputs {
        window,
        bucket_secs: H,
        current,
        baseline: Arc::new(baseline),
        counts,
        week_ago,
        training: BTreeMap::new(),
    }
}

fn violated<'a>(evals: &'a [Evaluation], rule: &str) -> Vec<&'a Evaluation> {
    evals
        .iter()
        .filter(|e| e.rule == rule && e.status == Status::Violated)
        .collect()
}

#[test]
fn a_stationary_window_passes_every_default_rule() {
    let (evals, v) = evaluate("m", &rules(vec![]), &stationary(), "rolling:7d");
    assert_eq!(v.verdict, Grade::Pass, "{:#?}", v.violations);
    assert!(v.failed_rules.is_empty());
    // A range on price, unseen categories on plan, the schema of both, freshness once.
    let evaluated: usize = v.rules.iter().map(|t| t.evaluated).sum();
    assert_eq!(evaluated, 1 + 1 + 2 + 1, "{evals:#?}");
    assert_eq!(v.interactions, 1000);
    assert_eq!(v.features_per_event, Some(2.0));
}

#[test]
fn two_percent_outside_the_reference_range_warns() {
    let mut inputs = stationary();
    inputs.current.insert(
        key("price"),
        numbers((0..1000).map(|i| if i % 50 == 0 { 250.0 } else { i as f64 / 10.0 })),
    );
    let (evals, v) = evaluate("m", &rules(vec![]), &inputs, "rolling:7d");
    let hits = violated(&evals, "reference_range");
    assert_eq!(hits.len(), 1, "{evals:#?}");
    assert_eq!(hits[0].feature.as_deref(), Some("price"));
    let share = hits[0].value.expect("share");
    assert!((share - 0.02).abs() < 1e-12, "{share}");
    assert_eq!(v.verdict, Grade::Warn);
    assert_eq!(v.failed_rules, ["reference_range"]);
    // Half a percent stays under the 1 % limit.
    inputs.current.insert(
        key("price"),
        numbers((0..1000).map(|i| if i % 200 == 0 { 250.0 } else { i as f64 / 10.0 })),
    );
    let (evals, _) = evaluate("m", &rules(vec![]), &inputs, "rolling:7d");
    assert!(violated(&evals, "reference_range").is_empty());
}

#[test]
fn a_new_category_at_five_percent_warns_and_names_it() {
    let mut inputs = stationary();
    inputs.current.insert(
        key("plan"),
        cats((0..1000).map(|i| {
            if i % 20 == 0 {
                "enterprise"
            } else {
                ["free", "pro", "team"][i % 3]
            }
        })),
    );
    let (evals, v) = evaluate("m", &rules(vec![]), &inputs, "rolling:7d");
    let hits = violated(&evals, "unseen_categories");
    assert_eq!(hits.len(), 1);
    assert!((hits[0].value.expect("share") - 0.05).abs() < 1e-12);
    assert!(
        hits[0].message.contains("\"enterprise\" (50)"),
        "{}",
        hits[0].message
    );
    assert_eq!(v.verdict, Grade::Warn);
    // Declared categories: "team" is not allowed.
    let declared = rules(vec![RawRule {
        name: "plans".into(),
        check: "categories".into(),
        features: vec!["plan".into()],
        allowed: vec!["free".into(), "pro".into()],
        ..Default::default()
    }]);
    let (evals, v) = evaluate("m", &declared, &stationary(), "rolling:7d");
    let hits = violated(&evals, "plans");
    assert_eq!(hits.len(), 1);
    assert!((hits[0].value.expect("share") - 333.0 / 1000.0).abs() < 1e-12);
    assert_eq!(v.verdict, Grade::Fail);
}

#[test]
fn schema_changes_fail_vanished_changed_kind_and_appeared() {
    let mut inputs = stationary();
    // price vanished (the model still sent 1000 plan values), age appeared, plan became numbers.
    inputs.current.remove(&key("price"));
    inputs
        .current
        .insert(key("age"), numbers((0..1000).map(f64::from)));
    inputs
        .current
        .insert(key("plan"), numbers((0..1000).map(|i| f64::from(i % 3))));
    let (evals, v) = evaluate("m", &rules(vec![]), &inputs, "rolling:7d");
    let hits = violated(&evals, "schema");
    let msg = |f: &str| {
        hits.iter()
            .find(|e| e.feature.as_deref() == Some(f))
            .map(|e| e.message.clone())
            .unwrap_or_default()
    };
    assert_eq!(hits.len(), 3, "{evals:#?}");
    assert!(msg("price").starts_with("vanished"), "{}", msg("price"));
    assert!(msg("age").starts_with("appeared"), "{}", msg("age"));
    assert!(msg("plan").contains("categorical in the baseline, numeric in the window"));
    assert_eq!(v.verdict, Grade::Fail);
    assert_eq!(v.failed_rules[0], "schema");
    // A window with too few observations does not call a feature vanished.
    let mut quiet = stationary();
    quiet.current.remove(&key("price"));
    quiet
        .current
        .insert(key("plan"), cats((0..50).map(|_| "free")));
    let (evals, _) = evaluate("m", &rules(vec![]), &quiet, "rolling:7d");
    assert!(violated(&evals, "schema").is_empty(), "{evals:#?}");
}

#[test]
fn freshness_is_measured_from_the_last_bucket_with_events() {
    let mut inputs = stationary();
    // Interactions stopped 8 hours before the window's end.
    inputs.counts.retain(|c| c.bucket < 193 * H);
    let (evals, v) = evaluate("m", &rules(vec![]), &inputs, "rolling:7d");
    let hits = violated(&evals, "freshness");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].value, Some(8.0 * 3600.0));
    assert_eq!(v.verdict, Grade::Fail);
    // Five hours of silence is within the default six.
    let mut inputs = stationary();
    inputs.counts.retain(|c| c.bucket < 196 * H);
    let (evals, _) = evaluate("m", &rules(vec![]), &inputs, "rolling:7d");
    assert!(violated(&evals, "freshness").is_empty());
    // A type the model never sends is not evaluated.
    let outcome = rules(vec![RawRule {
        name: "labels".into(),
        check: "freshness".into(),
        event_types: vec!["outcome".into()],
        ..Default::default()
    }]);
    let (evals, _) = evaluate("m", &outcome, &stationary(), "rolling:7d");
    let e = evals
        .iter()
        .find(|e| e.rule == "labels")
        .expect("evaluated");
    assert_eq!(e.status, Status::NotEvaluated);
}

#[test]
fn volume_needs_both_an_effect_and_significance() {
    let volume = rules(vec![RawRule {
        name: "volume".into(),
        check: "volume".into(),
        severity: "warn".into(),
        ..Default::default()
    }]);
    let at = |now: u64, before: u64| {
        let mut inputs = stationary();
        inputs.counts.retain(|c| c.bucket != 200 * H);
        inputs
            .counts
            .push(count(EventType::Interaction, 200 * H, now));
        inputs.week_ago = vec![count(EventType::Interaction, 32 * H, before)];
        let (evals, _) = evaluate("m", &volume, &inputs, "rolling:7d");
        evals
            .into_iter()
            .find(|e| e.rule == "volume")
            .expect("volume evaluated")
    };
    assert_eq!(at(300, 1000).status, Status::Violated);
    assert_eq!(at(2500, 1000).status, Status::Violated);
    assert_eq!(at(950, 1000).status, Status::Pass);
    // 5 % fewer of 100,000 is very significant but not a volume problem.
    assert_eq!(at(95_000, 100_000).status, Status::Pass);
    assert_eq!(at(10, 50).status, Status::NotEvaluated);
    // Under half of a small count is not significant (2 P(X <= 5 | 12) = 0.04).
    let small = rules(vec![RawRule {
        name: "volume".into(),
        check: "volume".into(),
        min_values: 10,
        ..Default::default()
    }]);
    let mut inputs = stationary();
    inputs.counts.retain(|c| c.bucket != 200 * H);
    inputs
        .counts
        .push(count(EventType::Interaction, 200 * H, 5));
    inputs.week_ago = vec![count(EventType::Interaction, 32 * H, 12)];
    let (evals, _) = evaluate("m", &small, &inputs, "rolling:7d");
    let e = evals
        .iter()
        .find(|e| e.rule == "volume")
        .expect("evaluated");
    assert_eq!(e.status, Status::Pass, "{e:?}");
}

#[test]
fn poisson_two_sided_matches_the_closed_form() {
    // P(X <= 2 | 10) = e^-10 (1 + 10 + 50)
    let lower = (-10f64).exp() * 61.0;
    assert!((poisson_two_sided(2, 10.0) - 2.0 * lower).abs() < 1e-12);
    // P(X >= 1 | 0.5) = 1 - e^-0.5
    assert!((poisson_two_sided(1, 0.5) - 2.0 * (1.0 - (-0.5f64).exp())).abs() < 1e-12);
    assert_eq!(poisson_two_sided(10, 10.0), 1.0);
}

#[test]
fn completeness_entropy_and_coverage() {
    let declared = rules(vec![
        RawRule {
            name: "complete".into(),
            check: "missing".into(),
            limit: Some(0.1),
            ..Default::default()
        },
        RawRule {
            name: "diverse".into(),
            check: "entropy".into(),
            ..Default::default()
        },
        RawRule {
            name: "covered".into(),
            check: "coverage".into(),
            limit: Some(0.9),
            ..Default::default()
        },
    ]);
    let mut inputs = stationary();
    let mut plan = cats((0..900).map(|i| if i % 100 == 0 { "pro" } else { "free" }));
    for _ in 0..300 {
        plan.add_missing();
    }
    inputs.current.insert(key("plan"), plan);
    let (evals, _) = evaluate("m", &declared, &inputs, "rolling:7d");
    let one = |rule: &str| {
        evals
            .iter()
            .find(|e| e.rule == rule && e.feature.as_deref() == Some("plan"))
            .expect("evaluated")
    };
    assert_eq!(one("complete").status, Status::Violated);
    assert!((one("complete").value.expect("share") - 0.25).abs() < 1e-12);
    assert_eq!(one("diverse").status, Status::Violated);
    assert!(one("diverse").value.expect("ratio") < 0.1);
    assert_eq!(one("covered").status, Status::Violated);
    assert!((one("covered").value.expect("share") - 2.0 / 3.0).abs() < 1e-12);
    // The stationary window passes all three.
    let (evals, _) = evaluate("m", &declared, &stationary(), "rolling:7d");
    assert!(
        evals.iter().all(|e| e.status != Status::Violated),
        "{evals:#?}"
    );
}

#[test]
fn representativeness_of_training_data_against_production() {
    let rule = rules(vec![RawRule {
        name: "representative".into(),
        check: "representativeness".into(),
        training: "dataset:train".into(),
        ..Default::default()
    }]);
    let score = |training: SummaryMap| {
        let mut inputs = stationary();
        inputs.training.insert("train".into(), training);
        let (evals, _) = evaluate("m", &rule, &inputs, "rolling:7d");
        evals
            .into_iter()
            .find(|e| e.rule == "representative")
            .expect("evaluated")
    };
    let same = score(stationary().current);
    assert_eq!(same.status, Status::Pass);
    assert!(same.value.expect("score") > 0.99, "{same:?}");
    let mut skewed = SummaryMap::new();
    skewed.insert(
        key("price"),
        numbers((0..1000).map(|i| 200.0 + f64::from(i))),
    );
    skewed.insert(key("plan"), cats((0..1000).map(|_| "enterprise")));
    let far = score(skewed);
    assert_eq!(far.status, Status::Violated);
    assert!(far.value.expect("score") < 0.2, "{far:?}");
    let missing = {
        let (evals, _) = evaluate("m", &rule, &stationary(), "rolling:7d");
        evals
            .into_iter()
            .find(|e| e.rule == "representative")
            .expect("evaluated")
    };
    assert_eq!(missing.status, Status::NotEvaluated);
}

#[test]
fn no_baseline_yet_means_nothing_is_flagged() {
    let mut inputs = stationary();
    inputs.baseline = Arc::default();
    let (evals, v) = evaluate("m", &rules(vec![]), &inputs, "rolling:7d");
    assert_eq!(v.verdict, Grade::Pass);
    // Every feature "appeared", but against an empty baseline the schema check would flag
    // them all: the baseline's absence must not be read as a schema change.
    assert!(violated(&evals, "schema").is_empty(), "{evals:#?}");
}

#[test]
fn share_outside_is_exact_while_the_sketch_is_exact_and_bounded_after() {
    let s = numbers((0..400).map(f64::from));
    assert_eq!(share_outside(&s, 10.0, 389.0), 20.0 / 400.0);
    assert_eq!(share_outside(&s, -1.0, 1000.0), 0.0);
    let big = numbers((0..100_000).map(f64::from));
    let share = share_outside(&big, 1000.0, 98_999.0);
    assert!(
        (share - 0.02).abs() < 3.0 * big.sketch.rank_error(),
        "{share}"
    );
}

#[test]
fn a_short_baseline_is_no_reference_range_yet() {
    // 500 values: by chance alone 2/501 of new values fall outside their range, 40 % of the
    // 1 % limit, so the range is not used until 2,000.
    let mut inputs = stationary();
    let mut base = (*inputs.baseline).clone();
    base.insert(key("price"), numbers((0..500).map(|i| f64::from(i) / 5.0)));
    inputs.baseline = Arc::new(base);
    let (evals, _) = evaluate("m", &rules(vec![]), &inputs, "rolling:7d");
    let e = evals
        .iter()
        .find(|e| e.rule == "reference_range")
        .expect("listed");
    assert_eq!(e.status, Status::NotEvaluated, "{e:?}");
    assert!(e.message.contains("2000"), "{}", e.message);
    // A declared range needs no baseline.
    let declared = rules(vec![RawRule {
        name: "declared".into(),
        check: "range".into(),
        min: Some(0.0),
        max: Some(50.0),
        ..Default::default()
    }]);
    let (evals, _) = evaluate("m", &declared, &inputs, "rolling:7d");
    let e = evals.iter().find(|e| e.rule == "declared").expect("listed");
    assert_eq!(e.status, Status::Violated);
}

#[test]
fn score_ranges_and_segment_coverage_are_declared_rules_like_any_other() {
    let declared = rules(vec![
        RawRule {
            name: "score_in_unit".into(),
            check: "range".into(),
            class: "predictions".into(),
            features: vec!["score".into()],
            min: Some(0.0),
            max: Some(1.0),
            limit: Some(0.0),
            ..Default::default()
        },
        RawRule {
            name: "countries_covered".into(),
            check: "coverage".into(),
            class: "segments".into(),
            features: vec!["country".into()],
            limit: Some(0.8),
            ..Default::default()
        },
    ]);
    let mut inputs = stationary();
    let score = (SeriesClass::Prediction, "score".to_owned());
    let country = (SeriesClass::Segment, "country".to_owned());
    let countries = ["DE", "FR", "IT", "ES", "BR"];
    let mut base = (*inputs.baseline).clone();
    base.insert(country.clone(), cats((0..5000).map(|i| countries[i % 5])));
    inputs.baseline = Arc::new(base);
    // One score of 1.5 in 1,000, and two of the five countries gone.
    inputs.current.insert(
        score,
        numbers((0..1000).map(|i| if i == 0 { 1.5 } else { f64::from(i) / 1000.0 })),
    );
    inputs
        .current
        .insert(country, cats((0..1000).map(|i| countries[i % 3])));
    let (evals, v) = evaluate("m", &declared, &inputs, "rolling:7d");
    let s = violated(&evals, "score_in_unit");
    assert_eq!(s.len(), 1, "{evals:#?}");
    assert_eq!(s[0].class.as_deref(), Some("prediction"));
    assert!((s[0].value.expect("share") - 0.001).abs() < 1e-12);
    let c = violated(&evals, "countries_covered");
    assert_eq!(c.len(), 1, "{evals:#?}");
    assert!((c[0].value.expect("share") - 0.6).abs() < 1e-12);
    assert!(c[0].message.contains("\"BR\""), "{}", c[0].message);
    assert_eq!(v.verdict, Grade::Fail);
    // The inputs are not touched by rules on other classes.
    assert!(evals
        .iter()
        .filter(|e| e.rule == "score_in_unit" || e.rule == "countries_covered")
        .all(|e| e.class.as_deref() != Some("input")));
}
