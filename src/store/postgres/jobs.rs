//! Job runs, results and leases (PostgreSQL).

use super::PgStore;
use crate::store::*;
use sqlx::Row;

#[async_trait]
impl JobStore for PgStore {
    async fn save_run(&self, run: &JobRun, results: &[ResultRow]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM results WHERE job = $1 AND window_end = $2")
            .bind(&run.job)
            .bind(run.window_end)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO job_runs (job, window_start, window_end, fired_at, started_at_us, duration_us, outcome, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (job, window_end) DO UPDATE SET window_start = excluded.window_start,
               fired_at = excluded.fired_at, started_at_us = excluded.started_at_us,
               duration_us = excluded.duration_us, outcome = excluded.outcome, detail = excluded.detail",
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
                "INSERT INTO results (job, model, subject, window_start, window_end, data) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (job, model, subject, window_end) DO UPDATE SET
                   window_start = excluded.window_start, data = excluded.data",
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
             FROM job_runs WHERE ($1::text IS NULL OR job = $1) ORDER BY started_at_us DESC, job LIMIT $2",
        )
        .bind(job)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(JobRun {
                    job: r.try_get(0)?,
                    window_start: r.try_get(1)?,
                    window_end: r.try_get(2)?,
                    fired_at: r.try_get(3)?,
                    started_at: Timestamp::from_micros(r.try_get(4)?),
                    duration_us: r.try_get(5)?,
                    outcome: parse_enum(
                        "job_runs.outcome",
                        &r.try_get::<String, _>(6)?,
                        Outcome::parse,
                    )?,
                    detail: parse_json("job_runs.detail", &r.try_get::<String, _>(7)?)?,
                })
            })
            .collect()
    }

    async fn last_fire(&self, job: &str) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT max(fired_at) FROM job_runs WHERE job = $1")
                .bind(job)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn results(&self, q: &ResultQuery) -> Result<Vec<ResultRow>, StoreError> {
        let prefix = q.job_prefix.as_deref().map(like_prefix);
        let order = if q.latest.is_some() { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT job, model, subject, window_start, window_end, data FROM results
             WHERE ($1::text IS NULL OR job LIKE $1 ESCAPE '\\') AND ($2::text IS NULL OR model = $2)
               AND ($3::text IS NULL OR subject = $3) AND ($4::int8 IS NULL OR window_end > $4)
               AND ($5::int8 IS NULL OR window_end <= $5)
             ORDER BY window_end {order}, job, model, subject LIMIT $6"
        );
        let rows = sqlx::query(&sql)
            .bind(prefix)
            .bind(&q.model)
            .bind(&q.subject)
            .bind(q.from)
            .bind(q.to)
            .bind(q.latest)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(ResultRow {
                    job: r.try_get(0)?,
                    model: r.try_get(1)?,
                    subject: r.try_get(2)?,
                    window_start: r.try_get(3)?,
                    window_end: r.try_get(4)?,
                    data: parse_json("results.data", &r.try_get::<String, _>(5)?)?,
                })
            })
            .collect()
    }

    async fn try_lease(&self, job: &str, holder: &str, ttl_us: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "INSERT INTO leases (job, holder, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3))
             ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
             WHERE leases.holder = excluded.holder OR leases.expires_at <= now()",
        )
        .bind(job)
        .bind(holder)
        .bind(ttl_us as f64 / 1e6)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn prune_runs(&self, before: i64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM results WHERE window_end < $1
             AND window_end < (SELECT max(r.window_end) FROM job_runs r WHERE r.job = results.job)",
        )
        .bind(before)
        .execute(&mut *tx)
        .await?;
        let r = sqlx::query("DELETE FROM job_runs WHERE window_end < $1
             AND window_end < (SELECT max(r.window_end) FROM job_runs r WHERE r.job = job_runs.job)")
            .bind(before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected())
    }

    async fn clear_leases(&self) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM leases")
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    async fn release_lease(&self, job: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE job = $1 AND holder = $2")
            .bind(job)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
