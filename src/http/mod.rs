//! The HTTP API: the router, built by a plain function from [`AppState`], and the one place where
//! errors become status codes ([`ApiError`]).

mod events;
pub mod jobs;
mod pages;
mod quality;
mod read;
pub mod serve;
mod users;

use crate::clock::Clock;
use crate::config::Config;
use crate::events::pseudonym::Pseudonymizer;
use crate::events::EventLimits;
use crate::ingest::{IngestError, IngestHandle};
use crate::metrics::Metrics;
use crate::secret::Secret;
use crate::store::{Store, StoreError};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use std::sync::Arc;
use std::time::Instant;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub jobs: Arc<crate::jobs::Registry>,
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub ingest: IngestHandle,
    pub metrics: Arc<Metrics>,
    pub pseudonymizer: Pseudonymizer,
    pub limits: Arc<EventLimits>,
    pub clock: Clock,
}

/// An error answered as `{"error": "<message>", "code": "<code>"}` with a status: the one place
/// where errors become HTTP answers.
///
/// `code` is stable (clients branch on it; the message is for people). A 5xx answer never carries
/// internal error text: the cause is logged with the request's route, and the body says only what
/// the client can do ([`ApiError::internal`], [`From<StoreError>`]).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
}

/// The stable code of a status, for errors without a more specific one.
fn default_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthorized",
        404 => "not_found",
        409 => "conflict",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        503 => "unavailable",
        s if s >= 500 => "internal",
        _ => "error",
    }
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code: default_code(status),
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, m)
    }
    /// A fault of the service: `cause` goes to the log, the client gets a fixed message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error answering a request");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; the cause is in the service's log",
        )
    }
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(serde_json::json!({ "error": self.message, "code": self.code })),
        )
            .into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store error answering a request");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the store is unavailable; try again shortly (the cause is in the service's log)",
        )
        .with_code("store_unavailable")
        .retry_after(5)
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Overloaded => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
                    .with_code("overloaded")
                    .retry_after(1)
            }
            IngestError::Stopped => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
                .with_code("shutting_down")
                .retry_after(5),
            IngestError::Unavailable(_) | IngestError::Store(_) => {
                tracing::error!(error = %e, "ingest error");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the store cannot take writes; nothing of this request was acknowledged, send it again",
                )
                .with_code("store_unavailable")
                .retry_after(5)
            }
        }
    }
}

/// Which token list guards a route.
#[derive(Clone, Copy)]
enum Guard {
    Ingest,
    Read,
    Ops,
}

fn token_ok(headers: &HeaderMap, tokens: &[Secret]) -> bool {
    use subtle::ConstantTimeEq;
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    // Compare against every token in constant time (no early exit on a match).
    tokens.iter().fold(false, |acc, t| {
        let t = t.expose();
        let eq = t.len() == given.len() && bool::from(t.as_bytes().ct_eq(given.as_bytes()));
        acc | eq
    })
}

async fn auth(
    State((state, guard)): State<(AppState, Guard)>,
    req: Request,
    next: Next,
) -> Response {
    let auth = &state.config.auth;
    let tokens: &[Secret] = match guard {
        Guard::Ingest => &auth.ingest_tokens,
        Guard::Read => &auth.read_tokens,
        Guard::Ops if auth.protect_ops => &auth.read_tokens,
        Guard::Ops => &[],
    };
    if tokens.is_empty() || token_ok(req.headers(), tokens) {
        next.run(req).await
    } else {
        let mut r = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing or invalid bearer token (Authorization: Bearer <token>)",
        )
        .into_response();
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        r
    }
}

async fn track_latency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let start = Instant::now();
    let resp = next.run(req).await;
    let class = format!("{}xx", resp.status().as_u16() / 100);
    state
        .metrics
        .http_request_duration
        .with_label_values(&[&route, &class])
        .observe(start.elapsed().as_secs_f64());
    resp
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: the store does not answer");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the store does not answer",
            )
            .with_code("store_unavailable")
            .into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// The OpenAPI 3.1 description of this API (`docs/openapi.json`, embedded).
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

async fn openapi() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        OPENAPI,
    )
        .into_response()
}

async fn fallback() -> ApiError {
    ApiError::not_found("no such route; GET /openapi.json describes the API")
}

