//! `/api/v1/webhooks`: endpoints told about the change feed's events (admin), their signing
//! secrets, and the deliveries made to them.

use super::AppState;
use super::double_option;
use super::error::{ApiError, ApiResult, ErrorCode, Problem};
use super::extract::{Json, PathId, Query};
use super::idempotency::json_reply;
use super::shared::parse_limit;
use crate::domain::webhooks::{
    Delivery, DeliveryStatus, NewWebhook, Webhook, WebhookPatch, parse_description, parse_events,
};
use crate::domain::{FieldErrors, Id};
use crate::service::WithSecret;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A webhook endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookOut {
    #[schema(example = 1)]
    pub id: i64,
    /// Where deliveries are POSTed.
    #[schema(example = "https://partner.example.com/kb-events")]
    pub url: String,
    /// The event types it is sent; `["*"]`: every type, including types added later.
    #[schema(example = json!(["question.*"]))]
    pub events: Vec<String>,
    /// Only events of questions in this category (and of the category itself); `null`: all.
    #[schema(example = "golang")]
    pub category: Option<String>,
    #[schema(example = "re-index partner search")]
    pub description: String,
    /// Disabled endpoints are sent nothing; their queue waits.
    pub enabled: bool,
    /// Why kb disabled it: the receiver answered 410 Gone, or deliveries failed for the whole
    /// retry period. `null` when enabled or disabled by an admin.
    pub disabled_reason: Option<String>,
    /// Deliveries waiting in its queue.
    pub pending: i64,
    /// When the oldest of them was queued.
    pub oldest_pending_at: Option<DateTime<Utc>>,
    /// After a rotation, until when the previous secret also signs.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The signing secret (`whsec_…`): only in the answer to creation and rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: Option<String>,
}

impl WebhookOut {
    fn new(w: Webhook, secret: Option<String>) -> Self {
        Self {
            id: w.id,
            url: w.url,
            events: match w.events {
                None => vec!["*".to_string()],
                Some(list) => list.iter().map(|t| t.as_str().to_string()).collect(),
            },
            category: w.category,
            description: w.description,
            enabled: w.enabled,
            disabled_reason: w.disabled_reason,
            pending: w.pending,
            oldest_pending_at: w.oldest_pending_at,
            previous_secret_expires_at: w.old_secret_until.filter(|t| *t > Utc::now()),
            created_at: w.created_at,
            updated_at: w.updated_at,
            secret,
        }
    }
}

impl From<WithSecret> for WebhookOut {
    fn from(w: WithSecret) -> Self {
        Self::new(w.webhook, Some(w.secret))
    }
}

/// One event's delivery to one endpoint, with its latest attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryOut {
    #[schema(example = 42)]
    pub id: i64,
    pub webhook_id: i64,
    /// The `webhook-id` header: the change event's `id` (`ping_…` for a ping), the same on
    /// every attempt, so a receiver de-duplicates on it.
    #[schema(example = "evt_AQAAAAAAAAAAAAAAEg")]
    pub event_id: String,
    /// The event's type (`webhook.ping` for a ping).
    #[serde(rename = "type")]
    #[schema(example = "question.updated")]
    pub kind: String,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: i64,
    /// The status the receiver answered the latest attempt with.
    pub response_status: Option<u16>,
    /// How long the latest attempt took.
    pub latency_ms: Option<i64>,
    /// Why the latest attempt failed.
    pub error: Option<String>,
    /// The first kilobyte of the receiver's latest answer.
    pub response_excerpt: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// For a pending delivery: when it is (next) due.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<Delivery> for DeliveryOut {
    fn from(d: Delivery) -> Self {
        Self {
            id: d.id,
            webhook_id: d.webhook_id,
            event_id: d.event_id,
            kind: d.event_type,
            status: d.status,
            attempts: d.attempts,
            response_status: d.response_status,
            latency_ms: d.latency_ms,
            error: d.error,
            response_excerpt: d.response_excerpt,
            created_at: d.created_at,
            last_attempt_at: d.last_attempt_at,
            next_attempt_at: if d.status == DeliveryStatus::Pending {
                d.next_attempt_at
            } else {
                None
            },
            delivered_at: d.delivered_at,
        }
    }
}

/// A page of deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<DeliveryOut>,
    /// Pass it as `after` for the next (older) page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// An event type an endpoint asks for: a feed type, `question.*`, `category.*`, or `*`.
