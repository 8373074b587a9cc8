//! Drift monitors as configured: which model and features, what is watched, against which
//! baseline, over which window, on which schedule, and how a drift is decided.
//!
//! With no `[[monitors]]` in the config, one monitor named `default` watches every model's
//! inputs, predictions and feedback signals with the defaults below, so a model that sends
//! events is monitored with no configuration at all (`[drift] default_monitor = false` turns
//! that off).

use super::{Method, Options};
use crate::jobs::schedule::CronSchedule;
use crate::stats::binning::BinningRule;
use crate::summary::delta::SeriesClass;
use serde::{Deserialize, Serialize};

/// One `[[monitors]]` table as written in the config file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RawMonitor {
    /// Unique name; the scheduled job is called `drift:<name>`.
    pub name: String,
    /// Model id, or a glob pattern (`*`, `ranker-*`).
    pub model: String,
    /// Feature names or glob patterns; `["*"]` is every feature.
    pub features: Vec<String>,
    /// What is watched: `inputs`, `predictions` (score, confidence, label), `feedback`.
    pub watch: Vec<String>,
    /// When it runs: a cron expression in UTC, seconds first (`0 5 * * * *` is hourly at :05).
    pub schedule: String,
    /// The current window: the last `window_secs` of complete buckets before the fire time.
    /// A multiple of `ingest.bucket_secs`.
    pub window_secs: u64,
    /// `rolling:7d` (the 7 whole UTC days before the window's day), `week_ago` (the same
    /// window 7 days earlier), `dataset:NAME` (an uploaded reference dataset) or
    /// `range:2026-11-01T00:00:00Z/2026-11-08T00:00:00Z` (a fixed time range).
    pub baseline: String,
    /// `auto` (effect size and significance, see the module docs of `drift`) or a method name.
    pub method: String,
    /// Per-feature method overrides, e.g. `{ price = "psi" }`.
    pub methods: std::collections::BTreeMap<String, String>,
    /// Overrides the method's threshold (auto: the effect threshold).
    pub threshold: Option<f64>,
    /// Fewer values than this on either side: `insufficient_data`.
    pub min_samples: usize,
    /// False-discovery rate for the Benjamini–Hochberg step across features.
    pub fdr: f64,
    /// Share of drifted features at which the dataset counts as drifted.
    pub drift_share: f64,
    /// A feature alerts when it drifted in at least `persistence[0]` of the last
    /// `persistence[1]` windows.
    pub persistence: [usize; 2],
    /// Missed windows caught up after downtime (the most recent ones).
    pub max_catch_up: usize,
    /// Also compare how the numeric inputs move together (multivariate drift, from the
    /// co-moments of `ingest.joint_features` inputs) when the monitor watches inputs and the
    /// baseline is a time range.
    pub multivariate: bool,
}

impl Default for RawMonitor {
    fn default() -> Self {
        Self {
            name: "default".into(),
            model: "*".into(),
            features: vec!["*".into()],
            watch: vec!["inputs".into(), "predictions".into(), "feedback".into()],
            schedule: "0 5 * * * *".into(),
            window_secs: 3600,
            baseline: "rolling:7d".into(),
            method: "auto".into(),
            methods: Default::default(),
            threshold: None,
            min_samples: 100,
            fdr: super::DEFAULT_FDR,
            drift_share: 0.5,
            persistence: [2, 3],
            max_catch_up: 24,
            multivariate: true,
        }
    }
}

/// Where a monitor's reference distribution comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BaselineSpec {
    /// The `days` whole UTC days before the day the window starts in.
    Rolling { days: u32 },
    /// The same window one week earlier.
    WeekAgo,
    /// An uploaded reference dataset.
    Dataset { name: String },
    /// A fixed time range `[from, to)` in seconds.
    Range { from: i64, to: i64 },
}

