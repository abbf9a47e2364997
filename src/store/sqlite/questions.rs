//! The question statements SQLite spells its own way: sets of values travel as JSON arrays
//! through `json_each` (an element's `key` is its position), rows aggregate into JSON with
//! `json_group_array`, and new ids come from `sqlite_sequence`.

use crate::store::dialect::QuestionTexts;
use crate::store::model::NewBatch;
use crate::store::statements::QuestionSql;
use sqlx::SqliteConnection;

pub(super) const TEXTS: QuestionTexts = QuestionTexts {
    load_questions: "SELECT q.id, q.title, q.body,
        c.slug AS category_slug, c.name AS category_name, q.difficulty, q.created_at,
        q.updated_at, q.version, q.external_id,
        (SELECT json_group_array(slug) FROM (
            SELECT t.slug FROM question_tags qt JOIN tags t ON t.id = qt.tag_id
            WHERE qt.question_id = q.id ORDER BY qt.position)) AS tags_json,
        (SELECT json_group_array(json_array(id, body, created_at, updated_at, version)) FROM (
            SELECT id, body, created_at, updated_at, version FROM answers
            WHERE question_id = q.id ORDER BY id)) AS answers_json
     FROM questions q JOIN categories c ON c.id = q.category_id
     WHERE q.id IN (SELECT value FROM json_each($1))",
    list_question_ids: "SELECT q.id FROM questions q
     WHERE q.id > $1
       AND ($2 IS NULL OR q.category_id = (SELECT id FROM categories WHERE slug = $2))
       AND ($3 IS NULL OR q.difficulty = $3)
       AND ($4 IS NULL OR q.updated_at >= $4)
       AND ($5 = 0 OR $5 = (
            SELECT count(*) FROM question_tags qt JOIN tags t ON t.id = qt.tag_id
            WHERE qt.question_id = q.id AND t.slug IN (SELECT value FROM json_each($6))))
     ORDER BY q.id LIMIT $7",
    // `WHERE true` keeps SQLite's parser from reading ON CONFLICT as a join constraint.
    insert_tags: "INSERT INTO tags (slug)
     SELECT value FROM json_each($1) WHERE true ON CONFLICT (slug) DO NOTHING",
    tag_ids: "SELECT t.slug, t.id FROM json_each($1) j JOIN tags t ON t.slug = j.value",
    insert_question_tags: "INSERT INTO question_tags (question_id, tag_id, position)
     SELECT $1, t.id, j.key FROM json_each($2) j JOIN tags t ON t.slug = j.value",
    insert_categories: "INSERT INTO categories (slug, name, created_at)
     SELECT s.value, n.value, $1 FROM json_each($2) s JOIN json_each($3) n ON n.key = s.key
     WHERE true ON CONFLICT (slug) DO NOTHING",
    find_by_external_id: "SELECT j.key AS item, q.id, q.import_hash
     FROM json_each($1) j JOIN questions q ON q.external_id = j.value",
    find_by_hash: "SELECT j.key AS item, min(q.id) AS id, q.import_hash
     FROM json_each($1) j JOIN questions q ON q.import_hash = j.value GROUP BY j.key",
    pool_attributes: "SELECT category_id, difficulty,
        (SELECT json_group_array(tag_id) FROM question_tags WHERE question_id = $1)
     FROM questions WHERE id = $1",
};

impl QuestionSql for SqliteConnection {
    /// Assigned here rather than by SQLite, so the rows of a batch can refer to them without
    /// reading them back; the one writer means nobody else takes them meanwhile.
    /// AUTOINCREMENT's high-water mark covers deleted ids: none is reused.
    async fn new_question_ids(&mut self, n: usize) -> sqlx::Result<Vec<i64>> {
        let base: i64 = sqlx::query_scalar(
            "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'questions'), 0),
                        coalesce((SELECT max(id) FROM questions), 0))",
        )
        .fetch_one(&mut *self)
        .await?;
        Ok((1..=n as i64).map(|i| base + i).collect())
    }

    /// Each set of rows is one JSON array of arrays, read by `json_each`.
    async fn insert_batch(&mut self, b: &NewBatch<'_>) -> sqlx::Result<()> {
        sqlx::query(
            "INSERT INTO questions (id, title, body, category_id, difficulty, created_at,
                                    updated_at, external_id, import_hash)
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4,
                    value ->> 5, value ->> 6, value ->> 7, value ->> 8
             FROM json_each($1)",
        )
        .bind(json(&b.questions))
        .execute(&mut *self)
        .await?;
        if !b.answers.is_empty() {
            sqlx::query(
                "INSERT INTO answers (question_id, body, created_at, updated_at)
                 SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each($1)",
            )
            .bind(json(&b.answers))
            .execute(&mut *self)
            .await?;
        }
        if !b.question_tags.is_empty() {
            sqlx::query(
                "INSERT INTO question_tags (question_id, tag_id, position)
                 SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each($1)",
            )
            .bind(json(&b.question_tags))
            .execute(&mut *self)
            .await?;
        }
        sqlx::query(
            "INSERT INTO quiz_slots (pool, slot, question_id)
             SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each($1)",
        )
        .bind(json(&b.slots))
        .execute(&mut *self)
        .await?;
        sqlx::query(
            "INSERT INTO quiz_pools (pool, size) SELECT value ->> 0, value ->> 1 FROM json_each($1)
             WHERE true ON CONFLICT (pool) DO UPDATE SET size = excluded.size",
        )
        .bind(json(&b.pool_sizes))
        .execute(&mut *self)
        .await?;
        Ok(())
    }
}

/// Rows as one JSON array of arrays (tuples serialize as arrays).
fn json(rows: &impl serde::Serialize) -> String {
    serde_json::to_string(rows).expect("rows serialize")
}
