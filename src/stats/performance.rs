//! Classifier performance from weighted score distributions: what a mergeable summary of the
//! scores of each true class (a sorted list of `(score, weight)` pairs) allows, with no row kept.
//!
//! * [`confusion`]: the confusion matrix at a threshold (predicted positive when score ≥ t).
//! * [`roc_auc`]: the Mann–Whitney form of the ROC AUC, `P(S⁺ > S⁻) + ½ P(S⁺ = S⁻)`, equal to
//!   the trapezoidal area under the empirical ROC curve (scikit-learn's `roc_auc_score`).
//!   **Error bound**: when the two distributions are each known only within a Kolmogorov
//!   distance ε⁺, ε⁻ (a quantile sketch's rank error), the AUC computed from them is within
//!   ε⁺ + ε⁻ of the exact one: AUC = ∫ F⁻ dF⁺ (with the tie correction) is a monotone, [0, 1]
//!   bounded functional of each argument, so perturbing one CDF by at most ε in sup norm moves it
//!   by at most ε (integration by parts).
//! * [`reliability`]: a reliability diagram (equal-width score bins: mean score and positive
//!   rate per bin) and the expected calibration error `Σ n_b/N · |rate_b − mean_b|`.
//! * [`Calibration::fit`]: isotonic regression (pool-adjacent-violators) of the positive rate on
//!   the score, interpolated linearly between the pooled blocks' mean scores (scikit-learn's
//!   `IsotonicRegression` with `out_of_bounds="clip"`).
//! * [`expected_confusion`], [`expected_auc`]: confidence-based performance estimation: with a
//!   calibrated probability `c(s)` per prediction, the expected confusion matrix of a window whose
//!   labels have not arrived is `TP = Σ_{s ≥ t} c(s)`, `FP = Σ_{s ≥ t} (1 − c(s))`,
//!   `FN = Σ_{s < t} c(s)`, `TN = Σ_{s < t} (1 − c(s))` (NannyML's CBPE), and the expected AUC
//!   treats each prediction as `c(s)` of a positive and `1 − c(s)` of a negative.

/// Expected or counted confusion matrix (weights, not necessarily integers).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Confusion {
    pub tp: f64,
    pub fp: f64,
    pub tn: f64,
    #[serde(rename = "fn")]
    pub fn_: f64,
}

impl Confusion {
    pub fn total(&self) -> f64 {
        self.tp + self.fp + self.tn + self.fn_
    }
    pub fn accuracy(&self) -> Option<f64> {
        let n = self.total();
        (n > 0.0).then(|| (self.tp + self.tn) / n)
    }
    pub fn precision(&self) -> Option<f64> {
        let d = self.tp + self.fp;
        (d > 0.0).then(|| self.tp / d)
    }
    pub fn recall(&self) -> Option<f64> {
        let d = self.tp + self.fn_;
        (d > 0.0).then(|| self.tp / d)
    }
    pub fn f1(&self) -> Option<f64> {
        let d = 2.0 * self.tp + self.fp + self.fn_;
        (d > 0.0).then(|| 2.0 * self.tp / d)
    }
}

fn split_at(items: &[(f64, f64)], threshold: f64) -> (f64, f64) {
    let mut below = 0.0;
    let mut at_or_above = 0.0;
    for &(s, w) in items {
        if s >= threshold {
            at_or_above += w;
        } else {
            below += w;
        }
    }
    (below, at_or_above)
}

/// The confusion matrix at `threshold` from the scores of the positives and of the negatives.
pub fn confusion(positives: &[(f64, f64)], negatives: &[(f64, f64)], threshold: f64) -> Confusion {
    let (fn_, tp) = split_at(positives, threshold);
    let (tn, fp) = split_at(negatives, threshold);
    Confusion { tp, fp, tn, fn_ }
}

/// Weighted Mann–Whitney AUC of two weighted samples, each sorted by score ascending (ties
/// count one half); `None` when a side has no weight.
pub fn roc_auc(positives: &[(f64, f64)], negatives: &[(f64, f64)]) -> Option<f64> {
    let wp: f64 = positives.iter().map(|p| p.1).sum();
    let wn: f64 = negatives.iter().map(|p| p.1).sum();
    if wp <= 0.0 || wn <= 0.0 {
        return None;
    }
    // For each positive score: negative weight strictly below it, plus half the weight tied.
    let (mut j, mut below) = (0usize, 0.0f64);
    let mut sum = 0.0;
    let mut i = 0usize;
    while i < positives.len() {
        let s = positives[i].0;
        while j < negatives.len() && negatives[j].0 < s {
            below += negatives[j].1;
            j += 1;
        }
        let mut tied = 0.0;
        let mut k = j;
        while k < negatives.len() && negatives[k].0 == s {
            tied += negatives[k].1;
            k += 1;
        }
        // Every positive with this same score.
        let mut w = 0.0;
        while i < positives.len() && positives[i].0 == s {
            w += positives[i].1;
            i += 1;
        }
        sum += w * (below + 0.5 * tied);
    }
    Some((sum / (wp * wn)).clamp(0.0, 1.0))
}

