//! The one error type of the HTTP surface and the table of stable error codes.
//!
//! Every failure a client can see is an [`ApiError`] rendered as RFC 9457
//! `application/problem+json`. The `code` strings are part of the public contract: add new
//! ones, never rename or repurpose an existing one. Service errors become API errors in one
//! place, [`From<service::Error>`](#impl-From<Error>-for-ApiError).

use crate::domain::{FieldError, FieldErrors};
use crate::service;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

macro_rules! error_codes {
    ($($variant:ident => ($code:literal, $status:ident, $title:literal),)+) => {
        /// Stable, machine-readable error codes: the one table clients can rely on.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode { $($variant,)+ }

        impl ErrorCode {
            /// Every code, for documentation and tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)+ }
            }

            pub fn status(self) -> StatusCode {
                match self { $(ErrorCode::$variant => StatusCode::$status,)+ }
            }

            pub fn title(self) -> &'static str {
                match self { $(ErrorCode::$variant => $title,)+ }
            }
        }
    };
}

error_codes! {
    InvalidJson => ("invalid_json", BAD_REQUEST, "The request body is not valid JSON"),
    InvalidQuery => ("invalid_query", BAD_REQUEST, "The query string could not be parsed"),
    InvalidCursor => ("invalid_cursor", BAD_REQUEST, "The pagination cursor is not valid"),
    CursorExpired => ("cursor_expired", GONE, "The change feed no longer holds the events after this cursor"),
    TooManyStreams => ("too_many_streams", TOO_MANY_REQUESTS, "Too many open change streams or waiting polls"),
    InvalidId => ("invalid_id", BAD_REQUEST, "An id in the path is not a positive integer"),
    InvalidPath => ("invalid_path", BAD_REQUEST, "A path parameter could not be decoded"),
    ValidationFailed => ("validation_failed", UNPROCESSABLE_ENTITY, "The request is not valid"),
    UnknownField => ("unknown_field", UNPROCESSABLE_ENTITY, "The request body has a field this endpoint does not accept"),
    UnsupportedMediaType => ("unsupported_media_type", UNSUPPORTED_MEDIA_TYPE, "The request body has an unsupported content type"),
    PayloadTooLarge => ("payload_too_large", PAYLOAD_TOO_LARGE, "The request body is too large"),
    TooManyItems => ("too_many_items", PAYLOAD_TOO_LARGE, "The request has more items than this endpoint takes at once"),
    Unauthorized => ("unauthorized", UNAUTHORIZED, "A valid API key is required"),
    RateLimited => ("rate_limited", TOO_MANY_REQUESTS, "Too many requests: over quota"),
    Overloaded => ("overloaded", SERVICE_UNAVAILABLE, "The server is overloaded"),
    TooManyAnswers => ("too_many_answers", UNPROCESSABLE_ENTITY, "A question may have at most 100 answers"),
    QuestionTooLarge => ("question_too_large", UNPROCESSABLE_ENTITY, "The question's text would exceed its size limit"),
    ReviewIdReused => ("review_id_reused", CONFLICT, "The review_id already names another review of this learner"),
    ReviewTimeOutOfRange => ("review_time_out_of_range", CONFLICT, "The review's time is too far in the future or the past"),
    Forbidden => ("forbidden", FORBIDDEN, "The API key lacks the scope this request needs"),
    NotFound => ("not_found", NOT_FOUND, "No such resource"),
    QuestionNotFound => ("question_not_found", NOT_FOUND, "Question not found"),
    AnswerNotFound => ("answer_not_found", NOT_FOUND, "Answer not found"),
    CategoryNotFound => ("category_not_found", NOT_FOUND, "Category not found"),
    TagNotFound => ("tag_not_found", NOT_FOUND, "Tag not found"),
    UnknownCategory => ("unknown_category", CONFLICT, "The request names a category that does not exist"),
    QuizSessionConflict => ("quiz_session_conflict", CONFLICT, "Filters cannot be combined with a session"),
    CategoryExists => ("category_exists", CONFLICT, "A category with this slug already exists"),
    FitInProgress => ("fit_in_progress", CONFLICT, "A fit of the learner's parameters is already queued or running"),
    WebhookNotFound => ("webhook_not_found", NOT_FOUND, "No such webhook"),
    DeliveryNotFound => ("delivery_not_found", NOT_FOUND, "No such delivery of this webhook"),
    KeyNotFound => ("key_not_found", NOT_FOUND, "No such API key, or it is revoked already"),
    TooManyWebhooks => ("too_many_webhooks", CONFLICT, "The knowledge base has as many webhooks as it may"),
    WebhookUrlForbidden => ("webhook_url_forbidden", UNPROCESSABLE_ENTITY, "The webhook URL points at an address deliveries may not go to"),
    MethodNotAllowed => ("method_not_allowed", METHOD_NOT_ALLOWED, "Method not allowed on this resource"),
    InvalidLearner => ("invalid_learner", BAD_REQUEST, "The learner id is not 1-64 characters of [A-Za-z0-9_-]"),
    InvalidTicket => ("invalid_ticket", NOT_FOUND, "No such quiz item: the ticket was not issued by this server, or was altered"),
    ChoiceNotFound => ("choice_not_found", NOT_FOUND, "The choice is not one of this quiz item's choices"),
    QuizNoQuestions => ("quiz_no_questions", NOT_FOUND, "No question matches the quiz filters"),
    QuizSessionNotFound => ("quiz_session_not_found", NOT_FOUND, "No such quiz session, or it has expired"),
    QuizSessionExhausted => ("quiz_session_exhausted", CONFLICT, "Every question of the session's pool has been served"),
    QuizTooFewQuestions => ("quiz_too_few_questions", CONFLICT, "Too few questions with answers to build multiple-choice options"),
    PreconditionFailed => ("precondition_failed", PRECONDITION_FAILED, "The resource has changed since the given ETag"),
    RequestTimeout => ("request_timeout", SERVICE_UNAVAILABLE, "The request took too long and was cancelled"),
    NotReady => ("not_ready", SERVICE_UNAVAILABLE, "The service is not ready"),
    DatabaseUnavailable => ("database_unavailable", SERVICE_UNAVAILABLE, "The database cannot be reached; try again shortly"),
    InvalidIdempotencyKey => ("invalid_idempotency_key", BAD_REQUEST, "The Idempotency-Key is not 1-255 printable ASCII characters"),
    IdempotencyKeyReused => ("idempotency_key_reused", UNPROCESSABLE_ENTITY, "The Idempotency-Key was used for a different request"),
    IdempotencyKeyInFlight => ("idempotency_key_in_flight", CONFLICT, "A request with this Idempotency-Key is still running"),
    Internal => ("internal_error", INTERNAL_SERVER_ERROR, "Internal server error"),
}

