//! Scheduled jobs: the pure schedule computation ([`schedule`]) and the runner that fires jobs
//! on time, records every run, and keeps runs of one job from overlapping.
//!
//! * A job says how it is scheduled and which window a fire covers; [`Runner::execute`] runs
//!   it for one fire and records the run with its window, detail (baseline, config hash, sample
//!   sizes), duration and outcome, replacing an earlier run of the same window (idempotent).
//! * [`Runner::run_due`] runs every fire due since the last recorded one, oldest first, at most
//!   the job's `max_catch_up` of them (so downtime is caught up, boundedly).
//! * A lease row in the store makes one runner (task, process or replica) run a job at a time;
//!   a crashed runner's lease expires after `jobs.lease_ttl_secs` (timed by the store's clock).
//!   Under the lease a scheduled fire already recorded is skipped, so with several replicas
//!   each window runs once.
//! * Every replica exports every job's figures: a replica that did not run the newest recorded
//!   window replays it (computes it again without recording it or moving alerts), so the gauges
//!   of all replicas agree with the stored results. At start-up the same replay restores them.
//! * Time comes from the injected [`Clock`]: tests play days of schedule in seconds.

pub mod retention;
pub mod schedule;

use crate::clock::Clock;
use crate::metrics::Metrics;
pub use crate::store::Outcome;
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
pub struct Output<F = ()> {
    /// Recorded with the run: inputs and figures.
    pub detail: serde_json::Value,
    /// Stored with the run (they replace an earlier run's results for the same window).
    pub results: Vec<ResultRow>,
    /// The typed findings handed to the job's after-run hooks (alerts) once the run is
    /// recorded.
    pub findings: F,
}

/// A scheduled computation over windows of time.
#[async_trait]
pub trait Job: Send + Sync + 'static {
    /// What a run found that others act on (the drift decisions of each model, the health of
    /// each model); `()` when nothing follows a run.
    type Findings: Send + Sync + 'static;
    /// Unique name, e.g. `drift:default`; the `task` label of the task metrics.
    fn name(&self) -> String;
    fn schedule(&self) -> &CronSchedule;
    fn max_catch_up(&self) -> usize;
    /// The window `[start, end)` (seconds) a fire at `fired_at` covers.
    fn window_for(&self, fired_at: i64) -> (i64, i64);
    /// Whether a run reads ingested data (then the runner flushes ingest first, so the run
    /// sees every acknowledged event). Maintenance jobs say no and never wait on ingest.
    fn reads_events(&self) -> bool {
        true
    }
    /// Compute the window. Heavy work belongs on blocking threads (`spawn_blocking`).
    async fn run(
        &self,
        fired_at: i64,
        window: (i64, i64),
    ) -> anyhow::Result<Output<Self::Findings>>;
}

/// Acts on a job's typed findings after each recorded run of the newest windows (the alert
/// engine implements it for the drift and health findings). Not called when the runner only
/// restores the last run at start-up.
#[async_trait]
pub trait AfterRun<F>: Send + Sync + 'static {
    async fn after_run(&self, job: &str, window: (i64, i64), findings: &F);
}

/// A job as the runner schedules it: its findings typed away, its hooks attached. Build one
/// with [`Scheduled::new`] and [`Scheduled::after_run`].
#[async_trait]
pub trait ScheduledJob: Send + Sync + 'static {
    fn name(&self) -> String;
    fn schedule(&self) -> &CronSchedule;
    fn max_catch_up(&self) -> usize;
    fn window_for(&self, fired_at: i64) -> (i64, i64);
    /// See [`Job::reads_events`].
    fn reads_events(&self) -> bool;
    /// Run the window; the returned [`Completed`] carries the hooks to call once it is recorded.
    async fn run(&self, fired_at: i64, window: (i64, i64)) -> anyhow::Result<Completed>;
}

type HookFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A finished run: what is recorded, and the after-run hooks waiting for the record.
pub struct Completed {
    pub detail: serde_json::Value,
    pub results: Vec<ResultRow>,
    after: Option<HookFuture>,
}

/// A [`Job`] with its after-run hooks.
pub struct Scheduled<J: Job> {
    job: J,
    hooks: Vec<Arc<dyn AfterRun<J::Findings>>>,
}

impl<J: Job> Scheduled<J> {
    pub fn new(job: J) -> Self {
        Self {
            job,
            hooks: Vec::new(),
        }
    }
    /// Call `hook` with the findings of every recorded run.
    pub fn after_run(mut self, hook: Arc<dyn AfterRun<J::Findings>>) -> Self {
        self.hooks.push(hook);
        self
    }
    pub fn job(&self) -> &J {
        &self.job
    }
}

