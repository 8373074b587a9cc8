//! In-process ingest: validated interaction events (20 numeric + 5 categorical features) folded
//! into summaries, and the full path of parsing + validating an NDJSON body.

// The same allocator as the `flywheel` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flywheel::events::pseudonym::Pseudonymizer;
use flywheel::events::{parse_event, split_batch, Event, EventLimits, Framing};
use flywheel::summary::delta::Delta;

fn body(n: usize, now: &str) -> String {
    let mut s = String::new();
    for i in 0..n {
        let x = (i * 2654435761) % 1000;
        s.push_str(&format!(
            r#"{{"event_id":"b-{i}","event_type":"interaction","occurred_at":"{now}","model":{{"id":"bench","version":"v1"}},"user_id":"u{}","features":{{"#,
            i % 5000
        ));
        for f in 0..20 {
            s.push_str(&format!(
                r#""n{f}":{}.{},"#,
                (x + f * 7) % 100,
                (x * 13 + f) % 1000
            ));
        }
        for f in 0..5 {
            s.push_str(&format!(r#""c{f}":"v{}""#, (x + f) % (3 + f * 10)));
            s.push(if f < 4 { ',' } else { '}' });
        }
        s.push_str(&format!(
            r#","prediction":{{"score":0.{x},"label":"l{}","confidence":0.5}}}}"#,
            x % 3
        ));
        s.push('\n');
    }
    s
}

fn bench(c: &mut Criterion) {
    let now = chrono::Utc::now();
    let text = body(10_000, &now.to_rfc3339());
    let pz = Pseudonymizer::new(b"bench-key-0123456789");
    let limits = EventLimits::default();
    let now_us = now.timestamp_micros();
    let validate = || -> Vec<Event> {
        split_batch(text.as_bytes(), Framing::Ndjson, 100_000)
            .expect("batch")
            .into_iter()
            .map(|r| parse_event(r.expect("utf-8"), &limits, &pz, now_us).expect("valid"))
            .collect()
    };
    let events = validate();
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10);
    g.throughput(Throughput::Elements(events.len() as u64));
    // As the writer folds: one call per accepted request batch (here 500 events each).
    g.bench_function("fold_batches_10k_events", |b| {
        b.iter(|| {
            let mut d = Delta::new(3600, 512, 256);
            for chunk in events.chunks(500) {
                d.fold_batch(chunk);
            }
            d
        })
    });
    // The same without the joint co-moments (ingest.joint_features = 0): their cost.
    g.bench_function("fold_batches_10k_events_no_joint", |b| {
        b.iter(|| {
            let mut d = Delta::new(3600, 512, 256).with_joint_features(0);
            for chunk in events.chunks(500) {
                d.fold_batch(chunk);
            }
            d
        })
    });
    // As the service folds: request threads fold their batches (5,000 events, in runs of 512)
    // into batch deltas in parallel, one per core; the writer merges each into its delta.
    let big: Vec<Event> = (0..10).flat_map(|_| events.iter().cloned()).collect();
    g.throughput(Throughput::Elements(big.len() as u64));
    g.bench_function("fold_pipeline_100k_events", |b| {
        use rayon::prelude::*;
        b.iter(|| {
            let deltas: Vec<Delta> = big
                .par_chunks(5000)
                .map(|batch| {
                    let mut d = Delta::new(3600, 512, 256);
                    for run in batch.chunks(512) {
                        d.fold_batch(run);
                    }
                    d
                })
                .collect();
            let mut writer = Delta::new(3600, 512, 256);
            for d in &deltas {
                writer.merge(d);
            }
            writer
        })
    });
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("parse_validate_10k_events", |b| b.iter(validate));
    g.bench_function("journal_encode_10k_events", |b| {
        b.iter(|| flywheel::store::encode_batch(&events))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
