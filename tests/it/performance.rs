//! Model performance through the real server: interactions and their outcomes in over HTTP
//! (labels arriving a day late), the performance job run over the API, the windows read back from
//! `/v1/performance` and the gauges from `/metrics`. A simulated, calibrated binary classifier
//! whose last day's inputs shift towards uncertain scores: the estimate flags the drop before any
//! label, and the labels that arrive later agree with it.

use crate::helpers::{spawn_app_with, Options, TestApp};
use flywheel::clock::ManualClock;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Distribution};
use serde_json::{json, Value};

/// 2026-11-02T00:00:00Z.
const T0: i64 = 1_793_577_600;
const DAY: i64 = 86_400;
const PER_DAY: usize = 2_000;

fn ts(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("time")
        .to_rfc3339()
}

/// One day of predictions: the interactions, and the outcomes (each a day later).
fn day(rng: &mut StdRng, d: i64, (a, b): (f64, f64)) -> (Vec<Value>, Vec<Value>, f64) {
    let beta = Beta::new(a, b).expect("beta");
    let (mut interactions, mut outcomes) = (Vec::new(), Vec::new());
    let mut correct = 0;
    for i in 0..PER_DAY {
        let at = T0 + d * DAY + (i as i64 * DAY) / PER_DAY as i64;
        let s: f64 = beta.sample(rng);
        let y = rng.gen::<f64>() < s;
        correct += usize::from((s >= 0.5) == y);
        let id = format!("i-{d}-{i}");
        interactions.push(json!({
            "event_id": id, "event_type": "interaction", "occurred_at": ts(at),
            "model": {"id": "clf", "version": "v1"},
            "features": {"x": s * 10.0}, "prediction": {"score": s},
        }));
        outcomes.push(json!({
            "event_id": format!("o-{d}-{i}"), "event_type": "outcome",
            "occurred_at": ts(at + 3_600 + rng.gen_range(0..DAY / 2)),
            "model": {"id": "clf", "version": "v1"}, "interaction_id": id,
            "predicted_at": ts(at), "prediction": {"score": s}, "actual": y,
        }));
    }
    (interactions, outcomes, correct as f64 / PER_DAY as f64)
}

async fn post(app: &TestApp, events: &[Value]) {
    for chunk in events.chunks(5000) {
        let (s, v) = app.post_ndjson(chunk).await;
        assert_eq!(s, 200, "{}", v["errors"][0]);
        assert_eq!(v["rejected"], 0, "{}", v["errors"][0]);
    }
}

/// The state of the output arc after a health run for the day before `end`.
async fn output_arc(app: &TestApp, end: i64) -> Value {
    run(app, "health", end).await;
    let (s, h) = app.get_json("/v1/health?model=clf").await;
    assert_eq!(s, 200, "{h}");
    h["arcs"]["output"].clone()
}

async fn run(app: &TestApp, job: &str, end: i64) {
    let window = ts(end - DAY).replace('+', "%2B");
    let r = app
        .client
        .post(app.url(&format!("/v1/jobs/{job}/run?window={window}")))
        .send()
        .await
        .expect("run");
    assert_eq!(r.status().as_u16(), 200);
    let run: Value = r.json().await.expect("json");
    assert_eq!(run["outcome"], "success", "{run}");
}

async fn run_performance(app: &TestApp, end: i64) -> Value {
    run(app, "performance", end).await;
    let (s, p) = app.get_json("/v1/performance?model=clf").await;
    assert_eq!(s, 200, "{p}");
    p
}

