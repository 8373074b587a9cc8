//! Persistence behind one trait ([`Store`]), so that the embedded SQLite default and PostgreSQL
//! for replicated deployments are interchangeable; `tests/it/store.rs` is the conformance suite
//! every backend must pass.
//!
//! What is stored (see `migrations/`):
//! * the **journal** of accepted batches, written durably before a batch is acknowledged;
//! * **summaries** per (model, version, class, name, bucket), merged on write at checkpoints;
//! * **joint co-moments** of up to `ingest.joint_features` numeric inputs per (model, version,
//!   bucket, feature set), merged the same way (for multivariate drift; kept hourly, not rolled
//!   up: d² + d numbers per row);
//! * event counts, evaluation/deploy records, data-funnel counts, per-day pseudonymous activity;
//! * **dedup chunks**: hashes of the event ids seen, for the idempotency horizon.
//!
//! A checkpoint merges an in-memory [`Delta`] and deletes the journal rows it covers in one
//! transaction, so a crash at any point neither loses nor double-counts an event.

mod journal_v1;
pub mod postgres;
pub mod sqlite;

use crate::clock::Timestamp;
use crate::events::{Event, EventType};
use crate::stats::multivariate::CoMoments;
use crate::summary::delta::{Delta, SeriesClass};
use crate::summary::FeatureSummary;
use async_trait::async_trait;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The driver's message is the whole story; it is not also chained as a source, so an
    /// error chain printed by the caller does not repeat it.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt ({what}): {detail}")]
    Corrupt { what: &'static str, detail: String },
    #[error("this ingest writer was taken over by another replica (its heartbeat lapsed)")]
    Fenced,
    #[error("the pseudonymisation key differs from the one this database was written with (fingerprint {found} here, {stored} in the database); every replica must use the same privacy.hmac_key")]
    KeyMismatch { found: String, stored: String },
    #[error("cannot prepare the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(e)
    }
}

/// Counts of one event type for one model version.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TypeCount {
    pub model: String,
    pub version: String,
    pub event_type: EventType,
    pub count: u64,
    pub first_us: i64,
    pub last_us: i64,
}

/// One stored summary.
#[derive(Debug, Clone)]
pub struct SummaryRow {
    pub version: String,
    pub class: SeriesClass,
    pub name: String,
    pub bucket: i64,
    pub summary: FeatureSummary,
}

/// What an erasure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Erasure {
    /// The user had been erased before (nothing new was recorded).
    pub already_erased: bool,
    /// Activity rows (model, day) deleted now.
    pub activity_rows_deleted: u64,
    /// When the user was (first) erased.
    pub erased_at_us: i64,
}

/// One audit entry: what was done to personal data, without identifying anyone.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at_us: i64,
    pub action: String,
    pub detail: serde_json::Value,
}

/// The co-moments of one set of numeric inputs of one model version in one bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct JointRow {
    pub version: String,
    pub bucket: i64,
    /// The inputs, in the order of the moments' rows and columns.
    pub features: Vec<String>,
    pub moments: CoMoments,
}

/// The (model, day) pairs with rows still to roll up before `$1`, oldest first. The same text
/// serves both backends: SQLite reads `$1` as one named parameter, bound once.
pub(crate) const DAYS_TO_ROLL_UP: &str =
    "SELECT model, bucket - bucket % 86400 AS day FROM summaries
     WHERE bucket >= 0 AND bucket < $1 AND bucket % 86400 <> 0
     UNION
     SELECT model, bucket - bucket % 86400 AS day FROM event_counts
     WHERE bucket >= 0 AND bucket < $1 AND bucket % 86400 <> 0
     ORDER BY day, model";

/// What one [`SeriesStore::roll_up_day`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RolledUp {
    /// Summary and count rows merged away (deleted into their day's row).
    pub rows_merged: u64,
    /// Day rows written.
    pub rows_written: u64,
}

