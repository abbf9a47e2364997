//! Questions with their tags and answers, their quiz-pool slots and the change log, and bulk
//! import: the PostgreSQL spelling of `store/sqlite/{questions,rows,import}.rs`. Sets of rows
//! travel as arrays through `unnest`.

use super::PgStore;
use super::quiz::{append_to_pools, sync_pools};
use crate::domain::import::ImportItem;
use crate::domain::{
    Answer, Markdown, NewQuestion, Precondition, Question, QuestionFilter, QuestionPatch,
    QuestionSize, Tags,
};
use crate::store::model::{
    AnswerRow, BatchOutcome, Existing, ListPage, NewRows, Pool, QuestionRow, Written,
    check_version, classify, import_patch, questions_in_order, wanted_categories,
};
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

async fn load_questions(conn: &mut PgConnection, ids: &[i64]) -> StoreResult<Vec<Question>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<QuestionRow> = sqlx::query_as(LOAD_QUESTIONS)
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
    questions_in_order(ids, rows)
}

async fn load_question(conn: &mut PgConnection, id: i64) -> StoreResult<Question> {
    load_questions(conn, &[id])
        .await?
        .pop()
        .ok_or(StoreError::QuestionNotFound(id))
}

async fn question_version(conn: &mut PgConnection, id: i64) -> StoreResult<i64> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT version FROM questions WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| r.0).ok_or(StoreError::QuestionNotFound(id))
}

