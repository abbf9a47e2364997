//! `/api/v1/changes`: the change feed, page by page (optionally waiting for news: a long
//! poll), and `/api/v1/changes/stream`, the same events as Server-Sent Events.

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorCode, Problem};
use super::extract::Query;
use super::live::LiveSlot;
use super::quota::client_ip;
use super::shared::parse_limit;
use crate::domain::changes::{ChangeEvent, CursorError, EventType};
use crate::domain::{FieldErrors, Slug};
use crate::service::{FeedRequest, LiveNews, Principal, Service};
use crate::store::{Feed, FeedEvent};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use utoipa::{IntoParams, ToSchema};

/// The longest a poll may wait for news.
pub const MAX_WAIT_SECS: u64 = 60;
/// How often an idle stream sends a comment line, so proxies and clients keep it open.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// Events a stream reads from the database at a time (what it holds for a slow reader).
const STREAM_PAGE: i64 = 100;

/// Query parameters of the change feed. All optional.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedParams {
    /// Continue after this position: a `next_cursor`, or an event's `cursor`, exactly as
    /// returned. Absent: from the oldest event the feed still holds.
    #[param(pattern = "^[A-Za-z0-9_-]{18}$")]
    after: Option<String>,
    /// Events per page, 1–1000 (default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// Only these event types, comma-separated; `question.*` and `category.*` name every
    /// type of a resource.
    #[param(
        example = "question.created,question.deleted",
        pattern = r"^(question|category)\.(created|updated|deleted|\*)(,(question|category)\.(created|updated|deleted|\*))*$"
    )]
    types: Option<String>,
    /// Only events of this category (a question's category; a deleted question's last one).
    #[param(value_type = Option<String>, example = "golang", format = "kb:slug")]
    category: Option<String>,
    /// With no event to return yet, wait up to this many seconds (0–60, default 0) for one.
    #[param(value_type = Option<i64>, minimum = 0, maximum = 60)]
    wait: Option<String>,
}

/// Query parameters of the change stream.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Start after this position (a `Last-Event-ID` header, as a reconnecting `EventSource`
    /// sends, takes precedence). Absent: from the oldest event the feed still holds.
    #[param(pattern = "^[A-Za-z0-9_-]{18}$")]
    after: Option<String>,
    /// As for `GET /api/v1/changes`.
    #[param(
        pattern = r"^(question|category)\.(created|updated|deleted|\*)(,(question|category)\.(created|updated|deleted|\*))*$"
    )]
    types: Option<String>,
    /// As for `GET /api/v1/changes`.
    #[param(value_type = Option<String>, example = "golang", format = "kb:slug")]
    category: Option<String>,
}

/// One Server-Sent Event of `GET /api/v1/changes/stream`, as its fields arrive on the wire.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ChangeStreamEvent {
    /// The event's `cursor`: what a reconnecting client sends back as `Last-Event-ID`.
    id: String,
    /// The event's `type`.
    #[schema(example = "question.created")]
    event: String,
    /// The event as JSON, exactly as an item of `GET /api/v1/changes` (a `ChangeEvent`).
    data: String,
}

/// A page of the change feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangePage {
    /// In commit order.
    pub items: Vec<ChangeEvent>,
    /// Always present: pass it back as `after`. With no newer event it stays where it was.
    pub next_cursor: String,
    /// More events are waiting: ask again at once.
    pub has_more: bool,
}

impl FeedParams {
    fn parse(&self) -> ApiResult<(FeedRequest, Option<&str>, u64)> {
        let mut e = FieldErrors::new();
        let limit = e
            .check("limit", parse_limit(self.limit.as_deref(), 100, 1000))
            .unwrap_or(100);
        let (types, category) = parse_filters(&mut e, &self.types, &self.category);
        let wait = e
            .check("wait", parse_wait(self.wait.as_deref()))
            .unwrap_or(0);
        e.finish()?;
        let req = FeedRequest {
            after: None,
            limit,
            types,
            category,
        };
        Ok((req, self.after.as_deref(), wait))
    }
}

