//! Categories and tags.

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorCode, Problem};
use super::extract::{Json, PathText, Query};
use super::idempotency::json_reply;
use super::shared::{json_etagged, parse_limit};
use crate::domain::{Category, CategoryName, FieldErrors, Slug, TagCount};
use crate::idempotency::{self, Reply};
use crate::service::Written;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A category and how many questions it holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryOut {
    #[schema(example = "distributed")]
    pub slug: String,
    #[schema(example = "分布式")]
    pub name: String,
    #[schema(example = 6)]
    pub question_count: i64,
}

impl From<Category> for CategoryOut {
    fn from(c: Category) -> Self {
        Self {
            slug: c.slug,
            name: c.name,
            question_count: c.question_count,
        }
    }
}

/// Body of `POST /api/v1/categories`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"slug": "database", "name": "数据库"}))]
pub struct CreateCategory {
    /// Lowercase letters and digits, words joined by `-`; 1–50 characters.
    #[schema(value_type = String, required = true, format = "kb:slug")]
    pub slug: Option<String>,
    /// Display name, 1–100 characters after trimming, on one line.
    #[schema(value_type = String, required = true, format = "kb:category-name")]
    pub name: Option<String>,
}

/// A tag and how many questions carry it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TagOut {
    #[schema(example = "gc")]
    pub slug: String,
    #[schema(example = 7)]
    pub question_count: i64,
}

impl From<TagCount> for TagOut {
    fn from(t: TagCount) -> Self {
        Self {
            slug: t.slug,
            question_count: t.question_count,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TagParams {
    /// How many tags, 1–1000.
    #[param(value_type = u32, required = false, minimum = 1, maximum = 1000, default = 100)]
    pub limit: Option<String>,
}

/// List categories
///
/// Every category with its number of questions, by slug.
#[utoipa::path(
    get, path = "/api/v1/categories", tag = "categories",
    responses(
        (status = 200, description = "All categories", body = Vec<CategoryOut>, headers(("ETag" = String))),
        (status = 304, description = "Not modified"),
    )
)]
pub async fn list_categories(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let cats = state.service.list_categories().await?;
    let out: Vec<CategoryOut> = cats.into_iter().map(CategoryOut::from).collect();
    Ok(json_etagged(&headers, &out))
}

/// Create a category
#[utoipa::path(
    post, path = "/api/v1/categories", tag = "categories",
    request_body(content = CreateCategory, content_type = "application/json"),
    responses(
        (status = 201, description = "Created", body = CategoryOut, headers(("Location" = String))),
        (status = 409, description = "The slug is taken", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_category(
    State(state): State<AppState>,
    Json(body): Json<CreateCategory>,
) -> ApiResult<Response> {
    let mut e = FieldErrors::new();
    let slug = e.required("slug", body.slug.as_deref(), Slug::parse);
    let name = e.required("name", body.name.as_deref(), CategoryName::parse);
    e.finish()?;
    let (Some(slug), Some(name)) = (slug, name) else {
        return Err(ApiError::internal(anyhow::anyhow!(
            "parse without error left a gap"
        )));
    };
    idempotency::reply_with(|w: &Written<Category>| category_created(w.value.clone()));
    let c = state.service.create_category(&slug, &name).await?;
    Ok(category_created(c).into_response())
}

/// The answer of a create, also as its idempotency record keeps it.
fn category_created(c: Category) -> Reply {
    let location = format!("/api/v1/categories/{}", c.slug);
    json_reply(
        StatusCode::CREATED,
        &CategoryOut::from(c),
        &[(header::LOCATION, location.parse().expect("a slug is ascii"))],
    )
}

/// Get a category
#[utoipa::path(
    get, path = "/api/v1/categories/{slug}", tag = "categories",
    params(("slug" = String, Path, description = "Category slug")),
    responses(
        (status = 200, description = "The category", body = CategoryOut, headers(("ETag" = String))),
        (status = 304, description = "Not modified"),
        (status = 404, description = "No such category", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_category(
    State(state): State<AppState>,
    headers: HeaderMap,
    PathText(slug): PathText,
) -> ApiResult<Response> {
    let slug = Slug::parse(&slug).map_err(|_| {
        ApiError::new(
            ErrorCode::CategoryNotFound,
            format!("no category `{}`", slug.escape_debug()),
        )
    })?;
    let c: CategoryOut = state.service.get_category(&slug).await?.into();
    Ok(json_etagged(&headers, &c))
}

/// List tags
///
/// Tags in use with their number of questions, most used first.
#[utoipa::path(
    get, path = "/api/v1/tags", tag = "categories",
    params(TagParams),
    responses(
        (status = 200, description = "Tags in use", body = Vec<TagOut>, headers(("ETag" = String))),
        (status = 304, description = "Not modified"),
        (status = 422, description = "Invalid limit", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_tags(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<TagParams>,
) -> ApiResult<Response> {
    let mut e = FieldErrors::new();
    let limit = e.check("limit", parse_limit(params.limit.as_deref(), 100, 1000));
    e.finish()?;
    let tags = state.service.list_tags(limit.unwrap_or(100)).await?;
    let out: Vec<TagOut> = tags.into_iter().map(TagOut::from).collect();
    Ok(json_etagged(&headers, &out))
}
