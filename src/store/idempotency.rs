//! Idempotency records: a POST's claim on its `Idempotency-Key` and, once it is done, its
//! answer, kept for 24 hours. What a claim means and when a record is replayed is decided
//! above (`http/idempotency.rs`); the commit hook that records an answer inside the effect's
//! own transaction is `Store::writing`.
//!
//! Where a running request's claim lives is the one thing the databases do their own way.
//! On PostgreSQL, which several kb processes share, a claim is a `running` row, taken by one
//! atomic upsert, with a lease that a crashed process's claim runs out of. A SQLite data
//! directory is served by one kb process only (its search index is locked), so there claims
//! are held in that process's memory ([`LocalClaims`]): a claim costs no write on the one
//! writer connection, and a crash leaves none behind. Either way the answer is recorded by the
//! same statement ([`COMPLETE`]), which inserts the record or completes the claimed row.

use super::sql::{Arg, Conn};
use super::{Database, Store, StoreResult, decode_error, now_micros};
use crate::idempotency::{ClaimId, RETENTION, Reply};
use bytes::Bytes;
use sqlx::FromRow;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// A claim to take.
#[derive(Debug)]
pub struct NewClaim<'a> {
    pub id: &'a ClaimId,
    /// How long the claim holds the key without being renewed or completed (PostgreSQL).
    pub lease: Duration,
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
    lease_until: i64,
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

/// When a record no longer holds its key for another claim: it expired, or it is the claim of
/// a request whose lease ran out, made for the same request (or for one whose body was not
/// read yet, so it cannot be told apart). `$6` is now. Both statements below end with it, and
/// [`LocalClaims::claim`] applies it to a row read.
macro_rules! free_for {
    () => {
        "idempotency_keys.expires_at <= $6
         OR (idempotency_keys.state = 'running' AND idempotency_keys.lease_until <= $6
             AND (idempotency_keys.fingerprint IS NULL OR excluded.fingerprint IS NULL
                  OR idempotency_keys.fingerprint = excluded.fingerprint))"
    };
}

/// Takes the key for a running request (PostgreSQL): a new row, or one `free_for!` frees for it.
const CLAIM: &str = concat!(
    "INSERT INTO idempotency_keys (scope, key, fingerprint, learner, state, claim, lease_until,
                                   created_at, expires_at)
     VALUES ($1, $2, $3, $4, 'running', $5, $6 + $7, $6, $6 + $8)
     ON CONFLICT (scope, key) DO UPDATE SET
         fingerprint = excluded.fingerprint, learner = excluded.learner, state = 'running',
         claim = excluded.claim, lease_until = excluded.lease_until, status = NULL,
         headers = NULL, body = NULL, created_at = excluded.created_at,
         expires_at = excluded.expires_at
     WHERE ",
    free_for!()
);

/// Records a request's answer: completes the row its claim holds (PostgreSQL), or inserts the
/// record (SQLite), or takes over a row `free_for!` frees for it; changes nothing when another claim
/// or answer holds the key.
const COMPLETE: &str = concat!(
    "INSERT INTO idempotency_keys (scope, key, fingerprint, learner, state, claim, lease_until,
                                   status, headers, body, created_at, expires_at)
     VALUES ($1, $2, $3, $4, 'done', $5, $6, $7, $8, $9, $6, $6 + $10)
     ON CONFLICT (scope, key) DO UPDATE SET
         fingerprint = excluded.fingerprint, learner = excluded.learner, state = 'done',
         claim = excluded.claim, lease_until = excluded.lease_until, status = excluded.status,
         headers = excluded.headers, body = excluded.body, created_at = excluded.created_at,
         expires_at = excluded.expires_at
     WHERE (idempotency_keys.claim = excluded.claim AND idempotency_keys.state = 'running')
        OR ",
    free_for!()
);

impl Conn<'_> {
    /// Records `reply` as the answer of the claim `id`, with the request's fingerprint (or
    /// `fingerprint`, known only once a streamed body was read); false when another claim or
    /// answer holds the key.
    pub(super) async fn complete_key(
        &mut self,
        id: &ClaimId,
        reply: &Reply,
        fingerprint: Option<&str>,
    ) -> StoreResult<bool> {
        let headers = serde_json::to_string(&reply.headers).expect("header pairs serialize");
        let n = self
            .execute(
                COMPLETE,
                &[
                    id.scope.as_str().into(),
                    id.key.as_str().into(),
                    fingerprint.or(id.fingerprint.as_deref()).into(),
                    id.learner.as_deref().into(),
                    id.token.as_str().into(),
                    now_micros().into(),
                    i64::from(reply.status).into(),
                    headers.as_str().into(),
                    Arg::Bytes(&reply.body),
                    micros(RETENTION).into(),
                ],
            )
            .await?;
        Ok(n == 1)
    }

    /// The record of a key, unless it expired.
    async fn key_row(&mut self, id: &ClaimId, now: i64) -> StoreResult<Option<KeyRow>> {
        Ok(self
            .fetch_optional(
                "SELECT fingerprint, state, lease_until, status, headers, body
                 FROM idempotency_keys WHERE scope = $1 AND key = $2 AND expires_at > $3",
                &[id.scope.as_str().into(), id.key.as_str().into(), now.into()],
            )
            .await?)
    }
}

