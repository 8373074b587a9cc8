//! The PostgreSQL store, for several replicas sharing one database. It relies on PostgreSQL for
//! what it does well and keeps no consensus of its own:
//! * every append is one transaction; `INSERT … ON CONFLICT` on `event_ids` makes a repeated
//!   event id sent to two replicas count once ([`shared`](super::JournalStore::shared));
//! * summaries are merged under row locks (`SELECT … FOR UPDATE`), in key order, so two
//!   replicas' checkpoints never lose each other's updates;
//! * writer heartbeats and job leases are timed by the database's `now()`, not the replicas'
//!   clocks; a stale writer is taken over with `FOR UPDATE SKIP LOCKED`.

mod alerts;
mod jobs;
mod journal;
mod series;

use super::*;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;

/// How to connect.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Connections in the pool (per replica).
    pub pool_size: u32,
    /// How long a request waits for a connection (or the first connection at start).
    pub connect_timeout: Duration,
    /// Event ids are duplicates within this many seconds.
    pub dedup_horizon_secs: i64,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            pool_size: 8,
            connect_timeout: Duration::from_secs(5),
            dedup_horizon_secs: 3600,
        }
    }
}

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    dedup_horizon_secs: i64,
}

impl PgStore {
    /// Connect and apply migrations (concurrent starts are safe: sqlx takes an advisory lock).
    pub async fn open(url: &str, options: &PgOptions) -> Result<Self, StoreError> {
        let store = Self::connect(url, options).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connect without migrating.
    pub async fn connect(url: &str, options: &PgOptions) -> Result<Self, StoreError> {
        let opts = PgConnectOptions::from_str(url)?.application_name("flywheel");
        let pool = PgPoolOptions::new()
            .max_connections(options.pool_size.max(2))
            .acquire_timeout(options.connect_timeout)
            .connect_with(opts)
            .await?;
        Ok(Self {
            pool,
            dedup_horizon_secs: options.dedup_horizon_secs,
        })
    }

    /// Apply the migrations in `migrations/postgres` that are not applied yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("migrations/postgres")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    /// The connection pool (tests inspect tables directly).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn check_key(&self, fingerprint: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ('key_fingerprint', $1) ON CONFLICT (key) DO NOTHING",
        )
        .bind(fingerprint)
        .execute(&self.pool)
        .await?;
        let stored: String =
            sqlx::query_scalar("SELECT value FROM settings WHERE key = 'key_fingerprint'")
                .fetch_one(&self.pool)
                .await?;
        super::compare_key(fingerprint, stored)
    }

    fn journal(&self) -> &dyn JournalStore {
        self
    }
    fn series(&self) -> &dyn SeriesStore {
        self
    }
    fn jobs(&self) -> &dyn JobStore {
        self
    }
    fn alerts(&self) -> &dyn AlertStore {
        self
    }
}
