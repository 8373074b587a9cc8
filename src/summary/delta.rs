//! Folding validated events into summaries: the in-memory state between two checkpoints.
//!
//! A [`Delta`] holds, per (model, version, class, bucket), one [`FeatureSummary`] per name, plus
//! event counts, evaluation and deploy records, data-funnel counts and per-day user activity.
//! The store merges a delta into what it holds (`Store::checkpoint`), so the delta only ever
//! covers the events since the last checkpoint: memory is bounded by the active series.

use super::FeatureSummary;
use crate::events::{Actual, Body, Event, EventType, FeedbackKind, Stage, Value};
use crate::stats::multivariate::CoMoments;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// What a summary describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SeriesClass {
    /// A model input (`features`).
    Input,
    /// A model output: `score`, `confidence`, `label`.
    Prediction,
    /// A feedback signal's values, by signal name; explicit and implicit apart.
    FeedbackExplicit,
    FeedbackImplicit,
    /// A coarse segment label (`segment`).
    Segment,
    /// Ground truth (`outcome` events), in the bucket of the prediction it is about; the names
    /// are in [`outcome`].
    Outcome,
    /// The consent flags interactions were sent with: name `training`, categories `true` and
    /// `false`, missing when the flag was not sent.
    Consent,
    /// Model inputs within one segment (`ingest.segment_keys`): names from
    /// [`segment_series_name`], `key=value␟feature`.
    SegmentInput,
    /// Per-segment counts of interactions and feedback (`ingest.segment_keys`): one categorical
    /// series per key and count ([`segment_count_name`], `key␟what`, `what` from
    /// [`segment_counts`]) whose categories are the segment labels, exact (never capped).
    SegmentCounts,
}

/// What a [`SeriesClass::SegmentCounts`] series counts per segment label.
pub mod segment_counts {
    /// Interactions.
    pub const INTERACTIONS: &str = "interactions";
    /// Explicit feedback events.
    pub const EXPLICIT: &str = "explicit";
    /// Explicit feedback events with a value above 0 (the positive share's numerator).
    pub const EXPLICIT_POSITIVE: &str = "explicit_positive";
    /// Implicit feedback events.
    pub const IMPLICIT: &str = "implicit";
}

/// The name of the [`SeriesClass::SegmentCounts`] series counting `what` per value of `key`.
pub fn segment_count_name(key: &str, what: &str) -> String {
    format!("{key}\u{1f}{what}")
}

/// `(key, what)` of a [`SeriesClass::SegmentCounts`] series name.
pub fn parse_segment_count_name(name: &str) -> Option<(&str, &str)> {
    name.rsplit_once('\u{1f}')
}

/// The series an `outcome` event feeds (class [`SeriesClass::Outcome`]), all numeric.
pub mod outcome {
    /// Scores of the predictions whose true class was positive (binary classifiers).
    pub const POSITIVE: &str = "score:positive";
    /// Scores of the predictions whose true class was negative.
    pub const NEGATIVE: &str = "score:negative";
    /// Prediction − actual (regressors).
    pub const ERROR: &str = "error";
    /// |prediction − actual| (regressors).
    pub const ABS_ERROR: &str = "abs_error";
    /// Seconds from the prediction to its outcome (every outcome).
    pub const DELAY: &str = "delay_secs";
}

