//! The question statements SQLite spells its own way: sets of rows travel as JSON arrays
//! through `json_each`, and rows aggregate into JSON with `json_group_array`.

use crate::domain::import::ImportItem;
use crate::domain::{Question, QuestionFilter, Tags};
use crate::store::StoreResult;
use crate::store::model::{
    FoundRow, NewRows, Pool, QuestionRow, questions_in_order, wanted_categories,
};
use crate::store::questions::QuestionSql;
use serde_json::json;
use sqlx::SqliteConnection;
use std::collections::HashMap;

const QUESTION_COLUMNS: &str = "q.id, q.title, q.body, c.slug AS category_slug, \
     c.name AS category_name, q.difficulty, q.created_at, q.updated_at, q.version, q.external_id";

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

impl QuestionSql for SqliteConnection {
    /// One statement whatever the number of ids: tags and answers come back as JSON arrays,
    /// which saves two round trips to the database thread per call.
    async fn load_questions(&mut self, ids: &[i64]) -> StoreResult<Vec<Question>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<QuestionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {QUESTION_COLUMNS},
                (SELECT json_group_array(slug) FROM (
                    SELECT t.slug FROM question_tags qt JOIN tags t ON t.id = qt.tag_id
                    WHERE qt.question_id = q.id ORDER BY qt.position)) AS tags_json,
                (SELECT json_group_array(json_array(id, body, created_at, updated_at, version)) FROM (
                    SELECT id, body, created_at, updated_at, version FROM answers
                    WHERE question_id = q.id ORDER BY id)) AS answers_json
             FROM questions q JOIN categories c ON c.id = q.category_id
             WHERE q.id IN (SELECT value FROM json_each($1))"
        )))
        .bind(serde_json::to_string(ids).expect("ids serialize"))
        .fetch_all(&mut *self)
        .await?;
        questions_in_order(ids, rows)
    }

    async fn list_question_ids(
        &mut self,
        filter: &QuestionFilter,
        after: i64,
        limit: i64,
    ) -> sqlx::Result<Vec<i64>> {
        let tags: Vec<&str> = filter.tags.iter().map(|t| t.as_str()).collect();
        sqlx::query_scalar(
            "SELECT q.id FROM questions q
             WHERE q.id > ?1
               AND (?2 IS NULL OR q.category_id = (SELECT id FROM categories WHERE slug = ?2))
               AND (?3 IS NULL OR q.difficulty = ?3)
               AND (?4 IS NULL OR q.updated_at >= ?4)
               AND (?5 = 0 OR ?5 = (
                    SELECT count(*) FROM question_tags qt JOIN tags t ON t.id = qt.tag_id
                    WHERE qt.question_id = q.id
                      AND t.slug IN (SELECT value FROM json_each(?6))))
             ORDER BY q.id LIMIT ?7",
        )
        .bind(after)
        .bind(filter.category.as_ref().map(|c| c.as_str()))
        .bind(filter.difficulty.map(|d| d.as_str()))
        .bind(filter.updated_since.map(|t| t.timestamp_micros()))
        .bind(tags.len() as i64)
        .bind(serde_json::to_string(&tags).expect("tags serialize"))
        .bind(limit)
        .fetch_all(&mut *self)
        .await
    }

    /// The one write transaction already excludes every other writer.
    async fn lock_for_review(&mut self, _learner: &str, question_id: i64) -> sqlx::Result<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM questions WHERE id = $1)")
            .bind(question_id)
            .fetch_one(&mut *self)
            .await
    }

    async fn set_tags(&mut self, question_id: i64, tags: &Tags) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM question_tags WHERE question_id = ?")
            .bind(question_id)
            .execute(&mut *self)
            .await?;
        for (position, slug) in tags.as_slice().iter().enumerate() {
            // DO UPDATE (a no-op) rather than DO NOTHING so RETURNING yields the existing id too.
            let (tag_id,): (i64,) = sqlx::query_as(
                "INSERT INTO tags (slug) VALUES (?) ON CONFLICT (slug) DO UPDATE SET slug = excluded.slug
                 RETURNING id",
            )
            .bind(slug.as_str())
            .fetch_one(&mut *self)
            .await?;
            sqlx::query(
                "INSERT INTO question_tags (question_id, tag_id, position) VALUES (?, ?, ?)",
            )
            .bind(question_id)
            .bind(tag_id)
            .bind(position as i64)
            .execute(&mut *self)
            .await?;
        }
        Ok(())
    }

    async fn insert_new(
        &mut self,
        items: &[NewRows<'_>],
        now: i64,
    ) -> StoreResult<(Vec<i64>, i64)> {
        insert_new(self, items, now).await
    }

    async fn find_by_external_id(&mut self, keys: &[(i64, &str)]) -> sqlx::Result<Vec<FoundRow>> {
        sqlx::query_as(
            "SELECT j.value ->> 0 AS item, q.id, q.import_hash FROM json_each($1) j
             JOIN questions q ON q.external_id = j.value ->> 1",
        )
        .bind(serde_json::to_string(keys).expect("keys serialize"))
        .fetch_all(&mut *self)
        .await
    }

    async fn find_by_hash(&mut self, keys: &[(i64, &str)]) -> sqlx::Result<Vec<FoundRow>> {
        sqlx::query_as(
            "SELECT j.value ->> 0 AS item, min(q.id) AS id, q.import_hash FROM json_each($1) j
             JOIN questions q ON q.import_hash = j.value ->> 1
             GROUP BY j.key",
        )
        .bind(serde_json::to_string(keys).expect("keys serialize"))
        .fetch_all(&mut *self)
        .await
    }

    async fn ensure_categories(
        &mut self,
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
        .execute(&mut *self)
        .await?;
        let all: Vec<(String, i64)> = sqlx::query_as("SELECT slug, id FROM categories")
            .fetch_all(&mut *self)
            .await?;
        Ok(all.into_iter().collect())
    }
}

