//! The service layer: the one place that coordinates the store and the search index, and owns
//! the rules that span more than one table. It speaks domain types and its own [`Error`];
//! nothing here knows about HTTP.

mod cache;
mod changes;
mod error;
mod idempotency;
mod import;
mod indexing;
pub mod keys;
mod learner_transfer;
mod learners;
mod pool;
mod quiz;
mod reviews;
mod search;
mod seed;
mod semantic;
mod synonyms;
mod webhooks;

use crate::domain::{
    Answer, Category, CategoryName, Id, Markdown, NewQuestion, Precondition, Question,
    QuestionFilter, QuestionPatch, QuestionSize, Slug, TagCount,
};
use crate::store::{ListPage, Store};
use indexing::Indexing;
use std::path::Path;
use std::sync::Arc;

pub use crate::quiz::Rating;
pub use cache::Rendered;
pub use changes::{FeedRequest, LiveNews};
pub use error::{Error, Result};
pub use import::{
    ExportPart, ImportReport, Importer, LineError, MAX_REPORTED_ERRORS, export_snapshot,
};
pub use indexing::{DEFAULT_CHANGES_RETENTION, DEFAULT_REPLICA_EXPIRY, LogRetention};
pub use keys::{CallerId, Principal};
pub use learners::{AUTO_FIT_REVIEWS, Fit, HistoryStream, fit as fit_parameters, training_items};
pub use quiz::{Choice, DrawRequest, Graded, NewSession, PlannedSession, QuizItem, QuizMode};
pub use reviews::{ReviewInput, ReviewOutcome, Reviewed};
pub use search::{SearchHit, SearchPage};
pub use seed::SeedReport;
pub use semantic::{Fused, SearchStatus, fuse, passage};
pub use webhooks::{OLD_SECRET_OVERLAP, WebhookSettings, WithSecret};
// What a handler's answer is made from, when its effect's transaction records that answer
// (`idempotency::reply_with`): the values those transactions return.
pub use crate::store::{ClaimOutcome, KeyRecord, NewClaim, SavedReview, SessionRow, Written};
pub use synonyms::{
    Loaded as LoadedSynonyms, builtin_sets as builtin_synonym_sets,
    export_line as export_synonyms_line,
};

/// Everything the handlers may ask for. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Service {
    store: Store,
    indexing: Arc<Indexing>,
    /// Signs multiple-choice tickets; loaded from the database on first use.
    ticket_key: Arc<tokio::sync::OnceCell<Vec<u8>>>,
    /// Signs learner tokens; loaded from the database on first use.
    learner_token_key: Arc<tokio::sync::OnceCell<Vec<u8>>>,
    /// SHA-256 of `KB_ADMIN_KEY`, when set.
    admin_key_hash: Option<[u8; 32]>,
    /// When each stored key's use was last written.
    key_use: Arc<keys::KeyUse>,
    /// Questions as the API renders them, for reads by id.
    cache: Arc<cache::RenderCache>,
    /// The synonym table searches apply.
    synonyms: synonyms::Shared,
    /// Ties feed cursors to this database; read from it on first use.
    cursor_tag: Arc<tokio::sync::OnceCell<[u8; 4]>>,
    /// Webhook settings and this replica's dispatcher.
    webhooks: Arc<webhooks::Webhooks>,
    /// This replica's fitter of learners' FSRS parameters.
    fitter: Arc<learners::Fitter>,
    /// Search by meaning, when an embedder is configured.
    semantic: Option<Arc<semantic::Semantic>>,
    /// Ends the background readiness probe.
    stop_probe: Arc<tokio::sync::watch::Sender<bool>>,
}

/// How often the database is asked whether it answers, for `/readyz`.
const READINESS_PROBE: std::time::Duration = std::time::Duration::from_secs(1);

/// Bytes of rendered questions kept in memory unless configured otherwise.
pub const DEFAULT_CACHE_BYTES: u64 = 32 * 1024 * 1024;

impl Service {
    /// Opens the search index under `index_dir` and starts keeping it in step with `store`.
    pub async fn start(store: Store, index_dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(
            store,
            index_dir,
            DEFAULT_CACHE_BYTES,
            LogRetention::default(),
            None,
        )
        .await
    }

