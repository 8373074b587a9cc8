use crate::helpers::*;
use flywheel::store::{
    sqlite::SqliteStore, Adopted, AlertStore, Appended, DedupChunk, JobStore, JournalEntry,
    JournalStore, SeriesStore, Store, StoreError,
};
use flywheel::summary::delta::Delta;
use serde_json::{json, Value};
use std::sync::Arc;

fn base(id: &str) -> Value {
    interaction(id, "ranker", "v1")
}

fn with(mut v: Value, path: &[&str], new: Value) -> Value {
    let mut cur = &mut v;
    for p in &path[..path.len() - 1] {
        cur = &mut cur[*p];
    }
    cur[path[path.len() - 1]] = new;
    v
}

fn without(mut v: Value, path: &[&str]) -> Value {
    let mut cur = &mut v;
    for p in &path[..path.len() - 1] {
        cur = &mut cur[*p];
    }
    if let Some(o) = cur.as_object_mut() {
        o.remove(path[path.len() - 1]);
    }
    v
}

fn feedback(id: &str) -> Value {
    json!({"event_id": id, "event_type": "feedback", "occurred_at": now_rfc3339(),
           "model": {"id": "ranker", "version": "v1"}, "interaction_id": "i1",
           "kind": "explicit", "signal": "thumbs", "value": 1})
}

fn eval(id: &str) -> Value {
    json!({"event_id": id, "event_type": "model_eval", "occurred_at": now_rfc3339(),
           "model": {"id": "ranker", "version": "v1"}, "cycle": 3, "eval_set": {"id": "gold"},
           "metrics": [{"name": "ndcg", "value": 0.7, "higher_is_better": true}]})
}

