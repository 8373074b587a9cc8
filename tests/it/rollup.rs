//! Hourly summaries rolled up into days: drift and health over a rolled-up range read the same
//! as over the hourly buckets, and a year of traffic stays within the documented disk budget.

use crate::helpers::{spawn_app_with, Options, TestApp};
use flywheel::clock::ManualClock;
use flywheel::store::{Location, ResultQuery, ResultRow, Store};
use serde_json::Value;
use std::sync::Arc;

/// 2026-11-02 00:00 UTC, a Monday.
const T0: i64 = 1_793_577_600;
const DAY: i64 = 86_400;

fn q(secs: i64) -> String {
    flywheel::clock::rfc3339_secs(secs).replace('+', "%2B")
}

async fn run(app: &TestApp, job: &str, window_start: Option<i64>) -> Value {
    let path = match window_start {
        Some(w) => format!("/v1/jobs/{job}/run?window={}", q(w)),
        None => format!("/v1/jobs/{job}/run"),
    };
    let r = app.client.post(app.url(&path)).send().await.expect("run");
    let status = r.status().as_u16();
    let body: Value = r.json().await.expect("json");
    assert_eq!(status, 200, "{job}: {body}");
    assert_eq!(body["outcome"], "success", "{job}: {body}");
    body
}

async fn results(store: &Arc<dyn Store>, job: &str, end: i64) -> Vec<ResultRow> {
    store
        .jobs()
        .results(&ResultQuery {
            job_prefix: Some(job.into()),
            from: Some(end - 1),
            to: Some(end),
            ..Default::default()
        })
        .await
        .expect("results")
}

/// Compare two result documents, numbers to rounding (merging is a union; only the order of
/// floating-point additions differs). The test's sketches are big enough never to compact, so
/// quantile-based figures are exact too; once a sketch compacts, merging hours and then days is
/// not the same sequence of compactions as merging the hours directly, and the figures agree
/// within the sketch's rank-error bound instead (checked on merges by `summary::tests`).
fn same(path: &str, a: &Value, b: &Value, diffs: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => same(&format!("{path}.{k}"), u, v, diffs),
                    _ => diffs.push(format!("{path}.{k}: only on one side")),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (u, v)) in x.iter().zip(y).enumerate() {
                same(&format!("{path}[{i}]"), u, v, diffs);
            }
        }
        (Value::Number(x), Value::Number(y)) => {
            let (u, v) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            let tol = 1e-9 * u.abs().max(1.0);
            if (u - v).abs() > tol {
                diffs.push(format!("{path}: {u} vs {v}"));
            }
        }
        _ if a == b => {}
        _ => diffs.push(format!("{path}: {a} vs {b}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_and_health_over_rolled_up_days_equal_the_hourly_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = flywheel::store::open(&Location::Sqlite(dir.path().to_path_buf()))
        .await
        .expect("store");
    // Seventy days after the traffic starts: its 28 days are all older than the 35 hourly days.
    let now = ManualClock::at_secs(T0 + 70 * DAY + 12 * 3600);
    let app = spawn_app_with(Options {
        tweak: Box::new(|raw| {
            raw.health.max_catch_up = 0;
            // Sketches that hold every value of the test (up to ~65k per series).
            raw.ingest.sketch_k = u16::MAX;
            // A daily window (an hourly one inside a rolled day would read the whole day).
            raw.monitors = vec![flywheel::drift::monitor::RawMonitor {
                name: "daily".into(),
                schedule: "0 10 0 * * *".into(),
                window_secs: 86_400,
                max_catch_up: 0,
                ..Default::default()
            }];
        }),
        clock: now.clock(),
        store: Some(store.clone()),
        dir: Some(dir),
    })
    .await;
    // Four weeks of the demo's product: 1,500 users (about 1,300 interactions a day), every hour.
    let users: Vec<(u64, f64)> = (0..1500).map(|u| (u, 0.3 + (u % 7) as f64 * 0.1)).collect();
    for hour in 0..28 * 24 {
        let events = flywheel::demo::hour_events(7, T0, hour, &users);
        if events.is_empty() {
            continue;
        }
        let (s, body) = app.post_ndjson(&events).await;
        assert_eq!(s, 200, "hour {hour}: {body}");
    }
    // Drift of day 20 against its rolling 7 days, and the health of day 20 (which reads the
    // weeks before it), before the roll-up...
    let (drift_start, health_end) = (T0 + 20 * DAY, T0 + 21 * DAY);
    run(&app, "drift:daily", Some(drift_start)).await;
    run(&app, "health", Some(T0 + 20 * DAY)).await;
    let before_drift = results(&store, "drift:daily", drift_start + DAY).await;
    let before_health = results(&store, "health", health_end).await;
    assert!(!before_drift.is_empty() && !before_health.is_empty());
    // (Read after the runs: a run flushes ingest into the summaries first.)
    let hourly_rows = store
        .series()
        .summaries("recs", None, T0, T0 + 28 * DAY)
        .await
        .expect("summaries");
    assert!(
        hourly_rows.iter().any(|r| r.bucket % DAY != 0),
        "the traffic lands in hourly buckets"
    );

    // ...the retention job's roll-up (everything older than 35 days)...
    let r = run(&app, "retention", None).await;
    assert_eq!(r["detail"]["model_days_rolled_up"], 28, "{r}");
    let rows = store
        .series()
        .summaries("recs", None, T0, T0 + 28 * DAY)
        .await
        .expect("summaries");
    assert!(
        rows.iter().all(|r| r.bucket % DAY == 0),
        "every bucket is a day"
    );
    assert!(
        rows.len() * 10 < hourly_rows.len(),
        "{} day rows for {} hourly rows",
        rows.len(),
        hourly_rows.len()
    );
    let counts = store
        .series()
        .bucket_counts("recs", T0, T0 + 28 * DAY)
        .await
        .expect("counts");
    assert!(counts.iter().all(|c| c.bucket % DAY == 0));

    // ...and after it: the same results.
    run(&app, "drift:daily", Some(drift_start)).await;
    run(&app, "health", Some(T0 + 20 * DAY)).await;
    let after_drift = results(&store, "drift:daily", drift_start + DAY).await;
    let after_health = results(&store, "health", health_end).await;
    let mut diffs = Vec::new();
    for (before, after) in [
        (&before_drift, &after_drift),
        (&before_health, &after_health),
    ] {
        assert_eq!(before.len(), after.len(), "the same result rows");
        for (b, a) in before.iter().zip(after) {
            assert_eq!((&b.job, &b.subject), (&a.job, &a.subject));
            same(
                &format!("{}/{}", b.job, b.subject),
                &b.data,
                &a.data,
                &mut diffs,
            );
        }
    }
    let decided = after_drift
        .iter()
        .filter(|r| r.data.get("p_value").is_some_and(|p| p.is_number()))
        .count();
    assert!(
        decided >= 10,
        "the drift job decided on real samples ({decided} features)"
    );
    assert!(
        diffs.is_empty(),
        "results changed by the roll-up:\n{}",
        diffs.join("\n")
    );
    app.stop().await;
}
