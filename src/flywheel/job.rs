//! The scheduled health job (`health`): once a day by default, for every model that sent
//! events, the flywheel health as of the end of the last complete day ([`super::health`]),
//! stored as a result (subject `health`) and exported as metrics.

use super::health::{self, HealthConfig, Inputs};
use super::metrics::HealthGauges;
use crate::events::EventType;
use crate::jobs::schedule::CronSchedule;
use crate::jobs::{Job, Output};
use crate::metrics::Metrics;
use crate::store::{ResultRow, Store};
use crate::summary::delta::SeriesClass;
use async_trait::async_trait;
use std::sync::Arc;

pub const JOB_NAME: &str = "health";

pub struct HealthJob {
    pub config: HealthConfig,
    pub schedule: CronSchedule,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    gauges: HealthGauges,
    /// Newest window exported per model (catch-up runs come oldest first).
    exported: crate::jobs::Newest,
}

impl HealthJob {
    pub fn new(
        config: HealthConfig,
        schedule: CronSchedule,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, prometheus::Error> {
        Ok(Self {
            config,
            schedule,
            store,
            gauges: HealthGauges::new(metrics.registry())?,
            metrics,
            exported: crate::jobs::Newest::default(),
        })
    }
}

/// The health of one model as of `end`: load what the computation reads, compute it on a
/// blocking thread. The health job and the weekly report both go through here.
pub async fn health_at(
    store: &dyn Store,
    config: &HealthConfig,
    model: &str,
    end: i64,
) -> anyhow::Result<health::Health> {
    let inputs = load_inputs(store, config, model, end).await?;
    let (cfg, m) = (config.clone(), model.to_owned());
    Ok(tokio::task::spawn_blocking(move || health::compute(&m, &cfg, &inputs)).await?)
}

/// Load what the health computation reads for one model as of `end`.
async fn load_inputs(
    store: &dyn Store,
    config: &HealthConfig,
    model: &str,
    end: i64,
) -> anyhow::Result<Inputs> {
    let from = end - i64::from(config.lookback_days) * 86_400;
    let mut feedback = store
        .series()
        .summaries(model, Some(SeriesClass::FeedbackExplicit), from, end)
        .await?;
    feedback.extend(
        store
            .series()
            .summaries(model, Some(SeriesClass::FeedbackImplicit), from, end)
            .await?,
    );
    let performance = match &config.performance {
        Some(pc) => Some(crate::performance::job::performance_at(store, pc, model, end).await?)
            .filter(|p| p.task != crate::performance::Task::Unknown),
        None => None,
    };
    Ok(Inputs {
        end,
        performance,
        counts: store.series().bucket_counts(model, from, end).await?,
        feedback,
        segment_counts: store
            .series()
            .summaries(model, Some(SeriesClass::SegmentCounts), from, end)
            .await?,
        funnel: store.series().funnel_counts(model, from, end).await?,
        evals: store.series().records(model, EventType::ModelEval).await?,
        deploys: store.series().records(model, EventType::Deploy).await?,
        activity: store
            .series()
            .activity(model, from.div_euclid(86_400), end.div_euclid(86_400))
            .await?,
        withdrawals: store
            .series()
            .activity(
                &crate::summary::delta::withdrawal_key(model),
                from.div_euclid(86_400),
                end.div_euclid(86_400),
            )
            .await?,
    })
}

#[async_trait]
impl Job for HealthJob {
    /// The health of every model in the window.
    type Findings = Vec<health::Health>;
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

    async fn run(
        &self,
        _fired_at: i64,
        window: (i64, i64),
    ) -> anyhow::Result<Output<Self::Findings>> {
        let models = crate::store::models_before(self.store.as_ref(), window.1).await?;
        let mut results = Vec::new();
        let mut findings = Vec::new();
        let mut summary = serde_json::Map::new();
        for model in models {
            let h = health_at(self.store.as_ref(), &self.config, &model, window.1).await?;
            if self.exported.advance(&model, window.1) {
                self.gauges.publish(&self.metrics.model_label(&model), &h);
            }
            summary.insert(
                model.clone(),
                serde_json::json!({
                    "overall": h.overall,
                    "arcs": h.arcs.iter().map(|(k, a)| (k.to_string(), serde_json::json!(a.state))).collect::<serde_json::Map<_, _>>(),
                    "interactions_7d": h.feedback.interactions_7d,
                    "cycles": h.velocity.cycles,
                }),
            );
            results.push(ResultRow {
                job: JOB_NAME.to_owned(),
                model,
                subject: "health".into(),
                window_start: window.0,
                window_end: window.1,
                data: serde_json::to_value(&h)?,
            });
            findings.push(h);
        }
        Ok(Output {
            detail: serde_json::json!({
                "config_hash": config_hash(&self.config),
                "lookback_days": self.config.lookback_days,
                "models": summary,
            }),
            results,
            findings,
        })
    }
}

fn config_hash(c: &HealthConfig) -> String {
    use sha2::Digest;
    let text = serde_json::to_string(c).unwrap_or_default();
    hex::encode(&sha2::Sha256::digest(text.as_bytes())[..8])
}
