//! API keys: creation (the key is returned once), listing, revocation, and authentication.

use super::{Error, Result, Service};
use crate::domain::{FieldErrors, Scope};
use crate::secret::{random_token, sha256, sha256_hex};
use crate::store::{ApiKey, Store};
use subtle::ConstantTimeEq;

/// Creates a key; the returned string is the only time the key exists outside its holder.
/// Works on the store alone, so `kb keys` can run while a server holds the search index.
pub async fn create_key(store: &Store, name: &str, scope: Scope) -> Result<(String, ApiKey)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(FieldErrors::one("name", "must be 1 to 100 characters").into());
    }
    let key = format!("kb_{}", random_token());
    let stored = store
        .create_key(name, scope, &sha256_hex(&key), &key[..10])
        .await?;
    Ok((key, stored))
}

/// Revokes a key; an error when there is no live key with that id.
pub async fn revoke_key(store: &Store, id: i64) -> Result<()> {
    if store.revoke_key(id).await? {
        Ok(())
    } else {
        Err(Error::KeyNotFound(id))
    }
}

impl Service {
    /// Accepts `key` with admin scope (from `KB_ADMIN_KEY`) in addition to stored keys.
    pub fn with_admin_key(mut self, key: Option<&str>) -> Self {
        self.admin_key_hash = key.filter(|k| !k.is_empty()).map(sha256);
        self
    }

    /// The scope a presented key grants, or `None` for a key that is unknown or revoked.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<Scope>> {
        let hash = sha256(presented);
        if let Some(admin) = &self.admin_key_hash
            && bool::from(hash.ct_eq(admin))
        {
            return Ok(Some(Scope::Admin));
        }
        // Looking a key up by its SHA-256 reveals nothing about the key through timing.
        Ok(self.store.key_scope(&hex::encode(hash)).await?)
    }
}