    /// As [`Service::start`], keeping up to `cache_bytes` of rendered questions in memory,
    /// keeping the change log as `retention` says, and searching by meaning too when
    /// `embedder` names an embedding service.
    pub async fn start_with(
        store: Store,
        index_dir: &Path,
        cache_bytes: u64,
        retention: LogRetention,
        embedder: Option<&crate::config::EmbedderConfig>,
    ) -> anyhow::Result<Self> {
        let cache = Arc::new(cache::RenderCache::new(cache_bytes));
        let synonyms = synonyms::load(&store).await?;
        let semantic = embedder.and_then(|c| semantic::Semantic::new(store.clone(), c));
        let indexing = Arc::new(
            Indexing::start(
                store.clone(),
                index_dir,
                cache.clone(),
                synonyms.clone(),
                retention,
                semantic.clone(),
            )
            .await?,
        );
        if let Some(s) = &semantic {
            s.start(indexing::replica_name(index_dir), indexing.index.clone());
        }
        let (stop_probe, mut stopped) = tokio::sync::watch::channel(false);
        let probed = store.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(READINESS_PROBE) => {}
                    _ = stopped.changed() => return,
                }
                probed.probe().await;
            }
        });
        Ok(Self {
            stop_probe: Arc::new(stop_probe),
            semantic,
            store,
            cache,
            synonyms,
            indexing,
            ticket_key: Arc::default(),
            learner_token_key: Arc::default(),
            admin_key_hash: None,
            key_use: Arc::default(),
            cursor_tag: Arc::default(),
            webhooks: Arc::new(webhooks::Webhooks::new(WebhookSettings::default())),
            fitter: Arc::default(),
        })
    }

    /// Rebuilds the search index under `index_dir` from `store`, in the foreground; returns
    /// the number of documents indexed. Fails if a running kb holds the index.
    pub async fn reindex(store: &Store, index_dir: &Path) -> anyhow::Result<u64> {
        let dir = index_dir.to_path_buf();
        let database = indexing::database_id(store).await?;
        let (index, _) =
            tokio::task::spawn_blocking(move || crate::search::SearchIndex::open(&dir, &database))
                .await??;
        let index = Arc::new(index);
        indexing::rebuild(store, &index, &indexing::replica_name(index_dir), None).await?;
        let n = index.num_docs();
        let idx = index.clone();
        tokio::task::spawn_blocking(move || idx.close()).await?;
        Ok(n)
    }

    /// Whether the database answers and the index is not being rebuilt. Answered from memory
    /// while all is well (a probe in the background every second, and every query that
    /// finds the database unreachable, keep it current); asks the database again while it
    /// is not, so readiness returns as soon as the database does.
    pub async fn ready(&self) -> Result<(), &'static str> {
        if !self.store.reachable() && !self.store.probe().await {
            return Err("the database is not answering");
        }
        if !self.indexing.is_ready() {
            return Err("the search index is being rebuilt");
        }
        Ok(())
    }

    /// Changes written to the database but not yet searchable.
    pub async fn index_lag(&self) -> Result<i64> {
        let written = self.store.last_change_seq().await?;
        Ok((written - self.indexing.applied()).max(0))
    }

    /// Questions in the search index.
    pub fn indexed_documents(&self) -> u64 {
        self.indexing.index.num_docs()
    }

    /// Stops the indexer (applying what is pending) and closes the database.
    pub async fn shutdown(&self) {
        let _ = self.stop_probe.send(true);
        self.webhooks.shutdown().await;
        self.fitter.shutdown().await;
        if let Some(s) = &self.semantic {
            s.shutdown().await;
        }
        self.indexing.shutdown().await;
        self.store.close().await;
    }

    /// A question as `render` turns it into a response body, from memory when it was rendered
    /// before and has not changed since.
    #[tracing::instrument(level = "debug", skip(self, render))]
    pub async fn get_question_rendered(
        &self,
        id: Id,
        render: impl FnOnce(Question) -> bytes::Bytes,
    ) -> Result<Arc<Rendered>> {
        if let Some(hit) = self.cache.get(id.get()) {
            return Ok(hit);
        }
        let epoch = self.cache.epoch();
        let q = self.store.get_question(id).await?;
        let rendered = Arc::new(Rendered {
            version: q.version,
            body: render(q),
        });
        self.cache.insert(id.get(), epoch, &rendered);
        Ok(rendered)
    }

    /// Bytes of rendered questions held in memory.
    pub fn cached_bytes(&self) -> u64 {
        self.cache.weighted_size()
    }

    /// Rendered questions held in memory.
    pub fn cached_questions(&self) -> u64 {
        self.cache.entries()
    }

    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn get_question(&self, id: Id) -> Result<Question> {
        Ok(self.store.get_question(id).await?)
    }

    #[tracing::instrument(level = "debug", skip(self, filter))]
    pub async fn list_questions(
        &self,
        filter: &QuestionFilter,
        after: i64,
        limit: i64,
    ) -> Result<ListPage> {
        Ok(self.store.list_questions(filter, after, limit).await?)
    }

    #[tracing::instrument(skip_all, fields(id, seq))]
    pub async fn create_question(&self, new: &NewQuestion) -> Result<Question> {
        QuestionSize::of(new).check_growth(QuestionSize::default())?;
        let w = self.store.create_question(new).await?;
        written(w.value.id, w.seq);
        self.indexing.wait_for(w.seq).await;
        Ok(w.value)
    }

    #[tracing::instrument(skip(self, patch, expected), fields(seq))]
    pub async fn patch_question(
        &self,
        id: Id,
        patch: &QuestionPatch,
        expected: &Precondition,
    ) -> Result<Question> {
        // Before as well as after: a write cut off while committing must not leave the old
        // rendering behind (the epoch keeps a racing read from restoring it).
        self.cache.invalidate([id.get()]);
        let w = self.store.patch_question(id, patch, expected).await?;
        self.cache.invalidate([id.get()]);
        written(id.get(), w.seq);
        if w.seq > 0 {
            self.indexing.wait_for(w.seq).await;
        }
        Ok(w.value)
    }

    #[tracing::instrument(skip(self, expected), fields(seq))]
    pub async fn delete_question(&self, id: Id, expected: &Precondition) -> Result<()> {
        self.cache.invalidate([id.get()]);
        let seq = self.store.delete_question(id, expected).await?;
        self.cache.invalidate([id.get()]);
        written(id.get(), seq);
        self.indexing.wait_for(seq).await;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn list_answers(&self, question_id: Id) -> Result<Vec<Answer>> {
        Ok(self.store.list_answers(question_id).await?)
    }

    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn get_answer(&self, id: Id) -> Result<Answer> {
        Ok(self.store.get_answer(id).await?)
    }

    #[tracing::instrument(skip(self, body), fields(id, seq))]
    pub async fn add_answer(&self, question_id: Id, body: &Markdown) -> Result<Answer> {
        self.cache.invalidate([question_id.get()]);
        let w = self.store.add_answer(question_id, body).await?;
        self.cache.invalidate([question_id.get()]);
        written(w.value.id, w.seq);
        self.indexing.wait_for(w.seq).await;
        Ok(w.value)
    }

    /// Applies a patch of the answer's body; with no body it only checks the precondition.
    #[tracing::instrument(skip(self, body, expected), fields(seq))]
    pub async fn patch_answer(
        &self,
        id: Id,
        body: Option<&Markdown>,
        expected: &Precondition,
    ) -> Result<Answer> {
        let Some(body) = body else {
            let a = self.store.get_answer(id).await?;
            if !expected.admits(a.version) {
                return Err(Error::VersionMismatch { current: a.version });
            }
            return Ok(a);
        };
        let w = self.store.update_answer(id, body, expected).await?;
        self.cache.invalidate([w.value.question_id]);
        written(id.get(), w.seq);
        self.indexing.wait_for(w.seq).await;
        Ok(w.value)
    }

    #[tracing::instrument(skip(self, expected), fields(seq))]
    pub async fn delete_answer(&self, id: Id, expected: &Precondition) -> Result<()> {
        let d = self.store.delete_answer(id, expected).await?;
        self.cache.invalidate([d.question_id]);
        written(id.get(), d.seq);
        self.indexing.wait_for(d.seq).await;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn list_categories(&self) -> Result<Vec<Category>> {
        Ok(self.store.list_categories().await?)
    }

    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn get_category(&self, slug: &Slug) -> Result<Category> {
        self.store
            .get_category(slug)
            .await?
            .ok_or_else(|| Error::CategoryNotFound(slug.to_string()))
    }

    #[tracing::instrument(skip(self, name))]
    pub async fn create_category(&self, slug: &Slug, name: &CategoryName) -> Result<Category> {
        let w = self.store.create_category(slug, name).await?;
        // Nothing to index, but followers of the feed hear of it as the indexer passes it.
        self.indexing.nudge();
        Ok(w.value)
    }

    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn list_tags(&self, limit: i64) -> Result<Vec<TagCount>> {
        Ok(self.store.list_tags(limit).await?)
    }
}

/// Notes what a write changed in the current span, so its change-log sequence can be followed
/// to the indexer's batch that applies it.
fn written(id: i64, seq: i64) {
    let span = tracing::Span::current();
    span.record("id", id);
    span.record("seq", seq);
}
