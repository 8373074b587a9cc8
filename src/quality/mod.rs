//! Data quality: declared standards for what enters training, evaluated per model and window
//! from the stored summaries (no raw values), with a verdict per model and window.
//!
//! Each rule ([`rules::Rule`]) checks one thing (see [`rules::Check`]) on the features it covers
//! or on the model's event counts, against a limit, with a severity. An evaluation is `pass`,
//! `violated` or `not_evaluated` (too few values on a side, no baseline yet, a baseline whose
//! categories overflowed the exact cap); the verdict of a model's window is `fail` when a
//! fail-severity rule is violated, `warn` when only warn-severity rules are, else `pass`.
//!
//! What the figures are, exactly:
//! * a baseline is a reference for `range` and `categories` once it has
//!   [`reference_values_needed`] values (2,000 at the default 1 % limit), so that values outside
//!   a short baseline's range by chance (2/(n+1) of them) do not alarm;
//! * shares (`missing`, `non_finite`, `range`, `categories`) are of the window's values: missing
//!   over every observation, non-finite and out-of-range over the numbers, unseen over the
//!   category values. Out-of-range shares come from the window's quantile sketch: exact while it
//!   holds every value (up to `ingest.sketch_k`), else within its rank error;
//! * `schema` compares the kind of each feature (numeric or categorical; a feature with both is
//!   `mixed`) in the window with the baseline's: appeared (no values in the baseline), vanished
//!   (no values in a window in which the model had at least `min_values` observations of the
//!   class), changed kind;
//! * `freshness` is measured in whole buckets: the silence is the time from the end of the last
//!   bucket with an event of the type to the end of the window;
//! * `volume`: the two-sided Poisson test of the window's count against the count of the same
//!   window a week before taken as the rate; it needs both an effect (ratio outside
//!   `[limit, 1/limit]`) and significance (p < 0.001), so large volumes do not alarm on noise;
//! * `entropy` is the Shannon entropy of the category shares (the `other` bucket as one
//!   category); `coverage` counts the baseline categories with at least 1 % of its values;
//! * `representativeness` is 1 − the mean Hellinger distance, over the covered features, between
//!   the training data and the window (numeric features on ten quantile bins of the training
//!   data, categorical ones on the union of categories); 1 is identical, 0 disjoint.

pub mod job;
pub mod metrics;
pub mod rules;

use crate::drift::run::SummaryMap;
use crate::events::EventType;
use crate::store::BucketCount;
use crate::summary::delta::SeriesClass;
use crate::summary::{FeatureSummary, ValueKind};
use rules::{Check, Rule, Severity};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The outcome of one rule on one feature (or on the model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Violated,
    NotEvaluated,
}

/// One rule's evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub rule: String,
    pub check: Check,
    pub severity: Severity,
    /// The feature's class and name (absent for the model-level checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
    pub status: Status,
    /// The figure compared with `limit` (a share, a ratio or seconds; see the module docs).
    pub value: Option<f64>,
    pub limit: f64,
    /// Values (or events) the figure is computed from.
    pub n: u64,
    /// What was found, in words.
    pub message: String,
}

/// What a window's data is fit for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    Pass,
    Warn,
    Fail,
}

impl Grade {
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::Pass => "pass",
            Grade::Warn => "warn",
            Grade::Fail => "fail",
        }
    }
    /// The gauge value: 0 pass, 1 warn, 2 fail.
    pub fn code(self) -> f64 {
        self as u8 as f64
    }
}

/// One rule over a model's window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleTally {
    pub rule: String,
    pub check: Check,
    pub severity: Severity,
    pub evaluated: usize,
    pub violations: usize,
    pub not_evaluated: usize,
}

