//! Who may call a route. Every API route is registered with an [`Access`] (in `http/mod.rs`),
//! and that one declaration becomes both the route's check ([`guard`]) and its OpenAPI
//! `security` with the 401/403 responses (`doc::document_route`).
//!
//! Keys are bearer tokens; scopes nest (`admin` ⊃ `write` ⊃ `read`). Health, readiness and
//! the API document are registered without an access level and never need a key.

use super::AppState;
use super::error::{ApiError, ErrorCode};
use crate::domain::Scope;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, unless the server requires a key for reads (`--require-key-for-reads`).
    Public,
    /// A key with at least this scope.
    Key(Scope),
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Lets the request through when the presented key grants what `access` needs; 401 or 403
/// otherwise. The app state travels in the request's extensions (the router puts it there),
/// because a route's own layers are built before the state exists.
pub async fn guard(access: Access, req: Request, next: Next) -> Response {
    let Some(state) = req.extensions().get::<AppState>().cloned() else {
        return ApiError::internal(anyhow::anyhow!("the app state is not in the request"))
            .into_response();
    };
    let needed = match access {
        Access::Public if !state.require_key_for_reads => return next.run(req).await,
        Access::Public => Scope::Read,
        Access::Key(scope) => scope,
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
        Err(e) => ApiError::from(e).into_response(),
    }
}
