//! The plateau rule for one arc of the loop (docs/STATISTICS.md, plateau rule), as a pure
//! state machine evaluated after every new point of a series (an evaluation cycle, a week of
//! usable feedback...):
//!
//! * window: the last `k` points (default 8; at least 6, else `Insufficient`);
//! * **REGRESSING**: Mann–Kendall finds a significant downward trend (one-sided p < 0.05), the
//!   upper bound of the 90 % Sen interval is below 0, and the Sen slope loses at least δ_min per
//!   step, on two consecutive evaluations. (The reference rule has only the first two
//!   conditions; on a flat noisy series they hold by chance about once in twenty evaluations, in
//!   runs, which would page on-call for nothing. Asking for a decline at least as large as the
//!   smallest gain worth having, twice, keeps flat noise quiet.)
//! * **SLOWING**: no significant upward trend (one-sided p_up ≥ 0.05);
//! * **PLATEAU**: SLOWING and the upper bound of the 90 % Sen interval is below the minimum
//!   worthwhile gain δ_min, on two consecutive evaluations (the first one reports SLOWING);
//! * a PLATEAU clears only when the lower bound of the 90 % interval exceeds 1.5·δ_min
//!   (hysteresis, so noise does not flap the state), or when the series is reset (a new
//!   evaluation set);
//! * **OK** otherwise.
//!
//! δ_min is configured per metric; where it is not, it defaults to 0.1 × the median per-step gain
//! of the first `k` points of the series, and the evaluation says it was defaulted.
//! "Since when" is a single changepoint in the per-step gains: the split (segments of at least 3)
//! that maximises the drop in mean gain.

use crate::stats::trend::{mann_kendall, sen_slope};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ArcState {
    Insufficient,
    Ok,
    Slowing,
    Plateau,
    Regressing,
}

impl ArcState {
    /// The name as serialised and shown (`PLATEAU`).
    pub fn as_str(self) -> &'static str {
        match self {
            ArcState::Insufficient => "INSUFFICIENT",
            ArcState::Ok => "OK",
            ArcState::Slowing => "SLOWING",
            ArcState::Plateau => "PLATEAU",
            ArcState::Regressing => "REGRESSING",
        }
    }
}

/// What an evaluation remembers for the next one.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Memory {
    pub state: Option<ArcState>,
    /// Consecutive evaluations that met the plateau condition.
    pub plateau_streak: u32,
    /// Consecutive evaluations that met the regression condition.
    pub regress_streak: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub state: ArcState,
    pub window: usize,
    pub p_up: Option<f64>,
    pub p_down: Option<f64>,
    pub slope: Option<f64>,
    pub ci90_lower: Option<f64>,
    pub ci90_upper: Option<f64>,
    pub delta_min: Option<f64>,
    pub delta_min_defaulted: bool,
    /// Index (into the whole series) of the first point after the estimated slowdown.
    pub since_index: Option<usize>,
    pub memory: Memory,
}

pub const DEFAULT_K: usize = 8;
pub const MIN_POINTS: usize = 6;

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The default δ_min: 0.1 × the median per-step gain of the first `k` points (None when that is
/// not positive: a series that never improved has no natural scale).
pub fn default_delta_min(series: &[f64], k: usize) -> Option<f64> {
    let head = &series[..series.len().min(k)];
    let mut gains: Vec<f64> = head.windows(2).map(|w| w[1] - w[0]).collect();
    median(&mut gains).map(|m| 0.1 * m).filter(|d| *d > 0.0)
}

/// The single changepoint in the per-step gains that maximises the drop in mean gain.
pub fn slowdown_since(series: &[f64]) -> Option<usize> {
    let gains: Vec<f64> = series.windows(2).map(|w| w[1] - w[0]).collect();
    let n = gains.len();
    if n < 6 {
        return None;
    }
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    (3..=n - 3)
        .map(|split| (split, mean(&gains[..split]) - mean(&gains[split..])))
        .filter(|(_, drop)| *drop > 0.0)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(split, _)| split + 1)
}

/// Index of the first point after the slowdown when the series ends with a run of at least 3
/// steps each gaining less than `d` (the first point of that run's flat gains).
pub fn flat_since(series: &[f64], d: f64) -> Option<usize> {
    let steps = series
        .windows(2)
        .rev()
        .take_while(|w| w[1] - w[0] < d)
        .count();
    (steps >= 3).then(|| series.len() - steps)
}