fn gauge(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn the_estimate_warns_before_the_labels_and_the_late_labels_confirm_it() {
    let end = T0 + 16 * DAY;
    let app = spawn_app_with(Options {
        tweak: Box::new(|raw| {
            raw.drift.default_monitor = false;
            raw.jobs.poll_interval_ms = 50;
        }),
        // Late enough for every outcome (up to 13 h after its prediction) to have happened.
        clock: ManualClock::at_secs(end + 14 * 3_600).clock(),
        ..Default::default()
    })
    .await;
    let (s, p) = app.get_json("/v1/performance?model=clf").await;
    assert_eq!(s, 404, "{p}");

    let mut rng = StdRng::seed_from_u64(2026);
    let mut interactions = Vec::new();
    let mut arrived = Vec::new();
    let mut pending = Vec::new();
    let mut truth = Vec::new();
    for d in 0..16 {
        // The last day's traffic shifts towards uncertain cases.
        let shape = if d == 15 { (6.0, 6.0) } else { (2.0, 2.0) };
        let (i, o, acc) = day(&mut rng, d, shape);
        interactions.extend(i);
        truth.push(acc);
        // Outcomes of the last two days have not arrived yet.
        if d >= 14 {
            pending.extend(o)
        } else {
            arrived.extend(o)
        }
    }
    post(&app, &interactions).await;
    post(&app, &arrived).await;

    let p = run_performance(&app, end).await;
    let data = &p;
    assert_eq!(data["task"], "binary_classification", "{}", p["task"]);
    let windows = data["windows"].as_array().expect("windows");
    assert_eq!(windows.len(), 7);
    let newest = &windows[6];
    assert_eq!(newest["start"], T0 + 15 * DAY);
    assert_eq!(newest["labelled"], 0);
    assert_eq!(newest["estimate_status"], "ok", "{newest}");
    let estimated = newest["estimated"]["accuracy"].as_f64().expect("estimate");
    assert!(
        (estimated - truth[15]).abs() <= 0.02,
        "estimated {estimated}, true {}",
        truth[15]
    );
    assert_eq!(newest["degraded_estimated"]["degraded"], true, "{newest}");
    // A stationary day with its labels: no degradation, the estimate measured against them.
    let labelled = &windows[4];
    assert_eq!(labelled["coverage"], 1.0);
    assert_eq!(
        labelled["degraded_realized"]["degraded"], false,
        "{labelled}"
    );
    assert_eq!(
        labelled["degraded_estimated"]["degraded"], false,
        "{labelled}"
    );
    let err = data["estimation_mae"].as_f64().expect("measured");
    assert!(err < 0.02, "estimation error {err}");
    assert_eq!(data["estimation_windows"], 5);
    let delay = labelled["delay_median_secs"].as_f64().expect("delay");
    assert!(
        (3_600.0..DAY as f64 / 2.0 + 3_600.0).contains(&delay),
        "{delay}"
    );

    let m = app.metrics().await;
    let est = gauge(
        &m,
        r#"flywheel_model_performance{kind="estimated",metric="accuracy",model="clf"}"#,
    )
    .expect("estimated accuracy exported");
    assert!((est - estimated).abs() < 1e-9);
    assert_eq!(
        gauge(
            &m,
            r#"flywheel_model_performance_degraded{kind="estimated",model="clf"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        gauge(
            &m,
            r#"flywheel_model_performance_degraded{kind="realized",model="clf"}"#
        ),
        Some(0.0)
    );
    assert_eq!(
        gauge(&m, r#"flywheel_label_coverage_ratio{model="clf"}"#),
        Some(0.0)
    );
    assert!(gauge(
        &m,
        r#"flywheel_model_performance{kind="reference",metric="roc_auc",model="clf"}"#
    )
    .is_some());

    // The health's output arc reads it: SLOWING on the estimate alone.
    let arc = output_arc(&app, end).await;
    assert_eq!(arc["state"], "SLOWING", "{arc}");
    assert!(
        arc["why"].as_str().is_some_and(|w| w.contains("estimated")),
        "{arc}"
    );

    // The labels arrive: the same window now has its realized accuracy, which the estimate had
    // predicted, and the drop is confirmed by them.
    post(&app, &pending).await;
    let p = run_performance(&app, end).await;
    let newest = &p["windows"][6];
    assert_eq!(newest["labelled"], PER_DAY as u64);
    let realized = newest["realized"]["binary"]["accuracy"]
        .as_f64()
        .expect("realized");
    // Exact up to the sketches' stated bound (a day's 2,000 scores compact a k = 512 sketch).
    let bound = newest["realized"]["binary"]["accuracy_error_bound"]
        .as_f64()
        .expect("bound");
    assert!(
        (realized - truth[15]).abs() <= bound,
        "{realized} vs {} (bound {bound})",
        truth[15]
    );
    assert!(
        (realized - estimated).abs() <= 0.02,
        "{realized} vs estimate {estimated}"
    );
    assert_eq!(newest["degraded_realized"]["degraded"], true, "{newest}");
    let m = app.metrics().await;
    assert_eq!(
        gauge(
            &m,
            r#"flywheel_model_performance_degraded{kind="realized",model="clf"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        gauge(&m, r#"flywheel_label_coverage_ratio{model="clf"}"#),
        Some(1.0)
    );
    app.stop().await;
}
