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

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    pub model: String,
    pub version: String,
    pub class: SeriesClass,
    /// Start of the time bucket, seconds since the epoch.
    pub bucket: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountKey {
    pub model: String,
    pub version: String,
    pub event_type: EventType,
    pub bucket: i64,
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

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FunnelKey {
    pub model: String,
    pub version: String,
    pub stage: Stage,
    pub reason: String,
    pub bucket: i64,
}

#[derive(Debug, Clone)]
pub struct Delta {
    pub bucket_secs: i64,
    pub sketch_k: u16,
    pub category_cap: usize,
    pub summaries: HashMap<GroupKey, HashMap<String, FeatureSummary>>,
    pub counts: HashMap<CountKey, CountRec>,
    /// Evaluations and deploys, kept as small records (the validated events themselves).
    pub records: Vec<Event>,
    pub funnel: HashMap<FunnelKey, u64>,
    /// (model, UTC day number, user key): who was active when, for retention.
    pub activity: HashSet<(String, i64, u64)>,
    /// Category values that went to "other" because of the cap, in this delta.
    pub overflowed: u64,
}

impl Delta {
    pub fn new(bucket_secs: i64, sketch_k: u16, category_cap: usize) -> Self {
        Self {
            bucket_secs,
            sketch_k,
            category_cap,
            summaries: HashMap::default(),
            counts: HashMap::default(),
            records: Vec::new(),
            funnel: HashMap::default(),
            activity: HashSet::default(),
            overflowed: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Number of summaries held (the memory cost).
    pub fn series(&self) -> usize {
        self.summaries.values().map(HashMap::len).sum()
    }

    pub fn bucket_of(&self, secs: i64) -> i64 {
        secs - secs.rem_euclid(self.bucket_secs)
    }

    fn group(&mut self, key: GroupKey) -> Group<'_> {
        Group {
            k: self.sketch_k,
            cap: self.category_cap,
            map: self.summaries.entry(key).or_default(),
        }
    }

    /// Fold one validated event.
    pub fn fold(&mut self, e: &Event) {
        let secs = e.occurred_at_secs();
        let bucket = self.bucket_of(secs);
        let ck = CountKey {
            model: e.model.id.clone(),
            version: e.model.version.clone(),
            event_type: e.event_type(),
            bucket,
        };
        let rec = CountRec {
            n: 1,
            first_us: e.occurred_at_us,
            last_us: e.occurred_at_us,
        };
        self.counts
            .entry(ck)
            .and_modify(|c| c.merge(&rec))
            .or_insert(rec);
        if let Some(u) = e.user_key {
            self.activity
                .insert((e.model.id.clone(), secs.div_euclid(86_400), u));
        }
        let group = |class| GroupKey {
            model: e.model.id.clone(),
            version: e.model.version.clone(),
            class,
            bucket,
        };
        match &e.body {
            Body::Interaction {
                features,
                score,
                confidence,
                label,
                segment,
            } => {
                let mut overflowed = 0u64;
                let mut g = self.group(group(SeriesClass::Input));
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
                let mut g = self.group(group(SeriesClass::Prediction));
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
                    let mut g = self.group(group(SeriesClass::Segment));
                    for (k, v) in segment {
                        overflowed += u64::from(!g.get(k).add_category(v));
                    }
                }
                self.overflowed += overflowed;
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
                self.group(group(class)).get(signal).add_number(*value);
            }
            Body::ModelEval { .. } | Body::Deploy { .. } => self.records.push(e.clone()),
            Body::DataLifecycle {
                stage,
                count,
                reason,
            } => {
                let day = secs - secs.rem_euclid(86_400);
                *self
                    .funnel
                    .entry(FunnelKey {
                        model: e.model.id.clone(),
                        version: e.model.version.clone(),
                        stage: *stage,
                        reason: reason.clone().unwrap_or_default(),
                        bucket: day,
                    })
                    .or_insert(0) += count;
            }
        }
    }

    /// Merge another delta into this one (used when replaying the journal).
    pub fn merge(&mut self, o: &Delta) {
        for (g, m) in &o.summaries {
            let mut mine = self.group(g.clone());
            for (name, s) in m {
                mine.get(name).merge(s);
            }
        }
        for (k, c) in &o.counts {
            self.counts
                .entry(k.clone())
                .and_modify(|x| x.merge(c))
                .or_insert(*c);
        }
        self.records.extend(o.records.iter().cloned());
        for (k, n) in &o.funnel {
            *self.funnel.entry(k.clone()).or_insert(0) += n;
        }
        self.activity.extend(o.activity.iter().cloned());
        self.overflowed += o.overflowed;
    }
}

/// The summaries of one group, with the parameters new summaries are made with.
struct Group<'a> {
    k: u16,
    cap: usize,
    map: &'a mut HashMap<String, FeatureSummary>,
}

impl Group<'_> {
    fn get(&mut self, name: &str) -> &mut FeatureSummary {
        if !self.map.contains_key(name) {
            self.map
                .insert(name.to_owned(), FeatureSummary::new(self.k, self.cap));
        }
        match self.map.get_mut(name) {
            Some(s) => s,
            None => unreachable!("inserted above"),
        }
    }
}
