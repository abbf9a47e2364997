//! User text → tantivy query, and the read side: search with facets, highlights, suggest and
//! similar questions.
//!
//! What a person typed is never parsed as a query language: it is analyzed into terms and the
//! query is built from them, so no input can be a syntax error and word order never matters.

use super::SearchIndex;
use super::analyzer::{QueryUnit, SnippetTokenizer, analyze, analyze_query, is_cjk, is_filler};
use super::maxscore::{MaxScoreQuery, Part, PartScore};
use super::schema::Fields;
use super::synonyms::Synonyms;
use super::unit::{FieldTerm, LengthNorm, Stats, UnitQuery, idf};
use crate::domain::SearchQuery;
use anyhow::anyhow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Range;
use tantivy::collector::{Collector, SegmentCollector, TopDocs};
use tantivy::columnar::StrColumn;
use tantivy::query::{
    Bm25Weight, BooleanQuery, BoostQuery, ConstScoreQuery, DisjunctionMaxQuery, EmptyQuery,
    EnableScoring, FuzzyTermQuery, MoreLikeThisQuery, Occur, PhraseQuery, Query, RegexQuery,
    TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption, OwnedValue};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{
    DocAddress, DocId, DocSet, Score, Searcher, SegmentOrdinal, SegmentReader, TERMINATED, Term,
};

/// More distinct terms than this are ignored: it bounds the cost of a pasted paragraph.
const MAX_TERMS: usize = 48;
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
/// Single characters, when nothing else matched, at this share.
const RELAXED_SHARE: f32 = 0.2;
/// Index words a typo is expanded to.
const MAX_EXPANSIONS: usize = 16;
/// Characters (and Latin words) a relaxed search looks for: it bounds the cost of a pasted
/// paragraph that matched nothing.
const MAX_RELAXED: usize = 12;
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
/// Matches counted one by one; beyond this `total` and the facets are estimated.
pub const EXACT_COUNT: usize = 10_000;
const ANSWER_SNIPPET_CHARS: usize = 160;
/// Bytes of answer text segmented for a snippet, before and after the first match.
const ANSWER_WINDOW_BEFORE: usize = 240;
const ANSWER_WINDOW_AFTER: usize = 1024;
/// A unit in more than this share of a large index is "common" and is left out, as a stop
/// word would be, when the query has rarer units: otherwise every document containing `什么`
/// or `原理` becomes a match to score and count, for almost no gain in ranking.
const COMMON_SHARE: f64 = 0.08;
/// Below this many documents nothing is treated as common: small knowledge bases keep exact
/// all-unit semantics (in the seed, `GC` is in a third of the questions and must still match).
const COMMON_MIN_DOCS: u64 = 20_000;

/// Counts per value over the whole result set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facets {
    pub category: BTreeMap<String, u64>,
    pub tag: BTreeMap<String, u64>,
    pub difficulty: BTreeMap<String, u64>,
}

/// The ids of one page of hits, best first, with what is needed to highlight them.
pub struct SearchHits {
    /// Per hit, when asked for: which parts of the query matched and what each added.
    pub explained: Vec<Vec<PartScore>>,
    /// True when nothing matched the query as typed and these are matches of its single
    /// characters and near spellings.
    pub relaxed: bool,
    pub total: usize,
    /// False when `total` and the facets are estimates (more than `EXACT_COUNT` matches).
    pub total_exact: bool,
    pub hits: Vec<(i64, f32)>,
    pub facets: Facets,
    pub highlighter: Highlighter,
}

/// Marks the query's terms in texts read back from the database.
pub struct Highlighter {
    title: Option<SnippetGenerator>,
    answers: Option<SnippetGenerator>,
    /// The query's terms in the answers field, to find where the first match is.
    answer_terms: Vec<String>,
}

fn is_latin_word(t: &str) -> bool {
    t.chars().all(|c| c.is_ascii_alphanumeric())
}

/// A unit's part: its terms, covering it with weight `w` (0: it only refines the score of
/// documents other parts match). `None` when no document has any of the terms.
fn unit_part(terms: Vec<FieldTerm>, w: f32, label: String) -> Option<Part> {
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
fn fuzzy_distance(term: &str) -> Option<u8> {
    if !is_latin_word(term) || term.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    match term.len() {
        0..=4 => None,
        5..=8 => Some(1),
        _ => Some(2),
    }
}

fn term_query(field: Field, text: &str, boost: f32) -> Box<dyn Query> {
    let q: Box<dyn Query> = Box::new(TermQuery::new(
        Term::from_field_text(field, text),
        IndexRecordOption::WithFreqs,
    ));
    if boost == 1.0 {
        q
    } else {
        Box::new(BoostQuery::new(q, boost))
    }
}

fn should(clauses: Vec<Box<dyn Query>>) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(
        clauses.into_iter().map(|q| (Occur::Should, q)).collect(),
    ))
}

