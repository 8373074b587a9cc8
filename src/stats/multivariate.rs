//! Multivariate drift from mergeable co-moments: a change in how features move together, which
//! per-feature tests cannot see (two features whose correlation flips while each marginal stays
//! the same).
//!
//! **State.** [`CoMoments`] holds, for `d` numeric features, the number of complete rows, their
//! mean vector and scatter matrix `S = Σ (x − x̄)(x − x̄)ᵀ`. Two states merge exactly (Chan,
//! Golub & LeVeque's pairwise update, the matrix form of the univariate moments), so a window's
//! state is the merge of its buckets' states and no raw row is kept. Rows with a missing or
//! non-finite value are counted in `incomplete` and left out.
//!
//! **Model.** [`PcaModel::fit`] standardises the baseline (its means and standard deviations)
//! and keeps the principal components of its correlation matrix that explain a share of the
//! variance (0.9 by default, at least one and at most `d − 1`), as NannyML's data reconstruction
//! drift does on raw rows.
//!
//! **Score.** The reconstruction error of a row is the squared distance between its standardised
//! value `z` and that value's projection on the kept components: `‖Q z‖²` with `Q = I − V Vᵀ`.
//! Its expectation over a window with mean `m` and covariance `C` (population form, `S / n`)
//! needs no rows: `E‖Q z‖² = tr(Q D⁻¹ C D⁻¹ Q) + ‖Q D⁻¹ (m − μ)‖²`, where `μ` and `D = diag(σ)`
//! are the baseline's. [`PcaModel::expected_error`] computes it; the tests check it against the
//! mean of the per-row errors computed row by row. (NannyML reports the mean Euclidean distance;
//! the squared distance is what has a closed form from moments.)
//!
//! **Band.** The baseline's own windows give a reference distribution of the score;
//! [`Band::from_scores`] is their mean ± `width` standard deviations (3 by default, NannyML's
//! threshold rule). A window above the upper bound has drifted jointly; one below it follows the
//! baseline's structure more closely than usual, which is no alarm.

use nalgebra::{DMatrix, SymmetricEigen};
use ndarray::{Array1, Array2, Axis};
use serde::{Deserialize, Serialize};

/// Mergeable first and second co-moments of `d` numeric features.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoMoments {
    /// Rows with every value finite.
    pub n: u64,
    /// Rows left out because a value was missing or not finite.
    pub incomplete: u64,
    pub mean: Array1<f64>,
    /// `Σ (x − mean)(x − mean)ᵀ` over the complete rows.
    pub scatter: Array2<f64>,
}

