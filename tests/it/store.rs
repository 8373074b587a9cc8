//! The store conformance suite: one set of tests, run against the embedded SQLite store and
//! against PostgreSQL (a fresh database on the throwaway cluster `scripts/test.sh` starts).
//! Each `conformance!` entry expands to `sqlite_<name>` and `postgres_<name>`.

use crate::helpers::pg_database;
use flywheel::clock::Timestamp;
use flywheel::events::{Body, Event, EventType, ModelRef, Value};
use flywheel::store::postgres::PgOptions;
use flywheel::store::{
    AlertRow, AlertState, Appended, BaselineInfo, JobRun, JournalEntry, Location, NamedSummary,
    Outcome, ResultQuery, ResultRow, Store, StoreError,
};
use flywheel::summary::delta::{Delta, SeriesClass};
use flywheel::summary::FeatureSummary;
use std::sync::Arc;
use tempfile::TempDir;

/// A store under test and what keeps it alive.
struct Under {
    store: Arc<dyn Store>,
    location: Location,
    _dir: Option<TempDir>,
}

impl Under {
    /// A second, independent connection to the same store (another process, in effect).
    async fn reopen(&self) -> Arc<dyn Store> {
        flywheel::store::open(&self.location).await.expect("reopen")
    }
}

async fn sqlite() -> Under {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = Location::Sqlite(dir.path().to_path_buf());
    Under {
        store: flywheel::store::open(&location).await.expect("open sqlite"),
        location,
        _dir: Some(dir),
    }
}

async fn postgres() -> Under {
    let location = Location::Postgres {
        url: pg_database().await.into(),
        options: PgOptions {
            pool_size: 8,
            ..PgOptions::default()
        },
    };
    Under {
        store: flywheel::store::open(&location)
            .await
            .expect("open postgres"),
        location,
        _dir: None,
    }
}

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                super::$name(super::sqlite().await).await
            })*
        }
        mod postgres_backend {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                super::$name(super::postgres().await).await
            })*
        }
    };
}

conformance!(
    journal_appends_checkpoints_trims_and_retires,
    a_stopped_writer_is_adopted_and_then_fenced,
    ids_are_checked_across_writers_of_a_shared_store,
    concurrent_checkpoints_merge_to_the_union,
    series_reads_filter_and_order,
    baselines_are_replaced_whole,
    job_runs_and_results_replace_per_window,
    leases_use_the_database_clock,
    alerts_insert_update_and_list,
    the_key_fingerprint_is_recorded_once,
    purge_drops_old_dedup_state_and_activity,
    damaged_rows_are_errors_not_panics,
    old_history_is_pruned_but_each_jobs_newest_window_and_open_alerts_stay,
    roll_up_merges_whole_days_and_keeps_concurrent_checkpoints,
    an_erased_user_leaves_no_activity_and_is_not_folded_back,
);

const BUCKET: i64 = 3600;
const T0: i64 = 1_700_000_000;

fn event(id: &str, model: &str, secs: i64, x: f64, user: u64) -> Event {
    Event {
        event_id: id.into(),
        occurred_at_us: secs * 1_000_000,
        model: ModelRef {
            id: model.into(),
            version: "v1".into(),
        },
        user_key: Some(user),
        consent_training: None,
        body: Body::Interaction {
            features: vec![
                ("x".into(), Value::Number(x)),
                (
                    "c".into(),
                    Value::Category(format!("k{}", (x as i64) % 3).into()),
                ),
            ],
            score: Some(0.5),
            confidence: None,
            label: None,
            segment: Vec::new(),
        },
    }
}

fn delta_of(events: &[Event]) -> Delta {
    let mut d = Delta::new(BUCKET, 64, 100);
    d.fold_batch(events);
    d
}

fn entry<'a>(payload: &'a [u8], ids: &'a [u64]) -> JournalEntry<'a> {
    JournalEntry { payload, ids }
}

fn hashes(events: &[Event]) -> Vec<u64> {
    events
        .iter()
        .map(|e| flywheel::ingest::dedup::hash_id(&e.event_id))
        .collect()
}

fn upto(a: Appended) -> i64 {
    match a {
        Appended::Upto(s) => s,
        Appended::Duplicates(d) => panic!("unexpected duplicates {d:?}"),
    }
}

