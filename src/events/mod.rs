//! Event types and their validation ("parse, don't validate").
//!
//! A request body is split into elements ([`split_batch`]); each element is parsed on its own
//! into a [`raw::RawEvent`] and then checked into an [`Event`], whose fields can be trusted by
//! everything downstream: ids are bounded, timestamps are within the configured skew, numbers are
//! finite where they must be, and the user id has already been replaced by its pseudonym.
//! One bad element never affects its neighbours: its error names the index, the field and the
//! problem.
//!
//! * [`types`]: the validated event and its parts, the limits, the rejection reasons;
//! * [`validate`]: a [`raw::RawEvent`] checked into an [`Event`] (field by field, every error
//!   naming its field);
//! * [`batch`]: a request body split into elements and each element parsed on its own.
//!
//! Every field, limit and error is listed in `docs/EVENTS.md`.

pub mod batch;
pub mod pseudonym;
pub mod raw;
pub mod types;
pub mod validate;

pub use batch::{parse_event, split_batch, BatchError, Framing};
pub use types::*;

#[cfg(test)]
mod tests;
