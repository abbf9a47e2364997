//! Questions with their tags and answers: reads, and writes that append to the index change log
//! in the same transaction.

use super::SqliteStore;
use super::quiz::sync_pools;
use super::rows::{
    apply_patch, category_id, insert_answer, insert_new, question_size, record_change,
    touch_question,
};
use crate::domain::{
    Answer, Markdown, NewQuestion, Precondition, Question, QuestionFilter, QuestionPatch,
};
use crate::store::model::{
    AnswerRow, ListPage, NewRows, QuestionRow, Written, check_version, questions_in_order,
};
use crate::store::{StoreError, StoreResult, now_micros};
use sqlx::SqliteConnection;

const QUESTION_COLUMNS: &str = "q.id, q.title, q.body, c.slug AS category_slug, \
     c.name AS category_name, q.difficulty, q.created_at, q.updated_at, q.version, q.external_id";

/// Loads full questions (tags and answers included) for `ids`, in the order of `ids`; ids
/// with no row are skipped. One statement whatever the number of ids: tags and answers come
/// back as JSON arrays, which saves two round trips to the database thread per call.
async fn load_questions(conn: &mut SqliteConnection, ids: &[i64]) -> StoreResult<Vec<Question>> {
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
    questions_in_order(ids, rows)
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

impl SqliteStore {
    pub async fn get_question(&self, id: i64) -> StoreResult<Question> {
        let mut conn = self.read.acquire().await?;
        load_question(&mut conn, id).await
    }

    pub async fn get_questions(&self, ids: &[i64]) -> StoreResult<Vec<Question>> {
        let mut conn = self.read.acquire().await?;
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
