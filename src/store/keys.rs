//! API keys: stored as SHA-256 hashes, looked up by hash. Every statement here is one both
//! databases accept, so neither backend has a file of its own for keys.

use super::model::{ApiKey, GrantRow, KeyGrant, KeyRow};
use super::sql::Arg;
use super::{Store, StoreResult, from_micros, now_micros};
use crate::domain::{Id, Scope};

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
        let (id,): (i64,) = self
            .write(async |c| {
                Ok(c.fetch_one(
                    "INSERT INTO api_keys (name, scope, key_hash, prefix, created_at, rate)
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    &[
                        name.into(),
                        scope.as_str().into(),
                        hash.into(),
                        prefix.into(),
                        now.into(),
                        rate_per_minute.map(i64::from).into(),
                    ],
                )
                .await?)
            })
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
        self.reading(async |c| {
            let rows: Vec<KeyRow> = c
                .fetch_all(
                    "SELECT id, name, scope, prefix, rate, created_at, revoked_at FROM api_keys
                     ORDER BY id",
                    &[],
                )
                .await?;
            Ok(rows
                .into_iter()
                .map(ApiKey::try_from)
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Marks a key revoked; false if there is no such key or it was already revoked.
    pub async fn revoke_key(&self, id: Id) -> StoreResult<bool> {
        self.write(async |c| {
            let n = c
                .execute(
                    "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                    &[now_micros().into(), id.into()],
                )
                .await?;
            Ok(n == 1)
        })
        .await
    }

    /// The live (not revoked) key with this id.
    pub async fn live_key(&self, id: Id) -> StoreResult<Option<KeyGrant>> {
        self.grant(
            "SELECT id, scope, rate FROM api_keys WHERE id = $1 AND revoked_at IS NULL",
            id.into(),
        )
        .await
    }

    /// The live (not revoked) key with this hash.
    pub async fn key_grant(&self, hash: &str) -> StoreResult<Option<KeyGrant>> {
        self.grant(
            "SELECT id, scope, rate FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
            hash.into(),
        )
        .await
    }

    async fn grant(&self, sql: &'static str, by: Arg<'_>) -> StoreResult<Option<KeyGrant>> {
        self.reading(async |c| {
            let row: Option<GrantRow> = c.fetch_optional(sql, &[by]).await?;
            Ok(row.map(KeyGrant::try_from).transpose()?)
        })
        .await
    }
}
