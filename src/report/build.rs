//! Gather one week's [`WeeklyReport`] from the store: the health of each model at the week's end
//! and a week before, the alerts, the drift results and the summaries behind the charts.

use super::charts;
use super::model::{
    AlertLine, Change, Charts, DriftWeek, DriftedFeature, ModelSection, MultivariateWeek,
    WeeklyReport,
};
use super::{day, IsoWeek, DAY};
use crate::drift::sketch::SketchCdf;
use crate::events::EventType;
use crate::flywheel::health::{Health, HealthConfig};
use crate::flywheel::learning_curve::Forecast;
use crate::store::{AlertRow, AlertState, ResultQuery, ResultRow, Store};
use crate::summary::delta::SeriesClass;
use crate::summary::FeatureSummary;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

/// Build the report of one week from the store.
pub async fn build(
    store: &dyn Store,
    week: &IsoWeek,
    health: &HealthConfig,
) -> anyhow::Result<WeeklyReport> {
    let (ws, we) = (week.start, week.end);
    let models = crate::store::models_before(store, we).await?;
    let alerts_all = store.alerts().recent_alerts(ws * 1_000_000, 10_000).await?;
    let mut sections = Vec::new();
    for model in &models {
        // Computed from the stored data (not read from the health job's results), so that the
        // report does not depend on which job ran first.
        let h = crate::flywheel::job::health_at(store, health, model, we).await?;
        let p = crate::flywheel::job::health_at(store, health, model, we - 7 * DAY).await?;
        let drift = drift_week(store, model, week).await?;
        let performance = match &health.performance {
            Some(pc) => Some(crate::performance::job::performance_at(store, pc, model, we).await?)
                .filter(|p| p.task != crate::performance::Task::Unknown),
            None => None,
        };
        let min_labels = health.performance.as_ref().map_or(0, |c| c.min_labels);
        let charts = Charts {
            performance: performance
                .as_ref()
                .map(|p| performance_chart(p, min_labels))
                .unwrap_or_default(),
            reliability: performance
                .as_ref()
                .map(|p| reliability_chart(p, min_labels))
                .unwrap_or_default(),
            volume: volume_chart(store, model, we).await?,
            velocity: velocity_chart(model, &h),
            learning_curve: learning_curve_chart(
                model,
                h.velocity.metric.as_deref().unwrap_or("metric"),
                &h.velocity.learning_curve,
            ),
            retention: retention_chart(model, &h),
            drift: drift_charts(store, model, week, &drift).await?,
        };
        sections.push(ModelSection {
            model: model.clone(),
            verdict: h.verdict.clone(),
            health_as_of: day(we - DAY),
            changes: changes(&h, &p),
            feedback_segments: h
                .feedback
                .by_segment
                .iter()
                .filter(|s| matches!(s.decision, "fell" | "rose"))
                .cloned()
                .collect(),
            uplift_segments: h
                .uplift
                .by_segment
                .iter()
                .filter(|(_, m)| matches!(m.decision, "better" | "worse"))
                .cloned()
                .collect(),
            alerts: alerts(&alerts_all, model, week),
            arcs: h.arcs.clone(),
            drift,
            funnel: h.funnel.clone(),
            metric: h.velocity.metric.clone(),
            learning_curve: h.velocity.learning_curve.clone(),
            charts,
            performance,
            quality: quality_week(store, model, week, &h).await?,
        });
    }
    let verdict = match sections.as_slice() {
        [] => "No events were received before the end of this week.".into(),
        [s] => format!("{}: {}", s.model, s.verdict),
        many => many
            .iter()
            .map(|s| format!("{}: {}", s.model, s.verdict))
            .collect::<Vec<_>>()
            .join(" · "),
    };
    Ok(WeeklyReport {
        week: week.label.clone(),
        from: day(ws),
        to: day(we - DAY),
        verdict,
        models: sections,
    })
}

