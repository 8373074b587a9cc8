//! Drift monitors on time-shaped data, through the real server with an injected clock: the
//! scheduler fires on the simulated clock, runs read stored summaries, results come back over
//! the API and as metrics.

use crate::helpers::{spawn_app_with, Options, TestApp};
use flywheel::clock::ManualClock;
use flywheel::drift::monitor::RawMonitor;
use rand::{rngs::StdRng, Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// 2026-11-02T00:00:00Z, a Monday.
const T0: i64 = 1_793_577_600;
const HOUR: i64 = 3600;

/// Times as the API writes them.
fn api_time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("time")
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn rfc(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("time")
        .to_rfc3339()
}

async fn start(monitor: RawMonitor) -> (TestApp, ManualClock) {
    let now = ManualClock::at_secs(T0);
    let app = spawn_app_with(Options {
        tweak: Box::new(move |raw| {
            raw.monitors = vec![monitor];
            raw.jobs.poll_interval_ms = 10;
            raw.storage.checkpoint_interval_secs = 1;
        }),
        clock: now.clock(),
        ..Default::default()
    })
    .await;
    (app, now)
}

/// `n` interactions in the hour starting at `hour_start`; features f0..f{k-1} standard normal,
/// `country` one of four; `drift` shifts f2 by 0.6 sd, doubles f7's spread and moves `country`.
fn hour_of_events(
    rng: &mut StdRng,
    model: &str,
    hour_start: i64,
    n: usize,
    k: usize,
    drift: bool,
) -> Vec<Value> {
    let norm = Normal::new(0.0, 1.0).expect("normal");
    (0..n)
        .map(|i| {
            let mut features = serde_json::Map::new();
            for f in 0..k {
                let mut x: f64 = norm.sample(rng);
                if drift && f == 2 {
                    x += 0.6;
                }
                if drift && f == 7 {
                    x *= 2.0;
                }
                features.insert(format!("f{f}"), json!(x));
            }
            let u: f64 = rng.gen();
            let weights: [f64; 4] = if drift {
                [0.1, 0.2, 0.3, 0.4]
            } else {
                [0.4, 0.3, 0.2, 0.1]
            };
            let mut acc = 0.0;
            let mut country = "DE";
            for (c, w) in ["DE", "FR", "IT", "ES"].iter().zip(weights) {
                acc += w;
                if u < acc {
                    country = c;
                    break;
                }
            }
            features.insert("country".into(), json!(country));
            let score: f64 = rng.gen();
            json!({
                "event_id": format!("{model}-{hour_start}-{i}"),
                "event_type": "interaction",
                "occurred_at": rfc(hour_start + (i as i64 * 3599) / n as i64),
                "model": {"id": model, "version": "v1"},
                "features": features,
                "prediction": {"score": score},
            })
        })
        .collect()
}

async fn post_all(app: &TestApp, events: &[Value]) {
    for chunk in events.chunks(5000) {
        let (status, body) = app.post_ndjson(chunk).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["accepted"].as_u64(),
            Some(chunk.len() as u64),
            "{body}"
        );
    }
}

