//! The write paths, written once: which rows a write touches, in which order, and which
//! checks it makes, inside the caller's transaction (and the few reads that take more than
//! one statement). The statements are those of `store/questions.rs` on [`Conn`]; the
//! transaction around them is the backend's (SQLite's single writer, PostgreSQL's change-log
//! lock).
//!
//! Every write of a question keeps its tags, answers, quiz-pool slots and the index change log
//! in step, and returns the sequence of the change it logged.

use super::model::{
    BatchOutcome, Card, DeletedAnswer, Existing, NewRows, Pool, PoolAttributes, SavedReview,
    Written, check_version, classify, import_patch, pool_keys,
};
use super::sql::Conn;
use super::statements::QuestionSql;
use super::{StoreError, StoreResult};
use crate::domain::import::ImportItem;
use crate::domain::{
    Answer, Difficulty, Markdown, NewQuestion, Precondition, Question, QuestionPatch, QuizFilter,
};
use std::collections::{HashMap, HashSet};

pub(super) async fn create_question(
    c: &mut Conn<'_>,
    new: &NewQuestion,
    now: i64,
) -> StoreResult<Written<Question>> {
    let category = c.category_id(new.category.as_str()).await?;
    let (ids, seq) = c
        .insert_new(&[NewRows::created(new, category, now)], now)
        .await?;
    let value = c.load_question(ids[0]).await?;
    Ok(Written { value, seq })
}

/// An empty patch changes nothing, keeps the version and logs nothing (sequence 0).
pub(super) async fn patch_question(
    c: &mut Conn<'_>,
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
    let value = c.load_question(id).await?;
    Ok(Written { value, seq })
}

pub(super) async fn delete_question(
    c: &mut Conn<'_>,
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
    c: &mut Conn<'_>,
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
    c: &mut Conn<'_>,
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
pub(super) async fn quiz_pools(c: &mut Conn<'_>, filter: &QuizFilter) -> StoreResult<Vec<Pool>> {
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
    c: &mut Conn<'_>,
    learner: &str,
    question_id: i64,
    rating: &str,
    interval_days: f64,
    card: &Card,
) -> StoreResult<SavedReview> {
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
    Ok(SavedReview {
        question_id,
        interval_days,
        card: *card,
    })
}

pub(super) async fn delete_answer(
    c: &mut Conn<'_>,
    id: i64,
    expected: &Precondition,
    now: i64,
) -> StoreResult<DeletedAnswer> {
    let before = c.fetch_answer(id).await?;
    check_version(before.version, expected)?;
    c.delete_answer_row(id).await?;
    c.touch_question(before.question_id, now).await?;
    let seq = c.record_change(before.question_id, now).await?;
    Ok(DeletedAnswer {
        question_id: before.question_id,
        seq,
    })
}

/// Applies a non-empty merge patch to an existing question, bumps its version and logs the
/// change; returns the change's sequence.
async fn apply_patch(
    c: &mut Conn<'_>,
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
async fn sync_pools(c: &mut Conn<'_>, question_id: i64) -> StoreResult<()> {
    let desired: HashSet<String> = match c.pool_attributes(question_id).await? {
        None => HashSet::new(),
        Some(PoolAttributes {
            category_id,
            difficulty,
            tag_ids,
        }) => {
            let difficulty = Difficulty::parse(&difficulty).map_err(super::decode_error)?;
            pool_keys(&Pool::of(category_id, difficulty, &tag_ids))
                .into_iter()
                .collect()
        }
    };
    let current = c.slots_of(question_id).await?;
    for s in &current {
        if !desired.contains(&s.pool) {
            c.remove_from_pool(&s.pool, s.slot).await?;
        }
    }
    let current: HashSet<String> = current.into_iter().map(|s| s.pool).collect();
    for pool in desired.difference(&current) {
        c.add_to_pool(pool, question_id).await?;
    }
    Ok(())
}

/// Writes an import batch: new lines are inserted set-based, changed ones patched like any
/// edit, unchanged ones left alone. The caller guarantees that no two items share an
/// identity (external id, or content hash when there is none).
pub(super) async fn import_batch(
    c: &mut Conn<'_>,
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
async fn find_existing(c: &mut Conn<'_>, items: &[ImportItem]) -> StoreResult<Vec<Existing>> {
    let (mut by_external, mut by_hash) = (Vec::new(), Vec::new());
    for (i, item) in items.iter().enumerate() {
        match &item.external_id {
            Some(id) => by_external.push((i, id.as_str())),
            None => by_hash.push((i, item.hash.as_str())),
        }
    }
    let mut found: HashMap<usize, (i64, Option<String>)> = HashMap::new();
    for (keys, by_hash) in [(by_external, false), (by_hash, true)] {
        if keys.is_empty() {
            continue;
        }
        let texts: Vec<&str> = keys.iter().map(|(_, k)| *k).collect();
        for r in c.find_imported(&texts, by_hash).await? {
            found.insert(keys[r.item as usize].0, (r.id, r.import_hash));
        }
    }
    Ok(classify(items, &found))
}
