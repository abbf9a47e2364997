//! The change log that feeds every replica's search index, and the replicas' positions in it:
//! the operations the service calls, written once (the texts that differ come from the
//! dialect), and [`ChangeSql`], what each backend does its own way (`sqlite/changes.rs`,
//! `postgres/changes.rs`).

use super::model::{Change, ChangeRow, Changes, IndexRow, ReplicaPosition, index_rows};
use super::sql::{Arg, Conn};
use super::{PRUNED_UPTO, Store, StoreResult, now_micros};

/// How each database knows the newest committed sequence.
pub(super) trait ChangeSql {
    /// The newest sequence whose transaction has ended, 0 when the log was never written.
    async fn last_change_seq(&mut self) -> StoreResult<i64>;
}

impl ChangeSql for Conn<'_> {
    async fn last_change_seq(&mut self) -> StoreResult<i64> {
        match self {
            Conn::Sqlite(c) => c.last_change_seq().await,
            Conn::Postgres(c) => c.last_change_seq().await,
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
            let upto: i64 = c
                .value(
                    "SELECT CAST(value AS BIGINT) FROM meta WHERE key = $1",
                    &[PRUNED_UPTO.into()],
                )
                .await?
                .unwrap_or(0);
            if seq < upto {
                return Ok(Changes::Pruned { upto });
            }
            Ok(Changes::Entries(
                rows.into_iter().map(Change::from).collect(),
            ))
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

    /// Forgets entries every replica seen since `live_since` (microseconds) has applied;
    /// returns the sequence the log is now pruned up to (0: no live replica, nothing done).
    pub async fn prune_changes(&self, live_since: i64) -> StoreResult<i64> {
        self.write(async |c| {
            let upto: Option<i64> = c
                .value(
                    "SELECT min(applied) FROM replicas WHERE seen_at >= $1",
                    &[live_since.into()],
                )
                .await?
                .flatten();
            let Some(upto) = upto else {
                return Ok(0);
            };
            c.execute("DELETE FROM index_changes WHERE seq <= $1", &[upto.into()])
                .await?;
            // The mark only moves forward: a replica that comes back below it must rebuild.
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
