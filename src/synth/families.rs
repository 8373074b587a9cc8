//! The detection benchmark's column families: 46 kinds of column, each with a "realistic small
//! drift" (the kind of change a team would want to hear about: a tenth of a standard deviation,
//! a fifth more spread, a few points of a category's share, a new category at 1 %), generated
//! from a seed. `flywheel bench detection` runs them at 10k, 100k and 1M rows per side; the
//! test suite runs them at 10k. They were written from the shapes of real feature columns
//! (heavy tails, integer ties, missing values, long category tails), not tuned to the decision.
//!
//! [`Family::sample`] draws `n` values with the drift scaled by `m`: `m = 0` is the reference
//! distribution (the undrifted column), `m = 1` the realistic drift, other values the points of
//! the power curves.

use super::SynthColumn;
use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::{Distribution, Exp, Gamma, LogNormal, Normal, Poisson, StudentT};

/// What kind of change a family's drift is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Location,
    Scale,
    Shape,
    /// Integer columns with ties.
    Ties,
    Missing,
    Share,
    NewCategory,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Location => "location",
            Change::Scale => "scale",
            Change::Shape => "shape",
            Change::Ties => "integer ties",
            Change::Missing => "missing rate",
            Change::Share => "category shares",
            Change::NewCategory => "new category",
        }
    }
}

#[derive(Clone, Copy)]
enum Gen {
    /// Normal(μ + m·dμ, σ·(1 + m·ds)); `shape`: a share m·w of values moved up by 2σ.
    Normal { dmu: f64, ds: f64, tail: f64 },
    /// exp(Normal(μ, σ)) with μ += m·dμ, σ·(1 + m·ds), a share m·w moved to the upper tail (×3).
    LogNormal {
        sigma: f64,
        dmu: f64,
        ds: f64,
        tail: f64,
    },
    /// Uniform(m·d, 1 + m·d) widened by (1 + m·dw); `tri`: a share m·t drawn triangular.
    Uniform { d: f64, dw: f64, tri: f64 },
    /// ±2 modes (σ 1): weight 0.5 + m·dw, the right mode moved by m·dmu, σ·(1 + m·ds).
    Bimodal { dw: f64, dmu: f64, ds: f64 },
    /// Student t (df) located at m·dmu, scaled by 1 + m·ds; `contam`: share m·c at scale ×10.
    T {
        df: f64,
        dmu: f64,
        ds: f64,
        contam: f64,
    },
    /// Pareto(x_m · (1 + m·dx), α + m·da).
    Pareto { alpha: f64, da: f64, dx: f64 },
    /// Exponential rate ·(1 + m·dr), shifted by m·d.
    Exponential { dr: f64, d: f64 },
    /// Poisson(λ + m·dl).
    Poisson { lambda: f64, dl: f64 },
    /// Negative binomial (gamma–Poisson) with mean μ(1 + m·dm) and shape r·(1 + m·dr).
    NegBin { mean: f64, r: f64, dm: f64, dr: f64 },
    /// round(Normal(50 + m·dmu, 10·(1 + m·ds))).
    Rounded { dmu: f64, ds: f64 },
    /// Uniform over 0..=9; value 9 gains m·gain of share (taken evenly from the others); a new
    /// value 10 at share m·new.
    Uniform10 { gain: f64, new: f64 },
    /// A numeric column (normal, or Poisson(3) when `ints`) with missing share base + m·d.
    MissingNum { base: f64, d: f64, ints: bool },
    /// Categories with shares `p`; `moves` are (from, to, points) moved at m; `new`: a new
    /// category at share m·new (taken proportionally); `missing`: missing share base + m·d.
    Cat {
        p: &'static [f64],
        moves: &'static [(usize, usize, f64)],
        new: f64,
        missing: (f64, f64),
    },
    /// Zipf(s) over k categories with `moves` as above and a new category.
    Zipf {
        k: usize,
        s: f64,
        moves: &'static [(usize, usize, f64)],
        new: f64,
    },
}

/// One column family.
#[derive(Clone, Copy)]
pub struct Family {
    pub name: &'static str,
    pub change: Change,
    gen: Gen,
}

const fn f(name: &'static str, change: Change, gen: Gen) -> Family {
    Family { name, change, gen }
}