/// The verdict of one model's window (stored under subject `_verdict`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub verdict: Grade,
    /// The rules with a violation, fail-severity first.
    pub failed_rules: Vec<String>,
    pub rules: Vec<RuleTally>,
    /// The violations (fail-severity first, then by rule and feature), at most
    /// [`MAX_LISTED`]; `violations_total` counts them all.
    pub violations: Vec<Evaluation>,
    pub violations_total: usize,
    /// Interactions in the window.
    pub interactions: u64,
    /// Mean number of input features with a value per interaction, in the window and the
    /// baseline.
    pub features_per_event: Option<f64>,
    pub features_per_event_baseline: Option<f64>,
    /// The baseline in words (`rolling:7d`...).
    pub baseline: String,
}

/// A stored verdict with its window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowVerdict {
    pub window_start: i64,
    pub window_end: i64,
    pub verdict: Verdict,
}

/// Windows in which one rule was violated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleWindows {
    pub rule: String,
    pub severity: Severity,
    pub windows: usize,
    /// Interactions in those windows, as a share of all interactions of the range.
    pub interactions_share: Option<f64>,
}

/// A range of windows of one model summed up (the API's and the weekly report's summary).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RangeSummary {
    pub windows: usize,
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub interactions: u64,
    /// Interactions in windows whose verdict is fail: the data not fit for training by the
    /// declared standards.
    pub interactions_failed: u64,
    pub failed_share: Option<f64>,
    /// Per violated rule, most windows first.
    pub rules: Vec<RuleWindows>,
}

/// Sum up a model's verdicts over a range.
pub fn summarise(verdicts: &[WindowVerdict]) -> RangeSummary {
    let mut s = RangeSummary {
        windows: verdicts.len(),
        ..Default::default()
    };
    let mut rules: BTreeMap<&str, (Severity, usize, u64)> = BTreeMap::new();
    for w in verdicts {
        let v = &w.verdict;
        match v.verdict {
            Grade::Pass => s.pass += 1,
            Grade::Warn => s.warn += 1,
            Grade::Fail => {
                s.fail += 1;
                s.interactions_failed += v.interactions;
            }
        }
        s.interactions += v.interactions;
        for r in &v.failed_rules {
            let severity = v
                .rules
                .iter()
                .find(|t| &t.rule == r)
                .map_or(Severity::Warn, |t| t.severity);
            let e = rules.entry(r.as_str()).or_insert((severity, 0, 0));
            e.1 += 1;
            e.2 += v.interactions;
        }
    }
    let share = |n: u64| (s.interactions > 0).then(|| n as f64 / s.interactions as f64);
    s.failed_share = share(s.interactions_failed);
    s.rules = rules
        .into_iter()
        .map(|(rule, (severity, windows, n))| RuleWindows {
            rule: rule.to_owned(),
            severity,
            windows,
            interactions_share: share(n),
        })
        .collect();
    s.rules
        .sort_by(|a, b| b.windows.cmp(&a.windows).then(a.rule.cmp(&b.rule)));
    s
}

/// The training-consent flags interactions were sent with, over a range.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConsentShare {
    pub interactions: u64,
    /// Sent with `consent.training = true`, `false`, or without the flag.
    pub training_true: u64,
    pub training_false: u64,
    pub unflagged: u64,
    /// Share of interactions with a training-consent flag, and with `training = true`.
    pub flagged_share: Option<f64>,
    pub training_share: Option<f64>,
}

/// The consent flags of the interactions in `m` (summaries merged over a range).
pub fn consent_share(m: &SummaryMap) -> ConsentShare {
    use crate::summary::delta::CONSENT_TRAINING;
    let Some(s) = m.get(&(SeriesClass::Consent, CONSENT_TRAINING.to_owned())) else {
        return ConsentShare::default();
    };
    let get = |k: &str| s.categories.counts.get(k).copied().unwrap_or(0);
    let (t, f, n) = (get("true"), get("false"), s.missing);
    let total = t + f + n;
    let share = |x: u64| (total > 0).then(|| x as f64 / total as f64);
    ConsentShare {
        interactions: total,
        training_true: t,
        training_false: f,
        unflagged: n,
        flagged_share: share(t + f),
        training_share: share(t),
    }
}