/// One hostile element per case, sent between two valid events in one NDJSON batch: the bad line
/// must be rejected with a message naming the field and the problem, and both good lines kept.
fn element_cases() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let j = |v: Value| v.to_string().into_bytes();
    let s = |t: &str| t.as_bytes().to_vec();
    let many: serde_json::Map<String, Value> =
        (0..300).map(|i| (format!("f{i}"), json!(i))).collect();
    vec![
        (
            "broken json",
            s(r#"{"event_id": "x","#),
            "event: EOF while parsing",
        ),
        (
            "bare NaN literal",
            s(r#"{"event_id":"x","value":NaN}"#),
            "value: expected value",
        ),
        (
            "array line",
            s("[1,2]"),
            "event: must be a JSON object, found an array",
        ),
        (
            "number line",
            s("42"),
            "event: must be a JSON object, found a number",
        ),
        (
            "event_id a number",
            j(with(base("x"), &["event_id"], json!(7))),
            "event_id: invalid type: integer `7`",
        ),
        (
            "event_id empty",
            j(with(base("x"), &["event_id"], json!(""))),
            "event_id: must not be empty",
        ),
        (
            "event_id too long",
            j(with(base("x"), &["event_id"], json!("e".repeat(129)))),
            "event_id: 129 bytes, over the limit of 128",
        ),
        (
            "missing event_id",
            j(without(base("x"), &["event_id"])),
            "event_id: missing required field",
        ),
        (
            "missing event_type",
            j(without(base("x1"), &["event_type"])),
            "event_type: missing required field",
        ),
        (
            "unknown event type",
            j(with(base("x2"), &["event_type"], json!("click"))),
            "event_type: unknown type \"click\"",
        ),
        (
            "missing occurred_at",
            j(without(base("x3"), &["occurred_at"])),
            "occurred_at: missing required field",
        ),
        (
            "occurred_at not a time",
            j(with(base("x4"), &["occurred_at"], json!("last tuesday"))),
            "occurred_at: \"last tuesday\" is not an RFC 3339 timestamp",
        ),
        (
            "occurred_at in the future",
            j(with(
                base("x5"),
                &["occurred_at"],
                json!("2999-01-01T00:00:00Z"),
            )),
            "occurred_at: 2999-01-01T00:00:00Z is more than 300s in the future",
        ),
        (
            "occurred_at too old",
            j(with(
                base("x6"),
                &["occurred_at"],
                json!("2000-01-01T00:00:00Z"),
            )),
            "occurred_at: 2000-01-01T00:00:00Z is older than",
        ),
        (
            "missing model",
            j(without(base("x7"), &["model"])),
            "model: missing required field",
        ),
        (
            "missing model.id",
            j(without(base("x8"), &["model", "id"])),
            "model.id: missing required field",
        ),
        (
            "model.id with control chars",
            j(with(base("x9"), &["model", "id"], json!("rank\u{0007}er"))),
            "model.id: contains control characters",
        ),
        (
            "feature is an object",
            j(with(base("x10"), &["features", "age"], json!({"v": 1}))),
            "features.age: expected a number, string, boolean or null, found an object",
        ),
        (
            "feature is an array",
            j(with(base("x11"), &["features", "age"], json!([1]))),
            "features.age: expected a number, string, boolean or null, found an array",
        ),
        (
            "too many features",
            j(with(base("x12"), &["features"], Value::Object(many))),
            "features: 300 features, over the limit of 256",
        ),
        (
            "category too long",
            j(with(
                base("x13"),
                &["features", "country"],
                json!("D".repeat(300)),
            )),
            "features.country: 300 bytes, over the limit of 256",
        ),
        (
            "duplicate feature key",
            s(&format!(
                r#"{{"event_id":"x14","event_type":"interaction","occurred_at":"{}","model":{{"id":"m"}},"features":{{"a":1,"a":2}}}}"#,
                now_rfc3339()
            )),
            "features.a: sent more than once",
        ),
        (
            "unknown field",
            j(with(base("x15"), &["colour"], json!("red"))),
            "unknown field `colour`",
        ),
        (
            "prediction.score as NaN string",
            j(with(base("x16"), &["prediction", "score"], json!("NaN"))),
            "prediction.score: must be a finite number, found the string \"NaN\"",
        ),
        (
            "prediction.score as Infinity string",
            j(with(
                base("x17"),
                &["prediction", "score"],
                json!("Infinity"),
            )),
            "prediction.score: must be a finite number, found the string \"Infinity\"",
        ),
        (
            "confidence out of range",
            j(with(base("x18"), &["prediction", "confidence"], json!(1.5))),
            "prediction.confidence: 1.5 is outside [0, 1]",
        ),
        (
            "features on feedback",
            j(with(feedback("x19"), &["features"], json!({"a": 1}))),
            "features: not allowed on a feedback event",
        ),
        (
            "feedback kind invalid",
            j(with(feedback("x20"), &["kind"], json!("telepathic"))),
            "kind: \"telepathic\" is not explicit or implicit",
        ),
        (
            "feedback without signal",
            j(without(feedback("x21"), &["signal"])),
            "signal: missing required field",
        ),
        (
            "feedback value NaN string",
            j(with(feedback("x22"), &["value"], json!("nan"))),
            "value: must be a finite number",
        ),
        (
            "feedback value an object",
            j(with(feedback("x23"), &["value"], json!({}))),
            "value: expected a number, string, boolean or null, found an object",
        ),
        (
            "eval with no metrics",
            j(with(eval("x24"), &["metrics"], json!([]))),
            "metrics: at least one metric is required",
        ),
        (
            "eval metric value a string",
            j(with(
                eval("x25"),
                &["metrics"],
                json!([{"name": "ndcg", "value": "high"}]),
            )),
            "metrics[0].value: must be a number, found a string",
        ),
        (
            "eval negative cycle",
            j(with(eval("x26"), &["cycle"], json!(-1))),
            "cycle: invalid value: integer `-1`",
        ),
        (
            "deploy without version",
            s(&format!(
                r#"{{"event_id":"x27","event_type":"deploy","occurred_at":"{}","model":{{"id":"m"}}}}"#,
                now_rfc3339()
            )),
            "model.version: missing required field",
        ),
        (
            "deploy traffic_share negative",
            s(&format!(
                r#"{{"event_id":"x28","event_type":"deploy","occurred_at":"{}","model":{{"id":"m","version":"v"}},"traffic_share":-0.5}}"#,
                now_rfc3339()
            )),
            "traffic_share: -0.5 is outside [0, 1]",
        ),
        (
            "lifecycle unknown stage",
            s(&format!(
                r#"{{"event_id":"x29","event_type":"data_lifecycle","occurred_at":"{}","model":{{"id":"m"}},"stage":"eaten"}}"#,
                now_rfc3339()
            )),
            "stage: unknown stage \"eaten\"",
        ),
        (
            "lifecycle negative count",
            s(&format!(
                r#"{{"event_id":"x30","event_type":"data_lifecycle","occurred_at":"{}","model":{{"id":"m"}},"stage":"collected","count":-5}}"#,
                now_rfc3339()
            )),
            "count: invalid value: integer `-5`",
        ),
        (
            "invalid utf-8 line",
            b"{\"event_id\":\"\xff\xfe\"}".to_vec(),
            "event: line is not valid UTF-8",
        ),
        (
            "consent not a bool",
            j(with(base("x31"), &["consent"], json!({"analytics": "yes"}))),
            "consent.analytics: invalid type: string \"yes\", expected a boolean",
        ),
    ]
}

#[tokio::test]
async fn hostile_elements_are_rejected_one_by_one_and_good_neighbours_kept() {
    let app = spawn_app().await;
    let cases = element_cases();
    assert!(cases.len() >= 30, "the corpus holds {} cases", cases.len());
    for (n, (name, bad, want)) in cases.into_iter().enumerate() {
        let mut body = Vec::new();
        body.extend_from_slice(base(&format!("good-a-{n}")).to_string().as_bytes());
        body.push(b'\n');
        body.extend_from_slice(&bad);
        body.push(b'\n');
        body.extend_from_slice(base(&format!("good-b-{n}")).to_string().as_bytes());
        let (status, v) = app.post_raw("application/x-ndjson", body).await;
        assert_eq!(status, 200, "{name}: {v}");
        assert_eq!(v["accepted"], 2, "{name}: {v}");
        assert_eq!(v["rejected"], 1, "{name}: {v}");
        assert_eq!(v["errors"][0]["index"], 1, "{name}: {v}");
        let msg = v["errors"][0]["error"].as_str().unwrap_or_default();
        assert!(msg.contains(want), "{name}: got {msg:?}, wanted {want:?}");
    }
    // Every good neighbour was kept: 2 per case.
    let (_, models) = app.get_json("/v1/models").await;
    assert_eq!(count_of(&models, "ranker", "interaction"), 80);
    app.stop().await;
}

#[tokio::test]
async fn body_level_errors_get_their_status() {
    let app = spawn_app_with(Options {
        tweak: Box::new(|c| {
            c.ingest.max_body_bytes = 4096;
            c.ingest.max_events_per_batch = 3;
        }),
        ..Default::default()
    })
    .await;
    let good = base("g1").to_string();
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        (
            "empty body",
            "application/x-ndjson",
            vec![],
            400,
            "body holds no events",
        ),
        (
            "blank lines only",
            "application/x-ndjson",
            b"\n \n".to_vec(),
            400,
            "body holds no events",
        ),
        (
            "broken json array",
            "application/json",
            format!("[{good},").into_bytes(),
            400,
            "body is not a JSON array of events",
        ),
        (
            "object instead of array",
            "application/json",
            good.clone().into_bytes(),
            400,
            "body is not a JSON array of events",
        ),
        (
            "invalid utf-8 json",
            "application/json",
            b"[\"\xff\"]".to_vec(),
            400,
            "body is not valid UTF-8",
        ),
        (
            "text/plain",
            "text/plain",
            good.clone().into_bytes(),
            415,
            "is not supported",
        ),
        (
            "no content type",
            "",
            good.clone().into_bytes(),
            415,
            "Content-Type is missing",
        ),
        (
            "over the size limit",
            "application/x-ndjson",
            vec![b' '; 5000],
            413,
            "larger than the limit of 4096 bytes",
        ),
        (
            "too many events",
            "application/x-ndjson",
            format!("{good}\n{good}\n{good}\n{good}").into_bytes(),
            413,
            "batch holds 4 events, over the limit of 3",
        ),
        (
            "every event rejected",
            "application/x-ndjson",
            b"{}\n{\"x\":1}".to_vec(),
            400,
            "event_id: missing required field",
        ),
    ];
    for (name, ct, body, status, want) in cases {
        let mut req = app.client.post(app.url("/v1/events")).body(body);
        if !ct.is_empty() {
            req = req.header("content-type", ct);
        }
        let r = req.send().await.expect("request");
        assert_eq!(r.status().as_u16(), status, "{name}");
        let text = r.text().await.unwrap_or_default();
        assert!(text.contains(want), "{name}: {text}");
    }
    // A JSON array of good events is accepted.
    let (status, v) = app
        .post_raw("application/json", format!("[{good}]").into_bytes())
        .await;
    assert_eq!((status, v["accepted"].as_u64()), (200, Some(1)), "{v}");
    app.stop().await;
}

