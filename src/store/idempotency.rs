//! Idempotency records: a POST's claim on its `Idempotency-Key` and, once it is done, its
//! answer, kept for 24 hours. Written once for both databases; what a claim means and when a
//! record is replayed is decided above (`http/idempotency.rs`); the commit hook that records
//! an answer inside the effect's own transaction is `Store::writing`.

use super::sql::{Arg, Conn};
use super::{Store, StoreResult, decode_error, now_micros};
use crate::idempotency::{ClaimId, Reply};
use bytes::Bytes;
use sqlx::FromRow;
use std::time::Duration;

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// A claim to take: on a new key, or over a record nobody holds any more (its lease ran out
/// with the same request, or it expired).
#[derive(Debug)]
pub struct NewClaim<'a> {
    pub id: &'a ClaimId,
    /// `None` while a streamed body has not been read: any stale claim of the key may be
    /// taken over, and the body is compared once read.
    pub fingerprint: Option<&'a str>,
    pub learner: Option<&'a str>,
    /// How long the claim holds the key without being renewed or completed.
    pub lease: Duration,
    /// How long the record is kept, from now.
    pub retention: Duration,
}

/// A record someone else holds, as it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    pub fingerprint: Option<String>,
    /// `None` while its request is still running.
    pub reply: Option<Reply>,
}

/// What a claim came to.
#[derive(Debug)]
pub enum ClaimOutcome {
    Claimed,
    /// The key is held by a running request or answered already.
    Held(KeyRecord),
    /// The record changed under every attempt to claim or read it: someone else is busy
    /// with this key.
    Contended,
}

#[derive(FromRow)]
struct KeyRow {
    fingerprint: Option<String>,
    state: String,
    status: Option<i64>,
    headers: Option<String>,
    body: Option<Vec<u8>>,
}

impl TryFrom<KeyRow> for KeyRecord {
    type Error = sqlx::Error;

    fn try_from(r: KeyRow) -> sqlx::Result<Self> {
        let reply = match (r.state.as_str(), r.status, r.headers, r.body) {
            ("running", ..) => None,
            ("done", Some(status), Some(headers), Some(body)) => Some(Reply {
                status: u16::try_from(status).map_err(decode_error)?,
                headers: serde_json::from_str(&headers).map_err(decode_error)?,
                body: Bytes::from(body),
            }),
            (state, ..) => {
                return Err(decode_error(format!(
                    "an idempotency record in state `{state}` without its answer"
                )));
            }
        };
        Ok(Self {
            fingerprint: r.fingerprint,
            reply,
        })
    }
}

/// Takes the key unless a live claim or an unexpired answer holds it. A claim whose lease ran
/// out is taken over only by the same request (or one whose body is not known yet); a
/// different one gets the record back, to be told the key is reused.
const CLAIM: &str = "
    INSERT INTO idempotency_keys (scope, key, fingerprint, learner, state, claim, lease_until,
                                  created_at, expires_at)
    VALUES ($1, $2, $3, $4, 'running', $5, $6, $7, $8)
    ON CONFLICT (scope, key) DO UPDATE SET
        fingerprint = excluded.fingerprint, learner = excluded.learner, state = 'running',
        claim = excluded.claim, lease_until = excluded.lease_until, status = NULL,
        headers = NULL, body = NULL, created_at = excluded.created_at,
        expires_at = excluded.expires_at
    WHERE idempotency_keys.expires_at <= $7
       OR (idempotency_keys.state = 'running' AND idempotency_keys.lease_until <= $7
           AND (idempotency_keys.fingerprint IS NULL OR excluded.fingerprint IS NULL
                OR idempotency_keys.fingerprint = excluded.fingerprint))";

