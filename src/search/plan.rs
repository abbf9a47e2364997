//! Query planning: what a person typed → the scoring parts of a `MaxScoreQuery` and the
//! filters beside them.
//!
//! What a person typed is never parsed as a query language: it is analyzed into terms and the
//! query is built from them, so no input can be a syntax error and word order never matters.
//! Planning runs in four steps (`text_parts`), each reading what the ones before it decided.

use super::SearchIndex;
use super::analyzer::{AnalyzedQuery, QueryUnit, analyze, analyze_query, is_filler};
use super::maxscore::Part;
use super::synonyms::Synonyms;
use super::unit::{FieldTerm, LengthNorm, Stats, UnitQuery, idf};
use crate::domain::SearchQuery;
use std::collections::{BTreeSet, HashMap};
use tantivy::query::{
    Bm25Weight, BooleanQuery, BoostQuery, ConstScoreQuery, DisjunctionMaxQuery, FuzzyTermQuery,
    Occur, PhraseQuery, Query, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{Searcher, Term};

/// More distinct terms than this are ignored: it bounds the cost of a pasted paragraph.
pub(super) const MAX_TERMS: usize = 48;
/// Score per unit of weighted coverage (a unit's weight is its IDF times its prior, about
/// 1–14): large beside BM25 (a few tens at most), so coverage decides first.
const COVERAGE: f32 = 100.0;
/// Added again for a unit found in the title: what a question is about counts twice.
const TITLE_COVERAGE: f32 = 100.0;
/// A typo covers its unit at this share when the typed word is in no question…
const TYPO_ALONE: f32 = 0.6;
/// …and at this share when it is (`mutex` also finds `mutexs`, below `mutex`).
const TYPO_BESIDE: f32 = 0.3;
/// A synonym covers the word it stands for at this share.
const SYNONYM_SHARE: f32 = 0.8;
/// The least weight a synonym is given (for a word whose own units are all rare in the index).
const MIN_SYNONYM_WEIGHT: f32 = 1.0;
/// Index words a typo is expanded to.
pub(super) const MAX_EXPANSIONS: usize = 16;
/// Titles are short: their length counts fully.
const TITLE_NORM: LengthNorm = LengthNorm { b: 0.75, cap: 4.0 };
/// Tags are keywords: their number does not dilute them.
const TAGS_NORM: LengthNorm = LengthNorm { b: 0.0, cap: 1.0 };
/// Answers: a thorough answer is long; its length counts for less, and never beyond three
/// times the average.
const ANSWERS_NORM: LengthNorm = LengthNorm { b: 0.5, cap: 3.0 };
const TITLE_BOOST: f32 = 3.0;
const TAGS_BOOST: f32 = 2.0;
const PHRASE_BOOST: f32 = 2.0;
/// A unit in more than this share of a large index is "common" and is left out, as a stop
/// word would be, when the query has rarer units: otherwise every document containing `什么`
/// or `原理` becomes a match to score and count, for almost no gain in ranking.
const COMMON_SHARE: f64 = 0.08;
/// Below this many documents nothing is treated as common: small knowledge bases keep exact
/// all-unit semantics (in the seed, `GC` is in a third of the questions and must still match).
pub(super) const COMMON_MIN_DOCS: u64 = 20_000;

pub(super) fn is_latin_word(t: &str) -> bool {
    t.chars().all(|c| c.is_ascii_alphanumeric())
}

/// A unit's part: its terms, covering it with weight `w` (0: it only refines the score of
/// documents other parts match). `None` when no document has any of the terms.
pub(super) fn unit_part(terms: Vec<FieldTerm>, w: f32, label: String) -> Option<Part> {
    if terms.is_empty() {
        return None;
    }
    let q = UnitQuery {
        terms,
        bonus: w * COVERAGE,
        title_bonus: w * TITLE_COVERAGE,
    };
    Some(Part {
        bound: q.bound(),
        query: Box::new(q),
        label,
        refines: w == 0.0,
    })
}

/// Restricted Damerau-Levenshtein distance (a swap of neighbours is one edit), in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    rows[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = d;
        }
    }
    rows[a.len()][b.len()]
}

/// Typo tolerance for Latin terms: one edit from 5 characters, two from 9.
pub(super) fn fuzzy_distance(term: &str) -> Option<u8> {
    if !is_latin_word(term) || term.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    match term.len() {
        0..=4 => None,
        5..=8 => Some(1),
        _ => Some(2),
    }
}

