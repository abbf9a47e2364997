//! Persistence: the one storage interface the service talks to ([`Store`]) over two
//! databases, SQLite in the data directory (the embedded default) and PostgreSQL (shared by
//! several replicas). The only code that knows SQL; its methods are named for what the
//! service needs, and the types they return ([`model`]) are the same whichever database is
//! behind them.
//!
//! The rooms: `sql.rs` says how a statement reaches either database; `questions.rs`,
//! `quiz.rs`, `changes.rs`, `keys.rs`, `meta.rs` and `idempotency.rs` hold the operations of
//! their concern,
//! with every statement both databases accept written once; `writes.rs` holds the
//! multi-statement write paths of questions; `reviews.rs` the rules by which reviews merge
//! into a learner's log and the write path that applies them; `sqlite/` and `postgres/` each
//! supply their pool, their transaction rule (the [`Backend`] hook) and the statements their
//! dialect spells its own way, in files named like the concern they belong to.

mod changes;
mod dialect;
mod embeddings;
mod idempotency;
mod keys;
mod learners;
mod meta;
mod model;
mod postgres;
mod questions;
mod quiz;
mod reviews;
mod sql;
mod sqlite;
mod statements;
mod webhooks;
mod writes;

use chrono::{DateTime, TimeZone, Utc};
use std::path::Path;
use std::sync::Arc;

pub use embeddings::{EmbeddingCandidate, NewEmbedding, StoredEmbedding};
pub use idempotency::{ClaimOutcome, KeyRecord, NewClaim};
pub use learners::{
    CardFigures, ExportedReview, ExportedSettings, FitReview, HistoryRow, PeriodQuarter,
};
pub use model::{
    ApiKey, BatchOutcome, Card, Change, Changes, DeletedAnswer, DueCard, Eligibility, Feed,
    FeedEvent, IndexRow, KeyGrant, ListPage, Pool, ReplicaPosition, SavedReview, SessionRow,
    Snapshot, Versioned, Written,
};
pub use postgres::{CHANGE_LOG_LOCK, PgStore};
pub use reviews::{Merge, Merged, NewReview, ReviewState, Scheduler};
pub use sqlite::SqliteStore;
pub use webhooks::{
    AttemptRecord, LeasedWebhook, PendingDelivery, QueueStats, QueuedEvent, StoredDelivery,
};

use sql::{Conn, ReadConn, Tx, WriteKind};

/// Why a store operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("question {0} not found")]
    QuestionNotFound(i64),
    #[error("answer {0} not found")]
    AnswerNotFound(i64),
    #[error("category `{0}` does not exist")]
    UnknownCategory(String),
    #[error("tag `{0}` does not exist")]
    UnknownTag(String),
    #[error("category `{0}` already exists")]
    CategoryExists(String),
    /// `If-Match` named a version that is no longer current.
    #[error("version mismatch: current version is {current}")]
    VersionMismatch { current: i64 },
    /// The write would take the question over its size limits.
    #[error(transparent)]
    TooLarge(#[from] crate::domain::SizeError),
    /// The scheduler a card is replayed with failed (a bug: it takes any state it made).
    #[error("scheduling a review failed")]
    Schedule(#[source] anyhow::Error),
    /// The request's claim on its idempotency key was taken over by another request (its
    /// lease ran out): the write is rolled back rather than recorded under a claim it lost.
    #[error("the idempotency key's claim was taken over")]
    ClaimLost,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl StoreError {
    /// The database could not be reached (as opposed to refusing or failing a statement):
    /// worth a 503 and a retry rather than a 500.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Db(
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::Protocol(_)
            )
        ) || matches!(self, StoreError::Db(sqlx::Error::Database(d))
            // PostgreSQL shutting down or restarting (admin_shutdown, crash_shutdown,
            // cannot_connect_now), or a lock not granted in time (lock_not_available).
            if matches!(d.code().as_deref(), Some("57P01" | "57P02" | "57P03" | "55P03")))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What each database supplies besides its dialect: connections for reads, and the rule a
/// write transaction begins under (SQLite: the one writer and `BEGIN IMMEDIATE`; PostgreSQL:
/// the change-log lock for writes that append to the log).
pub(crate) trait Backend {
    /// A connection for reads.
    async fn read(&self) -> StoreResult<ReadConn>;
    /// Begins a write transaction of this kind.
    async fn begin(&self, kind: WriteKind) -> StoreResult<Tx>;
    /// True when the database can run a query.
    async fn ping(&self) -> bool;
    /// Waits for in-flight queries and closes every connection.
    async fn close(&self);
}

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Arc<Database>,
    /// False once a query found the database unreachable, until a probe finds it again:
    /// readiness is answered from here, not by a round trip per probe.
    reachable: Arc<std::sync::atomic::AtomicBool>,
}

