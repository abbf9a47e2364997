//! What the store hands back and the rules that do not depend on the database behind it: the
//! row shapes both backends select into, how they become domain types, quiz pool naming, and
//! how an import line becomes rows. Each backend only supplies SQL.

use super::{StoreError, StoreResult, decode_error, from_micros};
use crate::domain::changes::EventType;
use crate::domain::import::ImportItem;
use crate::domain::{
    Answer, Category, CategoryRef, Difficulty, NewQuestion, Precondition, Question, QuestionPatch,
    QuizFilter, RawSynonymTable, Scope, Slug, SynonymTable, TagCount,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::FromRow;
use std::collections::HashMap;

/// One page of the question list.
#[derive(Debug)]
pub struct ListPage {
    pub items: Vec<Question>,
    /// The id to continue after, when there is another page.
    pub next_after: Option<i64>,
}

/// Cuts `ids` (fetched with one row more than `limit`) to a page: the id to continue after is
/// the page's last one when that extra row came back.
pub(super) fn page(mut ids: Vec<i64>, limit: i64) -> (Vec<i64>, Option<i64>) {
    if ids.len() as i64 > limit {
        ids.truncate(limit as usize);
        let next = ids.last().copied();
        (ids, next)
    } else {
        (ids, None)
    }
}

/// The result of a write and the sequence number of the index change it recorded.
#[derive(Debug)]
pub struct Written<T> {
    pub value: T,
    pub seq: i64,
}

/// A value and its version (for ETags and `If-Match`); version 0: never written.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub version: i64,
}

/// What deleting an answer did: the question it belonged to and the change's sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeletedAnswer {
    pub question_id: i64,
    pub seq: i64,
}

/// How far a replica has applied the change log, and when it last said so (microseconds).
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct ReplicaPosition {
    pub name: String,
    pub applied: i64,
    pub seen_at: i64,
}

/// An import item found in the store: its index in the batch, the question's id, and the
/// hash of the line the question was last imported from.
#[derive(FromRow)]
pub(super) struct FoundRow {
    pub item: i64,
    pub id: i64,
    pub import_hash: Option<String>,
}

/// What decides a question's quiz pools.
pub(super) struct PoolAttributes {
    pub category_id: i64,
    pub difficulty: String,
    pub tag_ids: Vec<i64>,
}

/// A quiz-pool slot a question holds.
#[derive(FromRow)]
pub(super) struct SlotRow {
    pub pool: String,
    pub slot: i64,
}

/// One change-log entry as selected.
#[derive(FromRow)]
pub(super) struct ChangeRow {
    seq: i64,
    question_id: i64,
}

impl From<ChangeRow> for Change {
    fn from(r: ChangeRow) -> Self {
        Change {
            seq: r.seq,
            question_id: r.question_id,
        }
    }
}

/// One entry of the change log: the question `question_id` changed (or was deleted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub seq: i64,
    pub question_id: i64,
}

/// Entries of the change log after a position, or the news that some were pruned before this
/// replica applied them (it must rebuild its index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changes {
    Entries(Vec<Change>),
    Pruned { upto: i64 },
}

/// An event to append to the change log, its payload rendered as the API shows it.
pub(super) struct NewEvent {
    pub event: EventType,
    /// The question it concerns; 0 for a category event (the index skips those).
    pub question_id: i64,
    /// The category slug the feed's filter matches.
    pub category: String,
    pub data: String,
}

impl NewEvent {
    pub fn question(event: EventType, q: &Question) -> StoreResult<Self> {
        Ok(Self {
            event,
            question_id: q.id,
            category: q.category.slug.clone(),
            data: serde_json::to_string(q).map_err(decode_error)?,
        })
    }

    pub fn deleted(id: i64, before: &DeletedRow, now: i64) -> StoreResult<Self> {
        let tombstone = Tombstone {
            id,
            external_id: before.external_id.as_deref(),
            version: before.version + 1,
            deleted_at: from_micros(now),
        };
        Ok(Self {
            event: EventType::QuestionDeleted,
            question_id: id,
            category: before.category.clone(),
            data: serde_json::to_string(&tombstone).map_err(decode_error)?,
        })
    }

