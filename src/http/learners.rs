//! Spaced repetition per learner (FSRS): record reviews, list what is due.

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorCode, Problem};
use super::extract::{Json, Query};
use super::idempotency::json_reply;
use super::shared::{QuestionSummary, json_integer, parse_limit};
use crate::domain::{FieldErrors, Id, LearnerId};
use crate::idempotency::{self, Reply};
use crate::service::keys::{LEARNER_TOKEN_DAYS, LEARNER_TOKEN_MAX_DAYS};
use crate::service::{Principal, Rating, SavedReview};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The `{learner}` path parameter, validated; anything else is 400 `invalid_learner`.
pub struct Learner(pub LearnerId);

impl<S: Send + Sync> FromRequestParts<S> for Learner {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(ErrorCode::InvalidLearner, e.body_text()))?;
        LearnerId::parse(&raw)
            .map(Learner)
            .map_err(|e| ApiError::new(ErrorCode::InvalidLearner, e))
    }
}

/// Body of `POST /api/v1/learners/{learner}/reviews`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"question_id": 16, "rating": "good"}))]
pub struct ReviewRequest {
    #[schema(value_type = i64, required = true, minimum = 1, maximum = 9007199254740991_i64)]
    pub question_id: Option<serde_json::Value>,
    /// How well the learner recalled the answer.
    #[schema(value_type = Rating, required = true)]
    pub rating: Option<String>,
    /// When the review happened, for reviews made offline and synced later (RFC 3339); defaults
    /// to now. Up to 5 minutes ahead of the server's clock counts as now; further ahead or more
    /// than 365 days ago is 409 `review_time_out_of_range`, before this learner's latest review
    /// of the question 409 `review_out_of_order`.
    #[schema(value_type = Option<DateTime<Utc>>, required = false)]
    pub reviewed_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewOut {
    pub question_id: i64,
    /// When to review next.
    pub due: DateTime<Utc>,
    pub interval_days: f64,
    /// FSRS memory stability (days until recall probability falls to 90 %).
    pub stability: f32,
    /// FSRS difficulty, 1–10.
    pub difficulty: f32,
}

/// Record a review
///
/// The learner rated their recall of a question; FSRS schedules the next review. Better ratings
/// give longer intervals.
#[utoipa::path(
    post, path = "/api/v1/learners/{learner}/reviews", tag = "learners",
    params(("learner" = String, Path, description = "Client-chosen learner id, 1–64 of [A-Za-z0-9_-]", format = "kb:learner")),
    request_body(content = ReviewRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The new schedule", body = ReviewOut),
        (status = 400, description = "Malformed JSON or learner id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such question", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`reviewed_at` is out of range (`review_time_out_of_range`) or before this learner's latest review of the question (`review_out_of_order`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing or invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn record_review(
    State(state): State<AppState>,
    Learner(learner): Learner,
    Json(body): Json<ReviewRequest>,
) -> ApiResult<Response> {
    let mut e = FieldErrors::new();
    let question_id = match &body.question_id {
        Some(v) => e.check(
            "question_id",
            json_integer(v)
                .and_then(Id::new)
                .map(Id::get)
                .ok_or_else(|| "must be a positive integer id".to_string()),
        ),
        None => {
            e.push("question_id", "is required");
            None
        }
    };
    let rating = e.required("rating", body.rating.as_deref(), Rating::parse);
    let reviewed_at = match body.reviewed_at.as_deref() {
        None => Some(None),
        Some(raw) => e.check(
            "reviewed_at",
            DateTime::parse_from_rfc3339(raw.trim())
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|_| "must be an RFC 3339 timestamp like 2026-01-31T12:00:00Z".to_string()),
        ),
    };
    e.finish()?;
    let (Some(question_id), Some(rating), Some(reviewed_at)) = (question_id, rating, reviewed_at)
    else {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "question_id and rating are required",
        ));
    };
    idempotency::reply_with(|r: &SavedReview| {
        review_reply(ReviewOut {
            question_id: r.question_id,
            due: r.card.due,
            interval_days: r.interval_days,
            stability: r.card.stability,
            difficulty: r.card.difficulty,
        })
    });
    let s = state
        .service
        .review(&learner, question_id, rating, reviewed_at)
        .await?;
    Ok(review_reply(ReviewOut {
        question_id,
        due: s.due,
        interval_days: s.interval_days,
        stability: s.stability,
        difficulty: s.difficulty,
    })
    .into_response())
}

