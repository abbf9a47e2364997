//! Categories and tags: creation and the counted listings.

use super::SqliteStore;
use crate::domain::{Category, CategoryName, Slug, TagCount};
use crate::store::model::category;
use crate::store::{StoreError, StoreResult, is_unique_violation, now_micros};

type CategoryRow = (String, String, i64);

impl SqliteStore {
    pub async fn list_categories(&self) -> StoreResult<Vec<Category>> {
        let rows: Vec<CategoryRow> = sqlx::query_as(
            "SELECT c.slug, c.name,
                    (SELECT count(*) FROM questions q WHERE q.category_id = c.id)
             FROM categories c ORDER BY c.slug",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(category).collect())
    }

    pub async fn get_category(&self, slug: &Slug) -> StoreResult<Option<Category>> {
        let row: Option<CategoryRow> = sqlx::query_as(
            "SELECT c.slug, c.name,
                    (SELECT count(*) FROM questions q WHERE q.category_id = c.id)
             FROM categories c WHERE c.slug = ?",
        )
        .bind(slug.as_str())
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(category))
    }

    pub async fn create_category(&self, slug: &Slug, name: &CategoryName) -> StoreResult<Category> {
        let mut tx = self.begin_write().await?;
        let inserted =
            sqlx::query("INSERT INTO categories (slug, name, created_at) VALUES (?, ?, ?)")
                .bind(slug.as_str())
                .bind(name.as_str())
                .bind(now_micros())
                .execute(&mut *tx)
                .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::CategoryExists(slug.to_string()));
            }
            other => other?,
        };
        tx.commit().await?;
        Ok(Category {
            slug: slug.to_string(),
            name: name.as_str().to_string(),
            question_count: 0,
        })
    }

    /// Tags in use, most used first; tags no question carries any more are left out.
    pub async fn list_tags(&self, limit: i64) -> StoreResult<Vec<TagCount>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT t.slug, count(*) AS n
             FROM tags t JOIN question_tags qt ON qt.tag_id = t.id
             GROUP BY t.id ORDER BY n DESC, t.slug LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(slug, question_count)| TagCount {
                slug,
                question_count,
            })
            .collect())
    }
}