/// Evaluate the arc after the latest point of `series` (oldest first).
pub fn evaluate(series: &[f64], delta_min: Option<f64>, k: usize, prev: Memory) -> Evaluation {
    let k = k.max(MIN_POINTS);
    let window = &series[series.len().saturating_sub(k)..];
    let (delta, defaulted) = match delta_min {
        Some(d) => (Some(d), false),
        None => (default_delta_min(series, k), true),
    };
    let mut ev = Evaluation {
        state: ArcState::Insufficient,
        window: window.len(),
        p_up: None,
        p_down: None,
        slope: None,
        ci90_lower: None,
        ci90_upper: None,
        delta_min: delta,
        delta_min_defaulted: defaulted,
        since_index: None,
        memory: Memory::default(),
    };
    if window.len() < MIN_POINTS {
        return ev;
    }
    let (Ok(mk), Ok(sen)) = (mann_kendall(window), sen_slope(window, 0.90)) else {
        return ev;
    };
    ev.p_up = Some(mk.p_up);
    ev.p_down = Some(mk.p_down);
    ev.slope = Some(sen.slope);
    ev.ci90_lower = Some(sen.lower);
    ev.ci90_upper = Some(sen.upper);
    let d = delta.unwrap_or(0.0);
    let slowing = mk.p_up >= 0.05;
    let plateau_condition = slowing && sen.upper < d;
    let streak = if plateau_condition {
        prev.plateau_streak + 1
    } else {
        0
    };
    let regress_streak = if mk.p_down < 0.05 && sen.upper < 0.0 && sen.slope <= -d {
        prev.regress_streak + 1
    } else {
        0
    };
    let cleared = sen.lower > 1.5 * d;
    let state = if regress_streak >= 2 {
        ArcState::Regressing
    } else if (prev.state == Some(ArcState::Plateau) && !cleared)
        || (plateau_condition && streak >= 2)
    {
        ArcState::Plateau
    } else if slowing {
        ArcState::Slowing
    } else {
        ArcState::Ok
    };
    if matches!(
        state,
        ArcState::Plateau | ArcState::Slowing | ArcState::Regressing
    ) {
        // Since when: for a plateau, the start of the final run of steps that each gained less
        // than δ_min (what the reader means by "flat since"); otherwise, or when that run is
        // shorter than 3 steps, the changepoint of the per-step gains.
        let flat = (state == ArcState::Plateau)
            .then(|| flat_since(series, d))
            .flatten();
        ev.since_index = flat.or_else(|| slowdown_since(series));
    }
    ev.state = state;
    ev.memory = Memory {
        state: Some(state),
        plateau_streak: streak,
        regress_streak,
    };
    ev
}

