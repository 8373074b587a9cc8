//! Delivering the service's alerts: Alertmanager's v2 API and a signed generic webhook, from one
//! background task, so that a slow or dead receiver never blocks ingest or a job.
//!
//! * **Alertmanager**: `POST <url>/api/v2/alerts` with `labels`, `annotations`, `startsAt`,
//!   `endsAt` and `generatorURL`. Firing alerts are pushed on every change and again every
//!   `alertmanager_refresh_secs` with `endsAt` four periods ahead, so Alertmanager keeps them
//!   while the service lives and lets them expire if it dies; a resolved alert is pushed once
//!   with `endsAt` = when it resolved.
//! * **Webhook**: `POST <url>` with `{"version": "1", "status", "transition", "alert"}`, signed
//!   with HMAC-SHA-256 of the body under `webhook_secret` in `X-Flywheel-Signature:
//!   sha256=<hex>`; on firing, resolved, and every `renotify_secs` while firing.
//! * Each request is retried with exponential backoff (0.5 s, 1 s, 2 s...) up to
//!   `max_attempts`; outcomes are counted in `flywheel_alert_notifications_total{receiver,
//!   outcome}` and failures logged. The queue is bounded; when full, a notification is dropped
//!   and counted (`outcome="dropped"`), and the next Alertmanager refresh re-sends the state.

use super::{AlertsConfig, Transition, TransitionKind};
use crate::clock::{Clock, Timestamp};
use crate::metrics::Metrics;
use crate::store::{AlertRow, AlertState, Store};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const QUEUE: usize = 1024;

#[derive(Clone)]
pub struct Sender {
    tx: tokio::sync::mpsc::Sender<Transition>,
    metrics: Arc<Metrics>,
}

impl Sender {
    /// Queue a transition; never waits.
    pub fn send(&self, t: Transition) {
        if self.tx.try_send(t).is_err() {
            self.metrics
                .alert_notifications
                .with_label_values(&["queue", "dropped"])
                .inc();
            tracing::warn!("alert delivery queue is full; a notification was dropped (the next refresh re-sends firing alerts)");
        }
    }
}

/// The Alertmanager v2 representation of an alert.
pub fn alertmanager_alert(a: &AlertRow, ends_at: Timestamp, external_url: &str) -> Value {
    let model = a.labels.get("model").cloned().unwrap_or_default();
    json!({
        "labels": a.labels,
        "annotations": a.annotations,
        "startsAt": a.starts_at.unwrap_or(a.created_at).to_rfc3339(),
        "endsAt": ends_at.to_rfc3339(),
        "generatorURL": format!("{external_url}/v1/alerts?model={model}"),
    })
}

/// `sha256=<hex>` of the body under the secret.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(), // HMAC takes keys of any length
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

struct Worker {
    cfg: AlertsConfig,
    client: reqwest::Client,
    metrics: Arc<Metrics>,
    store: Arc<dyn Store>,
    clock: Clock,
    external_url: String,
}