#[tokio::test]
async fn repeated_event_ids_are_counted_once() {
    let app = spawn_app().await;
    let (s, v) = app.post_ndjson(&[base("d1"), base("d1"), base("d2")]).await;
    assert_eq!(s, 200);
    assert_eq!(
        (v["accepted"].as_u64(), v["duplicates"].as_u64()),
        (Some(2), Some(1)),
        "{v}"
    );
    let (_, v) = app.post_ndjson(&[base("d1"), base("d3")]).await;
    assert_eq!(
        (v["accepted"].as_u64(), v["duplicates"].as_u64()),
        (Some(1), Some(1)),
        "{v}"
    );
    let (_, models) = app.get_json("/v1/models").await;
    assert_eq!(count_of(&models, "ranker", "interaction"), 3);
    // After a checkpoint (the read above flushed), the ids are still known.
    let (_, v) = app.post_ndjson(&[base("d2")]).await;
    assert_eq!(v["duplicates"].as_u64(), Some(1), "{v}");
    app.stop().await;
}

#[tokio::test]
async fn read_api_reports_models_and_feature_statistics() {
    let app = spawn_app().await;
    let mut batch = Vec::new();
    for i in 0..100 {
        let mut e = base(&format!("r{i}"));
        e["features"]["age"] = json!(i as f64);
        e["features"]["country"] = json!(if i % 4 == 0 { "FR" } else { "DE" });
        if i % 10 == 0 {
            e["features"]["age"] = Value::Null;
        }
        batch.push(e);
    }
    batch.push(feedback("fb1"));
    batch.push(eval("ev1"));
    let (s, v) = app.post_ndjson(&batch).await;
    assert_eq!(s, 200, "{v}");
    let (s, models) = app.get_json("/v1/models").await;
    assert_eq!(s, 200);
    let m = &models["models"][0];
    assert_eq!(m["id"], "ranker");
    assert_eq!(m["events"]["interaction"], 100);
    assert_eq!(m["events"]["feedback"], 1);
    assert_eq!(m["events"]["model_eval"], 1);
    assert_eq!(m["versions"][0]["version"], "v1");
    assert!(m["first_seen"].as_str().is_some_and(|s| s.ends_with('Z')));

    let (s, f) = app.get_json("/v1/models/ranker/features").await;
    assert_eq!(s, 200, "{f}");
    let feats = f["features"].as_array().expect("features");
    let age = feats.iter().find(|x| x["name"] == "age").expect("age");
    assert_eq!(age["kind"], "numeric");
    assert_eq!(age["count"], 90);
    assert_eq!(age["missing"], 10);
    assert_eq!(age["missing_share"], 0.1);
    let kept: Vec<f64> = (0..100).filter(|i| i % 10 != 0).map(|i| i as f64).collect();
    let mean = kept.iter().sum::<f64>() / kept.len() as f64;
    assert!((age["mean"].as_f64().expect("mean") - mean).abs() < 1e-9);
    assert_eq!(age["min"], 1.0);
    assert_eq!(age["max"], 99.0);
    assert_eq!(age["quantiles_exact"], true);
    let country = feats
        .iter()
        .find(|x| x["name"] == "country")
        .expect("country");
    assert_eq!(country["kind"], "categorical");
    assert_eq!(country["top_categories"][0], json!(["DE", 75]));
    let premium = feats
        .iter()
        .find(|x| x["name"] == "premium")
        .expect("premium");
    assert_eq!(premium["kind"], "binary");

    let (s, p) = app
        .get_json("/v1/models/ranker/features?class=prediction")
        .await;
    assert_eq!(s, 200);
    assert!(p["features"]
        .as_array()
        .expect("arr")
        .iter()
        .any(|x| x["name"] == "score"));
    let (s, _) = app.get_json("/v1/models/nobody/features").await;
    assert_eq!(s, 404);
    let (s, e) = app
        .get_json("/v1/models/ranker/features?from=yesterday")
        .await;
    assert_eq!(s, 400);
    assert!(
        e["error"].as_str().unwrap_or_default().contains("from:"),
        "{e}"
    );
    let (s, _) = app.get_json("/v1/models/ranker/features?class=bogus").await;
    assert_eq!(s, 400);
    app.stop().await;
}

