use super::*;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

fn summarise(values: &[Option<f64>], cats: &[&str], k: u16, cap: usize) -> FeatureSummary {
    let mut s = FeatureSummary::new(k, cap);
    for v in values {
        match v {
            Some(x) => s.add_number(*x),
            None => s.add_missing(),
        }
    }
    for c in cats {
        s.add_category(c);
    }
    s
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

/// Exact normalised rank of x in a sample.
fn true_cdf(sorted: &[f64], x: f64) -> f64 {
    sorted.partition_point(|&v| v <= x) as f64 / sorted.len() as f64
}

fn max_rank_error(sketch: &Kll, values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let step = (sorted.len() / 2000).max(1);
    sorted
        .iter()
        .step_by(step)
        .map(|&x| (sketch.cdf(x) - true_cdf(&sorted, x)).abs())
        .fold(0.0, f64::max)
}

fn lcg(seed: &mut u64) -> f64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*seed >> 11) as f64 / (1u64 << 53) as f64
}

proptest! {
    #[test]
    fn merge_equals_union(
        a in prop::collection::vec(prop::option::weighted(0.9, -1e6f64..1e6), 0..300),
        b in prop::collection::vec(prop::option::weighted(0.9, -1e6f64..1e6), 0..300),
        ca in prop::collection::vec(prop::sample::select(vec!["x", "y", "z", "w"]), 0..50),
        cb in prop::collection::vec(prop::sample::select(vec!["x", "y", "v"]), 0..50),
    ) {
        // k large enough that nothing compacts: the union must be reproduced exactly.
        let k = 1024;
        let mut merged = summarise(&a, &ca, k, 16);
        merged.merge(&summarise(&b, &cb, k, 16));
        let union: Vec<Option<f64>> = a.iter().chain(b.iter()).copied().collect();
        let ucats: Vec<&str> = ca.iter().chain(cb.iter()).copied().collect();
        let direct = summarise(&union, &ucats, k, 16);
        prop_assert_eq!(merged.missing, direct.missing);
        prop_assert_eq!(merged.moments.n, direct.moments.n);
        prop_assert!(close(merged.moments.mean, direct.moments.mean));
        prop_assert!(close(merged.moments.m2, direct.moments.m2),
            "m2 {} vs {}", merged.moments.m2, direct.moments.m2);
        prop_assert_eq!(merged.min, direct.min);
        prop_assert_eq!(merged.max, direct.max);
        prop_assert_eq!(&merged.categories, &direct.categories);
        prop_assert_eq!(merged.sketch.weighted_items(), direct.sketch.weighted_items());
    }

    #[test]
    fn merged_sketch_keeps_rank_bound(seed in any::<u64>(), parts in 2usize..40) {
        let mut s = seed;
        let values: Vec<f64> = (0..60_000).map(|_| lcg(&mut s) * 100.0).collect();
        let chunk = values.len() / parts + 1;
        let mut merged = Kll::new(kll::DEFAULT_K);
        for c in values.chunks(chunk) {
            let mut part = Kll::new(kll::DEFAULT_K);
            for &x in c { part.update(x); }
            merged.merge(&part);
        }
        prop_assert_eq!(merged.count(), values.len() as u64);
        let err = max_rank_error(&merged, &values);
        prop_assert!(err < 0.01, "rank error {} after merging {} parts", err, parts);
    }

    #[test]
    fn categories_past_the_cap_keep_bounds_and_heavy_hitters(
        vals in prop::collection::vec(prop_oneof![3 => 0u32..3, 2 => 0u32..60], 1..600),
        split in 0usize..600,
    ) {
        let cap = 10;
        let mut truth: std::collections::BTreeMap<String, u64> = Default::default();
        for v in &vals { *truth.entry(v.to_string()).or_default() += 1; }
        let check = |c: &Categories, n: u64, single_stream: bool| -> Result<(), TestCaseError> {
            prop_assert!(c.counts.len() <= cap);
            prop_assert_eq!(c.total(), n, "counts + other is every value");
            for (k, lower) in &c.counts {
                let t = truth.get(k).copied().unwrap_or(0);
                let upper = lower + c.slack.get(k).copied().unwrap_or(0);
                prop_assert!(*lower <= t && t <= upper, "{k}: {lower} ≤ {t} ≤ {upper}");
            }
            if single_stream {
                for (k, t) in &truth {
                    if *t > n / cap as u64 {
                        prop_assert!(c.counts.contains_key(k), "heavy hitter {k} ({t} of {n}) lost");
                    }
                }
            }
            Ok(())
        };
        let mut s = FeatureSummary::new(64, cap);
        for v in &vals { s.add_category(&v.to_string()); }
        check(&s.categories, vals.len() as u64, true)?;
        // Two halves merged: bounds and totals still hold.
        let cut = split.min(vals.len());
        let (mut a, mut b) = (FeatureSummary::new(64, cap), FeatureSummary::new(64, cap));
        for v in &vals[..cut] { a.add_category(&v.to_string()); }
        for v in &vals[cut..] { b.add_category(&v.to_string()); }
        a.merge(&b);
        check(&a.categories, vals.len() as u64, false)?;
    }
}