async fn journal_appends_checkpoints_trims_and_retires(u: Under) {
    let j = u.store.journal();
    let w = j.register_writer("t").await.expect("register");
    let events: Vec<Event> = (0..10)
        .map(|i| event(&format!("e{i}"), "m", T0, i as f64, i))
        .collect();
    let p1 = flywheel::store::encode_batch(&events[..5]);
    let p2 = flywheel::store::encode_batch(&events[5..]);
    let (h1, h2) = (hashes(&events[..5]), hashes(&events[5..]));
    let s1 = upto(j.append(w, &[entry(&p1, &h1)], T0).await.expect("append"));
    let s2 = upto(j.append(w, &[entry(&p2, &h2)], T0).await.expect("append"));
    assert!(s2 > s1, "seqs increase: {s1} then {s2}");
    assert_eq!(j.unfolded().await.expect("unfolded"), 2);
    // Checkpoint up to the first row only: one row stays unfolded and is not trimmed.
    j.checkpoint(w, &delta_of(&events[..5]), None, s1)
        .await
        .expect("checkpoint");
    assert_eq!(j.unfolded().await.expect("unfolded"), 1);
    // A writer trims only its own rows: another writer's trim leaves w's folded row alone.
    let other = j.register_writer("other").await.expect("register");
    assert_eq!(j.trim(other, 100).await.expect("trim"), 0);
    assert_eq!(j.trim(w, 100).await.expect("trim"), 1);
    assert_eq!(j.trim(w, 100).await.expect("trim"), 0);
    j.checkpoint(w, &delta_of(&events[5..]), None, s2)
        .await
        .expect("checkpoint");
    assert_eq!(j.unfolded().await.expect("unfolded"), 0);
    let counts = u.store.series().type_counts().await.expect("counts");
    assert_eq!(counts.len(), 1);
    assert_eq!(counts[0].count, 10);
    // A clean stop removes the writer; later calls as it are fenced.
    j.retire_writer(w).await.expect("retire");
    assert!(matches!(j.heartbeat(w).await, Err(StoreError::Fenced)));
    // An empty append is fine and writes nothing.
    let w2 = j.register_writer("t2").await.expect("register");
    assert_eq!(
        j.append(w2, &[], T0).await.expect("empty"),
        Appended::Upto(0)
    );
}

async fn a_stopped_writer_is_adopted_and_then_fenced(u: Under) {
    let other = u.reopen().await;
    let (ja, jb) = (u.store.journal(), other.journal());
    let a = ja.register_writer("a").await.expect("register a");
    let b = jb.register_writer("b").await.expect("register b");
    let events: Vec<Event> = (0..6)
        .map(|i| event(&format!("a{i}"), "m", T0, i as f64, i))
        .collect();
    let p = flywheel::store::encode_batch(&events[..3]);
    let q = flywheel::store::encode_batch(&events[3..]);
    let (hp, hq) = (hashes(&events[..3]), hashes(&events[3..]));
    let s1 = upto(ja.append(a, &[entry(&p, &hp)], T0).await.expect("append"));
    ja.checkpoint(a, &delta_of(&events[..3]), None, s1)
        .await
        .expect("checkpoint");
    upto(ja.append(a, &[entry(&q, &hq)], T0).await.expect("append"));
    // A's heartbeat is fresh: nothing to adopt with a long TTL.
    let none = jb.adopt_orphans(b, 3600).await.expect("adopt");
    assert!(none.writers.is_empty() && none.rows.is_empty());
    // Stale (TTL 0 here): B takes over A's unfolded row only, under new seqs of its own.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let got = jb.adopt_orphans(b, 0).await.expect("adopt");
    assert_eq!(got.writers, vec![a]);
    assert_eq!(got.rows.len(), 1);
    let replayed = flywheel::store::decode_batch(&got.rows[0].1).expect("decode");
    assert_eq!(replayed, events[3..].to_vec());
    // A is fenced everywhere: appends, checkpoints and heartbeats are refused, nothing lands.
    let fresh = [event("a-late", "m", T0, 1.0, 9)];
    let (pf, hf) = (flywheel::store::encode_batch(&fresh), hashes(&fresh));
    assert!(matches!(
        ja.append(a, &[entry(&pf, &hf)], T0).await,
        Err(StoreError::Fenced)
    ));
    assert!(matches!(
        ja.checkpoint(a, &delta_of(&events[3..]), None, 99).await,
        Err(StoreError::Fenced)
    ));
    assert!(matches!(ja.heartbeat(a).await, Err(StoreError::Fenced)));
    // B folds what it adopted; every event is counted once.
    jb.checkpoint(b, &delta_of(&replayed), None, got.rows[0].0)
        .await
        .expect("checkpoint b");
    let counts = u.store.series().type_counts().await.expect("counts");
    assert_eq!(counts[0].count, 6);
    assert_eq!(ja.unfolded().await.expect("unfolded"), 0);
}

async fn ids_are_checked_across_writers_of_a_shared_store(u: Under) {
    let other = u.reopen().await;
    let (ja, jb) = (u.store.journal(), other.journal());
    let a = ja.register_writer("a").await.expect("register");
    let b = jb.register_writer("b").await.expect("register");
    let events: Vec<Event> = (0..4)
        .map(|i| event(&format!("d{i}"), "m", T0, 0.0, 1))
        .collect();
    let p = flywheel::store::encode_batch(&events[..2]);
    let h = hashes(&events[..2]);
    upto(ja.append(a, &[entry(&p, &h)], T0).await.expect("append"));
    let q = flywheel::store::encode_batch(&events[1..]);
    let hq = hashes(&events[1..]);
    let second = jb.append(b, &[entry(&q, &hq)], T0).await.expect("append");
    if u.store.journal().shared() {
        // d1 was recorded by A: B's append is refused whole, naming it.
        assert_eq!(second, Appended::Duplicates(vec![hq[0]]));
        assert_eq!(jb.unfolded().await.expect("unfolded"), 1);
        // Past the horizon, the id counts as new again.
        let late = jb
            .append(b, &[entry(&p[..], &h[..1])], T0 + 7200)
            .await
            .expect("append");
        assert!(matches!(late, Appended::Upto(_)), "{late:?}");
    } else {
        // One process owns the store: ids are checked in its memory, not here.
        assert!(matches!(second, Appended::Upto(_)));
    }
}

