//! Data-quality rules as configured: the `[quality]` section (the job) and the `[[quality.rules]]`
//! tables (the standards), validated into [`Rule`]s.
//!
//! With `default_rules = true` (the default) four rules apply to every model with no
//! configuration: `reference_range` and `unseen_categories` (warn above 1 % of a feature's values),
//! `schema` (fail on a feature that appeared, vanished or changed kind) and `freshness` (fail when
//! a model that sent interactions in the baseline sent none for 6 hours). A configured rule with
//! the same name replaces a default one.

use crate::drift::monitor::BaselineSpec;
use crate::events::EventType;
use crate::jobs::schedule::CronSchedule;
use crate::summary::delta::SeriesClass;
use serde::{Deserialize, Serialize};

/// What a rule checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// Share of missing values ≤ limit.
    Missing,
    /// Share of non-finite numbers (NaN, ±inf) ≤ limit.
    NonFinite,
    /// Share of numbers outside `[min, max]` (given, or the baseline's range) ≤ limit.
    Range,
    /// Share of values in categories not allowed (given, or never seen in the baseline) ≤ limit.
    Categories,
    /// Features that appeared, vanished or changed kind against the baseline (any is a
    /// violation).
    Schema,
    /// No events of a type for longer than `limit` seconds (of types the baseline had).
    Freshness,
    /// Events in the window against the same window a week before: a violation when the ratio
    /// leaves `[limit, 1/limit]` and a two-sided Poisson test gives p < 0.001.
    Volume,
    /// Category entropy of the window ≥ limit × the baseline's (diversity).
    Entropy,
    /// Share of the baseline's categories (those with ≥ 1 % of its values) seen in the window ≥
    /// limit (coverage of segments or categories).
    Coverage,
    /// 1 − mean Hellinger distance between the training data (`training = "dataset:NAME"`) and
    /// the window's production traffic, over the rule's features ≥ limit.
    Representativeness,
}

impl Check {
    pub const ALL: [Check; 10] = [
        Check::Missing,
        Check::NonFinite,
        Check::Range,
        Check::Categories,
        Check::Schema,
        Check::Freshness,
        Check::Volume,
        Check::Entropy,
        Check::Coverage,
        Check::Representativeness,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Missing => "missing",
            Check::NonFinite => "non_finite",
            Check::Range => "range",
            Check::Categories => "categories",
            Check::Schema => "schema",
            Check::Freshness => "freshness",
            Check::Volume => "volume",
            Check::Entropy => "entropy",
            Check::Coverage => "coverage",
            Check::Representativeness => "representativeness",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
    /// The limit when a rule gives none.
    pub fn default_limit(self) -> f64 {
        match self {
            Check::Missing => 0.05,
            Check::NonFinite => 0.0,
            Check::Range | Check::Categories => 0.01,
            Check::Schema => 0.0,
            Check::Freshness => 21_600.0,
            Check::Volume | Check::Entropy | Check::Coverage => 0.5,
            Check::Representativeness => 0.8,
        }
    }
    /// Whether the check looks at features (else at the model's event counts).
    pub fn per_feature(self) -> bool {
        !matches!(
            self,
            Check::Freshness | Check::Volume | Check::Representativeness
        )
    }
}

/// What a violated rule makes of the window's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warn,
    Fail,
}

/// One `[[quality.rules]]` table as written.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RawRule {
    /// Unique name: the `rule` label of the quality metrics.
    pub name: String,
    /// missing, non_finite, range, categories, schema, freshness, volume, entropy, coverage or
    /// representativeness.
    pub check: String,
    /// Model id or glob pattern.
    pub model: String,
    /// Feature names or glob patterns.
    pub features: Vec<String>,
    /// Which values: `inputs`, `predictions` (score, confidence, label), `feedback` or
    /// `segments`.
    pub class: String,
    /// `fail` or `warn`.
    pub severity: String,
    /// The bound (see [`Check`]); absent: [`Check::default_limit`].
    pub limit: Option<f64>,
    /// `range`: the bounds; both absent: the baseline's min and max.
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// `categories`: the allowed values; empty: the baseline's categories.
    pub allowed: Vec<String>,
    /// `freshness` and `volume`: which event types.
    pub event_types: Vec<String>,
    /// `representativeness`: the training data, `dataset:NAME` (an uploaded baseline).
    pub training: String,
    /// Fewer values than this in the window (or the baseline, where it is compared): the rule
    /// is not evaluated for that feature.
    pub min_values: u64,
}

