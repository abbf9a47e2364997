//! `Idempotency-Key` on every POST (draft-ietf-httpapi-idempotency-key-header): a retry of a
//! request gets the first answer again instead of repeating its effect. See
//! [docs/idempotency.md](../../docs/idempotency.md) for the contract; this is how it is kept.
//!
//! A layer on every POST route (added by `op` in `http/mod.rs`, inside the route guard, which
//! has already named the caller): without the header a request passes straight through.
//! With it, the layer fingerprints the request (method, path and query, body), claims the key
//! in the caller's scope (a write of its own, which is what makes two replicas agree), and
//! runs the handler with the claim in scope. A handler whose effect is one transaction has its
//! answer recorded by that transaction (`crate::idempotency`); any other answer worth keeping
//! is recorded here after the handler. A key already answered is replayed; one held by a
//! running request is 409; one used for a different request is 422.
//!
//! A streamed body (import) is not buffered: it is hashed as the handler reads it, and its
//! fingerprint recorded with the answer; a retry of an answered key reads and hashes its own
//! body before it is compared and replayed.

use super::AppState;
use super::error::{ApiError, ErrorCode};
use super::quota::client_ip;
use crate::domain::IdempotencyKey;
use crate::idempotency::{Claim, ClaimId, Reply};
use crate::service::{CallerId, ClaimOutcome, KeyRecord, NewClaim, Principal, Service};
use axum::RequestPartsExt;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequest, RawPathParams, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// How a route takes its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// Read whole (at most [`super::BODY_LIMIT`]) before the handler runs.
    Buffered,
    /// Streamed to the handler, of any size (import).
    Streamed,
}

/// How long a claim holds its key without news from its request: twice the request timeout
/// (a bounded request is cancelled after one, which gives its claim up), and renewed every
/// timeout while a streamed request still runs. After a crash a retry waits this long at most.
fn lease(timeout: Duration) -> Duration {
    timeout * 2
}

/// The layer: see the module documentation. `timeout` is the route's request timeout.
pub async fn layer(kind: BodyKind, timeout: Duration, req: Request, next: Next) -> Response {
    let mut keys = req.headers().get_all(&IDEMPOTENCY_KEY).iter();
    let Some(raw) = keys.next() else {
        return next.run(req).await;
    };
    if keys.next().is_some() {
        return ApiError::new(
            ErrorCode::InvalidIdempotencyKey,
            "send one Idempotency-Key header, not several",
        )
        .into_response();
    }
    let key = match IdempotencyKey::parse(raw.as_bytes()) {
        Ok(key) => key,
        Err(why) => return ApiError::new(ErrorCode::InvalidIdempotencyKey, why).into_response(),
    };
    let Some(state) = req.extensions().get::<AppState>().cloned() else {
        return ApiError::internal(anyhow::anyhow!("the app state is not in the request"))
            .into_response();
    };
    let mut req = req;
    let scope = scope(&req, &state);
    let learner = path_learner(&mut req).await;
    let keeper = Keeper {
        service: state.service.clone(),
        id: ClaimId {
            scope,
            key: key.as_str().to_string(),
            token: crate::secret::random_token(),
            fingerprint: None,
            learner,
        },
        lease: lease(timeout),
    };
    match kind {
        BodyKind::Buffered => keeper.buffered(req, next).await,
        BodyKind::Streamed => keeper.streamed(req, next).await,
    }
}

/// Whose keys these are: the credential (an API key, the admin key, a learner token: the
/// learner and the key that issued it), or the client's address without one.
fn scope(req: &Request, state: &AppState) -> String {
    match req.extensions().get::<Principal>() {
        Some(p) => {
            let caller = match &p.id {
                CallerId::AdminKey => "admin".to_string(),
                CallerId::Key(id) => format!("key:{id}"),
                CallerId::Learner(l) => format!("learner:{l}"),
            };
            match &p.learner {
                Some(l) => format!("{caller}/learner:{}", l.as_str()),
                None => caller,
            }
        }
        None => {
            let peer = req
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0);
            format!(
                "ip:{}",
                client_ip(peer, req.headers(), &state.trusted_proxies)
            )
        }
    }
}

