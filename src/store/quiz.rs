//! Quiz pools (dense slots for uniform draws), sessions, and spaced-repetition cards: the
//! operations the service calls, written once; the texts of the statements that take a set
//! of values come from the dialect (`sqlite/quiz.rs`, `postgres/quiz.rs`).

use super::dialect::Dialect;
use super::model::{
    DueCard, DueRow, Eligibility, Pool, RawSession, SessionRow, in_order_of, pool_keys,
};
use super::sql::Arg;
use super::writes;
use super::{Store, StoreResult};
use crate::domain::{Difficulty, QuizFilter, Slug};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

/// The two eligibility statements, around a database's spelling of the condition on a
/// candidate `c.value` (in every pool of $2, $3 of them; not served by session $4, or NULL;
/// with an answer if $5) and of a set of ids ($1) read as the candidates `c`.
macro_rules! eligibility {
    (candidates: $candidates:literal, condition: $condition:literal) => {
        (
            concat!("SELECT c.value FROM ", $candidates, " WHERE ", $condition),
            concat!(
                "SELECT c.value FROM (SELECT question_id AS value, slot FROM quiz_slots
                                      WHERE pool = $1) c
                 WHERE ",
                $condition,
                " ORDER BY c.slot"
            ),
        )
    };
}
pub(super) use eligibility;

impl Store {
    /// The pools a draw with these filters must come from; an unknown category or tag is an
    /// error rather than an empty pool, so a typo is reported, not silently "no questions".
    pub async fn quiz_pools(&self, filter: &QuizFilter) -> StoreResult<Vec<Pool>> {
        self.reading(async |c| writes::quiz_pools(c, filter).await)
            .await
    }

    /// The size of each pool, in order (0 for a pool no question is in).
    pub async fn pool_sizes(&self, pools: &[Pool]) -> StoreResult<Vec<i64>> {
        let keys = pool_keys(pools);
        let texts: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.reading(async |c| {
            let sql = c.dialect().quiz.pool_sizes;
            let sizes: HashMap<String, i64> = c
                .fetch_all::<(String, i64)>(sql, &[Arg::Texts(&texts)])
                .await?
                .into_iter()
                .collect();
            Ok(keys
                .iter()
                .map(|k| sizes.get(k).copied().unwrap_or(0))
                .collect())
        })
        .await
    }

    /// The questions at `slots` of `pool`, in the order of `slots`.
    pub async fn pool_members_at(&self, pool: &Pool, slots: &[i64]) -> StoreResult<Vec<i64>> {
        let key = pool.key();
        self.reading(async |c| {
            let sql = c.dialect().quiz.pool_members_at;
            let rows = c
                .fetch_all(sql, &[key.as_str().into(), Arg::Ints(slots)])
                .await?;
            Ok(in_order_of(slots, rows))
        })
        .await
    }

    /// Which of `candidates` are eligible.
    pub async fn eligible_among(
        &self,
        candidates: &[i64],
        e: &Eligibility<'_>,
    ) -> StoreResult<HashSet<i64>> {
        let ids = self
            .eligible(|d| d.quiz.eligible_among, Arg::Ints(candidates), e)
            .await?;
        Ok(ids.into_iter().collect())
    }

    /// Every eligible member of `pool`, in slot order: the exact fallback when rejection
    /// sampling would take too many tries. Costs O(pool size).
    pub async fn eligible_in_pool(
        &self,
        pool: &Pool,
        e: &Eligibility<'_>,
    ) -> StoreResult<Vec<i64>> {
        let key = pool.key();
        self.eligible(|d| d.quiz.eligible_in_pool, key.as_str().into(), e)
            .await
    }

    /// Runs one of the two eligibility statements over `candidates` (a set, or a pool).
    async fn eligible(
        &self,
        sql: fn(&Dialect) -> &'static str,
        candidates: Arg<'_>,
        e: &Eligibility<'_>,
    ) -> StoreResult<Vec<i64>> {
        let pools = pool_keys(e.other_pools);
        let pools: Vec<&str> = pools.iter().map(String::as_str).collect();
        self.reading(async |c| {
            let sql = sql(c.dialect());
            let args = [
                candidates,
                Arg::Texts(&pools),
                (pools.len() as i64).into(),
                e.session.into(),
                e.needs_answers.into(),
            ];
            Ok(c.values(sql, &args).await?)
        })
        .await
    }

