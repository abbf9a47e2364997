//! The index change log and the replicas that follow it.

use super::SqliteStore;
use crate::store::model::{Change, Changes, IndexRow, LeanRow, index_rows};
use crate::store::{PRUNED_UPTO, StoreResult, now_micros};

const LEAN_SELECT: &str = "SELECT q.id, q.title, c.slug AS category, q.difficulty,
        coalesce((SELECT group_concat(t.slug, char(31)) FROM (
            SELECT t.slug FROM question_tags qt JOIN tags t ON t.id = qt.tag_id
            WHERE qt.question_id = q.id ORDER BY qt.position) t), '') AS tags,
        coalesce((SELECT group_concat(a.body, char(30)) FROM (
            SELECT body FROM answers WHERE question_id = q.id ORDER BY id) a), '') AS answers";

impl SqliteStore {
    pub async fn index_rows(&self, ids: &[i64]) -> StoreResult<Vec<IndexRow>> {
        let rows: Vec<LeanRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{LEAN_SELECT}
             FROM json_each(?) j JOIN questions q ON q.id = j.value
             JOIN categories c ON c.id = q.category_id"
        )))
        .bind(serde_json::to_string(ids).expect("ids serialize"))
        .fetch_all(&self.read)
        .await?;
        index_rows(rows)
    }

    pub async fn index_rows_after(&self, after: i64, limit: i64) -> StoreResult<Vec<IndexRow>> {
        let rows: Vec<LeanRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{LEAN_SELECT}
             FROM questions q JOIN categories c ON c.id = q.category_id
             WHERE q.id > ? ORDER BY q.id LIMIT ?"
        )))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        index_rows(rows)
    }

    pub async fn changes_after(&self, seq: i64, limit: i64) -> StoreResult<Changes> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT seq, question_id FROM index_changes WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(seq)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        // Read after the entries: pruning deletes entries and raises the mark in one
        // transaction, so a mark not above `seq` now means nothing after `seq` was missing then.
        let pruned: Option<(String,)> = sqlx::query_as("SELECT value FROM meta WHERE key = ?")
            .bind(PRUNED_UPTO)
            .fetch_optional(&self.read)
            .await?;
        let upto = pruned.and_then(|(v,)| v.parse().ok()).unwrap_or(0);
        if seq < upto {
            return Ok(Changes::Pruned { upto });
        }
        Ok(Changes::Entries(
            rows.into_iter()
                .map(|(seq, question_id)| Change { seq, question_id })
                .collect(),
        ))
    }

    pub async fn last_change_seq(&self) -> StoreResult<i64> {
        // sqlite_sequence remembers the high-water mark even after the log is pruned; the one
        // writer means no transaction holds a later sequence uncommitted while this reads.
        let (seq,): (i64,) = sqlx::query_as(
            "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'index_changes'), 0)",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(seq)
    }

    pub async fn record_position(&self, name: &str, seq: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO replicas (name, applied, seen_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET applied = ?2, seen_at = ?3",
        )
        .bind(name)
        .bind(seq)
        .bind(now_micros())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn prune_changes(&self, live_since: i64) -> StoreResult<i64> {
        let mut tx = self.begin_write().await?;
        let (upto,): (Option<i64>,) =
            sqlx::query_as("SELECT min(applied) FROM replicas WHERE seen_at >= ?")
                .bind(live_since)
                .fetch_one(&mut *tx)
                .await?;
        let Some(upto) = upto else {
            tx.rollback().await?;
            return Ok(0);
        };
        sqlx::query("DELETE FROM index_changes WHERE seq <= ?")
            .bind(upto)
            .execute(&mut *tx)
            .await?;
        // The mark only moves forward: a replica that comes back below it must rebuild.
        let (mark,): (i64,) = sqlx::query_as(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = max(CAST(value AS INTEGER), ?2)
             RETURNING CAST(value AS INTEGER)",
        )
        .bind(PRUNED_UPTO)
        .bind(upto)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(mark)
    }

    pub async fn replica_positions(&self) -> StoreResult<Vec<(String, i64, i64)>> {
        Ok(
            sqlx::query_as("SELECT name, applied, seen_at FROM replicas ORDER BY name")
                .fetch_all(&self.read)
                .await?,
        )
    }
}
