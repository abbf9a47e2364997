//! `MaxScoreQuery`: a sum of scoring parts, some documents required by filters, whose top-k
//! collection skips documents that cannot reach the current k-th score.
//!
//! A search is a disjunction of parts (one per query unit, each with its coordination bonus,
//! plus typo, word and phrase parts), and each part's score has a known upper bound. tantivy's
//! block-max WAND prunes only unions of plain term scorers, so a union with coordination
//! bonuses would be scored exhaustively: every document containing any unit. This is the
//! MaxScore algorithm (Turtle & Flood): once the k-th best score exceeds the sum of the bounds
//! of the weakest parts, a document matching only those parts cannot enter the top k, so only
//! the other ("essential") parts' postings are walked, and the weak parts are merely probed
//! for the candidates they produce. With bonuses that dominate BM25, the essential parts soon
//! shrink to the rarest unit. The hits are exactly those of exhaustive scoring.

use tantivy::query::{
    BooleanQuery, EnableScoring, Explanation, Occur, Query, Scorer, Weight, intersect_scorers,
};
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED, Term};

/// One scoring part and an upper bound of any score it gives a document.
pub struct Part {
    pub query: Box<dyn Query>,
    pub bound: Score,
}

impl Clone for Part {
    fn clone(&self) -> Self {
        Self {
            query: self.query.box_clone(),
            bound: self.bound,
        }
    }
}

impl std::fmt::Debug for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Part")
            .field("query", &self.query)
            .field("bound", &self.bound)
            .finish()
    }
}

/// Matches documents matching any part and every filter; scores them by the parts' sum.
#[derive(Debug)]
pub struct MaxScoreQuery {
    parts: Vec<Part>,
    filters: Vec<Box<dyn Query>>,
}

impl MaxScoreQuery {
    pub fn new(parts: Vec<Part>, filters: Vec<Box<dyn Query>>) -> Self {
        Self { parts, filters }
    }

    /// The same documents and scores as a plain boolean query, without pruning.
    pub fn plain(&self) -> BooleanQuery {
        let union = BooleanQuery::new(
            self.parts
                .iter()
                .map(|p| (Occur::Should, p.query.box_clone()))
                .collect(),
        );
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, Box::new(union))];
        clauses.extend(self.filters.iter().map(|f| (Occur::Must, f.box_clone())));
        BooleanQuery::new(clauses)
    }
}

impl Clone for MaxScoreQuery {
    fn clone(&self) -> Self {
        Self {
            parts: self.parts.clone(),
            filters: self.filters.iter().map(|f| f.box_clone()).collect(),
        }
    }
}

impl Query for MaxScoreQuery {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let plain = self.plain().weight(enable_scoring)?;
        if !enable_scoring.is_scoring_enabled() {
            return Ok(plain);
        }
        let mut parts = self
            .parts
            .iter()
            .map(|p| Ok((p.query.weight(enable_scoring)?, p.bound)))
            .collect::<tantivy::Result<Vec<_>>>()?;
        // Weakest first: the non-essential parts are always a prefix.
        parts.sort_by(|a, b| a.1.total_cmp(&b.1));
        let filters = self
            .filters
            .iter()
            .map(|f| f.weight(enable_scoring))
            .collect::<tantivy::Result<Vec<_>>>()?;
        Ok(Box::new(MaxScoreWeight {
            plain,
            parts,
            filters,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        for p in &self.parts {
            p.query.query_terms(visitor);
        }
    }
}

struct MaxScoreWeight {
    plain: Box<dyn Weight>,
    parts: Vec<(Box<dyn Weight>, Score)>,
    filters: Vec<Box<dyn Weight>>,
}

impl Weight for MaxScoreWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        self.plain.scorer(reader, boost)
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        self.plain.explain(reader, doc)
    }

    fn count(&self, reader: &SegmentReader) -> tantivy::Result<u32> {
        self.plain.count(reader)
    }

    fn for_each_pruning(
        &self,
        mut threshold: Score,
        reader: &SegmentReader,
        callback: &mut dyn FnMut(DocId, Score) -> Score,
    ) -> tantivy::Result<()> {
        let mut scorers = self
            .parts
            .iter()
            .map(|(w, _)| w.scorer(reader, 1.0))
            .collect::<tantivy::Result<Vec<_>>>()?;
        // Rounding in the parts' own sums must never make a bound too tight.
        let mut prefix = Vec::with_capacity(self.parts.len());
        let mut sum: Score = 0.0;
        for (_, bound) in &self.parts {
            sum += bound * 1.001 + 1e-3;
            prefix.push(sum);
        }
        let mut filter = if self.filters.is_empty() {
            None
        } else {
            let fs = self
                .filters
                .iter()
                .map(|f| f.scorer(reader, 1.0))
                .collect::<tantivy::Result<Vec<_>>>()?;
            Some(intersect_scorers(fs, reader.num_docs()))
        };
        // Parts before `essential` cannot lift a document past `threshold` on their own.
        let first_essential = |threshold: Score| prefix.partition_point(|p| *p <= threshold);
        let mut essential = first_essential(threshold);
        while essential < scorers.len() {
            let doc = scorers[essential..]
                .iter()
                .map(|s| s.doc())
                .min()
                .unwrap_or(TERMINATED);
            if doc == TERMINATED {
                break;
            }
            let wanted = match filter.as_mut() {
                None => true,
                Some(f) => (if f.doc() < doc { f.seek(doc) } else { f.doc() }) == doc,
            };
            if wanted {
                let mut score: Score = 0.0;
                for s in scorers[essential..].iter_mut() {
                    if s.doc() == doc {
                        score += s.score();
                    }
                }
                for i in (0..essential).rev() {
                    if score + prefix[i] <= threshold {
                        break;
                    }
                    let s = &mut scorers[i];
                    let at = if s.doc() < doc { s.seek(doc) } else { s.doc() };
                    if at == doc {
                        score += s.score();
                    }
                }
                if score > threshold {
                    threshold = callback(doc, score);
                    essential = first_essential(threshold);
                }
            }
            // Past this document, and past whatever the filters rule out.
            let next = match filter.as_ref() {
                Some(f) if f.doc() > doc => f.doc(),
                _ => doc + 1,
            };
            for s in scorers.iter_mut().skip(essential) {
                if s.doc() < next {
                    s.seek(next);
                }
            }
        }
        Ok(())
    }
}
