use flywheel::app::App;
use flywheel::clock::Clock;
use flywheel::config::{Overrides, RawConfig};
use flywheel::store::Store;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tempfile::TempDir;

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub dir: TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub struct Options {
    pub tweak: Box<dyn FnOnce(&mut RawConfig) + Send>,
    pub clock: Clock,
    pub store: Option<Arc<dyn Store>>,
    pub dir: Option<TempDir>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            tweak: Box::new(|_| {}),
            clock: Clock::system(),
            store: None,
            dir: None,
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(opts: Options) -> TestApp {
    let dir = opts
        .dir
        .unwrap_or_else(|| tempfile::tempdir().expect("tempdir"));
    let mut raw = RawConfig::default();
    raw.server.listen = "127.0.0.1:0".into();
    raw.server.data_dir = dir.path().to_path_buf();
    raw.privacy.hmac_key = Some("integration-test-key-0123456789".into());
    (opts.tweak)(&mut raw);
    let config = raw
        .validate(Overrides::default())
        .expect("valid test config");
    let app = App::build_with(config, opts.clock, opts.store)
        .await
        .expect("app builds");
    let addr = app.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        client: reqwest::Client::new(),
        dir,
        stop: Some(tx),
        task: Some(task),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn post_ndjson(&self, lines: &[Value]) -> (u16, Value) {
        let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
        self.post_raw("application/x-ndjson", body.into_bytes())
            .await
    }

    pub async fn post_raw(&self, content_type: &str, body: Vec<u8>) -> (u16, Value) {
        let r = self
            .client
            .post(self.url("/v1/events"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        let v = r.json::<Value>().await.unwrap_or(Value::Null);
        (status, v)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.unwrap_or(Value::Null))
    }

    /// Run `job` for the window starting at `window` (seconds) and assert it answered 200.
    pub async fn run_job(&self, job: &str, window: i64) {
        let path = format!("/v1/jobs/{job}/run?window={}", enc(&rfc(window)));
        let r = self
            .client
            .post(self.url(&path))
            .send()
            .await
            .expect("run request");
        let status = r.status().as_u16();
        let body = r.text().await.unwrap_or_default();
        assert_eq!(status, 200, "{job} at {}: {body}", rfc(window));
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default())
    }

    /// Stop gracefully and hand back the data directory.
    pub async fn stop(mut self) -> TempDir {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("join").expect("clean shutdown");
        }
        self.dir
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

/// RFC 3339 of `secs` (UTC).
pub fn rfc(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .expect("time")
        .to_rfc3339()
}

/// A time for a query string.
pub fn enc(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339()
}

pub fn interaction(id: &str, model: &str, version: &str) -> Value {
    json!({
        "event_id": id,
        "event_type": "interaction",
        "occurred_at": now_rfc3339(),
        "model": {"id": model, "version": version},
        "user_id": format!("user-{id}"),
        "features": {"age": 30.5, "country": "DE", "premium": true, "score_in": null},
        "prediction": {"score": 0.42, "label": "click", "confidence": 0.8}
    })
}

/// Count of one event type for one model from `GET /v1/models`.
pub fn count_of(models: &Value, model: &str, event_type: &str) -> u64 {
    models["models"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["id"] == model)
        .and_then(|m| m["events"][event_type].as_u64())
        .unwrap_or(0)
}

/// Poll `f` every 100-250 ms until it gives a value; fail naming `what` after `secs` seconds.
pub async fn wait_until<T>(what: &str, secs: u64, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

impl TestApp {
    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }
}

/// A fresh, empty PostgreSQL database for one test, on the throwaway cluster that
/// `scripts/test.sh` starts (its admin URL in `FLYWHEEL_TEST_DATABASE_URL`). Without it the test
/// fails, saying how to get one: PostgreSQL tests are never skipped.
pub async fn pg_database() -> String {
    let admin = std::env::var("FLYWHEEL_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "FLYWHEEL_TEST_DATABASE_URL is not set: run the tests with scripts/test.sh, which starts \
             a throwaway PostgreSQL cluster, or point it at a server where this user may CREATE DATABASE"
        )
    });
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test PostgreSQL ({admin}): {e}"));
    let name = format!("fw_{}", hex::encode(rand::random::<[u8; 6]>()));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create the test database");
    let (base, _) = admin
        .rsplit_once('/')
        .expect("the admin URL names a database");
    format!("{base}/{name}")
}
