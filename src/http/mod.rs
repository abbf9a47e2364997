//! The HTTP surface: route registration (which is also the OpenAPI document), middleware, and
//! the fallbacks that keep every error in problem+json.

pub mod access;
pub mod answers;
pub mod bulk;
pub mod categories;
pub mod changes;
mod doc;
pub mod edge;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod keys;
pub mod learner_data;
pub mod learners;
pub mod live;
pub mod mcp;
pub mod metrics;
pub mod ops;
pub mod questions;
pub mod quiz;
pub mod quota;
pub mod search;
pub mod serve;
pub mod shared;
pub mod synonyms;
pub mod web;
pub mod webhooks;

use crate::config::{Config, Origins};
use crate::domain::Scope;
use crate::service::Service;
use access::{Access, Cost};
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, header};
use axum::{Extension, Router};
use error::{ApiError, ErrorCode};
use quota::Quotas;
use serde::{Deserialize, Deserializer};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

/// Request bodies above this are refused with 413.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The Content-Security-Policy of `/docs`: Swagger UI's own files only (it sets inline styles),
/// nothing inline to run, never in a frame.
const DOCS_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// What every handler and route guard can reach. One `Arc`: axum clones the state into
/// every request, and cloning what it holds would touch a dozen shared counters each time.
#[derive(Clone, Debug)]
pub struct AppState(Arc<State>);

impl std::ops::Deref for AppState {
    type Target = State;
    fn deref(&self) -> &State {
        &self.0
    }
}

/// The contents of [`AppState`].
#[derive(Debug)]
pub struct State {
    pub service: Service,
    /// Reads need a key too (`--require-key-for-reads`).
    pub require_key_for_reads: bool,
    pub quotas: Arc<Quotas>,
    pub trusted_proxies: Arc<Vec<crate::domain::Net>>,
    /// Slots for expensive requests; none free means 503 `overloaded`.
    pub expensive: Arc<Semaphore>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    pub open_connections: serve::OpenConnections,
    /// Open change streams and waiting polls, and the signal that ends them at shutdown.
    pub live: Arc<live::Live>,
}

impl AppState {
    pub fn new(service: Service, config: &Config) -> Self {
        Self(Arc::new(State {
            service,
            require_key_for_reads: config.server.require_key_for_reads,
            quotas: Arc::new(Quotas::new(
                config.limits.quotas,
                config.limits.anonymous_rate,
                config.limits.key_rate,
            )),
            trusted_proxies: Arc::new(config.server.trusted_proxies.clone()),
            expensive: Arc::new(Semaphore::new(config.search.max_expensive)),
            metrics: metrics::recorder(),
            open_connections: serve::OpenConnections::default(),
            live: Arc::new(live::Live::new(
                config.sync.live_per_credential,
                config.sync.live_per_address,
            )),
        }))
    }
}

/// How much a route may take in: time and body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deadline {
    /// An ordinary request: cancelled with 503 `request_timeout` after the configured time, and
    /// a declared body over [`BODY_LIMIT`] is 413 before any of it is read.
    Bounded,
    /// A bulk transfer (import): runs as long as its body streams, with limits of its own.
    Unbounded,
}

/// Registers one operation with who may call it and whether it runs under the request
/// timeout. This one call makes the route's check, its timeout, its `Idempotency-Key` handling
/// (every POST) and its OpenAPI security, parameters and error responses, so they cannot
/// disagree.
fn op(
    (schemas, mut paths, mut method_router): UtoipaMethodRouter<AppState>,
    access: Access,
    cost: Cost,
    deadline: Deadline,
    timeout: Duration,
) -> UtoipaMethodRouter<AppState> {
    doc::document_route(&mut paths, access, cost);
    // `routes!` here always names one handler, so a path with a POST is a POST route.
    if paths.paths.values().any(|item| item.post.is_some()) {
        doc::document_idempotency(&mut paths);
        let kind = match deadline {
            Deadline::Bounded => idempotency::BodyKind::Buffered,
            Deadline::Unbounded => idempotency::BodyKind::Streamed,
        };
        // Inside the guard: the caller is known (keys are kept per credential), and a
        // refused request claims nothing.
        method_router = method_router.route_layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                idempotency::layer(kind, timeout, req, next)
            },
        ));
    }
    // One layer: the declared size, the timeout and the guard, so a request pays one hop.
    let method_router = match deadline {
        Deadline::Bounded => method_router.route_layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                access::guard_bounded(access, cost, timeout, req, next)
            },
        )),
        Deadline::Unbounded => method_router.route_layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                access::guard(access, cost, req, next)
            },
        )),
    };
    (schemas, paths, method_router)
}

