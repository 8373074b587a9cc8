//! Multivariate drift between two tables (`flywheel compare`): the reconstruction error of the
//! current rows under a principal-component model of the reference, against the band of the
//! reference's own chunks (definitions in `stats::multivariate` and docs/STATISTICS.md); and
//! the same comparison in the drift job, from the co-moments the ingest path stores
//! ([`decide_window`]).

use super::Decision;
use crate::stats::multivariate::{Band, CoMoments, PcaModel};
use crate::store::JointRow;
use serde::Serialize;
use std::collections::BTreeMap;

/// Reference chunks the band is estimated from.
pub const REFERENCE_CHUNKS: usize = 10;
/// Components kept: the fewest explaining this share of the standardised variance.
pub const VARIANCE_KEPT: f64 = 0.9;
/// Band width in standard deviations of the chunks' scores.
pub const BAND_WIDTH: f64 = 3.0;

#[derive(Debug, Clone, Serialize)]
pub struct MultivariateReport {
    /// The numeric columns used (at most the configured number, in table order).
    pub features: Vec<String>,
    pub rows_reference: u64,
    pub rows_current: u64,
    /// Rows left out because a value was missing or not finite.
    pub incomplete_reference: u64,
    pub incomplete_current: u64,
    pub components: usize,
    pub explained_variance: f64,
    /// Expected squared reconstruction error of the current rows (standardised units).
    pub score: f64,
    /// Mean ± 3 sd of the reference chunks' scores.
    pub band: Band,
    pub drifted: bool,
}

fn state(columns: &[&[f64]], rows: std::ops::Range<usize>) -> CoMoments {
    let mut s = CoMoments::new(columns.len());
    let mut row = vec![None; columns.len()];
    for i in rows {
        for (slot, col) in row.iter_mut().zip(columns) {
            *slot = Some(col[i]);
        }
        s.update(&row);
    }
    s
}

/// Compare two tables' numeric columns (the same names on both sides, each column as long as
/// its table). An error says why no model could be fitted.
pub fn compare(
    names: &[String],
    reference: &[&[f64]],
    current: &[&[f64]],
) -> Result<MultivariateReport, String> {
    let d = names.len();
    if reference.len() != d || current.len() != d {
        return Err("the two tables do not have the same numeric columns".into());
    }
    let (rn, cn) = (
        reference.first().map_or(0, |c| c.len()),
        current.first().map_or(0, |c| c.len()),
    );
    let chunk = rn / REFERENCE_CHUNKS;
    let chunks: Vec<CoMoments> = (0..REFERENCE_CHUNKS)
        .map(|k| {
            let end = if k + 1 == REFERENCE_CHUNKS {
                rn
            } else {
                (k + 1) * chunk
            };
            state(reference, k * chunk..end)
        })
        .collect();
    let mut whole = CoMoments::new(d);
    for c in &chunks {
        whole.merge(c);
    }
    let model = PcaModel::fit(&whole, VARIANCE_KEPT).map_err(|e| e.to_string())?;
    let scores: Vec<f64> = chunks
        .iter()
        .filter_map(|c| model.expected_error(c))
        .collect();
    let band = Band::from_scores(&scores, BAND_WIDTH).ok_or_else(|| {
        format!(
            "the reference has too few rows for a band ({rn} rows in {REFERENCE_CHUNKS} chunks)"
        )
    })?;
    let cur = state(current, 0..cn);
    let score = model
        .expected_error(&cur)
        .ok_or("the current table has no complete numeric row")?;
    Ok(MultivariateReport {
        features: names.to_vec(),
        rows_reference: whole.n,
        rows_current: cur.n,
        incomplete_reference: whole.incomplete,
        incomplete_current: cur.incomplete,
        components: model.kept(),
        explained_variance: model.explained,
        score,
        drifted: band.exceeded_by(score),
        band,
    })
}