/// What to try when an arc stalls (the strategies that restart a flywheel).
pub fn advice(arc: &str, state: ArcState) -> &'static str {
    match (arc, state) {
        (_, ArcState::Ok | ArcState::Insufficient) => "",
        ("input", _) => "feedback volume has stalled: add new kinds of interaction signals, lower the friction of giving feedback (one-tap ratings, inline corrections), reach new user segments or data sources",
        ("learning", ArcState::Regressing) => "the model is getting worse on the frozen evaluation set: check recent training data for label noise, leakage or a broken pipeline before the next release",
        ("learning", _) => "model gains have flattened: more of the same data no longer helps; curate for diversity and hard cases, add new data sources or signals, or revisit the model capacity and objective",
        ("output", _) => "new versions no longer lift engagement: test whether offline gains reach users (evaluation set vs live traffic), and experiment with the product surface",
        ("loop", _) => "the loop is slowing: shorten the time from data cutoff to deploy, and look at retention of new cohorts",
        _ => "the arc has stalled: inspect the figures and recent changes",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(series: &[f64], delta: Option<f64>) -> Vec<ArcState> {
        let mut mem = Memory::default();
        (1..=series.len())
            .map(|n| {
                let ev = evaluate(&series[..n], delta, DEFAULT_K, mem);
                mem = ev.memory;
                ev.state
            })
            .collect()
    }

    #[test]
    fn golden_plateau_series() {
        // Reference values (docs/STATISTICS.md): upper bound of the 90 % interval is 0.0005.
        let x = [0.740, 0.742, 0.739, 0.741, 0.740, 0.742, 0.741, 0.740];
        let ev = evaluate(&x, Some(0.001), 8, Memory::default());
        assert_eq!(
            ev.state,
            ArcState::Slowing,
            "first evaluation meeting the rule"
        );
        assert!((ev.ci90_upper.expect("ci") - 0.0005).abs() < 1e-9);
        let ev2 = evaluate(&x, Some(0.001), 8, ev.memory);
        assert_eq!(
            ev2.state,
            ArcState::Plateau,
            "held at two consecutive evaluations"
        );
        let ev = evaluate(&x, Some(0.0003), 8, Memory::default());
        let ev = evaluate(&x, Some(0.0003), 8, ev.memory);
        assert_eq!(ev.state, ArcState::Slowing, "δ_min 0.0003: only SLOWING");
    }

    #[test]
    fn improving_series_is_ok() {
        let x = [
            0.610, 0.640, 0.660, 0.690, 0.700, 0.720, 0.730, 0.730, 0.740, 0.740,
        ];
        let states = run(&x, None);
        assert!(states[..5].iter().all(|s| *s == ArcState::Insufficient));
        assert!(states[5..].iter().all(|s| *s == ArcState::Ok), "{states:?}");
    }

    #[test]
    fn a_plateau_after_diminishing_gains_is_dated_from_the_flat_run() {
        // Gains 0.03 · 0.85^c for 9 cycles, then none: the biggest drop in mean gain is early,
        // but the flat run starts at index 10.
        let mut x = vec![0.6];
        for c in 0..9 {
            let last = *x.last().unwrap_or(&0.6);
            x.push(last + 0.03 * 0.85f64.powi(c));
        }
        let top = *x.last().unwrap_or(&0.0);
        x.extend((0..8).map(|i| top + if i % 2 == 0 { 0.0003 } else { -0.0003 }));
        assert_eq!(flat_since(&x, 0.002), Some(10));
        assert_eq!(
            flat_since(&x[..12], 0.002),
            None,
            "two flat steps are not a run"
        );
    }

    #[test]
    fn flattening_is_plateau_within_two_evaluations_and_not_before() {
        // Steady gains of 0.01 for 12 cycles, then flat (with tiny noise) from cycle 12 on.
        let mut x: Vec<f64> = (0..12).map(|i| 0.5 + 0.01 * i as f64).collect();
        let top = x[11];
        for i in 0..12 {
            x.push(top + if i % 2 == 0 { 0.0002 } else { -0.0002 });
        }
        let states = run(&x, Some(0.002));
        assert!(
            states[5..12].iter().all(|s| *s == ArcState::Ok),
            "{states:?}"
        );
        let first_plateau = states
            .iter()
            .position(|s| *s == ArcState::Plateau)
            .expect("plateau");
        // The window needs enough flat points for the upper bound to fall under δ_min; then two
        // evaluations. It must never come while the series still improves.
        assert!(first_plateau > 12, "{states:?}");
        assert!(
            states[first_plateau..]
                .iter()
                .all(|s| *s == ArcState::Plateau),
            "{states:?}"
        );
        let mem = Memory {
            state: Some(ArcState::Plateau),
            plateau_streak: 5,
            regress_streak: 0,
        };
        let ev = evaluate(&x, Some(0.002), DEFAULT_K, mem);
        assert_eq!(ev.since_index, Some(12), "changepoint at the flattening");
    }

    #[test]
    fn regressing_series_is_regressing() {
        let x: Vec<f64> = (0..10).map(|i| 0.8 - 0.01 * i as f64).collect();
        assert_eq!(*run(&x, None).last().expect("state"), ArcState::Regressing);
    }

    #[test]
    fn noise_without_trend_does_not_flap() {
        // Deterministic pseudo-noise around a flat level.
        let mut s = 42u64;
        let x: Vec<f64> = (0..60)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                0.7 + ((s >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 0.004
            })
            .collect();
        let states = run(&x, Some(0.001));
        let changes = states.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(changes <= 3, "{changes} state changes: {states:?}");
        assert!(!states.contains(&ArcState::Regressing), "{states:?}");
    }

    #[test]
    fn delta_min_defaults_from_early_gains() {
        let x = [0.5, 0.52, 0.54, 0.56, 0.58, 0.60, 0.60, 0.60];
        assert!((default_delta_min(&x, 8).expect("delta") - 0.002).abs() < 1e-12);
        assert_eq!(default_delta_min(&[0.5, 0.5, 0.5], 8), None);
        let ev = evaluate(&x, None, 8, Memory::default());
        assert!(ev.delta_min_defaulted);
    }
}