fn should(clauses: Vec<Box<dyn Query>>) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(
        clauses.into_iter().map(|q| (Occur::Should, q)).collect(),
    ))
}

impl SearchIndex {
    /// How many documents contain `u` in any field it is matched in.
    fn unit_doc_freq(&self, searcher: &Searcher, u: &QueryUnit) -> u64 {
        let f = &self.fields;
        let (fields, text): (&[Field], &str) = match u {
            QueryUnit::Word(w) => (&[f.title, f.tags_text, f.answers], w),
            QueryUnit::Bigram(b) => (&[f.title_bigrams, f.answers_bigrams], b),
        };
        fields
            .iter()
            .map(|field| {
                searcher
                    .doc_freq(&Term::from_field_text(*field, text))
                    .unwrap_or(0)
            })
            .max()
            .unwrap_or(0)
    }

    /// The words of the index within typo distance `d` of `w` (not `w` itself), in the word
    /// fields, nearest and most frequent first, ties by the word itself (so the choice never
    /// depends on how the index happens to be segmented), at most `MAX_EXPANSIONS`.
    pub(super) fn fuzzy_variants(
        &self,
        searcher: &Searcher,
        w: &str,
        d: u8,
    ) -> Vec<(String, usize)> {
        let f = &self.fields;
        let Ok(automaton) =
            FuzzyTermQuery::new(Term::from_field_text(f.title, w), d, true).automaton()
        else {
            return Vec::new();
        };
        let mut found: BTreeSet<String> = BTreeSet::new();
        for field in [f.title, f.tags_text, f.answers] {
            for reader in searcher.segment_readers() {
                let Ok(index) = reader.inverted_index(field) else {
                    continue;
                };
                let Ok(mut stream) = index.terms().search(&automaton).into_stream() else {
                    continue;
                };
                while stream.advance() {
                    if let Ok(text) = std::str::from_utf8(stream.key())
                        && text != w
                    {
                        found.insert(text.to_string());
                    }
                }
            }
        }
        let mut ranked: Vec<(usize, u64, String)> = found
            .into_iter()
            .map(|t| {
                let df = self.unit_doc_freq(searcher, &QueryUnit::Word(t.clone()));
                (edit_distance(w, &t), df, t)
            })
            .filter(|(_, df, _)| *df > 0)
            .collect();
        ranked.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        ranked
            .into_iter()
            .take(MAX_EXPANSIONS)
            .map(|(dist, _, t)| (t, dist))
            .collect()
    }

    /// The field terms of a word (title, tags, answers) with this index's statistics; each
    /// boost multiplied by `scale`.
    pub(super) fn word_terms(&self, stats: &Stats<'_>, w: &str, scale: f32) -> Vec<FieldTerm> {
        let f = &self.fields;
        [
            (f.title, TITLE_BOOST, TITLE_NORM, true),
            (f.tags_text, TAGS_BOOST, TAGS_NORM, false),
            (f.answers, 1.0, ANSWERS_NORM, false),
        ]
        .into_iter()
        .filter_map(|(field, boost, norm, title)| {
            FieldTerm::new(stats, field, w, boost * scale, norm, title)
        })
        .collect()
    }

    /// The field terms of a CJK bigram (or lone character).
    pub(super) fn bigram_terms(&self, stats: &Stats<'_>, b: &str, scale: f32) -> Vec<FieldTerm> {
        let f = &self.fields;
        [
            (f.title_bigrams, TITLE_BOOST, TITLE_NORM, true),
            (f.answers_bigrams, 1.0, ANSWERS_NORM, false),
        ]
        .into_iter()
        .filter_map(|(field, boost, norm, title)| {
            FieldTerm::new(stats, field, b, boost * scale, norm, title)
        })
        .collect()
    }