/// Multivariate drift of one model's window in the drift job, from stored co-moments: the
/// expected reconstruction error of the window under a principal-component model of the
/// baseline, against the band of the baseline's own windows (each `window_secs` long, as the
/// monitor's window; the stored buckets when fewer than three such windows have
/// `min_samples` complete rows, which widens the band).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct WindowMultivariate {
    /// The numeric inputs compared (the feature set with the most baseline rows).
    pub features: Vec<String>,
    pub rows_baseline: u64,
    pub rows_current: u64,
    /// Current rows left out because one of the inputs was missing or not finite.
    pub incomplete_current: u64,
    pub components: usize,
    pub explained_variance: f64,
    /// Expected squared reconstruction error of the window (standardised units).
    pub score: Option<f64>,
    pub band: Option<Band>,
    pub decision: Decision,
    /// Drifted in at least N of the last M windows (the monitor's persistence).
    pub alerting: bool,
    pub drifted_windows: usize,
    /// Why there is no decision, when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl WindowMultivariate {
    fn insufficient(features: Vec<String>, reason: String) -> Self {
        Self {
            features,
            rows_baseline: 0,
            rows_current: 0,
            incomplete_current: 0,
            components: 0,
            explained_variance: 0.0,
            score: None,
            band: None,
            decision: Decision::InsufficientData,
            alerting: false,
            drifted_windows: 0,
            reason: Some(reason),
        }
    }
}