async fn concurrent_checkpoints_merge_to_the_union(u: Under) {
    // Four writers (two connections each for PostgreSQL, the same file for SQLite) checkpoint
    // deltas over the same keys at the same time; the stored state is the fold of every event.
    let mut all = Vec::new();
    let mut tasks = Vec::new();
    for w in 0..4u64 {
        let store = u.reopen().await;
        let mut batches = Vec::new();
        for round in 0..10u64 {
            let evs: Vec<Event> = (0..20u64)
                .map(|i| {
                    let n = w * 1000 + round * 20 + i;
                    let mut e = event(
                        &format!("u{n}"),
                        "m",
                        T0 + (n as i64 % 3) * BUCKET,
                        n as f64,
                        n,
                    );
                    // A second numeric input, so that the joint co-moments (x, y) are kept too.
                    if let Body::Interaction { features, .. } = &mut e.body {
                        features
                            .push(("y".into(), Value::Number((n % 7) as f64 - 0.25 * n as f64)));
                    }
                    e
                })
                .collect();
            all.extend(evs.clone());
            batches.push(evs);
        }
        tasks.push(tokio::spawn(async move {
            let j = store.journal();
            let id = j.register_writer("w").await.expect("register");
            for evs in batches {
                let mut tries = 0;
                // A deadlock or serialisation failure is retried, as the ingest writer does.
                while let Err(e) = j.checkpoint(id, &delta_of(&evs), None, 0).await {
                    tries += 1;
                    assert!(tries < 20, "checkpoint keeps failing: {e}");
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer task");
    }
    let rows = u
        .store
        .series()
        .summaries("m", None, 0, i64::MAX)
        .await
        .expect("summaries");
    let union = delta_of(&all);
    let vd = &union.models["m"]["v1"];
    let mut expected = 0;
    for ((class, bucket), names) in &vd.groups {
        for (name, want) in names {
            expected += 1;
            let got = rows
                .iter()
                .find(|r| r.class == *class && r.bucket == *bucket && &r.name == name)
                .unwrap_or_else(|| panic!("missing summary {class:?} {bucket} {name}"));
            assert_same_summary(&got.summary, want, name);
        }
    }
    assert_eq!(rows.len(), expected);
    // The joint co-moments merge to those of the union too (one feature set, three buckets).
    let joint = u
        .store
        .series()
        .joint_moments("m", 0, i64::MAX)
        .await
        .expect("joint moments");
    assert_eq!(joint.len(), 3);
    assert_eq!(vd.joint.len(), 3);
    for ((bucket, names), want) in &vd.joint {
        let got = joint
            .iter()
            .find(|r| r.bucket == *bucket && &r.features == names)
            .unwrap_or_else(|| panic!("missing joint moments {bucket} {names:?}"));
        assert_eq!(got.features, vec!["x".to_owned(), "y".to_owned()]);
        assert_eq!(
            (got.moments.n, got.moments.incomplete),
            (want.n, want.incomplete)
        );
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()));
        for (a, b) in got.moments.mean.iter().zip(&want.mean) {
            assert!(close(*a, *b), "mean {a} vs {b}");
        }
        for (a, b) in got.moments.scatter.iter().zip(&want.scatter) {
            assert!(close(*a, *b), "scatter {a} vs {b}");
        }
    }
    let counts = u.store.series().type_counts().await.expect("counts");
    assert_eq!(counts[0].count, all.len() as u64);
    let activity = u
        .store
        .series()
        .activity("m", 0, i64::MAX)
        .await
        .expect("activity");
    assert_eq!(
        activity.len(),
        all.len(),
        "one (day, user) pair per distinct user"
    );
}

/// Counts, moments and categories are exact under merge; the sketch holds every value seen.
fn assert_same_summary(got: &FeatureSummary, want: &FeatureSummary, name: &str) {
    assert_eq!(got.total(), want.total(), "{name}: total");
    assert_eq!(got.missing, want.missing, "{name}: missing");
    assert_eq!(got.moments.n, want.moments.n, "{name}: n");
    assert!(
        (got.moments.mean - want.moments.mean).abs() <= 1e-9 * want.moments.mean.abs().max(1.0),
        "{name}: mean {} vs {}",
        got.moments.mean,
        want.moments.mean
    );
    assert_eq!(got.min, want.min, "{name}: min");
    assert_eq!(got.max, want.max, "{name}: max");
    assert_eq!(got.categories, want.categories, "{name}: categories");
    assert_eq!(
        got.sketch.count(),
        want.sketch.count(),
        "{name}: sketch count"
    );
}

async fn series_reads_filter_and_order(u: Under) {
    let j = u.store.journal();
    let w = j.register_writer("t").await.expect("register");
    let mut events = vec![
        event("s1", "m", T0, 1.0, 1),
        event("s2", "m", T0 + BUCKET, 2.0, 2),
        event("s3", "other", T0, 3.0, 3),
    ];
    let mut eval = event("ev1", "m", T0 + 10, 0.0, 1);
    eval.body = Body::ModelEval {
        cycle: 1,
        eval_set: "holdout".into(),
        metrics: Vec::new(),
        train_data: None,
    };
    events.push(eval.clone());
    j.checkpoint(w, &delta_of(&events), None, 0)
        .await
        .expect("checkpoint");
    let s = u.store.series();
    let m = s
        .summaries("m", Some(SeriesClass::Input), 0, i64::MAX)
        .await
        .expect("summaries");
    assert!(m.iter().all(|r| r.class == SeriesClass::Input));
    let buckets: Vec<i64> = m
        .iter()
        .filter(|r| r.name == "x")
        .map(|r| r.bucket)
        .collect();
    assert_eq!(buckets.len(), 2, "{buckets:?}");
    assert!(buckets[0] < buckets[1], "ordered by bucket");
    let first = s
        .summaries("m", None, 0, buckets[1])
        .await
        .expect("summaries");
    assert!(first.iter().all(|r| r.bucket < buckets[1]), "[from, to)");
    let recs = s.records("m", EventType::ModelEval).await.expect("records");
    // Stored as sent, except that a record keeps no user pseudonym (docs/PRIVACY.md).
    assert!(eval.user_key.is_some());
    let mut want = eval.clone();
    want.user_key = None;
    assert_eq!(recs, vec![want]);
    assert!(s
        .records("other", EventType::ModelEval)
        .await
        .expect("records")
        .is_empty());
    let bc = s
        .bucket_counts("m", 0, i64::MAX)
        .await
        .expect("bucket counts");
    let n: u64 = bc
        .iter()
        .filter(|c| c.event_type == EventType::Interaction)
        .map(|c| c.n)
        .sum();
    assert_eq!(n, 2);
    let tc = s.type_counts().await.expect("type counts");
    let models: Vec<&str> = tc.iter().map(|t| t.model.as_str()).collect();
    assert!(
        models.windows(2).all(|w| w[0] <= w[1]),
        "sorted: {models:?}"
    );
    assert_eq!(
        flywheel::store::models_before(u.store.as_ref(), T0 + 1)
            .await
            .expect("models"),
        vec!["m".to_string(), "other".to_string()]
    );
    let day = T0.div_euclid(86_400);
    let act = s.activity("m", day, day + 1).await.expect("activity");
    assert_eq!(act.len(), 2);
}

async fn baselines_are_replaced_whole(u: Under) {
    let s = u.store.series();
    let mut sum = FeatureSummary::new(64, 100);
    sum.add_numbers(&[1.0, 2.0, 3.0]);
    let info = |rows| BaselineInfo {
        name: "b_1".into(),
        model: "m".into(),
        created_at_us: 5,
        rows,
        source: "upload:csv".into(),
        features: 2,
    };
    let two = vec![
        NamedSummary {
            class: SeriesClass::Input,
            name: "x".into(),
            summary: sum.clone(),
        },
        NamedSummary {
            class: SeriesClass::Input,
            name: "y".into(),
            summary: sum.clone(),
        },
    ];
    s.put_baseline(&info(3), &two).await.expect("put");
    let (got, sums) = s
        .baseline_summaries("b_1")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(got, info(3));
    assert_eq!(sums.len(), 2);
    assert_eq!(sums[0].summary, sum);
    // Replacing drops the old summaries.
    s.put_baseline(
        &BaselineInfo {
            features: 1,
            ..info(9)
        },
        &two[..1],
    )
    .await
    .expect("replace");
    let (got, sums) = s
        .baseline_summaries("b_1")
        .await
        .expect("get")
        .expect("exists");
    assert_eq!((got.rows, got.features, sums.len()), (9, 1, 1));
    assert_eq!(s.baselines().await.expect("list").len(), 1);
    assert!(s.baseline_summaries("nope").await.expect("get").is_none());
}

fn run(job: &str, end: i64, outcome: Outcome) -> JobRun {
    JobRun {
        job: job.into(),
        window_start: end - 60,
        window_end: end,
        fired_at: end,
        started_at: Timestamp::from_micros(end * 1_000_000),
        duration_us: 7,
        outcome,
        detail: serde_json::json!({ "end": end }),
    }
}

fn result(job: &str, model: &str, subject: &str, end: i64, v: i64) -> ResultRow {
    ResultRow {
        job: job.into(),
        model: model.into(),
        subject: subject.into(),
        window_start: end - 60,
        window_end: end,
        data: serde_json::json!({ "v": v }),
    }
}

async fn job_runs_and_results_replace_per_window(u: Under) {
    let j = u.store.jobs();
    j.save_run(
        &run("drift:a_b", 120, Outcome::Success),
        &[
            result("drift:a_b", "m", "x", 120, 1),
            result("drift:a_b", "m", "y", 120, 2),
        ],
    )
    .await
    .expect("save");
    j.save_run(
        &run("driftXa", 180, Outcome::Failure),
        &[result("driftXa", "m", "x", 180, 3)],
    )
    .await
    .expect("save");
    // Rerunning a window replaces its run and all of its results.
    j.save_run(
        &run("drift:a_b", 120, Outcome::Success),
        &[result("drift:a_b", "m", "x", 120, 4)],
    )
    .await
    .expect("rerun");
    let all = j.results(&ResultQuery::default()).await.expect("results");
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].data, serde_json::json!({ "v": 4 }));
    // The prefix is literal: `_` is not a wildcard.
    let q = ResultQuery {
        job_prefix: Some("drift:a_".into()),
        ..Default::default()
    };
    assert_eq!(j.results(&q).await.expect("results").len(), 1);
    let q = ResultQuery {
        job_prefix: Some("drift".into()),
        from: Some(120),
        ..Default::default()
    };
    let r = j.results(&q).await.expect("results");
    assert_eq!((r.len(), r[0].window_end), (1, 180));
    let q = ResultQuery {
        latest: Some(1),
        ..Default::default()
    };
    assert_eq!(j.results(&q).await.expect("results")[0].window_end, 180);
    let q = ResultQuery {
        model: Some("m".into()),
        subject: Some("x".into()),
        to: Some(120),
        ..Default::default()
    };
    assert_eq!(j.results(&q).await.expect("results").len(), 1);
    let runs = j.runs(None, 10).await.expect("runs");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].job, "driftXa", "newest first");
    assert_eq!(runs[0].outcome, Outcome::Failure);
    assert_eq!(j.runs(Some("drift:a_b"), 10).await.expect("runs").len(), 1);
    assert_eq!(j.last_fire("drift:a_b").await.expect("last"), Some(120));
    assert_eq!(j.last_fire("none").await.expect("last"), None);
}

