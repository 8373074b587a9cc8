//! Parity with scipy (the vectors in `tests/fixtures/oracles/`, see its README) and properties.

use super::binning::*;
use super::categorical::*;
use super::inference::*;
use super::trend::*;
use super::two_sample::*;
use super::*;
use serde_json::Value;
use std::path::PathBuf;

/// The scipy vectors, kept in the repository (`tests/fixtures/oracles/`).
pub(crate) fn oracle_dir() -> PathBuf {
    let d = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/oracles"
    ));
    assert!(
        d.join("index.json").exists(),
        "the scipy oracles are missing at {} (tests/fixtures/oracles in the repository)",
        d.display()
    );
    d
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s == "inf" => Some(f64::INFINITY),
        Value::String(s) if s == "-inf" => Some(f64::NEG_INFINITY),
        Value::String(s) if s == "nan" => Some(f64::NAN),
        _ => None,
    }
}

struct Checker {
    case: String,
    failures: Vec<String>,
    checked: usize,
}

impl Checker {
    fn cmp(&mut self, what: &str, got: f64, want: f64, is_p: bool) {
        self.checked += 1;
        let ok = if want.is_nan() {
            got.is_nan()
        } else if want.is_infinite() {
            got == want
        } else {
            let diff = (got - want).abs();
            if is_p {
                diff <= 1e-12 || diff <= 1e-6 * want.abs()
            } else {
                diff <= 1e-9 * want.abs().max(1e-300) || diff <= 1e-15
            }
        };
        if !ok {
            self.failures
                .push(format!("{}: {what}: got {got:e}, want {want:e}", self.case));
        }
    }
    fn expect(&mut self, exp: &Value, key: &str, got: StatResult<f64>, is_p: bool) {
        let Some(e) = exp.get(key) else { return };
        match (num(&e["value"]), got) {
            (Some(w), Ok(g)) => self.cmp(key, g, w, is_p),
            (None, Err(_)) => self.checked += 1,
            (None, Ok(g)) => self.failures.push(format!(
                "{}: {key}: scipy refuses this input, we gave {g}",
                self.case
            )),
            (Some(w), Err(err)) => self
                .failures
                .push(format!("{}: {key}: want {w}, got {err}", self.case)),
        }
    }
}