/// Every route, registered once for both the router and the OpenAPI document, each with who
/// may call it and what it costs. `timeout` is the request timeout of bounded routes.
fn api_routes(timeout: Duration) -> OpenApiRouter<AppState> {
    use Access::{Key, Learner, Public};
    use Cost::{Draw, Heavy, Light};
    use Deadline::{Bounded, Unbounded};
    let write = Key(Scope::Write);
    let learners = Key(Scope::Learners);
    let admin = Key(Scope::Admin);
    let r = |routes, access, cost| op(routes, access, cost, Bounded, timeout);
    OpenApiRouter::with_openapi(doc::ApiDoc::openapi())
        .routes(r(routes!(questions::list_questions), Public, Light(2)))
        .routes(r(routes!(questions::create_question), write, Light(2)))
        .routes(r(routes!(questions::get_question), Public, Light(1)))
        .routes(r(routes!(questions::patch_question), write, Light(2)))
        .routes(r(routes!(questions::delete_question), write, Light(2)))
        .routes(r(routes!(answers::list_answers), Public, Light(1)))
        .routes(r(routes!(answers::add_answer), write, Light(2)))
        .routes(r(routes!(answers::get_answer), Public, Light(1)))
        .routes(r(routes!(answers::patch_answer), write, Light(2)))
        .routes(r(routes!(answers::delete_answer), write, Light(2)))
        .routes(r(routes!(categories::list_categories), Public, Light(1)))
        .routes(r(routes!(categories::create_category), write, Light(2)))
        .routes(r(routes!(categories::get_category), Public, Light(1)))
        .routes(r(routes!(categories::list_tags), Public, Light(1)))
        .routes(r(routes!(search::search_questions), Public, Heavy(5)))
        .routes(r(routes!(search::suggest), Public, Heavy(2)))
        .routes(r(routes!(search::search_status), Public, Light(1)))
        .routes(r(routes!(search::similar_questions), Public, Heavy(5)))
        .routes(r(routes!(quiz::draw_quiz), Public, Draw))
        // Studying needs no account: a session or a graded answer is open to anyone (and
        // charged to their quota); what a learner keeps across devices is under Learner.
        .routes(r(routes!(quiz::create_session), Public, Light(2)))
        .routes(r(routes!(quiz::end_session), Public, Light(1)))
        .routes(r(routes!(quiz::grade), Public, Light(2)))
        .routes(r(routes!(learners::record_review), Learner, Light(2)))
        // Up to 1,000 reviews in one transaction: a tenth of what they would cost one by
        // one, and it holds the database's writer for a good part of a second at most.
        .routes(r(
            routes!(learners::record_review_batch),
            Learner,
            Heavy(20),
        ))
        .routes(r(routes!(learners::due), Learner, Light(2)))
        .routes(r(routes!(learner_data::stats), Learner, Light(5)))
        .routes(r(routes!(learner_data::history), Learner, Light(5)))
        .routes(r(routes!(learner_data::erase), Learner, Light(5)))
        .routes(r(routes!(learner_data::get_settings), Learner, Light(1)))
        .routes(r(routes!(learner_data::put_settings), Learner, Light(2)))
        .routes(r(routes!(learner_data::fit), Learner, Light(5)))
        .routes(r(routes!(learners::create_token), learners, Light(2)))
        .routes(op(
            routes!(bulk::import),
            admin,
            Heavy(100),
            Unbounded,
            timeout,
        ))
        .routes(r(routes!(bulk::export), admin, Heavy(50)))
        // Unbounded: a poll may wait longer than the request timeout, and a stream stays open.
        .routes(op(
            routes!(changes::changes),
            Public,
            Light(5),
            Unbounded,
            timeout,
        ))
        .routes(op(
            routes!(changes::stream),
            Public,
            Light(5),
            Unbounded,
            timeout,
        ))
        .routes(r(routes!(webhooks::list_webhooks), admin, Light(1)))
        .routes(r(routes!(webhooks::create_webhook), admin, Light(2)))
        .routes(r(routes!(webhooks::get_webhook), admin, Light(1)))
        .routes(r(routes!(webhooks::patch_webhook), admin, Light(2)))
        .routes(r(routes!(webhooks::delete_webhook), admin, Light(2)))
        .routes(r(routes!(webhooks::rotate_secret), admin, Light(2)))
        // A ping or a retry waits for the receiver (KB_WEBHOOKS_TIMEOUT at most).
        .routes(r(routes!(webhooks::ping), admin, Light(5)))
        .routes(r(routes!(webhooks::list_deliveries), admin, Light(1)))
        .routes(r(routes!(webhooks::get_delivery), admin, Light(1)))
        .routes(r(routes!(webhooks::retry_delivery), admin, Light(5)))
        .routes(r(routes!(keys::list_keys), admin, Light(1)))
        .routes(r(routes!(keys::create_key), admin, Light(2)))
        .routes(r(routes!(keys::get_key), admin, Light(1)))
        .routes(r(routes!(keys::revoke_key), admin, Light(2)))
        .routes(r(routes!(synonyms::get_synonyms), admin, Light(1)))
        .routes(r(routes!(synonyms::put_synonyms), admin, Light(2)))
        .routes(r(routes!(metrics::metrics), admin, Light(1)))
        // Probes answer without a key, ever: load balancers do not hold one.
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
}

/// The OpenAPI document, exactly as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes_and_document(Duration::from_secs(1)).1
}

/// The routes and their document; document-wide rules are applied once every path is
/// registered.
fn routes_and_document(timeout: Duration) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use utoipa::Modify;
    let (router, mut doc) = api_routes(timeout).split_for_parts();
    doc::CreateLinks.modify(&mut doc);
    doc::apply_text_rules(&mut doc);
    (router, doc)
}

