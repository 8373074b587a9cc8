//! Folding validated events into summaries: the in-memory state between two checkpoints.
//!
//! A [`Delta`] holds, per (model, version, class, bucket), one [`FeatureSummary`] per name, plus
//! event counts, evaluation and deploy records, data-funnel counts and per-day user activity.
//! The store merges a delta into what it holds (`Store::checkpoint`), so the delta only ever
//! covers the events since the last checkpoint: memory is bounded by the active series.

use super::FeatureSummary;
use crate::events::{Body, Event, EventType, FeedbackKind, Stage, Value};
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
}

impl SeriesClass {
    pub const ALL: [SeriesClass; 5] = [
        SeriesClass::Input,
        SeriesClass::Prediction,
        SeriesClass::FeedbackExplicit,
        SeriesClass::FeedbackImplicit,
        SeriesClass::Segment,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            SeriesClass::Input => "input",
            SeriesClass::Prediction => "prediction",
            SeriesClass::FeedbackExplicit => "feedback_explicit",
            SeriesClass::FeedbackImplicit => "feedback_implicit",
            SeriesClass::Segment => "segment",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
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
}

#[derive(Debug, Clone)]
pub struct Delta {
    pub bucket_secs: i64,
    pub sketch_k: u16,
    pub category_cap: usize,
    /// model → version → what accumulated.
    pub models: HashMap<String, HashMap<String, VersionDelta>>,
    /// Evaluations and deploys, kept as small records (the validated events themselves).
    pub records: Vec<Event>,
    /// model → (UTC day number, user key): who was active when, for retention.
    pub activity: HashMap<String, HashSet<(i64, u64)>>,
    /// Category values that went to "other" because of the cap, in this delta.
    pub overflowed: u64,
}

impl Delta {
    pub fn new(bucket_secs: i64, sketch_k: u16, category_cap: usize) -> Self {
        Self {
            bucket_secs,
            sketch_k,
            category_cap,
            models: HashMap::default(),
            records: Vec::new(),
            activity: HashMap::default(),
            overflowed: 0,
        }
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
        let secs = e.occurred_at_secs();
        let bucket = self.bucket_of(secs);
        let (k, cap) = (self.sketch_k, self.category_cap);
        if let Some(u) = e.user_key {
            get_or_insert(&mut self.activity, &e.model.id).insert((secs.div_euclid(86_400), u));
        }
        let rec = CountRec {
            n: 1,
            first_us: e.occurred_at_us,
            last_us: e.occurred_at_us,
        };
        let mut overflowed = 0u64;
        let vd = self.version(&e.model.id, &e.model.version);
        vd.counts
            .entry((e.event_type(), bucket))
            .and_modify(|c| c.merge(&rec))
            .or_insert(rec);
        let groups = &mut vd.groups;
        let funnel = &mut vd.funnel;
        match &e.body {
            Body::Interaction {
                features,
                score,
                confidence,
                label,
                segment,
            } => {
                let mut g = Group::of(groups, SeriesClass::Input, bucket, k, cap);
                for (name, v) in features {
                    let s = g.get(name);
                    let ok = match v {
                        Value::Missing => {
                            s.add_missing();
                            true
                        }
                        Value::Number(x) => {
                            s.add_number(*x);
                            true
                        }
                        Value::Bool(b) => s.add_bool(*b),
                        Value::Category(c) => s.add_category(c),
                    };
                    overflowed += u64::from(!ok);
                }
                let mut g = Group::of(groups, SeriesClass::Prediction, bucket, k, cap);
                for (name, v) in [("score", score), ("confidence", confidence)] {
                    let s = g.get(name);
                    match v {
                        Some(x) => s.add_number(*x),
                        None => s.add_missing(),
                    }
                }
                let s = g.get("label");
                match label {
                    Some(l) => overflowed += u64::from(!s.add_category(l)),
                    None => s.add_missing(),
                }
                if !segment.is_empty() {
                    let mut g = Group::of(groups, SeriesClass::Segment, bucket, k, cap);
                    for (key, v) in segment {
                        overflowed += u64::from(!g.get(key).add_category(v));
                    }
                }
            }
            Body::Feedback {
                kind,
                signal,
                value,
                ..
            } => {
                let class = match kind {
                    FeedbackKind::Explicit => SeriesClass::FeedbackExplicit,
                    FeedbackKind::Implicit => SeriesClass::FeedbackImplicit,
                };
                Group::of(groups, class, bucket, k, cap)
                    .get(signal)
                    .add_number(*value);
            }
            Body::ModelEval { .. } | Body::Deploy { .. } => {}
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
                *funnel.entry((*stage, reason, day)).or_insert(0) += count;
            }
        }
        if matches!(e.body, Body::ModelEval { .. } | Body::Deploy { .. }) {
            self.records.push(e.clone());
        }
        self.overflowed += overflowed;
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
