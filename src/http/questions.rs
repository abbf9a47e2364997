//! `/api/v1/questions`: list, create, read, merge-patch and delete questions.

use super::answers::AnswerInput;
use super::error::{ApiError, ApiResult, ErrorCode, Problem};
use super::extract::{IfNoneMatch, Json, PathId, Query, etag, if_match};
use super::idempotency::json_reply;
use super::shared::{AnswerOut, CategoryRefOut, Filter, TagSlug, json_etagged, parse_limit};
use super::{AppState, double_option};
use crate::domain::{
    Difficulty, FieldErrors, Markdown, NewQuestion, Question, QuestionDraft, QuestionFilter,
    QuestionPatch, QuestionTitle, Slug, parse_answers, parse_tags,
};
use crate::idempotency::{self, Reply};
use crate::service::Written;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A question with its answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuestionOut {
    #[schema(example = 16)]
    pub id: i64,
    /// The question itself.
    #[schema(example = "GMP 指的是什么？")]
    pub title: String,
    /// Optional Markdown detail.
    pub body: Option<String>,
    pub category: CategoryRefOut,
    /// Lowercase slugs, in the order they were given.
    #[schema(example = json!(["scheduler", "goroutine"]))]
    pub tags: Vec<String>,
    pub difficulty: Difficulty,
    /// Oldest first.
    pub answers: Vec<AnswerOut>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// +1 on every change to the question or one of its answers; the ETag is built from it.
    #[schema(example = 1)]
    pub version: i64,
    /// The importer's stable id, when the question came from a bulk import that gave one.
    pub external_id: Option<String>,
}

impl From<Question> for QuestionOut {
    fn from(q: Question) -> Self {
        Self {
            id: q.id,
            title: q.title,
            body: q.body,
            category: CategoryRefOut {
                slug: q.category.slug,
                name: q.category.name,
            },
            tags: q.tags,
            difficulty: q.difficulty,
            answers: q.answers.into_iter().map(AnswerOut::from).collect(),
            created_at: q.created_at,
            updated_at: q.updated_at,
            version: q.version,
            external_id: q.external_id,
        }
    }
}

/// One page of questions.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuestionPage {
    pub items: Vec<QuestionOut>,
    /// Pass back as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Filters and paging of the question list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only questions in this category (slug).
    #[param(value_type = String, required = false, example = "golang", format = "kb:slug")]
    pub category: Option<String>,
    /// Only questions carrying this tag; repeat to require several (all must match).
    #[serde(default)]
    #[param(rename = "tag", value_type = Vec<TagSlug>, required = false, max_items = 20)]
    pub tag: Vec<String>,
    /// Only questions of this difficulty.
    #[param(value_type = Difficulty, required = false)]
    pub difficulty: Option<String>,
    /// Only questions changed at or after this instant (RFC 3339).
    #[param(value_type = DateTime<Utc>, required = false)]
    pub updated_since: Option<String>,
    /// Page size, 1–100.
    #[param(value_type = u32, required = false, minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    #[param(value_type = String, required = false, pattern = "^[0-9]{1,18}$")]
    pub cursor: Option<String>,
}

/// Body of `POST /api/v1/questions`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "title": "GMP 指的是什么？",
    "category": "golang",
    "tags": ["scheduler", "goroutine"],
    "difficulty": "hard",
    "answers": [{"body": "G 代表着 goroutine，P 代表着上下文处理器，M 代表 thread 线程……"}]
}))]
pub struct CreateQuestion {
    /// 1–500 characters after trimming, on one line.
    #[schema(value_type = String, required = true, format = "kb:title")]
    pub title: Option<String>,
    /// Markdown, 1–100,000 characters, not only whitespace.
    #[schema(value_type = Option<String>, required = false, format = "kb:markdown")]
    pub body: Option<String>,
    /// Slug of an existing category.
    #[schema(value_type = String, required = true, format = "kb:slug")]
    pub category: Option<String>,
    /// Up to 20 slugs; created on first use.
    #[schema(value_type = Option<Vec<TagSlug>>, required = false, max_items = 20)]
    pub tags: Option<Vec<String>>,
    /// Defaults to `medium`.
    #[schema(value_type = Option<Difficulty>, required = false)]
    pub difficulty: Option<String>,
    #[schema(value_type = Option<Vec<AnswerInput>>, required = false)]
    pub answers: Option<Vec<AnswerInput>>,
}

/// Body of `PATCH /api/v1/questions/{id}`: a JSON merge patch. Absent fields are kept;
/// `null` clears `body` and `tags`, deletes all `answers`, and is refused for the rest.
/// `answers`, when given, replaces the whole list.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"tags": ["gc"]}))]
pub struct PatchQuestion {
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = String, required = false, format = "kb:title")]
    pub title: Option<Option<String>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, required = false, format = "kb:markdown")]
    pub body: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = String, required = false, format = "kb:slug")]
    pub category: Option<Option<String>>,
    /// `null` clears them.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Vec<TagSlug>>, required = false, max_items = 20)]
    pub tags: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Difficulty, required = false)]
    pub difficulty: Option<Option<String>>,
    /// Replaces every answer; `null` deletes them all.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Vec<AnswerInput>>, required = false)]
    pub answers: Option<Option<Vec<AnswerInput>>>,
}

