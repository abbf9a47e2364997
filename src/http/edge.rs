//! The edge: what every request pays before and after its route, written as one service
//! instead of a stack of layers that each looked at the request again.
//!
//! In one pass it gives the request its id (the client's `x-request-id`, or a new one made
//! from a counter, not a system call), opens the access-log span (only when that log is on),
//! and on the way out writes the id back, `nosniff`, problem+json for the router's bare
//! errors, and the quota charge of an API request no route guard saw. CORS and compression are
//! tower-http's, but only for requests that can use them: a request without `Origin` is not a
//! browser's cross-origin request, one without `Accept-Encoding` takes identity anyway, and
//! both skip those layers (their `Vary` is still sent, so a shared cache keeps representations
//! apart).
//!
//! Counting requests per route stays beside the routes ([`super::metrics::TrackLayer`]): only
//! there is the matched route known.

use super::AppState;
use super::error::{ApiError, ErrorCode, PROBLEM_JSON};
use super::quota;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use futures_util::future::BoxFuture;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use tower::{Layer, ServiceExt};
use tower_http::compression::Compression;
use tower_http::cors::{Cors, CorsLayer};
use tracing::Instrument;

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What a response to a request that skipped CORS, compression or both varies on anyway.
static VARY_CORS: HeaderValue = HeaderValue::from_static(
    "origin, access-control-request-method, access-control-request-headers",
);
static VARY_ENCODING: HeaderValue = HeaderValue::from_static("accept-encoding");
static VARY_BOTH: HeaderValue = HeaderValue::from_static(
    "origin, access-control-request-method, access-control-request-headers, accept-encoding",
);
static NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");

/// The whole application as one service: cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Edge(Arc<Inner>);

struct Inner {
    plain: Router,
    cors: Cors<Router>,
    gzip: Compression<Router>,
    cors_gzip: Compression<Cors<Router>>,
    state: AppState,
}

impl Edge {
    pub fn new(routes: Router, cors: CorsLayer, state: AppState) -> Self {
        let with_cors = cors.layer(routes.clone());
        Self(Arc::new(Inner {
            gzip: Compression::new(routes.clone()),
            cors_gzip: Compression::new(with_cors.clone()),
            cors: with_cors,
            plain: routes,
            state,
        }))
    }

    /// Serves one request. `peer` is the connection's address when the request came over one
    /// (tests calling the router in-process have none).
    pub fn handle(
        &self,
        mut req: Request<Body>,
        peer: Option<SocketAddr>,
    ) -> BoxFuture<'static, Result<Response<Body>, Infallible>> {
        let extensions = req.extensions_mut();
        if let Some(peer) = peer {
            extensions.insert(ConnectInfo(peer));
        }
        extensions.insert(self.0.state.clone());
        axum::extract::DefaultBodyLimit::max(super::BODY_LIMIT).apply(&mut req);
        let headers = req.headers();
        let id = match headers.get(&REQUEST_ID) {
            Some(id) => id.clone(),
            None => {
                let id = next_request_id();
                req.headers_mut().insert(REQUEST_ID.clone(), id.clone());
                id
            }
        };
        let headers = req.headers();
        let cross_origin = headers.contains_key(header::ORIGIN);
        let negotiates = headers.contains_key(header::ACCEPT_ENCODING);
        let state = &self.0.state;
        // Worked out only when it may be charged below: quotas on, an API path.
        let unrouted_ip =
            (state.quotas.enabled && req.uri().path().starts_with("/api/")).then(|| {
                let peer = req
                    .extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0);
                quota::client_ip(peer, req.headers(), &state.trusted_proxies)
            });
        // Fields are formatted only when the access log is on.
        let span = tracing::info_span!(
            "request",
            method = %req.method(),
            uri = %req.uri(),
            request_id = %String::from_utf8_lossy(id.as_bytes()),
        );
        let logged = !span.is_disabled();
        let started = logged.then(std::time::Instant::now);
        let inner = self.0.clone();
        let work = async move {
            let mut response = match (cross_origin, negotiates) {
                (false, false) => inner.plain.clone().oneshot(req).await,
                (true, false) => inner.cors.clone().oneshot(req).await,
                (false, true) => inner
                    .gzip
                    .clone()
                    .oneshot(req)
                    .await
                    .map(|r| r.map(Body::new)),
                (true, true) => inner
                    .cors_gzip
                    .clone()
                    .oneshot(req)
                    .await
                    .map(|r| r.map(Body::new)),
            }?;
            response = problem_for_bare_errors(response);
            if let Some(ip) = unrouted_ip
                && response
                    .extensions()
                    .get::<super::access::Guarded>()
                    .is_none()
            {
                response = charge_unrouted(&inner.state, ip, response);
            }
            let headers = response.headers_mut();
            headers
                .entry(header::X_CONTENT_TYPE_OPTIONS)
                .or_insert_with(|| NOSNIFF.clone());
            headers.entry(REQUEST_ID.clone()).or_insert(id);
            match (cross_origin, negotiates) {
                (false, false) => headers.append(header::VARY, VARY_BOTH.clone()),
                (false, true) => headers.append(header::VARY, VARY_CORS.clone()),
                (true, false) => headers.append(header::VARY, VARY_ENCODING.clone()),
                (true, true) => false,
            };
            if let Some(started) = started {
                tracing::info!(
                    status = response.status().as_u16(),
                    latency_ms = started.elapsed().as_secs_f64() * 1000.0,
                    "finished processing request"
                );
            }
            Ok(response)
        };
        if logged {
            Box::pin(work.instrument(span))
        } else {
            Box::pin(work)
        }
    }

    /// The edge as an axum router, for calling the application in-process (tests, and
    /// whatever embeds kb).
    pub fn into_router(self) -> Router {
        Router::new().fallback_service(tower::service_fn(move |req: Request<Body>| {
            self.handle(req, None)
        }))
    }
}

