//! Journal, writers, shared deduplication and checkpoints (PostgreSQL).

use super::PgStore;
use crate::store::*;
use sqlx::{Postgres, Row, Transaction};

#[async_trait]
impl JournalStore for PgStore {
    fn shared(&self) -> bool {
        true
    }

    async fn register_writer(&self, name: &str) -> Result<i64, StoreError> {
        Ok(
            sqlx::query_scalar("INSERT INTO writers (name) VALUES ($1) RETURNING id")
                .bind(name)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn heartbeat(&self, writer: i64) -> Result<(), StoreError> {
        let r = sqlx::query("UPDATE writers SET heartbeat_at = now() WHERE id = $1")
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
        let mut tx = self.pool.begin().await?;
        // A writer busy appending or checkpointing holds its row: skipped, it is alive.
        let dead: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT id, folded_upto FROM writers
             WHERE id <> $1 AND heartbeat_at <= now() - make_interval(secs => $2)
             ORDER BY id FOR UPDATE SKIP LOCKED",
        )
        .bind(writer)
        .bind(stale_after_secs as f64)
        .fetch_all(&mut *tx)
        .await?;
        let mut adopted = Adopted::default();
        for (id, upto) in dead {
            let rows = sqlx::query(
                "INSERT INTO journal (writer, received_at, payload)
                 SELECT $1, received_at, payload FROM journal WHERE writer = $2 AND seq > $3 ORDER BY seq
                 RETURNING seq, payload",
            )
            .bind(writer)
            .bind(id)
            .bind(upto)
            .fetch_all(&mut *tx)
            .await?;
            for r in rows {
                adopted.rows.push((r.try_get(0)?, r.try_get(1)?));
            }
            sqlx::query("DELETE FROM journal WHERE writer = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM writers WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            adopted.writers.push(id);
        }
        tx.commit().await?;
        adopted.rows.sort_by_key(|r| r.0);
        Ok(adopted)
    }

    async fn append(
        &self,
        writer: i64,
        entries: &[JournalEntry<'_>],
        received_at: i64,
    ) -> Result<Appended, StoreError> {
        let mut ids: Vec<i64> = entries
            .iter()
            .flat_map(|e| e.ids.iter().map(|&h| h as i64))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut tx = self.pool.begin().await?;
        if !ids.is_empty() {
            // New ids are inserted; an id seen before the horizon counts as new again.
            let fresh: Vec<i64> = sqlx::query_scalar(
                "INSERT INTO event_ids (id, seen_at) SELECT unnest($1::int8[]), $2
                 ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at
                 WHERE event_ids.seen_at < $3
                 RETURNING id",
            )
            .bind(&ids)
            .bind(received_at)
            .bind(received_at - self.dedup_horizon_secs)
            .fetch_all(&mut *tx)
            .await?;
            if fresh.len() < ids.len() {
                let fresh: std::collections::HashSet<i64> = fresh.into_iter().collect();
                let dups = ids
                    .iter()
                    .filter(|i| !fresh.contains(i))
                    .map(|&i| i as u64)
                    .collect();
                tx.rollback().await?;
                return Ok(Appended::Duplicates(dups));
            }
        }
        let payloads: Vec<&[u8]> = entries.iter().map(|e| e.payload).collect();
        let last: Option<i64> = sqlx::query_scalar(
            "WITH ins AS (
                INSERT INTO journal (writer, received_at, payload)
                SELECT $1, $2, unnest($3::bytea[]) RETURNING seq)
             SELECT max(seq) FROM ins",
        )
        .bind(writer)
        .bind(received_at)
        .bind(&payloads)
        .fetch_one(&mut *tx)
        .await
        .map_err(fenced_on_fk)?;
        tx.commit().await?;
        Ok(Appended::Upto(last.unwrap_or(0)))
    }

    async fn checkpoint(
        &self,
        writer: i64,
        delta: &Delta,
        dedup: Option<&DedupChunk>,
        journal_upto: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "UPDATE writers SET folded_upto = GREATEST(folded_upto, $1), heartbeat_at = now() WHERE id = $2",
        )
        .bind(journal_upto)
        .bind(writer)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::Fenced);
        }
        merge_delta(&mut tx, delta).await?;
        if let Some(c) = dedup {
            sqlx::query("INSERT INTO dedup_chunks (created_at, ids) VALUES ($1, $2)")
                .bind(c.created_at)
                .bind(ids_to_bytes(&c.ids))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn retire_writer(&self, writer: i64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM journal WHERE writer = $1 AND seq <= (SELECT folded_upto FROM writers WHERE id = $1)",
        )
        .bind(writer)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM writers WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM journal WHERE writer = $1)",
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
                SELECT seq FROM journal WHERE writer = $1
                AND seq <= (SELECT folded_upto FROM writers WHERE id = $1) ORDER BY seq LIMIT $2)",
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
            "SELECT created_at, ids FROM dedup_chunks WHERE created_at >= $1 ORDER BY chunk",
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
        // Every writer of every replica purges after its checkpoint; one at a time is enough,
        // and concurrent range deletes of the same rows would only wait for (or deadlock on)
        // each other. A writer that finds the purge taken skips it.
        let mut tx = self.pool.begin().await?;
        let mine: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(PURGE_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !mine {
            return Ok(());
        }
        sqlx::query("DELETE FROM dedup_chunks WHERE created_at < $1")
            .bind(dedup_before)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM event_ids WHERE seen_at < $1")
            .bind(dedup_before)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM user_activity WHERE day < $1")
            .bind(activity_before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The advisory lock key of the purge ("fw-purge" in ASCII).
const PURGE_LOCK: i64 = 0x6677_2d70_7572_6765;

/// A journal row refused because its writer was removed (adopted): the writer is fenced.
fn fenced_on_fk(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => StoreError::Fenced,
        _ => StoreError::Database(e),
    }
}

/// Merge a delta into the shared state. Summaries are read under a row lock and rewritten,
/// in primary-key order (the delta's maps are sorted the same way), so concurrent checkpoints
/// of several replicas serialise per row instead of overwriting each other.
async fn merge_delta(tx: &mut Transaction<'_, Postgres>, delta: &Delta) -> Result<(), StoreError> {
    // Lock rows in primary-key order, the same in every replica: no lock-order deadlocks.
    let mut keyed = Vec::new();
    for (model, versions) in &delta.models {
        for (version, vd) in versions {
            for ((class, bucket), m) in &vd.groups {
                for (name, sm) in m {
                    keyed.push(((model, version, class.as_str(), *bucket, name), sm));
                }
            }
        }
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    for ((model, version, class, bucket, name), sm) in keyed {
        let inserted = sqlx::query(
            "INSERT INTO summaries (model, version, class, name, bucket, data)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(model)
        .bind(version)
        .bind(class)
        .bind(name)
        .bind(bucket)
        .bind(encode_summary(sm))
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if inserted == 1 {
            continue;
        }
        let existing: Vec<u8> = sqlx::query_scalar(
            "SELECT data FROM summaries
             WHERE model = $1 AND version = $2 AND class = $3 AND bucket = $4 AND name = $5
             FOR UPDATE",
        )
        .bind(model)
        .bind(version)
        .bind(class)
        .bind(bucket)
        .bind(name)
        .fetch_one(&mut **tx)
        .await?;
        let mut old = decode_summary(&existing)?;
        old.merge(sm);
        sqlx::query(
            "UPDATE summaries SET data = $6
             WHERE model = $1 AND version = $2 AND class = $3 AND bucket = $4 AND name = $5",
        )
        .bind(model)
        .bind(version)
        .bind(class)
        .bind(bucket)
        .bind(name)
        .bind(encode_summary(&old))
        .execute(&mut **tx)
        .await?;
    }
    // Joint co-moments: the same insert-or-lock-and-merge, in primary-key order.
    let mut joint = Vec::new();
    for (model, versions) in &delta.models {
        for (version, vd) in versions {
            for ((bucket, names), m) in &vd.joint {
                joint.push(((model, version, *bucket, encode_joint_names(names)), m));
            }
        }
    }
    joint.sort_by(|a, b| a.0.cmp(&b.0));
    for ((model, version, bucket, features), m) in joint {
        let inserted = sqlx::query(
            "INSERT INTO joint_moments (model, version, bucket, features, data)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(model)
        .bind(version)
        .bind(bucket)
        .bind(&features)
        .bind(encode_joint(m))
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if inserted == 1 {
            continue;
        }
        let existing: Vec<u8> = sqlx::query_scalar(
            "SELECT data FROM joint_moments
             WHERE model = $1 AND version = $2 AND bucket = $3 AND features = $4 FOR UPDATE",
        )
        .bind(model)
        .bind(version)
        .bind(bucket)
        .bind(&features)
        .fetch_one(&mut **tx)
        .await?;
        let (_, mut old) = decode_joint(&features, &existing)?;
        old.merge(m);
        sqlx::query(
            "UPDATE joint_moments SET data = $5
             WHERE model = $1 AND version = $2 AND bucket = $3 AND features = $4",
        )
        .bind(model)
        .bind(version)
        .bind(bucket)
        .bind(&features)
        .bind(encode_joint(&old))
        .execute(&mut **tx)
        .await?;
    }
    let mut models: Vec<_> = delta.models.iter().collect();
    models.sort_by(|a, b| a.0.cmp(b.0));
    for (model, versions) in models {
        let mut versions: Vec<_> = versions.iter().collect();
        versions.sort_by(|a, b| a.0.cmp(b.0));
        for (version, vd) in versions {
            let mut counts: Vec<_> = vd.counts.iter().collect();
            counts.sort_by_key(|((t, b), _)| (t.as_str(), *b));
            let mut funnel: Vec<_> = vd.funnel.iter().collect();
            funnel.sort_by(|((s1, r1, b1), _), ((s2, r2, b2), _)| {
                (s1.as_str(), r1, b1).cmp(&(s2.as_str(), r2, b2))
            });
            for ((event_type, bucket), c) in counts {
                sqlx::query(
                    "INSERT INTO event_counts (model, version, event_type, bucket, n, first_us, last_us)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (model, version, event_type, bucket) DO UPDATE SET
                       n = event_counts.n + excluded.n,
                       first_us = LEAST(event_counts.first_us, excluded.first_us),
                       last_us = GREATEST(event_counts.last_us, excluded.last_us)",
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
            for ((stage, reason, bucket), n) in funnel {
                sqlx::query(
                    "INSERT INTO funnel_counts (model, version, stage, reason, bucket, n) VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (model, version, stage, reason, bucket) DO UPDATE SET n = funnel_counts.n + excluded.n",
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
    // Every row below is taken in a fixed order too (event id; model, day, user).
    let mut records: Vec<&crate::events::Event> = delta.records.iter().collect();
    records.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    for e in records {
        let body = serde_json::to_string(e).map_err(|err| StoreError::Corrupt {
            what: "record",
            detail: err.to_string(),
        })?;
        sqlx::query(
            "INSERT INTO records (event_id, model, version, event_type, occurred_at_us, body) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (event_id) DO NOTHING",
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
    let mut activity: Vec<_> = delta.activity.iter().collect();
    activity.sort_by(|a, b| a.0.cmp(b.0));
    for (model, days) in activity {
        let mut days: Vec<(i64, i64)> = days.iter().map(|(d, u)| (*d, *u as i64)).collect();
        days.sort_unstable();
        let (d, u): (Vec<i64>, Vec<i64>) = days.into_iter().unzip();
        sqlx::query(
            "INSERT INTO user_activity (model, day, user_key)
             SELECT $1, k.d, k.u FROM unnest($2::int8[], $3::int8[]) AS k(d, u)
             WHERE NOT EXISTS (
                 SELECT 1 FROM erasures e WHERE e.user_key = k.u AND e.erased_at_us >= k.d * 86400000000)
             ON CONFLICT DO NOTHING",
        )
        .bind(model)
        .bind(&d)
        .bind(&u)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
