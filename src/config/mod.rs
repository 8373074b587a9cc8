//! Configuration: a raw form read from TOML (every key optional, documented defaults in
//! `config/default.toml`), checked into a [`Config`] with **every** error reported at once.
//!
//! Precedence, lowest first: built-in defaults, the config file, environment variables
//! (`FLYWHEEL_LISTEN`, `FLYWHEEL_DATA_DIR`, `FLYWHEEL_HMAC_KEY`, `FLYWHEEL_DATABASE_URL`), then
//! command-line flags.

mod raw;

use crate::secret::Secret;
pub use raw::*;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Most numeric inputs summarised jointly (`ingest.joint_features`): the state is d² numbers per
/// hour and the fold d²/2 products per event.
pub const MAX_JOINT_FEATURES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    /// The database URL (it may hold a password).
    Postgres(Secret),
}

/// The HTTP server's limits against slow and idle clients (`server.*`; used by the accept loop
/// in `http::serve`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// `server.external_url`; `None`: `http://<bound address>` (set by `App::build`).
    pub external_url: Option<String>,
    pub data_dir: PathBuf,
    pub shutdown_timeout: Duration,
    /// Limits against slow and idle clients (`server.*`).
    pub http_limits: HttpLimits,
    pub backend: Backend,
    /// `storage.*` (pool size, timeouts, writer TTL).
    pub storage: RawStorage,
    pub checkpoint_interval: Duration,
    pub ingest: RawIngest,
    pub auth: RawAuth,
    pub hmac_key: Option<Secret>,
    pub activity_ttl_days: u32,
    pub drift: RawDrift,
    pub jobs: RawJobs,
    pub health: crate::flywheel::health::HealthConfig,
    pub alerts: crate::alerts::AlertsConfig,
    /// The health job's schedule (validated `health.schedule`).
    pub health_schedule: crate::jobs::schedule::CronSchedule,
    pub performance: crate::performance::PerformanceConfig,
    /// The performance job's schedule, when enabled.
    pub performance_schedule: Option<crate::jobs::schedule::CronSchedule>,
    /// The weekly report's schedule, when enabled.
    pub report_schedule: Option<crate::jobs::schedule::CronSchedule>,
    /// `[retention]` and its validated schedule.
    pub retention: RawRetention,
    pub retention_schedule: Option<crate::jobs::schedule::CronSchedule>,
    pub monitors: Vec<crate::drift::monitor::Monitor>,
    /// The quality job and its rules (`None`: disabled).
    pub quality: Option<crate::quality::rules::Quality>,
}

impl Config {
    /// Where the store is, for `store::open`.
    pub fn store_location(&self) -> crate::store::Location {
        match &self.backend {
            Backend::Sqlite => crate::store::Location::Sqlite(self.data_dir.clone()),
            Backend::Postgres(url) => crate::store::Location::Postgres {
                url: url.clone(),
                options: crate::store::postgres::PgOptions {
                    pool_size: self.storage.pool_size,
                    connect_timeout: Duration::from_secs(self.storage.connect_timeout_secs),
                    dedup_horizon_secs: self.ingest.dedup_horizon_secs as i64,
                },
            },
        }
    }
}

/// Every problem found in a config, each naming the key.
#[derive(Debug, thiserror::Error)]
#[error("{} problem(s) in the configuration:\n  - {}", .0.len(), .0.join("\n  - "))]
pub struct ConfigErrors(pub Vec<String>);

/// Overrides from the environment and the command line.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub hmac_key: Option<Secret>,
    pub database_url: Option<Secret>,
    pub webhook_secret: Option<Secret>,
}

impl Overrides {
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Self {
            listen: var("FLYWHEEL_LISTEN"),
            data_dir: var("FLYWHEEL_DATA_DIR").map(PathBuf::from),
            hmac_key: var("FLYWHEEL_HMAC_KEY").map(Secret::from),
            database_url: var("FLYWHEEL_DATABASE_URL").map(Secret::from),
            webhook_secret: var("FLYWHEEL_WEBHOOK_SECRET").map(Secret::from),
        }
    }

    /// `other` wins where it is set.
    pub fn or(self, other: Overrides) -> Overrides {
        Overrides {
            listen: other.listen.or(self.listen),
            data_dir: other.data_dir.or(self.data_dir),
            hmac_key: other.hmac_key.or(self.hmac_key),
            database_url: other.database_url.or(self.database_url),
            webhook_secret: other.webhook_secret.or(self.webhook_secret),
        }
    }
}

