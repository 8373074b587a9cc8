//! The project's seeded data generator: a reference/current pair of 25 columns with known drift,
//! used by the detection-quality tests, the `compare` benchmark and the demo. Deterministic for
//! a seed (ChaCha via `StdRng::seed_from_u64`).
//!
//! 20 numeric columns (normal, lognormal, uniform, bimodal, heavy-tailed t₃, Poisson integers
//! with ties, exponential) and 5 categorical (3, 5, 10, 20 and 50 categories). Nine are drifted
//! in the current sample by small shifts: five mean shifts of 0.17–0.25 standard deviations
//! (normal, lognormal, uniform, t₃, a second normal), a mixture-weight change (bimodal 0.5 →
//! 0.6), a 10 % Poisson rate change (3 → 3.3), and two category-frequency shifts. Two undrifted
//! columns have 1 % missing values.

pub mod families;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal, Normal, Poisson, StudentT};

/// One generated column.
#[derive(Debug, Clone)]
pub enum SynthColumn {
    /// `None` is a missing value.
    Numeric(Vec<Option<f64>>),
    Categorical(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct SynthTable {
    pub names: Vec<String>,
    pub columns: Vec<SynthColumn>,
}

/// Names of the columns drifted in the current sample.
pub const DRIFTED: [&str; 9] = [
    "num_normal_shift",
    "num_lognormal_shift",
    "num_uniform_shift",
    "num_bimodal_weight",
    "num_t3_shift",
    "num_poisson_rate",
    "num_normal_wide_shift",
    "cat_5_shift",
    "cat_20_zipf_shift",
];

#[derive(Clone, Copy)]
enum Spec {
    Normal(f64, f64, f64),
    LogNormal(f64, f64, f64),
    Uniform(f64),
    Bimodal(f64),
    T3(f64),
    Poisson(f64),
    Exp(f64),
    Cat(&'static [f64]),
    Zipf(usize, f64),
}

const CAT3: &[f64] = &[0.5, 0.3, 0.2];
const CAT5_REF: &[f64] = &[0.4, 0.25, 0.15, 0.12, 0.08];
const CAT5_CUR: &[f64] = &[0.32, 0.27, 0.19, 0.13, 0.09];
const CAT10: &[f64] = &[0.2, 0.15, 0.12, 0.1, 0.1, 0.09, 0.08, 0.07, 0.05, 0.04];

fn zipf(k: usize, s: f64) -> Vec<f64> {
    let w: Vec<f64> = (1..=k).map(|i| 1.0 / (i as f64).powf(s)).collect();
    let t: f64 = w.iter().sum();
    w.into_iter().map(|x| x / t).collect()
}

/// The 25 column specs: (name, reference spec, current spec, missing share).
fn specs(current: bool) -> Vec<(&'static str, Spec, f64)> {
    let sh = |d: f64| if current { d } else { 0.0 };
    let sd_lognormal = ((0.25f64).exp() - 1.0).sqrt() * (0.25f64 / 2.0).exp(); // sigma 0.5
    vec![
        ("num_normal_shift", Spec::Normal(0.0, 1.0, sh(0.2)), 0.0),
        ("num_normal", Spec::Normal(5.0, 2.0, 0.0), 0.0),
        (
            "num_lognormal_shift",
            Spec::LogNormal(0.0, 0.5, sh(0.2 * sd_lognormal)),
            0.0,
        ),
        (
            "num_lognormal_missing",
            Spec::LogNormal(1.0, 0.5, 0.0),
            0.01,
        ),
        (
            "num_uniform_shift",
            Spec::Uniform(sh(0.25 * (1.0f64 / 12.0).sqrt())),
            0.0,
        ),
        ("num_uniform", Spec::Uniform(0.0), 0.0),
        (
            "num_bimodal_weight",
            Spec::Bimodal(if current { 0.6 } else { 0.5 }),
            0.0,
        ),
        ("num_bimodal", Spec::Bimodal(0.5), 0.0),
        ("num_t3_shift", Spec::T3(sh(0.2 * 3f64.sqrt())), 0.0),
        ("num_t3", Spec::T3(0.0), 0.0),
        (
            "num_poisson_rate",
            Spec::Poisson(if current { 3.3 } else { 3.0 }),
            0.0,
        ),
        ("num_poisson_missing", Spec::Poisson(10.0), 0.01),
        (
            "num_normal_wide_shift",
            Spec::Normal(100.0, 15.0, sh(0.17 * 15.0)),
            0.0,
        ),
        ("num_normal_2", Spec::Normal(-3.0, 0.5, 0.0), 0.0),
        ("num_normal_3", Spec::Normal(1e6, 1.0, 0.0), 0.0),
        ("num_exp", Spec::Exp(1.0), 0.0),
        ("num_exp_2", Spec::Exp(0.1), 0.0),
        ("num_lognormal_2", Spec::LogNormal(2.0, 1.0, 0.0), 0.0),
        ("num_poisson_2", Spec::Poisson(1.0), 0.0),
        ("num_t3_2", Spec::T3(0.0), 0.0),
        ("cat_3", Spec::Cat(CAT3), 0.0),
        (
            "cat_5_shift",
            Spec::Cat(if current { CAT5_CUR } else { CAT5_REF }),
            0.0,
        ),
        ("cat_10", Spec::Cat(CAT10), 0.0),
        (
            "cat_20_zipf_shift",
            Spec::Cat(if current { ZIPF20_CUR } else { ZIPF20_REF }),
            0.0,
        ),
        ("cat_50", Spec::Zipf(50, 1.0), 0.0),
    ]
}

// Zipf(1.1) over 20 categories and a shifted version (top category −6 pp, spread over ranks 2–6).
const ZIPF20_REF: &[f64] = &[
    0.2794, 0.1303, 0.0840, 0.0608, 0.0472, 0.0382, 0.0319, 0.0272, 0.0236, 0.0208, 0.0185, 0.0166,
    0.0150, 0.0137, 0.0125, 0.0115, 0.0106, 0.0098, 0.0091, 0.0093,
];
const ZIPF20_CUR: &[f64] = &[
    0.2194, 0.1423, 0.0960, 0.0728, 0.0592, 0.0502, 0.0319, 0.0272, 0.0236, 0.0208, 0.0185, 0.0166,
    0.0150, 0.0137, 0.0125, 0.0115, 0.0106, 0.0098, 0.0091, 0.0093,
];
fn draw_cat(rng: &mut StdRng, shares: &[f64], prefix: &str) -> String {
    let u: f64 = rng.gen();
    let total: f64 = shares.iter().sum();
    let mut acc = 0.0;
    for (i, s) in shares.iter().enumerate() {
        acc += s / total;
        if u < acc {
            return format!("{prefix}{i}");
        }
    }
    format!("{prefix}{}", shares.len() - 1)
}

/// Generate `rows` rows of the reference (`current = false`) or current table.
pub fn generate(rows: usize, seed: u64, current: bool) -> SynthTable {
    let specs = specs(current);
    let mut names = Vec::with_capacity(specs.len());
    let mut columns = Vec::with_capacity(specs.len());
    for (ci, (name, spec, missing)) in specs.into_iter().enumerate() {
        // One stream per column and side, so columns do not depend on each other.
        let mut rng = StdRng::seed_from_u64(seed ^ ((ci as u64 + 1) << 32) ^ u64::from(current));
        names.push(name.to_owned());
        let col = match spec {
            Spec::Cat(shares) => SynthColumn::Categorical(
                (0..rows).map(|_| draw_cat(&mut rng, shares, "c")).collect(),
            ),
            Spec::Zipf(k, e) => {
                let shares = zipf(k, e);
                SynthColumn::Categorical(
                    (0..rows)
                        .map(|_| draw_cat(&mut rng, &shares, "c"))
                        .collect(),
                )
            }
            _ => {
                let mut out = Vec::with_capacity(rows);
                for _ in 0..rows {
                    if missing > 0.0 && rng.gen::<f64>() < missing {
                        out.push(None);
                        continue;
                    }
                    out.push(Some(draw(&mut rng, spec)));
                }
                SynthColumn::Numeric(out)
            }
        };
        columns.push(col);
    }
    SynthTable { names, columns }
}

fn draw(rng: &mut StdRng, spec: Spec) -> f64 {
    match spec {
        Spec::Normal(m, s, d) => Normal::new(m, s).map(|n| n.sample(rng)).unwrap_or(m) + d,
        Spec::LogNormal(m, s, d) => LogNormal::new(m, s).map(|n| n.sample(rng)).unwrap_or(1.0) + d,
        Spec::Uniform(d) => rng.gen::<f64>() + d,
        Spec::Bimodal(w) => {
            let centre = if rng.gen::<f64>() < w { 2.0 } else { -2.0 };
            centre + Normal::new(0.0, 1.0).map(|n| n.sample(rng)).unwrap_or(0.0)
        }
        Spec::T3(d) => StudentT::new(3.0).map(|t| t.sample(rng)).unwrap_or(0.0) + d,
        Spec::Poisson(l) => Poisson::new(l).map(|p| p.sample(rng)).unwrap_or(l),
        Spec::Exp(l) => Exp::new(l).map(|e| e.sample(rng)).unwrap_or(1.0),
        Spec::Cat(_) | Spec::Zipf(..) => unreachable!("categorical columns are drawn apart"),
    }
}
