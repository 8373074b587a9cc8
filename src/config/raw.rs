//! The configuration as written: every section and key of the TOML file, each optional with a
//! documented default (`config/default.toml`), and the lenient parse that reports every unknown
//! key and wrongly typed value at once. [`super::RawConfig::validate`] turns it into a
//! [`super::Config`].

use super::ConfigErrors;
use crate::secret::Secret;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub server: RawServer,
    pub storage: RawStorage,
    pub ingest: RawIngest,
    pub auth: RawAuth,
    pub privacy: RawPrivacy,
    pub drift: RawDrift,
    pub jobs: RawJobs,
    pub health: crate::flywheel::health::HealthConfig,
    pub performance: crate::performance::PerformanceConfig,
    pub alerts: crate::alerts::AlertsConfig,
    pub report: RawReport,
    pub retention: RawRetention,
    /// `[quality]` and `[[quality.rules]]`: the data-quality job and standards.
    pub quality: crate::quality::rules::RawQuality,
    /// `[[monitors]]`: drift monitors; none means the default monitor (see [`RawDrift`]).
    pub monitors: Vec<crate::drift::monitor::RawMonitor>,
}

/// `[retention]`: how long job history is kept and when hourly summaries become daily (user
/// activity has its own TTL).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRetention {
    /// Job runs and their results whose window ended longer ago than this are deleted.
    pub job_runs_days: u32,
    /// Resolved alerts last updated longer ago than this are deleted (active ones never).
    pub alerts_days: u32,
    /// Summaries and event counts keep their hourly buckets this long; older days are rolled
    /// up into one bucket per day (0: never).
    pub summaries_hourly_days: u32,
    /// When the `retention` job deletes and rolls up (cron, UTC).
    pub schedule: String,
}

