//! The listings and locks SQLite spells its own way: its default collation already compares
//! bytes, and its one writer already serialises synonym writes.

use crate::domain::{Category, TagCount};
use crate::store::meta::MetaSql;
use crate::store::model::{CategoryRow, TagRow};
use sqlx::SqliteConnection;

impl MetaSql for SqliteConnection {
    async fn list_categories(&mut self) -> sqlx::Result<Vec<Category>> {
        let rows: Vec<CategoryRow> = sqlx::query_as(
            "SELECT c.slug, c.name,
                    (SELECT count(*) FROM questions q WHERE q.category_id = c.id) AS question_count
             FROM categories c ORDER BY c.slug",
        )
        .fetch_all(&mut *self)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn list_tags(&mut self, limit: i64) -> sqlx::Result<Vec<TagCount>> {
        let rows: Vec<TagRow> = sqlx::query_as(
            "SELECT t.slug, count(*) AS question_count
             FROM tags t JOIN question_tags qt ON qt.tag_id = t.id
             GROUP BY t.id ORDER BY question_count DESC, t.slug LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&mut *self)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    async fn lock_synonyms(&mut self) -> sqlx::Result<()> {
        Ok(())
    }
}
