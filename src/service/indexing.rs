//! Keeps the search index in step with the database.
//!
//! Writes append to the change log inside their own transaction; one background task (the
//! indexer) reads the log in order, re-reads the rows it names, applies them to the index and
//! commits with the last sequence as payload. A writer then waits until that sequence is
//! applied (read-your-writes). A crash between the database commit and the index commit only
//! delays the index: on start the indexer replays whatever the index's payload says it lacks.

use crate::search::{IndexDoc, Opened, SearchIndex};
use crate::store::{Change, IndexRow, Store};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// Changes applied per index commit at most; a burst of writes shares one commit.
const BATCH: i64 = 10_000;
/// Rows read per page while rebuilding.
const REBUILD_PAGE: i64 = 1000;
/// How long a write waits to become searchable before it answers anyway (it is durable; the
/// index catches up moments later).
const VISIBILITY_WAIT: Duration = Duration::from_secs(10);
/// The indexer looks at the log this often even when nobody wakes it (e.g. another process
/// wrote).
const POLL: Duration = Duration::from_secs(1);

/// The one way a question becomes an index document.
fn index_doc(r: IndexRow) -> IndexDoc {
    IndexDoc {
        id: r.id,
        title: r.title,
        answers: r.answers,
        tags: r.tags,
        category: r.category,
        difficulty: r.difficulty.as_str().to_string(),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await?
}

/// Rebuilds the whole index from the database; returns the sequence it is current to.
#[tracing::instrument(skip_all)]
pub(crate) async fn rebuild(store: &Store, index: &Arc<SearchIndex>) -> anyhow::Result<i64> {
    // Take the high-water mark first: every change up to it is in the rows read below, and
    // anything later is replayed afterwards (re-applying a change is harmless).
    let seq = store.last_change_seq().await?;
    let idx = index.clone();
    blocking(move || idx.begin_rebuild()).await?;
    let mut after = 0;
    let mut count = 0usize;
    loop {
        let rows = store.index_rows_after(after, REBUILD_PAGE).await?;
        let Some(last) = rows.last().map(|r| r.id) else {
            break;
        };
        let docs: Vec<IndexDoc> = rows.into_iter().map(index_doc).collect();
        count += docs.len();
        let idx = index.clone();
        blocking(move || idx.add(&docs)).await?;
        after = last;
    }
    let idx = index.clone();
    blocking(move || idx.finish_rebuild(seq)).await?;
    tracing::info!(questions = count, seq, "search index rebuilt");
    Ok(seq)
}

/// Applies every logged change after `seq`; returns the new applied sequence.
async fn catch_up(
    store: &Store,
    cache: &super::cache::RenderCache,
    index: &Arc<SearchIndex>,
    mut seq: i64,
    applied: &watch::Sender<i64>,
) -> anyhow::Result<i64> {
    loop {
        let changes = store.changes_after(seq, BATCH).await?;
        let Some(last) = changes.last().map(|c| c.seq) else {
            return Ok(seq);
        };
        apply_batch(store, index, &changes, seq + 1, last).await?;
        // Whatever changed, also by another process, is re-read on its next request; this
        // happens before the change counts as applied, so before any write waiting on it answers.
        cache.invalidate(changes.iter().map(|c| c.question_id));
        seq = last;
        applied.send_replace(seq);
        if let Err(e) = store.prune_changes(seq).await {
            tracing::warn!(error = %e, "could not prune the change log; will retry");
        }
    }
}

/// Applies one batch of changes (sequences `from..=to`) in one index commit.
#[tracing::instrument(skip(store, index, changes), fields(changes = changes.len()))]
async fn apply_batch(
    store: &Store,
    index: &Arc<SearchIndex>,
    changes: &[Change],
    from: i64,
    to: i64,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut ids: Vec<i64> = changes.iter().map(|c| c.question_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let docs: Vec<IndexDoc> = store
        .index_rows(&ids)
        .await?
        .into_iter()
        .map(index_doc)
        .collect();
    let loaded = started.elapsed();
    let idx = index.clone();
    blocking(move || idx.apply(&ids, &docs, to)).await?;
    tracing::debug!(?loaded, total = ?started.elapsed(), "index batch applied");
    Ok(())
}

/// The running indexer and what writers and probes need from it.
#[derive(Debug)]
pub(crate) struct Indexing {
    pub index: Arc<SearchIndex>,
    wake: Arc<Notify>,
    applied: watch::Receiver<i64>,
    ready: Arc<AtomicBool>,
    stop: watch::Sender<bool>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Indexing {
    /// Opens (or recreates) the index under `dir` and starts the indexer. A rebuild, when one
    /// is needed, runs in the background while the service already answers.
    pub async fn start(
        store: Store,
        dir: &Path,
        cache: Arc<super::cache::RenderCache>,
    ) -> anyhow::Result<Self> {
        let dir = dir.to_path_buf();
        let (index, opened) = blocking(move || SearchIndex::open(&dir)).await?;
        let index = Arc::new(index);
        let start_seq = match &opened {
            Opened::Current { seq } => *seq,
            Opened::NeedsRebuild { reason } => {
                tracing::warn!(%reason, "the search index will be rebuilt from the database");
                0
            }
        };
        let ready = Arc::new(AtomicBool::new(matches!(opened, Opened::Current { .. })));
        let wake = Arc::new(Notify::new());
        let (applied_tx, applied) = watch::channel(start_seq);
        let (stop, stop_rx) = watch::channel(false);
        let follower = Follower {
            store,
            cache,
            index: index.clone(),
            wake: wake.clone(),
            applied: applied_tx,
            ready: ready.clone(),
        };
        let task = tokio::spawn(run(follower, opened, stop_rx));
        Ok(Self {
            index,
            wake,
            applied,
            ready,
            stop,
            task: std::sync::Mutex::new(Some(task)),
        })
    }

    /// The last change-log sequence that is searchable.
    pub fn applied(&self) -> i64 {
        *self.applied.borrow()
    }

    /// False while a rebuild runs.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Returns once the change `seq` is searchable (or after a bounded wait).
    pub async fn wait_for(&self, seq: i64) {
        self.wake.notify_one();
        let mut applied = self.applied.clone();
        let caught_up =
            tokio::time::timeout(VISIBILITY_WAIT, applied.wait_for(|s| *s >= seq)).await;
        if !matches!(caught_up, Ok(Ok(_))) {
            tracing::warn!(
                seq,
                "the search index is behind; the write is saved and will be searchable shortly"
            );
        }
    }

    /// Tells the indexer there is new work, without waiting for it.
    pub fn nudge(&self) {
        self.wake.notify_one();
    }

    /// Returns once the change `seq` is searchable, however long that takes (bulk imports).
    pub async fn wait_until(&self, seq: i64) {
        self.wake.notify_one();
        let mut applied = self.applied.clone();
        let _ = applied.wait_for(|s| *s >= seq).await;
    }

    /// Applies what is pending, stops the indexer and releases the index.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
        let index = self.index.clone();
        let _ = tokio::task::spawn_blocking(move || index.close()).await;
    }
}

/// What the indexer task reads from and writes to.
struct Follower {
    store: Store,
    /// Rendered questions to invalidate as their changes are applied.
    cache: Arc<super::cache::RenderCache>,
    index: Arc<SearchIndex>,
    wake: Arc<Notify>,
    applied: watch::Sender<i64>,
    ready: Arc<AtomicBool>,
}

async fn run(follower: Follower, opened: Opened, mut stop: watch::Receiver<bool>) {
    let Follower {
        store,
        cache,
        index,
        wake,
        applied,
        ready,
    } = follower;
    let mut seq = match opened {
        Opened::Current { seq } => seq,
        Opened::NeedsRebuild { .. } => loop {
            match rebuild(&store, &index).await {
                Ok(seq) => break seq,
                Err(e) => {
                    tracing::error!(error = ?e, "index rebuild failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(POLL) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        },
    };
    applied.send_replace(seq);
    ready.store(true, Ordering::Release);
    loop {
        match catch_up(&store, &cache, &index, seq, &applied).await {
            Ok(s) => seq = s,
            Err(e) => tracing::error!(error = ?e, "applying changes to the index failed; retrying"),
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => {
                if let Err(e) = catch_up(&store, &cache, &index, seq, &applied).await {
                    tracing::warn!(error = ?e, "index not fully caught up at shutdown; it will replay on start");
                }
                return;
            }
        }
    }
}
