//! Every Prometheus metric of the service, declared in one place (DESIGN §5).
//!
//! One [`prometheus::Registry`] is owned by the application (never the global default, so tests
//! running several apps in one process stay isolated). Names are `flywheel_<what>_<unit>`, in
//! base units; counters end in `_total`. Label values that come from clients (model ids) are
//! bounded: the first `MAX_MODEL_LABELS` models get their own series, later ones share `_other`.
//! README.md lists every metric; a test checks the list against this module.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::collections::HashSet;
use std::sync::Mutex;

/// At most this many distinct `model` label values; more share the value `_other`.
pub const MAX_MODEL_LABELS: usize = 100;

pub struct Metrics {
    registry: Registry,
    pub events_ingested: IntCounterVec,
    pub events_rejected: IntCounterVec,
    pub events_duplicate: IntCounter,
    pub category_overflow: IntCounter,
    pub http_request_duration: HistogramVec,
    pub store_write_duration: HistogramVec,
    pub ingest_queue_batches: IntGauge,
    pub ingest_pending_events: IntGauge,
    pub ingest_overload: IntCounter,
    pub build_info: IntGaugeVec,
    models: Mutex<HashSet<String>>,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let events_ingested = IntCounterVec::new(
            Opts::new(
                "flywheel_events_ingested_total",
                "Events accepted and made durable, by event type and model.",
            ),
            &["event_type", "model"],
        )?;
        let events_rejected = IntCounterVec::new(
            Opts::new(
                "flywheel_events_rejected_total",
                "Events rejected by validation, by reason.",
            ),
            &["reason"],
        )?;
        let events_duplicate = IntCounter::new(
            "flywheel_events_duplicate_total",
            "Events whose event_id was already seen within the dedup horizon (counted once).",
        )?;
        let category_overflow = IntCounter::new(
            "flywheel_category_overflow_total",
            "Category values that arrived after a feature reached its category cap (the heavy-hitters sketch evicted a smaller category to \"other\").",
        )?;
        let http_request_duration = HistogramVec::new(
            HistogramOpts::new(
                "flywheel_http_request_duration_seconds",
                "HTTP request latency, by route template and status class.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "status_class"],
        )?;
        let store_write_duration = HistogramVec::new(
            HistogramOpts::new(
                "flywheel_store_write_duration_seconds",
                "Store write latency, by operation (journal, checkpoint).",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["operation"],
        )?;
        let ingest_queue_batches = IntGauge::new(
            "flywheel_ingest_queue_batches",
            "Batches waiting to be made durable.",
        )?;
        let ingest_pending_events = IntGauge::new(
            "flywheel_ingest_pending_events",
            "Events journaled but not yet folded into the stored summaries.",
        )?;
        let ingest_overload = IntCounter::new(
            "flywheel_ingest_overload_total",
            "Requests answered 503 because the ingest queue was full.",
        )?;
        let build_info = IntGaugeVec::new(
            Opts::new(
                "flywheel_build_info",
                "Build information; the value is always 1.",
            ),
            &["version"],
        )?;
        for c in [
            Box::new(events_ingested.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(events_rejected.clone()),
            Box::new(events_duplicate.clone()),
            Box::new(category_overflow.clone()),
            Box::new(http_request_duration.clone()),
            Box::new(store_write_duration.clone()),
            Box::new(ingest_queue_batches.clone()),
            Box::new(ingest_pending_events.clone()),
            Box::new(ingest_overload.clone()),
            Box::new(build_info.clone()),
        ] {
            registry.register(c)?;
        }
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        // Known label sets start at 0 rather than absent.
        for r in crate::events::RejectReason::ALL {
            events_rejected.with_label_values(&[r.as_str()]);
        }
        for op in ["journal", "checkpoint"] {
            store_write_duration.with_label_values(&[op]);
        }
        Ok(Self {
            registry,
            events_ingested,
            events_rejected,
            events_duplicate,
            category_overflow,
            http_request_duration,
            store_write_duration,
            ingest_queue_batches,
            ingest_pending_events,
            ingest_overload,
            build_info,
            models: Mutex::new(HashSet::new()),
        })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The `model` label value for a model id, bounded to [`MAX_MODEL_LABELS`] distinct values.
    pub fn model_label(&self, model: &str) -> String {
        let mut seen = match self.models.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if seen.contains(model) {
            return model.to_owned();
        }
        if seen.len() < MAX_MODEL_LABELS {
            seen.insert(model.to_owned());
            model.to_owned()
        } else {
            "_other".to_owned()
        }
    }

    /// The classic text exposition format (0.0.4), which promtool and every Prometheus parse.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let enc = TextEncoder::new();
        if let Err(e) = enc.encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    pub fn observe_store_write(&self, op: &str, secs: f64) {
        self.store_write_duration
            .with_label_values(&[op])
            .observe(secs);
    }
}