/// Data quality over the week's quality windows; `None` when there are none.
async fn quality_week(
    store: &dyn Store,
    model: &str,
    week: &IsoWeek,
    h: &Health,
) -> anyhow::Result<Option<super::model::QualityWeek>> {
    let verdicts =
        crate::quality::job::verdicts(store, model, Some(week.start), Some(week.end), None).await?;
    if verdicts.is_empty() {
        return Ok(None);
    }
    let mut by_feature: BTreeMap<(String, String), usize> = BTreeMap::new();
    for w in &verdicts {
        let mut seen = std::collections::BTreeSet::new();
        for v in &w.verdict.violations {
            let key = (v.rule.clone(), v.feature.clone().unwrap_or_default());
            if seen.insert(key.clone()) {
                *by_feature.entry(key).or_insert(0) += 1;
            }
        }
    }
    let mut top_violations: Vec<(String, String, usize)> = by_feature
        .into_iter()
        .map(|((r, f), n)| (r, f, n))
        .collect();
    top_violations.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.cmp(b)));
    top_violations.truncate(8);
    let funnel = store
        .series()
        .funnel_counts(model, week.start, week.end)
        .await?;
    let at = |stage: crate::events::Stage| -> u64 {
        funnel
            .iter()
            .filter(|f| f.stage == stage)
            .map(|f| f.n)
            .sum()
    };
    Ok(Some(super::model::QualityWeek {
        summary: crate::quality::summarise(&verdicts),
        top_violations,
        funnel_collected: at(crate::events::Stage::Collected),
        funnel_quality_failed: at(crate::events::Stage::QualityFailed),
        consent: crate::quality::job::consent_over(store, model, week.start, week.end).await?,
        suppressed_cohorts: h
            .retention
            .weekly_cohorts
            .iter()
            .filter(|c| c.suppressed)
            .count(),
        cohorts: h.retention.weekly_cohorts.len(),
    }))
}