fn strings(v: &[Value]) -> Vec<String> {
    v.iter()
        .filter(|x| !x.is_null())
        .map(|x| match x {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

#[test]
fn oracle_parity() {
    let dir = oracle_dir();
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("index.json")).expect("index"))
            .expect("index json");
    let mut total = Checker {
        case: String::new(),
        failures: vec![],
        checked: 0,
    };
    for case in index["cases"].as_array().expect("cases") {
        let file = case["file"].as_str().expect("file");
        let d: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(file)).expect("case"))
                .expect("case json");
        let mut c = Checker {
            case: file.to_owned(),
            failures: vec![],
            checked: 0,
        };
        let exp = &d["expected"];
        let kind = d["kind"].as_str().expect("kind");
        let rv = d["reference"].as_array().expect("ref");
        let cv = d["current"].as_array().expect("cur");
        if kind == "numeric" {
            let r = Sample::from_options(rv.iter().map(|v| v.as_f64()));
            let cu = Sample::from_options(cv.iter().map(|v| v.as_f64()));
            c.cmp(
                "n_used.reference",
                r.len() as f64,
                exp["n_used"]["value"]["reference"].as_f64().unwrap_or(-1.0),
                false,
            );
            c.cmp(
                "n_used.current",
                cu.len() as f64,
                exp["n_used"]["value"]["current"].as_f64().unwrap_or(-1.0),
                false,
            );
            let ks = ks_2samp(&r, &cu);
            c.expect(exp, "ks_statistic", ks.clone().map(|k| k.statistic), false);
            c.expect(exp, "ks_pvalue", ks.map(|k| k.p_value), true);
            c.expect(
                exp,
                "ks_pvalue_asymp",
                ks_2samp_asymp(&r, &cu).map(|k| k.p_value),
                true,
            );
            c.expect(exp, "wasserstein", wasserstein(&r, &cu), false);
            c.expect(exp, "wasserstein_norm", wasserstein_normed(&r, &cu), false);
            c.expect(exp, "energy_distance", energy_distance(&r, &cu), false);
            let ad = anderson_ksamp(&r, &cu);
            c.expect(
                exp,
                "anderson_ksamp_statistic",
                ad.clone().map(|t| t.statistic),
                false,
            );
            c.expect(
                exp,
                "anderson_ksamp_pvalue",
                ad.map(|t| t.p_value.unwrap_or(f64::NAN)),
                true,
            );
            let cvm = cramervonmises_2samp(&r, &cu);
            c.expect(
                exp,
                "cvm_statistic",
                cvm.clone().map(|t| t.statistic),
                false,
            );
            c.expect(
                exp,
                "cvm_pvalue",
                cvm.map(|t| t.p_value.unwrap_or(f64::NAN)),
                true,
            );
            let b = bin_numeric(&r, &cu, BinningRule::default());
            let dv = divergences(&b);
            c.expect(exp, "psi_default", Ok(dv.psi), false);
            c.expect(exp, "kl_default", Ok(dv.kl), false);
            c.expect(exp, "jensenshannon_default", Ok(dv.js), false);
            if let Some(bins) = exp["psi_default"]["bins"].as_array() {
                let edges = quantile_edges(&r, DEFAULT_BINS);
                let want: Vec<f64> = bins.iter().filter_map(|x| x.as_f64()).collect();
                if edges != want {
                    c.failures
                        .push(format!("{file}: quantile edges {edges:?} vs {want:?}"));
                }
            }
            let eb = evidently_shares(&r, &cu);
            let (fr, fc) = (evidently_fill(&eb.reference), evidently_fill(&eb.current));
            c.expect(exp, "psi", Ok(psi(&fr, &fc)), false);
            c.expect(exp, "kl_div", Ok(kl_divergence(&fr, &fc, true)), false);
            c.expect(
                exp,
                "jensenshannon",
                Ok(js_distance(&eb.reference, &eb.current, None)),
                false,
            );
            c.expect(
                exp,
                "jensenshannon_base2",
                Ok(js_distance(&eb.reference, &eb.current, Some(2.0))),
                false,
            );
            // Near H = 0, sqrt(1 − BC) amplifies the last-ulp rounding of BC to ~1e-8 (the
            // reference's own 1.05e-8 for identical samples is that noise; ours is exactly 0).
            let h = hellinger_evidently_numeric(&r, &cu);
            match num(&exp["hellinger"]["value"]) {
                Some(w) if w < 2e-8 => {
                    let within = (h - w).abs() <= 2e-8;
                    c.cmp("hellinger (near 0)", if within { w } else { h }, w, false)
                }
                _ => c.expect(exp, "hellinger", Ok(h), false),
            }
        } else {
            let r = strings(rv);
            let cu = strings(cv);
            let (keys, rc, cc) = union_counts(r.iter().cloned(), cu.iter().cloned());
            let chi = chi2_contingency(&rc, &cc, true);
            c.expect(
                exp,
                "chi2_contingency",
                chi.clone().map(|x| x.statistic),
                false,
            );
            c.expect(
                exp,
                "chi2_contingency_pvalue",
                chi.clone().map(|x| x.p_value),
                true,
            );
            c.expect(
                exp,
                "chi2_contingency_dof",
                chi.map(|x| x.dof as f64),
                false,
            );
            let chi_n = chi2_contingency(&rc, &cc, false);
            c.expect(
                exp,
                "chi2_contingency_nocorrection",
                chi_n.map(|x| x.statistic),
                false,
            );
            c.expect(
                exp,
                "chisquare_evidently_pvalue",
                chisquare_goodness_of_fit(&rc, &cc).map(|t| t.p_value.unwrap_or(f64::NAN)),
                true,
            );
            if kind == "binary" {
                let first = &keys[0];
                let x1 = r.iter().filter(|v| *v != first).count() as u64;
                let x2 = cu.iter().filter(|v| *v != first).count() as u64;
                let z = z_test_proportions(x1, r.len() as u64, x2, cu.len() as u64);
                c.expect(
                    exp,
                    "z_test_pvalue",
                    z.clone().map(|t| t.p_value.unwrap_or(f64::NAN)),
                    true,
                );
                if num(&exp["z_test_statistic"]["value"]).is_some_and(f64::is_finite) {
                    c.expect(exp, "z_test_statistic", z.map(|t| t.statistic), false);
                }
            }
            let b = bin_categorical(&r, &cu);
            let dv = divergences(&b);
            c.expect(exp, "psi_default", Ok(dv.psi), false);
            c.expect(exp, "kl_default", Ok(dv.kl), false);
            c.expect(exp, "jensenshannon_default", Ok(dv.js), false);
            let (fr, fc) = (evidently_fill(&b.reference), evidently_fill(&b.current));
            c.expect(exp, "psi", Ok(psi(&fr, &fc)), false);
            c.expect(exp, "kl_div", Ok(kl_divergence(&fr, &fc, true)), false);
            c.expect(
                exp,
                "jensenshannon",
                Ok(js_distance(&b.reference, &b.current, None)),
                false,
            );
            c.expect(
                exp,
                "jensenshannon_base2",
                Ok(js_distance(&b.reference, &b.current, Some(2.0))),
                false,
            );
            c.expect(
                exp,
                "hellinger",
                Ok(hellinger_shares(&b.reference, &b.current)),
                false,
            );
        }
        total.checked += c.checked;
        total.failures.extend(c.failures);
    }
    assert!(total.checked > 300, "only {} values checked", total.checked);
    assert!(
        total.failures.is_empty(),
        "{} of {} oracle values differ:\n{}",
        total.failures.len(),
        total.checked,
        total.failures.join("\n")
    );
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1e-300) || (a - b).abs() < 1e-15
}

