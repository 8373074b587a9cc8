//! Event types and their validation ("parse, don't validate").
//!
//! A request body is split into elements ([`split_batch`]); each element is parsed on its own
//! into a [`raw::RawEvent`] and then checked into an [`Event`], whose fields can be trusted by
//! everything downstream: ids are bounded, timestamps are within the configured skew, numbers are
//! finite where they must be, and the user id has already been replaced by its pseudonym.
//! One bad element never affects its neighbours: its error names the index, the field and the
//! problem.

pub mod pseudonym;
pub mod raw;

use chrono::{DateTime, Utc};
use pseudonym::Pseudonymizer;
use raw::{RawEvent, RawValue};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Limits applied to every event (from `[limits]` in the config).
#[derive(Debug, Clone)]
pub struct EventLimits {
    pub max_features: usize,
    pub max_string_len: usize,
    pub max_future_skew_secs: i64,
    pub max_past_age_secs: i64,
}

impl Default for EventLimits {
    fn default() -> Self {
        Self {
            max_features: 256,
            max_string_len: 256,
            max_future_skew_secs: 300,
            max_past_age_secs: 400 * 86_400,
        }
    }
}

pub const MAX_EVENT_ID_LEN: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum EventType {
    Interaction,
    Feedback,
    ModelEval,
    Deploy,
    DataLifecycle,
}

impl EventType {
    pub const ALL: [EventType; 5] = [
        EventType::Interaction,
        EventType::Feedback,
        EventType::ModelEval,
        EventType::Deploy,
        EventType::DataLifecycle,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Interaction => "interaction",
            EventType::Feedback => "feedback",
            EventType::ModelEval => "model_eval",
            EventType::Deploy => "deploy",
            EventType::DataLifecycle => "data_lifecycle",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// A feature name or category value: strings up to 24 bytes (nearly all of them) are held inline,
/// so a typical event's features cost no allocation per name or value.
pub type Name = compact_str::CompactString;

/// A feature, prediction or feedback value after validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Missing,
    /// A number; may be non-finite when sent as the strings "NaN"/"Infinity" (counted apart).
    Number(f64),
    Bool(bool),
    Category(Name),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRef {
    pub id: String,
    pub version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeedbackKind {
    Explicit,
    Implicit,
}

impl FeedbackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackKind::Explicit => "explicit",
            FeedbackKind::Implicit => "implicit",
        }
    }
}