/// One bin of a reliability diagram.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReliabilityBin {
    pub lower: f64,
    pub upper: f64,
    /// Predictions in the bin (weight).
    pub n: f64,
    /// Mean predicted probability in the bin.
    pub mean_score: f64,
    /// Observed share of positives in the bin.
    pub positive_rate: f64,
}

/// Reliability diagram over `bins` equal-width bins of [0, 1] (empty bins left out) and the
/// expected calibration error; `None` when there is no weight.
pub fn reliability(
    positives: &[(f64, f64)],
    negatives: &[(f64, f64)],
    bins: usize,
) -> Option<(Vec<ReliabilityBin>, f64)> {
    let bins = bins.max(1);
    let mut w = vec![(0.0f64, 0.0f64, 0.0f64); bins]; // (weight, Σ w·s, positive weight)
    let index = |s: f64| ((s * bins as f64).floor().max(0.0) as usize).min(bins - 1);
    for (items, positive) in [(positives, true), (negatives, false)] {
        for &(s, wt) in items {
            let b = &mut w[index(s)];
            b.0 += wt;
            b.1 += wt * s;
            if positive {
                b.2 += wt;
            }
        }
    }
    let total: f64 = w.iter().map(|b| b.0).sum();
    if total <= 0.0 {
        return None;
    }
    let mut out = Vec::new();
    let mut ece = 0.0;
    for (i, &(n, sum, pos)) in w.iter().enumerate() {
        if n <= 0.0 {
            continue;
        }
        let (mean, rate) = (sum / n, pos / n);
        ece += n / total * (rate - mean).abs();
        out.push(ReliabilityBin {
            lower: i as f64 / bins as f64,
            upper: (i + 1) as f64 / bins as f64,
            n,
            mean_score: mean,
            positive_rate: rate,
        });
    }
    Some((out, ece))
}

/// A monotone map from score to the probability of the positive class, fitted on labelled data.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Calibration {
    /// (mean score, positive rate) of each pooled block, scores ascending, rates non-decreasing.
    pub points: Vec<(f64, f64)>,
    /// The fitted data's score range: scores outside it are extrapolated (clipped).
    pub min_score: f64,
    pub max_score: f64,
}

impl Calibration {
    /// Isotonic regression of the label on the score by pool-adjacent-violators, on the labelled
    /// scores of each class (sorted ascending). Ties are pooled first. `None` without both a
    /// positive and a negative.
    pub fn fit(positives: &[(f64, f64)], negatives: &[(f64, f64)]) -> Option<Calibration> {
        let wp: f64 = positives.iter().map(|p| p.1).sum();
        let wn: f64 = negatives.iter().map(|p| p.1).sum();
        if wp <= 0.0 || wn <= 0.0 {
            return None;
        }
        // Merge the two sorted lists into blocks of equal score: (Σw, Σw·s, Σw·y).
        let mut blocks: Vec<(f64, f64, f64)> =
            Vec::with_capacity(positives.len() + negatives.len());
        let (mut i, mut j) = (0usize, 0usize);
        let mut last: Option<f64> = None;
        while i < positives.len() || j < negatives.len() {
            let take_pos =
                j >= negatives.len() || (i < positives.len() && positives[i].0 <= negatives[j].0);
            let (s, w, y) = if take_pos {
                i += 1;
                (positives[i - 1].0, positives[i - 1].1, positives[i - 1].1)
            } else {
                j += 1;
                (negatives[j - 1].0, negatives[j - 1].1, 0.0)
            };
            match blocks.last_mut() {
                Some(b) if last == Some(s) => {
                    b.0 += w;
                    b.1 += w * s;
                    b.2 += y;
                }
                _ => blocks.push((w, w * s, y)),
            }
            last = Some(s);
        }
        let min_score = blocks.first().map_or(0.0, |b| b.1 / b.0);
        let max_score = blocks.last().map_or(1.0, |b| b.1 / b.0);
        // Pool adjacent violators.
        let mut pooled: Vec<(f64, f64, f64)> = Vec::with_capacity(blocks.len());
        for b in blocks {
            pooled.push(b);
            while pooled.len() >= 2 {
                let n = pooled.len();
                let (a, c) = (pooled[n - 2], pooled[n - 1]);
                if a.2 / a.0 > c.2 / c.0 {
                    pooled.truncate(n - 2);
                    pooled.push((a.0 + c.0, a.1 + c.1, a.2 + c.2));
                } else {
                    break;
                }
            }
        }
        Some(Calibration {
            points: pooled.iter().map(|b| (b.1 / b.0, b.2 / b.0)).collect(),
            min_score,
            max_score,
        })
    }