#[async_trait]
impl<J: Job> ScheduledJob for Scheduled<J> {
    fn name(&self) -> String {
        self.job.name()
    }
    fn schedule(&self) -> &CronSchedule {
        self.job.schedule()
    }
    fn max_catch_up(&self) -> usize {
        self.job.max_catch_up()
    }
    fn window_for(&self, fired_at: i64) -> (i64, i64) {
        self.job.window_for(fired_at)
    }
    fn reads_events(&self) -> bool {
        self.job.reads_events()
    }
    async fn run(&self, fired_at: i64, window: (i64, i64)) -> anyhow::Result<Completed> {
        let out = self.job.run(fired_at, window).await?;
        let after = (!self.hooks.is_empty()).then(|| {
            let hooks = self.hooks.clone();
            let (name, findings) = (self.job.name(), out.findings);
            Box::pin(async move {
                for h in hooks {
                    h.after_run(&name, window, &findings).await;
                }
            }) as HookFuture
        });
        Ok(Completed {
            detail: out.detail,
            results: out.results,
            after,
        })
    }
}

/// The scheduled jobs of a configuration and the runner that runs them (built by
/// `app::build_jobs`; the HTTP API and the CLI find jobs here by name).
#[derive(Clone)]
pub struct Registry {
    pub list: Vec<Arc<dyn ScheduledJob>>,
    pub runner: Runner,
}

impl Registry {
    pub fn find(&self, name: &str) -> Option<Arc<dyn ScheduledJob>> {
        self.list.iter().find(|j| j.name() == name).cloned()
    }
}

