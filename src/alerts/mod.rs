//! The service's own alerts, raised from the results of its jobs (drift decisions, flywheel
//! states) with a lifecycle: **pending** (the condition is building: a feature drifted once, an
//! arc is SLOWING) → **firing** (it persisted: N of M drifted windows, a PLATEAU held two
//! evaluations) → **resolved** after `resolve_after` clean evaluations in a row.
//!
//! One alert per model and incident: drift raises `FlywheelFeatureDrift` per (model, monitor)
//! listing the top drifted features by effect, never one per feature. Names and severities are
//! those of the Prometheus rules in `alerts/` so that on-call sees one vocabulary. Firing and
//! resolved alerts are handed to [`deliver`] (Alertmanager, webhook), which never blocks a job.

pub mod deliver;
pub mod runbooks;

use crate::clock::{Clock, Timestamp};
use crate::drift::run::DriftFindings;
use crate::flywheel::health::Health;
use crate::flywheel::plateau::ArcState;
use crate::jobs::AfterRun;
use crate::secret::Secret;
use crate::store::{AlertRow, AlertState, Store, StoreError};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// `[alerts]` in the config file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Clean evaluations in a row before a firing alert resolves.
    pub resolve_after: u32,
    /// A firing alert is sent again to the webhook this often (seconds).
    pub renotify_secs: u64,
    /// Alertmanager base URL (e.g. http://127.0.0.1:9093); empty: off.
    pub alertmanager_url: String,
    /// Firing alerts are pushed to Alertmanager again this often, with `endsAt` a few periods
    /// ahead, so that Alertmanager keeps them while the service is up (seconds).
    pub alertmanager_refresh_secs: u64,
    /// Generic webhook URL; empty: off.
    pub webhook_url: String,
    /// HMAC-SHA-256 key for the webhook's `X-Flywheel-Signature: sha256=<hex>` header
    /// (env FLYWHEEL_WEBHOOK_SECRET). Required with a webhook.
    pub webhook_secret: Option<Secret>,
    /// Delivery attempts per notification (exponential backoff from 0.5 s).
    pub max_attempts: u32,
    /// Per-request timeout (seconds).
    pub timeout_secs: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            resolve_after: 2,
            renotify_secs: 4 * 3600,
            alertmanager_url: String::new(),
            alertmanager_refresh_secs: 60,
            webhook_url: String::new(),
            webhook_secret: None,
            max_attempts: 5,
            timeout_secs: 5,
        }
    }
}

impl AlertsConfig {
    pub fn check(&self, errors: &mut Vec<String>) {
        if self.resolve_after == 0 {
            errors.push("alerts.resolve_after: must be at least 1".into());
        }
        for (k, u) in [
            ("alerts.alertmanager_url", &self.alertmanager_url),
            ("alerts.webhook_url", &self.webhook_url),
        ] {
            if !(u.is_empty() || u.starts_with("http://") || u.starts_with("https://")) {
                errors.push(format!("{k}: {u:?} must start with http:// or https://"));
            }
        }
        if !self.webhook_url.is_empty() && self.webhook_secret.as_ref().is_none_or(|s| s.len() < 16)
        {
            errors.push(
                "alerts.webhook_secret: a webhook needs a signing secret of at least 16 characters"
                    .into(),
            );
        }
        if self.alertmanager_refresh_secs == 0 || self.max_attempts == 0 || self.timeout_secs == 0 {
            errors.push(
                "alerts: alertmanager_refresh_secs, max_attempts and timeout_secs must be > 0"
                    .into(),
            );
        }
    }
}

/// How urgent an alert is: `critical` pages, `warning` makes a ticket (the `severity` label of
/// the Prometheus rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    Critical,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
        }
    }
}

/// What a job's results say about one potential alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub alertname: &'static str,
    pub severity: Severity,
    /// Labels besides alertname and severity (model, arc, monitor).
    pub labels: BTreeMap<String, String>,
    /// The condition persisted (fire now) or is building (pending).
    pub firing: bool,
    pub summary: String,
    pub description: String,
}

impl Signal {
    fn fingerprint(&self) -> String {
        let mut s = self.alertname.to_owned();
        for (k, v) in &self.labels {
            s.push_str(&format!("|{k}={v}"));
        }
        s
    }
}

