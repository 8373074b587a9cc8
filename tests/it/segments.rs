//! Per-segment drift through the real server: inputs summarised per value of a configured
//! segment key, a drift that exists only in one segment of five (10 % of the traffic) is found in
//! that segment and ranked first, while diluted in the whole population it is not decided as
//! drift.

use crate::helpers::{rfc, spawn_app_with, Options};
use flywheel::clock::ManualClock;
use flywheel::drift::monitor::RawMonitor;
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde_json::{json, Value};

/// 2026-11-02T00:00:00Z.
const T0: i64 = 1_793_577_600;
const DAY: i64 = 86_400;
const PER_DAY: i64 = 6_000;

/// One day of interactions: `country` BR 10 %, US 30 %, DE, FR and IN 20 % each; inputs f0, f1
/// standard normal and `plan`; on `drift` days f0 moves by 0.5 sd in BR only.
fn day(rng: &mut StdRng, d: i64, drift: bool) -> Vec<Value> {
    let norm = Normal::new(0.0, 1.0).expect("normal");
    (0..PER_DAY)
        .map(|i| {
            let u: f64 = rng.gen();
            let country = if u < 0.1 {
                "BR"
            } else if u < 0.4 {
                "US"
            } else if u < 0.6 {
                "DE"
            } else if u < 0.8 {
                "FR"
            } else {
                "IN"
            };
            let mut f0: f64 = norm.sample(rng);
            if drift && country == "BR" {
                f0 += 0.5;
            }
            let plan = if rng.gen::<f64>() < 0.7 {
                "free"
            } else {
                "pro"
            };
            json!({
                "event_id": format!("e-{d}-{i}"),
                "event_type": "interaction",
                "occurred_at": rfc(T0 + d * DAY + i * DAY / PER_DAY),
                "model": {"id": "shop", "version": "v1"},
                "features": {"f0": f0, "f1": norm.sample(rng), "plan": plan},
                "segment": {"country": country},
                "prediction": {"score": rng.gen::<f64>()},
            })
        })
        .collect()
}

#[tokio::test]
async fn a_drift_in_one_segment_of_five_is_found_there_and_not_overall() {
    let clock = ManualClock::at_secs(T0 + 2 * DAY + 600);
    let app = spawn_app_with(Options {
        tweak: Box::new(|raw| {
            raw.monitors = vec![RawMonitor {
                name: "daily".into(),
                window_secs: DAY as u64,
                baseline: "rolling:1d".into(),
                schedule: "0 5 0 * * *".into(),
                watch: vec!["inputs".into()],
                persistence: [1, 1],
                multivariate: false,
                ..Default::default()
            }];
            raw.ingest.segment_keys = vec!["country".into()];
            raw.health.enabled = false;
            raw.performance.enabled = false;
            raw.quality.enabled = false;
        }),
        clock: clock.clock(),
        ..Default::default()
    })
    .await;
    let mut rng = StdRng::seed_from_u64(5);
    for d in 0..2 {
        let events = day(&mut rng, d, d == 1);
        for chunk in events.chunks(5000) {
            let (s, body) = app.post_ndjson(chunk).await;
            assert_eq!(s, 200, "{body}");
            assert_eq!(
                body["accepted"].as_u64(),
                Some(chunk.len() as u64),
                "{body}"
            );
        }
    }
    app.run_job("drift:daily", T0 + DAY).await;
    let (s, latest) = app.get_json("/v1/drift/latest?model=shop").await;
    assert_eq!(s, 200, "{latest}");
    let m = &latest["monitors"][0];
    assert_eq!(
        m["window_start"].as_str().map(|t| &t[..10]),
        Some("2026-11-03"),
        "{m}"
    );
    // Overall: the 0.05 sd shift of the whole population is not a drift.
    let f0 = m["features"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["feature"] == "f0"))
        .unwrap_or_else(|| panic!("no f0 in {m}"));
    assert_ne!(f0["decision"], "drift", "{f0}");
    assert_eq!(m["dataset"]["drifted"], 0, "{}", m["dataset"]);
    // Per segment: BR first, with f0 drifted; the four others clean.
    let segs = m["dataset"]["segments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(segs.len(), 5, "{segs:?}");
    assert_eq!(segs[0]["key"], "country");
    assert_eq!(segs[0]["value"], "BR", "{segs:?}");
    assert_eq!(segs[0]["drifted_features"], json!(["f0"]), "{segs:?}");
    let share = segs[0]["share"].as_f64().expect("share");
    assert!((share - 0.1).abs() < 0.02, "{share}");
    for s in &segs[1..] {
        assert_eq!(s["drifted"], 0, "{s}");
        assert_eq!(s["decided"], 3, "{s}");
    }
    // The weekly report says where the drift is.
    app.run_job("weekly_report", T0).await;
    let (s, md) = app.get_text("/reports/2026-W45.md").await;
    assert_eq!(s, 200, "{md}");
    assert!(
        md.contains("Drift is concentrated in country=BR (f0 in 1 window)."),
        "{md}"
    );
    app.stop().await;
}

