//! Flywheel health scenarios through the real server: events in over HTTP, the health job run
//! for each simulated day, states and figures read back over the API and from /metrics.

use crate::helpers::{spawn_app_with, Options, TestApp};
use flywheel::clock::ManualClock;
use serde_json::{json, Value};

/// 2026-11-02T00:00:00Z, a Monday.
const T0: i64 = 1_793_577_600;
const DAY: i64 = 86_400;

fn rfc(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("time")
        .to_rfc3339()
        .replace('+', "%2B")
}

fn ts(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("time")
        .to_rfc3339()
}

async fn start(
    now: i64,
    tweak: impl FnOnce(&mut flywheel::config::RawConfig) + Send + 'static,
) -> TestApp {
    let clock = ManualClock::at_secs(now);
    spawn_app_with(Options {
        tweak: Box::new(move |raw| {
            raw.drift.default_monitor = false;
            raw.jobs.poll_interval_ms = 50;
            tweak(raw);
        }),
        clock: clock.clock(),
        ..Default::default()
    })
    .await
}

async fn post(app: &TestApp, events: &[Value]) {
    for chunk in events.chunks(5000) {
        let (s, v) = app.post_ndjson(chunk).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["rejected"], 0, "{v}");
    }
}

fn eval(model: &str, cycle: u64, day: i64, metric: &str, value: f64) -> Value {
    json!({
        "event_id": format!("{model}-eval-{cycle}"),
        "event_type": "model_eval",
        "occurred_at": ts(T0 + day * DAY + 3600),
        "model": {"id": model, "version": format!("c{cycle}")},
        "cycle": cycle,
        "eval_set": {"id": "golden-v1"},
        "metrics": [{"name": metric, "value": value, "higher_is_better": true}],
        "train_data": {"total_examples": 10_000 * cycle, "new_examples": 10_000, "data_cutoff_at": ts(T0 + day * DAY - 2 * DAY)},
    })
}

/// Run the health job for the day ending at `T0 + day_end * DAY` and return the result.
async fn run_health(app: &TestApp, day_end: i64) -> Value {
    let r = app
        .client
        .post(app.url(&format!(
            "/v1/jobs/health/run?window={}",
            rfc(T0 + (day_end - 1) * DAY)
        )))
        .send()
        .await
        .expect("run");
    assert_eq!(r.status().as_u16(), 200);
    let run: Value = r.json().await.expect("json");
    assert_eq!(run["outcome"], "success", "{run}");
    run
}

