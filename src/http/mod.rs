//! The HTTP surface: route registration (which is also the OpenAPI document), middleware, and
//! the fallbacks that keep every error in problem+json.

pub mod answers;
pub mod auth;
pub mod bulk;
pub mod categories;
pub mod extract;
pub mod learners;
pub mod ops;
pub mod questions;
pub mod quiz;
pub mod search;

use crate::config::ServeArgs;
use crate::error::{ApiError, ErrorCode, PROBLEM_JSON};
use crate::service::Service;
use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Deserializer};
use std::time::Duration;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

/// Request bodies above this are refused with 413.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub service: Service,
    /// Reads need a key too (`--require-key-for-reads`).
    pub require_key_for_reads: bool,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "kb",
        description = "A knowledge base of interview questions and answers: CRUD, \
            Chinese-aware full-text search and quizzes. Errors are RFC 9457 problem+json \
            with a stable `code`.",
        license(name = "MIT", identifier = "MIT"),
    ),
    tags(
        (name = "questions", description = "Questions with their answers"),
        (name = "answers", description = "Answers to questions"),
        (name = "categories", description = "Categories and tags"),
        (name = "search", description = "Full-text search, suggestions and related questions"),
        (name = "quiz", description = "Random draws, no-repeat sessions and multiple choice"),
        (name = "learners", description = "Spaced repetition (FSRS) per learner"),
        (name = "admin", description = "Bulk import and export (admin keys)"),
        (name = "ops", description = "Health and readiness"),
    ),
    components(schemas(
        crate::error::Problem,
        crate::error::FieldError,
        crate::domain::import::BulkQuestion
    )),
    modifiers(&BearerScheme)
)]
struct ApiDoc;

/// OpenAPI links from each create to the operations on what it created, so clients (and
/// stateful conformance tests) can follow them.
struct CreateLinks;

impl utoipa::Modify for CreateLinks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::link::LinkBuilder;
        let links: [(&str, &[(&str, &str)]); 2] = [
            (
                "/api/v1/questions",
                &[
                    ("GetQuestion", "get_question"),
                    ("UpdateQuestion", "patch_question"),
                    ("DeleteQuestion", "delete_question"),
                    ("ListAnswers", "list_answers"),
                    ("AddAnswer", "add_answer"),
                    ("SimilarQuestions", "similar_questions"),
                ],
            ),
            (
                "/api/v1/questions/{id}/answers",
                &[
                    ("GetAnswer", "get_answer"),
                    ("UpdateAnswer", "patch_answer"),
                    ("DeleteAnswer", "delete_answer"),
                ],
            ),
        ];
        for (path, targets) in links {
            let created = openapi
                .paths
                .paths
                .get_mut(path)
                .and_then(|item| item.post.as_mut())
                .and_then(|op| op.responses.responses.get_mut("201"));
            if let Some(RefOr::T(response)) = created {
                for (name, operation_id) in targets {
                    let link = LinkBuilder::new()
                        .operation_id(*operation_id)
                        .parameter("id", "$response.body#/id")
                        .build();
                    response.links.insert((*name).to_string(), RefOr::T(link));
                }
            }
        }
    }
}

/// Declares the `bearer` security scheme that write operations require.
struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key: `kb keys create --scope write`, or the `KB_ADMIN_KEY` the server was started with.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every route, registered once for both the router and the OpenAPI document.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(
            questions::list_questions,
            questions::create_question
        ))
        .routes(routes!(
            questions::get_question,
            questions::patch_question,
            questions::delete_question
        ))
        .routes(routes!(answers::list_answers, answers::add_answer))
        .routes(routes!(
            answers::get_answer,
            answers::patch_answer,
            answers::delete_answer
        ))
        .routes(routes!(
            categories::list_categories,
            categories::create_category
        ))
        .routes(routes!(categories::get_category))
        .routes(routes!(categories::list_tags))
        .routes(routes!(search::search_questions))
        .routes(routes!(search::suggest))
        .routes(routes!(search::similar_questions))
        .routes(routes!(quiz::draw_quiz))
        .routes(routes!(quiz::create_session))
        .routes(routes!(quiz::end_session))
        .routes(routes!(quiz::grade))
        .routes(routes!(learners::record_review))
        .routes(routes!(learners::due))
        .routes(routes!(bulk::import))
        .routes(routes!(bulk::export))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
}

/// The OpenAPI document, exactly as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes_and_document().1
}

/// The routes and their document; links are added once every path is registered.
fn routes_and_document() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use utoipa::Modify;
    let (router, mut doc) = api_routes().split_for_parts();
    CreateLinks.modify(&mut doc);
    (router, doc)
}

/// The complete application router with all middleware.
pub fn router(state: AppState, config: &ServeArgs) -> Router {
    let (api, openapi) = routes_and_document();
    let request_id = HeaderName::from_static("x-request-id");
    let timeout = Duration::from_secs(config.request_timeout_secs.max(1));
    let auth = axum::middleware::from_fn_with_state(state.clone(), auth::require_key);
    api.merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .fallback(not_found)
        .layer(auth)
        .with_state(state)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(timeout, time_limit))
        .layer(cors(&config.cors_origins))
        .layer(CompressionLayer::new())
        .layer(axum::middleware::map_response(problem_for_bare_errors))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request<Body>| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), uri = %req.uri(), request_id = %id)
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<&str> = origins
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    let base = CorsLayer::new()
        .allow_methods(Any)
        .allow_headers(Any)
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            HeaderName::from_static("x-request-id"),
        ]);
    if origins.contains(&"*") {
        base.allow_origin(Any)
    } else {
        let list: Vec<HeaderValue> = origins.iter().filter_map(|o| o.parse().ok()).collect();
        base.allow_origin(AllowOrigin::list(list))
    }
}

/// Cancels a request that runs longer than the configured limit (503), except a bulk import,
/// which legitimately takes as long as its body is large.
async fn time_limit(
    axum::extract::State(limit): axum::extract::State<Duration>,
    req: Request<Body>,
    next: axum::middleware::Next,
) -> Response<Body> {
    if req.uri().path() == "/api/v1/import" {
        return next.run(req).await;
    }
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            ErrorCode::RequestTimeout,
            "the request took too long and was cancelled",
        )
        .into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no route matches this path; see /docs")
}

/// Responses produced by the framework rather than a handler (405 from the router, 503 from
/// the timeout) have empty bodies; give them the same problem+json shape as everything else.
async fn problem_for_bare_errors(response: Response<Body>) -> Response<Body> {
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
    // The router adds `Allow` after this layer has run, so point at it rather than copy it.
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

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`), as JSON
/// merge patch requires.
pub(crate) fn double_option<'de, T, D>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}
