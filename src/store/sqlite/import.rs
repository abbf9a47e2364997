//! Bulk import: a batch of validated lines classified against what is stored (new, changed,
//! unchanged) and written in one transaction through the same row writers as single writes,
//! so the quiz pools and the search index follow exactly as they do for those.

use super::SqliteStore;
use super::rows::{apply_patch, insert_new};
use crate::domain::import::ImportItem;
use crate::store::model::{
    BatchOutcome, Existing, NewRows, classify, import_patch, wanted_categories,
};
use crate::store::{StoreResult, now_micros};
use serde_json::json;
use sqlx::SqliteConnection;
use std::collections::HashMap;

impl SqliteStore {
    pub async fn import_batch(&self, items: &[ImportItem]) -> StoreResult<BatchOutcome> {
        let mut tx = self.begin_write().await?;
        let now = now_micros();
        let existing = find_existing(&mut tx, items).await?;
        let categories = ensure_categories(&mut tx, items, now).await?;
        let mut outcome = BatchOutcome::default();
        let mut fresh: Vec<&ImportItem> = Vec::new();
        for (item, state) in items.iter().zip(&existing) {
            match state {
                Existing::New => fresh.push(item),
                Existing::Unchanged => outcome.unchanged += 1,
                Existing::Changed(id) => {
                    // Rare (a re-import of an edited file): the ordinary patch path is fine.
                    outcome.last_seq = apply_patch(&mut tx, *id, &import_patch(item), now).await?;
                    sqlx::query("UPDATE questions SET import_hash = ? WHERE id = ?")
                        .bind(&item.hash)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    outcome.updated += 1;
                }
            }
        }
        if !fresh.is_empty() {
            let rows: Vec<NewRows> = fresh
                .iter()
                .map(|item| {
                    NewRows::imported(item, categories[item.question.category.as_str()], now)
                })
                .collect();
            (_, outcome.last_seq) = insert_new(&mut tx, &rows, now).await?;
            outcome.created = fresh.len() as u64;
        }
        tx.commit().await?;
        Ok(outcome)
    }
}

/// Looks every item up by its identity, in two statements.
async fn find_existing(
    conn: &mut SqliteConnection,
    items: &[ImportItem],
) -> StoreResult<Vec<Existing>> {
    let mut by_external = Vec::new();
    let mut by_hash = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match &item.external_id {
            Some(id) => by_external.push(json!([i, id])),
            None => by_hash.push(json!([i, item.hash])),
        }
    }
    let mut found: HashMap<usize, (i64, Option<String>)> = HashMap::new();
    if !by_external.is_empty() {
        let rows: Vec<(i64, i64, Option<String>)> = sqlx::query_as(
            "SELECT j.value ->> 0, q.id, q.import_hash FROM json_each(?) j
             JOIN questions q ON q.external_id = j.value ->> 1",
        )
        .bind(serde_json::Value::Array(by_external).to_string())
        .fetch_all(&mut *conn)
        .await?;
        found.extend(rows.into_iter().map(|(i, id, h)| (i as usize, (id, h))));
    }
    if !by_hash.is_empty() {
        let rows: Vec<(i64, i64, Option<String>)> = sqlx::query_as(
            "SELECT j.value ->> 0, min(q.id), q.import_hash FROM json_each(?) j
             JOIN questions q ON q.import_hash = j.value ->> 1
             GROUP BY j.key",
        )
        .bind(serde_json::Value::Array(by_hash).to_string())
        .fetch_all(&mut *conn)
        .await?;
        found.extend(rows.into_iter().map(|(i, id, h)| (i as usize, (id, h))));
    }
    Ok(classify(items, &found))
}

/// Creates the categories the batch names that do not exist yet; returns slug → id.
async fn ensure_categories(
    conn: &mut SqliteConnection,
    items: &[ImportItem],
    now: i64,
) -> StoreResult<HashMap<String, i64>> {
    let rows: Vec<serde_json::Value> = wanted_categories(items)
        .iter()
        .map(|(s, n)| json!([s, n]))
        .collect();
    // `WHERE true` keeps SQLite's parser from reading ON CONFLICT as a join constraint.
    sqlx::query(
        "INSERT INTO categories (slug, name, created_at)
         SELECT value ->> 0, value ->> 1, ? FROM json_each(?) WHERE true
         ON CONFLICT (slug) DO NOTHING",
    )
    .bind(now)
    .bind(serde_json::Value::Array(rows).to_string())
    .execute(&mut *conn)
    .await?;
    let all: Vec<(String, i64)> = sqlx::query_as("SELECT slug, id FROM categories")
        .fetch_all(&mut *conn)
        .await?;
    Ok(all.into_iter().collect())
}