async fn learning_states(app: &TestApp, model: &str) -> Vec<String> {
    let (s, h) = app
        .get_json(&format!("/v1/health/history?model={model}"))
        .await;
    assert_eq!(s, 200, "{h}");
    h["history"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| x["arcs"]["learning"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// A small deterministic wobble (±0.0015) so that no two evaluations tie exactly.
fn wobble(c: u64) -> f64 {
    ((c as f64 * 2.399).sin()) * 0.0015
}

#[tokio::test]
async fn learning_arc_scenarios_improving_flattening_regressing_and_noise() {
    let cycles = 30u64;
    let flatten_at = 12u64; // first cycle without a gain
                            // The scheduler's first poll runs the latest fire's window (ending T0 + 31 days, before any
                            // event arrives); the runs below replace it.
    let app = start(T0 + (cycles as i64 + 1) * DAY + 3600, |raw| {
        raw.health.delta_min.insert("noisy_ndcg".into(), 0.002);
    })
    .await;
    let mut events = Vec::new();
    for c in 1..=cycles {
        let d = c as i64;
        events.push(eval(
            "improving",
            c,
            d,
            "ndcg",
            0.5 + 0.01 * c as f64 + wobble(c),
        ));
        let flat = if c < flatten_at {
            0.5 + 0.01 * c as f64
        } else {
            0.5 + 0.01 * (flatten_at - 1) as f64
        };
        events.push(eval("flattening", c, d, "ndcg", flat + wobble(c)));
        let reg = if c <= 10 {
            0.5 + 0.01 * c as f64
        } else {
            0.6 - 0.01 * (c - 10) as f64
        };
        events.push(eval("regressing", c, d, "ndcg", reg + wobble(c)));
        events.push(eval(
            "noisy",
            c,
            d,
            "noisy_ndcg",
            0.7 + 2.0 * wobble(c * 7 + 3),
        ));
    }
    post(&app, &events).await;
    // One health run per day, after each day's evaluation.
    for day in 1..=cycles as i64 {
        run_health(&app, day + 1).await;
    }
    let improving = learning_states(&app, "improving").await;
    assert_eq!(improving.len(), cycles as usize);
    assert!(
        improving.iter().all(|s| s == "OK" || s == "INSUFFICIENT"),
        "improving: {improving:?}"
    );
    assert_eq!(improving.last().map(String::as_str), Some("OK"));

    let flattening = learning_states(&app, "flattening").await;
    let first_plateau = flattening
        .iter()
        .position(|s| s == "PLATEAU")
        .map(|i| i as u64 + 1) // index i is the run after cycle i + 1
        .expect("the flattening model reaches PLATEAU");
    eprintln!("flattening at cycle {flatten_at}: states {flattening:?}");
    assert!(
        first_plateau > flatten_at,
        "PLATEAU at cycle {first_plateau} before the flattening"
    );
    // Declared on the second consecutive qualifying evaluation: the one before said SLOWING.
    assert_eq!(
        flattening[first_plateau as usize - 2],
        "SLOWING",
        "{flattening:?}"
    );
    // Within the window: once the last k = 8 cycles are flat.
    assert!(
        first_plateau <= flatten_at + 8,
        "PLATEAU only at cycle {first_plateau}"
    );
    // And it holds (hysteresis) while the series stays flat.
    assert!(flattening[first_plateau as usize - 1..]
        .iter()
        .all(|s| s == "PLATEAU"));

    let regressing = learning_states(&app, "regressing").await;
    assert_eq!(
        regressing.last().map(String::as_str),
        Some("REGRESSING"),
        "{regressing:?}"
    );
    assert!(!regressing[..10].contains(&"REGRESSING".to_owned()));

    // Noise without a trend settles and does not flap.
    let noisy = learning_states(&app, "noisy").await;
    let changes = noisy.windows(2).filter(|w| w[0] != w[1]).count();
    eprintln!("noisy: {noisy:?}");
    assert!(changes <= 3, "{changes} state changes: {noisy:?}");
    assert!(!noisy.contains(&"REGRESSING".to_owned()), "{noisy:?}");

    // The latest health has the velocity with its interval, and the arc says why and what to try.
    let (_, h) = app.get_json("/v1/health?model=flattening").await;
    let learning = &h["arcs"]["learning"];
    assert_eq!(learning["state"], "PLATEAU");
    assert!(
        learning["why"]
            .as_str()
            .is_some_and(|w| w.contains("Sen slope")),
        "{learning}"
    );
    assert!(learning["advice"].as_str().is_some_and(|a| !a.is_empty()));
    assert!(
        learning["since"]
            .as_str()
            .is_some_and(|s| s.starts_with("cycle")),
        "{learning}"
    );
    let pc = &h["velocity"]["per_cycle"];
    assert!(
        pc["lower"].as_f64() <= pc["estimate"].as_f64()
            && pc["estimate"].as_f64() <= pc["upper"].as_f64()
    );
    let (_, h) = app.get_json("/v1/health?model=improving").await;
    let slope = h["velocity"]["per_cycle"]["estimate"]
        .as_f64()
        .expect("slope");
    assert!((slope - 0.01).abs() < 0.002, "{slope}");
    // 10,000 new examples a cycle: ~0.01 per 10k = 0.001 per 1k.
    let g = h["velocity"]["gain_per_1k_examples"]
        .as_f64()
        .expect("gain");
    assert!((g - 0.001).abs() < 0.0005, "{g}");
    assert_eq!(
        h["velocity"]["loop_latency_seconds"],
        Value::Null,
        "no deploys were sent"
    );

    let text = app.metrics().await;
    assert!(
        text.contains("flywheel_arc_state{arc=\"learning\",model=\"flattening\"} 2"),
        "{text}"
    );
    assert!(text.contains("flywheel_arc_state{arc=\"learning\",model=\"regressing\"} 3"));
    assert!(text.contains("flywheel_arc_state{arc=\"learning\",model=\"improving\"} 0"));
    assert!(text.contains("flywheel_improvement_velocity{model=\"improving\",per=\"cycle\"}"));
    app.stop().await;
}

#[tokio::test]
async fn feedback_funnel_uplift_retention_and_the_input_arc() {
    let weeks = 12i64;
    let end = T0 + weeks * 7 * DAY;
    let app = start(end + 3600, |_| {}).await;
    let mut ev = Vec::new();
    let mut id = 0u64;
    let mut next = || {
        id += 1;
        format!("e{id}")
    };
    // Curated volume per week: rising for 8 weeks, then a sharp drop.
    for w in 0..weeks {
        let n = if w < 8 { 1000 + 50 * w as u64 } else { 250 };
        ev.push(json!({
            "event_id": next(), "event_type": "data_lifecycle",
            "occurred_at": ts(T0 + w * 7 * DAY + 3600), "model": {"id": "shop", "version": "v1"},
            "stage": "curated", "count": n,
        }));
    }
    // The funnel of the lookback (90 days ≥ the last 12 weeks' tail).
    for (stage, n, consent) in [
        ("collected", 10_000u64, None),
        ("quality_passed", 8_000, None),
        ("consented", 6_000, None),
        ("used_in_training", 3_000, None),
        ("used_in_training", 5, Some(false)),
    ] {
        let mut e = json!({
            "event_id": next(), "event_type": "data_lifecycle",
            "occurred_at": ts(end - 20 * DAY), "model": {"id": "shop", "version": "v1"},
            "stage": stage, "count": n,
        });
        if let Some(c) = consent {
            e["consent"] = json!({"training": c});
        }
        ev.push(e);
    }
    ev.push(json!({
        "event_id": next(), "event_type": "data_lifecycle", "occurred_at": ts(end - 20 * DAY),
        "model": {"id": "shop", "version": "v1"}, "stage": "quality_failed", "count": 2000, "reason": "toxic",
    }));
    // Last two weeks: v1 in the week before, v2 in the last week; 1,000 interactions each,
    // explicit thumbs on 200 (v1, 60 % up) and 100 (v2, 70 % up); 30 users come back.
    for (week, version, fb, up) in [(2i64, "v1", 200usize, 0.6), (1, "v2", 100, 0.7)] {
        let start = end - week * 7 * DAY;
        for i in 0..1000usize {
            let t = start + (i as i64 * 7 * DAY) / 1000;
            let user = format!("u{}", i % 40);
            ev.push(json!({
                "event_id": next(), "event_type": "interaction", "occurred_at": ts(t),
                "model": {"id": "shop", "version": version}, "user_id": user,
                "features": {"x": i as f64},
            }));
            if i < fb {
                let positive = (i as f64) < up * fb as f64;
                ev.push(json!({
                    "event_id": next(), "event_type": "feedback", "occurred_at": ts(t + 60),
                    "model": {"id": "shop", "version": version}, "interaction_id": format!("i{i}"),
                    "kind": "explicit", "signal": "thumbs", "value": if positive { 1 } else { 0 },
                }));
            }
        }
    }
    post(&app, &ev).await;
    // The health job for each of the last 5 weeks (week ends).
    let mut input_states = Vec::new();
    for w in (weeks - 5)..=weeks {
        let run = run_health(&app, w * 7).await;
        input_states.push(
            run["detail"]["models"]["shop"]["arcs"]["input"]
                .as_str()
                .unwrap_or("?")
                .to_owned(),
        );
    }
    eprintln!(
        "input arc by week end {}..={weeks}: {input_states:?}",
        weeks - 5
    );
    assert_eq!(input_states[0], "OK", "rising volume: {input_states:?}");
    assert_eq!(input_states[1], "OK", "rising volume: {input_states:?}");
    // The week of the drop (250 against a 4-week mean of ~1,300): starved at once.
    assert_eq!(
        input_states[2], "PLATEAU",
        "after the drop: {input_states:?}"
    );
    assert_eq!(
        input_states.last().map(String::as_str),
        Some("PLATEAU"),
        "{input_states:?}"
    );
    let (s, h) = app.get_json("/v1/health?model=shop").await;
    assert_eq!(s, 200, "{h}");
    let f = &h["feedback"];
    assert_eq!(f["interactions_7d"], 1000);
    assert_eq!(f["interactions_prev_7d"], 1000);
    assert_eq!(f["explicit_7d"], 100);
    assert_eq!(f["explicit_prev_7d"], 200);
    assert_eq!(f["explicit_rate"]["estimate"], 0.1);
    let w = flywheel::stats::inference::wilson(100, 1000, 0.95).expect("wilson");
    assert_eq!(f["explicit_rate"]["lower"].as_f64(), Some(w.lower));
    assert_eq!(f["explicit_rate"]["upper"].as_f64(), Some(w.upper));
    assert_eq!(f["positive_share"]["estimate"], 0.7);
    assert_eq!(f["change"]["explicit_feedback"], -0.5);
    assert_eq!(f["usable_7d"], 250);
    // Uplift of v2 over v1 on the positive share: +0.1, two-proportion.
    let u = &h["uplift"];
    assert_eq!(
        (
            u["previous_version"].as_str(),
            u["current_version"].as_str()
        ),
        (Some("v1"), Some("v2"))
    );
    let m = &u["metrics"][0];
    assert_eq!(m["metric"], "positive_share");
    assert_eq!(m["test"], "two_proportion_z");
    let d = flywheel::stats::inference::two_proportions(120, 200, 70, 100, 0.95).expect("z");
    assert!((m["difference"].as_f64().unwrap_or(9.0) - 0.1).abs() < 1e-12);
    assert_eq!(m["lower"].as_f64(), Some(d.lower));
    assert_eq!(m["decision"], "no_difference", "{m}");
    // Funnel: conversions, yield, the violation.
    let fu = &h["funnel"];
    assert_eq!(fu["conversions"]["quality_passed"], 0.8);
    assert_eq!(fu["conversions"]["consented"], 0.75);
    assert_eq!(fu["training_consent_violations"], 5);
    assert_eq!(fu["top_failure_reasons"][0], json!(["toxic", 2000]));
    assert!(
        h["verdict"]
            .as_str()
            .is_some_and(|v| v.starts_with("PRIVACY VIOLATION")),
        "{}",
        h["verdict"]
    );
    // Retention: 40 users, active every day of the last two weeks (25 interactions a day).
    let r = &h["retention"];
    assert_eq!(r["d1"]["value"], 1.0, "{r}");
    assert_eq!(r["d1"]["suppressed"], false);
    assert!(r["stickiness"].as_f64().is_some_and(|s| s > 0.9), "{r}");
    let text = app.metrics().await;
    for needle in [
        "flywheel_feedback_rate_ratio{kind=\"explicit\",model=\"shop\"} 0.1",
        "flywheel_feedback_change_ratio{model=\"shop\",series=\"explicit_feedback\"} -0.5",
        "flywheel_training_consent_violations{model=\"shop\"} 5",
        "flywheel_funnel_conversion_ratio{model=\"shop\",stage=\"quality_passed\"} 0.8",
        "flywheel_retention_ratio{day=\"1\",model=\"shop\"} 1",
        "flywheel_engagement_uplift{metric=\"positive_share\",model=\"shop\"}",
    ] {
        assert!(text.contains(needle), "{needle} missing");
    }
    app.stop().await;
}

#[tokio::test]
async fn small_cohorts_are_suppressed() {
    let app = start(T0 + 10 * DAY, |_| {}).await;
    let mut ev = Vec::new();
    for u in 0..5 {
        for d in [0i64, 1] {
            ev.push(json!({
                "event_id": format!("s{u}-{d}"), "event_type": "interaction",
                "occurred_at": ts(T0 + d * DAY + 100), "model": {"id": "tiny", "version": "v1"},
                "user_id": format!("user{u}"), "features": {"x": 1.0},
            }));
        }
    }
    post(&app, &ev).await;
    // The reason under which consent violations are counted cannot be sent.
    let (s, v) = app
        .post_ndjson(&[json!({
            "event_id": "r1", "event_type": "data_lifecycle", "occurred_at": ts(T0 + 100),
            "model": {"id": "tiny", "version": "v1"}, "stage": "purged", "reason": "consent:training=false",
        })])
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["errors"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("reserved")),
        "{v}"
    );
    run_health(&app, 10).await;
    let (_, h) = app.get_json("/v1/health?model=tiny").await;
    let r = &h["retention"];
    assert_eq!(r["d1"]["suppressed"], true, "{r}");
    assert_eq!(r["d1"]["value"], Value::Null);
    assert!(r["weekly_cohorts"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|c| c["suppressed"] == true));
    app.stop().await;
}

/// Weekly-style evaluation series with a known answer, varying the size of the early gains and
/// the noise (about a tenth of the gains): a series that goes flat at cycle 9 is PLATEAU within
/// 3 cycles (after SLOWING), one that starts losing 12σ a cycle at cycle 10 is REGRESSING within
/// 2, a steady one stays OK, flat noise never regresses and changes state at most 3 times. Every
/// state comes from the service: events over HTTP, one health run per cycle.
#[tokio::test]
async fn plateau_and_regression_are_flagged_within_cycles_of_their_start() {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};
    let cycles = 24u64;
    let app = start(T0 + (cycles as i64 + 1) * DAY + 3600, |_| {}).await;
    let configs = [(0.03, 0.001, 1u64), (0.02, 0.001, 2), (0.01, 0.0005, 3)];
    let mut events = Vec::new();
    for (i, &(g0, sigma, seed)) in configs.iter().enumerate() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let noise = Normal::new(0.0, sigma).expect("normal");
        let (mut flat, mut reg, mut steady) = (0.6f64, 0.6f64, 0.5f64);
        for c in 1..=cycles {
            let gain = g0 * 0.85f64.powi(c as i32 - 2);
            if c > 1 {
                // Flat from cycle 9 (cycles 2..=8 gain), losing 12σ a cycle from cycle 10.
                flat += if c <= 8 { gain } else { 0.0 };
                reg += if c <= 9 { gain } else { -12.0 * sigma };
                steady += 10.0 * sigma;
            }
            let d = c as i64;
            let mut e = |name: &str, v: f64| {
                events.push(eval(
                    &format!("{name}{i}"),
                    c,
                    d,
                    "acc",
                    v + noise.sample(&mut rng),
                ));
            };
            e("flat", flat);
            e("reg", reg);
            e("steady", steady);
            e("noise", 0.7);
        }
    }
    post(&app, &events).await;
    for day in 1..=cycles as i64 {
        run_health(&app, day + 1).await;
    }
    for (i, &(g0, sigma, _)) in configs.iter().enumerate() {
        let tag = format!("gains {g0}, noise {sigma}");
        let flat = learning_states(&app, &format!("flat{i}")).await;
        let at = flat.iter().position(|s| s == "PLATEAU").map(|p| p + 1);
        let at = at.unwrap_or_else(|| panic!("{tag}: no PLATEAU: {flat:?}"));
        assert!(
            (9..=12).contains(&at),
            "{tag}: PLATEAU at cycle {at}: {flat:?}"
        );
        assert_eq!(flat[at - 2], "SLOWING", "{tag}: {flat:?}");
        let reg = learning_states(&app, &format!("reg{i}")).await;
        let at = reg.iter().position(|s| s == "REGRESSING").map(|p| p + 1);
        let at = at.unwrap_or_else(|| panic!("{tag}: no REGRESSING: {reg:?}"));
        assert!(
            (10..=12).contains(&at),
            "{tag}: REGRESSING at cycle {at}: {reg:?}"
        );
        let steady = learning_states(&app, &format!("steady{i}")).await;
        assert!(
            steady.iter().all(|s| s == "OK" || s == "INSUFFICIENT"),
            "{tag}: {steady:?}"
        );
        let noise = learning_states(&app, &format!("noise{i}")).await;
        assert!(
            !noise.contains(&"REGRESSING".to_owned()),
            "{tag}: {noise:?}"
        );
        let changes = noise.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(changes <= 3, "{tag}: {changes} changes: {noise:?}");
    }
    app.stop().await;
}

