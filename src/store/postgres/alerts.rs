//! The service's alerts (PostgreSQL).

use super::PgStore;
use crate::store::*;
use sqlx::postgres::PgRow;
use sqlx::Row;

#[async_trait]
impl AlertStore for PgStore {
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
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE updated_at_us >= $1 ORDER BY updated_at_us DESC, id DESC LIMIT $2"
        ))
        .bind(since_us)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(alert_row).collect()
    }

    async fn prune_resolved(&self, before_us: i64) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM alerts WHERE state = 'resolved' AND updated_at_us < $1")
            .bind(before_us)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    async fn put_alert(&self, a: &AlertRow) -> Result<i64, StoreError> {
        let labels = serde_json::to_string(&a.labels).unwrap_or_default();
        let annotations = serde_json::to_string(&a.annotations).unwrap_or_default();
        if a.id == 0 {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO alerts (fingerprint, source, state, labels, annotations, hits, clean, created_at_us, starts_at_us, ends_at_us, updated_at_us, notified_at_us)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
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
            .fetch_one(&self.pool)
            .await?;
            Ok(id)
        } else {
            sqlx::query(
                "UPDATE alerts SET state = $1, labels = $2, annotations = $3, hits = $4, clean = $5, starts_at_us = $6, ends_at_us = $7, updated_at_us = $8, notified_at_us = $9 WHERE id = $10",
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
}

fn alert_row(r: &PgRow) -> Result<AlertRow, StoreError> {
    Ok(AlertRow {
        id: r.try_get(0)?,
        fingerprint: r.try_get(1)?,
        source: r.try_get(2)?,
        state: parse_enum(
            "alerts.state",
            &r.try_get::<String, _>(3)?,
            AlertState::parse,
        )?,
        labels: parse_json("alerts.labels", &r.try_get::<String, _>(4)?)?,
        annotations: parse_json("alerts.annotations", &r.try_get::<String, _>(5)?)?,
        hits: r.try_get(6)?,
        clean: r.try_get(7)?,
        created_at: Timestamp::from_micros(r.try_get(8)?),
        starts_at: r.try_get::<Option<i64>, _>(9)?.map(Timestamp::from_micros),
        ends_at: r.try_get::<Option<i64>, _>(10)?.map(Timestamp::from_micros),
        updated_at: Timestamp::from_micros(r.try_get(11)?),
        notified_at: r.try_get::<Option<i64>, _>(12)?.map(Timestamp::from_micros),
    })
}

const ALERT_COLUMNS: &str = "id, fingerprint, source, state, labels, annotations, hits, clean, created_at_us, starts_at_us, ends_at_us, updated_at_us, notified_at_us";