fn parse_filters(
    e: &mut FieldErrors,
    types: &Option<String>,
    category: &Option<String>,
) -> (Option<Vec<EventType>>, Option<String>) {
    let types = types
        .as_deref()
        .and_then(|t| e.check("types", EventType::parse_list(t)));
    let category = category
        .as_deref()
        .and_then(|c| e.check("category", Slug::parse(c)))
        .map(|s| s.as_str().to_string());
    (types, category)
}

fn parse_wait(raw: Option<&str>) -> Result<u64, String> {
    match raw {
        None => Ok(0),
        Some(s) => s
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= MAX_WAIT_SECS)
            .ok_or_else(|| format!("must be a whole number of seconds from 0 to {MAX_WAIT_SECS}")),
    }
}

/// The position a client sent, checked to be one of this database's.
async fn position(service: &Service, raw: Option<&str>) -> ApiResult<Option<i64>> {
    let Some(raw) = raw else { return Ok(None) };
    match service.parse_cursor(raw).await? {
        Ok(seq) => Ok(Some(seq)),
        Err(e @ (CursorError::Malformed | CursorError::Foreign)) => {
            Err(ApiError::new(ErrorCode::InvalidCursor, e.to_string()))
        }
    }
}

/// A page, or 410 when the feed no longer holds what follows the cursor.
async fn read(service: &Service, req: &FeedRequest) -> ApiResult<(Vec<FeedEvent>, i64, bool)> {
    match service.changes(req).await? {
        Feed::Page {
            events,
            next,
            has_more,
        } => Ok((events, next, has_more)),
        Feed::Expired { .. } => Err(ApiError::new(
            ErrorCode::CursorExpired,
            "the feed no longer holds the events after this cursor (it keeps them for \
             KB_CHANGES_RETENTION); start again: GET /api/v1/export for a snapshot and its \
             changes cursor, then follow the feed from that cursor",
        )),
    }
}

fn event_out(tag: [u8; 4], e: FeedEvent) -> ChangeEvent {
    ChangeEvent::new(tag, e.seq, e.event, e.at, e.data)
}

