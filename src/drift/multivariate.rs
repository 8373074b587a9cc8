//! Multivariate drift between two tables (`flywheel compare`): the reconstruction error of the
//! current rows under a principal-component model of the reference, against the band of the
//! reference's own chunks (definitions in `stats::multivariate` and docs/STATISTICS.md).

use crate::stats::multivariate::{Band, CoMoments, PcaModel};
use serde::Serialize;

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
