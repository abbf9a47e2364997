//! Persistence: the one storage interface the service talks to ([`Store`]) and its two
//! implementations, SQLite in the data directory (the embedded default) and PostgreSQL (shared
//! by several replicas). The only code that knows SQL; its methods are named for what the
//! service needs, and the types they return ([`model`]) are the same whichever database is
//! behind them.

mod model;
mod postgres;
mod sqlite;
mod writes;

use chrono::{DateTime, TimeZone, Utc};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

pub use model::{
    ApiKey, BatchOutcome, Card, Change, Changes, Eligibility, IndexRow, KeyGrant, ListPage, Pool,
    SessionRow, Written,
};
pub use postgres::{CHANGE_LOG_LOCK, PgStore, default_connections as default_pg_connections};
pub use sqlite::{DEFAULT_MMAP_MB, SqliteStore};

use crate::domain::import::ImportItem;
use crate::domain::{
    Answer, Category, CategoryName, Markdown, NewQuestion, Precondition, Question, QuestionFilter,
    QuestionPatch, QuizFilter, Scope, Slug, SynonymTable, TagCount,
};

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

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Arc<Backend>,
}

#[derive(Debug)]
enum Backend {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Store {
    /// Opens (creating if needed) the SQLite database file and applies pending migrations.
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        Self::open_sqlite(path, DEFAULT_MMAP_MB).await
    }

    /// As [`Store::open`], reading through a memory map of up to `mmap_mb` MiB per connection.
    pub async fn open_sqlite(path: &Path, mmap_mb: u64) -> anyhow::Result<Self> {
        Ok(Self::from(Backend::Sqlite(
            SqliteStore::open(path, mmap_mb).await?,
        )))
    }

    /// Connects to PostgreSQL at `url` and applies pending migrations (once, however many
    /// replicas start together).
    pub async fn connect_postgres(url: &str) -> anyhow::Result<Self> {
        Self::connect_postgres_with(url, postgres::default_connections()).await
    }

    /// As [`Store::connect_postgres`], with at most `connections` connections.
    pub async fn connect_postgres_with(url: &str, connections: u32) -> anyhow::Result<Self> {
        Ok(Self::from(Backend::Postgres(
            PgStore::connect(url, connections).await?,
        )))
    }

    fn from(backend: Backend) -> Self {
        Self {
            backend: Arc::new(backend),
        }
    }

    /// Which database this is, for logs and `/readyz`.
    pub fn kind(&self) -> &'static str {
        match &*self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// True when the database can run a query.
    pub async fn ping(&self) -> bool {
        match &*self.backend {
            Backend::Sqlite(s) => s.ping().await,
            Backend::Postgres(p) => p.ping().await,
        }
    }

    /// Waits for in-flight queries and closes every connection.
    pub async fn close(&self) {
        match &*self.backend {
            Backend::Sqlite(s) => s.close().await,
            Backend::Postgres(p) => p.close().await,
        }
    }

    /// Wakes `wake` whenever another connection (another replica) commits a change to the
    /// change log, where the database can say so (PostgreSQL's LISTEN/NOTIFY). The follower
    /// polls besides, so a lost notification only delays it.
    pub fn notify_changes(&self, wake: Arc<tokio::sync::Notify>) {
        if let Backend::Postgres(p) = &*self.backend {
            p.notify_changes(wake);
        }
    }
}