/// The figures compared week over week.
fn changes(h: &Health, p: &Health) -> Vec<Change> {
    type Get = fn(&Health) -> Option<f64>;
    let rows: [(&'static str, Get, bool); 8] = [
        (
            "Interactions (7 days)",
            |h| Some(h.feedback.interactions_7d as f64),
            false,
        ),
        (
            "Explicit feedback (7 days)",
            |h| Some(h.feedback.explicit_7d as f64),
            false,
        ),
        (
            "Explicit feedback rate",
            |h| h.feedback.explicit_rate.estimate,
            true,
        ),
        (
            "Positive share",
            |h| h.feedback.positive_share.estimate,
            true,
        ),
        (
            "Usable (curated) items (7 days)",
            |h| Some(h.feedback.usable_7d as f64),
            false,
        ),
        (
            "Velocity per cycle",
            |h| h.velocity.per_cycle.as_ref().map(|s| s.estimate),
            false,
        ),
        ("D7 retention", |h| h.retention.d7.value, true),
        ("Stickiness (DAU/MAU)", |h| h.retention.stickiness, true),
    ];
    rows.iter()
        .map(|(metric, get, percent)| {
            let (this_week, previous_week) = (get(h), get(p));
            let change = match (this_week, previous_week) {
                (Some(a), Some(b)) if b != 0.0 => Some(a / b - 1.0),
                _ => None,
            };
            Change {
                metric,
                this_week,
                previous_week,
                change,
                percent: *percent,
            }
        })
        .collect()
}

/// The model's alerts that were firing at some point of the week.
fn alerts(all: &[AlertRow], model: &str, week: &IsoWeek) -> Vec<AlertLine> {
    let (ws, we) = (week.start, week.end);
    all.iter()
        .filter(|a| a.labels.get("model").map(String::as_str) == Some(model))
        .filter(|a| a.state != AlertState::Inactive)
        .filter_map(|a| {
            let started = a.starts_at.filter(|s| s.secs() < we)?;
            let resolved = a.ends_at.filter(|e| e.secs() < we).map(|e| e.secs());
            if resolved.is_some_and(|r| day(r) < day(ws)) {
                return None;
            }
            let label = |k: &str| a.labels.get(k).cloned().unwrap_or_default();
            Some(AlertLine {
                alertname: label("alertname"),
                severity: label("severity"),
                state_now: a.state,
                summary: a.annotations.get("summary").cloned().unwrap_or_default(),
                started: Some(day(started.secs())),
                resolved: resolved.map(day),
            })
        })
        .collect()
}

/// The fields of a stored drift result the report reads.
#[derive(Deserialize)]
struct StoredDrift {
    #[serde(default)]
    decision: String,
    /// The score compared with the threshold (rows written before it existed: the effect).
    score: Option<f64>,
    effect: Option<f64>,
    #[serde(default)]
    method: String,
}

/// Per feature, the drift windows of the week that drifted, and the largest score.
async fn drift_week(store: &dyn Store, model: &str, week: &IsoWeek) -> anyhow::Result<DriftWeek> {
    let rows: Vec<ResultRow> = store
        .jobs()
        .results(&ResultQuery {
            job_prefix: Some("drift:".into()),
            model: Some(model.to_owned()),
            from: Some(week.start),
            to: Some(week.end),
            ..Default::default()
        })
        .await?;
    let mut windows = BTreeSet::new();
    let mut multivariate: Option<MultivariateWeek> = None;
    // Segment → (windows in which its inputs drifted, the inputs).
    let mut segments: BTreeMap<String, (u64, BTreeSet<String>)> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.subject == "_dataset") {
        if let Some(Ok(segs)) = r
            .data
            .get("segments")
            .map(|v| serde_json::from_value::<Vec<crate::drift::run::SegmentDrift>>(v.clone()))
        {
            for s in segs.into_iter().filter(|s| s.drifted > 0) {
                let e = segments
                    .entry(format!("{}={}", s.key, s.value))
                    .or_default();
                e.0 += 1;
                e.1.extend(s.drifted_features);
            }
        }
        let Some(Ok(mv)) = r.data.get("multivariate").map(|v| {
            serde_json::from_value::<crate::drift::multivariate::WindowMultivariate>(v.clone())
        }) else {
            continue;
        };
        let (Some(score), Some(band)) = (mv.score, mv.band) else {
            continue;
        };
        let w = multivariate.get_or_insert_with(|| MultivariateWeek {
            features: Vec::new(),
            windows: 0,
            drifted_windows: 0,
            largest_score: f64::NEG_INFINITY,
            band_upper: 0.0,
        });
        w.windows += 1;
        w.drifted_windows += u64::from(mv.decision == crate::drift::Decision::Drift);
        // The window furthest above (or least below) its own band.
        let worst = w.band_upper <= 0.0 || score / band.upper > w.largest_score / w.band_upper;
        if w.windows == 1 || worst {
            w.largest_score = score;
            w.band_upper = band.upper;
            w.features = mv.features;
        }
    }
    let mut by_feature: BTreeMap<String, DriftedFeature> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.subject != "_dataset") {
        windows.insert(r.window_end);
        let Ok(d) = serde_json::from_value::<StoredDrift>(r.data.clone()) else {
            continue;
        };
        let f = by_feature
            .entry(r.subject.clone())
            .or_insert_with(|| DriftedFeature {
                feature: r.subject.clone(),
                drifted_windows: 0,
                windows: 0,
                largest_score: 0.0,
                method: String::new(),
            });
        f.windows += 1;
        if d.decision == "drift" {
            f.drifted_windows += 1;
            let score = d.score.or(d.effect).unwrap_or(0.0);
            if score > f.largest_score || f.method.is_empty() {
                f.largest_score = score.max(f.largest_score);
                f.method = d.method;
            }
        }
    }
    let mut features: Vec<DriftedFeature> = by_feature
        .into_values()
        .filter(|f| f.drifted_windows > 0)
        .collect();
    features.sort_by(|a, b| {
        b.largest_score
            .total_cmp(&a.largest_score)
            .then(a.feature.cmp(&b.feature))
    });
    features.truncate(10);
    let mut segments: Vec<(String, u64, Vec<String>)> = segments
        .into_iter()
        .map(|(s, (n, f))| (s, n, f.into_iter().collect()))
        .collect();
    segments.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    segments.truncate(5);
    Ok(DriftWeek {
        windows: windows.len(),
        features,
        multivariate,
        segments,
    })
}