#[test]
fn golden_mann_kendall_and_sen() {
    let x = [
        0.610, 0.640, 0.660, 0.690, 0.700, 0.720, 0.730, 0.730, 0.740, 0.740,
    ];
    let mk = mann_kendall(&x).expect("mk");
    assert_eq!(mk.s, 43);
    assert!(close(mk.var_s, 123.0, 1e-12));
    assert!(close(mk.z, 3.7870124656, 1e-9));
    assert!(close(mk.p_two_sided, 1.5246945e-4, 1e-6));
    assert!(close(mk.p_up, 7.623473e-5, 1e-6));
    assert!(close(mk.tau, 0.9555555556, 1e-9));
    let s95 = sen_slope(&x, 0.95).expect("sen");
    assert!(close(s95.slope, 0.0142857143, 1e-8));
    assert!(
        close(s95.lower, 0.01, 1e-9) && close(s95.upper, 0.02, 1e-9),
        "{s95:?}"
    );
    let s90 = sen_slope(&x, 0.90).expect("sen");
    assert!(
        close(s90.lower, 0.01, 1e-9) && close(s90.upper, 0.02, 1e-9),
        "{s90:?}"
    );

    let p = [0.740, 0.742, 0.739, 0.741, 0.740, 0.742, 0.741, 0.740];
    let mk = mann_kendall(&p).expect("mk");
    assert_eq!(mk.s, 1);
    assert!(close(mk.var_s, 59.6666666667, 1e-10));
    assert_eq!(mk.z, 0.0);
    assert!(close(mk.p_two_sided, 1.0, 1e-12) && close(mk.p_up, 0.5, 1e-12));
    assert!(close(mk.tau, 0.0357142857, 1e-8));
    let s90 = sen_slope(&p, 0.90).expect("sen");
    assert_eq!(s90.slope, 0.0);
    assert!(
        close(s90.lower, -0.0005, 1e-6) && close(s90.upper, 0.0005, 1e-6),
        "{s90:?}"
    );
    let s95 = sen_slope(&p, 0.95).expect("sen");
    assert!(
        close(s95.lower, -0.000666667, 1e-5) && close(s95.upper, 0.0005, 1e-6),
        "{s95:?}"
    );
}

