//! Scheduled jobs, drift results and baselines over HTTP.
//!
//! * `GET /v1/jobs`: every job with its schedule, next fire and last run.
//! * `GET /v1/jobs/runs?job=&limit=`: recorded runs, newest first.
//! * `POST /v1/jobs/{name}/run?window=START`: run one window now (default: the latest due).
//! * `GET /v1/drift/latest?model=`: each monitor's latest window for a model.
//! * `GET /v1/drift?model=&feature=&kind=&from=&to=`: a feature's history.
//! * `GET /v1/baselines`, `POST /v1/baselines?name=&model=` (CSV or NDJSON body).

use super::read::{parse_time, rfc3339_us};
use super::{ApiError, AppState};
use crate::clock::Timestamp;
use crate::dataset::{read_bytes, TextFormat};
use crate::drift::baseline;
use crate::jobs::RunError;
use crate::store::AlertState;
use crate::store::{JobRun, ResultQuery, ResultRow};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub(crate) fn secs_rfc3339(s: i64) -> String {
    rfc3339_us(s.saturating_mul(1_000_000))
}

/// A run as the API shows it (times in RFC 3339).
pub fn run_json(r: &JobRun) -> Value {
    json!({
        "job": r.job,
        "window_start": secs_rfc3339(r.window_start),
        "window_end": secs_rfc3339(r.window_end),
        "fired_at": secs_rfc3339(r.fired_at),
        "started_at": r.started_at.to_rfc3339(),
        "duration_seconds": r.duration_us as f64 / 1e6,
        "outcome": r.outcome,
        "detail": r.detail,
    })
}

fn result_json(r: &ResultRow) -> Value {
    let mut v = r.data.clone();
    if let Some(o) = v.as_object_mut() {
        o.insert("window_start".into(), json!(secs_rfc3339(r.window_start)));
        o.insert("window_end".into(), json!(secs_rfc3339(r.window_end)));
        o.insert("job".into(), json!(r.job));
    }
    v
}