impl CreateQuestion {
    fn parse(self) -> Result<NewQuestion, FieldErrors> {
        let answers = self.answers.as_deref().unwrap_or_default();
        NewQuestion::parse(&QuestionDraft {
            title: self.title.as_deref(),
            body: self.body.as_deref(),
            category: self.category.as_deref(),
            tags: self.tags.as_deref().unwrap_or_default(),
            difficulty: self.difficulty.as_deref(),
            answers: answers.iter().map(AnswerInput::text).collect(),
        })
    }
}

impl PatchQuestion {
    fn parse(self) -> Result<QuestionPatch, FieldErrors> {
        let mut e = FieldErrors::new();
        let mut p = QuestionPatch::default();
        let refuse_null = |e: &mut FieldErrors, f: &str| e.push(f, "cannot be null");
        match self.title {
            Some(Some(t)) => p.title = e.check("title", QuestionTitle::parse(&t)),
            Some(None) => refuse_null(&mut e, "title"),
            None => {}
        }
        match self.body {
            Some(Some(b)) => p.body = e.check("body", Markdown::parse(&b)).map(Some),
            Some(None) => p.body = Some(None),
            None => {}
        }
        match self.category {
            Some(Some(c)) => p.category = e.check("category", Slug::parse(&c)),
            Some(None) => refuse_null(&mut e, "category"),
            None => {}
        }
        if let Some(t) = self.tags {
            p.tags = parse_tags(&mut e, t.as_deref().unwrap_or_default());
        }
        match self.difficulty {
            Some(Some(d)) => p.difficulty = e.check("difficulty", Difficulty::parse(&d)),
            Some(None) => refuse_null(&mut e, "difficulty"),
            None => {}
        }
        if let Some(a) = self.answers {
            let texts: Vec<_> = a.iter().flatten().map(AnswerInput::text).collect();
            p.answers = parse_answers(&mut e, &texts);
        }
        e.finish()?;
        Ok(p)
    }
}

impl ListParams {
    fn parse(self) -> ApiResult<(QuestionFilter, i64, i64)> {
        let mut e = FieldErrors::new();
        let shared = Filter::parse(
            &mut e,
            self.category.as_deref(),
            &self.tag,
            self.difficulty.as_deref(),
        );
        let mut f = QuestionFilter {
            category: shared.category,
            tags: shared.tags,
            difficulty: shared.difficulty,
            updated_since: None,
        };
        if let Some(t) = &self.updated_since {
            f.updated_since = e.check(
                "updated_since",
                DateTime::parse_from_rfc3339(t.trim())
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| "must be an RFC 3339 timestamp like 2026-01-31T12:00:00Z".into()),
            );
        }
        let limit = e
            .check("limit", parse_limit(self.limit.as_deref(), 20, 100))
            .unwrap_or(20);
        e.finish()?;
        let after = match &self.cursor {
            Some(c) => decode_cursor(c)?,
            None => 0,
        };
        Ok((f, after, limit))
    }
}

/// The cursor is the last id of the page. Clients treat it as opaque; it is kept this simple
/// so that every cursor the schema admits means something.
fn encode_cursor(after: i64) -> String {
    after.to_string()
}

fn decode_cursor(raw: &str) -> ApiResult<i64> {
    Some(raw.trim())
        .filter(|s| (1..=18).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidCursor,
                "pass back `next_cursor` from the previous page unchanged",
            )
        })
}

/// A question as written, with its `ETag` (and `Location` when it was created): the answer
/// of a create, also as its idempotency record keeps it.
fn question_reply(status: StatusCode, q: Question, location: bool) -> Reply {
    let mut headers = vec![(header::ETAG, etag('q', q.id, q.version))];
    if location {
        let loc = format!("/api/v1/questions/{}", q.id);
        headers.push((header::LOCATION, loc.parse().expect("ascii location")));
    }
    json_reply(status, &QuestionOut::from(q), &headers)
}

