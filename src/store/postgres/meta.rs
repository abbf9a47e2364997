//! The listings and locks PostgreSQL spells its own way: slugs sort bytewise only when told
//! (`COLLATE "C"`, as SQLite sorts them), and synonym writers take an advisory lock.

use super::SYNONYMS_LOCK;
use crate::domain::{Category, TagCount};
use crate::store::meta::MetaSql;
use crate::store::model::{CategoryRow, TagRow};
use sqlx::PgConnection;

impl MetaSql for PgConnection {
    async fn list_categories(&mut self) -> sqlx::Result<Vec<Category>> {
        let rows: Vec<CategoryRow> = sqlx::query_as(
            "SELECT c.slug, c.name,
                    (SELECT count(*) FROM questions q WHERE q.category_id = c.id) AS question_count
             FROM categories c ORDER BY c.slug COLLATE \"C\"",
        )
        .fetch_all(&mut *self)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn list_tags(&mut self, limit: i64) -> sqlx::Result<Vec<TagCount>> {
        let rows: Vec<TagRow> = sqlx::query_as(
            "SELECT t.slug, count(*) AS question_count
             FROM tags t JOIN question_tags qt ON qt.tag_id = t.id
             GROUP BY t.id ORDER BY question_count DESC, t.slug COLLATE \"C\" LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&mut *self)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The synonym row may not exist yet, so a row lock would not serialise two writers.
    async fn lock_synonyms(&mut self) -> sqlx::Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SYNONYMS_LOCK)
            .execute(&mut *self)
            .await?;
        Ok(())
    }
}
