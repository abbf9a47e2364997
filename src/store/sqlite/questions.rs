//! Questions with their tags and answers: reads, and the write paths of `store/writes.rs`
//! inside SQLite's one write transaction.

use super::SqliteStore;
use crate::domain::import::ImportItem;
use crate::domain::{
    Answer, Markdown, NewQuestion, Precondition, Question, QuestionFilter, QuestionPatch,
};
use crate::store::model::{BatchOutcome, ListPage, Written, page};
use crate::store::writes::{self, Rows};
use crate::store::{StoreResult, now_micros};
use sqlx::SqliteConnection;

impl SqliteStore {
    /// Runs `f` in the one write transaction and commits what it did (nothing on error).
    pub(super) async fn write<T>(
        &self,
        f: impl AsyncFnOnce(&mut SqliteConnection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut tx = self.begin_write().await?;
        let out = f(&mut tx).await?;
        tx.commit().await?;
        Ok(out)
    }

    pub async fn get_question(&self, id: i64) -> StoreResult<Question> {
        let mut conn = self.read.acquire().await?;
        writes::load_question(&mut *conn, id).await
    }

    pub async fn get_questions(&self, ids: &[i64]) -> StoreResult<Vec<Question>> {
        let mut conn = self.read.acquire().await?;
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
        let (ids, next_after) = page(ids.into_iter().map(|r| r.0).collect(), limit);
        let mut conn = self.read.acquire().await?;
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
        let mut conn = self.read.acquire().await?;
        conn.question_version(question_id).await?;
        let rows: Vec<crate::store::model::AnswerRow> = sqlx::query_as(
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