    pub fn category(c: &Category) -> StoreResult<Self> {
        Ok(Self {
            event: EventType::CategoryCreated,
            question_id: 0,
            category: c.slug.clone(),
            data: serde_json::to_string(c).map_err(decode_error)?,
        })
    }
}

/// What a question's deletion event needs of it, read before the row goes.
#[derive(FromRow)]
pub(super) struct DeletedRow {
    pub version: i64,
    pub external_id: Option<String>,
    pub category: String,
}

/// What the feed says of a deleted question. Its version is one past the question's last, so
/// a mirror that orders by version sees the deletion after every edit.
#[derive(Serialize)]
struct Tombstone<'a> {
    id: i64,
    external_id: Option<&'a str>,
    version: i64,
    deleted_at: DateTime<Utc>,
}

/// One event of the change feed as selected.
#[derive(FromRow)]
pub(super) struct FeedRow {
    pub seq: i64,
    pub event: String,
    pub data: String,
    pub created_at: i64,
}

/// One event of the change feed: its place in commit order, what happened and when, and its
/// payload (JSON, as the API rendered it at commit).
#[derive(Debug, Clone)]
pub struct FeedEvent {
    pub seq: i64,
    pub event: EventType,
    pub at: DateTime<Utc>,
    pub data: Box<serde_json::value::RawValue>,
}

impl TryFrom<FeedRow> for FeedEvent {
    type Error = sqlx::Error;

    fn try_from(r: FeedRow) -> Result<Self, Self::Error> {
        Ok(FeedEvent {
            seq: r.seq,
            event: EventType::parse(&r.event)
                .ok_or_else(|| decode_error(format!("unknown event `{}`", r.event)))?,
            at: from_micros(r.created_at),
            data: serde_json::value::RawValue::from_string(r.data).map_err(decode_error)?,
        })
    }
}

/// A page of the change feed.
#[derive(Debug, Clone)]
pub enum Feed {
    Page {
        events: Vec<FeedEvent>,
        /// Where the next page starts: the last event returned, or when the feed was read to
        /// its end, the newest committed entry (so filtered readers move past what they skip).
        next: i64,
        has_more: bool,
    },
    /// Entries after the cursor were already dropped (the feed keeps its retention window);
    /// the oldest retained position is `upto`.
    Expired { upto: i64 },
}

/// What an export reads from its one snapshot, in order: the change-log sequence it is
/// consistent with, then pages of questions.
#[derive(Debug)]
pub enum Snapshot {
    Seq(i64),
    Questions(Vec<Question>),
    LearnerSettings(Vec<super::learners::ExportedSettings>),
    Reviews(Vec<super::learners::ExportedReview>),
}

/// What the search index needs of a question, read in one cheap statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRow {
    pub id: i64,
    pub title: String,
    pub category: String,
    pub difficulty: Difficulty,
    pub tags: Vec<String>,
    pub answers: Vec<String>,
}

/// An index row as selected, tags and answers joined into one text each.
#[derive(FromRow)]
pub(super) struct LeanRow {
    id: i64,
    title: String,
    category: String,
    difficulty: String,
    tags: String,
    answers: String,
}

/// Tag slugs are joined by U+001F and answer bodies by U+001E in SQL (cheaper than JSON for
/// long texts): stored text never holds C0 control characters (the domain refuses them), so
/// the separators are unambiguous.
const TAG_SEPARATOR: char = '\u{1f}';
const ANSWER_SEPARATOR: char = '\u{1e}';

impl TryFrom<LeanRow> for IndexRow {
    type Error = sqlx::Error;

    fn try_from(r: LeanRow) -> Result<Self, sqlx::Error> {
        let split = |s: &str, sep: char| -> Vec<String> {
            if s.is_empty() {
                Vec::new()
            } else {
                s.split(sep).map(str::to_string).collect()
            }
        };
        Ok(IndexRow {
            id: r.id,
            tags: split(&r.tags, TAG_SEPARATOR),
            answers: split(&r.answers, ANSWER_SEPARATOR),
            difficulty: Difficulty::parse(&r.difficulty).map_err(decode_error)?,
            title: r.title,
            category: r.category,
        })
    }
}