use Change::*;

/// Every family of the benchmark (46).
pub const FAMILIES: &[Family] = &[
    f(
        "normal_location",
        Location,
        Gen::Normal {
            dmu: 0.1,
            ds: 0.0,
            tail: 0.0,
        },
    ),
    f(
        "normal_scale",
        Scale,
        Gen::Normal {
            dmu: 0.0,
            ds: 0.15,
            tail: 0.0,
        },
    ),
    f(
        "normal_shape",
        Shape,
        Gen::Normal {
            dmu: 0.0,
            ds: 0.0,
            tail: 0.05,
        },
    ),
    f(
        "lognormal_location",
        Location,
        Gen::LogNormal {
            sigma: 0.75,
            dmu: 0.1,
            ds: 0.0,
            tail: 0.0,
        },
    ),
    f(
        "lognormal_scale",
        Scale,
        Gen::LogNormal {
            sigma: 0.75,
            dmu: 0.0,
            ds: 0.15,
            tail: 0.0,
        },
    ),
    f(
        "lognormal_shape",
        Shape,
        Gen::LogNormal {
            sigma: 0.75,
            dmu: 0.0,
            ds: 0.0,
            tail: 0.07,
        },
    ),
    f(
        "uniform_location",
        Location,
        Gen::Uniform {
            d: 0.04,
            dw: 0.0,
            tri: 0.0,
        },
    ),
    f(
        "uniform_scale",
        Scale,
        Gen::Uniform {
            d: 0.0,
            dw: 0.1,
            tri: 0.0,
        },
    ),
    f(
        "uniform_shape",
        Shape,
        Gen::Uniform {
            d: 0.0,
            dw: 0.0,
            tri: 0.3,
        },
    ),
    f(
        "bimodal_weight",
        Shape,
        Gen::Bimodal {
            dw: 0.05,
            dmu: 0.0,
            ds: 0.0,
        },
    ),
    f(
        "bimodal_location",
        Location,
        Gen::Bimodal {
            dw: 0.0,
            dmu: 0.25,
            ds: 0.0,
        },
    ),
    f(
        "bimodal_scale",
        Scale,
        Gen::Bimodal {
            dw: 0.0,
            dmu: 0.0,
            ds: 0.3,
        },
    ),
    f(
        "cauchy_location",
        Location,
        Gen::T {
            df: 1.0,
            dmu: 0.1,
            ds: 0.0,
            contam: 0.0,
        },
    ),
    f(
        "cauchy_scale",
        Scale,
        Gen::T {
            df: 1.0,
            dmu: 0.0,
            ds: 0.2,
            contam: 0.0,
        },
    ),
    f(
        "cauchy_shape",
        Shape,
        Gen::T {
            df: 1.0,
            dmu: 0.0,
            ds: 0.0,
            contam: 0.1,
        },
    ),
    f(
        "t2_location",
        Location,
        Gen::T {
            df: 2.0,
            dmu: 0.1,
            ds: 0.0,
            contam: 0.0,
        },
    ),
    f(
        "t2_scale",
        Scale,
        Gen::T {
            df: 2.0,
            dmu: 0.0,
            ds: 0.2,
            contam: 0.0,
        },
    ),
    f(
        "t3_location",
        Location,
        Gen::T {
            df: 3.0,
            dmu: 0.1,
            ds: 0.0,
            contam: 0.0,
        },
    ),
    f(
        "t3_scale",
        Scale,
        Gen::T {
            df: 3.0,
            dmu: 0.0,
            ds: 0.2,
            contam: 0.0,
        },
    ),
    f(
        "t3_shape",
        Shape,
        Gen::T {
            df: 3.0,
            dmu: 0.0,
            ds: 0.0,
            contam: 0.08,
        },
    ),
    f(
        "pareto_shape",
        Shape,
        Gen::Pareto {
            alpha: 2.0,
            da: -0.2,
            dx: 0.0,
        },
    ),
    f(
        "pareto_scale",
        Scale,
        Gen::Pareto {
            alpha: 2.0,
            da: 0.0,
            dx: 0.05,
        },
    ),
    f(
        "exponential_rate",
        Scale,
        Gen::Exponential { dr: 0.1, d: 0.0 },
    ),
    f(
        "exponential_location",
        Location,
        Gen::Exponential { dr: 0.0, d: 0.05 },
    ),
    f(
        "poisson3_rate",
        Ties,
        Gen::Poisson {
            lambda: 3.0,
            dl: 0.3,
        },
    ),
    f(
        "poisson30_rate",
        Ties,
        Gen::Poisson {
            lambda: 30.0,
            dl: 1.0,
        },
    ),
    f(
        "negbin_mean",
        Ties,
        Gen::NegBin {
            mean: 5.0,
            r: 5.0,
            dm: 0.1,
            dr: 0.0,
        },
    ),
    f(
        "negbin_dispersion",
        Ties,
        Gen::NegBin {
            mean: 5.0,
            r: 5.0,
            dm: 0.0,
            dr: -0.4,
        },
    ),
    f(
        "rounded_normal_location",
        Ties,
        Gen::Rounded { dmu: 1.0, ds: 0.0 },
    ),
    f(
        "rounded_normal_scale",
        Ties,
        Gen::Rounded { dmu: 0.0, ds: 0.15 },
    ),
    f(
        "uniform10_share",
        Ties,
        Gen::Uniform10 {
            gain: 0.04,
            new: 0.0,
        },
    ),
    f(
        "uniform10_new_value",
        Ties,
        Gen::Uniform10 {
            gain: 0.0,
            new: 0.03,
        },
    ),
    f(
        "normal_missing",
        Missing,
        Gen::MissingNum {
            base: 0.01,
            d: 0.03,
            ints: false,
        },
    ),
    f(
        "poisson_missing",
        Missing,
        Gen::MissingNum {
            base: 0.0,
            d: 0.03,
            ints: true,
        },
    ),
    f(
        "cat10_missing",
        Missing,
        Gen::Cat {
            p: CAT10,
            moves: &[],
            new: 0.0,
            missing: (0.02, 0.03),
        },
    ),
    f(
        "cat3_top_minus5",
        Share,
        Gen::Cat {
            p: CAT3,
            moves: &[(0, 1, 0.05)],
            new: 0.0,
            missing: (0.0, 0.0),
        },
    ),
    f(
        "cat3_top_minus3",
        Share,
        Gen::Cat {
            p: CAT3,
            moves: &[(0, 2, 0.03)],
            new: 0.0,
            missing: (0.0, 0.0),
        },
    ),
    f(
        "cat5_move3",
        Share,
        Gen::Cat {
            p: CAT5,
            moves: &[(1, 3, 0.03)],
            new: 0.0,
            missing: (0.0, 0.0),
        },
    ),
    f(
        "cat10_move4",
        Share,
        Gen::Cat {
            p: CAT10,
            moves: &[(0, 5, 0.04)],
            new: 0.0,
            missing: (0.0, 0.0),
        },
    ),
    f(
        "cat20_move3",
        Share,
        Gen::Cat {
            p: CAT20,
            moves: &[(3, 11, 0.03)],
            new: 0.0,
            missing: (0.0, 0.0),
        },
    ),
    f(
        "zipf50_move3",
        Share,
        Gen::Zipf {
            k: 50,
            s: 1.0,
            moves: &[(0, 9, 0.03)],
            new: 0.0,
        },
    ),
    f(
        "binary50_plus4",
        Share,
        Gen::Cat {
            p: BIN50,
            moves: &[(0, 1, 0.04)],
            new: 0.0,
            missing: (0.0, 0.0),
        },
    ),
    f(
        "binary10_plus3",
        Share,
        Gen::Cat {
            p: BIN10,
            moves: &[(0, 1, 0.03)],
            new: 0.0,
            missing: (0.0, 0.0),
        },
    ),
    f(
        "cat5_new1",
        NewCategory,
        Gen::Cat {
            p: CAT5,
            moves: &[],
            new: 0.01,
            missing: (0.0, 0.0),
        },
    ),
    f(
        "cat20_new2",
        NewCategory,
        Gen::Cat {
            p: CAT20,
            moves: &[],
            new: 0.02,
            missing: (0.0, 0.0),
        },
    ),
    f(
        "cat3_new5",
        NewCategory,
        Gen::Cat {
            p: CAT3,
            moves: &[],
            new: 0.05,
            missing: (0.0, 0.0),
        },
    ),
    f(
        "zipf50_new1",
        NewCategory,
        Gen::Zipf {
            k: 50,
            s: 1.0,
            moves: &[],
            new: 0.01,
        },
    ),
];