/// The learner a `/learners/{learner}/…` route acts for, so that erasing the learner can
/// erase the answers kept for them.
async fn path_learner(req: &mut Request) -> Option<String> {
    let (mut parts, body) = std::mem::take(req).into_parts();
    let params = parts.extract::<RawPathParams>().await;
    *req = Request::from_parts(parts, body);
    params.ok().and_then(|p| {
        p.iter()
            .find(|(k, _)| *k == "learner")
            .and_then(|(_, v)| crate::domain::LearnerId::parse(v).ok())
            .map(|l| l.as_str().to_string())
    })
}

/// SHA-256 of what makes two requests the same one: method, path and query, body.
#[derive(Clone)]
struct Fingerprint(Sha256);

impl Fingerprint {
    fn of(method: &Method, uri: &Uri) -> Self {
        let mut h = Sha256::new();
        let target = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
        // Lengths first: no two different (method, target) pairs feed the same bytes.
        for part in [method.as_str(), target] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        Self(h)
    }

    fn update(&mut self, chunk: &[u8]) {
        self.0.update(chunk);
    }

    fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}

/// The answer to keep for retries in place of the one sent, put in the response's extensions
/// by a handler whose answer shows a secret once (a new API key): kb keeps no key in clear,
/// not even in a kept answer, so a retry gets the same answer without it.
#[derive(Debug, Clone)]
pub struct KeepInstead(pub Reply);

/// A claimed (or to be claimed) key and what to do with it.
struct Keeper {
    service: Service,
    id: ClaimId,
    lease: Duration,
}

impl Keeper {
    async fn claim(&self) -> Result<ClaimOutcome, ApiError> {
        let claim = NewClaim {
            id: &self.id,
            lease: self.lease,
        };
        Ok(self.service.claim_key(&claim).await?)
    }

