//! Reads of one question by id that never leave the calling thread.
//!
//! sqlx runs every SQLite connection on a thread of its own: a query is a message to that
//! thread and a wake-up back, which costs more than the read itself (a primary-key lookup in
//! pages SQLite or the OS already holds: a few microseconds). These connections are opened
//! with rusqlite on the same SQLite library and are used in place by whichever runtime thread
//! asks, with the statement prepared once per connection. A read never waits: when every
//! connection is taken, or the database is busy (recovery, a lock), the caller is told to go
//! the ordinary way instead (`None`), so a slow disk or a lock can cost a runtime thread no
//! more than one page read.

use super::super::model::QuestionRow;
use super::super::{StoreError, StoreResult};
use crate::domain::Question;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The store's own `load_questions` statement for one id: the same columns in the same order
/// (`QuestionRow`'s), bound as a single integer rather than a JSON array.
fn load_one() -> &'static str {
    const SET: &str = "q.id IN (SELECT value FROM json_each($1))";
    static TEXT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let all = super::questions::TEXTS.load_questions;
        assert!(all.contains(SET), "load_questions selects by a set of ids");
        all.replace(SET, "q.id = $1")
    });
    &TEXT
}

/// Per connection: the interior pages of the questions table and its indexes; the OS page
/// cache holds the rest, and most reads by id are served by the rendered-question cache.
const CACHE_KIB: i64 = 2 * 1024;

pub(super) struct DirectReads {
    path: PathBuf,
    mmap_bytes: u64,
    /// Opened on first use, so a store that never serves a read by id opens none.
    slots: Box<[Mutex<Option<Connection>>]>,
    closed: AtomicBool,
}

impl std::fmt::Debug for DirectReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectReads")
            .field("path", &self.path)
            .field("slots", &self.slots.len())
            .finish()
    }
}

/// Which slot a thread tries first, so two runtime threads do not keep meeting on one.
fn first_slot(len: usize) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    MINE.with(|m| *m % len)
}

impl DirectReads {
    /// `slots` connections at most (a runtime thread holds one only while it reads, so the
    /// runtime's thread count is enough).
    pub(super) fn new(path: &Path, mmap_mb: u64, slots: usize) -> Self {
        Self {
            path: path.to_path_buf(),
            mmap_bytes: mmap_mb * 1024 * 1024,
            slots: (0..slots.max(1)).map(|_| Mutex::new(None)).collect(),
            closed: AtomicBool::new(false),
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let c = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Never wait for a lock on a runtime thread: busy means "go the ordinary way".
        c.busy_timeout(std::time::Duration::ZERO)?;
        c.pragma_update(None, "cache_size", -CACHE_KIB)?;
        // This pragma answers with the size it set.
        let mmap = i64::try_from(self.mmap_bytes).unwrap_or(i64::MAX);
        c.pragma_update_and_check(None, "mmap_size", mmap, |_| Ok(()))?;
        c.set_prepared_statement_cache_capacity(4);
        Ok(c)
    }

    /// The question, or `None` when this path cannot answer right now (every connection
    /// busy, the database locked or closed): then the caller reads it the ordinary way.
    pub(super) fn question(&self, id: i64) -> Option<StoreResult<Question>> {
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        let len = self.slots.len();
        let first = first_slot(len);
        for i in 0..len {
            let Ok(mut slot) = self.slots[(first + i) % len].try_lock() else {
                continue;
            };
            if slot.is_none() {
                match self.open() {
                    Ok(c) => *slot = Some(c),
                    Err(e) => {
                        tracing::debug!(error = %e, "a direct read connection did not open");
                        return None;
                    }
                }
            }
            let conn = slot.as_ref()?;
            return match read(conn, id) {
                Ok(Some(q)) => Some(Ok(q)),
                Ok(None) => Some(Err(StoreError::QuestionNotFound(id))),
                Err(Fallback) => {
                    // Whatever went wrong (busy, a schema change, I/O), the ordinary path
                    // will say it properly; this connection starts afresh next time.
                    *slot = None;
                    None
                }
            };
        }
        None
    }

    /// Closes every connection; later reads go the ordinary way (and find the store closed).
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        for slot in &self.slots {
            let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
            *slot = None;
        }
    }
}

struct Fallback;

fn read(conn: &Connection, id: i64) -> Result<Option<Question>, Fallback> {
    let row = (|| {
        let mut stmt = conn.prepare_cached(load_one())?;
        stmt.query_row([id], |r| {
            Ok(QuestionRow {
                id: r.get(0)?,
                title: r.get(1)?,
                body: r.get(2)?,
                category_slug: r.get(3)?,
                category_name: r.get(4)?,
                difficulty: r.get(5)?,
                created_at: r.get(6)?,
                updated_at: r.get(7)?,
                version: r.get(8)?,
                external_id: r.get(9)?,
                tags_json: r.get(10)?,
                answers_json: r.get(11)?,
            })
        })
        .optional()
    })();
    match row {
        Ok(None) => Ok(None),
        Ok(Some(row)) => Question::try_from(row).map(Some).map_err(|_| Fallback),
        Err(e) => {
            tracing::debug!(error = %e, id, "a direct read fell back to the pool");
            Err(Fallback)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_one_id_statement_is_the_stores_own_with_one_id() {
        let text = super::load_one();
        assert!(text.ends_with("WHERE q.id = $1"), "{text}");
        assert!(!text.contains("json_each"));
    }
}
