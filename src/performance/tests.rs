use super::*;
use crate::summary::kll::DEFAULT_K;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Distribution};

const END: i64 = 100 * DAY;

/// Summary rows of a simulated, perfectly calibrated binary classifier: per day `n` scored
/// predictions with scores from Beta(a, b), each labelled positive with probability equal to its
/// score; the outcomes of a day arrive for `labelled_share` of them.
struct Sim {
    rng: StdRng,
    rows: Vec<SummaryRow>,
}

impl Sim {
    fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            rows: Vec::new(),
        }
    }

    /// Returns the accuracy at 0.5 of every prediction of the day (labelled or not).
    fn day(&mut self, day_start: i64, n: usize, (a, b): (f64, f64), labelled_share: f64) -> f64 {
        let beta = Beta::new(a, b).expect("valid beta");
        let mut scores = FeatureSummary::new(DEFAULT_K, 16);
        let mut pos = FeatureSummary::new(DEFAULT_K, 16);
        let mut neg = FeatureSummary::new(DEFAULT_K, 16);
        let mut delay = FeatureSummary::new(DEFAULT_K, 16);
        let mut correct = 0usize;
        for _ in 0..n {
            let s: f64 = beta.sample(&mut self.rng);
            scores.add_number(s);
            let y = self.rng.gen::<f64>() < s;
            if (s >= 0.5) == y {
                correct += 1;
            }
            if self.rng.gen::<f64>() < labelled_share {
                if y {
                    pos.add_number(s)
                } else {
                    neg.add_number(s)
                }
                delay.add_number(self.rng.gen_range(600.0..172_800.0));
            }
        }
        let row = |class, name: &str, summary| SummaryRow {
            version: "v1".into(),
            class,
            name: name.into(),
            bucket: day_start + 3600,
            summary,
        };
        self.rows
            .push(row(SeriesClass::Prediction, "score", scores));
        for (name, s) in [
            (outcome::POSITIVE, pos),
            (outcome::NEGATIVE, neg),
            (outcome::DELAY, delay),
        ] {
            if s.moments.n > 0 {
                self.rows.push(row(SeriesClass::Outcome, name, s));
            }
        }
        correct as f64 / n as f64
    }
}

#[test]
fn the_estimate_of_an_unlabelled_window_is_within_two_points_of_its_later_accuracy() {
    let config = PerformanceConfig::default();
    let (ref_start, ref_end) = config.reference(END);
    // Labelled reference: Beta(2, 2) scores, every outcome in.
    let mut sim = Sim::new(7);
    for d in 0..7 {
        sim.day(ref_start + d * DAY, 5_000, (2.0, 2.0), 1.0);
    }
    // The window: no outcome yet; same scores distribution, then a covariate shift towards
    // uncertain scores (Beta(5, 5)), which lowers accuracy.
    let stationary = sim.day(ref_end, 5_000, (2.0, 2.0), 0.0);
    let shifted = sim.day(ref_end + DAY, 5_000, (5.0, 5.0), 0.0);
    let before = compute("m", &config, END, &sim.rows);
    let w0 = &before.windows[0];
    let w1 = &before.windows[1];
    assert_eq!(before.task, Task::BinaryClassification);
    assert_eq!(w0.labelled, 0);
    assert_eq!(w0.estimate_status, EstimateStatus::Ok);
    let e0 = w0
        .estimated
        .as_ref()
        .and_then(|e| e.accuracy)
        .expect("estimate");
    let e1 = w1
        .estimated
        .as_ref()
        .and_then(|e| e.accuracy)
        .expect("estimate");
    assert!(
        (e0 - stationary).abs() <= 0.02,
        "estimated {e0:.4}, true {stationary:.4}"
    );
    assert!(
        (e1 - shifted).abs() <= 0.02,
        "estimated {e1:.4}, true {shifted:.4}"
    );
    eprintln!("stationary: estimated {e0:.4}, true {stationary:.4}; shifted: estimated {e1:.4}, true {shifted:.4}");
    // The estimate reacts to the covariate shift and flags it before any label.
    assert!(e1 < e0 - 0.05, "{e1} vs {e0}");
    assert!(w1.degraded_estimated.as_ref().is_some_and(|d| d.degraded));
    assert!(w0.degraded_estimated.as_ref().is_some_and(|d| !d.degraded));
    assert!(w1.realized.binary.is_none() && w1.degraded_realized.is_none());
}

#[test]
fn labels_that_arrive_later_update_their_window_and_measure_the_estimate() {
    let config = PerformanceConfig::default();
    let (ref_start, ref_end) = config.reference(END);
    let mut sim = Sim::new(11);
    for d in 0..7 {
        sim.day(ref_start + d * DAY, 4_000, (2.0, 3.0), 1.0);
    }
    // Every window fully labelled (the labels have "arrived").
    for d in 0..7 {
        sim.day(ref_end + d * DAY, 4_000, (2.0, 3.0), 1.0);
    }
    let p = compute("m", &config, END, &sim.rows);
    assert_eq!(p.estimation_windows, 7);
    let mae = p.estimation_mae.expect("measured");
    assert!(mae < 0.02, "mean |estimated − realized| = {mae}");
    for w in &p.windows {
        let b = w.realized.binary.as_ref().expect("realized");
        assert_eq!(w.coverage, Some(1.0));
        assert_eq!(b.labelled, w.predictions);
        // A calibrated classifier: small ECE; no degradation.
        assert!(b.calibration_error.expect("ece") < 0.05);
        assert!(w.degraded_realized.as_ref().is_some_and(|d| !d.degraded));
        let (m, p90) = (
            w.delay_median_secs.expect("delay"),
            w.delay_p90_secs.expect("p90"),
        );
        assert!(m > 60_000.0 && m < 110_000.0 && p90 > m, "{m} {p90}");
    }
}