/// What a client is told to wait before retrying while the database is unreachable.
const DATABASE_RETRY_AFTER_SECS: u64 = 2;

/// RFC 9457 problem details, as sent in every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type; `about:blank`-style tag URIs built from `code`.
    #[schema(example = "urn:kb:problem:question_not_found")]
    pub r#type: String,
    #[schema(example = "Question not found")]
    pub title: String,
    #[schema(example = 404)]
    pub status: u16,
    #[schema(example = "no question with id 42")]
    pub detail: String,
    /// Stable machine-readable code; see the README for the table.
    #[schema(example = "question_not_found")]
    pub code: String,
    /// Per-field problems, present on `validation_failed`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: String,
    pub errors: Vec<FieldError>,
    /// Logged, never sent: the cause of an internal error.
    source: Option<anyhow::Error>,
    /// Seconds to send as `Retry-After`.
    retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            errors: Vec::new(),
            source: None,
            retry_after: None,
        }
    }

    /// Tells the client when to try again (whole seconds, at least 1).
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        Self {
            code: ErrorCode::ValidationFailed,
            detail,
            errors,
            source: None,
            retry_after: None,
        }
    }

    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        Self {
            code: ErrorCode::Internal,
            detail: "an unexpected error occurred; it has been logged".into(),
            errors: Vec::new(),
            source: Some(source.into()),
            retry_after: None,
        }
    }

    pub fn problem(&self) -> Problem {
        Problem {
            r#type: format!("urn:kb:problem:{}", self.code.as_str()),
            title: self.code.title().to_string(),
            status: self.code.status().as_u16(),
            detail: self.detail.clone(),
            code: self.code.as_str().to_string(),
            errors: self.errors.clone(),
        }
    }
}

