//! API keys: stored as SHA-256 hashes, looked up by hash.

use super::SqliteStore;
use crate::domain::Scope;
use crate::store::model::{ApiKey, KeyGrant, KeyRow, api_key, key_grant};
use crate::store::{StoreResult, from_micros, now_micros};

impl SqliteStore {
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
        Ok(rows.into_iter().map(api_key).collect::<Result<_, _>>()?)
    }

    pub async fn revoke_key(&self, id: i64) -> StoreResult<bool> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(now_micros())
                .bind(id)
                .execute(&self.write)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn live_key(&self, id: i64) -> StoreResult<Option<KeyGrant>> {
        let row: Option<(String, Option<i64>)> =
            sqlx::query_as("SELECT scope, rate FROM api_keys WHERE id = ? AND revoked_at IS NULL")
                .bind(id)
                .fetch_optional(&self.read)
                .await?;
        Ok(row.map(|(s, rate)| key_grant(id, &s, rate)).transpose()?)
    }

    pub async fn key_grant(&self, hash: &str) -> StoreResult<Option<KeyGrant>> {
        let row: Option<(i64, String, Option<i64>)> = sqlx::query_as(
            "SELECT id, scope, rate FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL",
        )
        .bind(hash)
        .fetch_optional(&self.read)
        .await?;
        Ok(row
            .map(|(id, s, rate)| key_grant(id, &s, rate))
            .transpose()?)
    }
}