/// A reference dataset kept as summaries.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BaselineInfo {
    pub name: String,
    pub model: String,
    pub created_at_us: i64,
    pub rows: u64,
    /// Where it came from (`upload:csv`, `upload:ndjson`, `cli:FILE`).
    pub source: String,
    /// Number of (class, feature) summaries.
    pub features: u64,
}

/// One summary of a baseline.
#[derive(Debug, Clone)]
pub struct NamedSummary {
    pub class: SeriesClass,
    pub name: String,
    pub summary: FeatureSummary,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub const ALL: [Outcome; 2] = [Outcome::Success, Outcome::Failure];
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// One run of a scheduled job for one window (seconds since the epoch).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobRun {
    pub job: String,
    pub window_start: i64,
    pub window_end: i64,
    /// The scheduled fire time this run is for.
    pub fired_at: i64,
    pub started_at: Timestamp,
    pub duration_us: i64,
    pub outcome: Outcome,
    /// The run's inputs and figures (baseline, config hash, sample sizes) or its error.
    pub detail: serde_json::Value,
}

/// What a job computed for one (model, subject) in one window.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ResultRow {
    pub job: String,
    pub model: String,
    pub subject: String,
    pub window_start: i64,
    pub window_end: i64,
    pub data: serde_json::Value,
}

/// Which results to read: `window_end` in `(from, to]`; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct ResultQuery {
    /// Jobs whose name starts with this.
    pub job_prefix: Option<String>,
    pub model: Option<String>,
    pub subject: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Newest first, at most this many (default: all, oldest first).
    pub latest: Option<i64>,
}

/// Events of one type for one version in one bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct BucketCount {
    pub version: String,
    pub event_type: EventType,
    pub bucket: i64,
    pub n: u64,
    pub first_us: i64,
}

/// Items at one funnel stage for one version and day.
#[derive(Debug, Clone, PartialEq)]
pub struct FunnelCount {
    pub version: String,
    pub stage: crate::events::Stage,
    pub reason: String,
    /// Start of the UTC day (seconds).
    pub day: i64,
    pub n: u64,
}

/// Where an alert is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// The condition is building (a feature drifted once, an arc is SLOWING).
    Pending,
    /// The condition persisted; delivered.
    Firing,
    /// It was firing and has been clean for `resolve_after` evaluations.
    Resolved,
    /// It was pending and the condition went away before it fired.
    Inactive,
}

impl AlertState {
    pub const ALL: [AlertState; 4] = [
        AlertState::Pending,
        AlertState::Firing,
        AlertState::Resolved,
        AlertState::Inactive,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
            AlertState::Inactive => "inactive",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// One alert incident of the service (see `alerts`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AlertRow {
    pub id: i64,
    pub fingerprint: String,
    /// The job whose results raise it.
    pub source: String,
    pub state: AlertState,
    pub labels: std::collections::BTreeMap<String, String>,
    pub annotations: std::collections::BTreeMap<String, String>,
    /// Consecutive evaluations with the condition met / clear.
    pub hits: i64,
    pub clean: i64,
    pub created_at: Timestamp,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    pub updated_at: Timestamp,
    pub notified_at: Option<Timestamp>,
}

/// A dedup chunk: the event-id hashes first seen in one checkpoint interval, sorted.
#[derive(Debug, Clone, PartialEq)]
pub struct DedupChunk {
    pub created_at: i64,
    pub ids: Vec<u64>,
}

/// A batch for the journal: its encoded payload and the hashes of its event ids.
#[derive(Debug, Clone, Copy)]
pub struct JournalEntry<'a> {
    pub payload: &'a [u8],
    pub ids: &'a [u64],
}

/// What became of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Durable; the seq of the last row written.
    Upto(i64),
    /// Nothing was written: these ids were already recorded by another writer of a shared store
    /// (within the dedup horizon). Drop them and append the rest.
    Duplicates(Vec<u64>),
}

/// Journal rows taken over from writers that stopped without folding them.
#[derive(Debug, Clone, Default)]
pub struct Adopted {
    /// The writers taken over.
    pub writers: Vec<i64>,
    /// The rows, now owned by the adopting writer (new seqs), oldest first.
    pub rows: Vec<(i64, Vec<u8>)>,
}

