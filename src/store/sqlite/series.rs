//! Summaries, counts, records, activity and baselines (SQLite).

use super::SqliteStore;
use crate::store::*;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

#[async_trait]
impl SeriesStore for SqliteStore {
    async fn type_counts(&self) -> Result<Vec<TypeCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT model, version, event_type, sum(n), min(first_us), max(last_us)
             FROM event_counts GROUP BY model, version, event_type ORDER BY model, version, event_type",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(TypeCount {
                    model: r.try_get(0)?,
                    version: r.try_get(1)?,
                    event_type: parse_enum(
                        "event_counts.event_type",
                        &r.try_get::<String, _>(2)?,
                        EventType::parse,
                    )?,
                    count: count(r.try_get(3)?, "event_counts.n")?,
                    first_us: r.try_get(4)?,
                    last_us: r.try_get(5)?,
                })
            })
            .collect()
    }

    async fn erase_user(&self, user_key: u64, at_us: i64) -> Result<Erasure, StoreError> {
        let key = user_key as i64;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let before: Option<i64> =
            sqlx::query_scalar("SELECT erased_at_us FROM erasures WHERE user_key = ?")
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
        let erased_at_us = before.unwrap_or(at_us);
        if before.is_none() {
            sqlx::query("INSERT INTO erasures (user_key, erased_at_us) VALUES (?, ?)")
                .bind(key)
                .bind(at_us)
                .execute(&mut *tx)
                .await?;
        }
        let deleted = sqlx::query("DELETE FROM user_activity WHERE user_key = ?")
            .bind(key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let e = Erasure {
            already_erased: before.is_some(),
            activity_rows_deleted: deleted,
            erased_at_us,
        };
        sqlx::query("INSERT INTO audit_log (at_us, action, detail) VALUES (?, 'erase_user', ?)")
            .bind(at_us)
            .bind(audit_detail(&e))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(e)
    }

    async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<(i64, i64, String, String)> = sqlx::query_as(
            "SELECT id, at_us, action, detail FROM audit_log ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(audit_entry).collect()
    }

    async fn joint_moments(
        &self,
        model: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<JointRow>, StoreError> {
        let rows: Vec<(String, i64, String, Vec<u8>)> = sqlx::query_as(
            "SELECT version, bucket, features, data FROM joint_moments
             WHERE model = ? AND bucket >= ? AND bucket < ? ORDER BY version, bucket, features",
        )
        .bind(model)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(joint_row).collect()
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
                Ok(SummaryRow {
                    version: r.try_get(0)?,
                    class: parse_enum(
                        "summaries.class",
                        &r.try_get::<String, _>(1)?,
                        SeriesClass::parse,
                    )?,
                    name: r.try_get(2)?,
                    bucket: r.try_get(3)?,
                    summary: decode_summary(&r.try_get::<Vec<u8>, _>(4)?)?,
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
            .map(|r| parse_json("record", &r.try_get::<String, _>(0)?))
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
                Ok(BucketCount {
                    version: r.try_get(0)?,
                    event_type: parse_enum(
                        "event_counts.event_type",
                        &r.try_get::<String, _>(1)?,
                        EventType::parse,
                    )?,
                    bucket: r.try_get(2)?,
                    n: count(r.try_get(3)?, "event_counts.n")?,
                    first_us: r.try_get(4)?,
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
                Ok(FunnelCount {
                    version: r.try_get(0)?,
                    stage: parse_enum(
                        "funnel_counts.stage",
                        &r.try_get::<String, _>(1)?,
                        crate::events::Stage::parse,
                    )?,
                    reason: r.try_get(2)?,
                    day: r.try_get(3)?,
                    n: count(r.try_get(4)?, "funnel_counts.n")?,
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
        rows.into_iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get::<i64, _>(1)? as u64)))
            .collect()
    }

    async fn days_to_roll_up(&self, before: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(DAYS_TO_ROLL_UP)
            .bind(before)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows)
    }

    async fn roll_up_day(&self, model: &str, day: i64) -> Result<RolledUp, StoreError> {
        let end = day + 86_400;
        // One writer at a time in SQLite: nothing else changes these rows until the commit.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let rows = sqlx::query(
            "SELECT version, class, name, bucket, data FROM summaries
             WHERE model = ? AND bucket >= ? AND bucket < ? ORDER BY version, class, name, bucket",
        )
        .bind(model)
        .bind(day)
        .bind(end)
        .fetch_all(&mut *tx)
        .await?;
        let mut groups: Vec<((String, String, String), FeatureSummary)> = Vec::new();
        for r in &rows {
            let key: (String, String, String) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
            let summary = decode_summary(&r.try_get::<Vec<u8>, _>(4)?)?;
            match groups.last_mut() {
                Some((k, merged)) if *k == key => merged.merge(&summary),
                _ => groups.push((key, summary)),
            }
        }
        let counts = sqlx::query(
            "SELECT version, event_type, n, first_us, last_us, bucket FROM event_counts
             WHERE model = ? AND bucket >= ? AND bucket < ? ORDER BY version, event_type, bucket",
        )
        .bind(model)
        .bind(day)
        .bind(end)
        .fetch_all(&mut *tx)
        .await?;
        let mut totals: Vec<((String, String), (i64, i64, i64))> = Vec::new();
        for r in &counts {
            let key: (String, String) = (r.try_get(0)?, r.try_get(1)?);
            let c: (i64, i64, i64) = (r.try_get(2)?, r.try_get(3)?, r.try_get(4)?);
            match totals.last_mut() {
                Some((k, t)) if *k == key => *t = (t.0 + c.0, t.1.min(c.1), t.2.max(c.2)),
                _ => totals.push((key, c)),
            }
        }
        let done = RolledUp {
            rows_merged: (rows.len() - groups.len() + counts.len() - totals.len()) as u64,
            rows_written: (groups.len() + totals.len()) as u64,
        };
        let at_day = |r: &SqliteRow, i: usize| r.try_get::<i64, _>(i).ok() == Some(day);
        if rows.iter().all(|r| at_day(r, 3)) && counts.iter().all(|r| at_day(r, 5)) {
            // Already one row per series at the day start: nothing to do.
            tx.rollback().await?;
            return Ok(RolledUp::default());
        }
        for table in ["summaries", "event_counts"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE model = ? AND bucket >= ? AND bucket < ?"
            ))
            .bind(model)
            .bind(day)
            .bind(end)
            .execute(&mut *tx)
            .await?;
        }
        for ((version, class, name), summary) in &groups {
            sqlx::query(
                "INSERT INTO summaries (model, version, class, name, bucket, data) VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(model)
            .bind(version)
            .bind(class)
            .bind(name)
            .bind(day)
            .bind(encode_summary(summary))
            .execute(&mut *tx)
            .await?;
        }
        for ((version, event_type), (n, first_us, last_us)) in &totals {
            sqlx::query(
                "INSERT INTO event_counts (model, version, event_type, bucket, n, first_us, last_us)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(model)
            .bind(version)
            .bind(event_type)
            .bind(day)
            .bind(n)
            .bind(first_us)
            .bind(last_us)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(done)
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
        rows.iter().map(baseline_info).collect()
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
                    class: parse_enum(
                        "baseline_summaries.class",
                        &r.try_get::<String, _>(0)?,
                        SeriesClass::parse,
                    )?,
                    name: r.try_get(1)?,
                    summary: decode_summary(&r.try_get::<Vec<u8>, _>(2)?)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some((baseline_info(&info)?, sums)))
    }
}

fn baseline_info(r: &SqliteRow) -> Result<BaselineInfo, StoreError> {
    Ok(BaselineInfo {
        name: r.try_get(0)?,
        model: r.try_get(1)?,
        created_at_us: r.try_get(2)?,
        rows: count(r.try_get(3)?, "baselines.rows")?,
        source: r.try_get(4)?,
        features: count(r.try_get(5)?, "baseline_summaries")?,
    })
}
