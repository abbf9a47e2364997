//! API keys: creation (the key is returned once), listing, revocation, and authentication.

use super::Service;
use crate::domain::Scope;
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::store::{ApiKey, Store};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates a key; the returned string is the only time the key exists outside its holder.
/// Works on the store alone, so `kb keys` can run while a server holds the search index.
pub async fn create_key(store: &Store, name: &str, scope: Scope) -> ApiResult<(String, ApiKey)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::field("name", "must be 1 to 100 characters"));
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal_msg(e.to_string()))?;
    let key = format!("kb_{}", URL_SAFE_NO_PAD.encode(bytes));
    let stored = store
        .create_key(name, scope, &hex(&sha256(&key)), &key[..10])
        .await?;
    Ok((key, stored))
}

/// Revokes a key; 404 when there is no live key with that id.
pub async fn revoke_key(store: &Store, id: i64) -> ApiResult<()> {
    if store.revoke_key(id).await? {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no live key with id {id}"),
        ))
    }
}

impl Service {
    /// Accepts `key` with admin scope (from `KB_ADMIN_KEY`) in addition to stored keys.
    pub fn with_admin_key(mut self, key: Option<&str>) -> Self {
        self.admin_key_hash = key.filter(|k| !k.is_empty()).map(sha256);
        self
    }

    /// The scope a presented key grants, or `None` for a key that is unknown or revoked.
    pub async fn authenticate(&self, presented: &str) -> ApiResult<Option<Scope>> {
        let hash = sha256(presented);
        if let Some(admin) = &self.admin_key_hash
            && bool::from(hash.ct_eq(admin))
        {
            return Ok(Some(Scope::Admin));
        }
        // Looking a key up by its SHA-256 reveals nothing about the key through timing.
        Ok(self.store.key_scope(&hex(&hash)).await?)
    }
}
