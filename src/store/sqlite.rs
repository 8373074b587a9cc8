//! The embedded SQLite store: one file (`<data_dir>/flywheel.db`), WAL mode, `synchronous=FULL`
//! so that a committed journal batch survives a crash of the process or the machine.
//!
//! Write transactions start with `BEGIN IMMEDIATE`: they take the write lock up front and wait
//! for it (busy timeout), instead of starting as readers and failing with SQLITE_BUSY_SNAPSHOT
//! when another connection (a job, the ingest checkpoint) committed in between.

use super::*;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

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
        let path = data_dir.join("flywheel.db");
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .pragma("temp_store", "memory");
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    pub fn path_in(data_dir: &Path) -> std::path::PathBuf {
        data_dir.join("flywheel.db")
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn append_journal(
        &self,
        payloads: &[Vec<u8>],
        received_at: i64,
    ) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut last = 0i64;
        for p in payloads {
            let r = sqlx::query("INSERT INTO journal (received_at, payload) VALUES (?, ?)")
                .bind(received_at)
                .bind(p.as_slice())
                .execute(&mut *tx)
                .await?;
            last = r.last_insert_rowid();
        }
        tx.commit().await?;
        Ok(last)
    }

    async fn journal_after(&self, seq: i64, limit: i64) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        let rows =
            sqlx::query("SELECT seq, payload FROM journal WHERE seq > ? ORDER BY seq LIMIT ?")
                .bind(seq)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get::<i64, _>(0), r.get::<Vec<u8>, _>(1)))
            .collect())
    }

    async fn checkpoint(
        &self,
        delta: &Delta,
        dedup: Option<&DedupChunk>,
        journal_upto: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for (model, versions) in &delta.models {
            for (version, vd) in versions {
                for ((class, bucket), m) in &vd.groups {
                    for (name, sm) in m {
                        let existing: Option<Vec<u8>> = sqlx::query_scalar(
                            "SELECT data FROM summaries WHERE model = ? AND version = ? AND class = ? AND bucket = ? AND name = ?",
                        )
                        .bind(model)
                        .bind(version)
                        .bind(class.as_str())
                        .bind(bucket)
                        .bind(name)
                        .fetch_optional(&mut *tx)
                        .await?;
                        let merged = match existing {
                            Some(d) => {
                                let mut old = decode_summary(&d)?;
                                old.merge(sm);
                                encode_summary(&old)
                            }
                            None => encode_summary(sm),
                        };
                        sqlx::query(
                            "INSERT OR REPLACE INTO summaries (model, version, class, name, bucket, data) VALUES (?, ?, ?, ?, ?, ?)",
                        )
                        .bind(model)
                        .bind(version)
                        .bind(class.as_str())
                        .bind(name)
                        .bind(bucket)
                        .bind(merged)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                for ((event_type, bucket), c) in &vd.counts {
                    sqlx::query(
                        "INSERT INTO event_counts (model, version, event_type, bucket, n, first_us, last_us)
                         VALUES (?, ?, ?, ?, ?, ?, ?)
                         ON CONFLICT (model, version, event_type, bucket) DO UPDATE SET
                           n = n + excluded.n,
                           first_us = min(first_us, excluded.first_us),
                           last_us = max(last_us, excluded.last_us)",
                    )
                    .bind(model)
                    .bind(version)
                    .bind(event_type.as_str())
                    .bind(bucket)
                    .bind(c.n as i64)
                    .bind(c.first_us)
                    .bind(c.last_us)
                    .execute(&mut *tx)
                    .await?;
                }
                for ((stage, reason, bucket), n) in &vd.funnel {
                    sqlx::query(
                        "INSERT INTO funnel_counts (model, version, stage, reason, bucket, n) VALUES (?, ?, ?, ?, ?, ?)
                         ON CONFLICT (model, version, stage, reason, bucket) DO UPDATE SET n = n + excluded.n",
                    )
                    .bind(model)
                    .bind(version)
                    .bind(stage.as_str())
                    .bind(reason)
                    .bind(bucket)
                    .bind(*n as i64)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        for e in &delta.records {
            let body = serde_json::to_string(e).map_err(|err| StoreError::Corrupt {
                what: "record",
                detail: err.to_string(),
            })?;
            sqlx::query(
                "INSERT OR IGNORE INTO records (event_id, model, version, event_type, occurred_at_us, body) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&e.event_id)
            .bind(&e.model.id)
            .bind(&e.model.version)
            .bind(e.event_type().as_str())
            .bind(e.occurred_at_us)
            .bind(body)
            .execute(&mut *tx)
            .await?;
        }
        for (model, days) in &delta.activity {
            for (day, user) in days {
                sqlx::query(
                    "INSERT OR IGNORE INTO user_activity (model, day, user_key) VALUES (?, ?, ?)",
                )
                .bind(model)
                .bind(day)
                .bind(*user as i64)
                .execute(&mut *tx)
                .await?;
            }
        }
        if let Some(c) = dedup {
            sqlx::query("INSERT INTO dedup_chunks (created_at, ids) VALUES (?, ?)")
                .bind(c.created_at)
                .bind(ids_to_bytes(&c.ids))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE meta SET value = max(value, ?) WHERE key = 'journal_folded_upto'")
            .bind(journal_upto)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn journal_watermark(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'journal_folded_upto'")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn trim_journal(&self, limit: i64) -> Result<u64, StoreError> {
        let r = sqlx::query(
            "DELETE FROM journal WHERE seq IN (
                SELECT seq FROM journal
                WHERE seq <= (SELECT value FROM meta WHERE key = 'journal_folded_upto')
                ORDER BY seq LIMIT ?)",
        )
        .bind(limit)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    async fn dedup_chunks(&self, since: i64) -> Result<Vec<DedupChunk>, StoreError> {
        let rows = sqlx::query(
            "SELECT created_at, ids FROM dedup_chunks WHERE created_at >= ? ORDER BY chunk",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(DedupChunk {
                    created_at: r.get(0),
                    ids: ids_from_bytes(&r.get::<Vec<u8>, _>(1))?,
                })
            })
            .collect()
    }

    async fn purge(&self, dedup_before: i64, activity_before: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM dedup_chunks WHERE created_at < ?")
            .bind(dedup_before)
            .execute(&self.pool)
            .await?;
        sqlx::query("DELETE FROM user_activity WHERE day < ?")
            .bind(activity_before)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn type_counts(&self) -> Result<Vec<TypeCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT model, version, event_type, sum(n), min(first_us), max(last_us)
             FROM event_counts GROUP BY model, version, event_type ORDER BY model, version, event_type",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let et: String = r.get(2);
                Ok(TypeCount {
                    model: r.get(0),
                    version: r.get(1),
                    event_type: EventType::parse(&et).ok_or(StoreError::Corrupt {
                        what: "event_counts.event_type",
                        detail: et.clone(),
                    })?,
                    count: r.get::<i64, _>(3) as u64,
                    first_us: r.get(4),
                    last_us: r.get(5),
                })
            })
            .collect()
    }

    async fn summaries(
        &self,
        model: &str,
        class: Option<SeriesClass>,
        from: i64,
        to: i64,
    ) -> Result<Vec<SummaryRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT version, class, name, bucket, data FROM summaries
             WHERE model = ? AND (? IS NULL OR class = ?) AND bucket >= ? AND bucket < ?
             ORDER BY version, class, name, bucket",
        )
        .bind(model)
        .bind(class.map(SeriesClass::as_str))
        .bind(class.map(SeriesClass::as_str))
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let c: String = r.get(1);
                Ok(SummaryRow {
                    version: r.get(0),
                    class: SeriesClass::parse(&c).ok_or(StoreError::Corrupt {
                        what: "summaries.class",
                        detail: c.clone(),
                    })?,
                    name: r.get(2),
                    bucket: r.get(3),
                    summary: decode_summary(&r.get::<Vec<u8>, _>(4))?,
                })
            })
            .collect()
    }

    async fn records(&self, model: &str, event_type: EventType) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(
            "SELECT body FROM records WHERE model = ? AND event_type = ? ORDER BY occurred_at_us, event_id",
        )
        .bind(model)
        .bind(event_type.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let body: String = r.get(0);
                serde_json::from_str(&body).map_err(|e| StoreError::Corrupt {
                    what: "record",
                    detail: e.to_string(),
                })
            })
            .collect()
    }

    async fn bucket_counts(
        &self,
        model: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<BucketCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT version, event_type, bucket, n, first_us FROM event_counts
             WHERE model = ? AND bucket >= ? AND bucket < ? ORDER BY bucket, version, event_type",
        )
        .bind(model)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let et: String = r.get(1);
                Ok(BucketCount {
                    version: r.get(0),
                    event_type: EventType::parse(&et).ok_or(StoreError::Corrupt {
                        what: "event_counts.event_type",
                        detail: et.clone(),
                    })?,
                    bucket: r.get(2),
                    n: r.get::<i64, _>(3) as u64,
                    first_us: r.get(4),
                })
            })
            .collect()
    }

    async fn funnel_counts(
        &self,
        model: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<FunnelCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT version, stage, reason, bucket, n FROM funnel_counts
             WHERE model = ? AND bucket >= ? AND bucket < ? ORDER BY bucket, version, stage, reason",
        )
        .bind(model)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let st: String = r.get(1);
                Ok(FunnelCount {
                    version: r.get(0),
                    stage: crate::events::Stage::parse(&st).ok_or(StoreError::Corrupt {
                        what: "funnel_counts.stage",
                        detail: st.clone(),
                    })?,
                    reason: r.get(2),
                    day: r.get(3),
                    n: r.get::<i64, _>(4) as u64,
                })
            })
            .collect()
    }

    async fn activity(
        &self,
        model: &str,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT day, user_key FROM user_activity WHERE model = ? AND day >= ? AND day < ?",
        )
        .bind(model)
        .bind(from_day)
        .bind(to_day)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get::<i64, _>(0), r.get::<i64, _>(1) as u64))
            .collect())
    }

    async fn put_baseline(
        &self,
        info: &BaselineInfo,
        summaries: &[NamedSummary],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("DELETE FROM baseline_summaries WHERE name = ?")
            .bind(&info.name)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT OR REPLACE INTO baselines (name, model, created_at_us, rows, source) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&info.name)
        .bind(&info.model)
        .bind(info.created_at_us)
        .bind(info.rows as i64)
        .bind(&info.source)
        .execute(&mut *tx)
        .await?;
        for s in summaries {
            sqlx::query(
                "INSERT INTO baseline_summaries (name, class, feature, data) VALUES (?, ?, ?, ?)",
            )
            .bind(&info.name)
            .bind(s.class.as_str())
            .bind(&s.name)
            .bind(encode_summary(&s.summary))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn baselines(&self) -> Result<Vec<BaselineInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT b.name, b.model, b.created_at_us, b.rows, b.source,
                    (SELECT count(*) FROM baseline_summaries s WHERE s.name = b.name)
             FROM baselines b ORDER BY b.name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|r| baseline_info(&r)).collect())
    }

    async fn baseline_summaries(
        &self,
        name: &str,
    ) -> Result<Option<(BaselineInfo, Vec<NamedSummary>)>, StoreError> {
        let Some(info) = sqlx::query(
            "SELECT b.name, b.model, b.created_at_us, b.rows, b.source,
                    (SELECT count(*) FROM baseline_summaries s WHERE s.name = b.name)
             FROM baselines b WHERE b.name = ?",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT class, feature, data FROM baseline_summaries WHERE name = ? ORDER BY class, feature",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        let sums = rows
            .into_iter()
            .map(|r| {
                Ok(NamedSummary {
                    class: parse_class(&r.get::<String, _>(0))?,
                    name: r.get(1),
                    summary: decode_summary(&r.get::<Vec<u8>, _>(2))?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some((baseline_info(&info), sums)))
    }

    async fn save_run(&self, run: &JobRun, results: &[ResultRow]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("DELETE FROM results WHERE job = ? AND window_end = ?")
            .bind(&run.job)
            .bind(run.window_end)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT OR REPLACE INTO job_runs (job, window_start, window_end, fired_at, started_at_us, duration_us, outcome, detail)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&run.job)
        .bind(run.window_start)
        .bind(run.window_end)
        .bind(run.fired_at)
        .bind(run.started_at.micros())
        .bind(run.duration_us)
        .bind(run.outcome.as_str())
        .bind(run.detail.to_string())
        .execute(&mut *tx)
        .await?;
        for r in results {
            sqlx::query(
                "INSERT OR REPLACE INTO results (job, model, subject, window_start, window_end, data) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&r.job)
            .bind(&r.model)
            .bind(&r.subject)
            .bind(r.window_start)
            .bind(r.window_end)
            .bind(r.data.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn runs(&self, job: Option<&str>, limit: i64) -> Result<Vec<JobRun>, StoreError> {
        let rows = sqlx::query(
            "SELECT job, window_start, window_end, fired_at, started_at_us, duration_us, outcome, detail
             FROM job_runs WHERE (? IS NULL OR job = ?) ORDER BY started_at_us DESC, job LIMIT ?",
        )
        .bind(job)
        .bind(job)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(JobRun {
                    job: r.get(0),
                    window_start: r.get(1),
                    window_end: r.get(2),
                    fired_at: r.get(3),
                    started_at: Timestamp::from_micros(r.get(4)),
                    duration_us: r.get(5),
                    outcome: {
                        let o: String = r.get(6);
                        Outcome::parse(&o).ok_or_else(|| StoreError::Corrupt {
                            what: "job_runs.outcome",
                            detail: format!("unknown outcome {o:?}"),
                        })?
                    },
                    detail: parse_json("job_runs.detail", &r.get::<String, _>(7))?,
                })
            })
            .collect()
    }

    async fn last_fire(&self, job: &str) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT max(fired_at) FROM job_runs WHERE job = ?")
                .bind(job)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn results(&self, q: &ResultQuery) -> Result<Vec<ResultRow>, StoreError> {
        let prefix = q.job_prefix.as_ref().map(|p| {
            format!(
                "{}%",
                p.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            )
        });
        let order = if q.latest.is_some() { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT job, model, subject, window_start, window_end, data FROM results
             WHERE (?1 IS NULL OR job LIKE ?1 ESCAPE '\\') AND (?2 IS NULL OR model = ?2)
               AND (?3 IS NULL OR subject = ?3) AND (?4 IS NULL OR window_end > ?4)
               AND (?5 IS NULL OR window_end <= ?5)
             ORDER BY window_end {order}, job, model, subject LIMIT ?6"
        );
        let rows = sqlx::query(&sql)
            .bind(prefix)
            .bind(&q.model)
            .bind(&q.subject)
            .bind(q.from)
            .bind(q.to)
            .bind(q.latest.unwrap_or(-1))
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(ResultRow {
                    job: r.get(0),
                    model: r.get(1),
                    subject: r.get(2),
                    window_start: r.get(3),
                    window_end: r.get(4),
                    data: parse_json("results.data", &r.get::<String, _>(5))?,
                })
            })
            .collect()
    }

    async fn try_lease(
        &self,
        job: &str,
        holder: &str,
        now_us: i64,
        ttl_us: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO leases (job, holder, expires_at_us) VALUES (?1, ?2, ?3)
             ON CONFLICT (job) DO UPDATE SET holder = ?2, expires_at_us = ?3
             WHERE leases.holder = ?2 OR leases.expires_at_us <= ?4",
        )
        .bind(job)
        .bind(holder)
        .bind(now_us.saturating_add(ttl_us))
        .bind(now_us)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn active_alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE state IN ('pending', 'firing') ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(alert_row).collect()
    }

    async fn recent_alerts(&self, since_us: i64, limit: i64) -> Result<Vec<AlertRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE updated_at_us >= ? ORDER BY updated_at_us DESC, id DESC LIMIT ?"
        ))
        .bind(since_us)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(alert_row).collect()
    }

    async fn put_alert(&self, a: &AlertRow) -> Result<i64, StoreError> {
        let labels = serde_json::to_string(&a.labels).unwrap_or_default();
        let annotations = serde_json::to_string(&a.annotations).unwrap_or_default();
        if a.id == 0 {
            let r = sqlx::query(
                "INSERT INTO alerts (fingerprint, source, state, labels, annotations, hits, clean, created_at_us, starts_at_us, ends_at_us, updated_at_us, notified_at_us)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&a.fingerprint)
            .bind(&a.source)
            .bind(a.state.as_str())
            .bind(labels)
            .bind(annotations)
            .bind(a.hits)
            .bind(a.clean)
            .bind(a.created_at.micros())
            .bind(a.starts_at.map(Timestamp::micros))
            .bind(a.ends_at.map(Timestamp::micros))
            .bind(a.updated_at.micros())
            .bind(a.notified_at.map(Timestamp::micros))
            .execute(&self.pool)
            .await?;
            Ok(r.last_insert_rowid())
        } else {
            sqlx::query(
                "UPDATE alerts SET state = ?, labels = ?, annotations = ?, hits = ?, clean = ?, starts_at_us = ?, ends_at_us = ?, updated_at_us = ?, notified_at_us = ? WHERE id = ?",
            )
            .bind(a.state.as_str())
            .bind(labels)
            .bind(annotations)
            .bind(a.hits)
            .bind(a.clean)
            .bind(a.starts_at.map(Timestamp::micros))
            .bind(a.ends_at.map(Timestamp::micros))
            .bind(a.updated_at.micros())
            .bind(a.notified_at.map(Timestamp::micros))
            .bind(a.id)
            .execute(&self.pool)
            .await?;
            Ok(a.id)
        }
    }

    async fn release_lease(&self, job: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE job = ? AND holder = ?")
            .bind(job)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

fn alert_row(r: &sqlx::sqlite::SqliteRow) -> Result<AlertRow, StoreError> {
    let map = |what: &'static str, s: String| {
        serde_json::from_str(&s).map_err(|e| StoreError::Corrupt {
            what,
            detail: e.to_string(),
        })
    };
    Ok(AlertRow {
        id: r.get(0),
        fingerprint: r.get(1),
        source: r.get(2),
        state: {
            let s: String = r.get(3);
            AlertState::parse(&s).ok_or_else(|| StoreError::Corrupt {
                what: "alerts.state",
                detail: format!("unknown state {s:?}"),
            })?
        },
        labels: map("alerts.labels", r.get(4))?,
        annotations: map("alerts.annotations", r.get(5))?,
        hits: r.get(6),
        clean: r.get(7),
        created_at: Timestamp::from_micros(r.get(8)),
        starts_at: r.get::<Option<i64>, _>(9).map(Timestamp::from_micros),
        ends_at: r.get::<Option<i64>, _>(10).map(Timestamp::from_micros),
        updated_at: Timestamp::from_micros(r.get(11)),
        notified_at: r.get::<Option<i64>, _>(12).map(Timestamp::from_micros),
    })
}

const ALERT_COLUMNS: &str = "id, fingerprint, source, state, labels, annotations, hits, clean, created_at_us, starts_at_us, ends_at_us, updated_at_us, notified_at_us";

fn baseline_info(r: &sqlx::sqlite::SqliteRow) -> BaselineInfo {
    BaselineInfo {
        name: r.get(0),
        model: r.get(1),
        created_at_us: r.get(2),
        rows: r.get::<i64, _>(3) as u64,
        source: r.get(4),
        features: r.get::<i64, _>(5) as u64,
    }
}

fn parse_class(c: &str) -> Result<SeriesClass, StoreError> {
    SeriesClass::parse(c).ok_or_else(|| StoreError::Corrupt {
        what: "summary class",
        detail: c.to_owned(),
    })
}

fn parse_json(what: &'static str, s: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}
