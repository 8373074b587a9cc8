//! Randomised robustness of every parser that takes outside input: event batches (both
//! framings, then each element), dataset uploads (CSV, NDJSON, Parquet), the config file, and
//! query strings on every read route. Inputs are random bytes and mutations (flips, inserts,
//! deletions, duplicated and truncated spans) of valid seeds. Each parser must answer with a
//! value or an error: no panic, and through HTTP no 5xx.
//!
//! This is proptest-driven, not coverage-guided fuzzing: cheap enough to run on every CI run
//! (`FLYWHEEL_FUZZ_CASES`, 2,000 per parser by default; set it higher for a longer hunt). A
//! failing input is shrunk and saved by proptest under `proptest-regressions/`, which is
//! committed, so it is replayed first on every later run.

use flywheel::events::batch::{parse_event, split_batch, Framing};
use flywheel::events::pseudonym::Pseudonymizer;
use flywheel::events::EventLimits;
use proptest::prelude::*;
use std::panic::AssertUnwindSafe;

fn cases() -> u32 {
    std::env::var("FLYWHEEL_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..ProptestConfig::default()
    }
}

/// One edit of a byte string.
#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Edit::Flip(p, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Edit::Insert(p, b)),
        (any::<usize>(), 1usize..64).prop_map(|(p, n)| Edit::Delete(p, n)),
        (any::<usize>(), 1usize..64).prop_map(|(p, n)| Edit::Duplicate(p, n)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for e in edits {
        let len = v.len().max(1);
        match *e {
            Edit::Flip(p, b) if !v.is_empty() => {
                let i = p % len;
                v[i] ^= b | 1;
            }
            Edit::Insert(p, b) => v.insert(p % (v.len() + 1), b),
            Edit::Delete(p, n) if !v.is_empty() => {
                let i = p % len;
                let j = (i + n).min(v.len());
                v.drain(i..j);
            }
            Edit::Duplicate(p, n) if !v.is_empty() => {
                let i = p % len;
                let j = (i + n).min(v.len());
                let span = v[i..j].to_vec();
                v.splice(j..j, span);
            }
            Edit::Truncate(p) => v.truncate(p % (v.len() + 1)),
            _ => {}
        }
    }
    v
}

/// Random bytes, or a seed with up to eight edits.
fn input(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let n = seeds.len();
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        (0..n, proptest::collection::vec(edit(), 0..8))
            .prop_map(move |(i, edits)| apply(&seeds[i], &edits)),
    ]
}

fn event_seeds() -> Vec<Vec<u8>> {
    let lines = [
        r#"{"event_id":"a","event_type":"interaction","occurred_at":"2026-12-01T10:00:00Z","model":{"id":"m","version":"v1"},"user_id":"u1","features":{"x":1.5,"c":"de","b":true,"n":null},"prediction":{"score":0.4,"label":"click","confidence":0.8},"segment":{"country":"DE"},"consent":{"training":true}}"#,
        r#"{"event_id":"b","event_type":"feedback","occurred_at":"2026-12-01T10:00:01Z","model":{"id":"m","version":"v1"},"user_id":"u1","interaction_id":"a","feedback":{"kind":"explicit","value":1}}"#,
        r#"{"event_id":"c","event_type":"model_eval","occurred_at":"2026-12-01T10:00:02Z","model":{"id":"m","version":"v2"},"metrics":{"auc":0.81},"dataset":"holdout"}"#,
        r#"{"event_id":"d","event_type":"deploy","occurred_at":"2026-12-01T10:00:03Z","model":{"id":"m","version":"v2"}}"#,
    ];
    vec![
        lines.join("\n").into_bytes(),
        format!("[{}]", lines.join(",")).into_bytes(),
        lines[0].as_bytes().to_vec(),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn event_batches_never_panic(body in input(event_seeds()), array in any::<bool>()) {
        let framing = if array { Framing::JsonArray } else { Framing::Ndjson };
        let limits = EventLimits::default();
        let p = Pseudonymizer::new(b"fuzz-key-0123456789abcdef0123456789");
        let now = 1_796_200_000_000_000;
        if let Ok(elems) = split_batch(&body, framing, 1000) {
            prop_assert!(elems.len() <= 1000);
            for text in elems.into_iter().flatten() {
                let _ = parse_event(text, &limits, &p, now);
            }
        }
    }

    #[test]
    fn csv_and_ndjson_datasets_never_panic(bytes in input(dataset_seeds()), csv in any::<bool>()) {
        use flywheel::dataset::{read_bytes, ReadOptions, TextFormat};
        let format = if csv { TextFormat::Csv } else { TextFormat::Ndjson };
        let _ = read_bytes(&bytes, format, "upload", &ReadOptions::default());
    }

    #[test]
    fn parquet_datasets_never_panic(bytes in input(vec![parquet_seed()])) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("upload.parquet");
        std::fs::write(&path, &bytes).expect("write");
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
            flywheel::dataset::read(&path, &flywheel::dataset::ReadOptions::default())
        }));
        prop_assert!(r.is_ok(), "reading a damaged Parquet file panicked");
    }

    #[test]
    fn config_files_never_panic(bytes in input(vec![
        include_bytes!("../../config/default.toml").to_vec(),
        include_bytes!("../../docs/deploy/flywheel.toml").to_vec(),
    ])) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = flywheel::config::check_text(&text, flywheel::config::Overrides::default());
    }
}

