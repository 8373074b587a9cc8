//! Improvement velocity of the primary evaluation metric: the series of the latest evaluation
//! set, Sen slopes per cycle and per day, gain per 1,000 new examples, loop latency, and the
//! learning-curve forecast.

use super::{HealthConfig, Inputs, Slope, Velocity, DAY};
use crate::events::{Body, Event};
use crate::flywheel::learning_curve;
use crate::stats::trend::sen_slope_xy;
use std::collections::BTreeMap;

/// One evaluation of the primary metric.
struct EvalPoint {
    at: i64,
    value: f64,
    higher_is_better: bool,
    new_examples: Option<u64>,
    total_examples: Option<u64>,
    cutoff_us: Option<i64>,
    version: String,
}

pub(super) fn velocity(cfg: &HealthConfig, inp: &Inputs) -> Velocity {
    let end = inp.end;
    let mut evals: Vec<&Event> = inp
        .evals
        .iter()
        .filter(|e| e.occurred_at_secs() < end)
        .collect();
    evals.sort_by_key(|e| e.occurred_at_us);
    let mut v = Velocity {
        metric: None,
        eval_set: None,
        cycles: 0,
        series: Vec::new(),
        higher_is_better: true,
        per_cycle: None,
        per_day: None,
        gain_per_1k_examples: None,
        loop_latency_seconds: None,
        loop_latency_series: Vec::new(),
        learning_curve: learning_curve::forecast(&[], true, None),
        note: None,
    };
    let Some(latest) = evals.last() else {
        v.note = Some("no model_eval events yet".into());
        return v;
    };
    let Body::ModelEval {
        eval_set, metrics, ..
    } = &latest.body
    else {
        return v;
    };
    let metric = if cfg.primary_metric.is_empty() {
        metrics.first().map(|m| m.name.clone())
    } else {
        Some(cfg.primary_metric.clone())
    };
    let Some(metric) = metric else {
        v.note = Some("the latest evaluation has no metrics".into());
        return v;
    };
    let mut by_cycle: BTreeMap<u64, EvalPoint> = BTreeMap::new();
    for e in &evals {
        if let Body::ModelEval {
            cycle,
            eval_set: es,
            metrics,
            train_data,
        } = &e.body
        {
            if es != eval_set {
                continue;
            }
            if let Some(m) = metrics.iter().find(|m| m.name == metric) {
                by_cycle.insert(
                    *cycle,
                    EvalPoint {
                        at: e.occurred_at_secs(),
                        value: m.value,
                        higher_is_better: m.higher_is_better,
                        new_examples: train_data.as_ref().and_then(|t| t.new_examples),
                        total_examples: train_data.as_ref().and_then(|t| t.total_examples),
                        cutoff_us: train_data.as_ref().and_then(|t| t.data_cutoff_at),
                        version: e.model.version.clone(),
                    },
                );
            }
        }
    }
    v.metric = Some(metric.clone());
    v.eval_set = Some(eval_set.clone());
    v.cycles = by_cycle.len();
    v.series = by_cycle.iter().map(|(c, x)| (*c, x.value)).collect();
    v.higher_is_better = by_cycle.values().last().is_none_or(|x| x.higher_is_better);
    if v.cycles == 0 {
        v.note = Some(format!(
            "the latest evaluation set {eval_set:?} has no {metric:?} values"
        ));
        return v;
    }
    let rows: Vec<_> = by_cycle.iter().collect();
    let window = &rows[rows.len().saturating_sub(cfg.k)..];
    let oriented = |x: f64, hib: bool| if hib { x } else { -x };
    let ys: Vec<f64> = window
        .iter()
        .map(|(_, r)| oriented(r.value, r.higher_is_better))
        .collect();
    let cs: Vec<f64> = window.iter().map(|(c, _)| **c as f64).collect();
    let ts: Vec<f64> = window
        .iter()
        .map(|(_, r)| (r.at - window[0].1.at) as f64 / DAY as f64)
        .collect();
    let slope = |x: &[f64]| {
        sen_slope_xy(x, &ys, 0.90).ok().map(|s| Slope {
            estimate: s.slope,
            lower: s.lower,
            upper: s.upper,
        })
    };
    v.per_cycle = slope(&cs);
    v.per_day = slope(&ts);
    let effs: Vec<f64> = window
        .windows(2)
        .filter_map(|w| {
            let (a, b) = (w[0].1, w[1].1);
            let dq = oriented(b.value, b.higher_is_better) - oriented(a.value, a.higher_is_better);
            b.new_examples
                .filter(|n| *n > 0)
                .map(|n| dq / (n as f64 / 1000.0))
        })
        .collect();
    if !effs.is_empty() {
        v.gain_per_1k_examples = Some(effs.iter().sum::<f64>() / effs.len() as f64);
    }
    // The learning curve: every evaluation with its training size; the next cycle adds the mean
    // new examples of the window (or the mean growth of the training size when not given).
    let sized: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|(_, r)| r.total_examples.map(|n| (n as f64, r.value)))
        .collect();
    let news: Vec<f64> = window
        .iter()
        .filter_map(|(_, r)| r.new_examples.map(|n| n as f64))
        .collect();
    let new_per_cycle = if news.is_empty() {
        let w: Vec<f64> = sized[sized.len().saturating_sub(cfg.k)..]
            .iter()
            .map(|p| p.0)
            .collect();
        (w.len() >= 2).then(|| (w[w.len() - 1] - w[0]) / (w.len() - 1) as f64)
    } else {
        Some(news.iter().sum::<f64>() / news.len() as f64)
    };
    v.learning_curve = learning_curve::forecast(&sized, v.higher_is_better, new_per_cycle);
    // Loop latency: the first deploy of the evaluated version at or after its data cutoff.
    let mut lat = Vec::new();
    for (_, r) in &rows {
        let Some(cut_us) = r.cutoff_us else {
            continue;
        };
        let deployed = inp
            .deploys
            .iter()
            .filter(|d| d.model.version == r.version && d.occurred_at_us >= cut_us)
            .filter(|d| d.occurred_at_secs() < end)
            .map(|d| d.occurred_at_us)
            .min();
        if let Some(d) = deployed {
            lat.push((d - cut_us) as f64 / 1e6);
        }
    }
    if !lat.is_empty() {
        let mut recent: Vec<f64> = lat[lat.len().saturating_sub(cfg.k)..].to_vec();
        recent.sort_by(f64::total_cmp);
        let n = recent.len();
        v.loop_latency_seconds = Some(if n % 2 == 1 {
            recent[n / 2]
        } else {
            (recent[n / 2 - 1] + recent[n / 2]) / 2.0
        });
    }
    v.loop_latency_series = lat;
    v
}
