//! Answers: `/api/v1/questions/{id}/answers` and `/api/v1/answers/{id}`.

use super::AppState;
use super::error::{ApiResult, Problem};
use super::extract::{Json, PathId, etag, if_match, if_none_match};
use super::idempotency::json_reply;
use super::shared::AnswerOut;
use crate::domain::{Answer, FieldErrors, Markdown};
use crate::idempotency::{self, Reply};
use crate::service::Written;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

/// An answer to write.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"body": "make 只能用来分配及初始化 slice、map、channel；new 可以分配任意类型。"}))]
pub struct AnswerInput {
    /// Markdown, 1–100,000 characters, not only whitespace.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = String, required = true, format = "kb:markdown")]
    pub body: Option<Option<String>>,
}

impl AnswerInput {
    /// The body's text, or why there is none.
    pub(super) fn text(&self) -> Result<&str, &'static str> {
        match &self.body {
            Some(Some(b)) => Ok(b),
            Some(None) => Err("cannot be null"),
            None => Err("is required"),
        }
    }

    fn parse_alone(&self) -> Result<Markdown, FieldErrors> {
        let mut e = FieldErrors::new();
        let body = match self.text() {
            Ok(text) => e.check("body", Markdown::parse(text)),
            Err(why) => {
                e.push("body", why);
                None
            }
        };
        match body {
            Some(body) => Ok(body),
            None => Err(e),
        }
    }
}

/// Body of `PATCH /api/v1/answers/{id}`: a merge patch of the body; `{}` changes nothing.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"body": "make 只能用来分配及初始化 slice、map、channel。"}))]
pub struct PatchAnswer {
    /// Markdown, 1–100,000 characters, not only whitespace.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = String, required = false, format = "kb:markdown")]
    pub body: Option<Option<String>>,
}

/// An answer with its `ETag` (and `Location` when it was created): the answer of an add,
/// also as its idempotency record keeps it.
fn answer_reply(status: StatusCode, a: Answer, location: bool) -> Reply {
    let mut headers = vec![(header::ETAG, etag('a', a.id, a.version))];
    if location {
        let loc = format!("/api/v1/answers/{}", a.id);
        headers.push((header::LOCATION, loc.parse().expect("ascii location")));
    }
    json_reply(status, &AnswerOut::from(a), &headers)
}

fn answer_response(status: StatusCode, a: Answer, location: bool) -> Response {
    answer_reply(status, a, location).into_response()
}

/// List a question's answers
///
/// Oldest first.
#[utoipa::path(
    get, path = "/api/v1/questions/{id}/answers", tag = "answers",
    params(("id" = i64, Path, description = "Question id", minimum = 1)),
    responses(
        (status = 200, description = "The answers", body = Vec<AnswerOut>),
        (status = 400, description = "The id is not a positive integer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such question", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_answers(
    State(state): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<axum::Json<Vec<AnswerOut>>> {
    let answers = state.service.list_answers(id).await?;
    Ok(axum::Json(
        answers.into_iter().map(AnswerOut::from).collect(),
    ))
}

/// Add an answer
///
/// Adds an answer to the question; the question's version goes up by one.
#[utoipa::path(
    post, path = "/api/v1/questions/{id}/answers", tag = "answers",
    params(("id" = i64, Path, description = "Question id", minimum = 1)),
    request_body(content = AnswerInput, content_type = "application/json"),
    responses(
        (status = 422, description = "Invalid or unknown fields, more than 100 answers (`too_many_answers`), or more than 500,000 characters of title, body and answers together (`question_too_large`)", body = Problem, content_type = "application/problem+json"),
        (status = 201, description = "Created", body = AnswerOut, headers(
            ("Location" = String, description = "URL of the new answer"),
            ("ETag" = String),
        )),
        (status = 400, description = "Malformed JSON or id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such question", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn add_answer(
    State(state): State<AppState>,
    PathId(id): PathId,
    Json(input): Json<AnswerInput>,
) -> ApiResult<Response> {
    let body = input.parse_alone()?;
    idempotency::reply_with(|w: &Written<Answer>| {
        answer_reply(StatusCode::CREATED, w.value.clone(), true)
    });
    let a = state.service.add_answer(id, &body).await?;
    Ok(answer_response(StatusCode::CREATED, a, true))
}

/// Get an answer
#[utoipa::path(
    get, path = "/api/v1/answers/{id}", tag = "answers",
    params(
        ("id" = i64, Path, description = "Answer id", minimum = 1),
    ),
    responses(
        (status = 200, description = "The answer", body = AnswerOut, headers(("ETag" = String))),
        (status = 304, description = "Not modified"),
        (status = 400, description = "The id is not a positive integer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such answer", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_answer(
    State(state): State<AppState>,
    PathId(id): PathId,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let a = state.service.get_answer(id).await?;
    let tag = etag('a', a.id, a.version);
    if if_none_match(&headers, &tag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response());
    }
    Ok(answer_response(StatusCode::OK, a, false))
}

/// Update an answer
///
/// Merge patch of the answer's `body`. Honours an `If-Match` header (412 when stale).
#[utoipa::path(
    patch, path = "/api/v1/answers/{id}", tag = "answers",
    params(
        ("id" = i64, Path, description = "Answer id", minimum = 1),
    ),
    request_body(content(
        (PatchAnswer = "application/merge-patch+json"),
        (PatchAnswer = "application/json"),
    )),
    responses(
        (status = 422, description = "Invalid or unknown fields, more than 100 answers (`too_many_answers`), or more than 500,000 characters of title, body and answers together (`question_too_large`)", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "The updated answer", body = AnswerOut, headers(("ETag" = String))),
        (status = 400, description = "Malformed JSON, id or header", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such answer", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The answer changed since the ETag in If-Match", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn patch_answer(
    State(state): State<AppState>,
    PathId(id): PathId,
    headers: HeaderMap,
    Json(input): Json<PatchAnswer>,
) -> ApiResult<Response> {
    let expected = if_match(&headers, 'a', id.get());
    let body = match input.body {
        Some(body) => Some(AnswerInput { body: Some(body) }.parse_alone()?),
        None => None,
    };
    let a = state
        .service
        .patch_answer(id, body.as_ref(), &expected)
        .await?;
    Ok(answer_response(StatusCode::OK, a, false))
}

/// Delete an answer
///
/// Honours an `If-Match` header (412 when stale); the question's version goes up by one.
#[utoipa::path(
    delete, path = "/api/v1/answers/{id}", tag = "answers",
    params(
        ("id" = i64, Path, description = "Answer id", minimum = 1),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Malformed id or header", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such answer", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The answer changed since the ETag in If-Match", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_answer(
    State(state): State<AppState>,
    PathId(id): PathId,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let expected = if_match(&headers, 'a', id.get());
    state.service.delete_answer(id, &expected).await?;
    Ok(StatusCode::NO_CONTENT)
}
