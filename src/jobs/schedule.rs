//! When scheduled jobs fire: pure functions of a cron expression and instants, no clock (the
//! scheduler passes "now" in, so tests play days of schedule in microseconds).
//!
//! Expressions use the `cron` crate's 6- or 7-field form with seconds first and day **names**
//! (`0 0 6 * * Mon` is Mondays at 06:00), always evaluated in UTC. A run after downtime catches
//! up the fires it missed, at most `max_catch_up` of them (the most recent ones), so a service
//! that was down for a month does not replay a month of hourly jobs.

use chrono::Timelike;
use chrono::{DateTime, Utc};
use cron::Schedule;
use std::str::FromStr;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScheduleError {
    #[error("{expr:?} is not a cron expression (sec min hour day-of-month month day-of-week [year], UTC, day names like Mon): {detail}")]
    Invalid { expr: String, detail: String },
    #[error("{expr:?} never fires")]
    NeverFires { expr: String },
}

/// A parsed cron schedule, in UTC.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expr: String,
    schedule: Schedule,
}

impl CronSchedule {
    pub fn parse(expr: &str) -> Result<Self, ScheduleError> {
        let schedule = Schedule::from_str(expr).map_err(|e| ScheduleError::Invalid {
            expr: expr.to_owned(),
            detail: e.to_string(),
        })?;
        let s = Self {
            expr: expr.to_owned(),
            schedule,
        };
        if s.schedule.upcoming(Utc).next().is_none() {
            return Err(ScheduleError::NeverFires {
                expr: expr.to_owned(),
            });
        }
        Ok(s)
    }

    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The first fire strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule.after(&after).next()
    }

    /// Fires in `(last, now]` that a run should catch up, oldest first, keeping only the most
    /// recent `max_catch_up` (0 keeps none). `last = None` (never ran) catches up nothing but
    /// the latest fire at or before `now`, if `max_catch_up > 0`.
    pub fn due(
        &self,
        last: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        max_catch_up: usize,
    ) -> Vec<DateTime<Utc>> {
        if max_catch_up == 0 {
            return Vec::new();
        }
        let keep = if last.is_none() { 1 } else { max_catch_up };
        // Walk back from now: the cost is the fires kept, not the fires since `last` (a
        // per-second schedule has 31 million fires a year; walking forward from a year back
        // held a runtime thread for seconds).
        let Some(after_now) = now
            .with_nanosecond(0)
            .and_then(|t| t.checked_add_signed(chrono::Duration::seconds(1)))
        else {
            return Vec::new();
        };
        let mut fires: Vec<DateTime<Utc>> = self
            .schedule
            .after(&after_now)
            .rev()
            .take_while(|t| last.is_none_or(|l| *t > l))
            .take(keep)
            .collect();
        fires.reverse();
        fires
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(y: i32, m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, mi, 0)
            .single()
            .expect("valid time")
    }

    #[test]
    fn weekly_report_fires_monday_0600_utc() {
        let s = CronSchedule::parse("0 0 6 * * Mon").expect("parse");
        // 2026-11-29 is a Sunday.
        assert_eq!(
            s.next_after(t(2026, 11, 29, 12, 0)),
            Some(t(2026, 11, 30, 6, 0))
        );
        // Exactly at the fire time, the next one is a week later.
        assert_eq!(
            s.next_after(t(2026, 11, 30, 6, 0)),
            Some(t(2026, 12, 7, 6, 0))
        );
        // Across the year boundary (2027-01-04 is the Monday of ISO week 2027-W01).
        assert_eq!(
            s.next_after(t(2026, 12, 31, 0, 0)),
            Some(t(2027, 1, 4, 6, 0))
        );
    }

    #[test]
    fn catch_up_is_bounded_and_ordered() {
        let s = CronSchedule::parse("0 0 * * * *").expect("hourly");
        let last = t(2026, 11, 29, 0, 0);
        let now = t(2026, 11, 29, 10, 30);
        let due = s.due(Some(last), now, 3);
        assert_eq!(
            due,
            vec![
                t(2026, 11, 29, 8, 0),
                t(2026, 11, 29, 9, 0),
                t(2026, 11, 29, 10, 0)
            ]
        );
        assert_eq!(s.due(Some(last), now, 100).len(), 10);
        assert!(s.due(Some(last), now, 0).is_empty());
        // Nothing due when the last run was the latest fire.
        assert!(s.due(Some(t(2026, 11, 29, 10, 0)), now, 5).is_empty());
        // Never ran: only the latest fire.
        assert_eq!(s.due(None, now, 5), vec![t(2026, 11, 29, 10, 0)]);
    }

    #[test]
    fn a_fire_at_exactly_now_is_due_and_a_later_one_is_not() {
        let s = CronSchedule::parse("*/2 * * * * *").expect("every two seconds");
        let at = |secs: i64, ms: i64| {
            t(2026, 11, 29, 10, 0) + chrono::Duration::milliseconds(secs * 1000 + ms)
        };
        assert_eq!(s.due(None, at(2, 0), 1), vec![at(2, 0)]);
        assert_eq!(s.due(None, at(3, 999), 1), vec![at(2, 0)]);
        assert_eq!(
            s.due(Some(at(0, 0)), at(5, 500), 10),
            vec![at(2, 0), at(4, 0)]
        );
        assert!(s.due(Some(at(4, 0)), at(5, 500), 10).is_empty());
    }

    #[test]
    fn a_per_second_schedule_never_run_is_answered_at_once() {
        // Walking forward a year of per-second fires took seconds of a runtime thread.
        let s = CronSchedule::parse("* * * * * *").expect("every second");
        let now = t(2026, 11, 29, 10, 0);
        assert_eq!(s.due(None, now, 3), vec![now]);
        let week_ago = now - chrono::Duration::days(7);
        assert_eq!(
            s.due(Some(week_ago), now, 2),
            vec![now - chrono::Duration::seconds(1), now]
        );
    }

    #[test]
    fn bad_expressions_say_why() {
        let e = CronSchedule::parse("every monday").expect_err("invalid");
        assert!(
            e.to_string()
                .contains("\"every monday\" is not a cron expression"),
            "{e}"
        );
        let e = CronSchedule::parse("0 0 0 30 Feb *").expect_err("never");
        assert_eq!(
            e,
            ScheduleError::NeverFires {
                expr: "0 0 0 30 Feb *".into()
            }
        );
    }
}