impl SeriesClass {
    pub const ALL: [SeriesClass; 9] = [
        SeriesClass::Input,
        SeriesClass::Prediction,
        SeriesClass::FeedbackExplicit,
        SeriesClass::FeedbackImplicit,
        SeriesClass::Segment,
        SeriesClass::Outcome,
        SeriesClass::Consent,
        SeriesClass::SegmentInput,
        SeriesClass::SegmentCounts,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            SeriesClass::Input => "input",
            SeriesClass::Prediction => "prediction",
            SeriesClass::FeedbackExplicit => "feedback_explicit",
            SeriesClass::FeedbackImplicit => "feedback_implicit",
            SeriesClass::Segment => "segment",
            SeriesClass::Outcome => "outcome",
            SeriesClass::Consent => "consent",
            SeriesClass::SegmentInput => "segment_input",
            SeriesClass::SegmentCounts => "segment_counts",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
    /// Where a feedback signal's values go.
    pub fn feedback(kind: FeedbackKind) -> Self {
        match kind {
            FeedbackKind::Explicit => SeriesClass::FeedbackExplicit,
            FeedbackKind::Implicit => SeriesClass::FeedbackImplicit,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountRec {
    pub n: u64,
    pub first_us: i64,
    pub last_us: i64,
}

impl CountRec {
    pub fn merge(&mut self, o: &CountRec) {
        self.n += o.n;
        self.first_us = self.first_us.min(o.first_us);
        self.last_us = self.last_us.max(o.last_us);
    }
}

/// What one model version accumulated since the last checkpoint. Keys are small `Copy` tuples,
/// so folding an event allocates nothing once its series exist.
#[derive(Debug, Clone, Default)]
pub struct VersionDelta {
    /// (event type, bucket start) → count and first/last time.
    pub counts: HashMap<(EventType, i64), CountRec>,
    /// (class, bucket start) → name → summary.
    pub groups: HashMap<(SeriesClass, i64), NameMap>,
    /// (stage, reason, day start) → items.
    pub funnel: HashMap<(Stage, String, i64), u64>,
    /// (bucket start, feature names) → co-moments of those numeric inputs (multivariate drift).
    pub joint: HashMap<(i64, Vec<String>), CoMoments>,
}

/// The value label of a segment value that is not tracked (past `ingest.segment_values`).
pub const OTHER_SEGMENT: &str = "(other)";

/// The series name of `feature` within the segment `key=value`.
pub fn segment_series_name(key: &str, value: &str, feature: &str) -> String {
    format!("{key}={value}\u{1f}{feature}")
}

/// `(key, value, feature)` of a [`SeriesClass::SegmentInput`] series name.
pub fn parse_segment_series_name(name: &str) -> Option<(&str, &str, &str)> {
    let (segment, feature) = name.split_once('\u{1f}')?;
    let (key, value) = segment.split_once('=')?;
    Some((key, value, feature))
}

/// Which segments get summaries of their own: the configured keys, at most `max_values` values
/// per model and key (the rest as [`OTHER_SEGMENT`]), the first `max_features` inputs of each
/// interaction in name order. The tracked values are shared by every batch a process folds and
/// kept for its lifetime, so memory and the number of series are bounded per process; they are
/// seeded at start with each key's most frequent values of the last week
/// ([`SegmentPlan::seed`]), and values seen first fill what is left.
#[derive(Debug, Default)]
pub struct SegmentPlan {
    pub keys: Vec<String>,
    pub max_values: usize,
    pub max_features: usize,
    tracked: std::sync::Mutex<HashMap<(String, String), Vec<String>>>,
}

impl SegmentPlan {
    pub fn new(keys: Vec<String>, max_values: usize, max_features: usize) -> Self {
        Self {
            keys,
            max_values,
            max_features,
            tracked: Default::default(),
        }
    }

    /// Track `values` (most frequent first) for (model, key), up to the cap.
    pub fn seed(&self, model: &str, key: &str, values: &[String]) {
        let mut t = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
        let list = t.entry((model.to_owned(), key.to_owned())).or_default();
        for v in values {
            if list.len() < self.max_values && !list.contains(v) {
                list.push(v.clone());
            }
        }
    }

    /// The label `value` is summarised under: itself when tracked (or when there is room to
    /// track it), else [`OTHER_SEGMENT`].
    fn label(&self, model: &str, key: &str, value: &str) -> String {
        let mut t = self.tracked.lock().unwrap_or_else(|p| p.into_inner());
        let list = t.entry((model.to_owned(), key.to_owned())).or_default();
        if list.iter().any(|v| v == value) {
            return value.to_owned();
        }
        if list.len() < self.max_values {
            list.push(value.to_owned());
            return value.to_owned();
        }
        OTHER_SEGMENT.to_owned()
    }
}

/// The activity key under which a model's training-consent withdrawals are kept: (day, user)
/// of every event sent with `consent.training = false`, stored, erased and expired with the
/// activity itself. Model ids cannot hold the separator (control characters are rejected), so
/// the key never names a model.
pub fn withdrawal_key(model: &str) -> String {
    format!("{model}\u{1f}consent:training=false")
}

/// The name of the training-consent series (class [`SeriesClass::Consent`]).
pub const CONSENT_TRAINING: &str = "training";

/// Numeric inputs summarised jointly by default (`ingest.joint_features`).
pub const DEFAULT_JOINT_FEATURES: usize = 8;

#[derive(Debug, Clone)]
pub struct Delta {
    pub bucket_secs: i64,
    pub sketch_k: u16,
    pub category_cap: usize,
    /// Numeric inputs per interaction summarised jointly: the first this many, in name order,
    /// whose value is a number or missing (0: none). See [`Delta::with_joint_features`].
    pub joint_features: usize,
    /// model → version → what accumulated.
    pub models: HashMap<String, HashMap<String, VersionDelta>>,
    /// Evaluations and deploys, kept as small records (the validated events themselves).
    pub records: Vec<Event>,
    /// model → (UTC day number, user key): who was active when, for retention; under
    /// [`withdrawal_key`], who withdrew training consent when.
    pub activity: HashMap<String, HashSet<(i64, u64)>>,
    /// Category values that went to "other" because of the cap, in this delta.
    pub overflowed: u64,
    /// Per-segment input summaries, when segment keys are configured.
    pub segments: Option<std::sync::Arc<SegmentPlan>>,
}

impl Delta {
    pub fn new(bucket_secs: i64, sketch_k: u16, category_cap: usize) -> Self {
        Self {
            bucket_secs,
            sketch_k,
            category_cap,
            joint_features: DEFAULT_JOINT_FEATURES,
            models: HashMap::default(),
            records: Vec::new(),
            activity: HashMap::default(),
            overflowed: 0,
            segments: None,
        }
    }

    /// Summarise inputs per segment as `plan` says (none: no per-segment summaries).
    pub fn with_segments(mut self, plan: Option<std::sync::Arc<SegmentPlan>>) -> Self {
        self.segments = plan.filter(|p| !p.keys.is_empty());
        self
    }

    /// Summarise up to `n` numeric inputs per interaction jointly (co-moments for multivariate
    /// drift); 0 turns it off. Fewer than two such inputs in an event: nothing joint.
    pub fn with_joint_features(mut self, n: usize) -> Self {
        self.joint_features = n;
        self
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty() && self.records.is_empty()
    }

    pub fn bucket_of(&self, secs: i64) -> i64 {
        secs - secs.rem_euclid(self.bucket_secs)
    }

    fn version(&mut self, model: &str, version: &str) -> &mut VersionDelta {
        let versions = get_or_insert(&mut self.models, model);
        get_or_insert(versions, version)
    }

    /// Fold one validated event.
    pub fn fold(&mut self, e: &Event) {
        self.fold_batch(std::slice::from_ref(e));
    }

    /// Fold a batch of validated events, column by column: the values of each series are first
    /// gathered in event order (a batch's events usually share one feature list, so each event
    /// costs one comparison of names rather than one map lookup per feature), then added to their
    /// summary in one call each. The end state equals folding the events one by one (the moments
    /// to rounding).
    pub fn fold_batch(&mut self, events: &[Event]) {
        let mut cols = Columns::default();
        for e in events {
            self.gather(&mut cols, e);
        }
        self.apply(cols);
    }

    fn gather<'e>(&mut self, cols: &mut Columns<'e>, e: &'e Event) {
        let secs = e.occurred_at_secs();
        let bucket = self.bucket_of(secs);
        let g = cols.group(&e.model.id, &e.model.version, bucket);
        if let Some(u) = e.user_key {
            cols.groups[g].activity.push((secs.div_euclid(86_400), u));
            if e.consent_training == Some(false) {
                cols.groups[g]
                    .withdrawals
                    .push((secs.div_euclid(86_400), u));
            }
        }
        let rec = CountRec {
            n: 1,
            first_us: e.occurred_at_us,
            last_us: e.occurred_at_us,
        };
        match &mut cols.groups[g].counts[e.event_type() as usize] {
            Some(c) => c.merge(&rec),
            slot => *slot = Some(rec),
        }
        match &e.body {
            Body::Interaction {
                features,
                score,
                confidence,
                label,
                segment,
            } => {
                cols.schema_for(g, features);
                if self.joint_features >= 2 {
                    cols.joint_row(g, features, self.joint_features);
                }
                for (i, (_, v)) in features.iter().enumerate() {
                    let c = &mut cols.cols[cols.schema[i]];
                    match v {
                        Value::Missing => c.missing += 1,
                        Value::Number(x) => c.numbers.push(*x),
                        Value::Bool(b) => c.cats.push(if *b { "true" } else { "false" }),
                        Value::Category(s) => c.cats.push(s),
                    }
                }
                let [si, ci, li, ti] = cols.prediction(g);
                match e.consent_training {
                    Some(true) => cols.cols[ti].cats.push("true"),
                    Some(false) => cols.cols[ti].cats.push("false"),
                    None => cols.cols[ti].missing += 1,
                }
                for (i, v) in [(si, score), (ci, confidence)] {
                    match v {
                        Some(x) => cols.cols[i].numbers.push(*x),
                        None => cols.cols[i].missing += 1,
                    }
                }
                match label {
                    Some(l) => cols.cols[li].cats.push(l),
                    None => cols.cols[li].missing += 1,
                }
                for (key, v) in segment {
                    let i = cols.column(g, SeriesClass::Segment, key);
                    cols.cols[i].cats.push(v);
                }
                if let Some(plan) = &self.segments {
                    for (key, v) in segment.iter().filter(|(k, _)| plan.keys.contains(k)) {
                        let label = plan.label(&e.model.id, key, v);
                        for (name, value) in features.iter().take(plan.max_features) {
                            cols.segs
                                .push((g, segment_series_name(key, &label, name), value));
                        }
                        let name = segment_count_name(key, segment_counts::INTERACTIONS);
                        cols.seg_counts.push((g, name, label));
                    }
                }
            }
            Body::Feedback {
                kind,
                signal,
                value,
                segment,
                ..
            } => {
                let i = cols.column(g, SeriesClass::feedback(*kind), signal);
                cols.cols[i].numbers.push(*value);
                if let Some(plan) = &self.segments {
                    for (key, v) in segment.iter().filter(|(k, _)| plan.keys.contains(k)) {
                        let label = plan.label(&e.model.id, key, v);
                        let counted: &[&str] = match kind {
                            FeedbackKind::Implicit => &[segment_counts::IMPLICIT],
                            FeedbackKind::Explicit if *value > 0.0 => {
                                &[segment_counts::EXPLICIT, segment_counts::EXPLICIT_POSITIVE]
                            }
                            FeedbackKind::Explicit => &[segment_counts::EXPLICIT],
                        };
                        for what in counted {
                            let name = segment_count_name(key, what);
                            cols.seg_counts.push((g, name, label.clone()));
                        }
                    }
                }
            }
            Body::ModelEval { .. } | Body::Deploy { .. } => {
                // Records describe a model, not a user: no pseudonym is kept with them.
                self.records.push(Event {
                    user_key: None,
                    ..e.clone()
                })
            }
            Body::DataLifecycle {
                stage,
                count,
                reason,
            } => {
                let day = secs - secs.rem_euclid(86_400);
                let reason = if *stage == Stage::UsedInTraining && e.consent_training == Some(false)
                {
                    crate::events::NO_TRAINING_CONSENT.to_owned()
                } else {
                    reason.clone().unwrap_or_default()
                };
                let vd = self.version(&e.model.id, &e.model.version);
                *vd.funnel.entry((*stage, reason, day)).or_insert(0) += count;
            }
            Body::Outcome {
                predicted_at_us,
                prediction,
                actual,
                ..
            } => {
                // Summarised with its prediction's window, so late labels update that window.
                let bucket = self.bucket_of(predicted_at_us.div_euclid(1_000_000));
                let pg = cols.group(&e.model.id, &e.model.version, bucket);
                let delay = (e.occurred_at_us - predicted_at_us) as f64 / 1e6;
                let d = cols.column(pg, SeriesClass::Outcome, outcome::DELAY);
                cols.cols[d].numbers.push(delay);
                match actual {
                    Actual::Binary(positive) => {
                        let name = if *positive {
                            outcome::POSITIVE
                        } else {
                            outcome::NEGATIVE
                        };
                        let i = cols.column(pg, SeriesClass::Outcome, name);
                        cols.cols[i].numbers.push(*prediction);
                    }
                    Actual::Value(y) => {
                        let err = prediction - y;
                        let i = cols.column(pg, SeriesClass::Outcome, outcome::ERROR);
                        cols.cols[i].numbers.push(err);
                        let i = cols.column(pg, SeriesClass::Outcome, outcome::ABS_ERROR);
                        cols.cols[i].numbers.push(err.abs());
                    }
                }
            }
        }
    }

    fn apply(&mut self, cols: Columns<'_>) {
        let (k, cap) = (self.sketch_k, self.category_cap);
        let mut overflowed = 0u64;
        for j in &cols.joints {
            let gk = &cols.groups[j.group];
            let bucket = gk.bucket;
            let vd = self.version(gk.model, gk.version);
            let key = (bucket, j.names.iter().map(|n| (*n).to_owned()).collect());
            vd.joint
                .entry(key)
                .or_insert_with(|| CoMoments::new(j.names.len()))
                .add_rows(&j.values);
        }
        let mut by_group: Vec<Vec<&Column>> = vec![Vec::new(); cols.groups.len()];
        for c in &cols.cols {
            by_group[c.group].push(c);
        }
        for (gk, columns) in cols.groups.iter().zip(by_group) {
            if !gk.activity.is_empty() {
                get_or_insert(&mut self.activity, gk.model).extend(gk.activity.iter().copied());
            }
            if !gk.withdrawals.is_empty() {
                self.activity
                    .entry(withdrawal_key(gk.model))
                    .or_default()
                    .extend(gk.withdrawals.iter().copied());
            }
            let vd = self.version(gk.model, gk.version);
            for (t, c) in EventType::ALL.iter().zip(&gk.counts) {
                if let Some(c) = c {
                    vd.counts
                        .entry((*t, gk.bucket))
                        .and_modify(|x| x.merge(c))
                        .or_insert(*c);
                }
            }
            for c in columns {
                let mut g = Group::of(&mut vd.groups, c.class, gk.bucket, k, cap);
                let s = g.get(c.name);
                s.missing += c.missing;
                if !c.numbers.is_empty() {
                    s.add_numbers(&c.numbers);
                }
                if !c.cats.is_empty() {
                    overflowed += s.add_categories(&c.cats);
                }
            }
        }
        for (g, name, value) in &cols.segs {
            let gk = &cols.groups[*g];
            let bucket = gk.bucket;
            let vd = self.version(gk.model, gk.version);
            let mut grp = Group::of(&mut vd.groups, SeriesClass::SegmentInput, bucket, k, cap);
            let s = grp.get(name);
            match value {
                Value::Missing => s.add_missing(),
                Value::Number(x) => s.add_number(*x),
                Value::Bool(b) => {
                    overflowed += u64::from(!s.add_bool(*b));
                }
                Value::Category(c) => {
                    overflowed += u64::from(!s.add_category(c));
                }
            }
        }
        // Exact counts: a plan has at most `max_values` labels per key, plus `(other)`; room for
        // four times as many, for the summaries of replicas whose tracked values differ.
        let count_cap = self.segments.as_ref().map_or(1, |p| 4 * p.max_values + 1);
        for (g, name, label) in &cols.seg_counts {
            let gk = &cols.groups[*g];
            let bucket = gk.bucket;
            let vd = self.version(gk.model, gk.version);
            let class = SeriesClass::SegmentCounts;
            let mut grp = Group::of(&mut vd.groups, class, bucket, k, count_cap);
            grp.get(name).add_category(label);
        }
        self.overflowed += overflowed;
    }
    /// Events folded, per (type, model).
    pub fn event_counts(&self) -> Vec<(EventType, &str, u64)> {
        let mut out = Vec::new();
        for (model, versions) in &self.models {
            for t in EventType::ALL {
                let n: u64 = versions
                    .values()
                    .flat_map(|vd| vd.counts.iter())
                    .filter(|((et, _), _)| *et == t)
                    .map(|(_, c)| c.n)
                    .sum();
                if n > 0 {
                    out.push((t, model.as_str(), n));
                }
            }
        }
        out
    }

    /// Merge another delta into this one (used to put back a delta whose checkpoint failed).
    pub fn merge(&mut self, o: &Delta) {
        let (k, cap) = (self.sketch_k, self.category_cap);
        for (model, versions) in &o.models {
            for (version, ovd) in versions {
                let vd = self.version(model, version);
                for (key, c) in &ovd.counts {
                    vd.counts
                        .entry(*key)
                        .and_modify(|x| x.merge(c))
                        .or_insert(*c);
                }
                for (key, m) in &ovd.groups {
                    let mut g = Group {
                        k,
                        cap,
                        map: vd.groups.entry(*key).or_default(),
                    };
                    for (name, s) in m {
                        g.get(name).merge(s);
                    }
                }
                for (key, n) in &ovd.funnel {
                    *vd.funnel.entry(key.clone()).or_insert(0) += n;
                }
                for (key, m) in &ovd.joint {
                    match vd.joint.get_mut(key) {
                        Some(j) => j.merge(m),
                        None => {
                            vd.joint.insert(key.clone(), m.clone());
                        }
                    }
                }
            }
        }
        self.records.extend(o.records.iter().cloned());
        for (model, days) in &o.activity {
            get_or_insert(&mut self.activity, model).extend(days.iter().copied());
        }
        self.overflowed += o.overflowed;
    }
}

/// `map[key]`, inserting a default first; looks up by `&str` so that no key is allocated
/// when the entry exists.
fn get_or_insert<'a, V: Default>(map: &'a mut HashMap<String, V>, key: &str) -> &'a mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    match map.get_mut(key) {
        Some(v) => v,
        None => unreachable!("inserted above"),
    }
}

