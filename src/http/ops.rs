//! Liveness and readiness probes.

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorCode, Problem};
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness
///
/// 200 whenever the process is serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

/// Readiness
///
/// 200 when the database answers queries and the search index is usable; 503 while the
/// index is being rebuilt or the database is unavailable.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "Not ready", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<axum::Json<Health>> {
    match state.service.ready().await {
        Ok(()) => Ok(axum::Json(Health { status: "ok" })),
        Err(why) => Err(ApiError::new(ErrorCode::NotReady, why).retry_after(1)),
    }
}
