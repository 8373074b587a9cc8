//! Retention and stickiness from pseudonymous per-day activity (docs/STATISTICS.md, retention):
//! calendar days in UTC, first-activity cohorts, "Return On" N-day retention, unbounded ("on or
//! after") retention, cohort matrices with incomplete cells marked, small cohorts suppressed, and
//! DAU / WAU / MAU stickiness. Days are integers (days since the epoch); the caller says which
//! day is the last *complete* one, so a day still filling is never compared as if complete.

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Who was active on which day.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Activity {
    users: BTreeMap<u64, BTreeSet<i64>>,
}

impl Activity {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn record(&mut self, user: u64, day: i64) {
        self.users.entry(user).or_default().insert(day);
    }

    pub fn from_pairs(pairs: impl IntoIterator<Item = (i64, u64)>) -> Self {
        let mut a = Self::new();
        for (day, user) in pairs {
            a.record(user, day);
        }
        a
    }

    fn first_day(days: &BTreeSet<i64>) -> i64 {
        days.iter().next().copied().unwrap_or(i64::MAX)
    }

    /// Users active on `day`.
    pub fn active_on(&self, day: i64) -> usize {
        self.users.values().filter(|d| d.contains(&day)).count()
    }

    /// Users active on any day of `[day − window + 1, day]`.
    pub fn active_within(&self, day: i64, window: i64) -> usize {
        self.users
            .values()
            .filter(|d| d.range((day - window + 1)..=day).next().is_some())
            .count()
    }
}

/// A share with its numerator and denominator (so it can be aggregated correctly).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Ratio {
    pub numerator: u64,
    pub denominator: u64,
}

impl Ratio {
    pub fn value(&self) -> Option<f64> {
        (self.denominator > 0).then(|| self.numerator as f64 / self.denominator as f64)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Active exactly on day cohort + N.
    ReturnOn,
    /// Active on any day ≥ cohort + N (unbounded retention).
    OnOrAfter,
}

/// Pooled N-day retention over every first-activity cohort whose day cohort + N is complete
/// (≤ `last_complete_day`); cohorts too recent are left out of the denominator.
pub fn n_day(activity: &Activity, n: i64, last_complete_day: i64, mode: Mode) -> Ratio {
    let (mut num, mut den) = (0u64, 0u64);
    for days in activity.users.values() {
        let c = Activity::first_day(days);
        if c + n > last_complete_day {
            continue;
        }
        den += 1;
        let retained = match mode {
            Mode::ReturnOn => days.contains(&(c + n)),
            Mode::OnOrAfter => days.range((c + n)..).next().is_some(),
        };
        num += u64::from(retained);
    }
    Ratio {
        numerator: num,
        denominator: den,
    }
}

/// One row of a cohort matrix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CohortRow {
    /// First day of the cohort period (a day number; shown as `YYYY-MM-DD`).
    #[serde(serialize_with = "crate::clock::serde_as::day")]
    pub start_day: i64,
    pub size: u64,
    /// Users active in period `start + i·period` (Return On), or `None` where that period is not
    /// complete yet (or the cohort is suppressed).
    pub retained: Vec<Option<u64>>,
    /// Fewer than `k_min` users: counts withheld (privacy and noise).
    pub suppressed: bool,
}

/// The cohort matrix: users grouped by the period of their first activity (`period_days` = 1
/// for daily, 7 for weekly cohorts aligned to `origin_day`), retained per period offset
/// `0..=max_offset`. A cell is `None` when its period ends after `last_complete_day`.
pub fn cohort_matrix(
    activity: &Activity,
    origin_day: i64,
    period_days: i64,
    max_offset: usize,
    last_complete_day: i64,
    k_min: u64,
) -> Vec<CohortRow> {
    let period_of = |day: i64| (day - origin_day).div_euclid(period_days);
    let mut cohorts: BTreeMap<i64, Vec<&BTreeSet<i64>>> = BTreeMap::new();
    for days in activity.users.values() {
        cohorts
            .entry(period_of(Activity::first_day(days)))
            .or_default()
            .push(days);
    }
    cohorts
        .into_iter()
        .map(|(p, members)| {
            let size = members.len() as u64;
            let suppressed = size < k_min;
            let retained = (0..=max_offset as i64)
                .map(|i| {
                    let period = p + i;
                    let end_day = origin_day + (period + 1) * period_days - 1;
                    if suppressed || end_day > last_complete_day {
                        return None;
                    }
                    Some(
                        members
                            .iter()
                            .filter(|d| d.iter().any(|&x| period_of(x) == period))
                            .count() as u64,
                    )
                })
                .collect();
            CohortRow {
                start_day: origin_day + p * period_days,
                size,
                retained,
                suppressed,
            }
        })
        .collect()
}

