//! `flywheel bench ...`: reproducible measurements (figures go in BENCHMARKS.md).
//!
//! * `bench ingest`: starts `flywheel serve` as a child process on a fresh data directory and a
//!   loopback port, sends NDJSON batches of interaction events (20 numeric and 5 categorical
//!   features) from concurrent connections, and reports sustained events/s, request latency
//!   percentiles and the server's peak RSS (VmHWM).
//! * `bench dataset`: writes the seeded 25-column reference/current pair (see `synth`) as Parquet
//!   and CSV, for `flywheel compare` timings.
//! * `bench detection`: runs the default drift decision on that pair at the given sizes and
//!   prints what was found against the nine drifted columns.

use crate::dataset::{self, Table};
use crate::drift::{self, Options};
use crate::synth;
use clap::{Args, Subcommand};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Load-test ingest over loopback HTTP against a freshly started server.
    Ingest(IngestArgs),
    /// Write the seeded reference/current datasets (Parquet and CSV).
    Dataset(DatasetArgs),
    /// Check drift detection quality on the seeded datasets.
    Detection(DetectionArgs),
    /// Time drift runs over stored summaries (models × features).
    Drift(DriftArgs),
    /// Run a server for minutes under steady ingest, accelerated jobs and parallel reads,
    /// sampling its memory, descriptors, database size and latency (not in CI).
    Soak(SoakArgs),
}

#[derive(Debug, Args)]
pub struct SoakArgs {
    /// How long to run.
    #[arg(long, default_value_t = 30)]
    pub minutes: u64,
    /// Events per second to send (about half of what `bench ingest` measures on the machine).
    #[arg(long, default_value_t = 100_000)]
    pub rate: u64,
    /// Events per request.
    #[arg(long, default_value_t = 2_000)]
    pub batch: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 5)]
    pub sample_secs: u64,
    /// Simulated hours of event time per real minute: events are stamped from this many
    /// simulated hours ago up to now, so hourly buckets (and the database) grow as they would
    /// over a longer run.
    #[arg(long, default_value_t = 1)]
    pub hours_per_minute: u64,
    /// Write samples.csv and SVG plots (RSS, descriptors, database size, latency) here.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DriftArgs {
    #[arg(long, default_value_t = 10)]
    pub models: usize,
    #[arg(long, default_value_t = 100)]
    pub features: usize,
    /// Values per feature and hourly bucket.
    #[arg(long, default_value_t = 2_000)]
    pub per_bucket: usize,
    /// Timed runs per configuration.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Store the summaries in this (empty) PostgreSQL database instead of a temporary SQLite
    /// file.
    #[arg(long)]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Events to send in all.
    #[arg(long, default_value_t = 2_000_000)]
    pub events: u64,
    /// Events per request.
    #[arg(long, default_value_t = 5_000)]
    pub batch: u64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Send to this running server instead of starting one (e.g. http://127.0.0.1:8080).
    /// Repeat for several replicas: connection i sends to the (i mod n)-th.
    #[arg(long)]
    pub url: Vec<String>,
    /// Share of the events sent as `outcome` events (ground truth for an earlier prediction)
    /// instead of interactions, to measure what the outcome summaries cost.
    #[arg(long, default_value_t = 0.0)]
    pub outcome_share: f64,
    /// `ingest.joint_features` of the server started (the co-moments for multivariate drift;
    /// 0 turns them off). Unset: the default (8). Ignored with --url.
    #[arg(long)]
    pub joint_features: Option<usize>,
}

#[derive(Debug, Args)]
pub struct DatasetArgs {
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output directory (reference.parquet, current.parquet, and .csv when --csv).
    #[arg(long)]
    pub out: PathBuf,
    /// Also write CSV files.
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, Args)]
pub struct DetectionArgs {
    /// Rows per side (comma-separated sizes).
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    pub rows: Vec<usize>,
    /// Seed of the 25-column table.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Seeds (1..=N) of the family tables at each size.
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// Trials of the null study at 10k rows (the power curves use a tenth); 0 skips both.
    #[arg(long, default_value_t = 200)]
    pub trials: usize,
}