/// Signals from a drift run's findings: per (model, monitor), feature drift (warning) and
/// dataset drift (critical).
pub fn drift_signals(findings: &DriftFindings) -> Vec<Signal> {
    let mut out = Vec::new();
    for (model, d) in findings {
        let monitor = &d.monitor;
        let labels: BTreeMap<String, String> = [
            ("model".to_owned(), model.clone()),
            ("monitor".to_owned(), monitor.clone()),
        ]
        .into();
        let top: Vec<String> = d
            .top_drifted
            .iter()
            .map(|t| {
                format!(
                    "{}/{} ({} {:.3} against {}{})",
                    t.class,
                    t.feature,
                    t.score_name,
                    t.score.unwrap_or(f64::NAN),
                    t.threshold,
                    if t.alerting { ", persistent" } else { "" }
                )
            })
            .collect();
        if d.alerting_features > 0 || d.drifted > 0 {
            out.push(Signal {
                alertname: "FlywheelFeatureDrift",
                severity: Severity::Warning,
                labels: labels.clone(),
                firing: d.alerting_features > 0,
                summary: format!(
                    "Model {model}: {} feature(s) drifted (monitor {monitor})",
                    d.alerting_features.max(d.drifted)
                ),
                description: format!(
                    "Top drifted features: {}. Baseline {}.",
                    top.join(", "),
                    d.baseline
                ),
            });
        }
        if d.dataset_drift {
            let features = d.decided.max(1);
            out.push(Signal {
                alertname: "FlywheelDatasetDrift",
                severity: Severity::Critical,
                labels,
                // Persistent when the features that alert (N of M windows) alone reach the share.
                firing: d.alerting_features as f64 / features as f64 >= d.drift_share,
                summary: format!(
                    "Model {model}: {:.0} % of its features drifted (monitor {monitor})",
                    d.share_drifted * 100.0
                ),
                description: format!(
                    "A change this broad is usually an upstream break. Top drifted: {}.",
                    top.join(", ")
                ),
            });
        }
    }
    out
}

/// Signals from a health run's findings: per model and arc, and the consent invariant.
pub fn health_signals(findings: &[Health]) -> Vec<Signal> {
    let mut out = Vec::new();
    for h in findings {
        let model = h.model.clone();
        for (arc, a) in &h.arcs {
            let (name, severity, firing) = match (*arc, a.state) {
                ("learning", ArcState::Regressing) => {
                    ("FlywheelLearningRegressing", Severity::Critical, true)
                }
                ("learning", ArcState::Plateau) => {
                    ("FlywheelLearningPlateau", Severity::Warning, true)
                }
                ("learning", ArcState::Slowing) => {
                    ("FlywheelLearningPlateau", Severity::Warning, false)
                }
                ("input", ArcState::Plateau | ArcState::Regressing) => {
                    ("FlywheelInputStarved", Severity::Warning, true)
                }
                ("input", ArcState::Slowing) => ("FlywheelInputStarved", Severity::Warning, false),
                ("output", ArcState::Plateau | ArcState::Regressing) => {
                    ("FlywheelOutputStalled", Severity::Warning, true)
                }
                ("loop", ArcState::Regressing) => {
                    ("FlywheelRetentionDrop", Severity::Critical, true)
                }
                _ => continue,
            };
            out.push(Signal {
                alertname: name,
                severity,
                labels: [
                    ("model".to_owned(), model.clone()),
                    ("arc".to_owned(), (*arc).to_owned()),
                ]
                .into(),
                firing,
                summary: format!("Model {model}: the {arc} arc is {}", a.state.as_str()),
                description: format!(
                    "{} Since: {}. What to try: {}",
                    a.why,
                    a.since.as_deref().unwrap_or("unknown"),
                    a.advice
                ),
            });
        }
        let v = h.funnel.training_consent_violations;
        if v > 0 {
            out.push(Signal {
                alertname: "FlywheelTrainingConsentViolation",
                severity: Severity::Critical,
                labels: [("model".to_owned(), model.clone())].into(),
                firing: true,
                summary: format!(
                    "Model {model}: {v} items used in training without training consent"
                ),
                description: "Stop the training pipeline and purge the items.".into(),
            });
        }
    }
    out
}

/// What changed, for the delivery side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransitionKind {
    /// The alert started firing.
    Firing,
    /// It resolved.
    Resolved,
    /// It is still firing and `renotify_secs` passed since it was last sent.
    Renotify,
}

impl TransitionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransitionKind::Firing => "firing",
            TransitionKind::Resolved => "resolved",
            TransitionKind::Renotify => "renotify",
        }
    }
}

/// A state change the delivery side hears about.
#[derive(Debug, Clone)]
pub struct Transition {
    pub alert: AlertRow,
    pub kind: TransitionKind,
}

/// Keeps the alert book: applies signals, records transitions, hands them to delivery.
pub struct Engine {
    pub config: AlertsConfig,
    store: Arc<dyn Store>,
    notify: Option<deliver::Sender>,
    /// Newest window applied per source (older reruns do not move alerts).
    applied: crate::jobs::Newest,
    /// One evaluation at a time (jobs run concurrently).
    lock: tokio::sync::Mutex<()>,
    clock: Clock,
    /// The service's external URL: alerts link to its runbooks.
    external_url: String,
}

