//! Bulk import: a batch of validated lines written in one transaction with a fixed number of
//! set-based statements (rows travel as JSON arrays through `json_each`), instead of a dozen
//! round trips per question. The change log is appended in the same transaction, so the
//! search index follows exactly as it does for single writes.

use super::questions::apply_patch;
use super::{Store, StoreResult, now_micros};
use crate::domain::QuestionPatch;
use crate::domain::import::ImportItem;
use serde_json::json;
use sqlx::SqliteConnection;
use std::collections::HashMap;

/// Rows for `json_each`, serialized as they are pushed (tuples become JSON arrays), without
/// building a `serde_json::Value` tree first.
struct JsonRows(Vec<u8>);

impl JsonRows {
    fn new() -> Self {
        Self(vec![b'['])
    }

    fn push(&mut self, row: &impl serde::Serialize) {
        if self.0.len() > 1 {
            self.0.push(b',');
        }
        serde_json::to_writer(&mut self.0, row).expect("rows serialize");
    }

    fn is_empty(&self) -> bool {
        self.0.len() == 1
    }

    fn finish(mut self) -> String {
        self.0.push(b']');
        String::from_utf8(self.0).expect("serde_json writes UTF-8")
    }
}

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
            outcome.last_seq = insert_new(&mut tx, &fresh, &categories, now).await?;
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

/// Inserts new questions with their tags, answers, quiz-pool slots and change-log entries.
/// Returns the last change sequence.
async fn insert_new(
    conn: &mut SqliteConnection,
    items: &[&ImportItem],
    categories: &HashMap<String, i64>,
    now: i64,
) -> StoreResult<i64> {
    // Tags: create the missing ones, then map every slug to its id.
    let mut slugs: Vec<&str> = items
        .iter()
        .flat_map(|i| i.question.tags.as_slice().iter().map(|t| t.as_str()))
        .collect();
    slugs.sort_unstable();
    slugs.dedup();
    let slugs_json = serde_json::to_string(&slugs).expect("slugs serialize");
    sqlx::query(
        "INSERT INTO tags (slug) SELECT value FROM json_each(?) WHERE true
         ON CONFLICT (slug) DO NOTHING",
    )
    .bind(&slugs_json)
    .execute(&mut *conn)
    .await?;
    let tag_ids: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT t.slug, t.id FROM json_each(?) j JOIN tags t ON t.slug = j.value",
    )
    .bind(&slugs_json)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();

    // Ids are assigned here, not by SQLite, so the rows below can refer to them without
    // reading them back. AUTOINCREMENT's high-water mark covers deleted ids: none is reused.
    let (base,): (i64,) = sqlx::query_as(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'questions'), 0),
                    coalesce((SELECT max(id) FROM questions), 0))",
    )
    .fetch_one(&mut *conn)
    .await?;
    let mut questions = JsonRows::new();
    let mut answers = JsonRows::new();
    let mut question_tags = JsonRows::new();
    let mut pools: Vec<(String, i64)> = Vec::new();
    for (n, item) in items.iter().enumerate() {
        let id = base + 1 + n as i64;
        let q = &item.question;
        let category = categories[q.category.as_str()];
        let created = item.created_at.unwrap_or(now);
        let updated = item.updated_at.unwrap_or(created);
        questions.push(&(
            id,
            q.title.as_str(),
            q.body.as_ref().map(|b| b.as_str()),
            category,
            q.difficulty.as_str(),
            created,
            updated,
            &item.external_id,
            &item.hash,
        ));
        for (a, times) in q.answers.iter().zip(&item.answer_times) {
            let a_created = times.0.unwrap_or(created);
            answers.push(&(id, a.as_str(), a_created, times.1.unwrap_or(a_created)));
        }
        pools.push(("all".to_string(), id));
        pools.push((format!("c:{category}"), id));
        pools.push((format!("d:{}", q.difficulty.as_str()), id));
        for (position, tag) in q.tags.as_slice().iter().enumerate() {
            let tag_id = tag_ids[tag.as_str()];
            question_tags.push(&(id, tag_id, position));
            pools.push((format!("t:{tag_id}"), id));
        }
    }
    sqlx::query(
        "INSERT INTO questions (id, title, body, category_id, difficulty, created_at, updated_at,
                                external_id, import_hash)
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5,
                value ->> 6, value ->> 7, value ->> 8
         FROM json_each(?)",
    )
    .bind(questions.finish())
    .execute(&mut *conn)
    .await?;
    if !answers.is_empty() {
        sqlx::query(
            "INSERT INTO answers (question_id, body, created_at, updated_at)
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?)",
        )
        .bind(answers.finish())
        .execute(&mut *conn)
        .await?;
    }
    if !question_tags.is_empty() {
        sqlx::query(
            "INSERT INTO question_tags (question_id, tag_id, position)
             SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)",
        )
        .bind(question_tags.finish())
        .execute(&mut *conn)
        .await?;
    }
    append_to_pools(conn, &pools).await?;
    let ids: Vec<i64> = (1..=items.len() as i64).map(|n| base + n).collect();
    sqlx::query(
        "INSERT INTO index_changes (question_id, created_at) SELECT value, ? FROM json_each(?)",
    )
    .bind(now)
    .bind(serde_json::to_string(&ids).expect("ids serialize"))
    .execute(&mut *conn)
    .await?;
    let (seq,): (i64,) =
        sqlx::query_as("SELECT seq FROM sqlite_sequence WHERE name = 'index_changes'")
            .fetch_one(&mut *conn)
            .await?;
    Ok(seq)
}

/// Gives each (pool, question) pair the next dense slot of its pool.
async fn append_to_pools(conn: &mut SqliteConnection, pairs: &[(String, i64)]) -> StoreResult<()> {
    let mut names: Vec<&str> = pairs.iter().map(|(p, _)| p.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut sizes: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT p.pool, p.size FROM json_each(?) j JOIN quiz_pools p ON p.pool = j.value",
    )
    .bind(serde_json::to_string(&names).expect("pools serialize"))
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    let mut slots = JsonRows::new();
    for (pool, id) in pairs {
        let size = sizes.entry(pool.clone()).or_insert(0);
        *size += 1;
        slots.push(&(pool, *size, id));
    }
    sqlx::query(
        "INSERT INTO quiz_slots (pool, slot, question_id)
         SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?)",
    )
    .bind(slots.finish())
    .execute(&mut *conn)
    .await?;
    let sizes: Vec<serde_json::Value> = sizes.iter().map(|(p, s)| json!([p, s])).collect();
    sqlx::query(
        "INSERT INTO quiz_pools (pool, size) SELECT value ->> 0, value ->> 1 FROM json_each(?)
         WHERE true ON CONFLICT (pool) DO UPDATE SET size = excluded.size",
    )
    .bind(serde_json::Value::Array(sizes).to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
