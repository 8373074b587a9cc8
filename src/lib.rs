//! # flywheel
//!
//! A service that tells an ML team whether its data flywheel is turning: whether interactions
//! still produce feedback, whether feedback still makes models better, whether better models
//! still bring users back, and whether the data the models see has drifted.
//!
//! ## Architecture
//!
//! `docs/ARCHITECTURE.md` is the map: the data flow from an event to a metric, an alert and a
//! report, the store contract, the job model, and where to add things. Imports point one way,
//! down these layers (a test reads the table in that document and checks every `crate::` path):
//!
//! ```text
//! 0 clock, secret, stats, synth      foundations; stats is the pure statistics core
//! 1 events, dataset                  the event contract; reading datasets
//! 2 summary                          mergeable summaries and the fold of events
//! 3 store, metrics                   persistence behind one trait; the Prometheus registry
//! 4 jobs, ingest                     the job runner; the single ingest writer
//! 5 drift, flywheel                  drift decisions and job; flywheel health and job
//! 6 alerts, report                   alert lifecycle and delivery, runbooks; weekly report
//! 7 config   8 http   9 app, shutdown   10 demo   11 cli
//! ```
//!
//! * [`stats`]: the statistics core, pure and checked against scipy (`tests/fixtures/oracles`).
//! * [`summary`]: mergeable summaries (moments, KLL quantile sketch, capped category counts) and
//!   the fold of events into a [`summary::delta::Delta`].
//! * [`events`]: the event contract (docs/EVENTS.md), validation, batch framing, pseudonyms.
//! * [`store`]: the [`store::Store`] facade, its part traits, and the SQLite and PostgreSQL
//!   backends ([`store::open`] chooses).
//! * [`ingest`]: the single writer: dedup, group-committed journal, checkpoints, recovery.
//! * [`jobs`]: cron schedules, the runner (leases, catch-up, idempotent run records) and the
//!   after-run hooks that carry a job's typed findings to the alert engine.
//! * [`drift`]: which statistic each column gets and when it counts as drifted, the same
//!   statistics on summaries, monitors, baselines and the drift job.
//! * [`flywheel`]: retention, velocity, the plateau rule, health, its metrics and its job.
//! * [`alerts`]: the service's alert lifecycle, delivery to Alertmanager and a webhook, and
//!   the runbooks it serves.
//! * [`report`]: the weekly report (Markdown, HTML with SVG charts, JSON).
//! * [`http`]: the router, handlers, and the one mapping of errors to status codes.
//! * [`config`]: raw TOML → validated [`config::Config`], every error at once.
//! * [`app`]: start-up and shutdown order; [`cli`]: the commands; [`demo`]: `flywheel demo`.
//!
//! An event's path: `POST /v1/events` → [`events::split_batch`] + [`events::parse_event`]
//! (on a blocking thread, folded there into a batch delta) → [`ingest::IngestHandle`] → journal
//! commit (durable) → 200. Every few seconds the writer's delta is merged into the stored
//! summaries.

pub mod alerts;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dataset;
pub mod demo;
pub mod drift;
pub mod events;
pub mod flywheel;
pub mod http;
pub mod ingest;
pub mod jobs;
pub mod metrics;
pub mod performance;
pub mod quality;
pub mod report;
pub mod secret;
pub mod shutdown;
pub mod stats;
pub mod store;
pub mod summary;
pub mod synth;