    async fn buffered(mut self, req: Request, next: Next) -> Response {
        let (parts, body) = req.into_parts();
        let mut fingerprint = Fingerprint::of(&parts.method, &parts.uri);
        // The same limit and refusals as the JSON extractor, which reads the copy below.
        let bytes = match Bytes::from_request(Request::from_parts(parts.clone(), body), &()).await {
            Ok(b) => b,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return ApiError::new(ErrorCode::PayloadTooLarge, "the body must be at most 1 MiB")
                    .into_response();
            }
            Err(e) => {
                return ApiError::new(
                    ErrorCode::InvalidJson,
                    format!("could not read the body: {e}"),
                )
                .into_response();
            }
        };
        fingerprint.update(&bytes);
        self.id.fingerprint = Some(fingerprint.finish());
        let req = Request::from_parts(parts, Body::from(bytes));
        match self.claim().await {
            Err(e) => e.into_response(),
            Ok(ClaimOutcome::Claimed) => self.run(req, next, None).await,
            Ok(ClaimOutcome::Held(record)) => held(record, self.id.fingerprint.as_deref()),
            Ok(ClaimOutcome::Contended) => in_flight(),
        }
    }

    async fn streamed(self, req: Request, next: Next) -> Response {
        let fingerprint = Fingerprint::of(req.method(), req.uri());
        match self.claim().await {
            Err(e) => e.into_response(),
            Ok(ClaimOutcome::Claimed) => {
                let (parts, body) = req.into_parts();
                let hashed = Arc::new(Mutex::new(Hashing::Reading(fingerprint)));
                let body = Body::from_stream(HashingStream {
                    inner: body.into_data_stream(),
                    hashed: hashed.clone(),
                });
                self.run(Request::from_parts(parts, body), next, Some(hashed))
                    .await
            }
            // An answer can only be told apart from a different request's once the body is
            // read; a running claim is in flight either way.
            Ok(ClaimOutcome::Held(record)) if record.reply.is_some() => {
                match hash_body(fingerprint, req.into_body()).await {
                    Ok(f) => held(record, Some(&f)),
                    Err(e) => e.into_response(),
                }
            }
            Ok(ClaimOutcome::Held(_) | ClaimOutcome::Contended) => in_flight(),
        }
    }

    /// Runs the claimed request and keeps its answer, or gives the key up.
    async fn run(
        self,
        req: Request,
        next: Next,
        streamed: Option<Arc<Mutex<Hashing>>>,
    ) -> Response {
        // Cut off (timeout, client gone) before the end: give the key up, unless a committed
        // transaction recorded the answer (then this changes nothing). Not on the way out of
        // an ordinary end, which settles the claim itself.
        let mut guard = ReleaseOnDrop(Some((self.service.clone(), self.id.clone())));
        let response = self.settle(req, next, streamed).await;
        guard.0 = None;
        response
    }

    async fn settle(
        &self,
        req: Request,
        next: Next,
        streamed: Option<Arc<Mutex<Hashing>>>,
    ) -> Response {
        let claim = Claim::new(self.id.clone());
        let response = self.renewing(claim.scope(next.run(req))).await;
        if let Some(reply) = claim.committed_reply() {
            // What the effect's transaction recorded is what every retry will get.
            self.service.finish_key(&self.id);
            return reply.into_response();
        }
        let read = streamed.and_then(|h| h.lock().unwrap_or_else(|p| p.into_inner()).done());
        // A streamed body the handler did not read to its end has no fingerprint: nothing to
        // compare a retry with, so the retry runs again.
        if !keeps(response.status()) || (self.id.fingerprint.is_none() && read.is_none()) {
            self.release().await;
            return response;
        }
        let (parts, body) = response.into_parts();
        let bytes = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(b) => b,
            Err(e) => {
                self.release().await;
                return ApiError::internal(anyhow::Error::new(e).context("reading an answer"))
                    .into_response();
            }
        };
        let reply = match parts.extensions.get::<KeepInstead>() {
            Some(KeepInstead(instead)) => instead.clone(),
            None => Reply {
                status: parts.status.as_u16(),
                headers: kept_headers(&parts.headers),
                body: bytes.clone(),
            },
        };
        match self
            .service
            .complete_key(&self.id, &reply, read.as_deref())
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                key = %self.id.key,
                "an idempotency claim was taken over before its answer was kept"
            ),
            // The answer still goes out; the claim's lease runs out and a retry runs again.
            Err(e) => tracing::warn!(error = %e, "could not keep an idempotent answer"),
        }
        self.service.finish_key(&self.id);
        Response::from_parts(parts, Body::from(bytes))
    }

    /// Polls `f`, renewing the claim's lease while it runs longer than half of it.
    async fn renewing<F: Future>(&self, f: F) -> F::Output {
        let every = self.lease / 2;
        let mut f = std::pin::pin!(f);
        loop {
            tokio::select! {
                out = &mut f => return out,
                () = tokio::time::sleep(every) => {
                    let (service, id, lease) = (self.service.clone(), self.id.clone(), self.lease);
                    // Not awaited here: the request goes on meanwhile.
                    tokio::spawn(async move {
                        if let Err(e) = service.renew_key(&id, lease).await {
                            tracing::warn!(error = %e, "could not renew an idempotency claim");
                        }
                    });
                }
            }
        }
    }

    async fn release(&self) {
        if let Err(e) = self.service.release_key(&self.id).await {
            // Its lease runs out instead.
            tracing::warn!(error = %e, "could not give an idempotency key up");
        }
    }
}

/// Gives the key up when the request is dropped before it finished.
struct ReleaseOnDrop(Option<(Service, ClaimId)>);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        if let Some((service, id)) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = service.release_key(&id).await;
            });
        }
    }
}

/// Which answers are kept for retries: those a retry would get again (success, and the
/// client's own mistakes). A conflict, a refusal of the credential, quota or overload, or a
/// failure of ours may be gone by the retry, so the key is given up and the retry runs again.
fn keeps(status: StatusCode) -> bool {
    status.is_success()
        || (status.is_client_error()
            && !matches!(
                status,
                StatusCode::UNAUTHORIZED
                    | StatusCode::FORBIDDEN
                    | StatusCode::REQUEST_TIMEOUT
                    | StatusCode::CONFLICT
                    | StatusCode::TOO_EARLY
                    | StatusCode::TOO_MANY_REQUESTS
            ))
}

/// The handler's headers, without those describing one exchange rather than the answer.
fn kept_headers(headers: &axum::http::HeaderMap) -> Vec<(String, String)> {
    const PER_EXCHANGE: [HeaderName; 5] = [
        header::CONTENT_LENGTH,
        header::DATE,
        header::RETRY_AFTER,
        header::SET_COOKIE,
        header::TRANSFER_ENCODING,
    ];
    headers
        .iter()
        .filter(|(name, _)| !PER_EXCHANGE.contains(name))
        .filter(|(name, _)| !name.as_str().starts_with("ratelimit"))
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
        .collect()
}