fn dataset_seeds() -> Vec<Vec<u8>> {
    vec![
        b"x,c,flag\n1.5,de,true\n2,fr,false\nNA,,true\n-3e5,de,\n".to_vec(),
        b"x;c\n1,5;a\n2,5;b\n".to_vec(),
        b"{\"x\":1.5,\"c\":\"de\"}\n{\"x\":null,\"c\":\"fr\"}\n{\"x\":2}\n".to_vec(),
    ]
}

/// A small valid Parquet file (numbers, labels, missing values), written once.
fn parquet_seed() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("seed.csv");
    std::fs::write(&csv, dataset_seeds()[0].as_slice()).expect("write");
    let table = flywheel::dataset::read(&csv, &flywheel::dataset::ReadOptions::default())
        .expect("the seed reads");
    let path = dir.path().join("seed.parquet");
    flywheel::dataset::write_parquet(&table, &path).expect("write parquet");
    std::fs::read(&path).expect("read back")
}

/// Random query strings on every GET route with a query: 4xx for nonsense, never 5xx.
#[tokio::test]
async fn query_strings_never_get_a_server_error() {
    use rand::{Rng, SeedableRng};
    let app = crate::helpers::spawn_app().await;
    let routes = [
        "/v1/models/m/features",
        "/v1/jobs/runs",
        "/v1/drift/latest",
        "/v1/drift",
        "/v1/health",
        "/v1/health/history",
        "/v1/alerts",
        "/v1/reports",
    ];
    let keys = [
        "model", "from", "to", "class", "feature", "kind", "monitor", "job", "limit", "window",
        "state", "metric", "x",
    ];
    let values = [
        "m",
        "",
        "2026-12-01T00:00:00Z",
        "2026-13-45T99:00:00Z",
        "-1",
        "99999999999999999999",
        "input",
        "%00",
        "%ZZ",
        "..%2F..%2Fetc",
        "😀",
        "1e309",
        "NaN",
        "true",
    ];
    let seed: u64 = rand::random();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for _ in 0..cases() {
        let route = routes[rng.gen_range(0..routes.len())];
        let n = rng.gen_range(0..4);
        let mut q = String::new();
        for i in 0..n {
            if i > 0 {
                q.push('&');
            }
            if rng.gen_bool(0.2) {
                // Raw random bytes, percent-encoded so that the URL itself is valid.
                let raw: Vec<u8> = (0..rng.gen_range(0..12)).map(|_| rng.r#gen()).collect();
                for b in raw {
                    q.push_str(&format!("%{b:02X}"));
                }
            } else {
                q.push_str(keys[rng.gen_range(0..keys.len())]);
                q.push('=');
                q.push_str(values[rng.gen_range(0..values.len())]);
            }
        }
        let url = app.url(&format!("{route}?{q}"));
        let r = app
            .client
            .get(&url)
            .send()
            .await
            .expect("the server answers");
        assert!(
            r.status().as_u16() < 500,
            "seed {seed}: {url} answered {}: {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
    }
    app.stop().await;
}

/// Every input in the cargo-fuzz corpus (`fuzz/corpus/<target>/`, seeds and the crashes the
/// fuzzer found), replayed through the same calls as the fuzz targets on every test run, so a
/// fixed crash stays fixed even where `scripts/fuzz.sh` does not run. An abort (as the Parquet
/// footer that once made the parquet crate allocate 118 GB) kills this test binary: loud.
#[test]
fn the_fuzz_corpus_replays_without_a_crash() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let files = |target: &str| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(root.join(target))
            .unwrap_or_else(|e| panic!("fuzz/corpus/{target}: {e}"))
            .map(|e| {
                let p = e.expect("entry").path();
                (p.display().to_string(), std::fs::read(&p).expect("read"))
            })
            .collect();
        v.sort();
        assert!(!v.is_empty(), "fuzz/corpus/{target} is empty");
        v
    };
    let limits = EventLimits::default();
    let p = Pseudonymizer::new(b"fuzz-key-0123456789abcdef0123456789");
    for (_, body) in files("event_batch") {
        for framing in [Framing::Ndjson, Framing::JsonArray] {
            if let Ok(elems) = split_batch(&body, framing, 1000) {
                for text in elems.into_iter().flatten() {
                    let _ = parse_event(text, &limits, &p, 1_796_200_000_000_000);
                }
            }
        }
    }
    for (_, bytes) in files("dataset_text") {
        use flywheel::dataset::{read_bytes, ReadOptions, TextFormat};
        for format in [TextFormat::Csv, TextFormat::Ndjson] {
            let _ = read_bytes(&bytes, format, "upload", &ReadOptions::default());
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut read_ok = 0;
    for (name, bytes) in files("dataset_parquet") {
        let path = dir.path().join("input.parquet");
        std::fs::write(&path, &bytes).expect("write");
        match flywheel::dataset::read(&path, &flywheel::dataset::ReadOptions::default()) {
            Ok(_) => read_ok += 1,
            Err(e) if name.contains("regression") => {
                assert!(e.to_string().contains("Parquet"), "{name}: {e}")
            }
            Err(e) => panic!("{name}: a seed must read: {e}"),
        }
    }
    assert!(read_ok >= 1, "the valid seed reads");
    for (_, bytes) in files("config_file") {
        let text = String::from_utf8_lossy(&bytes);
        let _ = flywheel::config::check_text(&text, flywheel::config::Overrides::default());
    }
}
