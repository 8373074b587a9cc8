//! The embedded SQLite store: one file (`<data_dir>/flywheel.db`), WAL mode, `synchronous=FULL`
//! so that a committed journal batch survives a crash of the process or the machine. One
//! process uses the file (it is not [`shared`](super::JournalStore::shared)): deduplication is
//! the ingest writer's, in memory, with its chunks persisted at checkpoints.
//!
//! Write transactions start with `BEGIN IMMEDIATE`: they take the write lock up front and wait
//! for it (busy timeout), instead of starting as readers and failing with SQLITE_BUSY_SNAPSHOT
//! when another connection (a job, the ingest checkpoint) committed in between.

mod alerts;
mod jobs;
mod journal;
mod series;

use super::*;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// The database's clock in microseconds since the epoch (SQL expression).
const NOW_US: &str = "CAST(ROUND((julianday('now') - 2440587.5) * 86400000000.0) AS INTEGER)";

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Open (creating if needed) the database in `data_dir` and apply migrations.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.display().to_string(),
            source,
        })?;
        let path = Self::path_in(data_dir);
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("temp_store", "memory");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            // A COMMIT that fails (disk full) leaves sqlx's transaction depth at 1 while SQLite
            // has already rolled back, and every later BEGIN on that connection fails
            // ("non-zero transaction depth"): the store would stay broken after space returns.
            // An idle connection is never in a transaction, so one that says it is is dropped.
            .before_acquire(|conn, _| {
                use sqlx::Connection;
                let healthy = !conn.is_in_transaction();
                Box::pin(async move { Ok(healthy) })
            })
            .connect_with(opts)
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    pub fn path_in(data_dir: &Path) -> std::path::PathBuf {
        data_dir.join("flywheel.db")
    }

    /// The connection pool (tests inspect tables directly).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn check_key(&self, fingerprint: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT OR IGNORE INTO settings (key, value) VALUES ('key_fingerprint', ?)")
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
