//! The write side of the index: open or recreate it, apply batches of changes, rebuild.
//!
//! Each commit carries `{"schema": SCHEMA_VERSION, "seq": N, "database": ID}` as its payload:
//! N is the last change-log sequence the commit includes, so after a crash the service replays
//! exactly what the index is missing; ID names the database whose log that is, so an index
//! left from another database (a data directory moved from SQLite to PostgreSQL, a database
//! recreated) is rebuilt instead of trusted.

use super::analyzer::{BIGRAM_TOKENIZER_NAME, CjkBigramTokenizer, KbTokenizer, TOKENIZER_NAME};
use super::schema::{self, SCHEMA_VERSION};
use super::{IndexDoc, SearchIndex};
use anyhow::{Context, anyhow};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Mutex;
use tantivy::directory::MmapDirectory;
use tantivy::schema::Schema;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexWriter, ReloadPolicy, TantivyDocument, Term};

/// Memory the writer may buffer before it flushes a segment.
const WRITER_MEMORY: usize = 64 * 1024 * 1024;

/// The state the index was found in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// A valid index of this database that includes every change up to `seq`.
    Current { seq: i64 },
    /// Missing, corrupt, or of another schema version: it was recreated empty and must be
    /// rebuilt from the database.
    NeedsRebuild { reason: String },
}

#[derive(Serialize, Deserialize)]
struct Payload {
    schema: u32,
    seq: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    database: String,
}

fn register(index: &Index) {
    index
        .tokenizers()
        .register(TOKENIZER_NAME, TextAnalyzer::from(KbTokenizer::default()));
    index.tokenizers().register(
        BIGRAM_TOKENIZER_NAME,
        TextAnalyzer::from(CjkBigramTokenizer),
    );
}

/// Opens the existing index if it is usable as it stands.
fn try_open(dir: &Path, schema: &Schema, database: &str) -> anyhow::Result<(Index, i64)> {
    let directory = MmapDirectory::open(dir)?;
    if !Index::exists(&directory)? {
        return Err(anyhow!("no index yet"));
    }
    let index = Index::open(directory)?;
    if index.schema() != *schema {
        return Err(anyhow!("the index schema differs from this build's"));
    }
    let metas = index.load_metas()?;
    let payload: Payload = metas
        .payload
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
        .ok_or_else(|| anyhow!("the index has no commit from kb"))?;
    if payload.schema != SCHEMA_VERSION {
        return Err(anyhow!(
            "index schema version {} is not {SCHEMA_VERSION}",
            payload.schema
        ));
    }
    // An index written before commits named their database is judged by its sequence alone
    // (by the caller, against the database's log).
    if !payload.database.is_empty() && payload.database != database {
        return Err(anyhow!("the index was built from another database"));
    }
    register(&index);
    // Reading every segment's metadata catches missing or truncated files now, not mid-query.
    let reader = index.reader()?;
    reader
        .searcher()
        .search(&tantivy::query::AllQuery, &tantivy::collector::Count)?;
    Ok((index, payload.seq))
}

impl SearchIndex {
    /// Opens the index in `dir` that follows the database `database` (its id), recreating it
    /// empty when it cannot be used as it is. A corrupt or outdated index, or one of another
    /// database, is never fatal: the caller rebuilds it from the database.
    pub fn open(dir: &Path, database: &str) -> anyhow::Result<(Self, Opened)> {
        let (schema, fields) = schema::build();
        let (index, opened) = match try_open(dir, &schema, database) {
            Ok((index, seq)) => (index, Opened::Current { seq }),
            Err(e) => {
                let reason = e.to_string();
                if dir.exists() {
                    std::fs::remove_dir_all(dir)
                        .with_context(|| format!("cannot clear index dir {}", dir.display()))?;
                }
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create index dir {}", dir.display()))?;
                let index = Index::create_in_dir(dir, schema)?;
                register(&index);
                (index, Opened::NeedsRebuild { reason })
            }
        };
        let writer: IndexWriter = index
            .writer_with_num_threads(1, WRITER_MEMORY)
            .map_err(|e| {
                anyhow!(
                    "cannot lock the search index ({e}); is another kb process using this data dir?"
                )
            })?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok((
            Self {
                reader,
                writer: Mutex::new(Some(writer)),
                fields,
                database: database.to_string(),
            },
            opened,
        ))
    }

