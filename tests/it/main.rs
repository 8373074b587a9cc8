//! The one integration-test binary. Every test starts the real application (the same build path
//! as `flywheel serve`) on port 0 with its own temporary data directory.

mod helpers;

mod alert_rules;
mod alerting;
mod architecture;
mod compare_cli;
mod crash;
mod demo_e2e;
mod deploy;
mod disk_full;
mod drift;
mod durability;
mod fuzz;
mod health;
mod ingest_api;
mod openapi;
mod ops;
mod performance;
mod privacy;
mod prometheus_e2e;
mod quality;
mod replicas;
mod rollup;
mod segments;
mod slow_clients;
mod store;