#[test]
fn sketch_rank_error_within_bound_on_hostile_orders() {
    let n = 1_000_000usize;
    let mut seed = 7u64;
    let random: Vec<f64> = (0..n).map(|_| lcg(&mut seed)).collect();
    let ascending: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let descending: Vec<f64> = (0..n).rev().map(|i| i as f64).collect();
    let zigzag: Vec<f64> = (0..n)
        .map(|i| if i % 2 == 0 { i as f64 } else { (n - i) as f64 })
        .collect();
    let ties: Vec<f64> = (0..n).map(|i| (i % 7) as f64).collect();
    for (name, values) in [
        ("random", random),
        ("ascending", ascending),
        ("descending", descending),
        ("zigzag", zigzag),
        ("ties", ties),
    ] {
        let mut k = Kll::new(kll::DEFAULT_K);
        for &x in &values {
            k.update(x);
        }
        let err = max_rank_error(&k, &values);
        // Documented bound at k = 512 is ~0.6 % per query; allow for the max over 2,000 queries.
        assert!(err < 0.01, "{name}: max rank error {err}");
    }
}

#[test]
fn state_does_not_grow_with_count() {
    let mut s = FeatureSummary::default();
    let mut seed = 1u64;
    let mut sizes = Vec::new();
    for round in 0..4 {
        for _ in 0..(10usize.pow(round + 3)) {
            s.add_number(lcg(&mut seed));
            s.add_category(if lcg(&mut seed) < 0.5 { "a" } else { "b" });
        }
        sizes.push(postcard::to_allocvec(&s).expect("serialize").len());
    }
    // 1e3 → 1e6 values: the serialized size stays under ~3k items plus headers.
    let bound = 3 * kll::DEFAULT_K as usize * 9 + 1024;
    for (i, sz) in sizes.iter().enumerate() {
        assert!(*sz <= bound, "size {sz} at round {i} over {bound}");
    }
    assert!(
        sizes[3] <= sizes[2] + 2048,
        "grew from {} to {}",
        sizes[2],
        sizes[3]
    );
    assert_eq!(s.moments.n, 1_111_000);
}

#[test]
fn small_samples_are_exact() {
    let mut k = Kll::new(64);
    for i in 0..63 {
        k.update(i as f64);
    }
    assert!(k.is_exact());
    assert_eq!(k.quantile(0.5), Some(31.0));
    assert_eq!(k.cdf(9.0), 10.0 / 63.0);
}

#[test]
fn an_empty_accumulator_of_another_k_is_the_identity() {
    // Health and drift fold stored summaries into a default (k = 512) accumulator; a summary of
    // a larger k must come out whole, not re-compacted at 512.
    let values: Vec<f64> = (0..3000).map(f64::from).collect();
    let mut big = Kll::new(4096);
    big.update_many(&values);
    assert!(big.is_exact());
    let mut acc = FeatureSummary::default();
    let mut s = FeatureSummary::new(4096, 100);
    s.add_numbers(&values);
    acc.merge(&s);
    assert_eq!(acc.sketch, big);
    assert!(acc.sketch.is_exact());
    // And an empty sketch merged in changes nothing.
    let mut b2 = big.clone();
    b2.merge(&Kll::default());
    assert_eq!(b2, big);
}

#[test]
fn kind_is_inferred() {
    let mut s = FeatureSummary::default();
    assert_eq!(s.kind(), ValueKind::Empty);
    s.add_bool(true);
    s.add_bool(false);
    assert_eq!(s.kind(), ValueKind::Binary);
    s.add_category("x");
    assert_eq!(s.kind(), ValueKind::Categorical);
    s.add_number(1.0);
    assert_eq!(s.kind(), ValueKind::Mixed);
    let mut n = FeatureSummary::default();
    n.add_number(f64::NAN);
    n.add_missing();
    assert_eq!(n.kind(), ValueKind::Numeric);
    assert_eq!(n.non_finite, 1);
    assert_eq!(n.missing_share(), Some(0.5));
}

#[test]
fn moments_match_direct_computation() {
    let xs = [1.0, 2.0, 4.0, 8.0, 16.0];
    let mut m = Moments::default();
    xs.iter().for_each(|&x| m.update(x));
    let mean = xs.iter().sum::<f64>() / 5.0;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 4.0;
    assert!(close(m.mean, mean));
    assert!(close(m.variance_sample().expect("n>1"), var));
}