/// Two weeks of interactions and explicit feedback, both labelled with `country` (shares as in
/// [`day`]): 20 % of interactions get feedback, except in BR in the second week (10 %: its rate
/// halves); 60 % of the feedback is positive, except on version v2 (the second week) in DE
/// (80 %).
fn feedback_weeks(rng: &mut StdRng) -> Vec<Value> {
    let mut out = Vec::new();
    for d in 0..14 {
        let version = if d < 7 { "v1" } else { "v2" };
        for i in 0..2_000 {
            let u: f64 = rng.gen();
            let country = match u {
                u if u < 0.1 => "BR",
                u if u < 0.4 => "US",
                u if u < 0.6 => "DE",
                u if u < 0.8 => "FR",
                _ => "IN",
            };
            let at = T0 + d * DAY + i * DAY / 2_000;
            out.push(json!({
                "event_id": format!("i-{d}-{i}"),
                "event_type": "interaction",
                "occurred_at": rfc(at),
                "model": {"id": "shop", "version": version},
                "features": {"f0": rng.gen::<f64>()},
                "segment": {"country": country},
            }));
            let p_feedback = if d >= 7 && country == "BR" { 0.1 } else { 0.2 };
            if rng.gen::<f64>() < p_feedback {
                let p_positive = if d >= 7 && country == "DE" { 0.8 } else { 0.6 };
                out.push(json!({
                    "event_id": format!("f-{d}-{i}"),
                    "event_type": "feedback",
                    "occurred_at": rfc(at + 30),
                    "model": {"id": "shop", "version": version},
                    "interaction_id": format!("i-{d}-{i}"),
                    "kind": "explicit", "signal": "thumbs",
                    "value": if rng.gen::<f64>() < p_positive { 1 } else { 0 },
                    "segment": {"country": country},
                }));
            }
        }
    }
    out
}

#[tokio::test]
async fn a_segment_whose_feedback_rate_halves_is_found_while_the_others_hold() {
    let clock = ManualClock::at_secs(T0 + 14 * DAY + 600);
    let app = spawn_app_with(Options {
        tweak: Box::new(|raw| {
            raw.monitors = Vec::new();
            raw.ingest.segment_keys = vec!["country".into()];
            raw.performance.enabled = false;
            raw.quality.enabled = false;
        }),
        clock: clock.clock(),
        ..Default::default()
    })
    .await;
    let mut rng = StdRng::seed_from_u64(15);
    let events = feedback_weeks(&mut rng);
    for chunk in events.chunks(5000) {
        let (s, body) = app.post_ndjson(chunk).await;
        assert_eq!(s, 200, "{body}");
        assert_eq!(
            body["accepted"].as_u64(),
            Some(chunk.len() as u64),
            "{body}"
        );
    }
    app.run_job("health", T0 + 13 * DAY).await;
    let (s, h) = app.get_json("/v1/health?model=shop").await;
    assert_eq!(s, 200, "{h}");
    let f = &h["feedback"];
    // Model-wide the drop is diluted: 20 % → 19 %.
    let change = f["change"]["explicit_feedback"].as_f64().expect("change");
    assert!(change > -0.1, "model-wide change {change}");
    let segs = f["by_segment"].as_array().cloned().unwrap_or_default();
    assert_eq!(segs.len(), 5, "{segs:#?}");
    // BR first, fallen by about half; the four others steady.
    assert_eq!(segs[0]["segment"], "country=BR", "{segs:#?}");
    assert_eq!(segs[0]["decision"], "fell", "{:#}", segs[0]);
    let br = segs[0]["change"].as_f64().expect("BR change");
    assert!((br + 0.5).abs() < 0.15, "BR change {br}");
    // The counts are the events sent: BR's interactions in the second week.
    let br_sent = events
        .iter()
        .filter(|e| {
            e["event_type"] == "interaction"
                && e["segment"]["country"] == "BR"
                && e["model"]["version"] == "v2"
        })
        .count() as u64;
    assert_eq!(segs[0]["interactions_7d"].as_u64(), Some(br_sent));
    for s in &segs[1..] {
        assert_eq!(s["decision"], "steady", "{s:#}");
    }
    let metrics = app.metrics().await;
    let gauge = |direction: &str| {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("flywheel_segments_feedback_changed{")
                    && l.contains(&format!("direction=\"{direction}\""))
                    && l.contains("model=\"shop\"")
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    assert_eq!(gauge("fell"), Some(1.0), "{metrics}");
    assert_eq!(gauge("rose"), Some(0.0), "{metrics}");
    // Uplift of v2 over v1 per segment: DE better (60 % → 80 % positive), the others not.
    let up = h["uplift"]["by_segment"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(up.len(), 5, "{up:#?}");
    for pair in &up {
        let (segment, m) = (&pair[0], &pair[1]);
        assert_eq!(m["metric"], "positive_share", "{m}");
        let want = if segment == "country=DE" {
            "better"
        } else {
            "no_difference"
        };
        assert_eq!(m["decision"], want, "{segment}: {m:#}");
    }
    // The weekly report of the second week names both.
    app.run_job("weekly_report", T0 + 7 * DAY).await;
    let (s, md) = app.get_text("/reports/2026-W46.md").await;
    assert_eq!(s, 200, "{md}");
    for line in md.lines().filter(|l| l.contains(" in country=")) {
        eprintln!("{line}");
    }
    assert!(
        md.contains("Explicit feedback fell in country=BR: "),
        "{md}"
    );
    assert!(md.contains("is better in country=DE: "), "{md}");
    assert_eq!(md.matches("Explicit feedback fell in").count(), 1, "{md}");
    assert_eq!(md.matches("Explicit feedback rose in").count(), 0, "{md}");
    app.stop().await;
}
