use super::*;
use crate::synth;
use serde_json::Value;

fn input_from(name: &str, kind: Kind, r: &Value, c: &Value) -> ColumnInput {
    let arr = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let values = if kind == Kind::Numeric {
        ColumnValues::Numeric {
            reference: Sample::from_options(arr(r).iter().map(|v| v.as_f64())),
            current: Sample::from_options(arr(c).iter().map(|v| v.as_f64())),
        }
    } else {
        let s = |v: &Value| -> Vec<String> {
            arr(v)
                .iter()
                .filter(|x| !x.is_null())
                .map(|x| {
                    x.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| x.to_string())
                })
                .collect()
        };
        let (rs, cs) = (s(r), s(c));
        ColumnValues::Categorical(CategoryCounts::from_values(
            rs.iter().map(String::as_str),
            cs.iter().map(String::as_str),
        ))
    };
    ColumnInput {
        name: name.into(),
        kind,
        values,
    }
}

/// Decide `input` under `--compat evidently` and check the score against Evidently's `want`
/// (1e-9 relative, 1e-12 absolute); the column's report.
fn evidently_decision(name: &str, input: &ColumnInput, want: f64) -> ColumnReport {
    let opts = Options {
        compat: Compat::Evidently,
        ..Options::default()
    };
    let col = compare(std::slice::from_ref(input), &opts)
        .columns
        .remove(0);
    // The value Evidently compares with its threshold is the score (a p-value for tests).
    let got = col.score.expect("score");
    assert!(
        (got - want).abs() <= 1e-9 * want.abs() || (got - want).abs() < 1e-12,
        "{name}: {got} vs Evidently {want}"
    );
    col
}

/// Evidently 0.7.23's own output (`DataDriftPreset`, recorded by
/// tests/fixtures/evidently/record.py) on columns with few distinct values: integer columns with
/// at most 10 distinct values are categorical for Evidently (Jensen–Shannon on value shares, or
/// chi-square with a small reference); with 11 values, a missing cell or float values they are
/// numeric; the current data decide the type.
#[test]
fn evidently_types_columns_with_few_values_as_evidently_does() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/evidently/few_values.json");
    let d: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("json");
    let cases = d["cases"].as_array().expect("cases");
    assert!(cases.len() >= 8);
    let mut categorical = 0;
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let input = input_from(name, Kind::Numeric, &case["reference"], &case["current"]);
        let e = &case["evidently"];
        let want_method = match e["method"].as_str().expect("method") {
            "Jensen-Shannon distance" => Method::Jensenshannon,
            "chi-square p_value" => Method::Chisquare,
            "Wasserstein distance (normed)" => Method::WassersteinNormed,
            "K-S p_value" => Method::Ks,
            "Z-test p_value" => Method::Ztest,
            other => panic!("{name}: unexpected method {other}"),
        };
        let want = e["value"].as_f64().expect("value");
        let col = evidently_decision(name, &input, want);
        assert_eq!(col.method, want_method, "{name}: {col:?}");
        let want_categorical = case["column_type"] == "ColumnType.Categorical";
        assert_eq!(
            col.kind == Kind::Categorical,
            want_categorical,
            "{name}: {col:?}"
        );
        categorical += usize::from(want_categorical);
        let threshold = e["threshold"].as_f64().expect("threshold");
        let want_drift = if col.method.is_test() {
            want < threshold
        } else {
            want >= threshold
        };
        assert_eq!(col.drifted, want_drift, "{name}");
    }
    assert!(
        categorical >= 3,
        "the fixture exercises the categorical typing"
    );
    // Without --compat evidently the same integer column stays numeric (the default decision).
    let c = &cases[0];
    let input = input_from("x", Kind::Numeric, &c["reference"], &c["current"]);
    let rep = compare(std::slice::from_ref(&input), &Options::default());
    assert_eq!(rep.columns[0].kind, Kind::Numeric);
}

/// `--compat evidently` reproduces Evidently's default method, value and decision per oracle case.
#[test]
fn evidently_default_matches_the_oracles() {
    let dir = crate::stats::tests::oracle_dir();
    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("index.json"))
            .expect("oracle index in tests/fixtures/oracles"),
    )
    .expect("json");
    let mut checked = 0;
    for case in index["cases"].as_array().expect("cases") {
        let file = case["file"].as_str().expect("file");
        let d: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(file)).expect("case"))
                .expect("json");
        let kind = match d["kind"].as_str() {
            Some("numeric") => Kind::Numeric,
            Some("binary") => Kind::Binary,
            _ => Kind::Categorical,
        };
        let input = input_from(file, kind, &d["reference"], &d["current"]);
        let e = &d["expected"]["evidently_default"];
        let want_method = match e["method"].as_str().expect("method") {
            "ks" => Method::Ks,
            "chisquare" => Method::Chisquare,
            "z" => Method::Ztest,
            "wasserstein" => Method::WassersteinNormed,
            "jensenshannon" => Method::Jensenshannon,
            other => panic!("{file}: unexpected method {other}"),
        };
        let col = evidently_decision(file, &input, e["value"].as_f64().expect("value"));
        assert_eq!(col.method, want_method, "{file}");
        assert_eq!(col.drifted, e["drift"].as_bool().expect("drift"), "{file}");
        assert_eq!(
            col.threshold,
            e["threshold"].as_f64().expect("thr"),
            "{file}"
        );
        checked += 1;
    }
    assert!(checked >= 20);
}