/// Uploads (`POST /v1/events`, `POST /v1/baselines`) must be read and answered within
/// `server.request_timeout_secs`: a client sending its body one byte a second gets 408 and its
/// connection back, and nothing is acknowledged without its 200 (a batch cut short is not
/// journaled; one answered late is, and its resend is deduplicated).
async fn upload_timeout(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = state.config.http_limits.request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request was not received and answered within {} s (server.request_timeout_secs); send it again",
                limit.as_secs()
            ),
        )
        .with_code("request_timeout")
        .into_response(),
    }
}

/// Largest reference dataset accepted by `POST /v1/baselines` (larger ones: the CLI).
pub const MAX_BASELINE_BYTES: usize = 256 << 20;

/// Build the router from state.
pub fn router(state: AppState) -> Router {
    let ingest = Router::new()
        .route("/v1/events", post(events::post_events))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            upload_timeout,
        ))
        .route_layer(middleware::from_fn_with_state(
            (state.clone(), Guard::Ingest),
            auth,
        ));
    let read = Router::new()
        .route("/v1/models", get(read::models))
        .route("/v1/models/{id}/features", get(read::features))
        .route("/v1/jobs", get(jobs::list_jobs))
        .route("/v1/jobs/runs", get(jobs::list_runs))
        .route("/v1/jobs/{name}/run", post(jobs::run_job))
        .route("/v1/drift/latest", get(jobs::drift_latest))
        .route("/v1/drift", get(jobs::drift_history))
        .route("/v1/health", get(jobs::health_latest))
        .route("/v1/performance", get(jobs::performance_latest))
        .route("/v1/quality", get(quality::quality))
        .route("/v1/alerts", get(jobs::list_alerts))
        .route("/v1/reports", get(pages::list_reports))
        .route("/reports/{file}", get(pages::report_file))
        .route("/", get(pages::status))
        .route("/v1/health/history", get(jobs::health_history))
        .route("/v1/users/{user_id}", delete(users::erase_user))
        .route(
            "/v1/baselines",
            get(jobs::list_baselines)
                .post(jobs::upload_baseline)
                .layer((
                    axum::extract::DefaultBodyLimit::max(MAX_BASELINE_BYTES),
                    middleware::from_fn_with_state(state.clone(), upload_timeout),
                )),
        )
        .route_layer(middleware::from_fn_with_state(
            (state.clone(), Guard::Read),
            auth,
        ));
    let ops = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(
            (state.clone(), Guard::Ops),
            auth,
        ));
    // Runbooks hold no data: open, so that a link in an alert opens at 3 a.m. without a token.
    let public = Router::new()
        .route("/openapi.json", get(openapi))
        .route("/runbooks", get(pages::runbook_index))
        .route("/runbooks/{name}", get(pages::runbook));
    Router::new()
        .merge(ingest)
        .merge(read)
        .merge(ops)
        .merge(public)
        .fallback(fallback)
        .route_layer(middleware::from_fn_with_state(state.clone(), track_latency))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(e: ApiError) -> (u16, serde_json::Value) {
        let r = e.into_response();
        let status = r.status().as_u16();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16)
            .await
            .expect("body");
        (status, serde_json::from_slice(&bytes).expect("json"))
    }

    #[tokio::test]
    async fn server_errors_carry_a_stable_code_and_no_internal_detail() {
        let detail = "table summaries page 7 checksum 0xdeadbeef at /var/lib/flywheel/flywheel.db";
        let (status, v) = body_of(ApiError::from(StoreError::Corrupt {
            what: "summary",
            detail: detail.into(),
        }))
        .await;
        assert_eq!(status, 503);
        assert_eq!(v["code"], "store_unavailable");
        let text = v.to_string();
        assert!(
            !text.contains("deadbeef") && !text.contains("/var/lib"),
            "{text}"
        );

        let (status, v) = body_of(ApiError::internal(format!("join error: {detail}"))).await;
        assert_eq!((status, v["code"].as_str()), (500, Some("internal")));
        assert!(!v.to_string().contains("deadbeef"), "{v}");

        let (status, v) = body_of(IngestError::Unavailable(detail.into()).into()).await;
        assert_eq!(
            (status, v["code"].as_str()),
            (503, Some("store_unavailable"))
        );
        assert!(!v.to_string().contains("deadbeef"), "{v}");

        // Client errors keep their message (it says what to fix) and get their code.
        let (status, v) = body_of(ApiError::bad_request("from: not RFC 3339")).await;
        assert_eq!((status, v["code"].as_str()), (400, Some("bad_request")));
        assert_eq!(v["error"], "from: not RFC 3339");
    }
}
