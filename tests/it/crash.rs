//! Crash consistency, repeated: the real binary is killed with SIGKILL at random moments while
//! three clients send events, a checkpoint runs every second, a drift job every two seconds and
//! the weekly report every three, and restarted each time. Then: every acknowledged event is
//! counted exactly once, every recorded drift window equals a rerun of it, every report file is
//! whole, and nothing is left in the journal.
//!
//! The seed (printed, and in every failure message) fixes the batch sizes, the resent batches and
//! the kill delays; `FLYWHEEL_CRASH_SEED=<seed>` replays them (thread timing still varies).
//! `FLYWHEEL_CRASH_KILLS` changes the number of kills (20 by default).

use crate::helpers::count_of;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CONFIG: &str = r#"
[storage]
checkpoint_interval_secs = 1
[jobs]
poll_interval_ms = 100
[health]
enabled = false
[drift]
default_monitor = false
[[monitors]]
name = "fast"
schedule = "*/2 * * * * *"
baseline = "week_ago"
[report]
schedule = "*/3 * * * * *"
"#;

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, seed: u64) -> Server {
    let config = dir.join("flywheel.toml");
    std::fs::write(&config, CONFIG).expect("write config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_flywheel"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("FLYWHEEL_HMAC_KEY", "crash-test-key-0123456789abcdef")
        .env("FLYWHEEL_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn flywheel");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        let mut head = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent {
                head.push(line.clone());
                if line.contains("flywheel listening") {
                    if let Some(a) = line
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix("address="))
                    {
                        let _ = tx.send(Ok(a.to_owned()));
                        sent = true;
                    }
                }
            }
        }
        if !sent {
            let _ = tx.send(Err(head.join("\n")));
        }
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(addr)) => Server { child, addr },
        Ok(Err(log)) => panic!("seed {seed}: the server exited while starting:\n{log}"),
        Err(_) => panic!("seed {seed}: the server did not start within 30 s"),
    }
}

fn event(id: &str, model: &str, at: chrono::DateTime<chrono::Utc>, x: f64) -> Value {
    json!({
        "event_id": id,
        "event_type": "interaction",
        "occurred_at": at.to_rfc3339(),
        "model": {"id": model, "version": "v1"},
        "user_id": format!("u{}", (x as i64) % 50),
        "features": {"x": x, "plan": if (x as i64) % 3 == 0 { "free" } else { "pro" }},
        "prediction": {"score": (x / 100.0).fract()}
    })
}

/// POST a batch: `Some(200 body)`, or `None` when the server is gone (or answered otherwise).
async fn post(client: &reqwest::Client, addr: &str, lines: &[Value]) -> Option<Value> {
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let r = client
        .post(format!("http://{addr}/v1/events"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    r.json().await.ok()
}

/// What the clients sent: every id, and the batches no answer came back for.
#[derive(Default)]
struct Ledger {
    ids: BTreeSet<String>,
    acked: BTreeSet<String>,
    unanswered: Vec<Vec<Value>>,
    sent_batches: Vec<Vec<Value>>,
}

async fn client_loop(
    client: reqwest::Client,
    addr: String,
    who: usize,
    seed: u64,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ (who as u64).wrapping_mul(0x9e37));
    let mut n = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        // One batch in ten is a resend of an earlier one (a client retrying after a timeout).
        let resend = {
            let l = ledger.lock().expect("ledger");
            (!l.sent_batches.is_empty() && rng.gen_bool(0.1))
                .then(|| l.sent_batches[rng.gen_range(0..l.sent_batches.len())].clone())
        };
        let batch = match resend {
            Some(b) => b,
            None => {
                let size = rng.gen_range(1..200);
                let now = chrono::Utc::now();
                let b: Vec<Value> = (0..size)
                    .map(|_| {
                        n += 1;
                        event(&format!("c{who}-{seed}-{n}"), "live", now, n as f64)
                    })
                    .collect();
                let mut l = ledger.lock().expect("ledger");
                l.ids.extend(
                    b.iter()
                        .map(|e| e["event_id"].as_str().unwrap_or("").to_owned()),
                );
                l.sent_batches.push(b.clone());
                b
            }
        };
        let answer = post(&client, &addr, &batch).await;
        let mut l = ledger.lock().expect("ledger");
        match answer {
            Some(_) => l.acked.extend(
                batch
                    .iter()
                    .map(|e| e["event_id"].as_str().unwrap_or("").to_owned()),
            ),
            None => {
                l.unanswered.push(batch);
                return;
            }
        }
    }
}

