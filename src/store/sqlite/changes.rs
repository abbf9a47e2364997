//! The change-log statements SQLite spells its own way: tags and answers joined with
//! `group_concat`, and the newest sequence read from `sqlite_sequence`.

use crate::store::StoreResult;
use crate::store::changes::ChangeSql;
use crate::store::model::{IndexRow, LeanRow, index_rows};
use sqlx::SqliteConnection;

const LEAN_SELECT: &str = "SELECT q.id, q.title, c.slug AS category, q.difficulty,
        coalesce((SELECT group_concat(t.slug, char(31)) FROM (
            SELECT t.slug FROM question_tags qt JOIN tags t ON t.id = qt.tag_id
            WHERE qt.question_id = q.id ORDER BY qt.position) t), '') AS tags,
        coalesce((SELECT group_concat(a.body, char(30)) FROM (
            SELECT body FROM answers WHERE question_id = q.id ORDER BY id) a), '') AS answers";

impl ChangeSql for SqliteConnection {
    async fn index_rows(&mut self, ids: &[i64]) -> StoreResult<Vec<IndexRow>> {
        let rows: Vec<LeanRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{LEAN_SELECT}
             FROM json_each(?) j JOIN questions q ON q.id = j.value
             JOIN categories c ON c.id = q.category_id"
        )))
        .bind(serde_json::to_string(ids).expect("ids serialize"))
        .fetch_all(&mut *self)
        .await?;
        index_rows(rows)
    }

    async fn index_rows_after(&mut self, after: i64, limit: i64) -> StoreResult<Vec<IndexRow>> {
        let rows: Vec<LeanRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{LEAN_SELECT}
             FROM questions q JOIN categories c ON c.id = q.category_id
             WHERE q.id > ? ORDER BY q.id LIMIT ?"
        )))
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *self)
        .await?;
        index_rows(rows)
    }

    /// `sqlite_sequence` remembers the high-water mark even after the log is pruned; the one
    /// writer means no transaction holds a later sequence uncommitted while this reads.
    async fn last_change_seq(&mut self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'index_changes'), 0)",
        )
        .fetch_one(&mut *self)
        .await?)
    }
}
