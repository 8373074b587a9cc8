//! Several `flywheel serve` processes (the real binary) on one PostgreSQL database, as an operator
//! runs them behind a load balancer: events counted once whichever replica took them, nothing
//! acknowledged lost when a replica is killed or the database restarts, each job fire run once.

use crate::helpers::*;
use serde_json::Value;
use sqlx::PgPool;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "replica-test-key-0123456789abcdef";

/// A drift job fired every two seconds, one-second checkpoints, a writer taken over after three seconds of silence.
const CONFIG: &str = r#"
[storage]
backend = "postgres"
checkpoint_interval_secs = 1
writer_ttl_secs = 3
pool_size = 6
[jobs]
poll_interval_ms = 100
lease_ttl_secs = 3
[health]
enabled = false
[drift]
default_monitor = false
[[monitors]]
name = "fast"
schedule = "*/2 * * * * *"
baseline = "week_ago"
"#;

struct Replica {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl Replica {
    fn start(dir: &Path, name: &str, url: &str, key: &str) -> Result<Replica, String> {
        let data = dir.join(name);
        std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
        let config = dir.join("flywheel.toml");
        std::fs::write(&config, CONFIG).map_err(|e| e.to_string())?;
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let child = Command::new(env!("CARGO_BIN_EXE_flywheel"))
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .env("FLYWHEEL_DATABASE_URL", url)
            .env("FLYWHEEL_HMAC_KEY", key)
            .env("FLYWHEEL_LOG", "info")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut r = Replica {
            child,
            addr: String::new(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&r.log).unwrap_or_default();
            if let Some(a) = text
                .lines()
                .filter(|l| l.contains("flywheel listening"))
                .find_map(|l| {
                    l.split_whitespace()
                        .find_map(|w| w.strip_prefix("address="))
                })
            {
                r.addr = a.to_owned();
                return Ok(r);
            }
            if let Ok(Some(status)) = r.child.try_wait() {
                return Err(format!("{name} exited ({status}):\n{text}"));
            }
            if Instant::now() > deadline {
                return Err(format!("{name} did not start in 30 s:\n{text}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POST a batch; `Some(body)` only for a 200.
async fn post(client: &reqwest::Client, addr: &str, lines: &[Value]) -> Option<Value> {
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let r = client
        .post(format!("http://{addr}/v1/events"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .timeout(Duration::from_secs(40))
        .send()
        .await
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    r.json().await.ok()
}

async fn count(client: &reqwest::Client, addr: &str, model: &str) -> Option<u64> {
    let r = client
        .get(format!("http://{addr}/v1/models"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    Some(count_of(&r.json().await.ok()?, model, "interaction"))
}

async fn metrics_text(client: &reqwest::Client, addr: &str) -> String {
    match client.get(format!("http://{addr}/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Sum of a metric's samples whose line contains every one of `with`.
fn sum_metric(text: &str, name: &str, with: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| with.iter().all(|w| l.contains(w)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Every one of `ids` is sent twice, to two different replicas, by concurrent clients.
async fn load_with_duplicates(
    client: &reqwest::Client,
    addrs: &[String],
    model: &str,
    ids: usize,
) -> u64 {
    let batch = 100;
    let mut tasks = Vec::new();
    for copy in 0..2 {
        for (c, chunk) in (0..ids).collect::<Vec<_>>().chunks(batch).enumerate() {
            let client = client.clone();
            let addr = addrs[(c + copy) % addrs.len()].clone();
            let lines: Vec<Value> = chunk
                .iter()
                .map(|i| {
                    let mut e = interaction(&format!("{model}-{i}"), model, "v1");
                    // Half in the previous hour, so the drift job's window (the last complete
                    // hour) has data; half now, in case the hour turns during the test.
                    if i % 2 == 0 {
                        let t = chrono::Utc::now() - chrono::Duration::hours(1);
                        e["occurred_at"] = t.to_rfc3339().into();
                    }
                    e
                })
                .collect();
            tasks.push(tokio::spawn(async move {
                let body = post(&client, &addr, &lines)
                    .await
                    .unwrap_or_else(|| panic!("{addr} refused a batch"));
                body["accepted"].as_u64().unwrap_or(0)
            }));
        }
    }
    let mut accepted = 0;
    for t in tasks {
        accepted += t.await.expect("client task");
    }
    accepted
}

/// One replica runs several ingest writers (storage.writers, 4 by default), each with its own
/// in-memory dedup: the same batch sent at once by eight clients lands on different writers, and
/// the database's dedup still accepts each id once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_replica_with_several_writers_counts_a_batch_sent_eight_times_once() {
    let url = pg_database().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let r = Replica::start(dir.path(), "solo", &url, KEY).expect("replica starts");
    let pool = PgPool::connect(&url).await.expect("connect");
    let writers: i64 = sqlx::query_scalar("SELECT count(*) FROM writers")
        .fetch_one(&pool)
        .await
        .expect("count writers");
    assert_eq!(
        writers, 4,
        "one writer row per ingest writer of the replica"
    );
    let client = reqwest::Client::new();
    let lines: Vec<Value> = (0..500)
        .map(|i| interaction(&format!("same-{i}"), "same", "v1"))
        .collect();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, addr, lines) = (client.clone(), r.addr.clone(), lines.clone());
        tasks.push(tokio::spawn(async move {
            let body = post(&client, &addr, &lines)
                .await
                .unwrap_or_else(|| panic!("{addr} refused a batch"));
            body["accepted"].as_u64().unwrap_or(0)
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        accepted += t.await.expect("client task");
    }
    assert_eq!(accepted, 500, "each id accepted once:\n{}", r.log_text());
    wait_until("the replica counts every event once", 20, async || {
        (count(&client, &r.addr, "same").await? == 500).then_some(())
    })
    .await;
    let text = metrics_text(&client, &r.addr).await;
    assert_eq!(
        sum_metric(&text, "flywheel_events_duplicate_total", &[]),
        3500.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_count_each_event_once_run_each_fire_once_and_survive_kill_9() {
    let url = pg_database().await;
    let pool = PgPool::connect(&url).await.expect("connect");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut replicas: Vec<Replica> = (0..3)
        .map(|i| Replica::start(dir.path(), &format!("r{i}"), &url, KEY).expect("replica starts"))
        .collect();
    let addrs: Vec<String> = replicas.iter().map(|r| r.addr.clone()).collect();
    let client = reqwest::Client::new();

    // A replica with another key refuses the database (one pseudonym per user).
    let other = Replica::start(
        dir.path(),
        "wrong-key",
        &url,
        "another-key-0123456789abcdef-xx",
    );
    let err = other
        .err()
        .expect("a replica with another key must not start");
    assert!(err.contains("key"), "the refusal names the key:\n{err}");

    // 1. Concurrent clients, every id sent to two different replicas: counted once.
    let ids = 3000;
    let accepted = load_with_duplicates(&client, &addrs, "dup", ids).await;
    assert_eq!(
        accepted, ids as u64,
        "each id accepted exactly once across replicas"
    );
    for a in &addrs {
        wait_until(&format!("{a} sees every event once"), 20, async || {
            (count(&client, a, "dup").await? == ids as u64).then_some(())
        })
        .await;
    }
    let dups: f64 = {
        let mut s = 0.0;
        for a in &addrs {
            s += sum_metric(
                &metrics_text(&client, a).await,
                "flywheel_events_duplicate_total",
                &[],
            );
        }
        s
    };
    assert_eq!(
        dups, ids as f64,
        "the second copy of each id is a duplicate"
    );

    // 2. Each fire of the drift job ran once across the three replicas. At a quiet moment (no
    // lease held, the last fire unchanged while the counters are read) the replicas' run
    // counters are complete; between two such moments they grow by the fires in between, one
    // per two seconds (more if a fire ran twice, less if one was lost).
    let snapshot = async || {
        wait_until("a quiet moment between fires", 30, async || {
            let held_sql = "SELECT count(*) FROM leases WHERE expires_at > now()";
            let last_sql = "SELECT max(fired_at) FROM job_runs WHERE job = 'drift:fast'";
            let held: i64 = sqlx::query_scalar(held_sql).fetch_one(&pool).await.ok()?;
            let before: Option<i64> = sqlx::query_scalar(last_sql).fetch_one(&pool).await.ok()?;
            if held > 0 {
                return None;
            }
            let mut counted = 0.0;
            for a in &addrs {
                counted += sum_metric(
                    &metrics_text(&client, a).await,
                    "flywheel_task_runs_total",
                    &["task=\"drift:fast\""],
                );
            }
            let held: i64 = sqlx::query_scalar(held_sql).fetch_one(&pool).await.ok()?;
            let after: Option<i64> = sqlx::query_scalar(last_sql).fetch_one(&pool).await.ok()?;
            (held == 0 && before == after && after.is_some())
                .then(|| (after.unwrap_or_default(), counted))
        })
        .await
    };
    let (fire1, counted1) = snapshot().await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let (fire2, counted2) = snapshot().await;
    assert!(
        fire2 >= fire1 + 6,
        "the job kept firing ({fire1} -> {fire2})"
    );
    assert_eq!(
        counted2 - counted1,
        ((fire2 - fire1) / 2) as f64,
        "each fire between {fire1} and {fire2} was run by exactly one replica"
    );
    // Every replica exports the job's figures and its last success, whoever ran it.
    for a in &addrs {
        wait_until(&format!("{a} exports the drift figures"), 20, async || {
            let m = metrics_text(&client, a).await;
            (sum_metric(&m, "flywheel_drift_features", &["model=\"dup\""]) > 0.0
                && sum_metric(
                    &m,
                    "flywheel_task_last_success_timestamp_seconds",
                    &["task=\"drift:fast\""],
                ) > 0.0)
                .then_some(())
        })
        .await;
    }

    // 3. kill -9 of a replica mid-load, preferably while it holds the job lease.
    let acked = Arc::new(Mutex::new(HashSet::<String>::new()));
    let sent = Arc::new(Mutex::new(0u64));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..4 {
        let (client, addrs, acked, sent, stop) = (
            client.clone(),
            addrs.clone(),
            acked.clone(),
            sent.clone(),
            stop.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut b = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let ids: Vec<String> = (0..50).map(|i| format!("kill-{c}-{b}-{i}")).collect();
                let lines: Vec<Value> =
                    ids.iter().map(|id| interaction(id, "kill", "v1")).collect();
                *sent.lock().expect("lock") += ids.len() as u64;
                // Round robin; a dead replica's batch goes to the next one (a load balancer's
                // retry), so an unacknowledged batch may still be stored once.
                for k in 0..addrs.len() {
                    if post(&client, &addrs[(b + c + k) % addrs.len()], &lines)
                        .await
                        .is_some()
                    {
                        acked.lock().expect("lock").extend(ids.iter().cloned());
                        break;
                    }
                }
                b += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Kill the replica holding a lease when one is seen within 10 s, else replica 0.
    let deadline = Instant::now() + Duration::from_secs(10);
    let victim = loop {
        let holder: Option<String> =
            sqlx::query_scalar("SELECT holder FROM leases WHERE expires_at > now() LIMIT 1")
                .fetch_optional(&pool)
                .await
                .expect("leases");
        let found = holder.and_then(|h| {
            let pid: u32 = h.split('-').next()?.parse().ok()?;
            replicas.iter().position(|r| r.pid() == pid)
        });
        if let Some(i) = found {
            break i;
        }
        if Instant::now() > deadline {
            break 0;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let victim_holder_prefix = format!("{}-", replicas[victim].pid());
    replicas[victim].kill9();
    let orphan: Option<String> = sqlx::query_scalar(
        "SELECT job FROM leases WHERE holder LIKE $1 || '%' AND expires_at > now()",
    )
    .bind(&victim_holder_prefix)
    .fetch_optional(&pool)
    .await
    .expect("leases");
    let fire_before: i64 = sqlx::query_scalar(
        "SELECT coalesce(max(fired_at), 0) FROM job_runs WHERE job = 'drift:fast'",
    )
    .fetch_one(&pool)
    .await
    .expect("last fire");
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        c.await.expect("client");
    }
    let acked = acked.lock().expect("lock").len() as u64;
    let sent = *sent.lock().expect("lock");
    let survivors: Vec<&str> = addrs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .map(|(_, a)| a.as_str())
        .collect();
    // The dead replica's writer is taken over after writer_ttl_secs: its journal rows are folded
    // by a survivor, and every acknowledged event is counted (at most every sent one).
    for a in &survivors {
        let n = wait_until(
            &format!("{a} counts every acknowledged event"),
            30,
            async || {
                let n = count(&client, a, "kill").await?;
                (n >= acked).then_some(n)
            },
        )
        .await;
        assert!(n <= sent, "{n} counted, only {sent} sent");
    }
    // Its lease expires by the database's clock and the job goes on from the survivors.
    wait_until("a survivor records a later drift fire", 30, async || {
        let last: i64 = sqlx::query_scalar(
            "SELECT coalesce(max(fired_at), 0) FROM job_runs WHERE job = 'drift:fast'",
        )
        .fetch_one(&pool)
        .await
        .ok()?;
        (last >= fire_before + 4).then_some(())
    })
    .await;
    if let Some(job) = orphan {
        let holder: String = sqlx::query_scalar("SELECT holder FROM leases WHERE job = $1")
            .bind(&job)
            .fetch_optional(&pool)
            .await
            .expect("lease")
            .unwrap_or_default();
        assert!(
            !holder.starts_with(&victim_holder_prefix),
            "the dead replica's lease on {job} was not taken over"
        );
    }
    for (i, r) in replicas.iter().enumerate() {
        if i != victim {
            assert!(
                !r.log_text().contains("panicked"),
                "replica {i} panicked:\n{}",
                r.log_text()
            );
        }
    }
}

/// PostgreSQL crashes and comes back under load: ingest answers 503 with Retry-After while it is
/// down (nothing of those requests acknowledged), every acknowledged event is counted after, and
/// the replicas recover by themselves. A private cluster, so the other tests are not disturbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_restart_loses_nothing_acknowledged_and_heals_by_itself() {
    let cluster = format!(
        "/tmp/flywheel-pg-restart-{}",
        hex::encode(rand::random::<[u8; 4]>())
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-cluster.sh");
    let out = Command::new(script)
        .args(["start", &cluster])
        .output()
        .expect("run scripts/pg-cluster.sh");
    assert!(
        out.status.success(),
        "cannot start a private PostgreSQL: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    struct Cluster(String, &'static str);
    impl Drop for Cluster {
        fn drop(&mut self) {
            let _ = Command::new(self.1).args(["stop", &self.0]).output();
        }
    }
    let _guard = Cluster(cluster.clone(), script);
    let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let dir = tempfile::tempdir().expect("tempdir");
    let replicas: Vec<Replica> = (0..2)
        .map(|i| Replica::start(dir.path(), &format!("r{i}"), &url, KEY).expect("replica starts"))
        .collect();
    let addrs: Vec<String> = replicas.iter().map(|r| r.addr.clone()).collect();
    let client = reqwest::Client::new();

    let acked = Arc::new(Mutex::new(0u64));
    let sent = Arc::new(Mutex::new(0u64));
    let unavailable = Arc::new(Mutex::new(0u64));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..3 {
        let (client, addrs, acked, sent, unavailable, stop, failures) = (
            client.clone(),
            addrs.clone(),
            acked.clone(),
            sent.clone(),
            unavailable.clone(),
            stop.clone(),
            failures.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut b = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let lines: Vec<Value> = (0..50)
                    .map(|i| interaction(&format!("pg-{c}-{b}-{i}"), "restart", "v1"))
                    .collect();
                let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
                *sent.lock().expect("lock") += 50;
                let r = client
                    .post(format!("http://{}/v1/events", addrs[(b + c) % addrs.len()]))
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .timeout(Duration::from_secs(40))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => *acked.lock().expect("lock") += 50,
                    Ok(r) if r.status() == 503 => {
                        assert!(
                            r.headers().contains_key("retry-after"),
                            "a 503 says when to retry"
                        );
                        *unavailable.lock().expect("lock") += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Ok(r) => failures
                        .lock()
                        .expect("lock")
                        .push(format!("status {}", r.status())),
                    Err(e) => failures.lock().expect("lock").push(format!("{e:?}")),
                }
                b += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let down = Command::new(script)
        .args(["down", &cluster])
        .output()
        .expect("pg down");
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    // While it is down, ingest says 503 (and reads too).
    let deadline = Instant::now() + Duration::from_secs(30);
    while *unavailable.lock().expect("lock") == 0 && failures.lock().expect("lock").is_empty() {
        assert!(
            Instant::now() < deadline,
            "no 503 within 30 s of the database going down:\n{}",
            replicas.iter().map(Replica::log_text).collect::<String>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    {
        let f = failures.lock().expect("lock");
        assert!(
            f.is_empty(),
            "while the database is down, requests get 503, not {f:?}\n{}",
            replicas.iter().map(Replica::log_text).collect::<String>()
        );
    }
    let r = client
        .get(format!("http://{}/v1/models", addrs[0]))
        .send()
        .await
        .expect("read");
    assert_eq!(r.status(), 503, "reads say the store is unavailable");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let up = Command::new(script)
        .args(["up", &cluster])
        .output()
        .expect("pg up");
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    // Both replicas take events again without a restart.
    let acked_at_up = *acked.lock().expect("lock");
    wait_until("ingest recovers by itself", 60, async || {
        (*acked.lock().expect("lock") >= acked_at_up + 1000).then_some(())
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in clients {
        c.await.expect("client");
    }
    let acked = *acked.lock().expect("lock");
    let sent = *sent.lock().expect("lock");
    for a in &addrs {
        let n = wait_until(
            &format!("{a} counts every acknowledged event"),
            30,
            async || {
                let n = count(&client, a, "restart").await?;
                (n >= acked).then_some(n)
            },
        )
        .await;
        assert!(n <= sent, "{n} counted, only {sent} sent");
        assert!(post(
            &client,
            a,
            &[interaction(&format!("after-{a}"), "restart", "v1")]
        )
        .await
        .is_some());
    }
    let logs: String = replicas.iter().map(Replica::log_text).collect();
    let failures = failures.lock().expect("lock").clone();
    assert!(
        failures.is_empty(),
        "every request got 200 or 503, not {failures:?}\n{logs}"
    );
    assert!(!logs.contains("panicked"), "{logs}");
}

/// `flywheel migrate` applies the schema alone; an unreachable database is exit 2 with the URL
/// minus its password (for `serve` too: both open the store the same way).
#[tokio::test]
async fn migrate_applies_the_schema_and_an_unreachable_database_is_exit_2_without_the_password() {
    let url = pg_database().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("flywheel.toml");
    std::fs::write(
        &config,
        "[storage]\nbackend = \"postgres\"\nconnect_timeout_secs = 2\n",
    )
    .expect("config");
    let run = |cmd: &str, url: &str| {
        Command::new(env!("CARGO_BIN_EXE_flywheel"))
            .args([cmd, "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.path())
            .env("FLYWHEEL_DATABASE_URL", url)
            .env("FLYWHEEL_HMAC_KEY", KEY)
            .output()
            .expect("run flywheel")
    };
    let out = run("migrate", &url);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pool = PgPool::connect(&url).await.expect("connect");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&pool)
        .await
        .expect("migrations table");
    assert!(applied >= 1);
    let writers: i64 = sqlx::query_scalar("SELECT count(*) FROM writers")
        .fetch_one(&pool)
        .await
        .expect("the schema is there");
    assert_eq!(writers, 0);
    // Port 1 on loopback: nothing listens there.
    let dead = "postgres://flywheel:hunter2-secret@127.0.0.1:1/flywheel";
    for cmd in ["migrate", "serve"] {
        let out = run(cmd, dead);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {err}");
        assert!(
            err.contains("postgres://flywheel:***@127.0.0.1:1/flywheel"),
            "{cmd}: {err}"
        );
        assert!(
            !err.contains("hunter2"),
            "{cmd} printed the password: {err}"
        );
    }
}
