//! The `retention` job: deletes job history past its configured age (`[retention]`), so that
//! runs, results and resolved alerts do not grow without bound. Daily by default; like every
//! scheduled job it runs once across replicas and is counted in `flywheel_task_runs_total`.

use crate::jobs::schedule::CronSchedule;
use crate::store::Store;
use std::sync::Arc;

pub struct RetentionJob {
    pub schedule: CronSchedule,
    pub store: Arc<dyn Store>,
    /// Runs and results of windows that ended longer ago than this are deleted.
    pub job_runs_days: u32,
    /// Resolved alerts last updated longer ago than this are deleted.
    pub alerts_days: u32,
}

#[async_trait::async_trait]
impl crate::jobs::Job for RetentionJob {
    type Findings = ();
    fn name(&self) -> String {
        "retention".into()
    }
    fn schedule(&self) -> &CronSchedule {
        &self.schedule
    }
    fn max_catch_up(&self) -> usize {
        1
    }
    /// It deletes old history only: no need to flush (or wait for) ingest.
    fn reads_events(&self) -> bool {
        false
    }
    /// The day before the fire (the window only names the run; the cut-offs are ages).
    fn window_for(&self, fired_at: i64) -> (i64, i64) {
        let end = fired_at - fired_at.rem_euclid(86_400);
        (end - 86_400, end)
    }
    async fn run(&self, fired_at: i64, _window: (i64, i64)) -> anyhow::Result<crate::jobs::Output> {
        let runs_before = fired_at - i64::from(self.job_runs_days) * 86_400;
        let alerts_before_us = (fired_at - i64::from(self.alerts_days) * 86_400) * 1_000_000;
        let runs = self.store.jobs().prune_runs(runs_before).await?;
        let alerts = self.store.alerts().prune_resolved(alerts_before_us).await?;
        if runs + alerts > 0 {
            tracing::info!(runs, alerts, "deleted job history past its retention");
        }
        Ok(crate::jobs::Output {
            detail: serde_json::json!({
                "job_runs_deleted": runs,
                "alerts_deleted": alerts,
                "job_runs_before": crate::clock::rfc3339_secs(runs_before),
                "alerts_before": crate::clock::rfc3339_secs(alerts_before_us / 1_000_000),
            }),
            results: Vec::new(),
            findings: (),
        })
    }
}