const CAT3: &[f64] = &[0.6, 0.3, 0.1];
const CAT5: &[f64] = &[0.4, 0.25, 0.15, 0.12, 0.08];
const CAT10: &[f64] = &[0.2, 0.15, 0.12, 0.1, 0.1, 0.09, 0.08, 0.07, 0.05, 0.04];
const CAT20: &[f64] = &[0.05; 20];
const BIN50: &[f64] = &[0.5, 0.5];
const BIN10: &[f64] = &[0.9, 0.1];

fn normal(rng: &mut StdRng) -> f64 {
    Normal::new(0.0, 1.0).map(|n| n.sample(rng)).unwrap_or(0.0)
}

fn student(rng: &mut StdRng, df: f64) -> f64 {
    StudentT::new(df).map(|t| t.sample(rng)).unwrap_or(0.0)
}

/// A category index from shares (they need not sum to 1).
fn pick(rng: &mut StdRng, shares: &[f64]) -> usize {
    let total: f64 = shares.iter().sum();
    let mut u = rng.gen::<f64>() * total;
    for (i, s) in shares.iter().enumerate() {
        if u < *s {
            return i;
        }
        u -= s;
    }
    shares.len() - 1
}

/// Shares after the drift at `m`: moves applied, a new category appended (taken proportionally).
fn drifted_shares(p: &[f64], moves: &[(usize, usize, f64)], new: f64, m: f64) -> Vec<f64> {
    let mut s = p.to_vec();
    for &(from, to, pts) in moves {
        let d = (pts * m).min(s[from]);
        s[from] -= d;
        s[to] += d;
    }
    if new > 0.0 {
        let add = (new * m).min(0.5);
        let t: f64 = s.iter().sum();
        for x in &mut s {
            *x *= (t - add) / t;
        }
        s.push(add);
    }
    s
}

