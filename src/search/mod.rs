//! Full-text search over questions with tantivy: the schema, the Chinese-aware analyzer, the
//! write side (applying changes, commits that carry the change-log sequence) and queries.
//!
//! This module never reads the database: the service hands it documents. Every method here
//! blocks, so async callers run them on the blocking pool.

pub mod analyzer;
mod collect;
mod facets;
mod highlight;
mod indexer;
mod maxscore;
mod plan;
mod query;
mod relaxed;
pub mod schema;
mod synonyms;
mod unit;
pub mod vectors;

pub use facets::Facets;
pub use highlight::Highlighter;
pub use indexer::Opened;
pub use maxscore::PartScore;
pub use query::SearchHits;
pub use synonyms::{BUILTIN as BUILTIN_SYNONYMS, Synonyms};
pub use vectors::{VectorFields, VectorFilter, VectorIndex};

use schema::Fields;
use std::sync::Mutex;
use tantivy::{IndexReader, IndexWriter};

/// What the index stores about one question.
#[derive(Debug, Clone)]
pub struct IndexDoc {
    pub id: i64,
    pub title: String,
    pub answers: Vec<String>,
    pub tags: Vec<String>,
    pub category: String,
    pub difficulty: String,
}

/// The index with its one writer and one long-lived reader.
pub struct SearchIndex {
    reader: IndexReader,
    /// `None` once closed, so the directory lock is released even while handles remain.
    writer: Mutex<Option<IndexWriter>>,
    fields: Fields,
    /// The id of the database the index follows, written into every commit (`indexer.rs`).
    database: String,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex").finish_non_exhaustive()
    }
}
