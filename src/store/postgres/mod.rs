//! The shared store: PostgreSQL, for several kb replicas serving one knowledge base. Every
//! replica keeps its own search index and follows the change log here.
//!
//! One rule makes the change log safe to follow with concurrent writers: every transaction
//! that appends to it first takes the transaction-scoped advisory lock [`CHANGE_LOG_LOCK`] and
//! holds it until it commits. Sequence numbers are then handed out in commit order, so a
//! follower that has seen sequence n has seen every committed entry below n ("seq > last"
//! never skips a late commit). The alternative, reading only below the oldest running
//! transaction (`xid8` + `pg_snapshot_xmin`), keeps writers parallel but makes any long
//! transaction on the server (a backup, an idle session) delay every replica's index, and
//! needs a position of two numbers. Question writes are rare next to reads, so kb serialises
//! them, exactly as SQLite's single writer already does; quiz, review and key writes do not
//! take the lock.

mod changes;
mod meta;
mod questions;
mod quiz;
mod reviews;

use super::StoreResult;
use super::dialect::{Dialect, Spelling};
use super::sql::{ReadConn, Tx, WriteKind};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The PostgreSQL database: its pool and its transaction rule.
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// One change-log transaction per process at a time: the others wait here, not holding a
    /// pooled connection while they wait for the lock (which would starve reads).
    write_gate: Arc<tokio::sync::Mutex<()>>,
}

/// The statements PostgreSQL spells its own way, from the files of their concerns.
impl Spelling for sqlx::PgConnection {
    const DIALECT: &'static Dialect = &Dialect {
        questions: questions::TEXTS,
        quiz: quiz::TEXTS,
        reviews: reviews::TEXTS,
        changes: changes::TEXTS,
        meta: meta::TEXTS,
    };
}

/// Advisory lock keys (any fixed 64-bit numbers; they only need to differ from each other and
/// from sqlx's migration lock). The change-log lock is public: an operator (or a test) holding
/// it stops every replica's question writes and index builds at their first step.
pub const CHANGE_LOG_LOCK: i64 = 0x6b62_0001;
const SYNONYMS_LOCK: i64 = 0x6b62_0002;
/// The channel a committed change-log append notifies.
const CHANNEL: &str = "kb_changes";
/// How long a request waits for a connection before it fails with 503 (PostgreSQL down or
/// every connection busy).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a write waits for the change-log lock before it gives up with 503 (another
/// replica's write stuck mid-transaction).
const LOCK_TIMEOUT: &str = "10s";
/// How long a write waits for its turn among this replica's writes before it gives up with
/// 503, so a queue of writes behind a stuck one fails fast rather than at the request timeout.
const GATE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection left in an open transaction this long (a replica hung mid-write) is closed by
/// the server, which releases the change-log lock for everyone else.
const IDLE_IN_TRANSACTION_TIMEOUT: &str = "60s";

impl PgStore {
    /// Connects and applies pending migrations; sqlx takes an advisory lock around them, so
    /// replicas that start together migrate once.
    pub async fn connect(url: &str, connections: u32) -> anyhow::Result<Self> {
        // The change listener keeps one connection for itself.
        anyhow::ensure!(
            connections >= 2,
            "a PostgreSQL store needs at least 2 connections, not {connections}"
        );
        let options = PgConnectOptions::from_str(url)?.options([(
            "idle_in_transaction_session_timeout",
            IDLE_IN_TRANSACTION_TIMEOUT,
        )]);
        let pool = PgPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self {
            pool,
            write_gate: Arc::default(),
        })
    }

    /// Begins a transaction that appends to the change log: takes this process's turn, then
    /// the change-log lock (held until commit, see the module docs), and queues the
    /// notification other replicas wait for (PostgreSQL delivers it at commit, and drops it
    /// on rollback).
    async fn begin_changes(&self) -> StoreResult<Tx> {
        // Not getting a turn in time is reported like not getting a connection: busy, 503.
        let gate = tokio::time::timeout(GATE_TIMEOUT, self.write_gate.clone().lock_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?;
        let mut tx = self.pool.begin().await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"
        )))
        .execute(&mut *tx)
        .await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1), pg_notify($2, '')")
            .bind(CHANGE_LOG_LOCK)
            .bind(CHANNEL)
            .execute(&mut *tx)
            .await?;
        Ok(Tx::Postgres(tx, Some(gate)))
    }

    /// Listens for committed changes and wakes `wake` on each. The listener reconnects by
    /// itself; while PostgreSQL is unreachable this retries every second, and the follower's
    /// polling covers the gap.
    pub fn notify_changes(&self, wake: Arc<tokio::sync::Notify>) {
        let pool = self.pool.clone();
        tokio::spawn(async move {
            loop {
                if pool.is_closed() {
                    return;
                }
                match PgListener::connect_with(&pool).await {
                    Ok(mut listener) => {
                        if let Err(e) = listener.listen(CHANNEL).await {
                            tracing::warn!(error = %e, "cannot listen for changes; retrying");
                        } else {
                            // Whatever was missed while not listening is found by the next poll;
                            // wake now so it is not a second late.
                            wake.notify_one();
                            loop {
                                match listener.recv().await {
                                    Ok(_) => wake.notify_one(),
                                    // Closing the store at shutdown ends the listener too:
                                    // nothing was lost, nothing to warn of.
                                    Err(_) if pool.is_closed() => return,
                                    Err(e) => {
                                        tracing::warn!(error = %e, "change notifications lost; reconnecting");
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    Err(e) if pool.is_closed() => {
                        tracing::debug!(error = %e, "store closed; no more notifications");
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot listen for changes; retrying"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}

impl super::Backend for PgStore {
    async fn read(&self) -> StoreResult<ReadConn> {
        Ok(ReadConn::Postgres(self.pool.acquire().await?))
    }

    /// Quiz, review, key and other writes that touch neither the change log nor the synonym
    /// table run in parallel.
    async fn begin(&self, kind: WriteKind) -> StoreResult<Tx> {
        match kind {
            WriteKind::Changes => self.begin_changes().await,
            WriteKind::Plain => Ok(Tx::Postgres(self.pool.begin().await?, None)),
            // One round trip: a custom BEGIN goes as a simple query, which may hold two.
            WriteKind::Unflushed => Ok(Tx::Postgres(
                self.pool
                    .begin_with("BEGIN; SET LOCAL synchronous_commit = off")
                    .await?,
                None,
            )),
            // The synonym row may not exist yet, so a row lock would not serialise writers.
            WriteKind::Synonyms => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(SYNONYMS_LOCK)
                    .execute(&mut *tx)
                    .await?;
                Ok(Tx::Postgres(tx, None))
            }
        }
    }

    /// Answers within a second: a probe must not wait out the pool's acquire timeout while
    /// PostgreSQL is down.
    async fn ping(&self) -> bool {
        let query = sqlx::query("SELECT 1").execute(&self.pool);
        matches!(
            tokio::time::timeout(Duration::from_secs(1), query).await,
            Ok(Ok(_))
        )
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