async fn fetch_answer(conn: &mut PgConnection, id: i64) -> StoreResult<Answer> {
    let row: Option<AnswerRow> = sqlx::query_as(
        "SELECT id, question_id, body, created_at, updated_at, version FROM answers WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(Answer::from).ok_or(StoreError::AnswerNotFound(id))
}

impl PgStore {
    pub async fn get_question(&self, id: i64) -> StoreResult<Question> {
        let mut conn = self.pool.acquire().await?;
        load_question(&mut conn, id).await
    }

    pub async fn get_questions(&self, ids: &[i64]) -> StoreResult<Vec<Question>> {
        let mut conn = self.pool.acquire().await?;
        load_questions(&mut conn, ids).await
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
        let mut ids: Vec<i64> = ids.into_iter().map(|r| r.0).collect();
        let next_after = if ids.len() as i64 > limit {
            ids.truncate(limit as usize);
            ids.last().copied()
        } else {
            None
        };
        let mut conn = self.pool.acquire().await?;
        let items = load_questions(&mut conn, &ids).await?;
        Ok(ListPage { items, next_after })
    }

    pub async fn create_question(&self, new: &NewQuestion) -> StoreResult<Written<Question>> {
        let mut tx = self.begin_changes().await?;
        let now = now_micros();
        let category = category_id(&mut tx, new.category.as_str()).await?;
        let rows = NewRows::created(new, category, now);
        let (ids, seq) = insert_new(&mut tx, &[rows], now).await?;
        let value = load_question(&mut tx, ids[0]).await?;
        tx.commit().await?;
        Ok(Written { value, seq })
    }

    pub async fn patch_question(
        &self,
        id: i64,
        patch: &QuestionPatch,
        expected: &Precondition,
    ) -> StoreResult<Written<Question>> {
        let mut tx = self.begin_changes().await?;
        let current = question_version(&mut tx, id).await?;
        check_version(current, expected)?;
        if patch.is_empty() {
            let value = load_question(&mut tx, id).await?;
            return Ok(Written { value, seq: 0 });
        }
        let seq = apply_patch(&mut tx, id, patch, now_micros()).await?;
        let value = load_question(&mut tx, id).await?;
        tx.commit().await?;
        Ok(Written { value, seq })
    }

    pub async fn delete_question(&self, id: i64, expected: &Precondition) -> StoreResult<i64> {
        let mut tx = self.begin_changes().await?;
        let current = question_version(&mut tx, id).await?;
        check_version(current, expected)?;
        sqlx::query("DELETE FROM questions WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sync_pools(&mut tx, id).await?;
        let seq = record_change(&mut tx, id, now_micros()).await?;
        tx.commit().await?;
        Ok(seq)
    }

    pub async fn list_answers(&self, question_id: i64) -> StoreResult<Vec<Answer>> {
        let mut conn = self.pool.acquire().await?;
        question_version(&mut conn, question_id).await?;
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
        fetch_answer(&mut conn, id).await
    }

    pub async fn add_answer(
        &self,
        question_id: i64,
        body: &Markdown,
    ) -> StoreResult<Written<Answer>> {
        let mut tx = self.begin_changes().await?;
        question_version(&mut tx, question_id).await?;
        let before = question_size(&mut tx, question_id).await?;
        let now = now_micros();
        let id = insert_answer(&mut tx, question_id, body, now).await?;
        question_size(&mut tx, question_id)
            .await?
            .check_growth(before)?;
        touch_question(&mut tx, question_id, now).await?;
        let seq = record_change(&mut tx, question_id, now).await?;
        let value = fetch_answer(&mut tx, id).await?;
        tx.commit().await?;
        Ok(Written { value, seq })
    }

    pub async fn update_answer(
        &self,
        id: i64,
        body: &Markdown,
        expected: &Precondition,
    ) -> StoreResult<Written<Answer>> {
        let mut tx = self.begin_changes().await?;
        let before = fetch_answer(&mut tx, id).await?;
        check_version(before.version, expected)?;
        let size_before = question_size(&mut tx, before.question_id).await?;
        let now = now_micros();
        sqlx::query(
            "UPDATE answers SET body = $1, updated_at = $2, version = version + 1 WHERE id = $3",
        )
        .bind(body.as_str())
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        question_size(&mut tx, before.question_id)
            .await?
            .check_growth(size_before)?;
        touch_question(&mut tx, before.question_id, now).await?;
        let seq = record_change(&mut tx, before.question_id, now).await?;
        let value = fetch_answer(&mut tx, id).await?;
        tx.commit().await?;
        Ok(Written { value, seq })
    }

    pub async fn delete_answer(&self, id: i64, expected: &Precondition) -> StoreResult<(i64, i64)> {
        let mut tx = self.begin_changes().await?;
        let before = fetch_answer(&mut tx, id).await?;
        check_version(before.version, expected)?;
        let now = now_micros();
        sqlx::query("DELETE FROM answers WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        touch_question(&mut tx, before.question_id, now).await?;
        let seq = record_change(&mut tx, before.question_id, now).await?;
        tx.commit().await?;
        Ok((seq, before.question_id))
    }

    pub async fn import_batch(&self, items: &[ImportItem]) -> StoreResult<BatchOutcome> {
        let mut tx = self.begin_changes().await?;
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
                    outcome.last_seq = apply_patch(&mut tx, *id, &import_patch(item), now).await?;
                    sqlx::query("UPDATE questions SET import_hash = $1 WHERE id = $2")
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

pub(super) async fn category_id(conn: &mut PgConnection, slug: &str) -> StoreResult<i64> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM categories WHERE slug = $1")
        .bind(slug)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| r.0)
        .ok_or_else(|| StoreError::UnknownCategory(slug.to_string()))
}

async fn set_tags(conn: &mut PgConnection, question_id: i64, tags: &Tags) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM question_tags WHERE question_id = $1")
        .bind(question_id)
        .execute(&mut *conn)
        .await?;
    let slugs: Vec<&str> = tags.as_slice().iter().map(|t| t.as_str()).collect();
    sqlx::query("INSERT INTO tags (slug) SELECT unnest($1::text[]) ON CONFLICT (slug) DO NOTHING")
        .bind(&slugs)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO question_tags (question_id, tag_id, position)
         SELECT $1, t.id, s.position - 1
         FROM unnest($2::text[]) WITH ORDINALITY AS s(slug, position)
         JOIN tags t ON t.slug = s.slug",
    )
    .bind(question_id)
    .bind(&slugs)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_answer(
    conn: &mut PgConnection,
    question_id: i64,
    body: &Markdown,
    now: i64,
) -> sqlx::Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO answers (question_id, body, created_at, updated_at) VALUES ($1, $2, $3, $3)
         RETURNING id",
    )
    .bind(question_id)
    .bind(body.as_str())
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

/// Appends to the change log; the caller's transaction (begun by `begin_changes`, so holding
/// the change-log lock) makes it atomic with the write.
async fn record_change(conn: &mut PgConnection, question_id: i64, now: i64) -> sqlx::Result<i64> {
    let (seq,): (i64,) = sqlx::query_as(
        "INSERT INTO index_changes (question_id, created_at) VALUES ($1, $2) RETURNING seq",
    )
    .bind(question_id)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(seq)
}

/// A question's answers changed: its representation (and so its ETag) changed too.
async fn touch_question(conn: &mut PgConnection, question_id: i64, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE questions SET version = version + 1, updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(question_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The stored size of a question (zero when it does not exist).
async fn question_size(conn: &mut PgConnection, id: i64) -> sqlx::Result<QuestionSize> {
    // length() counts characters of text, as the domain does.
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT (SELECT count(*) FROM answers WHERE question_id = $1),
                (length(title) + coalesce(length(body), 0)
                  + coalesce((SELECT sum(length(body)) FROM answers WHERE question_id = $1), 0))::bigint
         FROM questions WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(
        row.map_or(QuestionSize::default(), |(answers, chars)| QuestionSize {
            answers: answers as usize,
            chars: chars as usize,
        }),
    )
}

/// Applies a non-empty merge patch to an existing question, bumps its version and logs the
/// change; returns the change's sequence.
async fn apply_patch(
    conn: &mut PgConnection,
    id: i64,
    patch: &QuestionPatch,
    now: i64,
) -> StoreResult<i64> {
    let before = question_size(conn, id).await?;
    let category = match &patch.category {
        Some(slug) => Some(category_id(conn, slug.as_str()).await?),
        None => None,
    };
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
    .bind(category)
    .bind(patch.difficulty.map(|d| d.as_str()))
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if let Some(tags) = &patch.tags {
        set_tags(conn, id, tags).await?;
    }
    if let Some(answers) = &patch.answers {
        sqlx::query("DELETE FROM answers WHERE question_id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        for a in answers {
            insert_answer(conn, id, a, now).await?;
        }
    }
    question_size(conn, id).await?.check_growth(before)?;
    sync_pools(conn, id).await?;
    Ok(record_change(conn, id, now).await?)
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

/// Looks every item up by its identity, in two statements.
async fn find_existing(
    conn: &mut PgConnection,
    items: &[ImportItem],
) -> StoreResult<Vec<Existing>> {
    let (mut ext_i, mut ext_id, mut hash_i, mut hash) = (vec![], vec![], vec![], vec![]);
    for (i, item) in items.iter().enumerate() {
        match &item.external_id {
            Some(id) => {
                ext_i.push(i as i64);
                ext_id.push(id.as_str());
            }
            None => {
                hash_i.push(i as i64);
                hash.push(item.hash.as_str());
            }
        }
    }
    let mut found: HashMap<usize, (i64, Option<String>)> = HashMap::new();
    if !ext_i.is_empty() {
        let rows: Vec<(i64, i64, Option<String>)> = sqlx::query_as(
            "SELECT j.i, q.id, q.import_hash FROM unnest($1::bigint[], $2::text[]) AS j(i, ext)
             JOIN questions q ON q.external_id = j.ext",
        )
        .bind(&ext_i)
        .bind(&ext_id)
        .fetch_all(&mut *conn)
        .await?;
        found.extend(rows.into_iter().map(|(i, id, h)| (i as usize, (id, h))));
    }
    if !hash_i.is_empty() {
        let rows: Vec<(i64, i64, Option<String>)> = sqlx::query_as(
            "SELECT j.i, min(q.id), min(q.import_hash)
             FROM unnest($1::bigint[], $2::text[]) AS j(i, h)
             JOIN questions q ON q.import_hash = j.h
             GROUP BY j.i",
        )
        .bind(&hash_i)
        .bind(&hash)
        .fetch_all(&mut *conn)
        .await?;
        found.extend(rows.into_iter().map(|(i, id, h)| (i as usize, (id, h))));
    }
    Ok(classify(items, &found))
}

/// Creates the categories the batch names that do not exist yet; returns slug → id.
async fn ensure_categories(
    conn: &mut PgConnection,
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
    .execute(&mut *conn)
    .await?;
    let all: Vec<(String, i64)> = sqlx::query_as("SELECT slug, id FROM categories")
        .fetch_all(&mut *conn)
        .await?;
    Ok(all.into_iter().collect())
}
