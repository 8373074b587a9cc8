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

/// Stored bytes a series needs per year, as documented in README.md ("Disk"): hourly rows for
/// the hourly days, day rows after. A row holds its sketch (8 bytes per retained value, at most
/// `KLL_MAX_ITEMS` at the default k = 512), the moments and counts, and the row's key.
pub const KLL_MAX_ITEMS: u64 = 1_600;
pub const ROW_OVERHEAD: u64 = 200;

fn row_budget(values: u64) -> u64 {
    ROW_OVERHEAD + 8 * values.min(KLL_MAX_ITEMS)
}

/// One hour of a model with 8 numeric and 2 categorical features, a score and a label.
fn hour_of_traffic(hour: i64, per_hour: u64, seed: &mut u64) -> Vec<flywheel::events::Event> {
    use flywheel::events::{Body, Event, ModelRef, Value};
    let mut next = || {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..per_hour)
        .map(|i| {
            let mut features: Vec<(_, Value)> = (0..8)
                .map(|f| {
                    let u = next();
                    // Mixed shapes: uniform, squared (skewed), and a heavy tail.
                    let x = match f % 3 {
                        0 => u * 100.0,
                        1 => u * u * 50.0,
                        _ => 1.0 / (1.0 - u * 0.999),
                    };
                    (format!("f{f}").into(), Value::Number(x))
                })
                .collect();
            let c0 = (next() * 10.0) as u32;
            let c1 = (next() * 50.0) as u32;
            features.push(("c0".into(), Value::Category(format!("k{c0}").into())));
            features.push(("c1".into(), Value::Category(format!("v{c1}").into())));
            Event {
                event_id: format!("y{hour}-{i}"),
                occurred_at_us: (T0 + hour * 3600 + (i as i64 * 3600 / per_hour as i64))
                    * 1_000_000,
                model: ModelRef {
                    id: "year".into(),
                    version: "v1".into(),
                },
                user_key: Some(i),
                consent_training: None,
                body: Body::Interaction {
                    features,
                    score: Some(next()),
                    confidence: None,
                    label: Some(if next() < 0.5 { "a" } else { "b" }.into()),
                    segment: Vec::new(),
                },
            }
        })
        .collect()
}

/// A year of hourly traffic, checkpointed day by day with the retention job running every night
/// (35 hourly days): the database holds 35 days of hourly rows and one row per day before, and
/// its live size stays within the documented budget. `FLYWHEEL_YEAR_EVENTS_PER_HOUR` (default
/// 70, enough that day rows fill their sketches) scales the traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_year_of_traffic_stays_within_the_documented_disk_budget() {
    use flywheel::jobs::Job;
    let per_hour: u64 = std::env::var("FLYWHEEL_YEAR_EVENTS_PER_HOUR")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(70);
    const DAYS: i64 = 365;
    const HOURLY_DAYS: u32 = 35;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = flywheel::store::open(&Location::Sqlite(dir.path().to_path_buf()))
        .await
        .expect("store");
    let job = flywheel::jobs::retention::RetentionJob {
        schedule: flywheel::jobs::schedule::CronSchedule::parse("0 30 3 * * *").expect("cron"),
        store: store.clone(),
        job_runs_days: 400,
        alerts_days: 400,
        summaries_hourly_days: HOURLY_DAYS,
    };
    let writer = store
        .journal()
        .register_writer("year")
        .await
        .expect("writer");
    let mut seed = 42u64;
    let started = std::time::Instant::now();
    for day in 0..DAYS {
        let mut delta =
            flywheel::summary::delta::Delta::new(3600, flywheel::summary::kll::DEFAULT_K, 1000);
        for h in 0..24 {
            delta.fold_batch(&hour_of_traffic(day * 24 + h, per_hour, &mut seed));
        }
        store
            .journal()
            .checkpoint(writer, &delta, None, 0)
            .await
            .expect("checkpoint");
        let fired_at = T0 + (day + 1) * DAY + 3 * 3600 + 1800;
        job.run(fired_at, job.window_for(fired_at))
            .await
            .expect("retention run");
    }
    let rows = store
        .series()
        .summaries("year", None, 0, i64::MAX)
        .await
        .expect("summaries");
    let series: std::collections::BTreeSet<(String, String)> = rows
        .iter()
        .map(|r| (r.class.as_str().to_owned(), r.name.clone()))
        .collect();
    let hourly_from = T0 + (DAYS - i64::from(HOURLY_DAYS)) * DAY;
    let (hourly, daily): (Vec<_>, Vec<_>) = rows.iter().partition(|r| r.bucket >= hourly_from);
    let mean_items = |rs: &[&flywheel::store::SummaryRow]| {
        let numeric: Vec<usize> = rs
            .iter()
            .filter(|r| r.summary.moments.n > 0)
            .map(|r| r.summary.sketch.retained())
            .collect();
        numeric.iter().sum::<usize>() as f64 / numeric.len().max(1) as f64
    };
    let items = (mean_items(&hourly), mean_items(&daily));
    let (hourly, daily, daily_ok) = (
        hourly.len(),
        daily.len(),
        daily.iter().all(|r| r.bucket % DAY == 0),
    );
    assert!(daily_ok, "old rows are days");
    let rolled_days = (hourly_from - T0) / DAY;
    assert_eq!(
        daily as i64,
        series.len() as i64 * rolled_days,
        "one row per series and day"
    );
    assert_eq!(
        hourly as i64,
        series.len() as i64 * (DAYS - rolled_days) * 24,
        "hourly rows for the recent days"
    );
    let n: u64 = rows
        .iter()
        .filter(|r| r.name == "f0")
        .map(|r| r.summary.moments.n)
        .sum();
    assert_eq!(
        n,
        per_hour * 24 * DAYS as u64,
        "every event is still counted"
    );
    drop(rows);

    // Live bytes of the database file (pages in use; freed pages are reused, not grown into).
    let db = dir.path().join("flywheel.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open the database file");
    let (pages, free, page_size): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT page_count FROM pragma_page_count()), (SELECT freelist_count FROM pragma_freelist_count()), (SELECT page_size FROM pragma_page_size())",
    )
    .fetch_one(&pool)
    .await
    .expect("pragmas");
    let live = ((pages - free) * page_size) as u64;
    let file = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    let per_series = row_budget(per_hour) * 24 * (DAYS - rolled_days) as u64
        + row_budget(per_hour * 24) * rolled_days as u64;
    let budget = per_series * series.len() as u64;
    eprintln!(
        "a year at {per_hour} events/hour: {} series, {} hourly + {} day rows; live {:.1} MB \
         (file {:.1} MB), budget {:.1} MB ({:.2} MB per series), {:.0} s; sketch items per \
         numeric row: {:.0} hourly, {:.0} daily",
        series.len(),
        hourly,
        daily,
        live as f64 / 1e6,
        file as f64 / 1e6,
        budget as f64 / 1e6,
        per_series as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        items.0,
        items.1
    );
    assert!(
        live <= budget,
        "the database holds {live} live bytes, over the documented budget of {budget}"
    );
    pool.close().await;
}
