//! Validation: a [`RawEvent`] checked into an [`Event`] ("parse, don't validate"). Ids are
//! bounded, timestamps within the configured skew, numbers finite where they must be, and the user
//! id already replaced by its pseudonym. Each error names the field and the problem.

use super::pseudonym::Pseudonymizer;
use super::raw::{RawEvent, RawValue};
use super::types::*;
use chrono::{DateTime, Utc};

pub(super) fn err(reason: RejectReason, message: impl Into<String>) -> EventError {
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
                    "event_type: unknown type {:?} (expected one of interaction, feedback, model_eval, deploy, data_lifecycle, outcome)",
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
                    format!(
                        "{field}: not allowed on {} {} event",
                        if event_type.as_str().starts_with(['a', 'e', 'i', 'o', 'u']) {
                            "an"
                        } else {
                            "a"
                        },
                        event_type.as_str()
                    ),
                ))
            } else {
                Ok(())
            }
        };
        if event_type != EventType::Interaction {
            forbid(raw.features.is_some(), "features")?;
        }
        if !matches!(event_type, EventType::Interaction | EventType::Feedback) {
            forbid(raw.segment.is_some(), "segment")?;
        }
        let mut segment = Vec::new();
        for (k, v) in raw.segment.unwrap_or_default() {
            check_str("segment (a key)", &k, max)?;
            check_str(&format!("segment.{k}"), &v, max)?;
            segment.push((k, v));
        }
        if !matches!(event_type, EventType::Interaction | EventType::Outcome) {
            forbid(raw.prediction.is_some(), "prediction")?;
        }
        if !matches!(event_type, EventType::Feedback | EventType::Outcome) {
            forbid(raw.interaction_id.is_some(), "interaction_id")?;
        }
        if event_type != EventType::Outcome {
            forbid(raw.predicted_at.is_some(), "predicted_at")?;
            forbid(raw.actual.is_some(), "actual")?;
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
                    segment,
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
            EventType::Outcome => {
                let interaction_id = raw
                    .interaction_id
                    .ok_or_else(|| missing("interaction_id"))?;
                check_str("interaction_id", &interaction_id, MAX_EVENT_ID_LEN)?;
                let predicted = raw.predicted_at.ok_or_else(|| missing("predicted_at"))?;
                let predicted_at_us = parse_time("predicted_at", &predicted)?;
                if predicted_at_us > occurred_at_us {
                    return Err(err(
                        RejectReason::Timestamp,
                        format!("predicted_at: {predicted} is after occurred_at {occurred_at} (an outcome is observed after its prediction)"),
                    ));
                }
                if predicted_at_us < now_us - limits.max_past_age_secs * 1_000_000 {
                    return Err(err(
                        RejectReason::Timestamp,
                        format!(
                            "predicted_at: {predicted} is older than the accepted age of {} days",
                            limits.max_past_age_secs / 86_400
                        ),
                    ));
                }
                let p = raw.prediction.ok_or_else(|| missing("prediction"))?;
                if p.label.is_some() || p.confidence.is_some() {
                    return Err(err(
                        RejectReason::InvalidValue,
                        "prediction: an outcome carries only prediction.score (the score or value the model gave)",
                    ));
                }
                let score = p
                    .score
                    .filter(|v| *v != RawValue::Null)
                    .ok_or_else(|| missing("prediction.score"))?;
                let prediction = finite_number("prediction.score", &score)?;
                let actual = match raw.actual.ok_or_else(|| missing("actual"))? {
                    RawValue::Bool(b) => {
                        if !(0.0..=1.0).contains(&prediction) {
                            return Err(err(
                                RejectReason::InvalidValue,
                                format!("prediction.score: {prediction} is outside [0, 1] (a binary outcome's score is the probability of the positive class)"),
                            ));
                        }
                        Actual::Binary(b)
                    }
                    RawValue::Number(x) if x.is_finite() => Actual::Value(x),
                    RawValue::Null => return Err(missing("actual")),
                    other @ (RawValue::Number(_) | RawValue::String(_)) => {
                        let found = match &other {
                            RawValue::String(s) => format!("the string {:?}", truncate(s, 64)),
                            _ => "a non-finite number".to_owned(),
                        };
                        return Err(err(
                            RejectReason::InvalidValue,
                            format!("actual: must be a boolean (a binary classifier's true class) or a finite number (a regressor's true value), found {found}"),
                        ));
                    }
                };
                Body::Outcome {
                    interaction_id,
                    predicted_at_us,
                    prediction,
                    actual,
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
