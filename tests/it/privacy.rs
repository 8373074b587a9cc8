//! Privacy through the real server: a user's erasure (`DELETE /v1/users/{id}`) removes them from
//! retention exactly, is idempotent, is audited without the id, and leaves the raw id nowhere in
//! the data directory.

use crate::helpers::{spawn_app_with, Options, TestApp};
use flywheel::clock::ManualClock;
use serde_json::{json, Value};

/// 2026-11-02T00:00:00Z, a Monday.
const T0: i64 = 1_793_577_600;
const DAY: i64 = 86_400;
const ERASED: [&str; 2] = ["erase-me@example.com", "user-13"];

fn ts(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("time")
        .to_rfc3339()
}

/// 21 days of a product: 60 users, each joining on day `i % 7` and coming back on a pattern of
/// their own, so that D1 and D7 retention and the weekly cohorts all have something to say.
fn events() -> Vec<Value> {
    let mut out = Vec::new();
    for u in 0..60usize {
        let id = match u {
            7 => ERASED[0].to_owned(),
            13 => ERASED[1].to_owned(),
            _ => format!("user-{u}"),
        };
        let joined = (u % 7) as i64;
        for d in joined..21 {
            if d != joined && (d * 7 + u as i64 * 3) % (2 + (u % 4) as i64) != 0 {
                continue;
            }
            out.push(json!({
                "event_id": format!("e-{u}-{d}"), "event_type": "interaction",
                "occurred_at": ts(T0 + d * DAY + 3_600 + u as i64 * 60),
                "model": {"id": "m", "version": "v1"}, "user_id": id,
                "features": {"x": u as f64}, "prediction": {"score": 0.5},
            }));
        }
    }
    out
}

async fn app() -> (TestApp, ManualClock) {
    let clock = ManualClock::at_secs(T0 + 21 * DAY + 600);
    let app = spawn_app_with(Options {
        tweak: Box::new(|raw| {
            raw.storage.checkpoint_interval_secs = 1;
            raw.privacy.hmac_key = Some("privacy-test-key-0123456789".to_owned().into());
        }),
        clock: clock.clock(),
        ..Default::default()
    })
    .await;
    (app, clock)
}

async fn retention(app: &TestApp, events: &[Value]) -> Value {
    let (s, v) = app.post_ndjson(events).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["rejected"], 0, "{v}");
    retention_now(app).await
}

async fn retention_now(app: &TestApp) -> Value {
    let window = ts(T0 + 20 * DAY).replace('+', "%2B");
    let r = app
        .client
        .post(app.url(&format!("/v1/jobs/health/run?window={window}")))
        .send()
        .await
        .expect("run");
    let run: Value = r.json().await.expect("json");
    assert_eq!(run["outcome"], "success", "{run}");
    let (s, h) = app.get_json("/v1/health?model=m").await;
    assert_eq!(s, 200, "{h}");
    h["retention"].clone()
}

async fn delete(app: &TestApp, id: &str) -> Value {
    let r = app
        .client
        .delete(app.url(&format!("/v1/users/{}", id.replace('@', "%40"))))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.expect("json")
}