impl BaselineSpec {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{s:?} is not a baseline: use rolling:7d, week_ago, dataset:NAME or range:FROM/TO (RFC 3339)"
            )
        };
        if s == "week_ago" {
            return Ok(Self::WeekAgo);
        }
        let (kind, arg) = s.split_once(':').ok_or_else(bad)?;
        match kind {
            "rolling" => {
                let days: u32 = arg
                    .strip_suffix('d')
                    .and_then(|d| d.parse().ok())
                    .filter(|d| (1..=366).contains(d))
                    .ok_or_else(|| format!("{s:?}: rolling takes 1d to 366d"))?;
                Ok(Self::Rolling { days })
            }
            "dataset" if !arg.is_empty() => Ok(Self::Dataset {
                name: arg.to_owned(),
            }),
            "range" => {
                let (a, b) = arg.split_once('/').ok_or_else(bad)?;
                let t = |x: &str| {
                    chrono::DateTime::parse_from_rfc3339(x)
                        .map(|t| t.timestamp())
                        .map_err(|e| format!("{s:?}: {x:?} is not an RFC 3339 time ({e})"))
                };
                let (from, to) = (t(a)?, t(b)?);
                if from >= to {
                    return Err(format!("{s:?}: the range is empty"));
                }
                Ok(Self::Range { from, to })
            }
            _ => Err(bad()),
        }
    }

    /// The baseline time range for the window `[start, end)`; `None` for datasets.
    pub fn range_for(&self, start: i64, end: i64) -> Option<(i64, i64)> {
        const DAY: i64 = 86_400;
        match self {
            Self::Rolling { days } => {
                let day = start - start.rem_euclid(DAY);
                Some((day - i64::from(*days) * DAY, day))
            }
            Self::WeekAgo => Some((start - 7 * DAY, end - 7 * DAY)),
            Self::Range { from, to } => Some((*from, *to)),
            Self::Dataset { .. } => None,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Rolling { days } => format!("rolling:{days}d"),
            Self::WeekAgo => "week_ago".into(),
            Self::Dataset { name } => format!("dataset:{name}"),
            Self::Range { from, to } => format!("range:{from}/{to}"),
        }
    }
}

/// A validated monitor.
#[derive(Debug, Clone)]
pub struct Monitor {
    pub name: String,
    pub model: glob::Pattern,
    pub features: Vec<glob::Pattern>,
    pub classes: Vec<SeriesClass>,
    pub schedule: CronSchedule,
    pub window_secs: i64,
    pub baseline: BaselineSpec,
    pub options: Options,
    pub methods: std::collections::BTreeMap<String, Method>,
    pub persistence: (usize, usize),
    pub max_catch_up: usize,
    /// Multivariate drift of the inputs too (see [`RawMonitor::multivariate`]).
    pub multivariate: bool,
    /// Hash of the raw monitor config: recorded with every run.
    pub config_hash: String,
}

impl Monitor {
    pub fn job_name(&self) -> String {
        format!("drift:{}", self.name)
    }

    pub fn watches_model(&self, model: &str) -> bool {
        self.model.matches(model)
    }

    pub fn watches_feature(&self, name: &str) -> bool {
        self.features.iter().any(|p| p.matches(name))
    }

    /// The window a fire at `at` (seconds) covers: the last `window_secs` of complete
    /// windows, aligned to multiples of the window width.
    pub fn window_for(&self, at: i64) -> (i64, i64) {
        let end = at - at.rem_euclid(self.window_secs);
        (end - self.window_secs, end)
    }

    /// Options for one feature (its method override, if any).
    pub fn options_for(&self, feature: &str) -> Options {
        let mut o = self.options.clone();
        if let Some(m) = self.methods.get(feature) {
            o.method = *m;
        }
        o
    }
}

/// Methods a stored summary supports (no raw values are kept).
const SUMMARY_METHODS: [Method; 8] = [
    Method::Auto,
    Method::Ks,
    Method::Wasserstein,
    Method::WassersteinNormed,
    Method::Psi,
    Method::Kl,
    Method::Jensenshannon,
    Method::Hellinger,
];

