//! Keeps the search index in step with the database.
//!
//! Writes append to the change log inside their own transaction; one background task (the
//! indexer) reads the log in order, re-reads the rows it names, applies them to the index and
//! commits with the last sequence as payload. A writer then waits until that sequence is
//! applied (read-your-writes). A crash between the database commit and the index commit only
//! delays the index: on start the indexer replays whatever the index's payload says it lacks.
//!
//! Several replicas (on PostgreSQL) each run this over their own index: another replica's
//! writes wake the indexer through the store's notifications, or its poll at the latest. Each
//! replica records how far it has applied the log, the log is pruned below what every live
//! replica has applied, and a replica that comes back below the pruned part rebuilds.

use crate::search::{IndexDoc, Opened, SearchIndex};
use crate::store::{Change, Changes, IndexRow, Store};
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
/// How often a replica records its position (a heartbeat) when nothing changes, unless the
/// replica expiry asks for more often (a third of it, so a live replica never looks expired).
const HEARTBEAT: Duration = Duration::from_secs(10);
/// At most this often when it does: each record is a write, and a busy log changes every batch.
const RECORD_EVERY: Duration = Duration::from_secs(1);
/// How long the indexer applies changes before it looks up from the log (position, synonyms,
/// shutdown) when writes keep coming.
const CATCH_UP_SLICE: Duration = Duration::from_secs(1);
/// A replica that has not recorded its position for this long no longer holds back pruning
/// of the change log; if it comes back, it rebuilds its index.
pub const DEFAULT_REPLICA_EXPIRY: Duration = Duration::from_secs(15 * 60);

/// How long the change feed keeps events unless configured otherwise.
pub const DEFAULT_CHANGES_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// How long the change log keeps entries: until every replica heard from within
/// `replica_expiry` has applied them, and for at least `changes` (the feed's retention).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRetention {
    pub replica_expiry: Duration,
    pub changes: Duration,
}

impl Default for LogRetention {
    fn default() -> Self {
        Self {
            replica_expiry: DEFAULT_REPLICA_EXPIRY,
            changes: DEFAULT_CHANGES_RETENTION,
        }
    }
}

/// This replica's name in the store's position table: the host and the index directory, so a
/// restart keeps its name and two replicas never share one.
pub(crate) fn replica_name(index_dir: &Path) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string());
    let dir = std::fs::canonicalize(index_dir).unwrap_or_else(|_| index_dir.to_path_buf());
    format!("{host}:{}", dir.display())
}

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
pub(crate) async fn rebuild(
    store: &Store,
    index: &Arc<SearchIndex>,
    replica: &str,
    semantic: Option<&super::semantic::Semantic>,
) -> anyhow::Result<i64> {
    // Take the high-water mark first: every change up to it is in the rows read below, and
    // anything later is replayed afterwards (re-applying a change is harmless). Recording it
    // at once (and again every second while pages are read) keeps other replicas from
    // pruning what this one will need.
    let seq = store.last_change_seq().await?;
    store.record_position(replica, seq).await?;
    let mut recorded = std::time::Instant::now();
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
        if let Some(s) = semantic {
            s.added(&docs);
        }
        let idx = index.clone();
        blocking(move || idx.add(&docs)).await?;
        after = last;
        if recorded.elapsed() >= RECORD_EVERY {
            store.record_position(replica, seq).await?;
            recorded = std::time::Instant::now();
        }
    }
    let idx = index.clone();
    blocking(move || idx.finish_rebuild(seq)).await?;
    tracing::info!(questions = count, seq, "search index rebuilt");
    Ok(seq)
}