#[derive(Debug)]
enum Database {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Store {
    /// Opens (creating if needed) the SQLite database file and applies pending migrations.
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        Self::open_sqlite(path, crate::config::DEFAULT_MMAP_MB).await
    }

    /// As [`Store::open`], reading through a memory map of up to `mmap_mb` MiB per connection.
    pub async fn open_sqlite(path: &Path, mmap_mb: u64) -> anyhow::Result<Self> {
        Ok(Self::from(Database::Sqlite(
            SqliteStore::open(path, mmap_mb).await?,
        )))
    }

    /// Connects to PostgreSQL at `url` and applies pending migrations (once, however many
    /// replicas start together).
    pub async fn connect_postgres(url: &str) -> anyhow::Result<Self> {
        Self::connect_postgres_with(url, crate::config::default_database_connections()).await
    }

    /// As [`Store::connect_postgres`], with at most `connections` connections (at least 2:
    /// a write holds one while it waits for the change-log lock).
    pub async fn connect_postgres_with(url: &str, connections: u32) -> anyhow::Result<Self> {
        Ok(Self::from(Database::Postgres(
            PgStore::connect(url, connections).await?,
        )))
    }

    fn sqlite(&self) -> Option<&SqliteStore> {
        match &*self.backend {
            Database::Sqlite(s) => Some(s),
            Database::Postgres(_) => None,
        }
    }

    fn from(backend: Database) -> Self {
        Self {
            backend: Arc::new(backend),
            reachable: Arc::new(true.into()),
        }
    }

    /// Whether the database answered the last probe and no query has found it unreachable
    /// since.
    pub fn reachable(&self) -> bool {
        self.reachable.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Asks the database now (2 s at most) and remembers the answer.
    pub async fn probe(&self) -> bool {
        let ok = tokio::time::timeout(std::time::Duration::from_secs(2), self.ping())
            .await
            .unwrap_or(false);
        self.reachable
            .store(ok, std::sync::atomic::Ordering::Release);
        ok
    }

    /// Remembers a database that could not be reached, so readiness says so at once.
    fn noting<T>(&self, r: StoreResult<T>) -> StoreResult<T> {
        if let Err(e) = &r
            && e.is_unavailable()
        {
            self.reachable
                .store(false, std::sync::atomic::Ordering::Release);
        }
        r
    }

    /// Which database this is, for logs and `/readyz`.
    pub fn kind(&self) -> &'static str {
        match &*self.backend {
            Database::Sqlite(_) => "sqlite",
            Database::Postgres(_) => "postgres",
        }
    }

    /// True when the database can run a query.
    pub async fn ping(&self) -> bool {
        match &*self.backend {
            Database::Sqlite(s) => s.ping().await,
            Database::Postgres(p) => p.ping().await,
        }
    }

    /// Waits for in-flight queries and closes every connection.
    pub async fn close(&self) {
        match &*self.backend {
            Database::Sqlite(s) => s.close().await,
            Database::Postgres(p) => p.close().await,
        }
    }

