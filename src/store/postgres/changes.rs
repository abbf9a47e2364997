//! The change log every replica's index follows, and the replicas' positions in it.

use super::{CHANGE_LOG_LOCK, PgStore};
use crate::store::model::{Change, Changes, IndexRow, LeanRow, index_rows};
use crate::store::{PRUNED_UPTO, StoreResult, now_micros};

const LEAN_SELECT: &str = "SELECT q.id, q.title, c.slug AS category, q.difficulty,
        coalesce((SELECT string_agg(t.slug, chr(31) ORDER BY qt.position)
                  FROM question_tags qt JOIN tags t ON t.id = qt.tag_id
                  WHERE qt.question_id = q.id), '') AS tags,
        coalesce((SELECT string_agg(a.body, chr(30) ORDER BY a.id)
                  FROM answers a WHERE a.question_id = q.id), '') AS answers";

impl PgStore {
    pub async fn index_rows(&self, ids: &[i64]) -> StoreResult<Vec<IndexRow>> {
        let rows: Vec<LeanRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{LEAN_SELECT}
             FROM questions q JOIN categories c ON c.id = q.category_id
             WHERE q.id = ANY($1)"
        )))
        .bind(ids)
        .fetch_all(&self.pool)
        .await?;
        index_rows(rows)
    }

    pub async fn index_rows_after(&self, after: i64, limit: i64) -> StoreResult<Vec<IndexRow>> {
        let rows: Vec<LeanRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{LEAN_SELECT}
             FROM questions q JOIN categories c ON c.id = q.category_id
             WHERE q.id > $1 ORDER BY q.id LIMIT $2"
        )))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        index_rows(rows)
    }

    pub async fn changes_after(&self, seq: i64, limit: i64) -> StoreResult<Changes> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT seq, question_id FROM index_changes WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(seq)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        // Read after the entries: pruning deletes entries and raises the mark in one
        // transaction, so a mark not above `seq` now means nothing after `seq` was missing then.
        let upto: Option<i64> = sqlx::query_scalar("SELECT value::bigint FROM meta WHERE key = $1")
            .bind(PRUNED_UPTO)
            .fetch_optional(&self.pool)
            .await?;
        let upto = upto.unwrap_or(0);
        if seq < upto {
            return Ok(Changes::Pruned { upto });
        }
        Ok(Changes::Entries(
            rows.into_iter()
                .map(|(seq, question_id)| Change { seq, question_id })
                .collect(),
        ))
    }

    pub async fn last_change_seq(&self) -> StoreResult<i64> {
        // Appenders hold the change-log lock until they commit; sharing it here waits for the
        // one in flight, so the newest entry seen is the newest there will be below it. The
        // sequence's own counter would also count appends that were rolled back.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
            .bind(CHANGE_LOG_LOCK)
            .execute(&mut *tx)
            .await?;
        let last: i64 = sqlx::query_scalar(
            "SELECT greatest(
                coalesce((SELECT max(seq) FROM index_changes), 0),
                coalesce((SELECT value::bigint FROM meta WHERE key = $1), 0))",
        )
        .bind(PRUNED_UPTO)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(last)
    }

    pub async fn record_position(&self, name: &str, seq: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO replicas (name, applied, seen_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET applied = $2, seen_at = $3",
        )
        .bind(name)
        .bind(seq)
        .bind(now_micros())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn prune_changes(&self, live_since: i64) -> StoreResult<i64> {
        let mut tx = self.pool.begin().await?;
        let upto: Option<i64> =
            sqlx::query_scalar("SELECT min(applied) FROM replicas WHERE seen_at >= $1")
                .bind(live_since)
                .fetch_one(&mut *tx)
                .await?;
        let Some(upto) = upto else {
            tx.rollback().await?;
            return Ok(0);
        };
        sqlx::query("DELETE FROM index_changes WHERE seq <= $1")
            .bind(upto)
            .execute(&mut *tx)
            .await?;
        // The mark only moves forward: a replica that comes back below it must rebuild.
        let mark: i64 = sqlx::query_scalar(
            "INSERT INTO meta (key, value) VALUES ($1, $2::bigint::text)
             ON CONFLICT (key) DO UPDATE
                SET value = greatest(meta.value::bigint, excluded.value::bigint)::text
             RETURNING value::bigint",
        )
        .bind(PRUNED_UPTO)
        .bind(upto)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(mark)
    }

    pub async fn replica_positions(&self) -> StoreResult<Vec<(String, i64, i64)>> {
        Ok(
            sqlx::query_as("SELECT name, applied, seen_at FROM replicas ORDER BY name")
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