    /// Stores a new session (and drops expired ones); returns it as stored.
    pub async fn create_session(
        &self,
        token_hash: &str,
        filter: &QuizFilter,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<SessionRow> {
        self.write(async |c| {
            c.execute(
                "DELETE FROM quiz_sessions WHERE expires_at < $1",
                &[now.timestamp_micros().into()],
            )
            .await?;
            c.execute(
                "INSERT INTO quiz_sessions (token_hash, category, tag, difficulty, created_at,
                                            expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    token_hash.into(),
                    filter.category.as_ref().map(Slug::as_str).into(),
                    filter.tag.as_ref().map(Slug::as_str).into(),
                    filter.difficulty.map(Difficulty::as_str).into(),
                    now.timestamp_micros().into(),
                    expires_at.timestamp_micros().into(),
                ],
            )
            .await?;
            Ok(SessionRow {
                filter: filter.clone(),
                expires_at,
            })
        })
        .await
    }

    /// The session, unless it does not exist or has expired.
    pub async fn get_session(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<SessionRow>> {
        self.reading(async |c| {
            let row: Option<RawSession> = c
                .fetch_optional(
                    "SELECT category, tag, difficulty, expires_at FROM quiz_sessions
                     WHERE token_hash = $1 AND expires_at >= $2",
                    &[token_hash.into(), now.timestamp_micros().into()],
                )
                .await?;
            Ok(row.map(SessionRow::try_from).transpose()?)
        })
        .await
    }

    /// Records `ids` as served and extends the session; returns the ids that were not served
    /// before (a concurrent draw may have taken some), in the given order.
    pub async fn mark_served(
        &self,
        token_hash: &str,
        ids: &[i64],
        expires_at: DateTime<Utc>,
    ) -> StoreResult<Vec<i64>> {
        // The primary key decides which of two concurrent draws served a question first;
        // inserting in id order keeps two such draws from deadlocking on each other's rows.
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        self.write(async |c| {
            let sql = c.dialect().quiz.insert_served;
            let fresh: HashSet<i64> = c
                .values(sql, &[token_hash.into(), Arg::Ints(&sorted)])
                .await?
                .into_iter()
                .collect();
            c.execute(
                "UPDATE quiz_sessions SET expires_at = $1 WHERE token_hash = $2",
                &[expires_at.timestamp_micros().into(), token_hash.into()],
            )
            .await?;
            Ok(ids
                .iter()
                .copied()
                .filter(|id| fresh.contains(id))
                .collect())
        })
        .await
    }

    pub async fn delete_session(&self, token_hash: &str) -> StoreResult<bool> {
        self.write(async |c| {
            let n = c
                .execute(
                    "DELETE FROM quiz_sessions WHERE token_hash = $1",
                    &[token_hash.into()],
                )
                .await?;
            Ok(n == 1)
        })
        .await
    }

    /// Cards due at `now`, most overdue first.
    pub async fn due_cards(
        &self,
        learner: &str,
        now: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<DueCard>> {
        self.reading(async |c| {
            let rows: Vec<DueRow> = c
                .fetch_all(
                    "SELECT question_id, due FROM review_cards WHERE learner = $1 AND due <= $2
                     ORDER BY due, question_id LIMIT $3",
                    &[learner.into(), now.timestamp_micros().into(), limit.into()],
                )
                .await?;
            Ok(rows.into_iter().map(Into::into).collect())
        })
        .await
    }

    /// Questions the learner has never reviewed, in id order.
    pub async fn unreviewed(&self, learner: &str, limit: i64) -> StoreResult<Vec<i64>> {
        self.reading(async |c| {
            Ok(c.values(
                "SELECT q.id FROM questions q WHERE NOT EXISTS (
                    SELECT 1 FROM review_cards c WHERE c.learner = $1 AND c.question_id = q.id)
                 ORDER BY q.id LIMIT $2",
                &[learner.into(), limit.into()],
            )
            .await?)
        })
        .await
    }
}