    /// The scoring parts of a search, each with an upper bound of its score (for pruning, see
    /// `maxscore`) and a label (for `explain`).
    ///
    /// Ranking is by weighted coverage first: every unit of the query (Latin word, CJK bigram)
    /// found in a question adds `COVERAGE` times its weight, which is its inverse document
    /// frequency times a prior (filler words and bigrams straddling two words count less);
    /// found in the title it adds `TITLE_COVERAGE` times as much again. BM25 (own, with a
    /// capped length penalty) orders questions of equal coverage. Typos and synonyms cover
    /// their unit at a discount; phrases add proximity.
    ///
    /// The parts' order is kept as it is: `explain` lists them in it, and a score is their
    /// sum, which in another order could round differently.
    pub(super) fn text_parts(
        &self,
        searcher: &Searcher,
        text: &str,
        synonyms: &Synonyms,
    ) -> Vec<Part> {
        let Some(units) = Units::weigh(self, searcher, text) else {
            return Vec::new();
        };
        let (mut parts, covering) = units.cover();
        units.add_synonyms(&mut parts, &covering, text, synonyms);
        parts.extend(units.proximity(text));
        parts
    }

    /// Filters match without scoring, so that they narrow the hits and leave the ranking as
    /// it is.
    pub(super) fn filters(&self, req: &SearchQuery) -> Vec<Box<dyn Query>> {
        let f = &self.fields;
        [
            (f.category, req.category.as_ref().map(|c| c.as_str())),
            (f.tag, req.tag.as_ref().map(|t| t.as_str())),
            (f.difficulty, req.difficulty.map(|d| d.as_str())),
        ]
        .into_iter()
        .filter_map(|(field, value)| {
            let q = TermQuery::new(
                Term::from_field_text(field, value?),
                IndexRecordOption::Basic,
            );
            Some(Box::new(ConstScoreQuery::new(Box::new(q), 0.0)) as Box<dyn Query>)
        })
        .collect()
    }
}

/// The query's units as this index sees them, worked out once because every step needs them:
/// how many documents hold each, which are too common to require, and what covering each is
/// worth.
struct Units<'a> {
    index: &'a SearchIndex,
    searcher: &'a Searcher,
    stats: Stats<'a>,
    analyzed: AnalyzedQuery,
    /// Units beyond `MAX_TERMS` are ignored.
    n_units: usize,
    /// The live document count (at least 1), as the IDF takes it.
    n: f32,
    dfs: Vec<u64>,
    common_limit: u64,
    all_common: bool,
    weights: Vec<f32>,
}

impl<'a> Units<'a> {
    /// Step 1: analyze the text and weigh its units, deciding which are common enough to be
    /// left out. Done first because the common rule depends on all units at once (a query of
    /// common units only keeps them all), and every later step asks it. `None` when the text
    /// has no units.
    fn weigh(index: &'a SearchIndex, searcher: &'a Searcher, text: &str) -> Option<Self> {
        let analyzed = analyze_query(text);
        let stats = Stats::new(searcher);
        let n_units = analyzed.units.len().min(MAX_TERMS);
        if n_units == 0 {
            return None;
        }
        let num_docs = searcher.num_docs();
        let n = num_docs.max(1) as f32;
        let common_limit = if num_docs >= COMMON_MIN_DOCS {
            (num_docs as f64 * COMMON_SHARE) as u64
        } else {
            u64::MAX
        };
        let dfs: Vec<u64> = analyzed.units[..n_units]
            .iter()
            .map(|u| index.unit_doc_freq(searcher, u))
            .collect();
        // When every unit the index knows is common there is nothing rarer to lean on: all of
        // them match (a unit in no question, a typo say, is no reason to drop the others).
        let all_common = dfs
            .iter()
            .filter(|df| **df > 0)
            .all(|df| *df > common_limit);
        let mut units = Self {
            index,
            searcher,
            stats,
            analyzed,
            n_units,
            n,
            dfs,
            common_limit,
            all_common,
            weights: Vec::new(),
        };
        units.weights = (0..n_units)
            .map(|i| units.weight(units.dfs[i], units.analyzed.priors[i]))
            .collect();
        Some(units)
    }

    fn keep(&self, df: u64) -> bool {
        self.all_common || df <= self.common_limit
    }

    fn weight(&self, df: u64, prior: f32) -> f32 {
        idf(df.max(1), self.n.max(df as f32)) * prior
    }

    fn is_rare_word(&self, w: &str) -> bool {
        self.keep(self.doc_freq(w))
    }

    fn doc_freq(&self, word: &str) -> u64 {
        self.index
            .unit_doc_freq(self.searcher, &QueryUnit::Word(word.to_string()))
    }

