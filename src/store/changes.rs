//! The change log: it feeds every replica's search index and is the public change feed. The
//! replicas' positions in it, its pruning (below what every live replica applied and older
//! than the feed's retention), and the operations the service calls, written once (the texts
//! that differ come from the dialect); [`ChangeSql`] is what each backend does its own way
//! (`sqlite/changes.rs`, `postgres/changes.rs`).

use super::model::{
    Change, ChangeRow, Changes, Feed, FeedEvent, FeedRow, IndexRow, NewEvent, ReplicaPosition,
    index_rows,
};
use super::sql::{Arg, Conn};
use super::{PRUNED_UPTO, Store, StoreResult, now_micros};
use crate::domain::changes::EventType;

/// What each database does its own way with the log: knowing the newest committed sequence,
/// and appending many events at once.
pub(super) trait ChangeSql {
    /// The newest sequence whose transaction has ended, 0 when the log was never written.
    async fn last_change_seq(&mut self) -> StoreResult<i64>;
    /// Appends events in order; returns the last one's sequence (0 for none).
    async fn log_events(&mut self, events: &[NewEvent], now: i64) -> StoreResult<i64>;
}

impl ChangeSql for Conn<'_> {
    async fn last_change_seq(&mut self) -> StoreResult<i64> {
        match self {
            Conn::Sqlite(c) => c.last_change_seq().await,
            Conn::Postgres(c) => c.last_change_seq().await,
        }
    }

    async fn log_events(&mut self, events: &[NewEvent], now: i64) -> StoreResult<i64> {
        match self {
            Conn::Sqlite(c) => c.log_events(events, now).await,
            Conn::Postgres(c) => c.log_events(events, now).await,
        }
    }
}

impl Store {
    /// Index rows for `ids` that still exist (a missing id was deleted).
    pub async fn index_rows(&self, ids: &[i64]) -> StoreResult<Vec<IndexRow>> {
        self.reading(async |c| {
            let sql = c.dialect().changes.index_rows;
            index_rows(c.fetch_all(sql, &[Arg::Ints(ids)]).await?)
        })
        .await
    }

    /// Up to `limit` index rows with ids above `after`, in id order: a rebuild pages through
    /// these.
    pub async fn index_rows_after(&self, after: i64, limit: i64) -> StoreResult<Vec<IndexRow>> {
        self.reading(async |c| {
            let sql = c.dialect().changes.index_rows_after;
            index_rows(c.fetch_all(sql, &[after.into(), limit.into()]).await?)
        })
        .await
    }

    /// Up to `limit` entries after `seq`, oldest first; or `Pruned` when entries after `seq`
    /// were already pruned (the caller fell behind the retained window).
    pub async fn changes_after(&self, seq: i64, limit: i64) -> StoreResult<Changes> {
        self.reading(async |c| {
            let rows: Vec<ChangeRow> = c
                .fetch_all(
                    "SELECT seq, question_id FROM index_changes WHERE seq > $1
                     ORDER BY seq LIMIT $2",
                    &[seq.into(), limit.into()],
                )
                .await?;
            // Read after the entries: pruning deletes entries and raises the mark in one
            // transaction, so a mark not above `seq` now means nothing after `seq` was
            // missing then.
            let upto = pruned_upto(c).await?;
            if seq < upto {
                return Ok(Changes::Pruned { upto });
            }
            Ok(Changes::Entries(
                rows.into_iter().map(Change::from).collect(),
            ))
        })
        .await
    }

