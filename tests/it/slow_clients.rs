//! Slow and idle clients against the real server: idle connections beyond the connection limit,
//! a request head sent one byte at a time, a body that never finishes. Each protection is what
//! keeps the next client served; without it these tests hang or fail.

use crate::helpers::{interaction, spawn_app_with, Options};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn start() -> crate::helpers::TestApp {
    spawn_app_with(Options {
        tweak: Box::new(|raw| {
            raw.server.header_read_timeout_secs = 1;
            raw.server.request_timeout_secs = 2;
            raw.server.max_connections = 32;
        }),
        ..Default::default()
    })
    .await
}

/// Read until the server closes the connection or `limit` passes; what was read.
async fn read_until_closed(s: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&buf).into_owned()),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn idle_connections_beyond_the_limit_do_not_block_other_clients() {
    let app = start().await;
    // 200 connections that never send a byte: 32 are served (and closed after the head timeout),
    // the rest wait in the backlog and are served (and closed) in turn.
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(app.addr).await.expect("connect"));
    }
    let started = Instant::now();
    let (s, v) = app.post_ndjson(&[interaction("slow-1", "m", "v1")]).await;
    assert_eq!(s, 200, "{v}");
    let waited = started.elapsed();
    eprintln!("a request behind 200 idle connections answered after {waited:?}");
    assert!(waited < Duration::from_secs(20), "{waited:?}");
    // The idle connections were closed by the server, not left open.
    let mut closed = 0;
    for s in idle.iter_mut().take(20) {
        if read_until_closed(s, Duration::from_secs(15))
            .await
            .is_some()
        {
            closed += 1;
        }
    }
    assert_eq!(
        closed, 20,
        "idle connections are closed after the head timeout"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_head_sent_one_byte_at_a_time_is_cut_off() {
    let app = start().await;
    let mut s = TcpStream::connect(app.addr).await.expect("connect");
    let head = b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n";
    let started = Instant::now();
    let mut cut = false;
    for b in head {
        if s.write_all(&[*b]).await.is_err() {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        if started.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    if !cut {
        cut = read_until_closed(&mut s, Duration::from_secs(5))
            .await
            .is_some();
    }
    assert!(cut, "a slow request head keeps its connection");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_body_that_never_finishes_gets_408_and_nothing_is_acknowledged() {
    let app = start().await;
    let line = serde_json::to_string(&interaction("half-1", "m", "v1")).expect("json") + "\n";
    let mut s = TcpStream::connect(app.addr).await.expect("connect");
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n",
        line.len() + 100
    );
    s.write_all(head.as_bytes()).await.expect("head");
    s.write_all(line.as_bytes()).await.expect("body");
    // 100 bytes promised and never sent.
    let answer = read_until_closed(&mut s, Duration::from_secs(10))
        .await
        .expect("answered within the request timeout");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    // The event in the unfinished body was not acknowledged, so it is not counted; a resend
    // succeeds.
    let (_, models) = app.get_json("/v1/models").await;
    assert_eq!(
        crate::helpers::count_of(&models, "m", "interaction"),
        0,
        "{models}"
    );
    let (st, v) = app.post_ndjson(&[interaction("half-1", "m", "v1")]).await;
    assert_eq!(st, 200, "{v}");
    app.stop().await;
}

/// Clients that hang up in the middle of a body, 300 times: nothing of those bodies is
/// acknowledged or counted, the writer's queue is empty afterwards, no descriptor is left
/// behind, and the next client is served.
#[tokio::test]
async fn clients_that_disconnect_mid_body_leave_nothing_behind() {
    let app = start().await;
    let fds = || {
        std::fs::read_dir("/proc/self/fd")
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let line = serde_json::to_string(&interaction("gone-1", "m", "v1")).expect("json") + "\n";
    let before = fds();
    for _ in 0..300 {
        let mut s = TcpStream::connect(app.addr).await.expect("connect");
        let head = format!(
            "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n",
            line.len() * 4
        );
        s.write_all(head.as_bytes()).await.expect("head");
        s.write_all(line.as_bytes()).await.expect("body");
        drop(s); // hang up with three quarters of the body unsent
    }
    // Give the server a moment to notice the closed sockets.
    let deadline = Instant::now() + Duration::from_secs(10);
    while fds() > before + 8 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        fds() <= before + 8,
        "descriptors left behind: {before} before, {} after",
        fds()
    );
    let (_, models) = app.get_json("/v1/models").await;
    assert_eq!(
        crate::helpers::count_of(&models, "m", "interaction"),
        0,
        "{models}"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("flywheel_ingest_queue_batches 0"),
        "the writer's queue is empty"
    );
    let (st, v) = app.post_ndjson(&[interaction("gone-1", "m", "v1")]).await;
    assert_eq!((st, v["accepted"].as_u64()), (200, Some(1)), "{v}");
    app.stop().await;
}

/// Hostile shapes within the size limits: a line nested 100,000 deep, a 1 MB string, and
/// 20,000 tiny events in one body. Each is answered promptly, event by event, and good
/// neighbours are kept.
#[tokio::test]
async fn deep_nesting_huge_strings_and_many_tiny_events_are_answered_event_by_event() {
    let app = start().await;
    let good = serde_json::to_string(&interaction("ok-1", "m", "v1")).expect("json");
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    let mut huge = interaction("huge-1", "m", "v1");
    huge["features"]["country"] = "x".repeat(1 << 20).into();
    let body = format!("{deep}\n{good}\n{huge}\n");
    let r = app
        .client
        .post(app.url("/v1/events"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["accepted"], 1, "{v}");
    let errors = v["errors"].as_array().cloned().unwrap_or_default();
    assert_eq!(errors.len(), 2, "{v}");
    assert!(
        errors
            .iter()
            .any(|e| e["index"] == 2 && e["error"].as_str().is_some_and(|m| m.contains("country"))),
        "the long string is named: {v}"
    );
    // 20,000 minimal events (the batch limit) in one body.
    let now = crate::helpers::now_rfc3339();
    let tiny: String = (0..20_000)
        .map(|i| {
            format!(
                "{{\"event_id\":\"t{i}\",\"event_type\":\"interaction\",\"occurred_at\":\"{now}\",\"model\":{{\"id\":\"tiny\",\"version\":\"v1\"}}}}\n"
            )
        })
        .collect();
    let (st, v) = app
        .post_raw("application/x-ndjson", tiny.into_bytes())
        .await;
    assert_eq!((st, v["accepted"].as_u64()), (200, Some(20_000)), "{v}");
    app.stop().await;
}