impl CoMoments {
    pub fn new(d: usize) -> Self {
        Self {
            n: 0,
            incomplete: 0,
            mean: Array1::zeros(d),
            scatter: Array2::zeros((d, d)),
        }
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Add one row (`None` or a non-finite value: counted as incomplete). A row of another
    /// length than `d` is a programming error upstream and is counted as incomplete too.
    pub fn update(&mut self, row: &[Option<f64>]) {
        if row.len() != self.dim() || row.iter().any(|v| !v.is_some_and(f64::is_finite)) {
            self.incomplete += 1;
            return;
        }
        self.n += 1;
        let n = self.n as f64;
        let x = Array1::from_iter(row.iter().map(|v| v.unwrap_or(0.0)));
        let before = &x - &self.mean;
        self.mean.scaled_add(1.0 / n, &before);
        let after = &x - &self.mean;
        // Welford in matrix form: S += (x − mean_old)(x − mean_new)ᵀ (symmetric in exact
        // arithmetic; symmetrised below to keep it so in floating point).
        let d = self.dim();
        for i in 0..d {
            for j in 0..d {
                self.scatter[[i, j]] += 0.5 * (before[i] * after[j] + after[i] * before[j]);
            }
        }
    }

    /// Add a batch of rows laid out one after another (`d` values each; a missing value is
    /// `NaN`): two passes over the batch's complete rows (their mean, then their scatter about
    /// it, upper triangle only), then one [`merge`](Self::merge). Equals calling
    /// [`update`](Self::update) per row, to rounding, at a fraction of the cost: no allocation
    /// per row and half the products. A trailing partial row is counted as incomplete.
    pub fn add_rows(&mut self, flat: &[f64]) {
        let d = self.dim();
        if d == 0 {
            return;
        }
        let rows = flat.chunks_exact(d);
        self.incomplete += u64::from(!rows.remainder().is_empty());
        let mut batch = CoMoments::new(d);
        let mut sum = vec![0.0; d];
        for r in rows.clone() {
            if r.iter().all(|v| v.is_finite()) {
                batch.n += 1;
                for (s, v) in sum.iter_mut().zip(r) {
                    *s += v;
                }
            } else {
                batch.incomplete += 1;
            }
        }
        if batch.n > 0 {
            let n = batch.n as f64;
            let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
            let mut upper = vec![0.0; d * d];
            let mut c = vec![0.0; d];
            for r in rows.filter(|r| r.iter().all(|v| v.is_finite())) {
                for ((ci, v), m) in c.iter_mut().zip(r).zip(&mean) {
                    *ci = v - m;
                }
                for i in 0..d {
                    let ci = c[i];
                    let row = &mut upper[i * d..(i + 1) * d];
                    for j in i..d {
                        row[j] += ci * c[j];
                    }
                }
            }
            for i in 0..d {
                for j in i..d {
                    batch.scatter[[i, j]] = upper[i * d + j];
                    batch.scatter[[j, i]] = upper[i * d + j];
                }
            }
            batch.mean = Array1::from(mean);
        }
        self.merge(&batch);
    }

    /// Merge another state of the same features: the result summarises the union of the rows.
    pub fn merge(&mut self, o: &CoMoments) {
        if o.dim() != self.dim() {
            return;
        }
        self.incomplete += o.incomplete;
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            self.n = o.n;
            self.mean = o.mean.clone();
            self.scatter = o.scatter.clone();
            return;
        }
        let (na, nb) = (self.n as f64, o.n as f64);
        let n = na + nb;
        let delta = &o.mean - &self.mean;
        let outer = outer(&delta, &delta);
        self.scatter = &self.scatter + &o.scatter + &(outer * (na * nb / n));
        self.mean.scaled_add(nb / n, &delta);
        self.n += o.n;
    }

    /// Population covariance `S / n` (the moments of the window itself); `None` when empty.
    pub fn covariance(&self) -> Option<Array2<f64>> {
        (self.n > 0).then(|| &self.scatter / self.n as f64)
    }

    /// Pearson correlation of features `i` and `j`; `None` without spread.
    pub fn correlation(&self, i: usize, j: usize) -> Option<f64> {
        let (sii, sjj) = (self.scatter[[i, i]], self.scatter[[j, j]]);
        (sii > 0.0 && sjj > 0.0).then(|| self.scatter[[i, j]] / (sii * sjj).sqrt())
    }
}

fn outer(a: &Array1<f64>, b: &Array1<f64>) -> Array2<f64> {
    let a2 = a.view().insert_axis(Axis(1));
    let b2 = b.view().insert_axis(Axis(0));
    a2.dot(&b2)
}

/// Why a model cannot be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PcaError {
    #[error("multivariate drift needs at least 2 numeric features, got {0}")]
    TooFewFeatures(usize),
    #[error("the baseline has {n} complete rows; at least {min} are needed for {d} features")]
    TooFewRows { n: u64, min: u64, d: usize },
    #[error("feature {0} has no spread in the baseline")]
    Constant(usize),
}

/// A principal-component model of a baseline (standardised features).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PcaModel {
    pub mean: Array1<f64>,
    pub scale: Array1<f64>,
    /// `d × k`: the kept components, orthonormal columns.
    pub components: Array2<f64>,
    /// Share of the standardised variance the kept components explain.
    pub explained: f64,
}

