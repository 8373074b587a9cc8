//! Building and running the application. `serve`, the demo and the integration tests all go
//! through [`App::build`] and [`App::run_until_stopped`], so they exercise one start-up path.
//!
//! Start-up: data directory → pseudonymisation key → store (migrations) → metrics → ingest writer
//! (journal recovery) → listener. Shutdown, once the `shutdown` future resolves: stop accepting
//! and finish in-flight requests → drain the ingest queue and checkpoint → close the store; all
//! within `server.shutdown_timeout_secs`.

use crate::clock::Clock;
use crate::config::Config;
use crate::events::pseudonym::{KeySource, Pseudonymizer};
use crate::http::{self, AppState};
use crate::ingest::{self, IngestHandle, IngestSettings};
use crate::jobs::{Registry, Runner, Scheduled, ScheduledJob};
use crate::metrics::Metrics;
use crate::store::Store;
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

pub struct App {
    listener: TcpListener,
    state: AppState,
    writer: tokio::task::JoinHandle<()>,
    /// Stops the scheduler and the alert delivery.
    stop: tokio::sync::watch::Sender<bool>,
    delivery: tokio::task::JoinHandle<()>,
    /// The data directory's lock, held while the service runs (one process per directory).
    _lock: std::fs::File,
}

/// The per-segment summaries `ingest.segment_keys` asks for, seeded with each model's most
/// frequent values of every key over the last week (so that a restart keeps the same values);
/// `None` when no key is configured.
async fn segment_plan(
    store: &dyn Store,
    i: &crate::config::RawIngest,
    now: i64,
) -> anyhow::Result<Option<Arc<crate::summary::delta::SegmentPlan>>> {
    use crate::summary::delta::{SegmentPlan, SeriesClass};
    if i.segment_keys.is_empty() {
        return Ok(None);
    }
    let plan = SegmentPlan::new(i.segment_keys.clone(), i.segment_values, i.segment_features);
    for model in crate::store::models_before(store, i64::MAX).await? {
        let rows = store
            .series()
            .summaries(
                &model,
                Some(SeriesClass::Segment),
                now - 7 * 86_400,
                now + 1,
            )
            .await?;
        for key in &i.segment_keys {
            let mut counts: std::collections::HashMap<&str, u64> = Default::default();
            for r in rows.iter().filter(|r| &r.name == key) {
                for (v, n) in &r.summary.categories.counts {
                    *counts.entry(v.as_str()).or_insert(0) += n;
                }
            }
            let mut top: Vec<(&str, u64)> = counts.into_iter().collect();
            top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let values: Vec<String> = top.iter().map(|(v, _)| (*v).to_owned()).collect();
            plan.seed(&model, key, &values);
        }
    }
    Ok(Some(Arc::new(plan)))
}

/// Build every scheduled job of `config`. `ingest` (when the service runs) is flushed before
/// each run so that a run sees every acknowledged event; `alerts` (when the service runs) hears
/// the findings of the drift and health jobs.
pub fn build_jobs(
    config: &Config,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    clock: Clock,
    ingest: Option<IngestHandle>,
    alerts: Option<Arc<crate::alerts::Engine>>,
) -> anyhow::Result<Registry> {
    let cache = Arc::new(crate::drift::run::BaselineCache::default());
    let mut list: Vec<Arc<dyn ScheduledJob>> = Vec::new();
    for m in &config.monitors {
        let mut job = Scheduled::new(crate::drift::run::DriftJob::new(
            m.clone(),
            store.clone(),
            metrics.clone(),
            cache.clone(),
            config.drift.metric_top_features,
        ));
        if let Some(a) = &alerts {
            job = job.after_run(a.clone());
        }
        list.push(Arc::new(job));
    }
    if let Some(q) = &config.quality {
        list.push(Arc::new(Scheduled::new(
            crate::quality::job::QualityJob::new(
                q.clone(),
                store.clone(),
                metrics.clone(),
                cache.clone(),
                config.ingest.bucket_secs,
            )
            .context("cannot register the quality metrics")?,
        )));
    }
    if config.health.enabled {
        let mut job = Scheduled::new(
            crate::flywheel::job::HealthJob::new(
                config.health.clone(),
                config.health_schedule.clone(),
                store.clone(),
                metrics.clone(),
            )
            .context("cannot register the health metrics")?,
        );
        if let Some(a) = &alerts {
            job = job.after_run(a.clone());
        }
        list.push(Arc::new(job));
    }
    if let Some(schedule) = &config.performance_schedule {
        list.push(Arc::new(Scheduled::new(
            crate::performance::job::PerformanceJob::new(
                config.performance.clone(),
                schedule.clone(),
                store.clone(),
                metrics.clone(),
            )
            .context("cannot register the performance metrics")?,
        )));
    }
    if let Some(schedule) = &config.report_schedule {
        list.push(Arc::new(Scheduled::new(crate::report::ReportJob {
            schedule: schedule.clone(),
            health: config.health.clone(),
            store: store.clone(),
            dir: config.data_dir.join("reports"),
        })));
    }
    if let Some(schedule) = &config.retention_schedule {
        list.push(Arc::new(Scheduled::new(
            crate::jobs::retention::RetentionJob {
                schedule: schedule.clone(),
                store: store.clone(),
                job_runs_days: config.retention.job_runs_days,
                alerts_days: config.retention.alerts_days,
                summaries_hourly_days: config.retention.summaries_hourly_days,
            },
        )));
    }
    for j in &list {
        let now = chrono::Utc::now();
        let interval = j.schedule().next_after(now).and_then(|a| {
            j.schedule()
                .next_after(a)
                .map(|b| (b - a).num_seconds() as f64)
        });
        metrics.declare_task(&j.name(), interval);
    }
    let before_run: Option<crate::jobs::BeforeRun> = ingest.map(|h| {
        let f: crate::jobs::BeforeRun = Arc::new(move || {
            let h = h.clone();
            Box::pin(async move { h.flush().await.map_err(anyhow::Error::new) })
        });
        f
    });
    let holder = format!(
        "{}-{}",
        std::process::id(),
        hex::encode(rand::random::<[u8; 6]>())
    );
    Ok(Registry {
        list,
        runner: Runner {
            store,
            metrics,
            clock,
            lease_ttl: std::time::Duration::from_secs(config.jobs.lease_ttl_secs),
            holder,
            before_run,
        },
    })
}

