//! The read API over stored summaries. Every read flushes the ingest writers first, so it sees
//! every event acknowledged before it. When the store cannot take that checkpoint (unreachable,
//! disk full), the read still answers from what is stored and says so in the
//! `x-flywheel-stale` header: events acknowledged since the last checkpoint are safe in the
//! journal and show up once the store takes writes again.

use super::{ApiError, AppState};
use crate::summary::delta::SeriesClass;
use crate::summary::FeatureSummary;
use axum::extract::{Path, Query, State};
use axum::Json;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The header a read carries when it could not include the latest acknowledged events.
pub const STALE_HEADER: &str = "x-flywheel-stale";

/// Flush the ingest writers for a read. `Err` only when the service is stopping; a store that
/// cannot take the checkpoint gives headers marking the answer stale.
async fn flush_for_read(state: &AppState) -> Result<axum::http::HeaderMap, ApiError> {
    let mut headers = axum::http::HeaderMap::new();
    match state.ingest.flush().await {
        Ok(()) => {}
        Err(e @ crate::ingest::IngestError::Stopped) => return Err(e.into()),
        Err(e) => {
            tracing::warn!(error = %e, "a read answers from stored data: the store cannot take the checkpoint");
            headers.insert(
                STALE_HEADER,
                axum::http::HeaderValue::from_static(
                    "the store cannot take writes; events acknowledged since the last checkpoint are not included yet",
                ),
            );
        }
    }
    Ok(headers)
}

pub(super) fn rfc3339_us(us: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
        .unwrap_or_default()
}

#[derive(Debug, Serialize, Default)]
pub struct TypeSummary {
    pub count: u64,
    pub first_seen: String,
    pub last_seen: String,
}

#[derive(Debug, Serialize)]
pub struct VersionInfo {
    pub version: String,
    pub first_seen: String,
    pub last_seen: String,
    pub events: BTreeMap<String, TypeSummary>,
}

#[derive(Debug, Serialize)]
pub struct ModelInfo {
    pub id: String,
    pub first_seen: String,
    pub last_seen: String,
    pub events: BTreeMap<String, u64>,
    pub versions: Vec<VersionInfo>,
}

#[derive(Debug, Serialize)]
pub struct ModelsResponse {
    pub models: Vec<ModelInfo>,
}