#[derive(ToSchema)]
#[schema(value_type = String, pattern = r"^(\*|(question|category)\.(created|updated|deleted|\*))$",
    example = "question.*")]
#[allow(dead_code)]
pub struct EventTypeName(String);

/// Body of `POST /api/v1/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://partner.example.com/kb-events",
    "events": ["question.*"], "description": "re-index partner search"}))]
pub struct CreateWebhook {
    /// `https` (plain `http` only with `KB_WEBHOOKS_ALLOW_PRIVATE`), at most 2,000
    /// characters, no user name or password; never a loopback, private, link-local, shared,
    /// multicast or cloud metadata address unless `KB_WEBHOOKS_ALLOW_PRIVATE`. A host name
    /// in another script is taken (an IRI) and kept in its ASCII form (`xn--…`).
    #[schema(value_type = String, required = true, max_length = 2000, format = "iri",
        pattern = "^https?://")]
    pub url: Option<String>,
    /// Feed event types, `question.*` / `category.*`, or `["*"]` (the default) for all.
    #[schema(value_type = Option<Vec<EventTypeName>>, required = false, min_items = 1, max_items = 8)]
    pub events: Option<Vec<String>>,
    /// Only events of questions in this category, and of the category itself.
    #[schema(value_type = Option<String>, required = false, format = "kb:slug")]
    pub category: Option<String>,
    /// Up to 500 characters; no control characters but tab and line breaks.
    #[schema(value_type = Option<String>, required = false, max_length = 500,
        pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub description: Option<String>,
    /// Default `true`.
    pub enabled: Option<bool>,
}

/// Body of `PATCH /api/v1/webhooks/{id}`: the fields to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": true}))]
pub struct PatchWebhook {
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = String, required = false, max_length = 2000, format = "iri",
        pattern = "^https?://")]
    pub url: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Vec<EventTypeName>, required = false, min_items = 1, max_items = 8)]
    pub events: Option<Option<Vec<String>>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, required = false, format = "kb:slug")]
    pub category: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = String, required = false, max_length = 500,
        pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub description: Option<Option<String>>,
    /// `true` on a disabled endpoint resumes its queue where it stopped, starting with the
    /// delivery it gave up on; `false` stops deliveries (the queue keeps what it has).
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = bool, required = false)]
    pub enabled: Option<Option<bool>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Only deliveries in this state.
    #[param(value_type = Option<DeliveryStatus>)]
    pub status: Option<String>,
    /// A `next_cursor` from the previous page.
    #[param(value_type = Option<String>, pattern = "^[1-9][0-9]{0,17}$")]
    pub after: Option<String>,
    /// Deliveries per page, 1–100.
    #[param(value_type = u32, required = false, minimum = 1, maximum = 100, default = 50)]
    pub limit: Option<String>,
}

/// The `{id}` and `{delivery}` path parameters; anything but positive integers is 400.
pub struct DeliveryPath(Id, Id);

impl<S: Send + Sync> FromRequestParts<S> for DeliveryPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path((webhook, delivery)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(ErrorCode::InvalidId, e.body_text()))?;
        let parse = |raw: &str| Id::parse(raw).map_err(|e| ApiError::new(ErrorCode::InvalidId, e));
        Ok(DeliveryPath(parse(&webhook)?, parse(&delivery)?))
    }
}

fn parse_new(body: CreateWebhook) -> Result<NewWebhook, FieldErrors> {
    let mut e = FieldErrors::new();
    let url = e.required("url", body.url.as_deref(), |u| Ok(u.to_string()));
    let events = match &body.events {
        Some(list) => e.check("events", parse_events(list)).flatten(),
        None => None,
    };
    let description = match &body.description {
        Some(d) => e.check("description", parse_description(d)),
        None => Some(String::new()),
    };
    e.finish()?;
    Ok(NewWebhook {
        url: url.unwrap_or_default(),
        events,
        category: body.category,
        description: description.unwrap_or_default(),
        enabled: body.enabled.unwrap_or(true),
    })
}

