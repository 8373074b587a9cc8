//! Data-quality standards through the real server: six models over 14 simulated days, each with
//! one known defect from a known day (a feature that vanishes, one that switches from numbers to
//! strings, 2 % of values outside the reference range, a new category at 5 %, a model that goes
//! silent) and one stationary model with heavy tails, ties and a rare category. The built-in
//! rules must find each defect on its day, and flag nothing else.

use crate::helpers::{enc, rfc, spawn_app_with, Options, TestApp};
use flywheel::clock::ManualClock;
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, Normal, Poisson, StudentT};
use serde_json::{json, Value};

/// 2026-11-02T00:00:00Z.
const T0: i64 = 1_793_577_600;
const DAY: i64 = 86_400;
const DAYS: i64 = 14;
/// Interactions per hour and model.
const PER_HOUR: i64 = 50;
/// The day the defects start.
const DEFECT_DAY: i64 = 3;
/// The day the silent model stops.
const SILENT_DAY: i64 = 5;

/// One interaction of `model` at `t` (seconds), defects applied from [`DEFECT_DAY`].
fn event(rng: &mut StdRng, model: &str, t: i64, i: i64) -> Option<Value> {
    let day = (t - T0) / DAY;
    let defect = day >= DEFECT_DAY;
    if model == "silent" && day >= SILENT_DAY {
        return None;
    }
    let mut f = serde_json::Map::new();
    let amount = LogNormal::new(3.0, 1.2).expect("lognormal").sample(rng);
    f.insert("amount".into(), json!(amount));
    f.insert(
        "t3".into(),
        json!(StudentT::new(3.0).expect("t").sample(rng)),
    );
    let clicks = Poisson::new(2.0).expect("poisson").sample(rng);
    f.insert(
        "clicks".into(),
        if model == "kind" && defect {
            json!(format!("{clicks}"))
        } else {
            json!(clicks)
        },
    );
    let mut age = Normal::new(40.0, 12.0).expect("normal").sample(rng);
    if model == "range" && defect && rng.gen::<f64>() < 0.02 {
        age = 1000.0;
    }
    if !(model == "vanish" && defect) {
        f.insert("age".into(), json!(age));
    }
    let u: f64 = rng.gen();
    let plan = if model == "category" && defect && u < 0.05 {
        "enterprise"
    } else if u < 0.6 {
        "free"
    } else if u < 0.9 {
        "pro"
    } else if u < 0.995 {
        "team"
    } else {
        "edu"
    };
    f.insert("plan".into(), json!(plan));
    f.insert("mobile".into(), json!(rng.gen::<bool>()));
    let mut e = json!({
        "event_id": format!("{model}-{t}-{i}"),
        "event_type": "interaction",
        "occurred_at": rfc(t),
        "model": {"id": model, "version": "v1"},
        "features": f,
        "prediction": {"score": rng.gen::<f64>()},
    });
    // The stationary model's interactions: 70 % with training consent, 10 % without, 20 %
    // with no flag.
    let c: f64 = rng.gen();
    if model == "stationary" && c < 0.8 {
        e["consent"] = json!({"training": c < 0.7});
    }
    if model == "stationary" {
        e["user_id"] = json!(format!("user-{}", rng.gen_range(0..200)));
    }
    Some(e)
}

const MODELS: [&str; 6] = [
    "stationary",
    "vanish",
    "kind",
    "range",
    "category",
    "silent",
];

async fn post_days(app: &TestApp) {
    let mut rng = StdRng::seed_from_u64(15);
    for day in 0..DAYS {
        let mut batch = Vec::new();
        for model in MODELS {
            for h in 0..24 {
                for i in 0..PER_HOUR {
                    let t = T0 + day * DAY + h * 3600 + i * 3600 / PER_HOUR;
                    batch.extend(event(&mut rng, model, t, i));
                }
            }
        }
        // The pipeline's own funnel for one model: 1,200 collected, 24 failed its checks.
        for (stage, count) in [("collected", 24 * PER_HOUR), ("quality_failed", 24)] {
            batch.push(json!({
                "event_id": format!("dl-{day}-{stage}"),
                "event_type": "data_lifecycle",
                "occurred_at": rfc(T0 + day * DAY + 1800),
                "model": {"id": "vanish"},
                "stage": stage,
                "count": count,
            }));
        }
        for chunk in batch.chunks(5000) {
            let (s, body) = app.post_ndjson(chunk).await;
            assert_eq!(s, 200, "{body}");
            assert_eq!(
                body["accepted"].as_u64(),
                Some(chunk.len() as u64),
                "{body}"
            );
        }
    }
}

