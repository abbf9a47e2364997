//! Who may call a route and what it costs them. Every API route is registered with an
//! [`Access`] and a [`Cost`] (in `http/mod.rs`); that one declaration becomes the route's check
//! ([`guard`]: credential, scope, quota, overload) and its OpenAPI security and error
//! responses (`doc::document_route`).
//!
//! Credentials are bearer tokens: API keys (scopes `read`, `write`, `learners`, `admin`) and
//! learner tokens (one learner's reviews, plus reads). Health, readiness, metrics and the API
//! document are registered without an access level and never need a key.

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::quota::{Charge, Subject, anonymous_subject, client_ip};
use crate::domain::{LearnerId, Scope};
use crate::service::Principal;
use axum::extract::{ConnectInfo, RawPathParams, Request};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, unless the server requires a key for reads (`--require-key-for-reads`).
    Public,
    /// A key granting this scope (learner tokens grant `read`).
    Key(Scope),
    /// The learner named in the path: a key with `learners` scope, or that learner's token.
    Learner,
}

/// What a request to a route costs its caller's quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// Cheap work: this many quota units.
    Light(u32),
    /// Expensive work: this many units, and it runs under the server's bound on concurrent
    /// expensive work (503 `overloaded` when that is full).
    Heavy(u32),
    /// A quiz draw: light as flashcards, heavy as multiple choice (`mode=choice`).
    Draw,
}

/// Units a draw costs in either mode, and a failed authentication costs the client address.
pub const DRAW_UNITS: u32 = 2;
pub const CHOICE_UNITS: u32 = 10;
pub const FAILED_AUTH_UNITS: u32 = 50;

impl Cost {
    /// Units charged, and whether the work is expensive, for this request.
    fn of(self, req: &Request) -> (u32, bool) {
        match self {
            Cost::Light(u) => (u, false),
            Cost::Heavy(u) => (u, true),
            Cost::Draw => {
                // Decoded as the handler decodes it: `mode=%63hoice` is multiple choice too.
                let pairs: Vec<(String, String)> =
                    serde_html_form::from_str(req.uri().query().unwrap_or("")).unwrap_or_default();
                let choice = pairs.iter().any(|(k, v)| k == "mode" && v == "choice");
                if choice {
                    (CHOICE_UNITS, true)
                } else {
                    (DRAW_UNITS, false)
                }
            }
        }
    }
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn unauthorized(detail: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, detail)
}

/// 429 `rate_limited` with `Retry-After` and the quota headers.
pub(super) fn rate_limited(charge: &Charge) -> Response {
    super::metrics::rejected("rate_limited");
    let wait = charge.retry_after.unwrap_or(1);
    let mut response = ApiError::new(
        ErrorCode::RateLimited,
        format!("over quota; retry in {wait} s"),
    )
    .retry_after(wait)
    .into_response();
    charge.write_headers(response.headers_mut());
    response
}

async fn path_learner(req: &mut Request) -> Result<LearnerId, ApiError> {
    use axum::RequestPartsExt;
    let (mut parts, body) = std::mem::take(req).into_parts();
    let params = parts.extract::<RawPathParams>().await;
    *req = Request::from_parts(parts, body);
    let raw = params
        .ok()
        .and_then(|p| {
            p.iter()
                .find(|(k, _)| *k == "learner")
                .map(|(_, v)| v.to_string())
        })
        .unwrap_or_default();
    LearnerId::parse(&raw).map_err(|e| ApiError::new(ErrorCode::InvalidLearner, e))
}

/// Marks a response that a route guard produced or let through, so the router's catch-all quota
/// layer leaves it alone.
#[derive(Debug, Clone, Copy)]
pub struct Guarded;

/// Lets the request through when its credential grants what `access` needs and its caller
/// has quota left for `cost`; otherwise 401, 403, 429 or 503. The app state travels in the
/// request's extensions (the router puts it there), because a route's own layers are built
/// before the state exists.
pub async fn guard(access: Access, cost: Cost, req: Request, next: Next) -> Response {
    let mut response = check(access, cost, req, next).await;
    response.extensions_mut().insert(Guarded);
    response
}

/// [`guard`] for a route under the request timeout: a body declared larger than
/// [`super::BODY_LIMIT`] is refused at once (waiting for bytes that will be refused anyway would
/// let a client hold the connection), and everything after, the guard included, is cancelled
/// with 503 `request_timeout` when it takes longer than `timeout`.
pub async fn guard_bounded(
    access: Access,
    cost: Cost,
    timeout: std::time::Duration,
    req: Request,
    next: Next,
) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > super::BODY_LIMIT as u64) {
        return ApiError::new(ErrorCode::PayloadTooLarge, "the body must be at most 1 MiB")
            .into_response();
    }
    match tokio::time::timeout(timeout, guard(access, cost, req, next)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(ErrorCode::RequestTimeout, ErrorCode::RequestTimeout.title())
            .into_response(),
    }
}

