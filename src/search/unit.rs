//! `UnitQuery`: one thing the person asked for (a word, a bigram, a typo's neighbours, a
//! synonym), matched in several fields and scored as a coverage bonus plus BM25.
//!
//! The BM25 is our own rather than tantivy's `TermQuery` for two reasons: tantivy fixes `b` at
//! 0.75 for every field, which lets length normalisation bury long, thorough answers (here the
//! answers' length penalty is milder and capped), and a ranking must be explainable term by
//! term (`explain=true`), which needs each term's frequency and share.

use std::cell::RefCell;
use std::collections::HashMap;
use tantivy::fieldnorm::FieldNormReader;
use tantivy::postings::{Postings, SegmentPostings};
use tantivy::query::{EmptyScorer, EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, DocSet, Score, Searcher, SegmentReader, TERMINATED, Term};

const K1: Score = 1.2;

/// How a field's length discounts a match in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LengthNorm {
    /// BM25's `b`: 0 ignores length, 1 divides fully by the length ratio.
    pub b: Score,
    /// The length ratio (field length / average) is capped here, so a long answer is
    /// penalised like one `cap` times the average, no more.
    pub cap: Score,
}

/// One term of a unit in one field, with its global statistics.
#[derive(Debug, Clone)]
pub struct FieldTerm {
    pub term: Term,
    pub boost: Score,
    pub idf: Score,
    pub avg_len: Score,
    pub norm: LengthNorm,
    /// A match in the title earns the unit's title bonus.
    pub in_title: bool,
}

impl FieldTerm {
    /// `text` in `field`, with BM25 statistics from `stats`; `None` when no document has it.
    pub fn new(
        stats: &Stats<'_>,
        field: Field,
        text: &str,
        boost: Score,
        norm: LengthNorm,
        in_title: bool,
    ) -> Option<Self> {
        let term = Term::from_field_text(field, text);
        let df = stats.searcher.doc_freq(&term).ok()?;
        if df == 0 {
            return None;
        }
        Some(Self {
            term,
            boost,
            idf: idf(df, stats.docs.max(df as Score)),
            avg_len: stats.avg_len(field),
            norm,
            in_title,
        })
    }

    /// The most this term can add to any document.
    fn bound(&self) -> Score {
        self.boost * self.idf * (K1 + 1.0)
    }

    fn score(&self, tf: u32, len: u32) -> Score {
        let tf = tf as Score;
        let ratio = (len as Score / self.avg_len).min(self.norm.cap);
        let k = K1 * (1.0 - self.norm.b + self.norm.b * ratio);
        self.boost * self.idf * tf * (K1 + 1.0) / (tf + k)
    }
}

/// A searcher's document count and average field lengths, worked out once per query rather
/// than once per term.
pub struct Stats<'a> {
    searcher: &'a Searcher,
    docs: Score,
    avg_len: RefCell<HashMap<Field, Score>>,
}

impl<'a> Stats<'a> {
    pub fn new(searcher: &'a Searcher) -> Self {
        Self {
            searcher,
            docs: searcher.num_docs().max(1) as Score,
            avg_len: RefCell::default(),
        }
    }

    fn avg_len(&self, field: Field) -> Score {
        *self.avg_len.borrow_mut().entry(field).or_insert_with(|| {
            let readers = self.searcher.segment_readers();
            let tokens: u64 = readers
                .iter()
                .filter_map(|r| r.inverted_index(field).ok())
                .map(|i| i.total_num_tokens())
                .sum();
            let docs: u64 = readers.iter().map(|r| u64::from(r.max_doc())).sum();
            (tokens as Score / docs.max(1) as Score).max(1.0)
        })
    }
}

/// BM25's inverse document frequency.
pub fn idf(df: u64, n: Score) -> Score {
    let df = df as Score;
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}

/// Matches documents containing any of `terms`; scores `bonus` (+ `title_bonus` when one of
/// them is in the title) plus the BM25 of each term present.
#[derive(Debug, Clone)]
pub struct UnitQuery {
    pub terms: Vec<FieldTerm>,
    pub bonus: Score,
    pub title_bonus: Score,
}