/// A cron schedule from `key`, or `None` with the reason added to `errors`.
fn schedule(
    errors: &mut Vec<String>,
    key: &str,
    expr: &str,
) -> Option<crate::jobs::schedule::CronSchedule> {
    crate::jobs::schedule::CronSchedule::parse(expr)
        .map_err(|e| errors.push(format!("{key}: {e}")))
        .ok()
}

/// Hourly buckets must outlive every range a scheduled computation reads at hourly resolution:
/// each monitor's window and its rolling or week-ago baseline, and the volume check's same hour
/// a week before. (Fixed `range:` baselines older than that are read at day resolution.)
fn check_rollup_age(
    errors: &mut Vec<String>,
    hourly_days: u32,
    monitors: &[crate::drift::monitor::Monitor],
) {
    if hourly_days == 0 {
        return;
    }
    const DAY: i64 = 86_400;
    let mut need = 8 * DAY;
    let mut why = "the volume check's same hour a week before".to_owned();
    for m in monitors {
        // The window starting a day ago, and its baseline: how far back do they reach?
        let start = -DAY;
        let reach = match m.baseline.range_for(start, start + m.window_secs) {
            Some((from, _))
                if !matches!(
                    m.baseline,
                    crate::drift::monitor::BaselineSpec::Range { .. }
                ) =>
            {
                -from
            }
            _ => m.window_secs,
        } + m.window_secs;
        if reach > need {
            need = reach;
            why = format!("monitor {:?} (window and baseline)", m.name);
        }
    }
    let need_days = (need + DAY - 1) / DAY + 1;
    if i64::from(hourly_days) < need_days {
        errors.push(format!(
            "retention.summaries_hourly_days: {hourly_days} is shorter than {why} reaches back ({need_days} days); use at least {need_days}, or 0 to keep hourly buckets forever"
        ));
    }
}

/// Parse TOML and check it, returning the config and every problem found, in the file's terms:
/// unknown keys, wrongly typed values and invalid values together.
pub fn check_text(text: &str, ov: Overrides) -> Result<Config, ConfigErrors> {
    let (raw, mut errors) = parse_lenient(text);
    let Some(raw) = raw else {
        return Err(ConfigErrors(errors));
    };
    match raw.validate(ov) {
        Ok(c) if errors.is_empty() => Ok(c),
        Ok(_) => Err(ConfigErrors(errors)),
        Err(e) => {
            errors.extend(e.0);
            Err(ConfigErrors(errors))
        }
    }
}

