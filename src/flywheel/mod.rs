//! Flywheel health metrics (definitions in docs/STATISTICS.md). Pure functions over
//! summaries and activity; the scheduled health job and the plateau rules build on them.
//! [`health`] computes every figure of a model (feedback, velocity, uplift, retention, funnel,
//! arcs) from [`retention`] (cohorts and stickiness), [`plateau`] (the arc states) and
//! [`learning_curve`] (the forecast); [`job`] loads and stores, [`metrics`] exports.

pub mod health;
pub mod job;
pub mod learning_curve;
pub mod metrics;
pub mod plateau;
pub mod retention;