pub(super) fn index_rows(rows: Vec<LeanRow>) -> StoreResult<Vec<IndexRow>> {
    Ok(rows
        .into_iter()
        .map(IndexRow::try_from)
        .collect::<Result<_, _>>()?)
}

/// A full question as selected: tags as a JSON array of slugs, answers as a JSON array of
/// `[id, body, created_at, updated_at, version]` in id order.
#[derive(FromRow)]
pub(super) struct QuestionRow {
    pub(super) id: i64,
    pub(super) title: String,
    pub(super) body: Option<String>,
    pub(super) category_slug: String,
    pub(super) category_name: String,
    pub(super) difficulty: String,
    pub(super) created_at: i64,
    pub(super) updated_at: i64,
    pub(super) version: i64,
    pub(super) external_id: Option<String>,
    pub(super) tags_json: String,
    pub(super) answers_json: String,
}

impl TryFrom<QuestionRow> for Question {
    type Error = sqlx::Error;

    fn try_from(r: QuestionRow) -> Result<Self, sqlx::Error> {
        let tags: Vec<String> = serde_json::from_str(&r.tags_json).map_err(decode_error)?;
        let answers: Vec<(i64, String, i64, i64, i64)> =
            serde_json::from_str(&r.answers_json).map_err(decode_error)?;
        Ok(Question {
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
        })
    }
}

/// Questions in the order of `ids`, skipping ids with no row.
pub(super) fn questions_in_order(
    ids: &[i64],
    rows: Vec<QuestionRow>,
) -> StoreResult<Vec<Question>> {
    let mut by_id: HashMap<i64, Question> = HashMap::with_capacity(rows.len());
    for r in rows {
        let q = Question::try_from(r)?;
        by_id.insert(q.id, q);
    }
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

#[derive(FromRow)]
pub(super) struct AnswerRow {
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

pub(super) fn check_version(current: i64, expected: &Precondition) -> StoreResult<()> {
    if expected.admits(current) {
        Ok(())
    } else {
        Err(StoreError::VersionMismatch { current })
    }
}

/// A quiz pool: the questions one filter value admits, each in a dense slot `1..=size` so a
/// draw can pick uniformly by slot number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pool {
    All,
    Category(i64),
    Tag(i64),
    Difficulty(Difficulty),
}

impl Pool {
    /// The pool's name in `quiz_pools`/`quiz_slots`; the one place it is spelled.
    pub(super) fn key(&self) -> String {
        match self {
            Pool::All => "all".to_string(),
            Pool::Category(id) => format!("c:{id}"),
            Pool::Tag(id) => format!("t:{id}"),
            Pool::Difficulty(d) => format!("d:{}", d.as_str()),
        }
    }

    /// Every pool a question with these attributes belongs to.
    pub(super) fn of(category_id: i64, difficulty: Difficulty, tag_ids: &[i64]) -> Vec<Pool> {
        let mut pools = vec![
            Pool::All,
            Pool::Category(category_id),
            Pool::Difficulty(difficulty),
        ];
        pools.extend(tag_ids.iter().map(|t| Pool::Tag(*t)));
        pools
    }
}

pub(super) fn pool_keys(pools: &[Pool]) -> Vec<String> {
    pools.iter().map(Pool::key).collect()
}

/// What a draw may return besides pool membership.
#[derive(Debug, Clone, Default)]
pub struct Eligibility<'a> {
    /// Pools the question must also be in.
    pub other_pools: &'a [Pool],
    /// A session whose served questions are excluded.
    pub session: Option<&'a str>,
    /// Only questions with at least one answer (multiple choice).
    pub needs_answers: bool,
}

/// A stored quiz session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub filter: QuizFilter,
    pub expires_at: DateTime<Utc>,
}

/// A session as selected.
#[derive(FromRow)]
pub(super) struct RawSession {
    category: Option<String>,
    tag: Option<String>,
    difficulty: Option<String>,
    expires_at: i64,
}

impl TryFrom<RawSession> for SessionRow {
    type Error = sqlx::Error;

