//! The index schema and its version. Bump [`SCHEMA_VERSION`] whenever the fields or the
//! analyzer change: an index written under another version is rebuilt on start.

use super::analyzer::{BIGRAM_TOKENIZER_NAME, TOKENIZER_NAME};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
};

pub const SCHEMA_VERSION: u32 = 1;

/// Handles to every field of the index.
#[derive(Clone, Copy, Debug)]
pub struct Fields {
    /// The question id: the key for updates and deletes, read back from a fast column.
    pub id: Field,
    pub title: Field,
    /// All answers of the question, one after another.
    pub answers: Field,
    /// The title and answers again, as CJK bigrams.
    pub title_bigrams: Field,
    pub answers_bigrams: Field,
    /// Tags, analyzed like text so `write barrier` finds `write-barrier`.
    pub tags_text: Field,
    /// Raw tag slugs, for filters and facets.
    pub tag: Field,
    pub category: Field,
    pub difficulty: Field,
}

pub fn build() -> (Schema, Fields) {
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TOKENIZER_NAME)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let bigrams = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(BIGRAM_TOKENIZER_NAME)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let mut b = Schema::builder();
    let fields = Fields {
        id: b.add_u64_field("id", INDEXED | FAST),
        title: b.add_text_field("title", text.clone()),
        answers: b.add_text_field("answers", text.clone()),
        title_bigrams: b.add_text_field("title_bigrams", bigrams.clone()),
        answers_bigrams: b.add_text_field("answers_bigrams", bigrams),
        tags_text: b.add_text_field("tags_text", text),
        tag: b.add_text_field("tag", STRING | FAST),
        category: b.add_text_field("category", STRING | FAST),
        difficulty: b.add_text_field("difficulty", STRING | FAST),
    };
    (b.build(), fields)
}