impl PcaModel {
    /// Fit on a baseline, keeping the fewest components that explain `variance_kept` of the
    /// variance (clamped to `1..=d−1`, so that a reconstruction error exists).
    pub fn fit(base: &CoMoments, variance_kept: f64) -> Result<Self, PcaError> {
        let d = base.dim();
        if d < 2 {
            return Err(PcaError::TooFewFeatures(d));
        }
        let min = (2 * d as u64).max(10);
        if base.n < min {
            return Err(PcaError::TooFewRows { n: base.n, min, d });
        }
        let cov = base
            .covariance()
            .ok_or(PcaError::TooFewRows { n: 0, min, d })?;
        let mut scale = Array1::zeros(d);
        for i in 0..d {
            let v = cov[[i, i]];
            let tiny = 1e-12 * (1.0 + base.mean[i].abs()).powi(2);
            if v.is_nan() || v <= tiny {
                return Err(PcaError::Constant(i));
            }
            scale[i] = v.sqrt();
        }
        let corr = DMatrix::from_fn(d, d, |i, j| cov[[i, j]] / (scale[i] * scale[j]));
        let eig = SymmetricEigen::new(corr);
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
        let total: f64 = eig.eigenvalues.iter().map(|v| v.max(0.0)).sum();
        let mut k = 0;
        let mut kept = 0.0;
        while k < d - 1 && (k == 0 || kept < variance_kept * total) {
            kept += eig.eigenvalues[order[k]].max(0.0);
            k += 1;
        }
        let components = Array2::from_shape_fn((d, k), |(i, c)| eig.eigenvectors[(i, order[c])]);
        Ok(Self {
            mean: base.mean.clone(),
            scale,
            components,
            explained: if total > 0.0 { kept / total } else { 0.0 },
        })
    }

    pub fn kept(&self) -> usize {
        self.components.ncols()
    }

    /// `Q = I − V Vᵀ`, the projection on what the kept components leave out.
    fn residual_projector(&self) -> Array2<f64> {
        let d = self.mean.len();
        Array2::eye(d) - self.components.dot(&self.components.t())
    }

    /// The squared reconstruction error of one row (standardised by the baseline).
    pub fn row_error(&self, row: &[f64]) -> Option<f64> {
        if row.len() != self.mean.len() {
            return None;
        }
        let z = Array1::from_iter(
            row.iter()
                .enumerate()
                .map(|(i, x)| (x - self.mean[i]) / self.scale[i]),
        );
        let r = self.residual_projector().dot(&z);
        Some(r.dot(&r))
    }

    /// The expected squared reconstruction error over a window, from its co-moments alone:
    /// `tr(Q D⁻¹ C D⁻¹ Q) + ‖Q D⁻¹ (m − μ)‖²`. `None` for an empty window or other features.
    pub fn expected_error(&self, window: &CoMoments) -> Option<f64> {
        let d = self.mean.len();
        if window.dim() != d {
            return None;
        }
        let c = window.covariance()?;
        let inv = Array1::from_iter(self.scale.iter().map(|s| 1.0 / s));
        // C standardised: D⁻¹ C D⁻¹.
        let cz = Array2::from_shape_fn((d, d), |(i, j)| c[[i, j]] * inv[i] * inv[j]);
        let q = self.residual_projector();
        // tr(Q Cz Q) = tr(Q Cz) since Q is an orthogonal projector.
        let trace = q.dot(&cz).diag().sum();
        let shift = (&window.mean - &self.mean) * &inv;
        let r = q.dot(&shift);
        Some(trace + r.dot(&r))
    }
}

/// The band of a score that a stationary window stays in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Band {
    pub mean: f64,
    pub sd: f64,
    pub lower: f64,
    pub upper: f64,
    /// How many reference windows it was estimated from.
    pub windows: usize,
}

