//! # flywheel
//!
//! A service that tells an ML team whether its data flywheel is turning: whether interactions
//! still produce feedback, whether feedback still makes models better, whether better models
//! still bring users back, and whether the data the models see has drifted.
//!
//! ## Architecture
//!
//! Imports point one way, from pure code to the edges:
//!
//! ```text
//! stats, summary (pure)  ←  events, drift, flywheel, jobs::schedule (pure domain)
//!                        ←  store  ←  ingest, jobs, the jobs of drift/flywheel/report, alerts
//!                        ←  http, cli, demo  ←  app  ←  main
//! ```
//!
//! * [`stats`]: the statistics core, pure and checked against scipy (`tests/fixtures/oracles`).
//! * [`drift`]: which statistic each column gets and when it counts as drifted (the two-gate
//!   default, explicit methods, Evidently compatibility), and the same statistics on summaries.
//! * [`flywheel`]: retention, velocity, CUPED, the per-arc plateau rule, and the health
//!   computation with its daily job.
//! * [`jobs`]: when scheduled jobs fire (pure cron computation) and the runner (leases,
//!   catch-up, idempotent run records). Drift monitors ([`drift::run`]), health
//!   ([`flywheel::job`]) and the weekly report ([`report`]) are its jobs.
//! * [`alerts`]: the service's own alert lifecycle from job results, and delivery to
//!   Alertmanager and a signed webhook.
//! * [`report`]: the weekly report (Markdown, HTML with SVG charts, JSON).
//! * [`demo`]: the simulated product behind `flywheel demo`.
//! * [`synth`]: the seeded data generator of the tests and benchmarks.
//! * [`events`]: the event contract (DESIGN §1), parsing and validation, pseudonymisation.
//! * [`summary`]: mergeable summaries (moments, KLL quantile sketch, capped category counts) and
//!   the fold of events into a [`summary::delta::Delta`].
//! * [`store`]: the [`store::Store`] trait and its SQLite backend (journal, summaries, records).
//! * [`ingest`]: the single writer: dedup, group-committed journal, checkpoints, recovery.
//! * [`metrics`]: every Prometheus metric, in one registry owned by the app.
//! * [`http`]: the axum router, handlers, and the mapping of errors to status codes.
//! * [`config`]: raw TOML → validated [`config::Config`], every error at once.
//! * [`app`]: start-up and shutdown order; [`cli`]: the commands.
//!
//! An event's path: `POST /v1/events` → [`events::parse_batch`] + [`events::Event::try_from_raw`]
//! (on a blocking thread) → [`ingest::IngestHandle::submit`] → journal commit (durable) → fold
//! into the delta → 200. Every few seconds the delta is merged into the stored summaries.

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
pub mod report;
pub mod secret;
pub mod shutdown;
pub mod stats;
pub mod store;
pub mod summary;
pub mod synth;