fn zipf(k: usize, s: f64) -> Vec<f64> {
    let w: Vec<f64> = (1..=k).map(|i| 1.0 / (i as f64).powf(s)).collect();
    let t: f64 = w.iter().sum();
    w.into_iter().map(|x| x / t).collect()
}

impl Family {
    pub fn is_categorical(&self) -> bool {
        matches!(self.gen, Gen::Cat { .. } | Gen::Zipf { .. })
    }

    /// `n` values with the drift scaled by `m` (0: the reference distribution).
    pub fn sample(&self, rng: &mut StdRng, n: usize, m: f64) -> SynthColumn {
        match self.gen {
            Gen::Cat {
                p,
                moves,
                new,
                missing,
            } => {
                let s = drifted_shares(p, moves, new, m);
                let miss = missing.0 + m * missing.1;
                SynthColumn::Categorical(
                    (0..n)
                        .map(|_| {
                            if miss > 0.0 && rng.gen::<f64>() < miss {
                                String::new()
                            } else {
                                format!("c{}", pick(rng, &s))
                            }
                        })
                        .collect(),
                )
            }
            Gen::Zipf { k, s, moves, new } => {
                let shares = drifted_shares(&zipf(k, s), moves, new, m);
                SynthColumn::Categorical(
                    (0..n).map(|_| format!("c{}", pick(rng, &shares))).collect(),
                )
            }
            g => SynthColumn::Numeric((0..n).map(|_| number(rng, g, m)).collect()),
        }
    }
}

