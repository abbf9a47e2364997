//! API keys: stored as SHA-256 hashes, looked up by hash.

use super::{Store, StoreResult, from_micros, now_micros};
use crate::domain::Scope;
use chrono::{DateTime, Utc};

/// An API key as listed (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    pub scope: Scope,
    /// The first characters of the key, to tell keys apart.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

type KeyRow = (i64, String, String, String, i64, Option<i64>);

fn key((id, name, scope, prefix, created_at, revoked_at): KeyRow) -> ApiKey {
    ApiKey {
        id,
        name,
        scope: Scope::parse(&scope).unwrap_or(Scope::Read),
        prefix,
        created_at: from_micros(created_at),
        revoked_at: revoked_at.map(from_micros),
    }
}

impl Store {
    pub async fn create_key(
        &self,
        name: &str,
        scope: Scope,
        hash: &str,
        prefix: &str,
    ) -> StoreResult<ApiKey> {
        let now = now_micros();
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO api_keys (name, scope, key_hash, prefix, created_at) VALUES (?, ?, ?, ?, ?)
             RETURNING id",
        )
        .bind(name)
        .bind(scope.as_str())
        .bind(hash)
        .bind(prefix)
        .bind(now)
        .fetch_one(&self.write)
        .await?;
        Ok(ApiKey {
            id,
            name: name.to_string(),
            scope,
            prefix: prefix.to_string(),
            created_at: from_micros(now),
            revoked_at: None,
        })
    }

    pub async fn list_keys(&self) -> StoreResult<Vec<ApiKey>> {
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT id, name, scope, prefix, created_at, revoked_at FROM api_keys ORDER BY id",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(key).collect())
    }

    /// Marks a key revoked; false if there is no such key or it was already revoked.
    pub async fn revoke_key(&self, id: i64) -> StoreResult<bool> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(now_micros())
                .bind(id)
                .execute(&self.write)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The scope of the live (not revoked) key with this hash.
    pub async fn key_scope(&self, hash: &str) -> StoreResult<Option<Scope>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT scope FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL")
                .bind(hash)
                .fetch_optional(&self.read)
                .await?;
        Ok(row.and_then(|(s,)| Scope::parse(&s).ok()))
    }
}
