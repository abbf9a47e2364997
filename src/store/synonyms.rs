//! The synonym table: one row holding the table as JSON, with a version for ETags.

use super::{Store, StoreError, StoreResult, decode_error};
use crate::domain::{Precondition, RawSynonymTable, SynonymTable};

fn decode(body: &str) -> StoreResult<SynonymTable> {
    let raw: RawSynonymTable = serde_json::from_str(body).map_err(decode_error)?;
    Ok(SynonymTable::parse(&raw).map_err(|e| decode_error(format!("{e:?}")))?)
}

impl Store {
    /// The table and its version (0 while it was never written: the default table).
    pub async fn synonyms(&self) -> StoreResult<(SynonymTable, i64)> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT body, version FROM synonyms WHERE id = 1")
                .fetch_optional(&self.read)
                .await?;
        match row {
            None => Ok((SynonymTable::default(), 0)),
            Some((body, version)) => Ok((decode(&body)?, version)),
        }
    }

    /// Replaces the table when `expected` admits the current version; returns the new version.
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
        let body = serde_json::to_string(&table.to_raw()).map_err(decode_error)?;
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