/// The funnel reason under which `used_in_training` items sent with `consent.training = false`
/// are counted: a hard privacy violation (the health job reports and pages on it).
pub const NO_TRAINING_CONSENT: &str = "consent:training=false";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum Stage {
    Collected,
    QualityPassed,
    QualityFailed,
    Consented,
    Curated,
    UsedInTraining,
    Purged,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Collected,
        Stage::QualityPassed,
        Stage::QualityFailed,
        Stage::Consented,
        Stage::Curated,
        Stage::UsedInTraining,
        Stage::Purged,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Collected => "collected",
            Stage::QualityPassed => "quality_passed",
            Stage::QualityFailed => "quality_failed",
            Stage::Consented => "consented",
            Stage::Curated => "curated",
            Stage::UsedInTraining => "used_in_training",
            Stage::Purged => "purged",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalMetric {
    pub name: String,
    pub value: f64,
    pub higher_is_better: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainData {
    pub total_examples: Option<u64>,
    pub new_examples: Option<u64>,
    pub feedback_examples: Option<u64>,
    pub data_cutoff_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Body {
    Interaction {
        features: Vec<(Name, Value)>,
        score: Option<f64>,
        confidence: Option<f64>,
        label: Option<String>,
        segment: Vec<(String, String)>,
    },
    Feedback {
        interaction_id: Option<String>,
        kind: FeedbackKind,
        signal: String,
        value: f64,
    },
    ModelEval {
        cycle: u64,
        eval_set: String,
        metrics: Vec<EvalMetric>,
        train_data: Option<TrainData>,
    },
    Deploy {
        traffic_share: f64,
    },
    DataLifecycle {
        stage: Stage,
        count: u64,
        reason: Option<String>,
    },
}

/// A validated event. `user_key` is the pseudonym (never the raw id) and is `None` when no user
/// id was sent or analytics consent was withheld.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event_id: String,
    /// Microseconds since the Unix epoch, UTC.
    pub occurred_at_us: i64,
    pub model: ModelRef,
    pub user_key: Option<u64>,
    pub consent_training: Option<bool>,
    pub body: Body,
}

impl Event {
    pub fn event_type(&self) -> EventType {
        match self.body {
            Body::Interaction { .. } => EventType::Interaction,
            Body::Feedback { .. } => EventType::Feedback,
            Body::ModelEval { .. } => EventType::ModelEval,
            Body::Deploy { .. } => EventType::Deploy,
            Body::DataLifecycle { .. } => EventType::DataLifecycle,
        }
    }
    pub fn occurred_at_secs(&self) -> i64 {
        self.occurred_at_us.div_euclid(1_000_000)
    }
}

/// Why an event was rejected. `reason` is a short stable code (a metric label); `message` names
/// the field and the problem.
#[derive(Debug, Clone, PartialEq)]
pub struct EventError {
    pub reason: RejectReason,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    Malformed,
    MissingField,
    InvalidValue,
    TooLarge,
    Timestamp,
}

impl RejectReason {
    pub const ALL: [RejectReason; 5] = [
        RejectReason::Malformed,
        RejectReason::MissingField,
        RejectReason::InvalidValue,
        RejectReason::TooLarge,
        RejectReason::Timestamp,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Malformed => "malformed",
            RejectReason::MissingField => "missing_field",
            RejectReason::InvalidValue => "invalid_value",
            RejectReason::TooLarge => "too_large",
            RejectReason::Timestamp => "timestamp",
        }
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

fn err(reason: RejectReason, message: impl Into<String>) -> EventError {
    EventError {
        reason,
        message: message.into(),
    }
}

fn missing(field: &str) -> EventError {
    err(
        RejectReason::MissingField,
        format!("{field}: missing required field"),
    )
}

fn check_str(field: &str, s: &str, max: usize) -> Result<(), EventError> {
    match str_problem(s, max) {
        None => Ok(()),
        Some((reason, problem)) => Err(err(reason, format!("{field}: {problem}"))),
    }
}

/// What is wrong with a string field, if anything (the caller names the field, so that the
/// name is only formatted on failure).
fn str_problem(s: &str, max: usize) -> Option<(RejectReason, String)> {
    if s.is_empty() {
        return Some((RejectReason::InvalidValue, "must not be empty".into()));
    }
    if s.len() > max {
        return Some((
            RejectReason::TooLarge,
            format!("{} bytes, over the limit of {max}", s.len()),
        ));
    }
    // Fast path: printable ASCII needs no per-char decoding.
    let printable_ascii = s.bytes().all(|b| (0x20..0x7f).contains(&b));
    if !printable_ascii && s.chars().any(|c| c.is_control()) {
        return Some((
            RejectReason::InvalidValue,
            "contains control characters".into(),
        ));
    }
    None
}

fn parse_time(field: &str, s: &str) -> Result<i64, EventError> {
    let t = DateTime::parse_from_rfc3339(s).map_err(|e| {
        err(
            RejectReason::Timestamp,
            format!("{field}: {s:?} is not an RFC 3339 timestamp ({e})"),
        )
    })?;
    Ok(t.with_timezone(&Utc).timestamp_micros())
}

fn finite_number(field: &str, v: &RawValue) -> Result<f64, EventError> {
    match v {
        RawValue::Number(x) if x.is_finite() => Ok(*x),
        RawValue::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
        RawValue::String(s) if non_finite_word(s).is_some() => Err(err(
            RejectReason::InvalidValue,
            format!("{field}: must be a finite number, found the string {s:?}"),
        )),
        other => Err(err(
            RejectReason::InvalidValue,
            format!("{field}: must be a number, found {}", other.type_name()),
        )),
    }
}

/// "NaN", "Infinity", "-inf"... as sent by JSON encoders that cannot write non-finite numbers.
fn non_finite_word(s: &str) -> Option<f64> {
    const WORDS: [(&str, f64); 7] = [
        ("nan", f64::NAN),
        ("inf", f64::INFINITY),
        ("+inf", f64::INFINITY),
        ("infinity", f64::INFINITY),
        ("+infinity", f64::INFINITY),
        ("-inf", f64::NEG_INFINITY),
        ("-infinity", f64::NEG_INFINITY),
    ];
    if s.len() > 9 {
        return None;
    }
    WORDS
        .iter()
        .find(|(w, _)| w.eq_ignore_ascii_case(s))
        .map(|&(_, x)| x)
}

impl Event {
    /// Validate a raw event. `now_us` is the server's clock (injected for tests).
    pub fn try_from_raw(
        raw: RawEvent,
        limits: &EventLimits,
        pseudonymizer: &Pseudonymizer,
        now_us: i64,
    ) -> Result<Event, EventError> {
        let max = limits.max_string_len;
        let event_id = raw.event_id.ok_or_else(|| missing("event_id"))?;
        check_str("event_id", &event_id, MAX_EVENT_ID_LEN)?;
        let et = raw.event_type.ok_or_else(|| missing("event_type"))?;
        let event_type = EventType::parse(&et).ok_or_else(|| {
            err(
                RejectReason::InvalidValue,
                format!(
                    "event_type: unknown type {:?} (expected one of interaction, feedback, model_eval, deploy, data_lifecycle)",
                    truncate(&et, 64)
                ),
            )
        })?;
        let occurred_at = raw.occurred_at.ok_or_else(|| missing("occurred_at"))?;
        let occurred_at_us = parse_time("occurred_at", &occurred_at)?;
        if occurred_at_us > now_us + limits.max_future_skew_secs * 1_000_000 {
            return Err(err(
                RejectReason::Timestamp,
                format!(
                    "occurred_at: {occurred_at} is more than {}s in the future",
                    limits.max_future_skew_secs
                ),
            ));
        }
        if occurred_at_us < now_us - limits.max_past_age_secs * 1_000_000 {
            return Err(err(
                RejectReason::Timestamp,
                format!(
                    "occurred_at: {occurred_at} is older than the accepted age of {} days",
                    limits.max_past_age_secs / 86_400
                ),
            ));
        }
        let model = raw.model.ok_or_else(|| missing("model"))?;
        let model_id = model.id.ok_or_else(|| missing("model.id"))?;
        check_str("model.id", &model_id, max)?;
        let version = match model.version {
            Some(v) => {
                check_str("model.version", &v, max)?;
                v
            }
            None => String::new(),
        };
        let analytics = raw
            .consent
            .as_ref()
            .and_then(|c| c.analytics)
            .unwrap_or(true);
        let consent_training = raw.consent.as_ref().and_then(|c| c.training);
        let user_key = match raw.user_id {
            Some(u) => {
                check_str("user_id", &u, max)?;
                analytics.then(|| pseudonymizer.key(&u))
            }
            None => None,
        };

        let forbid = |present: bool, field: &str| -> Result<(), EventError> {
            if present {
                Err(err(
                    RejectReason::InvalidValue,
                    format!("{field}: not allowed on a {} event", event_type.as_str()),
                ))
            } else {
                Ok(())
            }
        };
        if event_type != EventType::Interaction {
            forbid(raw.features.is_some(), "features")?;
            forbid(raw.prediction.is_some(), "prediction")?;
            forbid(raw.segment.is_some(), "segment")?;
        }
        if event_type != EventType::Feedback {
            forbid(raw.kind.is_some(), "kind")?;
            forbid(raw.signal.is_some(), "signal")?;
            forbid(raw.value.is_some(), "value")?;
        }
        if event_type != EventType::ModelEval {
            forbid(raw.cycle.is_some(), "cycle")?;
            forbid(raw.eval_set.is_some(), "eval_set")?;
            forbid(raw.metrics.is_some(), "metrics")?;
            forbid(raw.train_data.is_some(), "train_data")?;
        }
        if event_type != EventType::DataLifecycle {
            forbid(raw.stage.is_some(), "stage")?;
            forbid(raw.count.is_some(), "count")?;
            forbid(raw.reason.is_some(), "reason")?;
        }
        if event_type != EventType::Deploy {
            forbid(raw.traffic_share.is_some(), "traffic_share")?;
        }

        let body = match event_type {
            EventType::Interaction => {
                let raw_features = raw.features.map(|f| f.0).unwrap_or_default();
                if raw_features.len() > limits.max_features {
                    return Err(err(
                        RejectReason::TooLarge,
                        format!(
                            "features: {} features, over the limit of {}",
                            raw_features.len(),
                            limits.max_features
                        ),
                    ));
                }
                // Converted in place (same layout), so no second vector is allocated.
                let mut features: Vec<(Name, Value)> = raw_features
                    .into_iter()
                    .map(|(name, v)| {
                        check_str("features (a feature name)", &name, max)?;
                        let value = match v {
                            RawValue::Null => Value::Missing,
                            RawValue::Bool(b) => Value::Bool(b),
                            RawValue::Number(x) => Value::Number(x),
                            RawValue::String(s) => match non_finite_word(&s) {
                                Some(x) => Value::Number(x),
                                None => {
                                    if let Some((reason, problem)) = str_problem(&s, max) {
                                        return Err(err(
                                            reason,
                                            format!("features.{name}: {problem}"),
                                        ));
                                    }
                                    Value::Category(s)
                                }
                            },
                        };
                        Ok((name, value))
                    })
                    .collect::<Result<_, EventError>>()?;
                if !features.is_sorted_by(|a, b| a.0 <= b.0) {
                    features.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                }
                if let Some(w) = features.windows(2).find(|w| w[0].0 == w[1].0) {
                    return Err(err(
                        RejectReason::InvalidValue,
                        format!("features.{}: sent more than once", w[0].0),
                    ));
                }
                let (mut score, mut confidence, mut label) = (None, None, None);
                if let Some(p) = raw.prediction {
                    if let Some(s) = p.score.filter(|v| *v != RawValue::Null) {
                        score = Some(finite_number("prediction.score", &s)?);
                    }
                    if let Some(c) = p.confidence.filter(|v| *v != RawValue::Null) {
                        let c = finite_number("prediction.confidence", &c)?;
                        if !(0.0..=1.0).contains(&c) {
                            return Err(err(
                                RejectReason::InvalidValue,
                                format!("prediction.confidence: {c} is outside [0, 1]"),
                            ));
                        }
                        confidence = Some(c);
                    }
                    if let Some(l) = p.label {
                        check_str("prediction.label", &l, max)?;
                        label = Some(l);
                    }
                }
                let mut segment = Vec::new();
                for (k, v) in raw.segment.unwrap_or_default() {
                    check_str("segment (a key)", &k, max)?;
                    check_str(&format!("segment.{k}"), &v, max)?;
                    segment.push((k, v));
                }
                if let Some(s) = &raw.session_id {
                    check_str("session_id", s, max)?;
                }
                Body::Interaction {
                    features,
                    score,
                    confidence,
                    label,
                    segment,
                }
            }
            EventType::Feedback => {
                let kind = match raw.kind.as_deref() {
                    Some("explicit") => FeedbackKind::Explicit,
                    Some("implicit") => FeedbackKind::Implicit,
                    Some(other) => {
                        return Err(err(
                            RejectReason::InvalidValue,
                            format!(
                                "kind: {:?} is not explicit or implicit",
                                truncate(other, 64)
                            ),
                        ))
                    }
                    None => return Err(missing("kind")),
                };
                let signal = raw.signal.ok_or_else(|| missing("signal"))?;
                check_str("signal", &signal, max)?;
                let value = raw.value.ok_or_else(|| missing("value"))?;
                let value = finite_number("value", &value)?;
                if let Some(i) = &raw.interaction_id {
                    check_str("interaction_id", i, MAX_EVENT_ID_LEN)?;
                }
                Body::Feedback {
                    interaction_id: raw.interaction_id,
                    kind,
                    signal,
                    value,
                }
            }
            EventType::ModelEval => {
                let cycle = raw.cycle.ok_or_else(|| missing("cycle"))?;
                let eval_set = raw
                    .eval_set
                    .ok_or_else(|| missing("eval_set"))?
                    .id
                    .ok_or_else(|| missing("eval_set.id"))?;
                check_str("eval_set.id", &eval_set, max)?;
                let raw_metrics = raw.metrics.ok_or_else(|| missing("metrics"))?;
                if raw_metrics.is_empty() {
                    return Err(err(
                        RejectReason::InvalidValue,
                        "metrics: at least one metric is required",
                    ));
                }
                if raw_metrics.len() > limits.max_features {
                    return Err(err(
                        RejectReason::TooLarge,
                        format!(
                            "metrics: {} metrics, over the limit of {}",
                            raw_metrics.len(),
                            limits.max_features
                        ),
                    ));
                }
                let mut metrics = Vec::with_capacity(raw_metrics.len());
                for (i, m) in raw_metrics.into_iter().enumerate() {
                    let name = m
                        .name
                        .ok_or_else(|| missing(&format!("metrics[{i}].name")))?;
                    check_str(&format!("metrics[{i}].name"), &name, max)?;
                    let v = m
                        .value
                        .ok_or_else(|| missing(&format!("metrics[{i}].value")))?;
                    let value = finite_number(&format!("metrics[{i}].value"), &v)?;
                    metrics.push(EvalMetric {
                        name,
                        value,
                        higher_is_better: m.higher_is_better.unwrap_or(true),
                    });
                }
                let train_data = match raw.train_data {
                    Some(t) => Some(TrainData {
                        total_examples: t.total_examples,
                        new_examples: t.new_examples,
                        feedback_examples: t.feedback_examples,
                        data_cutoff_at: t
                            .data_cutoff_at
                            .as_deref()
                            .map(|s| parse_time("train_data.data_cutoff_at", s))
                            .transpose()?,
                    }),
                    None => None,
                };
                Body::ModelEval {
                    cycle,
                    eval_set,
                    metrics,
                    train_data,
                }
            }
            EventType::Deploy => {
                let traffic_share = raw.traffic_share.unwrap_or(1.0);
                if !(traffic_share.is_finite() && (0.0..=1.0).contains(&traffic_share)) {
                    return Err(err(
                        RejectReason::InvalidValue,
                        format!("traffic_share: {traffic_share} is outside [0, 1]"),
                    ));
                }
                if version.is_empty() {
                    return Err(missing("model.version"));
                }
                Body::Deploy { traffic_share }
            }
            EventType::DataLifecycle => {
                let stage_s = raw.stage.ok_or_else(|| missing("stage"))?;
                let stage = Stage::parse(&stage_s).ok_or_else(|| {
                    err(
                        RejectReason::InvalidValue,
                        format!(
                            "stage: unknown stage {:?} (expected one of collected, quality_passed, quality_failed, consented, curated, used_in_training, purged)",
                            truncate(&stage_s, 64)
                        ),
                    )
                })?;
                let count = raw.count.unwrap_or(1);
                if let Some(r) = &raw.reason {
                    check_str("reason", r, max)?;
                    if r.starts_with("consent:") {
                        return Err(err(
                            RejectReason::InvalidValue,
                            format!("reason: {:?} is reserved (reasons starting with \"consent:\" are set by the service)", truncate(r, 64)),
                        ));
                    }
                }
                Body::DataLifecycle {
                    stage,
                    count,
                    reason: raw.reason,
                }
            }
        };
        Ok(Event {
            event_id,
            occurred_at_us,
            model: ModelRef {
                id: model_id,
                version,
            },
            user_key,
            consent_training,
            body,
        })
    }
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// How the body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    JsonArray,
    Ndjson,
}

/// Why the body as a whole cannot be read (a 400).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BatchError {
    #[error("body is not valid UTF-8 at byte {0}")]
    NotUtf8(usize),
    #[error("body is not a JSON array of events: {0}")]
    NotAnArray(String),
    #[error("body holds no events")]
    Empty,
    #[error("batch holds {0} events, over the limit of {1}")]
    TooManyEvents(usize, usize),
}

/// Split a body into its elements' texts, in order. An NDJSON line that is not UTF-8 becomes an
/// `Err` entry (that line only); only a body that cannot be split at all is a [`BatchError`].
/// Nothing is parsed yet: [`parse_event`] takes each element on its own.
pub fn split_batch(
    body: &[u8],
    framing: Framing,
    max_events: usize,
) -> Result<Vec<Result<&str, EventError>>, BatchError> {
    let out: Vec<Result<&str, EventError>> = match framing {
        Framing::JsonArray => {
            let text =
                std::str::from_utf8(body).map_err(|e| BatchError::NotUtf8(e.valid_up_to()))?;
            let elems: Vec<&serde_json::value::RawValue> =
                serde_json::from_str(text).map_err(|e| BatchError::NotAnArray(e.to_string()))?;
            if elems.len() > max_events {
                return Err(BatchError::TooManyEvents(elems.len(), max_events));
            }
            elems.into_iter().map(|e| Ok(e.get())).collect()
        }
        Framing::Ndjson => {
            // Lines are split on bytes so that one line of bad UTF-8 rejects that line only.
            let lines: Vec<&[u8]> = body
                .split(|&b| b == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
                .collect();
            if lines.len() > max_events {
                return Err(BatchError::TooManyEvents(lines.len(), max_events));
            }
            lines
                .into_iter()
                .map(|l| {
                    std::str::from_utf8(l).map_err(|e| {
                        err(
                            RejectReason::Malformed,
                            format!(
                                "event: line is not valid UTF-8 (at byte {})",
                                e.valid_up_to()
                            ),
                        )
                    })
                })
                .collect()
        }
    };
    if out.is_empty() {
        return Err(BatchError::Empty);
    }
    Ok(out)
}

/// Parse and validate one element of a batch.
pub fn parse_event(
    text: &str,
    limits: &EventLimits,
    pseudonymizer: &Pseudonymizer,
    now_us: i64,
) -> Result<Event, EventError> {
    Event::try_from_raw(parse_one(text)?, limits, pseudonymizer, now_us)
}

fn parse_one(text: &str) -> Result<RawEvent, EventError> {
    let first = text.trim_start().chars().next();
    if first != Some('{') {
        let found = match first {
            Some('[') => "an array",
            Some('"') => "a string",
            Some(c) if c == '-' || c.is_ascii_digit() => "a number",
            _ => "something else",
        };
        return Err(err(
            RejectReason::Malformed,
            format!("event: must be a JSON object, found {found}"),
        ));
    }
    // The happy path parses directly; only a failure is parsed again with path tracking, to
    // name the field in the error.
    if let Ok(raw) = serde_json::from_str::<RawEvent>(text) {
        return Ok(raw);
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed: Result<RawEvent, _> = serde_path_to_error::deserialize(&mut de);
    let raw = match parsed {
        Ok(r) => r,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let reason = if inner.is_syntax() || inner.is_eof() {
                RejectReason::Malformed
            } else {
                RejectReason::InvalidValue
            };
            let message = if path == "." || path == "?" || path.is_empty() {
                format!("event: {inner}")
            } else {
                format!("{path}: {inner}")
            };
            return Err(err(reason, message));
        }
    };
    de.end()
        .map_err(|e| err(RejectReason::Malformed, format!("event: {e}")))?;
    Ok(raw)
}

#[cfg(test)]
mod tests;
