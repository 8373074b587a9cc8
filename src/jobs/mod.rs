//! Scheduled jobs: the pure schedule computation ([`schedule`]) and the runner that fires jobs
//! on time, records every run, and keeps runs of one job from overlapping.
//!
//! * A job says how it is scheduled and which window a fire covers; [`Runner::execute`] runs
//!   it for one fire and records the run with its window, detail (baseline, config hash, sample
//!   sizes), duration and outcome, replacing an earlier run of the same window (idempotent).
//! * [`Runner::run_due`] runs every fire due since the last recorded one, oldest first, at most
//!   the job's `max_catch_up` of them (so downtime is caught up, boundedly).
//! * A lease row in the store makes one runner (task, process or replica) run a job at a time;
//!   a crashed runner's lease expires after `jobs.lease_ttl_secs`.
//! * Time comes from the injected [`Clock`]: tests play days of schedule in seconds.

pub mod schedule;

use crate::http::Clock;
use crate::metrics::Metrics;
use crate::store::{JobRun, ResultRow, Store};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use schedule::CronSchedule;
use std::sync::Arc;
use std::time::Duration;

/// Remembers the newest window seen per key, so that catch-up runs (oldest first) and reruns of
/// past windows do not overwrite what newer windows exported or decided.
#[derive(Debug, Default)]
pub struct Newest(std::sync::Mutex<std::collections::HashMap<String, i64>>);

impl Newest {
    /// True (and remembered) when `window_end` is at least the newest seen for `key`.
    pub fn advance(&self, key: &str, window_end: i64) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let slot = m.entry(key.to_owned()).or_insert(i64::MIN);
        if window_end >= *slot {
            *slot = window_end;
            true
        } else {
            false
        }
    }
}

/// What a job produced for one window.
#[derive(Debug, Default)]
pub struct Output {
    /// Recorded with the run: inputs and figures.
    pub detail: serde_json::Value,
    pub results: Vec<ResultRow>,
}

#[async_trait]
pub trait Job: Send + Sync + 'static {
    /// Unique name, e.g. `drift:default`; the `task` label of the task metrics.
    fn name(&self) -> String;
    fn schedule(&self) -> &CronSchedule;
    fn max_catch_up(&self) -> usize;
    /// The window `[start, end)` (seconds) a fire at `fired_at` covers.
    fn window_for(&self, fired_at: i64) -> (i64, i64);
    /// Compute the window. Heavy work belongs on blocking threads (`spawn_blocking`).
    async fn run(&self, fired_at: i64, window: (i64, i64)) -> anyhow::Result<Output>;
}

/// Runs jobs against a store, recording runs and task metrics.
#[derive(Clone)]
pub struct Runner {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
    pub lease_ttl: Duration,
    /// Identifies this runner in lease rows.
    pub holder: String,
    /// Called before a run so that it sees every acknowledged event (the ingest flush).
    pub before_run: Option<BeforeRun>,
    /// Raises and resolves the service's alerts from each run's results.
    pub alerts: Option<Arc<crate::alerts::Engine>>,
}

pub type BeforeRun = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>
        + Send
        + Sync,
