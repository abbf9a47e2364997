//! The change-log statements PostgreSQL spells its own way: tags and answers joined with
//! `string_agg`, and the newest sequence read under the change-log lock.

use super::CHANGE_LOG_LOCK;
use crate::store::changes::ChangeSql;
use crate::store::model::{IndexRow, LeanRow, index_rows};
use crate::store::{PRUNED_UPTO, StoreResult};
use sqlx::PgConnection;

const LEAN_SELECT: &str = "SELECT q.id, q.title, c.slug AS category, q.difficulty,
        coalesce((SELECT string_agg(t.slug, chr(31) ORDER BY qt.position)
                  FROM question_tags qt JOIN tags t ON t.id = qt.tag_id
                  WHERE qt.question_id = q.id), '') AS tags,
        coalesce((SELECT string_agg(a.body, chr(30) ORDER BY a.id)
                  FROM answers a WHERE a.question_id = q.id), '') AS answers";

impl ChangeSql for PgConnection {
    async fn index_rows(&mut self, ids: &[i64]) -> StoreResult<Vec<IndexRow>> {
        let rows: Vec<LeanRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{LEAN_SELECT}
             FROM questions q JOIN categories c ON c.id = q.category_id
             WHERE q.id = ANY($1)"
        )))
        .bind(ids)
        .fetch_all(&mut *self)
        .await?;
        index_rows(rows)
    }

    async fn index_rows_after(&mut self, after: i64, limit: i64) -> StoreResult<Vec<IndexRow>> {
        let rows: Vec<LeanRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{LEAN_SELECT}
             FROM questions q JOIN categories c ON c.id = q.category_id
             WHERE q.id > $1 ORDER BY q.id LIMIT $2"
        )))
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *self)
        .await?;
        index_rows(rows)
    }

    async fn last_change_seq(&mut self) -> StoreResult<i64> {
        // Appenders hold the change-log lock until they commit; sharing it here waits for the
        // one in flight, so the newest entry seen is the newest there will be below it. The
        // sequence's own counter would also count appends that were rolled back.
        let mut tx = sqlx::Connection::begin(&mut *self).await?;
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
}
