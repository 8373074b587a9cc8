//! Criterion benches of each statistic at n = 1e3 … 1e6 per side (inputs pre-sorted, as the
//! service holds them; `Sample::new` sorting is measured apart).

// The same allocator as the `flywheel` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use flywheel::drift::multivariate::decide_window;
use flywheel::stats::binning::{self, BinningRule};
use flywheel::stats::multivariate::CoMoments;
use flywheel::stats::two_sample;
use flywheel::stats::Sample;
use flywheel::store::JointRow;
use rand::{rngs::StdRng, SeedableRng};
use rand_distr::{Distribution, Normal};

fn samples(n: usize) -> (Sample, Sample) {
    let mut rng = StdRng::seed_from_u64(7);
    let d = Normal::new(0.0, 1.0).expect("normal");
    let a: Vec<f64> = (0..n).map(|_| d.sample(&mut rng)).collect();
    let b: Vec<f64> = (0..n).map(|_| d.sample(&mut rng) + 0.1).collect();
    (Sample::new(a), Sample::new(b))
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("two_sample");
    g.sample_size(10);
    for &n in &[1_000usize, 10_000, 100_000, 1_000_000] {
        let (a, b) = samples(n);
        g.throughput(Throughput::Elements(2 * n as u64));
        g.bench_with_input(BenchmarkId::new("ks_auto", n), &n, |bch, _| {
            bch.iter(|| two_sample::ks_2samp(&a, &b))
        });
        g.bench_with_input(BenchmarkId::new("wasserstein_normed", n), &n, |bch, _| {
            bch.iter(|| two_sample::wasserstein_normed(&a, &b))
        });
        g.bench_with_input(BenchmarkId::new("energy", n), &n, |bch, _| {
            bch.iter(|| two_sample::energy_distance(&a, &b))
        });
        g.bench_with_input(BenchmarkId::new("psi_kl_js_quantile10", n), &n, |bch, _| {
            bch.iter(|| binning::divergences(&binning::bin_numeric(&a, &b, BinningRule::default())))
        });
        g.bench_with_input(BenchmarkId::new("cramervonmises", n), &n, |bch, _| {
            bch.iter(|| two_sample::cramervonmises_2samp(&a, &b))
        });
        g.bench_with_input(BenchmarkId::new("anderson", n), &n, |bch, _| {
            bch.iter(|| two_sample::anderson_ksamp(&a, &b))
        });
        // Shuffled input, as rows arrive.
        let mut raw: Vec<f64> = a.values().to_vec();
        let mut s = 1u64;
        for i in (1..raw.len()).rev() {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            raw.swap(i, (s >> 33) as usize % (i + 1));
        }
        g.bench_with_input(BenchmarkId::new("sample_new_sort", n), &n, |bch, _| {
            bch.iter(|| Sample::new(raw.clone()))
        });
    }
    g.finish();

    // Category tests and distances, on counts over K categories (cost depends on K, not rows).
    let mut g = c.benchmark_group("categorical");
    g.sample_size(20);
    for &k in &[3usize, 50, 1000] {
        let r: Vec<u64> = (0..k as u64).map(|i| 1000 + i * 7 % 13).collect();
        let cur: Vec<u64> = (0..k as u64).map(|i| 1000 + i * 11 % 17).collect();
        g.bench_with_input(BenchmarkId::new("chi2_contingency", k), &k, |b, _| {
            b.iter(|| flywheel::stats::categorical::chi2_contingency(&r, &cur, true))
        });
        let bn = binning::Binned::from_counts(r.clone(), cur.clone());
        g.bench_with_input(BenchmarkId::new("psi_kl_js", k), &k, |b, _| {
            b.iter(|| binning::divergences(&bn))
        });
        g.bench_with_input(BenchmarkId::new("hellinger", k), &k, |b, _| {
            b.iter(|| binning::hellinger_shares(&bn.reference, &bn.current))
        });
    }
    g.bench_function("ztest", |b| {
        b.iter(|| flywheel::stats::categorical::z_test_proportions(420, 1000, 465, 1000))
    });
    g.finish();

    // Multivariate drift of one window as the drift job decides it: a 7-day baseline of hourly
    // co-moments (168 rows) and a one-hour window, d inputs (the cost depends on d and the
    // number of stored rows, not on events).
    let mut g = c.benchmark_group("multivariate");
    g.sample_size(20);
    for &d in &[8usize, 32] {
        let mut rng = StdRng::seed_from_u64(d as u64);
        let norm = Normal::new(0.0, 1.0).expect("normal");
        let names: Vec<String> = (0..d).map(|i| format!("f{i:02}")).collect();
        let hour = |rng: &mut StdRng, bucket: i64| {
            let flat: Vec<f64> = (0..200 * d).map(|_| norm.sample(rng)).collect();
            let mut moments = CoMoments::new(d);
            moments.add_rows(&flat);
            JointRow {
                version: "v1".into(),
                bucket,
                features: names.clone(),
                moments,
            }
        };
        let base: Vec<JointRow> = (0..168).map(|h| hour(&mut rng, h * 3600)).collect();
        let cur = vec![hour(&mut rng, 168 * 3600)];
        g.bench_with_input(
            BenchmarkId::new("decide_window_7d_hourly", d),
            &d,
            |b, _| b.iter(|| decide_window(&base, &cur, 0, 3600, 100)),
        );
    }
    g.finish();

    // Data quality of one window as the quality job evaluates it: 10 models × 100 inputs (80
    // numeric with 2,000 values in the window, every tenth with 2 % of them outside the
    // baseline's range; 20 categorical), the built-in rules plus a completeness and an entropy
    // rule, against a 7-day baseline of 50,000 values per input.
    let mut g = c.benchmark_group("quality");
    g.sample_size(20);
    let models = quality_models();
    let rules = {
        let raw = flywheel::quality::rules::RawQuality {
            rules: vec![
                flywheel::quality::rules::RawRule {
                    name: "complete".into(),
                    check: "missing".into(),
                    ..Default::default()
                },
                flywheel::quality::rules::RawRule {
                    name: "diverse".into(),
                    check: "entropy".into(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let mut errors = Vec::new();
        raw.validate(Some(3600), &mut errors)
            .expect("valid rules")
            .rules
    };
    // What is timed finds what was planted: 8 out-of-range inputs per model, nothing else.
    let found: usize = models
        .iter()
        .map(|(m, inputs)| {
            flywheel::quality::evaluate(m, &rules, inputs, "rolling:7d")
                .1
                .violations_total
        })
        .sum();
    assert_eq!(found, 80, "violations found by the benched evaluation");
    g.bench_function("evaluate_10_models_x_100_features", |b| {
        b.iter(|| {
            models
                .iter()
                .map(|(m, inputs)| {
                    flywheel::quality::evaluate(m, &rules, inputs, "rolling:7d")
                        .1
                        .violations_total
                })
                .sum::<usize>()
        })
    });
    g.finish();
}

fn quality_models() -> Vec<(String, flywheel::quality::Inputs)> {
    use flywheel::summary::delta::SeriesClass;
    use flywheel::summary::FeatureSummary;
    let mut rng = StdRng::seed_from_u64(11);
    let norm = Normal::new(0.0, 1.0).expect("normal");
    let plans = ["free", "pro", "team", "edu", "gov"];
    (0..10)
        .map(|m| {
            let mut base = flywheel::drift::run::SummaryMap::new();
            let mut cur = flywheel::drift::run::SummaryMap::new();
            for f in 0..100 {
                let (mut b, mut c) = (FeatureSummary::default(), FeatureSummary::default());
                if f < 80 {
                    let xs: Vec<f64> = (0..50_000).map(|_| norm.sample(&mut rng)).collect();
                    b.add_numbers(&xs);
                    let ys: Vec<f64> = (0..2_000)
                        .map(|i| {
                            if f % 10 == 0 && i % 50 == 0 {
                                100.0
                            } else {
                                norm.sample(&mut rng)
                            }
                        })
                        .collect();
                    c.add_numbers(&ys);
                } else {
                    let pick = |rng: &mut StdRng| plans[rand::Rng::gen_range(rng, 0..plans.len())];
                    let xs: Vec<&str> = (0..50_000).map(|_| pick(&mut rng)).collect();
                    b.add_categories(&xs);
                    let ys: Vec<&str> = (0..2_000).map(|_| pick(&mut rng)).collect();
                    c.add_categories(&ys);
                }
                let key = (SeriesClass::Input, format!("f{f:03}"));
                base.insert(key.clone(), b);
                cur.insert(key, c);
            }
            let counts = (0..169)
                .map(|h| flywheel::store::BucketCount {
                    version: "v1".into(),
                    event_type: flywheel::events::EventType::Interaction,
                    bucket: h * 3600,
                    n: 2_000,
                    first_us: h * 3_600_000_000,
                })
                .collect();
            let inputs = flywheel::quality::Inputs {
                window: (168 * 3600, 169 * 3600),
                bucket_secs: 3600,
                current: cur,
                baseline: std::sync::Arc::new(base),
                counts,
                week_ago: Vec::new(),
                training: Default::default(),
            };
            (format!("model-{m}"), inputs)
        })
        .collect()
}

criterion_group!(benches, bench);
criterion_main!(benches);