impl Conn<'_> {
    /// Records `reply` as the answer of the claim `id` (and the body's fingerprint, when it
    /// was only known at the end); false when the claim is no longer the record's.
    pub(super) async fn complete_key(
        &mut self,
        id: &ClaimId,
        reply: &Reply,
        fingerprint: Option<&str>,
    ) -> StoreResult<bool> {
        let headers = serde_json::to_string(&reply.headers).expect("header pairs serialize");
        let n = self
            .execute(
                "UPDATE idempotency_keys
                 SET state = 'done', status = $4, headers = $5, body = $6,
                     fingerprint = COALESCE($7, fingerprint)
                 WHERE scope = $1 AND key = $2 AND claim = $3 AND state = 'running'",
                &[
                    id.scope.as_str().into(),
                    id.key.as_str().into(),
                    id.token.as_str().into(),
                    i64::from(reply.status).into(),
                    headers.as_str().into(),
                    Arg::Bytes(&reply.body),
                    fingerprint.into(),
                ],
            )
            .await?;
        Ok(n == 1)
    }
}

impl Store {
    /// Claims the key for a request, or returns the record that holds it.
    pub async fn claim_key(&self, claim: &NewClaim<'_>) -> StoreResult<ClaimOutcome> {
        let id = claim.id;
        // A record can vanish between the claim and the read (its request failed and gave it
        // up, or it expired and was purged): then the key is free again, so try again.
        for _ in 0..3 {
            let now = now_micros();
            let claimed = self
                .write(async |c| {
                    Ok(c.execute(
                        CLAIM,
                        &[
                            id.scope.as_str().into(),
                            id.key.as_str().into(),
                            claim.fingerprint.into(),
                            claim.learner.into(),
                            id.token.as_str().into(),
                            now.saturating_add(micros(claim.lease)).into(),
                            now.into(),
                            now.saturating_add(micros(claim.retention)).into(),
                        ],
                    )
                    .await?)
                })
                .await?;
            if claimed == 1 {
                return Ok(ClaimOutcome::Claimed);
            }
            let held: Option<KeyRow> = self
                .reading(async |c| {
                    Ok(c.fetch_optional(
                        "SELECT fingerprint, state, status, headers, body FROM idempotency_keys
                         WHERE scope = $1 AND key = $2 AND expires_at > $3",
                        &[id.scope.as_str().into(), id.key.as_str().into(), now.into()],
                    )
                    .await?)
                })
                .await?;
            if let Some(row) = held {
                return Ok(ClaimOutcome::Held(row.try_into()?));
            }
        }
        Ok(ClaimOutcome::Contended)
    }

    /// Records the answer of a request whose effect was not one transaction (or that
    /// failed), in a transaction of its own; false when the claim is no longer the record's.
    pub async fn complete_key(
        &self,
        id: &ClaimId,
        reply: &Reply,
        fingerprint: Option<&str>,
    ) -> StoreResult<bool> {
        self.write(async |c| c.complete_key(id, reply, fingerprint).await)
            .await
    }

    /// Gives the key up, so that a retry runs again: the request failed in a way worth
    /// retrying, or was cut off. Nothing happens once the record is done.
    pub async fn release_key(&self, id: &ClaimId) -> StoreResult<()> {
        self.write(async |c| {
            c.execute(
                "DELETE FROM idempotency_keys
                 WHERE scope = $1 AND key = $2 AND claim = $3 AND state = 'running'",
                &[
                    id.scope.as_str().into(),
                    id.key.as_str().into(),
                    id.token.as_str().into(),
                ],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Extends a running claim's lease by `lease` from now (a long import still reading its
    /// body).
    pub async fn renew_key(&self, id: &ClaimId, lease: Duration) -> StoreResult<()> {
        let lease_until = now_micros().saturating_add(micros(lease));
        self.write(async |c| {
            c.execute(
                "UPDATE idempotency_keys SET lease_until = $4
                 WHERE scope = $1 AND key = $2 AND claim = $3 AND state = 'running'",
                &[
                    id.scope.as_str().into(),
                    id.key.as_str().into(),
                    id.token.as_str().into(),
                    lease_until.into(),
                ],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Deletes the records that expired; returns how many.
    pub async fn purge_expired_keys(&self) -> StoreResult<u64> {
        let now = now_micros();
        self.write(async |c| {
            Ok(c.execute(
                "DELETE FROM idempotency_keys WHERE expires_at <= $1",
                &[now.into()],
            )
            .await?)
        })
        .await
    }
}