/// A refusal made before the caller's own quota applies: charged to the client address
/// (`units`; 0 only reads the bucket), so it carries the quota headers too, and becomes a 429
/// when that address is over quota.
fn refuse(state: &AppState, ip: IpAddr, units: u32, err: ApiError) -> Response {
    let quotas = &state.quotas;
    if !quotas.enabled {
        return err.into_response();
    }
    let charge = quotas.charge(anonymous_subject(ip), quotas.anonymous, units);
    if charge.retry_after.is_some() {
        return rate_limited(&charge);
    }
    let mut response = err.into_response();
    charge.write_headers(response.headers_mut());
    response
}

async fn check(access: Access, cost: Cost, mut req: Request, next: Next) -> Response {
    let Some(state) = req.extensions().get::<AppState>().cloned() else {
        return ApiError::internal(anyhow::anyhow!("the app state is not in the request"))
            .into_response();
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let ip = client_ip(peer, req.headers(), &state.trusted_proxies);
    // Expensive work waits for nobody: when every slot is busy the client hears so at once,
    // before anything else is spent on it (not even a key lookup), and cheap requests keep the
    // runtime to themselves.
    let (units, expensive) = cost.of(&req);
    let permit = if expensive {
        match state.expensive.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                super::metrics::rejected("overloaded");
                let busy = ApiError::new(
                    ErrorCode::Overloaded,
                    "the server is busy with expensive requests; retry in a moment",
                )
                .retry_after(1);
                return refuse(&state, ip, 0, busy);
            }
        }
    } else {
        None
    };
    let quotas = &state.quotas;
    // A request kb makes in-process for a caller it has already authenticated (an MCP tool's
    // REST request) carries that caller: its key is not looked up a second time. Extensions
    // are set only by kb's own code, never by a client.
    let vouched = req.extensions().get::<Principal>().cloned();
    let principal: Option<Principal> = match bearer(&req) {
        _ if vouched.is_some() => vouched,
        None => None,
        Some(credential) => match state.service.authenticate(credential).await {
            Ok(Some(p)) => Some(p),
            Ok(None) => {
                // Guessing keys is expensive for the guesser's address.
                let bad = unauthorized("the API key or token is unknown, revoked or expired");
                return refuse(&state, ip, FAILED_AUTH_UNITS, bad);
            }
            Err(e) => return ApiError::from(e).into_response(),
        },
    };
    let needs_key = || unauthorized("send an API key as `Authorization: Bearer <key>`");
    let refusal = match access {
        Access::Public if !state.require_key_for_reads => None,
        Access::Public => principal.is_none().then(needs_key),
        Access::Key(needed) => match &principal {
            None => Some(needs_key()),
            Some(p) if !p.scope.grants(needed) => Some(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "this credential has scope `{}`; the request needs `{}`",
                    p.scope.as_str(),
                    needed.as_str()
                ),
            )),
            Some(_) => None,
        },
        Access::Learner => match &principal {
            None => Some(needs_key()),
            Some(p) => match path_learner(&mut req).await {
                Err(e) => Some(e),
                Ok(learner) if !p.acts_for(&learner) => Some(ApiError::new(
                    ErrorCode::Forbidden,
                    "only a key with `learners` scope or this learner's own token may see or \
                     change a learner's reviews",
                )),
                Ok(_) => None,
            },
        },
    };
    if let Some(err) = refusal {
        return refuse(&state, ip, 1, err);
    }
    let charge = quotas.enabled.then(|| {
        let (subject, rate) = match &principal {
            Some(p) => (
                Subject::Caller(p.id.clone()),
                p.rate.unwrap_or(quotas.key_default),
            ),
            None => (anonymous_subject(ip), quotas.anonymous),
        };
        quotas.charge(subject, rate, units)
    });
    if let Some(charge) = &charge
        && charge.retry_after.is_some()
    {
        return rate_limited(charge);
    }
    let reading = matches!(*req.method(), Method::GET | Method::HEAD);
    if let Some(p) = principal {
        // Handlers that act on the caller's behalf (issuing learner tokens) read it here.
        req.extensions_mut().insert(p);
    }
    let mut response = next.run(req).await;
    drop(permit);
    if let Some(charge) = &charge {
        charge.write_headers(response.headers_mut());
    }
    // What a client (or a cache between) may keep: a learner's data nowhere, everything else
    // only while its ETag still matches.
    if reading && !response.headers().contains_key(header::CACHE_CONTROL) {
        let policy = if access == Access::Learner {
            "private, no-store"
        } else {
            "no-cache"
        };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    }
    response
}
