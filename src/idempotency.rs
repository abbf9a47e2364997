//! Idempotent POSTs: a request's claim on its `Idempotency-Key`, carried from the HTTP layer
//! that took the claim to the write transaction that commits the request's effect, so that
//! the answer is recorded in that same transaction ([docs](../docs/idempotency.md)).
//!
//! The HTTP layer (`http/idempotency.rs`) runs a claimed request inside [`Claim::scope`]. A
//! handler whose effect is one write transaction says, before it calls the service, how its
//! answer is made from the value that transaction returns ([`reply_with`]); the store, just
//! before such a transaction commits, renders the answer ([`render`]) and marks the record
//! done within it, then reports the commit ([`Claim::committed`]). A crash therefore loses
//! both the effect and its record or keeps both. Without a claim in scope (a request without
//! the header, or work on a task of its own such as an import batch) both calls do nothing.
//!
//! Used by `http` and `store`; uses neither, as `secret` does not.

use bytes::Bytes;
use std::any::Any;
use std::sync::{Arc, Mutex};

/// A response as it is stored and replayed: what the handler answered, without the headers
/// that describe one exchange (quota, request id), which the layers around it add each time.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    /// Each header's name and value, in the order the handler set them.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

/// How long an answer is kept and replayed.
pub const RETENTION: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// Which record a claim holds: the caller's scope, the client's key, and this claim's own
/// token (the record is only changed under the token that claimed it: a request whose lease
/// ran out and was taken over changes nothing); and what the record will say about the
/// request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimId {
    pub scope: String,
    pub key: String,
    pub token: String,
    /// SHA-256 (hex) of the request; `None` for a streamed body until it has been read.
    pub fingerprint: Option<String>,
    /// The learner the request's path names.
    pub learner: Option<String>,
}

type Renderer = Box<dyn FnMut(&dyn Any) -> Option<Reply> + Send>;

/// A claimed request's link to its record while the handler runs.
pub struct Claim {
    pub id: ClaimId,
    state: Mutex<Completion>,
}

enum Completion {
    /// No transaction has completed the record; how the handler's effect renders, if it said.
    Open(Option<Renderer>),
    /// A transaction committed the record with this answer.
    Committed(Reply),
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim").field("id", &self.id).finish()
    }
}

tokio::task_local! {
    static CLAIM: Arc<Claim>;
}

impl Claim {
    pub fn new(id: ClaimId) -> Arc<Self> {
        Arc::new(Self {
            id,
            state: Mutex::new(Completion::Open(None)),
        })
    }

    /// Runs `f` (the handler) with this claim in scope.
    pub async fn scope<F: Future>(self: &Arc<Self>, f: F) -> F::Output {
        CLAIM.scope(self.clone(), f).await
    }

    /// The answer a committed transaction recorded, if one did.
    pub fn committed_reply(&self) -> Option<Reply> {
        match &*self.lock() {
            Completion::Committed(reply) => Some(reply.clone()),
            Completion::Open(_) => None,
        }
    }

    /// Called by the store once the transaction that recorded `reply` has committed.
    pub fn committed(&self, reply: Reply) {
        *self.lock() = Completion::Committed(reply);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Completion> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Says how the current request's answer is made from the value its effect's write
/// transaction returns (a `T`), so that the transaction records that answer as it commits.
/// The handler must answer through the same function, so that a replay is byte for byte the
/// first answer. The first transaction returning a `T` uses it up; a request without a claim
/// ignores it.
pub fn reply_with<T: Any>(render: impl FnOnce(&T) -> Reply + Send + 'static) {
    let mut render = Some(render);
    let renderer: Renderer = Box::new(move |value: &dyn Any| {
        let value = value.downcast_ref::<T>()?;
        render.take().map(|r| r(value))
    });
    let _ = CLAIM.try_with(|claim| {
        if let Completion::Open(slot) = &mut *claim.lock() {
            *slot = Some(renderer);
        }
    });
}

/// For the store, before a write transaction commits: the claim in scope and the answer to
/// record with it, when the request said how a value like `value` renders.
pub fn render(value: &dyn Any) -> Option<(Arc<Claim>, Reply)> {
    let claim = CLAIM.try_with(Arc::clone).ok()?;
    let reply = match &mut *claim.lock() {
        Completion::Open(Some(render)) => render(value)?,
        _ => return None,
    };
    Some((claim, reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> ClaimId {
        ClaimId {
            scope: "admin".into(),
            key: "k".into(),
            token: "t".into(),
            fingerprint: None,
            learner: None,
        }
    }

    fn reply(body: &str) -> Reply {
        Reply {
            status: 201,
            headers: vec![],
            body: Bytes::from(body.to_string()),
        }
    }

    #[tokio::test]
    async fn a_renderer_answers_for_its_own_type_once_and_only_inside_a_claim() {
        reply_with(|n: &i64| reply(&n.to_string()));
        assert!(render(&1_i64).is_none(), "no claim in scope");
        let claim = Claim::new(id());
        claim
            .scope(async {
                reply_with(|n: &i64| reply(&n.to_string()));
                assert!(render(&"not an i64").is_none());
                let (c, r) = render(&7_i64).unwrap();
                assert_eq!(r.body, "7");
                c.committed(r);
                assert!(render(&8_i64).is_none(), "used up");
            })
            .await;
        assert_eq!(claim.committed_reply().unwrap().body, "7");
    }
}
