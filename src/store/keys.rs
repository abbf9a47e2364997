//! API keys: stored as SHA-256 hashes, looked up by hash.

use super::{Store, StoreResult, decode_error, from_micros, now_micros};
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
    /// Request units per minute; `None`: the server's default for keys.
    pub rate_per_minute: Option<u32>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A live key as a request presents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyGrant {
    pub id: i64,
    pub scope: Scope,
    pub rate_per_minute: Option<u32>,
}

type KeyRow = (i64, String, String, String, Option<i64>, i64, Option<i64>);

fn scope(raw: &str) -> sqlx::Result<Scope> {
    Scope::parse(raw).map_err(decode_error)
}

fn key((id, name, s, prefix, rate, created_at, revoked_at): KeyRow) -> sqlx::Result<ApiKey> {
    Ok(ApiKey {
        id,
        name,
        scope: scope(&s)?,
        prefix,
        rate_per_minute: rate.map(|r| r as u32),
        created_at: from_micros(created_at),
        revoked_at: revoked_at.map(from_micros),
    })
}

impl Store {
    pub async fn create_key(
        &self,
        name: &str,
        scope: Scope,
        rate_per_minute: Option<u32>,
        hash: &str,
        prefix: &str,
    ) -> StoreResult<ApiKey> {
        let now = now_micros();
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO api_keys (name, scope, key_hash, prefix, created_at, rate)
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(name)
        .bind(scope.as_str())
        .bind(hash)
        .bind(prefix)
        .bind(now)
        .bind(rate_per_minute.map(i64::from))
        .fetch_one(&self.write)
        .await?;
        Ok(ApiKey {
            id,
            name: name.to_string(),
            scope,
            prefix: prefix.to_string(),
            rate_per_minute,
            created_at: from_micros(now),
            revoked_at: None,
        })
    }

    pub async fn list_keys(&self) -> StoreResult<Vec<ApiKey>> {
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT id, name, scope, prefix, rate, created_at, revoked_at FROM api_keys ORDER BY id",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(key).collect::<Result<_, _>>()?)
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

    /// The live (not revoked) key with this id.
    pub async fn live_key(&self, id: i64) -> StoreResult<Option<KeyGrant>> {
        let row: Option<(String, Option<i64>)> =
            sqlx::query_as("SELECT scope, rate FROM api_keys WHERE id = ? AND revoked_at IS NULL")
                .bind(id)
                .fetch_optional(&self.read)
                .await?;
        Ok(match row {
            Some((s, rate)) => Some(KeyGrant {
                id,
                scope: scope(&s)?,
                rate_per_minute: rate.map(|r| r as u32),
            }),
            None => None,
        })
    }

    /// The live (not revoked) key with this hash.
    pub async fn key_grant(&self, hash: &str) -> StoreResult<Option<KeyGrant>> {
        let row: Option<(i64, String, Option<i64>)> = sqlx::query_as(
            "SELECT id, scope, rate FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL",
        )
        .bind(hash)
        .fetch_optional(&self.read)
        .await?;
        Ok(match row {
            Some((id, s, rate)) => Some(KeyGrant {
                id,
                scope: scope(&s)?,
                rate_per_minute: rate.map(|r| r as u32),
            }),
            None => None,
        })
    }
}