fn parse_method(key: &str, s: &str, errors: &mut Vec<String>) -> Option<Method> {
    match Method::parse(s) {
        Some(m) if SUMMARY_METHODS.contains(&m) => Some(m),
        Some(_) => {
            errors.push(format!(
                "{key}: {s:?} needs raw values; monitors work on summaries and support {}",
                SUMMARY_METHODS.map(Method::as_str).join(", ")
            ));
            None
        }
        None => {
            errors.push(format!(
                "{key}: {s:?} is not a method ({})",
                SUMMARY_METHODS.map(Method::as_str).join(", ")
            ));
            None
        }
    }
}

/// The schedule, window width and baseline of a job that compares windows with a baseline (a
/// drift monitor, the quality job), checked under `key`: `[schedule, baseline]` as written.
pub fn check_windowed(
    key: &str,
    [schedule, baseline]: [&str; 2],
    window_secs: u64,
    bucket_secs: Option<i64>,
    errors: &mut Vec<String>,
) -> (Option<CronSchedule>, i64, Option<BaselineSpec>) {
    let schedule = match CronSchedule::parse(schedule) {
        Ok(s) => Some(s),
        Err(e) => {
            errors.push(format!("{key}.schedule: {e}"));
            None
        }
    };
    let window = window_secs as i64;
    if window <= 0 || bucket_secs.is_some_and(|b| window % b != 0) {
        errors.push(format!(
            "{key}.window_secs: {window_secs} must be a positive multiple of ingest.bucket_secs ({})",
            bucket_secs.unwrap_or(0)
        ));
    }
    let baseline = match BaselineSpec::parse(baseline) {
        Ok(b) => Some(b),
        Err(e) => {
            errors.push(format!("{key}.baseline: {e}"));
            None
        }
    };
    (schedule, window, baseline)
}

