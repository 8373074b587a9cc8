//! The validated event and its parts: what everything downstream of validation can trust.

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
    Outcome,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::Interaction,
        EventType::Feedback,
        EventType::ModelEval,
        EventType::Deploy,
        EventType::DataLifecycle,
        EventType::Outcome,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Interaction => "interaction",
            EventType::Feedback => "feedback",
            EventType::ModelEval => "model_eval",
            EventType::Deploy => "deploy",
            EventType::DataLifecycle => "data_lifecycle",
            EventType::Outcome => "outcome",
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

/// The ground truth an `outcome` event reports for one prediction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Actual {
    /// A binary classifier's true class (`true` = the positive class the score is about).
    Binary(bool),
    /// A regressor's true value.
    Value(f64),
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
        /// Coarse labels, as on interactions: the segment the feedback is counted in.
        #[serde(default)]
        segment: Vec<(String, String)>,
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
    /// Ground truth that arrived after the prediction: the prediction it is about travels with
    /// it (score and time), so no raw interaction has to be kept. Summarised in the window of
    /// `predicted_at_us`, so a late label updates the window its prediction belongs to.
    Outcome {
        interaction_id: String,
        predicted_at_us: i64,
        /// The score of a binary classifier (a probability of the positive class, in [0, 1]) or
        /// the value a regressor predicted.
        prediction: f64,
        actual: Actual,
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
            Body::Outcome { .. } => EventType::Outcome,
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
