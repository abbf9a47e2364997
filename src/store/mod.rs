//! SQLite persistence: pool setup, embedded migrations, and the queries, one module per table
//! group. The only module that knows SQL; its methods are named for what the service needs.
//!
//! Writes go through a pool of exactly one connection and start with `BEGIN IMMEDIATE`, so
//! concurrent requests queue in-process instead of failing with "database is locked"; reads use
//! their own pool and, thanks to WAL, never wait for the writer.

mod categories;
mod changes;
mod import;
mod keys;
mod meta;
mod questions;
mod quiz;
mod rows;
mod synonyms;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

pub use changes::{Change, IndexRow};
pub use import::BatchOutcome;
pub use keys::{ApiKey, KeyGrant};
pub use questions::{ListPage, Written};
pub use quiz::{Card, Eligibility, Pool, SessionRow};

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
    /// A review dated before the learner's latest review of the same question.
    #[error("review out of order")]
    ReviewOutOfOrder,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    read: SqlitePool,
    write: SqlitePool,
}

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Default size of each connection's memory map of the database, in MiB.
pub const DEFAULT_MMAP_MB: u64 = 0;

impl Store {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        Self::open_with(path, DEFAULT_MMAP_MB).await
    }

    /// As [`Store::open`], reading through a memory map of up to `mmap_mb` MiB per connection.
    pub async fn open_with(path: &Path, mmap_mb: u64) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-16000")
            // Reads through a memory map skip a system call and a copy per page, but every
            // connection maps the file anew, so its pages show up in RSS once per connection.
            .pragma("mmap_size", (mmap_mb * 1024 * 1024).to_string());
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&write).await?;
        let readers = std::thread::available_parallelism().map_or(4, |n| n.get() * 2);
        let read = SqlitePoolOptions::new()
            .max_connections(readers as u32)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { read, write })
    }

    /// Begins the one write transaction; `IMMEDIATE` takes the write lock up front so a
    /// concurrent writer in another process waits (busy timeout) instead of deadlocking.
    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        self.write.begin_with("BEGIN IMMEDIATE").await
    }

    /// True when both pools can run a query.
    pub async fn ping(&self) -> bool {
        let r = sqlx::query("SELECT 1").execute(&self.read).await.is_ok();
        r && sqlx::query("SELECT 1").execute(&self.write).await.is_ok()
    }

    /// Waits for in-flight queries, checkpoints the WAL, and closes every connection.
    pub async fn close(&self) {
        self.read.close().await;
        let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.write)
            .await;
        self.write.close().await;
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
