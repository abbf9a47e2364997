//! Quiz pools, sessions and spaced-repetition cards: the PostgreSQL spelling of
//! `store/sqlite/quiz.rs`.

use super::PgStore;
use crate::domain::{Difficulty, QuizFilter, Slug};
use crate::store::StoreResult;
use crate::store::model::{
    Card, Eligibility, Pool, RawSession, SessionRow, card, pool_keys, session_row,
};
use crate::store::writes;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use std::collections::{HashMap, HashSet};

/// Gives each (pool, question) pair the next dense slot of its pool.
pub(super) async fn append_to_pools(
    conn: &mut PgConnection,
    pairs: &[(Pool, i64)],
) -> sqlx::Result<()> {
    let pairs: Vec<(String, i64)> = pairs.iter().map(|(p, id)| (p.key(), *id)).collect();
    let mut names: Vec<&str> = pairs.iter().map(|(p, _)| p.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut sizes: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT pool, size FROM quiz_pools WHERE pool = ANY($1)",
    )
    .bind(&names)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    let (mut s_pool, mut s_slot, mut s_question) = (vec![], vec![], vec![]);
    for (pool, id) in &pairs {
        let size = sizes.entry(pool.clone()).or_insert(0);
        *size += 1;
        s_pool.push(pool.as_str());
        s_slot.push(*size);
        s_question.push(*id);
    }
    sqlx::query(
        "INSERT INTO quiz_slots (pool, slot, question_id)
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])",
    )
    .bind(&s_pool)
    .bind(&s_slot)
    .bind(&s_question)
    .execute(&mut *conn)
    .await?;
    let (p_name, p_size): (Vec<String>, Vec<i64>) = sizes.into_iter().unzip();
    sqlx::query(
        "INSERT INTO quiz_pools (pool, size) SELECT * FROM unnest($1::text[], $2::bigint[])
         ON CONFLICT (pool) DO UPDATE SET size = excluded.size",
    )
    .bind(&p_name)
    .bind(&p_size)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The eligibility conditions on a candidate `c.value`, shared by the two queries below.
/// Parameters: $2 other pools, $3 their number, $4 session hash or NULL, $5 whether an answer
/// is needed. $1 is the caller's candidate list or pool.
const ELIGIBLE: &str = "(SELECT count(*) FROM quiz_slots s WHERE s.question_id = c.value
        AND s.pool = ANY($2)) = $3
    AND ($4::text IS NULL OR NOT EXISTS (SELECT 1 FROM quiz_session_served v
        WHERE v.token_hash = $4 AND v.question_id = c.value))
    AND (NOT $5 OR EXISTS (SELECT 1 FROM answers a WHERE a.question_id = c.value))";

impl PgStore {
    pub async fn quiz_pools(&self, filter: &QuizFilter) -> StoreResult<Vec<Pool>> {
        let mut conn = self.pool.acquire().await?;
        writes::quiz_pools(&mut *conn, filter).await
    }

    pub async fn pool_sizes(&self, pools: &[Pool]) -> StoreResult<Vec<i64>> {
        let keys = pool_keys(pools);
        let sizes: HashMap<String, i64> =
            sqlx::query_as("SELECT pool, size FROM quiz_pools WHERE pool = ANY($1)")
                .bind(&keys)
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .collect();
        Ok(keys
            .iter()
            .map(|k| sizes.get(k).copied().unwrap_or(0))
            .collect())
    }

    pub async fn pool_members_at(&self, pool: &Pool, slots: &[i64]) -> StoreResult<Vec<i64>> {
        let by_slot: HashMap<i64, i64> = sqlx::query_as(
            "SELECT slot, question_id FROM quiz_slots WHERE pool = $1 AND slot = ANY($2)",
        )
        .bind(pool.key())
        .bind(slots)
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .collect();
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
        let rows: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT c.value FROM unnest($1::bigint[]) AS c(value) WHERE {ELIGIBLE}"
        )))
        .bind(candidates)
        .bind(pool_keys(e.other_pools))
        .bind(e.other_pools.len() as i64)
        .bind(e.session)
        .bind(e.needs_answers)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().collect())
    }

    pub async fn eligible_in_pool(
        &self,
        pool: &Pool,
        e: &Eligibility<'_>,
    ) -> StoreResult<Vec<i64>> {
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT c.value FROM (SELECT question_id AS value, slot FROM quiz_slots
                                  WHERE pool = $1) c
             WHERE {ELIGIBLE} ORDER BY c.slot"
        )))
        .bind(pool.key())
        .bind(pool_keys(e.other_pools))
        .bind(e.other_pools.len() as i64)
        .bind(e.session)
        .bind(e.needs_answers)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn create_session(
        &self,
        token_hash: &str,
        filter: &QuizFilter,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM quiz_sessions WHERE expires_at < $1")
            .bind(now.timestamp_micros())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO quiz_sessions (token_hash, category, tag, difficulty, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
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
             WHERE token_hash = $1 AND expires_at >= $2",
        )
        .bind(token_hash)
        .bind(now.timestamp_micros())
        .fetch_optional(&self.pool)
        .await?;
        row.map(session_row).transpose()
    }

    pub async fn mark_served(
        &self,
        token_hash: &str,
        ids: &[i64],
        expires_at: DateTime<Utc>,
    ) -> StoreResult<Vec<i64>> {
        let mut tx = self.pool.begin().await?;
        // The primary key decides which of two concurrent draws served a question first;
        // inserting in id order keeps two such draws from deadlocking on each other's rows.
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        let fresh: HashSet<i64> = sqlx::query_scalar(
            "INSERT INTO quiz_session_served (token_hash, question_id)
             SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING RETURNING question_id",
        )
        .bind(token_hash)
        .bind(&sorted)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        sqlx::query("UPDATE quiz_sessions SET expires_at = $1 WHERE token_hash = $2")
            .bind(expires_at.timestamp_micros())
            .bind(token_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ids
            .iter()
            .copied()
            .filter(|id| fresh.contains(id))
            .collect())
    }

    pub async fn delete_session(&self, token_hash: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM quiz_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn card(&self, learner: &str, question_id: i64) -> StoreResult<Option<Card>> {
        let row: Option<(f64, f64, i64, i64, i64)> = sqlx::query_as(
            "SELECT stability, difficulty, due, last_review, reps FROM review_cards
             WHERE learner = $1 AND question_id = $2",
        )
        .bind(learner)
        .bind(question_id)
        .fetch_optional(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        writes::save_review(&mut *tx, learner, question_id, rating, interval_days, card).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn due_cards(
        &self,
        learner: &str,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<(i64, DateTime<Utc>)>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT question_id, due FROM review_cards WHERE learner = $1 AND due <= $2
             ORDER BY due, question_id LIMIT $3",
        )
        .bind(learner)
        .bind(now.timestamp_micros())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(q, d)| (q, crate::store::from_micros(d)))
            .collect())
    }

    pub async fn unreviewed(&self, learner: &str, limit: i64) -> StoreResult<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT q.id FROM questions q WHERE NOT EXISTS (
                SELECT 1 FROM review_cards c WHERE c.learner = $1 AND c.question_id = q.id)
             ORDER BY q.id LIMIT $2",
        )
        .bind(learner)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}
