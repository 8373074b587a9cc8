use crate::helpers::*;
use serde_json::json;

const INGEST: &str = "ingest-token-0123456789";
const READ: &str = "read-token-0123456789ab";

#[tokio::test]
async fn health_readiness_and_metrics_are_served() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(r.status(), 200);
    let (s, v) = app.post_ndjson(&[interaction("m1", "ranker", "v1")]).await;
    assert_eq!(s, 200, "{v}");
    app.post_ndjson(&[json!({"event_id": 1})]).await;
    app.post_ndjson(&[interaction("m1", "ranker", "v1")]).await;
    let r = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(r.status(), 200);
    assert!(r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain; version=0.0.4")));
    let text = r.text().await.expect("body");
    for needle in [
        "flywheel_events_ingested_total{event_type=\"interaction\",model=\"ranker\"} 1",
        "flywheel_events_rejected_total{reason=\"invalid_value\"} 1",
        "flywheel_events_duplicate_total 1",
        "flywheel_http_request_duration_seconds_bucket{route=\"/v1/events\",status_class=\"2xx\"",
        "flywheel_store_write_duration_seconds_count{operation=\"journal\"}",
        "flywheel_build_info{version=",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    // Naming rules: prefix, no label called job/instance, counters end in _total.
    let mut kind = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            let (name, t) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
            assert!(name.starts_with("flywheel_"), "{name}");
            assert_eq!(t == "counter", name.ends_with("_total"), "{name} is a {t}");
            kind.insert(name.to_owned(), t.to_owned());
        } else if !line.starts_with('#') {
            assert!(
                !line.contains("job=") && !line.contains("instance="),
                "{line}"
            );
        }
    }
    // README.md lists every metric family.
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    for name in kind.keys() {
        assert!(
            readme.contains(&format!("`{name}`")),
            "README.md does not list {name}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn tokens_guard_ingest_and_reads_separately() {
    let app = spawn_app_with(Options {
        tweak: Box::new(|c| {
            c.auth.ingest_tokens = vec![INGEST.into()];
            c.auth.read_tokens = vec![READ.into()];
        }),
        ..Default::default()
    })
    .await;
    let body = interaction("a1", "ranker", "v1").to_string();
    let post = |tok: Option<&str>| {
        let mut r = app
            .client
            .post(app.url("/v1/events"))
            .header("content-type", "application/x-ndjson")
            .body(body.clone());
        if let Some(t) = tok {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    // A token in the query string is refused: tokens travel only in the Authorization header
    // (URLs end up in access logs and browser history).
    for q in [format!("token={INGEST}"), format!("access_token={INGEST}")] {
        let r = app
            .client
            .post(app.url(&format!("/v1/events?{q}")))
            .header("content-type", "application/x-ndjson")
            .body(body.clone())
            .send()
            .await
            .expect("r");
        assert_eq!(r.status(), 401, "{q}");
    }
    for q in [format!("token={READ}"), format!("access_token={READ}")] {
        let (s, _) = app.get_json(&format!("/v1/models?{q}")).await;
        assert_eq!(s, 401, "{q}");
    }
    assert_eq!(post(None).await.expect("r").status(), 401);
    assert_eq!(post(Some(READ)).await.expect("r").status(), 401);
    assert_eq!(
        post(Some("ingest-token-012345678X"))
            .await
            .expect("r")
            .status(),
        401
    );
    let ok = post(Some(INGEST)).await.expect("r");
    assert_eq!(ok.status(), 200);
    let get = |tok: Option<&str>| {
        let mut r = app.client.get(app.url("/v1/models"));
        if let Some(t) = tok {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let denied = get(Some(INGEST)).await.expect("r");
    assert_eq!(denied.status(), 401);
    assert_eq!(
        denied
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    assert_eq!(get(Some(READ)).await.expect("r").status(), 200);
    // Ops endpoints stay open by default.
    for p in ["/healthz", "/readyz", "/metrics"] {
        let r = app.client.get(app.url(p)).send().await.expect("r");
        assert_eq!(r.status(), 200, "{p}");
    }
    app.stop().await;

    let app = spawn_app_with(Options {
        tweak: Box::new(|c| {
            c.auth.read_tokens = vec![READ.into()];
            c.auth.protect_ops = true;
        }),
        ..Default::default()
    })
    .await;
    let r = app.client.get(app.url("/metrics")).send().await.expect("r");
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(READ)
        .send()
        .await
        .expect("r");
    assert_eq!(r.status(), 200);
    app.stop().await;
}

#[test]
fn config_check_reports_every_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[server]\nlisten = \"nowhere\"\nshutdown_timeout_secs = \"x\"\n[ingest]\nbucket_secs = 7\nmax_body_bytes = 0\n[bogus]\na = 1\n",
    )
    .expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flywheel"))
        .args(["config", "check"])
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "server.listen",
        "server.shutdown_timeout_secs",
        "ingest.bucket_secs",
        "ingest.max_body_bytes",
        "bogus",
    ] {
        assert!(err.contains(key), "{key} not reported:\n{err}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_flywheel"))
        .args([
            "config",
            "check",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml"),
        ])
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
