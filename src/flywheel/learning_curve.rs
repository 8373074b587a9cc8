//! The learning curve of a model: its evaluation metric against the training examples it was
//! trained on, fitted by a saturating power law, and what the next cycle and twice the data are
//! expected to bring. Pure.
//!
//! **The model.** `q(n) = q∞ − a · n^(−b)` for a metric that grows with data (a metric where lower
//! is better is turned around first), with a > 0 and 0 < b ≤ 3: the gain of each new example
//! shrinks, and q approaches the ceiling q∞. It is the usual form of learning curves and scaling
//! laws (error = c + a·n^(−b)).
//!
//! **The fit.** For a fixed exponent b the model is linear in (q∞, a), so ordinary least squares
//! gives them exactly; b is chosen to minimise the residual sum of squares, on a grid of 300
//! exponents followed by a golden-section refinement. Profiling b this way is stable on 5–20
//! points where a three-parameter Gauss–Newton fit (scipy's `curve_fit`) often wanders (a and b
//! trade off against each other). Fewer than 5 points, or fewer than 3 distinct amounts of data,
//! is too few: there is no fit and the forecast says why.
//!
//! **The intervals.** A residual bootstrap (the fitted curve plus resampled residuals, refitted
//! 200 times from a fixed seed, so the result is a pure function of the data): the 5th and 95th
//! percentiles of each forecast. With few points they are wide, which is the honest answer.
//!
//! **When the law does not hold.** A loop that stops gaining for other reasons (a capacity limit,
//! a stale feedback source) bends below any power law, and the fitted curve then promises gains
//! that are not coming. When the latest three evaluations all fall below the curve by more than
//! twice the series' noise on average (the noise from its second differences, as the plateau rule
//! estimates it), the fit is said not to hold (`lack_of_fit`) and no forecast is given. An
//! exponent at the edge of its range (b < 0.02: the curve is nearly logarithmic) leaves the
//! ceiling unidentified, which the note says.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Points needed for a fit.
pub const MIN_POINTS: usize = 5;

/// A forecast with its 90 % interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Expected {
    pub estimate: f64,
    /// The 90 % bootstrap interval; absent when fewer than 20 of the 200 refits succeeded.
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

/// The fitted curve `q(n) = ceiling − a · n^(−b)` (in the metric's orientation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    pub ceiling: f64,
    pub a: f64,
    pub b: f64,
    /// Root mean square of the residuals.
    pub rmse: f64,
}

impl Curve {
    pub fn at(&self, n: f64) -> f64 {
        self.ceiling - self.a * n.powf(-self.b)
    }
}

/// The learning-curve forecast of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// (training examples, metric value as measured), oldest first.
    pub points: Vec<(f64, f64)>,
    /// Whether a larger value of the metric is better; the curve is fitted to the metric turned
    /// around when not (`q = −value`).
    pub higher_is_better: bool,
    /// The fit, when there are enough points.
    pub curve: Option<Curve>,
    /// Training examples of the latest evaluated model, and of the next one (latest + the mean
    /// new examples of the last cycles).
    pub examples: Option<f64>,
    pub next_examples: Option<f64>,
    /// Expected gain of the metric (as measured, not turned around) from the next cycle, and from
    /// twice the training data of the latest model.
    pub next_cycle_gain: Option<Expected>,
    pub doubling_gain: Option<Expected>,
    /// The latest evaluations fall below the fitted curve beyond the noise: no forecast.
    pub lack_of_fit: bool,
    /// Why there is no forecast, or what limits it.
    pub note: Option<String>,
}

/// Least squares of `y ≈ c − a·x` for fixed x: (c, a, sse).
fn linear(x: &[f64], y: &[f64]) -> Option<(f64, f64, f64)> {
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let sxx: f64 = x.iter().map(|v| (v - mx) * (v - mx)).sum();
    if sxx <= 0.0 || !sxx.is_finite() {
        return None;
    }
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let slope = sxy / sxx; // y = my + slope (x − mx), so a = −slope
    let a = -slope;
    let c = my - slope * mx;
    let sse = x
        .iter()
        .zip(y)
        .map(|(xi, yi)| {
            let r = yi - (c - a * xi);
            r * r
        })
        .sum();
    Some((c, a, sse))
}