async fn leases_use_the_database_clock(u: Under) {
    let j = u.store.jobs();
    let ttl = 1_000_000; // one second, by the database's clock
    assert!(j.try_lease("drift:x", "a", ttl).await.expect("lease"));
    assert!(
        !j.try_lease("drift:x", "b", ttl).await.expect("lease"),
        "held"
    );
    assert!(
        j.try_lease("drift:x", "a", ttl).await.expect("renew"),
        "the holder renews"
    );
    assert!(
        j.try_lease("drift:y", "b", ttl).await.expect("lease"),
        "jobs are independent"
    );
    // A crashed holder's lease expires, and another takes it.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert!(j.try_lease("drift:x", "b", ttl).await.expect("takeover"));
    // Released: free at once; a non-holder's release does nothing.
    j.release_lease("drift:x", "a").await.expect("release");
    assert!(!j.try_lease("drift:x", "c", ttl).await.expect("lease"));
    j.release_lease("drift:x", "b").await.expect("release");
    assert!(j.try_lease("drift:x", "c", ttl).await.expect("lease"));
    // Many contenders at once: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = u.reopen().await;
        tasks.push(tokio::spawn(async move {
            s.jobs()
                .try_lease("race", &format!("h{i}"), 60_000_000)
                .await
                .expect("lease")
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.expect("task"));
    }
    assert_eq!(winners, 1);
    // Cleared (a store's only process, at start): every lease is free at once.
    assert_eq!(j.clear_leases().await.expect("clear"), 3);
    assert!(j.try_lease("race", "new", ttl).await.expect("lease"));
}

async fn alerts_insert_update_and_list(u: Under) {
    let a = u.store.alerts();
    let t = |s: i64| Timestamp::from_micros(s * 1_000_000);
    let mut row = AlertRow {
        id: 0,
        fingerprint: "fp".into(),
        source: "drift:m".into(),
        state: AlertState::Pending,
        labels: [("alertname".to_string(), "FlywheelDrift".to_string())].into(),
        annotations: Default::default(),
        hits: 1,
        clean: 0,
        created_at: t(10),
        starts_at: None,
        ends_at: None,
        updated_at: t(10),
        notified_at: None,
    };
    row.id = a.put_alert(&row).await.expect("insert");
    assert!(row.id > 0);
    let other = a
        .put_alert(&AlertRow {
            id: 0,
            fingerprint: "fp2".into(),
            ..row.clone()
        })
        .await
        .expect("insert");
    assert_ne!(other, row.id);
    row.state = AlertState::Firing;
    row.starts_at = Some(t(20));
    row.updated_at = t(20);
    assert_eq!(a.put_alert(&row).await.expect("update"), row.id);
    let active = a.active_alerts().await.expect("active");
    assert_eq!(active.len(), 2);
    assert_eq!(active[0], row);
    let recent = a.recent_alerts(20 * 1_000_000, 10).await.expect("recent");
    assert_eq!(recent, vec![row.clone()]);
    row.state = AlertState::Resolved;
    row.ends_at = Some(t(30));
    row.updated_at = t(30);
    a.put_alert(&row).await.expect("resolve");
    assert_eq!(a.active_alerts().await.expect("active").len(), 1);
}

async fn the_key_fingerprint_is_recorded_once(u: Under) {
    u.store
        .check_key("aaaa")
        .await
        .expect("first start records it");
    u.store.check_key("aaaa").await.expect("same key");
    let other = u.reopen().await;
    match other.check_key("bbbb").await {
        Err(StoreError::KeyMismatch { found, stored }) => {
            assert_eq!((found.as_str(), stored.as_str()), ("bbbb", "aaaa"))
        }
        r => panic!("a different key must be refused, got {r:?}"),
    }
}

async fn purge_drops_old_dedup_state_and_activity(u: Under) {
    let j = u.store.journal();
    let w = j.register_writer("t").await.expect("register");
    for (at, ids) in [(100, vec![1u64, 2]), (200, vec![3])] {
        let chunk = flywheel::store::DedupChunk {
            created_at: at,
            ids,
        };
        j.checkpoint(w, &Delta::new(BUCKET, 64, 100), Some(&chunk), 0)
            .await
            .expect("checkpoint");
    }
    let evs = [
        event("p1", "m", 0, 1.0, 1),
        event("p2", "m", 5 * 86_400, 1.0, 2),
    ];
    j.checkpoint(w, &delta_of(&evs), None, 0)
        .await
        .expect("checkpoint");
    assert_eq!(j.dedup_chunks(0).await.expect("chunks").len(), 2);
    j.purge(150, 3).await.expect("purge");
    let left = j.dedup_chunks(0).await.expect("chunks");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].ids, vec![3]);
    assert_eq!(
        u.store
            .series()
            .activity("m", 0, 100)
            .await
            .expect("activity"),
        vec![(5, 2)]
    );
}