    /// [`fit`](Self::fit) on the scores pooled into `bins` equal-width bins over their range
    /// (each bin at its weighted mean score). Isotonic regression on raw scores follows the
    /// sample's noise into small extreme blocks and is over-confident (an expected accuracy
    /// biased upwards by about a point on 10⁴ labels); bins of a few hundred labels each average
    /// the noise out first.
    pub fn fit_binned(
        positives: &[(f64, f64)],
        negatives: &[(f64, f64)],
        bins: usize,
    ) -> Option<Calibration> {
        let all = positives.iter().chain(negatives);
        let lo = all.clone().map(|p| p.0).fold(f64::INFINITY, f64::min);
        let hi = all.map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
        if !(lo.is_finite() && hi.is_finite()) {
            return None;
        }
        let bins = bins.max(1);
        let width = (hi - lo) / bins as f64;
        let index = |s: f64| {
            if width > 0.0 {
                (((s - lo) / width) as usize).min(bins - 1)
            } else {
                0
            }
        };
        // (Σw, Σw·s) per bin and class.
        let mut acc = vec![[(0.0f64, 0.0f64); 2]; bins];
        for (items, class) in [(positives, 0usize), (negatives, 1)] {
            for &(s, w) in items {
                let b = &mut acc[index(s)][class];
                b.0 += w;
                b.1 += w * s;
            }
        }
        let (mut p, mut n) = (Vec::new(), Vec::new());
        for [a, b] in acc {
            let w = a.0 + b.0;
            if w > 0.0 {
                let mean = (a.1 + b.1) / w;
                if a.0 > 0.0 {
                    p.push((mean, a.0));
                }
                if b.0 > 0.0 {
                    n.push((mean, b.0));
                }
            }
        }
        let mut c = Calibration::fit(&p, &n)?;
        c.min_score = lo;
        c.max_score = hi;
        Some(c)
    }

    /// The calibrated probability of a score: linear between the blocks, clipped at the ends.
    pub fn probability(&self, s: f64) -> f64 {
        let p = &self.points;
        match p.len() {
            0 => 0.5,
            _ if s <= p[0].0 => p[0].1,
            n if s >= p[n - 1].0 => p[n - 1].1,
            _ => {
                let k = p.partition_point(|q| q.0 <= s);
                let (a, b) = (p[k - 1], p[k]);
                if b.0 > a.0 {
                    a.1 + (b.1 - a.1) * (s - a.0) / (b.0 - a.0)
                } else {
                    b.1
                }
            }
        }
    }

    /// Share of the weight of `scores` outside the fitted score range (extrapolated).
    pub fn outside_share(&self, scores: &[(f64, f64)]) -> f64 {
        let total: f64 = scores.iter().map(|p| p.1).sum();
        if total <= 0.0 {
            return 0.0;
        }
        let out: f64 = scores
            .iter()
            .filter(|(s, _)| *s < self.min_score || *s > self.max_score)
            .map(|p| p.1)
            .sum();
        out / total
    }
}

/// The expected confusion matrix of unlabelled predictions (their scores, any order).
pub fn expected_confusion(scores: &[(f64, f64)], cal: &Calibration, threshold: f64) -> Confusion {
    let mut c = Confusion::default();
    for &(s, w) in scores {
        let p = cal.probability(s);
        if s >= threshold {
            c.tp += w * p;
            c.fp += w * (1.0 - p);
        } else {
            c.fn_ += w * p;
            c.tn += w * (1.0 - p);
        }
    }
    c
}

