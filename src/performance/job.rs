//! The scheduled performance job (`performance`): once a day by default, for every model with
//! outcomes, realized and estimated performance of the last `lookback_days` complete days
//! ([`super::compute`]), stored as one result per model (subject `performance`, so the newest run
//! holds every window as its labels stand now) and exported as metrics.

use super::metrics::PerformanceGauges;
use super::{compute, Performance, PerformanceConfig, Task, CLASSES};
use crate::jobs::schedule::CronSchedule;
use crate::jobs::{Job, Output};
use crate::metrics::Metrics;
use crate::store::{ResultRow, Store};
use async_trait::async_trait;
use std::sync::Arc;

pub const JOB_NAME: &str = "performance";
pub const SUBJECT: &str = "performance";

pub struct PerformanceJob {
    pub config: PerformanceConfig,
    pub schedule: CronSchedule,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    gauges: PerformanceGauges,
    exported: crate::jobs::Newest,
}

impl PerformanceJob {
    pub fn new(
        config: PerformanceConfig,
        schedule: CronSchedule,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, prometheus::Error> {
        Ok(Self {
            config,
            schedule,
            store,
            gauges: PerformanceGauges::new(metrics.registry())?,
            metrics,
            exported: crate::jobs::Newest::default(),
        })
    }
}

/// One model's performance as of `end` (the start of a UTC day): load the outcome and score
/// summaries of the reference and the lookback, compute on a blocking thread. The job, the
/// health job and the report all go through here.
pub async fn performance_at(
    store: &dyn Store,
    config: &PerformanceConfig,
    model: &str,
    end: i64,
) -> anyhow::Result<Performance> {
    let (from, _) = config.reference(end);
    let mut rows = Vec::new();
    for class in CLASSES {
        rows.extend(
            store
                .series()
                .summaries(model, Some(class), from, end)
                .await?,
        );
    }
    let (cfg, m) = (config.clone(), model.to_owned());
    Ok(tokio::task::spawn_blocking(move || compute(&m, &cfg, end, &rows)).await?)
}

#[async_trait]
impl Job for PerformanceJob {
    type Findings = ();
    fn name(&self) -> String {
        JOB_NAME.to_owned()
    }
    fn schedule(&self) -> &CronSchedule {
        &self.schedule
    }
    fn max_catch_up(&self) -> usize {
        self.config.max_catch_up
    }
    /// The window is the last complete UTC day before the fire.
    fn window_for(&self, fired_at: i64) -> (i64, i64) {
        let end = fired_at - fired_at.rem_euclid(86_400);
        (end - 86_400, end)
    }

    async fn run(&self, _fired_at: i64, window: (i64, i64)) -> anyhow::Result<Output> {
        let models = crate::store::models_before(self.store.as_ref(), window.1).await?;
        let mut results = Vec::new();
        let mut summary = serde_json::Map::new();
        for model in models {
            let p = performance_at(self.store.as_ref(), &self.config, &model, window.1).await?;
            if p.task == Task::Unknown {
                continue;
            }
            if self.exported.advance(&model, window.1) {
                self.gauges
                    .publish(&self.metrics.model_label(&model), &p, &self.config);
            }
            let newest = p.newest();
            summary.insert(
                model.clone(),
                serde_json::json!({
                    "task": p.task,
                    "reference_labelled": p.reference_labelled,
                    "coverage": newest.and_then(|w| w.coverage),
                    "estimate_status": newest.map(|w| w.estimate_status),
                    "estimation_mae": p.estimation_mae,
                }),
            );
            results.push(ResultRow {
                job: JOB_NAME.to_owned(),
                model,
                subject: SUBJECT.into(),
                window_start: window.0,
                window_end: window.1,
                data: serde_json::to_value(&p)?,
            });
        }
        Ok(Output {
            detail: serde_json::json!({
                "threshold": self.config.threshold,
                "lookback_days": self.config.lookback_days,
                "reference_days": self.config.reference_days,
                "models": summary,
            }),
            results,
            findings: (),
        })
    }
}
