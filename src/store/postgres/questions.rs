//! The question statements PostgreSQL spells its own way: sets of rows travel as arrays
//! through `unnest` and `ANY`, and rows aggregate into JSON with `json_agg`.

use super::quiz::append_to_pools;
use crate::domain::import::ImportItem;
use crate::domain::{Question, QuestionFilter, Tags};
use crate::store::StoreResult;
use crate::store::model::{
    FoundRow, NewRows, Pool, QuestionRow, questions_in_order, wanted_categories,
};
use crate::store::questions::QuestionSql;
use sqlx::PgConnection;
use std::collections::HashMap;

const LOAD_QUESTIONS: &str = "SELECT q.id, q.title, q.body, c.slug AS category_slug,
        c.name AS category_name, q.difficulty, q.created_at, q.updated_at, q.version, q.external_id,
        coalesce((SELECT json_agg(t.slug ORDER BY qt.position)
                  FROM question_tags qt JOIN tags t ON t.id = qt.tag_id
                  WHERE qt.question_id = q.id), '[]')::text AS tags_json,
        coalesce((SELECT json_agg(json_build_array(a.id, a.body, a.created_at, a.updated_at,
                                                   a.version) ORDER BY a.id)
                  FROM answers a WHERE a.question_id = q.id), '[]')::text AS answers_json
     FROM questions q JOIN categories c ON c.id = q.category_id
     WHERE q.id = ANY($1)";

impl QuestionSql for PgConnection {
    async fn load_questions(&mut self, ids: &[i64]) -> StoreResult<Vec<Question>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<QuestionRow> = sqlx::query_as(LOAD_QUESTIONS)
            .bind(ids)
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
             WHERE q.id > $1
               AND ($2::text IS NULL OR q.category_id = (SELECT id FROM categories WHERE slug = $2))
               AND ($3::text IS NULL OR q.difficulty = $3)
               AND ($4::bigint IS NULL OR q.updated_at >= $4)
               AND (cardinality($5::text[]) = 0 OR cardinality($5::text[]) = (
                    SELECT count(*) FROM question_tags qt JOIN tags t ON t.id = qt.tag_id
                    WHERE qt.question_id = q.id AND t.slug = ANY($5)))
             ORDER BY q.id LIMIT $6",
        )
        .bind(after)
        .bind(filter.category.as_ref().map(|c| c.as_str()))
        .bind(filter.difficulty.map(|d| d.as_str()))
        .bind(filter.updated_since.map(|t| t.timestamp_micros()))
        .bind(&tags)
        .bind(limit)
        .fetch_all(&mut *self)
        .await
    }

    /// This card's advisory lock serialises two clients syncing reviews of it (perhaps through
    /// two replicas). KEY SHARE on the question makes a concurrent delete wait for this review
    /// (or this review see it gone) instead of failing the insert on the foreign key.
    async fn lock_for_review(&mut self, learner: &str, question_id: i64) -> sqlx::Result<bool> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2::text, 0))")
            .bind(learner)
            .bind(question_id)
            .execute(&mut *self)
            .await?;
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT id FROM questions WHERE id = $1 FOR KEY SHARE")
                .bind(question_id)
                .fetch_optional(&mut *self)
                .await?;
        Ok(exists.is_some())
    }

    async fn set_tags(&mut self, question_id: i64, tags: &Tags) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM question_tags WHERE question_id = $1")
            .bind(question_id)
            .execute(&mut *self)
            .await?;
        let slugs: Vec<&str> = tags.as_slice().iter().map(|t| t.as_str()).collect();
        sqlx::query(
            "INSERT INTO tags (slug) SELECT unnest($1::text[]) ON CONFLICT (slug) DO NOTHING",
        )
        .bind(&slugs)
        .execute(&mut *self)
        .await?;
        sqlx::query(
            "INSERT INTO question_tags (question_id, tag_id, position)
             SELECT $1, t.id, s.position - 1
             FROM unnest($2::text[]) WITH ORDINALITY AS s(slug, position)
             JOIN tags t ON t.slug = s.slug",
        )
        .bind(question_id)
        .bind(&slugs)
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

    async fn find_by_external_id(&mut self, keys: &[(i64, &str)]) -> sqlx::Result<Vec<FoundRow>> {
        let (index, external): (Vec<i64>, Vec<&str>) = keys.iter().copied().unzip();
        sqlx::query_as(
            "SELECT j.i AS item, q.id, q.import_hash FROM unnest($1::bigint[], $2::text[]) AS j(i, ext)
             JOIN questions q ON q.external_id = j.ext",
        )
        .bind(&index)
        .bind(&external)
        .fetch_all(&mut *self)
        .await
    }

    async fn find_by_hash(&mut self, keys: &[(i64, &str)]) -> sqlx::Result<Vec<FoundRow>> {
        let (index, hash): (Vec<i64>, Vec<&str>) = keys.iter().copied().unzip();
        sqlx::query_as(
            "SELECT j.i AS item, min(q.id) AS id, min(q.import_hash) AS import_hash
             FROM unnest($1::bigint[], $2::text[]) AS j(i, h)
             JOIN questions q ON q.import_hash = j.h
             GROUP BY j.i",
        )
        .bind(&index)
        .bind(&hash)
        .fetch_all(&mut *self)
        .await
    }

    async fn ensure_categories(
        &mut self,
        items: &[ImportItem],
        now: i64,
    ) -> StoreResult<HashMap<String, i64>> {
        let (slugs, names): (Vec<&str>, Vec<&str>) = wanted_categories(items).into_iter().unzip();
        sqlx::query(
            "INSERT INTO categories (slug, name, created_at)
             SELECT s, n, $1 FROM unnest($2::text[], $3::text[]) AS x(s, n)
             ON CONFLICT (slug) DO NOTHING",
        )
        .bind(now)
        .bind(&slugs)
        .bind(&names)
        .execute(&mut *self)
        .await?;
        let all: Vec<(String, i64)> = sqlx::query_as("SELECT slug, id FROM categories")
            .fetch_all(&mut *self)
            .await?;
        Ok(all.into_iter().collect())
    }
}

