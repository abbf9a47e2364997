//! Spaced repetition per learner (FSRS): record reviews (one, or a batch synced from a device),
//! list what is due, issue learner tokens.

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorCode, Problem};
use super::extract::{Json, Query, from_value};
use super::idempotency::json_reply;
use super::shared::{QuestionSummary, json_integer, parse_limit};
use crate::domain::{FieldError, FieldErrors, Id, LearnerId, REVIEW_BATCH_MAX, ReviewId};
use crate::idempotency::{self, Reply};
use crate::service::keys::{LEARNER_TOKEN_DAYS, LEARNER_TOKEN_MAX_DAYS};
use crate::service::{Principal, Rating, ReviewInput, ReviewOutcome, Reviewed};
use crate::store::{Card, Merge, Merged};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
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

/// Body of `POST /api/v1/learners/{learner}/reviews`, and each review of a batch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"review_id": "0b6f6c1e-2f59-4c1b-9d1a-3e5f7a9b1c2d", "question_id": 16,
    "rating": "good", "reviewed_at": "2026-12-04T08:30:00Z"}))]
pub struct ReviewRequest {
    /// The client's id for this review, so that sending it again (a retry, a second sync)
    /// applies it once. Unique per learner: sent again with another question, rating or
    /// time (beyond 5 minutes) it is 409 `review_id_reused`.
    #[schema(value_type = Option<String>, required = false, format = "kb:review-id")]
    pub review_id: Option<String>,
    #[schema(value_type = i64, required = true, minimum = 1, maximum = 9007199254740991_i64)]
    pub question_id: Option<serde_json::Value>,
    /// How well the learner recalled the answer.
    #[schema(value_type = Rating, required = true)]
    pub rating: Option<String>,
    /// When the review happened, for reviews made offline and synced later (RFC 3339); defaults
    /// to now. Up to 5 minutes ahead of the server's clock counts as now; further ahead or more
    /// than 365 days ago is 409 `review_time_out_of_range`. A review dated before others of
    /// the same question takes its place among them and the card is recomputed.
    #[schema(value_type = Option<DateTime<Utc>>, required = false)]
    pub reviewed_at: Option<String>,
}

/// A learner's card for a question, after a review.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewOut {
    pub question_id: i64,
    /// When to review next.
    pub due: DateTime<Utc>,
    /// The interval the card's latest review set.
    pub interval_days: f64,
    /// FSRS memory stability (days until recall probability falls to 90 %).
    pub stability: f32,
    /// FSRS difficulty, 1–10.
    pub difficulty: f32,
    /// The review was already recorded (same `review_id`, or same question, rating and
    /// time): nothing changed, and this is the card as it was.
    pub duplicate: bool,
}

/// The fields of a review, checked; every problem at once, as `validation_failed`.
fn review_input(body: ReviewRequest) -> ApiResult<ReviewInput> {
    let mut e = FieldErrors::new();
    let review_id = match body.review_id.as_deref() {
        None => Some(None),
        Some(raw) => e.check("review_id", ReviewId::parse(raw).map(Some)),
    };
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
    let (Some(review_id), Some(question_id), Some(rating), Some(reviewed_at)) =
        (review_id, question_id, rating, reviewed_at)
    else {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "question_id and rating are required",
        ));
    };
    Ok(ReviewInput {
        review_id,
        question_id,
        rating,
        reviewed_at,
    })
}