#[test]
fn golden_welch_proportions_wilson() {
    let control = [12.0, 15.0, 11.0, 18.0, 14.0, 13.0, 16.0, 10.0, 17.0, 14.0];
    let treatment = [
        15.0, 18.0, 14.0, 20.0, 17.0, 16.0, 19.0, 13.0, 21.0, 16.0, 18.0, 15.0,
    ];
    let w = welch(&control, &treatment, 0.95).expect("welch");
    assert!(close(w.difference, 2.8333333333, 1e-9));
    assert!(close(w.dof.expect("dof"), 18.8537336785, 1e-9));
    assert!(close(w.statistic, 2.6260004808, 1e-9));
    assert!(close(w.p_value, 0.0167043619, 1e-7), "{}", w.p_value);
    assert!(
        close(w.lower, 0.5738706074, 1e-8) && close(w.upper, 5.0927960592, 1e-8),
        "{w:?}"
    );
    // The same test from the moments a stored summary keeps (the health job's uplift).
    let moments = |x: &[f64]| {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (n, mean, var)
    };
    let wm = super::inference::welch_from_moments(moments(&control), moments(&treatment), 0.95)
        .expect("welch");
    assert!(close(wm.statistic, 2.6260004808, 1e-9) && close(wm.p_value, 0.0167043619, 1e-7));
    assert!(
        close(wm.lower, 0.5738706074, 1e-8) && close(wm.dof.expect("dof"), 18.8537336785, 1e-9)
    );

    let d = two_proportions(420, 1000, 465, 1000, 0.95).expect("2p");
    assert!(close(d.statistic, 2.0259020438, 1e-9));
    assert!(close(d.p_value, 0.0427748238, 1e-8));
    assert!(
        close(d.lower, 0.0015093310, 1e-7) && close(d.upper, 0.0884906690, 1e-8),
        "{d:?}"
    );
    let wi = wilson(465, 1000, 0.95).expect("wilson");
    assert!(close(wi.lower, 0.4342791188, 1e-9) && close(wi.upper, 0.4959887543, 1e-9));
    let wi = wilson(3, 40, 0.95).expect("wilson");
    assert!(close(wi.lower, 0.0258360258, 1e-9) && close(wi.upper, 0.1986423352, 1e-9));
}

#[test]
fn golden_drift_vectors() {
    let u = [0.25; 4];
    assert!(close(
        psi(&u, &[0.10, 0.20, 0.30, 0.40]),
        0.2282174096,
        1e-9
    ));
    assert!(close(
        psi(&u, &[0.22, 0.26, 0.27, 0.25]),
        0.0057664291,
        1e-8
    ));
    let js = js_distance(&u, &[0.10, 0.20, 0.30, 0.40], Some(2.0));
    assert!(close(js, 0.2005033225, 1e-9));
    assert!(close(js * js, 0.0402015823, 1e-8));
    let base = Sample::new([0.12, 0.35, 0.41, 0.55, 0.58, 0.61, 0.70, 0.72, 0.80, 0.91]);
    let cur = Sample::new([0.30, 0.52, 0.60, 0.66, 0.74, 0.79, 0.83, 0.88, 0.93, 0.97]);
    let ks = ks_2samp(&base, &cur).expect("ks");
    assert_eq!(ks.statistic, 0.4);
    assert_eq!(ks.method, KsMethod::Exact);
    assert!(close(ks.p_value, 0.4175236528, 1e-9));
    let a = ks_2samp_asymp(&base, &cur).expect("ks");
    assert!((a.p_value - 0.3088).abs() < 1e-4, "{}", a.p_value);
}

#[test]
fn benjamini_hochberg_matches_hand_computation() {
    let q = benjamini_hochberg(&[0.01, 0.04, 0.03, 0.20]);
    // sorted: .01 (×4/1=.04), .03 (×4/2=.06), .04 (×4/3=.0533), .20 (×4/4=.2); step-up minimum.
    let want = [0.04, 0.05333333333333334, 0.05333333333333334, 0.2];
    for (g, w) in q.iter().zip(want) {
        assert!(close(*g, w, 1e-12), "{q:?}");
    }
}