    fn with_writer<T>(
        &self,
        f: impl FnOnce(&mut IndexWriter) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut guard = self
            .writer
            .lock()
            .map_err(|_| anyhow!("index writer poisoned"))?;
        let writer = guard
            .as_mut()
            .ok_or_else(|| anyhow!("the index is closed"))?;
        f(writer)
    }

    fn to_document(&self, d: &IndexDoc) -> TantivyDocument {
        let f = &self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_u64(f.id, d.id as u64);
        doc.add_text(f.title, &d.title);
        doc.add_text(f.title_bigrams, &d.title);
        for a in &d.answers {
            doc.add_text(f.answers, a);
            doc.add_text(f.answers_bigrams, a);
        }
        for t in &d.tags {
            doc.add_text(f.tags_text, t);
            doc.add_text(f.tag, t);
        }
        doc.add_text(f.category, &d.category);
        doc.add_text(f.difficulty, &d.difficulty);
        doc
    }

    /// Replaces the documents of `ids` with `docs` (ids without a doc are deleted), commits
    /// with `seq` as the payload, and makes the result visible to searches.
    pub fn apply(&self, ids: &[i64], docs: &[IndexDoc], seq: i64) -> anyhow::Result<()> {
        self.with_writer(|w| {
            for id in ids {
                w.delete_term(Term::from_field_u64(self.fields.id, *id as u64));
            }
            for d in docs {
                w.add_document(self.to_document(d))?;
            }
            commit(w, seq, &self.database)
        })?;
        self.reader.reload()?;
        Ok(())
    }

    /// Starts a rebuild: every document is dropped (not yet committed, so searches keep the
    /// previous view until [`Self::finish_rebuild`]).
    pub fn begin_rebuild(&self) -> anyhow::Result<()> {
        self.with_writer(|w| {
            w.delete_all_documents()?;
            Ok(())
        })
    }

    /// Adds documents during a rebuild, without committing.
    pub fn add(&self, docs: &[IndexDoc]) -> anyhow::Result<()> {
        self.with_writer(|w| {
            for d in docs {
                w.add_document(self.to_document(d))?;
            }
            Ok(())
        })
    }

    pub fn finish_rebuild(&self, seq: i64) -> anyhow::Result<()> {
        self.with_writer(|w| commit(w, seq, &self.database))?;
        self.reader.reload()?;
        Ok(())
    }

    /// Every visible document's id with the fields the vector index filters on, read from
    /// the fast columns (no stored documents are loaded).
    pub fn all_fields(&self) -> anyhow::Result<Vec<(i64, super::VectorFields)>> {
        let searcher = self.reader.searcher();
        let mut out = Vec::with_capacity(searcher.num_docs() as usize);
        let mut buf = String::new();
        for segment in searcher.segment_readers() {
            let ff = segment.fast_fields();
            let ids = ff.u64("id")?;
            let [category, tag, difficulty] =
                [ff.str("category")?, ff.str("tag")?, ff.str("difficulty")?];
            let text = |col: &Option<tantivy::columnar::StrColumn>,
                        doc: u32,
                        buf: &mut String|
             -> Vec<String> {
                let Some(col) = col else { return Vec::new() };
                col.term_ords(doc)
                    .filter_map(|o| {
                        buf.clear();
                        col.ord_to_str(o, buf).ok()?.then(|| buf.clone())
                    })
                    .collect()
            };
            for doc in segment.doc_ids_alive() {
                let Some(id) = ids.first(doc) else { continue };
                out.push((
                    id as i64,
                    super::VectorFields {
                        category: text(&category, doc, &mut buf).pop().unwrap_or_default(),
                        tags: text(&tag, doc, &mut buf),
                        difficulty: text(&difficulty, doc, &mut buf).pop().unwrap_or_default(),
                    },
                ));
            }
        }
        Ok(out)
    }

    /// Number of documents visible to searches.
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Waits for merges and releases the writer (and its directory lock).
    pub fn close(&self) {
        let writer = self.writer.lock().ok().and_then(|mut g| g.take());
        if let Some(Err(e)) = writer.map(IndexWriter::wait_merging_threads) {
            tracing::warn!(error = %e, "index merge did not finish cleanly");
        }
    }
}

fn commit(w: &mut IndexWriter, seq: i64, database: &str) -> anyhow::Result<()> {
    let payload = serde_json::to_string(&Payload {
        schema: SCHEMA_VERSION,
        seq,
        database: database.to_string(),
    })?;
    let mut prepared = w.prepare_commit()?;
    prepared.set_payload(&payload);
    prepared.commit()?;
    Ok(())
}
