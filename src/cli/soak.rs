//! `flywheel bench soak`: a server under steady ingest for minutes, with jobs on an accelerated
//! schedule and reads in parallel, sampled every few seconds. What an operator wants to know
//! before trusting a week of uptime: do memory and descriptors level off, does the database grow
//! only with series and buckets (not with events), do latencies hold.

use super::bench::{peak_rss_bytes, start_server_with, SoakArgs, Template};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Jobs every few seconds instead of hourly or weekly. The deduplication horizon is five
/// minutes instead of an hour: ids seen within the horizon cost about 9 bytes each in memory and
/// 8 in the database (at 100k events/s, an hour is 3.2 GB), so with the default the footprint
/// only levels off after an hour; with five minutes it does within the run, and the level
/// scales with rate × horizon.
const CONFIG: &str = r#"
[ingest]
dedup_horizon_secs = 300
[storage]
checkpoint_interval_secs = 5
[jobs]
poll_interval_ms = 500
[drift]
default_monitor = false
[[monitors]]
name = "soak"
schedule = "*/15 * * * * *"
baseline = "rolling:1d"
[health]
schedule = "*/30 * * * * *"
[report]
schedule = "0 * * * * *"
"#;

/// One sample of the server's state.
#[derive(Debug, Clone)]
struct Sample {
    secs: f64,
    rss_mb: f64,
    fds: u64,
    db_mb: f64,
    events: u64,
    ingest_p99_ms: f64,
    read_p99_ms: f64,
    buckets: u64,
}

fn rss_bytes(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn open_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// The SQLite files (database, WAL, shared memory) in bytes.
fn db_bytes(data: &std::path::Path) -> u64 {
    ["flywheel.db", "flywheel.db-wal", "flywheel.db-shm"]
        .iter()
        .filter_map(|f| std::fs::metadata(data.join(f)).ok())
        .map(|m| m.len())
        .sum()
}

fn p99(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 * 0.99) as usize).min(v.len() - 1)] * 1e3
}

