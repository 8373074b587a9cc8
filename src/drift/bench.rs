//! The detection benchmark behind `flywheel bench detection` (and its 10k-row test): the
//! column families of [`crate::synth::families`], each drifted and undrifted, decided together
//! by the default decision and, for comparison, by the rule most pipelines hand-write with
//! scipy (KS for numeric, chi-square for categorical columns, each at p < 0.05, missing values
//! dropped, no correction).

use super::{columns, compare, Method, Options};
use crate::dataset::Table;
use crate::synth::families::{Family, FAMILIES};
use crate::synth::{SynthColumn, SynthTable};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// One column's outcome.
#[derive(Debug, Clone)]
pub struct ColumnOutcome {
    pub family: &'static str,
    /// Whether the column was drifted (`m > 0`) or an undrifted twin.
    pub drifted: bool,
    pub default_flags: bool,
    pub scipy_flags: bool,
    /// The default decision's score and adjusted p-value (for the report).
    pub score: Option<f64>,
    pub p_adjusted: Option<f64>,
}

/// A seed for one (family, side, role) stream, so that columns are independent.
fn stream(seed: u64, family: usize, side: u64, role: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ ((family as u64 + 1) << 40) ^ (side << 20) ^ (role << 8) ^ 0x5eed)
}

/// Compare one table: every family drifted by `m` (unless `m == 0`) and, with `twins`, an
/// undrifted twin of each; all columns decided together.
pub fn run_table(rows: usize, seed: u64, m: f64, twins: bool) -> Vec<ColumnOutcome> {
    run_table_with(rows, seed, m, twins, super::DEFAULT_FDR)
}

/// [`run_table`] with another false-discovery rate for the default decision.
pub fn run_table_with(rows: usize, seed: u64, m: f64, twins: bool, fdr: f64) -> Vec<ColumnOutcome> {
    let mut reference = SynthTable {
        names: Vec::new(),
        columns: Vec::new(),
    };
    let mut current = SynthTable {
        names: Vec::new(),
        columns: Vec::new(),
    };
    let mut truth = Vec::new();
    let roles: &[(u64, bool)] = if twins && m > 0.0 {
        &[(0, true), (1, false)]
    } else {
        &[(0, m > 0.0)]
    };
    for (i, fam) in FAMILIES.iter().enumerate() {
        for &(role, drifted) in roles {
            let name = if drifted {
                fam.name.to_owned()
            } else {
                format!("{}~null", fam.name)
            };
            reference.names.push(name.clone());
            current.names.push(name);
            reference
                .columns
                .push(fam.sample(&mut stream(seed, i, 0, role), rows, 0.0));
            let mc = if drifted { m } else { 0.0 };
            current
                .columns
                .push(fam.sample(&mut stream(seed, i, 1, role), rows, mc));
            truth.push((fam.name, drifted, fam.is_categorical()));
        }
    }
    decide(reference, current, &truth, fdr)
}

fn decide(
    reference: SynthTable,
    current: SynthTable,
    truth: &[(&'static str, bool, bool)],
    fdr: f64,
) -> Vec<ColumnOutcome> {
    let (r, c): (Table, Table) = (reference.into(), current.into());
    let sel = columns::Selection::default();
    let Ok(inputs) = columns::inputs(r, c, &sel) else {
        return Vec::new();
    };
    let default = compare(
        &inputs,
        &Options {
            fdr,
            ..Options::default()
        },
    );
    // The scipy loop: KS or chi-square per column at p < 0.05, no correction.
    let scipy_flags: Vec<bool> = inputs
        .iter()
        .map(|input| {
            let method = if input.kind == super::Kind::Numeric {
                Method::Ks
            } else {
                Method::Chisquare
            };
            let opts = Options {
                method,
                threshold: Some(0.05),
                min_samples: 1,
                ..Options::default()
            };
            compare(std::slice::from_ref(input), &opts).columns[0].drifted
        })
        .collect();
    default
        .columns
        .iter()
        .zip(scipy_flags)
        .zip(truth)
        .map(|((d, scipy), (family, drifted, _))| ColumnOutcome {
            family,
            drifted: *drifted,
            default_flags: d.drifted,
            scipy_flags: scipy,
            score: d.score,
            p_adjusted: d.p_adjusted,
        })
        .collect()
}

/// Misses and false alarms of one table, for one rule.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub missed: Vec<&'static str>,
    pub false_alarms: Vec<&'static str>,
}

pub fn tally(outcomes: &[ColumnOutcome], default_rule: bool) -> Tally {
    let mut t = Tally::default();
    for o in outcomes {
        let flag = if default_rule {
            o.default_flags
        } else {
            o.scipy_flags
        };
        match (o.drifted, flag) {
            (true, false) => t.missed.push(o.family),
            (false, true) => t.false_alarms.push(o.family),
            _ => {}
        }
    }
    t
}

/// The families, for reports.
pub fn families() -> &'static [Family] {
    FAMILIES
}

/// A single column of a family (`m = 0`: undrifted) decided alone by both rules: the
/// worst case for false alarms (no other column to share a correction with).
pub fn run_single(family: &Family, rows: usize, seed: u64, m: f64) -> ColumnOutcome {
    let idx = FAMILIES
        .iter()
        .position(|f| f.name == family.name)
        .unwrap_or(0);
    let r = family.sample(&mut stream(seed, idx, 0, 7), rows, 0.0);
    let c = family.sample(&mut stream(seed, idx, 1, 7), rows, m);
    let table = |col: SynthColumn| SynthTable {
        names: vec![family.name.to_owned()],
        columns: vec![col],
    };
    decide(
        table(r),
        table(c),
        &[(family.name, m > 0.0, family.is_categorical())],
        super::DEFAULT_FDR,
    )
    .into_iter()
    .next()
    .unwrap_or(ColumnOutcome {
        family: family.name,
        drifted: m > 0.0,
        default_flags: false,
        scipy_flags: false,
        score: None,
        p_adjusted: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every realistic small drift is found at 10k rows per side for three seeds, with at most
    /// one undrifted twin flagged over the three tables (BH at 0.5 % over ~46 discoveries
    /// allows about 0.3 a table: BENCHMARKS.md has the measured rate); at 100k rows the effect
    /// gate keeps every twin out (`flywheel bench detection` also runs 1M rows).
    #[test]
    fn every_family_is_found_with_few_false_alarms() {
        let mut false_alarms = Vec::new();
        for (rows, seed) in [(10_000, 1u64), (10_000, 2), (10_000, 3), (100_000, 1)] {
            let out = run_table(rows, seed, 1.0, true);
            assert_eq!(out.len(), 2 * FAMILIES.len());
            let t = tally(&out, true);
            let detail: Vec<String> = out
                .iter()
                .filter(|o| o.drifted != o.default_flags)
                .map(|o| {
                    format!(
                        "{} drifted={} score={:?} q={:?}",
                        o.family, o.drifted, o.score, o.p_adjusted
                    )
                })
                .collect();
            assert!(
                t.missed.is_empty(),
                "{rows} rows, seed {seed}: missed {:?}\n{}",
                t.missed,
                detail.join("\n")
            );
            if rows >= 100_000 {
                assert!(t.false_alarms.is_empty(), "{rows} rows: {t:?}");
            }
            false_alarms.extend(t.false_alarms);
        }
        assert!(false_alarms.len() <= 1, "{false_alarms:?}");
    }
}