/// The verdicts of a model, one per simulated day 1..DAYS (day 0 has no baseline).
async fn verdicts(app: &TestApp, model: &str) -> Vec<Value> {
    let (s, v) = app
        .get_json(&format!(
            "/v1/quality?model={model}&from={}&to={}",
            enc(&rfc(T0 + DAY)),
            enc(&rfc(T0 + DAYS * DAY))
        ))
        .await;
    assert_eq!(s, 200, "{v}");
    v["windows"].as_array().cloned().unwrap_or_default()
}

fn failed_rules(w: &Value) -> Vec<String> {
    w["failed_rules"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn violation<'a>(w: &'a Value, rule: &str) -> &'a Value {
    w["violations"]
        .as_array()
        .and_then(|a| a.iter().find(|v| v["rule"] == rule))
        .unwrap_or_else(|| panic!("no {rule} violation in {w}"))
}

#[tokio::test]
async fn each_known_defect_is_found_on_its_day_and_nothing_else_is_flagged() {
    let clock = ManualClock::at_secs(T0 + DAYS * DAY + 600);
    let app = spawn_app_with(Options {
        tweak: Box::new(|raw| {
            raw.drift.default_monitor = false;
            raw.health.enabled = false;
            raw.performance.enabled = false;
            raw.quality.window_secs = DAY as u64;
            raw.quality.schedule = "0 7 0 * * *".into();
            raw.jobs.poll_interval_ms = 10;
        }),
        clock: clock.clock(),
        ..Default::default()
    })
    .await;
    post_days(&app).await;
    for day in 1..DAYS {
        app.run_job("quality", T0 + day * DAY).await;
    }
    let days = |vs: &[Value]| -> Vec<(i64, String, Vec<String>)> {
        vs.iter()
            .map(|w| {
                let start = chrono::DateTime::parse_from_rfc3339(
                    w["window_start"].as_str().expect("window_start"),
                )
                .expect("time")
                .timestamp();
                (
                    (start - T0) / DAY,
                    w["verdict"].as_str().unwrap_or("?").to_owned(),
                    failed_rules(w),
                )
            })
            .collect()
    };

    // The stationary model: nothing flagged in 13 windows, and the checks did run.
    let stationary = verdicts(&app, "stationary").await;
    assert_eq!(stationary.len(), (DAYS - 1) as usize);
    for (day, verdict, rules) in days(&stationary) {
        assert_eq!(verdict, "pass", "stationary day {day}: {rules:?}");
    }
    let (_, whole) = app
        .get_json(&format!(
            "/v1/quality?model=stationary&from={}&to={}",
            enc(&rfc(T0 + DAY)),
            enc(&rfc(T0 + DAYS * DAY))
        ))
        .await;
    let consent = &whole["consent"];
    assert_eq!(
        consent["interactions"].as_u64(),
        Some(((DAYS - 1) * 24 * PER_HOUR) as u64),
        "{consent}"
    );
    let flagged = consent["flagged_share"].as_f64().expect("flagged share");
    let training = consent["training_share"].as_f64().expect("training share");
    assert!((flagged - 0.8).abs() < 0.02, "{consent}");
    assert!((training - 0.7).abs() < 0.02, "{consent}");
    let day5 = &stationary[4];
    let tally = |w: &Value, rule: &str| -> u64 {
        w["rules"]
            .as_array()
            .and_then(|a| a.iter().find(|t| t["rule"] == rule))
            .and_then(|t| t["evaluated"].as_u64())
            .unwrap_or(0)
    };
    // Numeric inputs amount, t3, clicks, age; categorical plan, mobile; every input's schema.
    assert_eq!(tally(day5, "reference_range"), 4, "{day5}");
    assert_eq!(tally(day5, "unseen_categories"), 2, "{day5}");
    assert_eq!(tally(day5, "schema"), 6, "{day5}");
    assert_eq!(tally(day5, "freshness"), 1, "{day5}");

    // Before the defects every model passes; from their day on only the expected rule fires.
    let expect = [
        ("vanish", "schema", "fail", DEFECT_DAY),
        ("kind", "schema", "fail", DEFECT_DAY),
        ("range", "reference_range", "warn", DEFECT_DAY),
        ("category", "unseen_categories", "warn", DEFECT_DAY),
        ("silent", "freshness", "fail", SILENT_DAY),
    ];
    for (model, rule, grade, from_day) in expect {
        let vs = verdicts(&app, model).await;
        for (day, verdict, rules) in days(&vs) {
            if day < from_day {
                assert_eq!(verdict, "pass", "{model} day {day}: {rules:?}");
            } else if day == from_day {
                assert_eq!(verdict, grade, "{model} day {day}: {rules:?}");
                assert_eq!(rules, [rule], "{model} day {day}");
            } else {
                assert!(
                    rules.iter().all(|r| r == rule),
                    "{model} day {day}: {rules:?}"
                );
            }
        }
        let w = vs
            .iter()
            .find(|w| {
                w["window_start"]
                    .as_str()
                    .is_some_and(|s| s.starts_with(&rfc(T0 + from_day * DAY)[..10]))
            })
            .unwrap_or_else(|| panic!("{model}: no window on day {from_day}"));
        let v = violation(w, rule);
        match model {
            "vanish" => {
                assert_eq!(v["feature"], "age", "{v}");
                assert!(
                    v["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("vanished")),
                    "{v}"
                );
            }
            "kind" => {
                assert_eq!(v["feature"], "clicks", "{v}");
                assert!(
                    v["message"].as_str().is_some_and(
                        |m| m.contains("numeric in the baseline, categorical in the window")
                    ),
                    "{v}"
                );
            }
            "range" => {
                assert_eq!(v["feature"], "age", "{v}");
                let share = v["value"].as_f64().expect("share");
                assert!((0.012..0.03).contains(&share), "{v}");
            }
            "category" => {
                assert_eq!(v["feature"], "plan", "{v}");
                let share = v["value"].as_f64().expect("share");
                assert!((0.04..0.06).contains(&share), "{v}");
                assert!(
                    v["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("enterprise")),
                    "{v}"
                );
            }
            _ => {
                assert_eq!(v["feature"], "interaction", "{v}");
                assert_eq!(v["value"].as_f64(), Some(DAY as f64), "{v}");
            }
        }
    }

    // The summary over the range adds up, and the newest window is exported.
    let (_, range) = app
        .get_json(&format!(
            "/v1/quality?model=vanish&from={}&to={}",
            enc(&rfc(T0 + DAY)),
            enc(&rfc(T0 + DAYS * DAY))
        ))
        .await;
    let s = &range["summary"];
    assert_eq!(s["windows"], DAYS - 1, "{s}");
    let fails = days(&verdicts(&app, "vanish").await)
        .iter()
        .filter(|d| d.1 == "fail")
        .count();
    assert_eq!(s["fail"].as_u64(), Some(fails as u64), "{s}");
    assert_eq!(
        s["interactions_failed"].as_u64(),
        Some(fails as u64 * 24 * PER_HOUR as u64),
        "{s}"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("flywheel_quality_verdict{model=\"stationary\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("flywheel_quality_checked{model=\"stationary\",rule=\"schema\"} 6"),
        "{metrics}"
    );
    assert!(
        metrics.contains("flywheel_quality_violations{model=\"silent\",rule=\"freshness\"} 1"),
        "{metrics}"
    );

    // The weekly report of the first week (days 0-6: windows of days 1-6) says what share of
    // the data failed which rule, beside the pipeline's own quality_failed count.
    app.run_job("weekly_report", T0).await;
    let (s, md) = app.get_text("/reports/2026-W45.md").await;
    assert_eq!(s, 200, "{md}");
    let section = md
        .split("\n## ")
        .find(|s| s.starts_with("vanish"))
        .unwrap_or_else(|| panic!("no section for vanish: {md}"));
    for needle in [
        "### Data quality (6 windows)",
        "2 pass, 0 warn, 4 fail. 66.7 % of the week's",
        "schema (fail) in 4 windows, 66.7 % of the interactions",
        "Most often: age (schema, 4 windows)",
        "quality_failed (2.0 %)",
    ] {
        assert!(section.contains(needle), "{needle:?} not in:\n{section}");
    }
    let stationary_section = md
        .split("\n## ")
        .find(|s| s.starts_with("stationary"))
        .expect("stationary section");
    assert!(
        stationary_section.contains("6 pass, 0 warn, 0 fail."),
        "{stationary_section}"
    );
    let consent_line = stationary_section
        .lines()
        .find(|l| l.starts_with("Consent: "))
        .unwrap_or_else(|| panic!("no consent line: {stationary_section}"));
    let first_pct: f64 = consent_line
        .trim_start_matches("Consent: ")
        .split(' ')
        .next()
        .and_then(|x| x.parse().ok())
        .unwrap_or_else(|| panic!("{consent_line}"));
    assert!((first_pct - 80.0).abs() < 2.0, "{consent_line}");
    // The week's users form one weekly cohort of 200, above k: shown, not suppressed.
    assert!(
        consent_line
            .ends_with("0 of 1 weekly retention cohorts are suppressed (fewer than k users)."),
        "{consent_line}"
    );

    // Clear errors for bad requests.
    let (s, v) = app.get_json("/v1/quality?model=nobody").await;
    assert_eq!(s, 404, "{v}");
    let (s, v) = app
        .get_json("/v1/quality?model=vanish&from=yesterday")
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(v.to_string().contains("from"), "{v}");
    app.stop().await;
}