/// Wait (polling) until the job has `n` recorded runs.
async fn wait_runs(app: &TestApp, job: &str, n: usize) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (s, v) = app
            .get_json(&format!("/v1/jobs/runs?job={job}&limit=1000"))
            .await;
        assert_eq!(s, 200, "{v}");
        let runs = v["runs"].as_array().cloned().unwrap_or_default();
        if runs.len() >= n {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job {job}: {} runs after 30 s, expected {n}: {v}",
            runs.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Feature results of one window: subject → result.
async fn window_results(app: &TestApp, model: &str, window_start: i64) -> Vec<Value> {
    // A feature's history filtered to one window; the dataset row names the features.
    let mut out = Vec::new();
    for f in (0..10)
        .map(|i| format!("f{i}"))
        .chain(["country".to_owned()])
    {
        let (s, v) = app
            .get_json(&format!(
                "/v1/drift?model={model}&feature={f}&from={}&to={}",
                urlencode(&rfc(window_start)),
                urlencode(&rfc(window_start + HOUR))
            ))
            .await;
        assert_eq!(s, 200, "{v}");
        out.extend(v["results"].as_array().cloned().unwrap_or_default());
    }
    out
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

fn set_of(results: &[Value], pred: impl Fn(&Value) -> bool) -> BTreeSet<String> {
    results
        .iter()
        .filter(|r| pred(r))
        .map(|r| r["feature"].as_str().unwrap_or("?").to_owned())
        .collect()
}

#[tokio::test]
async fn scheduled_runs_flag_exactly_the_drifted_features_from_the_right_window() {
    let monitor = RawMonitor {
        name: "hourly".into(),
        window_secs: 3600,
        baseline: "rolling:1d".into(),
        schedule: "0 5 * * * *".into(),
        persistence: [2, 3],
        min_samples: 100,
        max_catch_up: 48,
        ..Default::default()
    };
    let (app, clock) = start(monitor).await;
    let mut rng = StdRng::seed_from_u64(7);
    let drift_from = 30;
    let sparse_hour = 27;
    for h in 0..36i64 {
        let start = T0 + h * HOUR;
        clock.set_secs(start + HOUR - 1);
        let n = if h == sparse_hour { 50 } else { 400 };
        post_all(
            &app,
            &hour_of_events(&mut rng, "shop", start, n, 10, h >= drift_from),
        )
        .await;
        // Five past the next hour: the run for this hour is due.
        clock.set_secs(start + HOUR + 300);
        // (+2: the scheduler's first poll, at T0, ran the window that ended then.)
        wait_runs(&app, "drift:hourly", h as usize + 2).await;
    }
    let expected: BTreeSet<String> = ["f2", "f7", "country"].map(String::from).into();
    // A single window may flag a stationary feature by chance (at 400 events a 3-sigma
    // fluctuation of the mean is 0.15 sd, past the 0.1 effect threshold); persistence (2 of 3
    // windows) is what keeps those from alerting, so alerts must be exact.
    let mut single_window_extras = 0;
    for h in 24..36i64 {
        let res = window_results(&app, "shop", T0 + h * HOUR).await;
        assert_eq!(res.len(), 11, "hour {h}: {res:?}");
        let drifted = set_of(&res, |r| r["decision"] == "drift");
        let alerting = set_of(&res, |r| r["alerting"] == true);
        if h == sparse_hour {
            assert!(
                res.iter().all(|r| r["decision"] == "insufficient_data"),
                "hour {h}: {res:?}"
            );
        } else if h >= drift_from {
            assert!(drifted.is_superset(&expected), "hour {h}: {drifted:?}");
            single_window_extras += drifted.difference(&expected).count();
        } else {
            single_window_extras += drifted.len();
        }
        // Persistence 2 of 3: alerting from the second drifted window on.
        if h <= drift_from {
            assert!(alerting.is_empty(), "hour {h}: alerting {alerting:?}");
        } else {
            assert_eq!(alerting, expected, "hour {h}");
        }
    }
    assert!(
        single_window_extras <= 2,
        "{single_window_extras} chance flags"
    );
    // Day 0 had no baseline (the day before is empty): insufficient data, not drift.
    let first = window_results(&app, "shop", T0).await;
    assert!(first.iter().all(|r| r["decision"] == "insufficient_data"));

    // The latest window over the API, with the dataset decision.
    let (s, latest) = app.get_json("/v1/drift/latest?model=shop").await;
    assert_eq!(s, 200, "{latest}");
    let m = &latest["monitors"][0];
    assert_eq!(m["window_start"], api_time(T0 + 35 * HOUR));
    assert_eq!(m["dataset"]["drifted"], 3, "{m}");
    // 11 inputs and the score (confidence and label were never sent).
    assert_eq!(m["features"].as_array().map(Vec::len), Some(12), "{m}");
    let top: BTreeSet<String> = m["dataset"]["top_drifted"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t["feature"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(top, expected);

    // Metrics: the persistent decision per feature, the ratio, the task freshness.
    let text = app.metrics().await;
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .to_owned()
    };
    assert!(line("flywheel_drift_detected{feature=\"f2\",kind=\"input\",method=\"ks_d\",model=\"shop\",monitor=\"hourly\"}").ends_with(" 1"));
    assert!(line("flywheel_drift_detected{feature=\"country\",kind=\"input\",method=\"jensenshannon\",model=\"shop\",monitor=\"hourly\"}").ends_with(" 1"));
    assert!(line("flywheel_drift_detected{feature=\"f0\",").ends_with(" 0"));
    assert!(
        line("flywheel_task_runs_total{outcome=\"success\",task=\"drift:hourly\"}")
            .ends_with(" 37")
    );
    let ratio: f64 = line("flywheel_drifted_features_ratio{model=\"shop\",monitor=\"hourly\"}")
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .expect("ratio");
    assert!((ratio - 3.0 / 12.0).abs() < 1e-9, "{ratio}");
    let last_success: f64 =
        line("flywheel_task_last_success_timestamp_seconds{task=\"drift:hourly\"}")
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .expect("ts");
    assert_eq!(last_success as i64, T0 + 36 * HOUR + 300);
    assert!(!text.contains("job=\""), "no label may be called job");

    // Rerunning a past window replaces it with the same result (no duplicate rows).
    let before = window_results(&app, "shop", T0 + 32 * HOUR).await;
    let r = app
        .client
        .post(app.url(&format!(
            "/v1/jobs/drift:hourly/run?window={}",
            urlencode(&rfc(T0 + 32 * HOUR))
        )))
        .send()
        .await
        .expect("run");
    assert_eq!(r.status().as_u16(), 200);
    let run: Value = r.json().await.expect("json");
    assert_eq!(run["window_start"], api_time(T0 + 32 * HOUR));
    assert_eq!(run["detail"]["baseline"], "rolling:1d");
    assert!(run["detail"]["config_hash"]
        .as_str()
        .is_some_and(|h| h.len() == 16));
    let after = window_results(&app, "shop", T0 + 32 * HOUR).await;
    assert_eq!(before, after, "a rerun must reproduce the stored result");
    let (_, runs) = app
        .get_json("/v1/jobs/runs?job=drift:hourly&limit=1000")
        .await;
    assert_eq!(
        runs["runs"].as_array().map(Vec::len),
        Some(37),
        "rerun replaced, not added"
    );
    app.stop().await;
}

#[tokio::test]
async fn missed_runs_are_caught_up_after_downtime_boundedly() {
    let monitor = RawMonitor {
        name: "catchup".into(),
        baseline: "week_ago".into(),
        max_catch_up: 5,
        ..Default::default()
    };
    let (app, clock) = start(monitor).await;
    let mut rng = StdRng::seed_from_u64(3);
    clock.set_secs(T0 + HOUR - 1);
    post_all(&app, &hour_of_events(&mut rng, "m", T0, 100, 2, false)).await;
    clock.set_secs(T0 + HOUR + 300);
    // The first poll (at T0) ran the window ending at T0; then the one ending at 01:00.
    wait_runs(&app, "drift:catchup", 2).await;
    // Twelve hours pass at once (as if the service had been down): the five latest fires run.
    clock.set_secs(T0 + 13 * HOUR + 300);
    let v = wait_runs(&app, "drift:catchup", 7).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, v2) = app
        .get_json("/v1/jobs/runs?job=drift:catchup&limit=100")
        .await;
    assert_eq!(v2["runs"].as_array().map(Vec::len), Some(7), "{v}");
    let ends: BTreeSet<String> = v2["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["window_end"].as_str().unwrap_or("").to_owned())
        .collect();
    let want: BTreeSet<String> = [0, 1, 9, 10, 11, 12, 13]
        .map(|h| api_time(T0 + h * HOUR))
        .into();
    assert_eq!(ends, want);
    app.stop().await;
}

/// The wall clock jumps back by hours and forward again (an injected clock): no window runs
/// twice, none is skipped beyond the catch-up bound, and the recorded windows stay in order.
#[tokio::test]
async fn a_clock_jumping_backwards_and_forwards_runs_no_window_twice() {
    let monitor = RawMonitor {
        name: "jumpy".into(),
        baseline: "week_ago".into(),
        max_catch_up: 3,
        ..Default::default()
    };
    let (app, clock) = start(monitor).await;
    let runs = async || -> Vec<String> {
        let (_, v) = app
            .get_json("/v1/jobs/runs?job=drift:jumpy&limit=100")
            .await;
        let mut ends: Vec<String> = v["runs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| r["window_end"].as_str().unwrap_or("").to_owned())
            .collect();
        ends.sort();
        ends
    };
    // The monitor fires hourly at :05 for the hour before.
    clock.set_secs(T0 + 2 * HOUR + 360);
    wait_runs(&app, "drift:jumpy", 1).await;
    let first = runs().await;
    assert_eq!(
        first,
        vec![api_time(T0 + 2 * HOUR)],
        "never ran: only the latest fire"
    );
    // Back five hours: the fires between then and the last run already ran, or are older.
    clock.set_secs(T0 - 3 * HOUR);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        runs().await,
        first,
        "a clock behind the last run runs nothing"
    );
    // Back to where it was, and one second past the next fire.
    clock.set_secs(T0 + 2 * HOUR + 400);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(runs().await, first, "the same hour again runs nothing");
    clock.set_secs(T0 + 3 * HOUR + 301);
    wait_runs(&app, "drift:jumpy", 2).await;
    // Ten hours forward: only the three latest fires run (the catch-up bound), each once.
    clock.set_secs(T0 + 13 * HOUR + 301);
    wait_runs(&app, "drift:jumpy", 5).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let want: Vec<String> = [2, 3, 11, 12, 13].map(|h| api_time(T0 + h * HOUR)).into();
    assert_eq!(runs().await, want);
    // And back again by a day: still nothing twice.
    clock.set_secs(T0 - 21 * HOUR);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(runs().await, want);
    app.stop().await;
}

#[tokio::test]
async fn a_stationary_stream_stays_within_the_false_alert_budget() {
    // 50 features, 100 hourly windows of 300 events each against an uploaded reference of
    // 5,000 rows from the same distributions.
    let monitor = RawMonitor {
        name: "stationary".into(),
        watch: vec!["inputs".into()],
        baseline: "dataset:ref".into(),
        // Far from the simulated times: only the explicit runs below happen.
        schedule: "0 0 0 1 1 *".into(),
        max_catch_up: 0,
        ..Default::default()
    };
    let (app, clock) = start(monitor).await;
    let mut rng = StdRng::seed_from_u64(99);
    let reference = hour_of_events(&mut rng, "m", T0, 5000, 49, false);
    let csv = {
        let mut s = (0..49)
            .map(|f| format!("f{f}"))
            .collect::<Vec<_>>()
            .join(",")
            + ",country\n";
        for e in &reference {
            let f = &e["features"];
            let row: Vec<String> = (0..49).map(|i| f[format!("f{i}")].to_string()).collect();
            s += &format!(
                "{},{}\n",
                row.join(","),
                f["country"].as_str().unwrap_or("")
            );
        }
        s
    };
    let r = app
        .client
        .post(app.url("/v1/baselines?name=ref&model=m"))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status().as_u16(), 201);
    let (_, b) = app.get_json("/v1/baselines").await;
    assert_eq!(b["datasets"][0]["rows"], 5000, "{b}");
    assert_eq!(b["datasets"][0]["features"], 50, "{b}");
    let windows = 100i64;
    let start = T0 + 86_400;
    let mut all = Vec::new();
    for h in 0..windows {
        all.extend(hour_of_events(
            &mut rng,
            "m",
            start + h * HOUR,
            300,
            49,
            false,
        ));
    }
    clock.set_secs(start + windows * HOUR);
    post_all(&app, &all).await;
    let mut drift_decisions = 0usize;
    let mut alerting = 0usize;
    let mut decided = 0usize;
    for h in 0..windows {
        let r = app
            .client
            .post(app.url(&format!(
                "/v1/jobs/drift:stationary/run?window={}",
                urlencode(&rfc(start + h * HOUR))
            )))
            .send()
            .await
            .expect("run");
        let run: Value = r.json().await.expect("json");
        assert_eq!(run["outcome"], "success", "{run}");
        let d = &run["detail"]["models"]["m"];
        decided += d["features"].as_u64().unwrap_or(0) as usize;
        drift_decisions += d["drifted"].as_u64().unwrap_or(0) as usize;
    }
    let (_, latest) = app.get_json("/v1/drift/latest?model=m").await;
    alerting += latest["monitors"][0]["dataset"]["alerting_features"]
        .as_u64()
        .unwrap_or(99) as usize;
    // 50 input features × 100 windows.
    assert_eq!(decided, 100 * 50, "features decided");
    eprintln!("stationary: {drift_decisions} drift decisions in {decided} feature-windows");
    // The budget: at most 0.5 % of feature-windows flagged, and no feature alerting at the end.
    assert!(
        drift_decisions * 200 <= decided,
        "{drift_decisions} false drift decisions in {decided}"
    );
    assert_eq!(alerting, 0);
    app.stop().await;
}

#[tokio::test]
async fn baseline_uploads_say_what_is_wrong() {
    let (app, _clock) = start(RawMonitor::default()).await;
    let post = |path: &str, ct: &str, body: &str| {
        app.client
            .post(app.url(path))
            .header("content-type", ct.to_owned())
            .body(body.to_owned())
            .send()
    };
    let r = post("/v1/baselines?name=ref&model=m", "text/plain", "a\n1\n")
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 415);
    let r = post(
        "/v1/baselines?name=bad%20name&model=m",
        "text/csv",
        "a\n1\n",
    )
    .await
    .expect("request");
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap_or_default().contains("name"));
    let r = post("/v1/baselines?name=ref&model=m", "text/csv", "a,b\n1\n")
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 400);
    let msg = r.text().await.unwrap_or_default();
    assert!(msg.contains("row 2"), "{msg}");
    let r = post(
        "/v1/baselines?name=ref&model=m",
        "application/x-ndjson",
        "{\"a\": 1, \"prediction.label\": \"x\"}\n{\"a\": 2, \"prediction.label\": \"y\"}\n",
    )
    .await
    .expect("request");
    assert_eq!(r.status().as_u16(), 201);
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        (v["rows"].as_u64(), v["features"].as_u64()),
        (Some(2), Some(2))
    );
    let (_, b) = app.get_json("/v1/baselines").await;
    assert_eq!(b["monitors"][0]["baseline"], "rolling:7d", "{b}");
    app.stop().await;
}

