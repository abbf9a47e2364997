//! The question statements PostgreSQL spells its own way: sets of values travel as arrays
//! through `unnest` (`WITH ORDINALITY` for positions) and `ANY`, rows aggregate into JSON
//! with `json_agg`, and new ids come from the table's sequence.

use crate::store::dialect::QuestionTexts;
use crate::store::model::NewBatch;
use crate::store::statements::QuestionSql;
use sqlx::PgConnection;

pub(super) const TEXTS: QuestionTexts = QuestionTexts {
    load_questions: "SELECT q.id, q.title, q.body,
        c.slug AS category_slug, c.name AS category_name, q.difficulty, q.created_at,
        q.updated_at, q.version, q.external_id,
        coalesce((SELECT json_agg(t.slug ORDER BY qt.position)
                  FROM question_tags qt JOIN tags t ON t.id = qt.tag_id
                  WHERE qt.question_id = q.id), '[]')::text AS tags_json,
        coalesce((SELECT json_agg(json_build_array(a.id, a.body, a.created_at, a.updated_at,
                                                   a.version) ORDER BY a.id)
                  FROM answers a WHERE a.question_id = q.id), '[]')::text AS answers_json
     FROM questions q JOIN categories c ON c.id = q.category_id
     WHERE q.id = ANY($1)",
    list_question_ids: "SELECT q.id FROM questions q
     WHERE q.id > $1
       AND ($2::text IS NULL OR q.category_id = (SELECT id FROM categories WHERE slug = $2))
       AND ($3::text IS NULL OR q.difficulty = $3)
       AND ($4::bigint IS NULL OR q.updated_at >= $4)
       AND ($5 = 0 OR $5 = (
            SELECT count(*) FROM question_tags qt JOIN tags t ON t.id = qt.tag_id
            WHERE qt.question_id = q.id AND t.slug = ANY($6)))
     ORDER BY q.id LIMIT $7",
    insert_tags: "INSERT INTO tags (slug) SELECT unnest($1::text[]) ON CONFLICT (slug) DO NOTHING",
    tag_ids: "SELECT slug, id FROM tags WHERE slug = ANY($1)",
    insert_question_tags: "INSERT INTO question_tags (question_id, tag_id, position)
     SELECT $1, t.id, s.position - 1
     FROM unnest($2::text[]) WITH ORDINALITY AS s(slug, position)
     JOIN tags t ON t.slug = s.slug",
    insert_categories: "INSERT INTO categories (slug, name, created_at)
     SELECT s, n, $1 FROM unnest($2::text[], $3::text[]) AS x(s, n)
     ON CONFLICT (slug) DO NOTHING",
    find_by_external_id: "SELECT j.n - 1 AS item, q.id, q.import_hash
     FROM unnest($1::text[]) WITH ORDINALITY AS j(ext, n)
     JOIN questions q ON q.external_id = j.ext",
    find_by_hash: "SELECT j.n - 1 AS item, min(q.id) AS id, min(q.import_hash) AS import_hash
     FROM unnest($1::text[]) WITH ORDINALITY AS j(h, n)
     JOIN questions q ON q.import_hash = j.h GROUP BY j.n",
    pool_attributes: "SELECT category_id, difficulty,
        coalesce((SELECT json_agg(tag_id) FROM question_tags WHERE question_id = $1), '[]')::text
     FROM questions WHERE id = $1",
};

impl QuestionSql for PgConnection {
    /// Taken from the sequence up front, so the rows of a batch can refer to them.
    async fn new_question_ids(&mut self, n: usize) -> sqlx::Result<Vec<i64>> {
        let mut ids: Vec<i64> = sqlx::query_scalar(
            "SELECT nextval(pg_get_serial_sequence('questions', 'id')) FROM generate_series(1, $1)",
        )
        .bind(n as i64)
        .fetch_all(&mut *self)
        .await?;
        ids.sort_unstable();
        Ok(ids)
    }

    /// Each set of rows travels as one array per column, read by `unnest`.
    async fn insert_batch(&mut self, b: &NewBatch<'_>) -> sqlx::Result<()> {
        let q = &b.questions;
        sqlx::query(
            "INSERT INTO questions (id, title, body, category_id, difficulty, created_at,
                                    updated_at, external_id, import_hash)
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[],
                                  $6::bigint[], $7::bigint[], $8::text[], $9::text[])",
        )
        .bind(q.iter().map(|r| r.0).collect::<Vec<_>>())
        .bind(q.iter().map(|r| r.1).collect::<Vec<_>>())
        .bind(q.iter().map(|r| r.2).collect::<Vec<_>>())
        .bind(q.iter().map(|r| r.3).collect::<Vec<_>>())
        .bind(q.iter().map(|r| r.4).collect::<Vec<_>>())
        .bind(q.iter().map(|r| r.5).collect::<Vec<_>>())
        .bind(q.iter().map(|r| r.6).collect::<Vec<_>>())
        .bind(q.iter().map(|r| r.7).collect::<Vec<_>>())
        .bind(q.iter().map(|r| r.8).collect::<Vec<_>>())
        .execute(&mut *self)
        .await?;
        if !b.answers.is_empty() {
            let a = &b.answers;
            sqlx::query(
                "INSERT INTO answers (question_id, body, created_at, updated_at)
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[])",
            )
            .bind(a.iter().map(|r| r.0).collect::<Vec<_>>())
            .bind(a.iter().map(|r| r.1).collect::<Vec<_>>())
            .bind(a.iter().map(|r| r.2).collect::<Vec<_>>())
            .bind(a.iter().map(|r| r.3).collect::<Vec<_>>())
            .execute(&mut *self)
            .await?;
        }
        if !b.question_tags.is_empty() {
            let t = &b.question_tags;
            sqlx::query(
                "INSERT INTO question_tags (question_id, tag_id, position)
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])",
            )
            .bind(t.iter().map(|r| r.0).collect::<Vec<_>>())
            .bind(t.iter().map(|r| r.1).collect::<Vec<_>>())
            .bind(t.iter().map(|r| r.2).collect::<Vec<_>>())
            .execute(&mut *self)
            .await?;
        }
        let s = &b.slots;
        sqlx::query(
            "INSERT INTO quiz_slots (pool, slot, question_id)
             SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])",
        )
        .bind(s.iter().map(|r| r.0.as_str()).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.1).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.2).collect::<Vec<_>>())
        .execute(&mut *self)
        .await?;
        let p = &b.pool_sizes;
        sqlx::query(
            "INSERT INTO quiz_pools (pool, size) SELECT * FROM unnest($1::text[], $2::bigint[])
             ON CONFLICT (pool) DO UPDATE SET size = excluded.size",
        )
        .bind(p.iter().map(|r| r.0.as_str()).collect::<Vec<_>>())
        .bind(p.iter().map(|r| r.1).collect::<Vec<_>>())
        .execute(&mut *self)
        .await?;
        Ok(())
    }
}