#[tokio::test]
async fn learning_curve_forecast_through_the_server() {
    // "curve": ndcg = 0.9 − 2·n^(−0.5) over 10 cycles of 10,000 new examples (a small wobble);
    // "young": three evaluations only.
    let truth = |n: f64| 0.9 - 2.0 * n.powf(-0.5);
    let app = start(T0 + 12 * DAY + 3600, |_| {}).await;
    let mut events = Vec::new();
    for c in 1..=10u64 {
        let n = 10_000.0 * c as f64;
        events.push(eval(
            "curve",
            c,
            c as i64,
            "ndcg",
            truth(n) + wobble(c) / 15.0,
        ));
    }
    for c in 1..=3u64 {
        events.push(eval("young", c, c as i64, "ndcg", 0.5 + 0.01 * c as f64));
    }
    post(&app, &events).await;
    run_health(&app, 12).await;

    let (s, h) = app.get_json("/v1/health?model=curve").await;
    assert_eq!(s, 200, "{h}");
    let lc = &h["velocity"]["learning_curve"];
    assert_eq!(lc["points"].as_array().map(Vec::len), Some(10), "{lc}");
    let b = lc["curve"]["b"].as_f64().expect("exponent");
    let ceiling = lc["curve"]["ceiling"].as_f64().expect("ceiling");
    assert!((b - 0.5).abs() < 0.1, "{lc}");
    assert!((ceiling - 0.9).abs() < 0.01, "{lc}");
    assert_eq!(lc["next_examples"].as_f64(), Some(110_000.0), "{lc}");
    let next = &lc["next_cycle_gain"];
    let want = truth(110_000.0) - truth(100_000.0);
    let est = next["estimate"].as_f64().expect("estimate");
    assert!((est - want).abs() < 0.3 * want, "{next} vs {want}");
    let (lo, up) = (
        next["lower"].as_f64().expect("lower"),
        next["upper"].as_f64().expect("upper"),
    );
    assert!(lo <= est && est <= up && lo < up, "{next}");
    let dbl = lc["doubling_gain"]["estimate"].as_f64().expect("doubling");
    let want = truth(200_000.0) - truth(100_000.0);
    assert!((dbl - want).abs() < 0.3 * want, "{dbl} vs {want}");

    let (_, h) = app.get_json("/v1/health?model=young").await;
    let lc = &h["velocity"]["learning_curve"];
    assert!(lc["curve"].is_null(), "{lc}");
    assert!(
        lc["note"].as_str().is_some_and(|n| n.contains("too few")),
        "{lc}"
    );

    let text = app.metrics().await;
    for horizon in ["next_cycle", "doubling"] {
        for suffix in ["", "_lower", "_upper"] {
            let series =
                format!("flywheel_expected_gain{suffix}{{horizon=\"{horizon}\",model=\"curve\"}}");
            assert!(text.contains(&series), "{series} missing");
        }
    }
    assert!(
        !text.contains("flywheel_expected_gain{horizon=\"doubling\",model=\"young\"}"),
        "no forecast is exported for a model with too few evaluations"
    );
    app.stop().await;
}
