//! `GET /v1/quality?model=&from=&to=`: the data-quality verdicts of a model's windows (pass /
//! warn / fail, the rules that failed, the violations) and their summary over the range. Without
//! `from` and `to`, the newest 168 windows (a week of hourly windows).

use super::jobs::secs_rfc3339;
use super::read::parse_range;
use super::{ApiError, AppState};
use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityQuery {
    model: String,
    from: Option<String>,
    to: Option<String>,
}

/// Windows shown when no range is given.
const DEFAULT_WINDOWS: i64 = 168;

pub async fn quality(
    State(state): State<AppState>,
    Query(q): Query<QualityQuery>,
) -> Result<Json<Value>, ApiError> {
    let (from, to) = parse_range(q.from.as_deref(), q.to.as_deref())?;
    let latest = (from.is_none() && to.is_none()).then_some(DEFAULT_WINDOWS);
    let verdicts = crate::quality::job::verdicts(state.store.as_ref(), &q.model, from, to, latest)
        .await
        .map_err(ApiError::internal)?;
    if verdicts.is_empty()
        && !state
            .store
            .series()
            .type_counts()
            .await?
            .iter()
            .any(|t| t.model == q.model)
    {
        return Err(ApiError::not_found(format!(
            "model {:?} has sent no events",
            q.model
        )));
    }
    let summary = crate::quality::summarise(&verdicts);
    // The consent flags over the time the windows span, and as of the newest health run the
    // retention cohorts suppressed by k-anonymity and the withdrawals of training consent after
    // the data was used.
    let consent = match (verdicts.first(), verdicts.last()) {
        (Some(a), Some(b)) => Some(
            crate::quality::job::consent_over(
                state.store.as_ref(),
                &q.model,
                a.window_start,
                b.window_end,
            )
            .await
            .map_err(ApiError::internal)?,
        ),
        _ => None,
    };
    let health = state
        .store
        .jobs()
        .results(&crate::store::ResultQuery {
            job_prefix: Some(crate::flywheel::job::JOB_NAME.into()),
            model: Some(q.model.clone()),
            subject: Some("health".into()),
            latest: Some(1),
            ..Default::default()
        })
        .await?;
    let privacy = health.first().map(|r| {
        let cohorts = r.data["retention"]["weekly_cohorts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        json!({
            "as_of": secs_rfc3339(r.window_end),
            "weekly_cohorts": cohorts.len(),
            "suppressed_cohorts": cohorts.iter().filter(|c| c["suppressed"] == true).count(),
            "withdrawn_after_training_users": r.data["funnel"]["withdrawn_after_training_users"],
            "withdrawn_after_training_user_days": r.data["funnel"]["withdrawn_after_training_user_days"],
        })
    });
    let windows: Vec<Value> = verdicts
        .iter()
        .map(|w| {
            let mut v = serde_json::to_value(&w.verdict).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("window_start".into(), json!(secs_rfc3339(w.window_start)));
                o.insert("window_end".into(), json!(secs_rfc3339(w.window_end)));
            }
            v
        })
        .collect();
    Ok(Json(json!({
        "model": q.model,
        "summary": summary,
        "consent": consent,
        "privacy": privacy,
        "windows": windows,
    })))
}