impl Worker {
    async fn post(&self, receiver: &str, url: &str, body: Vec<u8>, signature: Option<String>) {
        let mut delay = Duration::from_millis(500);
        for attempt in 1..=self.cfg.max_attempts {
            let mut req = self
                .client
                .post(url)
                .header("content-type", "application/json")
                .body(body.clone());
            if let Some(s) = &signature {
                req = req.header("x-flywheel-signature", s);
            }
            let outcome = match req.send().await {
                Ok(r) if r.status().is_success() => {
                    self.metrics
                        .alert_notifications
                        .with_label_values(&[receiver, "sent"])
                        .inc();
                    return;
                }
                Ok(r) => format!("HTTP {}", r.status()),
                Err(e) => e.to_string(),
            };
            if attempt == self.cfg.max_attempts {
                self.metrics
                    .alert_notifications
                    .with_label_values(&[receiver, "failed"])
                    .inc();
                tracing::error!(receiver, url, attempts = attempt, error = %outcome, "alert delivery failed");
                return;
            }
            self.metrics
                .alert_notifications
                .with_label_values(&[receiver, "retried"])
                .inc();
            tracing::warn!(receiver, url, attempt, error = %outcome, "alert delivery failed; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }

    async fn to_alertmanager(&self, alerts: Vec<Value>) {
        if self.cfg.alertmanager_url.is_empty() || alerts.is_empty() {
            return;
        }
        let url = format!(
            "{}/api/v2/alerts",
            self.cfg.alertmanager_url.trim_end_matches('/')
        );
        let body = serde_json::to_vec(&alerts).unwrap_or_default();
        self.post("alertmanager", &url, body, None).await;
    }

    fn horizon(&self) -> Timestamp {
        Timestamp::from_micros(
            self.clock.now_us() + 4 * self.cfg.alertmanager_refresh_secs as i64 * 1_000_000,
        )
    }

    async fn handle(&self, t: Transition) {
        let ends = match t.kind {
            TransitionKind::Resolved => t.alert.ends_at.unwrap_or_else(|| self.clock.now()),
            _ => self.horizon(),
        };
        if t.kind != TransitionKind::Renotify {
            self.to_alertmanager(vec![alertmanager_alert(&t.alert, ends, &self.external_url)])
                .await;
        }
        if !self.cfg.webhook_url.is_empty() {
            let body = json!({
                "version": "1",
                "status": if t.kind == TransitionKind::Resolved { "resolved" } else { "firing" },
                "transition": t.kind.as_str(),
                "alert": {
                    "labels": t.alert.labels,
                    "annotations": t.alert.annotations,
                    "startsAt": t.alert.starts_at.map(Timestamp::to_rfc3339),
                    "endsAt": t.alert.ends_at.map(Timestamp::to_rfc3339),
                    "generatorURL": format!("{}/v1/alerts", self.external_url),
                },
            });
            let bytes = serde_json::to_vec(&body).unwrap_or_default();
            let sig = signature(
                self.cfg.webhook_secret.as_ref().map_or("", |s| s.expose()),
                &bytes,
            );
            self.post("webhook", &self.cfg.webhook_url, bytes, Some(sig))
                .await;
        }
    }

    fn set_gauges(&self, active: &[AlertRow]) {
        for sev in ["critical", "warning"] {
            let n = active
                .iter()
                .filter(|a| {
                    a.state == AlertState::Firing
                        && a.labels.get("severity").map(String::as_str) == Some(sev)
                })
                .count();
            self.metrics
                .alerts_firing
                .with_label_values(&[sev])
                .set(n as f64);
        }
    }

    /// Re-push every firing alert to Alertmanager and refresh the firing-alert gauge.
    async fn refresh(&self) {
        match self.store.alerts().active_alerts().await {
            Ok(active) => {
                self.set_gauges(&active);
                let ends = self.horizon();
                let firing: Vec<Value> = active
                    .iter()
                    .filter(|a| a.state == AlertState::Firing)
                    .map(|a| alertmanager_alert(a, ends, &self.external_url))
                    .collect();
                self.to_alertmanager(firing).await;
            }
            Err(e) => tracing::warn!(error = %e, "cannot read active alerts for the refresh"),
        }
    }
}

/// Start the delivery task. Returns the sender the engine queues transitions on.
pub fn start(
    cfg: AlertsConfig,
    external_url: String,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    clock: Clock,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> (Sender, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Transition>(QUEUE);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(cfg.timeout_secs))
        .build()
        .unwrap_or_default();
    let refresh = Duration::from_secs(cfg.alertmanager_refresh_secs);
    let worker = Worker {
        cfg,
        client,
        metrics: metrics.clone(),
        store,
        clock,
        external_url,
    };
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(refresh);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                t = rx.recv() => match t {
                    Some(t) => {
                        worker.handle(t).await;
                        worker.refresh_gauges_only().await;
                    }
                    None => break,
                },
                _ = tick.tick() => worker.refresh().await,
                _ = stop.changed() => break,
            }
        }
    });
    (Sender { tx, metrics }, task)
}

impl Worker {
    async fn refresh_gauges_only(&self) {
        if let Ok(active) = self.store.alerts().active_alerts().await {
            self.set_gauges(&active);
        }
    }
}