/// Violations listed in a verdict.
pub const MAX_LISTED: usize = 50;

/// What a model's evaluation reads, all from the store.
#[derive(Debug, Default)]
pub struct Inputs {
    pub window: (i64, i64),
    pub bucket_secs: i64,
    pub current: SummaryMap,
    /// The baseline's summaries (empty when it has no data yet).
    pub baseline: std::sync::Arc<SummaryMap>,
    /// Event counts per bucket from the freshness lookback up to the window's end.
    pub counts: Vec<BucketCount>,
    /// Event counts of the same window a week before.
    pub week_ago: Vec<BucketCount>,
    /// Training datasets by name (for representativeness).
    pub training: BTreeMap<String, SummaryMap>,
}

/// Every rule that applies to `model`, evaluated: the evaluations (model-level first, then by
/// feature) and the verdict. Pure.
pub fn evaluate(
    model: &str,
    rules: &[Rule],
    inputs: &Inputs,
    baseline: &str,
) -> (Vec<Evaluation>, Verdict) {
    let mut out = Vec::new();
    let empty = FeatureSummary::default();
    for rule in rules.iter().filter(|r| r.applies_to(model)) {
        match rule.check {
            Check::Freshness => freshness(rule, inputs, &mut out),
            Check::Volume => volume(rule, inputs, &mut out),
            Check::Representativeness => out.push(representativeness(rule, inputs)),
            _ => {
                let keys: BTreeSet<&(SeriesClass, String)> = inputs
                    .current
                    .keys()
                    .chain(inputs.baseline.keys())
                    .filter(|(c, n)| rule.covers(*c, n))
                    .collect();
                for key in keys {
                    let (class, name) = key;
                    let cur = inputs.current.get(key).unwrap_or(&empty);
                    let base = inputs.baseline.get(key);
                    // Observations of the class on each side (schema: did the model send any?).
                    let observed = [
                        class_observations(&inputs.current, *class),
                        class_observations(&inputs.baseline, *class),
                    ];
                    let Some(mut e) = feature_check(rule, cur, base, observed) else {
                        continue;
                    };
                    e.class = Some(class.as_str().to_owned());
                    e.feature = Some(name.clone());
                    out.push(e);
                }
            }
        }
    }
    let verdict = verdict(rules, model, &out, inputs, baseline);
    (out, verdict)
}

fn eval(rule: &Rule, status: Status, value: Option<f64>, n: u64, message: String) -> Evaluation {
    Evaluation {
        rule: rule.name.clone(),
        check: rule.check,
        severity: rule.severity,
        class: None,
        feature: None,
        status,
        value,
        limit: rule.limit,
        n,
        message,
    }
}

/// An evaluation with a figure: violated or passed.
fn judged(rule: &Rule, violated: bool, value: f64, n: u64, message: String) -> Evaluation {
    let status = if violated {
        Status::Violated
    } else {
        Status::Pass
    };
    eval(rule, status, Some(value), n, message)
}

fn not_evaluated(rule: &Rule, n: u64, why: impl Into<String>) -> Evaluation {
    eval(rule, Status::NotEvaluated, None, n, why.into())
}

fn share_check(rule: &Rule, part: u64, of: u64, what: &str) -> Evaluation {
    if of < rule.min_values {
        return not_evaluated(
            rule,
            of,
            format!("{of} values in the window, fewer than {}", rule.min_values),
        );
    }
    let share = part as f64 / of as f64;
    judged(
        rule,
        share > rule.limit,
        share,
        of,
        format!(
            "{:.2} % of {of} values {what} (limit {:.2} %)",
            share * 100.0,
            rule.limit * 100.0
        ),
    )
}

/// Whether numbers or categories, for the schema check.
fn family(s: &FeatureSummary) -> &'static str {
    match s.kind() {
        ValueKind::Empty => "empty",
        ValueKind::Numeric => "numeric",
        ValueKind::Binary | ValueKind::Categorical => "categorical",
        ValueKind::Mixed => "mixed",
    }
}

