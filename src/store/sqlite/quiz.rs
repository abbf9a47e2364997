//! The quiz statements SQLite spells its own way: sets of values travel as JSON arrays
//! through `json_each`.

use crate::store::model::{Eligibility, Pool, pool_keys};
use crate::store::quiz::QuizSql;
use sqlx::SqliteConnection;
use std::collections::{HashMap, HashSet};

/// The eligibility conditions on a candidate `c.value`, shared by the two queries below.
/// Parameters: ?2 other pools (JSON array), ?3 their number, ?4 session hash or NULL,
/// ?5 whether an answer is needed. ?1 is the caller's candidate list.
const ELIGIBLE: &str = "(SELECT count(*) FROM quiz_slots s WHERE s.question_id = c.value
        AND s.pool IN (SELECT value FROM json_each(?2))) = ?3
    AND (?4 IS NULL OR NOT EXISTS (SELECT 1 FROM quiz_session_served v
        WHERE v.token_hash = ?4 AND v.question_id = c.value))
    AND (?5 = 0 OR EXISTS (SELECT 1 FROM answers a WHERE a.question_id = c.value))";

impl QuizSql for SqliteConnection {
    /// One cheap lookup per pool (a draw names at most three).
    async fn pool_sizes(&mut self, pools: &[Pool]) -> sqlx::Result<Vec<i64>> {
        let mut out = Vec::with_capacity(pools.len());
        for p in pools {
            let size: Option<i64> =
                sqlx::query_scalar("SELECT size FROM quiz_pools WHERE pool = ?")
                    .bind(p.key())
                    .fetch_optional(&mut *self)
                    .await?;
            out.push(size.unwrap_or(0));
        }
        Ok(out)
    }

    async fn pool_members_at(&mut self, pool: &Pool, slots: &[i64]) -> sqlx::Result<Vec<i64>> {
        let by_slot: HashMap<i64, i64> = sqlx::query_as(
            "SELECT slot, question_id FROM quiz_slots
             WHERE pool = ? AND slot IN (SELECT value FROM json_each(?))",
        )
        .bind(pool.key())
        .bind(serde_json::to_string(slots).expect("slots serialize"))
        .fetch_all(&mut *self)
        .await?
        .into_iter()
        .collect();
        Ok(slots
            .iter()
            .filter_map(|s| by_slot.get(s).copied())
            .collect())
    }

    async fn eligible_among(
        &mut self,
        candidates: &[i64],
        e: &Eligibility<'_>,
    ) -> sqlx::Result<HashSet<i64>> {
        let rows: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT c.value FROM json_each(?1) c WHERE {ELIGIBLE}"
        )))
        .bind(serde_json::to_string(candidates).expect("ids serialize"))
        .bind(serde_json::to_string(&pool_keys(e.other_pools)).expect("pool keys serialize"))
        .bind(e.other_pools.len() as i64)
        .bind(e.session)
        .bind(e.needs_answers)
        .fetch_all(&mut *self)
        .await?;
        Ok(rows.into_iter().collect())
    }

    async fn eligible_in_pool(
        &mut self,
        pool: &Pool,
        e: &Eligibility<'_>,
    ) -> sqlx::Result<Vec<i64>> {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT c.value FROM (SELECT question_id AS value, slot FROM quiz_slots WHERE pool = ?6) c
             WHERE {ELIGIBLE} ORDER BY c.slot"
        )))
        // ?1 (the candidate list) is not used here: the candidates are the pool itself (?6).
        .bind("[]")
        .bind(serde_json::to_string(&pool_keys(e.other_pools)).expect("pool keys serialize"))
        .bind(e.other_pools.len() as i64)
        .bind(e.session)
        .bind(e.needs_answers)
        .bind(pool.key())
        .fetch_all(&mut *self)
        .await
    }

    /// One insert per id: the one writer makes the order irrelevant, and the ids of a draw
    /// are few.
    async fn insert_served(&mut self, token_hash: &str, ids: &[i64]) -> sqlx::Result<HashSet<i64>> {
        let mut fresh = HashSet::with_capacity(ids.len());
        for id in ids {
            let done = sqlx::query(
                "INSERT OR IGNORE INTO quiz_session_served (token_hash, question_id) VALUES (?, ?)",
            )
            .bind(token_hash)
            .bind(id)
            .execute(&mut *self)
            .await?;
            if done.rows_affected() == 1 {
                fresh.insert(*id);
            }
        }
        Ok(fresh)
    }
}
