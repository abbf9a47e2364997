//! `CoordQuery`: the inner query's score plus a constant for every document it matches.
//!
//! Ranking wants each matched query unit to add a large constant (so documents matching more
//! units always come first) on top of its BM25 score. Expressed with stock queries that is a
//! `ConstScoreQuery` next to the scoring query, which walks the same postings twice; this
//! wrapper walks them once.

use tantivy::query::{EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{COLLECT_BLOCK_BUFFER_LEN, DocId, DocSet, Score, SegmentReader, Term};

#[derive(Debug)]
pub struct CoordQuery {
    inner: Box<dyn Query>,
    bonus: Score,
}

impl CoordQuery {
    pub fn new(inner: Box<dyn Query>, bonus: Score) -> Self {
        Self { inner, bonus }
    }
}

impl Clone for CoordQuery {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.box_clone(),
            bonus: self.bonus,
        }
    }
}

impl Query for CoordQuery {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let inner = self.inner.weight(enable_scoring)?;
        if !enable_scoring.is_scoring_enabled() {
            return Ok(inner);
        }
        Ok(Box::new(CoordWeight {
            inner,
            bonus: self.bonus,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        self.inner.query_terms(visitor)
    }
}

struct CoordWeight {
    inner: Box<dyn Weight>,
    bonus: Score,
}

impl Weight for CoordWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(Box::new(CoordScorer {
            inner: self.inner.scorer(reader, boost)?,
            bonus: self.bonus * boost,
        }))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let inner = self.inner.explain(reader, doc)?;
        let mut e = Explanation::new("coordination bonus plus", inner.value() + self.bonus);
        e.add_detail(inner);
        Ok(e)
    }

    fn count(&self, reader: &SegmentReader) -> tantivy::Result<u32> {
        self.inner.count(reader)
    }
}

struct CoordScorer {
    inner: Box<dyn Scorer>,
    bonus: Score,
}

impl DocSet for CoordScorer {
    fn advance(&mut self) -> DocId {
        self.inner.advance()
    }
    fn seek(&mut self, target: DocId) -> DocId {
        self.inner.seek(target)
    }
    fn fill_buffer(&mut self, buffer: &mut [DocId; COLLECT_BLOCK_BUFFER_LEN]) -> usize {
        self.inner.fill_buffer(buffer)
    }
    fn doc(&self) -> DocId {
        self.inner.doc()
    }
    fn size_hint(&self) -> u32 {
        self.inner.size_hint()
    }
    fn cost(&self) -> u64 {
        self.inner.cost()
    }
}

impl Scorer for CoordScorer {
    fn score(&mut self) -> Score {
        self.inner.score() + self.bonus
    }
}
