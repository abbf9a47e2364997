//! The index change log, read by the service to feed the search index.

use super::{Store, StoreResult};

/// One entry of the change log: the question `question_id` changed (or was deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub seq: i64,
    pub question_id: i64,
}

impl Store {
    /// Entries after `seq`, oldest first.
    pub async fn changes_after(&self, seq: i64, limit: i64) -> StoreResult<Vec<Change>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT seq, question_id FROM index_changes WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(seq)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(seq, question_id)| Change { seq, question_id })
            .collect())
    }

    /// The newest sequence number handed out, 0 when the log has never been written.
    pub async fn last_change_seq(&self) -> StoreResult<i64> {
        // sqlite_sequence remembers the high-water mark even after the log is pruned.
        let (seq,): (i64,) = sqlx::query_as(
            "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'index_changes'), 0)",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(seq)
    }

    /// Forgets entries the index has durably applied.
    pub async fn prune_changes(&self, upto: i64) -> StoreResult<()> {
        sqlx::query("DELETE FROM index_changes WHERE seq <= ?")
            .bind(upto)
            .execute(&self.write)
            .await?;
        Ok(())
    }
}
