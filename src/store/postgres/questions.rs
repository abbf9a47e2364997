//! Questions with their tags and answers: reads, the write paths of `store/writes.rs` inside a
//! change-log transaction, and the statements they are made of on PostgreSQL ([`Rows`] for its
//! connection). Sets of rows travel as arrays through `unnest`.

use super::PgStore;
use super::quiz::append_to_pools;
use crate::domain::import::ImportItem;
use crate::domain::{
    Answer, Markdown, NewQuestion, Precondition, Question, QuestionFilter, QuestionPatch,
    QuestionSize, Tags,
};
use crate::store::model::{
    AnswerRow, BatchOutcome, Card, ListPage, NewRows, Pool, QuestionRow, Written, page,
    questions_in_order, wanted_categories,
};
use crate::store::writes::{self, Found, Rows};
use crate::store::{StoreError, StoreResult, now_micros};
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

impl PgStore {
    /// Runs `f` in a change-log transaction (see the module docs of `store/postgres`) and
    /// commits what it did (nothing on error).
    pub(super) async fn write<T>(
        &self,
        f: impl AsyncFnOnce(&mut PgConnection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        // Not getting a turn in time is reported like not getting a connection: busy, 503.
        let _gate = tokio::time::timeout(super::GATE_TIMEOUT, self.write_gate.lock())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?;
        let mut tx = self.begin_changes().await?;
        let out = f(&mut tx).await?;
        tx.commit().await?;
        Ok(out)
    }

    pub async fn get_question(&self, id: i64) -> StoreResult<Question> {
        let mut conn = self.pool.acquire().await?;
        writes::load_question(&mut *conn, id).await
    }

    pub async fn get_questions(&self, ids: &[i64]) -> StoreResult<Vec<Question>> {
        let mut conn = self.pool.acquire().await?;
        conn.load_questions(ids).await
    }

    pub async fn list_questions(
        &self,
        filter: &QuestionFilter,
        after: i64,
        limit: i64,
    ) -> StoreResult<ListPage> {
        let tags: Vec<&str> = filter.tags.iter().map(|t| t.as_str()).collect();
        let ids: Vec<(i64,)> = sqlx::query_as(
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
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?;
        let (ids, next_after) = page(ids.into_iter().map(|r| r.0).collect(), limit);
        let mut conn = self.pool.acquire().await?;
        let items = conn.load_questions(&ids).await?;
        Ok(ListPage { items, next_after })
    }

    pub async fn create_question(&self, new: &NewQuestion) -> StoreResult<Written<Question>> {
        self.write(async |c| writes::create_question(c, new, now_micros()).await)
            .await
    }

    pub async fn patch_question(
        &self,
        id: i64,
        patch: &QuestionPatch,
        expected: &Precondition,
    ) -> StoreResult<Written<Question>> {
        self.write(async |c| writes::patch_question(c, id, patch, expected, now_micros()).await)
            .await
    }

    pub async fn delete_question(&self, id: i64, expected: &Precondition) -> StoreResult<i64> {
        self.write(async |c| writes::delete_question(c, id, expected, now_micros()).await)
            .await
    }

    pub async fn list_answers(&self, question_id: i64) -> StoreResult<Vec<Answer>> {
        let mut conn = self.pool.acquire().await?;
        conn.question_version(question_id).await?;
        let rows: Vec<AnswerRow> = sqlx::query_as(
            "SELECT id, question_id, body, created_at, updated_at, version FROM answers
             WHERE question_id = $1 ORDER BY id",
        )
        .bind(question_id)
        .fetch_all(&mut *conn)
        .await?;
        Ok(rows.into_iter().map(Answer::from).collect())
    }

    pub async fn get_answer(&self, id: i64) -> StoreResult<Answer> {
        let mut conn = self.pool.acquire().await?;
        conn.fetch_answer(id).await
    }

    pub async fn add_answer(
        &self,
        question_id: i64,
        body: &Markdown,
    ) -> StoreResult<Written<Answer>> {
        self.write(async |c| writes::add_answer(c, question_id, body, now_micros()).await)
            .await
    }

    pub async fn update_answer(
        &self,
        id: i64,
        body: &Markdown,
        expected: &Precondition,
    ) -> StoreResult<Written<Answer>> {
        self.write(async |c| writes::update_answer(c, id, body, expected, now_micros()).await)
            .await
    }

    pub async fn delete_answer(&self, id: i64, expected: &Precondition) -> StoreResult<(i64, i64)> {
        self.write(async |c| writes::delete_answer(c, id, expected, now_micros()).await)
            .await
    }

    pub async fn import_batch(&self, items: &[ImportItem]) -> StoreResult<BatchOutcome> {
        self.write(async |c| writes::import_batch(c, items, now_micros()).await)
            .await
    }
}

impl Rows for PgConnection {
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

    async fn question_version(&mut self, id: i64) -> StoreResult<i64> {
        let row: Option<i64> = sqlx::query_scalar("SELECT version FROM questions WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self)
            .await?;
        row.ok_or(StoreError::QuestionNotFound(id))
    }

    async fn fetch_answer(&mut self, id: i64) -> StoreResult<Answer> {
        let row: Option<AnswerRow> = sqlx::query_as(
            "SELECT id, question_id, body, created_at, updated_at, version FROM answers WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *self)
        .await?;
        row.map(Answer::from).ok_or(StoreError::AnswerNotFound(id))
    }

    async fn question_size(&mut self, id: i64) -> sqlx::Result<QuestionSize> {
        // length() counts characters of text, as the domain does.
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT (SELECT count(*) FROM answers WHERE question_id = $1),
                    (length(title) + coalesce(length(body), 0)
                      + coalesce((SELECT sum(length(body)) FROM answers WHERE question_id = $1), 0))::bigint
             FROM questions WHERE id = $1",
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
        let row: Option<i64> = sqlx::query_scalar("SELECT id FROM categories WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&mut *self)
            .await?;
        row.ok_or_else(|| StoreError::UnknownCategory(slug.to_string()))
    }

    async fn tag_id(&mut self, slug: &str) -> StoreResult<i64> {
        let row: Option<i64> = sqlx::query_scalar("SELECT id FROM tags WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&mut *self)
            .await?;
        row.ok_or_else(|| StoreError::UnknownTag(slug.to_string()))
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

    async fn last_review(&mut self, learner: &str, question_id: i64) -> sqlx::Result<Option<i64>> {
        sqlx::query_scalar(
            "SELECT last_review FROM review_cards WHERE learner = $1 AND question_id = $2",
        )
        .bind(learner)
        .bind(question_id)
        .fetch_optional(&mut *self)
        .await
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
             VALUES ($1, $2, $3, $4, $5, $6, $7)
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
             VALUES ($1, $2, $3, $4, $5)",
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
                title = coalesce($1, title),
                body = CASE WHEN $2 THEN $3 ELSE body END,
                category_id = coalesce($4, category_id),
                difficulty = coalesce($5, difficulty),
                updated_at = $6,
                version = version + 1
             WHERE id = $7",
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

    async fn delete_answers_of(&mut self, question_id: i64) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM answers WHERE question_id = $1")
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
        sqlx::query_scalar(
            "INSERT INTO answers (question_id, body, created_at, updated_at) VALUES ($1, $2, $3, $3)
             RETURNING id",
        )
        .bind(question_id)
        .bind(body.as_str())
        .bind(now)
        .fetch_one(&mut *self)
        .await
    }

    async fn update_answer_body(&mut self, id: i64, body: &Markdown, now: i64) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE answers SET body = $1, updated_at = $2, version = version + 1 WHERE id = $3",
        )
        .bind(body.as_str())
        .bind(now)
        .bind(id)
        .execute(&mut *self)
        .await?;
        Ok(())
    }

    async fn delete_answer_row(&mut self, id: i64) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM answers WHERE id = $1")
            .bind(id)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn delete_question_row(&mut self, id: i64) -> sqlx::Result<()> {
        sqlx::query("DELETE FROM questions WHERE id = $1")
            .bind(id)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn touch_question(&mut self, id: i64, now: i64) -> sqlx::Result<()> {
        sqlx::query("UPDATE questions SET version = version + 1, updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    /// The caller's transaction was begun by `begin_changes`, so it holds the change-log lock.
    async fn record_change(&mut self, question_id: i64, now: i64) -> sqlx::Result<i64> {
        sqlx::query_scalar(
            "INSERT INTO index_changes (question_id, created_at) VALUES ($1, $2) RETURNING seq",
        )
        .bind(question_id)
        .bind(now)
        .fetch_one(&mut *self)
        .await
    }

    async fn pool_attributes(&mut self, id: i64) -> sqlx::Result<Option<(i64, String, Vec<i64>)>> {
        sqlx::query_as(
            "SELECT category_id, difficulty,
                    array(SELECT tag_id FROM question_tags WHERE question_id = $1)
             FROM questions WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *self)
        .await
    }

    async fn slots_of(&mut self, question_id: i64) -> sqlx::Result<Vec<(String, i64)>> {
        sqlx::query_as("SELECT pool, slot FROM quiz_slots WHERE question_id = $1")
            .bind(question_id)
            .fetch_all(&mut *self)
            .await
    }

    async fn remove_from_pool(&mut self, pool: &str, slot: i64) -> sqlx::Result<()> {
        let last: i64 = sqlx::query_scalar(
            "UPDATE quiz_pools SET size = size - 1 WHERE pool = $1 RETURNING size + 1",
        )
        .bind(pool)
        .fetch_one(&mut *self)
        .await?;
        sqlx::query("DELETE FROM quiz_slots WHERE pool = $1 AND slot = $2")
            .bind(pool)
            .bind(slot)
            .execute(&mut *self)
            .await?;
        if slot != last {
            sqlx::query("UPDATE quiz_slots SET slot = $1 WHERE pool = $2 AND slot = $3")
                .bind(slot)
                .bind(pool)
                .bind(last)
                .execute(&mut *self)
                .await?;
        }
        Ok(())
    }

    async fn add_to_pool(&mut self, pool: &str, question_id: i64) -> sqlx::Result<()> {
        let size: i64 = sqlx::query_scalar(
            "INSERT INTO quiz_pools (pool, size) VALUES ($1, 1)
             ON CONFLICT (pool) DO UPDATE SET size = quiz_pools.size + 1 RETURNING size",
        )
        .bind(pool)
        .fetch_one(&mut *self)
        .await?;
        sqlx::query("INSERT INTO quiz_slots (pool, slot, question_id) VALUES ($1, $2, $3)")
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
        let (index, external): (Vec<i64>, Vec<&str>) = keys.iter().copied().unzip();
        sqlx::query_as(
            "SELECT j.i, q.id, q.import_hash FROM unnest($1::bigint[], $2::text[]) AS j(i, ext)
             JOIN questions q ON q.external_id = j.ext",
        )
        .bind(&index)
        .bind(&external)
        .fetch_all(&mut *self)
        .await
    }

    async fn find_by_hash(&mut self, keys: &[(i64, &str)]) -> sqlx::Result<Vec<Found>> {
        let (index, hash): (Vec<i64>, Vec<&str>) = keys.iter().copied().unzip();
        sqlx::query_as(
            "SELECT j.i, min(q.id), min(q.import_hash)
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

    async fn set_import_hash(&mut self, id: i64, hash: &str) -> sqlx::Result<()> {
        sqlx::query("UPDATE questions SET import_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(id)
            .execute(&mut *self)
            .await?;
        Ok(())
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
