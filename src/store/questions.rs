//! Questions with their tags and answers: the operations the service calls. Their statements
//! are in `statements.rs`, the multi-statement write paths in `writes.rs`.

use super::model::{AnswerRow, BatchOutcome, DeletedAnswer, ListPage, Snapshot, Written, page};
use super::sql::{Arg, Conn};
use super::writes;
use super::{Store, StoreResult, now_micros};
use crate::domain::import::ImportItem;
use crate::domain::{
    Answer, Id, Markdown, NewQuestion, Precondition, Question, QuestionFilter, QuestionPatch,
};

/// Questions and answers. Every write appends to the change log in its own transaction and
/// returns the entry's sequence.
impl Store {
    pub async fn get_question(&self, id: Id) -> StoreResult<Question> {
        if let Some(read) = self.sqlite().and_then(|s| s.question_here(id.get())) {
            return read;
        }
        self.reading(async |c| c.load_question(id.get()).await)
            .await
    }

    /// Full questions for `ids`, in that order, skipping ids that no longer exist.
    pub async fn get_questions(&self, ids: &[i64]) -> StoreResult<Vec<Question>> {
        self.reading(async |c| c.load_questions(ids).await).await
    }

    /// Questions with id greater than `after`, in id order: new rows always land after every
    /// cursor already handed out, so paging stays correct while rows are inserted.
    pub async fn list_questions(
        &self,
        filter: &QuestionFilter,
        after: i64,
        limit: i64,
    ) -> StoreResult<ListPage> {
        self.reading(async |c| list_page(c, filter, after, limit).await)
            .await
    }

    /// Every question in id order, `page` at a time, all read in one snapshot: `sink` first
    /// gets the change-log sequence the snapshot is consistent with (every change up to it is
    /// in the pages, none after), then the pages. Stops early when `sink` is closed.
    ///
    /// With `learners`, the learners' settings and then their reviews follow, from the same
    /// snapshot.
    pub async fn export_snapshot(
        &self,
        page: i64,
        learners: bool,
        sink: tokio::sync::mpsc::Sender<Snapshot>,
    ) -> StoreResult<()> {
        self.snapshot(async |c| {
            let sql = c.dialect().changes.snapshot_seq;
            let seq: i64 = c.value(sql, &[]).await?.unwrap_or(0);
            if sink.send(Snapshot::Seq(seq)).await.is_err() {
                return Ok(());
            }
            let mut after = 0;
            loop {
                let p = list_page(c, &QuestionFilter::default(), after, page).await?;
                let next = p.next_after;
                if sink.send(Snapshot::Questions(p.items)).await.is_err() {
                    return Ok(());
                }
                match next {
                    Some(n) => after = n,
                    None => break,
                }
            }
            if !learners {
                return Ok(());
            }
            let settings = super::learners::all_settings(c).await?;
            if sink
                .send(Snapshot::LearnerSettings(settings))
                .await
                .is_err()
            {
                return Ok(());
            }
            let (mut learner, mut id) = (String::new(), 0);
            loop {
                let rows = super::learners::reviews_page(c, &learner, id, page * 10).await?;
                let Some(last) = rows.last() else {
                    return Ok(());
                };
                (learner, id) = (last.learner.clone(), last.id);
                if sink.send(Snapshot::Reviews(rows)).await.is_err() {
                    return Ok(());
                }
            }
        })
        .await
    }

    pub async fn create_question(&self, new: &NewQuestion) -> StoreResult<Written<Question>> {
        self.changing(async |c| writes::create_question(c, new, now_micros()).await)
            .await
    }

    /// Applies a merge patch; `expected` (from `If-Match`) must still be current. An empty
    /// patch changes nothing and keeps the version.
    pub async fn patch_question(
        &self,
        id: Id,
        patch: &QuestionPatch,
        expected: &Precondition,
    ) -> StoreResult<Written<Question>> {
        self.changing(async |c| {
            writes::patch_question(c, id.get(), patch, expected, now_micros()).await
        })
        .await
    }

    pub async fn delete_question(&self, id: Id, expected: &Precondition) -> StoreResult<i64> {
        self.changing(async |c| writes::delete_question(c, id.get(), expected, now_micros()).await)
            .await
    }

    pub async fn list_answers(&self, question_id: Id) -> StoreResult<Vec<Answer>> {
        self.reading(async |c| {
            c.question_version(question_id.get()).await?;
            let rows: Vec<AnswerRow> = c
                .fetch_all(
                    "SELECT id, question_id, body, created_at, updated_at, version FROM answers
                     WHERE question_id = $1 ORDER BY id",
                    &[question_id.into()],
                )
                .await?;
            Ok(rows.into_iter().map(Answer::from).collect())
        })
        .await
    }

    pub async fn get_answer(&self, id: Id) -> StoreResult<Answer> {
        self.reading(async |c| c.fetch_answer(id.get()).await).await
    }

    pub async fn add_answer(
        &self,
        question_id: Id,
        body: &Markdown,
    ) -> StoreResult<Written<Answer>> {
        self.changing(async |c| writes::add_answer(c, question_id.get(), body, now_micros()).await)
            .await
    }

    pub async fn update_answer(
        &self,
        id: Id,
        body: &Markdown,
        expected: &Precondition,
    ) -> StoreResult<Written<Answer>> {
        self.changing(async |c| {
            writes::update_answer(c, id.get(), body, expected, now_micros()).await
        })
        .await
    }

    /// Deletes an answer; says which question it belonged to and the change's sequence.
    pub async fn delete_answer(
        &self,
        id: Id,
        expected: &Precondition,
    ) -> StoreResult<DeletedAnswer> {
        self.changing(async |c| writes::delete_answer(c, id.get(), expected, now_micros()).await)
            .await
    }

    /// Writes an import batch atomically. The caller guarantees that no two items in one
    /// batch share an identity (external id, or content hash when there is none).
    pub async fn import_batch(&self, items: &[ImportItem]) -> StoreResult<BatchOutcome> {
        self.changing(async |c| writes::import_batch(c, items, now_micros()).await)
            .await
    }
}

/// One page of the question list (see [`Store::list_questions`]).
async fn list_page(
    c: &mut Conn<'_>,
    filter: &QuestionFilter,
    after: i64,
    limit: i64,
) -> StoreResult<ListPage> {
    let tags: Vec<&str> = filter.tags.iter().map(|t| t.as_str()).collect();
    let sql = c.dialect().questions.list_question_ids;
    let ids = c
        .values(
            sql,
            &[
                after.into(),
                filter.category.as_ref().map(|c| c.as_str()).into(),
                filter.difficulty.map(|d| d.as_str()).into(),
                filter.updated_since.map(|t| t.timestamp_micros()).into(),
                (tags.len() as i64).into(),
                Arg::Texts(&tags),
                (limit + 1).into(),
            ],
        )
        .await?;
    let (ids, next_after) = page(ids, limit);
    let items = c.load_questions(&ids).await?;
    Ok(ListPage { items, next_after })
}