/// The largest number of observations of any feature of `class`: how many events carried it.
fn class_observations(m: &SummaryMap, class: SeriesClass) -> u64 {
    m.iter()
        .filter(|((c, _), _)| *c == class)
        .map(|(_, s)| s.total())
        .max()
        .unwrap_or(0)
}

/// One rule on one feature; `None` when the rule does not apply to the feature's kind of values
/// (a range on categories, unseen categories on numbers).
fn feature_check(
    rule: &Rule,
    cur: &FeatureSummary,
    base: Option<&FeatureSummary>,
    observed: [u64; 2],
) -> Option<Evaluation> {
    let numbers = |s: &FeatureSummary| s.moments.n + s.non_finite > 0;
    let categories = |s: &FeatureSummary| s.categories.total() > 0;
    let either = |f: &dyn Fn(&FeatureSummary) -> bool| f(cur) || base.is_some_and(f);
    Some(match rule.check {
        Check::Missing => share_check(rule, cur.missing, cur.total(), "missing"),
        Check::NonFinite if either(&numbers) => share_check(
            rule,
            cur.non_finite,
            cur.moments.n + cur.non_finite,
            "not finite",
        ),
        Check::Range if either(&numbers) => range(rule, cur, base),
        Check::Categories if either(&categories) => self::categories(rule, cur, base),
        Check::Schema => schema(rule, cur, base, observed),
        Check::Entropy if either(&categories) => entropy(rule, cur, base),
        Check::Coverage if either(&categories) => coverage(rule, cur, base),
        _ => return None,
    })
}

/// Share of the summary's numbers outside `[lo, hi]`, from its sketch, and never below what the
/// exact min and max prove (one value below `lo`, one above `hi`).
pub fn share_outside(s: &FeatureSummary, lo: f64, hi: f64) -> f64 {
    let n = s.moments.n;
    if n == 0 || (s.min >= lo && s.max <= hi) {
        return 0.0;
    }
    let items = s.sketch.weighted_items();
    let total: u64 = items.iter().map(|(_, w)| w).sum();
    let out: u64 = items
        .iter()
        .filter(|(x, _)| *x < lo || *x > hi)
        .map(|(_, w)| w)
        .sum();
    // The exact min and max bound the count from below: a compacted sketch may have dropped a
    // lone outlier, the extremes never do.
    let certain = u64::from(s.min < lo) + u64::from(s.max > hi);
    let estimate = if total == 0 {
        0.0
    } else {
        out as f64 / total as f64
    };
    estimate.max(certain as f64 / n as f64)
}

/// Values a baseline needs before its range or categories are a reference for `rule`: at least
/// `min_values`, and enough that chance alone stays at a tenth of the limit. A new value falls
/// outside the range of n exchangeable values with probability 2/(n+1) whatever the
/// distribution, so n ≥ 20/limit; the same bound keeps the mass of categories a baseline has not
/// seen yet (Good–Turing: the share of its values seen once) small for all but very long tails.
pub fn reference_values_needed(rule: &Rule) -> u64 {
    let chance = if rule.limit > 0.0 {
        (20.0 / rule.limit).ceil().min(1e12) as u64
    } else {
        u64::MAX
    };
    rule.min_values.max(chance)
}

