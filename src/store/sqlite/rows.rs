//! The statements of a write on SQLite ([`Rows`] for its connection): the one place that
//! spells how a question's rows, quiz-pool slots and change-log entries are written. The order
//! of the steps is in `store/writes.rs`. Sets of rows travel as JSON arrays through
//! `json_each`.

use crate::domain::import::ImportItem;
use crate::domain::{Answer, Markdown, Question, QuestionPatch, QuestionSize, Tags};
use crate::store::model::{
    AnswerRow, Card, NewRows, Pool, QuestionRow, questions_in_order, wanted_categories,
};
use crate::store::writes::{Found, Rows};
use crate::store::{StoreError, StoreResult};
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

impl Rows for SqliteConnection {
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
             WHERE q.id IN (SELECT value FROM json_each(?))"
        )))
        .bind(serde_json::to_string(ids).expect("ids serialize"))
        .fetch_all(&mut *self)
        .await?;
        questions_in_order(ids, rows)
    }

    async fn question_version(&mut self, id: i64) -> StoreResult<i64> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT version FROM questions WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *self)
            .await?;
        row.map(|r| r.0).ok_or(StoreError::QuestionNotFound(id))
    }

    async fn fetch_answer(&mut self, id: i64) -> StoreResult<Answer> {
        let row: Option<AnswerRow> = sqlx::query_as(
            "SELECT id, question_id, body, created_at, updated_at, version FROM answers WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&mut *self)
        .await?;
        row.map(Answer::from).ok_or(StoreError::AnswerNotFound(id))
    }

    async fn question_size(&mut self, id: i64) -> sqlx::Result<QuestionSize> {
        // length() counts characters of TEXT, as the domain does.
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT (SELECT count(*) FROM answers WHERE question_id = ?1),
                    length(title) + coalesce(length(body), 0)
                      + coalesce((SELECT sum(length(body)) FROM answers WHERE question_id = ?1), 0)
             FROM questions WHERE id = ?1",
        )
        .bind(id)
        .fetch_optional(&mut *self)
        .await?;
        Ok(
            row.map_or(QuestionSize::default(), |(answers, chars)| QuestionSize {
                answers: answers as usize,
                chars: chars as usize,
            }),
        )
    }

    async fn category_id(&mut self, slug: &str) -> StoreResult<i64> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM categories WHERE slug = ?")
            .bind(slug)
            .fetch_optional(&mut *self)
            .await?;
        row.map(|r| r.0)
            .ok_or_else(|| StoreError::UnknownCategory(slug.to_string()))
    }

    async fn tag_id(&mut self, slug: &str) -> StoreResult<i64> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM tags WHERE slug = ?")
            .bind(slug)
            .fetch_optional(&mut *self)
            .await?;
        row.map(|r| r.0)
            .ok_or_else(|| StoreError::UnknownTag(slug.to_string()))
    }

    /// The one write transaction already excludes every other writer.
    async fn lock_for_review(&mut self, _learner: &str, question_id: i64) -> sqlx::Result<bool> {
        let (exists,): (bool,) =
            sqlx::query_as("SELECT EXISTS (SELECT 1 FROM questions WHERE id = ?)")
                .bind(question_id)
                .fetch_one(&mut *self)
                .await?;
        Ok(exists)
    }

    async fn last_review(&mut self, learner: &str, question_id: i64) -> sqlx::Result<Option<i64>> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT last_review FROM review_cards WHERE learner = ? AND question_id = ?",
        )
        .bind(learner)
        .bind(question_id)
        .fetch_optional(&mut *self)
        .await?;
        Ok(row.map(|r| r.0))
    }

    async fn save_card(
        &mut self,
        learner: &str,
        question_id: i64,
        rating: &str,
        interval_days: f64,
        card: &Card,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO review_cards (learner, question_id, stability, difficulty, due, last_review, reps)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (learner, question_id) DO UPDATE SET stability = excluded.stability,
                difficulty = excluded.difficulty, due = excluded.due,
                last_review = excluded.last_review, reps = excluded.reps",
        )
        .bind(learner)
        .bind(question_id)
        .bind(card.stability as f64)
        .bind(card.difficulty as f64)
        .bind(card.due.timestamp_micros())
        .bind(card.last_review.timestamp_micros())
        .bind(card.reps)
        .execute(&mut *self)
        .await?;
        sqlx::query(
            "INSERT INTO reviews (learner, question_id, rating, reviewed_at, interval_days)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(learner)
        .bind(question_id)
        .bind(rating)
        .bind(card.last_review.timestamp_micros())
        .bind(interval_days)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn update_question(
        &mut self,
        id: i64,
        patch: &QuestionPatch,
        category_id: Option<i64>,
        now: i64,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE questions SET
                title = coalesce(?1, title),
                body = CASE WHEN ?2 THEN ?3 ELSE body END,
                category_id = coalesce(?4, category_id),
                difficulty = coalesce(?5, difficulty),
                updated_at = ?6,
                version = version + 1
             WHERE id = ?7",
        )
        .bind(patch.title.as_ref().map(|t| t.as_str()))
        .bind(patch.body.is_some())
        .bind(
            patch
                .body
                .as_ref()
                .and_then(|b| b.as_ref().map(|b| b.as_str())),
        )
        .bind(category_id)
        .bind(patch.difficulty.map(|d| d.as_str()))
        .bind(now)
        .bind(id)
        .execute(&mut *self)
        .await?;
        Ok(())
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

    async fn delete_answers_of(&mut self, question_id: i64) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM answers WHERE question_id = ?")
            .bind(question_id)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn insert_answer(
        &mut self,
        question_id: i64,
        body: &Markdown,
        now: i64,
    ) -> sqlx::Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO answers (question_id, body, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
             RETURNING id",
        )
        .bind(question_id)
        .bind(body.as_str())
        .bind(now)
        .fetch_one(&mut *self)
        .await?;
        Ok(id)
    }

    async fn update_answer_body(&mut self, id: i64, body: &Markdown, now: i64) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE answers SET body = ?, updated_at = ?, version = version + 1 WHERE id = ?",
        )
        .bind(body.as_str())
        .bind(now)
        .bind(id)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn delete_answer_row(&mut self, id: i64) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM answers WHERE id = ?")
            .bind(id)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn delete_question_row(&mut self, id: i64) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM questions WHERE id = ?")
            .bind(id)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn touch_question(&mut self, id: i64, now: i64) -> sqlx::Result<()> {
        sqlx::query("UPDATE questions SET version = version + 1, updated_at = ? WHERE id = ?")
            .bind(now)
            .bind(id)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn record_change(&mut self, question_id: i64, now: i64) -> sqlx::Result<i64> {
        let (seq,): (i64,) = sqlx::query_as(
            "INSERT INTO index_changes (question_id, created_at) VALUES (?, ?) RETURNING seq",
        )
        .bind(question_id)
        .bind(now)
        .fetch_one(&mut *self)
        .await?;
        Ok(seq)
    }

    async fn pool_attributes(&mut self, id: i64) -> sqlx::Result<Option<(i64, String, Vec<i64>)>> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT category_id, difficulty FROM questions WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut *self)
                .await?;
        let Some((category_id, difficulty)) = row else {
            return Ok(None);
        };
        let tag_ids: Vec<(i64,)> =
            sqlx::query_as("SELECT tag_id FROM question_tags WHERE question_id = ?")
                .bind(id)
                .fetch_all(&mut *self)
                .await?;
        Ok(Some((
            category_id,
            difficulty,
            tag_ids.into_iter().map(|r| r.0).collect(),
        )))
    }

    async fn slots_of(&mut self, question_id: i64) -> sqlx::Result<Vec<(String, i64)>> {
        sqlx::query_as("SELECT pool, slot FROM quiz_slots WHERE question_id = ?")
            .bind(question_id)
            .fetch_all(&mut *self)
            .await
    }

    async fn remove_from_pool(&mut self, pool: &str, slot: i64) -> sqlx::Result<()> {
        let (last,): (i64,) = sqlx::query_as(
            "UPDATE quiz_pools SET size = size - 1 WHERE pool = ? RETURNING size + 1",
        )
        .bind(pool)
        .fetch_one(&mut *self)
        .await?;
        sqlx::query("DELETE FROM quiz_slots WHERE pool = ? AND slot = ?")
            .bind(pool)
            .bind(slot)
            .execute(&mut *self)
            .await?;
        if slot != last {
            sqlx::query("UPDATE quiz_slots SET slot = ? WHERE pool = ? AND slot = ?")
                .bind(slot)
                .bind(pool)
                .bind(last)
                .execute(&mut *self)
                .await?;
        }
        Ok(())
    }

    async fn add_to_pool(&mut self, pool: &str, question_id: i64) -> sqlx::Result<()> {
        let (size,): (i64,) = sqlx::query_as(
            "INSERT INTO quiz_pools (pool, size) VALUES (?, 1)
             ON CONFLICT (pool) DO UPDATE SET size = size + 1 RETURNING size",
        )
        .bind(pool)
        .fetch_one(&mut *self)
        .await?;
        sqlx::query("INSERT INTO quiz_slots (pool, slot, question_id) VALUES (?, ?, ?)")
            .bind(pool)
            .bind(size)
            .bind(question_id)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn insert_new(
        &mut self,
        items: &[NewRows<'_>],
        now: i64,
    ) -> StoreResult<(Vec<i64>, i64)> {
        insert_new(self, items, now).await
    }

    async fn find_by_external_id(&mut self, keys: &[(i64, &str)]) -> sqlx::Result<Vec<Found>> {
        sqlx::query_as(
            "SELECT j.value ->> 0, q.id, q.import_hash FROM json_each(?) j
             JOIN questions q ON q.external_id = j.value ->> 1",
        )
        .bind(serde_json::to_string(keys).expect("keys serialize"))
        .fetch_all(&mut *self)
        .await
    }

    async fn find_by_hash(&mut self, keys: &[(i64, &str)]) -> sqlx::Result<Vec<Found>> {
        sqlx::query_as(
            "SELECT j.value ->> 0, min(q.id), q.import_hash FROM json_each(?) j
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

    async fn set_import_hash(&mut self, id: i64, hash: &str) -> sqlx::Result<()> {
        sqlx::query("UPDATE questions SET import_hash = ? WHERE id = ?")
            .bind(hash)
            .bind(id)
            .execute(&mut *self)
            .await?;
        Ok(())
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
