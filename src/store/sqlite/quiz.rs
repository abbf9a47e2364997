//! The quiz statements SQLite spells its own way: sets of values travel as JSON arrays
//! through `json_each`.

use crate::store::dialect::QuizTexts;
use crate::store::quiz::eligibility;

const ELIGIBLE: (&str, &str) = eligibility!(
    candidates: "json_each($1) c",
    condition: "(SELECT count(*) FROM quiz_slots s WHERE s.question_id = c.value
            AND s.pool IN (SELECT value FROM json_each($2))) = $3
         AND ($4 IS NULL OR NOT EXISTS (SELECT 1 FROM quiz_session_served v
            WHERE v.token_hash = $4 AND v.question_id = c.value))
         AND ($5 = 0 OR EXISTS (SELECT 1 FROM answers a WHERE a.question_id = c.value))"
);

pub(super) const TEXTS: QuizTexts = QuizTexts {
    pool_sizes: "SELECT p.pool, p.size FROM json_each($1) j JOIN quiz_pools p ON p.pool = j.value",
    pool_members_at: "SELECT slot, question_id FROM quiz_slots
     WHERE pool = $1 AND slot IN (SELECT value FROM json_each($2))",
    eligible_among: ELIGIBLE.0,
    eligible_in_pool: ELIGIBLE.1,
    insert_served: "INSERT INTO quiz_session_served (token_hash, question_id)
     SELECT $1, value FROM json_each($2) WHERE true ON CONFLICT DO NOTHING RETURNING question_id",
};