impl RawMonitor {
    /// Check every field; problems are pushed to `errors` under `key` (e.g. `monitors[0]`).
    /// `bucket_secs` is `None` when the bucket width is itself invalid (reported elsewhere).
    pub fn validate(
        &self,
        key: &str,
        bucket_secs: Option<i64>,
        errors: &mut Vec<String>,
    ) -> Option<Monitor> {
        let before = errors.len();
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            errors.push(format!(
                "{key}.name: {:?} must be non-empty letters, digits, '-', '_' or '.'",
                self.name
            ));
        }
        let pattern = |k: &str, p: &str, errors: &mut Vec<String>| match glob::Pattern::new(p) {
            Ok(p) => Some(p),
            Err(e) => {
                errors.push(format!("{key}.{k}: {p:?} is not a glob pattern ({e})"));
                None
            }
        };
        let model = pattern("model", &self.model, errors);
        let features: Vec<glob::Pattern> = self
            .features
            .iter()
            .filter_map(|f| pattern("features", f, errors))
            .collect();
        if self.features.is_empty() {
            errors.push(format!(
                "{key}.features: must name at least one feature or \"*\""
            ));
        }
        let mut classes = Vec::new();
        for w in &self.watch {
            match w.as_str() {
                "inputs" => classes.push(SeriesClass::Input),
                "predictions" => classes.push(SeriesClass::Prediction),
                "feedback" => {
                    classes.push(SeriesClass::FeedbackExplicit);
                    classes.push(SeriesClass::FeedbackImplicit);
                }
                other => errors.push(format!(
                    "{key}.watch: {other:?} is not inputs, predictions or feedback"
                )),
            }
        }
        if self.watch.is_empty() {
            errors.push(format!("{key}.watch: must watch something"));
        }
        let (schedule, window, baseline) = check_windowed(
            key,
            [&self.schedule, &self.baseline],
            self.window_secs,
            bucket_secs,
            errors,
        );
        let method = parse_method(&format!("{key}.method"), &self.method, errors);
        let methods = self
            .methods
            .iter()
            .filter_map(|(f, m)| {
                parse_method(&format!("{key}.methods.{f}"), m, errors).map(|m| (f.clone(), m))
            })
            .collect();
        if let Some(t) = self.threshold {
            if !(t.is_finite() && t > 0.0) {
                errors.push(format!("{key}.threshold: {t} must be a positive number"));
            }
        }
        if self.min_samples == 0 {
            errors.push(format!("{key}.min_samples: must be at least 1"));
        }
        if !(self.fdr > 0.0 && self.fdr < 1.0) {
            errors.push(format!("{key}.fdr: {} must be in (0, 1)", self.fdr));
        }
        if !(self.drift_share > 0.0 && self.drift_share <= 1.0) {
            errors.push(format!(
                "{key}.drift_share: {} must be in (0, 1]",
                self.drift_share
            ));
        }
        let [n, m] = self.persistence;
        if n == 0 || n > m || m > 100 {
            errors.push(format!(
                "{key}.persistence: [{n}, {m}] must be [N, M] with 1 <= N <= M <= 100"
            ));
        }
        if errors.len() > before {
            return None;
        }
        let config_hash = {
            use sha2::Digest;
            let text = serde_json::to_string(self).unwrap_or_default();
            hex::encode(&sha2::Sha256::digest(text.as_bytes())[..8])
        };
        let multivariate = self.multivariate && classes.contains(&SeriesClass::Input);
        Some(Monitor {
            name: self.name.clone(),
            model: model?,
            features,
            classes,
            schedule: schedule?,
            window_secs: window,
            baseline: baseline?,
            options: Options {
                method: method?,
                threshold: self.threshold,
                binning: BinningRule::default(),
                compat: super::Compat::Flywheel,
                min_samples: self.min_samples,
                fdr: self.fdr,
                drift_share: self.drift_share,
            },
            methods,
            persistence: (n, m),
            max_catch_up: self.max_catch_up,
            multivariate,
            config_hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baselines_parse_and_resolve() {
        let day = 86_400;
        let r = BaselineSpec::parse("rolling:7d").expect("rolling");
        // A window at 10:00–11:00 on day 20 compares with days 13..20.
        assert_eq!(
            r.range_for(20 * day + 36_000, 20 * day + 39_600),
            Some((13 * day, 20 * day))
        );
        let w = BaselineSpec::parse("week_ago").expect("week");
        assert_eq!(w.range_for(10 * day, 11 * day), Some((3 * day, 4 * day)));
        let f =
            BaselineSpec::parse("range:2026-11-01T00:00:00Z/2026-11-02T00:00:00Z").expect("range");
        assert_eq!(
            f.range_for(0, 1),
            Some((1_793_491_200, 1_793_491_200 + day))
        );
        assert_eq!(
            BaselineSpec::parse("dataset:ref-1"),
            Ok(BaselineSpec::Dataset {
                name: "ref-1".into()
            })
        );
        for bad in ["rolling:0d", "rolling:7", "nope", "dataset:", "range:x/y"] {
            assert!(BaselineSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_problem_of_a_monitor_is_reported() {
        let raw = RawMonitor {
            name: "bad name".into(),
            watch: vec!["outputs".into()],
            schedule: "every hour".into(),
            window_secs: 90,
            baseline: "yesterday".into(),
            method: "anderson".into(),
            persistence: [3, 2],
            fdr: 0.0,
            ..Default::default()
        };
        let mut errors = Vec::new();
        assert!(raw
            .validate("monitors[0]", Some(3600), &mut errors)
            .is_none());
        let joined = errors.join("\n");
        for k in [
            ".name",
            ".watch",
            ".schedule",
            ".window_secs",
            ".baseline",
            ".method",
            ".persistence",
            ".fdr",
        ] {
            assert!(joined.contains(&format!("monitors[0]{k}")), "{k}: {joined}");
        }
    }

    #[test]
    fn windows_are_complete_and_aligned() {
        let mut errors = Vec::new();
        let m = RawMonitor::default()
            .validate("m", Some(3600), &mut errors)
            .expect("valid");
        // Fired at 10:05: the window is 09:00–10:00.
        assert_eq!(m.window_for(36_300), (32_400, 36_000));
        assert!(m.watches_model("anything") && m.watches_feature("x"));
    }
}
