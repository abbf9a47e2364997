//! The question statements, written once on [`Conn`] (with the texts that differ from the
//! dialect), which the write paths (`writes.rs`) and the question operations
//! (`questions.rs`) are made of; and [`QuestionSql`], what each backend does its own way
//! (`sqlite/questions.rs`, `postgres/questions.rs`).

use super::model::{
    AnswerRow, DeletedRow, FoundRow, NewBatch, NewEvent, NewRows, PoolAttributes, QuestionRow,
    SlotRow, questions_in_order, tag_slugs, wanted_categories,
};
use super::sql::{Arg, Conn};
use super::{StoreError, StoreResult};
use crate::domain::import::ImportItem;
use crate::domain::{Answer, Category, Markdown, Question, QuestionPatch, QuestionSize, Tags};
use std::collections::HashMap;

/// The question statements that are more than a text apart between SQLite and PostgreSQL:
/// how new ids are taken, and how a batch of new rows travels (JSON rows through `json_each`,
/// or arrays through `unnest`).
pub(super) trait QuestionSql {
    /// `n` ids for new questions, ascending, never used before (not even by a deleted one).
    async fn new_question_ids(&mut self, n: usize) -> sqlx::Result<Vec<i64>>;
    /// Inserts the batch's questions, answers, tags and pool slots, and sets the pools' sizes,
    /// in a fixed number of statements whatever its size.
    async fn insert_batch(&mut self, batch: &NewBatch<'_>) -> sqlx::Result<()>;
}

impl QuestionSql for Conn<'_> {
    async fn new_question_ids(&mut self, n: usize) -> sqlx::Result<Vec<i64>> {
        match self {
            Conn::Sqlite(c) => c.new_question_ids(n).await,
            Conn::Postgres(c) => c.new_question_ids(n).await,
        }
    }

    async fn insert_batch(&mut self, batch: &NewBatch<'_>) -> sqlx::Result<()> {
        match self {
            Conn::Sqlite(c) => c.insert_batch(batch).await,
            Conn::Postgres(c) => c.insert_batch(batch).await,
        }
    }
}