/// Decide one window from stored joint rows: `baseline` rows of the range starting at `from`,
/// `current` rows of the window. Pure.
pub fn decide_window(
    baseline: &[JointRow],
    current: &[JointRow],
    from: i64,
    window_secs: i64,
    min_samples: u64,
) -> WindowMultivariate {
    // The feature set with the most complete baseline rows.
    let mut sets: BTreeMap<&[String], u64> = BTreeMap::new();
    for r in baseline {
        *sets.entry(&r.features).or_insert(0) += r.moments.n;
    }
    let Some(features) = sets
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(f, _)| f.to_vec())
    else {
        return WindowMultivariate::insufficient(
            Vec::new(),
            "the baseline has no interactions with two or more numeric inputs".into(),
        );
    };
    let d = features.len();
    let of_set = |rows: &[JointRow]| -> Vec<(i64, CoMoments)> {
        rows.iter()
            .filter(|r| r.features == features)
            .map(|r| (r.bucket, r.moments.clone()))
            .collect()
    };
    let base_rows = of_set(baseline);
    let group = |width: i64| -> Vec<CoMoments> {
        let mut by: BTreeMap<i64, CoMoments> = BTreeMap::new();
        for (bucket, m) in &base_rows {
            by.entry((bucket - from).div_euclid(width))
                .or_insert_with(|| CoMoments::new(d))
                .merge(m);
        }
        by.into_values().filter(|m| m.n >= min_samples).collect()
    };
    let mut windows = group(window_secs.max(1));
    if windows.len() < 3 {
        windows = group(1);
    }
    let mut whole = CoMoments::new(d);
    for (_, m) in &base_rows {
        whole.merge(m);
    }
    let mut cur = CoMoments::new(d);
    for (_, m) in of_set(current) {
        cur.merge(&m);
    }
    let mut out = WindowMultivariate::insufficient(features, String::new());
    out.rows_baseline = whole.n;
    out.rows_current = cur.n;
    out.incomplete_current = cur.incomplete;
    let model = match PcaModel::fit(&whole, VARIANCE_KEPT) {
        Ok(m) => m,
        Err(e) => {
            out.reason = Some(format!("no model of the baseline: {e}"));
            return out;
        }
    };
    out.components = model.kept();
    out.explained_variance = model.explained;
    let scores: Vec<f64> = windows
        .iter()
        .filter_map(|w| model.expected_error(w))
        .collect();
    let Some(band) = Band::from_scores(&scores, BAND_WIDTH) else {
        out.reason = Some(format!(
            "the baseline has {} windows with at least {min_samples} complete rows; a band needs 3",
            scores.len()
        ));
        return out;
    };
    out.band = Some(band);
    if cur.n < min_samples {
        out.reason = Some(format!(
            "the window has {} complete rows of these inputs, fewer than {min_samples}",
            cur.n
        ));
        return out;
    }
    out.score = model.expected_error(&cur);
    let Some(score) = out.score else {
        out.reason = Some("the window has no complete row".into());
        return out;
    };
    out.decision = if band.exceeded_by(score) {
        Decision::Drift
    } else {
        Decision::NoDrift
    };
    out.reason = None;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_distr::StandardNormal;

    const DAY: i64 = 86_400;

    /// One hour of `n` rows of 4 inputs: (x, y) with correlation `rho`, a heavy-tailed w
    /// (Student t with 3 df) and a skewed v (lognormal).
    fn hour(rng: &mut rand::rngs::StdRng, bucket: i64, n: usize, rho: f64) -> JointRow {
        let names: Vec<String> = ["v", "w", "x", "y"].map(String::from).to_vec();
        let mut flat = Vec::with_capacity(4 * n);
        for _ in 0..n {
            let a: f64 = rng.sample(StandardNormal);
            let b: f64 = rng.sample(StandardNormal);
            let t: f64 = {
                let z: f64 = rng.sample(StandardNormal);
                let c: f64 = (0..3)
                    .map(|_| rng.sample::<f64, _>(StandardNormal).powi(2))
                    .sum();
                z / (c / 3.0).sqrt()
            };
            let v = rng.sample::<f64, _>(StandardNormal).exp();
            flat.extend([v, t, a, rho * a + (1.0 - rho * rho).sqrt() * b]);
        }
        let mut moments = CoMoments::new(4);
        moments.add_rows(&flat);
        JointRow {
            version: "v1".into(),
            bucket,
            features: names,
            moments,
        }
    }

    fn days(
        rng: &mut rand::rngs::StdRng,
        from: i64,
        days: i64,
        per_hour: usize,
        rho: f64,
    ) -> Vec<JointRow> {
        (0..days * 24)
            .map(|h| hour(rng, from + h * 3600, per_hour, rho))
            .collect()
    }

    #[test]
    fn stationary_windows_stay_in_the_band_and_a_flip_leaves_it() {
        // 60 stationary days, each judged against the 7 days before it, with heavy tails and
        // skew in the other inputs: count the windows flagged.
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let all = days(&mut rng, 0, 67, 60, 0.6);
        let mut flagged = 0;
        let mut decided = 0;
        for d in 7..67 {
            let base: Vec<JointRow> = all
                .iter()
                .filter(|r| r.bucket >= (d - 7) * DAY && r.bucket < d * DAY)
                .cloned()
                .collect();
            let cur: Vec<JointRow> = all
                .iter()
                .filter(|r| r.bucket >= d * DAY && r.bucket < (d + 1) * DAY)
                .cloned()
                .collect();
            let mv = decide_window(&base, &cur, (d - 7) * DAY, DAY, 100);
            assert_ne!(mv.decision, Decision::InsufficientData, "{mv:?}");
            decided += 1;
            flagged += usize::from(mv.decision == Decision::Drift);
        }
        eprintln!("stationary: {flagged} of {decided} windows flagged");
        // A 3-sd band from 7 windows: a few percent of single windows at most (the monitor's
        // persistence, 2 of 3 windows, is what keeps alerts rare).
        assert!(
            flagged * 100 <= 5 * decided,
            "{flagged} of {decided} stationary windows flagged"
        );
        // A smaller flip, +0.6 to +0.2, with every marginal unchanged, is flagged.
        let base: Vec<JointRow> = all.iter().filter(|r| r.bucket < 7 * DAY).cloned().collect();
        let cur = days(&mut rng, 7 * DAY, 1, 60, 0.2);
        let mv = decide_window(&base, &cur, 0, DAY, 100);
        assert_eq!(mv.decision, Decision::Drift, "{mv:?}");
    }

    #[test]
    fn what_cannot_be_decided_says_why() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(12);
        // No baseline rows.
        let cur = days(&mut rng, 0, 1, 50, 0.5);
        let mv = decide_window(&[], &cur, 0, DAY, 100);
        assert_eq!(mv.decision, Decision::InsufficientData);
        assert!(
            mv.reason
                .as_deref()
                .is_some_and(|r| r.contains("no interactions")),
            "{mv:?}"
        );
        // A baseline of one day and a one-day window: the band falls back to the hours.
        let base = days(&mut rng, 0, 1, 200, 0.5);
        let mv = decide_window(&base, &cur, 0, DAY, 100);
        assert_eq!(mv.band.map(|b| b.windows), Some(24), "{mv:?}");
        // A window with too few rows.
        let small = days(&mut rng, DAY, 1, 2, 0.5);
        let mv = decide_window(&base, &small, 0, DAY, 100);
        assert_eq!(mv.decision, Decision::InsufficientData);
        assert!(
            mv.reason
                .as_deref()
                .is_some_and(|r| r.contains("48 complete rows")),
            "{mv:?}"
        );
        // Rows of another feature set in the window are not mixed in.
        let mut other = days(&mut rng, DAY, 1, 60, 0.5);
        for r in &mut other {
            r.features[0] = "u".into();
        }
        let mv = decide_window(&base, &other, 0, DAY, 100);
        assert_eq!(mv.rows_current, 0, "{mv:?}");
    }
}
