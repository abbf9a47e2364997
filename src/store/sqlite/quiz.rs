//! Quiz pools (dense slots for uniform draws), sessions, and spaced-repetition cards.

use super::SqliteStore;
use crate::domain::{Difficulty, QuizFilter, Slug};
use crate::store::model::{
    Card, Eligibility, Pool, RawSession, SessionRow, card, pool_keys, session_row,
};
use crate::store::writes;
use crate::store::{StoreResult, from_micros};
use chrono::{DateTime, Utc};
use std::collections::HashSet;

/// The eligibility conditions on a candidate `c.value`, shared by the two queries below.
/// Parameters: ?2 other pools (JSON array), ?3 their number, ?4 session hash or NULL,
/// ?5 whether an answer is needed. ?1 is the caller's candidate list.
const ELIGIBLE: &str = "(SELECT count(*) FROM quiz_slots s WHERE s.question_id = c.value
        AND s.pool IN (SELECT value FROM json_each(?2))) = ?3
    AND (?4 IS NULL OR NOT EXISTS (SELECT 1 FROM quiz_session_served v
        WHERE v.token_hash = ?4 AND v.question_id = c.value))
    AND (?5 = 0 OR EXISTS (SELECT 1 FROM answers a WHERE a.question_id = c.value))";

impl SqliteStore {
    pub async fn quiz_pools(&self, filter: &QuizFilter) -> StoreResult<Vec<Pool>> {
        let mut conn = self.read.acquire().await?;
        writes::quiz_pools(&mut *conn, filter).await
    }

    pub async fn pool_sizes(&self, pools: &[Pool]) -> StoreResult<Vec<i64>> {
        let mut out = Vec::with_capacity(pools.len());
        for p in pools {
            let row: Option<(i64,)> = sqlx::query_as("SELECT size FROM quiz_pools WHERE pool = ?")
                .bind(p.key())
                .fetch_optional(&self.read)
                .await?;
            out.push(row.map_or(0, |r| r.0));
        }
        Ok(out)
    }

    pub async fn pool_members_at(&self, pool: &Pool, slots: &[i64]) -> StoreResult<Vec<i64>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT slot, question_id FROM quiz_slots
             WHERE pool = ? AND slot IN (SELECT value FROM json_each(?))",
        )
        .bind(pool.key())
        .bind(serde_json::to_string(slots).expect("slots serialize"))
        .fetch_all(&self.read)
        .await?;
        let by_slot: std::collections::HashMap<i64, i64> = rows.into_iter().collect();
        Ok(slots
            .iter()
            .filter_map(|s| by_slot.get(s).copied())
            .collect())
    }

    pub async fn eligible_among(
        &self,
        candidates: &[i64],
        e: &Eligibility<'_>,
    ) -> StoreResult<HashSet<i64>> {
        let rows: Vec<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT c.value FROM json_each(?1) c WHERE {ELIGIBLE}"
        )))
        .bind(serde_json::to_string(candidates).expect("ids serialize"))
        .bind(serde_json::to_string(&pool_keys(e.other_pools)).expect("pool keys serialize"))
        .bind(e.other_pools.len() as i64)
        .bind(e.session)
        .bind(e.needs_answers)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    pub async fn eligible_in_pool(
        &self,
        pool: &Pool,
        e: &Eligibility<'_>,
    ) -> StoreResult<Vec<i64>> {
        let rows: Vec<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
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
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    pub async fn create_session(
        &self,
        token_hash: &str,
        filter: &QuizFilter,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM quiz_sessions WHERE expires_at < ?")
            .bind(now.timestamp_micros())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO quiz_sessions (token_hash, category, tag, difficulty, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(token_hash)
        .bind(filter.category.as_ref().map(Slug::as_str))
        .bind(filter.tag.as_ref().map(Slug::as_str))
        .bind(filter.difficulty.map(Difficulty::as_str))
        .bind(now.timestamp_micros())
        .bind(expires_at.timestamp_micros())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<SessionRow>> {
        let row: Option<RawSession> = sqlx::query_as(
            "SELECT category, tag, difficulty, expires_at FROM quiz_sessions
             WHERE token_hash = ? AND expires_at >= ?",
        )
        .bind(token_hash)
        .bind(now.timestamp_micros())
        .fetch_optional(&self.read)
        .await?;
        row.map(session_row).transpose()
    }

    pub async fn mark_served(
        &self,
        token_hash: &str,
        ids: &[i64],
        expires_at: DateTime<Utc>,
    ) -> StoreResult<Vec<i64>> {
        let mut tx = self.begin_write().await?;
        let mut fresh = Vec::with_capacity(ids.len());
        for id in ids {
            let done = sqlx::query(
                "INSERT OR IGNORE INTO quiz_session_served (token_hash, question_id) VALUES (?, ?)",
            )
            .bind(token_hash)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                fresh.push(*id);
            }
        }
        sqlx::query("UPDATE quiz_sessions SET expires_at = ? WHERE token_hash = ?")
            .bind(expires_at.timestamp_micros())
            .bind(token_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(fresh)
    }

    pub async fn delete_session(&self, token_hash: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM quiz_sessions WHERE token_hash = ?")
            .bind(token_hash)
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn card(&self, learner: &str, question_id: i64) -> StoreResult<Option<Card>> {
        let row: Option<(f64, f64, i64, i64, i64)> = sqlx::query_as(
            "SELECT stability, difficulty, due, last_review, reps FROM review_cards
             WHERE learner = ? AND question_id = ?",
        )
        .bind(learner)
        .bind(question_id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(card))
    }

    pub async fn save_review(
        &self,
        learner: &str,
        question_id: i64,
        rating: &str,
        interval_days: f64,
        card: &Card,
    ) -> StoreResult<()> {
        self.write(async |c| {
            writes::save_review(c, learner, question_id, rating, interval_days, card).await
        })
        .await
    }

    pub async fn due_cards(
        &self,
        learner: &str,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<(i64, DateTime<Utc>)>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT question_id, due FROM review_cards WHERE learner = ? AND due <= ?
             ORDER BY due, question_id LIMIT ?",
        )
        .bind(learner)
        .bind(now.timestamp_micros())
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|(q, d)| (q, from_micros(d))).collect())
    }

    pub async fn unreviewed(&self, learner: &str, limit: i64) -> StoreResult<Vec<i64>> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT q.id FROM questions q WHERE NOT EXISTS (
                SELECT 1 FROM review_cards c WHERE c.learner = ? AND c.question_id = q.id)
             ORDER BY q.id LIMIT ?",
        )
        .bind(learner)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }
}