/// The store, in parts by what they hold. One implementation per backend; [`open`] chooses.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The backend answers (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
    /// The backend's name (`sqlite`, `postgres`), for logs and `/readyz`.
    fn backend(&self) -> &'static str;
    /// Check the pseudonymisation key's fingerprint against the one recorded in the store
    /// (recording it the first time): two processes with different keys must not share a store.
    async fn check_key(&self, fingerprint: &str) -> Result<(), StoreError>;
    /// Journal, writers, deduplication and checkpoints.
    fn journal(&self) -> &dyn JournalStore;
    /// What was folded: summaries, counts, records, activity, baselines.
    fn series(&self) -> &dyn SeriesStore;
    /// Job runs, their results and leases.
    fn jobs(&self) -> &dyn JobStore;
    /// The service's own alerts.
    fn alerts(&self) -> &dyn AlertStore;
}

/// The ingest side. Each ingest writer (one per process) registers and owns the journal rows it
/// appends; a checkpoint folds them and moves the writer's watermark; rows of a writer that
/// stopped heart-beating are adopted by another (see `ingest`). A fenced writer (adopted while
/// it was still alive, e.g. cut off from the database for longer than the TTL) gets
/// [`StoreError::Fenced`] and must drop its unfolded state.
#[async_trait]
pub trait JournalStore: Send + Sync {
    /// Several processes write to this store at once: event ids are checked in the store, not
    /// only in each process's memory.
    fn shared(&self) -> bool;

    /// Register a new writer (heartbeat now, by the database's clock); returns its id.
    async fn register_writer(&self, name: &str) -> Result<i64, StoreError>;

    /// Refresh the writer's heartbeat; [`StoreError::Fenced`] when it was adopted.
    async fn heartbeat(&self, writer: i64) -> Result<(), StoreError>;

    /// Take over the unfolded rows of every other writer whose heartbeat is at least
    /// `stale_after_secs` old (0: every other writer), re-appending them as `writer`'s rows and
    /// removing the old writers, in one transaction.
    async fn adopt_orphans(
        &self,
        writer: i64,
        stale_after_secs: i64,
    ) -> Result<Adopted, StoreError>;

    /// Append batches durably, in one transaction (all or nothing). A shared store records the
    /// ids in the same transaction and refuses the append if any was recorded before.
    async fn append(
        &self,
        writer: i64,
        entries: &[JournalEntry<'_>],
        received_at: i64,
    ) -> Result<Appended, StoreError>;

    /// Merge `delta` into the stored state, store `dedup` as a new chunk, mark the writer's rows
    /// up to `journal_upto` as folded and refresh its heartbeat, all in one transaction.
    /// (Folded rows are deleted later by [`JournalStore::trim`], in small steps.)
    async fn checkpoint(
        &self,
        writer: i64,
        delta: &Delta,
        dedup: Option<&DedupChunk>,
        journal_upto: i64,
    ) -> Result<(), StoreError>;

    /// Remove a writer whose rows are all folded (a clean stop).
    async fn retire_writer(&self, writer: i64) -> Result<(), StoreError>;

    /// Delete at most `limit` of `writer`'s folded journal rows; returns how many were deleted.
    /// Each writer trims its own rows only, so concurrent writers never contend on a row (rows
    /// of stopped writers go when they retire or are adopted).
    async fn trim(&self, writer: i64, limit: i64) -> Result<u64, StoreError>;

    /// Journal rows not yet folded, of every writer (for operators and tests).
    async fn unfolded(&self) -> Result<u64, StoreError>;

    /// Dedup chunks created at or after `since` (seconds).
    async fn dedup_chunks(&self, since: i64) -> Result<Vec<DedupChunk>, StoreError>;

    /// Drop dedup state created before `dedup_before` and activity before day `activity_before`.
    async fn purge(&self, dedup_before: i64, activity_before: i64) -> Result<(), StoreError>;
}

/// What was folded from events, and the reference datasets.
#[async_trait]
pub trait SeriesStore: Send + Sync {
    /// Counts per (model, version, event type) over all time.
    async fn type_counts(&self) -> Result<Vec<TypeCount>, StoreError>;

