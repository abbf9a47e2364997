//! Questions with their tags and answers: reads, and writes that append to the index change log
//! in the same transaction.

use super::quiz::sync_pools;
use super::rows::{
    NewRows, apply_patch, category_id, insert_answer, insert_new, question_size, record_change,
    touch_question,
};
use super::{Store, StoreError, StoreResult, decode_error, from_micros, now_micros};
use crate::domain::{
    Answer, CategoryRef, Difficulty, Markdown, NewQuestion, Precondition, Question, QuestionFilter,
    QuestionPatch,
};
use sqlx::{FromRow, SqliteConnection};
use std::collections::HashMap;

/// One page of the question list.
#[derive(Debug)]
pub struct ListPage {
    pub items: Vec<Question>,
    /// The id to continue after, when there is another page.
    pub next_after: Option<i64>,
}

/// The result of a write and the sequence number of the index change it recorded.
#[derive(Debug)]
pub struct Written<T> {
    pub value: T,
    pub seq: i64,
}

#[derive(FromRow)]
struct QuestionRow {
    id: i64,
    title: String,
    body: Option<String>,
    category_slug: String,
    category_name: String,
    difficulty: String,
    created_at: i64,
    updated_at: i64,
    version: i64,
    external_id: Option<String>,
    tags_json: String,
    answers_json: String,
}

#[derive(FromRow)]
struct AnswerRow {
    id: i64,
    question_id: i64,
    body: String,
    created_at: i64,
    updated_at: i64,
    version: i64,
}

impl From<AnswerRow> for Answer {
    fn from(r: AnswerRow) -> Self {
        Answer {
            id: r.id,
            question_id: r.question_id,
            body: r.body,
            created_at: from_micros(r.created_at),
            updated_at: from_micros(r.updated_at),
            version: r.version,
        }
    }
}

const QUESTION_COLUMNS: &str = "q.id, q.title, q.body, c.slug AS category_slug, \
     c.name AS category_name, q.difficulty, q.created_at, q.updated_at, q.version, q.external_id";

/// Loads full questions (tags and answers included) for `ids`, in the order of `ids`; ids
/// with no row are skipped. One statement whatever the number of ids: tags and answers come
/// back as JSON arrays, which saves two round trips to the database thread per call.
async fn load_questions(conn: &mut SqliteConnection, ids: &[i64]) -> sqlx::Result<Vec<Question>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids_json = serde_json::to_string(ids).expect("ids serialize");
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
    .bind(&ids_json)
    .fetch_all(&mut *conn)
    .await?;
    let mut by_id: HashMap<i64, Question> = HashMap::with_capacity(rows.len());
    for r in rows {
        let tags: Vec<String> = serde_json::from_str(&r.tags_json).map_err(decode_error)?;
        let answers: Vec<(i64, String, i64, i64, i64)> =
            serde_json::from_str(&r.answers_json).map_err(decode_error)?;
        let q = Question {
            id: r.id,
            title: r.title,
            body: r.body,
            category: CategoryRef {
                slug: r.category_slug,
                name: r.category_name,
            },
            tags,
            // The CHECK constraint admits only the three values.
            difficulty: Difficulty::parse(&r.difficulty).unwrap_or_default(),
            answers: answers
                .into_iter()
                .map(|(id, body, created_at, updated_at, version)| Answer {
                    id,
                    question_id: r.id,
                    body,
                    created_at: from_micros(created_at),
                    updated_at: from_micros(updated_at),
                    version,
                })
                .collect(),
            created_at: from_micros(r.created_at),
            updated_at: from_micros(r.updated_at),
            version: r.version,
            external_id: r.external_id,
        };
        by_id.insert(q.id, q);
    }
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

async fn load_question(conn: &mut SqliteConnection, id: i64) -> StoreResult<Question> {
    load_questions(conn, &[id])
        .await?
        .pop()
        .ok_or(StoreError::QuestionNotFound(id))
}

async fn question_version(conn: &mut SqliteConnection, id: i64) -> StoreResult<i64> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT version FROM questions WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| r.0).ok_or(StoreError::QuestionNotFound(id))
}

fn check_version(current: i64, expected: &Precondition) -> StoreResult<()> {
    if expected.admits(current) {
        Ok(())
    } else {
        Err(StoreError::VersionMismatch { current })
    }
}

impl Store {
    pub async fn get_question(&self, id: i64) -> StoreResult<Question> {
        let mut conn = self.read.acquire().await?;
        load_question(&mut conn, id).await
    }

    /// Full questions for `ids`, in that order, skipping ids that no longer exist.
    pub async fn get_questions(&self, ids: &[i64]) -> StoreResult<Vec<Question>> {
        let mut conn = self.read.acquire().await?;
        Ok(load_questions(&mut conn, ids).await?)
    }

