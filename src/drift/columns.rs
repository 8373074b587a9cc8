//! From two tables (a reference and a current dataset) to the column inputs of a drift
//! comparison: which columns are compared, what kind each one is, and their values as samples
//! or category counts. `flywheel compare`, the detection benchmarks and the tests go through
//! here, so that a column is typed the same way everywhere.

use super::{CategoryCounts, ColumnInput, ColumnValues, Kind};
use crate::dataset::{Labels, RawColumn, Table};
use crate::stats::Sample;
use rayon::prelude::*;

/// Which columns to compare, and kinds forced by the user.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only these columns (default: every column the two tables share).
    pub columns: Vec<String>,
    /// Treat these as categorical.
    pub categorical: Vec<String>,
    /// Treat these as numeric.
    pub numeric: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ColumnError {
    #[error("column {0:?} is not numeric in both files (--numeric)")]
    NotNumeric(String),
    #[error("unknown column {name:?}: not in the {missing_in} file (columns: {known})")]
    UnknownColumn {
        name: String,
        missing_in: String,
        known: String,
    },
    #[error("the two files have no column in common")]
    NoCommonColumn,
    #[error("column {0:?} is listed twice")]
    ListedTwice(String),
}

/// Distinct non-missing values of a column pair, counted up to `cap` (then it stops).
fn distinct_upto(r: &RawColumn, c: &RawColumn, cap: usize) -> usize {
    match (r, c) {
        (RawColumn::Numbers(a), RawColumn::Numbers(b)) => {
            let mut seen: Vec<u64> = Vec::with_capacity(cap + 1);
            for x in a.iter().chain(b).filter(|x| !x.is_nan()) {
                let bits = x.to_bits();
                if !seen.contains(&bits) {
                    seen.push(bits);
                    if seen.len() > cap {
                        break;
                    }
                }
            }
            seen.len()
        }
        _ => {
            let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
            for col in [r, c] {
                match col {
                    RawColumn::Labels(l) => {
                        let counts = l.counts();
                        for (k, n) in l.dict.iter().zip(counts) {
                            if n > 0 {
                                seen.insert(k.clone());
                            }
                        }
                    }
                    RawColumn::Numbers(v) => {
                        for x in v.iter().filter(|x| !x.is_nan()) {
                            seen.insert(x.to_string());
                            if seen.len() > cap {
                                break;
                            }
                        }
                    }
                }
            }
            seen.len()
        }
    }
}

fn kind_of(name: &str, r: &RawColumn, c: &RawColumn, sel: &Selection) -> Result<Kind, ColumnError> {
    if sel.categorical.iter().any(|x| x == name) {
        return Ok(Kind::Categorical);
    }
    let forced_numeric = sel.numeric.iter().any(|x| x == name);
    match (r, c) {
        (RawColumn::Numbers(_), RawColumn::Numbers(_)) => {
            if !forced_numeric && distinct_upto(r, c, 2) == 2 {
                Ok(Kind::Binary)
            } else {
                Ok(Kind::Numeric)
            }
        }
        _ if forced_numeric => Err(ColumnError::NotNumeric(name.to_owned())),
        _ => Ok(if distinct_upto(r, c, 2) == 2 {
            Kind::Binary
        } else {
            Kind::Categorical
        }),
    }
}

/// Category counts of a column pair over the union of their values, and the missing values of
/// each.
fn category_counts(r: RawColumn, c: RawColumn) -> CategoryCounts {
    let missing = |col: &RawColumn| -> u64 {
        match col {
            RawColumn::Labels(l) => {
                l.codes.iter().filter(|&&c| c == Labels::MISSING).count() as u64
            }
            RawColumn::Numbers(v) => v.iter().filter(|x| !x.is_finite()).count() as u64,
        }
    };
    let missing = [missing(&r), missing(&c)];
    let tally = |col: RawColumn| -> rustc_hash::FxHashMap<String, u64> {
        let mut m = rustc_hash::FxHashMap::default();
        match col {
            RawColumn::Labels(l) => {
                let counts = l.counts();
                for (k, n) in l.dict.into_iter().zip(counts) {
                    if n > 0 {
                        *m.entry(k).or_default() += n;
                    }
                }
            }
            RawColumn::Numbers(v) => {
                for x in v.into_iter().filter(|x| x.is_finite()) {
                    *m.entry(x.to_string()).or_default() += 1;
                }
            }
        }
        m
    };
    let (mr, mc) = (tally(r), tally(c));
    let mut keys: Vec<String> = mr.keys().chain(mc.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    let reference = keys
        .iter()
        .map(|k| mr.get(k).copied().unwrap_or(0))
        .collect();
    let current = keys
        .iter()
        .map(|k| mc.get(k).copied().unwrap_or(0))
        .collect();
    CategoryCounts {
        keys,
        reference,
        current,
        missing,
    }
}

fn numbers(col: RawColumn) -> Sample {
    match col {
        RawColumn::Numbers(v) => Sample::new(v),
        RawColumn::Labels(l) => Sample::new((0..l.codes.len()).map(|i| {
            l.get(i)
                .and_then(|x| x.trim().parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        })),
    }
}

/// Build the column inputs (sorting numeric samples in parallel). Consumes the tables so that
/// no column is held twice.
pub fn inputs(
    mut reference: Table,
    mut current: Table,
    sel: &Selection,
) -> Result<Vec<ColumnInput>, ColumnError> {
    let wanted: Vec<String> = if sel.columns.is_empty() {
        reference
            .names
            .iter()
            .filter(|n| current.column(n).is_some())
            .cloned()
            .collect()
    } else {
        sel.columns.clone()
    };
    for n in sel
        .columns
        .iter()
        .chain(&sel.categorical)
        .chain(&sel.numeric)
    {
        let missing: Vec<&str> = [("reference", &reference), ("current", &current)]
            .iter()
            .filter(|(_, t)| t.column(n).is_none())
            .map(|(w, _)| *w)
            .collect();
        if !missing.is_empty() {
            return Err(ColumnError::UnknownColumn {
                name: n.to_owned(),
                missing_in: missing.join(" and "),
                known: reference.names.join(", "),
            });
        }
    }
    if wanted.is_empty() {
        return Err(ColumnError::NoCommonColumn);
    }
    let mut typed: Vec<(String, Kind, RawColumn, RawColumn)> = Vec::with_capacity(wanted.len());
    for n in wanted {
        let (Some(r), Some(c)) = (reference.take(&n), current.take(&n)) else {
            return Err(ColumnError::ListedTwice(n));
        };
        let k = kind_of(&n, &r, &c, sel)?;
        typed.push((n, k, r, c));
    }
    Ok(typed
        .into_par_iter()
        .map(|(name, kind, r, c)| {
            let values = if kind == Kind::Numeric {
                let (reference, current) = rayon::join(|| numbers(r), || numbers(c));
                ColumnValues::Numeric { reference, current }
            } else {
                ColumnValues::Categorical(category_counts(r, c))
            };
            ColumnInput { name, kind, values }
        })
        .collect())
}