    /// Wakes `wake` whenever another connection (another replica) commits a change to the
    /// change log, where the database can say so (PostgreSQL's LISTEN/NOTIFY). The follower
    /// polls besides, so a lost notification only delays it.
    pub fn notify_changes(&self, wake: Arc<tokio::sync::Notify>) {
        if let Database::Postgres(p) = &*self.backend {
            p.notify_changes(wake);
        }
    }

    /// Runs `f` on a connection for reads.
    async fn reading<T>(
        &self,
        f: impl AsyncFnOnce(&mut Conn<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let r = async {
            let mut c = match &*self.backend {
                Database::Sqlite(s) => s.read().await?,
                Database::Postgres(p) => p.read().await?,
            };
            f(&mut c.conn()).await
        };
        self.noting(r.await)
    }

    /// Runs `f` in one read-only snapshot: every read inside sees the database as of one
    /// moment, however long `f` takes (an export of the whole knowledge base).
    async fn snapshot<T>(
        &self,
        f: impl AsyncFnOnce(&mut Conn<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        use sqlx::Connection as _;
        let mut c = match &*self.backend {
            Database::Sqlite(s) => s.read().await?,
            Database::Postgres(p) => p.read().await?,
        };
        match &mut c {
            ReadConn::Sqlite(c) => {
                // Deferred: the snapshot is taken by the first read and held to the end.
                let mut tx = c.begin().await?;
                let out = f(&mut Conn::Sqlite(&mut tx)).await?;
                tx.rollback().await?;
                Ok(out)
            }
            ReadConn::Postgres(c) => {
                let mut tx = c.begin().await?;
                sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    .execute(&mut *tx)
                    .await?;
                let out = f(&mut Conn::Postgres(&mut tx)).await?;
                tx.rollback().await?;
                Ok(out)
            }
        }
    }

    /// Runs `f` in a write transaction of this kind and commits what it did (nothing on
    /// error).
    ///
    /// Every write commits here, so this is where a request made with an `Idempotency-Key`
    /// records its answer in the transaction of its effect: when the request said how a value
    /// like `f`'s renders (`idempotency::reply_with`), the answer is stored under the request's
    /// claim before the commit, and the write rolls back if the claim was lost.
    async fn writing<T: std::any::Any>(
        &self,
        kind: WriteKind,
        f: impl AsyncFnOnce(&mut Conn<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let r = async {
            let mut tx = match &*self.backend {
                Database::Sqlite(s) => s.begin(kind).await?,
                Database::Postgres(p) => p.begin(kind).await?,
            };
            let out = f(&mut tx.conn()).await?;
            let answered = crate::idempotency::render(&out);
            if let Some((claim, reply)) = &answered
                && !tx.conn().complete_key(&claim.id, reply, None).await?
            {
                return Err(StoreError::ClaimLost);
            }
            tx.commit().await?;
            if let Some((claim, reply)) = answered {
                claim.committed(reply);
            }
            Ok(out)
        };
        self.noting(r.await)
    }

    /// A write that appends to the change log.
    async fn changing<T: std::any::Any>(
        &self,
        f: impl AsyncFnOnce(&mut Conn<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.writing(WriteKind::Changes, f).await
    }

    /// A write a crash of the database may lose without harm (see `WriteKind::Unflushed`).
    async fn write_unflushed<T: std::any::Any>(
        &self,
        f: impl AsyncFnOnce(&mut Conn<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.writing(WriteKind::Unflushed, f).await
    }

    /// Any other write.
    async fn write<T: std::any::Any>(
        &self,
        f: impl AsyncFnOnce(&mut Conn<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.writing(WriteKind::Plain, f).await
    }
}

/// Current time as stored: whole microseconds.
fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

fn from_micros(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us).single().unwrap_or_default()
}

/// A stored value that does not decode into the domain type it was written from.
fn decode_error(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> sqlx::Error {
    sqlx::Error::Decode(e.into())
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// `meta` keys both backends use.
const SEEDED: &str = "seeded_at";
const PRUNED_UPTO: &str = "changes_pruned_upto";
