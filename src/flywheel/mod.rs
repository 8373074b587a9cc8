//! Flywheel health metrics (definitions in docs/STATISTICS.md). Pure functions over
//! summaries and activity; the scheduled health job and the plateau rules build on them.
//! So far: retention and stickiness ([`retention`]), the plateau rule ([`plateau`]), and
//! velocity, data efficiency and CUPED ([`velocity`]).

pub mod health;
pub mod job;
pub mod learning_curve;
pub mod metrics;
pub mod plateau;
pub mod retention;
pub mod velocity;
