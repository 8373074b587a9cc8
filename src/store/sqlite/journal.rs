//! Journal, writers, dedup chunks and checkpoints (SQLite).

use super::{SqliteStore, NOW_US};
use crate::store::*;
use sqlx::{Row, Sqlite, Transaction};

#[async_trait]
impl JournalStore for SqliteStore {
    fn shared(&self) -> bool {
        false
    }

    async fn register_writer(&self, name: &str) -> Result<i64, StoreError> {
        let r = sqlx::query(&format!(
            "INSERT INTO writers (name, folded_upto, heartbeat_us) VALUES (?, 0, {NOW_US})"
        ))
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(r.last_insert_rowid())
    }

    async fn heartbeat(&self, writer: i64) -> Result<(), StoreError> {
        let r = sqlx::query(&format!(
            "UPDATE writers SET heartbeat_us = {NOW_US} WHERE id = ?"
        ))
        .bind(writer)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::Fenced);
        }
        Ok(())
    }

    async fn adopt_orphans(
        &self,
        writer: i64,
        stale_after_secs: i64,
    ) -> Result<Adopted, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let dead: Vec<(i64, i64)> = sqlx::query_as(&format!(
            "SELECT id, folded_upto FROM writers
             WHERE id <> ? AND heartbeat_us <= {NOW_US} - ? ORDER BY id"
        ))
        .bind(writer)
        .bind(stale_after_secs.saturating_mul(1_000_000))
        .fetch_all(&mut *tx)
        .await?;
        let mut adopted = Adopted::default();
        for (id, upto) in dead {
            let rows = sqlx::query(
                "SELECT received_at, payload FROM journal WHERE writer = ? AND seq > ? ORDER BY seq",
            )
            .bind(id)
            .bind(upto)
            .fetch_all(&mut *tx)
            .await?;
            for r in rows {
                let received_at: i64 = r.try_get(0)?;
                let payload: Vec<u8> = r.try_get(1)?;
                let seq = sqlx::query(
                    "INSERT INTO journal (writer, received_at, payload) VALUES (?, ?, ?)",
                )
                .bind(writer)
                .bind(received_at)
                .bind(payload.as_slice())
                .execute(&mut *tx)
                .await?
                .last_insert_rowid();
                adopted.rows.push((seq, payload));
            }
            sqlx::query("DELETE FROM journal WHERE writer = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM writers WHERE id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            adopted.writers.push(id);
        }
        tx.commit().await?;
        Ok(adopted)
    }

    async fn append(
        &self,
        writer: i64,
        entries: &[JournalEntry<'_>],
        received_at: i64,
    ) -> Result<Appended, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut last = 0i64;
        for e in entries {
            let r =
                sqlx::query("INSERT INTO journal (writer, received_at, payload) VALUES (?, ?, ?)")
                    .bind(writer)
                    .bind(received_at)
                    .bind(e.payload)
                    .execute(&mut *tx)
                    .await
                    .map_err(fenced_on_fk)?;
            last = r.last_insert_rowid();
        }
        tx.commit().await?;
        Ok(Appended::Upto(last))
    }

    async fn checkpoint(
        &self,
        writer: i64,
        delta: &Delta,
        dedup: Option<&DedupChunk>,
        journal_upto: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let r = sqlx::query(&format!(
            "UPDATE writers SET folded_upto = max(folded_upto, ?), heartbeat_us = {NOW_US} WHERE id = ?"
        ))
        .bind(journal_upto)
        .bind(writer)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::Fenced);
        }
        merge_delta(&mut tx, delta).await?;
        if let Some(c) = dedup {
            sqlx::query("INSERT INTO dedup_chunks (created_at, ids) VALUES (?, ?)")
                .bind(c.created_at)
                .bind(ids_to_bytes(&c.ids))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn retire_writer(&self, writer: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "DELETE FROM journal WHERE writer = ?1 AND seq <= (SELECT folded_upto FROM writers WHERE id = ?1)",
        )
        .bind(writer)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM writers WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM journal WHERE writer = ?1)",
        )
        .bind(writer)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn trim(&self, writer: i64, limit: i64) -> Result<u64, StoreError> {
        let r = sqlx::query(
            "DELETE FROM journal WHERE seq IN (
                SELECT seq FROM journal WHERE writer = ?1
                AND seq <= (SELECT folded_upto FROM writers WHERE id = ?1) ORDER BY seq LIMIT ?2)",
        )
        .bind(writer)
        .bind(limit)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    async fn unfolded(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM journal j JOIN writers w ON w.id = j.writer WHERE j.seq > w.folded_upto",
        )
        .fetch_one(&self.pool)
        .await?;
        count(n, "journal")
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
                    created_at: r.try_get(0)?,
                    ids: ids_from_bytes(&r.try_get::<Vec<u8>, _>(1)?)?,
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
}

/// A journal row refused because its writer was removed (adopted): the writer is fenced.
fn fenced_on_fk(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => StoreError::Fenced,
        _ => StoreError::Database(e),
    }
}

/// Merge a delta into the stored summaries, counts, records and activity.
async fn merge_delta(tx: &mut Transaction<'_, Sqlite>, delta: &Delta) -> Result<(), StoreError> {
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
                    .fetch_optional(&mut **tx)
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
                    .execute(&mut **tx)
                    .await?;
                }
            }
            for ((bucket, names), m) in &vd.joint {
                let features = encode_joint_names(names);
                let existing: Option<Vec<u8>> = sqlx::query_scalar(
                    "SELECT data FROM joint_moments WHERE model = ? AND version = ? AND bucket = ? AND features = ?",
                )
                .bind(model)
                .bind(version)
                .bind(bucket)
                .bind(&features)
                .fetch_optional(&mut **tx)
                .await?;
                let merged = match existing {
                    Some(d) => {
                        let (_, mut old) = decode_joint(&features, &d)?;
                        old.merge(m);
                        encode_joint(&old)
                    }
                    None => encode_joint(m),
                };
                sqlx::query(
                    "INSERT OR REPLACE INTO joint_moments (model, version, bucket, features, data) VALUES (?, ?, ?, ?, ?)",
                )
                .bind(model)
                .bind(version)
                .bind(bucket)
                .bind(&features)
                .bind(merged)
                .execute(&mut **tx)
                .await?;
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
                .execute(&mut **tx)
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
                .execute(&mut **tx)
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
        .execute(&mut **tx)
        .await?;
    }
    for (model, days) in &delta.activity {
        for (day, user) in days {
            sqlx::query(
                "INSERT OR IGNORE INTO user_activity (model, day, user_key) SELECT ?, ?, ?
                 WHERE NOT EXISTS (SELECT 1 FROM erasures WHERE user_key = ? AND erased_at_us >= ?)",
            )
            .bind(model)
            .bind(day)
            .bind(*user as i64)
            .bind(*user as i64)
            .bind(day * 86_400_000_000)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}