/// Who holds an open request, for the per-credential and per-address caps.
fn holder(
    state: &AppState,
    principal: &Option<Extension<Principal>>,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> (Option<crate::service::CallerId>, std::net::IpAddr) {
    let ip = client_ip(peer, headers, &state.trusted_proxies);
    (principal.as_ref().map(|p| p.0.id.clone()), ip)
}

/// Read the change feed
///
/// Every change to questions and categories in commit order, the same on every replica:
/// `question.created`, `question.updated` (answers added, changed or removed count as updates
/// of their question), `question.deleted` (a tombstone), `category.created` (categories cannot
/// be renamed or deleted yet, so `category.updated` and `category.deleted` are reserved
/// names). Learner data is never in it. Pass `next_cursor` back as `after`; with `wait`, an
/// empty page is held until an event arrives or the wait ends (a long poll). Start a copy
/// with `GET /api/v1/export`, whose `Kb-Changes-Cursor` says where to follow from.
#[utoipa::path(
    get, path = "/api/v1/changes", tag = "sync",
    params(FeedParams),
    responses(
        (status = 200, description = "A page of events", body = ChangePage),
        (status = 400, description = "Malformed query string, or a cursor that is malformed or from another database", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The cursor is older than the feed keeps", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A parameter is out of range", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn changes(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Query(params): Query<FeedParams>,
) -> ApiResult<Response> {
    let (mut req, after, wait) = params.parse()?;
    let service = &state.service;
    req.after = position(service, after).await?;
    let (mut events, mut next, mut has_more) = read(service, &req).await?;
    if events.is_empty() && wait > 0 {
        let (caller, ip) = holder(&state, &principal, peer.map(|c| c.0.0), &headers);
        let _slot: LiveSlot = state.live.enter(caller.as_ref(), ip)?;
        let deadline = Instant::now() + Duration::from_secs(wait);
        let mut closing = state.live.closing();
        loop {
            if service.wait_for_news(next, deadline, &mut closing).await != LiveNews::Maybe {
                break;
            }
            req.after = Some(next);
            (events, next, has_more) = read(service, &req).await?;
            if !events.is_empty() {
                break;
            }
        }
    }
    let tag = service.cursor_tag().await?;
    let page = ChangePage {
        items: events.into_iter().map(|e| event_out(tag, e)).collect(),
        next_cursor: crate::domain::changes::Cursor { seq: next }.encode(tag),
        has_more,
    };
    Ok(Json(page).into_response())
}

/// Follow the change feed live
///
/// The change feed as Server-Sent Events (`text/event-stream`): each event as `id: <cursor>`,
/// `event: <type>`, `data: <the event JSON, as in GET /api/v1/changes>`. A reconnecting
/// client sends `Last-Event-ID` (browsers' `EventSource` does) and resumes exactly after the
/// last event it saw. A comment line every 15 s keeps the connection open; the server ends
/// the stream cleanly when it shuts down (reconnect to resume). A client that stops reading is
/// disconnected rather than buffered for.
#[utoipa::path(
    get, path = "/api/v1/changes/stream", tag = "sync",
    params(
        StreamParams,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event's cursor", pattern = "^[A-Za-z0-9_-]{18}$"),
    ),
    responses(
        (status = 200, description = "A stream of events: each `data:` line is one event", content_type = "text/event-stream", body = ChangeStreamEvent),
        (status = 400, description = "Malformed query string, or a cursor that is malformed or from another database", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The cursor is older than the feed keeps", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A filter is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn stream(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Query(params): Query<StreamParams>,
) -> ApiResult<Response> {
    let mut e = FieldErrors::new();
    let (types, category) = parse_filters(&mut e, &params.types, &params.category);
    e.finish()?;
    let last_event_id = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::new(ErrorCode::InvalidCursor, "Last-Event-ID is not text"))
        })
        .transpose()?;
    let service = state.service.clone();
    let after = position(&service, last_event_id.or(params.after.as_deref())).await?;
    let req = FeedRequest {
        after,
        limit: STREAM_PAGE,
        types,
        category,
    };
    // The first page is read now, so an expired cursor is a 410 rather than a stream that
    // ends at once.
    let (events, next, _) = read(&service, &req).await?;
    let (caller, ip) = holder(&state, &principal, peer.map(|c| c.0.0), &headers);
    let slot = state.live.enter(caller.as_ref(), ip)?;
    let tag = service.cursor_tag().await?;
    let follower = Follower {
        service,
        req: FeedRequest {
            after: Some(next),
            ..req
        },
        pending: events.into(),
        closing: state.live.closing(),
        tag,
        _slot: slot,
    };
    let events = futures_util::stream::unfold(follower, Follower::next);
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"))
        .into_response();
    // Proxies that buffer would hold events back; this asks them not to.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// One open stream: where it is in the feed and what it has read but not yet sent (at most a
/// page, so a slow reader costs a bounded amount).
struct Follower {
    service: Service,
    req: FeedRequest,
    pending: VecDeque<FeedEvent>,
    closing: watch::Receiver<bool>,
    tag: [u8; 4],
    _slot: LiveSlot,
}

impl Follower {
    async fn next(mut self) -> Option<(Result<Event, std::convert::Infallible>, Self)> {
        loop {
            if *self.closing.borrow() {
                return None;
            }
            if let Some(e) = self.pending.pop_front() {
                let out = event_out(self.tag, e);
                let event = Event::default()
                    .id(out.cursor.clone())
                    .event(out.kind.as_str())
                    .json_data(&out)
                    .ok()?;
                return Some((Ok(event), self));
            }
            let at = self.req.after.unwrap_or(0);
            match self.service.changes(&self.req).await {
                Ok(Feed::Page { events, next, .. }) => {
                    self.req.after = Some(next);
                    if !events.is_empty() {
                        self.pending.extend(events);
                        continue;
                    }
                }
                Ok(Feed::Expired { .. }) => return None,
                Err(e) => {
                    // The client reconnects with Last-Event-ID and resumes where it was.
                    tracing::warn!(error = %e, "a change stream stopped on a read error");
                    return None;
                }
            }
            let far = Instant::now() + Duration::from_secs(3600);
            let next = self.req.after.unwrap_or(at);
            if self
                .service
                .wait_for_news(next, far, &mut self.closing)
                .await
                == LiveNews::Closing
            {
                return None;
            }
        }
    }
}