/// Every explicit method reports its own statistic and its raw p-value, each checked against
/// scipy separately (a p-value in `statistic` fails here).
#[test]
fn explicit_methods_report_their_statistic_and_p_value_apart() {
    let dir = crate::stats::tests::oracle_dir();
    let index: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("index.json")).expect("oracle index"),
    )
    .expect("json");
    let close = |got: f64, want: f64, rel: f64| {
        (got - want).abs() <= rel * want.abs() || (got - want).abs() < 1e-12
    };
    let mut checked = 0;
    for case in index["cases"].as_array().expect("cases") {
        let file = case["file"].as_str().expect("file");
        let d: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(file)).expect("case"))
                .expect("json");
        let e = &d["expected"];
        let kind = match d["kind"].as_str() {
            Some("numeric") => Kind::Numeric,
            Some("binary") => Kind::Binary,
            _ => Kind::Categorical,
        };
        let input = input_from(file, kind, &d["reference"], &d["current"]);
        let methods: &[(Method, &str, Option<&str>)] = match kind {
            Kind::Numeric => &[
                (Method::Ks, "ks_statistic", Some("ks_pvalue")),
                (
                    Method::Anderson,
                    "anderson_ksamp_statistic",
                    Some("anderson_ksamp_pvalue"),
                ),
                (Method::Cramervonmises, "cvm_statistic", Some("cvm_pvalue")),
                (Method::Wasserstein, "wasserstein", None),
                (Method::Energy, "energy_distance", None),
            ],
            Kind::Binary => &[
                (
                    Method::Chisquare,
                    "chi2_contingency",
                    Some("chi2_contingency_pvalue"),
                ),
                (Method::Ztest, "z_test_statistic", Some("z_test_pvalue")),
            ],
            Kind::Categorical => &[(
                Method::Chisquare,
                "chi2_contingency",
                Some("chi2_contingency_pvalue"),
            )],
        };
        for (m, stat_key, p_key) in methods {
            let (Some(want_stat), want_p) = (
                e[*stat_key]["value"].as_f64(),
                p_key.map(|k| e[k]["value"].as_f64()),
            ) else {
                continue; // scipy refuses this input
            };
            let opts = Options {
                method: *m,
                min_samples: 1,
                ..Options::default()
            };
            let col = &compare(std::slice::from_ref(&input), &opts).columns[0];
            let got = col.statistic.unwrap_or(f64::NAN);
            assert!(
                close(got, want_stat, 1e-9),
                "{file} {m:?} statistic {got} vs {want_stat}"
            );
            match want_p {
                Some(Some(wp)) => {
                    let gp = col.p_value.expect("p-value");
                    assert!(close(gp, wp, 1e-6), "{file} {m:?} p {gp} vs {wp}");
                    assert_eq!(
                        col.score,
                        Some(gp),
                        "{file} {m:?}: a test's score is its p-value"
                    );
                    assert_eq!(col.score_name, "p_value");
                    assert_eq!(col.p_adjusted, Some(gp), "one column: BH leaves p as it is");
                }
                Some(None) => {}
                None => {
                    assert_eq!(col.p_value, None, "{file} {m:?}: a distance has no p-value");
                    assert_eq!(col.score, Some(got));
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 60, "checked {checked}");
}

fn to_inputs(reference: &synth::SynthTable, current: &synth::SynthTable) -> Vec<ColumnInput> {
    columns::inputs(
        reference.clone().into(),
        current.clone().into(),
        &columns::Selection::default(),
    )
    .expect("generated tables share their columns")
}

/// Detection quality: all nine drifted columns are found and nothing else, at 10k and 100k rows
/// per side, for several seeds (1M rows is in BENCHMARKS.md: `flywheel bench detection`).
#[test]
fn default_decision_finds_exactly_the_drifted_columns() {
    for rows in [10_000, 100_000] {
        for seed in [1u64, 2, 3] {
            let r = synth::generate(rows, seed, false);
            let c = synth::generate(rows, seed.wrapping_add(1000), true);
            let rep = compare(&to_inputs(&r, &c), &Options::default());
            let mut flagged: Vec<&str> = rep
                .columns
                .iter()
                .filter(|c| c.drifted)
                .map(|c| c.column.as_str())
                .collect();
            flagged.sort();
            let mut want: Vec<&str> = synth::DRIFTED.to_vec();
            want.sort();
            let detail: Vec<String> = rep
                .columns
                .iter()
                .map(|c| format!("{} score={:?} q={:?}", c.column, c.score, c.p_adjusted))
                .collect();
            assert_eq!(
                flagged,
                want,
                "rows={rows} seed={seed}\n{}",
                detail.join("\n")
            );
            assert!(!rep.dataset_drift, "9 of 25 is under the 0.5 drift share");
        }
    }
}

#[test]
fn small_windows_are_insufficient_not_drift() {
    let r = synth::generate(20, 1, false);
    let c = synth::generate(20, 2, true);
    let rep = compare(&to_inputs(&r, &c), &Options::default());
    assert!(rep
        .columns
        .iter()
        .all(|c| c.decision == Decision::InsufficientData));
    assert_eq!(rep.share_drifted, 0.0);
    assert!(!rep.dataset_drift);
}

#[test]
fn identical_samples_never_drift_with_any_method() {
    let r = synth::generate(2000, 9, false);
    let inputs = to_inputs(&r, &r);
    for m in Method::ALL {
        let opts = Options {
            method: m,
            ..Options::default()
        };
        let rep = compare(&inputs, &opts);
        for c in &rep.columns {
            assert!(!c.drifted, "{} with {}", c.column, m.as_str());
        }
    }
}
