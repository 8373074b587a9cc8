//! The `retention` job: deletes job history past its configured age (`[retention]`), so that
//! runs, results and resolved alerts do not grow without bound, and rolls hourly summaries and
//! event counts older than `summaries_hourly_days` up into one bucket per day, so that stored
//! summaries grow with days, not hours. Daily by default; like every scheduled job it runs once
//! across replicas and is counted in `flywheel_task_runs_total`.

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
    /// Days older than this (whole UTC days) are rolled up into daily buckets; 0 = never.
    pub summaries_hourly_days: u32,
}

impl RetentionJob {
    /// Roll up every day that ended `summaries_hourly_days` or more before `fired_at`.
    async fn roll_up(&self, fired_at: i64) -> anyhow::Result<(usize, crate::store::RolledUp)> {
        let mut total = crate::store::RolledUp::default();
        if self.summaries_hourly_days == 0 {
            return Ok((0, total));
        }
        let today = fired_at - fired_at.rem_euclid(86_400);
        let before = today - i64::from(self.summaries_hourly_days) * 86_400;
        let days = self.store.series().days_to_roll_up(before).await?;
        let started = std::time::Instant::now();
        let mut last_log = started;
        for (i, (model, day)) in days.iter().enumerate() {
            let done = self.store.series().roll_up_day(model, *day).await?;
            total.rows_merged += done.rows_merged;
            total.rows_written += done.rows_written;
            if last_log.elapsed() >= std::time::Duration::from_secs(10) {
                last_log = std::time::Instant::now();
                tracing::info!(
                    done = i + 1,
                    of = days.len(),
                    rows_merged = total.rows_merged,
                    "rolling hourly summaries up into days"
                );
            }
        }
        if !days.is_empty() {
            tracing::info!(
                model_days = days.len(),
                rows_merged = total.rows_merged,
                rows_written = total.rows_written,
                secs = started.elapsed().as_secs_f64(),
                "rolled hourly summaries up into days"
            );
        }
        Ok((days.len(), total))
    }
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
        let (model_days, rolled) = self.roll_up(fired_at).await?;
        if runs + alerts > 0 {
            tracing::info!(runs, alerts, "deleted job history past its retention");
        }
        Ok(crate::jobs::Output {
            detail: serde_json::json!({
                "job_runs_deleted": runs,
                "alerts_deleted": alerts,
                "model_days_rolled_up": model_days,
                "summary_rows_merged": rolled.rows_merged,
                "day_rows_written": rolled.rows_written,
                "job_runs_before": crate::clock::rfc3339_secs(runs_before),
                "alerts_before": crate::clock::rfc3339_secs(alerts_before_us / 1_000_000),
            }),
            results: Vec::new(),
            findings: (),
        })
    }
}
