//! The state of each arc of the loop (input, learning, output, loop) from the plateau rule of
//! [`crate::flywheel::plateau`] replayed over its series, and the one-line verdict.

use super::{Arc, HealthConfig, Inputs, Retention, Uplift, UpliftMetric, Velocity, WEEK};
use crate::clock::rfc3339_secs;
use crate::events::{EventType, Stage};
use crate::flywheel::plateau::{self, ArcState, Evaluation, Memory};
use crate::stats::trend::mann_kendall;
use std::collections::BTreeMap;

pub(super) fn severity(s: ArcState) -> u8 {
    match s {
        ArcState::Insufficient => 0,
        ArcState::Ok => 1,
        ArcState::Slowing => 2,
        ArcState::Plateau => 3,
        ArcState::Regressing => 4,
    }
}

/// Replay the plateau rule over every prefix of `series` (a pure function of the series).
pub(super) fn replay(series: &[f64], delta_min: Option<f64>, k: usize) -> Option<Evaluation> {
    let mut mem = Memory::default();
    let mut last = None;
    for n in plateau::MIN_POINTS.min(series.len())..=series.len() {
        if n == 0 {
            continue;
        }
        let ev = plateau::evaluate(&series[..n], delta_min, k, mem);
        mem = ev.memory;
        last = Some(ev);
    }
    last
}

/// The arcs, the worst state, and the verdict.
pub(super) fn arcs(
    cfg: &HealthConfig,
    inp: &Inputs,
    velocity: &Velocity,
    uplift: &Uplift,
    retention: &Retention,
    violations: u64,
) -> (BTreeMap<&'static str, Arc>, ArcState, String) {
    let end = inp.end;
    let mut arcs = BTreeMap::new();
    arcs.insert("input", input_arc(inp, end));
    arcs.insert("learning", learning_arc(cfg, velocity));
    let uplift_arc = output_arc(cfg, uplift);
    let output = match inp.performance.as_ref().and_then(performance_arc) {
        Some(p) if severity(p.state) >= severity(uplift_arc.state) => Arc {
            why: format!("{}; {}", p.why, uplift_arc.why),
            ..p
        },
        Some(p) => Arc {
            why: format!("{}; {}", uplift_arc.why, p.why),
            ..uplift_arc
        },
        None => uplift_arc,
    };
    arcs.insert("output", output);
    arcs.insert("loop", loop_arc(velocity, retention));
    let overall = arcs
        .values()
        .map(|a| a.state)
        .max_by_key(|s| severity(*s))
        .unwrap_or(ArcState::Insufficient);
    let stalled: Vec<String> = arcs
        .iter()
        .filter(|(_, a)| severity(a.state) >= 2)
        .map(|(n, a)| format!("{n} {:?}", a.state).to_uppercase())
        .collect();
    let verdict = if violations > 0 {
        format!(
            "PRIVACY VIOLATION: {violations} items used in training without training consent; stop the training pipeline and purge them"
        )
    } else if stalled.is_empty() {
        let unknown: Vec<&str> = arcs
            .iter()
            .filter(|(_, a)| a.state == ArcState::Insufficient)
            .map(|(n, _)| *n)
            .collect();
        let ok: Vec<&str> = arcs
            .iter()
            .filter(|(_, a)| a.state == ArcState::Ok)
            .map(|(n, _)| *n)
            .collect();
        if unknown.len() * 2 >= arcs.len() {
            // Most arcs cannot be judged: saying "turning" would claim what the data cannot show.
            format!(
                "Not enough data yet to say whether the flywheel is turning: the {} arc{} lack{} data{}",
                unknown.join(", "),
                if unknown.len() == 1 { "" } else { "s" },
                if unknown.len() == 1 { "s" } else { "" },
                if ok.is_empty() {
                    " (send model_eval, feedback and data_lifecycle events)".to_owned()
                } else {
                    format!("; {} OK so far", ok.join(", "))
                }
            )
        } else if severity(overall) >= 2 || !unknown.is_empty() {
            format!(
                "The flywheel is turning: {} OK ({} not judged yet: too little data)",
                ok.join(", "),
                unknown.join(", ")
            )
        } else {
            "The flywheel is turning: every arc is OK".to_owned()
        }
    } else {
        let worst = arcs
            .iter()
            .max_by_key(|(_, a)| severity(a.state))
            .map(|(n, a)| (*n, a.advice))
            .unwrap_or(("", ""));
        format!(
            "The flywheel is stalling ({}): {}",
            stalled.join(", "),
            worst.1
        )
    };
    (arcs, overall, verdict)
}

