//! `/api/v1/keys`: API keys over HTTP (admin), the same operations as `kb keys` and through
//! the same service functions: create a key (its secret shown once), list and read keys
//! (never their secrets), revoke one.

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorCode, Problem};
use super::extract::{Json, PathId};
use super::idempotency::{KeepInstead, json_reply};
use crate::domain::keys::{KeyName, NewKey, parse_expires_at};
use crate::domain::{FieldErrors, Rate, Scope};
use crate::store::ApiKey;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An API key, without the key itself (only its hash is stored).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyOut {
    #[schema(example = 3)]
    pub id: i64,
    pub scope: Scope,
    #[schema(example = "study app")]
    pub name: String,
    /// The key's first characters, to tell keys apart (and find one in a log).
    #[schema(example = "kb_Xa81qZ3")]
    pub prefix: String,
    /// Its own quota in request units per minute; `null`: the server's default for keys
    /// (`KB_KEY_RATE`). A rate asked for per second or hour is kept, and shown, per minute.
    #[schema(example = "1200/min")]
    pub rate: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When a request last presented it, or a learner token it issued; to the minute (kb
    /// writes it at most once a minute per key). `null`: never used.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it stops working; `null`: never (until revoked).
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked; `null`: it was not.
    pub revoked_at: Option<DateTime<Utc>>,
    /// The key: send it as `Authorization: Bearer <secret>`. Only in the answer that created
    /// it: kb stores only its SHA-256, so it cannot be shown again (not even in the answer
    /// replayed to a retry with the same `Idempotency-Key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "kb_Xa81qZ3Lr0v8KxwJf4Nn2YbTqPe6HmUcDsA1gR5tWo9")]
    pub secret: Option<String>,
}

impl KeyOut {
    fn new(k: ApiKey, secret: Option<String>) -> Self {
        Self {
            id: k.id,
            scope: k.scope,
            name: k.name,
            prefix: k.prefix,
            rate: k.rate_per_minute.map(Rate::per_minute_text),
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
            secret,
        }
    }
}

impl From<ApiKey> for KeyOut {
    fn from(k: ApiKey) -> Self {
        Self::new(k, None)
    }
}

/// Body of `POST /api/v1/keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"scope": "write", "name": "study app", "rate": "1200/min",
    "expires_at": "2027-06-30T00:00:00Z"}))]
pub struct CreateKey {
    /// What the key may do: `admin` everything; `write` and `learners` each `read` and their
    /// own area (content; learners' reviews and tokens); `read` reads only.
    #[schema(value_type = Scope, required = true)]
    pub scope: Option<String>,
    /// What the key is for, to tell keys apart: 1–100 characters after trimming, one line.
    #[schema(value_type = String, required = true, format = "kb:key-name")]
    pub name: Option<String>,
    /// Its own quota, as units per window: `1200/min`, `50/s`, `5000/h` or `600/60s`. Left
    /// out: the server's default for keys (`KB_KEY_RATE`).
    #[schema(value_type = Option<String>, required = false,
        pattern = "^[1-9][0-9]{0,8}/(s|sec|second|m|min|minute|h|hour|[1-9][0-9]{0,8}s)$")]
    pub rate: Option<String>,
    /// When the key stops working (RFC 3339): in the future, at most 3650 days ahead. Left
    /// out: never, until revoked.
    #[schema(value_type = Option<DateTime<Utc>>, required = false)]
    pub expires_at: Option<String>,
}

/// The fields of a new key, checked; every problem at once, as `validation_failed`.
fn parse_new(body: CreateKey) -> ApiResult<NewKey> {
    let mut e = FieldErrors::new();
    let scope = e.required("scope", body.scope.as_deref(), Scope::parse);
    let name = e.required("name", body.name.as_deref(), KeyName::parse);
    let rate = match body.rate.as_deref() {
        Some(raw) => e.check("rate", Rate::parse(raw).map(Some)),
        None => Some(None),
    };
    let expires_at = match body.expires_at.as_deref() {
        Some(raw) => e.check("expires_at", parse_expires_at(raw, Utc::now()).map(Some)),
        None => Some(None),
    };
    e.finish()?;
    let (Some(scope), Some(name), Some(rate), Some(expires_at)) = (scope, name, rate, expires_at)
    else {
        return Err(ApiError::new(
            ErrorCode::ValidationFailed,
            "scope and name are required",
        ));
    };
    Ok(NewKey {
        name,
        scope,
        rate,
        expires_at,
    })
}

