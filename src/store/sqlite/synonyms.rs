//! The synonym table: one row holding the table as JSON, with a version for ETags.

use super::SqliteStore;
use crate::domain::{Precondition, SynonymTable};
use crate::store::model::{decode_synonyms, encode_synonyms};
use crate::store::{StoreError, StoreResult};

impl SqliteStore {
    pub async fn synonyms(&self) -> StoreResult<(SynonymTable, i64)> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT body, version FROM synonyms WHERE id = 1")
                .fetch_optional(&self.read)
                .await?;
        match row {
            None => Ok((SynonymTable::default(), 0)),
            Some((body, version)) => Ok((decode_synonyms(&body)?, version)),
        }
    }

    pub async fn synonyms_version(&self) -> StoreResult<i64> {
        let v: Option<(i64,)> = sqlx::query_as("SELECT version FROM synonyms WHERE id = 1")
            .fetch_optional(&self.read)
            .await?;
        Ok(v.map_or(0, |r| r.0))
    }

    pub async fn put_synonyms(
        &self,
        table: &SynonymTable,
        expected: &Precondition,
    ) -> StoreResult<i64> {
        let mut tx = self.begin_write().await?;
        let current: Option<(i64,)> = sqlx::query_as("SELECT version FROM synonyms WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await?;
        let current = current.map_or(0, |r| r.0);
        if !expected.admits(current) {
            return Err(StoreError::VersionMismatch { current });
        }
        let body = encode_synonyms(table)?;
        sqlx::query(
            "INSERT INTO synonyms (id, body, version) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET body = ?1, version = ?2",
        )
        .bind(body)
        .bind(current + 1)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(current + 1)
    }
}