fn merged(rows: Vec<crate::store::SummaryRow>) -> BTreeMap<String, FeatureSummary> {
    let mut m: BTreeMap<String, FeatureSummary> = BTreeMap::new();
    for r in rows {
        match m.get_mut(&r.name) {
            Some(s) => s.merge(&r.summary),
            None => {
                m.insert(r.name, r.summary);
            }
        }
    }
    m
}

type Points = Vec<(f64, f64)>;

/// Shares of reference and current over 20 quantile bins of the reference.
fn distribution(r: &FeatureSummary, c: &FeatureSummary) -> Option<(Points, Points)> {
    if r.moments.n == 0 || c.moments.n == 0 {
        return None;
    }
    let (a, b) = (SketchCdf::new(&r.sketch), SketchCdf::new(&c.sketch));
    let mut edges: Vec<f64> = (0..=20).map(|i| a.quantile(i as f64 / 20.0)).collect();
    edges[0] = r.min.min(c.min);
    edges[20] = r.max.max(c.max);
    edges.dedup();
    if edges.len() < 3 {
        return None;
    }
    let shares = |s: &SketchCdf| -> Vec<(f64, f64)> {
        edges
            .windows(2)
            .map(|w| {
                let lo = if w[0] == edges[0] { 0.0 } else { s.cdf(w[0]) };
                (
                    (w[0] + w[1]) / 2.0,
                    (s.cdf(w[1]) - lo) / (w[1] - w[0]).max(1e-12),
                )
            })
            .collect()
    };
    Some((shares(&a), shares(&b)))
}

/// Reference (the week before) and current distributions of the top three drifted inputs.
async fn drift_charts(
    store: &dyn Store,
    model: &str,
    week: &IsoWeek,
    drift: &DriftWeek,
) -> anyhow::Result<Vec<String>> {
    let (ws, we) = (week.start, week.end);
    let cur = merged(
        store
            .series()
            .summaries(model, Some(SeriesClass::Input), ws, we)
            .await?,
    );
    let refr = merged(
        store
            .series()
            .summaries(model, Some(SeriesClass::Input), ws - 7 * DAY, ws)
            .await?,
    );
    let mut out = Vec::new();
    for f in drift
        .features
        .iter()
        .filter(|f| f.feature.starts_with("input/"))
        .take(3)
    {
        let name = f.feature.trim_start_matches("input/");
        let (Some(r), Some(c)) = (refr.get(name), cur.get(name)) else {
            continue;
        };
        if let Some((a, b)) = distribution(r, c) {
            out.push(charts::lines(
                &format!("{name}: previous week vs this week"),
                &format!("{name} (feature units)"),
                "density (share per unit)",
                &[
                    charts::Series {
                        name: "previous week (reference)",
                        points: a,
                        color: charts::GREY,
                    },
                    charts::Series {
                        name: "this week",
                        points: b,
                        color: charts::ORANGE,
                    },
                ],
                &[],
                &|x| format!("{x:.1}"),
            ));
        }
    }
    Ok(out)
}

/// Daily feedback and interactions over the 8 weeks to the week's end.
async fn volume_chart(store: &dyn Store, model: &str, we: i64) -> anyhow::Result<String> {
    let counts = store
        .series()
        .bucket_counts(model, we - 56 * DAY, we)
        .await?;
    let mut per_day: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    for c in counts {
        let d = c.bucket - c.bucket.rem_euclid(DAY);
        let e = per_day.entry(d).or_default();
        match c.event_type {
            EventType::Feedback => e.0 += c.n as f64,
            EventType::Interaction => e.1 += c.n as f64,
            _ => {}
        }
    }
    let x_day = |x: &f64| day(*x as i64).get(5..).unwrap_or("").to_owned();
    Ok(charts::lines(
        &format!(
            "{model}: daily feedback and interactions, 8 weeks to {}",
            day(we - DAY)
        ),
        "day (UTC)",
        "events per day",
        &[
            charts::Series {
                name: "feedback events",
                points: per_day.iter().map(|(d, v)| (*d as f64, v.0)).collect(),
                color: charts::BLUE,
            },
            charts::Series {
                name: "interactions",
                points: per_day.iter().map(|(d, v)| (*d as f64, v.1)).collect(),
                color: charts::GREEN,
            },
        ],
        &[],
        &x_day,
    ))
}