    fn word_terms(&self, w: &str, scale: f32) -> Vec<FieldTerm> {
        self.index.word_terms(&self.stats, w, scale)
    }

    /// Step 2: one part per unit that covers it (with a typo part before a Latin word's own),
    /// then whole dictionary words, which add relevance but no coverage. Returns the parts and
    /// which part covers each unit, for synonyms to join: coverage is what ranks first, so
    /// these are the parts everything else is measured against.
    fn cover(&self) -> (Vec<Part>, HashMap<usize, usize>) {
        let mut parts: Vec<Part> = Vec::new();
        let mut covering: HashMap<usize, usize> = HashMap::new();
        for (i, u) in self.analyzed.units[..self.n_units].iter().enumerate() {
            let df = self.dfs[i];
            match u {
                QueryUnit::Word(w) => {
                    // Typos are looked for only where they can matter: a common word was
                    // evidently typed right, and its neighbours would only cost time.
                    if (df == 0 || self.keep(df))
                        && let Some(d) = fuzzy_distance(w)
                    {
                        parts.extend(self.typo(i, w, d));
                    }
                    if df > 0 && self.keep(df) {
                        let terms = self.word_terms(w, 1.0);
                        parts.extend(unit_part(terms, self.weights[i], format!("word {w}")));
                        covering.insert(i, parts.len() - 1);
                    }
                }
                QueryUnit::Bigram(b) => {
                    if df > 0 && self.keep(df) {
                        let terms = self.index.bigram_terms(&self.stats, b, 1.0);
                        parts.extend(unit_part(terms, self.weights[i], format!("bigram {b}")));
                        covering.insert(i, parts.len() - 1);
                    }
                }
            }
        }
        // Whole dictionary words: relevance (BM25), no coverage of their own.
        for w in self.analyzed.cjk_words.iter().take(MAX_TERMS) {
            if self.is_rare_word(w) {
                let terms = self.word_terms(w, 1.0);
                parts.extend(unit_part(terms, 0.0, format!("whole word {w}")));
            }
        }
        (parts, covering)
    }