#[tokio::test]
async fn no_raw_user_id_reaches_the_database() {
    let app = spawn_app().await;
    let secret = "raw-user-SECRET-4242";
    let mut e = base("p1");
    e["user_id"] = json!(secret);
    let mut no_consent = base("p2");
    no_consent["user_id"] = json!("another-SECRET-user");
    no_consent["consent"] = json!({"analytics": false, "training": false});
    let (s, v) = app.post_ndjson(&[e, no_consent]).await;
    assert_eq!((s, v["accepted"].as_u64()), (200, Some(2)), "{v}");
    // Before the checkpoint (journal) and after it (summaries and activity).
    let dir = app.data_dir();
    let scan = |dir: &std::path::Path| {
        for entry in std::fs::read_dir(dir).expect("dir") {
            let p = entry.expect("entry").path();
            let Ok(bytes) = std::fs::read(&p) else {
                continue; // a -shm/-wal file SQLite removed meanwhile
            };
            for needle in [secret, "another-SECRET-user"] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{} holds the raw user id {needle}",
                    p.display()
                );
            }
        }
    };
    scan(&dir);
    let dir = app.stop().await;
    scan(dir.path());
    // One pseudonymous user was recorded (the one with consent), none for the other.
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("flywheel.db").display()
    ))
    .await
    .expect("open");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM user_activity")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(n, 1);
}

