//! `POST /v1/events`: a JSON array or NDJSON of events, each validated on its own.

use super::{ApiError, AppState};
use crate::events::{parse_event, split_batch, BatchError, Framing, RejectReason};
use crate::ingest::Batch;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http_body_util::BodyExt;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct ItemError {
    pub index: usize,
    pub error: String,
}

#[derive(Debug, Serialize)]
pub struct IngestResponse {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub errors: Vec<ItemError>,
}

fn framing(headers: &HeaderMap) -> Result<Framing, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/json" => Ok(Framing::JsonArray),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => Ok(Framing::Ndjson),
        "" => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type is missing: send application/json (an array of events) or application/x-ndjson (one event per line)",
        )),
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type {other:?} is not supported: send application/json (an array of events) or application/x-ndjson (one event per line)"),
        )),
    }
}

pub async fn post_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let framing = framing(&headers)?;
    let limit = state.config.ingest.max_body_bytes;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body is larger than the limit of {limit} bytes (ingest.max_body_bytes); split the batch"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    // Read straight into one buffer of the declared size (collecting the frames first and then
    // joining them would hold the body twice).
    let mut bytes: Vec<u8> = Vec::with_capacity(declared.unwrap_or(0));
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > limit {
                return Err(too_large());
            }
            bytes.extend_from_slice(&data);
        }
    }

    // Parsing and validation are CPU work: keep them off the async threads.
    let st = state.clone();
    let parsed = tokio::task::spawn_blocking(move || validate_body(&st, &bytes, framing))
        .await
        .map_err(ApiError::internal)?;
    let (events, positions, mut errors, total) = match parsed {
        Ok(v) => v,
        Err(BatchError::TooManyEvents(n, max)) => {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("batch holds {n} events, over the limit of {max} (ingest.max_events_per_batch); split the batch"),
            ))
        }
        Err(e) => return Err(ApiError::bad_request(e.to_string())),
    };
    let rejected = errors.len();
    let outcome = if events.is_empty() {
        Default::default()
    } else {
        state.ingest.submit(events).await?
    };
    let mut dup_errors: Vec<ItemError> = outcome
        .duplicates
        .iter()
        .map(|&i| ItemError {
            index: positions[i],
            error: "event_id: already received (counted once)".into(),
        })
        .collect();
    let duplicates = dup_errors.len();
    errors.append(&mut dup_errors);
    errors.sort_by_key(|e| e.index);
    let status = if rejected == total {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(IngestResponse {
            accepted: outcome.accepted,
            duplicates,
            rejected,
            errors,
        }),
    )
        .into_response())
}

type Validated = (Batch, Vec<usize>, Vec<ItemError>, usize);

/// Events decoded before they are handed to the batch.
const VALIDATE_RUN: usize = 512;

fn validate_body(state: &AppState, body: &[u8], framing: Framing) -> Result<Validated, BatchError> {
    let items = split_batch(body, framing, state.config.ingest.max_events_per_batch)?;
    let total = items.len();
    let now = state.clock.now_us();
    let mut batch = state.ingest.batch();
    // Validated a run at a time and handed to the batch (encoded, folded), so that only one run
    // of decoded events is alive however large the body.
    let mut events = Vec::with_capacity(total.min(VALIDATE_RUN));
    let mut positions = Vec::with_capacity(total);
    let mut errors = Vec::new();
    // Rejections are counted per reason here and added to the metric once per batch.
    let mut rejected = [0u64; RejectReason::ALL.len()];
    for (index, item) in items.into_iter().enumerate() {
        let checked =
            item.and_then(|text| parse_event(text, &state.limits, &state.pseudonymizer, now));
        match checked {
            Ok(e) => {
                events.push(e);
                positions.push(index);
                if events.len() == VALIDATE_RUN {
                    batch.add(&events);
                    events.clear();
                }
            }
            Err(e) => {
                if let Some(i) = RejectReason::ALL.iter().position(|r| *r == e.reason) {
                    rejected[i] += 1;
                }
                errors.push(ItemError {
                    index,
                    error: e.message,
                });
            }
        }
    }
    batch.add(&events);
    for (reason, n) in RejectReason::ALL.iter().zip(rejected) {
        if n > 0 {
            state
                .metrics
                .events_rejected
                .with_label_values(&[reason.as_str()])
                .inc_by(n);
        }
    }
    Ok((batch, positions, errors, total))
}