async fn damaged_rows_are_errors_not_panics(u: Under) {
    let j = u.store.journal();
    let w = j.register_writer("t").await.expect("register");
    j.checkpoint(w, &delta_of(&[event("z1", "m", T0, 1.0, 1)]), None, 0)
        .await
        .expect("checkpoint");
    let sql = "UPDATE summaries SET data = x'00ff'";
    let pg_sql = "UPDATE summaries SET data = '\\x00ff'::bytea";
    match &u.location {
        Location::Sqlite(dir) => {
            let s = flywheel::store::sqlite::SqliteStore::open(dir)
                .await
                .expect("open");
            sqlx::query(sql).execute(s.pool()).await.expect("damage");
            sqlx::query("UPDATE job_runs SET outcome = 'maybe'")
                .execute(s.pool())
                .await
                .expect("noop");
        }
        Location::Postgres { url, options } => {
            let s = flywheel::store::postgres::PgStore::connect(url.expose(), options)
                .await
                .expect("connect");
            sqlx::query(pg_sql).execute(s.pool()).await.expect("damage");
        }
    }
    let err = u
        .store
        .series()
        .summaries("m", None, 0, i64::MAX)
        .await
        .expect_err("a damaged summary is an error");
    assert!(err.to_string().contains("summary"), "{err}");
    // A stored enum value this build does not know is an error naming the column.
    u.store
        .jobs()
        .save_run(&run("j", 60, Outcome::Success), &[])
        .await
        .expect("save");
    match &u.location {
        Location::Sqlite(dir) => {
            let s = flywheel::store::sqlite::SqliteStore::open(dir)
                .await
                .expect("open");
            sqlx::query("UPDATE job_runs SET outcome = 'maybe'")
                .execute(s.pool())
                .await
                .expect("damage");
        }
        Location::Postgres { url, options } => {
            let s = flywheel::store::postgres::PgStore::connect(url.expose(), options)
                .await
                .expect("connect");
            sqlx::query("UPDATE job_runs SET outcome = 'maybe'")
                .execute(s.pool())
                .await
                .expect("damage");
        }
    }
    let err = u
        .store
        .jobs()
        .runs(None, 5)
        .await
        .expect_err("unknown outcome");
    assert!(err.to_string().contains("job_runs.outcome"), "{err}");
}