    /// The part of unit `i`, the Latin word `w`, spelt within `d` edits: its neighbours in
    /// the index, nearer ones weighing more.
    fn typo(&self, i: usize, w: &str, d: u8) -> Option<Part> {
        let variants = self.index.fuzzy_variants(self.searcher, w, d);
        let mut terms = Vec::new();
        let mut best_df = 0;
        for (v, dist) in &variants {
            best_df = best_df.max(self.doc_freq(v));
            terms.extend(self.word_terms(v, 1.0 / (1.0 + *dist as f32)));
        }
        let share = if self.dfs[i] == 0 {
            TYPO_ALONE
        } else {
            TYPO_BESIDE
        };
        let w_typo = self.weight(best_df, self.analyzed.priors[i]) * share;
        let label = format!(
            "typo {w} → {}",
            variants
                .iter()
                .map(|v| v.0.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        );
        unit_part(terms, w_typo, label)
    }

    /// Step 3: synonyms cover the units of the term they stand for, a little below the term
    /// itself. A term and its synonyms are one concept: a question saying two of them covers
    /// it once (the best of them counts), whether the term is one unit or its synonyms many.
    /// So this step rewrites step 2's part of a one-unit term rather than adding beside it.
    fn add_synonyms(
        &self,
        parts: &mut Vec<Part>,
        covering: &HashMap<usize, usize>,
        text: &str,
        synonyms: &Synonyms,
    ) {
        for (key, alternatives) in synonyms.matches(text).into_iter().take(MAX_TERMS) {
            let covered: Vec<usize> = self.analyzed.units[..self.n_units]
                .iter()
                .enumerate()
                .filter(|(_, u)| match u {
                    QueryUnit::Word(w) => key.split(' ').any(|k| k == w) || key == *w,
                    QueryUnit::Bigram(b) => key.contains(b.as_str()),
                })
                .map(|(i, _)| i)
                .collect();
            let w_key: f32 = covered
                .iter()
                .map(|i| self.weights[*i])
                .sum::<f32>()
                .max(MIN_SYNONYM_WEIGHT);
            let mut single: Vec<FieldTerm> = Vec::new();
            let mut alts: Vec<Part> = Vec::new();
            for alt in alternatives.iter().take(MAX_TERMS) {
                match analyze(alt).as_slice() {
                    [] => {}
                    // A synonym as common as a stop word would only make everything match.
                    [one] if self.is_rare_word(one) => {
                        single.extend(self.word_terms(one, SYNONYM_SHARE))
                    }
                    [_] => {}
                    many => {
                        let bonus = w_key * SYNONYM_SHARE * COVERAGE;
                        let f = &self.index.fields;
                        let phrase = |field| -> Box<dyn Query> {
                            Box::new(PhraseQuery::new(
                                many.iter()
                                    .map(|t| Term::from_field_text(field, t))
                                    .collect(),
                            ))
                        };
                        alts.push(Part {
                            query: Box::new(ConstScoreQuery::new(
                                should(vec![phrase(f.title), phrase(f.answers)]),
                                bonus,
                            )),
                            bound: bonus,
                            label: String::new(),
                            refines: false,
                        });
                    }
                }
            }
            alts.extend(unit_part(single, w_key * SYNONYM_SHARE, String::new()));
            if alts.is_empty() {
                continue;
            }
            let label = format!("synonym {key} → {}", alternatives.join(" | "));
            // A one-unit term joins its unit's part; a longer one stands beside its units.
            let own = match covered.as_slice() {
                [one] => covering.get(one).copied(),
                _ => None,
            };
            if let Some(at) = own {
                alts.push(parts[at].clone());
            }
            let bound = alts.iter().map(|p| p.bound).fold(0.0, f32::max);
            let part = Part {
                query: Box::new(DisjunctionMaxQuery::new(
                    alts.into_iter().map(|p| p.query).collect(),
                )),
                bound,
                refines: false,
                label: match own {
                    Some(at) => format!("{} or {label}", parts[at].label),
                    None => label,
                },
            };
            match own {
                Some(at) => parts[at] = part,
                None => parts.push(part),
            }
        }
    }

    /// Step 4: words typed next to each other score higher when they stand together: in the
    /// title (adjacent), and in the answers (near each other). These parts only refine
    /// (`Part::refines`): standing together is evidence about documents the units already
    /// matched, never a reason to match by itself.
    fn proximity(&self, text: &str) -> Vec<Part> {
        let f = &self.index.fields;
        let mut parts = Vec::new();
        let terms: Vec<String> = analyze(text)
            .into_iter()
            .filter(|t| !is_filler(t))
            .collect();
        let window: Vec<&String> = terms.iter().take(MAX_TERMS).collect();
        for pair in window.windows(2) {
            if pair[0] == pair[1] || !(self.is_rare_word(pair[0]) || self.is_rare_word(pair[1])) {
                continue;
            }
            for (field, slop, boost) in [(f.title, 1, PHRASE_BOOST), (f.answers, 3, 1.0)] {
                let terms = [
                    Term::from_field_text(field, pair[0]),
                    Term::from_field_text(field, pair[1]),
                ];
                let Ok(bm25) = Bm25Weight::for_terms(self.searcher, &terms) else {
                    continue;
                };
                let [a, b] = terms;
                let phrase = PhraseQuery::new_with_offset_and_slop(vec![(0, a), (1, b)], slop);
                parts.push(Part {
                    query: Box::new(BoostQuery::new(Box::new(phrase), boost)),
                    bound: bm25.max_score() * boost,
                    label: format!("near {} {}", pair[0], pair[1]),
                    refines: true,
                });
            }
        }
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_a_swap_of_neighbours_as_one_edit() {
        assert_eq!(edit_distance("mutex", "mutex"), 0);
        assert_eq!(edit_distance("mutex", "mutexs"), 1);
        assert_eq!(edit_distance("chanel", "channel"), 1);
        assert_eq!(edit_distance("waitgruop", "waitgroup"), 1);
        assert_eq!(edit_distance("zookeper", "zookeeper"), 1);
        assert_eq!(edit_distance("gorutine", "goroutines"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn typo_distance_grows_with_length_and_spares_short_and_cjk_terms() {
        assert_eq!(fuzzy_distance("gmp"), None);
        assert_eq!(fuzzy_distance("mutex"), Some(1));
        assert_eq!(fuzzy_distance("gomaxprocs"), Some(2));
        assert_eq!(fuzzy_distance("垃圾回收机制"), None);
        assert_eq!(fuzzy_distance("go1.14"), None);
    }
}