/// Declares the storage interface once: every method below exists on both backends with this
/// signature (the compiler checks it through the dispatch), and on [`Store`] for the service.
macro_rules! storage_interface {
    ($( $(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $ret:ty; )*) => {
        impl Store {
            $(
                $(#[$doc])*
                pub async fn $name(&self $(, $arg: $ty)*) -> StoreResult<$ret> {
                    match &*self.backend {
                        Backend::Sqlite(s) => s.$name($($arg),*).await,
                        Backend::Postgres(p) => p.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

storage_interface! {
    // Questions and answers. Every write appends to the change log in its own transaction
    // and returns the entry's sequence.
    fn get_question(&self, id: i64) -> Question;
    /// Full questions for `ids`, in that order, skipping ids that no longer exist.
    fn get_questions(&self, ids: &[i64]) -> Vec<Question>;
    /// Questions with id greater than `after`, in id order: new rows always land after every
    /// cursor already handed out, so paging stays correct while rows are inserted.
    fn list_questions(&self, filter: &QuestionFilter, after: i64, limit: i64) -> ListPage;
    fn create_question(&self, new: &NewQuestion) -> Written<Question>;
    /// Applies a merge patch; `expected` (from `If-Match`) must still be current. An empty
    /// patch changes nothing and keeps the version.
    fn patch_question(&self, id: i64, patch: &QuestionPatch, expected: &Precondition) -> Written<Question>;
    fn delete_question(&self, id: i64, expected: &Precondition) -> i64;
    fn list_answers(&self, question_id: i64) -> Vec<Answer>;
    fn get_answer(&self, id: i64) -> Answer;
    fn add_answer(&self, question_id: i64, body: &Markdown) -> Written<Answer>;
    fn update_answer(&self, id: i64, body: &Markdown, expected: &Precondition) -> Written<Answer>;
    /// Deletes an answer; returns the change's sequence and the answer's question.
    fn delete_answer(&self, id: i64, expected: &Precondition) -> (i64, i64);
    /// Writes an import batch atomically. The caller guarantees that no two items in one
    /// batch share an identity (external id, or content hash when there is none).
    fn import_batch(&self, items: &[ImportItem]) -> BatchOutcome;

    // Categories and tags.
    fn list_categories(&self) -> Vec<Category>;
    fn get_category(&self, slug: &Slug) -> Option<Category>;
    fn create_category(&self, slug: &Slug, name: &CategoryName) -> Category;
    /// Tags in use, most used first; tags no question carries any more are left out.
    fn list_tags(&self, limit: i64) -> Vec<TagCount>;

    // The change log that feeds every replica's search index.
    /// Index rows for `ids` that still exist (a missing id was deleted).
    fn index_rows(&self, ids: &[i64]) -> Vec<IndexRow>;
    /// Up to `limit` index rows with ids above `after`, in id order: a rebuild pages through
    /// these.
    fn index_rows_after(&self, after: i64, limit: i64) -> Vec<IndexRow>;
    /// Up to `limit` entries after `seq`, oldest first; or `Pruned` when entries after `seq`
    /// were already pruned (the caller fell behind the retained window).
    fn changes_after(&self, seq: i64, limit: i64) -> Changes;
    /// The newest sequence whose transaction has ended, 0 when the log was never written:
    /// every change up to it is visible to a read that starts afterwards.
    fn last_change_seq(&self) -> i64;
    /// Records that the replica `name` has applied every change up to `seq`.
    fn record_position(&self, name: &str, seq: i64) -> ();
    /// Forgets entries every replica seen since `live_since` (microseconds) has applied;
    /// returns the sequence the log is now pruned up to.
    fn prune_changes(&self, live_since: i64) -> i64;
    /// The replicas that recorded a position: name, position, last seen (microseconds).
    fn replica_positions(&self) -> Vec<(String, i64, i64)>;

    // Quiz pools, sessions and spaced repetition.
    /// The pools a draw with these filters must come from; an unknown category or tag is an
    /// error rather than an empty pool, so a typo is reported, not silently "no questions".
    fn quiz_pools(&self, filter: &QuizFilter) -> Vec<Pool>;
    fn pool_sizes(&self, pools: &[Pool]) -> Vec<i64>;
    /// The questions at `slots` of `pool`, in the order of `slots`.
    fn pool_members_at(&self, pool: &Pool, slots: &[i64]) -> Vec<i64>;
    /// Which of `candidates` are eligible.
    fn eligible_among(&self, candidates: &[i64], e: &Eligibility<'_>) -> HashSet<i64>;
    /// Every eligible member of `pool`, in slot order: the exact fallback when rejection
    /// sampling would take too many tries. Costs O(pool size).
    fn eligible_in_pool(&self, pool: &Pool, e: &Eligibility<'_>) -> Vec<i64>;
    fn create_session(&self, token_hash: &str, filter: &QuizFilter, now: DateTime<Utc>, expires_at: DateTime<Utc>) -> ();
    /// The session, unless it does not exist or has expired.
    fn get_session(&self, token_hash: &str, now: DateTime<Utc>) -> Option<SessionRow>;
    /// Records `ids` as served and extends the session; returns the ids that were not served
    /// before (a concurrent draw may have taken some), in the given order.
    fn mark_served(&self, token_hash: &str, ids: &[i64], expires_at: DateTime<Utc>) -> Vec<i64>;
    fn delete_session(&self, token_hash: &str) -> bool;
    fn card(&self, learner: &str, question_id: i64) -> Option<Card>;
    /// Stores a review and the card state it led to.
    fn save_review(&self, learner: &str, question_id: i64, rating: &str, interval_days: f64, card: &Card) -> ();
    /// Cards due at `now`, most overdue first.
    fn due_cards(&self, learner: &str, now: DateTime<Utc>, limit: i64) -> Vec<(i64, DateTime<Utc>)>;
    /// Questions the learner has never reviewed, in id order.
    fn unreviewed(&self, learner: &str, limit: i64) -> Vec<i64>;

    // API keys, secrets, synonyms and facts about the database.
    fn create_key(&self, name: &str, scope: Scope, rate_per_minute: Option<u32>, hash: &str, prefix: &str) -> ApiKey;
    fn list_keys(&self) -> Vec<ApiKey>;
    /// Marks a key revoked; false if there is no such key or it was already revoked.
    fn revoke_key(&self, id: i64) -> bool;
    /// The live (not revoked) key with this id.
    fn live_key(&self, id: i64) -> Option<KeyGrant>;
    /// The live (not revoked) key with this hash.
    fn key_grant(&self, hash: &str) -> Option<KeyGrant>;
    /// A random secret kept in the database (e.g. the ticket signing key), created on first
    /// use: every replica signs and checks with the same one.
    fn secret(&self, name: &str) -> Vec<u8>;
    /// The synonym table and its version (0 while it was never written: the default table).
    fn synonyms(&self) -> (SynonymTable, i64);
    /// Replaces the table when `expected` admits the current version; returns the new version.
    fn put_synonyms(&self, table: &SynonymTable, expected: &Precondition) -> i64;
    /// The synonym table's version alone: replicas poll it to learn of another's write.
    fn synonyms_version(&self) -> i64;
    /// True once the seed has been loaded, or the database held questions before it could be.
    fn seed_done(&self) -> bool;
    /// Records that the seed was loaded, so deleting every question later never brings it back.
    fn mark_seed_done(&self) -> ();
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