fn describe(ev: &Evaluation, unit: &str) -> String {
    match (ev.slope, ev.ci90_lower, ev.ci90_upper, ev.p_up) {
        (Some(s), Some(lo), Some(up), Some(p)) => format!(
            "Sen slope {s:.4} {unit} (90% CI {lo:.4} to {up:.4}), Mann-Kendall p_up {p:.3} over the last {} points; δ_min {}{}",
            ev.window,
            ev.delta_min.map_or("n/a".to_owned(), |d| format!("{d:.4}")),
            if ev.delta_min_defaulted { " (defaulted: 0.1 × median early gain)" } else { "" }
        ),
        _ => format!("{} points; the rule needs at least {}", ev.window, plateau::MIN_POINTS),
    }
}

fn arc_from(
    name: &'static str,
    ev: Option<Evaluation>,
    unit: &str,
    since: impl Fn(usize) -> String,
) -> Arc {
    match ev {
        Some(ev) => Arc {
            state: ev.state,
            why: describe(&ev, unit),
            since: ev.since_index.map(since),
            advice: plateau::advice(name, ev.state),
            evaluation: Some(ev),
        },
        None => Arc {
            state: ArcState::Insufficient,
            why: "no data yet".into(),
            since: None,
            advice: "",
            evaluation: None,
        },
    }
}

fn input_arc(inp: &Inputs, end: i64) -> Arc {
    // Weekly usable volume over complete weeks ending at `end` (curated, else feedback events).
    let weeks = 12i64;
    let has_funnel = inp.funnel.iter().any(|f| f.stage == Stage::Curated);
    let series: Vec<f64> = (0..weeks)
        .rev()
        .map(|w| {
            let r = (end - (w + 1) * WEEK, end - w * WEEK);
            if has_funnel {
                inp.funnel
                    .iter()
                    .filter(|f| f.stage == Stage::Curated && f.day >= r.0 && f.day < r.1)
                    .map(|f| f.n as f64)
                    .sum()
            } else {
                inp.counts
                    .iter()
                    .filter(|c| {
                        c.event_type == EventType::Feedback && c.bucket >= r.0 && c.bucket < r.1
                    })
                    .map(|c| c.n as f64)
                    .sum()
            }
        })
        .collect();
    // Leading empty weeks are before the model existed.
    let first = series.iter().position(|x| *x > 0.0).unwrap_or(series.len());
    let series = &series[first..];
    let ev = replay(series, Some(0.0), plateau::DEFAULT_K);
    let offset = weeks as usize - series.len();
    let mut arc = arc_from("input", ev, "items/week", |i| {
        rfc3339_secs(end - (weeks - (offset + i) as i64) * WEEK)
    });
    // Starvation: the last week against the mean λ₀ of the 4 before it fell
    // below 70 % and is improbable under Poisson(λ₀) (both: counts are overdispersed).
    let mut drop = String::new();
    if series.len() >= 5 {
        let x = series[series.len() - 1];
        let lambda = series[series.len() - 5..series.len() - 1]
            .iter()
            .sum::<f64>()
            / 4.0;
        if lambda > 0.0 {
            use statrs::distribution::{DiscreteCDF, Poisson};
            let p = Poisson::new(lambda).map(|d| d.cdf(x as u64)).unwrap_or(1.0);
            let ratio = x / lambda;
            drop = format!(
                "; last week {x:.0} is {:.0} % of the 4-week mean {lambda:.0} (Poisson lower tail p = {p:.2e})",
                ratio * 100.0
            );
            if ratio < 0.7 && p < 0.01 && arc.state != ArcState::Regressing {
                arc.state = ArcState::Plateau;
                arc.advice = plateau::advice("input", ArcState::Plateau);
                arc.since = Some(rfc3339_secs(end - WEEK));
                drop.push_str(": the input is starved");
            }
        }
    }
    arc.why = format!(
        "weekly {} {}: {}{drop}",
        if has_funnel {
            "usable (curated) items"
        } else {
            "feedback events"
        },
        series
            .iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        arc.why
    );
    arc
}

fn learning_arc(cfg: &HealthConfig, v: &Velocity) -> Arc {
    let Some(metric) = &v.metric else {
        return arc_from("learning", None, "", |_| String::new());
    };
    let sign = if v.higher_is_better { 1.0 } else { -1.0 };
    let oriented: Vec<f64> = v.series.iter().map(|(_, x)| sign * x).collect();
    let ev = replay(&oriented, cfg.delta_min.get(metric).copied(), cfg.k);
    let cycles: Vec<u64> = v.series.iter().map(|(c, _)| *c).collect();
    arc_from("learning", ev, &format!("{metric}/cycle"), |i| {
        format!("cycle {}", cycles.get(i).copied().unwrap_or(0))
    })
}