/// One connection's service for hyper: the edge with the client's address.
#[derive(Clone)]
pub struct Connection {
    pub edge: Edge,
    pub peer: SocketAddr,
}

impl hyper::service::Service<Request<hyper::body::Incoming>> for Connection {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn call(&self, req: Request<hyper::body::Incoming>) -> Self::Future {
        self.edge.handle(req.map(Body::new), Some(self.peer))
    }
}

impl tower::Service<Request<Body>> for Edge {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        self.handle(req, None)
    }
}

/// A new request id: this process's random prefix and a counter, spelled as a UUID. Unique
/// without asking the kernel for randomness per request.
fn next_request_id() -> HeaderValue {
    static PREFIX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        let b = crate::secret::random_bytes(8);
        u64::from_le_bytes(b.try_into().unwrap_or_default())
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let raw = (u128::from(prefix) << 64) | u128::from(n);
    let mut text = [0u8; 36];
    let mut digits = raw;
    for i in (0..36).rev() {
        if matches!(i, 8 | 13 | 18 | 23) {
            text[i] = b'-';
            continue;
        }
        text[i] = b"0123456789abcdef"[(digits & 0xf) as usize];
        digits >>= 4;
    }
    HeaderValue::from_bytes(&text).expect("hex digits and dashes are a valid header value")
}

/// An API request no route guard saw (an unknown path, a wrong method) still counts against
/// the caller's address and carries the quota headers, like every other `/api/` response.
fn charge_unrouted(
    state: &AppState,
    ip: std::net::IpAddr,
    mut response: Response<Body>,
) -> Response<Body> {
    let charge = state
        .quotas
        .charge(quota::anonymous_subject(ip), state.quotas.anonymous, 1);
    if charge.retry_after.is_some() {
        return super::access::rate_limited(&charge);
    }
    charge.write_headers(response.headers_mut());
    response
}

/// Responses produced by the framework rather than a handler (405 from the router, 413 from
/// the body limit) have empty bodies; give them the same problem+json shape as everything else.
fn problem_for_bare_errors(response: Response<Body>) -> Response<Body> {
    let code = match response.status() {
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::RequestTimeout,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        _ => return response,
    };
    if response.headers().contains_key(header::CONTENT_TYPE) {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    // The router adds `Allow` after this has run, so point at it rather than copy it.
    let detail = match code {
        ErrorCode::MethodNotAllowed => {
            "this path does not accept this method; see the Allow header"
        }
        _ => code.title(),
    };
    let problem = ApiError::new(code, detail).into_response();
    let (p_parts, body) = problem.into_parts();
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.status = p_parts.status;
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uuid_shaped_and_never_repeat() {
        let a = next_request_id();
        let b = next_request_id();
        assert_ne!(a, b);
        let text = a.to_str().unwrap();
        assert_eq!(text.len(), 36);
        assert_eq!(text.matches('-').count(), 4);
        assert!(
            text.chars().all(|c| c == '-' || c.is_ascii_hexdigit()),
            "{text}"
        );
    }
}
