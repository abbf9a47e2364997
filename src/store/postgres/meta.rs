//! Categories and tags, API keys, the synonym table, secrets and the `meta` facts: the
//! PostgreSQL spelling of `store/sqlite/{categories,keys,synonyms,meta}.rs`.

use super::{PgStore, SYNONYMS_LOCK};
use crate::domain::{Category, CategoryName, Precondition, Scope, Slug, SynonymTable, TagCount};
use crate::store::model::{
    ApiKey, KeyGrant, KeyRow, api_key, category, decode_synonyms, encode_synonyms, key_grant,
};
use crate::store::{
    SEEDED, StoreError, StoreResult, decode_error, from_micros, is_unique_violation, now_micros,
};

impl PgStore {
    pub async fn list_categories(&self) -> StoreResult<Vec<Category>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT c.slug, c.name,
                    (SELECT count(*) FROM questions q WHERE q.category_id = c.id)
             FROM categories c ORDER BY c.slug COLLATE \"C\"",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(category).collect())
    }

    pub async fn get_category(&self, slug: &Slug) -> StoreResult<Option<Category>> {
        let row: Option<(String, String, i64)> = sqlx::query_as(
            "SELECT c.slug, c.name,
                    (SELECT count(*) FROM questions q WHERE q.category_id = c.id)
             FROM categories c WHERE c.slug = $1",
        )
        .bind(slug.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(category))
    }

    pub async fn create_category(&self, slug: &Slug, name: &CategoryName) -> StoreResult<Category> {
        let inserted =
            sqlx::query("INSERT INTO categories (slug, name, created_at) VALUES ($1, $2, $3)")
                .bind(slug.as_str())
                .bind(name.as_str())
                .bind(now_micros())
                .execute(&self.pool)
                .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::CategoryExists(slug.to_string()));
            }
            other => other?,
        };
        Ok(Category {
            slug: slug.to_string(),
            name: name.as_str().to_string(),
            question_count: 0,
        })
    }

    pub async fn list_tags(&self, limit: i64) -> StoreResult<Vec<TagCount>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT t.slug, count(*) AS n
             FROM tags t JOIN question_tags qt ON qt.tag_id = t.id
             GROUP BY t.id ORDER BY n DESC, t.slug COLLATE \"C\" LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(slug, question_count)| TagCount {
                slug,
                question_count,
            })
            .collect())
    }

    pub async fn create_key(
        &self,
        name: &str,
        scope: Scope,
        rate_per_minute: Option<u32>,
        hash: &str,
        prefix: &str,
    ) -> StoreResult<ApiKey> {
        let now = now_micros();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO api_keys (name, scope, key_hash, prefix, created_at, rate)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(name)
        .bind(scope.as_str())
        .bind(hash)
        .bind(prefix)
        .bind(now)
        .bind(rate_per_minute.map(i64::from))
        .fetch_one(&self.pool)
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
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(api_key).collect::<Result<_, _>>()?)
    }

    pub async fn revoke_key(&self, id: i64) -> StoreResult<bool> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now_micros())
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn live_key(&self, id: i64) -> StoreResult<Option<KeyGrant>> {
        let row: Option<(String, Option<i64>)> =
            sqlx::query_as("SELECT scope, rate FROM api_keys WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(s, rate)| key_grant(id, &s, rate)).transpose()?)
    }

    pub async fn key_grant(&self, hash: &str) -> StoreResult<Option<KeyGrant>> {
        let row: Option<(i64, String, Option<i64>)> = sqlx::query_as(
            "SELECT id, scope, rate FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .map(|(id, s, rate)| key_grant(id, &s, rate))
            .transpose()?)
    }

    pub async fn secret(&self, name: &str) -> StoreResult<Vec<u8>> {
        let key = format!("secret:{name}");
        // Two replicas creating it at once: the first insert wins and both read that one.
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(&key)
            .bind(crate::secret::random_hex(32))
            .execute(&self.pool)
            .await?;
        let stored: String = sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
            .bind(&key)
            .fetch_one(&self.pool)
            .await?;
        Ok(hex::decode(stored).map_err(decode_error)?)
    }

    pub async fn synonyms(&self) -> StoreResult<(SynonymTable, i64)> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT body, version FROM synonyms WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?;
        match row {
            None => Ok((SynonymTable::default(), 0)),
            Some((body, version)) => Ok((decode_synonyms(&body)?, version)),
        }
    }

    pub async fn synonyms_version(&self) -> StoreResult<i64> {
        let v: Option<i64> = sqlx::query_scalar("SELECT version FROM synonyms WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(v.unwrap_or(0))
    }

    pub async fn put_synonyms(
        &self,
        table: &SynonymTable,
        expected: &Precondition,
    ) -> StoreResult<i64> {
        let mut tx = self.pool.begin().await?;
        // Serialises writers (the row may not exist yet, so a row lock would not).
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SYNONYMS_LOCK)
            .execute(&mut *tx)
            .await?;
        let current: Option<i64> = sqlx::query_scalar("SELECT version FROM synonyms WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await?;
        let current = current.unwrap_or(0);
        if !expected.admits(current) {
            return Err(StoreError::VersionMismatch { current });
        }
        sqlx::query(
            "INSERT INTO synonyms (id, body, version) VALUES (1, $1, $2)
             ON CONFLICT (id) DO UPDATE SET body = $1, version = $2",
        )
        .bind(encode_synonyms(table)?)
        .bind(current + 1)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(current + 1)
    }

    pub async fn seed_done(&self) -> StoreResult<bool> {
        let any: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM meta WHERE key = $1)
                 OR EXISTS (SELECT 1 FROM questions)",
        )
        .bind(SEEDED)
        .fetch_one(&self.pool)
        .await?;
        Ok(any)
    }

    pub async fn mark_seed_done(&self) -> StoreResult<()> {
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(SEEDED)
            .bind(chrono::Utc::now().to_rfc3339())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