fn range(rule: &Rule, cur: &FeatureSummary, base: Option<&FeatureSummary>) -> Evaluation {
    let needed = reference_values_needed(rule);
    let (lo, hi, whence) = match (rule.bounds, base) {
        (Some((lo, hi)), _) => (lo, hi, "the declared range"),
        (None, Some(b)) if b.moments.n >= needed => (b.min, b.max, "the baseline's range"),
        (None, b) => {
            return not_evaluated(
                rule,
                cur.moments.n,
                format!(
                    "the baseline has {} numbers, fewer than the {needed} a reference range needs at this limit",
                    b.map_or(0, |b| b.moments.n),
                ),
            )
        }
    };
    let n = cur.moments.n;
    if n < rule.min_values {
        return not_evaluated(
            rule,
            n,
            format!("{n} numbers in the window, fewer than {}", rule.min_values),
        );
    }
    let share = share_outside(cur, lo, hi);
    judged(
        rule,
        share > rule.limit,
        share,
        n,
        format!(
            "{:.2} % of {n} numbers outside [{lo}, {hi}] ({whence}; the window's range is [{}, {}]; limit {:.2} %)",
            share * 100.0,
            cur.min,
            cur.max,
            rule.limit * 100.0
        ),
    )
}

fn categories(rule: &Rule, cur: &FeatureSummary, base: Option<&FeatureSummary>) -> Evaluation {
    let n = cur.categories.total();
    let reference: BTreeSet<&str> = match (&rule.allowed, base) {
        (Some(a), _) => a.iter().map(String::as_str).collect(),
        (None, Some(b)) if b.categories.total() >= reference_values_needed(rule) => {
            if b.categories.other > 0 {
                return not_evaluated(
                    rule,
                    n,
                    "the baseline has more categories than are kept exactly (ingest.max_categories_per_feature)",
                );
            }
            b.categories.counts.keys().map(String::as_str).collect()
        }
        (None, b) => {
            return not_evaluated(
                rule,
                n,
                format!(
                    "the baseline has {} category values, fewer than the {} a reference needs at this limit",
                    b.map_or(0, |b| b.categories.total()),
                    reference_values_needed(rule)
                ),
            )
        }
    };
    if n < rule.min_values {
        return not_evaluated(
            rule,
            n,
            format!(
                "{n} category values in the window, fewer than {}",
                rule.min_values
            ),
        );
    }
    let mut unseen: Vec<(&str, u64)> = cur
        .categories
        .counts
        .iter()
        .filter(|(k, _)| !reference.contains(k.as_str()))
        .map(|(k, c)| (k.as_str(), *c))
        .collect();
    unseen.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let part: u64 = unseen.iter().map(|u| u.1).sum();
    let share = part as f64 / n as f64;
    let top: Vec<String> = unseen
        .iter()
        .take(3)
        .map(|(k, c)| format!("{k:?} ({c})"))
        .collect();
    let whence = if rule.allowed.is_some() {
        "not allowed"
    } else {
        "never seen in the baseline"
    };
    judged(
        rule,
        share > rule.limit,
        share,
        n,
        format!(
            "{:.2} % of {n} values in categories {whence}{} (limit {:.2} %)",
            share * 100.0,
            if top.is_empty() {
                String::new()
            } else {
                format!(": {}", top.join(", "))
            },
            rule.limit * 100.0
        ),
    )
}

fn schema(
    rule: &Rule,
    cur: &FeatureSummary,
    base: Option<&FeatureSummary>,
    [class_n, base_class_n]: [u64; 2],
) -> Evaluation {
    let before = base.map_or("empty", family);
    let now = family(cur);
    let base_n = base.map_or(0, FeatureSummary::present);
    let (status, message) = if before == "empty" {
        if now == "empty" {
            return not_evaluated(rule, 0, "no values on either side");
        }
        if base_class_n < rule.min_values {
            return not_evaluated(
                rule,
                cur.present(),
                format!(
                    "the baseline has {base_class_n} observations of the class, fewer than {}",
                    rule.min_values
                ),
            );
        }
        if cur.present() < rule.min_values {
            return not_evaluated(
                rule,
                cur.present(),
                format!(
                    "new, but {} values in the window are fewer than {}",
                    cur.present(),
                    rule.min_values
                ),
            );
        }
        (
            Status::Violated,
            format!(
                "appeared: {} {now} values, none in the baseline",
                cur.present()
            ),
        )
    } else if base_n < rule.min_values {
        return not_evaluated(
            rule,
            base_n,
            format!(
                "{base_n} values in the baseline, fewer than {}",
                rule.min_values
            ),
        );
    } else if now == "empty" {
        if class_n < rule.min_values {
            return not_evaluated(
                rule,
                class_n,
                format!(
                    "{class_n} observations in the window, fewer than {}",
                    rule.min_values
                ),
            );
        }
        (
            Status::Violated,
            format!(
                "vanished: no values in the window ({} observations of its class), {base_n} {before} values in the baseline",
                class_n
            ),
        )
    } else if before != now && before != "mixed" {
        (
            Status::Violated,
            format!("changed kind: {before} in the baseline, {now} in the window"),
        )
    } else {
        (Status::Pass, format!("{now}, as in the baseline"))
    };
    let v = (status == Status::Violated) as u8 as f64;
    eval(rule, status, Some(v), cur.present(), message)
}