impl RawConfig {
    /// Apply overrides and check every value; all problems are returned together.
    pub fn validate(mut self, ov: Overrides) -> Result<Config, ConfigErrors> {
        if let Some(l) = ov.listen {
            self.server.listen = l;
        }
        if let Some(d) = ov.data_dir {
            self.server.data_dir = d;
        }
        if ov.hmac_key.is_some() {
            self.privacy.hmac_key = ov.hmac_key;
        }
        if ov.database_url.is_some() {
            self.storage.database_url = ov.database_url;
        }
        let mut errors = Vec::new();
        let listen = match self.server.listen.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(e) => {
                errors.push(format!(
                    "server.listen: {:?} is not an address like 127.0.0.1:8080 ({e})",
                    self.server.listen
                ));
                None
            }
        };
        if self.server.data_dir.as_os_str().is_empty() {
            errors.push("server.data_dir: must not be empty".into());
        }
        let backend = match self.storage.backend.as_str() {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" => match &self.storage.database_url {
                Some(u)
                    if u.expose().starts_with("postgres://")
                        || u.expose().starts_with("postgresql://") =>
                {
                    Some(Backend::Postgres(u.clone()))
                }
                Some(_) => {
                    errors.push("storage.database_url: must start with postgres://".into());
                    None
                }
                None => {
                    errors.push(
                        "storage.database_url: required when storage.backend = \"postgres\"".into(),
                    );
                    None
                }
            },
            other => {
                errors.push(format!(
                    "storage.backend: {other:?} is not sqlite or postgres"
                ));
                None
            }
        };
        let positive = |errors: &mut Vec<String>, key: &str, v: u64| {
            if v == 0 {
                errors.push(format!("{key}: must be greater than 0"));
            }
        };
        let i = &self.ingest;
        for (key, v) in [
            (
                "server.shutdown_timeout_secs",
                self.server.shutdown_timeout_secs,
            ),
            (
                "server.header_read_timeout_secs",
                self.server.header_read_timeout_secs,
            ),
            (
                "server.request_timeout_secs",
                self.server.request_timeout_secs,
            ),
            ("server.max_connections", self.server.max_connections),
        ] {
            positive(&mut errors, key, v);
        }
        positive(
            &mut errors,
            "storage.checkpoint_interval_secs",
            self.storage.checkpoint_interval_secs,
        );
        positive(
            &mut errors,
            "ingest.max_body_bytes",
            i.max_body_bytes as u64,
        );
        positive(
            &mut errors,
            "ingest.max_events_per_batch",
            i.max_events_per_batch as u64,
        );
        positive(
            &mut errors,
            "ingest.max_features_per_event",
            i.max_features_per_event as u64,
        );
        positive(
            &mut errors,
            "ingest.max_string_len",
            i.max_string_len as u64,
        );
        positive(
            &mut errors,
            "ingest.max_categories_per_feature",
            i.max_categories_per_feature as u64,
        );
        positive(&mut errors, "ingest.queue_depth", i.queue_depth as u64);
        if i.max_future_skew_secs < 0 {
            errors.push("ingest.max_future_skew_secs: must not be negative".into());
        }
        if i.max_past_age_days <= 0 {
            errors.push("ingest.max_past_age_days: must be greater than 0".into());
        }
        if i.bucket_secs < 60 || 86_400 % i.bucket_secs != 0 {
            errors.push(format!(
                "ingest.bucket_secs: {} must be at least 60 and divide a day (86400) evenly",
                i.bucket_secs
            ));
        }
        if !(1..=64).contains(&i.segment_values) {
            errors.push(format!(
                "ingest.segment_values: {} must be between 1 and 64",
                i.segment_values
            ));
        }
        if !(1..=32).contains(&i.segment_features) {
            errors.push(format!(
                "ingest.segment_features: {} must be between 1 and 32",
                i.segment_features
            ));
        }
        if i.segment_keys.len() > 8 || i.segment_keys.iter().any(|k| k.is_empty()) {
            errors.push(format!(
                "ingest.segment_keys: {:?}: at most 8 non-empty keys",
                i.segment_keys
            ));
        }
        if i.joint_features == 1 || i.joint_features > MAX_JOINT_FEATURES {
            errors.push(format!(
                "ingest.joint_features: {} must be 0 (off) or between 2 and {MAX_JOINT_FEATURES}",
                i.joint_features
            ));
        }
        if i.sketch_k < 16 {
            errors.push(format!(
                "ingest.sketch_k: {} is below the minimum of 16",
                i.sketch_k
            ));
        }
        for (key, toks) in [
            ("auth.ingest_tokens", &self.auth.ingest_tokens),
            ("auth.read_tokens", &self.auth.read_tokens),
        ] {
            for (n, t) in toks.iter().enumerate() {
                if t.len() < 16 {
                    errors.push(format!("{key}[{n}]: tokens must be at least 16 characters"));
                }
            }
        }
        if self.auth.protect_ops && self.auth.read_tokens.is_empty() {
            errors.push("auth.protect_ops: needs at least one auth.read_tokens entry".into());
        }
        if matches!(backend, Some(Backend::Postgres(_))) {
            if self.privacy.hmac_key.is_none() {
                errors.push(
                    "privacy.hmac_key: required when storage.backend = \"postgres\" (env FLYWHEEL_HMAC_KEY): every replica must pseudonymise users with the same key".into(),
                );
            }
            for (key, v) in [
                ("storage.pool_size", u64::from(self.storage.pool_size)),
                (
                    "storage.connect_timeout_secs",
                    self.storage.connect_timeout_secs,
                ),
            ] {
                positive(&mut errors, key, v);
            }
            let w = self.storage.writers;
            if w == 0 || w + 2 > self.storage.pool_size {
                errors.push(format!(
                    "storage.writers: must be between 1 and storage.pool_size - 2 ({}): reads, jobs and checkpoints need connections too",
                    self.storage.pool_size.saturating_sub(2)
                ));
            }
            if self.storage.writer_ttl_secs < 3 * self.storage.checkpoint_interval_secs.max(1) {
                errors.push(format!(
                    "storage.writer_ttl_secs: must be at least three checkpoint intervals ({} s), or live replicas get taken over",
                    3 * self.storage.checkpoint_interval_secs.max(1)
                ));
            }
        }
        if let Some(k) = &self.privacy.hmac_key {
            if k.len() < 16 {
                errors.push("privacy.hmac_key: must be at least 16 characters".into());
            }
        }
        if self.privacy.activity_ttl_days == 0 {
            errors.push("privacy.activity_ttl_days: must be greater than 0".into());
        }
        positive(
            &mut errors,
            "jobs.poll_interval_ms",
            self.jobs.poll_interval_ms,
        );
        positive(&mut errors, "jobs.lease_ttl_secs", self.jobs.lease_ttl_secs);
        let raw_monitors = if self.monitors.is_empty() && self.drift.default_monitor {
            vec![crate::drift::monitor::RawMonitor::default()]
        } else {
            self.monitors.clone()
        };
        let health_schedule = schedule(&mut errors, "health.schedule", &self.health.schedule);
        self.health.check(&mut errors);
        let performance_schedule = if self.performance.enabled {
            schedule(
                &mut errors,
                "performance.schedule",
                &self.performance.schedule,
            )
        } else {
            None
        };
        self.performance.check(&mut errors);
        self.health.performance = self.performance.enabled.then(|| self.performance.clone());
        let report_schedule = if self.report.enabled {
            schedule(&mut errors, "report.schedule", &self.report.schedule)
        } else {
            None
        };
        let retention_schedule =
            schedule(&mut errors, "retention.schedule", &self.retention.schedule);
        positive(
            &mut errors,
            "retention.job_runs_days",
            u64::from(self.retention.job_runs_days),
        );
        positive(
            &mut errors,
            "retention.alerts_days",
            u64::from(self.retention.alerts_days),
        );
        if ov.webhook_secret.is_some() {
            self.alerts.webhook_secret = ov.webhook_secret.clone();
        }
        self.alerts.check(&mut errors);
        let external_url = match self.server.external_url.trim() {
            "" => None,
            u if u.starts_with("http://") || u.starts_with("https://") => {
                Some(u.trim_end_matches('/').to_owned())
            }
            u => {
                errors.push(format!(
                    "server.external_url: {u:?} must start with http:// or https://"
                ));
                None
            }
        };
        let mut monitors = Vec::new();
        for (n, m) in raw_monitors.iter().enumerate() {
            let key = if self.monitors.is_empty() {
                "the default monitor".to_owned()
            } else {
                format!("monitors[{n}]")
            };
            let b = self.ingest.bucket_secs;
            let bucket = (b >= 60 && 86_400 % b == 0).then_some(b);
            if raw_monitors[..n].iter().any(|o| o.name == m.name) {
                errors.push(format!("{key}.name: {:?} is used twice", m.name));
            }
            if let Some(m) = m.validate(&key, bucket, &mut errors) {
                monitors.push(m);
            }
        }
        check_rollup_age(&mut errors, self.retention.summaries_hourly_days, &monitors);
        let quality = {
            let b = self.ingest.bucket_secs;
            let bucket = (b >= 60 && 86_400 % b == 0).then_some(b);
            self.quality.validate(bucket, &mut errors)
        };
        match (listen, backend, health_schedule, errors.is_empty()) {
            (Some(listen), Some(backend), Some(health_schedule), true) => Ok(Config {
                listen,
                external_url,
                data_dir: self.server.data_dir,
                shutdown_timeout: Duration::from_secs(self.server.shutdown_timeout_secs),
                http_limits: HttpLimits {
                    header_read_timeout: Duration::from_secs(self.server.header_read_timeout_secs),
                    request_timeout: Duration::from_secs(self.server.request_timeout_secs),
                    max_connections: usize::try_from(self.server.max_connections)
                        .unwrap_or(usize::MAX),
                },
                backend,
                checkpoint_interval: Duration::from_secs(self.storage.checkpoint_interval_secs),
                storage: self.storage,
                ingest: self.ingest,
                auth: self.auth,
                hmac_key: self.privacy.hmac_key,
                activity_ttl_days: self.privacy.activity_ttl_days,
                drift: self.drift,
                jobs: self.jobs,
                health: self.health,
                alerts: self.alerts,
                health_schedule,
                performance: self.performance,
                performance_schedule,
                report_schedule,
                retention: self.retention,
                retention_schedule,
                monitors,
                quality,
            }),
            _ => Err(ConfigErrors(errors)),
        }
    }
}

