//! The quiz statements PostgreSQL spells its own way: sets of values travel as arrays through
//! `unnest` and `ANY`.

use crate::store::dialect::QuizTexts;
use crate::store::quiz::eligibility;

const ELIGIBLE: (&str, &str) = eligibility!(
    candidates: "unnest($1::bigint[]) AS c(value)",
    condition: "(SELECT count(*) FROM quiz_slots s WHERE s.question_id = c.value
            AND s.pool = ANY($2)) = $3
         AND ($4::text IS NULL OR NOT EXISTS (SELECT 1 FROM quiz_session_served v
            WHERE v.token_hash = $4 AND v.question_id = c.value))
         AND (NOT $5 OR EXISTS (SELECT 1 FROM answers a WHERE a.question_id = c.value))"
);

pub(super) const TEXTS: QuizTexts = QuizTexts {
    pool_sizes: "SELECT pool, size FROM quiz_pools WHERE pool = ANY($1)",
    pool_members_at: "SELECT slot, question_id FROM quiz_slots WHERE pool = $1 AND slot = ANY($2)",
    eligible_among: ELIGIBLE.0,
    eligible_in_pool: ELIGIBLE.1,
    insert_served: "INSERT INTO quiz_session_served (token_hash, question_id)
     SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING RETURNING question_id",
};
