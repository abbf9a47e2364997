//! The fallback plan for a query that matched nothing as typed: its single CJK characters
//! and near spellings of its Latin words, so a plausible query never gets an empty page.
//!
//! Kept apart from `plan.rs` because it is never mixed with a normal plan: it is tried only
//! when that plan matched nothing, and its parts are scored alone.

use super::SearchIndex;
use super::analyzer::{analyze, is_cjk, is_filler};
use super::maxscore::Part;
use super::plan::{MAX_EXPANSIONS, fuzzy_distance, is_latin_word, unit_part};
use super::unit::{FieldTerm, Stats, idf};
use std::collections::{BTreeMap, HashSet};
use tantivy::Searcher;

/// Single characters, when nothing else matched, at this share.
const RELAXED_SHARE: f32 = 0.2;
/// Characters (and Latin words) a relaxed search looks for: it bounds the cost of a pasted
/// paragraph that matched nothing.
const MAX_RELAXED: usize = 12;

impl SearchIndex {
    /// When nothing matches: the query's single CJK characters (as the first character of an
    /// indexed bigram) and its short Latin words within one typo, so a plausible query never
    /// gets an empty page. Only ever used alone, so these rank below any real match.
    /// Also says how many characters and words it looked for: a relaxed match needs half.
    pub(super) fn relaxed_parts(&self, searcher: &Searcher, text: &str) -> (Vec<Part>, usize) {
        let f = &self.fields;
        let stats = Stats::new(searcher);
        let n = searcher.num_docs().max(1) as f32;
        let mut parts = Vec::new();
        let mut seen = HashSet::new();
        for c in text.chars().filter(|c| is_cjk(*c)) {
            let ch = c.to_string();
            if is_filler(&ch) || !seen.insert(c) {
                continue;
            }
            if seen.len() > MAX_RELAXED {
                break;
            }
            let mut grams: BTreeMap<String, u64> = BTreeMap::new();
            for field in [f.title_bigrams, f.answers_bigrams] {
                for reader in searcher.segment_readers() {
                    let Ok(index) = reader.inverted_index(field) else {
                        continue;
                    };
                    let mut upper = ch.clone();
                    upper.push(char::MAX);
                    let Ok(mut stream) = index.terms().range().ge(&ch).lt(&upper).into_stream()
                    else {
                        continue;
                    };
                    while stream.advance() {
                        if let Ok(g) = std::str::from_utf8(stream.key()) {
                            *grams.entry(g.to_string()).or_default() +=
                                u64::from(stream.value().doc_freq);
                        }
                    }
                }
            }
            let mut grams: Vec<(String, u64)> = grams.into_iter().collect();
            grams.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let df: u64 = grams.iter().map(|g| g.1).sum();
            let terms: Vec<FieldTerm> = grams
                .iter()
                .take(MAX_EXPANSIONS * 4)
                .flat_map(|(g, _)| self.bigram_terms(&stats, g, RELAXED_SHARE))
                .collect();
            if terms.is_empty() {
                continue;
            }
            let w = idf(df.max(1), n.max(df as f32)) * RELAXED_SHARE;
            parts.extend(unit_part(terms, w, format!("character {ch}")));
        }
        let mut seen_words = HashSet::new();
        for w in analyze(text) {
            if !is_latin_word(&w) || w.len() < 3 || is_filler(&w) || !seen_words.insert(w.clone()) {
                continue;
            }
            if seen_words.len() > MAX_RELAXED {
                break;
            }
            let d = fuzzy_distance(&w).unwrap_or(1);
            let variants = self.fuzzy_variants(searcher, &w, d);
            let terms: Vec<FieldTerm> = variants
                .iter()
                .flat_map(|(v, dist)| {
                    self.word_terms(&stats, v, RELAXED_SHARE / (1.0 + *dist as f32))
                })
                .collect();
            parts.extend(unit_part(terms, RELAXED_SHARE, format!("relaxed {w}")));
        }
        (
            parts,
            seen.len().min(MAX_RELAXED) + seen_words.len().min(MAX_RELAXED),
        )
    }
}