impl Config {
    /// The configuration used with no file: every default, plus the given overrides.
    pub fn default_with(ov: Overrides) -> Result<Config, ConfigErrors> {
        RawConfig::default().validate(ov)
    }

    pub fn event_limits(&self) -> crate::events::EventLimits {
        crate::events::EventLimits {
            max_features: self.ingest.max_features_per_event,
            max_string_len: self.ingest.max_string_len,
            max_future_skew_secs: self.ingest.max_future_skew_secs,
            max_past_age_secs: self.ingest.max_past_age_days * 86_400,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_file_is_valid_and_matches_defaults() {
        let text = include_str!("../../config/default.toml");
        let raw = parse_raw(text).expect("default.toml parses");
        let cfg = raw.validate(Overrides::default()).expect("valid");
        let def = Config::default_with(Overrides::default()).expect("valid");
        assert_eq!(cfg.listen, def.listen);
        assert_eq!(cfg.data_dir, def.data_dir);
        assert_eq!(cfg.ingest.max_body_bytes, def.ingest.max_body_bytes);
        assert_eq!(cfg.ingest.sketch_k, def.ingest.sketch_k);
        assert_eq!(cfg.checkpoint_interval, def.checkpoint_interval);
        assert_eq!(cfg.storage.pool_size, def.storage.pool_size);
        assert_eq!(
            cfg.storage.connect_timeout_secs,
            def.storage.connect_timeout_secs
        );
        assert_eq!(cfg.storage.writer_ttl_secs, def.storage.writer_ttl_secs);
        assert_eq!(cfg.storage.writers, def.storage.writers);
        assert_eq!(cfg.retention.job_runs_days, def.retention.job_runs_days);
        assert_eq!(cfg.retention.alerts_days, def.retention.alerts_days);
        assert_eq!(cfg.retention.schedule, def.retention.schedule);
    }

    #[test]
    fn quality_rules_are_checked_element_by_element() {
        let text = r#"
[quality]
window_secs = 3600
[[quality.rules]]
name = "price_range"
check = "range"
colour = "x"
[[quality.rules]]
name = "p2"
check = "nope"
limit = "high"
"#;
        let errs = check_text(text, Overrides::default())
            .expect_err("config should be invalid")
            .0;
        let joined = errs.join("\n");
        for key in [
            "quality.rules[0].colour",
            "quality.rules[1].limit",
            "quality.rules[1].check",
        ] {
            assert!(joined.contains(key), "{key} not in {joined}");
        }
        assert_eq!(errs.len(), 3, "{joined}");
        let ok = check_text(
            "[[quality.rules]]\nname = \"complete\"\ncheck = \"missing\"\n",
            Overrides::default(),
        )
        .expect("valid");
        let rules = ok.quality.expect("enabled").rules;
        assert!(rules.iter().any(|r| r.name == "complete"));
        assert_eq!(rules.len(), 5, "the four built-in rules and one declared");
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let text = r#"
[server]
listen = "nowhere"
shutdown_timeout_secs = "ten"
colour = "blue"
[ingest]
bucket_secs = 7
max_body_bytes = 0
[auth]
ingest_tokens = ["short"]
[nonsense]
x = 1
"#;
        let errs = check_text(text, Overrides::default())
            .expect_err("config should be invalid")
            .0;
        let joined = errs.join("\n");
        for key in [
            "server.shutdown_timeout_secs",
            "server.colour",
            "nonsense",
            "server.listen",
            "ingest.bucket_secs",
            "ingest.max_body_bytes",
            "auth.ingest_tokens[0]",
        ] {
            assert!(joined.contains(key), "{key} missing from:\n{joined}");
        }
        assert_eq!(errs.len(), 7, "{errs:?}");
    }

    #[test]
    fn postgres_writers_must_leave_connections_for_reads_and_jobs() {
        let text = r#"
[storage]
backend = "postgres"
database_url = "postgres://u@127.0.0.1/db"
pool_size = 4
writers = 3
[privacy]
hmac_key = "0123456789abcdef0123456789abcdef"
"#;
        let errs = check_text(text, Overrides::default())
            .expect_err("3 writers on a pool of 4 is invalid")
            .0
            .join("\n");
        assert!(errs.contains("storage.writers"), "{errs}");
        let ok = text.replace("writers = 3", "writers = 2");
        check_text(&ok, Overrides::default()).expect("2 writers on a pool of 4 is valid");
    }

    #[test]
    fn hourly_summaries_must_outlive_every_monitors_reach() {
        let text = r#"
[retention]
summaries_hourly_days = 20
[[monitors]]
name = "monthly"
window_secs = 86400
baseline = "rolling:30d"
[privacy]
hmac_key = "0123456789abcdef0123456789abcdef"
"#;
        let errs = check_text(text, Overrides::default())
            .expect_err("a 30-day baseline cannot be read from 20 hourly days")
            .0
            .join("\n");
        assert!(
            errs.contains("retention.summaries_hourly_days") && errs.contains("\"monthly\""),
            "{errs}"
        );
        check_text(&text.replace("= 20", "= 33"), Overrides::default())
            .expect("33 days cover a 30-day baseline, its day and the window");
        check_text(&text.replace("= 20", "= 0"), Overrides::default())
            .expect("0 keeps hourly buckets forever");
        let weekly = text
            .replace("= 20", "= 7")
            .replace("rolling:30d", "week_ago");
        let errs = check_text(&weekly, Overrides::default())
            .expect_err("7 days cannot hold last week's hour")
            .0
            .join("\n");
        assert!(errs.contains("retention.summaries_hourly_days"), "{errs}");
    }

    #[test]
    fn monitor_problems_name_the_monitor_and_key() {
        let text = r#"
[[monitors]]
name = "a"
schedule = "whenever"
colour = "red"
[[monitors]]
name = "a"
baseline = "dataset:ref"
persistence = [4, 3]
"#;
        let errs = check_text(text, Overrides::default())
            .expect_err("invalid")
            .0
            .join("\n");
        for k in [
            "monitors[0].colour",
            "monitors[0].schedule",
            "monitors[1].persistence",
            "monitors[1].name: \"a\" is used twice",
        ] {
            assert!(errs.contains(k), "{k} missing from:\n{errs}");
        }
        let ok = check_text(
            "[[monitors]]\nname = \"x\"\nwatch = [\"inputs\"]\n",
            Overrides::default(),
        )
        .expect("valid");
        assert_eq!(ok.monitors.len(), 1);
        assert_eq!(ok.monitors[0].job_name(), "drift:x");
        let none =
            check_text("[drift]\ndefault_monitor = false\n", Overrides::default()).expect("valid");
        assert!(none.monitors.is_empty());
        assert_eq!(
            Config::default_with(Overrides::default())
                .expect("default")
                .monitors
                .len(),
            1
        );
    }

    #[test]
    fn overrides_win() {
        let cfg = Config::default_with(Overrides {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some("/tmp/x".into()),
            ..Default::default()
        })
        .expect("valid");
        assert_eq!(cfg.listen.port(), 0);
        assert_eq!(cfg.data_dir, PathBuf::from("/tmp/x"));
    }
}