impl From<FieldErrors> for ApiError {
    fn from(e: FieldErrors) -> Self {
        ApiError::validation(e.into_vec())
    }
}

impl From<service::Error> for ApiError {
    fn from(e: service::Error) -> Self {
        use service::Error as E;
        let detail = e.to_string();
        let code = match e {
            E::Invalid(errors) => return errors.into(),
            E::Internal(source) => return ApiError::internal(source),
            E::Unavailable(source) => {
                tracing::warn!(error = %source, "the database cannot be reached");
                return ApiError::new(ErrorCode::DatabaseUnavailable, detail)
                    .retry_after(DATABASE_RETRY_AFTER_SECS);
            }
            E::UnknownCategory(slug) => {
                return ApiError::new(
                    ErrorCode::UnknownCategory,
                    format!("no category `{slug}`; create it first with POST /api/v1/categories"),
                );
            }
            E::IdempotencyKeyInFlight => {
                return ApiError::new(ErrorCode::IdempotencyKeyInFlight, detail).retry_after(1);
            }
            E::VersionMismatch { current } => {
                return ApiError::new(
                    ErrorCode::PreconditionFailed,
                    format!(
                        "If-Match does not match the current version ({current}); fetch it again"
                    ),
                );
            }
            E::QuestionNotFound(_) => ErrorCode::QuestionNotFound,
            E::AnswerNotFound(_) => ErrorCode::AnswerNotFound,
            E::CategoryNotFound(_) => ErrorCode::CategoryNotFound,
            E::TagNotFound(_) => ErrorCode::TagNotFound,
            E::CategoryExists(_) => ErrorCode::CategoryExists,
            E::MalformedJson(_) => ErrorCode::InvalidJson,
            E::QuizSessionConflict => ErrorCode::QuizSessionConflict,
            E::QuizSessionNotFound => ErrorCode::QuizSessionNotFound,
            E::QuizSessionExhausted => ErrorCode::QuizSessionExhausted,
            E::QuizNoQuestions { .. } => ErrorCode::QuizNoQuestions,
            E::QuizTooFewQuestions => ErrorCode::QuizTooFewQuestions,
            E::InvalidTicket => ErrorCode::InvalidTicket,
            E::ChoiceNotFound => ErrorCode::ChoiceNotFound,
            E::KeyNotFound(_) | E::KeyRevoked(_) => ErrorCode::KeyNotFound,
            E::FitInProgress => ErrorCode::FitInProgress,
            E::WebhookNotFound(_) => ErrorCode::WebhookNotFound,
            E::DeliveryNotFound(_) => ErrorCode::DeliveryNotFound,
            E::TooManyWebhooks(_) => ErrorCode::TooManyWebhooks,
            E::WebhookUrlForbidden(_) => ErrorCode::WebhookUrlForbidden,
            E::TooManyAnswers { .. } => ErrorCode::TooManyAnswers,
            E::QuestionTooLarge { .. } => ErrorCode::QuestionTooLarge,
            E::ReviewIdReused(_) => ErrorCode::ReviewIdReused,
            E::ReviewTimeOutOfRange(_) => ErrorCode::ReviewTimeOutOfRange,
        };
        ApiError::new(code, detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(source) = &self.source {
            tracing::error!(error = ?source, "internal error");
        }
        let challenge = self.code == ErrorCode::Unauthorized;
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (self.code.status(), body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"kb\""),
            );
        }
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_snake_case_strings() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{s}");
        }
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let err = ApiError::internal(anyhow::anyhow!("disk on fire at /secret/path"));
        let problem = err.problem();
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("secret"));
    }
}