#[test]
fn undefined_inputs_are_typed_not_nan() {
    let empty = Sample::new([]);
    let one = Sample::new([1.0, f64::NAN]);
    assert_eq!(one.len(), 1);
    assert_eq!(one.dropped(), 1);
    assert!(ks_2samp(&empty, &one).is_err());
    assert!(wasserstein(&empty, &one).is_err());
    assert!(cramervonmises_2samp(&one, &one).is_err());
    let same = Sample::new([2.0; 10]);
    assert!(matches!(
        anderson_ksamp(&same, &same),
        Err(StatError::Undefined { .. })
    ));
    assert!(mann_kendall(&[1.0, 2.0]).is_err());
    assert!(welch(&[1.0, 1.0], &[1.0, 1.0], 0.95).is_err());
    assert!(wilson(0, 0, 0.95).is_err());
    assert!(chi2_contingency(&[0, 0], &[1, 2], true).is_err());
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(
            prop_oneof![-100.0f64..100.0, (0i32..5).prop_map(f64::from)],
            2..120,
        )
    }

    proptest! {
        #[test]
        fn bounds_hold(a in sample(), b in sample()) {
            let (sa, sb) = (Sample::new(a), Sample::new(b));
            let ks = ks_2samp(&sa, &sb).expect("ks");
            prop_assert!((0.0..=1.0).contains(&ks.statistic));
            prop_assert!((0.0..=1.0).contains(&ks.p_value));
            let bn = bin_numeric(&sa, &sb, BinningRule::default());
            let d = divergences(&bn);
            prop_assert!(d.psi >= 0.0);
            prop_assert!((0.0..=1.0).contains(&d.js));
            prop_assert!(wasserstein(&sa, &sb).expect("w") >= 0.0);
            if let Ok(c) = cramervonmises_2samp(&sa, &sb) {
                prop_assert!((0.0..=1.0).contains(&c.p_value.expect("p")));
            }
            if let Ok(t) = anderson_ksamp(&sa, &sb) {
                prop_assert!((0.001..=0.25).contains(&t.p_value.expect("p")));
            }
        }

        #[test]
        fn symmetric_statistics_are_symmetric(a in sample(), b in sample()) {
            let (sa, sb) = (Sample::new(a), Sample::new(b));
            prop_assert_eq!(ks_2samp(&sa, &sb).expect("ks").statistic, ks_2samp(&sb, &sa).expect("ks").statistic);
            let (w1, w2) = (wasserstein(&sa, &sb).expect("w"), wasserstein(&sb, &sa).expect("w"));
            prop_assert!((w1 - w2).abs() <= 1e-9 * w1.abs().max(1.0));
            let (e1, e2) = (energy_distance(&sa, &sb).expect("e"), energy_distance(&sb, &sa).expect("e"));
            prop_assert!((e1 - e2).abs() <= 1e-9 * e1.abs().max(1.0));
            let bn = bin_numeric(&sa, &sb, BinningRule::default());
            let j1 = js_distance(&bn.reference, &bn.current, Some(2.0));
            let j2 = js_distance(&bn.current, &bn.reference, Some(2.0));
            prop_assert!((j1 - j2).abs() < 1e-12);
        }

        #[test]
        fn identity_gives_no_drift(a in sample()) {
            let s = Sample::new(a.clone());
            let ks = ks_2samp(&s, &s).expect("ks");
            prop_assert_eq!(ks.statistic, 0.0);
            prop_assert_eq!(ks.p_value, 1.0);
            prop_assert_eq!(wasserstein(&s, &s).expect("w"), 0.0);
            let d = divergences(&bin_numeric(&s, &s, BinningRule::default()));
            prop_assert!(d.psi.abs() < 1e-12 && d.js.abs() < 1e-7);
        }

        #[test]
        fn row_order_does_not_matter(a in sample(), b in sample(), seed in any::<u64>()) {
            let mut shuffled = a.clone();
            let mut s = seed;
            for i in (1..shuffled.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
                shuffled.swap(i, (s >> 33) as usize % (i + 1));
            }
            let (x, y, sb) = (Sample::new(a), Sample::new(shuffled), Sample::new(b));
            prop_assert_eq!(ks_2samp(&x, &sb).expect("ks"), ks_2samp(&y, &sb).expect("ks"));
            prop_assert_eq!(wasserstein(&x, &sb).expect("w"), wasserstein(&y, &sb).expect("w"));
        }
    }
}