impl Default for RawRule {
    fn default() -> Self {
        Self {
            name: String::new(),
            check: String::new(),
            model: "*".into(),
            features: vec!["*".into()],
            class: "inputs".into(),
            severity: "fail".into(),
            limit: None,
            min: None,
            max: None,
            allowed: Vec::new(),
            event_types: vec!["interaction".into()],
            training: String::new(),
            min_values: 100,
        }
    }
}

/// The `[quality]` section.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RawQuality {
    /// Run the `quality` job.
    pub enabled: bool,
    /// When it runs (cron, UTC, seconds first).
    pub schedule: String,
    /// The window: the last `window_secs` of complete buckets before the fire.
    pub window_secs: u64,
    /// What the window is compared with (as for drift monitors: `rolling:7d`, `week_ago`,
    /// `dataset:NAME`, `range:FROM/TO`).
    pub baseline: String,
    /// Apply the built-in rules (see the module docs).
    pub default_rules: bool,
    /// Missed windows caught up after downtime.
    pub max_catch_up: usize,
    /// The standards.
    pub rules: Vec<RawRule>,
}

impl Default for RawQuality {
    fn default() -> Self {
        Self {
            enabled: true,
            schedule: "0 7 * * * *".into(),
            window_secs: 3600,
            baseline: "rolling:7d".into(),
            default_rules: true,
            max_catch_up: 24,
            rules: Vec::new(),
        }
    }
}

/// The built-in rules.
pub fn default_rules() -> Vec<RawRule> {
    let rule = |name: &str, check: Check, severity: &str| RawRule {
        name: name.into(),
        check: check.as_str().into(),
        severity: severity.into(),
        ..Default::default()
    };
    vec![
        rule("reference_range", Check::Range, "warn"),
        rule("unseen_categories", Check::Categories, "warn"),
        rule("schema", Check::Schema, "fail"),
        rule("freshness", Check::Freshness, "fail"),
    ]
}

/// A validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub check: Check,
    pub model: glob::Pattern,
    pub features: Vec<glob::Pattern>,
    pub class: SeriesClass,
    pub severity: Severity,
    pub limit: f64,
    /// `range` with given bounds (else the baseline's).
    pub bounds: Option<(f64, f64)>,
    /// `categories` with given values (else the baseline's).
    pub allowed: Option<std::collections::BTreeSet<String>>,
    pub event_types: Vec<EventType>,
    /// `representativeness`: the training dataset's name.
    pub training: Option<String>,
    pub min_values: u64,
}

impl Rule {
    pub fn applies_to(&self, model: &str) -> bool {
        self.model.matches(model)
    }
    pub fn covers(&self, class: SeriesClass, name: &str) -> bool {
        let class_ok = self.class == class
            || (self.class == SeriesClass::FeedbackExplicit
                && class == SeriesClass::FeedbackImplicit);
        class_ok && self.features.iter().any(|p| p.matches(name))
    }
}

/// The validated `[quality]` section.
#[derive(Debug, Clone)]
pub struct Quality {
    pub schedule: CronSchedule,
    pub window_secs: i64,
    pub baseline: BaselineSpec,
    pub max_catch_up: usize,
    pub rules: Vec<Rule>,
    /// Hash of the raw section: recorded with every run.
    pub config_hash: String,
}

impl Quality {
    /// The window a fire at `at` covers (complete, aligned to the window width).
    pub fn window_for(&self, at: i64) -> (i64, i64) {
        let end = at - at.rem_euclid(self.window_secs);
        (end - self.window_secs, end)
    }
}

