//! The quiz statements PostgreSQL spells its own way: sets of values travel as arrays through
//! `unnest` and `ANY`.

/// The eligibility conditions on a candidate `c.value`, shared by the two statements below:
/// in every pool of $2 ($3 of them), not served by session $4 (or NULL), with an answer if $5.
macro_rules! eligible {
    () => {
        "(SELECT count(*) FROM quiz_slots s WHERE s.question_id = c.value
            AND s.pool = ANY($2)) = $3
         AND ($4::text IS NULL OR NOT EXISTS (SELECT 1 FROM quiz_session_served v
            WHERE v.token_hash = $4 AND v.question_id = c.value))
         AND (NOT $5 OR EXISTS (SELECT 1 FROM answers a WHERE a.question_id = c.value))"
    };
}

pub(super) const POOL_SIZES: &str = "SELECT pool, size FROM quiz_pools WHERE pool = ANY($1)";

pub(super) const POOL_MEMBERS_AT: &str =
    "SELECT slot, question_id FROM quiz_slots WHERE pool = $1 AND slot = ANY($2)";

pub(super) const ELIGIBLE_AMONG: &str = concat!(
    "SELECT c.value FROM unnest($1::bigint[]) AS c(value) WHERE ",
    eligible!()
);

pub(super) const ELIGIBLE_IN_POOL: &str = concat!(
    "SELECT c.value FROM (SELECT question_id AS value, slot FROM quiz_slots WHERE pool = $1) c
     WHERE ",
    eligible!(),
    " ORDER BY c.slot"
);

pub(super) const INSERT_SERVED: &str = "INSERT INTO quiz_session_served (token_hash, question_id)
     SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING RETURNING question_id";
