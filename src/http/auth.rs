//! Bearer-key authentication for `/api/…`: which scope a request needs, and whether the
//! presented key grants it.
//!
//! Content writes (questions, answers, categories) need `write`; bulk import and export need
//! `admin`; the learner-facing POSTs of the quiz and spaced repetition need any valid key
//! (`read`); reads need nothing unless `--require-key-for-reads`. Health, readiness and the API document are always public.

use super::AppState;
use crate::domain::Scope;
use crate::error::{ApiError, ErrorCode};
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

fn required_scope(method: &Method, path: &str, reads_need_key: bool) -> Option<Scope> {
    if !path.starts_with("/api/") {
        return None;
    }
    if path == "/api/v1/import" || path == "/api/v1/export" {
        return Some(Scope::Admin);
    }
    let reading = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if reading {
        return reads_need_key.then_some(Scope::Read);
    }
    let learner_facing = path.starts_with("/api/v1/quiz") || path.starts_with("/api/v1/learners/");
    Some(if learner_facing {
        Scope::Read
    } else {
        Scope::Write
    })
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

pub async fn require_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(needed) = required_scope(req.method(), req.uri().path(), state.require_key_for_reads)
    else {
        return next.run(req).await;
    };
    let Some(key) = bearer(&req) else {
        return ApiError::new(
            ErrorCode::Unauthorized,
            "send an API key as `Authorization: Bearer <key>`",
        )
        .into_response();
    };
    match state.service.authenticate(key).await {
        Ok(Some(scope)) if scope >= needed => next.run(req).await,
        Ok(Some(scope)) => ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "this key has scope `{}`; the request needs `{}`",
                scope.as_str(),
                needed.as_str()
            ),
        )
        .into_response(),
        Ok(None) => ApiError::new(ErrorCode::Unauthorized, "the API key is unknown or revoked")
            .into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_follow_the_method_and_the_resource() {
        let w = Some(Scope::Write);
        assert_eq!(required_scope(&Method::POST, "/api/v1/questions", false), w);
        assert_eq!(
            required_scope(&Method::PATCH, "/api/v1/answers/1", false),
            w
        );
        assert_eq!(
            required_scope(&Method::DELETE, "/api/v1/questions/1", false),
            w
        );
        assert_eq!(
            required_scope(&Method::POST, "/api/v1/quiz/answers", false),
            Some(Scope::Read)
        );
        assert_eq!(
            required_scope(&Method::POST, "/api/v1/learners/a/reviews", false),
            Some(Scope::Read)
        );
        assert_eq!(
            required_scope(&Method::GET, "/api/v1/questions", false),
            None
        );
        assert_eq!(
            required_scope(&Method::GET, "/api/v1/questions", true),
            Some(Scope::Read)
        );
        assert_eq!(
            required_scope(&Method::GET, "/api/v1/export", false),
            Some(Scope::Admin)
        );
        assert_eq!(
            required_scope(&Method::POST, "/api/v1/import", false),
            Some(Scope::Admin)
        );
        assert_eq!(required_scope(&Method::GET, "/healthz", true), None);
        assert_eq!(required_scope(&Method::GET, "/openapi.json", true), None);
    }
}