impl Default for RawRetention {
    fn default() -> Self {
        Self {
            job_runs_days: 400,
            alerts_days: 400,
            summaries_hourly_days: 35,
            schedule: "0 30 3 * * *".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDrift {
    /// With no `[[monitors]]`, watch every model with the default monitor.
    pub default_monitor: bool,
    /// Per model, the features with the largest effect that get their own metric series;
    /// the rest are counted in `flywheel_drift_features`.
    pub metric_top_features: usize,
}

impl Default for RawDrift {
    fn default() -> Self {
        Self {
            default_monitor: true,
            metric_top_features: 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawReport {
    /// Write the weekly report on a schedule.
    pub enabled: bool,
    /// When (cron, UTC): it covers the ISO week that ended before the fire.
    pub schedule: String,
}

impl Default for RawReport {
    fn default() -> Self {
        Self {
            enabled: true,
            schedule: "0 0 6 * * Mon".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawJobs {
    /// How often the scheduler looks at the clock, in milliseconds.
    pub poll_interval_ms: u64,
    /// A job's lease lasts this long and is renewed while it runs; a crashed runner's lease
    /// expires after it.
    pub lease_ttl_secs: u64,
}

impl Default for RawJobs {
    fn default() -> Self {
        Self {
            poll_interval_ms: 1000,
            lease_ttl_secs: 300,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    /// The URL people and Alertmanager reach the service at; empty: `http://<bound address>`.
    pub external_url: String,
    /// Address to listen on.
    pub listen: String,
    /// Directory for the SQLite database, the pseudonymisation key and reports.
    pub data_dir: PathBuf,
    /// How long a graceful shutdown may take before the process exits anyway.
    pub shutdown_timeout_secs: u64,
    /// A connection that has not sent a whole request head within this time is closed.
    pub header_read_timeout_secs: u64,
    /// An upload (`POST /v1/events`, `POST /v1/baselines`) whose body is not read and answered
    /// within this time gets 408.
    pub request_timeout_secs: u64,
    /// Open connections served at once; more wait in the listen backlog.
    pub max_connections: u64,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            external_url: String::new(),
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("flywheel-data"),
            shutdown_timeout_secs: 10,
            header_read_timeout_secs: 10,
            request_timeout_secs: 60,
            max_connections: 1024,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawStorage {
    /// `sqlite` (embedded, the default) or `postgres`.
    pub backend: String,
    /// PostgreSQL connection URL when `backend = "postgres"`.
    pub database_url: Option<Secret>,
    /// How often the in-memory summaries are folded into the store.
    pub checkpoint_interval_secs: u64,
    /// PostgreSQL connections per replica.
    pub pool_size: u32,
    /// How long a request (or the start) waits for a PostgreSQL connection.
    pub connect_timeout_secs: u64,
    /// A replica whose ingest writer has not checkpointed for this long is taken over by
    /// another (its unfolded journal rows are folded by the other).
    pub writer_ttl_secs: u64,
    /// Ingest writers per replica on a shared store, each with one append in flight.
    pub writers: u32,
}

impl Default for RawStorage {
    fn default() -> Self {
        Self {
            backend: "sqlite".into(),
            database_url: None,
            checkpoint_interval_secs: 5,
            pool_size: 8,
            connect_timeout_secs: 5,
            writer_ttl_secs: 30,
            writers: 4,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawIngest {
    pub max_body_bytes: usize,
    pub max_events_per_batch: usize,
    pub max_features_per_event: usize,
    pub max_string_len: usize,
    pub max_categories_per_feature: usize,
    pub max_future_skew_secs: i64,
    pub max_past_age_days: i64,
    pub dedup_horizon_secs: u64,
    pub queue_depth: usize,
    pub bucket_secs: i64,
    pub sketch_k: u16,
    pub joint_features: usize,
    /// Segment keys whose values get input summaries of their own (per-segment drift).
    pub segment_keys: Vec<String>,
    /// Values tracked per model and segment key; the rest are summarised as "(other)".
    pub segment_values: usize,
    /// Inputs per interaction summarised per segment: the first this many, in name order.
    pub segment_features: usize,
}

impl Default for RawIngest {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024 * 1024,
            max_events_per_batch: 20_000,
            max_features_per_event: 256,
            max_string_len: 256,
            max_categories_per_feature: 256,
            max_future_skew_secs: 300,
            max_past_age_days: 400,
            dedup_horizon_secs: 3600,
            queue_depth: 64,
            bucket_secs: 3600,
            sketch_k: crate::summary::kll::DEFAULT_K,
            joint_features: crate::summary::delta::DEFAULT_JOINT_FEATURES,
            segment_keys: Vec::new(),
            segment_values: 8,
            segment_features: 8,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawAuth {
    /// Bearer tokens accepted by `POST /v1/events`. Empty: ingest is open.
    pub ingest_tokens: Vec<Secret>,
    /// Bearer tokens accepted by the read and admin API. Empty: reads are open.
    pub read_tokens: Vec<Secret>,
    /// Also require a read token on `/metrics`, `/healthz` and `/readyz`.
    pub protect_ops: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPrivacy {
    /// HMAC key for user pseudonyms. Unset: generated into `<data_dir>/hmac.key`.
    pub hmac_key: Option<Secret>,
    /// Days of per-user activity kept for retention metrics.
    pub activity_ttl_days: u32,
}

impl Default for RawPrivacy {
    fn default() -> Self {
        Self {
            hmac_key: None,
            activity_ttl_days: 400,
        }
    }
}

/// Parse TOML text into a raw config, collecting every unknown key and wrongly typed value.
pub fn parse_raw(text: &str) -> Result<RawConfig, ConfigErrors> {
    let (raw, errors) = parse_lenient(text);
    match raw {
        Some(r) if errors.is_empty() => Ok(r),
        _ => Err(ConfigErrors(errors)),
    }
}

/// Bad keys are reported and left out (their defaults apply), so that the rest can be checked.
pub(super) fn parse_lenient(text: &str) -> (Option<RawConfig>, Vec<String>) {
    let mut table: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            let e: toml::de::Error = e;
            return (None, vec![format!("not valid TOML: {e}")]);
        }
    };
    let original = table.clone();
    let table_ref = &original;
    let mut errors = Vec::new();
    for (section, value) in table_ref {
        if let Some(items) = value.as_array() {
            let probe_one = |v: toml::Value| {
                let mut probe = toml::Table::new();
                probe.insert(section.to_owned(), toml::Value::Array(vec![v]));
                RawConfig::deserialize(toml::Value::Table(probe))
            };
            match check_array(section, items, &probe_one, &mut errors) {
                Some(kept) => table.insert(section.clone(), toml::Value::Array(kept)),
                None => table.remove(section),
            };
            continue;
        }
        let Some(inner) = value.as_table() else {
            errors.push(format!("{section}: expected a [{section}] table"));
            table.remove(section);
            continue;
        };
        let mut empty = toml::Table::new();
        empty.insert(section.clone(), toml::Value::Table(toml::Table::new()));
        if let Err(e) = RawConfig::deserialize(toml::Value::Table(empty)) {
            errors.push(format!("{section}: {}", e.message().trim()));
            table.remove(section);
            continue;
        }
        for (key, v) in inner {
            // An array of tables inside a section (`[[quality.rules]]`): element by element.
            if let Some(items) = v
                .as_array()
                .filter(|a| !a.is_empty() && a.iter().all(toml::Value::is_table))
            {
                let probe_one = |item: toml::Value| {
                    let mut one = toml::Table::new();
                    one.insert(key.clone(), toml::Value::Array(vec![item]));
                    let mut probe = toml::Table::new();
                    probe.insert(section.clone(), toml::Value::Table(one));
                    RawConfig::deserialize(toml::Value::Table(probe))
                };
                let label = format!("{section}.{key}");
                let kept = check_array(&label, items, &probe_one, &mut errors);
                if let Some(toml::Value::Table(t)) = table.get_mut(section) {
                    match kept {
                        Some(kept) => t.insert(key.clone(), toml::Value::Array(kept)),
                        None => t.remove(key),
                    };
                }
                continue;
            }
            // Deserialize the section with this key alone: each key's problem is found on its own.
            let mut one = toml::Table::new();
            one.insert(key.clone(), v.clone());
            let mut probe = toml::Table::new();
            probe.insert(section.clone(), toml::Value::Table(one));
            if let Err(e) = RawConfig::deserialize(toml::Value::Table(probe)) {
                errors.push(format!("{section}.{key}: {}", e.message().trim()));
                if let Some(toml::Value::Table(t)) = table.get_mut(section) {
                    t.remove(key);
                }
            }
        }
    }
    match RawConfig::deserialize(toml::Value::Table(table)) {
        Ok(r) => (Some(r), errors),
        Err(e) => {
            errors.push(e.message().trim().to_owned());
            (None, errors)
        }
    }
}

/// An array of tables (`[[monitors]]`, `[[quality.rules]]`) called `label`: each element's keys
/// are checked on their own (`probe_one` deserializes a config holding that one element); bad
/// keys are reported and left out, so that the rest of the element is still checked under its
/// index. `None` when the array itself is of the wrong type (reported).
fn check_array(
    label: &str,
    items: &[toml::Value],
    probe_one: &dyn Fn(toml::Value) -> Result<RawConfig, toml::de::Error>,
    errors: &mut Vec<String>,
) -> Option<Vec<toml::Value>> {
    if let Err(e) = probe_one(toml::Value::Table(toml::Table::new())) {
        errors.push(format!("{label}: {}", e.message().trim()));
        return None;
    }
    let mut kept = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Some(inner) = item.as_table() else {
            errors.push(format!("{label}[{i}]: expected a [[{label}]] table"));
            kept.push(toml::Value::Table(toml::Table::new()));
            continue;
        };
        let mut good = inner.clone();
        for (key, v) in inner {
            let mut one = toml::Table::new();
            one.insert(key.clone(), v.clone());
            if let Err(e) = probe_one(toml::Value::Table(one)) {
                errors.push(format!("{label}[{i}].{key}: {}", e.message().trim()));
                good.remove(key);
            }
        }
        kept.push(toml::Value::Table(good));
    }
    Some(kept)
}
