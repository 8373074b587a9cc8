//! The scheduled quality job (`quality`): hourly by default, every rule evaluated for every
//! model that sent events in the freshness lookback, from stored summaries and event counts.
//!
//! Results (job `quality`, per model and window):
//! * subject `_verdict`: the [`Verdict`] (pass / warn / fail, the rules that failed, tallies);
//! * subject `_model`: the model-level evaluations (freshness, volume, representativeness);
//! * subject `<class>/<feature>`: that feature's evaluations, one per rule that covers it, for
//!   the features with a violation or an undecided rule (passing features are counted in the
//!   verdict's tallies).
//!
//! A run is a pure function of the stored summaries and counts, so rerunning a past window
//! reproduces its stored result.

use super::metrics::QualityGauges;
use super::rules::{Check, Quality};
use super::{evaluate, Evaluation, Inputs, Verdict};
use crate::drift::run::{baseline_summaries, merged_summaries, BaselineCache};
use crate::jobs::schedule::CronSchedule;
use crate::jobs::{Job, Output};
use crate::metrics::Metrics;
use crate::store::{ResultRow, Store};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;

pub const JOB_NAME: &str = "quality";
/// The subject of a model's verdict.
pub const VERDICT: &str = "_verdict";
/// The subject of a model's model-level evaluations.
pub const MODEL: &str = "_model";

const WEEK: i64 = 7 * 86_400;

pub struct QualityJob {
    pub quality: Quality,
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub cache: Arc<BaselineCache>,
    pub bucket_secs: i64,
    gauges: QualityGauges,
    exported: crate::jobs::Newest,
}

impl QualityJob {
    pub fn new(
        quality: Quality,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        cache: Arc<BaselineCache>,
        bucket_secs: i64,
    ) -> Result<Self, prometheus::Error> {
        Ok(Self {
            quality,
            store,
            gauges: QualityGauges::new(metrics.registry())?,
            metrics,
            cache,
            bucket_secs,
            exported: crate::jobs::Newest::default(),
        })
    }

    /// How far back event counts are read: a week (for the volume check and for whether a type
    /// was sent at all), or the longest freshness limit plus the window when longer.
    fn lookback(&self) -> i64 {
        let longest = self
            .quality
            .rules
            .iter()
            .filter(|r| r.check == Check::Freshness)
            .map(|r| r.limit as i64)
            .max()
            .unwrap_or(0);
        (longest + self.quality.window_secs).max(WEEK)
    }

    /// Load what the rules read for one model; `None` when it sent nothing in the lookback.
    async fn inputs(&self, model: &str, window: (i64, i64)) -> anyhow::Result<Option<Inputs>> {
        let series = self.store.series();
        let counts = series
            .bucket_counts(model, window.1 - self.lookback(), window.1)
            .await?;
        if counts.iter().all(|c| c.n == 0) {
            return Ok(None);
        }
        let rules: Vec<_> = self
            .quality
            .rules
            .iter()
            .filter(|r| r.applies_to(model))
            .collect();
        let mut training = BTreeMap::new();
        for name in rules.iter().filter_map(|r| r.training.as_ref()) {
            if let Some((_, sums)) = series.baseline_summaries(name).await? {
                training.insert(
                    name.clone(),
                    sums.into_iter()
                        .map(|s| ((s.class, s.name), s.summary))
                        .collect(),
                );
            }
        }
        let week_ago = if rules.iter().any(|r| r.check == Check::Volume) {
            series
                .bucket_counts(model, window.0 - WEEK, window.1 - WEEK)
                .await?
        } else {
            Vec::new()
        };
        let baseline = match baseline_summaries(
            self.store.as_ref(),
            &self.cache,
            &self.quality.baseline,
            model,
            window,
        )
        .await
        {
            Ok(b) => b,
            // A missing baseline dataset leaves the baseline checks not evaluated; the
            // run still records everything else.
            Err(e) => {
                tracing::warn!(model, error = %e, "quality: no baseline");
                Arc::default()
            }
        };
        Ok(Some(Inputs {
            window,
            bucket_secs: self.bucket_secs,
            current: merged_summaries(self.store.as_ref(), model, window.0, window.1).await?,
            baseline,
            counts,
            week_ago,
            training,
        }))
    }
}

/// The result rows of one model's window.
fn rows(
    model: &str,
    window: (i64, i64),
    evals: Vec<Evaluation>,
    verdict: &Verdict,
) -> Vec<ResultRow> {
    let mut by_subject: BTreeMap<String, Vec<Evaluation>> = BTreeMap::new();
    for e in evals {
        let subject = match (&e.class, &e.feature) {
            (Some(c), Some(f)) => format!("{c}/{f}"),
            _ => MODEL.to_owned(),
        };
        by_subject.entry(subject).or_default().push(e);
    }
    let row = |subject: String, data: serde_json::Value| ResultRow {
        job: JOB_NAME.to_owned(),
        model: model.to_owned(),
        subject,
        window_start: window.0,
        window_end: window.1,
        data,
    };
    let mut out = vec![row(
        VERDICT.to_owned(),
        serde_json::to_value(verdict).unwrap_or_default(),
    )];
    // Passing features are counted in the verdict's tallies; a row is kept for each feature
    // with something to look at (a violation, or a rule that could not decide), which keeps
    // the steady state to one or two rows per model and window instead of one per feature.
    for (subject, evals) in by_subject {
        if evals.iter().any(|e| e.status != super::Status::Pass) {
            out.push(row(subject, serde_json::json!({ "evaluations": evals })));
        }
    }
    out
}

