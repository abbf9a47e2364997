//! The change-log statements SQLite spells its own way: tags and answers joined with
//! `group_concat`, sets of ids through `json_each`, and the newest sequence read from
//! `sqlite_sequence`.

use crate::store::StoreResult;
use crate::store::changes::ChangeSql;
use crate::store::dialect::ChangeTexts;
use crate::store::model::NewEvent;
use crate::store::sql::Conn;
use sqlx::SqliteConnection;

macro_rules! lean_select {
    () => {
        "SELECT q.id, q.title, c.slug AS category, q.difficulty,
            coalesce((SELECT group_concat(t.slug, char(31)) FROM (
                SELECT t.slug FROM question_tags qt JOIN tags t ON t.id = qt.tag_id
                WHERE qt.question_id = q.id ORDER BY qt.position) t), '') AS tags,
            coalesce((SELECT group_concat(a.body, char(30)) FROM (
                SELECT body FROM answers WHERE question_id = q.id ORDER BY id) a), '') AS answers"
    };
}

pub(super) const TEXTS: ChangeTexts = ChangeTexts {
    index_rows: concat!(
        lean_select!(),
        " FROM json_each($1) j JOIN questions q ON q.id = j.value
      JOIN categories c ON c.id = q.category_id"
    ),
    index_rows_after: concat!(
        lean_select!(),
        " FROM questions q JOIN categories c ON c.id = q.category_id
      WHERE q.id > $1 ORDER BY q.id LIMIT $2"
    ),
    feed_page: "SELECT seq, event, data, created_at FROM index_changes
     WHERE seq > $1 AND seq <= $2 AND event IS NOT NULL
       AND ($3 OR event IN (SELECT value FROM json_each($4))) AND ($5 IS NULL OR category = $5)
     ORDER BY seq LIMIT $6",
    snapshot_seq: "SELECT coalesce(
        (SELECT seq FROM sqlite_sequence WHERE name = 'index_changes'), 0)",
};

impl ChangeSql for SqliteConnection {
    /// `sqlite_sequence` remembers the high-water mark even after the log is pruned; the one
    /// writer means no transaction holds a later sequence uncommitted while this reads.
    /// One prepared insert per event: in-process and in one transaction, that is as fast as a
    /// set-based statement, without building a JSON document of every payload.
    async fn log_events(&mut self, events: &[NewEvent], now: i64) -> StoreResult<i64> {
        let mut last = 0;
        for e in events {
            last = Conn::Sqlite(self).log_event(e, now).await?;
        }
        Ok(last)
    }

    async fn last_change_seq(&mut self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'index_changes'), 0)",
        )
        .fetch_one(&mut *self)
        .await?)
    }
}