    /// Questions with id greater than `after`, in id order: new rows always land after every
    /// cursor already handed out, so paging stays correct while rows are inserted.
    pub async fn list_questions(
        &self,
        filter: &QuestionFilter,
        after: i64,
        limit: i64,
    ) -> StoreResult<ListPage> {
        let tags: Vec<&str> = filter.tags.iter().map(|t| t.as_str()).collect();
        let ids: Vec<(i64,)> = sqlx::query_as(
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
        .bind(limit + 1)
        .fetch_all(&self.read)
        .await?;
        let mut ids: Vec<i64> = ids.into_iter().map(|r| r.0).collect();
        let next_after = if ids.len() as i64 > limit {
            ids.truncate(limit as usize);
            ids.last().copied()
        } else {
            None
        };
        let mut conn = self.read.acquire().await?;
        let items = load_questions(&mut conn, &ids).await?;
        Ok(ListPage { items, next_after })
    }

    pub async fn create_question(&self, new: &NewQuestion) -> StoreResult<Written<Question>> {
        let mut tx = self.begin_write().await?;
        let now = now_micros();
        let rows = NewRows {
            question: new,
            category_id: category_id(&mut tx, new.category.as_str()).await?,
            created_at: now,
            updated_at: now,
            answer_times: vec![(now, now); new.answers.len()],
            external_id: None,
            import_hash: None,
        };
        let (ids, seq) = insert_new(&mut tx, &[rows], now).await?;
        let value = load_question(&mut tx, ids[0]).await?;
        tx.commit().await?;
        Ok(Written { value, seq })
    }

    /// Applies a merge patch; `expected_version` (from `If-Match`) must still be current.
    /// An empty patch changes nothing and keeps the version.
    pub async fn patch_question(
        &self,
        id: i64,
        patch: &QuestionPatch,
        expected: &Precondition,
    ) -> StoreResult<Written<Question>> {
        let mut tx = self.begin_write().await?;
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
        let mut tx = self.begin_write().await?;
        let current = question_version(&mut tx, id).await?;
        check_version(current, expected)?;
        sqlx::query("DELETE FROM questions WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sync_pools(&mut tx, id).await?;
        let seq = record_change(&mut tx, id, now_micros()).await?;
        tx.commit().await?;
        Ok(seq)
    }

    pub async fn list_answers(&self, question_id: i64) -> StoreResult<Vec<Answer>> {
        let mut conn = self.read.acquire().await?;
        question_version(&mut conn, question_id).await?;
        let rows: Vec<AnswerRow> = sqlx::query_as(
            "SELECT id, question_id, body, created_at, updated_at, version FROM answers
             WHERE question_id = ? ORDER BY id",
        )
        .bind(question_id)
        .fetch_all(&mut *conn)
        .await?;
        Ok(rows.into_iter().map(Answer::from).collect())
    }

    pub async fn get_answer(&self, id: i64) -> StoreResult<Answer> {
        let mut conn = self.read.acquire().await?;
        fetch_answer(&mut conn, id).await
    }

    pub async fn add_answer(
        &self,
        question_id: i64,
        body: &Markdown,
    ) -> StoreResult<Written<Answer>> {
        let mut tx = self.begin_write().await?;
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
        let mut tx = self.begin_write().await?;
        let before = fetch_answer(&mut tx, id).await?;
        check_version(before.version, expected)?;
        let size_before = question_size(&mut tx, before.question_id).await?;
        let now = now_micros();
        sqlx::query(
            "UPDATE answers SET body = ?, updated_at = ?, version = version + 1 WHERE id = ?",
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

    /// Deletes an answer; returns the change's sequence and the answer's question.
    pub async fn delete_answer(&self, id: i64, expected: &Precondition) -> StoreResult<(i64, i64)> {
        let mut tx = self.begin_write().await?;
        let before = fetch_answer(&mut tx, id).await?;
        check_version(before.version, expected)?;
        let now = now_micros();
        sqlx::query("DELETE FROM answers WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        touch_question(&mut tx, before.question_id, now).await?;
        let seq = record_change(&mut tx, before.question_id, now).await?;
        tx.commit().await?;
        Ok((seq, before.question_id))
    }
}

async fn fetch_answer(conn: &mut SqliteConnection, id: i64) -> StoreResult<Answer> {
    let row: Option<AnswerRow> = sqlx::query_as(
        "SELECT id, question_id, body, created_at, updated_at, version FROM answers WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(Answer::from).ok_or(StoreError::AnswerNotFound(id))
}
