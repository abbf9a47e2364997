//! User text → tantivy query, and the read side: search with facets, highlights, suggest and
//! similar questions.
//!
//! What a person typed is never parsed as a query language: it is analyzed into terms and the
//! query is built from them, so no input can be a syntax error and word order never matters.

use super::SearchIndex;
use super::analyzer::{QueryUnit, analyze, analyze_query};
use super::coord::CoordQuery;
use super::schema::Fields;
use crate::domain::SearchQuery;
use anyhow::anyhow;
use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use tantivy::collector::{Collector, Count, SegmentCollector, TopDocs};
use tantivy::columnar::StrColumn;
use tantivy::query::{
    BooleanQuery, BoostQuery, ConstScoreQuery, EmptyQuery, FuzzyTermQuery, MoreLikeThisQuery,
    Occur, PhraseQuery, Query, RegexQuery, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption, OwnedValue};
use tantivy::snippet::SnippetGenerator;
use tantivy::{DocAddress, DocId, Score, Searcher, SegmentOrdinal, SegmentReader, Term};

/// More distinct terms than this are ignored: it bounds the cost of a pasted paragraph.
const MAX_TERMS: usize = 48;
/// Added once per query term a document contains exactly. It outweighs any BM25 difference,
/// so documents matching more of the terms always rank above those matching fewer.
const COORDINATION: f32 = 1000.0;
/// The same for a term matched only within the typo distance.
const FUZZY_COORDINATION: f32 = 400.0;
const TITLE_BOOST: f32 = 3.0;
const TAGS_BOOST: f32 = 2.0;
const ANSWER_SNIPPET_CHARS: usize = 160;
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
    pub hits: Vec<(i64, f32)>,
    pub facets: Facets,
    pub highlighter: Highlighter,
}

/// Marks the query's terms in texts read back from the database.
pub struct Highlighter {
    title: Option<SnippetGenerator>,
    answers: Option<SnippetGenerator>,
}

fn is_latin_word(t: &str) -> bool {
    t.chars().all(|c| c.is_ascii_alphanumeric())
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

    /// The scoring part of a search, built from the analyzed units of `text`.
    fn text_query(&self, searcher: &Searcher, text: &str) -> Option<Box<dyn Query>> {
        let f = &self.fields;
        let analyzed = analyze_query(text);
        let units: Vec<&QueryUnit> = analyzed.units.iter().take(MAX_TERMS).collect();
        if units.is_empty() {
            return None;
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
        let word_scoring = |w: &str| {
            should(vec![
                term_query(f.title, w, TITLE_BOOST),
                term_query(f.tags_text, w, TAGS_BOOST),
                term_query(f.answers, w, 1.0),
            ])
        };
        let is_rare_word =
            |w: &str| self.unit_doc_freq(searcher, &QueryUnit::Word(w.to_string())) <= common_limit;
        let mut clauses: Vec<Box<dyn Query>> = Vec::new();
        for (u, common) in units.into_iter().zip(is_common) {
            if common && !all_common {
                continue;
            }
            let scoring = match u {
                QueryUnit::Word(w) => {
                    // Typos are looked for only where they can matter: a common word was
                    // evidently typed right, and its neighbours would only cost time.
                    if !common && let Some(d) = fuzzy_distance(w) {
                        let fuzzy = |field| -> Box<dyn Query> {
                            Box::new(FuzzyTermQuery::new(
                                Term::from_field_text(field, w),
                                d,
                                true,
                            ))
                        };
                        clauses.push(Box::new(ConstScoreQuery::new(
                            should(vec![fuzzy(f.title), fuzzy(f.tags_text), fuzzy(f.answers)]),
                            FUZZY_COORDINATION,
                        )));
                    }
                    word_scoring(w)
                }
                QueryUnit::Bigram(b) => should(vec![
                    term_query(f.title_bigrams, b, TITLE_BOOST),
                    term_query(f.answers_bigrams, b, 1.0),
                ]),
            };
            clauses.push(Box::new(CoordQuery::new(scoring, COORDINATION)));
        }
        for w in analyzed.cjk_words.iter().take(MAX_TERMS) {
            if all_common || is_rare_word(w) {
                clauses.push(word_scoring(w));
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
            let phrase = PhraseQuery::new_with_offset_and_slop(
                vec![
                    (0, Term::from_field_text(f.title, pair[0])),
                    (1, Term::from_field_text(f.title, pair[1])),
                ],
                1,
            );
            clauses.push(Box::new(BoostQuery::new(Box::new(phrase), 2.0)));
        }
        Some(should(clauses))
    }

    fn filters(&self, req: &SearchQuery) -> Vec<(Occur, Box<dyn Query>)> {
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
            Some((
                Occur::Must,
                Box::new(ConstScoreQuery::new(Box::new(q), 0.0)) as Box<dyn Query>,
            ))
        })
        .collect()
    }

    /// Runs a search: one page of ids, the total, and facets over every match.
    pub fn search(&self, req: &SearchQuery) -> anyhow::Result<SearchHits> {
        let searcher = self.reader.searcher();
        let Some(text_query) = self.text_query(&searcher, &req.text) else {
            return Ok(SearchHits {
                total: 0,
                hits: Vec::new(),
                facets: Facets::default(),
                highlighter: Highlighter {
                    title: None,
                    answers: None,
                },
            });
        };
        let highlighter = Highlighter::new(&searcher, text_query.as_ref(), &self.fields)?;
        let mut clauses = vec![(Occur::Must, text_query)];
        clauses.extend(self.filters(req));
        let query = BooleanQuery::new(clauses);

        let top = TopDocs::with_limit(req.limit.max(1))
            .and_offset(req.offset)
            .order_by_score();
        let (top, total, facets) = searcher.search(&query, &(top, Count, FacetCollector))?;
        let hits = top
            .into_iter()
            .map(|(score, addr)| Ok((self.id_of(&searcher, addr)?, score)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(SearchHits {
            total,
            hits: if req.limit == 0 { Vec::new() } else { hits },
            facets,
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
        Ok(Self {
            title: Some(title),
            answers: Some(answers),
        })
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
            let s = g.snippet(&text);
            if !s.highlighted().is_empty() {
                let range = s.fragment_range();
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
    fn typo_distance_grows_with_length_and_spares_short_and_cjk_terms() {
        assert_eq!(fuzzy_distance("gmp"), None);
        assert_eq!(fuzzy_distance("mutex"), Some(1));
        assert_eq!(fuzzy_distance("gomaxprocs"), Some(2));
        assert_eq!(fuzzy_distance("垃圾回收机制"), None);
        assert_eq!(fuzzy_distance("go1.14"), None);
    }
}