fn output_arc(cfg: &HealthConfig, u: &Uplift) -> Arc {
    let usable: Vec<&(String, UpliftMetric)> = u
        .releases
        .iter()
        .filter(|(_, m)| m.decision != "insufficient_data")
        .collect();
    let Some((ver, last)) = usable.last() else {
        return Arc {
            state: ArcState::Insufficient,
            why: "fewer than two versions with enough explicit feedback".into(),
            since: None,
            advice: "",
            evaluation: None,
        };
    };
    let up = last.upper.unwrap_or(0.0);
    let lo = last.lower.unwrap_or(0.0);
    let last3: Vec<&&(String, UpliftMetric)> = usable.iter().rev().take(3).collect();
    let state = if up < 0.0 {
        ArcState::Regressing
    } else if last3.len() == 3
        && last3
            .iter()
            .all(|(_, m)| m.upper.is_some_and(|x| x < cfg.uplift_delta_min))
    {
        ArcState::Plateau
    } else if lo <= 0.0 {
        ArcState::Slowing
    } else {
        ArcState::Ok
    };
    Arc {
        state,
        why: format!(
            "positive-share uplift of {ver} over the previous version: {:+.4} (95% CI {lo:+.4} to {up:+.4}, n {} vs {}); last {} releases' upper bounds {} (δ_min {})",
            last.difference.unwrap_or(0.0),
            last.n_current,
            last.n_previous,
            last3.len(),
            last3.iter().map(|(_, m)| format!("{:+.4}", m.upper.unwrap_or(0.0))).collect::<Vec<_>>().join(", "),
            cfg.uplift_delta_min
        ),
        since: (severity(state) >= 2).then(|| ver.clone()),
        advice: plateau::advice("output", state),
        evaluation: None,
    }
}

/// The output arc as model performance sees it: REGRESSING when the labels of the newest
/// well-labelled day show a significant drop against the reference, SLOWING when only the
/// estimate (before the labels) does, OK when neither; `None` without a decision.
fn performance_arc(p: &crate::performance::Performance) -> Option<Arc> {
    let realized = p
        .windows
        .iter()
        .rev()
        .find_map(|w| w.degraded_realized.as_ref().map(|d| (w, d)));
    let estimated = p
        .windows
        .last()
        .and_then(|w| w.degraded_estimated.as_ref().map(|d| (w, d)));
    let describe = |kind: &str,
                    w: &crate::performance::WindowPerformance,
                    d: &crate::performance::Degradation| {
        format!(
            "{kind} {} on {}: {:.4} against {:.4} in the reference (p = {:.2e})",
            d.metric,
            rfc3339_secs(w.start).get(..10).unwrap_or_default(),
            d.value,
            d.reference,
            d.p_value
        )
    };
    let (state, since, why) = match (realized, estimated) {
        (Some((w, d)), _) if d.degraded => (
            ArcState::Regressing,
            Some(rfc3339_secs(w.start)),
            describe("realized", w, d),
        ),
        (_, Some((w, d))) if d.degraded => (
            ArcState::Slowing,
            Some(rfc3339_secs(w.start)),
            describe("estimated (labels pending)", w, d),
        ),
        (None, None) => return None,
        (r, e) => (
            ArcState::Ok,
            None,
            r.map(|(w, d)| describe("realized", w, d))
                .or_else(|| e.map(|(w, d)| describe("estimated", w, d)))
                .unwrap_or_default(),
        ),
    };
    Some(Arc {
        state,
        why: format!("model performance: {why}"),
        since,
        advice: plateau::advice("output", state),
        evaluation: None,
    })
}

fn loop_arc(v: &Velocity, r: &Retention) -> Arc {
    let ret = replay(&r.d7_by_week, Some(0.0), plateau::DEFAULT_K);
    let lat_up = (v.loop_latency_series.len() >= plateau::MIN_POINTS)
        .then(|| mann_kendall(&v.loop_latency_series).ok())
        .flatten();
    let retention_regressing = ret
        .as_ref()
        .is_some_and(|e| e.state == ArcState::Regressing);
    let latency_rising = lat_up.as_ref().is_some_and(|m| m.p_up < 0.05);
    let state = if retention_regressing {
        ArcState::Regressing
    } else if latency_rising {
        ArcState::Slowing
    } else if ret.is_some() || lat_up.is_some() {
        ArcState::Ok
    } else {
        ArcState::Insufficient
    };
    let why = format!(
        "weekly D7 retention {}; loop latency {}",
        ret.as_ref().map_or(
            "n/a (fewer than 6 complete weekly cohorts)".into(),
            |e| format!("{:?}: {}", e.state, describe(e, "per week"))
        ),
        lat_up
            .as_ref()
            .map_or("n/a (fewer than 6 deployed cycles)".into(), |m| format!(
                "Mann-Kendall p_up {:.3} over {} cycles (median {:.0} s)",
                m.p_up,
                v.loop_latency_series.len(),
                v.loop_latency_seconds.unwrap_or(0.0)
            )),
    );
    Arc {
        state,
        why,
        since: None,
        advice: plateau::advice("loop", state),
        evaluation: ret,
    }
}