fn parse_patch(body: PatchWebhook) -> Result<WebhookPatch, FieldErrors> {
    let mut e = FieldErrors::new();
    // Only the category may be cleared; `null` anywhere else is a mistake, not "unchanged".
    let mut present = |field: &str, is_null: bool| {
        if is_null {
            e.push(field, "must not be null; leave the field out to keep it");
        }
    };
    present("url", matches!(body.url, Some(None)));
    present("events", matches!(body.events, Some(None)));
    present("description", matches!(body.description, Some(None)));
    present("enabled", matches!(body.enabled, Some(None)));
    let events = match &body.events {
        Some(Some(list)) => e.check("events", parse_events(list)),
        _ => None,
    };
    let description = match &body.description {
        Some(Some(d)) => e.check("description", parse_description(d)),
        _ => None,
    };
    e.finish()?;
    Ok(WebhookPatch {
        url: body.url.flatten(),
        events,
        category: body.category,
        description,
        enabled: body.enabled.flatten(),
    })
}

/// List webhooks
///
/// Every endpoint, by id, with its queue. Secrets are never listed.
#[utoipa::path(
    get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, description = "Every webhook", body = Vec<WebhookOut>))
)]
pub async fn list_webhooks(State(state): State<AppState>) -> ApiResult<Response> {
    let all = state.service.webhooks().await?;
    let out: Vec<WebhookOut> = all.into_iter().map(|w| WebhookOut::new(w, None)).collect();
    Ok(axum::Json(out).into_response())
}

