//! The embedded store: one SQLite file in the data directory.
//!
//! Writes go through a pool of exactly one connection and start with `BEGIN IMMEDIATE`, so
//! concurrent requests queue in-process instead of failing with "database is locked"; reads use
//! their own pool and, thanks to WAL, never wait for the writer.

mod changes;
mod direct;
mod meta;
mod questions;
mod quiz;
mod reviews;

use super::StoreResult;
use super::dialect::{Dialect, Spelling};
use super::idempotency::LocalClaims;
use super::sql::{ReadConn, Tx, WriteKind};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The SQLite database: its pools and its transaction rule.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
    /// Idempotency claims are held in memory: one kb process serves a data directory.
    pub(in crate::store) claims: Arc<LocalClaims>,
    /// Reads of a question by id on the caller's own thread.
    direct: Arc<direct::DirectReads>,
}

/// The statements SQLite spells its own way, from the files of their concerns.
impl Spelling for sqlx::SqliteConnection {
    const DIALECT: &'static Dialect = &Dialect {
        questions: questions::TEXTS,
        quiz: quiz::TEXTS,
        reviews: reviews::TEXTS,
        changes: changes::TEXTS,
        meta: meta::TEXTS,
    };
}

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations, reading
    /// through a memory map of up to `mmap_mb` MiB per connection.
    pub async fn open(path: &Path, mmap_mb: u64) -> anyhow::Result<Self> {
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
            // A quarter of the writer's page cache per connection: reads by id do not come
            // this way (see `direct`), the OS keeps the file's pages anyway, and each
            // connection's own cache counts in RSS (16 MB each held RSS serving 100k at
            // ~285 MB).
            .connect_with(options.read_only(true).pragma("cache_size", "-4000"))
            .await?;
        Ok(Self {
            read,
            write,
            claims: Arc::default(),
            direct: Arc::new(direct::DirectReads::new(path, mmap_mb, readers)),
        })
    }
}

impl SqliteStore {
    /// A question read on this thread, or `None` when it must be read through the pool.
    pub(in crate::store) fn question_here(
        &self,
        id: i64,
    ) -> Option<StoreResult<crate::domain::Question>> {
        self.direct.question(id)
    }
}

impl super::Backend for SqliteStore {
    async fn read(&self) -> StoreResult<ReadConn> {
        Ok(ReadConn::Sqlite(self.read.acquire().await?))
    }

    /// Every write is the one write transaction, whatever its kind; `IMMEDIATE` takes the
    /// write lock up front so a concurrent writer in another process waits (busy timeout)
    /// instead of deadlocking.
    async fn begin(&self, _kind: WriteKind) -> StoreResult<Tx> {
        Ok(Tx::Sqlite(self.write.begin_with("BEGIN IMMEDIATE").await?))
    }

    /// True when both pools can run a query.
    async fn ping(&self) -> bool {
        let r = sqlx::query("SELECT 1").execute(&self.read).await.is_ok();
        r && sqlx::query("SELECT 1").execute(&self.write).await.is_ok()
    }

    /// Waits for in-flight queries, checkpoints the WAL, and closes every connection.
    async fn close(&self) {
        self.direct.close();
        self.read.close().await;
        let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.write)
            .await;
        self.write.close().await;
    }
}