/// The answer to a key someone else holds: the stored answer again, 422 for a different
/// request, 409 while it runs.
fn held(record: KeyRecord, fingerprint: Option<&str>) -> Response {
    if let (Some(theirs), Some(ours)) = (record.fingerprint.as_deref(), fingerprint)
        && theirs != ours
    {
        return ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was used for a different request (method, path or body); \
             use a new key for a new request",
        )
        .into_response();
    }
    match record.reply {
        Some(reply) => {
            let mut response = reply.into_response();
            response.headers_mut().insert(
                IDEMPOTENT_REPLAYED.clone(),
                HeaderValue::from_static("true"),
            );
            response
        }
        None => in_flight(),
    }
}

fn in_flight() -> Response {
    ApiError::new(
        ErrorCode::IdempotencyKeyInFlight,
        "a request with this Idempotency-Key is still running; retry shortly for its answer",
    )
    .retry_after(1)
    .into_response()
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let headers = response.headers_mut();
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) {
                headers.append(name, value);
            }
        }
        response
    }
}

/// A JSON answer: status, body, and any other headers (`ETag`, `Location`), as handlers whose
/// answer may be recorded build it.
pub fn json_reply(
    status: StatusCode,
    value: &impl serde::Serialize,
    headers: &[(HeaderName, HeaderValue)],
) -> Reply {
    let mut all = vec![(
        header::CONTENT_TYPE.to_string(),
        "application/json".to_string(),
    )];
    all.extend(
        headers
            .iter()
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string()))),
    );
    Reply {
        status: status.as_u16(),
        headers: all,
        body: serde_json::to_vec(value)
            .expect("a response serializes")
            .into(),
    }
}

/// Where a streamed body's fingerprint stands.
enum Hashing {
    Reading(Fingerprint),
    Done(String),
    /// The body failed before its end.
    Broken,
}

impl Hashing {
    fn done(&self) -> Option<String> {
        match self {
            Hashing::Done(f) => Some(f.clone()),
            _ => None,
        }
    }
}

/// A body stream that feeds a fingerprint as it is read.
struct HashingStream<S> {
    inner: S,
    hashed: Arc<Mutex<Hashing>>,
}

impl<S> Stream for HashingStream<S>
where
    S: Stream<Item = Result<Bytes, axum::Error>> + Unpin,
{
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.poll_next_unpin(cx);
        if let Poll::Ready(item) = &polled {
            let mut hashed = self.hashed.lock().unwrap_or_else(|p| p.into_inner());
            let next = match (std::mem::replace(&mut *hashed, Hashing::Broken), item) {
                (Hashing::Reading(mut f), Some(Ok(chunk))) => {
                    f.update(chunk);
                    Hashing::Reading(f)
                }
                (Hashing::Reading(f), None) => Hashing::Done(f.finish()),
                (Hashing::Done(f), None) => Hashing::Done(f),
                _ => Hashing::Broken,
            };
            *hashed = next;
        }
        polled
    }
}

/// Reads a whole streamed body into its fingerprint.
async fn hash_body(mut fingerprint: Fingerprint, body: Body) -> Result<String, ApiError> {
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidJson,
                format!("could not read the body: {e}"),
            )
        })?;
        fingerprint.update(&chunk);
    }
    Ok(fingerprint.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_worth_replaying_are_kept_and_passing_refusals_are_not() {
        for kept in [200, 201, 400, 404, 413, 415, 422] {
            assert!(keeps(StatusCode::from_u16(kept).unwrap()), "{kept}");
        }
        for dropped in [401, 403, 409, 429, 500, 503] {
            assert!(!keeps(StatusCode::from_u16(dropped).unwrap()), "{dropped}");
        }
    }

    #[test]
    fn a_fingerprint_tells_method_target_and_body_apart() {
        let fp = |method: &str, uri: &str, body: &[u8]| {
            let mut f = Fingerprint::of(&method.parse().unwrap(), &uri.parse().unwrap());
            f.update(body);
            f.finish()
        };
        let base = fp("POST", "/a?x=1", b"{}");
        assert_eq!(base, fp("POST", "/a?x=1", b"{}"));
        assert_ne!(base, fp("POST", "/a?x=2", b"{}"));
        assert_ne!(base, fp("POST", "/a?x=1", b"{ }"));
        assert_ne!(base, fp("PUT", "/a?x=1", b"{}"));
    }
}