/// The metric per cycle, with the Sen line and its 90 % band over the window.
fn velocity_chart(model: &str, h: &Health) -> String {
    let series: Vec<(f64, f64)> = h
        .velocity
        .series
        .iter()
        .map(|(c, v)| (*c as f64, *v))
        .collect();
    if series.len() < 2 {
        return String::new();
    }
    let metric = h.velocity.metric.as_deref().unwrap_or("metric");
    let k = series.len().min(8);
    let window = &series[series.len() - k..];
    let anchor = window.iter().map(|p| p.1).sum::<f64>() / k as f64;
    let xm = window.iter().map(|p| p.0).sum::<f64>() / k as f64;
    let line = |s: f64| {
        window
            .iter()
            .map(|p| (p.0, anchor + s * (p.0 - xm)))
            .collect::<Vec<_>>()
    };
    let mut lines = vec![charts::Series {
        name: "evaluations",
        points: series.clone(),
        color: charts::BLUE,
    }];
    let mut band = Vec::new();
    if let Some(pc) = &h.velocity.per_cycle {
        lines.push(charts::Series {
            name: "Sen slope (last k cycles)",
            points: line(pc.estimate),
            color: charts::ORANGE,
        });
        band = window
            .iter()
            .map(|p| {
                let (a, b) = (
                    anchor + pc.lower * (p.0 - xm),
                    anchor + pc.upper * (p.0 - xm),
                );
                (p.0, a.min(b), a.max(b))
            })
            .collect();
    }
    charts::lines(
        &format!("{model}: {metric} per retraining cycle (90 % Sen band)"),
        "retraining cycle",
        &format!("{metric} (metric units)"),
        &lines,
        &band,
        &|x| format!("{x:.0}"),
    )
}

/// The learning curve: the evaluations against training examples, the fitted curve up to twice
/// the latest training size, and the forecast's 90 % interval from the latest model to the next
/// cycle and to twice the data.
pub(super) fn learning_curve_chart(model: &str, metric: &str, f: &Forecast) -> String {
    let Some(curve) = f.curve else {
        return String::new();
    };
    let Some(last) = f.examples.filter(|_| !f.points.is_empty()) else {
        return String::new();
    };
    let lo = f.points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let hi = 2.0 * last;
    // The fit is in the metric's orientation (higher is better); draw it as measured.
    let as_measured = |q: f64| if f.higher_is_better { q } else { -q };
    let fit: Vec<(f64, f64)> = (0..=60)
        .map(|i| {
            let n = lo * (hi / lo).powf(i as f64 / 60.0);
            (n, as_measured(curve.at(n)))
        })
        .collect();
    let at_last = as_measured(curve.at(last));
    let mut band = vec![(last, at_last, at_last)];
    for (to, e) in [
        (f.next_examples, f.next_cycle_gain),
        (Some(hi), f.doubling_gain),
    ] {
        if let (Some(to), Some(e)) = (to, e) {
            if let (Some(l), Some(u)) = (e.lower, e.upper) {
                band.push((to, at_last + l, at_last + u));
            }
        }
    }
    band.sort_by(|a, b| a.0.total_cmp(&b.0));
    if band.len() < 2 {
        band.clear();
    }
    charts::lines(
        &format!(
            "{model}: {metric} against training examples (learning curve, 90 % forecast band)"
        ),
        "training examples",
        &format!("{metric} (metric units)"),
        &[
            charts::Series {
                name: "evaluations",
                points: f.points.clone(),
                color: charts::BLUE,
            },
            charts::Series {
                name: "fitted curve",
                points: fit,
                color: charts::ORANGE,
            },
        ],
        &band,
        &|x| format!("{x:.0}"),
    )
}