/// A SQLite store written before migration 0005 (one global journal watermark, no writers) and
/// left with unfolded journal rows by a crash: the upgraded service folds exactly the rows past
/// the old watermark, once.
#[tokio::test]
async fn sqlite_upgrade_through_0005_replays_the_unfolded_journal_once() {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    let dir = tempfile::tempdir().expect("tempdir");
    // The migrations as they were before 0005, applied by sqlx as a release of that time did.
    let old = dir.path().join("old-migrations");
    std::fs::create_dir(&old).expect("mkdir");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for f in std::fs::read_dir(&src).expect("read migrations") {
        let f = f.expect("entry");
        let name = f.file_name().to_string_lossy().into_owned();
        if name.as_str() < "0005" {
            std::fs::copy(f.path(), old.join(&name)).expect("copy");
        }
    }
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::new()
                .filename(data.join("flywheel.db"))
                .create_if_missing(true),
        )
        .await
        .expect("create the old database");
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .expect("old migrations")
        .run(&pool)
        .await
        .expect("apply 0001-0004");
    // Three journal rows of 4 events; the watermark says the first was folded already.
    let now = chrono::Utc::now().timestamp();
    let mut seqs = Vec::new();
    for r in 0..3 {
        let events: Vec<Event> = (0..4)
            .map(|i| event(&format!("old-{r}-{i}"), "old", now - 60, i as f64, i))
            .collect();
        let seq = sqlx::query("INSERT INTO journal (received_at, payload) VALUES (?, ?)")
            .bind(now)
            .bind(flywheel::store::encode_batch(&events))
            .execute(&pool)
            .await
            .expect("insert a journal row")
            .last_insert_rowid();
        seqs.push(seq);
    }
    sqlx::query("UPDATE meta SET value = ? WHERE key = 'journal_folded_upto'")
        .bind(seqs[0])
        .execute(&pool)
        .await
        .expect("set the old watermark");
    pool.close().await;

    // The new service upgrades the file and recovers.
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        dir: Some(dir),
        tweak: Box::new(move |raw| raw.server.data_dir = data),
        ..Default::default()
    })
    .await;
    let (status, models) = app.get_json("/v1/models").await;
    assert_eq!(status, 200, "{models}");
    assert_eq!(
        crate::helpers::count_of(&models, "old", "interaction"),
        8,
        "the two rows past the old watermark are folded, the folded one is not: {models}"
    );
    // A restart folds nothing twice.
    let dir = app.stop().await;
    let data = dir.path().join("data");
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        dir: Some(dir),
        tweak: Box::new(move |raw| raw.server.data_dir = data),
        ..Default::default()
    })
    .await;
    let (_, models) = app.get_json("/v1/models").await;
    assert_eq!(crate::helpers::count_of(&models, "old", "interaction"), 8);
}