    fn try_from(r: RawSession) -> sqlx::Result<SessionRow> {
        // Stored filters were valid when written; one that no longer parses is corruption,
        // reported rather than silently widening the session.
        let slug = |s: Option<String>| s.as_deref().map(Slug::parse).transpose();
        let filter = QuizFilter {
            category: slug(r.category).map_err(decode_error)?,
            tag: slug(r.tag).map_err(decode_error)?,
            difficulty: r
                .difficulty
                .as_deref()
                .map(Difficulty::parse)
                .transpose()
                .map_err(decode_error)?,
        };
        Ok(SessionRow {
            filter,
            expires_at: from_micros(r.expires_at),
        })
    }
}

/// A learner's FSRS state for one question: the fold of its reviews in time order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Card {
    pub stability: f32,
    pub difficulty: f32,
    pub due: DateTime<Utc>,
    pub last_review: DateTime<Utc>,
    pub reps: i64,
    /// The interval the last review set (`due` is that long after `last_review`).
    pub interval_days: f64,
}

/// A review as saved: the card it left and the interval it scheduled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SavedReview {
    pub question_id: i64,
    pub interval_days: f64,
    pub card: Card,
}

/// A card as selected.
#[derive(FromRow)]
pub(super) struct CardRow {
    stability: f64,
    difficulty: f64,
    due: i64,
    last_review: i64,
    reps: i64,
    interval_days: f64,
}

impl From<CardRow> for Card {
    fn from(r: CardRow) -> Self {
        Card {
            stability: r.stability as f32,
            difficulty: r.difficulty as f32,
            due: from_micros(r.due),
            last_review: from_micros(r.last_review),
            reps: r.reps,
            interval_days: r.interval_days,
        }
    }
}

/// A card as selected with the question it is for.
#[derive(FromRow)]
pub(super) struct QuestionCardRow {
    pub question_id: i64,
    #[sqlx(flatten)]
    pub card: CardRow,
}

/// A card that is due, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueCard {
    pub question_id: i64,
    pub due: DateTime<Utc>,
}

#[derive(FromRow)]
pub(super) struct DueRow {
    question_id: i64,
    due: i64,
}

impl From<DueRow> for DueCard {
    fn from(r: DueRow) -> Self {
        DueCard {
            question_id: r.question_id,
            due: from_micros(r.due),
        }
    }
}

/// A category as selected, with its number of questions.
#[derive(FromRow)]
pub(super) struct CategoryRow {
    slug: String,
    name: String,
    question_count: i64,
}

impl From<CategoryRow> for Category {
    fn from(r: CategoryRow) -> Self {
        Category {
            slug: r.slug,
            name: r.name,
            question_count: r.question_count,
        }
    }
}

/// A tag as selected, with the number of questions that carry it.
#[derive(FromRow)]
pub(super) struct TagRow {
    slug: String,
    question_count: i64,
}

impl From<TagRow> for TagCount {
    fn from(r: TagRow) -> Self {
        TagCount {
            slug: r.slug,
            question_count: r.question_count,
        }
    }
}

/// An API key as listed (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    pub scope: Scope,
    /// The first characters of the key, to tell keys apart.
    pub prefix: String,
    /// Request units per minute; `None`: the server's default for keys.
    pub rate_per_minute: Option<u32>,
    pub created_at: DateTime<Utc>,
    /// When a request last presented it (or a learner token it issued), to the minute.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it stops working; `None`: never.
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A live key as a request presents it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyGrant {
    pub id: i64,
    pub scope: Scope,
    pub rate_per_minute: Option<u32>,
}

/// A key as selected (never the key itself, only its hash is stored).
#[derive(FromRow)]
pub(super) struct KeyRow {
    id: i64,
    name: String,
    scope: String,
    prefix: String,
    rate: Option<i64>,
    created_at: i64,
    last_used_at: Option<i64>,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
}

fn scope(raw: &str) -> sqlx::Result<Scope> {
    Scope::parse(raw).map_err(decode_error)
}

impl TryFrom<KeyRow> for ApiKey {
    type Error = sqlx::Error;