fn number(rng: &mut StdRng, g: Gen, m: f64) -> Option<f64> {
    Some(match g {
        Gen::Normal { dmu, ds, tail } => {
            let x = m * dmu + (1.0 + m * ds) * normal(rng);
            if tail > 0.0 && rng.gen::<f64>() < m * tail {
                x + 2.0
            } else {
                x
            }
        }
        Gen::LogNormal {
            sigma,
            dmu,
            ds,
            tail,
        } => {
            let x = LogNormal::new(m * dmu, sigma * (1.0 + m * ds))
                .map(|d| d.sample(rng))
                .unwrap_or(1.0);
            if tail > 0.0 && rng.gen::<f64>() < m * tail {
                x * 3.0
            } else {
                x
            }
        }
        Gen::Uniform { d, dw, tri } => {
            if tri > 0.0 && rng.gen::<f64>() < m * tri {
                // Triangular on [0, 1] peaked in the middle.
                (rng.gen::<f64>() + rng.gen::<f64>()) / 2.0
            } else {
                let w = 1.0 + m * dw;
                m * d + 0.5 - w / 2.0 + w * rng.gen::<f64>()
            }
        }
        Gen::Bimodal { dw, dmu, ds } => {
            let sd = 1.0 + m * ds;
            if rng.gen::<f64>() < 0.5 + m * dw {
                2.0 + m * dmu + sd * normal(rng)
            } else {
                -2.0 + sd * normal(rng)
            }
        }
        Gen::T {
            df,
            dmu,
            ds,
            contam,
        } => {
            let scale = if contam > 0.0 && rng.gen::<f64>() < m * contam {
                10.0
            } else {
                1.0 + m * ds
            };
            m * dmu + scale * student(rng, df)
        }
        Gen::Pareto { alpha, da, dx } => {
            let u: f64 = 1.0 - rng.gen::<f64>();
            (1.0 + m * dx) * u.powf(-1.0 / (alpha + m * da))
        }
        Gen::Exponential { dr, d } => {
            m * d + Exp::new(1.0 + m * dr).map(|e| e.sample(rng)).unwrap_or(1.0)
        }
        Gen::Poisson { lambda, dl } => Poisson::new(lambda + m * dl)
            .map(|p| p.sample(rng))
            .unwrap_or(lambda),
        Gen::NegBin { mean, r, dm, dr } => {
            let (mu, r) = (mean * (1.0 + m * dm), r * (1.0 + m * dr));
            let lambda = Gamma::new(r, mu / r).map(|g| g.sample(rng)).unwrap_or(mu);
            Poisson::new(lambda.max(1e-9))
                .map(|p| p.sample(rng))
                .unwrap_or(0.0)
        }
        Gen::Rounded { dmu, ds } => (50.0 + m * dmu + 10.0 * (1.0 + m * ds) * normal(rng)).round(),
        Gen::Uniform10 { gain, new } => {
            let mut s = vec![0.1; 10];
            let g = gain * m;
            for (i, x) in s.iter_mut().enumerate() {
                *x += if i == 9 { g } else { -g / 9.0 };
            }
            let s = drifted_shares(&s, &[], new, m);
            pick(rng, &s) as f64
        }
        Gen::MissingNum { base, d, ints } => {
            if rng.gen::<f64>() < base + m * d {
                return None;
            }
            if ints {
                Poisson::new(3.0).map(|p| p.sample(rng)).unwrap_or(3.0)
            } else {
                normal(rng)
            }
        }
        Gen::Cat { .. } | Gen::Zipf { .. } => unreachable!("categorical families are drawn apart"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn there_are_enough_families_and_no_drift_at_zero() {
        assert!(FAMILIES.len() >= 40);
        let mut names: Vec<&str> = FAMILIES.iter().map(|f| f.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), FAMILIES.len(), "names are unique");
        // At m = 0 the generator is the reference distribution: same seed, same values.
        for fam in FAMILIES {
            let a = fam.sample(&mut StdRng::seed_from_u64(1), 200, 0.0);
            let b = fam.sample(&mut StdRng::seed_from_u64(1), 200, 0.0);
            match (a, b) {
                (SynthColumn::Numeric(x), SynthColumn::Numeric(y)) => {
                    assert_eq!(x.len(), 200);
                    assert_eq!(x, y, "{}", fam.name)
                }
                (SynthColumn::Categorical(x), SynthColumn::Categorical(y)) => {
                    assert_eq!(x, y, "{}", fam.name)
                }
                _ => panic!("{}: kind differs", fam.name),
            }
        }
        // Shares stay shares.
        let s = drifted_shares(CAT3, &[(0, 1, 0.05)], 0.05, 1.0);
        assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{s:?}");
        assert!((s[3] - 0.05).abs() < 1e-12 && (s[0] - 0.55 * 0.95).abs() < 1e-12);
    }
}