/// Lock `<data_dir>/flywheel.lock` (an OS file lock, released when the process ends however
/// it ends) so that a second process on the same directory stops at start instead of sharing
/// the journal, the reports and the key file with the first.
fn lock_data_dir(dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    let path = dir.join("flywheel.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            anyhow::bail!(
                "the data directory {} is in use by another flywheel process ({}); run one process per data directory",
                dir.display(),
                match holder.trim() {
                    "" => "pid unknown".to_owned(),
                    pid => format!("pid {pid}"),
                }
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(file)
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<App> {
        Self::build_with(config, crate::clock::Clock::system(), None).await
    }

    /// Build with an injected clock and, optionally, a store (tests wrap the real store to
    /// inject faults; `None` opens the configured backend).
    pub async fn build_with(
        config: Config,
        clock: Clock,
        store: Option<Arc<dyn Store>>,
    ) -> anyhow::Result<App> {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                config.data_dir.display()
            )
        })?;
        let data_dir = config
            .data_dir
            .canonicalize()
            .unwrap_or_else(|_| config.data_dir.clone());
        let lock = lock_data_dir(&data_dir)?;
        let (pseudonymizer, source) =
            Pseudonymizer::load_or_create(config.hmac_key.as_ref().map(|k| k.expose()), &data_dir)
                .context("cannot load or create the pseudonymisation key")?;
        match source {
            KeySource::FileGenerated => tracing::warn!(
                path = %data_dir.join("hmac.key").display(),
                "no privacy.hmac_key configured: generated a random pseudonymisation key; back it up, or user pseudonyms change if it is lost"
            ),
            KeySource::FileExisting => tracing::info!(
                path = %data_dir.join("hmac.key").display(),
                "using the pseudonymisation key file"
            ),
            KeySource::Configured => tracing::info!("using the configured pseudonymisation key"),
        }
        let store: Arc<dyn Store> = match store {
            Some(s) => s,
            None => {
                let location = config.store_location();
                let s = crate::store::open(&location)
                    .await
                    .with_context(|| format!("cannot open the store {}", location.describe()))?;
                tracing::info!(backend = s.backend(), database = %location.describe(), "store ready");
                s
            }
        };
        store
            .check_key(&pseudonymizer.fingerprint())
            .await
            .context("cannot check the pseudonymisation key against the store")?;
        if !store.journal().shared() {
            // This process holds the data directory's lock, so it is the store's only user: a
            // lease still held was left by a process that died mid-run (kill -9, power loss),
            // and would otherwise block that job until it expired (jobs.lease_ttl_secs).
            let n = store
                .jobs()
                .clear_leases()
                .await
                .context("cannot clear the job leases of a previous process")?;
            if n > 0 {
                tracing::warn!(
                    leases = n,
                    "released job leases left by a previous process that stopped mid-run"
                );
            }
        }
        let metrics = Arc::new(Metrics::new().context("cannot register metrics")?);
        let i = &config.ingest;
        let segments = segment_plan(store.as_ref(), i, clock.now().secs())
            .await
            .context("cannot read the segment values of the last week")?;
        let settings = IngestSettings {
            bucket_secs: i.bucket_secs,
            sketch_k: i.sketch_k,
            joint_features: i.joint_features,
            segments,
            category_cap: i.max_categories_per_feature,
            dedup_horizon_secs: i.dedup_horizon_secs as i64,
            checkpoint_interval: config.checkpoint_interval,
            queue_depth: i.queue_depth,
            activity_ttl_days: i64::from(config.activity_ttl_days),
            writer_ttl_secs: config.storage.writer_ttl_secs as i64,
            writer_name: format!(
                "{}:{}",
                hostname().unwrap_or_else(|| "unknown-host".into()),
                std::process::id()
            ),
            // Three connection waits: an append, a checkpoint and a probe may stand in line.
            reply_timeout: std::time::Duration::from_secs(
                3 * config.storage.connect_timeout_secs.max(1),
            ),
            writers: config.storage.writers as usize,
        };
        let (ingest, writer) = ingest::start(store.clone(), metrics.clone(), settings)
            .await
            .context("cannot start ingest")?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let external_url = match &config.external_url {
            Some(u) => u.clone(),
            None => format!("http://{}", listener.local_addr().unwrap_or(config.listen)),
        };
        let limits = Arc::new(config.event_limits());
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let a = &config.alerts;
        let (notify, delivery) = crate::alerts::deliver::start(
            a.clone(),
            external_url.clone(),
            store.clone(),
            metrics.clone(),
            clock.clone(),
            stop_rx,
        );
        if !a.alertmanager_url.is_empty() {
            tracing::info!(url = %a.alertmanager_url, "alerts are pushed to Alertmanager");
        }
        if !a.webhook_url.is_empty() {
            tracing::info!(url = %a.webhook_url, "alerts are sent to the webhook");
        }
        let engine = Arc::new(crate::alerts::Engine::new(
            a.clone(),
            store.clone(),
            Some(notify),
            clock.clone(),
            external_url.clone(),
        ));
        let jobs = Arc::new(build_jobs(
            &config,
            store.clone(),
            metrics.clone(),
            clock.clone(),
            Some(ingest.clone()),
            Some(engine),
        )?);
        let state = AppState {
            jobs,
            config: Arc::new(Config {
                data_dir,
                external_url: Some(external_url),
                ..config
            }),
            store,
            ingest,
            metrics,
            pseudonymizer,
            limits,
            clock,
        };
        Ok(App {
            listener,
            state,
            writer,
            stop,
            delivery,
            _lock: lock,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| self.state.config.listen)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve until `shutdown` resolves, then shut down in order within the configured bound.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = self.local_addr();
        tracing::info!(
            address = %addr,
            data_dir = %self.state.config.data_dir.display(),
            "flywheel listening"
        );
        let timeout = self.state.config.shutdown_timeout;
        let router = http::router(self.state.clone());
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let server = http::serve::serve(
            self.listener,
            router,
            self.state.config.http_limits,
            async move {
                shutdown.await;
                let _ = stopping_tx.send(());
            },
        );
        let ingest = self.state.ingest.clone();
        let writer = self.writer;
        let stop_jobs = self.stop;
        let jobs_stop_rx = stop_jobs.subscribe();
        let delivery = self.delivery;
        let job_tasks = self.state.jobs.runner.clone().spawn(
            self.state.jobs.list.clone(),
            std::time::Duration::from_millis(self.state.config.jobs.poll_interval_ms),
            jobs_stop_rx,
        );
        let mut served = tokio::spawn(server);
        // Wait for the signal (or a server failure), then give HTTP and the writer `timeout`
        // to finish together.
        tokio::select! {
            _ = stopping_rx => {}
            r = &mut served => {
                let _ = stop_jobs.send(true);
                let _ = ingest.stop().await;
                return match r {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(anyhow::Error::new(e).context("http server failed")),
                    Err(e) => Err(anyhow::Error::new(e).context("http server task failed")),
                };
            }
        }
        tracing::info!(timeout_secs = timeout.as_secs(), "shutting down");
        let _ = stop_jobs.send(true);
        let orderly = async {
            let http_result = served.await;
            // A job run in progress finishes (its lease and run record stay consistent).
            for t in job_tasks {
                let _ = t.await;
            }
            let _ = delivery.await;
            let stop = ingest.stop().await;
            let _ = writer.await;
            (http_result, stop)
        };
        match tokio::time::timeout(timeout, orderly).await {
            Ok((http_result, stop)) => {
                match http_result {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(anyhow::Error::new(e).context("http server failed")),
                    Err(e) => return Err(anyhow::Error::new(e).context("http server task failed")),
                }
                stop.context("final checkpoint failed (the journal still holds the events)")?;
                tracing::info!("stopped cleanly");
                Ok(())
            }
            Err(_) => anyhow::bail!(
                "shutdown did not finish within {}s; acknowledged events stay in the journal and are replayed on the next start",
                timeout.as_secs()
            ),
        }
    }
}

/// This machine's name, for naming the ingest writer and job-lease holders.
fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}
