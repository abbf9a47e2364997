//! User text → tantivy query, and the read side: search with facets, highlights, suggest and
//! similar questions.
//!
//! What a person typed is never parsed as a query language: it is analyzed into terms and the
//! query is built from them, so no input can be a syntax error and word order never matters.

use super::SearchIndex;
use super::analyzer::{QueryUnit, analyze, analyze_query};
use super::coord::CoordQuery;
use super::maxscore::{MaxScoreQuery, Part};
use super::schema::Fields;
use crate::domain::SearchQuery;
use anyhow::anyhow;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::Range;
use tantivy::collector::{Collector, SegmentCollector, TopDocs};
use tantivy::columnar::StrColumn;
use tantivy::query::{
    Bm25Weight, BooleanQuery, BoostQuery, ConstScoreQuery, EmptyQuery, EnableScoring,
    FuzzyTermQuery, MoreLikeThisQuery, Occur, PhraseQuery, Query, RegexQuery, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption, OwnedValue};
use tantivy::snippet::SnippetGenerator;
use tantivy::{
    DocAddress, DocId, DocSet, Score, Searcher, SegmentOrdinal, SegmentReader, TERMINATED, Term,
};

/// More distinct terms than this are ignored: it bounds the cost of a pasted paragraph.
const MAX_TERMS: usize = 48;
/// Added once per query term a document contains exactly. It outweighs any BM25 difference,
/// so documents matching more of the terms always rank above those matching fewer.
const COORDINATION: f32 = 1000.0;
/// The same for a term matched only within the typo distance.
const FUZZY_COORDINATION: f32 = 400.0;
/// Index words a typo is expanded to, per field.
const MAX_EXPANSIONS: usize = 16;
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

    /// The words of the index within typo distance `d` of `w` (not `w` itself), per field,
    /// with the field's boost discounted by the edit distance: a typo match scores like the
    /// word it matched (BM25), less for each edit, as Lucene rewrites a fuzzy query. At most
    /// `MAX_EXPANSIONS` per field, nearest and most frequent first, ties by the word itself,
    /// so the choice never depends on how the index happens to be segmented.
    fn fuzzy_variants(&self, searcher: &Searcher, w: &str, d: u8) -> Vec<(Field, String, f32)> {
        let f = &self.fields;
        let Ok(automaton) =
            FuzzyTermQuery::new(Term::from_field_text(f.title, w), d, true).automaton()
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (field, boost) in [
            (f.title, TITLE_BOOST),
            (f.tags_text, TAGS_BOOST),
            (f.answers, 1.0),
        ] {
            let mut found: BTreeSet<String> = BTreeSet::new();
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
            let mut ranked: Vec<(usize, u64, String)> = found
                .into_iter()
                .map(|t| {
                    let df = searcher
                        .doc_freq(&Term::from_field_text(field, &t))
                        .unwrap_or(0);
                    (edit_distance(w, &t), df, t)
                })
                .filter(|(_, df, _)| *df > 0)
                .collect();
            ranked.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
            out.extend(
                ranked
                    .into_iter()
                    .take(MAX_EXPANSIONS)
                    .map(|(dist, _, t)| (field, t, boost / (1.0 + dist as f32))),
            );
        }
        out
    }

    /// The scoring parts of a search, built from the analyzed units of `text`, each with an
    /// upper bound of its score (for pruning, see `maxscore`).
    fn text_parts(&self, searcher: &Searcher, text: &str) -> Vec<Part> {
        let f = &self.fields;
        let analyzed = analyze_query(text);
        let units: Vec<&QueryUnit> = analyzed.units.iter().take(MAX_TERMS).collect();
        if units.is_empty() {
            return Vec::new();
        }
        let num_docs = searcher.num_docs();
        let common_limit = if num_docs >= COMMON_MIN_DOCS {
            (num_docs as f64 * COMMON_SHARE) as u64
        } else {
            u64::MAX
        };
        let is_common: Vec<bool> = units
            .iter()
            .map(|u| self.unit_doc_freq(searcher, u) > common_limit)
            .collect();
        // When every unit is common there is nothing rarer to lean on: all of them match.
        let all_common = is_common.iter().all(|c| *c);
        let bound = |terms: &[(Field, &str, f32)]| -> Score {
            terms
                .iter()
                .map(|(field, text, boost)| {
                    let term = Term::from_field_text(*field, text);
                    Bm25Weight::for_terms(searcher, std::slice::from_ref(&term))
                        .map_or(COORDINATION, |w| w.max_score() * boost)
                })
                .sum()
        };
        let scoring = |terms: &[(Field, &str, f32)]| Part {
            query: should(
                terms
                    .iter()
                    .map(|(field, text, boost)| term_query(*field, text, *boost))
                    .collect(),
            ),
            bound: bound(terms),
        };
        let word = |w: &str| -> Part {
            scoring(&[
                (f.title, w, TITLE_BOOST),
                (f.tags_text, w, TAGS_BOOST),
                (f.answers, w, 1.0),
            ])
        };
        let is_rare_word =
            |w: &str| self.unit_doc_freq(searcher, &QueryUnit::Word(w.to_string())) <= common_limit;
        let mut parts: Vec<Part> = Vec::new();
        for (u, common) in units.into_iter().zip(is_common) {
            if common && !all_common {
                continue;
            }
            let unit = match u {
                QueryUnit::Word(w) => {
                    // Typos are looked for only where they can matter: a common word was
                    // evidently typed right, and its neighbours would only cost time.
                    if !common && let Some(d) = fuzzy_distance(w) {
                        let variants = self.fuzzy_variants(searcher, w, d);
                        if !variants.is_empty() {
                            let terms: Vec<(Field, &str, f32)> = variants
                                .iter()
                                .map(|(field, text, boost)| (*field, text.as_str(), *boost))
                                .collect();
                            let typo = scoring(&terms);
                            parts.push(Part {
                                query: Box::new(CoordQuery::new(typo.query, FUZZY_COORDINATION)),
                                bound: typo.bound + FUZZY_COORDINATION,
                            });
                        }
                    }
                    word(w)
                }
                QueryUnit::Bigram(b) => scoring(&[
                    (f.title_bigrams, b, TITLE_BOOST),
                    (f.answers_bigrams, b, 1.0),
                ]),
            };
            parts.push(Part {
                query: Box::new(CoordQuery::new(unit.query, COORDINATION)),
                bound: unit.bound + COORDINATION,
            });
        }
        for w in analyzed.cjk_words.iter().take(MAX_TERMS) {
            if all_common || is_rare_word(w) {
                parts.push(word(w));
            }
        }
        // Words typed next to each other score higher when they stand together in the title.
        let terms = analyze(text);
        let window: Vec<&String> = terms.iter().take(MAX_TERMS).collect();
        for pair in window.windows(2) {
            if pair[0] == pair[1] || !(all_common || is_rare_word(pair[0]) || is_rare_word(pair[1]))
            {
                continue;
            }
            let terms = [
                Term::from_field_text(f.title, pair[0]),
                Term::from_field_text(f.title, pair[1]),
            ];
            let phrase_bound = Bm25Weight::for_terms(searcher, &terms)
                .map_or(COORDINATION, |w| w.max_score() * PHRASE_BOOST);
            let [a, b] = terms;
            let phrase = PhraseQuery::new_with_offset_and_slop(vec![(0, a), (1, b)], 1);
            parts.push(Part {
                query: Box::new(BoostQuery::new(Box::new(phrase), PHRASE_BOOST)),
                bound: phrase_bound,
            });
        }
        parts
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
    /// `EXACT_COUNT` matches, estimated beyond).
    pub fn search(&self, req: &SearchQuery) -> anyhow::Result<SearchHits> {
        let searcher = self.reader.searcher();
        let parts = self.text_parts(&searcher, &req.text);
        if parts.is_empty() {
            return Ok(SearchHits {
                total: 0,
                total_exact: true,
                hits: Vec::new(),
                facets: Facets::default(),
                highlighter: Highlighter {
                    title: None,
                    answers: None,
                    answer_terms: Vec::new(),
                },
            });
        }
        let query = MaxScoreQuery::new(parts, self.filters(req));
        let highlighter = Highlighter::new(&searcher, &query, &self.fields)?;
        let top = TopDocs::with_limit(req.limit.max(1))
            .and_offset(req.offset)
            .order_by_score();
        let top = searcher.search(&query, &top)?;
        let hits = top
            .into_iter()
            .map(|(score, addr)| Ok((self.id_of(&searcher, addr)?, score)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let counted = count_matches(&searcher, &query, EXACT_COUNT)?;
        Ok(SearchHits {
            total: counted.total,
            total_exact: counted.exact,
            hits: if req.limit == 0 { Vec::new() } else { hits },
            facets: counted.facets,
            highlighter,
        })
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
        let mut title = SnippetGenerator::create(searcher, query, fields.title)?;
        title.set_max_num_chars(10_000);
        let mut answers = SnippetGenerator::create(searcher, query, fields.answers)?;
        answers.set_max_num_chars(ANSWER_SNIPPET_CHARS);
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
    use crate::search::IndexDoc;
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
        let dir = tempfile::tempdir().unwrap();
        let (index, _) = SearchIndex::open(&dir.path().join("index")).unwrap();
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
        for (batch, chunk) in docs.chunks(n / 4).enumerate() {
            index.apply(&[], chunk, batch as i64 + 1).unwrap();
        }
        let mut rng = StdRng::seed_from_u64(8);
        let gone: Vec<i64> = (0..n / 10)
            .map(|_| rng.random_range(1..=n as i64))
            .collect();
        index.apply(&gone, &[], 99).unwrap();
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
                let parts = index.text_parts(&searcher, &req.text);
                let pruned = MaxScoreQuery::new(parts, index.filters(&req));
                let plain = pruned.plain();
                for k in [1, 10, 57] {
                    let top = TopDocs::with_limit(k).order_by_score();
                    let a = searcher.search(&pruned, &top).unwrap();
                    let b = searcher.search(&plain, &top).unwrap();
                    let docs = |v: &[(f32, DocAddress)]| v.iter().map(|h| h.1).collect::<Vec<_>>();
                    assert_eq!(docs(&a), docs(&b), "{text} {category:?} top {k}");
                    for (x, y) in a.iter().zip(&b) {
                        assert!((x.0 - y.0).abs() < 1e-3, "{text}: {} vs {}", x.0, y.0);
                    }
                }
            }
        }
    }

    #[test]
    fn counts_are_exact_up_to_the_limit_and_flagged_estimates_beyond() {
        let (_dir, index) = random_index(4000);
        let searcher = index.reader.searcher();
        let req = query("goroutine", None);
        let q = MaxScoreQuery::new(index.text_parts(&searcher, &req.text), vec![]);
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
