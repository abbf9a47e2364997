//! The quiz statements PostgreSQL spells its own way: sets of values travel as arrays through
//! `unnest` and `ANY`.

use crate::store::model::{Eligibility, Pool, pool_keys};
use crate::store::quiz::QuizSql;
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

impl QuizSql for PgConnection {
    async fn pool_sizes(&mut self, pools: &[Pool]) -> sqlx::Result<Vec<i64>> {
        let keys = pool_keys(pools);
        let sizes: HashMap<String, i64> =
            sqlx::query_as("SELECT pool, size FROM quiz_pools WHERE pool = ANY($1)")
                .bind(&keys)
                .fetch_all(&mut *self)
                .await?
                .into_iter()
                .collect();
        Ok(keys
            .iter()
            .map(|k| sizes.get(k).copied().unwrap_or(0))
            .collect())
    }

    async fn pool_members_at(&mut self, pool: &Pool, slots: &[i64]) -> sqlx::Result<Vec<i64>> {
        let by_slot: HashMap<i64, i64> = sqlx::query_as(
            "SELECT slot, question_id FROM quiz_slots WHERE pool = $1 AND slot = ANY($2)",
        )
        .bind(pool.key())
        .bind(slots)
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
            "SELECT c.value FROM unnest($1::bigint[]) AS c(value) WHERE {ELIGIBLE}"
        )))
        .bind(candidates)
        .bind(pool_keys(e.other_pools))
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
            "SELECT c.value FROM (SELECT question_id AS value, slot FROM quiz_slots
                                  WHERE pool = $1) c
             WHERE {ELIGIBLE} ORDER BY c.slot"
        )))
        .bind(pool.key())
        .bind(pool_keys(e.other_pools))
        .bind(e.other_pools.len() as i64)
        .bind(e.session)
        .bind(e.needs_answers)
        .fetch_all(&mut *self)
        .await
    }

    /// The primary key decides which of two concurrent draws served a question first;
    /// inserting in id order keeps two such draws from deadlocking on each other's rows.
    async fn insert_served(&mut self, token_hash: &str, ids: &[i64]) -> sqlx::Result<HashSet<i64>> {
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        Ok(sqlx::query_scalar(
            "INSERT INTO quiz_session_served (token_hash, question_id)
             SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING RETURNING question_id",
        )
        .bind(token_hash)
        .bind(&sorted)
        .fetch_all(&mut *self)
        .await?
        .into_iter()
        .collect())
    }
}