/// List questions
///
/// Questions in id order, filtered, with cursor pagination: pass `next_cursor` back as
/// `cursor` until it is `null`. Rows inserted while paging appear on a later page, never twice.
#[utoipa::path(
    get, path = "/api/v1/questions", tag = "questions",
    params(ListParams),
    responses(
        (status = 200, description = "One page of questions", body = QuestionPage, headers(("ETag" = String))),
        (status = 304, description = "Not modified"),
        (status = 400, description = "Malformed query string or cursor", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A filter or the limit is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_questions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<ListParams>,
) -> ApiResult<Response> {
    let (filter, after, limit) = params.parse()?;
    let page = state.service.list_questions(&filter, after, limit).await?;
    Ok(json_etagged(
        &headers,
        &QuestionPage {
            items: page.items.into_iter().map(QuestionOut::from).collect(),
            next_cursor: page.next_after.map(encode_cursor),
        },
    ))
}

/// Create a question
///
/// Creates a question, optionally with its answers. Tags are created on first use; the
/// category must exist.
#[utoipa::path(
    post, path = "/api/v1/questions", tag = "questions",
    request_body(content = CreateQuestion, content_type = "application/json"),
    responses(
        (status = 422, description = "Invalid or unknown fields, more than 100 answers (`too_many_answers`), or more than 500,000 characters of title, body and answers together (`question_too_large`)", body = Problem, content_type = "application/problem+json"),
        (status = 201, description = "Created", body = QuestionOut, headers(
            ("Location" = String, description = "URL of the new question"),
            ("ETag" = String, description = "Strong ETag of the new question"),
        )),
        (status = 409, description = "The category does not exist (`unknown_category`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_question(
    State(state): State<AppState>,
    Json(body): Json<CreateQuestion>,
) -> ApiResult<Response> {
    let new = body.parse()?;
    idempotency::reply_with(|w: &Written<Question>| {
        question_reply(StatusCode::CREATED, w.value.clone(), true)
    });
    let q = state.service.create_question(&new).await?;
    Ok(question_reply(StatusCode::CREATED, q, true).into_response())
}

/// Get a question
///
/// One question with its answers. Send the `ETag` back in an `If-None-Match` header to get a
/// 304 when nothing changed.
#[utoipa::path(
    get, path = "/api/v1/questions/{id}", tag = "questions",
    params(
        ("id" = i64, Path, description = "Question id", minimum = 1),
    ),
    responses(
        (status = 200, description = "The question", body = QuestionOut, headers(("ETag" = String))),
        (status = 304, description = "Not modified"),
        (status = 400, description = "The id is not a positive integer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such question", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_question(
    State(state): State<AppState>,
    PathId(id): PathId,
    condition: IfNoneMatch,
) -> ApiResult<Response> {
    let rendered = state
        .service
        .get_question_rendered(id, |q| {
            serde_json::to_vec(&QuestionOut::from(q))
                .expect("a question serializes")
                .into()
        })
        .await?;
    let tag = etag('q', id.get(), rendered.version);
    if condition.matches(&tag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response());
    }
    // Room for every header the way out adds (guard, edge), so the map is allocated once.
    let mut headers = HeaderMap::with_capacity(12);
    headers.insert(header::ETAG, tag);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let mut response = Response::new(axum::body::Body::from(rendered.body.clone()));
    *response.headers_mut() = headers;
    Ok(response)
}

/// Update a question
///
/// JSON merge patch (RFC 7396) of title, body, category, tags, difficulty and answers. Send an
/// `If-Match` header with the ETag you read to make sure nobody changed it in between: 412 when
/// it no longer matches.
#[utoipa::path(
    patch, path = "/api/v1/questions/{id}", tag = "questions",
    params(
        ("id" = i64, Path, description = "Question id", minimum = 1),
    ),
    request_body(content(
        (PatchQuestion = "application/merge-patch+json"),
        (PatchQuestion = "application/json"),
    )),
    responses(
        (status = 422, description = "Invalid or unknown fields, more than 100 answers (`too_many_answers`), or more than 500,000 characters of title, body and answers together (`question_too_large`)", body = Problem, content_type = "application/problem+json"),
        (status = 200, description = "The updated question", body = QuestionOut, headers(("ETag" = String))),
        (status = 400, description = "Malformed JSON, id or header", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such question", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The new category does not exist (`unknown_category`)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The question changed since the ETag in If-Match", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn patch_question(
    State(state): State<AppState>,
    PathId(id): PathId,
    headers: HeaderMap,
    Json(body): Json<PatchQuestion>,
) -> ApiResult<Response> {
    let expected = if_match(&headers, 'q', id.get());
    let patch = body.parse()?;
    let q = state.service.patch_question(id, &patch, &expected).await?;
    Ok(question_reply(StatusCode::OK, q, false).into_response())
}

/// Delete a question
///
/// Deletes the question and its answers. Honours an `If-Match` header (412 when stale).
#[utoipa::path(
    delete, path = "/api/v1/questions/{id}", tag = "questions",
    params(
        ("id" = i64, Path, description = "Question id", minimum = 1),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Malformed id or header", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such question", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The question changed since the ETag in If-Match", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_question(
    State(state): State<AppState>,
    PathId(id): PathId,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let expected = if_match(&headers, 'q', id.get());
    state.service.delete_question(id, &expected).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(decode_cursor(&encode_cursor(42)).unwrap(), 42);
        for bad in ["", "!!!", "-1", "1.5", "1234567890123456789"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_create_body_reports_every_bad_field_at_once() {
        let body = CreateQuestion {
            title: Some(" ".into()),
            category: None,
            tags: Some(vec!["Bad Tag".into()]),
            difficulty: Some("extreme".into()),
            ..Default::default()
        };
        let err = body.parse().unwrap_err();
        let fields: Vec<_> = err.as_slice().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["title", "category", "tags[0]", "difficulty"]);
    }
}