    /// Summaries of one model with bucket in `[from, to)`, optionally of one class.
    async fn summaries(
        &self,
        model: &str,
        class: Option<SeriesClass>,
        from: i64,
        to: i64,
    ) -> Result<Vec<SummaryRow>, StoreError>;

    /// Erase one user (by pseudonym) at `at_us`: delete every activity row of theirs, record
    /// the erasure (checkpoints consult it, so activity up to that time folded later is not
    /// stored again) and an audit entry without the pseudonym, in one transaction. Idempotent:
    /// a second request deletes nothing more and keeps the first erasure time.
    async fn erase_user(&self, user_key: u64, at_us: i64) -> Result<Erasure, StoreError>;

    /// The newest audit entries, newest first.
    async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError>;

    /// Joint co-moments of one model with bucket in `[from, to)`, ordered by version, bucket
    /// and feature set.
    async fn joint_moments(
        &self,
        model: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<JointRow>, StoreError>;

    /// Evaluation or deploy records of one model, oldest first.
    async fn records(&self, model: &str, event_type: EventType) -> Result<Vec<Event>, StoreError>;

    /// Event counts of one model with bucket in `[from, to)`.
    async fn bucket_counts(
        &self,
        model: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<BucketCount>, StoreError>;

    /// Data-funnel counts of one model with day start in `[from, to)`.
    async fn funnel_counts(
        &self,
        model: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<FunnelCount>, StoreError>;

    /// (day number, pseudonymous user) pairs of one model with day in `[from_day, to_day)`.
    async fn activity(
        &self,
        model: &str,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<(i64, u64)>, StoreError>;

    /// The (model, day start) pairs with hourly summary or count rows in days that end at or
    /// before `before` (seconds, a day boundary): what [`SeriesStore::roll_up_day`] would
    /// change, oldest day first.
    async fn days_to_roll_up(&self, before: i64) -> Result<Vec<(String, i64)>, StoreError>;

    /// Merge one model's summary and count rows of the day starting at `day` into one row per
    /// series at bucket `day` (merging is a union, so every range of whole days reads the same
    /// before and after). Rows written concurrently by a checkpoint are never lost: they are
    /// either merged here or left for the next roll-up.
    async fn roll_up_day(&self, model: &str, day: i64) -> Result<RolledUp, StoreError>;

    /// Store a reference dataset's summaries under `info.name`, replacing any earlier one.
    async fn put_baseline(
        &self,
        info: &BaselineInfo,
        summaries: &[NamedSummary],
    ) -> Result<(), StoreError>;

    /// Every stored reference dataset, by name.
    async fn baselines(&self) -> Result<Vec<BaselineInfo>, StoreError>;

    /// One reference dataset's summaries, if it exists.
    async fn baseline_summaries(
        &self,
        name: &str,
    ) -> Result<Option<(BaselineInfo, Vec<NamedSummary>)>, StoreError>;
}

/// Job runs, results and leases.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Record a run and its results in one transaction, replacing an earlier run of the same
    /// (job, window) and all of its results: rerunning a window never duplicates.
    async fn save_run(&self, run: &JobRun, results: &[ResultRow]) -> Result<(), StoreError>;

    /// Runs, newest first; of one job if given; at most `limit`.
    async fn runs(&self, job: Option<&str>, limit: i64) -> Result<Vec<JobRun>, StoreError>;

    /// The latest fire time a job has a recorded run for (successful or not).
    async fn last_fire(&self, job: &str) -> Result<Option<i64>, StoreError>;

    /// Stored results, ordered by window end (see [`ResultQuery`]).
    async fn results(&self, q: &ResultQuery) -> Result<Vec<ResultRow>, StoreError>;

    /// Take or renew the lease on `job` for `holder` for `ttl_us`, timed by the database's clock
    /// (replicas' clocks may differ); false when another holder has an unexpired lease.
    async fn try_lease(&self, job: &str, holder: &str, ttl_us: i64) -> Result<bool, StoreError>;

    /// Give a lease back (only if `holder` has it).
    async fn release_lease(&self, job: &str, holder: &str) -> Result<(), StoreError>;

    /// Drop every lease; returns how many there were. Only for a store one process owns, at
    /// start: the leases left were held by a previous process that died.
    async fn clear_leases(&self) -> Result<u64, StoreError>;

    /// Delete the runs and results of windows that ended before `before` (seconds), except
    /// each job's newest window (the scheduler's memory of what ran); returns how many runs.
    async fn prune_runs(&self, before: i64) -> Result<u64, StoreError>;
}

/// The service's own alerts.
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Alerts that are pending or firing.
    async fn active_alerts(&self) -> Result<Vec<AlertRow>, StoreError>;

    /// Alerts updated at or after `since_us`, newest first, at most `limit` (any state).
    async fn recent_alerts(&self, since_us: i64, limit: i64) -> Result<Vec<AlertRow>, StoreError>;

    /// Insert (id 0) or update an alert; returns its id.
    async fn put_alert(&self, a: &AlertRow) -> Result<i64, StoreError>;

    /// Delete resolved alerts last updated before `before_us`; returns how many. Pending and
    /// firing alerts are never deleted, however old.
    async fn prune_resolved(&self, before_us: i64) -> Result<u64, StoreError>;
}

/// Where the store is; the one place a backend is chosen.
#[derive(Debug, Clone)]
pub enum Location {
    /// The embedded default: `flywheel.db` in this data directory, one process.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database shared by replicas.
    Postgres {
        url: crate::secret::Secret,
        options: postgres::PgOptions,
    },
}

impl Location {
    /// Where, for logs and errors (a URL without its password).
    pub fn describe(&self) -> String {
        match self {
            Location::Sqlite(dir) => sqlite::SqliteStore::path_in(dir).display().to_string(),
            Location::Postgres { url, .. } => crate::secret::redact_url(url.expose()),
        }
    }
}

/// Open the store at `location`, applying migrations.
pub async fn open(location: &Location) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    Ok(match location {
        Location::Sqlite(dir) => std::sync::Arc::new(sqlite::SqliteStore::open(dir).await?),
        Location::Postgres { url, options } => {
            std::sync::Arc::new(postgres::PgStore::open(url.expose(), options).await?)
        }
    })
}

/// Apply the migrations at `location` that are not applied yet (`flywheel migrate`).
pub async fn migrate(location: &Location) -> Result<(), StoreError> {
    open(location).await.map(|_| ())
}

/// The models that sent an event before `before` (seconds since the epoch), distinct, sorted.
pub async fn models_before(store: &dyn Store, before: i64) -> Result<Vec<String>, StoreError> {
    let mut models: Vec<String> = store
        .series()
        .type_counts()
        .await?
        .into_iter()
        .filter(|t| t.first_us.div_euclid(1_000_000) < before)
        .map(|t| t.model)
        .collect();
    models.sort();
    models.dedup();
    Ok(models)
}

/// Compare a key fingerprint with the stored one.
pub(crate) fn compare_key(found: &str, stored: String) -> Result<(), StoreError> {
    if stored == found {
        Ok(())
    } else {
        Err(StoreError::KeyMismatch {
            found: found.to_owned(),
            stored,
        })
    }
}

/// A stored count (never negative) as `u64`.
pub(crate) fn count(n: i64, what: &'static str) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt {
        what,
        detail: format!("negative count {n}"),
    })
}

