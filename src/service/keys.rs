//! Who is calling: API keys (created once, stored as hashes, revocable, optionally expiring),
//! the `KB_ADMIN_KEY`, and signed learner tokens that act for one learner.
//!
//! Managing keys (create, list, revoke) works on the store alone, so that `kb keys` can run
//! beside a server holding the search index; `/api/v1/keys` calls the same functions through
//! [`Service`]. A key's use is noted to the minute (`KeyUse`), so that a key in use costs one
//! write a minute rather than one per request.

use super::{Error, Result, Service};
use crate::domain::keys::NewKey;
use crate::domain::{Id, LearnerId, Rate, Scope};
use crate::secret::{random_token, sha256, sha256_hex};
use crate::store::{ApiKey, KeyGrant, Store};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Mutex;
use subtle::ConstantTimeEq;

/// Learner tokens start with this, API keys with `kb_`.
const LEARNER_TOKEN_PREFIX: &str = "kbl_";
/// How long a learner token lives unless asked otherwise, and at most.
pub const LEARNER_TOKEN_DAYS: i64 = 30;
pub const LEARNER_TOKEN_MAX_DAYS: i64 = 365;
/// How stale a key's `last_used_at` may be: a key's use is written at most this often.
pub const KEY_USE_RESOLUTION_SECS: i64 = 60;

/// Who a request's credential names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CallerId {
    AdminKey,
    Key(i64),
    Learner(String),
}

/// What a presented credential grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: CallerId,
    pub scope: Scope,
    /// The caller's own quota, when it has one.
    pub rate: Option<Rate>,
    /// For a learner token: the one learner it acts for.
    pub learner: Option<LearnerId>,
}

impl From<KeyGrant> for Principal {
    fn from(k: KeyGrant) -> Self {
        Principal {
            id: CallerId::Key(k.id),
            scope: k.scope,
            rate: k.rate_per_minute.map(|units| Rate {
                units,
                window_secs: 60,
            }),
            learner: None,
        }
    }
}

impl Principal {
    /// Whether this caller may read and write `learner`'s reviews.
    pub fn acts_for(&self, learner: &LearnerId) -> bool {
        self.scope.grants(Scope::Learners) || self.learner.as_ref() == Some(learner)
    }
}

/// Creates a key; the returned string is the only time the key exists outside its holder.
pub async fn create_key(store: &Store, new: &NewKey) -> Result<(String, ApiKey)> {
    let key = format!("kb_{}", random_token());
    let stored = store.create_key(new, &sha256_hex(&key), &key[..10]).await?;
    Ok((key, stored))
}

/// Every key, revoked and expired ones too, by id; never the keys themselves.
pub async fn list_keys(store: &Store) -> Result<Vec<ApiKey>> {
    Ok(store.list_keys().await?)
}

/// One key, whatever its state.
pub async fn key(store: &Store, id: i64) -> Result<ApiKey> {
    let found = match Id::new(id) {
        Some(id) => store.key(id).await?,
        None => None,
    };
    found.ok_or(Error::KeyNotFound(id))
}

/// Revokes a key; an error when there is no such key or it is revoked already.
pub async fn revoke_key(store: &Store, id: i64) -> Result<()> {
    let revoked = match Id::new(id) {
        Some(key) => store.revoke_key(key).await?,
        None => false,
    };
    if revoked {
        return Ok(());
    }
    // Said apart for whoever revokes by hand: a typo, or a second try.
    match key(store, id).await? {
        k if k.revoked_at.is_some() => Err(Error::KeyRevoked(id)),
        _ => Err(Error::KeyNotFound(id)),
    }
}

/// When this process last wrote each key's use. Each replica keeps its own, so a key in use
/// costs each replica one write a minute; a restart forgets it and writes at the next use.
#[derive(Debug, Default)]
pub(super) struct KeyUse(Mutex<HashMap<i64, DateTime<Utc>>>);

impl KeyUse {
    /// Whether a use of `key` at `now` is to be written: none has been in the last minute.
    fn due(&self, key: i64, now: DateTime<Utc>) -> bool {
        let mut written = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match written.get(&key) {
            Some(at) if now - *at < Duration::seconds(KEY_USE_RESOLUTION_SECS) => false,
            _ => {
                written.insert(key, now);
                true
            }
        }
    }
}