/// One day of `n` interactions whose numeric inputs `x` and `y` are standard normal with
/// correlation `rho` (so every marginal is the same whatever `rho`), `z` independent, and a
/// categorical `country`.
fn correlated_day(rng: &mut StdRng, day_start: i64, n: usize, rho: f64) -> Vec<Value> {
    let norm = Normal::new(0.0, 1.0).expect("normal");
    (0..n)
        .map(|i| {
            let x: f64 = norm.sample(rng);
            let e: f64 = norm.sample(rng);
            let y = rho * x + (1.0 - rho * rho).sqrt() * e;
            let z: f64 = norm.sample(rng);
            let country = ["DE", "FR", "IT"][i % 3];
            json!({
                "event_id": format!("c-{day_start}-{i}"),
                "event_type": "interaction",
                "occurred_at": rfc(day_start + (i as i64 * 86_399) / n as i64),
                "model": {"id": "m", "version": "v1"},
                "features": {"x": x, "y": y, "z": z, "country": country},
                "prediction": {"score": rng.gen::<f64>()},
            })
        })
        .collect()
}

#[tokio::test]
async fn a_correlation_flip_is_flagged_by_multivariate_drift_and_nothing_univariate() {
    const DAY: i64 = 86_400;
    // Baseline: days 0-6 with corr(x, y) = +0.8. Day 7 the same (stationary); days 8 and 9
    // flipped to -0.8 with every marginal unchanged.
    let monitor = RawMonitor {
        name: "joint".into(),
        watch: vec!["inputs".into()],
        window_secs: DAY as u64,
        baseline: format!("range:{}/{}", rfc(T0), rfc(T0 + 7 * DAY)),
        schedule: "0 0 0 1 1 *".into(),
        max_catch_up: 0,
        ..Default::default()
    };
    let (app, clock) = start(monitor).await;
    let mut rng = StdRng::seed_from_u64(2026);
    let mut all = Vec::new();
    for d in 0..10 {
        let rho = if d >= 8 { -0.8 } else { 0.8 };
        all.extend(correlated_day(&mut rng, T0 + d * DAY, 2_000, rho));
    }
    clock.set_secs(T0 + 10 * DAY + HOUR);
    post_all(&app, &all).await;
    let mut seen = Vec::new();
    for d in 7..10 {
        let r = app
            .client
            .post(app.url(&format!(
                "/v1/jobs/drift:joint/run?window={}",
                urlencode(&rfc(T0 + d * DAY))
            )))
            .send()
            .await
            .expect("run");
        let run: Value = r.json().await.expect("json");
        assert_eq!(run["outcome"], "success", "{run}");
        // Nothing univariate: x, y, z and country all keep their distributions.
        let m = &run["detail"]["models"]["m"];
        assert_eq!(m["features"], 4, "{run}");
        assert_eq!(m["drifted"], 0, "day {d}: a univariate test flagged: {run}");
        let (s, latest) = app.get_json("/v1/drift/latest?model=m").await;
        assert_eq!(s, 200, "{latest}");
        let ds = &latest["monitors"][0]["dataset"];
        assert_eq!(ds["decision"], "no_drift", "day {d}: {ds}");
        let mv = ds["multivariate"].clone();
        assert_eq!(mv["features"], json!(["x", "y", "z"]), "{mv}");
        assert_eq!(mv["rows_current"], 2_000, "{mv}");
        assert_eq!(
            mv["band"]["windows"], 7,
            "one band window per baseline day: {mv}"
        );
        let (_, metrics) = app.get_text("/metrics").await;
        let gauge = |name: &str| {
            let series = format!("{name}{{model=\"m\",monitor=\"joint\"}} ");
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(&series))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or_else(|| panic!("no {series} in /metrics"))
        };
        let score = mv["score"].as_f64().expect("score");
        assert!((gauge("flywheel_multivariate_drift_score") - score).abs() < 1e-9);
        assert!(
            (gauge("flywheel_multivariate_drift_threshold")
                - mv["band"]["upper"].as_f64().expect("upper"))
            .abs()
                < 1e-9
        );
        seen.push((mv, gauge("flywheel_multivariate_drift_detected")));
    }
    eprintln!("multivariate: {seen:?}");
    // Day 7, stationary: inside the band.
    assert_eq!(seen[0].0["decision"], "no_drift", "{:?}", seen[0]);
    assert_eq!(seen[0].1, 0.0);
    // Day 8: the flip is outside the band (about 1.8 against about 0.2 plus z's share), but one
    // window is not yet persistent (2 of 3 by default).
    assert_eq!(seen[1].0["decision"], "drift", "{:?}", seen[1]);
    assert_eq!(seen[1].0["alerting"], false);
    assert_eq!(seen[1].1, 0.0);
    // Day 9: two drifted windows of three, the gauge the alert rule reads is 1.
    assert_eq!(seen[2].0["decision"], "drift", "{:?}", seen[2]);
    assert_eq!(seen[2].0["alerting"], true);
    assert_eq!(seen[2].1, 1.0);
    let (s0, s2) = (
        seen[0].0["score"].as_f64().unwrap_or(f64::NAN),
        seen[2].0["score"].as_f64().unwrap_or(f64::NAN),
    );
    assert!(s2 > 3.0 * s0, "flipped score {s2} against stationary {s0}");
    // The weekly report of that week (2026-W46) says it in one line.
    clock.set_secs(T0 + 14 * DAY + HOUR);
    let r = app
        .client
        .post(app.url(&format!(
            "/v1/jobs/weekly_report/run?window={}",
            urlencode(&rfc(T0 + 7 * DAY))
        )))
        .send()
        .await
        .expect("report");
    let run: Value = r.json().await.expect("json");
    assert_eq!(run["outcome"], "success", "{run}");
    let (s, md) = app.get_text("/reports/2026-W46.md").await;
    assert_eq!(s, 200, "{md} after {run}");
    assert!(
        md.contains("Multivariate (x, y, z): the joint structure left the band in 2 of 3 windows"),
        "{md}"
    );
    app.stop().await;
}