/// The complete application: the routes with their layers, behind the edge every request
/// passes ([`edge`]).
pub fn edge(state: AppState, config: &Config) -> edge::Edge {
    let (api, openapi) = routes_and_document(config.limits.request_timeout);
    // The documentation page runs Swagger UI's scripts from this server only and may not be
    // framed by another site.
    let docs = Router::from(SwaggerUi::new("/docs").url("/openapi.json", openapi)).layer(
        SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOCS_CSP),
        ),
    );
    // The study page is a client like any other: static files, no endpoint of its own.
    let page = Router::new()
        .route("/", axum::routing::get(web::index))
        .route("/static/{name}", axum::routing::get(web::asset));
    // The state (for route guards, whose layers exist before it does) and the body limit
    // are put on each request by the edge, once, rather than by a layer around every route.
    let rest = api
        .merge(docs)
        .merge(page)
        .fallback(not_found)
        .layer(metrics::TrackLayer)
        .with_state(state.clone());
    // `/mcp`: every message is a request like any other (a key if reads need one, a unit of
    // quota), and each tool a REST request on the caller's behalf (see `mcp`), made here
    // rather than through the edge, so it carries what the edge would give it.
    let for_tools = rest
        .clone()
        .layer(Extension(state.clone()))
        .layer(DefaultBodyLimit::max(BODY_LIMIT));
    let mcp = Router::new()
        .route_service("/mcp", mcp::service(for_tools))
        .route_layer(axum::middleware::from_fn(
            |req: axum::extract::Request, next: axum::middleware::Next| {
                access::guard(Access::Public, Cost::Light(1), req, next)
            },
        ))
        .layer(metrics::TrackLayer);
    edge::Edge::new(mcp.merge(rest), cors(&config.server.cors_origins), state)
}

/// The complete application as a router, for calling it in-process.
pub fn router(state: AppState, config: &Config) -> Router {
    edge(state, config).into_router()
}

/// `/metrics` alone, without a key, for `--metrics-bind` (an address only a scraper reaches).
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route(
            "/metrics",
            axum::routing::get(
                |axum::extract::State(state): axum::extract::State<AppState>| async move {
                    metrics::metrics(axum::extract::State(state)).await
                },
            ),
        )
        .with_state(state)
}

fn cors(origins: &Origins) -> CorsLayer {
    let base = CorsLayer::new()
        .allow_methods(Any)
        .allow_headers(Any)
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            HeaderName::from_static("x-request-id"),
            idempotency::IDEMPOTENT_REPLAYED.clone(),
        ]);
    match origins {
        Origins::Any => base.allow_origin(Any),
        Origins::Only(list) => {
            // Config validated every origin as a header value.
            let list: Vec<HeaderValue> = list.iter().filter_map(|o| o.parse().ok()).collect();
            base.allow_origin(AllowOrigin::list(list))
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no route matches this path; see /docs")
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`), as JSON
/// merge patch requires.
pub(crate) fn double_option<'de, T, D>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// A whole number, written as JSON schema counts one: `8448` or `8448.0` (an integer in JSON
/// Schema is any number without a fraction, and clients that compute a value send floats).
pub(crate) fn whole_number<'de, D>(de: D) -> Result<Option<i64>, D::Error>
where
    D: Deserializer<'de>,
{
    use serde::de::Error;
    let Some(n) = Option::<serde_json::Number>::deserialize(de)? else {
        return Ok(None);
    };
    n.as_i64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0)
                .map(|f| f as i64)
        })
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("must be a whole number, not {n}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_rule_named_in_the_schemas_is_filled_in_from_the_domain() {
        let doc = serde_json::to_string(&openapi()).unwrap();
        let unresolved = format!("\"format\":\"{}", doc::RULE_PREFIX);
        assert!(
            !doc.contains(&unresolved),
            "a `kb:` format was left unresolved"
        );
        assert!(doc.contains(&serde_json::to_string(crate::domain::patterns::SLUG).unwrap()));
    }

    #[test]
    fn every_operation_that_changes_something_declares_its_key() {
        // Studying is open to anyone by design (quota-bound); nothing else that writes is.
        let open_by_design = [
            "/api/v1/quiz/sessions",
            "/api/v1/quiz/sessions/{token}",
            "/api/v1/quiz/answers",
        ];
        let doc = openapi();
        for (path, item) in doc.paths.paths {
            if open_by_design.contains(&path.as_str()) {
                continue;
            }
            let mut item = item;
            let writes = [
                ("post", item.post.take()),
                ("put", item.put.take()),
                ("patch", item.patch.take()),
                ("delete", item.delete.take()),
            ];
            for (method, op) in writes {
                let Some(op) = op else { continue };
                assert!(
                    op.security.as_ref().is_some_and(|s| !s.is_empty()),
                    "{method} {path} is open to anyone"
                );
                for status in ["401", "403"] {
                    assert!(
                        op.responses.responses.contains_key(status),
                        "{method} {path} does not document {status}"
                    );
                }
            }
        }
    }
}