/// The values of one series gathered from a batch, in event order.
struct Column<'e> {
    group: usize,
    class: SeriesClass,
    name: &'e str,
    missing: u64,
    numbers: Vec<f64>,
    cats: Vec<&'e str>,
}

/// The rows of one set of numeric inputs in one group, gathered from a batch (`NaN`: missing).
struct JointColumn<'e> {
    group: usize,
    names: Vec<&'e str>,
    values: Vec<f64>,
}

/// A (model, version, bucket) met in a batch, with its event counts and active users.
struct GroupKey<'e> {
    model: &'e str,
    version: &'e str,
    bucket: i64,
    counts: [Option<CountRec>; EventType::ALL.len()],
    activity: Vec<(i64, u64)>,
    /// (day, user) of events sent with `consent.training = false`.
    withdrawals: Vec<(i64, u64)>,
    /// Columns of `score`, `confidence` and `label`, once made.
    prediction: Option<[usize; 4]>,
}

/// A batch gathered column by column (see [`Delta::fold_batch`]).
#[derive(Default)]
struct Columns<'e> {
    groups: Vec<GroupKey<'e>>,
    last_group: usize,
    cols: Vec<Column<'e>>,
    index: HashMap<(usize, SeriesClass, &'e str), usize>,
    /// Column of each feature of the last interaction seen, with its group and names.
    schema: Vec<usize>,
    schema_of: Option<(usize, &'e [(crate::events::Name, Value)])>,
    /// Changes whenever `schema` is recomputed.
    schema_gen: u64,
    joints: Vec<JointColumn<'e>>,
    /// Positions (in the feature list) of the last event's joint inputs, scratch for the next.
    joint_pos: Vec<usize>,
    scratch_pos: Vec<usize>,
    /// (schema_gen, joint column) the positions in `joint_pos` belong to.
    joint_of: Option<(u64, usize)>,
    /// (group, segment series name, value) of the per-segment inputs.
    segs: Vec<(usize, String, &'e Value)>,
    /// (group, segment count series name, segment label) of the per-segment counts.
    seg_counts: Vec<(usize, String, String)>,
}

impl<'e> Columns<'e> {
    fn group(&mut self, model: &'e str, version: &'e str, bucket: i64) -> usize {
        let hit = |g: &GroupKey| g.bucket == bucket && g.model == model && g.version == version;
        if self.groups.get(self.last_group).is_some_and(hit) {
            return self.last_group;
        }
        let i = match self.groups.iter().position(hit) {
            Some(i) => i,
            None => {
                self.groups.push(GroupKey {
                    model,
                    version,
                    bucket,
                    counts: [None; EventType::ALL.len()],
                    activity: Vec::new(),
                    withdrawals: Vec::new(),
                    prediction: None,
                });
                self.groups.len() - 1
            }
        };
        self.last_group = i;
        i
    }

    fn column(&mut self, group: usize, class: SeriesClass, name: &'e str) -> usize {
        let next = self.cols.len();
        let i = *self.index.entry((group, class, name)).or_insert(next);
        if i == next {
            self.cols.push(Column {
                group,
                class,
                name,
                missing: 0,
                numbers: Vec::new(),
                cats: Vec::new(),
            });
        }
        i
    }

    /// The columns every interaction feeds: score, confidence, label and the training-consent
    /// flag.
    fn prediction(&mut self, group: usize) -> [usize; 4] {
        if let Some(p) = self.groups[group].prediction {
            return p;
        }
        let [s, c, l] = ["score", "confidence", "label"]
            .map(|n| self.column(group, SeriesClass::Prediction, n));
        let p = [
            s,
            c,
            l,
            self.column(group, SeriesClass::Consent, CONSENT_TRAINING),
        ];
        self.groups[group].prediction = Some(p);
        p
    }

    /// Point `schema` at the columns of `features` (sorted, distinct names).
    fn schema_for(&mut self, group: usize, features: &'e [(crate::events::Name, Value)]) {
        if let Some((g, names)) = self.schema_of {
            let same = g == group
                && names.len() == features.len()
                && names.iter().zip(features).all(|(a, b)| a.0 == b.0);
            if same {
                self.schema_of = Some((group, features));
                return;
            }
        }
        self.schema.clear();
        self.schema_gen += 1;
        for (name, _) in features {
            let i = self.column(group, SeriesClass::Input, name);
            self.schema.push(i);
        }
        self.schema_of = Some((group, features));
    }
}

impl<'e> Columns<'e> {
    /// Gather the joint row of an interaction: its first `max` features whose value is a
    /// number or missing. Call after [`schema_for`](Self::schema_for) with the same group.
    fn joint_row(
        &mut self,
        group: usize,
        features: &'e [(crate::events::Name, Value)],
        max: usize,
    ) {
        self.scratch_pos.clear();
        for (i, (_, v)) in features.iter().enumerate() {
            if matches!(v, Value::Number(_) | Value::Missing) {
                self.scratch_pos.push(i);
                if self.scratch_pos.len() == max {
                    break;
                }
            }
        }
        if self.scratch_pos.len() < 2 {
            return;
        }
        let j = match self.joint_of {
            Some((gen, j)) if gen == self.schema_gen && self.scratch_pos == self.joint_pos => j,
            _ => {
                let names: Vec<&'e str> = self
                    .scratch_pos
                    .iter()
                    .map(|&i| features[i].0.as_str())
                    .collect();
                let found = self
                    .joints
                    .iter()
                    .position(|c| c.group == group && c.names == names);
                let j = found.unwrap_or_else(|| {
                    self.joints.push(JointColumn {
                        group,
                        names,
                        values: Vec::new(),
                    });
                    self.joints.len() - 1
                });
                std::mem::swap(&mut self.joint_pos, &mut self.scratch_pos);
                self.joint_of = Some((self.schema_gen, j));
                j
            }
        };
        let values = &mut self.joints[j].values;
        for &i in &self.joint_pos {
            values.push(match features[i].1 {
                Value::Number(x) => x,
                _ => f64::NAN,
            });
        }
    }
}

/// Name → summary, looked up by `&str` in one probe (hashbrown's `entry_ref`).
pub type NameMap = hashbrown::HashMap<String, FeatureSummary, rustc_hash::FxBuildHasher>;

/// The summaries of one group, with the parameters new summaries are made with.
struct Group<'a> {
    k: u16,
    cap: usize,
    map: &'a mut NameMap,
}

impl<'a> Group<'a> {
    fn of(
        groups: &'a mut HashMap<(SeriesClass, i64), NameMap>,
        class: SeriesClass,
        bucket: i64,
        k: u16,
        cap: usize,
    ) -> Self {
        Group {
            k,
            cap,
            map: groups.entry((class, bucket)).or_default(),
        }
    }

    fn get(&mut self, name: &str) -> &mut FeatureSummary {
        let (k, cap) = (self.k, self.cap);
        self.map
            .entry_ref(name)
            .or_insert_with(|| FeatureSummary::new(k, cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::ModelRef;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn value(kind: u8, x: f64, c: u8) -> Value {
        match kind % 5 {
            0 => Value::Missing,
            1 => Value::Bool(c.is_multiple_of(2)),
            2 => Value::Category(format!("v{c}").into()),
            3 if c == 0 => Value::Number(f64::NAN),
            _ => Value::Number(x),
        }
    }

    /// Interactions with varying feature lists, feedback and funnel records over two versions
    /// and three buckets.
    /// (version, bucket, [(feature, value kind, number, category)]) per event.
    type Spec = (u8, u8, Vec<(u8, u8, f64, u8)>);

    fn events(spec: &[Spec]) -> Vec<Event> {
        spec.iter()
            .enumerate()
            .map(|(i, (version, bucket, feats))| {
                let body = match feats.len() % 9 {
                    7 | 8 => Body::Outcome {
                        interaction_id: format!("i{i}"),
                        // One to three buckets before the outcome's own (so in another bucket).
                        predicted_at_us: (i64::from(*bucket % 3) * 3600 + i as i64
                            - 3600 * (1 + i as i64 % 3))
                            * 1_000_000,
                        prediction: (i % 10) as f64 / 10.0,
                        actual: if feats.len() % 9 == 7 {
                            Actual::Binary(i % 3 == 0)
                        } else {
                            Actual::Value(i as f64 / 3.0)
                        },
                    },
                    5 => Body::Feedback {
                        interaction_id: None,
                        kind: if i % 2 == 0 {
                            FeedbackKind::Explicit
                        } else {
                            FeedbackKind::Implicit
                        },
                        signal: format!("s{}", i % 3),
                        value: feats.first().map_or(1.0, |f| f.2),
                        segment: if i % 3 == 0 {
                            vec![("country".into(), format!("c{}", i % 4))]
                        } else {
                            Vec::new()
                        },
                    },
                    6 => Body::DataLifecycle {
                        stage: Stage::UsedInTraining,
                        count: 3,
                        reason: None,
                    },
                    _ => {
                        let mut features: Vec<(crate::events::Name, Value)> = feats
                            .iter()
                            .map(|(name, kind, x, c)| {
                                (format!("f{name}").into(), value(*kind, *x, *c))
                            })
                            .collect();
                        features.sort_by(|a, b| a.0.cmp(&b.0));
                        features.dedup_by(|a, b| a.0 == b.0);
                        Body::Interaction {
                            features,
                            score: (i % 4 != 0).then_some(i as f64 / 7.0),
                            confidence: None,
                            label: Some(format!("l{}", i % 5)),
                            segment: if i % 3 == 0 {
                                vec![("country".into(), format!("c{}", i % 4))]
                            } else {
                                Vec::new()
                            },
                        }
                    }
                };
                Event {
                    event_id: format!("e{i}"),
                    occurred_at_us: (i64::from(*bucket % 3) * 3600 + i as i64) * 1_000_000,
                    model: ModelRef {
                        id: "m".into(),
                        version: format!("v{}", version % 2),
                    },
                    user_key: Some(i as u64 % 11),
                    consent_training: Some(i % 5 != 0),
                    body,
                }
            })
            .collect()
    }

    fn assert_same(a: &Delta, b: &Delta) -> Result<(), TestCaseError> {
        prop_assert_eq!(&a.activity, &b.activity);
        prop_assert_eq!(a.overflowed, b.overflowed);
        prop_assert_eq!(a.models.len(), b.models.len());
        for (model, versions) in &a.models {
            for (version, va) in versions {
                let vb = &b.models[model][version];
                prop_assert_eq!(&va.counts, &vb.counts);
                prop_assert_eq!(&va.funnel, &vb.funnel);
                let mut ka: Vec<_> = va.joint.keys().collect();
                let mut kb: Vec<_> = vb.joint.keys().collect();
                ka.sort();
                kb.sort();
                prop_assert_eq!(ka, kb);
                for (key, ja) in &va.joint {
                    same_joint(ja, &vb.joint[key])?;
                }
                let names = |v: &VersionDelta| {
                    let mut n: Vec<_> = v
                        .groups
                        .iter()
                        .flat_map(|(k, m)| m.keys().map(move |n| (*k, n.clone())))
                        .collect();
                    n.sort();
                    n
                };
                prop_assert_eq!(names(va), names(vb));
                for (key, m) in &va.groups {
                    for (name, sa) in m {
                        let sb = &vb.groups[key][name];
                        prop_assert_eq!(sa.missing, sb.missing);
                        prop_assert_eq!(sa.non_finite, sb.non_finite);
                        prop_assert_eq!(sa.moments.n, sb.moments.n);
                        prop_assert_eq!(sa.min.to_bits(), sb.min.to_bits());
                        prop_assert_eq!(sa.max.to_bits(), sb.max.to_bits());
                        prop_assert_eq!(&sa.sketch, &sb.sketch, "sketch of {}", name);
                        prop_assert_eq!(&sa.categories, &sb.categories, "categories of {}", name);
                        prop_assert_eq!(sa.overflowed, sb.overflowed);
                        let close =
                            |x: f64, y: f64| (x - y).abs() <= 1e-9 * (1.0 + x.abs().max(y.abs()));
                        prop_assert!(close(sa.moments.mean, sb.moments.mean));
                        prop_assert!(close(sa.moments.m2, sb.moments.m2));
                    }
                }
            }
        }
        Ok(())
    }

    fn same_joint(a: &CoMoments, b: &CoMoments) -> Result<(), TestCaseError> {
        let close = |x: f64, y: f64| (x - y).abs() <= 1e-9 * (1.0 + x.abs().max(y.abs()));
        prop_assert_eq!((a.n, a.incomplete), (b.n, b.incomplete));
        for (x, y) in a.mean.iter().zip(&b.mean) {
            prop_assert!(close(*x, *y), "mean {} vs {}", x, y);
        }
        for (x, y) in a.scatter.iter().zip(&b.scatter) {
            prop_assert!(close(*x, *y), "scatter {} vs {}", x, y);
        }
        Ok(())
    }

    type JointKey = (String, i64, Vec<String>);

    /// The joint co-moments the events should give, row by row with `CoMoments::update`.
    fn joint_reference(events: &[Event], max: usize) -> BTreeMap<JointKey, CoMoments> {
        let mut out: BTreeMap<JointKey, CoMoments> = BTreeMap::new();
        for e in events {
            let Body::Interaction { features, .. } = &e.body else {
                continue;
            };
            let picked: Vec<&(crate::events::Name, Value)> = features
                .iter()
                .filter(|(_, v)| matches!(v, Value::Number(_) | Value::Missing))
                .take(max)
                .collect();
            if picked.len() < 2 {
                continue;
            }
            let bucket = e.occurred_at_secs() - e.occurred_at_secs().rem_euclid(3600);
            let names = picked.iter().map(|(n, _)| n.to_string()).collect();
            let row: Vec<Option<f64>> = picked
                .iter()
                .map(|(_, v)| match v {
                    Value::Number(x) => Some(*x),
                    _ => None,
                })
                .collect();
            out.entry((e.model.version.clone(), bucket, names))
                .or_insert_with(|| CoMoments::new(row.len()))
                .update(&row);
        }
        out
    }

    type SeriesKey = (String, SeriesClass, i64, String);

    /// The summaries the events should give, built value by value with the per-value methods
    /// (an oracle independent of the column-wise fold).
    fn reference(events: &[Event], k: u16, cap: usize) -> BTreeMap<SeriesKey, FeatureSummary> {
        let mut out: BTreeMap<SeriesKey, FeatureSummary> = BTreeMap::new();
        for e in events {
            let bucket = e.occurred_at_secs() - e.occurred_at_secs().rem_euclid(3600);
            let mut add = |class, name: &str, v: Value| {
                let s = out
                    .entry((e.model.version.clone(), class, bucket, name.to_owned()))
                    .or_insert_with(|| FeatureSummary::new(k, cap));
                match v {
                    Value::Missing => s.add_missing(),
                    Value::Number(x) => s.add_number(x),
                    Value::Bool(b) => {
                        s.add_bool(b);
                    }
                    Value::Category(c) => {
                        s.add_category(&c);
                    }
                }
            };
            match &e.body {
                Body::Interaction {
                    features,
                    score,
                    confidence,
                    label,
                    segment,
                } => {
                    for (name, v) in features {
                        add(SeriesClass::Input, name, v.clone());
                    }
                    let num = |x: &Option<f64>| x.map_or(Value::Missing, Value::Number);
                    add(SeriesClass::Prediction, "score", num(score));
                    add(SeriesClass::Prediction, "confidence", num(confidence));
                    let l = label
                        .clone()
                        .map_or(Value::Missing, |l| Value::Category(l.into()));
                    add(SeriesClass::Prediction, "label", l);
                    let consent = e
                        .consent_training
                        .map_or(Value::Missing, |t| Value::Category(t.to_string().into()));
                    add(SeriesClass::Consent, CONSENT_TRAINING, consent);
                    for (key, v) in segment {
                        add(
                            SeriesClass::Segment,
                            key,
                            Value::Category(v.as_str().into()),
                        );
                    }
                }
                Body::Feedback {
                    kind,
                    signal,
                    value,
                    ..
                } => {
                    add(SeriesClass::feedback(*kind), signal, Value::Number(*value));
                }
                Body::Outcome {
                    predicted_at_us,
                    prediction,
                    actual,
                    ..
                } => {
                    let p = predicted_at_us.div_euclid(1_000_000);
                    let pbucket = p - p.rem_euclid(3600);
                    let mut put = |name: &str, x: f64| {
                        out.entry((
                            e.model.version.clone(),
                            SeriesClass::Outcome,
                            pbucket,
                            name.to_owned(),
                        ))
                        .or_insert_with(|| FeatureSummary::new(k, cap))
                        .add_number(x)
                    };
                    put(
                        outcome::DELAY,
                        (e.occurred_at_us - predicted_at_us) as f64 / 1e6,
                    );
                    match actual {
                        Actual::Binary(true) => put(outcome::POSITIVE, *prediction),
                        Actual::Binary(false) => put(outcome::NEGATIVE, *prediction),
                        Actual::Value(y) => {
                            put(outcome::ERROR, prediction - y);
                            put(outcome::ABS_ERROR, (prediction - y).abs());
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }

    fn series(d: &Delta) -> BTreeMap<SeriesKey, &FeatureSummary> {
        let mut out = BTreeMap::new();
        for versions in d.models.values() {
            for (version, vd) in versions {
                for ((class, bucket), m) in &vd.groups {
                    for (name, s) in m {
                        out.insert((version.clone(), *class, *bucket, name.clone()), s);
                    }
                }
            }
        }
        out
    }

    /// An event of model `m`, version `v`, at one second past the epoch, with no user.
    fn event_of_m(event_id: String, body: Body) -> Event {
        Event {
            event_id,
            occurred_at_us: 1_000_000,
            model: ModelRef {
                id: "m".into(),
                version: "v".into(),
            },
            user_key: None,
            consent_training: None,
            body,
        }
    }

    #[test]
    fn segment_summaries_are_bounded_by_the_plan() {
        let plan = std::sync::Arc::new(SegmentPlan::new(vec!["country".into()], 2, 1));
        let mut d = Delta::new(3600, 16, 4).with_segments(Some(plan));
        for (i, c) in ["BR", "US", "DE", "BR", "FR"].iter().enumerate() {
            d.fold(&event_of_m(
                format!("e{i}"),
                Body::Interaction {
                    features: vec![
                        ("a".into(), Value::Number(i as f64)),
                        ("b".into(), Value::Number(1.0)),
                    ],
                    score: None,
                    confidence: None,
                    label: None,
                    segment: vec![("country".into(), (*c).into()), ("plan".into(), "x".into())],
                },
            ));
        }
        let groups = &d.models["m"]["v"].groups;
        let names: Vec<(&str, u64)> = groups[&(SeriesClass::SegmentInput, 0)]
            .iter()
            .map(|(n, s)| (n.as_str(), s.moments.n))
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_iter()
            .collect();
        // Two values tracked, the rest as "(other)"; one input each; `plan` is not a key.
        assert_eq!(
            names,
            [
                ("country=(other)\u{1f}a", 2),
                ("country=BR\u{1f}a", 2),
                ("country=US\u{1f}a", 1),
            ]
        );
        assert_eq!(
            parse_segment_series_name("country=BR\u{1f}a"),
            Some(("country", "BR", "a"))
        );
        // Feedback with segment labels is counted per label, under the same plan.
        for (i, (c, kind, value)) in [
            ("BR", FeedbackKind::Explicit, 1.0),
            ("BR", FeedbackKind::Explicit, 0.0),
            ("FR", FeedbackKind::Explicit, 1.0),
            ("US", FeedbackKind::Implicit, 3.0),
        ]
        .into_iter()
        .enumerate()
        {
            d.fold(&event_of_m(
                format!("f{i}"),
                Body::Feedback {
                    interaction_id: None,
                    kind,
                    signal: "thumbs".into(),
                    value,
                    segment: vec![("country".into(), c.into())],
                },
            ));
        }
        let counts = &d.models["m"]["v"].groups[&(SeriesClass::SegmentCounts, 0)];
        let of = |what: &str| -> Vec<(String, u64)> {
            let s = &counts[&segment_count_name("country", what)];
            assert_eq!(s.categories.other, 0, "exact counts of {what}");
            s.categories.counts.clone().into_iter().collect()
        };
        let pairs = |v: &[(&str, u64)]| -> Vec<(String, u64)> {
            v.iter().map(|(a, b)| ((*a).to_owned(), *b)).collect()
        };
        assert_eq!(
            of(segment_counts::INTERACTIONS),
            pairs(&[("(other)", 2), ("BR", 2), ("US", 1)])
        );
        assert_eq!(
            of(segment_counts::EXPLICIT),
            pairs(&[("(other)", 1), ("BR", 2)])
        );
        assert_eq!(
            of(segment_counts::EXPLICIT_POSITIVE),
            pairs(&[("(other)", 1), ("BR", 1)])
        );
        assert_eq!(of(segment_counts::IMPLICIT), pairs(&[("US", 1)]));
        assert_eq!(counts.len(), 4, "no series for the key `plan`");
        assert_eq!(
            parse_segment_count_name(&segment_count_name("country", "explicit")),
            Some(("country", "explicit"))
        );
    }

    proptest! {
        /// Folding a batch column by column ends where folding its events one by one does,
        /// whatever the batch boundaries: feature lists that change between events, several
        /// versions and buckets, categories past a small cap (evictions), non-finite values.
        #[test]
        fn batch_fold_equals_event_by_event(
            spec in prop::collection::vec(
                (0u8..2, 0u8..3, prop::collection::vec((0u8..6, 0u8..5, -1e3f64..1e3, 0u8..12), 0..8)),
                1..400,
            ),
            split in 1usize..50,
        ) {
            let events = events(&spec);
            // k = 16 so that the sketches compact; cap = 4 so that categories overflow.
            let mut one_by_one = Delta::new(3600, 16, 4);
            for e in &events {
                one_by_one.fold(e);
            }
            let mut batched = Delta::new(3600, 16, 4);
            for chunk in events.chunks(split) {
                batched.fold_batch(chunk);
            }
            let mut whole = Delta::new(3600, 16, 4);
            whole.fold_batch(&events);
            assert_same(&one_by_one, &batched)?;
            assert_same(&one_by_one, &whole)?;
            let expected = reference(&events, 16, 4);
            let got = series(&whole);
            prop_assert_eq!(expected.len(), got.len());
            for (key, e) in &expected {
                let g = got[key];
                prop_assert_eq!(
                    (e.missing, e.non_finite, e.moments.n, e.overflowed),
                    (g.missing, g.non_finite, g.moments.n, g.overflowed)
                );
                prop_assert_eq!(&e.sketch, &g.sketch, "sketch of {:?}", key);
                prop_assert_eq!(&e.categories, &g.categories, "categories of {:?}", key);
                prop_assert!((e.moments.mean - g.moments.mean).abs() <= 1e-9 * (1.0 + e.moments.mean.abs()));
            }
            let total: u64 = expected.values().map(|s| s.overflowed).sum();
            prop_assert_eq!(total, whole.overflowed);
            let joint = joint_reference(&events, DEFAULT_JOINT_FEATURES);
            let mut got = BTreeMap::new();
            for versions in whole.models.values() {
                for (version, vd) in versions {
                    for ((bucket, names), m) in &vd.joint {
                        got.insert((version.clone(), *bucket, names.clone()), m);
                    }
                }
            }
            prop_assert_eq!(joint.len(), got.len());
            for (key, want) in &joint {
                same_joint(want, got[key])?;
            }

            // As the ingest writer does: each chunk folded into its own delta, then merged.
            let mut merged = Delta::new(3600, 16, 4);
            for chunk in events.chunks(split) {
                let mut d = Delta::new(3600, 16, 4);
                d.fold_batch(chunk);
                merged.merge(&d);
            }
            prop_assert_eq!(&merged.activity, &whole.activity);
            prop_assert_eq!(merged.records.len(), whole.records.len());
            for (model, versions) in &whole.models {
                for (version, vw) in versions {
                    let vm = &merged.models[model][version];
                    prop_assert_eq!(&vm.counts, &vw.counts);
                    prop_assert_eq!(&vm.funnel, &vw.funnel);
                }
            }
            let got = series(&merged);
            prop_assert_eq!(expected.len(), got.len());
            for (key, e) in &expected {
                let g = got[key];
                // Exact: counts, extremes; the sketch summarises every value (its items are a
                // merge's, not a stream's, so only its count is compared); categories are exact
                // while no side overflowed the cap.
                prop_assert_eq!(
                    (e.missing, e.non_finite, e.moments.n, e.sketch.count()),
                    (g.missing, g.non_finite, g.moments.n, g.sketch.count())
                );
                prop_assert_eq!((e.min.to_bits(), e.max.to_bits()), (g.min.to_bits(), g.max.to_bits()));
                prop_assert_eq!(e.categories.total(), g.categories.total());
                if e.overflowed == 0 && g.overflowed == 0 {
                    prop_assert_eq!(&e.categories, &g.categories, "categories of {:?}", key);
                }
                prop_assert!((e.moments.mean - g.moments.mean).abs() <= 1e-9 * (1.0 + e.moments.mean.abs()));
            }
            prop_assert_eq!(one_by_one.records.len(), whole.records.len());
        }
    }
}
