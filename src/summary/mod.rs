//! Mergeable summaries of one value stream. Pure: no I/O, no clock.
//!
//! A [`FeatureSummary`] summarises the values of one feature, prediction output or feedback
//! signal of one model version over one time bucket:
//!
//! * `missing` (null or absent) and `non_finite` counts;
//! * for numbers: count, mean and second central moment (Chan et al. merge), min, max and a
//!   [`kll::Kll`] quantile sketch (exact up to `k` values, rank error bound documented there);
//! * for strings and booleans: exact counts per category up to a cap, then heavy hitters with
//!   an explicit `other` (see [`Categories`]).
//!
//! `merge(a, b)` equals the summary of the union for counts, moments (to rounding), min/max and
//! categories under the cap, and stays within the sketch's rank-error bound for quantiles; the
//! property tests in `tests.rs` check each. State is bounded by the sketch capacity and the
//! category cap, never by the number of values.

pub mod kll;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use kll::Kll;

pub mod delta;

/// Default cap on distinct categories kept exactly per summary.
pub const DEFAULT_CATEGORY_CAP: usize = 256;

/// Count, mean and second central moment, mergeable (Chan, Golub & LeVeque 1979).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    pub n: u64,
    pub mean: f64,
    pub m2: f64,
}

impl Moments {
    pub fn update(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    pub fn merge(&mut self, o: &Moments) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = o.clone();
            return;
        }
        let n = self.n + o.n;
        let d = o.mean - self.mean;
        let (na, nb) = (self.n as f64, o.n as f64);
        self.mean += d * nb / n as f64;
        self.m2 += o.m2 + d * d * na * nb / n as f64;
        self.n = n;
    }

    /// Population variance (ddof = 0); `None` when empty.
    pub fn variance_pop(&self) -> Option<f64> {
        (self.n > 0).then(|| (self.m2 / self.n as f64).max(0.0))
    }

    /// Sample variance (ddof = 1); `None` below two values.
    pub fn variance_sample(&self) -> Option<f64> {
        (self.n > 1).then(|| (self.m2 / (self.n - 1) as f64).max(0.0))
    }
}

/// Category counts: exact up to `cap` distinct categories, then a heavy-hitters sketch
/// (Space-Saving, Metwally et al. 2005) with an explicit "other".
///
/// `counts[c]` is a guaranteed lower bound of category c's count (exact while the sketch has
/// never been full), `slack[c]` how much more c may have had (its count is at most
/// `counts[c] + slack[c]`), and `other` holds every value not attributed to a kept category, so
/// `Σ counts + other` is always the number of values. Any category with more than
/// `n / cap` values is kept. When a new category arrives and the sketch is full, the category
/// with the smallest upper bound is evicted (its lower bound moves to `other`) and the newcomer
/// inherits that bound as slack. Merging adds both sides (a key absent from a full side gets that
/// side's smallest upper bound as slack) and keeps the `cap` largest upper bounds; it equals the
/// union exactly while the union has at most `cap` categories.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Categories {
    pub counts: BTreeMap<String, u64>,
    pub slack: BTreeMap<String, u64>,
    pub other: u64,
}

impl Categories {
    pub fn total(&self) -> u64 {
        self.counts.values().sum::<u64>() + self.other
    }

    fn upper(&self, k: &str) -> u64 {
        self.counts.get(k).copied().unwrap_or(0) + self.slack.get(k).copied().unwrap_or(0)
    }