impl Engine {
    pub fn new(
        config: AlertsConfig,
        store: Arc<dyn Store>,
        notify: Option<deliver::Sender>,
        clock: Clock,
        external_url: String,
    ) -> Self {
        Self {
            config,
            store,
            notify,
            applied: crate::jobs::Newest::default(),
            lock: tokio::sync::Mutex::new(()),
            clock,
            external_url,
        }
    }

    /// Apply one source's signals for a window (the newest window of that source only).
    async fn observe(&self, source: &str, window_end: i64, signals: Vec<Signal>) {
        if !self.applied.advance(source, window_end) {
            return;
        }
        if let Err(e) = self.apply(source, signals, self.clock.now()).await {
            tracing::error!(job = %source, error = %e, "cannot update alerts from the run");
        }
    }

    /// The lifecycle step for one source's evaluation.
    pub async fn apply(
        &self,
        source: &str,
        signals: Vec<Signal>,
        now: Timestamp,
    ) -> Result<Vec<Transition>, StoreError> {
        let _guard = self.lock.lock().await;
        let active: Vec<AlertRow> = self
            .store
            .alerts()
            .active_alerts()
            .await?
            .into_iter()
            .filter(|a| a.source == source)
            .collect();
        let mut by_fp: HashMap<String, AlertRow> = active
            .into_iter()
            .map(|a| (a.fingerprint.clone(), a))
            .collect();
        let mut transitions = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for s in signals {
            let fp = s.fingerprint();
            if !seen.insert(fp.clone()) {
                continue;
            }
            let mut labels = s.labels.clone();
            labels.insert("alertname".into(), s.alertname.into());
            labels.insert("severity".into(), s.severity.as_str().into());
            let annotations: BTreeMap<String, String> = [
                ("summary".to_owned(), s.summary.clone()),
                ("description".to_owned(), s.description.clone()),
                (
                    "runbook_url".to_owned(),
                    runbooks::url(&self.external_url, s.alertname),
                ),
            ]
            .into();
            let mut a = by_fp.remove(&fp).unwrap_or(AlertRow {
                id: 0,
                fingerprint: fp,
                source: source.to_owned(),
                state: AlertState::Pending,
                labels: labels.clone(),
                annotations: annotations.clone(),
                hits: 0,
                clean: 0,
                created_at: now,
                starts_at: None,
                ends_at: None,
                updated_at: now,
                notified_at: None,
            });
            a.hits += 1;
            a.clean = 0;
            a.labels = labels;
            a.annotations = annotations;
            a.updated_at = now;
            if s.firing && a.state != AlertState::Firing {
                a.state = AlertState::Firing;
                a.starts_at = Some(now);
                a.notified_at = Some(now);
                a.id = self.store.alerts().put_alert(&a).await?;
                transitions.push(Transition {
                    alert: a,
                    kind: TransitionKind::Firing,
                });
                continue;
            }
            let renotify = a.state == AlertState::Firing
                && a.notified_at.is_some_and(|t| {
                    now.micros() - t.micros() >= self.config.renotify_secs as i64 * 1_000_000
                });
            if renotify {
                a.notified_at = Some(now);
            }
            a.id = self.store.alerts().put_alert(&a).await?;
            if renotify {
                transitions.push(Transition {
                    alert: a,
                    kind: TransitionKind::Renotify,
                });
            }
        }
        // Active alerts without a signal this time: a clean evaluation.
        for (_, mut a) in by_fp {
            a.clean += 1;
            a.hits = 0;
            a.updated_at = now;
            if a.state == AlertState::Pending {
                // The condition did not persist: the pending alert is dropped.
                a.state = AlertState::Inactive;
                self.store.alerts().put_alert(&a).await?;
            } else if a.clean >= i64::from(self.config.resolve_after) {
                a.state = AlertState::Resolved;
                a.ends_at = Some(now);
                self.store.alerts().put_alert(&a).await?;
                transitions.push(Transition {
                    alert: a,
                    kind: TransitionKind::Resolved,
                });
            } else {
                self.store.alerts().put_alert(&a).await?;
            }
        }
        for t in &transitions {
            tracing::warn!(alert = %t.alert.labels.get("alertname").map_or("", |s| s.as_str()), model = %t.alert.labels.get("model").map_or("", |s| s.as_str()), transition = t.kind.as_str(), "alert");
            if let Some(n) = &self.notify {
                n.send(t.clone());
            }
        }
        Ok(transitions)
    }
}

#[async_trait]
impl AfterRun<DriftFindings> for Engine {
    async fn after_run(&self, job: &str, window: (i64, i64), findings: &DriftFindings) {
        self.observe(job, window.1, drift_signals(findings)).await;
    }
}

#[async_trait]
impl AfterRun<Vec<Health>> for Engine {
    async fn after_run(&self, job: &str, window: (i64, i64), findings: &Vec<Health>) {
        self.observe(job, window.1, health_signals(findings)).await;
    }
}