/// Parse a stored enum value, or say which column holds what.
pub(crate) fn parse_enum<T>(
    what: &'static str,
    s: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    parse(s).ok_or_else(|| StoreError::Corrupt {
        what,
        detail: format!("unknown value {s:?}"),
    })
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    what: &'static str,
    s: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

/// A `LIKE` pattern matching strings that start with `p` (escape character `\\`).
pub(crate) fn like_prefix(p: &str) -> String {
    format!(
        "{}%",
        p.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    )
}

pub(crate) fn decode_summary(data: &[u8]) -> Result<FeatureSummary, StoreError> {
    postcard::from_bytes(data).map_err(|e| StoreError::Corrupt {
        what: "summary",
        detail: e.to_string(),
    })
}

pub(crate) fn decode_joint(
    features: &str,
    data: &[u8],
) -> Result<(Vec<String>, CoMoments), StoreError> {
    let names: Vec<String> = serde_json::from_str(features).map_err(|e| StoreError::Corrupt {
        what: "joint_moments.features",
        detail: e.to_string(),
    })?;
    let m: CoMoments = postcard::from_bytes(data).map_err(|e| StoreError::Corrupt {
        what: "joint_moments.data",
        detail: e.to_string(),
    })?;
    if m.dim() != names.len() || m.scatter.dim() != (names.len(), names.len()) {
        return Err(StoreError::Corrupt {
            what: "joint_moments.data",
            detail: format!(
                "{} features but moments of dimension {}",
                names.len(),
                m.dim()
            ),
        });
    }
    Ok((names, m))
}

/// The feature set of a joint row as stored (a JSON array of names).
pub(crate) fn encode_joint_names(names: &[String]) -> String {
    serde_json::to_string(names).unwrap_or_default()
}

/// An `audit_log` row as selected (id, at_us, action, detail), decoded the same in every backend.
pub(crate) fn audit_entry(
    (id, at_us, action, detail): (i64, i64, String, String),
) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        id,
        at_us,
        action,
        detail: parse_json("audit_log.detail", &detail)?,
    })
}