/// Record a review
///
/// The learner rated their recall of a question; FSRS schedules the next review. Better ratings
/// give longer intervals. The card is the fold of the learner's reviews of the question in
/// time order, so a review made offline and sent late takes its place among the others. A
/// review already recorded (same `review_id`, or same question, rating and `reviewed_at`) is
/// not recorded again: 200 with `duplicate: true` and the card as it is.
#[utoipa::path(
    post, path = "/api/v1/learners/{learner}/reviews", tag = "learners",
    params(("learner" = String, Path, description = "Client-chosen learner id, 1–64 of [A-Za-z0-9_-]", format = "kb:learner")),
    request_body(content = ReviewRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Recorded: the card as it now stands", body = ReviewOut),
        (status = 200, description = "Already recorded (`duplicate: true`): the card, unchanged", body = ReviewOut),
        (status = 400, description = "Malformed JSON or learner id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such question", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`reviewed_at` is out of range (`review_time_out_of_range`), or `review_id` already names another review of this learner (`review_id_reused`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Missing or invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn record_review(
    State(state): State<AppState>,
    Learner(learner): Learner,
    Json(body): Json<ReviewRequest>,
) -> ApiResult<Response> {
    let input = review_input(body)?;
    let question_id = input.question_id;
    let review_id = input.review_id.as_ref().map(|r| r.as_str().to_string());
    // A retry under an `Idempotency-Key` gets this answer, recorded in the merge's own
    // transaction: what the merge did, rendered as the answer below renders it.
    idempotency::reply_with(move |m: &Merge| {
        match (m.outcomes.first(), m.cards.get(&question_id)) {
            (Some(o @ (Merged::Applied | Merged::Duplicate)), Some(card)) => {
                review_reply(question_id, card, matches!(o, Merged::Duplicate))
            }
            (Some(Merged::ReviewIdReused), _) => problem_reply(ApiError::from(
                crate::service::Error::ReviewIdReused(review_id.unwrap_or_default()),
            )),
            _ => problem_reply(ApiError::from(crate::service::Error::QuestionNotFound(
                question_id,
            ))),
        }
    });
    let Reviewed { card, duplicate } = state.service.review(&learner, input).await?;
    Ok(review_reply(question_id, &card, duplicate).into_response())
}

/// The answer to a review, also as its idempotency record keeps it.
fn review_reply(question_id: i64, card: &Card, duplicate: bool) -> Reply {
    let status = if duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let out = ReviewOut {
        question_id,
        due: card.due,
        interval_days: card.interval_days,
        stability: card.stability,
        difficulty: card.difficulty,
        duplicate,
    };
    json_reply(status, &out, &[])
}

/// A refusal, as its idempotency record keeps it (the same bytes the error renders to).
fn problem_reply(e: ApiError) -> Reply {
    Reply {
        status: e.code.status().as_u16(),
        headers: vec![(
            axum::http::header::CONTENT_TYPE.to_string(),
            super::error::PROBLEM_JSON.to_string(),
        )],
        body: serde_json::to_vec(&e.problem())
            .expect("a problem serializes")
            .into(),
    }
}

/// Body of `POST /api/v1/learners/{learner}/reviews/batch`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"reviews": [
    {"review_id": "phone-7:1041", "question_id": 16, "rating": "good", "reviewed_at": "2026-12-02T21:04:00Z"},
    {"review_id": "phone-7:1042", "question_id": 5, "rating": "again", "reviewed_at": "2026-12-02T21:05:10Z"}]}))]
pub struct ReviewBatchRequest {
    /// At most 1,000 reviews, each the body the single route takes (`ReviewRequest`), and
    /// checked on its own: one that is malformed or refused does not keep the others out (it
    /// is reported `refused` with its code), so any item is accepted here. Any order: each
    /// takes its place in its card's history by `reviewed_at`.
    #[schema(value_type = Vec<Value>, required = true, max_items = 1000)]
    pub reviews: Option<Vec<serde_json::Value>>,
}

