//! Summaries, counts, records, activity and baselines (PostgreSQL).

use super::PgStore;
use crate::store::*;
use sqlx::postgres::PgRow;
use sqlx::Row;

#[async_trait]
impl SeriesStore for PgStore {
    async fn type_counts(&self) -> Result<Vec<TypeCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT model, version, event_type, sum(n)::int8, min(first_us), max(last_us)
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
        let mut tx = self.pool.begin().await?;
        // Concurrent requests for one user: the first insert wins, the others see it.
        let inserted = sqlx::query(
            "INSERT INTO erasures (user_key, erased_at_us) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(key)
        .bind(at_us)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let erased_at_us: i64 =
            sqlx::query_scalar("SELECT erased_at_us FROM erasures WHERE user_key = $1 FOR UPDATE")
                .bind(key)
                .fetch_one(&mut *tx)
                .await?;
        let deleted = sqlx::query("DELETE FROM user_activity WHERE user_key = $1")
            .bind(key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let e = Erasure {
            already_erased: inserted == 0,
            activity_rows_deleted: deleted,
            erased_at_us,
        };
        sqlx::query("INSERT INTO audit_log (at_us, action, detail) VALUES ($1, 'erase_user', $2)")
            .bind(at_us)
            .bind(audit_detail(&e))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(e)
    }

    async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows: Vec<(i64, i64, String, String)> = sqlx::query_as(
            "SELECT id, at_us, action, detail FROM audit_log ORDER BY id DESC LIMIT $1",
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
             WHERE model = $1 AND bucket >= $2 AND bucket < $3 ORDER BY version, bucket, features",
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
             WHERE model = $1 AND ($2::text IS NULL OR class = $2) AND bucket >= $3 AND bucket < $4
             ORDER BY version, class, name, bucket",
        )
        .bind(model)
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
            "SELECT body FROM records WHERE model = $1 AND event_type = $2 ORDER BY occurred_at_us, event_id",
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
             WHERE model = $1 AND bucket >= $2 AND bucket < $3 ORDER BY bucket, version, event_type",
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
             WHERE model = $1 AND bucket >= $2 AND bucket < $3 ORDER BY bucket, version, stage, reason",
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
            "SELECT day, user_key FROM user_activity WHERE model = $1 AND day >= $2 AND day < $3",
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

    /// Checkpoints of other replicas may write into the same day meanwhile. Rows are locked in
    /// primary-key order, as checkpoints lock them (no lock-order deadlock): per series group,
    /// the day row first (inserted empty if missing, so it can be locked), then the group's
    /// other rows. Only rows read under the lock are deleted; a row a checkpoint inserts after
    /// the read stays for the next roll-up.
    async fn roll_up_day(&self, model: &str, day: i64) -> Result<RolledUp, StoreError> {
        let end = day + 86_400;
        let mut done = RolledUp::default();
        let mut tx = self.pool.begin().await?;
        let groups: Vec<(String, String)> = sqlx::query_as(
            "SELECT DISTINCT version, class FROM summaries
             WHERE model = $1 AND bucket > $2 AND bucket < $3 ORDER BY version, class",
        )
        .bind(model)
        .bind(day)
        .bind(end)
        .fetch_all(&mut *tx)
        .await?;
        for (version, class) in &groups {
            let names: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT name FROM summaries
                 WHERE model = $1 AND version = $2 AND class = $3 AND bucket > $4 AND bucket < $5
                 ORDER BY name",
            )
            .bind(model)
            .bind(version)
            .bind(class)
            .bind(day)
            .bind(end)
            .fetch_all(&mut *tx)
            .await?;
            // Empty data marks a day row this transaction created (real rows never are empty).
            sqlx::query(
                "INSERT INTO summaries (model, version, class, name, bucket, data)
                 SELECT $1, $2, $3, unnest($4::text[]), $5, ''::bytea ON CONFLICT DO NOTHING",
            )
            .bind(model)
            .bind(version)
            .bind(class)
            .bind(&names)
            .bind(day)
            .execute(&mut *tx)
            .await?;
            let rows = sqlx::query(
                "SELECT name, bucket, data FROM summaries
                 WHERE model = $1 AND version = $2 AND class = $3 AND bucket >= $4 AND bucket < $5
                 ORDER BY bucket, name FOR UPDATE",
            )
            .bind(model)
            .bind(version)
            .bind(class)
            .bind(day)
            .bind(end)
            .fetch_all(&mut *tx)
            .await?;
            let mut merged: std::collections::BTreeMap<String, Option<FeatureSummary>> =
                std::collections::BTreeMap::new();
            let (mut gone_buckets, mut gone_names) = (Vec::new(), Vec::new());
            for r in &rows {
                let name: String = r.try_get(0)?;
                let bucket: i64 = r.try_get(1)?;
                let data: Vec<u8> = r.try_get(2)?;
                let summary = if data.is_empty() {
                    None
                } else {
                    Some(decode_summary(&data)?)
                };
                if bucket != day {
                    gone_buckets.push(bucket);
                    gone_names.push(name.clone());
                }
                let slot = merged.entry(name).or_insert(None);
                match (slot.as_mut(), summary) {
                    (Some(m), Some(s)) => m.merge(&s),
                    (None, s) => *slot = s,
                    (Some(_), None) => {}
                }
            }
            for (name, summary) in &merged {
                let q = sqlx::query(match summary {
                    Some(_) => {
                        "UPDATE summaries SET data = $6
                         WHERE model = $1 AND version = $2 AND class = $3 AND bucket = $4 AND name = $5"
                    }
                    // Nothing to merge after all (another roll-up got there first).
                    None => {
                        "DELETE FROM summaries
                         WHERE model = $1 AND version = $2 AND class = $3 AND bucket = $4 AND name = $5"
                    }
                })
                .bind(model)
                .bind(version)
                .bind(class)
                .bind(day)
                .bind(name);
                match summary {
                    Some(s) => q.bind(encode_summary(s)),
                    None => q,
                }
                .execute(&mut *tx)
                .await?;
                done.rows_written += u64::from(summary.is_some());
            }
            sqlx::query(
                "DELETE FROM summaries s USING unnest($4::int8[], $5::text[]) AS k(bucket, name)
                 WHERE s.model = $1 AND s.version = $2 AND s.class = $3
                   AND s.bucket = k.bucket AND s.name = k.name",
            )
            .bind(model)
            .bind(version)
            .bind(class)
            .bind(&gone_buckets)
            .bind(&gone_names)
            .execute(&mut *tx)
            .await?;
            done.rows_merged += gone_buckets.len() as u64;
        }
        let series: Vec<(String, String)> = sqlx::query_as(
            "SELECT DISTINCT version, event_type FROM event_counts
             WHERE model = $1 AND bucket > $2 AND bucket < $3 ORDER BY version, event_type",
        )
        .bind(model)
        .bind(day)
        .bind(end)
        .fetch_all(&mut *tx)
        .await?;
        for (version, event_type) in &series {
            // n = 0 marks a day row this transaction created (real counts are positive).
            sqlx::query(
                "INSERT INTO event_counts (model, version, event_type, bucket, n, first_us, last_us)
                 VALUES ($1, $2, $3, $4, 0, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(model)
            .bind(version)
            .bind(event_type)
            .bind(day)
            .bind(i64::MAX)
            .bind(i64::MIN)
            .execute(&mut *tx)
            .await?;
            let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
                "SELECT bucket, n, first_us, last_us FROM event_counts
                 WHERE model = $1 AND version = $2 AND event_type = $3 AND bucket >= $4 AND bucket < $5
                 ORDER BY bucket FOR UPDATE",
            )
            .bind(model)
            .bind(version)
            .bind(event_type)
            .bind(day)
            .bind(end)
            .fetch_all(&mut *tx)
            .await?;
            let (mut n, mut first_us, mut last_us) = (0_i64, i64::MAX, i64::MIN);
            let mut gone = Vec::new();
            for (bucket, rn, rf, rl) in rows {
                if bucket != day {
                    gone.push(bucket);
                }
                if rn > 0 {
                    (n, first_us, last_us) = (n + rn, first_us.min(rf), last_us.max(rl));
                }
            }
            sqlx::query(
                "UPDATE event_counts SET n = $5, first_us = $6, last_us = $7
                 WHERE model = $1 AND version = $2 AND event_type = $3 AND bucket = $4",
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
            sqlx::query(
                "DELETE FROM event_counts WHERE model = $1 AND version = $2 AND event_type = $3
                 AND (bucket = ANY($4) OR (bucket = $5 AND n = 0))",
            )
            .bind(model)
            .bind(version)
            .bind(event_type)
            .bind(&gone)
            .bind(day)
            .execute(&mut *tx)
            .await?;
            done.rows_merged += gone.len() as u64;
            done.rows_written += u64::from(n > 0);
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn put_baseline(
        &self,
        info: &BaselineInfo,
        summaries: &[NamedSummary],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM baseline_summaries WHERE name = $1")
            .bind(&info.name)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO baselines (name, model, created_at_us, rows, source) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (name) DO UPDATE SET model = excluded.model, created_at_us = excluded.created_at_us,
               rows = excluded.rows, source = excluded.source",
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
                "INSERT INTO baseline_summaries (name, class, feature, data) VALUES ($1, $2, $3, $4)",
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
             FROM baselines b WHERE b.name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT class, feature, data FROM baseline_summaries WHERE name = $1 ORDER BY class, feature",
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

fn baseline_info(r: &PgRow) -> Result<BaselineInfo, StoreError> {
    Ok(BaselineInfo {
        name: r.try_get(0)?,
        model: r.try_get(1)?,
        created_at_us: r.try_get(2)?,
        rows: count(r.try_get(3)?, "baselines.rows")?,
        source: r.try_get(4)?,
        features: count(r.try_get(5)?, "baseline_summaries")?,
    })
}