#[derive(Serialize, Deserialize)]
struct LearnerClaims {
    #[serde(rename = "l")]
    learner: String,
    /// Expiry, seconds since the epoch.
    #[serde(rename = "e")]
    expires: i64,
    /// The key that issued the token; absent for `KB_ADMIN_KEY`. A token lives only as long
    /// as its issuer does, and spends its issuer's quota.
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    issuer: Option<i64>,
    /// When it was issued, microseconds since the epoch: an erasure of the learner refuses the
    /// tokens issued before it. Tokens from before this field read as 0.
    #[serde(rename = "i", default)]
    issued: i64,
}

/// The keyed hash an erasure leaves of `learner`, under the learner-token key `key`.
fn erasure_mark_with(key: &[u8], learner: &LearnerId) -> String {
    let mut m = mac(key);
    m.update(b"erased:");
    m.update(learner.as_str().as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// Erases a learner with only the store at hand (`kb learners delete`, beside a running
/// server): the same as `DELETE /api/v1/learners/{learner}`.
pub async fn erase_learner(store: &Store, learner: &LearnerId) -> Result<u64> {
    let key = store.secret("learner-token").await?;
    Ok(store
        .erase_learner(learner.as_str(), &erasure_mark_with(&key, learner))
        .await?)
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length")
}

impl Service {
    /// Creates a key, as `kb keys create` does; the string is the key, shown only now.
    #[tracing::instrument(skip_all, fields(scope = new.scope.as_str()))]
    pub async fn create_key(&self, new: &NewKey) -> Result<(String, ApiKey)> {
        create_key(&self.store, new).await
    }

    /// Every key, as `kb keys list` shows them.
    pub async fn keys(&self) -> Result<Vec<ApiKey>> {
        list_keys(&self.store).await
    }

    pub async fn key(&self, id: i64) -> Result<ApiKey> {
        key(&self.store, id).await
    }

    /// Revokes a key, as `kb keys revoke` does: the next request with it is refused.
    #[tracing::instrument(skip(self))]
    pub async fn revoke_key(&self, id: i64) -> Result<()> {
        revoke_key(&self.store, id).await
    }

    /// Notes a use of the stored key `id`: written in the background, at most once a minute
    /// per key, so the request neither waits for it nor costs a write.
    fn note_key_use(&self, id: i64) {
        let now = Utc::now();
        if !self.key_use.due(id, now) {
            return;
        }
        let store = self.store.clone();
        tokio::spawn(async move {
            // Only `last_used_at` grows staler; the next use after a minute tries again.
            if let Err(e) = store.record_key_use(id, now).await {
                tracing::debug!(key = id, error = %e, "could not note a key's use");
            }
        });
    }

    /// Accepts `key` with admin scope (from `KB_ADMIN_KEY`) in addition to stored keys.
    pub fn with_admin_key(mut self, key: Option<&str>) -> Self {
        self.admin_key_hash = key.filter(|k| !k.is_empty()).map(sha256);
        self
    }

    /// What an erasure leaves of a learner: a hash of their id keyed with the token key, by
    /// which their old tokens are recognised without their id being kept.
    pub(super) async fn erasure_mark(&self, learner: &LearnerId) -> Result<String> {
        Ok(erasure_mark_with(&self.learner_token_key().await?, learner))
    }

    async fn learner_token_key(&self) -> Result<Vec<u8>> {
        let key = self
            .learner_token_key
            .get_or_try_init(|| async { self.store.secret("learner-token").await })
            .await?;
        Ok(key.clone())
    }

    /// A token that acts for `learner` (and reads) until it expires, in `days` days, or until
    /// the key that issued it is revoked.
    #[tracing::instrument(skip(self, learner, issuer), fields(learner = learner.as_str()))]
    pub async fn issue_learner_token(
        &self,
        learner: &LearnerId,
        days: i64,
        issuer: &Principal,
    ) -> Result<(String, DateTime<Utc>)> {
        let issuer = match &issuer.id {
            CallerId::Key(id) => Some(*id),
            CallerId::AdminKey => None,
            CallerId::Learner(_) => {
                return Err(Error::Internal(anyhow::anyhow!(
                    "a learner token cannot issue tokens"
                )));
            }
        };
        let expires_at = Utc::now() + Duration::days(days.clamp(1, LEARNER_TOKEN_MAX_DAYS));
        let claims = LearnerClaims {
            learner: learner.as_str().to_string(),
            expires: expires_at.timestamp(),
            issuer,
            issued: Utc::now().timestamp_micros(),
        };
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("claims serialize"));
        let mut m = mac(&self.learner_token_key().await?);
        m.update(payload.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
        Ok((format!("{LEARNER_TOKEN_PREFIX}{payload}.{sig}"), expires_at))
    }

    /// The learner a token acts for and its issuer, if it was signed here, is unaltered and
    /// unexpired, and its issuer still holds the `learners` scope.
    async fn verify_learner_token(&self, token: &str) -> Result<Option<(LearnerId, Principal)>> {
        let Some((payload, sig)) = token
            .strip_prefix(LEARNER_TOKEN_PREFIX)
            .and_then(|t| t.split_once('.'))
        else {
            return Ok(None);
        };
        let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else {
            return Ok(None);
        };
        let mut m = mac(&self.learner_token_key().await?);
        m.update(payload.as_bytes());
        if m.verify_slice(&sig).is_err() {
            return Ok(None);
        }
        let claims: Option<LearnerClaims> = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let Some(claims) = claims.filter(|c| c.expires > Utc::now().timestamp()) else {
            return Ok(None);
        };
        let Ok(learner) = LearnerId::parse(&claims.learner) else {
            return Ok(None);
        };
        let erased = self
            .store
            .learner_erased_at(&self.erasure_mark(&learner).await?)
            .await?;
        if erased.is_some_and(|at| claims.issued <= at) {
            return Ok(None);
        }
        let issuer = match claims.issuer {
            None if self.admin_key_hash.is_some() => Principal {
                id: CallerId::AdminKey,
                scope: Scope::Admin,
                rate: None,
                learner: None,
            },
            None => return Ok(None),
            Some(id) => match Id::new(id) {
                Some(id) => match self.store.live_key(id).await? {
                    Some(k) if k.scope.grants(Scope::Learners) => {
                        // The issuer's authority is in use: revoking it would stop this token.
                        self.note_key_use(k.id);
                        Principal::from(k)
                    }
                    _ => return Ok(None),
                },
                None => return Ok(None),
            },
        };
        Ok(Some((learner, issuer)))
    }

    /// What a presented credential grants, or `None` for one that is unknown, revoked,
    /// expired or altered.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<Principal>> {
        if presented.starts_with(LEARNER_TOKEN_PREFIX) {
            // The token reads and acts for its learner; its requests count against its
            // issuer's quota, so an app's users share the app's limit.
            return Ok(self
                .verify_learner_token(presented)
                .await?
                .map(|(learner, issuer)| Principal {
                    id: issuer.id,
                    scope: Scope::Read,
                    rate: issuer.rate,
                    learner: Some(learner),
                }));
        }
        let hash = sha256(presented);
        if let Some(admin) = &self.admin_key_hash
            && bool::from(hash.ct_eq(admin))
        {
            return Ok(Some(Principal {
                id: CallerId::AdminKey,
                scope: Scope::Admin,
                rate: None,
                learner: None,
            }));
        }
        // Looking a key up by its SHA-256 reveals nothing about the key through timing.
        let grant = self.store.key_grant(&hex::encode(hash)).await?;
        if let Some(k) = &grant {
            self.note_key_use(k.id);
        }
        Ok(grant.map(Principal::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keys_use_is_written_at_most_once_a_minute() {
        let uses = KeyUse::default();
        let t = Utc::now();
        assert!(uses.due(1, t));
        assert!(!uses.due(1, t + Duration::seconds(59)));
        assert!(uses.due(2, t), "each key on its own");
        assert!(uses.due(1, t + Duration::seconds(60)));
        assert!(!uses.due(1, t + Duration::seconds(61)));
    }
}
