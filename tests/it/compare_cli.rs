//! `flywheel compare` as a pipeline runs it: real files, the real binary, exit codes.

use std::path::Path;
use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_flywheel"))
        .arg("compare")
        .args(args)
        .output()
        .expect("run flywheel compare");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run with `--format json` appended and parse the report.
fn report(args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.extend_from_slice(&["--format", "json"]);
    let (code, out, err) = run(&a);
    assert_eq!(code, Some(0), "{args:?}: {err}");
    serde_json::from_str(&out).expect("json report")
}

fn write_csv(path: &Path, shift: f64, rows: usize) {
    let mut s = String::from("age,country,premium,score\n");
    for i in 0..rows {
        let age = 20.0 + (i % 50) as f64 + shift;
        let country = ["DE", "FR", "US", "JP"][if shift > 0.0 { i % 2 } else { i % 4 }];
        let premium = if i % 3 == 0 { "true" } else { "false" };
        // An empty cell is a missing value.
        let score = if i % 10 == 0 {
            String::new()
        } else {
            format!("{}", (i % 7) as f64 / 7.0)
        };
        s.push_str(&format!("{age},{country},{premium},{score}\n"));
    }
    std::fs::write(path, s).expect("write csv");
}

#[test]
fn csv_json_output_and_fail_on_drift() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (r, c) = (dir.path().join("ref.csv"), dir.path().join("cur.csv"));
    write_csv(&r, 0.0, 2000);
    write_csv(&c, 15.0, 2000);
    let (code, out, err) = run(&[
        "--reference",
        r.to_str().expect("p"),
        "--current",
        c.to_str().expect("p"),
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json output");
    let cols = v["columns"].as_array().expect("columns");
    let col = |n: &str| cols.iter().find(|c| c["column"] == n).expect(n).clone();
    assert_eq!(col("age")["kind"], "numeric");
    assert_eq!(col("age")["drifted"], true);
    assert_eq!(col("country")["kind"], "categorical");
    assert_eq!(col("country")["drifted"], true);
    assert_eq!(col("premium")["kind"], "binary");
    assert_eq!(col("premium")["drifted"], false);
    assert_eq!(col("score")["n_reference"], 1800, "empty cells are missing");
    assert_eq!(col("score")["drifted"], false);
    for c in cols {
        for k in [
            "column",
            "kind",
            "method",
            "statistic",
            "p_value",
            "p_adjusted",
            "score",
            "score_name",
            "threshold",
            "drift_when",
            "alpha",
            "drifted",
            "n_reference",
            "n_current",
            "missing_reference",
            "missing_current",
        ] {
            assert!(c.get(k).is_some(), "{k} missing in {c}");
        }
    }
    assert_eq!(v["drifted_columns"], 2);
    assert_eq!(v["share_drifted"], 0.5);
    assert_eq!(v["dataset_drift"], true);
    let (code, out, _) = run(&[
        "--reference",
        r.to_str().expect("p"),
        "--current",
        c.to_str().expect("p"),
        "--fail-on-drift",
    ]);
    assert_eq!(code, Some(1), "dataset drifted → exit 1");
    assert!(
        out.contains("DRIFT") && out.contains("dataset drift: YES"),
        "{out}"
    );
    // The same file against itself: no drift, exit 0 even with --fail-on-drift.
    let (code, out, _) = run(&[
        "--reference",
        r.to_str().expect("p"),
        "--current",
        r.to_str().expect("p"),
        "--fail-on-drift",
    ]);
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn methods_columns_overrides_and_compat() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (r, c) = (dir.path().join("ref.csv"), dir.path().join("cur.csv"));
    write_csv(&r, 0.0, 500);
    write_csv(&c, 3.0, 500);
    let (rs, cs) = (r.to_str().expect("p"), c.to_str().expect("p"));
    for m in [
        "ks",
        "wasserstein",
        "wasserstein_normed",
        "jensenshannon",
        "psi",
        "kl",
        "hellinger",
        "anderson",
        "cramervonmises",
        "energy",
    ] {
        let (code, out, err) = run(&[
            "--reference",
            rs,
            "--current",
            cs,
            "--method",
            m,
            "--columns",
            "age",
            "--format",
            "json",
        ]);
        assert_eq!(code, Some(0), "{m}: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("json");
        assert_eq!(v["columns"].as_array().map(Vec::len), Some(1), "{m}");
        let col = &v["columns"][0];
        assert_eq!(col["method"], m);
        assert!(col["statistic"].is_number(), "{m}: {out}");
        // The value compared with the threshold is the score: the p-value for tests, the
        // distance itself otherwise; the statistic is always the method's own.
        if ["ks", "anderson", "cramervonmises"].contains(&m) {
            assert_eq!(col["score"], col["p_value"], "{m}: {col}");
            assert_ne!(col["statistic"], col["p_value"], "{m}: {col}");
            assert_eq!(col["drift_when"], "<");
        } else {
            assert_eq!(col["score"], col["statistic"], "{m}: {col}");
            assert!(col["p_value"].is_null(), "{m}: {col}");
            assert_eq!(col["drift_when"], ">=");
        }
    }
    // KS reports D (an age shift of 3 in 50 evenly spread ages moves 6 % of the mass).
    let v = report(
        &[
            &["--reference", rs, "--current", cs, "--columns", "age"][..],
            &["--method", "ks"],
        ]
        .concat(),
    );
    let d = v["columns"][0]["statistic"].as_f64().expect("D");
    assert!((d - 0.06).abs() < 1e-9, "{v}");
    // --categorical turns a numeric column into categories.
    let base = ["--reference", rs, "--current", cs, "--columns", "age"];
    let v = report(&[&base[..], &["--categorical", "age"]].concat());
    assert_eq!(v["columns"][0]["kind"], "categorical");
    // Evidently compat picks KS for a 500-row numeric reference.
    let v = report(&[&base[..], &["--compat", "evidently"]].concat());
    assert_eq!(v["columns"][0]["method"], "ks");
    // --binning sturges and --bins change PSI.
    let psi = |extra: &[&str]| -> f64 {
        let v = report(&[&base[..], &["--method", "psi"], extra].concat());
        v["columns"][0]["statistic"].as_f64().expect("psi")
    };
    let (q10, q5, st) = (
        psi(&[]),
        psi(&["--bins", "5"]),
        psi(&["--binning", "sturges"]),
    );
    assert!(q10 != q5 && q10 != st, "{q10} {q5} {st}");
}

#[test]
fn ndjson_and_parquet_inputs_agree_with_csv() {
    let dir = tempfile::tempdir().expect("tempdir");
    let table: flywheel::dataset::Table = flywheel::synth::generate(3000, 5, false).into();
    let cur: flywheel::dataset::Table = flywheel::synth::generate(3000, 6, true).into();
    let (rp, cp) = (dir.path().join("r.parquet"), dir.path().join("c.parquet"));
    flywheel::dataset::write_parquet(&table, &rp).expect("write");
    flywheel::dataset::write_parquet(&cur, &cp).expect("write");
    // The same data as NDJSON.
    let to_ndjson = |t: &flywheel::dataset::Table, p: &Path| {
        let mut s = String::new();
        for i in 0..t.rows() {
            let mut o = serde_json::Map::new();
            for (n, c) in t.names.iter().zip(&t.columns) {
                let v = match c {
                    flywheel::dataset::RawColumn::Numbers(v) if v[i].is_finite() => {
                        serde_json::json!(v[i])
                    }
                    flywheel::dataset::RawColumn::Numbers(_) => serde_json::Value::Null,
                    flywheel::dataset::RawColumn::Labels(l) => serde_json::json!(l.get(i)),
                };
                o.insert(n.clone(), v);
            }
            s.push_str(&serde_json::Value::Object(o).to_string());
            s.push('\n');
        }
        std::fs::write(p, s).expect("write");
    };
    let (rn, cn) = (dir.path().join("r.ndjson"), dir.path().join("c.ndjson"));
    to_ndjson(&table, &rn);
    to_ndjson(&cur, &cn);
    let (code_p, out_p, err) = run(&[
        "--reference",
        rp.to_str().expect("p"),
        "--current",
        cp.to_str().expect("p"),
        "--format",
        "json",
    ]);
    assert_eq!(code_p, Some(0), "{err}");
    let (code_n, out_n, err) = run(&[
        "--reference",
        rn.to_str().expect("p"),
        "--current",
        cn.to_str().expect("p"),
        "--format",
        "json",
    ]);
    assert_eq!(code_n, Some(0), "{err}");
    assert_eq!(out_p, out_n, "parquet and ndjson give the same report");
    let v: serde_json::Value = serde_json::from_str(&out_p).expect("json");
    assert_eq!(v["columns"].as_array().map(Vec::len), Some(25));
}

#[test]
fn errors_exit_2_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let r = dir.path().join("ref.csv");
    write_csv(&r, 0.0, 50);
    let rs = r.to_str().expect("p");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--reference", "/nonexistent.csv", "--current", rs],
            "/nonexistent.csv",
        ),
        (
            vec!["--reference", rs, "--current", rs, "--method", "magic"],
            "unknown method \"magic\"",
        ),
        (
            vec!["--reference", rs, "--current", rs, "--columns", "nope"],
            "unknown column \"nope\"",
        ),
        (
            vec!["--reference", rs, "--current", "/tmp/x.xlsx"],
            "unknown file type",
        ),
        (
            vec!["--reference", rs, "--current", rs, "--bins", "0"],
            "--bins must be at least 1",
        ),
    ];
    for (args, want) in cases {
        let (code, _, err) = run(&args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "a,b\n1,2\n3\n").expect("write");
    let (code, _, err) = run(&["--reference", bad.to_str().expect("p"), "--current", rs]);
    assert_eq!(code, Some(2));
    assert!(err.contains("bad.csv"), "{err}");
}