fn unique_terms(terms: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    terms
        .iter()
        .filter(|t| seen.insert(t.as_str()))
        .take(MAX_TERMS)
        .cloned()
        .collect()
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
    fn fuzzy_variants(&self, searcher: &Searcher, w: &str, d: u8) -> Vec<(String, usize)> {
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
    fn word_terms(&self, stats: &Stats<'_>, w: &str, scale: f32) -> Vec<FieldTerm> {
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
    fn bigram_terms(&self, stats: &Stats<'_>, b: &str, scale: f32) -> Vec<FieldTerm> {
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
    fn text_parts(&self, searcher: &Searcher, text: &str, synonyms: &Synonyms) -> Vec<Part> {
        let analyzed = analyze_query(text);
        let stats = Stats::new(searcher);
        let n_units = analyzed.units.len().min(MAX_TERMS);
        if n_units == 0 {
            return Vec::new();
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
            .map(|u| self.unit_doc_freq(searcher, u))
            .collect();
        // When every unit the index knows is common there is nothing rarer to lean on: all of
        // them match (a unit in no question, a typo say, is no reason to drop the others).
        let all_common = dfs
            .iter()
            .filter(|df| **df > 0)
            .all(|df| *df > common_limit);
        let keep = |df: u64| all_common || df <= common_limit;
        let weight = |df: u64, prior: f32| idf(df.max(1), n.max(df as f32)) * prior;
        let unit_weights: Vec<f32> = (0..n_units)
            .map(|i| weight(dfs[i], analyzed.priors[i]))
            .collect();
        let mut parts: Vec<Part> = Vec::new();
        let push_unit = |parts: &mut Vec<Part>, terms: Vec<FieldTerm>, w: f32, label: String| {
            parts.extend(unit_part(terms, w, label));
        };
        // The part that covers each unit, for synonyms to join.
        let mut unit_part: HashMap<usize, usize> = HashMap::new();
        for (i, u) in analyzed.units[..n_units].iter().enumerate() {
            match u {
                QueryUnit::Word(w) => {
                    // Typos are looked for only where they can matter: a common word was
                    // evidently typed right, and its neighbours would only cost time.
                    if (dfs[i] == 0 || keep(dfs[i]))
                        && let Some(d) = fuzzy_distance(w)
                    {
                        let variants = self.fuzzy_variants(searcher, w, d);
                        let mut terms = Vec::new();
                        let mut best_df = 0;
                        for (v, dist) in &variants {
                            best_df = best_df
                                .max(self.unit_doc_freq(searcher, &QueryUnit::Word(v.clone())));
                            terms.extend(self.word_terms(&stats, v, 1.0 / (1.0 + *dist as f32)));
                        }
                        let share = if dfs[i] == 0 { TYPO_ALONE } else { TYPO_BESIDE };
                        let w_typo = weight(best_df, analyzed.priors[i]) * share;
                        let label = format!(
                            "typo {w} → {}",
                            variants
                                .iter()
                                .map(|v| v.0.as_str())
                                .collect::<Vec<_>>()
                                .join(" ")
                        );
                        push_unit(&mut parts, terms, w_typo, label);
                    }
                    if dfs[i] > 0 && keep(dfs[i]) {
                        let terms = self.word_terms(&stats, w, 1.0);
                        push_unit(&mut parts, terms, unit_weights[i], format!("word {w}"));
                        unit_part.insert(i, parts.len() - 1);
                    }
                }
                QueryUnit::Bigram(b) => {
                    if dfs[i] > 0 && keep(dfs[i]) {
                        let terms = self.bigram_terms(&stats, b, 1.0);
                        push_unit(&mut parts, terms, unit_weights[i], format!("bigram {b}"));
                        unit_part.insert(i, parts.len() - 1);
                    }
                }
            }
        }
        // Whole dictionary words: relevance (BM25), no coverage of their own.
        let is_rare_word =
            |w: &str| keep(self.unit_doc_freq(searcher, &QueryUnit::Word(w.to_string())));
        for w in analyzed.cjk_words.iter().take(MAX_TERMS) {
            if is_rare_word(w) {
                let terms = self.word_terms(&stats, w, 1.0);
                push_unit(&mut parts, terms, 0.0, format!("whole word {w}"));
            }
        }
        // Synonyms cover the units of the term they stand for, a little below the term itself.
        // A term and its synonyms are one concept: a question saying two of them covers it
        // once (the best of them counts), whether the term is one unit or its synonyms many.
        for (key, alternatives) in synonyms.matches(text).into_iter().take(MAX_TERMS) {
            let covered: Vec<usize> = analyzed.units[..n_units]
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
                .map(|i| unit_weights[*i])
                .sum::<f32>()
                .max(MIN_SYNONYM_WEIGHT);
            let mut single: Vec<FieldTerm> = Vec::new();
            let mut alts: Vec<Part> = Vec::new();
            for alt in alternatives.iter().take(MAX_TERMS) {
                match analyze(alt).as_slice() {
                    [] => {}
                    // A synonym as common as a stop word would only make everything match.
                    [one] if keep(self.unit_doc_freq(searcher, &QueryUnit::Word(one.clone()))) => {
                        single.extend(self.word_terms(&stats, one, SYNONYM_SHARE))
                    }
                    [_] => {}
                    many => {
                        let bonus = w_key * SYNONYM_SHARE * COVERAGE;
                        let f = &self.fields;
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
            push_unit(&mut alts, single, w_key * SYNONYM_SHARE, String::new());
            if alts.is_empty() {
                continue;
            }
            let label = format!("synonym {key} → {}", alternatives.join(" | "));
            // A one-unit term joins its unit's part; a longer one stands beside its units.
            let own = match covered.as_slice() {
                [one] => unit_part.get(one).copied(),
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
        // Words typed next to each other score higher when they stand together: in the title
        // (adjacent), and in the answers (near each other).
        let f = &self.fields;
        let terms: Vec<String> = analyze(text)
            .into_iter()
            .filter(|t| !is_filler(t))
            .collect();
        let window: Vec<&String> = terms.iter().take(MAX_TERMS).collect();
        for pair in window.windows(2) {
            if pair[0] == pair[1] || !(is_rare_word(pair[0]) || is_rare_word(pair[1])) {
                continue;
            }
            for (field, slop, boost) in [(f.title, 1, PHRASE_BOOST), (f.answers, 3, 1.0)] {
                let terms = [
                    Term::from_field_text(field, pair[0]),
                    Term::from_field_text(field, pair[1]),
                ];
                let Ok(bm25) = Bm25Weight::for_terms(searcher, &terms) else {
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

    /// When nothing matches: the query's single CJK characters (as the first character of an
    /// indexed bigram) and its short Latin words within one typo, so a plausible query never
    /// gets an empty page. Only ever used alone, so these rank below any real match.
    fn relaxed_parts(&self, searcher: &Searcher, text: &str) -> (Vec<Part>, usize) {
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

    fn filters(&self, req: &SearchQuery) -> Vec<Box<dyn Query>> {
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

    /// Runs a search: one page of ids, the total, and facets over the matches (exact up to
    /// `EXACT_COUNT` matches, estimated beyond). When the query as typed matches nothing, it
    /// is relaxed to single characters and near spellings (`relaxed`).
    pub fn search(
        &self,
        req: &SearchQuery,
        synonyms: &Synonyms,
        explain: bool,
    ) -> anyhow::Result<SearchHits> {
        let searcher = self.reader.searcher();
        let empty = || SearchHits {
            relaxed: false,
            explained: Vec::new(),
            total: 0,
            total_exact: true,
            hits: Vec::new(),
            facets: Facets::default(),
            highlighter: Highlighter {
                title: None,
                answers: None,
                answer_terms: Vec::new(),
            },
        };
        let parts = self.text_parts(&searcher, &req.text, synonyms);
        let mut relaxed = false;
        let mut query = MaxScoreQuery::new(parts, self.filters(req));
        let mut counted = count_matches(&searcher, &query, EXACT_COUNT)?;
        // Relaxed matching asks for at least half of the characters and words it looks for,
        // so one shared character is not a match.
        let mut loose: Option<BooleanQuery> = None;
        if counted.total == 0 {
            let (parts, sought) = self.relaxed_parts(&searcher, &req.text);
            let needed = sought.div_ceil(2);
            if parts.len() < needed.max(1) {
                return Ok(empty());
            }
            let mut clauses: Vec<(Occur, Box<dyn Query>)> = parts
                .iter()
                .map(|p| (Occur::Should, p.query.box_clone()))
                .collect();
            clauses.extend(self.filters(req).into_iter().map(|f| (Occur::Must, f)));
            let q = BooleanQuery::with_minimum_required_clauses(clauses, needed);
            counted = count_matches(&searcher, &q, EXACT_COUNT)?;
            if counted.total == 0 {
                return Ok(empty());
            }
            query = MaxScoreQuery::new(parts, self.filters(req));
            loose = Some(q);
            relaxed = true;
        }
        let highlighter = Highlighter::new(&searcher, &query, &self.fields)?;
        let k = req.limit.max(1) + req.offset;
        let top = match &loose {
            Some(q) => self.top(&searcher, q, k)?,
            None => self.top(&searcher, &query, k)?,
        };
        let page: Vec<(DocAddress, i64, f32)> =
            top.into_iter().skip(req.offset).take(req.limit).collect();
        let explained = if explain {
            page.iter()
                .map(|(addr, _, _)| query.explain_parts(&searcher, *addr))
                .collect::<tantivy::Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        Ok(SearchHits {
            relaxed,
            explained,
            total: counted.total,
            total_exact: counted.exact,
            hits: page.into_iter().map(|(_, id, score)| (id, score)).collect(),
            facets: counted.facets,
            highlighter,
        })
    }

    /// The best `k` live documents, by score and then by question id (so equal scores always
    /// come in the same order, however the index is segmented), with pruning.
    fn top(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
        k: usize,
    ) -> anyhow::Result<Vec<(DocAddress, i64, f32)>> {
        let weight = query.weight(EnableScoring::enabled_from_searcher(searcher))?;
        let mut best = TopK::new(k);
        for (ord, reader) in searcher.segment_readers().iter().enumerate() {
            let ids = reader.fast_fields().u64("id")?;
            let alive = reader.alive_bitset();
            weight.for_each_pruning(best.threshold(), reader, &mut |doc, score| {
                if alive.is_none_or(|a| a.is_alive(doc))
                    && let Some(id) = ids.first(doc)
                {
                    best.push(
                        score,
                        id as i64,
                        DocAddress::new(ord as SegmentOrdinal, doc),
                    );
                }
                best.threshold()
            })?;
        }
        Ok(best.into_sorted())
    }

    fn id_of(&self, searcher: &Searcher, addr: DocAddress) -> anyhow::Result<i64> {
        let column = searcher
            .segment_reader(addr.segment_ord)
            .fast_fields()
            .u64("id")?;
        column
            .first(addr.doc_id)
            .map(|id| id as i64)
            .ok_or_else(|| anyhow!("document without id"))
    }

    /// Ids of questions whose title completes `prefix` (the last word may be unfinished).
    pub fn suggest(&self, prefix: &str, limit: usize) -> anyhow::Result<Vec<i64>> {
        let terms = analyze(prefix);
        let Some((last, rest)) = terms.split_last() else {
            return Ok(Vec::new());
        };
        let title = self.fields.title;
        let pattern = format!("{}.*", regex_escape(last));
        let prefix_query: Box<dyn Query> = match RegexQuery::from_pattern(&pattern, title) {
            Ok(q) => Box::new(q),
            Err(_) => Box::new(EmptyQuery),
        };
        let mut clauses = vec![(Occur::Must, prefix_query)];
        for t in unique_terms(rest) {
            clauses.push((Occur::Should, term_query(title, &t, 1.0)));
        }
        let searcher = self.reader.searcher();
        let top = searcher.search(
            &BooleanQuery::new(clauses),
            &TopDocs::with_limit(limit.max(1)).order_by_score(),
        )?;
        top.into_iter()
            .map(|(_, addr)| self.id_of(&searcher, addr))
            .collect()
    }

    /// Ids of questions like the given one (its own text passed in), never itself.
    pub fn similar(
        &self,
        id: i64,
        title: &str,
        answers: &[String],
        limit: usize,
    ) -> anyhow::Result<Vec<(i64, f32)>> {
        let f = &self.fields;
        let mut fields = vec![(f.title, vec![OwnedValue::Str(title.to_string())])];
        if !answers.is_empty() {
            fields.push((
                f.answers,
                answers.iter().map(|a| OwnedValue::Str(a.clone())).collect(),
            ));
        }
        let searcher = self.reader.searcher();
        // tantivy's MoreLikeThis asserts doc_freq <= num_docs, but doc_freq still counts
        // deleted documents until segments merge; capping it skips those terms instead of
        // panicking.
        let mlt = MoreLikeThisQuery::builder()
            .with_max_doc_frequency(searcher.num_docs())
            .with_min_doc_frequency(1)
            .with_min_term_frequency(1)
            .with_max_query_terms(30)
            .with_min_word_length(2)
            .with_document_fields(fields);
        let query = BooleanQuery::new(vec![
            (Occur::Must, Box::new(mlt) as Box<dyn Query>),
            (
                Occur::MustNot,
                Box::new(TermQuery::new(
                    Term::from_field_u64(f.id, id as u64),
                    IndexRecordOption::Basic,
                )),
            ),
        ]);
        let top = searcher.search(&query, &TopDocs::with_limit(limit.max(1)).order_by_score())?;
        top.into_iter()
            .map(|(score, addr)| Ok((self.id_of(&searcher, addr)?, score)))
            .collect()
    }
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if !c.is_alphanumeric() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `k` best (score, id) pairs seen so far: higher score first, then lower id.
struct TopK {
    k: usize,
    heap: std::collections::BinaryHeap<std::cmp::Reverse<Ranked>>,
}

#[derive(Debug, Clone, Copy)]
struct Ranked {
    score: f32,
    id: i64,
    addr: DocAddress,
}

impl Ranked {
    fn key(&self) -> (f32, std::cmp::Reverse<i64>) {
        (self.score, std::cmp::Reverse(self.id))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let (a, b) = (self.key(), other.key());
        a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
    }
}

impl TopK {
    fn new(k: usize) -> Self {
        Self {
            k,
            heap: std::collections::BinaryHeap::with_capacity(k + 1),
        }
    }

    /// Scores at or below this cannot enter. Equal to the worst kept score would exclude a
    /// tie with a lower id, so the threshold sits just under it.
    fn threshold(&self) -> f32 {
        if self.heap.len() < self.k {
            return f32::MIN;
        }
        self.heap.peek().map_or(f32::MIN, |w| w.0.score.next_down())
    }

    fn push(&mut self, score: f32, id: i64, addr: DocAddress) {
        self.heap
            .push(std::cmp::Reverse(Ranked { score, id, addr }));
        if self.heap.len() > self.k {
            self.heap.pop();
        }
    }

    fn into_sorted(self) -> Vec<(DocAddress, i64, f32)> {
        let mut v: Vec<Ranked> = self.heap.into_iter().map(|r| r.0).collect();
        v.sort_by(|a, b| b.cmp(a));
        v.into_iter().map(|r| (r.addr, r.id, r.score)).collect()
    }
}

/// How many documents a query matches, and their facets.
struct Counted {
    total: usize,
    exact: bool,
    facets: Facets,
}

/// Counts matches without scoring, and stops after `limit`: the rest is estimated from the
/// share of the document space walked so far, as ids are in no relation to content. This
/// bounds the cost of a common term at a million questions to that of `limit` matches.
fn count_matches(searcher: &Searcher, query: &dyn Query, limit: usize) -> anyhow::Result<Counted> {
    let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
    let space: u64 = searcher
        .segment_readers()
        .iter()
        .map(|r| u64::from(r.max_doc()))
        .sum();
    let mut walked: u64 = 0;
    let mut total: usize = 0;
    let mut fruits = Vec::new();
    for (ord, reader) in searcher.segment_readers().iter().enumerate() {
        let mut facets = FacetCollector.for_segment(ord as SegmentOrdinal, reader)?;
        let mut scorer = weight.scorer(reader, 1.0)?;
        let alive = reader.alive_bitset();
        let mut doc = scorer.doc();
        while doc != TERMINATED && total <= limit {
            if alive.is_none_or(|a| a.is_alive(doc)) {
                total += 1;
                facets.collect(doc, 0.0);
            }
            doc = scorer.advance();
        }
        fruits.push(facets.harvest());
        if total > limit {
            // `doc` is the first document not looked at.
            walked += u64::from(doc.min(reader.max_doc()));
            let facets = FacetCollector.merge_fruits(fruits)?;
            let scale = space as f64 / walked.max(1) as f64;
            let estimate = |n: u64| (n as f64 * scale).round() as u64;
            return Ok(Counted {
                total: estimate(total as u64) as usize,
                exact: false,
                facets: Facets {
                    category: facets
                        .category
                        .into_iter()
                        .map(|(k, n)| (k, estimate(n)))
                        .collect(),
                    tag: facets
                        .tag
                        .into_iter()
                        .map(|(k, n)| (k, estimate(n)))
                        .collect(),
                    difficulty: facets
                        .difficulty
                        .into_iter()
                        .map(|(k, n)| (k, estimate(n)))
                        .collect(),
                },
            });
        }
        walked += u64::from(reader.max_doc());
    }
    Ok(Counted {
        total,
        exact: true,
        facets: FacetCollector.merge_fruits(fruits)?,
    })
}

/// Counts category, tag and difficulty values over every matching document, straight from
/// the fast-field columns (term ordinals, resolved to strings once per segment).
struct FacetCollector;

struct SegmentFacets {
    columns: [Option<StrColumn>; 3],
    counts: [Vec<u64>; 3],
}

impl Collector for FacetCollector {
    type Fruit = Facets;
    type Child = SegmentFacets;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentFacets> {
        let ff = reader.fast_fields();
        let columns = [ff.str("category")?, ff.str("tag")?, ff.str("difficulty")?];
        let counts = columns
            .each_ref()
            .map(|c| vec![0; c.as_ref().map_or(0, |c| c.num_terms())]);
        Ok(SegmentFacets { columns, counts })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Facets>) -> tantivy::Result<Facets> {
        let mut out = Facets::default();
        for f in fruits {
            for (into, from) in [
                (&mut out.category, f.category),
                (&mut out.tag, f.tag),
                (&mut out.difficulty, f.difficulty),
            ] {
                for (k, v) in from {
                    *into.entry(k).or_default() += v;
                }
            }
        }
        Ok(out)
    }
}

impl SegmentCollector for SegmentFacets {
    type Fruit = Facets;

    fn collect(&mut self, doc: DocId, _: Score) {
        for (column, counts) in self.columns.iter().zip(self.counts.iter_mut()) {
            if let Some(column) = column {
                for ord in column.term_ords(doc) {
                    counts[ord as usize] += 1;
                }
            }
        }
    }

    fn harvest(self) -> Facets {
        let [category, tag, difficulty] = std::array::from_fn(|i| {
            let mut map = BTreeMap::new();
            if let Some(column) = &self.columns[i] {
                let mut name = String::new();
                for (ord, n) in self.counts[i].iter().enumerate().filter(|(_, n)| **n > 0) {
                    if column.ord_to_str(ord as u64, &mut name).unwrap_or(false) {
                        map.insert(name.clone(), *n);
                    }
                }
            }
            map
        });
        Facets {
            category,
            tag,
            difficulty,
        }
    }
}

impl Highlighter {
    fn new(searcher: &Searcher, query: &dyn Query, fields: &Fields) -> anyhow::Result<Self> {
        let title = snippet_generator(searcher, query, fields.title, 10_000)?;
        let answers = snippet_generator(searcher, query, fields.answers, ANSWER_SNIPPET_CHARS)?;
        let mut answer_terms = Vec::new();
        query.query_terms(&mut |term, _| {
            if term.field() == fields.answers
                && let Some(text) = term.value().as_str()
            {
                answer_terms.push(text.to_string());
            }
        });
        Ok(Self {
            title: Some(title),
            answers: Some(answers),
            answer_terms,
        })
    }

    /// The part of `text` worth segmenting for a snippet: from just before the first match of
    /// a query term, a few fragments long. Segmenting a whole answer (up to 500,000
    /// characters) per hit would make a search's cost depend on the answers' length.
    fn answer_window(&self, text: &str) -> Range<usize> {
        let lower = text.to_ascii_lowercase();
        let first = self
            .answer_terms
            .iter()
            .filter_map(|t| lower.find(t.as_str()))
            .min()
            .unwrap_or(0);
        let start = floor_char_boundary(text, first.saturating_sub(ANSWER_WINDOW_BEFORE));
        let end = floor_char_boundary(text, (first + ANSWER_WINDOW_AFTER).min(text.len()));
        start..end
    }

    /// The whole title with matches marked.
    pub fn title(&self, title: &str) -> String {
        match &self.title {
            Some(g) => {
                let s = g.snippet(title);
                if s.highlighted().is_empty() {
                    escape_html(title)
                } else {
                    // The title generator's window is wider than any title: the fragment is it.
                    render(title, &shift(s.highlighted(), s.fragment_range().start))
                }
            }
            None => escape_html(title),
        }
    }

    /// The best fragment of the answers with matches marked, or their opening when none match.
    pub fn answer(&self, answers: &[String]) -> String {
        let text = answers.join("\n");
        if let Some(g) = &self.answers {
            let window = self.answer_window(&text);
            let s = g.snippet(&text[window.clone()]);
            if !s.highlighted().is_empty() {
                let range =
                    shift(std::slice::from_ref(&s.fragment_range()), window.start).remove(0);
                let mut html = String::new();
                if range.start > 0 {
                    html.push('…');
                }
                html.push_str(&render(s.fragment(), s.highlighted()));
                if range.end < text.len() {
                    html.push('…');
                }
                return html;
            }
        }
        let opening: String = text.chars().take(ANSWER_SNIPPET_CHARS).collect();
        let mut html = escape_html(&opening);
        if opening.len() < text.len() {
            html.push('…');
        }
        html
    }
}

/// As tantivy's `SnippetGenerator::create`, with the tokenizer that keeps tokens in offset
/// order.
fn snippet_generator(
    searcher: &Searcher,
    query: &dyn Query,
    field: Field,
    max_chars: usize,
) -> anyhow::Result<SnippetGenerator> {
    let mut terms: BTreeMap<String, f32> = BTreeMap::new();
    let mut failed = None;
    query.query_terms(&mut |term, _| {
        if term.field() != field {
            return;
        }
        let value = term.value();
        let Some(text) = value.as_str() else {
            return;
        };
        match searcher.doc_freq(term) {
            Ok(0) => {}
            Ok(df) => {
                terms.insert(text.to_string(), 1.0 / (1.0 + df as f32));
            }
            Err(e) => failed = Some(e),
        }
    });
    if let Some(e) = failed {
        return Err(e.into());
    }
    let tokenizer = TextAnalyzer::from(SnippetTokenizer::default());
    Ok(SnippetGenerator::new(terms, tokenizer, field, max_chars))
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn shift(ranges: &[Range<usize>], by: usize) -> Vec<Range<usize>> {
    ranges.iter().map(|r| r.start + by..r.end + by).collect()
}

/// `text` HTML-escaped with the byte `ranges` wrapped in `<mark>`.
fn render(text: &str, ranges: &[Range<usize>]) -> String {
    let mut ranges: Vec<Range<usize>> = ranges
        .iter()
        .filter(|r| r.start < r.end && r.end <= text.len())
        .cloned()
        .collect();
    ranges.sort_by_key(|r| (r.start, r.end));
    // Search-mode segmentation yields a word and the words inside it: mark their union.
    let mut merged: Vec<Range<usize>> = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start < last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    let mut html = String::with_capacity(text.len() + 16 * merged.len());
    let mut at = 0;
    for r in merged {
        if !text.is_char_boundary(r.start) || !text.is_char_boundary(r.end) {
            continue;
        }
        html.push_str(&escape_html(&text[at..r.start]));
        html.push_str("<mark>");
        html.push_str(&escape_html(&text[r.start..r.end]));
        html.push_str("</mark>");
        at = r.end;
    }
    html.push_str(&escape_html(&text[at..]));
    html
}

/// Escapes everything that could start markup or end an attribute.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_escapes_everything_but_the_marks() {
        let text = "<b>GMP</b> & \"x\"";
        let marks: Vec<Range<usize>> = std::iter::once(3..6).collect();
        let html = render(text, &marks);
        assert_eq!(
            html,
            "&lt;b&gt;<mark>GMP</mark>&lt;/b&gt; &amp; &quot;x&quot;"
        );
    }

    #[test]
    fn overlapping_ranges_merge_and_bad_ones_are_skipped_not_panicked_on() {
        let text = "一致性hash";
        assert_eq!(
            render(text, &[0..6, 0..9, 9..13]),
            "<mark>一致性</mark><mark>hash</mark>"
        );
        assert_eq!(render("写屏障", &[1..4, 0..100]), "写屏障");
    }

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

#[cfg(test)]
mod pruning_tests {
    use super::*;
    use crate::search::{IndexDoc, Synonyms};
    use rand::rngs::StdRng;
    use rand::seq::IndexedRandom;
    use rand::{Rng, SeedableRng};

    const WORDS: &[&str] = &[
        "goroutine",
        "channel",
        "调度器",
        "垃圾回收",
        "内存",
        "分布式",
        "一致性",
        "mutex",
        "select",
        "切片",
        "扩容",
        "哈希",
        "raft",
        "选主",
        "死锁",
        "接口",
        "反射",
        "协程",
    ];

    /// An index of `n` documents whose texts are random draws from a small vocabulary, in
    /// several commits (so several segments) and with some deletions.
    fn random_index(n: usize) -> (tempfile::TempDir, SearchIndex) {
        let (dir, index) = index_in_batches(n, n / 4);
        let mut rng = StdRng::seed_from_u64(8);
        let gone: Vec<i64> = (0..n / 10)
            .map(|_| rng.random_range(1..=n as i64))
            .collect();
        index.apply(&gone, &[], 99).unwrap();
        (dir, index)
    }

    /// The same `n` documents every time, committed `batch` at a time.
    fn index_in_batches(n: usize, batch: usize) -> (tempfile::TempDir, SearchIndex) {
        let dir = tempfile::tempdir().unwrap();
        let (index, _) = SearchIndex::open(&dir.path().join("index"), "test").unwrap();
        let mut rng = StdRng::seed_from_u64(7);
        let mut text = |len: usize| -> String {
            (0..len)
                .map(|_| *WORDS.choose(&mut rng).unwrap())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let docs: Vec<IndexDoc> = (0..n)
            .map(|i| IndexDoc {
                id: i as i64 + 1,
                title: text(1 + i % 4),
                answers: vec![text(3 + i % 23)],
                tags: vec![],
                category: ["go", "distributed"][i % 2].into(),
                difficulty: ["easy", "medium", "hard"][i % 3].into(),
            })
            .collect();
        for (i, chunk) in docs.chunks(batch).enumerate() {
            index.apply(&[], chunk, i as i64 + 1).unwrap();
        }
        (dir, index)
    }

    fn query(text: &str, category: Option<&str>) -> SearchQuery {
        SearchQuery {
            text: text.into(),
            category: category.map(|c| crate::domain::Slug::parse(c).unwrap()),
            tag: None,
            difficulty: None,
            limit: 10,
            offset: 0,
        }
    }

    #[test]
    fn pruned_top_hits_are_exactly_those_of_exhaustive_scoring() {
        let (_dir, index) = random_index(4000);
        let searcher = index.reader.searcher();
        for text in [
            "goroutine 调度器",
            "channel select 死锁",
            "raft 选主 一致性 分布式",
            "切片扩容",
            "gorutine channel",
            "哈希 mutex 反射 接口 协程 内存",
        ] {
            for category in [None, Some("go")] {
                let req = query(text, category);
                let parts = index.text_parts(&searcher, &req.text, &Synonyms::default());
                let pruned = MaxScoreQuery::new(parts, index.filters(&req));
                let plain = pruned.plain();
                for k in [1, 10, 57] {
                    let top = TopDocs::with_limit(k).order_by_score();
                    let a = searcher.search(&pruned, &top).unwrap();
                    let b = searcher.search(&plain, &top).unwrap();
                    assert_eq!(a.len(), b.len(), "{text} {category:?} top {k}");
                    // Scores agree rank by rank (sums in another order round differently),
                    // and every hit clearly above the last one is in both.
                    for (x, y) in a.iter().zip(&b) {
                        assert!((x.0 - y.0).abs() < 1e-3, "{text}: {} vs {}", x.0, y.0);
                    }
                    let last = b.last().map_or(0.0, |h| h.0);
                    let clear = |v: &[(f32, DocAddress)]| {
                        let mut d: Vec<DocAddress> = v
                            .iter()
                            .filter(|h| h.0 > last + 1e-3)
                            .map(|h| h.1)
                            .collect();
                        d.sort();
                        d
                    };
                    assert_eq!(clear(&a), clear(&b), "{text} {category:?} top {k}");
                }
            }
        }
    }

    #[test]
    fn the_same_questions_rank_identically_however_the_index_was_committed() {
        let (_a, one) = index_in_batches(3000, 3000);
        let (_b, many) = index_in_batches(3000, 97);
        let synonyms = Synonyms::default();
        for text in [
            "goroutine",
            "gorutine",
            "chanel select",
            "调度器 内存",
            "raft 选主 一致性",
            "协程",
            "mutex",
        ] {
            for limit in [1, 10, 40] {
                let mut req = query(text, None);
                req.limit = limit;
                let a = one.search(&req, &synonyms, false).unwrap();
                let b = many.search(&req, &synonyms, false).unwrap();
                assert_eq!(a.hits, b.hits, "{text} top {limit}");
                assert_eq!(a.total, b.total);
            }
        }
    }

    #[test]
    fn a_common_word_still_matches_beside_a_word_no_question_has() {
        // Large enough that common units are left out when rarer ones exist.
        let (_dir, index) = index_in_batches(COMMON_MIN_DOCS as usize, 10_000);
        let found = index
            .search(
                &query("goroutine qzxvbnw", None),
                &Synonyms::default(),
                false,
            )
            .unwrap();
        assert!(!found.relaxed);
        assert!(found.total > 1000, "{}", found.total);
    }

    #[test]
    fn counts_are_exact_up_to_the_limit_and_flagged_estimates_beyond() {
        let (_dir, index) = random_index(4000);
        let searcher = index.reader.searcher();
        let req = query("goroutine", None);
        let parts = index.text_parts(&searcher, &req.text, &Synonyms::default());
        let q = MaxScoreQuery::new(parts, vec![]);
        let exact = count_matches(&searcher, &q, usize::MAX).unwrap();
        assert!(exact.exact);
        assert!(exact.total > 1000, "{}", exact.total);
        let facet_sum: u64 = exact.facets.difficulty.values().sum();
        assert_eq!(facet_sum, exact.total as u64);

        let at_limit = count_matches(&searcher, &q, exact.total).unwrap();
        assert!(at_limit.exact);
        assert_eq!(at_limit.total, exact.total);

        let estimated = count_matches(&searcher, &q, exact.total / 3).unwrap();
        assert!(!estimated.exact);
        let error = (estimated.total as f64 - exact.total as f64).abs() / exact.total as f64;
        assert!(
            error < 0.2,
            "estimate {} for {}",
            estimated.total,
            exact.total
        );
        let cat = |c: &Counted| c.facets.category.get("go").copied().unwrap_or(0) as f64;
        assert!((cat(&estimated) - cat(&exact)).abs() / cat(&exact) < 0.25);
    }
}
