//! Retention over the lookback: D1, D7, D30, the weekly cohort matrix, stickiness, and the pooled
//! D7 of each weekly cohort (the loop arc's series); small cohorts suppressed.

use super::{HealthConfig, Inputs, Retained, Retention, DAY};
use crate::flywheel::retention::{self, Activity, Mode};
use std::collections::{BTreeMap, BTreeSet};

pub(super) fn retention(cfg: &HealthConfig, inp: &Inputs) -> Retention {
    let end = inp.end;
    let activity = Activity::from_pairs(inp.activity.iter().copied());
    let last_day = end / DAY - 1;
    let kmin = cfg.k_anonymity;
    let retained = |n: i64| {
        let r = retention::n_day(&activity, n, last_day, Mode::ReturnOn);
        let suppressed = r.denominator < kmin;
        Retained {
            days: n,
            value: if suppressed { None } else { r.value() },
            numerator: if suppressed { 0 } else { r.numerator },
            denominator: r.denominator,
            suppressed,
        }
    };
    // Weekly cohorts aligned to Mondays (day 4 of the epoch was a Monday).
    let monday = |d: i64| d - (d - 4).rem_euclid(7);
    let origin = monday(last_day - 7 * 8);
    let in_window: Activity =
        Activity::from_pairs(inp.activity.iter().copied().filter(|(d, _)| *d >= origin));
    let weekly_cohorts = retention::cohort_matrix(&in_window, origin, 7, 7, last_day, kmin);
    let d7_by_week: Vec<f64> = {
        // Pooled D7 of each weekly cohort whose day 7 is complete.
        let mut by_week: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
        let mut days_of: BTreeMap<u64, BTreeSet<i64>> = BTreeMap::new();
        for (d, u) in &inp.activity {
            days_of.entry(*u).or_default().insert(*d);
        }
        for days in days_of.values() {
            let Some(&first) = days.iter().next() else {
                continue;
            };
            if first + 7 > last_day {
                continue;
            }
            let w = monday(first);
            let e = by_week.entry(w).or_default();
            e.1 += 1;
            e.0 += u64::from(days.contains(&(first + 7)));
        }
        by_week
            .values()
            .filter(|(_, n)| *n >= kmin)
            .map(|(r, n)| *r as f64 / *n as f64)
            .collect()
    };
    let dau_week: Vec<usize> = (last_day - 6..=last_day)
        .map(|d| activity.active_on(d))
        .collect();
    let mau = activity.active_within(last_day, 28);
    Retention {
        d1: retained(1),
        d7: retained(7),
        d30: retained(30),
        stickiness: if (mau as u64) < kmin {
            None
        } else {
            retention::stickiness(&activity, last_day - 6, last_day, 28)
        },
        dau: dau_week.last().copied().unwrap_or(0),
        mau,
        weekly_cohorts,
        d7_by_week,
    }
}
