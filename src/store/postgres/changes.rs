//! The change-log statements PostgreSQL spells its own way: tags and answers joined with
//! `string_agg`, sets of ids through `ANY` and `unnest`, and the newest sequence read under
//! the change-log lock.

use super::CHANGE_LOG_LOCK;
use crate::store::changes::ChangeSql;
use crate::store::dialect::ChangeTexts;
use crate::store::model::NewEvent;
use crate::store::{PRUNED_UPTO, StoreResult};
use sqlx::PgConnection;

macro_rules! lean_select {
    () => {
        "SELECT q.id, q.title, c.slug AS category, q.difficulty,
            coalesce((SELECT string_agg(t.slug, chr(31) ORDER BY qt.position)
                      FROM question_tags qt JOIN tags t ON t.id = qt.tag_id
                      WHERE qt.question_id = q.id), '') AS tags,
            coalesce((SELECT string_agg(a.body, chr(30) ORDER BY a.id)
                      FROM answers a WHERE a.question_id = q.id), '') AS answers
         FROM questions q JOIN categories c ON c.id = q.category_id"
    };
}

pub(super) const TEXTS: ChangeTexts = ChangeTexts {
    index_rows: concat!(lean_select!(), " WHERE q.id = ANY($1)"),
    index_rows_after: concat!(lean_select!(), " WHERE q.id > $1 ORDER BY q.id LIMIT $2"),
    feed_page: "SELECT seq, event, data, created_at FROM index_changes
     WHERE seq > $1 AND seq <= $2 AND event IS NOT NULL
       AND ($3 OR event = ANY($4)) AND ($5::text IS NULL OR category = $5)
     ORDER BY seq LIMIT $6",
    // Everything below a visible entry committed before it (appenders are serialised), so the
    // snapshot holds exactly the entries up to this one.
    snapshot_seq: "SELECT greatest(
        coalesce((SELECT max(seq) FROM index_changes), 0),
        coalesce((SELECT value::bigint FROM meta WHERE key = 'changes_pruned_upto'), 0))",
};

impl ChangeSql for PgConnection {
    /// Appenders hold the change-log lock until they commit; sharing it here waits for the
    /// one in flight, so the newest entry seen is the newest there will be below it. The
    /// sequence's own counter would also count appends that were rolled back.
    /// One statement for the whole batch: a round trip per event would dominate an import.
    async fn log_events(&mut self, events: &[NewEvent], now: i64) -> StoreResult<i64> {
        if events.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = events.iter().map(|e| e.question_id).collect();
        let kinds: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
        let categories: Vec<&str> = events.iter().map(|e| e.category.as_str()).collect();
        let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
        // WITH ORDINALITY keeps the batch's order in the sequence.
        let last: Option<i64> = sqlx::query_scalar(
            "WITH added AS (
                INSERT INTO index_changes (question_id, created_at, event, category, data)
                SELECT e.id, $5, e.kind, e.category, e.data
                FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])
                    WITH ORDINALITY AS e(id, kind, category, data, n)
                ORDER BY e.n
                RETURNING seq)
             SELECT max(seq) FROM added",
        )
        .bind(&ids)
        .bind(&kinds)
        .bind(&categories)
        .bind(&data)
        .bind(now)
        .fetch_one(&mut *self)
        .await?;
        Ok(last.unwrap_or(0))
    }

    async fn last_change_seq(&mut self) -> StoreResult<i64> {
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