    /// Up to `limit` feed events after `after` (from the oldest retained when `None`), of the
    /// given types (all when `None`) and category, in commit order.
    ///
    /// The newest committed sequence is read first and the page is cut there: below it every
    /// append has committed (SQLite has one writer; PostgreSQL appenders hold the change-log
    /// lock until they commit), so a reader never moves past an event still being written.
    pub async fn feed(
        &self,
        after: Option<i64>,
        limit: i64,
        types: Option<&[EventType]>,
        category: Option<&str>,
    ) -> StoreResult<Feed> {
        let names: Vec<&str> = types.unwrap_or(&[]).iter().map(|t| t.as_str()).collect();
        self.reading(async |c| {
            let mut start = match after {
                Some(seq) => seq,
                None => pruned_upto(c).await?,
            };
            loop {
                let hi = c.last_change_seq().await?;
                let sql = c.dialect().changes.feed_page;
                let rows: Vec<FeedRow> = c
                    .fetch_all(
                        sql,
                        &[
                            start.into(),
                            hi.into(),
                            types.is_none().into(),
                            Arg::Texts(&names),
                            category.into(),
                            (limit + 1).into(),
                        ],
                    )
                    .await?;
                // Read after the rows: pruning deletes entries and raises the mark in one
                // transaction, so a mark not above `start` now means nothing was missing then.
                let upto = pruned_upto(c).await?;
                if start < upto {
                    if after.is_some() {
                        return Ok(Feed::Expired { upto });
                    }
                    // Pruned while reading from the oldest: read again from the new oldest.
                    start = upto;
                    continue;
                }
                let has_more = rows.len() as i64 > limit;
                let mut events = rows
                    .into_iter()
                    .take(limit as usize)
                    .map(FeedEvent::try_from)
                    .collect::<Result<Vec<_>, _>>()?;
                events.shrink_to_fit();
                let next = match events.last() {
                    Some(e) if has_more => e.seq,
                    _ => hi.max(start),
                };
                return Ok(Feed::Page {
                    events,
                    next,
                    has_more,
                });
            }
        })
        .await
    }

    /// The newest sequence whose transaction has ended, 0 when the log was never written:
    /// every change up to it is visible to a read that starts afterwards.
    pub async fn last_change_seq(&self) -> StoreResult<i64> {
        self.reading(async |c| c.last_change_seq().await).await
    }

    /// Records that the replica `name` has applied every change up to `seq`.
    pub async fn record_position(&self, name: &str, seq: i64) -> StoreResult<()> {
        self.write(async |c| {
            c.execute(
                "INSERT INTO replicas (name, applied, seen_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET applied = $2, seen_at = $3",
                &[name.into(), seq.into(), now_micros().into()],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Forgets the entries that every replica seen since `live_since` has applied and that are
    /// older than `keep_since` (both microseconds; the feed's retention); returns the sequence
    /// the log is now pruned up to (0: no live replica, nothing done).
    pub async fn prune_changes(&self, live_since: i64, keep_since: i64) -> StoreResult<i64> {
        self.write(async |c| {
            let applied: Option<i64> = c
                .value(
                    "SELECT min(applied) FROM replicas WHERE seen_at >= $1",
                    &[live_since.into()],
                )
                .await?
                .flatten();
            let Some(applied) = applied else {
                return Ok(0);
            };
            // A prefix of the log by sequence, so the mark says exactly what is gone.
            let old: i64 = c
                .value(
                    "SELECT max(seq) FROM index_changes WHERE created_at < $1",
                    &[keep_since.into()],
                )
                .await?
                .flatten()
                .unwrap_or(0);
            let upto = applied.min(old);
            let mark = pruned_upto(c).await?;
            if upto <= mark {
                return Ok(mark);
            }
            c.execute("DELETE FROM index_changes WHERE seq <= $1", &[upto.into()])
                .await?;
            // The mark only moves forward: a replica that comes back below it must rebuild,
            // and a feed cursor below it has expired.
            let upto = upto.to_string();
            let (mark,): (i64,) = c
                .fetch_one(
                    "INSERT INTO meta (key, value) VALUES ($1, $2)
                     ON CONFLICT (key) DO UPDATE SET value = CASE
                        WHEN CAST(meta.value AS BIGINT) > CAST(excluded.value AS BIGINT)
                        THEN meta.value ELSE excluded.value END
                     RETURNING CAST(value AS BIGINT)",
                    &[PRUNED_UPTO.into(), (&upto).into()],
                )
                .await?;
            Ok(mark)
        })
        .await
    }

    /// The replicas that recorded a position, by name.
    pub async fn replica_positions(&self) -> StoreResult<Vec<ReplicaPosition>> {
        self.reading(async |c| {
            Ok(c.fetch_all(
                "SELECT name, applied, seen_at FROM replicas ORDER BY name",
                &[],
            )
            .await?)
        })
        .await
    }
}

/// The sequence the log is pruned up to (0 when it never was).
async fn pruned_upto(c: &mut Conn<'_>) -> StoreResult<i64> {
    Ok(c.value(
        "SELECT CAST(value AS BIGINT) FROM meta WHERE key = $1",
        &[PRUNED_UPTO.into()],
    )
    .await?
    .unwrap_or(0))
}
