//! The read side's entry points: `search` (plan, count, relax when nothing matched, collect
//! the page, explain), `suggest` and `similar`.
//!
//! The work itself lives beside this: planning in `plan.rs` and `relaxed.rs`, pruned scoring
//! in `maxscore.rs`, top-k and counting in `collect.rs`, facets in `facets.rs`, marking the
//! hits in `highlight.rs`.

use super::SearchIndex;
use super::analyzer::analyze;
use super::collect::{EXACT_COUNT, count_matches};
use super::facets::Facets;
use super::highlight::Highlighter;
use super::maxscore::{MaxScoreQuery, PartScore};
use super::plan::MAX_TERMS;
use super::synonyms::Synonyms;
use crate::domain::SearchQuery;
use anyhow::anyhow;
use std::collections::HashSet;
use tantivy::collector::TopDocs;
use tantivy::query::{
    BooleanQuery, BoostQuery, EmptyQuery, MoreLikeThisQuery, Occur, Query, RegexQuery, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption, OwnedValue};
use tantivy::{DocAddress, Searcher, Term};

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
            highlighter: Highlighter::none(),
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
        // Ties by question id, as search breaks them: the same order on every replica and
        // store, however its index happens to be segmented.
        let searcher = self.reader.searcher();
        let top = self.top(&searcher, &BooleanQuery::new(clauses), limit.max(1))?;
        Ok(top.into_iter().map(|(_, id, _)| id).collect())
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
