//! The review statements PostgreSQL spells its own way: sets travel as arrays through `ANY`,
//! rows as JSON through `json_array_elements`; and how a review locks its cards.

use crate::store::dialect::ReviewTexts;
use crate::store::reviews::ReviewSql;
use sqlx::PgConnection;

pub(super) const TEXTS: ReviewTexts = ReviewTexts {
    log: "SELECT id, question_id, review_id, rating, reviewed_at, interval_days, stability,
            difficulty, prior_due
     FROM reviews WHERE learner = $1 AND question_id = ANY($2)",
    named: "SELECT review_id, question_id, rating, reviewed_at FROM reviews
     WHERE learner = $1 AND review_id = ANY($2)",
    cards: "SELECT question_id, stability, difficulty, due, last_review, reps, interval_days
     FROM review_cards WHERE learner = $1 AND question_id = ANY($2)",
    insert: "INSERT INTO reviews (learner, question_id, review_id, rating, reviewed_at,
                                  interval_days, stability, difficulty, prior_due)
     SELECT $1, (r ->> 0)::bigint, r ->> 1, r ->> 2, (r ->> 3)::bigint,
            (r ->> 4)::double precision, (r ->> 5)::double precision, (r ->> 6)::double precision,
            (r ->> 7)::bigint
     FROM json_array_elements($2::json) AS j(r)",
    restate: "UPDATE reviews SET interval_days = (r ->> 1)::double precision,
                                 stability = (r ->> 2)::double precision,
                                 difficulty = (r ->> 3)::double precision,
                                 prior_due = (r ->> 4)::bigint
     FROM json_array_elements($1::json) AS j(r) WHERE id = (r ->> 0)::bigint",
    save_cards: "INSERT INTO review_cards (learner, question_id, stability, difficulty, due,
                                           last_review, reps, interval_days)
     SELECT $1, (r ->> 0)::bigint, (r ->> 1)::double precision, (r ->> 2)::double precision,
            (r ->> 3)::bigint, (r ->> 4)::bigint, (r ->> 5)::bigint, (r ->> 6)::double precision
     FROM json_array_elements($2::json) AS j(r)
     ON CONFLICT (learner, question_id) DO UPDATE SET stability = excluded.stability,
        difficulty = excluded.difficulty, due = excluded.due,
        last_review = excluded.last_review, reps = excluded.reps,
        interval_days = excluded.interval_days",
};

/// Locks one transaction takes on the cards and review ids it writes; beyond, it takes the
/// learner's whole log instead. Every advisory lock is an entry in PostgreSQL's shared lock
/// table (`max_locks_per_transaction`, 64 by default, times the connections), which a few
/// batches of 1,000 cards and 1,000 ids would fill, failing every transaction that needs a
/// lock ("out of shared memory").
const ITEM_LOCKS_MAX: usize = 32;

impl ReviewSql for PgConnection {
    /// Two levels of advisory locks. A learner's lock, taken shared by a write of a few
    /// reviews and exclusive by a larger one, then, under the shared one, each card's lock
    /// (which serialises two clients syncing reviews of it, perhaps through two replicas;
    /// the key earlier releases took for a single review) and each review id's (so one id
    /// sent for two different questions at once is seen by the second rather than failing it
    /// on the unique index). Those are taken in one statement in the order of their keys, so
    /// two writes that share cards wait for each other instead of deadlocking. The exclusive
    /// learner lock covers all of them at once: review ids are unique per learner. KEY SHARE
    /// on the questions makes a concurrent delete wait for these reviews (or these reviews
    /// see it gone) instead of failing the insert on the foreign key.
    async fn lock_for_reviews(
        &mut self,
        learner: &str,
        questions: &[i64],
        review_ids: &[&str],
    ) -> sqlx::Result<Vec<i64>> {
        if questions.len() + review_ids.len() > ITEM_LOCKS_MAX {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(learner)
                .execute(&mut *self)
                .await?;
        } else {
            sqlx::query("SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))")
                .bind(learner)
                .execute(&mut *self)
                .await?;
            sqlx::query(
                "SELECT pg_advisory_xact_lock(k) FROM (
                    SELECT DISTINCT hashtextextended(key, 0) AS k FROM (
                        SELECT $1 || ':' || q::text AS key FROM unnest($2::bigint[]) AS q
                        UNION ALL
                        SELECT $1 || '#' || r FROM unnest($3::text[]) AS r
                    ) keys
                    ORDER BY k
                 ) locks",
            )
            .bind(learner)
            .bind(questions)
            .bind(review_ids)
            .execute(&mut *self)
            .await?;
        }
        sqlx::query_scalar("SELECT id FROM questions WHERE id = ANY($1) ORDER BY id FOR KEY SHARE")
            .bind(questions)
            .fetch_all(&mut *self)
            .await
    }
}