#[test]
fn a_realized_drop_is_decided_and_a_noise_level_change_is_not() {
    let config = PerformanceConfig::default();
    let (ref_start, ref_end) = config.reference(END);
    let mut sim = Sim::new(3);
    for d in 0..7 {
        sim.day(ref_start + d * DAY, 3_000, (1.0, 1.0), 1.0);
    }
    // Day 0: same distribution (noise only). Day 1: scores pulled to 0.5: accuracy falls from
    // 0.75 to about 0.6.
    sim.day(ref_end, 3_000, (1.0, 1.0), 1.0);
    sim.day(ref_end + DAY, 3_000, (6.0, 6.0), 1.0);
    let p = compute("m", &config, END, &sim.rows);
    let d0 = p.windows[0].degraded_realized.as_ref().expect("decided");
    let d1 = p.windows[1].degraded_realized.as_ref().expect("decided");
    assert!(!d0.degraded, "{d0:?}");
    assert!(d1.degraded && d1.change < -0.1, "{d1:?}");
    // Windows without predictions have nothing.
    assert_eq!(p.windows[2].predictions, 0);
    assert!(p.windows[2].coverage.is_none());
    assert_eq!(p.windows[2].estimate_status, EstimateStatus::NoPredictions);
}

#[test]
fn without_a_labelled_reference_there_is_no_estimate() {
    let config = PerformanceConfig::default();
    let (_, ref_end) = config.reference(END);
    let mut sim = Sim::new(5);
    sim.day(ref_end, 2_000, (2.0, 2.0), 0.5);
    let p = compute("m", &config, END, &sim.rows);
    assert_eq!(p.windows[0].estimate_status, EstimateStatus::NoReference);
    assert!(p.windows[0].estimated.is_none());
    let c = p.windows[0].coverage.expect("coverage");
    assert!((c - 0.5).abs() < 0.05, "{c}");
}

#[test]
fn regression_metrics_come_from_the_error_moments() {
    let config = PerformanceConfig {
        min_labels: 2,
        ..PerformanceConfig::default()
    };
    let (_, ref_end) = config.reference(END);
    let errors = [1.0, -2.0, 3.0, -4.0];
    let mut e = FeatureSummary::new(DEFAULT_K, 16);
    let mut a = FeatureSummary::new(DEFAULT_K, 16);
    let mut d = FeatureSummary::new(DEFAULT_K, 16);
    for x in errors {
        e.add_number(x);
        a.add_number(f64::abs(x));
        d.add_number(60.0);
    }
    let row = |name: &str, summary| SummaryRow {
        version: "v".into(),
        class: SeriesClass::Outcome,
        name: name.into(),
        bucket: ref_end,
        summary,
    };
    let rows = vec![
        row(outcome::ERROR, e),
        row(outcome::ABS_ERROR, a),
        row(outcome::DELAY, d),
    ];
    let p = compute("m", &config, END, &rows);
    assert_eq!(p.task, Task::Regression);
    let r = p.windows[0]
        .realized
        .regression
        .as_ref()
        .expect("regression");
    assert_eq!(r.labelled, 4);
    assert!((r.mae - 2.5).abs() < 1e-12);
    assert!((r.bias + 0.5).abs() < 1e-12);
    assert!((r.rmse - 7.5f64.sqrt()).abs() < 1e-12);
    assert_eq!(p.windows[0].estimate_status, EstimateStatus::NotApplicable);
}

#[test]
fn the_auc_from_compacted_sketches_stays_within_its_stated_bound() {
    // 50k labelled predictions in one window: the sketches compact (k = 512); the exact AUC from
    // the raw scores is compared with the sketch's and its bound.
    let mut rng = StdRng::seed_from_u64(99);
    let beta = Beta::new(2.0, 2.0).expect("beta");
    let (mut pos_raw, mut neg_raw) = (Vec::new(), Vec::new());
    let mut pos = FeatureSummary::new(DEFAULT_K, 16);
    let mut neg = FeatureSummary::new(DEFAULT_K, 16);
    for _ in 0..50_000 {
        let s: f64 = beta.sample(&mut rng);
        if rng.gen::<f64>() < s {
            pos_raw.push(s);
            pos.add_number(s);
        } else {
            neg_raw.push(s);
            neg.add_number(s);
        }
    }
    let unit = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.iter().map(|&x| (x, 1.0)).collect::<Vec<_>>()
    };
    let exact = roc_auc(&unit(&mut pos_raw), &unit(&mut neg_raw)).expect("auc");
    let config = PerformanceConfig::default();
    let (_, ref_end) = config.reference(END);
    let row = |name: &str, summary| SummaryRow {
        version: "v".into(),
        class: SeriesClass::Outcome,
        name: name.into(),
        bucket: ref_end,
        summary,
    };
    let p = compute(
        "m",
        &config,
        END,
        &[row(outcome::POSITIVE, pos), row(outcome::NEGATIVE, neg)],
    );
    let b = p.windows[0].realized.binary.as_ref().expect("binary");
    assert!(b.roc_auc_error_bound > 0.0, "the sketches compacted");
    let from_sketch = b.roc_auc.expect("auc");
    assert!(
        (from_sketch - exact).abs() <= b.roc_auc_error_bound,
        "sketch {from_sketch}, exact {exact}, bound {}",
        b.roc_auc_error_bound
    );
}
