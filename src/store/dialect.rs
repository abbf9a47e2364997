//! The statements SQLite and PostgreSQL spell differently but run with the same parameters
//! and read into the same rows, as texts: what each field holds is said here once, and each
//! backend fills them in the file of the concern they belong to (`sqlite/questions.rs`,
//! `postgres/questions.rs`, …). Parameters are `$N`; a set of values is one parameter (a JSON
//! array read with `json_each` on SQLite, an array read with `unnest` or `ANY` on PostgreSQL).

/// Every statement a database spells its own way, one part per concern; the code that runs
/// them is written once (on `sql::Conn`).
#[derive(Debug)]
pub(crate) struct Dialect {
    pub questions: QuestionTexts,
    pub quiz: QuizTexts,
    pub reviews: ReviewTexts,
    pub changes: ChangeTexts,
    pub meta: MetaTexts,
}

/// A database's own spelling of the statements in [`Dialect`], which its backend supplies.
pub(crate) trait Spelling {
    const DIALECT: &'static Dialect;
}

/// The question statements whose text differs between the databases (see [`Dialect`]).
#[derive(Debug)]
pub(crate) struct QuestionTexts {
    /// Full question rows (`QuestionRow`) for a set of ids ($1).
    pub load_questions: &'static str,
    /// Ids above $1 matching category $2, difficulty $3, updated since $4 and all of the $5
    /// tags in $6, in id order, at most $7.
    pub list_question_ids: &'static str,
    /// Creates the tags of a set of slugs ($1) that do not exist yet.
    pub insert_tags: &'static str,
    /// (slug, id) of a set of tag slugs ($1).
    pub tag_ids: &'static str,
    /// Gives question $1 the tags of slugs $2 at their positions in the list.
    pub insert_question_tags: &'static str,
    /// Creates categories: created at $1, slugs $2, names $3 (pairwise); existing slugs stay.
    pub insert_categories: &'static str,
    /// (item, id, import hash) of questions whose external id is in $1, item being its
    /// position in $1.
    pub find_by_external_id: &'static str,
    /// (item, lowest id, import hash) of questions last imported from a line whose hash is in
    /// $1, item being its position in $1.
    pub find_by_hash: &'static str,
    /// Category id, difficulty and the tag ids (a JSON array) of question $1.
    pub pool_attributes: &'static str,
}

/// The quiz statements whose text differs between the databases (see [`Dialect`]).
#[derive(Debug)]
pub(crate) struct QuizTexts {
    /// (pool, size) of a set of pools ($1).
    pub pool_sizes: &'static str,
    /// (slot, question_id) of the slots $2 of pool $1.
    pub pool_members_at: &'static str,
    /// Which candidates ($1) are in every pool of $2 ($3 of them), not served by session $4
    /// (or NULL), and have an answer if $5.
    pub eligible_among: &'static str,
    /// The members of pool $1 that pass the same conditions ($2…$5), in slot order.
    pub eligible_in_pool: &'static str,
    /// Records the questions $2 as served by session $1; returns those that were not before.
    pub insert_served: &'static str,
}

/// The review statements whose text differs between the databases (see [`Dialect`]). The rows
/// a merge writes travel as one JSON array of arrays on both databases (read with `json_each`
/// on SQLite, `json_array_elements` on PostgreSQL): they mix texts, nullable texts and floats,
/// which no one typed array carries.
#[derive(Debug)]
pub(crate) struct ReviewTexts {
    /// Learner $1's reviews (`StoredReview`) of the questions in $2.
    pub log: &'static str,
    /// Learner $1's reviews (`NamedReview`) that carry one of the review ids in $2.
    pub named: &'static str,
    /// Learner $1's cards (`CardRow` with its `question_id`) of the questions in $2.
    pub cards: &'static str,
    /// Adds learner $1's reviews from $2: `[question_id, review_id, rating, reviewed_at,
    /// interval_days, stability, difficulty]` each.
    pub insert: &'static str,
    /// Sets the state of stored reviews from $1: `[id, interval_days, stability, difficulty]`
    /// each.
    pub restate: &'static str,
    /// Writes learner $1's cards from $2: `[question_id, stability, difficulty, due,
    /// last_review, reps, interval_days]` each, replacing those that exist.
    pub save_cards: &'static str,
}

/// The change-log statements whose text differs between the databases (see [`Dialect`]).
#[derive(Debug)]
pub(crate) struct ChangeTexts {
    /// The index rows (`LeanRow`) of a set of ids ($1).
    pub index_rows: &'static str,
    /// Index rows above id $1, in id order, at most $2.
    pub index_rows_after: &'static str,
    /// Feed events (`FeedRow`) with sequences above $1 and at most $2, of any type if $3 or
    /// else of the types in $4, of category $5 (or any when NULL), in sequence order, at most
    /// $6.
    pub feed_page: &'static str,
    /// The newest sequence the current transaction's snapshot holds (0 for none).
    pub snapshot_seq: &'static str,
}

/// The listings whose text differs between the databases (see [`Dialect`]): both sort slugs
/// bytewise.
#[derive(Debug)]
pub(crate) struct MetaTexts {
    /// Every category with its number of questions.
    pub list_categories: &'static str,
    /// Tags in use with their number of questions, most used first; at most $1.
    pub list_tags: &'static str,
}
