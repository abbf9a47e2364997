//! The index change log, read by the service to feed the search index.

use super::{Store, StoreResult, decode_error};
use crate::domain::Difficulty;

/// One entry of the change log: the question `question_id` changed (or was deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub seq: i64,
    pub question_id: i64,
}

/// What the search index needs of a question, read in one cheap statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRow {
    pub id: i64,
    pub title: String,
    pub category: String,
    pub difficulty: Difficulty,
    pub tags: Vec<String>,
    pub answers: Vec<String>,
}

#[derive(sqlx::FromRow)]
struct LeanRow {
    id: i64,
    title: String,
    category: String,
    difficulty: String,
    tags: String,
    answers: String,
}

/// Tag slugs are joined by U+001F and answer bodies by U+001E in SQL (cheaper than JSON for
/// long texts): stored text never holds C0 control characters (the domain refuses them), so
/// the separators are unambiguous.
const TAG_SEPARATOR: char = '\u{1f}';
const ANSWER_SEPARATOR: char = '\u{1e}';

const LEAN_SELECT: &str = "SELECT q.id, q.title, c.slug AS category, q.difficulty,
        coalesce((SELECT group_concat(t.slug, char(31)) FROM (
            SELECT t.slug FROM question_tags qt JOIN tags t ON t.id = qt.tag_id
            WHERE qt.question_id = q.id ORDER BY qt.position) t), '') AS tags,
        coalesce((SELECT group_concat(a.body, char(30)) FROM (
            SELECT body FROM answers WHERE question_id = q.id ORDER BY id) a), '') AS answers";

impl TryFrom<LeanRow> for IndexRow {
    type Error = sqlx::Error;

    fn try_from(r: LeanRow) -> Result<Self, sqlx::Error> {
        let split = |s: &str, sep: char| -> Vec<String> {
            if s.is_empty() {
                Vec::new()
            } else {
                s.split(sep).map(str::to_string).collect()
            }
        };
        Ok(IndexRow {
            id: r.id,
            tags: split(&r.tags, TAG_SEPARATOR),
            answers: split(&r.answers, ANSWER_SEPARATOR),
            difficulty: Difficulty::parse(&r.difficulty).map_err(decode_error)?,
            title: r.title,
            category: r.category,
        })
    }
}

fn index_rows(rows: Vec<LeanRow>) -> StoreResult<Vec<IndexRow>> {
    Ok(rows
        .into_iter()
        .map(IndexRow::try_from)
        .collect::<Result<_, _>>()?)
}

impl Store {
    /// Index rows for `ids` that still exist (a missing id was deleted).
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

    /// Up to `limit` index rows with ids above `after`, in id order: a full rebuild pages
    /// through these.
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