/// Fit `q = c − a·n^(−b)` by profiling b. `n` is scaled by its largest value first (so that
/// `n^(−b)` stays near 1 for every b), then a is rescaled back.
pub fn fit(n: &[f64], q: &[f64]) -> Option<Curve> {
    if n.len() != q.len() || n.len() < MIN_POINTS {
        return None;
    }
    let scale = n.iter().copied().fold(0.0f64, f64::max);
    if scale <= 0.0 || n.iter().any(|v| *v <= 0.0 || !v.is_finite()) {
        return None;
    }
    let t: Vec<f64> = n.iter().map(|v| v / scale).collect();
    let sse_at = |b: f64| -> Option<(f64, f64, f64)> {
        let x: Vec<f64> = t.iter().map(|v| v.powf(-b)).collect();
        linear(&x, q).filter(|(_, a, _)| *a > 0.0)
    };
    // Grid over b in (0, 3], then golden-section around the best.
    let mut best: Option<(f64, f64)> = None;
    for i in 1..=300 {
        let b = i as f64 * 0.01;
        if let Some((_, _, sse)) = sse_at(b) {
            if best.is_none_or(|(_, s)| sse < s) {
                best = Some((b, sse));
            }
        }
    }
    let (b0, _) = best?;
    let (mut lo, mut hi) = ((b0 - 0.01).max(1e-4), (b0 + 0.01).min(3.0));
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let f = |b: f64| sse_at(b).map_or(f64::INFINITY, |x| x.2);
    for _ in 0..60 {
        let (m1, m2) = (hi - g * (hi - lo), lo + g * (hi - lo));
        if f(m1) < f(m2) {
            hi = m2;
        } else {
            lo = m1;
        }
    }
    let b = (lo + hi) / 2.0;
    let (c, a_scaled, sse) = sse_at(b)?;
    Some(Curve {
        ceiling: c,
        // q = c − a_s·(n/scale)^(−b) = c − (a_s·scale^b)·n^(−b)
        a: a_scaled * scale.powf(b),
        b,
        rmse: (sse / n.len() as f64).sqrt(),
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let pos = p * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos - pos.floor());
    let j = (i + 1).min(sorted.len() - 1);
    sorted[i] + (sorted[j] - sorted[i]) * frac
}

/// The forecast from (training examples, metric value as measured) points, oldest first.
/// `new_examples`: the mean new examples a cycle adds (for the next cycle's forecast).
pub fn forecast(
    points: &[(f64, f64)],
    higher_is_better: bool,
    new_examples: Option<f64>,
) -> Forecast {
    let sign = if higher_is_better { 1.0 } else { -1.0 };
    let mut out = Forecast {
        points: points.to_vec(),
        higher_is_better,
        curve: None,
        examples: points.last().map(|p| p.0),
        next_examples: None,
        next_cycle_gain: None,
        doubling_gain: None,
        lack_of_fit: false,
        note: None,
    };
    let mut distinct: Vec<f64> = points.iter().map(|p| p.0).collect();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    if points.len() < MIN_POINTS || distinct.len() < 3 {
        out.note = Some(format!(
            "too few points for a learning curve: {} evaluations with training sizes ({} distinct); at least {MIN_POINTS} with 3 distinct sizes are needed",
            points.len(),
            distinct.len()
        ));
        return out;
    }
    let n: Vec<f64> = points.iter().map(|p| p.0).collect();
    let q: Vec<f64> = points.iter().map(|p| sign * p.1).collect();
    let Some(curve) = fit(&n, &q) else {
        out.note = Some(
            "the metric does not rise with the training data, so no saturating curve fits".into(),
        );
        return out;
    };
    let last = *n.last().unwrap_or(&1.0);
    let next = new_examples.filter(|x| *x > 0.0).map(|x| last + x);
    out.curve = Some(curve);
    out.next_examples = next;
    // Gains as measured: a lower-is-better metric's gain is a fall.
    let gain = |c: &Curve, to: f64| sign * (c.at(to) - c.at(last));
    let fitted: Vec<f64> = n.iter().map(|&x| curve.at(x)).collect();
    let resid: Vec<f64> = q.iter().zip(&fitted).map(|(a, b)| a - b).collect();
    // Lack of fit: the latest three evaluations all below the curve, by more than twice the noise.
    let tail = &resid[resid.len() - 3..];
    let below = tail.iter().sum::<f64>() / 3.0;
    if let Some(sigma) = super::plateau::noise_sigma(&q) {
        if tail.iter().all(|r| *r < 0.0) && below < -2.0 * sigma {
            out.lack_of_fit = true;
            out.note = Some(format!(
                "the latest 3 evaluations fall below the fitted curve by {:.4} on average (noise {sigma:.4}): the loop is gaining less than a learning curve would, so no forecast is given (the learning arc is the better guide)",
                -below
            ));
            return out;
        }
    }
    let mut rng = StdRng::seed_from_u64(0x1ea4_c0de ^ points.len() as u64);
    let (mut next_gains, mut double_gains) = (Vec::new(), Vec::new());
    for _ in 0..200 {
        let yb: Vec<f64> = fitted
            .iter()
            .map(|f| f + resid[rng.gen_range(0..resid.len())])
            .collect();
        if let Some(cb) = fit(&n, &yb) {
            if let Some(to) = next {
                next_gains.push(gain(&cb, to));
            }
            double_gains.push(gain(&cb, 2.0 * last));
        }
    }
    let interval = |estimate: f64, mut v: Vec<f64>| -> Expected {
        if v.len() < 20 {
            return Expected {
                estimate,
                lower: None,
                upper: None,
            };
        }
        v.sort_by(f64::total_cmp);
        Expected {
            estimate,
            lower: Some(percentile(&v, 0.05).min(estimate)),
            upper: Some(percentile(&v, 0.95).max(estimate)),
        }
    };
    out.next_cycle_gain = next.map(|to| interval(gain(&curve, to), next_gains));
    out.doubling_gain = Some(interval(gain(&curve, 2.0 * last), double_gains));
    if curve.b < 0.02 {
        out.note = Some(
            "the exponent is at the edge of its range (the curve is nearly logarithmic): the ceiling is not identified, and the forecasts extrapolate a log-linear trend"
                .into(),
        );
    } else if points.len() < 8 {
        out.note = Some(format!(
            "{} points: the forecast is rough (its interval says how rough)",
            points.len()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference learning curve of docs/STATISTICS.md (scipy `curve_fit` on the error
    /// e = c + a·n^(−b)): a = 3.17674, b = 0.446597, c = 0.154916; doubling 32k gains 0.0082271.
    #[test]
    fn the_reference_curve_is_recovered() {
        let n = [1e3, 2e3, 4e3, 8e3, 16e3, 32e3];
        let e = [0.300, 0.262, 0.233, 0.212, 0.197, 0.186];
        // Error is lower-is-better: fit q = −e, i.e. −e = −c − a n^−b.
        let q: Vec<f64> = e.iter().map(|x| -x).collect();
        let c = fit(&n, &q).expect("fits");
        assert!((c.b - 0.446597).abs() < 1e-3, "{c:?}");
        assert!((-c.ceiling - 0.154916).abs() < 1e-3, "{c:?}");
        assert!((c.a - 3.17674).abs() / 3.17674 < 0.01, "{c:?}");
        let f = forecast(
            &n.iter().zip(&e).map(|(a, b)| (*a, *b)).collect::<Vec<_>>(),
            false,
            Some(4e3),
        );
        let d = f.doubling_gain.expect("doubling");
        // The error falls by 0.0082 when the data doubles (a gain of −0.0082 as measured).
        assert!((d.estimate + 0.0082271).abs() < 2e-4, "{d:?}");
        let (lo, up) = (d.lower.expect("lower"), d.upper.expect("upper"));
        assert!(lo <= d.estimate && d.estimate <= up, "{d:?}");
    }

    #[test]
    fn known_parameters_are_recovered_from_noisy_points() {
        // q = 0.9 − 2·n^(−0.5), 12 points from 1k to 200k, noise 0.001 (deterministic).
        let n: Vec<f64> = (0..12).map(|i| 1000.0 * 1.6f64.powi(i)).collect();
        let pts: Vec<(f64, f64)> = n
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                (
                    x,
                    0.9 - 2.0 * x.powf(-0.5) + 0.001 * ((i as f64) * 2.3).sin(),
                )
            })
            .collect();
        let f = forecast(&pts, true, Some(10_000.0));
        let c = f.curve.expect("curve");
        assert!((c.b - 0.5).abs() < 0.05, "{c:?}");
        assert!((c.ceiling - 0.9).abs() < 0.005, "{c:?}");
        let last = n[11];
        let truth = |x: f64| 0.9 - 2.0 * x.powf(-0.5);
        let next = f.next_cycle_gain.expect("next");
        let want = truth(last + 10_000.0) - truth(last);
        assert!((next.estimate - want).abs() < 2e-4, "{next:?} vs {want}");
        let (lo, up) = (next.lower.expect("lower"), next.upper.expect("upper"));
        assert!(lo <= want + 2e-4 && want - 2e-4 <= up, "{next:?} vs {want}");
        let dbl = f.doubling_gain.expect("double");
        let want = truth(2.0 * last) - truth(last);
        assert!((dbl.estimate - want).abs() < 1e-3, "{dbl:?} vs {want}");
        assert!(f.note.is_none());
    }

    #[test]
    fn a_loop_that_stops_gaining_is_not_forecast_to_gain() {
        // Gains of 0.03 shrinking 15 % a cycle, then none from cycle 10 (noise 0.0015), with
        // 20,000 new examples a cycle: the power law bends too late and would promise more.
        let quality = |c: u64| {
            0.6 + (1..c.min(10))
                .map(|k| 0.03 * 0.85f64.powi(k as i32 - 1))
                .sum::<f64>()
        };
        let pts: Vec<(f64, f64)> = (1..=19u64)
            .map(|c| {
                (
                    20_000.0 * c as f64,
                    quality(c) + 0.0015 * ((c as f64) * 2.3).sin(),
                )
            })
            .collect();
        let f = forecast(&pts, true, Some(20_000.0));
        assert!(f.lack_of_fit, "{f:?}");
        assert!(f.next_cycle_gain.is_none() && f.doubling_gain.is_none());
        assert!(f
            .note
            .as_deref()
            .is_some_and(|n| n.contains("below the fitted curve")));
        // A power law that flattens slowly keeps its (small) forecast.
        let q = |n: f64| 0.9 - 2.0 * n.powf(-0.5);
        let pts: Vec<(f64, f64)> = (1..=14)
            .map(|c| {
                let n = 10_000.0 * c as f64;
                (n, q(n) + 0.0005 * ((c as f64) * 2.3).sin())
            })
            .collect();
        let f = forecast(&pts, true, Some(10_000.0));
        assert!(!f.lack_of_fit && f.doubling_gain.is_some(), "{f:?}");
    }

    #[test]
    fn too_few_points_or_no_rise_say_so() {
        let f = forecast(
            &[(1e3, 0.5), (2e3, 0.6), (4e3, 0.65), (8e3, 0.68)],
            true,
            None,
        );
        assert!(f.curve.is_none() && f.note.as_deref().is_some_and(|n| n.contains("too few")));
        let same: Vec<(f64, f64)> = (0..6).map(|i| (1e3, 0.5 + 0.01 * i as f64)).collect();
        assert!(forecast(&same, true, None)
            .note
            .is_some_and(|n| n.contains("distinct")));
        // Falling with more data: no saturating growth fits.
        let falling: Vec<(f64, f64)> = (1..8)
            .map(|i| (1e3 * i as f64, 0.9 - 0.01 * i as f64))
            .collect();
        let f = forecast(&falling, true, None);
        assert!(f.curve.is_none(), "{f:?}");
    }
}