/// A store whose journal writes wait until released, to fill the ingest queue on purpose.
struct SlowStore {
    inner: SqliteStore,
    gate: Arc<tokio::sync::Semaphore>,
    /// Journal writes that have started (and are waiting at the gate).
    entered: Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait::async_trait]
impl Store for SlowStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn check_key(&self, fingerprint: &str) -> Result<(), StoreError> {
        self.inner.check_key(fingerprint).await
    }
    fn journal(&self) -> &dyn JournalStore {
        self
    }
    fn series(&self) -> &dyn SeriesStore {
        self.inner.series()
    }
    fn jobs(&self) -> &dyn JobStore {
        self.inner.jobs()
    }
    fn alerts(&self) -> &dyn AlertStore {
        self.inner.alerts()
    }
}

/// Appends wait at the gate; everything else goes straight to SQLite.
#[async_trait::async_trait]
impl JournalStore for SlowStore {
    fn shared(&self) -> bool {
        false
    }
    async fn register_writer(&self, name: &str) -> Result<i64, StoreError> {
        self.inner.journal().register_writer(name).await
    }
    async fn heartbeat(&self, w: i64) -> Result<(), StoreError> {
        self.inner.journal().heartbeat(w).await
    }
    async fn adopt_orphans(&self, w: i64, stale: i64) -> Result<Adopted, StoreError> {
        self.inner.journal().adopt_orphans(w, stale).await
    }
    async fn append(
        &self,
        w: i64,
        entries: &[JournalEntry<'_>],
        at: i64,
    ) -> Result<Appended, StoreError> {
        self.entered
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _permit = self.gate.acquire().await;
        self.inner.journal().append(w, entries, at).await
    }
    async fn checkpoint(
        &self,
        w: i64,
        d: &Delta,
        c: Option<&DedupChunk>,
        upto: i64,
    ) -> Result<(), StoreError> {
        self.inner.journal().checkpoint(w, d, c, upto).await
    }
    async fn retire_writer(&self, w: i64) -> Result<(), StoreError> {
        self.inner.journal().retire_writer(w).await
    }
    async fn trim(&self, w: i64, limit: i64) -> Result<u64, StoreError> {
        self.inner.journal().trim(w, limit).await
    }
    async fn unfolded(&self) -> Result<u64, StoreError> {
        self.inner.journal().unfolded().await
    }
    async fn dedup_chunks(&self, since: i64) -> Result<Vec<DedupChunk>, StoreError> {
        self.inner.journal().dedup_chunks(since).await
    }
    async fn purge(&self, a: i64, b: i64) -> Result<(), StoreError> {
        self.inner.journal().purge(a, b).await
    }
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after_and_loses_nothing_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let entered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let store = SlowStore {
        inner: SqliteStore::open(dir.path()).await.expect("open"),
        gate: gate.clone(),
        entered: entered.clone(),
    };
    let app = Arc::new(
        spawn_app_with(Options {
            tweak: Box::new(|c| {
                c.ingest.queue_depth = 1;
                // No scheduled job may take a queue slot (a run flushes ingest first).
                c.drift.default_monitor = false;
                c.health.enabled = false;
                c.performance.enabled = false;
                c.report.enabled = false;
                c.quality.enabled = false;
            }),
            store: Some(Arc::new(store)),
            dir: Some(dir),
            ..Default::default()
        })
        .await,
    );
    // First batch: taken by the writer, stuck in the journal write. Second: waits in the queue.
    let mut pending = Vec::new();
    for i in 0..2 {
        let a = app.clone();
        pending.push(tokio::spawn(async move {
            a.post_ndjson(&[base(&format!("q{i}"))]).await
        }));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let r = app
        .client
        .post(app.url("/v1/events"))
        .header("content-type", "application/x-ndjson")
        .body(base("q-over").to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    gate.add_permits(1000);
    for p in pending {
        let (s, v) = p.await.expect("join");
        assert_eq!((s, v["accepted"].as_u64()), (200, Some(1)), "{v}");
    }
    let (_, models) = app.get_json("/v1/models").await;
    assert_eq!(count_of(&models, "ranker", "interaction"), 2);
    let (_, m) = (
        0,
        app.client
            .get(app.url("/metrics"))
            .send()
            .await
            .expect("m")
            .text()
            .await
            .expect("t"),
    );
    assert!(m.contains("flywheel_ingest_overload_total 1"), "{m}");
}

/// Events stamped at the very edges of the accepted range (by the service's clock) are
/// accepted, one microsecond past them rejected, and each lands in the bucket its timestamp
/// names: a bucket is `[start, start + 1 h)`.
#[tokio::test]
async fn events_at_the_edges_of_the_accepted_range_land_in_the_right_buckets() {
    use flywheel::clock::{ManualClock, Timestamp};
    let b: i64 = 1_793_577_600 + 5 * 3600; // an hour boundary
    let now_us = (b + 1800) * 1_000_000;
    let clock = ManualClock::starting_at(Timestamp::from_micros(now_us));
    let app = spawn_app_with(Options {
        clock: clock.clock(),
        // The nightly roll-up would merge the 400-day-old hour into its day (the bucket
        // asserted below); it has its own tests (tests/it/rollup.rs).
        tweak: Box::new(|raw| raw.retention.summaries_hourly_days = 0),
        ..Default::default()
    })
    .await;
    let at = |us: i64, x: f64, id: &str| {
        let mut e = interaction(id, "edges", "v1");
        e["occurred_at"] = Timestamp::from_micros(us).to_rfc3339().into();
        e["features"] = json!({ "x": x });
        e
    };
    let skew_us = 300 * 1_000_000;
    let age_us = 400 * 86_400 * 1_000_000i64;
    let (status, v) = app
        .post_ndjson(&[
            at(b * 1_000_000, 1.0, "boundary"),
            at(b * 1_000_000 - 1, 2.0, "just-before"),
            at(now_us + skew_us, 3.0, "future-edge"),
            at(now_us - age_us, 4.0, "past-edge"),
            at(now_us + skew_us + 1, 5.0, "too-far-ahead"),
            at(now_us - age_us - 1, 6.0, "too-old"),
        ])
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["accepted"], 4, "{v}");
    let rejected: Vec<u64> = v["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["index"].as_u64())
        .collect();
    assert_eq!(rejected, vec![4, 5], "{v}");
    let x_in = async |from: i64, to: i64| -> (u64, f64, f64) {
        let (s, f) = app
            .get_json(&format!(
                "/v1/models/edges/features?from={}&to={}",
                flywheel::clock::rfc3339_secs(from),
                flywheel::clock::rfc3339_secs(to)
            ))
            .await;
        assert_eq!(s, 200, "{f}");
        let x = f["features"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|x| x["name"] == "x")
            .cloned()
            .unwrap_or(Value::Null);
        (
            x["count"].as_u64().unwrap_or(0),
            x["min"].as_f64().unwrap_or(f64::NAN),
            x["max"].as_f64().unwrap_or(f64::NAN),
        )
    };
    // The boundary event and the future edge share the bucket starting at b.
    assert_eq!(x_in(b, b + 3600).await, (2, 1.0, 3.0));
    // One microsecond before the boundary is the bucket before.
    assert_eq!(x_in(b - 3600, b).await, (1, 2.0, 2.0));
    // The oldest accepted event, in its own bucket.
    let old = (now_us - age_us).div_euclid(1_000_000);
    let old_bucket = old - old.rem_euclid(3600);
    assert_eq!(x_in(old_bucket, old_bucket + 3600).await, (1, 4.0, 4.0));
    app.stop().await;
}