impl Band {
    /// Mean ± `width` sample standard deviations of the reference windows' scores; `None` with
    /// fewer than 3 windows.
    pub fn from_scores(scores: &[f64], width: f64) -> Option<Band> {
        let s: Vec<f64> = scores.iter().copied().filter(|v| v.is_finite()).collect();
        if s.len() < 3 {
            return None;
        }
        let n = s.len() as f64;
        let mean = s.iter().sum::<f64>() / n;
        let sd = (s.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        Some(Band {
            mean,
            sd,
            lower: (mean - width * sd).max(0.0),
            upper: mean + width * sd,
            windows: s.len(),
        })
    }

    /// Drift is a score above the band. Below it the features follow the baseline's structure
    /// more closely than usual, which is reported (the lower bound) but not an alarm.
    pub fn exceeded_by(&self, score: f64) -> bool {
        score > self.upper
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_distr::StandardNormal;

    /// Rows of (x, y, w): x and y standard normal with correlation `rho`, w independent with
    /// mean 5 and sd 2.
    fn rows(n: usize, rho: f64, seed: u64) -> Vec<Vec<f64>> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let a: f64 = rng.sample(StandardNormal);
                let b: f64 = rng.sample(StandardNormal);
                let c: f64 = rng.sample(StandardNormal);
                vec![a, rho * a + (1.0 - rho * rho).sqrt() * b, 5.0 + 2.0 * c]
            })
            .collect()
    }

    fn state(rows: &[Vec<f64>]) -> CoMoments {
        let mut s = CoMoments::new(rows[0].len());
        for r in rows {
            s.update(&r.iter().map(|v| Some(*v)).collect::<Vec<_>>());
        }
        s
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
    }

    #[test]
    fn merge_equals_the_state_of_the_union() {
        let all = rows(1000, 0.6, 1);
        let whole = state(&all);
        let mut parts = CoMoments::new(3);
        for chunk in all.chunks(37) {
            parts.merge(&state(chunk));
        }
        assert_eq!(parts.n, whole.n);
        for i in 0..3 {
            assert!(close(parts.mean[i], whole.mean[i], 1e-12));
            for j in 0..3 {
                assert!(close(parts.scatter[[i, j]], whole.scatter[[i, j]], 1e-10));
            }
        }
        // Against a direct two-pass computation.
        let n = all.len() as f64;
        let m: Vec<f64> = (0..3)
            .map(|i| all.iter().map(|r| r[i]).sum::<f64>() / n)
            .collect();
        for i in 0..3 {
            for j in 0..3 {
                let s: f64 = all.iter().map(|r| (r[i] - m[i]) * (r[j] - m[j])).sum();
                assert!(close(whole.scatter[[i, j]], s, 1e-10), "{i}{j}");
            }
        }
        // Merging with an empty state is the identity, either way round.
        let mut e = CoMoments::new(3);
        e.merge(&whole);
        assert_eq!(e, whole);
        let mut w = whole.clone();
        w.merge(&CoMoments::new(3));
        assert_eq!(w, whole);
    }

    #[test]
    fn a_batch_of_rows_equals_the_rows_one_by_one() {
        let mut all = rows(777, -0.4, 9);
        all[5][1] = f64::NAN;
        all[100][0] = f64::INFINITY;
        let mut one = CoMoments::new(3);
        one.update(&[Some(0.5), Some(1.5), Some(2.5)]);
        let mut batched = one.clone();
        for r in &all {
            one.update(&r.iter().map(|v| Some(*v)).collect::<Vec<_>>());
        }
        for chunk in all.chunks(100) {
            let flat: Vec<f64> = chunk.iter().flatten().copied().collect();
            batched.add_rows(&flat);
        }
        assert_eq!((batched.n, batched.incomplete), (one.n, one.incomplete));
        assert_eq!((one.n, one.incomplete), (776, 2));
        for i in 0..3 {
            assert!(close(batched.mean[i], one.mean[i], 1e-12));
            for j in 0..3 {
                assert!(close(batched.scatter[[i, j]], one.scatter[[i, j]], 1e-10));
            }
        }
        // A trailing partial row is incomplete, not silently read.
        let mut s = CoMoments::new(3);
        s.add_rows(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!((s.n, s.incomplete), (1, 1));
    }

    #[test]
    fn incomplete_rows_are_counted_and_left_out() {
        let mut s = CoMoments::new(2);
        s.update(&[Some(1.0), None]);
        s.update(&[Some(1.0), Some(f64::NAN)]);
        s.update(&[Some(1.0), Some(2.0)]);
        s.update(&[Some(3.0)]);
        assert_eq!((s.n, s.incomplete), (1, 3));
        assert_eq!(s.mean.to_vec(), vec![1.0, 2.0]);
    }

    #[test]
    fn expected_error_equals_the_mean_row_error() {
        let base = state(&rows(4000, 0.8, 2));
        let model = PcaModel::fit(&base, 0.9).expect("fit");
        for (rho, seed) in [(0.8, 3), (-0.8, 4), (0.0, 5)] {
            let mut cur = rows(2000, rho, seed);
            // Shift the window's mean too, so the mean term is exercised.
            for r in &mut cur {
                r[2] += 0.7;
            }
            let direct: f64 = cur
                .iter()
                .map(|r| model.row_error(r).expect("row"))
                .sum::<f64>()
                / cur.len() as f64;
            let from_moments = model.expected_error(&state(&cur)).expect("window");
            assert!(
                close(direct, from_moments, 1e-9),
                "rho {rho}: rows {direct} vs moments {from_moments}"
            );
        }
    }

    #[test]
    fn components_are_orthonormal_and_explain_what_they_claim() {
        let base = state(&rows(5000, 0.8, 6));
        let m = PcaModel::fit(&base, 0.9).expect("fit");
        let g = m.components.t().dot(&m.components);
        for i in 0..m.kept() {
            for j in 0..m.kept() {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((g[[i, j]] - want).abs() < 1e-10);
            }
        }
        // Correlation 0.8 between x and y, w independent: eigenvalues 1.8, 1, 0.2 (sum 3).
        // 0.9 of the variance needs the first two (2.8 / 3 = 0.93).
        assert_eq!(m.kept(), 2);
        assert!(close(m.explained, 2.8 / 3.0, 0.02), "{}", m.explained);
        // A baseline window's expected error is the variance left out: about 0.2.
        let e = m.expected_error(&base).expect("error");
        assert!(close(e, 0.2, 0.05), "{e}");
    }

    #[test]
    fn a_correlation_flip_with_the_same_marginals_is_outside_the_band() {
        // Reference: 10 windows of 500 rows with correlation +0.8.
        let windows: Vec<CoMoments> = (0..10).map(|w| state(&rows(500, 0.8, 100 + w))).collect();
        let mut base = CoMoments::new(3);
        for w in &windows {
            base.merge(w);
        }
        let model = PcaModel::fit(&base, 0.9).expect("fit");
        let scores: Vec<f64> = windows
            .iter()
            .map(|w| model.expected_error(w).expect("score"))
            .collect();
        let band = Band::from_scores(&scores, 3.0).expect("band");
        // Stationary windows (new seeds) stay inside.
        for s in 0..20 {
            let e = model
                .expected_error(&state(&rows(500, 0.8, 1000 + s)))
                .expect("score");
            assert!(
                !band.exceeded_by(e),
                "stationary window {s}: {e} above {band:?}"
            );
        }
        // The flip: each marginal is still standard normal, the joint is not.
        let flipped = state(&rows(500, -0.8, 7));
        for i in 0..3 {
            let sd = (flipped.scatter[[i, i]] / flipped.n as f64).sqrt();
            let want = if i == 2 { 2.0 } else { 1.0 };
            assert!(close(sd, want, 0.1), "marginal {i} unchanged: sd {sd}");
        }
        let e = model.expected_error(&flipped).expect("score");
        assert!(band.exceeded_by(e), "flip: {e} within {band:?}");
        // About 1.8 (the variance now along the left-out direction) against about 0.2.
        assert!(close(e, 1.8, 0.15), "{e}");
    }

    #[test]
    fn models_refuse_what_they_cannot_fit() {
        assert_eq!(
            PcaModel::fit(&CoMoments::new(1), 0.9),
            Err(PcaError::TooFewFeatures(1))
        );
        let few = state(&rows(5, 0.5, 8));
        assert!(matches!(
            PcaModel::fit(&few, 0.9),
            Err(PcaError::TooFewRows { .. })
        ));
        let mut constant = CoMoments::new(2);
        for i in 0..50 {
            constant.update(&[Some(i as f64), Some(3.0)]);
        }
        assert_eq!(PcaModel::fit(&constant, 0.9), Err(PcaError::Constant(1)));
        assert!(Band::from_scores(&[1.0, 2.0], 3.0).is_none());
    }
}