impl RawRule {
    fn validate(&self, key: &str, errors: &mut Vec<String>) -> Option<Rule> {
        let before = errors.len();
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            errors.push(format!(
                "{key}.name: {:?} must be non-empty letters, digits or '_' (it is a metric label)",
                self.name
            ));
        }
        let check = Check::parse(&self.check);
        if check.is_none() {
            errors.push(format!(
                "{key}.check: {:?} is not one of {}",
                self.check,
                Check::ALL.map(Check::as_str).join(", ")
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
                "{key}.features: name at least one feature or \"*\""
            ));
        }
        let class = match self.class.as_str() {
            "inputs" => Some(SeriesClass::Input),
            "predictions" => Some(SeriesClass::Prediction),
            "feedback" => Some(SeriesClass::FeedbackExplicit),
            "segments" => Some(SeriesClass::Segment),
            other => {
                errors.push(format!(
                    "{key}.class: {other:?} is not inputs, predictions, feedback or segments"
                ));
                None
            }
        };
        let severity = match self.severity.as_str() {
            "fail" => Some(Severity::Fail),
            "warn" => Some(Severity::Warn),
            other => {
                errors.push(format!("{key}.severity: {other:?} is not fail or warn"));
                None
            }
        };
        let limit = self
            .limit
            .unwrap_or_else(|| check.map_or(0.0, Check::default_limit));
        let share_like = matches!(
            check,
            Some(
                Check::Missing
                    | Check::NonFinite
                    | Check::Range
                    | Check::Categories
                    | Check::Entropy
                    | Check::Coverage
                    | Check::Representativeness
            )
        );
        if !limit.is_finite()
            || limit < 0.0
            || (share_like && limit > 1.0)
            || (check == Some(Check::Volume) && !(limit > 0.0 && limit < 1.0))
        {
            errors.push(format!(
                "{key}.limit: {limit} is out of bounds for {:?} (shares and ratios in [0, 1], volume in (0, 1), freshness in seconds)",
                self.check
            ));
        }
        let bounds = match (self.min, self.max) {
            (None, None) => None,
            (lo, hi) => {
                let (lo, hi) = (lo.unwrap_or(f64::NEG_INFINITY), hi.unwrap_or(f64::INFINITY));
                if lo.is_nan() || hi.is_nan() || lo > hi {
                    errors.push(format!("{key}.min/max: [{lo}, {hi}] is not a range"));
                }
                Some((lo, hi))
            }
        };
        if bounds.is_some() && check != Some(Check::Range) {
            errors.push(format!("{key}.min/max: only a range check takes bounds"));
        }
        if !self.allowed.is_empty() && check != Some(Check::Categories) {
            errors.push(format!(
                "{key}.allowed: only a categories check takes allowed values"
            ));
        }
        let mut event_types = Vec::new();
        for t in &self.event_types {
            match EventType::parse(t) {
                Some(t) => event_types.push(t),
                None => errors.push(format!("{key}.event_types: {t:?} is not an event type")),
            }
        }
        let training = match (check, self.training.strip_prefix("dataset:")) {
            (Some(Check::Representativeness), Some(name)) if !name.is_empty() => {
                Some(name.to_owned())
            }
            (Some(Check::Representativeness), _) => {
                errors.push(format!(
                    "{key}.training: a representativeness check needs training = \"dataset:NAME\" (an uploaded baseline)"
                ));
                None
            }
            (_, _) if !self.training.is_empty() => {
                errors.push(format!(
                    "{key}.training: only a representativeness check takes training data"
                ));
                None
            }
            _ => None,
        };
        if errors.len() > before {
            return None;
        }
        Some(Rule {
            name: self.name.clone(),
            check: check?,
            model: model?,
            features,
            class: class?,
            severity: severity?,
            limit,
            bounds,
            allowed: (!self.allowed.is_empty()).then(|| self.allowed.iter().cloned().collect()),
            event_types,
            training,
            min_values: self.min_values.max(1),
        })
    }
}

