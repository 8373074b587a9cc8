//! The journal's first layout (`FWJ1`, and the LZ4 rows before it): events as they were before
//! feedback could carry `segment` labels. Kept so that rows written by an older version are still
//! replayed after an upgrade; nothing writes it any more.

use crate::events::{
    Actual, Body, EvalMetric, Event, FeedbackKind, ModelRef, Name, Stage, TrainData, Value,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
pub(super) struct EventV1 {
    event_id: String,
    occurred_at_us: i64,
    model: ModelRef,
    user_key: Option<u64>,
    consent_training: Option<bool>,
    body: BodyV1,
}

/// `Body` as it was: the same variants in the same order; only `Feedback` differs (no segment).
#[derive(Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
enum BodyV1 {
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
    Outcome {
        interaction_id: String,
        predicted_at_us: i64,
        prediction: f64,
        actual: Actual,
    },
}

impl From<EventV1> for Event {
    fn from(e: EventV1) -> Self {
        let body = match e.body {
            BodyV1::Interaction {
                features,
                score,
                confidence,
                label,
                segment,
            } => Body::Interaction {
                features,
                score,
                confidence,
                label,
                segment,
            },
            BodyV1::Feedback {
                interaction_id,
                kind,
                signal,
                value,
            } => Body::Feedback {
                interaction_id,
                kind,
                signal,
                value,
                segment: Vec::new(),
            },
            BodyV1::ModelEval {
                cycle,
                eval_set,
                metrics,
                train_data,
            } => Body::ModelEval {
                cycle,
                eval_set,
                metrics,
                train_data,
            },
            BodyV1::Deploy { traffic_share } => Body::Deploy { traffic_share },
            BodyV1::DataLifecycle {
                stage,
                count,
                reason,
            } => Body::DataLifecycle {
                stage,
                count,
                reason,
            },
            BodyV1::Outcome {
                interaction_id,
                predicted_at_us,
                prediction,
                actual,
            } => Body::Outcome {
                interaction_id,
                predicted_at_us,
                prediction,
                actual,
            },
        };
        Event {
            event_id: e.event_id,
            occurred_at_us: e.occurred_at_us,
            model: e.model,
            user_key: e.user_key,
            consent_training: e.consent_training,
            body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row written by the previous version (feedback without segment labels) is replayed as
    /// the same events, with no segment; a current row keeps the feedback's labels.
    #[test]
    fn rows_of_the_first_layout_still_decode() {
        let model = ModelRef {
            id: "m".into(),
            version: "v1".into(),
        };
        let old = vec![
            EventV1 {
                event_id: "f1".into(),
                occurred_at_us: 5_000_000,
                model: model.clone(),
                user_key: Some(7),
                consent_training: Some(true),
                body: BodyV1::Feedback {
                    interaction_id: Some("i1".into()),
                    kind: FeedbackKind::Explicit,
                    signal: "thumbs".into(),
                    value: 1.0,
                },
            },
            EventV1 {
                event_id: "d1".into(),
                occurred_at_us: 6_000_000,
                model: model.clone(),
                user_key: None,
                consent_training: None,
                body: BodyV1::Deploy { traffic_share: 0.5 },
            },
        ];
        let mut row = super::super::JOURNAL_MAGIC_V1.to_vec();
        row.extend(postcard::to_allocvec(&old).expect("encode"));
        row.extend(postcard::to_allocvec(&old[..1]).expect("encode"));
        let events = super::super::decode_batch(&row).expect("decodes");
        assert_eq!(events.len(), 3);
        match &events[0].body {
            Body::Feedback {
                interaction_id,
                signal,
                value,
                segment,
                ..
            } => {
                assert_eq!(interaction_id.as_deref(), Some("i1"));
                assert_eq!((signal.as_str(), *value), ("thumbs", 1.0));
                assert!(segment.is_empty());
            }
            other => panic!("not feedback: {other:?}"),
        }
        assert_eq!(events[0].user_key, Some(7));
        assert_eq!(events[1].body, Body::Deploy { traffic_share: 0.5 });
        assert_eq!(events[2].event_id, "f1");
        // A current row keeps the labels feedback now carries.
        let mut current = events[0].clone();
        if let Body::Feedback { segment, .. } = &mut current.body {
            segment.push(("country".into(), "BR".into()));
        }
        let payload = super::super::encode_batch(std::slice::from_ref(&current));
        assert!(payload.starts_with(b"FWJ2"));
        assert_eq!(
            super::super::decode_batch(&payload).expect("decodes"),
            vec![current]
        );
    }
}
