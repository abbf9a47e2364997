//! The paths both stores share: which rows a write touches, in which order, and which checks
//! it makes, inside the caller's transaction (and the few reads that take more than one
//! statement). Each backend supplies the statements by implementing [`Rows`] for its
//! connection type, and the transaction around them (SQLite's single writer, PostgreSQL's
//! change-log lock).
//!
//! Every write of a question keeps its tags, answers, quiz-pool slots and the index change log
//! in step, and returns the sequence of the change it logged.

use super::model::{
    BatchOutcome, Card, Existing, NewRows, Pool, Written, check_version, classify, import_patch,
    pool_keys,
};
use super::{StoreError, StoreResult};
use crate::domain::import::ImportItem;
use crate::domain::{
    Answer, Difficulty, Markdown, NewQuestion, Precondition, Question, QuestionPatch, QuestionSize,
    QuizFilter, Tags,
};
use std::collections::{HashMap, HashSet};

/// An import item found in the store: its index in the batch, the question's id, and the hash
/// of the line the question was last imported from.
pub(super) type Found = (i64, i64, Option<String>);

/// The statements the shared paths are made of, on one connection (inside the caller's
/// transaction, for writes).
pub(super) trait Rows {
    /// Full questions for `ids`, in that order, skipping ids with no row.
    async fn load_questions(&mut self, ids: &[i64]) -> StoreResult<Vec<Question>>;
    /// The question's version, or `QuestionNotFound`.
    async fn question_version(&mut self, id: i64) -> StoreResult<i64>;
    /// The answer, or `AnswerNotFound`.
    async fn fetch_answer(&mut self, id: i64) -> StoreResult<Answer>;
    /// The stored size of a question (zero when it does not exist).
    async fn question_size(&mut self, id: i64) -> sqlx::Result<QuestionSize>;
    /// The category's id, or `UnknownCategory`.
    async fn category_id(&mut self, slug: &str) -> StoreResult<i64>;
    /// The tag's id, or `UnknownTag`.
    async fn tag_id(&mut self, slug: &str) -> StoreResult<i64>;
    /// Makes the check-then-write of a review atomic against other writers of the same card
    /// and against the question's deletion; returns whether the question exists.
    async fn lock_for_review(&mut self, learner: &str, question_id: i64) -> sqlx::Result<bool>;
    /// When the learner last reviewed the question (microseconds), if ever.
    async fn last_review(&mut self, learner: &str, question_id: i64) -> sqlx::Result<Option<i64>>;
    /// Stores the card state and appends the review to the learner's log.
    async fn save_card(
        &mut self,
        learner: &str,
        question_id: i64,
        rating: &str,
        interval_days: f64,
        card: &Card,
    ) -> sqlx::Result<()>;
    /// Sets the patch's scalar fields (title, body, category, difficulty), the update time,
    /// and bumps the version.
    async fn update_question(
        &mut self,
        id: i64,
        patch: &QuestionPatch,
        category_id: Option<i64>,
        now: i64,
    ) -> sqlx::Result<()>;
    /// Replaces the question's tags (creating tags that do not exist yet), in order.
    async fn set_tags(&mut self, question_id: i64, tags: &Tags) -> sqlx::Result<()>;
    async fn delete_answers_of(&mut self, question_id: i64) -> sqlx::Result<()>;
    async fn insert_answer(
        &mut self,
        question_id: i64,
        body: &Markdown,
        now: i64,
    ) -> sqlx::Result<i64>;
    /// Sets an answer's body and update time, and bumps its version.
    async fn update_answer_body(&mut self, id: i64, body: &Markdown, now: i64) -> sqlx::Result<()>;
    async fn delete_answer_row(&mut self, id: i64) -> sqlx::Result<()>;
    /// Deletes the question (its answers and tags go with it).
    async fn delete_question_row(&mut self, id: i64) -> sqlx::Result<()>;
    /// Bumps the version and update time: the question's representation changed.
    async fn touch_question(&mut self, id: i64, now: i64) -> sqlx::Result<()>;
    /// Appends to the change log; returns the entry's sequence.
    async fn record_change(&mut self, question_id: i64, now: i64) -> sqlx::Result<i64>;
    /// Category id, difficulty and tag ids of a question, `None` when it does not exist.
    async fn pool_attributes(&mut self, id: i64) -> sqlx::Result<Option<(i64, String, Vec<i64>)>>;
    /// The (pool, slot) pairs the question holds.
    async fn slots_of(&mut self, question_id: i64) -> sqlx::Result<Vec<(String, i64)>>;
    /// Swap-remove: the pool's last member takes over the freed slot.
    async fn remove_from_pool(&mut self, pool: &str, slot: i64) -> sqlx::Result<()>;
    /// Gives the question the next slot of the pool.
    async fn add_to_pool(&mut self, pool: &str, question_id: i64) -> sqlx::Result<()>;
    /// Inserts new questions with their tags, answers, pool slots and change-log entries in a
    /// fixed number of set-based statements; returns their ids in the order of `items` and
    /// the last change sequence.
    async fn insert_new(&mut self, items: &[NewRows<'_>], now: i64)
    -> StoreResult<(Vec<i64>, i64)>;
    /// Questions with these external ids: (index, external id) in, (index, id, import hash)
    /// out.
    async fn find_by_external_id(&mut self, keys: &[(i64, &str)]) -> sqlx::Result<Vec<Found>>;
    /// Questions last imported from lines with these hashes (the lowest id when several).
    async fn find_by_hash(&mut self, keys: &[(i64, &str)]) -> sqlx::Result<Vec<Found>>;
    /// Creates the categories the items name that do not exist yet; returns slug → id.
    async fn ensure_categories(
        &mut self,
        items: &[ImportItem],
        now: i64,
    ) -> StoreResult<HashMap<String, i64>>;
    async fn set_import_hash(&mut self, id: i64, hash: &str) -> sqlx::Result<()>;
}

pub(super) async fn load_question(c: &mut impl Rows, id: i64) -> StoreResult<Question> {
    c.load_questions(&[id])
        .await?
        .pop()
        .ok_or(StoreError::QuestionNotFound(id))
}

pub(super) async fn create_question(
    c: &mut impl Rows,
    new: &NewQuestion,
    now: i64,
) -> StoreResult<Written<Question>> {
    let category = c.category_id(new.category.as_str()).await?;
    let (ids, seq) = c
        .insert_new(&[NewRows::created(new, category, now)], now)
        .await?;
    let value = load_question(c, ids[0]).await?;
    Ok(Written { value, seq })
}

/// An empty patch changes nothing, keeps the version and logs nothing (sequence 0).
pub(super) async fn patch_question(
    c: &mut impl Rows,
    id: i64,
    patch: &QuestionPatch,
    expected: &Precondition,
    now: i64,
) -> StoreResult<Written<Question>> {
    check_version(c.question_version(id).await?, expected)?;
    let seq = if patch.is_empty() {
        0
    } else {
        apply_patch(c, id, patch, now).await?
    };
    let value = load_question(c, id).await?;
    Ok(Written { value, seq })
}

pub(super) async fn delete_question(
    c: &mut impl Rows,
    id: i64,
    expected: &Precondition,
    now: i64,
) -> StoreResult<i64> {
    check_version(c.question_version(id).await?, expected)?;
    c.delete_question_row(id).await?;
    sync_pools(c, id).await?;
    Ok(c.record_change(id, now).await?)
}

pub(super) async fn add_answer(
    c: &mut impl Rows,
    question_id: i64,
    body: &Markdown,
    now: i64,
) -> StoreResult<Written<Answer>> {
    c.question_version(question_id).await?;
    let before = c.question_size(question_id).await?;
    let id = c.insert_answer(question_id, body, now).await?;
    c.question_size(question_id).await?.check_growth(before)?;
    c.touch_question(question_id, now).await?;
    let seq = c.record_change(question_id, now).await?;
    let value = c.fetch_answer(id).await?;
    Ok(Written { value, seq })
}

pub(super) async fn update_answer(
    c: &mut impl Rows,
    id: i64,
    body: &Markdown,
    expected: &Precondition,
    now: i64,
) -> StoreResult<Written<Answer>> {
    let before = c.fetch_answer(id).await?;
    check_version(before.version, expected)?;
    let size_before = c.question_size(before.question_id).await?;
    c.update_answer_body(id, body, now).await?;
    c.question_size(before.question_id)
        .await?
        .check_growth(size_before)?;
    c.touch_question(before.question_id, now).await?;
    let seq = c.record_change(before.question_id, now).await?;
    let value = c.fetch_answer(id).await?;
    Ok(Written { value, seq })
}

/// The pools a draw with these filters must come from; an unknown category or tag is an
/// error rather than an empty pool, so a typo is reported, not silently "no questions".
pub(super) async fn quiz_pools(c: &mut impl Rows, filter: &QuizFilter) -> StoreResult<Vec<Pool>> {
    let mut pools = Vec::new();
    if let Some(slug) = &filter.category {
        pools.push(Pool::Category(c.category_id(slug.as_str()).await?));
    }
    if let Some(slug) = &filter.tag {
        pools.push(Pool::Tag(c.tag_id(slug.as_str()).await?));
    }
    if let Some(d) = filter.difficulty {
        pools.push(Pool::Difficulty(d));
    }
    if pools.is_empty() {
        pools.push(Pool::All);
    }
    Ok(pools)
}

/// Stores a review and the card state it led to.
pub(super) async fn save_review(
    c: &mut impl Rows,
    learner: &str,
    question_id: i64,
    rating: &str,
    interval_days: f64,
    card: &Card,
) -> StoreResult<()> {
    if !c.lock_for_review(learner, question_id).await? {
        return Err(StoreError::QuestionNotFound(question_id));
    }
    // Checked under that lock: of two clients syncing reviews, the older one cannot land
    // after the newer.
    let latest = c.last_review(learner, question_id).await?;
    if latest.is_some_and(|t| t > card.last_review.timestamp_micros()) {
        return Err(StoreError::ReviewOutOfOrder);
    }
    c.save_card(learner, question_id, rating, interval_days, card)
        .await?;
    Ok(())
}

/// Returns the change's sequence and the answer's question.
pub(super) async fn delete_answer(
    c: &mut impl Rows,
    id: i64,
    expected: &Precondition,
    now: i64,
) -> StoreResult<(i64, i64)> {
    let before = c.fetch_answer(id).await?;
    check_version(before.version, expected)?;
    c.delete_answer_row(id).await?;
    c.touch_question(before.question_id, now).await?;
    let seq = c.record_change(before.question_id, now).await?;
    Ok((seq, before.question_id))
}

/// Applies a non-empty merge patch to an existing question, bumps its version and logs the
/// change; returns the change's sequence.
async fn apply_patch(
    c: &mut impl Rows,
    id: i64,
    patch: &QuestionPatch,
    now: i64,
) -> StoreResult<i64> {
    let before = c.question_size(id).await?;
    let category = match &patch.category {
        Some(slug) => Some(c.category_id(slug.as_str()).await?),
        None => None,
    };
    c.update_question(id, patch, category, now).await?;
    if let Some(tags) = &patch.tags {
        c.set_tags(id, tags).await?;
    }
    if let Some(answers) = &patch.answers {
        c.delete_answers_of(id).await?;
        for a in answers {
            c.insert_answer(id, a, now).await?;
        }
    }
    c.question_size(id).await?.check_growth(before)?;
    sync_pools(c, id).await?;
    Ok(c.record_change(id, now).await?)
}

/// Brings the pool memberships of `question_id` in line with its row (none once deleted).
async fn sync_pools(c: &mut impl Rows, question_id: i64) -> StoreResult<()> {
    let desired: HashSet<String> = match c.pool_attributes(question_id).await? {
        None => HashSet::new(),
        Some((category_id, difficulty, tag_ids)) => {
            let difficulty = Difficulty::parse(&difficulty).map_err(super::decode_error)?;
            pool_keys(&Pool::of(category_id, difficulty, &tag_ids))
                .into_iter()
                .collect()
        }
    };
    let current = c.slots_of(question_id).await?;
    for (pool, slot) in &current {
        if !desired.contains(pool) {
            c.remove_from_pool(pool, *slot).await?;
        }
    }
    let current: HashSet<String> = current.into_iter().map(|(p, _)| p).collect();
    for pool in desired.difference(&current) {
        c.add_to_pool(pool, question_id).await?;
    }
    Ok(())
}

/// Writes an import batch: new lines are inserted set-based, changed ones patched like any
/// edit, unchanged ones left alone. The caller guarantees that no two items share an
/// identity (external id, or content hash when there is none).
pub(super) async fn import_batch(
    c: &mut impl Rows,
    items: &[ImportItem],
    now: i64,
) -> StoreResult<BatchOutcome> {
    let existing = find_existing(c, items).await?;
    let categories = c.ensure_categories(items, now).await?;
    let mut outcome = BatchOutcome::default();
    let mut fresh: Vec<&ImportItem> = Vec::new();
    for (item, state) in items.iter().zip(&existing) {
        match state {
            Existing::New => fresh.push(item),
            Existing::Unchanged => outcome.unchanged += 1,
            Existing::Changed(id) => {
                // Rare (a re-import of an edited file): the ordinary patch path is fine.
                outcome.last_seq = apply_patch(c, *id, &import_patch(item), now).await?;
                c.set_import_hash(*id, &item.hash).await?;
                outcome.updated += 1;
            }
        }
    }
    if !fresh.is_empty() {
        let rows: Vec<NewRows> = fresh
            .iter()
            .map(|item| NewRows::imported(item, categories[item.question.category.as_str()], now))
            .collect();
        (_, outcome.last_seq) = c.insert_new(&rows, now).await?;
        outcome.created = fresh.len() as u64;
    }
    Ok(outcome)
}

/// Looks every item up by its identity (external id, else the line's hash), in two statements.
async fn find_existing(c: &mut impl Rows, items: &[ImportItem]) -> StoreResult<Vec<Existing>> {
    let (mut by_external, mut by_hash) = (Vec::new(), Vec::new());
    for (i, item) in items.iter().enumerate() {
        match &item.external_id {
            Some(id) => by_external.push((i as i64, id.as_str())),
            None => by_hash.push((i as i64, item.hash.as_str())),
        }
    }
    let mut found: HashMap<usize, (i64, Option<String>)> = HashMap::new();
    if !by_external.is_empty() {
        let rows = c.find_by_external_id(&by_external).await?;
        found.extend(rows.into_iter().map(|(i, id, h)| (i as usize, (id, h))));
    }
    if !by_hash.is_empty() {
        let rows = c.find_by_hash(&by_hash).await?;
        found.extend(rows.into_iter().map(|(i, id, h)| (i as usize, (id, h))));
    }
    Ok(classify(items, &found))
}