>;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("job {0} is running elsewhere (its lease is held)")]
    Busy(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl Runner {
    fn now_us(&self) -> i64 {
        (self.clock)()
    }

    /// Run one fire of `job` and record it. Returns the recorded run (also when the job
    /// failed: the failure is recorded, counted and logged).
    pub async fn execute(&self, job: &dyn Job, fired_at: i64) -> Result<JobRun, RunError> {
        self.execute_with(job, fired_at, true).await
    }

    /// `observe`: whether the run's results move alerts (false when restoring state at start).
    async fn execute_with(
        &self,
        job: &dyn Job,
        fired_at: i64,
        observe: bool,
    ) -> Result<JobRun, RunError> {
        let name = job.name();
        let ttl = self.lease_ttl.as_micros() as i64;
        if !self
            .store
            .try_lease(&name, &self.holder, self.now_us(), ttl)
            .await?
        {
            return Err(RunError::Busy(name));
        }
        let result = self.execute_leased(job, &name, fired_at, observe).await;
        if let Err(e) = self.store.release_lease(&name, &self.holder).await {
            tracing::warn!(job = %name, error = %e, "cannot release the job lease; it expires by itself");
        }
        result
    }

    async fn execute_leased(
        &self,
        job: &dyn Job,
        name: &str,
        fired_at: i64,
        observe: bool,
    ) -> Result<JobRun, RunError> {
        let window = job.window_for(fired_at);
        let started_at_us = self.now_us();
        let wall = std::time::Instant::now();
        let output = match &self.before_run {
            Some(f) => match f().await {
                Ok(()) => job.run(fired_at, window).await,
                Err(e) => Err(e.context("cannot flush ingest before the run")),
            },
            None => job.run(fired_at, window).await,
        };
        let secs = wall.elapsed().as_secs_f64();
        let (outcome, detail, results) = match output {
            Ok(o) => ("success", o.detail, o.results),
            Err(e) => {
                tracing::error!(job = %name, window_end = window.1, error = format!("{e:#}"), "job run failed");
                (
                    "failure",
                    serde_json::json!({ "error": format!("{e:#}") }),
                    Vec::new(),
                )
            }
        };
        let run = JobRun {
            job: name.to_owned(),
            window_start: window.0,
            window_end: window.1,
            fired_at,
            started_at_us,
            duration_us: (secs * 1e6) as i64,
            outcome: outcome.to_owned(),
            detail,
        };
        self.store.save_run(&run, &results).await?;
        if let (true, "success", Some(engine)) = (observe, outcome, &self.alerts) {
            if let Err(e) = engine
                .observe(name, window.1, &results, self.now_us())
                .await
            {
                tracing::error!(job = %name, error = %e, "cannot update alerts from the run");
            }
        }
        self.metrics
            .observe_task(name, outcome, secs, self.now_us());
        if outcome == "success" {
            tracing::info!(job = %name, window_start = window.0, window_end = window.1, duration_ms = secs * 1e3, results = results.len(), "job run done");
        }
        Ok(run)
    }

    /// Run every fire of `job` due by now (caught up after downtime, bounded), oldest first.
    pub async fn run_due(&self, job: &dyn Job) -> Result<Vec<JobRun>, RunError> {
        let name = job.name();
        let now = DateTime::<Utc>::from_timestamp_micros(self.now_us()).unwrap_or_default();
        let last = self
            .store
            .last_fire(&name)
            .await?
            .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0));
        let due = job.schedule().due(last, now, job.max_catch_up());
        if due.len() > 1 {
            tracing::info!(job = %name, fires = due.len(), "catching up missed runs");
        }
        let mut runs = Vec::new();
        for fire in due {
            runs.push(self.execute(job, fire.timestamp()).await?);
        }
        Ok(runs)
    }

    /// Poll every `interval` until `stop` resolves; one task per job, so a slow job never
    /// delays another and runs of one job never overlap.
    pub fn spawn(
        self,
        jobs: Vec<Arc<dyn Job>>,
        interval: Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        jobs.into_iter()
            .map(|job| {
                let runner = self.clone();
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    // Restore the exported figures of the last recorded window (rerunning it
                    // reproduces it), so that gauges and the rules on them do not wait a whole
                    // interval after a restart.
                    if let Ok(Some(last)) = runner.store.last_fire(&job.name()).await {
                        if let Err(e) = runner.execute_with(job.as_ref(), last, false).await {
                            tracing::warn!(job = %job.name(), error = %e, "cannot restore the last run");
                        }
                    }
                    loop {
                        if *stop.borrow() {
                            break;
                        }
                        match runner.run_due(job.as_ref()).await {
                            Ok(_) | Err(RunError::Busy(_)) => {}
                            Err(e) => {
                                tracing::error!(job = %job.name(), error = %e, "scheduler cannot record runs")
                            }
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(interval) => {}
                            _ = stop.changed() => {}
                        }
                    }
                })
            })
            .collect()
    }
}