/// The claims of the requests this process runs, where it is the only one to write its
/// database (SQLite). A claim here holds its key from before the record is read until the
/// record is committed or the claim given up, so a request that claims the key after it finds
/// the record.
#[derive(Debug, Default)]
pub(crate) struct LocalClaims(Mutex<HashMap<(String, String), Local>>);

#[derive(Debug)]
struct Local {
    token: String,
    fingerprint: Option<String>,
}

impl LocalClaims {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Local>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the key unless a running request of this process holds it; the record is read
    /// after, by the caller.
    fn take(&self, id: &ClaimId) -> Option<KeyRecord> {
        let mut held = self.lock();
        let slot = (id.scope.clone(), id.key.clone());
        if let Some(other) = held.get(&slot) {
            return Some(KeyRecord {
                fingerprint: other.fingerprint.clone(),
                reply: None,
            });
        }
        held.insert(
            slot,
            Local {
                token: id.token.clone(),
                fingerprint: id.fingerprint.clone(),
            },
        );
        None
    }

    /// Ends the claim `id`, if it is still this one.
    fn end(&self, id: &ClaimId) {
        let mut held = self.lock();
        let slot = (id.scope.clone(), id.key.clone());
        if held.get(&slot).is_some_and(|c| c.token == id.token) {
            held.remove(&slot);
        }
    }
}

/// Whether a row read holds its key against the claim `id`: the rule of `free_for!`.
fn holds(row: &KeyRow, id: &ClaimId, now: i64) -> bool {
    let same_request = match (&row.fingerprint, &id.fingerprint) {
        (Some(theirs), Some(ours)) => theirs == ours,
        _ => true,
    };
    !(row.state == "running" && row.lease_until <= now && same_request)
}

impl Store {
    fn local_claims(&self) -> Option<&LocalClaims> {
        match &*self.backend {
            Database::Sqlite(s) => Some(&s.claims),
            Database::Postgres(_) => None,
        }
    }

    /// Claims the key for a request, or returns the record that holds it.
    pub async fn claim_key(&self, claim: &NewClaim<'_>) -> StoreResult<ClaimOutcome> {
        match self.local_claims() {
            Some(local) => self.claim_locally(local, claim.id).await,
            None => self.claim_in_database(claim).await,
        }
    }

    async fn claim_locally(&self, local: &LocalClaims, id: &ClaimId) -> StoreResult<ClaimOutcome> {
        if let Some(running) = local.take(id) {
            return Ok(ClaimOutcome::Held(running));
        }
        let now = now_micros();
        let row = self.reading(async |c| c.key_row(id, now).await).await;
        match row {
            Ok(Some(row)) if holds(&row, id, now) => {
                local.end(id);
                Ok(ClaimOutcome::Held(row.try_into()?))
            }
            Ok(_) => Ok(ClaimOutcome::Claimed),
            Err(e) => {
                local.end(id);
                Err(e)
            }
        }
    }

    async fn claim_in_database(&self, claim: &NewClaim<'_>) -> StoreResult<ClaimOutcome> {
        let id = claim.id;
        // A record can vanish between the claim and the read (its request failed and gave it
        // up, or it expired and was purged): then the key is free again, so try again.
        for _ in 0..3 {
            let now = now_micros();
            // A claim the database loses in a crash is harmless: the effect's transaction
            // records its answer only where no other claim or answer holds the key.
            let claimed = self
                .write_unflushed(async |c| {
                    Ok(c.execute(
                        CLAIM,
                        &[
                            id.scope.as_str().into(),
                            id.key.as_str().into(),
                            id.fingerprint.as_deref().into(),
                            id.learner.as_deref().into(),
                            id.token.as_str().into(),
                            now.into(),
                            micros(claim.lease).into(),
                            micros(RETENTION).into(),
                        ],
                    )
                    .await?)
                })
                .await?;
            if claimed == 1 {
                return Ok(ClaimOutcome::Claimed);
            }
            if let Some(row) = self.reading(async |c| c.key_row(id, now).await).await? {
                return Ok(ClaimOutcome::Held(row.try_into()?));
            }
        }
        Ok(ClaimOutcome::Contended)
    }

    /// Records the answer of a request whose effect did not record it, in a transaction of
    /// its own; false when another claim or answer holds the key.
    pub async fn complete_key(
        &self,
        id: &ClaimId,
        reply: &Reply,
        fingerprint: Option<&str>,
    ) -> StoreResult<bool> {
        self.write(async |c| c.complete_key(id, reply, fingerprint).await)
            .await
    }

    /// Ends a claim whose answer is recorded.
    pub fn finish_key(&self, id: &ClaimId) {
        if let Some(local) = self.local_claims() {
            local.end(id);
        }
    }

    /// Gives the key up, so that a retry runs again: the request failed in a way worth
    /// retrying, or was cut off. Nothing happens once the record is done.
    pub async fn release_key(&self, id: &ClaimId) -> StoreResult<()> {
        if let Some(local) = self.local_claims() {
            local.end(id);
            return Ok(());
        }
        // Lost in a crash of the database, the claim stays until its lease ends.
        self.write_unflushed(async |c| {
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
    /// body). A claim held in memory has no lease: it lasts as long as its request.
    pub async fn renew_key(&self, id: &ClaimId, lease: Duration) -> StoreResult<()> {
        if self.local_claims().is_some() {
            return Ok(());
        }
        let lease_until = now_micros().saturating_add(micros(lease));
        self.write_unflushed(async |c| {
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