/// Create a webhook
///
/// Registers an endpoint; it is sent every change event committed from now on that it asks
/// for, in feed order. The answer carries its signing secret, shown only here (and on
/// rotation).
#[utoipa::path(
    post, path = "/api/v1/webhooks", tag = "webhooks",
    request_body(content = CreateWebhook, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; `secret` is shown only now", body = WebhookOut, headers(("Location" = String))),
        (status = 409, description = "There are as many webhooks as allowed (100, `too_many_webhooks`), or the category does not exist (`unknown_category`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid (`validation_failed`), or the URL points at a forbidden address (`webhook_url_forbidden`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_webhook(
    State(state): State<AppState>,
    Json(body): Json<CreateWebhook>,
) -> ApiResult<Response> {
    let new = parse_new(body)?;
    let created = state.service.create_webhook(new).await?;
    let location = format!("/api/v1/webhooks/{}", created.webhook.id);
    Ok(json_reply(
        StatusCode::CREATED,
        &WebhookOut::from(created),
        &[(header::LOCATION, location.parse().expect("an id is ascii"))],
    )
    .into_response())
}

/// Get a webhook
#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id", minimum = 1)),
    responses(
        (status = 200, description = "The webhook", body = WebhookOut),
        (status = 400, description = "The id is not a positive integer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_webhook(State(state): State<AppState>, PathId(id): PathId) -> ApiResult<Response> {
    let w = state.service.webhook(id.get()).await?;
    Ok(axum::Json(WebhookOut::new(w, None)).into_response())
}

/// Change a webhook
///
/// Sets the fields given. A new URL, event list or category applies to events queued from
/// now on. Enabling a disabled endpoint resumes its queue where it stopped.
#[utoipa::path(
    patch, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id", minimum = 1)),
    request_body(content = PatchWebhook, content_type = "application/json"),
    responses(
        (status = 200, description = "The webhook as it is now", body = WebhookOut),
        (status = 400, description = "The id is not a positive integer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The category does not exist", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid, or the URL points at a forbidden address", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn patch_webhook(
    State(state): State<AppState>,
    PathId(id): PathId,
    Json(body): Json<PatchWebhook>,
) -> ApiResult<Response> {
    let patch = parse_patch(body)?;
    let w = state.service.update_webhook(id.get(), patch).await?;
    Ok(axum::Json(WebhookOut::new(w, None)).into_response())
}

/// Delete a webhook
///
/// Removes the endpoint, its queue and its delivery history.
#[utoipa::path(
    delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id", minimum = 1)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a positive integer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn delete_webhook(
    State(state): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    state.service.delete_webhook(id.get()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Rotate a webhook's secret
///
/// A new signing secret, shown only in this answer. For 24 hours deliveries carry two
/// signatures (the new secret's and the old one's) so the receiver can switch over without
/// refusing a delivery.
#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/secret", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id", minimum = 1)),
    responses(
        (status = 200, description = "The webhook with its new `secret`", body = WebhookOut),
        (status = 400, description = "The id is not a positive integer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn rotate_secret(
    State(state): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<Response> {
    let rotated = state.service.rotate_webhook_secret(id.get()).await?;
    Ok(axum::Json(WebhookOut::from(rotated)).into_response())
}

/// Send a test event
///
/// POSTs a `webhook.ping` event to the endpoint now (enabled or not), signed like every
/// delivery, and answers with the outcome once the receiver has answered or the attempt timed
/// out (`KB_WEBHOOKS_TIMEOUT`). A ping is never retried and never disables the endpoint.
#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/ping", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id", minimum = 1)),
    responses(
        (status = 200, description = "The attempt: `status` is `delivered` or `failed`", body = DeliveryOut),
        (status = 400, description = "The id is not a positive integer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn ping(State(state): State<AppState>, PathId(id): PathId) -> ApiResult<Response> {
    let d = state.service.ping_webhook(id.get()).await?;
    Ok(axum::Json(DeliveryOut::from(d)).into_response())
}

/// List a webhook's deliveries
///
/// Newest first, with each delivery's latest attempt. Finished deliveries are kept as long as
/// the change feed keeps events (`KB_CHANGES_RETENTION`).
#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = i64, Path, description = "Webhook id", minimum = 1), DeliveryParams),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        (status = 400, description = "The id or the cursor is malformed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A parameter is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_deliveries(
    State(state): State<AppState>,
    PathId(id): PathId,
    Query(params): Query<DeliveryParams>,
) -> ApiResult<Response> {
    let mut e = FieldErrors::new();
    let limit = e
        .check("limit", parse_limit(params.limit.as_deref(), 50, 100))
        .unwrap_or(50);
    let status = match params.status.as_deref() {
        None => None,
        Some(s) => e.check(
            "status",
            DeliveryStatus::parse(s)
                .ok_or_else(|| "must be pending, delivered or failed".to_string()),
        ),
    };
    e.finish()?;
    let before = match params.after.as_deref() {
        None => None,
        Some(raw) => Some(raw.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidCursor,
                "pass back a `next_cursor` exactly as kb returned it",
            )
        })?),
    };
    let items = state
        .service
        .webhook_deliveries(id.get(), status, before, limit + 1)
        .await?;
    let more = items.len() as i64 > limit;
    let items: Vec<DeliveryOut> = items
        .into_iter()
        .take(limit as usize)
        .map(DeliveryOut::from)
        .collect();
    let next_cursor = if more {
        items.last().map(|d| d.id.to_string())
    } else {
        None
    };
    Ok(axum::Json(DeliveryPage { items, next_cursor }).into_response())
}

/// Get a delivery
#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}/deliveries/{delivery}", tag = "webhooks",
    params(
        ("id" = i64, Path, description = "Webhook id", minimum = 1),
        ("delivery" = i64, Path, description = "Delivery id", minimum = 1),
    ),
    responses(
        (status = 200, description = "The delivery", body = DeliveryOut),
        (status = 400, description = "An id is not a positive integer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such delivery of this webhook", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_delivery(
    State(state): State<AppState>,
    DeliveryPath(id, delivery): DeliveryPath,
) -> ApiResult<Response> {
    let d = state
        .service
        .webhook_delivery(id.get(), delivery.get())
        .await?;
    Ok(axum::Json(DeliveryOut::from(d)).into_response())
}

/// Retry a delivery
///
/// A delivered or failed delivery is sent again now, outside the queue, and the answer is
/// the outcome (200). A pending one keeps its place in the queue and falls due now (202): the
/// endpoint gets it as soon as the deliveries before it are through.
#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/deliveries/{delivery}/retry", tag = "webhooks",
    params(
        ("id" = i64, Path, description = "Webhook id", minimum = 1),
        ("delivery" = i64, Path, description = "Delivery id", minimum = 1),
    ),
    responses(
        (status = 200, description = "Sent again: the delivery with this attempt's outcome", body = DeliveryOut),
        (status = 202, description = "Pending: due now, in its place in the queue", body = DeliveryOut),
        (status = 400, description = "An id is not a positive integer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such delivery of this webhook", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn retry_delivery(
    State(state): State<AppState>,
    DeliveryPath(id, delivery): DeliveryPath,
) -> ApiResult<Response> {
    let (d, attempted) = state
        .service
        .retry_delivery(id.get(), delivery.get())
        .await?;
    let status = if attempted {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((status, axum::Json(DeliveryOut::from(d))).into_response())
}
