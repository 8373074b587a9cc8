//! `DELETE /v1/users/{user_id}`: erase a user. The raw id is pseudonymised with the deployment
//! key exactly as on ingest; the store deletes every row keyed by that pseudonym, records the
//! erasure (later checkpoints consult it) and an audit entry without any identifier.

use super::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

pub async fn erase_user(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if user_id.is_empty() || user_id.len() > state.limits.max_string_len {
        return Err(ApiError::bad_request(format!(
            "user_id: must be 1 to {} bytes, as on ingest",
            state.limits.max_string_len
        )));
    }
    let key = state.pseudonymizer.key(&user_id);
    let e = state
        .store
        .series()
        .erase_user(key, state.clock.now_us())
        .await?;
    Ok(Json(json!({
        "erased": true,
        "already_erased": e.already_erased,
        "activity_rows_deleted": e.activity_rows_deleted,
        "erased_at": crate::http::jobs::secs_rfc3339(e.erased_at_us.div_euclid(1_000_000)),
    })))
}