impl RawQuality {
    /// Check every field; problems are pushed to `errors`. `bucket_secs` is `None` when the
    /// bucket width is itself invalid (reported elsewhere). `None` when disabled or invalid.
    pub fn validate(&self, bucket_secs: Option<i64>, errors: &mut Vec<String>) -> Option<Quality> {
        let before = errors.len();
        let (schedule, window, baseline) = crate::drift::monitor::check_windowed(
            "quality",
            [&self.schedule, &self.baseline],
            self.window_secs,
            bucket_secs,
            errors,
        );
        let mut raw: Vec<(String, RawRule)> = Vec::new();
        if self.default_rules {
            for r in default_rules() {
                if !self.rules.iter().any(|o| o.name == r.name) {
                    raw.push((format!("the default rule {:?}", r.name), r));
                }
            }
        }
        for (i, r) in self.rules.iter().enumerate() {
            if self.rules[..i].iter().any(|o| o.name == r.name) {
                errors.push(format!(
                    "quality.rules[{i}].name: {:?} is used twice",
                    r.name
                ));
            }
            raw.push((format!("quality.rules[{i}]"), r.clone()));
        }
        let rules: Vec<Rule> = raw
            .iter()
            .filter_map(|(key, r)| r.validate(key, errors))
            .collect();
        if errors.len() > before || !self.enabled {
            return None;
        }
        let config_hash = {
            use sha2::Digest;
            let text = serde_json::to_string(self).unwrap_or_default();
            hex::encode(&sha2::Sha256::digest(text.as_bytes())[..8])
        };
        Some(Quality {
            schedule: schedule?,
            window_secs: window,
            baseline: baseline?,
            max_catch_up: self.max_catch_up,
            rules,
            config_hash,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_validate_and_a_configured_rule_replaces_a_default_one() {
        let mut errors = Vec::new();
        let q = RawQuality::default()
            .validate(Some(3600), &mut errors)
            .expect("defaults are valid");
        assert!(errors.is_empty(), "{errors:?}");
        let names: Vec<&str> = q.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "reference_range",
                "unseen_categories",
                "schema",
                "freshness"
            ]
        );
        let raw = RawQuality {
            rules: vec![RawRule {
                name: "reference_range".into(),
                check: "range".into(),
                limit: Some(0.05),
                ..Default::default()
            }],
            ..Default::default()
        };
        let q = raw.validate(Some(3600), &mut errors).expect("valid");
        let r: Vec<&Rule> = q
            .rules
            .iter()
            .filter(|r| r.name == "reference_range")
            .collect();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].limit, 0.05);
        assert_eq!(r[0].severity, Severity::Fail);
    }

    #[test]
    fn every_problem_of_a_rule_is_reported_under_its_index() {
        let raw = RawQuality {
            window_secs: 90,
            rules: vec![
                RawRule {
                    name: "bad name".into(),
                    check: "shape".into(),
                    class: "outputs".into(),
                    severity: "page".into(),
                    ..Default::default()
                },
                RawRule {
                    name: "r".into(),
                    check: "range".into(),
                    min: Some(5.0),
                    max: Some(1.0),
                    limit: Some(2.0),
                    allowed: vec!["a".into()],
                    ..Default::default()
                },
                RawRule {
                    name: "t".into(),
                    check: "representativeness".into(),
                    event_types: vec!["click".into()],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let mut errors = Vec::new();
        assert!(raw.validate(Some(3600), &mut errors).is_none());
        let joined = errors.join("\n");
        for k in [
            "quality.window_secs",
            "quality.rules[0].name",
            "quality.rules[0].check",
            "quality.rules[0].class",
            "quality.rules[0].severity",
            "quality.rules[1].min/max",
            "quality.rules[1].limit",
            "quality.rules[1].allowed",
            "quality.rules[2].event_types",
            "quality.rules[2].training",
        ] {
            assert!(joined.contains(k), "{k}: {joined}");
        }
    }
}