/// Datasets as people write them: `;`-separated, `NA` and `null` for missing, one column with a
/// decimal comma.
#[test]
fn semicolons_missing_markers_and_a_note_for_a_column_kept_categorical() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (r, c) = (dir.path().join("ref.csv"), dir.path().join("cur.csv"));
    let table = |shift: f64| {
        let mut s = String::from("age;score;amount\n");
        for i in 0..400 {
            let score = if i % 10 == 0 {
                "NA".to_owned()
            } else {
                format!("{}", i % 7)
            };
            let amount = if i == 3 {
                "12,5".to_owned()
            } else {
                format!("{}", i % 13)
            };
            s.push_str(&format!(
                "{};{score};{amount}\n",
                20.0 + (i % 40) as f64 + shift
            ));
        }
        s.push_str("null;null;null\n");
        s
    };
    std::fs::write(&r, table(0.0)).expect("write");
    std::fs::write(&c, table(0.0)).expect("write");
    let (code, out, err) = run(&[
        "--reference",
        r.to_str().expect("p"),
        "--current",
        c.to_str().expect("p"),
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let col = |n: &str| {
        v["columns"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["column"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("no column {n} in {v}"))
    };
    assert_eq!(
        col("age")["kind"],
        "numeric",
        "one column per field, not one"
    );
    assert_eq!(
        col("score")["kind"],
        "numeric",
        "NA and null are missing values"
    );
    assert_eq!(col("score")["missing_reference"], 41);
    assert_eq!(col("amount")["kind"], "categorical");
    assert!(
        err.contains("\"amount\" is categorical") && err.contains("\"12,5\""),
        "{err}"
    );
    // An explicit delimiter that is wrong: the rows do not fit the header, and the error says
    // what to give.
    let (code, _, err) = run(&[
        "--reference",
        r.to_str().expect("p"),
        "--current",
        c.to_str().expect("p"),
        "--delimiter",
        ",",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("give --delimiter"), "{err}");
}

#[test]
fn evidently_compat_types_an_integer_column_with_ten_values_as_categorical() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (r, c) = (dir.path().join("ref.csv"), dir.path().join("cur.csv"));
    // "rating": 10 integer values, the current moves 4 % of the rows from 9 to 0.
    // "rank": 11 integer values (numeric for Evidently).
    let write = |p: &Path, moved: usize| {
        let mut s = String::from("rating,rank\n");
        for i in 0..2000 {
            let rating = if i % 10 == 9 && i % 100 < 100 * moved / 25 {
                0
            } else {
                i % 10
            };
            s.push_str(&format!("{rating},{}\n", i % 11));
        }
        std::fs::write(p, s).expect("write");
    };
    write(&r, 0);
    write(&c, 10);
    let (rs, cs) = (r.to_str().expect("p"), c.to_str().expect("p"));
    let v = report(&["--reference", rs, "--current", cs, "--compat", "evidently"]);
    let col = |name: &str| -> serde_json::Value {
        v["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .find(|c| c["column"] == name)
            .cloned()
            .expect("column")
    };
    let rating = col("rating");
    assert_eq!(rating["kind"], "categorical", "{rating}");
    assert_eq!(rating["method"], "jensenshannon", "{rating}");
    assert!(
        rating["note"]
            .as_str()
            .is_some_and(|n| n.contains("as Evidently types the column")),
        "{rating}"
    );
    let rank = col("rank");
    assert_eq!(rank["kind"], "numeric", "{rank}");
    assert_eq!(rank["method"], "wasserstein_normed", "{rank}");
    // Without the compat flag both stay numeric.
    let v = report(&["--reference", rs, "--current", cs]);
    assert!(v["columns"]
        .as_array()
        .expect("columns")
        .iter()
        .all(|c| c["kind"] == "numeric"));
}

/// Columns x, y (standard normal, correlation `rho`) and w (independent), from a seeded LCG.
fn write_joint(path: &Path, rho: f64, rows: usize, seed: u64) {
    let mut state = seed;
    let mut normal = || {
        // Box–Muller from two uniforms.
        let mut u = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let (a, b) = (u(), u());
        (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()
    };
    let mut s = String::from("x,y,w\n");
    for _ in 0..rows {
        let (a, b, c) = (normal(), normal(), normal());
        let y = rho * a + (1.0 - rho * rho).sqrt() * b;
        s.push_str(&format!("{a},{y},{}\n", 5.0 + 2.0 * c));
    }
    std::fs::write(path, s).expect("write csv");
}

#[test]
fn a_correlation_flip_is_found_by_the_multivariate_score_and_by_no_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = |n: &str| dir.path().join(n);
    write_joint(&p("ref.csv"), 0.8, 5000, 1);
    write_joint(&p("same.csv"), 0.8, 2000, 2);
    write_joint(&p("flip.csv"), -0.8, 2000, 3);
    let compare = |cur: &str| {
        report(&[
            "--reference",
            p("ref.csv").to_str().expect("path"),
            "--current",
            p(cur).to_str().expect("path"),
        ])
    };
    let same = compare("same.csv");
    let flip = compare("flip.csv");
    for (name, rep) in [("same", &same), ("flip", &flip)] {
        let drifted: Vec<&str> = rep["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .filter(|c| c["drifted"] == true)
            .filter_map(|c| c["column"].as_str())
            .collect();
        assert!(
            drifted.is_empty(),
            "{name}: no single column drifted, got {drifted:?}"
        );
        assert_eq!(
            rep["multivariate"]["features"],
            serde_json::json!(["x", "y", "w"])
        );
    }
    assert_eq!(
        same["multivariate"]["drifted"], false,
        "{}",
        same["multivariate"]
    );
    assert_eq!(
        flip["multivariate"]["drifted"], true,
        "{}",
        flip["multivariate"]
    );
    let score = flip["multivariate"]["score"].as_f64().expect("score");
    assert!(
        score > 1.0,
        "the flip scores about 1.8 against about 0.2: {score}"
    );

    // Off on request; and a single numeric column has no joint structure to compare.
    let off = report(&[
        "--reference",
        p("ref.csv").to_str().expect("path"),
        "--current",
        p("flip.csv").to_str().expect("path"),
        "--multivariate-features",
        "0",
    ]);
    assert!(off.get("multivariate").is_none());
    let (code, _, err) = run(&[
        "--reference",
        p("ref.csv").to_str().expect("path"),
        "--current",
        p("flip.csv").to_str().expect("path"),
        "--columns",
        "x",
    ]);
    assert_eq!(code, Some(0));
    assert!(err.contains("no multivariate drift"), "{err}");
}