#[async_trait]
impl Job for QualityJob {
    /// Each model's verdict.
    type Findings = Vec<(String, Verdict)>;
    fn name(&self) -> String {
        JOB_NAME.to_owned()
    }
    fn schedule(&self) -> &CronSchedule {
        &self.quality.schedule
    }
    fn max_catch_up(&self) -> usize {
        self.quality.max_catch_up
    }
    fn window_for(&self, fired_at: i64) -> (i64, i64) {
        self.quality.window_for(fired_at)
    }

    async fn run(
        &self,
        _fired_at: i64,
        window: (i64, i64),
    ) -> anyhow::Result<Output<Self::Findings>> {
        let models = crate::store::models_before(self.store.as_ref(), window.1).await?;
        let baseline = self.quality.baseline.describe();
        let mut results = Vec::new();
        let mut findings = Vec::new();
        let mut summary = serde_json::Map::new();
        for model in models {
            if !self.quality.rules.iter().any(|r| r.applies_to(&model)) {
                continue;
            }
            let Some(inputs) = self.inputs(&model, window).await? else {
                continue;
            };
            let (rules, m, b) = (self.quality.rules.clone(), model.clone(), baseline.clone());
            let (evals, verdict) =
                tokio::task::spawn_blocking(move || evaluate(&m, &rules, &inputs, &b)).await?;
            if self.exported.advance(&model, window.1) {
                self.gauges
                    .publish(&self.metrics.model_label(&model), &verdict);
            }
            summary.insert(
                model.clone(),
                serde_json::json!({
                    "verdict": verdict.verdict,
                    "failed_rules": verdict.failed_rules,
                    "violations": verdict.violations_total,
                }),
            );
            results.extend(rows(&model, window, evals, &verdict));
            findings.push((model, verdict));
        }
        Ok(Output {
            detail: serde_json::json!({
                "config_hash": self.quality.config_hash,
                "baseline": baseline,
                "rules": self.quality.rules.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
                "models": summary,
            }),
            results,
            findings,
        })
    }
}

/// One model's stored verdicts with their windows, oldest first: the windows ending in
/// `(from, to]`, or the newest `latest` when no range is given.
pub async fn verdicts(
    store: &dyn Store,
    model: &str,
    from: Option<i64>,
    to: Option<i64>,
    latest: Option<i64>,
) -> anyhow::Result<Vec<super::WindowVerdict>> {
    let rows = store
        .jobs()
        .results(&crate::store::ResultQuery {
            job_prefix: Some(JOB_NAME.into()),
            model: Some(model.to_owned()),
            subject: Some(VERDICT.into()),
            from,
            to,
            latest,
        })
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows.into_iter().filter(|r| r.job == JOB_NAME) {
        let verdict: Verdict = serde_json::from_value(r.data).map_err(|e| {
            anyhow::anyhow!(
                "a stored quality verdict of {model:?} (window ending {}) does not decode: {e}",
                r.window_end
            )
        })?;
        out.push(super::WindowVerdict {
            window_start: r.window_start,
            window_end: r.window_end,
            verdict,
        });
    }
    out.sort_by_key(|w| w.window_start);
    Ok(out)
}

/// The training-consent flags of a model's interactions in `[from, to)`.
pub async fn consent_over(
    store: &dyn Store,
    model: &str,
    from: i64,
    to: i64,
) -> anyhow::Result<super::ConsentShare> {
    let rows = store
        .series()
        .summaries(
            model,
            Some(crate::summary::delta::SeriesClass::Consent),
            from,
            to,
        )
        .await?;
    let mut m = crate::drift::run::SummaryMap::new();
    for r in rows {
        match m.entry((r.class, r.name)) {
            std::collections::btree_map::Entry::Occupied(mut e) => e.get_mut().merge(&r.summary),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(r.summary);
            }
        }
    }
    Ok(super::consent_share(&m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::rules::Severity;
    use crate::quality::{Grade, Status};

    fn e(feature: &str, status: Status) -> Evaluation {
        Evaluation {
            rule: "r".into(),
            check: Check::Range,
            severity: Severity::Warn,
            class: Some("input".into()),
            feature: Some(feature.into()),
            status,
            value: Some(0.0),
            limit: 0.01,
            n: 100,
            message: String::new(),
        }
    }

    #[test]
    fn passing_features_are_tallied_not_stored_one_by_one() {
        let verdict = Verdict {
            verdict: Grade::Warn,
            failed_rules: vec!["r".into()],
            rules: Vec::new(),
            violations: Vec::new(),
            violations_total: 1,
            interactions: 100,
            features_per_event: None,
            features_per_event_baseline: None,
            baseline: "rolling:7d".into(),
        };
        let evals = vec![
            e("a", Status::Pass),
            e("b", Status::Violated),
            e("c", Status::NotEvaluated),
            e("d", Status::Pass),
        ];
        let subjects: Vec<String> = rows("m", (0, 3600), evals, &verdict)
            .into_iter()
            .map(|r| r.subject)
            .collect();
        assert_eq!(subjects, [VERDICT, "input/b", "input/c"]);
    }
}