    /// The kept category with the smallest upper bound (ties: the greatest name).
    fn min_entry(&self) -> Option<(String, u64)> {
        self.counts
            .keys()
            .map(|k| (k, self.upper(k)))
            .min_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(a.0)))
            .map(|(k, u)| (k.clone(), u))
    }

    /// Upper bound of any category that is not kept: 0 while exact, else the smallest kept
    /// upper bound.
    fn absent_bound(&self, cap: usize) -> u64 {
        if self.counts.len() < cap {
            0
        } else {
            self.min_entry().map_or(0, |e| e.1)
        }
    }

    /// Count one value. Returns false when it is not counted exactly any more (the sketch is full
    /// and the value's category was not kept: it evicted the smallest one).
    pub fn update(&mut self, v: &str, cap: usize) -> bool {
        if let Some(c) = self.counts.get_mut(v) {
            *c += 1;
            return true;
        }
        if self.counts.len() < cap {
            self.counts.insert(v.to_owned(), 1);
            return true;
        }
        match self.min_entry() {
            Some((min_key, min_upper)) => {
                let lower = self.counts.remove(&min_key).unwrap_or(0);
                self.slack.remove(&min_key);
                self.other += lower;
                self.counts.insert(v.to_owned(), 1);
                if min_upper > 0 {
                    self.slack.insert(v.to_owned(), min_upper);
                }
            }
            None => self.other += 1, // cap = 0: nothing is kept
        }
        false
    }

    /// Count a run of values, in order; the same end state as one [`update`](Self::update) per
    /// value. Returns how many were not counted exactly. While the run's new categories fit under
    /// the cap no eviction can happen, so the run is counted per distinct value (one map update
    /// each, not one per value); otherwise it goes value by value.
    pub fn update_many(&mut self, vs: &[&str], cap: usize) -> u64 {
        let mut local: rustc_hash::FxHashMap<&str, u64> = rustc_hash::FxHashMap::default();
        for v in vs {
            *local.entry(v).or_insert(0) += 1;
        }
        let new = local
            .keys()
            .filter(|k| !self.counts.contains_key(**k))
            .count();
        if self.counts.len() + new <= cap {
            for (k, c) in local {
                match self.counts.get_mut(k) {
                    Some(x) => *x += c,
                    None => {
                        self.counts.insert(k.to_owned(), c);
                    }
                }
            }
            return 0;
        }
        vs.iter().map(|v| u64::from(!self.update(v, cap))).sum()
    }

    pub fn merge(&mut self, o: &Categories, cap: usize) {
        let (mine_absent, theirs_absent) = (self.absent_bound(cap), o.absent_bound(cap));
        let keys: std::collections::BTreeSet<String> =
            self.counts.keys().chain(o.counts.keys()).cloned().collect();
        let mut counts = BTreeMap::new();
        let mut slack = BTreeMap::new();
        for k in keys {
            let (a, b) = (self.counts.get(&k), o.counts.get(&k));
            let lower = a.copied().unwrap_or(0) + b.copied().unwrap_or(0);
            let s = match a {
                Some(_) => self.slack.get(&k).copied().unwrap_or(0),
                None => mine_absent,
            } + match b {
                Some(_) => o.slack.get(&k).copied().unwrap_or(0),
                None => theirs_absent,
            };
            counts.insert(k.clone(), lower);
            if s > 0 {
                slack.insert(k, s);
            }
        }
        self.other += o.other;
        if counts.len() > cap {
            let mut all: Vec<(String, u64, u64)> = counts
                .into_iter()
                .map(|(k, c)| {
                    let s = slack.get(&k).copied().unwrap_or(0);
                    (k, c, s)
                })
                .collect();
            all.sort_by(|a, b| (b.1 + b.2).cmp(&(a.1 + a.2)).then_with(|| a.0.cmp(&b.0)));
            counts = BTreeMap::new();
            slack = BTreeMap::new();
            for (i, (k, c, s)) in all.into_iter().enumerate() {
                if i < cap {
                    if s > 0 {
                        slack.insert(k.clone(), s);
                    }
                    counts.insert(k, c);
                } else {
                    self.other += c;
                }
            }
        }
        self.counts = counts;
        self.slack = slack;
    }
}

/// What kind of values a summary has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    Empty,
    Numeric,
    Binary,
    Categorical,
    Mixed,
}

impl ValueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ValueKind::Empty => "empty",
            ValueKind::Numeric => "numeric",
            ValueKind::Binary => "binary",
            ValueKind::Categorical => "categorical",
            ValueKind::Mixed => "mixed",
        }
    }
}

/// The mergeable summary of one value stream. See the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSummary {
    pub missing: u64,
    pub non_finite: u64,
    pub moments: Moments,
    pub min: f64,
    pub max: f64,
    pub sketch: Kll,
    pub categories: Categories,
    /// How many category values went to `other` because of the cap.
    pub overflowed: u64,
    pub category_cap: u32,
}

impl Default for FeatureSummary {
    fn default() -> Self {
        Self::new(kll::DEFAULT_K, DEFAULT_CATEGORY_CAP)
    }
}