pub async fn soak(a: SoakArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.minutes > 0, "--minutes: must be at least 1");
    anyhow::ensure!(
        a.rate >= a.batch && a.batch > 0,
        "--rate must be at least --batch"
    );
    let server = start_server_with(Some(CONFIG))?;
    let pid = server.child.id();
    let data = server._dir.path().join("data");
    let url = server.url.clone();
    let total = Duration::from_secs(a.minutes * 60);
    // Event time runs from `span` ago to now over the run: hour buckets advance as they
    // would over `span` of real traffic.
    let span_secs = (a.minutes * a.hours_per_minute * 3600) as f64;
    let t0 = Instant::now();
    let wall0 = chrono::Utc::now().timestamp() as f64;
    let stamp = move |elapsed: f64| {
        let at = wall0 - span_secs + elapsed * (span_secs / total.as_secs_f64()) + elapsed;
        chrono::DateTime::from_timestamp(at as i64, 0)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    let template = Arc::new(Template::new(a.batch, "2000-01-01T00:00:00Z"));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(8)
        .build()?;
    let sent = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let ingest_lat = Arc::new(Mutex::new(Vec::<f64>::new()));
    let read_lat = Arc::new(Mutex::new(Vec::<f64>::new()));
    let failures = Arc::new(AtomicU64::new(0));
    eprintln!(
        "soak: {} min at {} events/s ({} per request), {} simulated h of event time, sampling every {} s; server {url} (pid {pid})",
        a.minutes, a.rate, a.batch, a.minutes * a.hours_per_minute, a.sample_secs
    );

    // Ingest: batches paced to the rate, four senders so a slow answer does not stall it.
    let per_sec = a.rate as f64 / a.batch as f64;
    let mut tasks = Vec::new();
    let senders = 4u64;
    for s in 0..senders {
        let (client, url, template) = (client.clone(), url.clone(), template.clone());
        let (sent, acked, lat, failures) = (
            sent.clone(),
            acked.clone(),
            ingest_lat.clone(),
            failures.clone(),
        );
        let batch = a.batch;
        tasks.push(tokio::spawn(async move {
            let period = Duration::from_secs_f64(senders as f64 / per_sec);
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut k = 0u64;
            while t0.elapsed() < total {
                tick.tick().await;
                let start = (k * senders + s) * batch;
                k += 1;
                let body =
                    template.batch_at(start, batch as usize, &stamp(t0.elapsed().as_secs_f64()));
                sent.fetch_add(batch, Ordering::Relaxed);
                let t = Instant::now();
                let r = client
                    .post(format!("{url}/v1/events"))
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .timeout(Duration::from_secs(60))
                    .send()
                    .await;
                match r {
                    Ok(resp) if resp.status().is_success() => {
                        acked.fetch_add(batch, Ordering::Relaxed);
                        if let Ok(mut l) = lat.lock() {
                            l.push(t.elapsed().as_secs_f64());
                        }
                    }
                    _ => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    // Reads: what a dashboard and an on-call engineer do, once a second.
    {
        let (client, url, lat) = (client.clone(), url.clone(), read_lat.clone());
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            while t0.elapsed() < total {
                tick.tick().await;
                for path in [
                    "/v1/models",
                    "/v1/drift/latest?model=bench",
                    "/v1/models/bench/features",
                    "/metrics",
                ] {
                    let t = Instant::now();
                    if let Ok(r) = client.get(format!("{url}{path}")).send().await {
                        let _ = r.bytes().await;
                        if let Ok(mut l) = lat.lock() {
                            l.push(t.elapsed().as_secs_f64());
                        }
                    }
                }
            }
        }));
    }

    // Sample until the end.
    let mut samples: Vec<Sample> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(a.sample_secs.max(1)));
    tick.tick().await;
    println!(
        "   t(s)   RSS MB   fds   DB MB   events acked   buckets   ingest p99 ms   read p99 ms"
    );
    while t0.elapsed() < total {
        tick.tick().await;
        let elapsed = t0.elapsed().as_secs_f64();
        let take = |m: &Arc<Mutex<Vec<f64>>>| {
            m.lock()
                .map(|mut v| std::mem::take(&mut *v))
                .unwrap_or_default()
        };
        let (mut il, mut rl) = (take(&ingest_lat), take(&read_lat));
        let s = Sample {
            secs: elapsed,
            rss_mb: rss_bytes(pid).unwrap_or(0) as f64 / 1e6,
            fds: open_fds(pid).unwrap_or(0),
            db_mb: db_bytes(&data) as f64 / 1e6,
            events: acked.load(Ordering::Relaxed),
            ingest_p99_ms: p99(&mut il),
            read_p99_ms: p99(&mut rl),
            buckets: ((span_secs * elapsed / total.as_secs_f64()) / 3600.0).ceil() as u64 + 1,
        };
        println!(
            "{:7.0} {:8.1} {:5} {:7.1} {:14} {:9} {:15.1} {:13.1}",
            s.secs, s.rss_mb, s.fds, s.db_mb, s.events, s.buckets, s.ingest_p99_ms, s.read_p99_ms
        );
        samples.push(s);
    }
    for t in tasks {
        let _ = t.await;
    }

    // Every acknowledged event is stored.
    let v: serde_json::Value = client
        .get(format!("{url}/v1/models"))
        .send()
        .await?
        .json()
        .await?;
    let stored = v["models"][0]["events"]["interaction"]
        .as_u64()
        .unwrap_or(0);
    let acked = acked.load(Ordering::Relaxed);
    let peak = peak_rss_bytes(pid).unwrap_or(0) as f64 / 1e6;
    let mut server = server;
    let _ = server.child.kill();
    let _ = server.child.wait();

    summarize(
        &samples,
        acked,
        stored,
        failures.load(Ordering::Relaxed),
        peak,
    );
    if let Some(out) = &a.out {
        write_outputs(out, &samples)?;
        println!("samples and plots written to {}", out.display());
    }
    anyhow::ensure!(
        stored == acked,
        "stored {stored} events, {acked} were acknowledged"
    );
    Ok(())
}

/// The verdicts: memory and descriptors level off (the last quarter's peak against the second
/// quarter's), the database grows with buckets (bytes per bucket in the second half against the
/// first), latency holds.
fn summarize(samples: &[Sample], acked: u64, stored: u64, failures: u64, peak_mb: f64) {
    let n = samples.len();
    if n < 8 {
        println!("too few samples for a verdict ({n}); run longer");
        return;
    }
    let quarter = |q: usize| &samples[q * n / 4..(q + 1) * n / 4];
    let max = |s: &[Sample], f: fn(&Sample) -> f64| s.iter().map(f).fold(f64::MIN, f64::max);
    let rss2 = max(quarter(1), |s| s.rss_mb);
    let rss4 = max(quarter(3), |s| s.rss_mb);
    let fd2 = max(quarter(1), |s| s.fds as f64);
    let fd4 = max(quarter(3), |s| s.fds as f64);
    let last = &samples[n - 1];
    let mid = &samples[n / 2];
    let per_bucket = |s: &Sample| s.db_mb / s.buckets.max(1) as f64;
    println!();
    println!("events acknowledged: {acked}, stored: {stored}, failed requests: {failures}");
    println!("RSS: peak {peak_mb:.0} MB; highest sample in the 2nd quarter {rss2:.0} MB, in the 4th {rss4:.0} MB ({:+.1} %)", (rss4 / rss2 - 1.0) * 100.0);
    println!("open descriptors: highest in the 2nd quarter {fd2:.0}, in the 4th {fd4:.0}");
    println!(
        "database: {:.1} MB for {} buckets at half time ({:.2} MB per bucket), {:.1} MB for {} at the end ({:.2} MB per bucket); {:.0} events per MB at the end",
        mid.db_mb,
        mid.buckets,
        per_bucket(mid),
        last.db_mb,
        last.buckets,
        per_bucket(last),
        last.events as f64 / last.db_mb.max(1e-9)
    );
    let worst = |f: fn(&Sample) -> f64| max(samples, f);
    println!(
        "ingest p99 per sample: median {:.0} ms, worst {:.0} ms; read p99 per sample: median {:.0} ms, worst {:.0} ms",
        median(samples.iter().map(|s| s.ingest_p99_ms).collect()),
        worst(|s| s.ingest_p99_ms),
        median(samples.iter().map(|s| s.read_p99_ms).collect()),
        worst(|s| s.read_p99_ms)
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn write_outputs(out: &std::path::Path, samples: &[Sample]) -> anyhow::Result<()> {
    use crate::report::charts::{lines, Series, BLUE, ORANGE};
    use std::fmt::Write;
    std::fs::create_dir_all(out)?;
    let mut csv = String::from("secs,rss_mb,fds,db_mb,events,buckets,ingest_p99_ms,read_p99_ms\n");
    for s in samples {
        let _ = writeln!(
            csv,
            "{:.0},{:.1},{},{:.2},{},{},{:.1},{:.1}",
            s.secs, s.rss_mb, s.fds, s.db_mb, s.events, s.buckets, s.ingest_p99_ms, s.read_p99_ms
        );
    }
    std::fs::write(out.join("samples.csv"), csv)?;
    let minutes = |x: &f64| format!("{:.0}", x / 60.0);
    let series = |name: &'static str, f: fn(&Sample) -> f64, color| Series {
        name,
        points: samples.iter().map(|s| (s.secs, f(s))).collect(),
        color,
    };
    for (file, title, y, list) in [
        (
            "soak-rss.svg",
            "Server memory (RSS)",
            "MB",
            vec![series("RSS", |s| s.rss_mb, BLUE)],
        ),
        (
            "soak-fds.svg",
            "Open file descriptors",
            "descriptors",
            vec![series("open fds", |s| s.fds as f64, BLUE)],
        ),
        (
            "soak-db.svg",
            "Database size against hour buckets",
            "MB",
            vec![
                series("database (MB)", |s| s.db_mb, BLUE),
                series("hour buckets so far", |s| s.buckets as f64, ORANGE),
            ],
        ),
        (
            "soak-latency.svg",
            "p99 latency per sample",
            "ms",
            vec![
                series("ingest (2,000 events)", |s| s.ingest_p99_ms, BLUE),
                series("reads", |s| s.read_p99_ms, ORANGE),
            ],
        ),
    ] {
        std::fs::write(
            out.join(file),
            lines(title, "minutes", y, &list, &[], &minutes),
        )?;
    }
    Ok(())
}