/// Shannon entropy (nats) of the category shares, `other` as one category.
pub fn entropy_of(s: &FeatureSummary) -> Option<f64> {
    let n = s.categories.total();
    if n == 0 {
        return None;
    }
    let h = s
        .categories
        .counts
        .values()
        .chain(std::iter::once(&s.categories.other))
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n as f64;
            -p * p.ln()
        })
        .sum::<f64>();
    Some(h.max(0.0))
}

fn entropy(rule: &Rule, cur: &FeatureSummary, base: Option<&FeatureSummary>) -> Evaluation {
    let n = cur.categories.total();
    let b = match base {
        Some(b) if b.categories.total() >= rule.min_values => b,
        _ => return not_evaluated(rule, n, "too few category values in the baseline"),
    };
    if n < rule.min_values {
        return not_evaluated(rule, n, "too few category values in the window");
    }
    let (hc, hb) = (entropy_of(cur).unwrap_or(0.0), entropy_of(b).unwrap_or(0.0));
    if hb <= 0.0 {
        return not_evaluated(rule, n, "the baseline has a single category");
    }
    let ratio = hc / hb;
    judged(
        rule,
        ratio < rule.limit,
        ratio,
        n,
        format!(
            "entropy {hc:.3} nats against {hb:.3} in the baseline: {:.0} % (limit {:.0} %)",
            ratio * 100.0,
            rule.limit * 100.0
        ),
    )
}