fn read_json(client_body: Option<Value>, what: &str, seed: u64) -> Value {
    client_body.unwrap_or_else(|| panic!("seed {seed}: {what} failed"))
}

async fn get(client: &reqwest::Client, url: String) -> Option<Value> {
    let r = client
        .get(url)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .ok()?;
    (r.status() == 200).then_some(())?;
    r.json().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_kill_9s_lose_nothing_acknowledged_count_nothing_twice_and_leave_whole_files() {
    let seed: u64 = std::env::var("FLYWHEEL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let kills: usize = std::env::var("FLYWHEEL_CRASH_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    eprintln!("crash test: seed {seed} (FLYWHEEL_CRASH_SEED={seed} replays it), {kills} kills");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let client = reqwest::Client::new();

    // Phase 0: a model whose drift window (the last complete hour) and baseline (a week before)
    // are complete before the first kill, so every run recorded later must equal a rerun.
    let server = start(dir.path(), seed);
    let hour = chrono::Utc::now() - chrono::Duration::minutes(60);
    let hour_start = hour.timestamp() - hour.timestamp().rem_euclid(3600);
    let fixed: Vec<Value> = (0..1200)
        .map(|i| {
            let at = chrono::DateTime::from_timestamp(hour_start + (i % 3600), 0)
                .unwrap_or_default()
                - if i % 2 == 0 {
                    chrono::Duration::zero()
                } else {
                    chrono::Duration::days(7)
                };
            // The current week drifts a little against the week before.
            let x = (i % 97) as f64 + if i % 2 == 0 { 5.0 } else { 0.0 };
            event(&format!("fixed-{i}"), "fixed", at, x)
        })
        .collect();
    for chunk in fixed.chunks(400) {
        read_json(
            post(&client, &server.addr, chunk).await,
            "phase 0 ingest",
            seed,
        );
    }
    let m = read_json(
        get(&client, format!("http://{}/v1/models", server.addr)).await,
        "models",
        seed,
    );
    assert_eq!(
        count_of(&m, "fixed", "interaction"),
        1200,
        "seed {seed}: {m}"
    );
    let settled = chrono::Utc::now().timestamp();
    let mut server = Some(server);

    // Kill, restart, repeat.
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    for k in 0..kills {
        let s = match server.take() {
            Some(s) => s,
            None => start(dir.path(), seed),
        };
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let clients: Vec<_> = (0..3)
            .map(|who| {
                tokio::spawn(client_loop(
                    client.clone(),
                    s.addr.clone(),
                    who + 3 * k,
                    seed,
                    ledger.clone(),
                    stop.clone(),
                ))
            })
            .collect();
        let delay = rng.gen_range(150..1800);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        drop(s); // SIGKILL, then reap
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for c in clients {
            c.await.expect("client task");
        }
    }

    // The last start: clients resend what got no answer until it is answered, as they would.
    let s = start(dir.path(), seed);
    let unanswered = std::mem::take(&mut ledger.lock().expect("ledger").unanswered);
    let resent = unanswered.len();
    for b in unanswered {
        read_json(post(&client, &s.addr, &b).await, "resend", seed);
    }
    let (ids, acked) = {
        let l = ledger.lock().expect("ledger");
        (l.ids.len() as u64, l.acked.len() as u64)
    };
    let m = read_json(
        get(&client, format!("http://{}/v1/models", s.addr)).await,
        "models",
        seed,
    );
    assert_eq!(
        count_of(&m, "live", "interaction"),
        ids,
        "seed {seed}: every id sent (all answered in the end) counted once ({acked} answered before a kill, {resent} batches resent)"
    );
    assert_eq!(count_of(&m, "fixed", "interaction"), 1200, "seed {seed}");
    eprintln!("crash test: {ids} events, {acked} answered between kills, {resent} batches resent");

    // Every recorded drift window equals a rerun of it (no run was half-written).
    let store = flywheel::store::open(&flywheel::store::Location::Sqlite(data.clone()))
        .await
        .expect("open the store");
    let runs = store
        .jobs()
        .runs(Some("drift:fast"), 1000)
        .await
        .expect("runs");
    let windows: BTreeSet<i64> = runs
        .iter()
        .filter(|r| r.started_at.secs() > settled + 1)
        .map(|r| r.window_start)
        .collect();
    assert!(
        !windows.is_empty(),
        "seed {seed}: the drift job ran between kills; runs: {:?}",
        runs.iter()
            .map(|r| (r.fired_at, r.started_at.secs(), r.window_start, r.outcome))
            .collect::<Vec<_>>()
    );
    let fixed_rows = async |w: i64| -> BTreeMap<String, Value> {
        let q = flywheel::store::ResultQuery {
            job_prefix: Some("drift:fast".into()),
            model: Some("fixed".into()),
            ..Default::default()
        };
        store
            .jobs()
            .results(&q)
            .await
            .expect("results")
            .into_iter()
            .filter(|r| r.window_start == w)
            .map(|r| (r.subject, r.data))
            .collect()
    };
    for &w in &windows {
        let before = fixed_rows(w).await;
        let start = chrono::DateTime::from_timestamp(w, 0).unwrap_or_default();
        // The scheduled fire (every two seconds) may hold the job: 409, try again.
        let (mut status, mut body) = (0, String::new());
        for _ in 0..100 {
            let r = client
                .post(format!(
                    "http://{}/v1/jobs/drift:fast/run?window={}",
                    s.addr,
                    start.to_rfc3339().replace('+', "%2B")
                ))
                .send()
                .await
                .expect("rerun");
            status = r.status().as_u16();
            body = r.text().await.unwrap_or_default();
            if status != 409 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(status, 200, "seed {seed}: rerun of {start}: {body}");
        let after = fixed_rows(w).await;
        if w == hour_start {
            assert!(
                !before.is_empty(),
                "seed {seed}: the window of the fixed data has results"
            );
        }
        assert_eq!(
            before, after,
            "seed {seed}: the window {start} as recorded and rerun"
        );
        eprintln!(
            "crash test: window {start}: {} result rows equal a rerun",
            before.len()
        );
    }

    // Reports are whole files, and no temporary is served.
    let reports = data.join("reports");
    let mut whole = 0;
    for e in std::fs::read_dir(&reports).expect("the report job wrote files") {
        let p = e.expect("entry").path();
        let text = std::fs::read_to_string(&p).expect("read a report");
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".json") {
            serde_json::from_str::<Value>(&text)
                .unwrap_or_else(|e| panic!("seed {seed}: {name} is not whole JSON: {e}"));
            whole += 1;
        } else if name.ends_with(".html") {
            assert!(
                text.trim_end().ends_with("</html>"),
                "seed {seed}: {name} is cut"
            );
            whole += 1;
        } else if name.ends_with(".md") {
            assert!(!text.is_empty(), "seed {seed}: {name} is empty");
            whole += 1;
        }
    }
    assert!(whole >= 3, "seed {seed}: a report was written");

    // Nothing is left unfolded once the last server has checkpointed.
    drop(s);
    let s = start(dir.path(), seed);
    read_json(
        get(&client, format!("http://{}/v1/models", s.addr)).await,
        "models",
        seed,
    );
    assert_eq!(
        store.journal().unfolded().await.expect("unfolded"),
        0,
        "seed {seed}"
    );
}
