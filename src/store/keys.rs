//! API keys: stored as SHA-256 hashes, looked up by hash. Every statement here is one both
//! databases accept, so neither backend has a file of its own for keys.

use super::model::{ApiKey, GrantRow, KeyGrant, KeyRow};
use super::sql::Arg;
use super::{Store, StoreResult, from_micros, now_micros};
use crate::domain::Id;
use crate::domain::keys::NewKey;
use chrono::{DateTime, Utc};

/// `SELECT` of a listed key's columns, in [`KeyRow`]'s order: a literal, as statements are.
macro_rules! select_keys {
    ($($rest:literal)*) => {
        concat!(
            "SELECT id, name, scope, prefix, rate, created_at, last_used_at, expires_at, \
             revoked_at FROM api_keys ",
            $($rest),*
        )
    };
}

impl Store {
    pub async fn create_key(&self, key: &NewKey, hash: &str, prefix: &str) -> StoreResult<ApiKey> {
        let now = now_micros();
        let rate_per_minute = key.rate.map(|r| r.per_minute());
        let expires_at = key.expires_at.map(|t| t.timestamp_micros());
        let (id,): (i64,) = self
            .write(async |c| {
                Ok(c.fetch_one(
                    "INSERT INTO api_keys
                         (name, scope, key_hash, prefix, created_at, rate, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                    &[
                        key.name.as_str().into(),
                        key.scope.as_str().into(),
                        hash.into(),
                        prefix.into(),
                        now.into(),
                        rate_per_minute.map(i64::from).into(),
                        expires_at.into(),
                    ],
                )
                .await?)
            })
            .await?;
        // As it will read back: times in whole microseconds.
        Ok(ApiKey {
            id,
            name: key.name.as_str().to_string(),
            scope: key.scope,
            prefix: prefix.to_string(),
            rate_per_minute,
            created_at: from_micros(now),
            last_used_at: None,
            expires_at: expires_at.map(from_micros),
            revoked_at: None,
        })
    }

    /// Every key, revoked and expired ones too, by id.
    pub async fn list_keys(&self) -> StoreResult<Vec<ApiKey>> {
        self.reading(async |c| {
            let rows: Vec<KeyRow> = c.fetch_all(select_keys!("ORDER BY id"), &[]).await?;
            Ok(rows
                .into_iter()
                .map(ApiKey::try_from)
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    /// The key with this id, whatever its state.
    pub async fn key(&self, id: Id) -> StoreResult<Option<ApiKey>> {
        self.reading(async |c| {
            let row: Option<KeyRow> = c
                .fetch_optional(select_keys!("WHERE id = $1"), &[id.into()])
                .await?;
            Ok(row.map(ApiKey::try_from).transpose()?)
        })
        .await
    }

    /// Marks a key revoked; false if there is no such key or it was already revoked. An
    /// expired key can still be revoked, so that its listing says it was.
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

    /// Notes that the key was used at `at` (never moving the time back). A lost write only
    /// makes the time older, so it does not wait for the disk.
    pub async fn record_key_use(&self, id: i64, at: DateTime<Utc>) -> StoreResult<()> {
        let at = at.timestamp_micros();
        self.write_unflushed(async |c| {
            c.execute(
                "UPDATE api_keys SET last_used_at = $1
                 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $1)",
                &[at.into(), id.into()],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// The live key with this id: neither revoked nor expired.
    pub async fn live_key(&self, id: Id) -> StoreResult<Option<KeyGrant>> {
        self.grant(
            "SELECT id, scope, rate FROM api_keys
             WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
            id.into(),
        )
        .await
    }

    /// The live key with this hash: neither revoked nor expired.
    pub async fn key_grant(&self, hash: &str) -> StoreResult<Option<KeyGrant>> {
        self.grant(
            "SELECT id, scope, rate FROM api_keys
             WHERE key_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
            hash.into(),
        )
        .await
    }

    async fn grant(&self, sql: &'static str, by: Arg<'_>) -> StoreResult<Option<KeyGrant>> {
        self.reading(async |c| {
            let row: Option<GrantRow> = c.fetch_optional(sql, &[by, now_micros().into()]).await?;
            Ok(row.map(KeyGrant::try_from).transpose()?)
        })
        .await
    }
}