/// What became of one review of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReviewStatus {
    /// Recorded; its card was recomputed.
    Applied,
    /// Already recorded (by an earlier request or earlier in this batch): nothing changed.
    Duplicate,
    /// Not recorded; `code` and `detail` say why, as the single route would.
    Refused,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReviewResult {
    /// The review's position in `reviews`, from 0.
    pub index: usize,
    pub status: ReviewStatus,
    /// For a refused review, the error code the single route would answer with
    /// (`validation_failed`, `unknown_field`, `question_not_found`,
    /// `review_time_out_of_range`, `review_id_reused`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// For a refused review, what was wrong with it, in English.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For `validation_failed` and `unknown_field`, the fields at fault.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl ReviewResult {
    fn new(index: usize, status: ReviewStatus) -> Self {
        Self {
            index,
            status,
            code: None,
            detail: None,
            errors: Vec::new(),
        }
    }

    fn refused(index: usize, e: ApiError) -> Self {
        if e.code == ErrorCode::Internal {
            tracing::error!(error = ?e, index, "a review of a batch failed");
        }
        Self {
            code: Some(e.code.as_str().to_string()),
            detail: Some(e.detail.clone()),
            errors: e.errors,
            ..Self::new(index, ReviewStatus::Refused)
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewBatchOut {
    /// One per review, in the order of the request.
    pub results: Vec<ReviewResult>,
}

/// Record a batch of reviews
///
/// Up to 1,000 reviews in one request and one transaction, e.g. what a device recorded while
/// offline. Each is reported on its own, in request order: applied, duplicate (already
/// recorded, by an earlier request or earlier in this batch), or refused with the code the
/// single route would give. Reviews may come in any order and from several devices: each card
/// is the fold of its reviews in `reviewed_at` order, so the same set of reviews gives the
/// same card whatever order it arrives in. An empty list is 200 with no results.
#[utoipa::path(
    post, path = "/api/v1/learners/{learner}/reviews/batch", tag = "learners",
    params(("learner" = String, Path, description = "Client-chosen learner id, 1–64 of [A-Za-z0-9_-]", format = "kb:learner")),
    request_body(content = ReviewBatchRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "What became of each review, in order", body = ReviewBatchOut),
        (status = 400, description = "Malformed JSON or learner id", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "More than 1,000 reviews (`too_many_items`), or a body over 1 MiB (`payload_too_large`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`reviews` is missing or not a list, or the body has another field", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn record_review_batch(
    State(state): State<AppState>,
    Learner(learner): Learner,
    Json(body): Json<ReviewBatchRequest>,
) -> ApiResult<Response> {
    let Some(items) = body.reviews else {
        return Err(ApiError::field("reviews", "is required"));
    };
    if items.len() > REVIEW_BATCH_MAX {
        return Err(ApiError::new(
            ErrorCode::TooManyItems,
            format!(
                "a batch takes at most {REVIEW_BATCH_MAX} reviews; this one has {}: send them in several",
                items.len()
            ),
        ));
    }
    let mut results: Vec<Option<ReviewResult>> = Vec::with_capacity(items.len());
    let mut inputs = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        match from_value(item).and_then(review_input) {
            Ok(input) => {
                inputs.push((index, input));
                results.push(None);
            }
            Err(e) => results.push(Some(ReviewResult::refused(index, e))),
        }
    }
    let (indices, inputs): (Vec<usize>, Vec<ReviewInput>) = inputs.into_iter().unzip();
    // A retry under an `Idempotency-Key` gets this answer, recorded in the merge's own
    // transaction, rendered by the same function as the answer below.
    let respond = {
        let (results, indices) = (results.clone(), indices.clone());
        Box::new(move |outcomes| batch_reply(results, &indices, outcomes))
    };
    let outcomes = state
        .service
        .review_batch(&learner, &inputs, Some(respond))
        .await?;
    Ok(batch_reply(results, &indices, outcomes).into_response())
}

/// The answer to a batch: the results of the items refused as they were read, with the
/// outcomes of the others (`indices` says where each goes).
fn batch_reply(
    mut results: Vec<Option<ReviewResult>>,
    indices: &[usize],
    outcomes: Vec<ReviewOutcome>,
) -> Reply {
    for (&index, outcome) in indices.iter().zip(outcomes) {
        results[index] = Some(match outcome {
            ReviewOutcome::Applied => ReviewResult::new(index, ReviewStatus::Applied),
            ReviewOutcome::Duplicate => ReviewResult::new(index, ReviewStatus::Duplicate),
            ReviewOutcome::Refused(e) => ReviewResult::refused(index, e.into()),
        });
    }
    let out = ReviewBatchOut {
        results: results.into_iter().flatten().collect(),
    };
    json_reply(StatusCode::OK, &out, &[])
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
) -> ApiResult<(StatusCode, axum::Json<LearnerTokenOut>)> {
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
        StatusCode::CREATED,
        axum::Json(LearnerTokenOut { token, expires_at }),
    ))
}
