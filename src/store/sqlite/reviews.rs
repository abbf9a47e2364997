//! The review statements SQLite spells its own way: sets and rows travel as JSON arrays through
//! `json_each`; and how a review locks its cards (the one writer already has).

use crate::store::dialect::ReviewTexts;
use crate::store::reviews::ReviewSql;
use sqlx::SqliteConnection;

pub(super) const TEXTS: ReviewTexts = ReviewTexts {
    log: "SELECT id, question_id, review_id, rating, reviewed_at, interval_days, stability,
            difficulty, prior_due
     FROM reviews WHERE learner = $1 AND question_id IN (SELECT value FROM json_each($2))",
    named: "SELECT review_id, question_id, rating, reviewed_at FROM reviews
     WHERE learner = $1 AND review_id IS NOT NULL
       AND review_id IN (SELECT value FROM json_each($2))",
    cards: "SELECT question_id, stability, difficulty, due, last_review, reps, interval_days
     FROM review_cards
     WHERE learner = $1 AND question_id IN (SELECT value FROM json_each($2))",
    insert: "INSERT INTO reviews (learner, question_id, review_id, rating, reviewed_at,
                                  interval_days, stability, difficulty, prior_due)
     SELECT $1, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5,
            value ->> 6, value ->> 7
     FROM json_each($2)",
    restate: "UPDATE reviews SET interval_days = j.value ->> 1, stability = j.value ->> 2,
                                 difficulty = j.value ->> 3, prior_due = j.value ->> 4
     FROM json_each($1) j WHERE reviews.id = j.value ->> 0",
    save_cards: "INSERT INTO review_cards (learner, question_id, stability, difficulty, due,
                                           last_review, reps, interval_days)
     SELECT $1, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5,
            value ->> 6
     FROM json_each($2) WHERE true
     ON CONFLICT (learner, question_id) DO UPDATE SET stability = excluded.stability,
        difficulty = excluded.difficulty, due = excluded.due,
        last_review = excluded.last_review, reps = excluded.reps,
        interval_days = excluded.interval_days",
};

impl ReviewSql for SqliteConnection {
    /// The one write transaction already excludes every other writer: only which questions
    /// exist is left to say.
    async fn lock_for_reviews(
        &mut self,
        _learner: &str,
        questions: &[i64],
        _review_ids: &[&str],
    ) -> sqlx::Result<Vec<i64>> {
        sqlx::query_scalar(
            "SELECT id FROM questions WHERE id IN (SELECT value FROM json_each($1)) ORDER BY id",
        )
        .bind(serde_json::to_string(questions).expect("ids serialize"))
        .fetch_all(&mut *self)
        .await
    }
}