/// Stickiness: mean DAU over `[from, to]` divided by the users active in the `mau_window` days
/// ending at `to` (28 days: four of each weekday).
pub fn stickiness(activity: &Activity, from: i64, to: i64, mau_window: i64) -> Option<f64> {
    if to < from {
        return None;
    }
    let days = (to - from + 1) as f64;
    let mean_dau = (from..=to)
        .map(|d| activity.active_on(d) as f64)
        .sum::<f64>()
        / days;
    let mau = activity.active_within(to, mau_window);
    (mau > 0).then(|| mean_dau / mau as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The retention fixture of docs/STATISTICS.md (reference values).
    fn fixture() -> Activity {
        let mut a = Activity::new();
        for (u, days) in [
            (1u64, vec![0, 1, 2, 5, 9]),
            (2, vec![0, 3]),
            (3, vec![1, 2, 3, 4, 5, 6, 7]),
            (4, vec![2, 9]),
            (5, vec![5, 6]),
        ] {
            for d in days {
                a.record(u, d);
            }
        }
        a
    }

    #[test]
    fn golden_retention_fixture() {
        let a = fixture();
        let t = 9;
        let ro = |n| n_day(&a, n, t, Mode::ReturnOn);
        assert_eq!(
            ro(1),
            Ratio {
                numerator: 3,
                denominator: 5
            }
        );
        assert_eq!(
            ro(2),
            Ratio {
                numerator: 2,
                denominator: 5
            }
        );
        assert_eq!(
            ro(3),
            Ratio {
                numerator: 2,
                denominator: 5
            }
        );
        let oa = |n| n_day(&a, n, t, Mode::OnOrAfter);
        assert_eq!(oa(1).value(), Some(1.0));
        assert_eq!(oa(3).value(), Some(0.8));
        assert_eq!(
            oa(7),
            Ratio {
                numerator: 2,
                denominator: 4
            },
            "u5's cohort d5 + 7 > 9 is censored"
        );

        let m = cohort_matrix(&a, 0, 1, 3, t, 1);
        let rows: Vec<(i64, u64, Vec<Option<u64>>)> = m
            .iter()
            .map(|r| (r.start_day, r.size, r.retained.clone()))
            .collect();
        assert_eq!(
            rows,
            vec![
                (0, 2, vec![Some(2), Some(1), Some(1), Some(1)]),
                (1, 1, vec![Some(1), Some(1), Some(1), Some(1)]),
                (2, 1, vec![Some(1), Some(0), Some(0), Some(0)]),
                (5, 1, vec![Some(1), Some(1), Some(0), Some(0)]),
            ]
        );
        let dau: Vec<usize> = (0..=9).map(|d| a.active_on(d)).collect();
        assert_eq!(dau, vec![2, 2, 3, 2, 1, 3, 2, 1, 0, 2]);
        assert_eq!(
            (
                a.active_on(5),
                a.active_within(5, 7),
                a.active_within(5, 30)
            ),
            (3, 5, 5)
        );
        assert_eq!(
            (
                a.active_on(9),
                a.active_within(9, 7),
                a.active_within(9, 30)
            ),
            (2, 5, 5)
        );
        let s = stickiness(&a, 0, 9, 30).expect("stickiness");
        assert!((s - 0.36).abs() < 1e-12, "{s}");
    }

    #[test]
    fn incomplete_periods_and_small_cohorts_are_marked() {
        let a = fixture();
        // Day 9 still filling: the last complete day is 8.
        let m = cohort_matrix(&a, 0, 1, 3, 8, 1);
        let d5 = m.iter().find(|r| r.start_day == 5).expect("d5");
        assert_eq!(d5.retained, vec![Some(1), Some(1), Some(0), Some(0)]);
        let d0 = &m[0];
        assert_eq!(d0.retained, vec![Some(2), Some(1), Some(1), Some(1)]);
        let late = cohort_matrix(&a, 0, 1, 5, 8, 1);
        let d5 = late.iter().find(|r| r.start_day == 5).expect("d5");
        assert_eq!(d5.retained[4], None, "day 9 is incomplete");
        // Weekly cohorts, k = 10: every cohort is too small and withheld.
        let w = cohort_matrix(&a, 0, 7, 1, 13, 10);
        assert!(w
            .iter()
            .all(|r| r.suppressed && r.retained.iter().all(Option::is_none)));
        assert_eq!(w[0].size, 5);
    }
}