async fn old_history_is_pruned_but_each_jobs_newest_window_and_open_alerts_stay(u: Under) {
    let j = u.store.jobs();
    for end in [100, 200, 300] {
        j.save_run(
            &run("drift:a", end, Outcome::Success),
            &[result("drift:a", "m", "x", end, end)],
        )
        .await
        .expect("save");
    }
    j.save_run(
        &run("weekly_report", 150, Outcome::Success),
        &[result("weekly_report", "m", "x", 150, 1)],
    )
    .await
    .expect("save");
    // Windows ending before 250: drift:a's 100 and 200 go; its newest (300) stays, and so does
    // weekly_report's only window (150), which the scheduler needs to know what already ran.
    assert_eq!(j.prune_runs(250).await.expect("prune"), 2);
    let ends: Vec<(String, i64)> = j
        .results(&ResultQuery::default())
        .await
        .expect("results")
        .into_iter()
        .map(|r| (r.job, r.window_end))
        .collect();
    assert_eq!(
        ends,
        vec![
            ("weekly_report".to_owned(), 150),
            ("drift:a".to_owned(), 300)
        ]
    );
    assert!(j.last_fire("drift:a").await.expect("last").is_some());
    assert_eq!(j.prune_runs(250).await.expect("prune again"), 0);

    let a = u.store.alerts();
    let t = |s: i64| Timestamp::from_micros(s * 1_000_000);
    let alert = |fp: &str, state: AlertState, updated: i64| AlertRow {
        id: 0,
        fingerprint: fp.into(),
        source: "drift:m".into(),
        state,
        labels: [("alertname".to_string(), "FlywheelDrift".to_string())].into(),
        annotations: Default::default(),
        hits: 1,
        clean: 0,
        created_at: t(updated),
        starts_at: None,
        ends_at: None,
        updated_at: t(updated),
        notified_at: None,
    };
    for (fp, state, updated) in [
        ("old-resolved", AlertState::Resolved, 10),
        ("new-resolved", AlertState::Resolved, 1000),
        ("old-firing", AlertState::Firing, 10),
        ("old-pending", AlertState::Pending, 10),
    ] {
        a.put_alert(&alert(fp, state, updated))
            .await
            .expect("insert");
    }
    assert_eq!(a.prune_resolved(500 * 1_000_000).await.expect("prune"), 1);
    let mut left: Vec<String> = a
        .recent_alerts(0, 100)
        .await
        .expect("alerts")
        .into_iter()
        .map(|r| r.fingerprint)
        .collect();
    left.sort();
    assert_eq!(left, vec!["new-resolved", "old-firing", "old-pending"]);
}