    fn try_from(r: KeyRow) -> sqlx::Result<ApiKey> {
        Ok(ApiKey {
            id: r.id,
            name: r.name,
            scope: scope(&r.scope)?,
            prefix: r.prefix,
            rate_per_minute: r.rate.map(|r| r as u32),
            created_at: from_micros(r.created_at),
            last_used_at: r.last_used_at.map(from_micros),
            expires_at: r.expires_at.map(from_micros),
            revoked_at: r.revoked_at.map(from_micros),
        })
    }
}

/// A live key as selected for a request.
#[derive(FromRow)]
pub(super) struct GrantRow {
    id: i64,
    scope: String,
    rate: Option<i64>,
}

impl TryFrom<GrantRow> for KeyGrant {
    type Error = sqlx::Error;

    fn try_from(r: GrantRow) -> sqlx::Result<KeyGrant> {
        Ok(KeyGrant {
            id: r.id,
            scope: scope(&r.scope)?,
            rate_per_minute: r.rate.map(|r| r as u32),
        })
    }
}

/// The stored synonym table, as `put_synonyms` wrote it.
pub(super) fn decode_synonyms(body: &str) -> StoreResult<SynonymTable> {
    let raw: RawSynonymTable = serde_json::from_str(body).map_err(decode_error)?;
    Ok(SynonymTable::parse(&raw).map_err(|e| decode_error(format!("{e:?}")))?)
}

pub(super) fn encode_synonyms(table: &SynonymTable) -> StoreResult<String> {
    Ok(serde_json::to_string(&table.to_raw()).map_err(decode_error)?)
}

/// What a batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// The last change-log sequence written (0 when nothing changed).
    pub last_seq: i64,
}

/// How an import line relates to what is stored.
pub(super) enum Existing {
    New,
    Unchanged,
    Changed(i64),
}

/// Classifies items from what their identity lookups found: item index → (id, import hash).
pub(super) fn classify(
    items: &[ImportItem],
    found: &HashMap<usize, (i64, Option<String>)>,
) -> Vec<Existing> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match found.get(&i) {
            None => Existing::New,
            Some((_, Some(h))) if *h == item.hash => Existing::Unchanged,
            Some((id, _)) => Existing::Changed(*id),
        })
        .collect()
}

/// A re-imported line that changed replaces every field of its question.
pub(super) fn import_patch(item: &ImportItem) -> QuestionPatch {
    let q = &item.question;
    QuestionPatch {
        title: Some(q.title.clone()),
        body: Some(q.body.clone()),
        category: Some(q.category.clone()),
        tags: Some(q.tags.clone()),
        difficulty: Some(q.difficulty),
        answers: Some(q.answers.clone()),
    }
}

/// A new question's rows as both a single create and an import write them.
pub(super) struct NewRows<'a> {
    pub question: &'a NewQuestion,
    pub category_id: i64,
    /// Microseconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// `(created_at, updated_at)` of each answer, in microseconds.
    pub answer_times: Vec<(i64, i64)>,
    pub external_id: Option<&'a str>,
    pub import_hash: Option<&'a str>,
}

impl<'a> NewRows<'a> {
    /// A question created now through the API.
    pub fn created(question: &'a NewQuestion, category_id: i64, now: i64) -> Self {
        NewRows {
            question,
            category_id,
            created_at: now,
            updated_at: now,
            answer_times: vec![(now, now); question.answers.len()],
            external_id: None,
            import_hash: None,
        }
    }

    /// A new question from an import line, keeping the line's timestamps when it has them.
    pub fn imported(item: &'a ImportItem, category_id: i64, now: i64) -> Self {
        let created = item.created_at.unwrap_or(now);
        NewRows {
            question: &item.question,
            category_id,
            created_at: created,
            updated_at: item.updated_at.unwrap_or(created),
            answer_times: item
                .answer_times
                .iter()
                .map(|(c, u)| {
                    let c = c.unwrap_or(created);
                    (c, u.unwrap_or(c))
                })
                .collect(),
            external_id: item.external_id.as_deref(),
            import_hash: Some(&item.hash),
        }
    }
}

