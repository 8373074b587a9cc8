//! The plateau rule for one arc of the loop (docs/STATISTICS.md, plateau rule), as a pure
//! state machine evaluated after every new point of a series (an evaluation cycle, a week of
//! usable feedback...):
//!
//! * window: the last `k` points (default 8; at least 6, else `Insufficient`);
//! * two views of the trend, either of which can raise a state:
//!   - the **window** view: Mann–Kendall and the 90 % Sen interval over the last `k` points
//!     (sees slow, noisy trends; needs most of the window to have changed);
//!   - the **recent** view: the mean gain of the last 2 steps, `ḡ = (y_t − y_{t−2}) / 2`, judged
//!     against the series' own noise σ̂ (from its second differences, [`noise_sigma`]). Its
//!     standard error is σ̂/√2. It sees a change two steps after it starts.
//! * **REGRESSING**, on two consecutive evaluations, when either
//!   - (window) Mann–Kendall finds a significant downward trend (one-sided p < 0.05), the upper
//!     bound of the 90 % Sen interval is below 0 and the slope loses at least δ_min per step, or
//!   - (recent) `ḡ + 3·σ̂/√2 < −δ_min`: the last two steps lost more than δ_min, three standard
//!     errors beyond noise;
//!
//!   without any scale (no δ_min and too few points to know the noise) there is no REGRESSING.
//!   Measured rates are in the tests below and in docs/STATISTICS.md.
//! * **SLOWING**: no significant upward trend over the window (one-sided p_up ≥ 0.05), or the
//!   first evaluation that meets the plateau condition;
//! * **PLATEAU**: the plateau condition on two consecutive evaluations (the first reports
//!   SLOWING): either (window) SLOWING and the upper bound of the 90 % Sen interval is below the
//!   minimum worthwhile gain δ_min, or (recent, from 10 points on) the mean gain of the last two
//!   or of the last three steps is below δ_min;
//! * a PLATEAU clears only when the lower bound of the 90 % interval exceeds 1.5·δ_min
//!   (hysteresis, so noise does not flap the state), or when the series is reset (a new
//!   evaluation set);
//! * **OK** otherwise.
//!
//! δ_min is configured per metric; where it is not, it defaults to 0.1 × the median per-step gain
//! of the first `k` points of the series, and the evaluation says it was defaulted. When those
//! early gains were not clearly above the noise (the median gain under 3 σ̂), the default is
//! raised to σ̂: on a series that never improved there is no other scale, and a change smaller
//! than the noise per step is not one to act on.
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
    /// The recent view: mean gain of the last two steps and the series' noise σ̂.
    pub recent_gain: Option<f64>,
    pub noise: Option<f64>,
    /// Index (into the whole series) of the first point after the estimated slowdown.
    pub since_index: Option<usize>,
    pub memory: Memory,
}

pub const DEFAULT_K: usize = 8;
pub const MIN_POINTS: usize = 6;
/// Steps of the recent view.
pub const RECENT_STEPS: usize = 2;