pub async fn run(cmd: BenchCommand) -> i32 {
    match cmd {
        BenchCommand::Drift(a) => match drift(a).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e:#}");
                2
            }
        },
        BenchCommand::Soak(a) => match super::soak::soak(a).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e:#}");
                2
            }
        },
        BenchCommand::Ingest(a) => match ingest(a).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error: {e:#}");
                2
            }
        },
        BenchCommand::Dataset(a) => {
            match tokio::task::spawn_blocking(move || write_datasets(a)).await {
                Ok(Ok(())) => 0,
                Ok(Err(e)) => {
                    eprintln!("error: {e:#}");
                    2
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    2
                }
            }
        }
        BenchCommand::Detection(a) => tokio::task::spawn_blocking(move || detection(a))
            .await
            .unwrap_or(2),
    }
}

fn write_datasets(a: DatasetArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&a.out)?;
    for (name, current, seed) in [
        ("reference", false, a.seed),
        ("current", true, a.seed + 1000),
    ] {
        let t0 = Instant::now();
        let table: Table = synth::generate(a.rows, seed, current).into();
        let p = a.out.join(format!("{name}.parquet"));
        dataset::write_parquet(&table, &p)?;
        if a.csv {
            write_csv(&table, &a.out.join(format!("{name}.csv")))?;
        }
        eprintln!(
            "wrote {} ({} rows) in {:.1}s",
            p.display(),
            a.rows,
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn write_csv(t: &Table, path: &std::path::Path) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_path(path)?;
    w.write_record(&t.names)?;
    for i in 0..t.rows() {
        let row: Vec<String> = t
            .columns
            .iter()
            .map(|c| match c {
                dataset::RawColumn::Numbers(v) => {
                    if v[i].is_finite() {
                        v[i].to_string()
                    } else {
                        String::new()
                    }
                }
                dataset::RawColumn::Labels(v) => v.get(i).unwrap_or_default().to_owned(),
            })
            .collect();
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
}

fn detection(a: DetectionArgs) -> i32 {
    use drift::bench::{run_single, run_table, tally, ColumnOutcome};
    let families = drift::bench::families();
    let mut all_ok = true;
    // 1. The project's 25-column table (9 drifted columns).
    println!("## The seeded 25-column table (9 drifted)\n");
    for &rows in &a.rows {
        let t0 = Instant::now();
        let r = synth::generate(rows, a.seed, false);
        let c = synth::generate(rows, a.seed + 1000, true);
        let inputs = match drift::columns::inputs(r.into(), c.into(), &Default::default()) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        };
        let rep = drift::compare(&inputs, &Options::default());
        let found: Vec<&str> = rep
            .columns
            .iter()
            .filter(|c| c.drifted)
            .map(|c| c.column.as_str())
            .collect();
        let missed: Vec<&str> = synth::DRIFTED
            .iter()
            .copied()
            .filter(|d| !found.contains(d))
            .collect();
        let false_pos: Vec<&str> = found
            .iter()
            .copied()
            .filter(|f| !synth::DRIFTED.contains(f))
            .collect();
        all_ok &= missed.is_empty() && false_pos.is_empty();
        println!(
            "- {rows} rows a side: found {}/9, missed {:?}, false positives {:?} ({:.1} s)",
            9 - missed.len(),
            missed,
            false_pos,
            t0.elapsed().as_secs_f64()
        );
    }
    // 2. The families, drifted and undrifted twins in one table, several seeds.
    println!(
        "\n## {} column families, each drifted and an undrifted twin ({} columns a table)\n",
        families.len(),
        2 * families.len()
    );
    println!("| rows a side | seed | default: missed | default: false alarms | scipy p<0.05: missed | scipy p<0.05: false alarms | time |");
    println!("|---|---|---|---|---|---|---|");
    for &rows in &a.rows {
        for seed in 1..=a.seeds {
            let t0 = Instant::now();
            let out = run_table(rows, seed, 1.0, true);
            let (d, s) = (tally(&out, true), tally(&out, false));
            all_ok &= d.missed.is_empty() && d.false_alarms.is_empty();
            let list = |v: &[&str]| {
                if v.is_empty() {
                    "0".to_owned()
                } else {
                    format!("{} ({})", v.len(), v.join(", "))
                }
            };
            println!(
                "| {rows} | {seed} | {} | {} | {} | {} | {:.1} s |",
                list(&d.missed),
                list(&d.false_alarms),
                list(&s.missed),
                list(&s.false_alarms),
                t0.elapsed().as_secs_f64()
            );
        }
    }
    if a.trials == 0 {
        return if all_ok { 0 } else { 1 };
    }
    // 3. Null study at 10k: every family undrifted, decided together, and each family alone.
    let null_rows = 10_000;
    let t0 = Instant::now();
    let mut together = vec![0usize; families.len()];
    let mut alone = vec![(0usize, 0usize); families.len()];
    for trial in 0..a.trials {
        let seed = 10_000 + trial as u64;
        for (i, o) in run_table(null_rows, seed, 0.0, false).iter().enumerate() {
            together[i] += usize::from(o.default_flags);
        }
        for (i, f) in families.iter().enumerate() {
            let o = run_single(f, null_rows, seed, 0.0);
            alone[i].0 += usize::from(o.default_flags);
            alone[i].1 += usize::from(o.scipy_flags);
        }
    }
    let total_together: usize = together.iter().sum();
    let total_alone: usize = alone.iter().map(|x| x.0).sum();
    let total_scipy: usize = alone.iter().map(|x| x.1).sum();
    let cols = (a.trials * families.len()) as f64;
    println!(
        "\n## Null study: the same distribution on both sides, {null_rows} rows a side, {} trials per family ({:.0} s)\n",
        a.trials,
        t0.elapsed().as_secs_f64()
    );
    println!(
        "Column-level false-positive rate: **{:.3} %** with every family in one table (BH shared), {:.2} % with each column decided alone (no correction to share), {:.2} % for the scipy loop at p < 0.05.\n",
        100.0 * total_together as f64 / cols,
        100.0 * total_alone as f64 / cols,
        100.0 * total_scipy as f64 / cols
    );
    println!("| family | change | in one table | alone | scipy p<0.05 alone |");
    println!("|---|---|---|---|---|");
    for (i, f) in families.iter().enumerate() {
        let pct = |n: usize| format!("{:.1} %", 100.0 * n as f64 / a.trials as f64);
        println!(
            "| {} | {} | {} | {} | {} |",
            f.name,
            f.change.as_str(),
            pct(together[i]),
            pct(alone[i].0),
            pct(alone[i].1)
        );
    }
    all_ok &= (total_alone as f64 / cols) <= 0.01;
    // 4. Power curves at 10k: share of trials in which each drifted family was found.
    let multipliers = [0.25, 0.5, 0.75, 1.0, 1.5];
    let power_trials = (a.trials / 10).max(5);
    let t0 = Instant::now();
    let mut found = vec![vec![(0usize, 0usize); multipliers.len()]; families.len()];
    let mut null_flags = vec![(0usize, 0usize); multipliers.len()];
    for (mi, &m) in multipliers.iter().enumerate() {
        for trial in 0..power_trials {
            let out: Vec<ColumnOutcome> = run_table(null_rows, 20_000 + trial as u64, m, true);
            for o in &out {
                let i = families
                    .iter()
                    .position(|f| f.name == o.family)
                    .unwrap_or(0);
                if o.drifted {
                    found[i][mi].0 += usize::from(o.default_flags);
                    found[i][mi].1 += usize::from(o.scipy_flags);
                } else {
                    null_flags[mi].0 += usize::from(o.default_flags);
                    null_flags[mi].1 += usize::from(o.scipy_flags);
                }
            }
        }
    }
    println!(
        "\n## Power at {null_rows} rows a side: share of {power_trials} trials in which the drift was found, default / scipy loop, by drift size (1 = the realistic drift) ({:.0} s)\n",
        t0.elapsed().as_secs_f64()
    );
    let head: Vec<String> = multipliers.iter().map(|m| format!("×{m}")).collect();
    println!("| family | change | {} |", head.join(" | "));
    println!("|---|---|{}", "---|".repeat(multipliers.len()));
    for (i, f) in families.iter().enumerate() {
        let cells: Vec<String> = found[i]
            .iter()
            .map(|(d, s)| {
                format!(
                    "{:.0} / {:.0}",
                    100.0 * *d as f64 / power_trials as f64,
                    100.0 * *s as f64 / power_trials as f64
                )
            })
            .collect();
        println!(
            "| {} | {} | {} |",
            f.name,
            f.change.as_str(),
            cells.join(" | ")
        );
    }
    let cells: Vec<String> = null_flags
        .iter()
        .map(|(d, s)| format!("{} / {}", d, s))
        .collect();
    println!(
        "| *undrifted twins flagged (count)* | | {} |",
        cells.join(" | ")
    );
    if all_ok {
        0
    } else {
        1
    }
}

/// A batch template: `n` interaction events whose ids are fixed-width placeholders, and the
/// byte offsets of those placeholders. Each batch copies the template and writes its ids in
/// place, so the generator costs little CPU next to the server it measures.
pub(super) struct Template {
    body: Vec<u8>,
    id_offsets: Vec<usize>,
    /// Where each event's `occurred_at` value starts, and its length.
    ts_offsets: Vec<usize>,
    ts_len: usize,
}

const ID_WIDTH: usize = 12;

impl Template {
    pub(super) fn new(n: u64, now: &str) -> Self {
        Self::with_outcomes(n, now, 0.0)
    }

    /// A template whose events are outcomes in the share `outcome_share` (spread evenly).
    pub(super) fn with_outcomes(n: u64, now: &str, outcome_share: f64) -> Self {
        use std::fmt::Write;
        let mut s = String::with_capacity((n as usize) * 700);
        let mut id_offsets = Vec::with_capacity(n as usize);
        let mut ts_offsets = Vec::with_capacity(n as usize);
        for i in 0..n {
            let x = i.wrapping_mul(2654435761) % 1000;
            s.push_str(r#"{"event_id":"b-"#);
            id_offsets.push(s.len());
            s.push_str(&"0".repeat(ID_WIDTH));
            let outcome =
                ((i + 1) as f64 * outcome_share).floor() > (i as f64 * outcome_share).floor();
            if outcome {
                s.push_str(r#"","event_type":"outcome","occurred_at":""#);
                ts_offsets.push(s.len());
                let _ = writeln!(
                    s,
                    r#"{now}","model":{{"id":"bench","version":"v1"}},"interaction_id":"i{i}","predicted_at":"{now}","prediction":{{"score":0.{x}}},"actual":{}}}"#,
                    x % 3 == 0
                );
                continue;
            }
            s.push_str(r#"","event_type":"interaction","occurred_at":""#);
            ts_offsets.push(s.len());
            let _ = write!(
                s,
                r#"{now}","model":{{"id":"bench","version":"v1"}},"user_id":"u{}","features":{{"#,
                i % 50_000
            );
            for f in 0..20 {
                let _ = write!(
                    s,
                    r#""n{f}":{}.{},"#,
                    (x + f * 7) % 100,
                    (x * 13 + f) % 1000
                );
            }
            for f in 0..5 {
                let _ = write!(s, r#""c{f}":"v{}""#, (x + f) % (3 + f * 10));
                s.push(if f < 4 { ',' } else { '}' });
            }
            let _ = writeln!(
                s,
                r#","prediction":{{"score":0.{},"label":"l{}","confidence":0.{}}}}}"#,
                x,
                x % 3,
                x / 2
            );
        }
        Self {
            body: s.into_bytes(),
            id_offsets,
            ts_offsets,
            ts_len: now.len(),
        }
    }

    /// Like [`batch`](Self::batch), every event stamped `at` (as long as the template's time).
    pub(super) fn batch_at(&self, start: u64, n: usize, at: &str) -> Vec<u8> {
        let mut out = self.batch(start, n);
        if at.len() == self.ts_len {
            for &off in self.ts_offsets.iter().take(n) {
                out[off..off + self.ts_len].copy_from_slice(at.as_bytes());
            }
        }
        out
    }

    /// The batch whose event ids are `start..start + n` (n ≤ the template's size).
    pub(super) fn batch(&self, start: u64, n: usize) -> Vec<u8> {
        let end = if n < self.id_offsets.len() {
            // cut after the n-th line
            self.id_offsets[n] - r#"{"event_id":"b-"#.len()
        } else {
            self.body.len()
        };
        let mut out = self.body[..end].to_vec();
        for (k, &off) in self.id_offsets.iter().take(n).enumerate() {
            let id = format!("{:0w$}", start + k as u64, w = ID_WIDTH);
            out[off..off + ID_WIDTH].copy_from_slice(id.as_bytes());
        }
        out
    }
}

pub(super) struct Server {
    pub(super) child: std::process::Child,
    pub(super) url: String,
    pub(super) _dir: tempfile::TempDir,
}

pub(super) fn start_server_with(config: Option<&str>) -> anyhow::Result<Server> {
    let dir = tempfile::tempdir()?;
    let exe = std::env::current_exe()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["serve", "--listen", "127.0.0.1:0"]);
    if let Some(text) = config {
        let path = dir.path().join("flywheel.toml");
        std::fs::write(&path, text)?;
        cmd.arg("--config").arg(path);
    }
    let mut child = cmd
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("FLYWHEEL_LOG", "warn,flywheel::app=info")
        .env("FLYWHEEL_HMAC_KEY", "bench-key-0123456789abcdef")
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stderr from the server"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(a) = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("address="))
            {
                let _ = tx.send(a.to_owned());
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(30))?;
    Ok(Server {
        child,
        url: format!("http://{addr}"),
        _dir: dir,
    })
}

pub(super) fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

async fn ingest(a: IngestArgs) -> anyhow::Result<()> {
    let config = a
        .joint_features
        .map(|n| format!("[ingest]\njoint_features = {n}\n"));
    let server = match a.url.is_empty() {
        false => None,
        true => Some(start_server_with(config.as_deref())?),
    };
    let urls: Vec<String> = match &server {
        Some(s) => vec![s.url.clone()],
        None => a.url.clone(),
    };
    let url = urls.join(", ");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .build()?;
    let now = chrono::Utc::now().to_rfc3339();
    if !(0.0..=1.0).contains(&a.outcome_share) {
        anyhow::bail!("--outcome-share: {} is outside [0, 1]", a.outcome_share);
    }
    let template = std::sync::Arc::new(Template::with_outcomes(a.batch, &now, a.outcome_share));
    let batches = a.events.div_ceil(a.batch);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    eprintln!(
        "sending {} events ({:.0} % outcomes, joint features {}) in batches of {} over {} connections to {url}",
        a.events,
        a.outcome_share * 100.0,
        a.joint_features
            .map_or("default".to_owned(), |n| n.to_string()),
        a.batch,
        a.concurrency
    );
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..a.concurrency {
        let (client, next, url, template) = (
            client.clone(),
            next.clone(),
            urls[i % urls.len()].clone(),
            template.clone(),
        );
        let (batch, events) = (a.batch, a.events);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut retries = 0u64;
            loop {
                let b = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if b >= batches {
                    break;
                }
                let start = b * batch;
                let n = batch.min(events - start);
                let body = template.batch(start, n as usize);
                loop {
                    let t = Instant::now();
                    let r = client
                        .post(format!("{url}/v1/events"))
                        .header("content-type", "application/x-ndjson")
                        .body(body.clone())
                        .send()
                        .await;
                    match r {
                        Ok(resp) if resp.status().as_u16() == 503 => {
                            retries += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Ok(resp) if resp.status().is_success() => {
                            lat.push(t.elapsed().as_secs_f64());
                            break;
                        }
                        Ok(resp) => {
                            return Err(anyhow::anyhow!("server answered {}", resp.status()));
                        }
                        Err(e) => return Err(anyhow::anyhow!("request failed: {e}")),
                    }
                }
            }
            Ok::<_, anyhow::Error>((lat, retries))
        }));
    }
    let mut lat = Vec::new();
    let mut retries = 0;
    for t in tasks {
        let (l, r) = t.await??;
        lat.extend(l);
        retries += r;
    }
    let secs = t0.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    println!("events sent:        {}", a.events);
    println!("wall time:          {secs:.2} s");
    println!("sustained rate:     {:.0} events/s", a.events as f64 / secs);
    println!(
        "request latency:    p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} requests, {} retried after 503)",
        pct(0.5) * 1e3,
        pct(0.99) * 1e3,
        lat.last().copied().unwrap_or(0.0) * 1e3,
        lat.len(),
        retries
    );
    if let Some(mut s) = server {
        if let Some(rss) = peak_rss_bytes(s.child.id()) {
            println!("server peak RSS:    {:.0} MB", rss as f64 / 1e6);
        }
        let r = client.get(format!("{}/v1/models", s.url)).send().await?;
        let v: serde_json::Value = r.json().await?;
        // Every event type the model stored (interactions, and outcomes when some were sent).
        let n: u64 = v["models"][0]["events"].as_object().map_or(0, |m| {
            m.values().filter_map(serde_json::Value::as_u64).sum()
        });
        println!("events stored:      {n}");
        if let Some(rss) = peak_rss_bytes(s.child.id()) {
            println!(
                "server peak RSS after the final checkpoint: {:.0} MB",
                rss as f64 / 1e6
            );
        }
        let _ = s.child.kill();
        let _ = s.child.wait();
        if n != a.events {
            anyhow::bail!("stored {n} events, sent {}", a.events);
        }
    }
    Ok(())
}

/// Drift runs over `models × features` stored summaries: the current window is one hourly
/// bucket; the baseline is an uploaded dataset (one summary per feature) or `rolling:1d`
/// (24 hourly buckets, merged on the first run and cached after).
async fn drift(a: DriftArgs) -> anyhow::Result<()> {
    use crate::drift::monitor::RawMonitor;
    use crate::drift::run::{BaselineCache, DriftJob};
    use crate::jobs::Job;
    use crate::store::{BaselineInfo, NamedSummary, Store};
    use crate::summary::delta::{Delta, SeriesClass};
    use crate::summary::FeatureSummary;
    use rand::{rngs::StdRng, SeedableRng};
    use rand_distr::{Distribution, Normal};
    let dir = tempfile::tempdir()?;
    let location = match &a.database_url {
        Some(url) => crate::store::Location::Postgres {
            url: crate::secret::Secret::from(url.as_str()),
            options: crate::store::postgres::PgOptions::default(),
        },
        None => crate::store::Location::Sqlite(dir.path().to_path_buf()),
    };
    eprintln!("store: {}", location.describe());
    let store: Arc<dyn Store> = crate::store::open(&location).await?;
    let writer = store.journal().register_writer("bench").await?;
    let day0 = 1_793_577_600i64; // 2026-11-02T00:00:00Z
    let hour = 3600i64;
    let mut rng = StdRng::seed_from_u64(1);
    let norm = Normal::new(0.0, 1.0)?;
    let setup = Instant::now();
    let mut summary = |shift: f64, n: usize| {
        let mut s = FeatureSummary::default();
        for _ in 0..n {
            s.add_number(norm.sample(&mut rng) + shift);
        }
        s
    };
    for m in 0..a.models {
        let model = format!("model-{m}");
        // 24 hourly buckets of day 1 (the rolling:1d baseline) and the first hour of day 2.
        for b in 0..25i64 {
            let bucket = day0 + 86_400 - 24 * hour + b * hour;
            let mut d = Delta::new(hour, crate::summary::kll::DEFAULT_K, 256);
            let vd = d
                .models
                .entry(model.clone())
                .or_default()
                .entry("v1".into())
                .or_default();
            vd.counts.insert(
                (crate::events::EventType::Interaction, bucket),
                crate::summary::delta::CountRec {
                    n: a.per_bucket as u64,
                    first_us: bucket * 1_000_000,
                    last_us: bucket * 1_000_000,
                },
            );
            let g = vd.groups.entry((SeriesClass::Input, bucket)).or_default();
            for f in 0..a.features {
                let shift = if b == 24 && f % 10 == 0 { 0.5 } else { 0.0 };
                g.insert(format!("f{f}"), summary(shift, a.per_bucket));
            }
            store.journal().checkpoint(writer, &d, None, 0).await?;
        }
        let sums: Vec<NamedSummary> = (0..a.features)
            .map(|f| NamedSummary {
                class: SeriesClass::Input,
                name: format!("f{f}"),
                summary: summary(0.0, a.per_bucket * 5),
            })
            .collect();
        store
            .series()
            .put_baseline(
                &BaselineInfo {
                    name: format!("ref-{m}"),
                    model: model.clone(),
                    created_at_us: 0,
                    rows: (a.per_bucket * 5) as u64,
                    source: "bench".into(),
                    features: a.features as u64,
                },
                &sums,
            )
            .await?;
    }
    eprintln!(
        "stored {} models × {} features × 25 hourly buckets in {:.1} s",
        a.models,
        a.features,
        setup.elapsed().as_secs_f64()
    );
    let metrics = Arc::new(crate::metrics::Metrics::new()?);
    let fire = day0 + 86_400 + hour + 300;
    let window = (day0 + 86_400, day0 + 86_400 + hour);
    for (label, baseline) in [
        ("uploaded dataset", "dataset"),
        ("rolling:1d", "rolling:1d"),
    ] {
        // One monitor per model for the dataset case (each model has its own reference).
        let monitors: Vec<RawMonitor> = if baseline == "dataset" {
            (0..a.models)
                .map(|m| RawMonitor {
                    name: format!("m{m}"),
                    model: format!("model-{m}"),
                    baseline: format!("dataset:ref-{m}"),
                    ..Default::default()
                })
                .collect()
        } else {
            vec![RawMonitor {
                baseline: baseline.into(),
                ..Default::default()
            }]
        };
        let cache = Arc::new(BaselineCache::default());
        let jobs: Vec<DriftJob> = monitors
            .iter()
            .map(|r| {
                let mut errors = Vec::new();
                let m = r
                    .validate("bench", Some(hour), &mut errors)
                    .ok_or_else(|| anyhow::anyhow!("{errors:?}"))?;
                Ok(DriftJob::new(
                    m,
                    store.clone(),
                    metrics.clone(),
                    cache.clone(),
                    20,
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        let mut times = Vec::new();
        let mut drifted = 0u64;
        for _ in 0..a.runs {
            let t = Instant::now();
            drifted = 0;
            for j in &jobs {
                let out = j.run(fire, window).await?;
                for r in out.results.iter().filter(|r| r.subject == "_dataset") {
                    drifted += r.data["drifted"].as_u64().unwrap_or(0);
                }
            }
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        println!(
            "drift run, {} models × {} features, baseline {label}: first {:.0} ms, then median {:.0} ms ({} runs); {} features drifted (expected {})",
            a.models,
            a.features,
            times[0],
            median(&mut times[1..].to_vec()),
            a.runs,
            drifted,
            a.models * a.features.div_ceil(10)
        );
    }
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