/// The categories an import batch names, slug → display name (the first line's name wins).
pub(super) fn wanted_categories(items: &[ImportItem]) -> HashMap<&str, &str> {
    let mut wanted: HashMap<&str, &str> = HashMap::new();
    for item in items {
        wanted
            .entry(item.question.category.as_str())
            .or_insert(item.category_name.as_str());
    }
    wanted
}

/// A new question's row, in the column order of the insert that writes it.
#[derive(serde::Serialize)]
pub(super) struct NewQuestionRow<'a>(
    pub i64,
    pub &'a str,
    pub Option<&'a str>,
    pub i64,
    pub &'static str,
    pub i64,
    pub i64,
    pub Option<&'a str>,
    pub Option<&'a str>,
);

/// Every row a batch of new questions adds, whichever database receives them: the questions,
/// their answers `(question, body, created, updated)`, their tags `(question, tag, position)`,
/// their quiz-pool slots `(pool, slot, question)` and the pools' new sizes.
pub(super) struct NewBatch<'a> {
    pub questions: Vec<NewQuestionRow<'a>>,
    pub answers: Vec<(i64, &'a str, i64, i64)>,
    pub question_tags: Vec<(i64, i64, i64)>,
    pub slots: Vec<(String, i64, i64)>,
    pub pool_sizes: Vec<(String, i64)>,
}

impl<'a> NewBatch<'a> {
    /// The rows of `items`, which get the ids `ids` (in order); `tag_ids` maps every tag slug
    /// they use. Their pool slots are numbered by [`NewBatch::assign_slots`].
    pub fn new(items: &[NewRows<'a>], ids: &[i64], tag_ids: &HashMap<String, i64>) -> Self {
        let mut b = NewBatch {
            questions: Vec::with_capacity(items.len()),
            answers: Vec::new(),
            question_tags: Vec::new(),
            slots: Vec::new(),
            pool_sizes: Vec::new(),
        };
        for (item, &id) in items.iter().zip(ids) {
            let q = item.question;
            b.questions.push(NewQuestionRow(
                id,
                q.title.as_str(),
                q.body.as_ref().map(|b| b.as_str()),
                item.category_id,
                q.difficulty.as_str(),
                item.created_at,
                item.updated_at,
                item.external_id,
                item.import_hash,
            ));
            for (a, (created, updated)) in q.answers.iter().zip(&item.answer_times) {
                b.answers.push((id, a.as_str(), *created, *updated));
            }
            let mut tags = Vec::with_capacity(q.tags.as_slice().len());
            for (position, tag) in q.tags.as_slice().iter().enumerate() {
                let tag_id = tag_ids[tag.as_str()];
                b.question_tags.push((id, tag_id, position as i64));
                tags.push(tag_id);
            }
            for pool in Pool::of(item.category_id, q.difficulty, &tags) {
                b.slots.push((pool.key(), 0, id));
            }
        }
        b
    }

    /// The distinct pools the batch's questions join.
    pub fn pools(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self.slots.iter().map(|(p, _, _)| p.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// Gives each question the next dense slot of each of its pools, from the pools' current
    /// `sizes` (a pool not in it is empty), and records the pools' new sizes.
    pub fn assign_slots(&mut self, mut sizes: HashMap<String, i64>) {
        for (pool, slot, _) in &mut self.slots {
            let size = sizes.entry(pool.clone()).or_insert(0);
            *size += 1;
            *slot = *size;
        }
        self.pool_sizes = sizes.into_iter().collect();
    }
}

/// The distinct tag slugs of the items, sorted.
pub(super) fn tag_slugs<'a>(items: &[NewRows<'a>]) -> Vec<&'a str> {
    let mut slugs: Vec<&str> = items
        .iter()
        .flat_map(|i| i.question.tags.as_slice().iter().map(|t| t.as_str()))
        .collect();
    slugs.sort_unstable();
    slugs.dedup();
    slugs
}

/// `rows` of (key, value) arranged in the order of `keys`, skipping keys with no row.
pub(super) fn in_order_of(keys: &[i64], rows: Vec<(i64, i64)>) -> Vec<i64> {
    let by_key: HashMap<i64, i64> = rows.into_iter().collect();
    keys.iter().filter_map(|k| by_key.get(k).copied()).collect()
}