/// The expected AUC of unlabelled predictions (scores sorted ascending): each is `c(s)` of a
/// positive and `1 − c(s)` of a negative.
pub fn expected_auc(scores: &[(f64, f64)], cal: &Calibration) -> Option<f64> {
    let pos: Vec<(f64, f64)> = scores
        .iter()
        .map(|&(s, w)| (s, w * cal.probability(s)))
        .collect();
    let neg: Vec<(f64, f64)> = scores
        .iter()
        .map(|&(s, w)| (s, w * (1.0 - cal.probability(s))))
        .collect();
    roc_auc(&pos, &neg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn unit(xs: &[f64]) -> Vec<(f64, f64)> {
        let mut v: Vec<(f64, f64)> = xs.iter().map(|&x| (x, 1.0)).collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    }

    /// AUC by counting every pair (the definition).
    fn auc_pairs(pos: &[f64], neg: &[f64]) -> f64 {
        let mut s = 0.0;
        for &p in pos {
            for &n in neg {
                s += if p > n {
                    1.0
                } else if p == n {
                    0.5
                } else {
                    0.0
                };
            }
        }
        s / (pos.len() * neg.len()) as f64
    }

    #[test]
    fn known_values() {
        // scikit-learn: roc_auc_score([0,0,1,1], [0.1,0.4,0.35,0.8]) == 0.75
        let auc = roc_auc(&unit(&[0.35, 0.8]), &unit(&[0.1, 0.4])).expect("defined");
        assert!((auc - 0.75).abs() < 1e-12);
        let c = confusion(&unit(&[0.35, 0.8]), &unit(&[0.1, 0.4]), 0.5);
        assert_eq!((c.tp, c.fp, c.tn, c.fn_), (1.0, 0.0, 2.0, 1.0));
        assert_eq!(c.accuracy(), Some(0.75));
        assert_eq!(c.precision(), Some(1.0));
        assert_eq!(c.recall(), Some(0.5));
        assert!((c.f1().expect("defined") - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(roc_auc(&[], &unit(&[0.1])), None);
    }

    #[test]
    fn isotonic_fit_is_monotone_and_pools_violators() {
        // Labels by score: 0.1:0, 0.2:1, 0.3:0, 0.4:1 → blocks {0.1}, {0.2, 0.3} pooled, {0.4}.
        let cal = Calibration::fit(&unit(&[0.2, 0.4]), &unit(&[0.1, 0.3])).expect("defined");
        assert_eq!(cal.points.len(), 3);
        assert!((cal.points[1].0 - 0.25).abs() < 1e-12);
        assert!((cal.points[1].1 - 0.5).abs() < 1e-12);
        assert_eq!(cal.probability(0.0), 0.0);
        assert_eq!(cal.probability(1.0), 1.0);
        assert!((cal.probability(0.175) - 0.25).abs() < 1e-12);
        assert_eq!(cal.outside_share(&unit(&[0.05, 0.2, 0.3, 0.9])), 0.5);
    }

    #[test]
    fn a_perfectly_calibrated_reliability_diagram_has_no_error() {
        // In each bin the positive rate equals the mean score.
        let pos = unit(&[0.25, 0.75, 0.75, 0.75]);
        let neg = unit(&[0.25, 0.25, 0.25, 0.75]);
        let (bins, ece) = reliability(&pos, &neg, 10).expect("defined");
        assert_eq!(bins.len(), 2);
        assert!(ece.abs() < 1e-12);
        // All positives scored 0.1: ECE = 0.9.
        let (_, ece) = reliability(&unit(&[0.1, 0.1]), &[], 10).expect("defined");
        assert!((ece - 0.9).abs() < 1e-12);
    }

    proptest! {
        #[test]
        fn auc_equals_the_pair_count_and_is_bounded(
            pos in prop::collection::vec(0u8..20, 1..40),
            neg in prop::collection::vec(0u8..20, 1..40),
        ) {
            // Scores on a grid of 20 values: many ties.
            let p: Vec<f64> = pos.iter().map(|&x| f64::from(x) / 20.0).collect();
            let n: Vec<f64> = neg.iter().map(|&x| f64::from(x) / 20.0).collect();
            let auc = roc_auc(&unit(&p), &unit(&n)).expect("defined");
            prop_assert!((auc - auc_pairs(&p, &n)).abs() < 1e-12);
            prop_assert!((0.0..=1.0).contains(&auc));
            // Swapping the classes mirrors it.
            let swapped = roc_auc(&unit(&n), &unit(&p)).expect("defined");
            prop_assert!((auc + swapped - 1.0).abs() < 1e-12);
        }

        #[test]
        fn the_expected_confusion_of_labelled_data_matches_it_on_average(
            scores in prop::collection::vec(0u8..=10, 2..60),
        ) {
            // Fit on data labelled by a deterministic rule, estimate on the same scores: each
            // cell of the expected matrix sums to the counted one (isotonic regression preserves
            // the positive weight of every pooled block, and 0.5 is a block edge here).
            let s: Vec<f64> = scores.iter().map(|&x| f64::from(x) / 10.0).collect();
            let (pos, neg): (Vec<f64>, Vec<f64>) = s.iter().partition(|&&x| x >= 0.5);
            prop_assume!(!pos.is_empty() && !neg.is_empty());
            let cal = Calibration::fit(&unit(&pos), &unit(&neg)).expect("defined");
            let e = expected_confusion(&unit(&s), &cal, 0.5);
            let c = confusion(&unit(&pos), &unit(&neg), 0.5);
            prop_assert!((e.tp - c.tp).abs() < 1e-9 && (e.tn - c.tn).abs() < 1e-9);
            prop_assert!((e.fp - c.fp).abs() < 1e-9 && (e.fn_ - c.fn_).abs() < 1e-9);
            prop_assert!((e.total() - s.len() as f64).abs() < 1e-9);
        }
    }
}
