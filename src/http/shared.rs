//! What several resources' handlers share: the representations embedded in more than one
//! response, and the parsing of common query parameters.

use crate::domain::{Answer, Difficulty, FieldErrors, Question, QuizFilter, Slug};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// A question's category, as embedded in a question.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryRefOut {
    #[schema(example = "golang")]
    pub slug: String,
    #[schema(example = "Golang")]
    pub name: String,
}

/// An answer to a question.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnswerOut {
    #[schema(example = 7)]
    pub id: i64,
    #[schema(example = 16)]
    pub question_id: i64,
    /// Markdown.
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[schema(example = 1)]
    pub version: i64,
}

impl From<Answer> for AnswerOut {
    fn from(a: Answer) -> Self {
        Self {
            id: a.id,
            question_id: a.question_id,
            body: a.body,
            created_at: a.created_at,
            updated_at: a.updated_at,
            version: a.version,
        }
    }
}

/// The summary of a question shown in result lists.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuestionSummary {
    #[schema(example = 9)]
    pub id: i64,
    #[schema(example = "sync.Map 了解吗？")]
    pub title: String,
    pub category: CategoryRefOut,
    #[schema(example = json!(["map", "sync", "concurrency"]))]
    pub tags: Vec<String>,
    pub difficulty: Difficulty,
}

impl From<Question> for QuestionSummary {
    fn from(q: Question) -> Self {
        Self {
            id: q.id,
            title: q.title,
            category: CategoryRefOut {
                slug: q.category.slug,
                name: q.category.name,
            },
            tags: q.tags,
            difficulty: q.difficulty,
        }
    }
}

/// A tag: lowercase letters and digits, words joined by `-`.
#[derive(ToSchema)]
#[schema(value_type = String, format = "kb:slug", example = "write-barrier")]
#[allow(dead_code)]
pub struct TagSlug(String);

/// The filters the question list, search and the quiz share, parsed here once: a bad value is
/// a field error under its parameter's name (`category`, `tag`, `difficulty`).
#[derive(Debug, Default)]
pub struct Filter {
    pub category: Option<Slug>,
    /// Sorted, without duplicates.
    pub tags: Vec<Slug>,
    pub difficulty: Option<Difficulty>,
}

impl Filter {
    /// Parses the raw values; each one that is refused leaves its filter unset and its error in
    /// `e`.
    pub fn parse(
        e: &mut FieldErrors,
        category: Option<&str>,
        tags: &[String],
        difficulty: Option<&str>,
    ) -> Self {
        let category = category.and_then(|c| e.check("category", Slug::parse(c)));
        let mut tags: Vec<Slug> = tags
            .iter()
            .filter_map(|t| e.check("tag", Slug::parse(t)))
            .collect();
        tags.sort();
        tags.dedup();
        let difficulty = difficulty.and_then(|d| e.check("difficulty", Difficulty::parse(d)));
        Self {
            category,
            tags,
            difficulty,
        }
    }

    /// As search and the quiz take it: one `tag` at most.
    pub fn one_tag(
        e: &mut FieldErrors,
        category: &Option<String>,
        tag: &Option<String>,
        difficulty: &Option<String>,
    ) -> QuizFilter {
        let f = Self::parse(
            e,
            category.as_deref(),
            tag.as_slice(),
            difficulty.as_deref(),
        );
        QuizFilter {
            category: f.category,
            tag: f.tags.into_iter().next(),
            difficulty: f.difficulty,
        }
    }
}

/// Parses an optional `limit` parameter in `1..=max`.
pub fn parse_limit(raw: Option<&str>, default: i64, max: i64) -> Result<i64, String> {
    match raw {
        None => Ok(default),
        Some(s) => match s.trim().parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(format!("must be an integer from 1 to {max}")),
        },
    }
}

/// A JSON response with a strong ETag made from its bytes, or 304 when the client's
/// `If-None-Match` already names them: a client re-syncing a list or the categories pays a
/// header exchange, not the body.
pub fn json_etagged(
    request_headers: &axum::http::HeaderMap,
    value: &impl Serialize,
) -> axum::response::Response {
    use axum::http::{HeaderValue, StatusCode, header};
    use axum::response::IntoResponse;
    let body = serde_json::to_vec(value).expect("a response serializes");
    let digest = crate::secret::sha256_hex(&String::from_utf8_lossy(&body));
    let tag = HeaderValue::from_str(&format!("\"h{}\"", &digest[..20])).expect("hex is a header");
    if super::extract::if_none_match(request_headers, &tag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response();
    }
    (
        [
            (header::ETAG, tag),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        body,
    )
        .into_response()
}

/// A JSON number as an integer: `16.0` is the integer 16 to a JSON Schema validator, so it is
/// to us too (within the range a double holds exactly).
pub fn json_integer(v: &serde_json::Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_991.0)
            .map(|f| f as i64)
    })
}