/// The answer of a review, also as its idempotency record keeps it.
fn review_reply(out: ReviewOut) -> Reply {
    json_reply(axum::http::StatusCode::CREATED, &out, &[])
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DueParams {
    /// 1–100.
    #[param(value_type = u32, required = false, minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DueItem {
    pub question: QuestionSummary,
    /// When it fell due; `null` for a question the learner has never reviewed.
    pub due: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DueResponse {
    pub items: Vec<DueItem>,
}

/// What to review now
///
/// Questions due for this learner, most overdue first, then questions they have never reviewed.
#[utoipa::path(
    get, path = "/api/v1/learners/{learner}/due", tag = "learners",
    params(("learner" = String, Path, description = "Client-chosen learner id, 1–64 of [A-Za-z0-9_-]", format = "kb:learner"), DueParams),
    responses(
        (status = 200, description = "Questions to review", body = DueResponse),
        (status = 400, description = "Malformed learner id", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn due(
    State(state): State<AppState>,
    Learner(learner): Learner,
    Query(params): Query<DueParams>,
) -> ApiResult<axum::Json<DueResponse>> {
    let mut e = FieldErrors::new();
    let limit = e.check("limit", parse_limit(params.limit.as_deref(), 20, 100));
    e.finish()?;
    let items = state.service.due(&learner, limit.unwrap_or(20)).await?;
    Ok(axum::Json(DueResponse {
        items: items
            .into_iter()
            .map(|(q, due)| DueItem {
                question: q.into(),
                due,
            })
            .collect(),
    }))
}

/// Body of `POST /api/v1/learners/{learner}/tokens`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"expires_in_days": 30}))]
pub struct CreateLearnerToken {
    /// Days until the token expires, 1–365 (default 30).
    #[schema(value_type = Option<u32>, required = false, minimum = 1, maximum = 365)]
    pub expires_in_days: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LearnerTokenOut {
    /// Send as `Authorization: Bearer <token>`: it reads, and it sees and records this
    /// learner's reviews; nothing else.
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Issue a learner token
///
/// A signed token that acts for one learner (their reviews and due list) and reads, for a
/// server-side app to hand to that learner's device. It cannot write content, act for another
/// learner, or be used after it expires or after the key that issued it is revoked; its
/// requests count against that key's quota.
#[utoipa::path(
    post, path = "/api/v1/learners/{learner}/tokens", tag = "learners",
    params(("learner" = String, Path, description = "Client-chosen learner id, 1–64 of [A-Za-z0-9_-]", format = "kb:learner")),
    request_body(content = CreateLearnerToken, content_type = "application/json"),
    responses(
        (status = 201, description = "The token", body = LearnerTokenOut),
        (status = 400, description = "Malformed JSON or learner id", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_token(
    State(state): State<AppState>,
    issuer: Option<axum::Extension<Principal>>,
    Learner(learner): Learner,
    Json(body): Json<CreateLearnerToken>,
) -> ApiResult<(axum::http::StatusCode, axum::Json<LearnerTokenOut>)> {
    // The route guard put the caller here; without one there is nobody to issue for.
    let Some(axum::Extension(issuer)) = issuer else {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "send an API key with `learners` scope",
        ));
    };
    let mut e = FieldErrors::new();
    let days = match &body.expires_in_days {
        None => Some(LEARNER_TOKEN_DAYS),
        Some(v) => e.check(
            "expires_in_days",
            json_integer(v)
                .filter(|d| (1..=LEARNER_TOKEN_MAX_DAYS).contains(d))
                .ok_or_else(|| format!("must be an integer from 1 to {LEARNER_TOKEN_MAX_DAYS}")),
        ),
    };
    e.finish()?;
    let (token, expires_at) = state
        .service
        .issue_learner_token(&learner, days.unwrap_or(LEARNER_TOKEN_DAYS), &issuer)
        .await?;
    Ok((
        axum::http::StatusCode::CREATED,
        axum::Json(LearnerTokenOut { token, expires_at }),
    ))
}