fn coverage(rule: &Rule, cur: &FeatureSummary, base: Option<&FeatureSummary>) -> Evaluation {
    let n = cur.categories.total();
    let b = match base {
        Some(b) if b.categories.total() >= rule.min_values => b,
        _ => return not_evaluated(rule, n, "too few category values in the baseline"),
    };
    let bn = b.categories.total() as f64;
    let common: Vec<&String> = b
        .categories
        .counts
        .iter()
        .filter(|(_, &c)| c as f64 >= 0.01 * bn)
        .map(|(k, _)| k)
        .collect();
    if common.is_empty() {
        return not_evaluated(rule, n, "no baseline category has 1 % of its values");
    }
    let missing: Vec<&String> = common
        .iter()
        .copied()
        .filter(|k| cur.categories.counts.get(*k).copied().unwrap_or(0) == 0)
        .collect();
    let share = 1.0 - missing.len() as f64 / common.len() as f64;
    judged(
        rule,
        share < rule.limit,
        share,
        n,
        format!(
            "{} of the baseline's {} common categories seen{} (limit {:.0} %)",
            common.len() - missing.len(),
            common.len(),
            if missing.is_empty() {
                String::new()
            } else {
                format!(
                    "; absent: {}",
                    missing
                        .iter()
                        .take(5)
                        .map(|k| format!("{k:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            rule.limit * 100.0
        ),
    )
}

fn type_counts(counts: &[BucketCount], t: EventType) -> impl Iterator<Item = &BucketCount> {
    counts.iter().filter(move |c| c.event_type == t && c.n > 0)
}

fn freshness(rule: &Rule, inputs: &Inputs, out: &mut Vec<Evaluation>) {
    let end = inputs.window.1;
    for &t in &rule.event_types {
        let last = type_counts(&inputs.counts, t)
            .map(|c| c.bucket + inputs.bucket_secs)
            .max();
        let mut e = match last {
            None => not_evaluated(rule, 0, format!("no {} events in the lookback", t.as_str())),
            Some(last) => {
                let silence = (end - last.min(end)) as f64;
                judged(
                    rule,
                    silence > rule.limit,
                    silence,
                    0,
                    format!(
                        "no {} events for {:.1} h (limit {:.1} h)",
                        t.as_str(),
                        silence / 3600.0,
                        rule.limit / 3600.0
                    ),
                )
            }
        };
        e.feature = Some(t.as_str().to_owned());
        out.push(e);
    }
}

/// Two-sided Poisson p-value of `x` under the rate `lambda`.
pub fn poisson_two_sided(x: u64, lambda: f64) -> f64 {
    use statrs::distribution::{DiscreteCDF, Poisson};
    let Ok(d) = Poisson::new(lambda.max(1e-9)) else {
        return 1.0;
    };
    let tail = if (x as f64) < lambda {
        d.cdf(x)
    } else {
        d.sf(x.saturating_sub(1))
    };
    (2.0 * tail).min(1.0)
}

fn volume(rule: &Rule, inputs: &Inputs, out: &mut Vec<Evaluation>) {
    let (from, to) = inputs.window;
    for &t in &rule.event_types {
        let now: u64 = type_counts(&inputs.counts, t)
            .filter(|c| c.bucket >= from && c.bucket < to)
            .map(|c| c.n)
            .sum();
        let before: u64 = type_counts(&inputs.week_ago, t).map(|c| c.n).sum();
        let mut e = if before < rule.min_values {
            not_evaluated(
                rule,
                now,
                format!(
                    "{before} {} events a week before, fewer than {}",
                    t.as_str(),
                    rule.min_values
                ),
            )
        } else {
            let ratio = now as f64 / before as f64;
            let p = poisson_two_sided(now, before as f64);
            judged(
                rule,
                (ratio < rule.limit || ratio > 1.0 / rule.limit) && p < 0.001,
                ratio,
                now,
                format!(
                    "{now} {} events against {before} a week before: {:.0} % (Poisson p = {p:.2e}; bounds {:.0} %–{:.0} %)",
                    t.as_str(),
                    ratio * 100.0,
                    rule.limit * 100.0,
                    100.0 / rule.limit
                ),
            )
        };
        e.feature = Some(t.as_str().to_owned());
        out.push(e);
    }
}

/// Hellinger distance between two summaries of one feature (numeric: ten quantile bins of the
/// first; categorical: the union of categories); `None` when a side has no values.
pub fn hellinger(a: &FeatureSummary, b: &FeatureSummary) -> Option<f64> {
    use crate::stats::binning::{hellinger_shares, shares, BinningRule};
    if a.moments.n > 0 && b.moments.n > 0 {
        let binned = crate::drift::sketch::bin(a, b, BinningRule::Quantile(10)).ok()?;
        return Some(hellinger_shares(&binned.reference, &binned.current));
    }
    if a.categories.total() > 0 && b.categories.total() > 0 {
        let keys: BTreeSet<&String> = a
            .categories
            .counts
            .keys()
            .chain(b.categories.counts.keys())
            .collect();
        let counts = |s: &FeatureSummary| -> Vec<u64> {
            keys.iter()
                .map(|k| s.categories.counts.get(*k).copied().unwrap_or(0))
                .chain(std::iter::once(s.categories.other))
                .collect()
        };
        return Some(hellinger_shares(&shares(&counts(a)), &shares(&counts(b))));
    }
    None
}

fn representativeness(rule: &Rule, inputs: &Inputs) -> Evaluation {
    let name = rule.training.as_deref().unwrap_or_default();
    let Some(training) = inputs.training.get(name) else {
        return not_evaluated(
            rule,
            0,
            format!("the training dataset {name:?} is not uploaded"),
        );
    };
    let mut distances = Vec::new();
    let mut n = 0;
    for (key, cur) in &inputs.current {
        if !rule.covers(key.0, &key.1) || cur.present() < rule.min_values {
            continue;
        }
        if let Some(d) = training.get(key).and_then(|t| hellinger(t, cur)) {
            distances.push((d, &key.1));
            n = n.max(cur.present());
        }
    }
    let mut e = if distances.is_empty() {
        not_evaluated(
            rule,
            0,
            "no feature with values in both the training data and the window",
        )
    } else {
        let score = 1.0 - distances.iter().map(|d| d.0).sum::<f64>() / distances.len() as f64;
        distances.sort_by(|a, b| b.0.total_cmp(&a.0));
        judged(
            rule,
            score < rule.limit,
            score,
            n,
            format!(
                "representativeness {score:.3} of dataset {name:?} over {} features (limit {:.2}); least alike: {}",
                distances.len(),
                rule.limit,
                distances
                    .iter()
                    .take(3)
                    .map(|(d, f)| format!("{f} (H = {d:.2})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    };
    e.feature = Some(format!("dataset:{name}"));
    e
}

/// Mean input features with a value per interaction.
fn features_per_event(m: &SummaryMap) -> Option<f64> {
    let inputs: Vec<&FeatureSummary> = m
        .iter()
        .filter(|((c, _), _)| *c == SeriesClass::Input)
        .map(|(_, s)| s)
        .collect();
    let events = inputs.iter().map(|s| s.total()).max()?;
    (events > 0).then(|| inputs.iter().map(|s| s.present()).sum::<u64>() as f64 / events as f64)
}

fn verdict(
    rules: &[Rule],
    model: &str,
    evals: &[Evaluation],
    inputs: &Inputs,
    baseline: &str,
) -> Verdict {
    let mut tallies: Vec<RuleTally> = rules
        .iter()
        .filter(|r| r.applies_to(model))
        .map(|r| RuleTally {
            rule: r.name.clone(),
            check: r.check,
            severity: r.severity,
            evaluated: 0,
            violations: 0,
            not_evaluated: 0,
        })
        .collect();
    for e in evals {
        if let Some(t) = tallies.iter_mut().find(|t| t.rule == e.rule) {
            match e.status {
                Status::Pass => t.evaluated += 1,
                Status::Violated => {
                    t.evaluated += 1;
                    t.violations += 1
                }
                Status::NotEvaluated => t.not_evaluated += 1,
            }
        }
    }
    let mut violations: Vec<Evaluation> = evals
        .iter()
        .filter(|e| e.status == Status::Violated)
        .cloned()
        .collect();
    violations.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.rule.cmp(&b.rule))
            .then_with(|| a.feature.cmp(&b.feature))
    });
    let grade = violations
        .first()
        .map_or(Grade::Pass, |v| match v.severity {
            Severity::Fail => Grade::Fail,
            Severity::Warn => Grade::Warn,
        });
    let mut failed_rules: Vec<String> = Vec::new();
    for v in &violations {
        if !failed_rules.contains(&v.rule) {
            failed_rules.push(v.rule.clone());
        }
    }
    let total = violations.len();
    violations.truncate(MAX_LISTED);
    let interactions = inputs
        .counts
        .iter()
        .filter(|c| {
            c.event_type == EventType::Interaction
                && c.bucket >= inputs.window.0
                && c.bucket < inputs.window.1
        })
        .map(|c| c.n)
        .sum();
    Verdict {
        verdict: grade,
        failed_rules,
        rules: tallies,
        violations,
        violations_total: total,
        interactions,
        features_per_event: features_per_event(&inputs.current),
        features_per_event_baseline: features_per_event(&inputs.baseline),
        baseline: baseline.to_owned(),
    }
}

#[cfg(test)]
mod tests;