/// Inserts new questions with their tags, answers, quiz-pool slots and change-log entries, in
/// a fixed number of set-based statements whatever their number (rows travel as JSON arrays
/// through `json_each`). Returns the new ids, in the order of `items`, and the last change
/// sequence.
async fn insert_new(
    conn: &mut SqliteConnection,
    items: &[NewRows<'_>],
    now: i64,
) -> StoreResult<(Vec<i64>, i64)> {
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
    let mut pools: Vec<(Pool, i64)> = Vec::new();
    for (n, item) in items.iter().enumerate() {
        let id = base + 1 + n as i64;
        let q = item.question;
        questions.push(&(
            id,
            q.title.as_str(),
            q.body.as_ref().map(|b| b.as_str()),
            item.category_id,
            q.difficulty.as_str(),
            item.created_at,
            item.updated_at,
            item.external_id,
            item.import_hash,
        ));
        for (a, (created, updated)) in q.answers.iter().zip(&item.answer_times) {
            answers.push(&(id, a.as_str(), created, updated));
        }
        let mut tags = Vec::with_capacity(q.tags.as_slice().len());
        for (position, tag) in q.tags.as_slice().iter().enumerate() {
            let tag_id = tag_ids[tag.as_str()];
            question_tags.push(&(id, tag_id, position));
            tags.push(tag_id);
        }
        for pool in Pool::of(item.category_id, q.difficulty, &tags) {
            pools.push((pool, id));
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
    Ok((ids, seq))
}

/// Gives each (pool, question) pair the next dense slot of its pool.
async fn append_to_pools(conn: &mut SqliteConnection, pairs: &[(Pool, i64)]) -> StoreResult<()> {
    let pairs: Vec<(String, i64)> = pairs.iter().map(|(p, id)| (p.key(), *id)).collect();
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
    for (pool, id) in &pairs {
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