pub async fn models(
    State(state): State<AppState>,
) -> Result<(axum::http::HeaderMap, Json<ModelsResponse>), ApiError> {
    let headers = flush_for_read(&state).await?;
    let rows = state.store.series().type_counts().await?;
    // model → version → rows
    let mut by_model: BTreeMap<String, BTreeMap<String, Vec<crate::store::TypeCount>>> =
        BTreeMap::new();
    for r in rows {
        by_model
            .entry(r.model.clone())
            .or_default()
            .entry(r.version.clone())
            .or_default()
            .push(r);
    }
    let models = by_model
        .into_iter()
        .map(|(id, versions)| {
            let mut events: BTreeMap<String, u64> = BTreeMap::new();
            let (mut first, mut last) = (i64::MAX, i64::MIN);
            let versions = versions
                .into_iter()
                .map(|(version, rows)| {
                    let (mut vf, mut vl) = (i64::MAX, i64::MIN);
                    let mut ev = BTreeMap::new();
                    for r in rows {
                        vf = vf.min(r.first_us);
                        vl = vl.max(r.last_us);
                        *events.entry(r.event_type.as_str().to_owned()).or_default() += r.count;
                        ev.insert(
                            r.event_type.as_str().to_owned(),
                            TypeSummary {
                                count: r.count,
                                first_seen: rfc3339_us(r.first_us),
                                last_seen: rfc3339_us(r.last_us),
                            },
                        );
                    }
                    first = first.min(vf);
                    last = last.max(vl);
                    VersionInfo {
                        version,
                        first_seen: rfc3339_us(vf),
                        last_seen: rfc3339_us(vl),
                        events: ev,
                    }
                })
                .collect();
            ModelInfo {
                id,
                first_seen: rfc3339_us(first),
                last_seen: rfc3339_us(last),
                events,
                versions,
            }
        })
        .collect();
    Ok((headers, Json(ModelsResponse { models })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturesQuery {
    /// RFC 3339; default: 7 days before `to`.
    pub from: Option<String>,
    /// RFC 3339, exclusive; default: now.
    pub to: Option<String>,
    /// Restrict to one model version.
    pub version: Option<String>,
    /// `input` (default), `prediction`, `feedback_explicit`, `feedback_implicit`, `segment`.
    pub class: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Quantiles {
    pub p01: f64,
    pub p05: f64,
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub p95: f64,
    pub p99: f64,
}

#[derive(Debug, Serialize)]
pub struct FeatureInfo {
    pub name: String,
    pub kind: &'static str,
    /// Observations with a value (missing excluded).
    pub count: u64,
    pub missing: u64,
    pub missing_share: Option<f64>,
    pub non_finite: u64,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Estimated from the quantile sketch; exact while `quantiles_exact` is true.
    pub quantiles: Option<Quantiles>,
    pub quantiles_exact: bool,
    /// Up to 20 most frequent categories.
    pub top_categories: Vec<(String, u64)>,
    pub distinct_categories: usize,
    pub other_count: u64,
}

#[derive(Debug, Serialize)]
pub struct FeaturesResponse {
    pub model: String,
    pub class: &'static str,
    pub from: String,
    pub to: String,
    pub features: Vec<FeatureInfo>,
}

/// Optional `from` and `to` query parameters (RFC 3339), `from` before `to` when both are given.
pub(super) fn parse_range(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(Option<i64>, Option<i64>), ApiError> {
    let from = from.map(|s| parse_time("from", s)).transpose()?;
    let to = to.map(|s| parse_time("to", s)).transpose()?;
    if let (Some(a), Some(b)) = (from, to) {
        if a >= b {
            return Err(ApiError::bad_request(format!(
                "from ({}) must be before to ({})",
                rfc3339_us(a.saturating_mul(1_000_000)),
                rfc3339_us(b.saturating_mul(1_000_000))
            )));
        }
    }
    Ok((from, to))
}

pub(super) fn parse_time(field: &str, s: &str) -> Result<i64, ApiError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp())
        .map_err(|e| {
            ApiError::bad_request(format!("{field}: {s:?} is not an RFC 3339 timestamp ({e})"))
        })
}

fn describe(name: String, s: &FeatureSummary) -> FeatureInfo {
    let q = |p| s.sketch.quantile(p).unwrap_or(f64::NAN);
    let numeric = s.moments.n > 0;
    let mut top: Vec<(String, u64)> = s
        .categories
        .counts
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let distinct = top.len();
    top.truncate(20);
    FeatureInfo {
        name,
        kind: s.kind().as_str(),
        count: s.present(),
        missing: s.missing,
        missing_share: s.missing_share(),
        non_finite: s.non_finite,
        mean: numeric.then_some(s.moments.mean),
        std: s.moments.variance_sample().map(f64::sqrt),
        min: numeric.then_some(s.min),
        max: numeric.then_some(s.max),
        quantiles: numeric.then(|| Quantiles {
            p01: q(0.01),
            p05: q(0.05),
            p25: q(0.25),
            p50: q(0.5),
            p75: q(0.75),
            p95: q(0.95),
            p99: q(0.99),
        }),
        quantiles_exact: s.sketch.is_exact(),
        top_categories: top,
        distinct_categories: distinct,
        other_count: s.categories.other,
    }
}

pub async fn features(
    State(state): State<AppState>,
    Path(model): Path<String>,
    Query(q): Query<FeaturesQuery>,
) -> Result<(axum::http::HeaderMap, Json<FeaturesResponse>), ApiError> {
    let now = state.clock.now_us() / 1_000_000;
    let to = match &q.to {
        Some(s) => parse_time("to", s)?,
        None => now + 1,
    };
    let from = match &q.from {
        Some(s) => parse_time("from", s)?,
        None => to - 7 * 86_400,
    };
    if from >= to {
        return Err(ApiError::bad_request("from: must be before to"));
    }
    let class = match q.class.as_deref() {
        None => SeriesClass::Input,
        Some(c) => SeriesClass::parse(c).ok_or_else(|| {
            ApiError::bad_request(format!(
                "class: {c:?} is not one of input, prediction, feedback_explicit, feedback_implicit, segment"
            ))
        })?,
    };
    let headers = flush_for_read(&state).await?;
    let known = state
        .store
        .series()
        .type_counts()
        .await?
        .iter()
        .any(|r| r.model == model);
    if !known {
        return Err(ApiError::not_found(format!(
            "model {model:?} has sent no events"
        )));
    }
    // A bucket overlaps [from, to) when it starts before `to` and ends after `from`.
    let bucket = state.config.ingest.bucket_secs;
    let first_bucket = from - from.rem_euclid(bucket);
    let rows = state
        .store
        .series()
        .summaries(&model, Some(class), first_bucket, to)
        .await?;
    let mut merged: BTreeMap<String, FeatureSummary> = BTreeMap::new();
    for r in rows {
        if q.version.as_deref().is_some_and(|v| v != r.version) {
            continue;
        }
        merged
            .entry(r.name)
            .and_modify(|m| m.merge(&r.summary))
            .or_insert(r.summary);
    }
    let features = merged.into_iter().map(|(n, s)| describe(n, &s)).collect();
    Ok((
        headers,
        Json(FeaturesResponse {
            model,
            class: class.as_str(),
            from: rfc3339_us(from * 1_000_000),
            to: rfc3339_us(to * 1_000_000),
            features,
        }),
    ))
}
