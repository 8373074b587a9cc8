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