/// List keys
///
/// Every live key by id, expired ones included, never the keys themselves. A revoked key is
/// gone from the API, as a deleted resource is (`kb keys list` still shows it, with when it
/// was revoked).
#[utoipa::path(
    get, path = "/api/v1/keys", tag = "keys",
    responses((status = 200, description = "Every key", body = Vec<KeyOut>))
)]
pub async fn list_keys(State(state): State<AppState>) -> ApiResult<Response> {
    let keys: Vec<KeyOut> = state
        .service
        .keys()
        .await?
        .into_iter()
        .filter(|k| k.revoked_at.is_none())
        .map(KeyOut::from)
        .collect();
    Ok(axum::Json(keys).into_response())
}

/// Create a key
///
/// Creates an API key (as `kb keys create`) and answers with it in `secret`: the only time
/// it is shown, since kb stores only its hash. It works on the next request.
#[utoipa::path(
    post, path = "/api/v1/keys", tag = "keys",
    request_body(content = CreateKey, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; `secret` is the key, shown only now", body = KeyOut, headers(("Location" = String))),
        (status = 422, description = "A field is invalid: an unknown scope, a blank or too long name, a rate not like `1200/min`, an expiry not in the next 3650 days (`validation_failed`, naming the fields)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn create_key(
    State(state): State<AppState>,
    Json(body): Json<CreateKey>,
) -> ApiResult<Response> {
    let new = parse_new(body)?;
    let (secret, key) = state.service.create_key(&new).await?;
    let location: HeaderValue = format!("/api/v1/keys/{}", key.id)
        .parse()
        .expect("an id is ascii");
    let headers = [(header::LOCATION, location)];
    let shown = KeyOut::new(key, Some(secret));
    let kept = KeyOut {
        secret: None,
        ..shown.clone()
    };
    let mut response = json_reply(StatusCode::CREATED, &shown, &headers).into_response();
    response.extensions_mut().insert(KeepInstead(json_reply(
        StatusCode::CREATED,
        &kept,
        &headers,
    )));
    Ok(response)
}

/// Get a key
///
/// One key that is not revoked (expired ones included); never the key itself.
#[utoipa::path(
    get, path = "/api/v1/keys/{id}", tag = "keys",
    params(("id" = i64, Path, description = "Key id", minimum = 1)),
    responses(
        (status = 200, description = "The key", body = KeyOut),
        (status = 400, description = "The id is not a positive integer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No key with this id, or it is revoked (`key_not_found`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_key(State(state): State<AppState>, PathId(id): PathId) -> ApiResult<Response> {
    let k = state.service.key(id.get()).await?;
    if k.revoked_at.is_some() {
        return Err(crate::service::Error::KeyNotFound(id.get()).into());
    }
    Ok(axum::Json(KeyOut::from(k)).into_response())
}

/// Revoke a key
///
/// Revokes a key (as `kb keys revoke`): from the next request on it is refused with 401, and
/// so are the learner tokens it issued, and it is gone from `GET /api/v1/keys` (`kb keys
/// list` keeps it, with when it was revoked). An expired key can be revoked too.
#[utoipa::path(
    delete, path = "/api/v1/keys/{id}", tag = "keys",
    params(("id" = i64, Path, description = "Key id", minimum = 1)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "The id is not a positive integer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No key with this id, or it is revoked already (`key_not_found`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    PathId(id): PathId,
) -> ApiResult<StatusCode> {
    state.service.revoke_key(id.get()).await?;
    Ok(StatusCode::NO_CONTENT)
}