/// The weekly cohort retention matrix.
fn retention_chart(model: &str, h: &Health) -> String {
    let cohorts = &h.retention.weekly_cohorts;
    if cohorts.is_empty() {
        return String::new();
    }
    let labels: Vec<String> = cohorts.iter().map(|c| day(c.start_day * DAY)).collect();
    let cells: Vec<Vec<Option<f64>>> = cohorts
        .iter()
        .map(|c| {
            let size = c.size as f64;
            c.retained
                .iter()
                .map(|v| v.map(|x| x as f64).filter(|_| size > 0.0).map(|x| x / size))
                .collect()
        })
        .collect();
    charts::heatmap(
        &format!("{model}: weekly cohort retention (share of the cohort active)"),
        "weeks since first activity",
        &labels,
        &cells,
    )
}

/// Accuracy per day (MAE for regressors): realized where the day has enough outcomes, estimated
/// from the scores, and the reference period's level.
fn performance_chart(p: &crate::performance::Performance, min_labels: u64) -> String {
    use crate::performance::Task;
    type Points = Vec<(f64, f64)>;
    let (metric, realized, estimated, reference): (&str, Points, Points, Option<f64>) = match p.task
    {
        Task::BinaryClassification => (
            "accuracy",
            p.windows
                .iter()
                .filter(|w| w.labelled >= min_labels)
                .filter_map(|w| Some((w.start as f64, w.realized.binary.as_ref()?.accuracy?)))
                .collect(),
            p.windows
                .iter()
                .filter_map(|w| Some((w.start as f64, w.estimated.as_ref()?.accuracy?)))
                .collect(),
            p.reference.binary.as_ref().and_then(|b| b.accuracy),
        ),
        Task::Regression => (
            "MAE",
            p.windows
                .iter()
                .filter(|w| w.labelled >= min_labels)
                .filter_map(|w| Some((w.start as f64, w.realized.regression.as_ref()?.mae)))
                .collect(),
            Vec::new(),
            p.reference.regression.as_ref().map(|r| r.mae),
        ),
        Task::Unknown => return String::new(),
    };
    if realized.is_empty() && estimated.is_empty() {
        return String::new();
    }
    let mut series = Vec::new();
    if let (Some(r), Some(first), Some(last)) = (reference, p.windows.first(), p.windows.last()) {
        series.push(charts::Series {
            name: "reference period",
            points: vec![(first.start as f64, r), (last.start as f64, r)],
            color: charts::GREY,
        });
    }
    series.push(charts::Series {
        name: "realized (labels)",
        points: realized,
        color: charts::BLUE,
    });
    if !estimated.is_empty() {
        series.push(charts::Series {
            name: "estimated (scores)",
            points: estimated,
            color: charts::ORANGE,
        });
    }
    let x_day = |x: &f64| day(*x as i64).get(5..).unwrap_or("").to_owned();
    charts::lines(
        &format!("{}: {metric} per day, realized and estimated", p.model),
        "prediction day (UTC)",
        metric,
        &series,
        &[],
        &x_day,
    )
}

/// The reliability diagram of the newest day with enough outcomes: observed share of positives
/// against the mean score per score bin, and the diagonal of perfect calibration.
fn reliability_chart(p: &crate::performance::Performance, min_labels: u64) -> String {
    let Some((w, b)) = p
        .windows
        .iter()
        .rev()
        .filter(|w| w.labelled >= min_labels)
        .find_map(|w| Some((w, w.realized.binary.as_ref()?)))
    else {
        return String::new();
    };
    if b.reliability.len() < 2 {
        return String::new();
    }
    let fmt = |x: &f64| format!("{x:.1}");
    charts::lines(
        &format!(
            "{}: reliability on {} (ECE {:.3}, {} outcomes)",
            p.model,
            day(w.start),
            b.calibration_error.unwrap_or(f64::NAN),
            b.labelled
        ),
        "mean predicted probability",
        "observed share of positives",
        &[
            charts::Series {
                name: "perfect calibration",
                points: vec![(0.0, 0.0), (1.0, 1.0)],
                color: charts::GREY,
            },
            charts::Series {
                name: "observed",
                points: b
                    .reliability
                    .iter()
                    .map(|r| (r.mean_score, r.positive_rate))
                    .collect(),
                color: charts::BLUE,
            },
        ],
        &[],
        &fmt,
    )
}