/// The question statements, written once.
impl Conn<'_> {
    /// Full questions for `ids`, in that order, skipping ids with no row; one statement
    /// whatever the number of ids.
    pub(super) async fn load_questions(&mut self, ids: &[i64]) -> StoreResult<Vec<Question>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = self.dialect().questions.load_questions;
        let rows: Vec<QuestionRow> = self.fetch_all(sql, &[Arg::Ints(ids)]).await?;
        questions_in_order(ids, rows)
    }

    pub(super) async fn load_question(&mut self, id: i64) -> StoreResult<Question> {
        self.load_questions(&[id])
            .await?
            .pop()
            .ok_or(StoreError::QuestionNotFound(id))
    }

    /// The question's version, or `QuestionNotFound`.
    pub(super) async fn question_version(&mut self, id: i64) -> StoreResult<i64> {
        self.value("SELECT version FROM questions WHERE id = $1", &[id.into()])
            .await?
            .ok_or(StoreError::QuestionNotFound(id))
    }

    /// The answer, or `AnswerNotFound`.
    pub(super) async fn fetch_answer(&mut self, id: i64) -> StoreResult<Answer> {
        let row: Option<AnswerRow> = self
            .fetch_optional(
                "SELECT id, question_id, body, created_at, updated_at, version FROM answers
                 WHERE id = $1",
                &[id.into()],
            )
            .await?;
        row.map(Answer::from).ok_or(StoreError::AnswerNotFound(id))
    }

    /// The stored size of a question (zero when it does not exist). `length()` counts
    /// characters of text in both databases, as the domain does.
    pub(super) async fn question_size(&mut self, id: i64) -> sqlx::Result<QuestionSize> {
        let row: Option<(i64, i64)> = self
            .fetch_optional(
                "SELECT (SELECT count(*) FROM answers WHERE question_id = $1),
                        CAST(length(title) + coalesce(length(body), 0)
                          + coalesce((SELECT sum(length(body)) FROM answers
                                      WHERE question_id = $1), 0) AS BIGINT)
                 FROM questions WHERE id = $1",
                &[id.into()],
            )
            .await?;
        Ok(
            row.map_or(QuestionSize::default(), |(answers, chars)| QuestionSize {
                answers: answers as usize,
                chars: chars as usize,
            }),
        )
    }

    /// The category's id, or `UnknownCategory`.
    pub(super) async fn category_id(&mut self, slug: &str) -> StoreResult<i64> {
        self.value("SELECT id FROM categories WHERE slug = $1", &[slug.into()])
            .await?
            .ok_or_else(|| StoreError::UnknownCategory(slug.to_string()))
    }

    /// The tag's id, or `UnknownTag`.
    pub(super) async fn tag_id(&mut self, slug: &str) -> StoreResult<i64> {
        self.value("SELECT id FROM tags WHERE slug = $1", &[slug.into()])
            .await?
            .ok_or_else(|| StoreError::UnknownTag(slug.to_string()))
    }

    /// Sets the patch's scalar fields (title, body, category, difficulty), the update time,
    /// and bumps the version.
    pub(super) async fn update_question(
        &mut self,
        id: i64,
        patch: &QuestionPatch,
        category_id: Option<i64>,
        now: i64,
    ) -> sqlx::Result<()> {
        let body = patch
            .body
            .as_ref()
            .and_then(|b| b.as_ref().map(|b| b.as_str()));
        self.execute(
            "UPDATE questions SET
                title = coalesce($1, title),
                body = CASE WHEN $2 THEN $3 ELSE body END,
                category_id = coalesce($4, category_id),
                difficulty = coalesce($5, difficulty),
                updated_at = $6,
                version = version + 1
             WHERE id = $7",
            &[
                patch.title.as_ref().map(|t| t.as_str()).into(),
                patch.body.is_some().into(),
                body.into(),
                category_id.into(),
                patch.difficulty.map(|d| d.as_str()).into(),
                now.into(),
                id.into(),
            ],
        )
        .await?;
        Ok(())
    }

    pub(super) async fn delete_answers_of(&mut self, question_id: i64) -> sqlx::Result<()> {
        self.execute(
            "DELETE FROM answers WHERE question_id = $1",
            &[question_id.into()],
        )
        .await?;
        Ok(())
    }

    pub(super) async fn insert_answer(
        &mut self,
        question_id: i64,
        body: &Markdown,
        now: i64,
    ) -> sqlx::Result<i64> {
        self.fetch_one::<(i64,)>(
            "INSERT INTO answers (question_id, body, created_at, updated_at)
             VALUES ($1, $2, $3, $3) RETURNING id",
            &[question_id.into(), body.as_str().into(), now.into()],
        )
        .await
        .map(|r| r.0)
    }

    /// Sets an answer's body and update time, and bumps its version.
    pub(super) async fn update_answer_body(
        &mut self,
        id: i64,
        body: &Markdown,
        now: i64,
    ) -> sqlx::Result<()> {
        self.execute(
            "UPDATE answers SET body = $1, updated_at = $2, version = version + 1 WHERE id = $3",
            &[body.as_str().into(), now.into(), id.into()],
        )
        .await?;
        Ok(())
    }

    pub(super) async fn delete_answer_row(&mut self, id: i64) -> sqlx::Result<()> {
        self.execute("DELETE FROM answers WHERE id = $1", &[id.into()])
            .await?;
        Ok(())
    }

    /// Deletes the question (its answers and tags go with it).
    pub(super) async fn delete_question_row(&mut self, id: i64) -> sqlx::Result<()> {
        self.execute("DELETE FROM questions WHERE id = $1", &[id.into()])
            .await?;
        Ok(())
    }

    /// Bumps the version and update time: the question's representation changed.
    pub(super) async fn touch_question(&mut self, id: i64, now: i64) -> sqlx::Result<()> {
        self.execute(
            "UPDATE questions SET version = version + 1, updated_at = $1 WHERE id = $2",
            &[now.into(), id.into()],
        )
        .await?;
        Ok(())
    }

    /// Appends to the change log; returns the entry's sequence. On PostgreSQL the caller's
    /// transaction holds the change-log lock (`WriteKind::Changes`).
    /// Appends an event to the change log; returns its sequence.
    pub(super) async fn log_event(&mut self, e: &NewEvent, now: i64) -> sqlx::Result<i64> {
        self.fetch_one::<(i64,)>(
            "INSERT INTO index_changes (question_id, created_at, event, category, data)
             VALUES ($1, $2, $3, $4, $5) RETURNING seq",
            &[
                e.question_id.into(),
                now.into(),
                e.event.as_str().into(),
                e.category.as_str().into(),
                e.data.as_str().into(),
            ],
        )
        .await
        .map(|r| r.0)
    }

    /// What the deletion event of question `id` says of it, or `QuestionNotFound`.
    pub(super) async fn deleted_row(&mut self, id: i64) -> StoreResult<DeletedRow> {
        self.fetch_optional(
            "SELECT q.version, q.external_id, c.slug AS category
             FROM questions q JOIN categories c ON c.id = q.category_id WHERE q.id = $1",
            &[id.into()],
        )
        .await?
        .ok_or(StoreError::QuestionNotFound(id))
    }

    /// Category id, difficulty and tag ids of a question, `None` when it does not exist.
    pub(super) async fn pool_attributes(
        &mut self,
        id: i64,
    ) -> sqlx::Result<Option<PoolAttributes>> {
        let sql = self.dialect().questions.pool_attributes;
        let row: Option<(i64, String, String)> = self.fetch_optional(sql, &[id.into()]).await?;
        row.map(|(category_id, difficulty, tags)| {
            Ok(PoolAttributes {
                category_id,
                difficulty,
                tag_ids: serde_json::from_str(&tags).map_err(super::decode_error)?,
            })
        })
        .transpose()
    }

    /// The (pool, slot) pairs the question holds.
    pub(super) async fn slots_of(&mut self, question_id: i64) -> sqlx::Result<Vec<SlotRow>> {
        self.fetch_all(
            "SELECT pool, slot FROM quiz_slots WHERE question_id = $1",
            &[question_id.into()],
        )
        .await
    }

    /// Swap-remove: the pool's last member takes over the freed slot.
    pub(super) async fn remove_from_pool(&mut self, pool: &str, slot: i64) -> sqlx::Result<()> {
        let (last,): (i64,) = self
            .fetch_one(
                "UPDATE quiz_pools SET size = size - 1 WHERE pool = $1 RETURNING size + 1",
                &[pool.into()],
            )
            .await?;
        self.execute(
            "DELETE FROM quiz_slots WHERE pool = $1 AND slot = $2",
            &[pool.into(), slot.into()],
        )
        .await?;
        if slot != last {
            self.execute(
                "UPDATE quiz_slots SET slot = $1 WHERE pool = $2 AND slot = $3",
                &[slot.into(), pool.into(), last.into()],
            )
            .await?;
        }
        Ok(())
    }

    /// Gives the question the next slot of the pool.
    pub(super) async fn add_to_pool(&mut self, pool: &str, question_id: i64) -> sqlx::Result<()> {
        let (size,): (i64,) = self
            .fetch_one(
                "INSERT INTO quiz_pools (pool, size) VALUES ($1, 1)
                 ON CONFLICT (pool) DO UPDATE SET size = quiz_pools.size + 1 RETURNING size",
                &[pool.into()],
            )
            .await?;
        self.execute(
            "INSERT INTO quiz_slots (pool, slot, question_id) VALUES ($1, $2, $3)",
            &[pool.into(), size.into(), question_id.into()],
        )
        .await?;
        Ok(())
    }

    /// Replaces the question's tags (creating tags that do not exist yet), in order.
    pub(super) async fn set_tags(&mut self, question_id: i64, tags: &Tags) -> sqlx::Result<()> {
        let d = self.dialect();
        let slugs: Vec<&str> = tags.as_slice().iter().map(|t| t.as_str()).collect();
        self.execute(
            "DELETE FROM question_tags WHERE question_id = $1",
            &[question_id.into()],
        )
        .await?;
        if slugs.is_empty() {
            return Ok(());
        }
        self.execute(d.questions.insert_tags, &[Arg::Texts(&slugs)])
            .await?;
        self.execute(
            d.questions.insert_question_tags,
            &[question_id.into(), Arg::Texts(&slugs)],
        )
        .await?;
        Ok(())
    }

    /// Creates the categories the items name that do not exist yet; returns slug → id of
    /// every category, and the categories this created.
    pub(super) async fn ensure_categories(
        &mut self,
        items: &[ImportItem],
        now: i64,
    ) -> StoreResult<(HashMap<String, i64>, Vec<Category>)> {
        // In slug order, so the events they log come out the same way every time.
        let mut wanted: Vec<(&str, &str)> = wanted_categories(items).into_iter().collect();
        wanted.sort_unstable();
        let before = self.category_ids().await?;
        let (slugs, names): (Vec<&str>, Vec<&str>) = wanted
            .into_iter()
            .filter(|(slug, _)| !before.contains_key(*slug))
            .unzip();
        if slugs.is_empty() {
            return Ok((before, Vec::new()));
        }
        let sql = self.dialect().questions.insert_categories;
        self.execute(sql, &[now.into(), Arg::Texts(&slugs), Arg::Texts(&names)])
            .await?;
        let created = slugs
            .iter()
            .zip(&names)
            .map(|(slug, name)| Category {
                slug: slug.to_string(),
                name: name.to_string(),
                question_count: 0,
            })
            .collect();
        Ok((self.category_ids().await?, created))
    }

    async fn category_ids(&mut self) -> sqlx::Result<HashMap<String, i64>> {
        let all: Vec<(String, i64)> = self
            .fetch_all("SELECT slug, id FROM categories", &[])
            .await?;
        Ok(all.into_iter().collect())
    }

    /// For each key found, its position in `keys`, the question's id and its import hash:
    /// by external id, or (`by_hash`) by the hash of the line it was last imported from (the
    /// lowest id when several).
    pub(super) async fn find_imported(
        &mut self,
        keys: &[&str],
        by_hash: bool,
    ) -> sqlx::Result<Vec<FoundRow>> {
        let d = self.dialect();
        let sql = if by_hash {
            d.questions.find_by_hash
        } else {
            d.questions.find_by_external_id
        };
        self.fetch_all(sql, &[Arg::Texts(keys)]).await
    }

    /// Inserts new questions with their tags, answers and quiz-pool slots, in a fixed number
    /// of statements whatever their number (the caller logs their events). Returns the new
    /// ids, in the order of `items`.
    pub(super) async fn insert_new(&mut self, items: &[NewRows<'_>]) -> StoreResult<Vec<i64>> {
        let d = self.dialect();
        let slugs = tag_slugs(items);
        self.execute(d.questions.insert_tags, &[Arg::Texts(&slugs)])
            .await?;
        let tag_ids: HashMap<String, i64> = self
            .fetch_all::<(String, i64)>(d.questions.tag_ids, &[Arg::Texts(&slugs)])
            .await?
            .into_iter()
            .collect();
        let ids = self.new_question_ids(items.len()).await?;
        let mut batch = NewBatch::new(items, &ids, &tag_ids);
        let sizes: HashMap<String, i64> = self
            .fetch_all::<(String, i64)>(d.quiz.pool_sizes, &[Arg::Texts(&batch.pools())])
            .await?
            .into_iter()
            .collect();
        batch.assign_slots(sizes);
        self.insert_batch(&batch).await?;
        Ok(ids)
    }

    pub(super) async fn set_import_hash(&mut self, id: i64, hash: &str) -> sqlx::Result<()> {
        self.execute(
            "UPDATE questions SET import_hash = $1 WHERE id = $2",
            &[hash.into(), id.into()],
        )
        .await?;
        Ok(())
    }
}
