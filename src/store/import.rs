//! Bulk import: a batch of validated lines classified against what is stored (new, changed,
//! unchanged) and written in one transaction through the same row writers as single writes,
//! so the quiz pools and the search index follow exactly as they do for those.

use super::rows::{NewRows, apply_patch, insert_new};
use super::{Store, StoreResult, now_micros};
use crate::domain::QuestionPatch;
use crate::domain::import::ImportItem;
use serde_json::json;
use sqlx::SqliteConnection;
use std::collections::HashMap;

/// What a batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// The last change-log sequence written (0 when nothing changed).
    pub last_seq: i64,
}

/// How a line relates to what is stored.
enum Existing {
    New,
    Unchanged,
    Changed(i64),
}

impl Store {
    /// Writes a batch atomically. The caller guarantees that no two items in one batch share an
    /// identity (external id, or content hash when there is none).
    pub async fn import_batch(&self, items: &[ImportItem]) -> StoreResult<BatchOutcome> {
        let mut tx = self.begin_write().await?;
        let now = now_micros();
        let existing = classify(&mut tx, items).await?;
        let categories = ensure_categories(&mut tx, items, now).await?;
        let mut outcome = BatchOutcome::default();
        let mut fresh: Vec<&ImportItem> = Vec::new();
        for (item, state) in items.iter().zip(&existing) {
            match state {
                Existing::New => fresh.push(item),
                Existing::Unchanged => outcome.unchanged += 1,
                Existing::Changed(id) => {
                    // Rare (a re-import of an edited file): the ordinary patch path is fine.
                    let q = &item.question;
                    let patch = QuestionPatch {
                        title: Some(q.title.clone()),
                        body: Some(q.body.clone()),
                        category: Some(q.category.clone()),
                        tags: Some(q.tags.clone()),
                        difficulty: Some(q.difficulty),
                        answers: Some(q.answers.clone()),
                    };
                    outcome.last_seq = apply_patch(&mut tx, *id, &patch, now).await?;
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
                    let created = item.created_at.unwrap_or(now);
                    NewRows {
                        question: &item.question,
                        category_id: categories[item.question.category.as_str()],
                        created_at: created,
                        updated_at: item.updated_at.unwrap_or(created),
                        answer_times: item
                            .answer_times
                            .iter()
                            .map(|(c, u)| {
                                let c = c.unwrap_or(created);
                                (c, u.unwrap_or(c))
                            })
                            .collect(),
                        external_id: item.external_id.as_deref(),
                        import_hash: Some(&item.hash),
                    }
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
async fn classify(conn: &mut SqliteConnection, items: &[ImportItem]) -> StoreResult<Vec<Existing>> {
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
    Ok(items
        .iter()
        .enumerate()
        .map(|(i, item)| match found.get(&i) {
            None => Existing::New,
            Some((_, Some(h))) if *h == item.hash => Existing::Unchanged,
            Some((id, _)) => Existing::Changed(*id),
        })
        .collect())
}

/// Creates the categories the batch names that do not exist yet; returns slug → id.
async fn ensure_categories(
    conn: &mut SqliteConnection,
    items: &[ImportItem],
    now: i64,
) -> StoreResult<HashMap<String, i64>> {
    let mut wanted: HashMap<&str, &str> = HashMap::new();
    for item in items {
        wanted
            .entry(item.question.category.as_str())
            .or_insert(item.category_name.as_str());
    }
    let rows: Vec<serde_json::Value> = wanted.iter().map(|(s, n)| json!([s, n])).collect();
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