#[tokio::test]
async fn retention_after_an_erasure_equals_retention_without_the_user() {
    let all = events();
    let without: Vec<Value> = all
        .iter()
        .filter(|e| !ERASED.contains(&e["user_id"].as_str().unwrap_or("")))
        .cloned()
        .collect();
    assert!(without.len() < all.len());

    let (never, _) = app().await;
    let want = retention(&never, &without).await;
    never.stop().await;

    let (app, _) = app().await;
    let before = retention(&app, &all).await;
    assert_ne!(
        before, want,
        "the two users must count before their erasure"
    );
    for id in ERASED {
        let e = delete(&app, id).await;
        assert_eq!(e["erased"], true, "{e}");
        assert_eq!(e["already_erased"], false, "{e}");
        assert!(e["activity_rows_deleted"].as_u64().unwrap_or(0) > 0, "{e}");
    }
    let after = retention_now(&app).await;
    assert_eq!(after, want, "retention after erasure");
    // Idempotent: a repeat deletes nothing and says so.
    let again = delete(&app, ERASED[0]).await;
    assert_eq!(again["already_erased"], true, "{again}");
    assert_eq!(again["activity_rows_deleted"], 0, "{again}");
    // Events of the erased user from before the erasure that arrive late are not counted back.
    let late: Vec<Value> = all
        .iter()
        .filter(|e| e["user_id"] == ERASED[0])
        .map(|e| {
            let mut e = e.clone();
            e["event_id"] = json!(format!("late-{}", e["event_id"].as_str().unwrap_or("")));
            e
        })
        .collect();
    assert_eq!(
        retention(&app, &late).await,
        want,
        "late events folded back"
    );
    let dir = app.stop().await;
    // The raw id is nowhere in the data directory (database, WAL, journal, reports).
    for entry in walk(dir.path()) {
        // A file the closing store removed meanwhile (a -shm or lock file) holds nothing.
        let bytes = match std::fs::read(&entry) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("{}: {e}", entry.display()),
        };
        let needle = ERASED[0].as_bytes();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{} holds the raw id",
            entry.display()
        );
    }
}

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).expect("dir").flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A user who withdraws training consent after their data went into a training set is counted
/// against that data (users and their active days before the cutoff), in `/v1/health` and
/// `/v1/quality`; an erasure removes the withdrawal with the rest of the user.
#[tokio::test]
async fn a_withdrawal_after_training_is_counted_and_erased_with_the_user() {
    let (app, _) = app().await;
    let mut events = events();
    // Training data cut off at the start of day 10; the model was evaluated on day 11.
    events.push(json!({
        "event_id": "eval-1", "event_type": "model_eval",
        "occurred_at": ts(T0 + 11 * DAY), "model": {"id": "m", "version": "v2"},
        "cycle": 1, "eval_set": {"id": "golden"},
        "metrics": [{"name": "accuracy", "value": 0.7, "higher_is_better": true}],
        "train_data": {"total_examples": 1000, "new_examples": 1000, "data_cutoff_at": ts(T0 + 10 * DAY)},
    }));
    // On day 15 two users take training consent back; one of them only joined on day 12.
    for (i, id) in [ERASED[0], "late-joiner"].iter().enumerate() {
        events.push(json!({
            "event_id": format!("withdraw-{i}"), "event_type": "interaction",
            "occurred_at": ts(T0 + 15 * DAY + 7_200), "model": {"id": "m", "version": "v1"},
            "user_id": id, "consent": {"training": false},
            "features": {"x": 1.0}, "prediction": {"score": 0.5},
        }));
    }
    events.push(json!({
        "event_id": "late-joiner-12", "event_type": "interaction",
        "occurred_at": ts(T0 + 12 * DAY), "model": {"id": "m", "version": "v1"},
        "user_id": "late-joiner", "features": {"x": 1.0}, "prediction": {"score": 0.5},
    }));
    // The days of ERASED[0] (user 7, joined on day 0) before the cutoff.
    let days_before: u64 = events
        .iter()
        .filter(|e| e["user_id"] == ERASED[0] && e["event_type"] == "interaction")
        .filter_map(|e| e["occurred_at"].as_str())
        .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .filter(|t| t.timestamp() < T0 + 10 * DAY)
        .map(|t| (t.timestamp() - T0) / DAY)
        .collect::<std::collections::BTreeSet<i64>>()
        .len() as u64;
    assert!(days_before > 0);
    retention(&app, &events).await;
    let (_, h) = app.get_json("/v1/health?model=m").await;
    assert_eq!(
        h["funnel"]["withdrawn_after_training_users"], 1,
        "{}",
        h["funnel"]
    );
    assert_eq!(
        h["funnel"]["withdrawn_after_training_user_days"].as_u64(),
        Some(days_before),
        "{}",
        h["funnel"]
    );
    let (_, q) = app.get_json("/v1/quality?model=m").await;
    assert_eq!(q["privacy"]["withdrawn_after_training_users"], 1, "{q}");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("flywheel_consent_withdrawn_after_training_users{model=\"m\"} 1"),
        "{metrics}"
    );
    // Erasing the user removes their withdrawal too.
    delete(&app, ERASED[0]).await;
    retention_now(&app).await;
    let (_, h) = app.get_json("/v1/health?model=m").await;
    assert_eq!(
        h["funnel"]["withdrawn_after_training_users"], 0,
        "{}",
        h["funnel"]
    );
    app.stop().await;
}