/// Inserts new questions with their tags, answers, quiz-pool slots and change-log entries, in
/// a fixed number of set-based statements whatever their number. Returns the new ids, in the
/// order of `items`, and the last change sequence.
async fn insert_new(
    conn: &mut PgConnection,
    items: &[NewRows<'_>],
    now: i64,
) -> StoreResult<(Vec<i64>, i64)> {
    let mut slugs: Vec<&str> = items
        .iter()
        .flat_map(|i| i.question.tags.as_slice().iter().map(|t| t.as_str()))
        .collect();
    slugs.sort_unstable();
    slugs.dedup();
    sqlx::query("INSERT INTO tags (slug) SELECT unnest($1::text[]) ON CONFLICT (slug) DO NOTHING")
        .bind(&slugs)
        .execute(&mut *conn)
        .await?;
    let tag_ids: HashMap<String, i64> =
        sqlx::query_as::<_, (String, i64)>("SELECT slug, id FROM tags WHERE slug = ANY($1)")
            .bind(&slugs)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();

    // Ids are taken from the sequence up front, so the rows below can refer to them.
    let mut ids: Vec<i64> = sqlx::query_scalar(
        "SELECT nextval(pg_get_serial_sequence('questions', 'id')) FROM generate_series(1, $1)",
    )
    .bind(items.len() as i64)
    .fetch_all(&mut *conn)
    .await?;
    ids.sort_unstable();

    let mut q_cols = QuestionColumns::default();
    let (mut a_question, mut a_body, mut a_created, mut a_updated) =
        (vec![], vec![], vec![], vec![]);
    let (mut t_question, mut t_tag, mut t_position) = (vec![], vec![], vec![]);
    let mut pools: Vec<(Pool, i64)> = Vec::new();
    for (item, &id) in items.iter().zip(&ids) {
        let q = item.question;
        q_cols.push(id, item);
        for (a, (created, updated)) in q.answers.iter().zip(&item.answer_times) {
            a_question.push(id);
            a_body.push(a.as_str());
            a_created.push(*created);
            a_updated.push(*updated);
        }
        let mut tags = Vec::with_capacity(q.tags.as_slice().len());
        for (position, tag) in q.tags.as_slice().iter().enumerate() {
            let tag_id = tag_ids[tag.as_str()];
            t_question.push(id);
            t_tag.push(tag_id);
            t_position.push(position as i64);
            tags.push(tag_id);
        }
        for pool in Pool::of(item.category_id, q.difficulty, &tags) {
            pools.push((pool, id));
        }
    }
    sqlx::query(
        "INSERT INTO questions (id, title, body, category_id, difficulty, created_at, updated_at,
                                external_id, import_hash)
         SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[],
                              $6::bigint[], $7::bigint[], $8::text[], $9::text[])",
    )
    .bind(&q_cols.id)
    .bind(&q_cols.title)
    .bind(&q_cols.body)
    .bind(&q_cols.category_id)
    .bind(&q_cols.difficulty)
    .bind(&q_cols.created_at)
    .bind(&q_cols.updated_at)
    .bind(&q_cols.external_id)
    .bind(&q_cols.import_hash)
    .execute(&mut *conn)
    .await?;
    if !a_question.is_empty() {
        sqlx::query(
            "INSERT INTO answers (question_id, body, created_at, updated_at)
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[])",
        )
        .bind(&a_question)
        .bind(&a_body)
        .bind(&a_created)
        .bind(&a_updated)
        .execute(&mut *conn)
        .await?;
    }
    if !t_question.is_empty() {
        sqlx::query(
            "INSERT INTO question_tags (question_id, tag_id, position)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])",
        )
        .bind(&t_question)
        .bind(&t_tag)
        .bind(&t_position)
        .execute(&mut *conn)
        .await?;
    }
    append_to_pools(conn, &pools).await?;
    let seqs: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO index_changes (question_id, created_at)
         SELECT unnest($1::bigint[]), $2 RETURNING seq",
    )
    .bind(&ids)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    let seq = seqs.into_iter().max().unwrap_or(0);
    Ok((ids, seq))
}

/// New questions' columns, one array each, for `unnest`.
#[derive(Default)]
struct QuestionColumns<'a> {
    id: Vec<i64>,
    title: Vec<&'a str>,
    body: Vec<Option<&'a str>>,
    category_id: Vec<i64>,
    difficulty: Vec<&'static str>,
    created_at: Vec<i64>,
    updated_at: Vec<i64>,
    external_id: Vec<Option<&'a str>>,
    import_hash: Vec<Option<&'a str>>,
}

impl<'a> QuestionColumns<'a> {
    fn push(&mut self, id: i64, item: &NewRows<'a>) {
        let q = item.question;
        self.id.push(id);
        self.title.push(q.title.as_str());
        self.body.push(q.body.as_ref().map(|b| b.as_str()));
        self.category_id.push(item.category_id);
        self.difficulty.push(q.difficulty.as_str());
        self.created_at.push(item.created_at);
        self.updated_at.push(item.updated_at);
        self.external_id.push(item.external_id);
        self.import_hash.push(item.import_hash);
    }
}