impl UnitQuery {
    /// The most the unit can add to any document.
    pub fn bound(&self) -> Score {
        self.bonus + self.title_bonus + self.terms.iter().map(FieldTerm::bound).sum::<Score>()
    }
}

impl Query for UnitQuery {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        for t in &self.terms {
            visitor(&t.term, false);
        }
    }
}

impl Weight for UnitQuery {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        let mut cursors = Vec::with_capacity(self.terms.len());
        for (i, t) in self.terms.iter().enumerate() {
            let field = t.term.field();
            let Some(postings) = reader
                .inverted_index(field)?
                .read_postings(&t.term, IndexRecordOption::WithFreqs)?
            else {
                continue;
            };
            cursors.push(Cursor {
                term: i,
                postings,
                lengths: reader.get_fieldnorms_reader(field)?,
            });
        }
        if cursors.is_empty() {
            return Ok(Box::new(EmptyScorer));
        }
        let mut scorer = UnitScorer {
            unit: self.clone(),
            boost,
            cursors,
            doc: 0,
        };
        scorer.doc = scorer.min_doc();
        Ok(Box::new(scorer))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let mut scorer = self.scorer(reader, 1.0)?;
        if scorer.doc() > doc || scorer.seek(doc) != doc {
            return Ok(Explanation::new("no match", 0.0));
        }
        let mut e = Explanation::new("unit", scorer.score());
        let mut in_title = false;
        for t in &self.terms {
            let field = t.term.field();
            let Some(mut p) = reader
                .inverted_index(field)?
                .read_postings(&t.term, IndexRecordOption::WithFreqs)?
            else {
                continue;
            };
            if p.doc() > doc || p.seek(doc) != doc {
                continue;
            }
            let len = reader.get_fieldnorms_reader(field)?.fieldnorm(doc);
            in_title |= t.in_title;
            let mut d = Explanation::new_with_string(
                format!(
                    "{} in {}",
                    t.term.value().as_str().unwrap_or("?"),
                    reader.schema().get_field_name(field)
                ),
                t.score(p.term_freq(), len),
            );
            d.add_const("tf", p.term_freq() as Score);
            d.add_const("idf", t.idf);
            d.add_const("field length", len as Score);
            e.add_detail(d);
        }
        e.add_const("coverage", self.bonus);
        if in_title {
            e.add_const("title coverage", self.title_bonus);
        }
        Ok(e)
    }
}

struct Cursor {
    term: usize,
    postings: SegmentPostings,
    lengths: FieldNormReader,
}

struct UnitScorer {
    unit: UnitQuery,
    boost: Score,
    cursors: Vec<Cursor>,
    doc: DocId,
}

impl UnitScorer {
    fn min_doc(&self) -> DocId {
        self.cursors
            .iter()
            .map(|c| c.postings.doc())
            .min()
            .unwrap_or(TERMINATED)
    }
}

impl DocSet for UnitScorer {
    fn advance(&mut self) -> DocId {
        let doc = self.doc;
        for c in &mut self.cursors {
            if c.postings.doc() == doc {
                c.postings.advance();
            }
        }
        self.doc = self.min_doc();
        self.doc
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.doc >= target {
            return self.doc;
        }
        for c in &mut self.cursors {
            if c.postings.doc() < target {
                c.postings.seek(target);
            }
        }
        self.doc = self.min_doc();
        self.doc
    }

    fn doc(&self) -> DocId {
        self.doc
    }

    fn size_hint(&self) -> u32 {
        self.cursors
            .iter()
            .map(|c| c.postings.size_hint())
            .max()
            .unwrap_or(0)
    }
}

impl Scorer for UnitScorer {
    fn score(&mut self) -> Score {
        let doc = self.doc;
        let mut score = self.unit.bonus;
        let mut in_title = false;
        for c in &self.cursors {
            if c.postings.doc() == doc {
                let t = &self.unit.terms[c.term];
                in_title |= t.in_title;
                score += t.score(c.postings.term_freq(), c.lengths.fieldnorm(doc));
            }
        }
        if in_title {
            score += self.unit.title_bonus;
        }
        score * self.boost
    }
}