/// A `joint_moments` row as selected (version, bucket, features, data), decoded the same in
/// every backend.
pub(crate) fn joint_row(
    (version, bucket, features, data): (String, i64, String, Vec<u8>),
) -> Result<JointRow, StoreError> {
    let (features, moments) = decode_joint(&features, &data)?;
    Ok(JointRow {
        version,
        bucket,
        features,
        moments,
    })
}

/// An erasure's audit detail: counts and times only (no pseudonym, no raw id).
pub(crate) fn audit_detail(e: &Erasure) -> String {
    serde_json::json!({
        "already_erased": e.already_erased,
        "activity_rows_deleted": e.activity_rows_deleted,
        "erased_at_us": e.erased_at_us,
    })
    .to_string()
}

pub(crate) fn encode_joint(m: &CoMoments) -> Vec<u8> {
    // Serialising plain data into a Vec cannot fail.
    postcard::to_allocvec(m).unwrap_or_default()
}

pub(crate) fn encode_summary(s: &FeatureSummary) -> Vec<u8> {
    // Serialising plain data into a Vec cannot fail.
    postcard::to_allocvec(s).unwrap_or_default()
}

/// Journal payloads: `JOURNAL_MAGIC`, then one or more postcard-encoded `Vec<Event>` runs (a
/// batch is encoded a run at a time as it is validated). Not compressed: LZ4 took 0.7 µs per
/// event of CPU (about 8 % of the server's CPU at full ingest) to shrink a payload by 1.75×
/// (347 → 199 bytes per 25-feature event), and CPU is what bounds ingest on a small machine,
/// not disk bandwidth; journal rows are deleted once folded.
pub fn encode_batch(events: &[Event]) -> Vec<u8> {
    let mut out = JOURNAL_MAGIC.to_vec();
    encode_events_into(events, &mut out);
    out
}

/// Append one run of events to a payload that starts with `JOURNAL_MAGIC`.
pub fn encode_events_into(events: &[Event], out: &mut Vec<u8>) {
    // Serialising plain data into a Vec cannot fail.
    if let Ok(v) = postcard::to_extend(events, std::mem::take(out)) {
        *out = v;
    }
}