/// Why catching up stopped.
enum Behind {
    /// The log no longer holds changes this index lacks: only a rebuild can bring it back.
    Pruned {
        upto: i64,
    },
    Failed(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Behind {
    fn from(e: E) -> Self {
        Behind::Failed(e.into())
    }
}

/// Applies logged changes after `seq` for at most about [`CATCH_UP_SLICE`]; returns the new
/// applied sequence and whether the log is drained. The slice lets the caller record its
/// position and watch for shutdown while writes keep arriving.
async fn catch_up(f: &Follower, mut seq: i64) -> Result<(i64, bool), Behind> {
    let (store, cache, index, applied) = (&f.store, &f.cache, &f.index, &f.applied);
    let started = std::time::Instant::now();
    loop {
        if started.elapsed() >= CATCH_UP_SLICE {
            return Ok((seq, false));
        }
        let changes = match store.changes_after(seq, BATCH).await? {
            Changes::Entries(changes) => changes,
            Changes::Pruned { upto } => return Err(Behind::Pruned { upto }),
        };
        let Some(last) = changes.last().map(|c| c.seq) else {
            return Ok((seq, true));
        };
        apply_batch(store, index, f.semantic.as_deref(), &changes, seq + 1, last).await?;
        // Whatever changed, also by another process, is re-read on its next request; this
        // happens before the change counts as applied, so before any write waiting on it answers.
        cache.invalidate(changes.iter().map(|c| c.question_id));
        seq = last;
        applied.send_replace(seq);
    }
}

/// Applies one batch of changes (sequences `from..=to`) in one index commit.
#[tracing::instrument(skip(store, index, semantic, changes), fields(changes = changes.len()))]
async fn apply_batch(
    store: &Store,
    index: &Arc<SearchIndex>,
    semantic: Option<&super::semantic::Semantic>,
    changes: &[Change],
    from: i64,
    to: i64,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    // Category events (question 0) change no question.
    let mut ids: Vec<i64> = changes
        .iter()
        .map(|c| c.question_id)
        .filter(|&id| id > 0)
        .collect();
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
    let (ids, docs) = blocking(move || idx.apply(&ids, &docs, to).map(|()| (ids, docs))).await?;
    if let Some(s) = semantic {
        s.applied(&ids, &docs);
    }
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
        synonyms: super::synonyms::Shared,
        retention: LogRetention,
        semantic: Option<Arc<super::semantic::Semantic>>,
    ) -> anyhow::Result<Self> {
        let replica = replica_name(dir);
        let dir = dir.to_path_buf();
        // No index at all is what a new data directory looks like, not a problem to warn of.
        let fresh = match std::fs::read_dir(&dir) {
            Ok(mut entries) => entries.next().is_none(),
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        };
        let database = database_id(&store).await?;
        let (index, opened) = blocking(move || SearchIndex::open(&dir, &database)).await?;
        let opened = check_head(&store, opened).await?;
        let index = Arc::new(index);
        let start_seq = match &opened {
            Opened::Current { seq } => *seq,
            Opened::NeedsRebuild { .. } if fresh => {
                tracing::info!("building the search index for a new data directory");
                0
            }
            Opened::NeedsRebuild { reason } => {
                tracing::warn!(%reason, "the search index will be rebuilt from the database");
                0
            }
        };
        // The vector index learns every question's fields from the index as it stands; the
        // changes after it (or a rebuild) arrive through the indexer below, in order.
        if let (Some(s), Opened::Current { .. }) = (&semantic, &opened) {
            let idx = index.clone();
            s.load_fields(blocking(move || idx.all_fields()).await?);
        }
        let ready = Arc::new(AtomicBool::new(matches!(opened, Opened::Current { .. })));
        let wake = Arc::new(Notify::new());
        store.notify_changes(wake.clone());
        let (applied_tx, applied) = watch::channel(start_seq);
        let (stop, stop_rx) = watch::channel(false);
        let follower = Follower {
            store,
            cache,
            index: index.clone(),
            wake: wake.clone(),
            applied: applied_tx,
            ready: ready.clone(),
            synonyms,
            replica,
            retention,
            semantic,
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

    /// Follows the last applied sequence (followers of the change feed wait on it).
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.applied.clone()
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

/// The identity of the database an index follows: a random id kept in the database itself,
/// the same for every replica of one PostgreSQL database.
pub(crate) async fn database_id(store: &Store) -> anyhow::Result<String> {
    Ok(store.database_id().await?)
}

/// An index that claims changes this database's log never handed out follows another
/// database (one from before indexes recorded their database's id): rebuilt, not trusted.
async fn check_head(store: &Store, opened: Opened) -> anyhow::Result<Opened> {
    let Opened::Current { seq } = opened else {
        return Ok(opened);
    };
    let last = store.last_change_seq().await?;
    if seq > last {
        return Ok(Opened::NeedsRebuild {
            reason: format!(
                "the index is at change {seq}, past this database's last change {last}"
            ),
        });
    }
    Ok(opened)
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
    /// The synonym table in force, re-read when another replica replaced it.
    synonyms: super::synonyms::Shared,
    replica: String,
    retention: LogRetention,
    /// Told of every applied change, for its vector index.
    semantic: Option<Arc<super::semantic::Semantic>>,
}

async fn run(follower: Follower, opened: Opened, mut stop: watch::Receiver<bool>) {
    let f = follower;
    let mut seq = match opened {
        Opened::Current { seq } => seq,
        Opened::NeedsRebuild { .. } => match rebuild_until_done(&f, &mut stop).await {
            Some(seq) => seq,
            None => return,
        },
    };
    f.applied.send_replace(seq);
    f.ready.store(true, Ordering::Release);
    let mut recorded: Option<(i64, std::time::Instant)> = None;
    let heartbeat = HEARTBEAT.min(f.retention.replica_expiry / 3);
    let record_every = RECORD_EVERY.min(heartbeat);
    loop {
        let mut drained = true;
        match catch_up(&f, seq).await {
            Ok((s, done)) => (seq, drained) = (s, done),
            Err(Behind::Pruned { upto }) => {
                tracing::warn!(
                    applied = seq,
                    pruned_upto = upto,
                    "this replica fell behind the retained change log; rebuilding its index"
                );
                f.ready.store(false, Ordering::Release);
                match rebuild_until_done(&f, &mut stop).await {
                    Some(s) => seq = s,
                    None => return,
                }
                f.applied.send_replace(seq);
                f.ready.store(true, Ordering::Release);
            }
            Err(Behind::Failed(e)) => {
                tracing::error!(error = ?e, "applying changes to the index failed; retrying")
            }
        }
        let due = recorded.is_none_or(|(s, at)| {
            at.elapsed() >= heartbeat || (s != seq && at.elapsed() >= record_every)
        });
        if due {
            match record_and_prune(&f, seq).await {
                Ok(()) => recorded = Some((seq, std::time::Instant::now())),
                Err(e) => {
                    tracing::warn!(error = %e, "could not record this replica's position; will retry")
                }
            }
        }
        if let Err(e) = super::synonyms::refresh(&f.store, &f.synonyms).await {
            tracing::warn!(error = %e, "could not check the synonym table's version; will retry");
        }
        // More waiting in the log: look for shutdown, then go straight on.
        let pause = if drained { POLL } else { Duration::ZERO };
        tokio::select! {
            () = f.wake.notified(), if drained => {}
            () = tokio::time::sleep(pause) => {}
            _ = stop.changed() => {
                finish(&f, seq).await;
                return;
            }
        }
    }
}

/// At shutdown: applies one more slice of the log and records the position. Other replicas
/// may keep writing, so this does not wait for the log to drain: what is left replays on the
/// next start.
async fn finish(f: &Follower, seq: i64) {
    let seq = match catch_up(f, seq).await {
        Ok((s, _)) => s,
        Err(_) => {
            tracing::warn!("index not fully caught up at shutdown; it will replay on start");
            seq
        }
    };
    let _ = f.store.record_position(&f.replica, seq).await;
}

/// Rebuilds, retrying while the database is unreachable; `None` when asked to stop first.
async fn rebuild_until_done(f: &Follower, stop: &mut watch::Receiver<bool>) -> Option<i64> {
    loop {
        match rebuild(&f.store, &f.index, &f.replica, f.semantic.as_deref()).await {
            Ok(seq) => {
                // Whatever this replica had rendered may predate the rebuilt state.
                f.cache.invalidate_all();
                return Some(seq);
            }
            Err(e) => {
                tracing::error!(error = ?e, "index rebuild failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(POLL) => {}
                    _ = stop.changed() => return None,
                }
            }
        }
    }
}

/// Records this replica's position (also a heartbeat) and prunes what every live replica has
/// applied, and the idempotency records that expired (any replica may: they are shared).
async fn record_and_prune(f: &Follower, seq: i64) -> crate::store::StoreResult<()> {
    f.store.record_position(&f.replica, seq).await?;
    let now = chrono::Utc::now().timestamp_micros();
    let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
    let live_since = now.saturating_sub(micros(f.retention.replica_expiry));
    let keep_since = now.saturating_sub(micros(f.retention.changes));
    f.store.prune_changes(live_since, keep_since).await?;
    f.store.purge_expired_keys().await?;
    Ok(())
}
