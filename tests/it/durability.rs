//! Crash and shutdown tests against the real binary, as an operator would run it.

use crate::helpers::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    addr: String,
}

fn start(data_dir: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_flywheel"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("FLYWHEEL_HMAC_KEY", "durability-test-key-0123456789")
        .env("FLYWHEEL_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn flywheel");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent && line.contains("flywheel listening") {
                if let Some(a) = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("address="))
                {
                    let _ = tx.send(a.to_owned());
                    sent = true;
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server reports its address");
    Server { child, addr }
}

async fn post(client: &reqwest::Client, addr: &str, lines: &[Value]) -> Value {
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let r = client
        .post(format!("http://{addr}/v1/events"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
    r.json().await.expect("json")
}

async fn models(client: &reqwest::Client, addr: &str) -> Value {
    client
        .get(format!("http://{addr}/v1/models"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn acknowledged_events_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = reqwest::Client::new();
    let mut s = start(dir.path());
    let mut acked = 0u64;
    for b in 0..20 {
        let batch: Vec<Value> = (0..250)
            .map(|i| interaction(&format!("k-{b}-{i}"), "ranker", "v1"))
            .collect();
        let v = post(&client, &s.addr, &batch).await;
        acked += v["accepted"].as_u64().expect("accepted");
    }
    // SIGKILL right after the last answer: no checkpoint, no flush, no goodbye.
    s.child.kill().expect("kill -9");
    s.child.wait().expect("reap");
    assert_eq!(acked, 5000);

    let mut s = start(dir.path());
    let m = models(&client, &s.addr).await;
    assert_eq!(count_of(&m, "ranker", "interaction"), 5000, "{m}");
    // The ids are still known after the crash: resending the last batch counts nothing new.
    let batch: Vec<Value> = (0..250)
        .map(|i| interaction(&format!("k-19-{i}"), "ranker", "v1"))
        .collect();
    let v = post(&client, &s.addr, &batch).await;
    assert_eq!(v["duplicates"], 250, "{v}");
    let m = models(&client, &s.addr).await;
    assert_eq!(count_of(&m, "ranker", "interaction"), 5000);
    s.child.kill().expect("kill");
    s.child.wait().expect("reap");
}

#[tokio::test]
async fn sigterm_flushes_and_exits_within_the_bound() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = reqwest::Client::new();
    let mut s = start(dir.path());
    let batch: Vec<Value> = (0..500)
        .map(|i| interaction(&format!("t-{i}"), "ranker", "v2"))
        .collect();
    post(&client, &s.addr, &batch).await;
    let t0 = Instant::now();
    let ok = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(ok.success());
    let status = s.child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
    // The default bound is 10 s; a clean stop of this size takes well under it.
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t0.elapsed()
    );
    // Everything was checkpointed: no journal row is left unfolded.
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("flywheel.db").display()
    ))
    .await
    .expect("open");
    let journal: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM journal WHERE seq > (SELECT value FROM meta WHERE key = 'journal_folded_upto')",
    )
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(journal, 0);
    pool.close().await;
    let mut s = start(dir.path());
    let m = models(&client, &s.addr).await;
    assert_eq!(count_of(&m, "ranker", "interaction"), 500);
    s.child.kill().expect("kill");
    s.child.wait().expect("reap");
}

/// One process per data directory: a second `serve` on a directory in use stops at start,
/// naming the directory and the pid that holds it; once the first is gone (even by kill -9,
/// which leaves the lock file behind), the directory is free again.
#[tokio::test]
async fn a_second_process_on_the_same_data_directory_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut first = start(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_flywheel"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("FLYWHEEL_HMAC_KEY", "durability-test-key-0123456789")
        .output()
        .expect("run a second flywheel");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("in use by another flywheel process")
            && err.contains(&format!("pid {}", first.child.id())),
        "{err}"
    );
    first.child.kill().expect("kill -9");
    first.child.wait().expect("reap");
    let mut again = start(dir.path());
    again.child.kill().expect("kill");
    again.child.wait().expect("reap");
}

/// A job whose run was cut by kill -9 keeps its lease in the store; the next process on the
/// directory releases it at start instead of waiting for it to expire (jobs.lease_ttl_secs).
#[tokio::test]
async fn a_lease_left_by_a_killed_process_is_released_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store =
            flywheel::store::open(&flywheel::store::Location::Sqlite(dir.path().to_path_buf()))
                .await
                .expect("open");
        assert!(store
            .jobs()
            .try_lease("weekly_report", "a-dead-process", 3_600_000_000)
            .await
            .expect("lease"));
    }
    let mut s = start(dir.path());
    let client = reqwest::Client::new();
    let r = client
        .post(format!(
            "http://{}/v1/jobs/weekly_report/run?window=2026-11-23T00:00:00Z",
            s.addr
        ))
        .send()
        .await
        .expect("run");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    s.child.kill().expect("kill");
    s.child.wait().expect("reap");
}