/// The noise of a series around its trend, from the second differences of its last 20 points
/// (a second difference of independent noise has variance 6σ²; a straight trend gives 0 and
/// steadily shrinking gains a small constant): the larger of two estimates, 1.4826 × their
/// median absolute deviation / √6 (robust) and their root mean square without the two largest,
/// × 1.3 for the trimming, / √6 (steadier on few points; a bend in the trend, such as the start
/// of a plateau or a decline, is one or two large values, which the trimming drops). The larger
/// one, because an estimate that is too small would read noise as a loss, while one that is too
/// large only makes a loss harder to call. `None` with fewer than 8 second differences (the
/// recent view stays off on series shorter than 10 points).
pub fn noise_sigma(series: &[f64]) -> Option<f64> {
    let tail = &series[series.len().saturating_sub(20)..];
    let mut d2: Vec<f64> = tail.windows(3).map(|w| w[2] - 2.0 * w[1] + w[0]).collect();
    if d2.len() < 8 {
        return None;
    }
    let mut sq: Vec<f64> = d2.iter().map(|x| x * x).collect();
    sq.sort_by(f64::total_cmp);
    let kept = &sq[..sq.len() - 2];
    let trimmed = 1.3 * (kept.iter().sum::<f64>() / kept.len() as f64).sqrt();
    let m = median(&mut d2.clone())?;
    let mut dev: Vec<f64> = d2.iter_mut().map(|x| (*x - m).abs()).collect();
    let mad = 1.4826 * median(&mut dev)?;
    Some(mad.max(trimmed) / 6f64.sqrt())
}

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
        recent_gain: None,
        noise: None,
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
    let slowing = mk.p_up >= 0.05;
    let sigma = noise_sigma(series);
    // The recent view.
    let n = series.len();
    let mean_gain =
        |steps: usize| (n > steps).then(|| (series[n - 1] - series[n - 1 - steps]) / steps as f64);
    let recent = mean_gain(RECENT_STEPS);
    let recent3 = mean_gain(RECENT_STEPS + 1).filter(|_| sigma.is_some());
    // A defaulted δ_min is raised to the noise per step σ̂: a gain or a loss smaller than the
    // series' own noise is not one to act on, and a series that never improved has no other
    // scale. A configured δ_min is used as it is.
    // The early gains were clearly above the noise: they set the scale. Otherwise (a series that
    // never improved, or by less than its noise), the noise does.
    let early_above_noise = match (delta, sigma) {
        (Some(dm), Some(s)) => 10.0 * dm >= 3.0 * s,
        (Some(_), None) => true,
        (None, _) => false,
    };
    let d = if defaulted && !early_above_noise {
        delta.unwrap_or(0.0).max(sigma.unwrap_or(0.0))
    } else {
        delta.unwrap_or(0.0)
    };
    ev.delta_min = Some(d).filter(|x| *x > 0.0).or(delta);
    // A decline is judged with a scale: δ_min, or the noise (from 10 points), or a window in
    // which every step lost and Mann–Kendall is very sure (p < 0.01; on noise, seven losses in
    // a row have a chance of 1 in 5,040).
    let all_down = window.windows(2).all(|w| w[1] < w[0]);
    let scale_known = d > 0.0 || sigma.is_some() || (all_down && mk.p_down < 0.01);
    ev.recent_gain = recent;
    ev.noise = sigma;
    // The recent view needs the noise estimate (series of 10 points and more).
    let recent = recent.filter(|_| sigma.is_some());
    let se = sigma.unwrap_or(0.0) / (RECENT_STEPS as f64).sqrt();
    // Flat: the last two steps gained less than δ_min (the point estimate; two consecutive
    // evaluations are asked for, and the first only says SLOWING).
    // Losing: beyond three standard errors of noise, by more than the scale.
    let recent_loss = scale_known && recent.is_some_and(|g| g + 3.0 * se < -d);
    // Flat, not falling: the mean gain of the last two or three steps is under δ_min and the
    // last two are no significant loss.
    let recent_flat =
        !recent_loss && (recent.is_some_and(|g| g < d) || recent3.is_some_and(|g| g < d));
    let plateau_condition = (slowing && sen.upper < d) || recent_flat;
    let streak = if plateau_condition {
        prev.plateau_streak + 1
    } else {
        0
    };
    let window_loss = scale_known && mk.p_down < 0.05 && sen.upper < 0.0 && sen.slope <= -d;
    let regress_streak = if window_loss || recent_loss {
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
    } else if slowing || plateau_condition || regress_streak == 1 {
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

/// The rule on simulated evaluation series, many seeds: detection delays and false alarms as
/// measured (docs/STATISTICS.md reports them; `cargo test plateau_rule_measured -- --nocapture`
/// prints them).
#[cfg(test)]
mod measured {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    fn states(series: &[f64]) -> Vec<ArcState> {
        let mut mem = Memory::default();
        (1..=series.len())
            .map(|n| {
                let ev = evaluate(&series[..n], None, DEFAULT_K, mem);
                mem = ev.memory;
                ev.state
            })
            .collect()
    }

    /// Early gains `g0` shrinking by 15 % a cycle for `rise` cycles, then `after(c)` per cycle
    /// (c counted from the end of the rise), plus normal noise σ.
    fn series(
        seed: u64,
        g0: f64,
        sigma: f64,
        rise: usize,
        len: usize,
        after: impl Fn(usize) -> f64,
    ) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let noise = Normal::new(0.0, sigma).unwrap_or_else(|_| unreachable!("valid sigma"));
        let mut level = 0.6;
        (1..=len)
            .map(|c| {
                if c > 1 {
                    level += if c <= rise {
                        g0 * 0.85f64.powi(c as i32 - 2)
                    } else {
                        after(c - rise)
                    };
                }
                level + noise.sample(&mut rng)
            })
            .collect()
    }

    /// The rule before the recent view (window only, δ_min as defaulted), for comparison.
    fn old_states(series: &[f64]) -> Vec<ArcState> {
        let mut prev = Memory::default();
        (1..=series.len())
            .map(|n| {
                let s = &series[..n];
                let window = &s[n.saturating_sub(DEFAULT_K)..];
                if window.len() < MIN_POINTS {
                    return ArcState::Insufficient;
                }
                let d = default_delta_min(s, DEFAULT_K).unwrap_or(0.0);
                let (Ok(mk), Ok(sen)) = (mann_kendall(window), sen_slope(window, 0.90)) else {
                    return ArcState::Insufficient;
                };
                let slowing = mk.p_up >= 0.05;
                let pc = slowing && sen.upper < d;
                let streak = if pc { prev.plateau_streak + 1 } else { 0 };
                let rs = if mk.p_down < 0.05 && sen.upper < 0.0 && sen.slope <= -d {
                    prev.regress_streak + 1
                } else {
                    0
                };
                let state = if rs >= 2 {
                    ArcState::Regressing
                } else if (prev.state == Some(ArcState::Plateau) && sen.lower <= 1.5 * d)
                    || (pc && streak >= 2)
                {
                    ArcState::Plateau
                } else if slowing {
                    ArcState::Slowing
                } else {
                    ArcState::Ok
                };
                prev = Memory {
                    state: Some(state),
                    plateau_streak: streak,
                    regress_streak: rs,
                };
                state
            })
            .collect()
    }

    #[test]
    fn old_rule_on_the_same_series() {
        for (g0, sigma) in [(0.03, 0.001), (0.02, 0.001), (0.01, 0.0005), (0.03, 0.002)] {
            let (mut worst_p, mut worst_r, mut noise_reg, mut flappy) =
                (0usize, 0usize, 0u64, 0u64);
            for seed in 0..300u64 {
                let flat = old_states(&series(seed, g0, sigma, 8, 30, |_| 0.0));
                let at = flat
                    .iter()
                    .position(|s| *s == ArcState::Plateau)
                    .map_or(99, |i| i + 1);
                worst_p = worst_p.max(at.saturating_sub(9));
                let reg = old_states(&series(seed, g0, sigma, 9, 30, |_| -12.0 * sigma));
                let r = reg
                    .iter()
                    .position(|s| *s == ArcState::Regressing)
                    .map_or(99, |i| i + 1);
                worst_r = worst_r.max(r.saturating_sub(10));
                let mut rng = StdRng::seed_from_u64(seed + 10_000);
                let n = Normal::new(0.0, sigma).unwrap_or_else(|_| unreachable!());
                let noise: Vec<f64> = (0..60).map(|_| 0.7 + n.sample(&mut rng)).collect();
                let ns = old_states(&noise);
                noise_reg += u64::from(ns.contains(&ArcState::Regressing));
                flappy += u64::from(ns.windows(2).filter(|w| w[0] != w[1]).count() > 3);
            }
            eprintln!("OLD gains {g0} noise {sigma}: plateau worst +{worst_p}, regress worst +{worst_r}, noise REGRESSING {noise_reg}/300, flapping {flappy}/300");
        }
    }

    #[test]
    fn plateau_rule_measured_on_simulated_evaluation_series() {
        let seeds = 300u64;
        // Early gains of 0.01–0.03 a cycle (shrinking 15 % a cycle) and noise about a tenth of
        // them; the last pair is noisier (a fifth), where the delays are reported, not asserted.
        for (g0, sigma) in [(0.03, 0.001), (0.02, 0.001), (0.01, 0.0005), (0.03, 0.002)] {
            let spec = sigma <= g0 / 20.0 + 1e-12;
            // Flat from cycle 9 (cycles 1..=8 rise, the 9th adds nothing).
            let (mut worst_plateau, mut slowing_first, mut plateau_early) = (0usize, 0u64, 0u64);
            // Losing 12σ a cycle from cycle 10.
            let mut worst_regress = 0usize;
            // Noise around a flat level, 60 evaluations.
            let (mut noise_regress, mut noise_changes, mut flappy) = (0u64, 0usize, 0u64);
            // Steady gains of 10σ a cycle.
            let mut steady_left_ok = 0u64;
            for seed in 0..seeds {
                let flat = states(&series(seed, g0, sigma, 8, 30, |_| 0.0));
                let first = flat
                    .iter()
                    .position(|s| *s == ArcState::Plateau)
                    .map(|i| i + 1);
                let at = first.unwrap_or(99);
                worst_plateau = worst_plateau.max(at.saturating_sub(9));
                plateau_early += u64::from(at < 9);
                slowing_first += u64::from(at >= 2 && flat[at - 2] == ArcState::Slowing);
                let reg = states(&series(seed, g0, sigma, 9, 30, |_| -12.0 * sigma));
                let r = reg
                    .iter()
                    .position(|s| *s == ArcState::Regressing)
                    .map_or(99, |i| i + 1);
                worst_regress = worst_regress.max(r.saturating_sub(10));
                assert!(
                    !reg[..9].contains(&ArcState::Regressing),
                    "seed {seed}: {reg:?}"
                );
                let mut rng = StdRng::seed_from_u64(seed + 10_000);
                let n = Normal::new(0.0, sigma).unwrap_or_else(|_| unreachable!("valid sigma"));
                let noise: Vec<f64> = (0..60).map(|_| 0.7 + n.sample(&mut rng)).collect();
                let ns = states(&noise);
                noise_regress += u64::from(ns.contains(&ArcState::Regressing));
                let changes = ns.windows(2).filter(|w| w[0] != w[1]).count();
                noise_changes = noise_changes.max(changes);
                flappy += u64::from(changes > 3);
                let steady: Vec<f64> = (0..30)
                    .map(|c| 0.5 + 10.0 * sigma * c as f64 + n.sample(&mut rng))
                    .collect();
                steady_left_ok += u64::from(
                    states(&steady)[MIN_POINTS - 1..]
                        .iter()
                        .any(|s| *s != ArcState::Ok),
                );
            }
            eprintln!(
                "gains {g0}, noise {sigma}: PLATEAU at most {worst_plateau} cycles after the first flat one \
                 (SLOWING first in {slowing_first}/{seeds}, early {plateau_early}); REGRESSING at most \
                 {worst_regress} after the first loss; flat noise: REGRESSING in {noise_regress}/{seeds}, \
                 more than 3 state changes in {flappy}/{seeds} (at most {noise_changes}); steady gains left OK in {steady_left_ok}/{seeds}"
            );
            if spec {
                assert!(worst_plateau <= 3, "PLATEAU {worst_plateau} cycles late");
                assert!(worst_regress <= 2, "REGRESSING {worst_regress} cycles late");
            }
            assert_eq!(plateau_early, 0, "PLATEAU before the flattening");
            assert_eq!(slowing_first, seeds, "SLOWING comes before PLATEAU");
            // The rule before the recent view read flat noise as a regression in 109 of these 300
            // series and flapped (> 3 changes) in 158 (`old_rule_on_the_same_series`).
            assert!(
                noise_regress <= 6,
                "flat noise read as a regression in {noise_regress}/{seeds}"
            );
            assert!(
                flappy <= 30,
                "flat noise flapped in {flappy}/{seeds} series"
            );
            assert_eq!(steady_left_ok, 0, "a steadily improving series left OK");
        }
    }
}
