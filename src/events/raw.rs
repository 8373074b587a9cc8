//! The wire form of an event, as sent by pipelines (docs/EVENTS.md).
//!
//! Every field is optional here so that one missing field gives one clear error naming it,
//! rather than serde's first-failure message; [`super::Event::try_from_raw`] turns a
//! [`RawEvent`] into a validated [`super::Event`]. Unknown fields are rejected so that a typo
//! (`ocurred_at`) is reported instead of silently dropped.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvent {
    pub event_id: Option<String>,
    pub event_type: Option<String>,
    pub occurred_at: Option<String>,
    pub model: Option<RawModel>,
    pub user_id: Option<String>,
    pub consent: Option<RawConsent>,
    // interaction
    pub features: Option<RawFeatures>,
    pub prediction: Option<RawPrediction>,
    pub segment: Option<std::collections::BTreeMap<String, String>>,
    pub session_id: Option<String>,
    // feedback
    pub interaction_id: Option<String>,
    pub kind: Option<String>,
    pub signal: Option<String>,
    pub value: Option<RawValue>,
    // model_eval
    pub cycle: Option<u64>,
    pub eval_set: Option<RawEvalSet>,
    pub metrics: Option<Vec<RawMetric>>,
    pub train_data: Option<RawTrainData>,
    // deploy
    pub traffic_share: Option<f64>,
    // data_lifecycle
    pub stage: Option<String>,
    pub count: Option<u64>,
    pub reason: Option<String>,
    // outcome (also `interaction_id` and `prediction`)
    pub predicted_at: Option<String>,
    pub actual: Option<RawValue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub id: Option<String>,
    pub version: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsent {
    pub analytics: Option<bool>,
    pub training: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrediction {
    pub score: Option<RawValue>,
    pub label: Option<String>,
    pub confidence: Option<RawValue>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvalSet {
    pub id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetric {
    pub name: Option<String>,
    pub value: Option<RawValue>,
    pub higher_is_better: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrainData {
    pub total_examples: Option<u64>,
    pub new_examples: Option<u64>,
    pub feedback_examples: Option<u64>,
    pub data_cutoff_at: Option<String>,
}

/// A JSON scalar: what a feature, a prediction or a feedback value may be.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    Null,
    Bool(bool),
    Number(f64),
    /// Short strings (most feature names and category values) are held inline, unallocated.
    String(super::Name),
}

impl RawValue {
    pub fn type_name(&self) -> &'static str {
        match self {
            RawValue::Null => "null",
            RawValue::Bool(_) => "a boolean",
            RawValue::Number(_) => "a number",
            RawValue::String(_) => "a string",
        }
    }
}

struct RawValueVisitor;

impl<'de> Visitor<'de> for RawValueVisitor {
    type Value = RawValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number, string, boolean or null")
    }
    fn visit_unit<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_none<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<RawValue, E> {
        Ok(RawValue::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<RawValue, E> {
        Ok(RawValue::Number(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<RawValue, E> {
        Ok(RawValue::Number(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<RawValue, E> {
        Ok(RawValue::Number(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<RawValue, E> {
        Ok(RawValue::String(v.into()))
    }
    fn visit_string<E>(self, v: String) -> Result<RawValue, E> {
        Ok(RawValue::String(v.into()))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, _seq: A) -> Result<RawValue, A::Error> {
        Err(de::Error::custom(
            "expected a number, string, boolean or null, found an array",
        ))
    }
    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<RawValue, A::Error> {
        Err(de::Error::custom(
            "expected a number, string, boolean or null, found an object",
        ))
    }
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawValueVisitor)
    }
}

thread_local! {
    static LAST_LEN: std::cell::Cell<usize> = const { std::cell::Cell::new(16) };
}

/// Features keep the order they were sent in; duplicates are an error reported by validation.
#[derive(Debug, Default)]
pub struct RawFeatures(pub Vec<(super::Name, RawValue)>);

impl<'de> Deserialize<'de> for RawFeatures {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawFeatures;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of feature name to value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawFeatures, A::Error> {
                // JSON gives no length up front: start from the size of the previous event's
                // features on this thread (events of a batch usually share one feature list).
                let hint = map
                    .size_hint()
                    .unwrap_or_else(|| LAST_LEN.get())
                    .clamp(4, 256);
                let mut out = Vec::with_capacity(hint);
                while let Some(k) = map.next_key::<super::Name>()? {
                    let v: RawValue = map.next_value()?;
                    out.push((k, v));
                }
                LAST_LEN.set(out.len());
                Ok(RawFeatures(out))
            }
        }
        d.deserialize_map(V)
    }
}