async fn roll_up_merges_whole_days_and_keeps_concurrent_checkpoints(u: Under) {
    const DAY: i64 = 86_400;
    let day0 = T0 - T0.rem_euclid(DAY);
    // Two models, three days, every fifth hour; day 2 is recent and stays hourly.
    let mut all = Vec::new();
    let mut n = 0u64;
    let mut next = |model: &str, secs: i64| {
        n += 1;
        event(&format!("e{n}"), model, secs, (n % 97) as f64, n)
    };
    for model in ["a", "b"] {
        for h in (0..72).step_by(5) {
            for _ in 0..4 {
                all.push(next(model, day0 + h * BUCKET + 17));
            }
        }
    }
    let j = u.store.journal();
    let w = j.register_writer("w").await.expect("register");
    j.checkpoint(w, &delta_of(&all), None, 0)
        .await
        .expect("checkpoint");
    let s = u.store.series();
    let days = s.days_to_roll_up(day0 + 2 * DAY).await.expect("days");
    assert_eq!(
        days,
        vec![
            ("a".to_owned(), day0),
            ("b".to_owned(), day0),
            ("a".to_owned(), day0 + DAY),
            ("b".to_owned(), day0 + DAY),
        ],
        "oldest day first, only days before the cut-off"
    );

    // Late events keep arriving for the old days while they are rolled up (another writer of
    // a shared store, or the same file); none may be lost.
    let late: Vec<Vec<Event>> = (0..8)
        .map(|round| {
            (0..6)
                .map(|i| {
                    next(
                        if i % 2 == 0 { "a" } else { "b" },
                        day0 + (round * 5 + i) * 1800,
                    )
                })
                .collect()
        })
        .collect();
    all.extend(late.iter().flatten().cloned());
    let writer_store = u.reopen().await;
    let writer = tokio::spawn(async move {
        let j = writer_store.journal();
        let w = j.register_writer("late").await.expect("register");
        for evs in late {
            let mut tries = 0;
            while let Err(e) = j.checkpoint(w, &delta_of(&evs), None, 0).await {
                tries += 1;
                assert!(tries < 20, "checkpoint keeps failing: {e}");
            }
            tokio::task::yield_now().await;
        }
    });
    let mut merged = 0;
    for _ in 0..3 {
        for (model, day) in &days {
            merged += s
                .roll_up_day(model, *day)
                .await
                .expect("roll up")
                .rows_merged;
        }
    }
    writer.await.expect("late writer");
    for (model, day) in s.days_to_roll_up(day0 + 2 * DAY).await.expect("days") {
        s.roll_up_day(&model, day).await.expect("final roll up");
    }
    assert!(merged > 0, "the first pass merged hourly rows");
    assert!(
        s.days_to_roll_up(day0 + 2 * DAY)
            .await
            .expect("days")
            .is_empty(),
        "nothing left to roll up"
    );
    assert_eq!(
        s.roll_up_day("a", day0).await.expect("again"),
        Default::default(),
        "rolling up a rolled day changes nothing"
    );

    // The stored state is the union of every event, per day before the cut-off, per hour after.
    let mut daily = Delta::new(DAY, 64, 100);
    let mut hourly = Delta::new(BUCKET, 64, 100);
    for e in &all {
        if e.occurred_at_us / 1_000_000 < day0 + 2 * DAY {
            daily.fold(e);
        } else {
            hourly.fold(e);
        }
    }
    for model in ["a", "b"] {
        let rows = s.summaries(model, None, 0, i64::MAX).await.expect("rows");
        let mut expected = 0;
        for want in [&daily, &hourly] {
            for ((class, bucket), names) in &want.models[model]["v1"].groups {
                for (name, want) in names {
                    expected += 1;
                    let got = rows
                        .iter()
                        .find(|r| r.class == *class && r.bucket == *bucket && &r.name == name)
                        .unwrap_or_else(|| panic!("{model}: missing {class:?} {bucket} {name}"));
                    assert_same_summary(&got.summary, want, name);
                }
            }
        }
        assert_eq!(
            rows.len(),
            expected,
            "{model}: one row per series and bucket"
        );
        let counts = s.bucket_counts(model, 0, i64::MAX).await.expect("counts");
        let want_counts = |d: &Delta| -> Vec<(i64, u64)> {
            let mut v: Vec<(i64, u64)> = d.models[model]["v1"]
                .counts
                .iter()
                .map(|((_, b), c)| (*b, c.n))
                .collect();
            v.sort_unstable();
            v
        };
        let mut want = want_counts(&daily);
        want.extend(want_counts(&hourly));
        let got: Vec<(i64, u64)> = counts.iter().map(|c| (c.bucket, c.n)).collect();
        assert_eq!(got, want, "{model}: event counts per bucket");
    }
    let total: u64 = s
        .type_counts()
        .await
        .expect("type counts")
        .iter()
        .map(|c| c.count)
        .sum();
    assert_eq!(total, all.len() as u64, "every event counted once");
}

async fn an_erased_user_leaves_no_activity_and_is_not_folded_back(u: Under) {
    const DAY: i64 = 86_400;
    let j = u.store.journal();
    let w = j.register_writer("w").await.expect("register");
    // Users 7 and 8 active on two days.
    let evs = [
        event("a", "m", T0, 1.0, 7),
        event("b", "m", T0 + DAY, 2.0, 7),
        event("c", "m", T0, 3.0, 8),
        event("d", "m", T0 + DAY, 4.0, 8),
    ];
    j.checkpoint(w, &delta_of(&evs), None, 0)
        .await
        .expect("checkpoint");
    let day1 = (T0 + DAY).div_euclid(DAY);
    let at_us = (T0 + DAY + 3600) * 1_000_000;
    let e = u.store.series().erase_user(7, at_us).await.expect("erase");
    assert!(!e.already_erased);
    assert_eq!(e.activity_rows_deleted, 2);
    let users = |rows: Vec<(i64, u64)>| rows.into_iter().map(|(_, u)| u).collect::<Vec<_>>();
    let act = u
        .store
        .series()
        .activity("m", 0, i64::MAX)
        .await
        .expect("activity");
    assert_eq!(users(act), vec![8, 8]);
    // Idempotent: nothing more to delete, the first erasure time kept.
    let again = u
        .store
        .series()
        .erase_user(7, at_us + 5)
        .await
        .expect("erase again");
    assert_eq!(
        (
            again.already_erased,
            again.activity_rows_deleted,
            again.erased_at_us
        ),
        (true, 0, at_us)
    );
    // A late event of that user from before the erasure (another replica's journal) is not
    // folded back; activity on a day after the erasure is new activity and is kept.
    let late = [
        event("e", "m", T0 + DAY + 60, 5.0, 7),
        event("f", "m", T0 + 3 * DAY, 6.0, 7),
    ];
    j.checkpoint(w, &delta_of(&late), None, 0)
        .await
        .expect("checkpoint");
    let act = u
        .store
        .series()
        .activity("m", 0, i64::MAX)
        .await
        .expect("activity");
    let of7: Vec<i64> = act
        .iter()
        .filter(|(_, u)| *u == 7)
        .map(|(d, _)| *d)
        .collect();
    assert_eq!(of7, vec![day1 + 2]);
    // The audit log says what was done, without the pseudonym.
    let log = u.store.series().audit_log(10).await.expect("audit");
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|a| a.action == "erase_user"));
    assert_eq!(log[1].detail["activity_rows_deleted"], 2);
    assert_eq!(log[0].detail["already_erased"], true);
    for a in &log {
        let mut keys: Vec<&String> = a.detail.as_object().expect("object").keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["activity_rows_deleted", "already_erased", "erased_at_us"],
            "counts and times only"
        );
    }
}