impl FeatureSummary {
    pub fn new(k: u16, category_cap: usize) -> Self {
        Self {
            missing: 0,
            non_finite: 0,
            moments: Moments::default(),
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sketch: Kll::new(k),
            categories: Categories::default(),
            overflowed: 0,
            category_cap: category_cap.min(u32::MAX as usize) as u32,
        }
    }

    pub fn add_missing(&mut self) {
        self.missing += 1;
    }

    pub fn add_number(&mut self, x: f64) {
        if !x.is_finite() {
            self.non_finite += 1;
            return;
        }
        self.moments.update(x);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        self.sketch.update(x);
    }

    /// Add a run of numbers, in order. Counts, min/max and the sketch end exactly as with one
    /// [`add_number`](Self::add_number) per value; the moments are computed for the run (sum,
    /// then the squared deviations from its mean) and merged, which equals the per-value update to
    /// rounding and is more accurate than it.
    pub fn add_numbers(&mut self, xs: &[f64]) {
        let (mut n, mut sum) = (0u64, 0.0f64);
        let (mut lo, mut hi) = (self.min, self.max);
        for &x in xs {
            if x.is_finite() {
                n += 1;
                sum += x;
                lo = lo.min(x);
                hi = hi.max(x);
            }
        }
        self.non_finite += xs.len() as u64 - n;
        if n == 0 {
            return;
        }
        let mean = sum / n as f64;
        let m2 = xs
            .iter()
            .filter(|x| x.is_finite())
            .map(|&x| (x - mean) * (x - mean))
            .sum();
        self.moments.merge(&Moments { n, mean, m2 });
        self.min = lo;
        self.max = hi;
        if n as usize == xs.len() {
            self.sketch.update_many(xs);
        } else {
            let finite: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
            self.sketch.update_many(&finite);
        }
    }

    /// Add a run of category values, in order; the same end state as one
    /// [`add_category`](Self::add_category) per value. Returns how many overflowed into `other`.
    pub fn add_categories(&mut self, vs: &[&str]) -> u64 {
        let overflowed = self.categories.update_many(vs, self.category_cap as usize);
        self.overflowed += overflowed;
        overflowed
    }

    /// Returns false when the category overflowed into `other`.
    pub fn add_category(&mut self, v: &str) -> bool {
        let ok = self.categories.update(v, self.category_cap as usize);
        if !ok {
            self.overflowed += 1;
        }
        ok
    }

    pub fn add_bool(&mut self, b: bool) -> bool {
        self.add_category(if b { "true" } else { "false" })
    }

    pub fn merge(&mut self, o: &FeatureSummary) {
        self.missing += o.missing;
        self.non_finite += o.non_finite;
        self.moments.merge(&o.moments);
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sketch.merge(&o.sketch);
        self.category_cap = self.category_cap.min(o.category_cap);
        self.categories
            .merge(&o.categories, self.category_cap as usize);
        self.overflowed += o.overflowed;
    }

    /// Values present (numeric, finite or not, plus categorical), excluding missing.
    pub fn present(&self) -> u64 {
        self.moments.n + self.non_finite + self.categories.total()
    }

    /// Every observation, missing included.
    pub fn total(&self) -> u64 {
        self.present() + self.missing
    }

    pub fn kind(&self) -> ValueKind {
        let numeric = self.moments.n + self.non_finite > 0;
        let cats = self.categories.total() > 0;
        match (numeric, cats) {
            (false, false) => ValueKind::Empty,
            (true, false) => ValueKind::Numeric,
            (true, true) => ValueKind::Mixed,
            (false, true) => {
                let boolean = self.other_is_zero()
                    && self
                        .categories
                        .counts
                        .keys()
                        .all(|k| k == "true" || k == "false");
                if boolean {
                    ValueKind::Binary
                } else {
                    ValueKind::Categorical
                }
            }
        }
    }

    fn other_is_zero(&self) -> bool {
        self.categories.other == 0
    }

    /// Share of observations that were missing; `None` when there were none.
    pub fn missing_share(&self) -> Option<f64> {
        let t = self.total();
        (t > 0).then(|| self.missing as f64 / t as f64)
    }
}

#[cfg(test)]
mod tests;