pub async fn list_jobs(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let now = DateTime::<Utc>::from_timestamp_micros(state.clock.now_us()).unwrap_or_default();
    let mut out = Vec::new();
    for j in &state.jobs.list {
        let name = j.name();
        let last = state.store.jobs().runs(Some(&name), 1).await?;
        out.push(json!({
            "name": name,
            "schedule": j.schedule().expr(),
            "next_fire": j.schedule().next_after(now).map(|t| t.to_rfc3339()),
            "last_run": last.first().map(run_json),
        }));
    }
    Ok(Json(json!({ "jobs": out })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    job: Option<String>,
    limit: Option<i64>,
}

pub async fn list_runs(
    State(state): State<AppState>,
    Query(q): Query<RunsQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    let runs = state.store.jobs().runs(q.job.as_deref(), limit).await?;
    Ok(Json(
        json!({ "runs": runs.iter().map(run_json).collect::<Vec<_>>() }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunQuery {
    /// Start of the window to run (RFC 3339); default: the window of the latest fire.
    window: Option<String>,
}

pub async fn run_job(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<RunQuery>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let job = state
        .jobs
        .find(&name)
        .ok_or_else(|| ApiError::not_found(format!("no job {name:?}; GET /v1/jobs lists them")))?;
    let fired_at = match &q.window {
        Some(w) => crate::jobs::fire_for_window_start(job.as_ref(), parse_time("window", w)?),
        None => {
            let now =
                DateTime::<Utc>::from_timestamp_micros(state.clock.now_us()).unwrap_or_default();
            job.schedule()
                .due(None, now, 1)
                .first()
                .map(|t| t.timestamp())
                .ok_or_else(|| {
                    ApiError::bad_request("the job has not been due yet; give ?window=")
                })?
        }
    };
    match state.jobs.runner.execute(job.as_ref(), fired_at).await {
        Ok(run) => Ok((StatusCode::OK, Json(run_json(&run)))),
        Err(RunError::Busy(j)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("job {j} is running; try again when it finishes"),
        )
        .with_code("job_busy")
        .retry_after(5)),
        Err(RunError::Store(e)) => Err(e.into()),
    }
}

/// `?model=`: the routes about one model.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelQuery {
    model: String,
}

pub async fn drift_latest(
    State(state): State<AppState>,
    Query(q): Query<ModelQuery>,
) -> Result<Json<Value>, ApiError> {
    let mut monitors = Vec::new();
    for j in state
        .jobs
        .list
        .iter()
        .filter(|j| j.name().starts_with("drift:"))
    {
        let name = j.name();
        let last = state
            .store
            .jobs()
            .results(&ResultQuery {
                job_prefix: Some(name.clone()),
                model: Some(q.model.clone()),
                subject: Some("_dataset".into()),
                latest: Some(1),
                ..Default::default()
            })
            .await?;
        let Some(ds) = last.into_iter().find(|r| r.job == name) else {
            continue;
        };
        let rows = state
            .store
            .jobs()
            .results(&ResultQuery {
                job_prefix: Some(name.clone()),
                model: Some(q.model.clone()),
                from: Some(ds.window_end - 1),
                to: Some(ds.window_end),
                ..Default::default()
            })
            .await?;
        let features: Vec<Value> = rows
            .iter()
            .filter(|r| r.job == name && r.subject != "_dataset")
            .map(|r| r.data.clone())
            .collect();
        monitors.push(json!({
            "job": name,
            "window_start": secs_rfc3339(ds.window_start),
            "window_end": secs_rfc3339(ds.window_end),
            "dataset": ds.data,
            "features": features,
        }));
    }
    if monitors.is_empty() {
        return Err(ApiError::not_found(format!(
            "no drift results for model {:?} yet (runs happen on each monitor's schedule; GET /v1/jobs)",
            q.model
        )));
    }
    Ok(Json(json!({ "model": q.model, "monitors": monitors })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    model: String,
    feature: Option<String>,
    /// input, prediction, feedback_explicit, feedback_implicit (default input).
    kind: Option<String>,
    monitor: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

pub async fn drift_history(
    State(state): State<AppState>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    let kind = q.kind.as_deref().unwrap_or("input");
    if crate::summary::delta::SeriesClass::parse(kind).is_none() {
        return Err(ApiError::bad_request(format!(
            "kind: {kind:?} is not input, prediction, feedback_explicit or feedback_implicit"
        )));
    }
    let subject = match &q.feature {
        Some(f) => format!("{kind}/{f}"),
        None => "_dataset".into(),
    };
    let from = q
        .from
        .as_deref()
        .map(|s| parse_time("from", s))
        .transpose()?;
    let to = q.to.as_deref().map(|s| parse_time("to", s)).transpose()?;
    let rows = state
        .store
        .jobs()
        .results(&ResultQuery {
            job_prefix: Some(match &q.monitor {
                Some(m) => format!("drift:{m}"),
                None => "drift:".into(),
            }),
            model: Some(q.model.clone()),
            subject: Some(subject.clone()),
            from,
            to,
            ..Default::default()
        })
        .await?;
    let rows: Vec<&ResultRow> = rows
        .iter()
        .filter(|r| {
            q.monitor
                .as_ref()
                .is_none_or(|m| r.job == format!("drift:{m}"))
        })
        .collect();
    Ok(Json(json!({
        "model": q.model,
        "subject": subject,
        "results": rows.into_iter().map(result_json).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Serialize)]
struct ConfiguredBaseline {
    monitor: String,
    model: String,
    baseline: String,
}

pub async fn list_baselines(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let stored = state.store.series().baselines().await?;
    let configured: Vec<ConfiguredBaseline> = state
        .config
        .monitors
        .iter()
        .map(|m| ConfiguredBaseline {
            monitor: m.name.clone(),
            model: m.model.as_str().to_owned(),
            baseline: m.baseline.describe(),
        })
        .collect();
    let datasets: Vec<Value> = stored
        .iter()
        .map(|b| {
            json!({
                "name": b.name, "model": b.model, "rows": b.rows, "features": b.features,
                "source": b.source, "created_at": rfc3339_us(b.created_at_us),
            })
        })
        .collect();
    Ok(Json(
        json!({ "datasets": datasets, "monitors": configured }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    name: String,
    model: String,
}

pub async fn upload_baseline(
    State(state): State<AppState>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    baseline::check_name(&q.name).map_err(ApiError::bad_request)?;
    if q.model.is_empty() {
        return Err(ApiError::bad_request("model: must not be empty"));
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let format = match ct.as_str() {
        "text/csv" => TextFormat::Csv,
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => TextFormat::Ndjson,
        other => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Type {other:?} is not supported: send text/csv (a header row) or application/x-ndjson (one JSON object per row)"),
            ))
        }
    };
    let (k, cap) = (
        state.config.ingest.sketch_k,
        state.config.ingest.max_categories_per_feature,
    );
    let store = state.store.clone();
    let now = state.clock.now_us();
    let label = format!("baseline {}", q.name);
    let table =
        tokio::task::spawn_blocking(move || read_bytes(&body, format, &label, &Default::default()))
            .await
            .map_err(ApiError::internal)?
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if table.rows() == 0 {
        return Err(ApiError::bad_request("the dataset has no rows"));
    }
    let source = match format {
        TextFormat::Csv => "upload:csv",
        TextFormat::Ndjson => "upload:ndjson",
    };
    let info = baseline::store_table(
        store.as_ref(),
        &q.name,
        &q.model,
        &table,
        source,
        now,
        (k, cap),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!(info))))
}

/// The newest result of `job` under `subject` for a model, or a 404 saying how to get one.
async fn latest_result(
    state: &AppState,
    job: &str,
    subject: &str,
    model: &str,
    how: &str,
) -> Result<Json<Value>, ApiError> {
    let rows = state
        .store
        .jobs()
        .results(&ResultQuery {
            job_prefix: Some(job.into()),
            model: Some(model.to_owned()),
            subject: Some(subject.into()),
            latest: Some(1),
            ..Default::default()
        })
        .await?;
    let r = rows.into_iter().find(|r| r.job == job).ok_or_else(|| {
        ApiError::not_found(format!(
            "no {subject} results for model {model:?} yet ({how}; POST /v1/jobs/{job}/run runs it now)"
        ))
    })?;
    Ok(Json(result_json(&r)))
}

/// `GET /v1/health?model=`: the latest health of a model (every figure, each arc's state with
/// why, since when and what to try).
pub async fn health_latest(
    State(state): State<AppState>,
    Query(q): Query<ModelQuery>,
) -> Result<Json<Value>, ApiError> {
    use crate::flywheel::job::JOB_NAME;
    latest_result(
        &state,
        JOB_NAME,
        "health",
        &q.model,
        "the health job runs daily",
    )
    .await
}

/// `GET /v1/performance?model=`: the latest performance run of a model: every daily window of
/// the lookback as its labels stand now (realized, estimated, coverage, delay, degradation),
/// the reference period and the measured estimation error.
pub async fn performance_latest(
    State(state): State<AppState>,
    Query(q): Query<ModelQuery>,
) -> Result<Json<Value>, ApiError> {
    use crate::performance::job::{JOB_NAME, SUBJECT};
    let how = "the performance job runs daily over models that sent outcome events";
    latest_result(&state, JOB_NAME, SUBJECT, &q.model, how).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthHistoryQuery {
    model: String,
    from: Option<String>,
    to: Option<String>,
}

/// `GET /v1/health/history?model=&from=&to=`: per window, the overall state, each arc's state
/// and the headline figures.
pub async fn health_history(
    State(state): State<AppState>,
    Query(q): Query<HealthHistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    let (from, to) = super::read::parse_range(q.from.as_deref(), q.to.as_deref())?;
    let rows = state
        .store
        .jobs()
        .results(&ResultQuery {
            job_prefix: Some(crate::flywheel::job::JOB_NAME.into()),
            model: Some(q.model.clone()),
            subject: Some("health".into()),
            from,
            to,
            ..Default::default()
        })
        .await?;
    let history: Vec<Value> = rows
        .iter()
        .filter(|r| r.job == crate::flywheel::job::JOB_NAME)
        .map(|r| {
            let d = &r.data;
            let arcs: serde_json::Map<String, Value> = d["arcs"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, a)| (k.clone(), a["state"].clone()))
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "window_end": secs_rfc3339(r.window_end),
                "overall": d["overall"],
                "arcs": arcs,
                "verdict": d["verdict"],
                "interactions_7d": d["feedback"]["interactions_7d"],
                "explicit_rate": d["feedback"]["explicit_rate"]["estimate"],
                "velocity_per_cycle": d["velocity"]["per_cycle"],
                "retention_d7": d["retention"]["d7"]["value"],
            })
        })
        .collect();
    Ok(Json(json!({ "model": q.model, "history": history })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    model: Option<String>,
    /// History depth in days (default 7).
    days: Option<i64>,
}

fn alert_json(a: &crate::store::AlertRow) -> Value {
    json!({
        "id": a.id,
        "state": a.state,
        "labels": a.labels,
        "annotations": a.annotations,
        "source": a.source,
        "since": a.created_at.to_rfc3339(),
        "starts_at": a.starts_at.map(Timestamp::to_rfc3339),
        "ends_at": a.ends_at.map(Timestamp::to_rfc3339),
        "updated_at": a.updated_at.to_rfc3339(),
    })
}

/// `GET /v1/alerts?model=&days=`: active alerts (pending and firing) and the recent history.
pub async fn list_alerts(
    State(state): State<AppState>,
    Query(q): Query<AlertsQuery>,
) -> Result<Json<Value>, ApiError> {
    let days = q.days.unwrap_or(7).clamp(1, 400);
    let keep = |a: &crate::store::AlertRow| {
        q.model
            .as_ref()
            .is_none_or(|m| a.labels.get("model") == Some(m))
    };
    let active: Vec<Value> = state
        .store
        .alerts()
        .active_alerts()
        .await?
        .iter()
        .filter(|a| keep(a))
        .map(alert_json)
        .collect();
    let since = state.clock.now_us() - days * 86_400 * 1_000_000;
    let history: Vec<Value> = state
        .store
        .alerts()
        .recent_alerts(since, 500)
        .await?
        .iter()
        .filter(|a| keep(a) && (a.state == AlertState::Resolved || a.state == AlertState::Firing))
        .map(alert_json)
        .collect();
    Ok(Json(json!({ "active": active, "history": history })))
}