/// The fire time whose window contains `start` (the window that starts at `start` when it is
/// a window boundary). Windows are aligned by the job (hours and days to the epoch, weeks to
/// Mondays), so the alignment is read from the job rather than assumed: a fire one window
/// after `start` covers the window that contains `start` or the one after it, and that
/// window's end is the fire wanted.
pub fn fire_for_window_start(job: &dyn ScheduledJob, start: i64) -> i64 {
    let (s0, e0) = job.window_for(start);
    let w = (e0 - s0).max(1);
    let (s, e) = job.window_for(start + w);
    if s <= start {
        e
    } else {
        s
    }
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
        self.clock.now_us()
    }

    /// Run one fire of `job` and record it, whether or not that window was recorded before (a
    /// manual rerun). Returns the recorded run (also when the job failed: the failure is
    /// recorded, counted and logged).
    pub async fn execute(&self, job: &dyn ScheduledJob, fired_at: i64) -> Result<JobRun, RunError> {
        // A rerun is never skipped, so it always yields a run.
        self.execute_with(job, fired_at, Mode::Rerun)
            .await?
            .ok_or_else(|| RunError::Busy(job.name()))
    }

    /// Run a scheduled fire unless some runner (this one or another replica) has recorded it
    /// already: the check is made under the lease, so a window runs once across replicas.
    async fn execute_due(
        &self,
        job: &dyn ScheduledJob,
        fired_at: i64,
    ) -> Result<Option<JobRun>, RunError> {
        self.execute_with(job, fired_at, Mode::Due).await
    }

    /// Compute a recorded window again only to export its figures on this replica: no lease,
    /// nothing stored, no alert moved. Used at start-up and when another replica ran the window.
    async fn replay(&self, job: &dyn ScheduledJob, fired_at: i64) -> anyhow::Result<()> {
        let window = job.window_for(fired_at);
        job.run(fired_at, window).await.map(|_| ())
    }

    async fn execute_with(
        &self,
        job: &dyn ScheduledJob,
        fired_at: i64,
        mode: Mode,
    ) -> Result<Option<JobRun>, RunError> {
        let name = job.name();
        let ttl = self.lease_ttl.as_micros() as i64;
        // A store that cannot take the lease (down, disk full) fails the run visibly: counted
        // as a failure in flywheel_task_runs_total, like a run that fails.
        let unrecorded = |e: crate::store::StoreError| {
            self.metrics
                .observe_task(&name, Outcome::Failure.as_str(), 0.0, self.now_us());
            RunError::Store(e)
        };
        if !self
            .store
            .jobs()
            .try_lease(&name, &self.holder, ttl)
            .await
            .map_err(unrecorded)?
        {
            return Err(RunError::Busy(name));
        }
        let result = match mode {
            Mode::Due => match self.store.jobs().last_fire(&name).await {
                Ok(Some(last)) if last >= fired_at => Ok(None),
                Ok(_) => self.execute_leased(job, &name, fired_at).await.map(Some),
                Err(e) => Err(unrecorded(e)),
            },
            Mode::Rerun => self.execute_leased(job, &name, fired_at).await.map(Some),
        };
        if let Err(e) = self.store.jobs().release_lease(&name, &self.holder).await {
            tracing::warn!(job = %name, error = %e, "cannot release the job lease; it expires by itself");
        }
        result
    }

    async fn execute_leased(
        &self,
        job: &dyn ScheduledJob,
        name: &str,
        fired_at: i64,
    ) -> Result<JobRun, RunError> {
        let window = job.window_for(fired_at);
        let started_at = self.clock.now();
        let wall = std::time::Instant::now();
        let output = match self.before_run.as_ref().filter(|_| job.reads_events()) {
            Some(f) => match f().await {
                Ok(()) => job.run(fired_at, window).await,
                Err(e) => Err(e.context("cannot flush ingest before the run")),
            },
            None => job.run(fired_at, window).await,
        };
        let secs = wall.elapsed().as_secs_f64();
        let (outcome, detail, results, after) = match output {
            Ok(c) => (Outcome::Success, c.detail, c.results, c.after),
            Err(e) => {
                tracing::error!(job = %name, window_end = window.1, error = format!("{e:#}"), "job run failed");
                (
                    Outcome::Failure,
                    serde_json::json!({ "error": format!("{e:#}") }),
                    Vec::new(),
                    None,
                )
            }
        };
        let run = JobRun {
            job: name.to_owned(),
            window_start: window.0,
            window_end: window.1,
            fired_at,
            started_at,
            duration_us: (secs * 1e6) as i64,
            outcome,
            detail,
        };
        let saved = self.store.jobs().save_run(&run, &results).await;
        // A run whose results cannot be stored failed, whatever it computed.
        let counted = if saved.is_ok() {
            outcome
        } else {
            Outcome::Failure
        };
        self.metrics
            .observe_task(name, counted.as_str(), secs, self.now_us());
        saved?;
        if let Some(after) = after {
            after.await;
        }
        if outcome == Outcome::Success {
            tracing::info!(job = %name, window_start = window.0, window_end = window.1, duration_ms = secs * 1e3, results = results.len(), "job run done");
        }
        Ok(run)
    }

    /// Run every fire of `job` due by now (caught up after downtime, bounded), oldest first.
    /// Fires another replica recorded meanwhile are skipped.
    pub async fn run_due(&self, job: &dyn ScheduledJob) -> Result<Vec<JobRun>, RunError> {
        let name = job.name();
        let now = DateTime::<Utc>::from_timestamp_micros(self.now_us()).unwrap_or_default();
        let last = self
            .store
            .jobs()
            .last_fire(&name)
            .await?
            .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0));
        let due = job.schedule().due(last, now, job.max_catch_up());
        if due.len() > 1 {
            tracing::info!(job = %name, fires = due.len(), "catching up missed runs");
        }
        let mut runs = Vec::new();
        for fire in due {
            if let Some(run) = self.execute_due(job, fire.timestamp()).await? {
                runs.push(run);
            }
        }
        Ok(runs)
    }

    /// One poll of one job: run what is due, then make sure this replica exports the figures
    /// of the newest recorded window, replaying it when another replica (or an earlier life of
    /// this process) recorded it. `exported` is the fire whose figures this runner exports.
    async fn poll(&self, job: &dyn ScheduledJob, exported: &mut Option<i64>) {
        let name = job.name();
        match self.run_due(job).await {
            Ok(runs) => {
                if let Some(run) = runs.last() {
                    *exported = Some(run.fired_at);
                }
            }
            Err(RunError::Busy(_)) => {}
            Err(e) => {
                tracing::error!(job = %name, error = %e, "scheduler cannot record runs");
                return;
            }
        }
        match self.store.jobs().runs(Some(&name), 16).await {
            Ok(runs) => {
                if let Some(r) = runs.iter().find(|r| r.outcome == Outcome::Success) {
                    self.metrics
                        .note_task_success(&name, r.started_at.micros() + r.duration_us);
                }
            }
            Err(e) => tracing::warn!(job = %name, error = %e, "cannot read the job's runs"),
        }
        let last = match self.store.jobs().last_fire(&name).await {
            Ok(Some(last)) => last,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(job = %name, error = %e, "cannot read the job's last run");
                return;
            }
        };
        if exported.is_some_and(|e| e >= last) {
            return;
        }
        match self.replay(job, last).await {
            Ok(()) => *exported = Some(last),
            Err(e) => {
                tracing::warn!(job = %name, error = format!("{e:#}"), "cannot replay the last recorded window")
            }
        }
    }

    /// Poll every `interval` until `stop` resolves; one task per job, so a slow job never
    /// delays another and runs of one job never overlap.
    pub fn spawn(
        self,
        jobs: Vec<Arc<dyn ScheduledJob>>,
        interval: Duration,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        jobs.into_iter()
            .map(|job| {
                let runner = self.clone();
                let mut stop = stop.clone();
                tokio::spawn(async move {
                    // The first poll also replays the last recorded window, so that gauges and
                    // the rules on them do not wait a whole interval after a restart.
                    let mut exported = None;
                    loop {
                        if *stop.borrow() {
                            break;
                        }
                        runner.poll(job.as_ref(), &mut exported).await;
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

/// How [`Runner::execute_with`] treats a window already recorded.
#[derive(Clone, Copy)]
enum Mode {
    /// A scheduled fire: skipped when recorded (by any replica).
    Due,
    /// An operator's rerun: always run and recorded again.
    Rerun,
}
