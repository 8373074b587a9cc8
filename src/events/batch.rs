//! Batch framing: a request body (a JSON array or NDJSON) split into its elements, each parsed
//! and validated on its own so that one bad element never affects its neighbours.

use super::pseudonym::Pseudonymizer;
use super::raw::RawEvent;
use super::types::{Event, EventError, EventLimits, RejectReason};
use super::validate::err;

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

pub(super) fn parse_one(text: &str) -> Result<RawEvent, EventError> {
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
