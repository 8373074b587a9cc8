//! Time: the [`Clock`] every part of the service reads "now" from, and [`Timestamp`], an
//! instant with its unit in the type and one RFC 3339 formatter.
//!
//! The service runs on [`Clock::system`]. Tests and the demo run on a [`ManualClock`] they move
//! by hand (the demo plays twenty weeks in a minute; the job tests play days of schedule in
//! seconds). There is one clock type, so no part of the service can read the wall clock behind
//! the back of the injected one.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// An instant: microseconds since the Unix epoch, UTC.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_micros(us: i64) -> Self {
        Self(us)
    }
    pub const fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1_000_000))
    }
    pub const fn micros(self) -> i64 {
        self.0
    }
    /// Whole seconds, rounded towards the past.
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }
    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp_micros(self.0).unwrap_or_default()
    }
    /// RFC 3339 in UTC with a `Z`, at the precision the value has: whole seconds print without a
    /// fraction (`2026-12-04T10:00:00Z`), others with microseconds. The one formatter of the
    /// service's API, reports and alerts.
    pub fn to_rfc3339(self) -> String {
        let precision = if self.0.rem_euclid(1_000_000) == 0 {
            SecondsFormat::Secs
        } else {
            SecondsFormat::Micros
        };
        self.to_datetime().to_rfc3339_opts(precision, true)
    }
    /// The UTC calendar date (`2026-12-04`).
    pub fn to_date(self) -> String {
        self.to_datetime().format("%Y-%m-%d").to_string()
    }
    /// Parse an RFC 3339 timestamp (any offset).
    pub fn parse_rfc3339(s: &str) -> Result<Self, chrono::ParseError> {
        Ok(Self(
            DateTime::parse_from_rfc3339(s)?
                .with_timezone(&Utc)
                .timestamp_micros(),
        ))
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(t: DateTime<Utc>) -> Self {
        Self(t.timestamp_micros())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// RFC 3339 of a time given in seconds since the epoch (windows, fire times).
pub fn rfc3339_secs(secs: i64) -> String {
    Timestamp::from_secs(secs).to_rfc3339()
}

/// Where "now" comes from; cheap to clone.
#[derive(Clone)]
pub struct Clock(Source);

#[derive(Clone)]
enum Source {
    System,
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// The wall clock.
    pub fn system() -> Self {
        Self(Source::System)
    }

    pub fn now(&self) -> Timestamp {
        match &self.0 {
            Source::System => Timestamp(Utc::now().timestamp_micros()),
            Source::Manual(t) => Timestamp(t.load(Ordering::SeqCst)),
        }
    }

    /// Microseconds since the epoch (shorthand for `now().micros()`).
    pub fn now_us(&self) -> i64 {
        self.now().micros()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::System => f.write_str("Clock::system"),
            Source::Manual(t) => {
                write!(f, "Clock::manual({})", Timestamp(t.load(Ordering::SeqCst)))
            }
        }
    }
}

/// A clock moved by hand: the demo's accelerated weeks and the tests' simulated days. Clones
/// share the time; [`ManualClock::clock`] hands the service a [`Clock`] that reads it.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn starting_at(t: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(t.micros())))
    }
    /// Starting at `secs` seconds since the epoch.
    pub fn at_secs(secs: i64) -> Self {
        Self::starting_at(Timestamp::from_secs(secs))
    }
    pub fn clock(&self) -> Clock {
        Clock(Source::Manual(self.0.clone()))
    }
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.micros(), Ordering::SeqCst);
    }
    pub fn set_secs(&self, secs: i64) {
        self.set(Timestamp::from_secs(secs));
    }
    pub fn advance_secs(&self, secs: i64) {
        self.0
            .fetch_add(secs.saturating_mul(1_000_000), Ordering::SeqCst);
    }
    pub fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_has_the_precision_of_the_value() {
        assert_eq!(rfc3339_secs(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::from_micros(1_764_842_400_000_250).to_rfc3339(),
            "2025-12-04T10:00:00.000250Z"
        );
        assert_eq!(Timestamp::from_secs(1_764_842_400).to_date(), "2025-12-04");
        let t = Timestamp::parse_rfc3339("2025-12-04T11:00:00+01:00").expect("parses");
        assert_eq!(t, Timestamp::from_secs(1_764_842_400));
        assert_eq!(Timestamp::from_micros(-1).secs(), -1);
    }

    #[test]
    fn a_manual_clock_is_shared_by_its_clones() {
        let m = ManualClock::at_secs(100);
        let c = m.clock();
        assert_eq!(c.now().secs(), 100);
        m.advance_secs(5);
        assert_eq!(c.now().secs(), 105);
        m.clone().set_secs(7);
        assert_eq!(c.now_us(), 7_000_000);
        assert!(Clock::system().now().secs() > 1_700_000_000);
    }
}

/// Serde helpers: times kept as plain integers inside a computation, shown as RFC 3339 or dates.
pub mod serde_as {
    use super::Timestamp;
    use serde::Serializer;

    /// Seconds since the epoch → RFC 3339.
    pub fn secs<S: Serializer>(secs: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&Timestamp::from_secs(*secs).to_rfc3339())
    }

    /// Optional seconds since the epoch → RFC 3339 or null.
    pub fn opt_secs<S: Serializer>(secs: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match secs {
            Some(x) => s.serialize_str(&Timestamp::from_secs(*x).to_rfc3339()),
            None => s.serialize_none(),
        }
    }

    /// A day number (days since 1970-01-01, UTC) → `YYYY-MM-DD`.
    pub fn day<S: Serializer>(day: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&Timestamp::from_secs(day.saturating_mul(86_400)).to_date())
    }
}
