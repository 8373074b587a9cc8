//! The service's own alerts: lifecycle from job results, one alert per model and incident,
//! delivery to a signed webhook (a real HTTP sink on port 0) with retries, and — with a real
//! Prometheus and Alertmanager on loopback — the rules and the direct push end to end.

use crate::helpers::{spawn_app_with, wait_until, Options, TestApp};
use axum::body::Bytes;
use axum::http::HeaderMap;
use flywheel::clock::ManualClock;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// 2026-11-02T00:00:00Z.
const T0: i64 = 1_793_577_600;
const DAY: i64 = 86_400;
const SECRET: &str = "webhook-secret-0123456789";

fn ts(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("time")
        .to_rfc3339()
}

fn q(secs: i64) -> String {
    ts(secs).replace('+', "%2B")
}

/// (signature header, body) of every POST a sink received.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A webhook receiver: records (signature header, body) of every POST.
async fn sink() -> (String, Received) {
    let got: Received = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |h: HeaderMap, b: Bytes| {
            let g = g.clone();
            async move {
                let sig = h
                    .get("x-flywheel-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                g.lock().expect("lock").push((sig, b.to_vec()));
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (format!("http://{addr}/hook"), got)
}

fn eval(model: &str, cycle: u64, value: f64) -> Value {
    json!({
        "event_id": format!("{model}-{cycle}"), "event_type": "model_eval",
        "occurred_at": ts(T0 + cycle as i64 * DAY + 3600),
        "model": {"id": model, "version": format!("c{cycle}")}, "cycle": cycle,
        "eval_set": {"id": "golden"}, "metrics": [{"name": "ndcg", "value": value, "higher_is_better": true}],
    })
}

async fn run_health(app: &TestApp, day_end: i64) {
    let r = app
        .client
        .post(app.url(&format!(
            "/v1/jobs/health/run?window={}",
            q(T0 + (day_end - 1) * DAY)
        )))
        .send()
        .await
        .expect("run");
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test]
async fn a_plateau_goes_pending_firing_resolved_and_reaches_the_signed_webhook() {
    let (hook, got) = sink().await;
    let now = ManualClock::at_secs(T0 + 60 * DAY);
    let app = spawn_app_with(Options {
        tweak: Box::new(move |raw| {
            raw.drift.default_monitor = false;
            raw.alerts.webhook_url = hook;
            raw.alerts.webhook_secret = Some(SECRET.into());
            raw.health.delta_min.insert("ndcg".into(), 0.002);
            // Only the runs below (the scheduler would run today's window first, and alerts
            // follow the newest window).
            raw.health.max_catch_up = 0;
        }),
        clock: now.clock(),
        ..Default::default()
    })
    .await;
    // Rising for 10 cycles, flat for 12, then rising steeply again.
    let mut v = 0.5;
    let mut events = Vec::new();
    for c in 1..=34u64 {
        if c <= 10 || c > 22 {
            v += 0.01;
        }
        events.push(eval("ranker", c, v + ((c as f64) * 2.399).sin() * 0.0005));
    }
    let (s, body) = app.post_ndjson(&events).await;
    assert_eq!(s, 200, "{body}");
    let mut states = Vec::new();
    for day in 2..=35 {
        run_health(&app, day).await;
        let (_, a) = app.get_json("/v1/alerts?model=ranker").await;
        let st = a["active"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|x| x["labels"]["alertname"] == "FlywheelLearningPlateau")
            .map(|x| x["state"].as_str().unwrap_or("?").to_owned())
            .unwrap_or_else(|| "none".into());
        states.push(st);
    }
    eprintln!("plateau alert by day: {states:?}");
    let first_pending = states.iter().position(|s| s == "pending").expect("pending");
    let first_firing = states.iter().position(|s| s == "firing").expect("firing");
    assert!(first_pending < first_firing, "{states:?}");
    let last_firing = states.iter().rposition(|s| s == "firing").expect("firing");
    assert!(
        last_firing < states.len() - 1,
        "resolved by the end: {states:?}"
    );
    assert_eq!(states.last().map(String::as_str), Some("none"));
    // Firing alerts carry labels and annotations; history keeps the resolved one.
    let (_, a) = app.get_json("/v1/alerts?model=ranker").await;
    let h = a["history"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|x| x["labels"]["alertname"] == "FlywheelLearningPlateau")
        .cloned()
        .expect("in history");
    assert_eq!(h["state"], "resolved");
    assert_eq!(h["labels"]["severity"], "warning");
    assert_eq!(h["labels"]["arc"], "learning");
    // The link in the alert opens the runbook on this service.
    let url = h["annotations"]["runbook_url"]
        .as_str()
        .expect("runbook_url");
    assert_eq!(url, app.url("/runbooks/FlywheelLearningPlateau"));
    let page = app.client.get(url).send().await.expect("runbook");
    assert_eq!(page.status().as_u16(), 200);
    assert!(page
        .text()
        .await
        .expect("html")
        .contains("<h1>FlywheelLearningPlateau</h1>"));
    assert!(h["annotations"]["description"]
        .as_str()
        .is_some_and(|d| d.contains("Sen slope") && d.contains("What to try")));
    // The webhook got a firing and a resolved notification, each correctly signed.
    let msgs = wait_until("webhook notifications", 10, async || {
        let g = got.lock().expect("lock").clone();
        (g.len() >= 2).then_some(g)
    })
    .await;
    let mut kinds = Vec::new();
    for (sig, body) in &msgs {
        assert_eq!(sig, &flywheel::alerts::deliver::signature(SECRET, body));
        assert_ne!(
            sig,
            &flywheel::alerts::deliver::signature("another-secret-000000", body)
        );
        let v: Value = serde_json::from_slice(body).expect("json");
        // Every pushed notification's runbook link opens on the service.
        let url = v["alert"]["annotations"]["runbook_url"]
            .as_str()
            .expect("runbook_url");
        let page = app.client.get(url).send().await.expect("runbook");
        assert_eq!(page.status().as_u16(), 200, "{url}");
        kinds.push(format!(
            "{}:{}",
            v["alert"]["labels"]["alertname"].as_str().unwrap_or(""),
            v["status"].as_str().unwrap_or("")
        ));
    }
    assert!(
        kinds.contains(&"FlywheelLearningPlateau:firing".to_owned()),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"FlywheelLearningPlateau:resolved".to_owned()),
        "{kinds:?}"
    );
    let metrics = app.metrics().await;
    assert!(metrics
        .contains("flywheel_alert_notifications_total{outcome=\"sent\",receiver=\"webhook\"}"));
    app.stop().await;
}

#[tokio::test]
async fn a_dead_receiver_is_retried_counted_and_never_blocks_jobs() {
    // A port with nothing listening.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let app = spawn_app_with(Options {
        tweak: Box::new(move |raw| {
            raw.drift.default_monitor = false;
            raw.alerts.alertmanager_url = format!("http://{dead}");
            raw.alerts.max_attempts = 2;
            raw.health.delta_min.insert("ndcg".into(), 0.002);
        }),
        ..Default::default()
    })
    .await;
    // A regression: rising, then falling steeply; the health run must finish promptly anyway.
    let mut events = Vec::new();
    for c in 1..=16u64 {
        let v = if c <= 8 {
            0.5 + 0.01 * c as f64
        } else {
            0.58 - 0.02 * (c - 8) as f64
        };
        let mut e = eval("m", c, v);
        e["occurred_at"] = json!(ts(chrono::Utc::now().timestamp() - (20 - c as i64) * DAY));
        events.push(e);
    }
    let (s, body) = app.post_ndjson(&events).await;
    assert_eq!(s, 200, "{body}");
    let started = Instant::now();
    for _ in 0..2 {
        let r = app
            .client
            .post(app.url("/v1/jobs/health/run"))
            .send()
            .await
            .expect("run");
        assert_eq!(r.status().as_u16(), 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "delivery blocked the job"
    );
    let (_, a) = app.get_json("/v1/alerts?model=m").await;
    assert_eq!(
        a["active"][0]["labels"]["alertname"], "FlywheelLearningRegressing",
        "{a}"
    );
    let text = wait_until("a failed delivery", 15, async || {
        let t = app
            .client
            .get(app.url("/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        t.contains(
            "flywheel_alert_notifications_total{outcome=\"failed\",receiver=\"alertmanager\"} 1",
        )
        .then_some(t)
    })
    .await;
    assert!(text.contains(
        "flywheel_alert_notifications_total{outcome=\"retried\",receiver=\"alertmanager\"} 1"
    ));
    assert!(text.contains("flywheel_alerts_firing{severity=\"critical\"} 1"));
    app.stop().await;
}