/// Marks the current journal layout. Rows that start with [`JOURNAL_MAGIC_V1`] (or with
/// neither: LZ4-compressed, written before that) hold the first layout, in which feedback had no
/// segment labels; they are decoded as that and converted.
pub(crate) const JOURNAL_MAGIC: &[u8; 4] = b"FWJ2";
pub(crate) const JOURNAL_MAGIC_V1: &[u8; 4] = b"FWJ1";

fn decode_runs<T: serde::de::DeserializeOwned + Into<Event>>(
    mut rest: &[u8],
) -> Result<Vec<Event>, postcard::Error> {
    let mut events = Vec::new();
    while !rest.is_empty() {
        let (run, tail): (Vec<T>, &[u8]) = postcard::take_from_bytes(rest)?;
        events.extend(run.into_iter().map(Into::into));
        rest = tail;
    }
    Ok(events)
}

pub fn decode_batch(payload: &[u8]) -> Result<Vec<Event>, StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt {
        what: "journal",
        detail,
    };
    if let Some(rest) = payload.strip_prefix(JOURNAL_MAGIC) {
        decode_runs::<Event>(rest).map_err(|e| corrupt(e.to_string()))
    } else if let Some(rest) = payload.strip_prefix(JOURNAL_MAGIC_V1) {
        decode_runs::<journal_v1::EventV1>(rest).map_err(|e| corrupt(e.to_string()))
    } else {
        let raw =
            lz4_flex::decompress_size_prepended(payload).map_err(|e| corrupt(e.to_string()))?;
        decode_runs::<journal_v1::EventV1>(&raw).map_err(|e| corrupt(e.to_string()))
    }
}

pub(crate) fn ids_to_bytes(ids: &[u64]) -> Vec<u8> {
    ids.iter().flat_map(|i| i.to_le_bytes()).collect()
}

pub(crate) fn ids_from_bytes(b: &[u8]) -> Result<Vec<u64>, StoreError> {
    if !b.len().is_multiple_of(8) {
        return Err(StoreError::Corrupt {
            what: "dedup chunk",
            detail: format!("{} bytes is not a multiple of 8", b.len()),
        });
    }
    Ok(b.chunks_exact(8)
        .map(|c| {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            u64::from_le_bytes(a)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Body, ModelRef, Value};

    fn batch() -> Vec<Event> {
        (0..3)
            .map(|i| Event {
                event_id: format!("e{i}"),
                occurred_at_us: 1_700_000_000_000_000 + i,
                model: ModelRef {
                    id: "m".into(),
                    version: "v1".into(),
                },
                user_key: Some(42),
                consent_training: None,
                body: Body::Interaction {
                    features: vec![
                        ("a".into(), Value::Number(i as f64)),
                        ("b".into(), Value::Category("x".into())),
                    ],
                    score: Some(0.5),
                    confidence: None,
                    label: None,
                    segment: Vec::new(),
                },
            })
            .collect()
    }

    #[test]
    fn journal_payloads_round_trip_and_older_lz4_rows_still_decode() {
        let events = batch();
        let payload = encode_batch(&events);
        assert!(payload.starts_with(JOURNAL_MAGIC));
        assert_eq!(decode_batch(&payload).expect("decodes"), events);
        // Encoded a run at a time, as request handlers do: the same events come back, in order.
        let mut runs = JOURNAL_MAGIC.to_vec();
        encode_events_into(&events[..1], &mut runs);
        encode_events_into(&events[1..], &mut runs);
        assert_eq!(decode_batch(&runs).expect("runs decode"), events);
        // A row written by earlier versions (LZ4 with a size prefix) is replayed too.
        let legacy = lz4_flex::compress_prepend_size(&postcard::to_allocvec(&events).expect("enc"));
        assert_eq!(decode_batch(&legacy).expect("legacy decodes"), events);
        // A damaged row is an error naming the journal, not a panic or an empty batch.
        let err = decode_batch(&payload[..payload.len() - 3]).expect_err("truncated");
        assert!(err.to_string().contains("journal"), "{err}");
    }
}
