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
use tantivy::{DocAddress, DocId, DocSet, Score, Searcher, SegmentReader, TERMINATED, Term};

/// What one part of the query added to one hit's score.
#[derive(Debug, Clone, PartialEq)]
pub struct PartScore {
    /// e.g. `bigram 捐款`, `word goroutine`, `typo gorutine → goroutine`,
    /// `synonym 捐款 → 捐赠`, `near 开机 加载`.
    pub part: String,
    pub score: f32,
    /// Where it matched: `term in field`, with its term frequency and BM25 share.
    pub details: Vec<String>,
}

/// One scoring part, an upper bound of any score it gives a document, and what it is.
pub struct Part {
    pub query: Box<dyn Query>,
    pub bound: Score,
    pub label: String,
    /// Only adds to the score of documents other parts match (whole words, proximity): it
    /// never makes a document a match by itself, and counting leaves it out.
    pub refines: bool,
}

impl Clone for Part {
    fn clone(&self) -> Self {
        Self {
            query: self.query.box_clone(),
            bound: self.bound,
            label: self.label.clone(),
            refines: self.refines,
        }
    }
}

impl std::fmt::Debug for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Part")
            .field("query", &self.query)
            .field("bound", &self.bound)
            .field("label", &self.label)
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

    /// What each part adds to the score of the document at `addr` (parts that add nothing
    /// are left out), in the order the query has them.
    pub fn explain_parts(
        &self,
        searcher: &Searcher,
        addr: DocAddress,
    ) -> tantivy::Result<Vec<PartScore>> {
        let reader = searcher.segment_reader(addr.segment_ord);
        let mut out = Vec::new();
        for p in &self.parts {
            let weight = p
                .query
                .weight(EnableScoring::enabled_from_searcher(searcher))?;
            // Only a matching part is explained: tantivy's phrase explanation would seek
            // backwards for a document before its first match.
            let mut scorer = weight.scorer(reader, 1.0)?;
            if scorer.doc() > addr.doc_id || scorer.seek(addr.doc_id) != addr.doc_id {
                continue;
            }
            let Ok(e) = weight.explain(reader, addr.doc_id) else {
                continue;
            };
            if e.value() <= 0.0 {
                continue;
            }
            let tree: serde_json::Value =
                serde_json::from_str(&e.to_pretty_json()).unwrap_or_default();
            let mut details = Vec::new();
            flatten(&tree, &mut details);
            out.push(PartScore {
                part: p.label.clone(),
                score: e.value(),
                details,
            });
        }
        Ok(out)
    }

    /// The documents it matches, unscored (for counting): any matching part, every filter.
    fn matching(&self) -> BooleanQuery {
        BooleanQuery::new(self.clauses(false))
    }

    /// The same documents and scores as a plain boolean query, without pruning.
    pub fn plain(&self) -> BooleanQuery {
        BooleanQuery::new(self.clauses(true))
    }

    /// Any matching part and every filter are required; refining parts only add to the score.
    fn clauses(&self, refining: bool) -> Vec<(Occur, Box<dyn Query>)> {
        let union = BooleanQuery::new(
            self.parts
                .iter()
                .filter(|p| !p.refines)
                .map(|p| (Occur::Should, p.query.box_clone()))
                .collect(),
        );
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![(Occur::Must, Box::new(union))];
        if refining {
            clauses.extend(
                self.parts
                    .iter()
                    .filter(|p| p.refines)
                    .map(|p| (Occur::Should, p.query.box_clone())),
            );
        }
        clauses.extend(self.filters.iter().map(|f| (Occur::Must, f.box_clone())));
        clauses
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
        if !enable_scoring.is_scoring_enabled() {
            return self.matching().weight(enable_scoring);
        }
        let plain = self.plain().weight(enable_scoring)?;
        let mut parts = self
            .parts
            .iter()
            .map(|p| Ok((p.query.weight(enable_scoring)?, p.bound, p.refines)))
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

/// An explanation tree as lines: each direct contribution with its inputs in brackets.
fn flatten(node: &serde_json::Value, out: &mut Vec<String>) {
    let line = |n: &serde_json::Value| {
        format!(
            "{} = {:.3}",
            n["description"].as_str().unwrap_or(""),
            n["value"].as_f64().unwrap_or(0.0)
        )
    };
    match node["details"].as_array() {
        Some(children) if !children.is_empty() => {
            for c in children {
                let inputs: Vec<String> = c["details"]
                    .as_array()
                    .map(|g| g.iter().map(line).collect())
                    .unwrap_or_default();
                if inputs.is_empty() {
                    out.push(line(c));
                } else {
                    out.push(format!("{} ({})", line(c), inputs.join(", ")));
                }
            }
        }
        _ => out.push(line(node)),
    }
}

struct MaxScoreWeight {
    plain: Box<dyn Weight>,
    parts: Vec<(Box<dyn Weight>, Score, bool)>,
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
            .map(|(w, _, _)| w.scorer(reader, 1.0))
            .collect::<tantivy::Result<Vec<_>>>()?;
        // Rounding in the parts' own sums must never make a bound too tight.
        let mut prefix = Vec::with_capacity(self.parts.len());
        let mut sum: Score = 0.0;
        for (_, bound, _) in &self.parts {
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
        let mut shares: Vec<Score> = vec![0.0; scorers.len()];
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
                let mut matched = false;
                for (i, s) in scorers.iter_mut().enumerate().skip(essential) {
                    if s.doc() == doc {
                        shares[i] = s.score();
                        score += shares[i];
                        matched |= !self.parts[i].2;
                    }
                }
                let mut complete = true;
                for i in (0..essential).rev() {
                    if score + prefix[i] <= threshold {
                        complete = false;
                        break;
                    }
                    let s = &mut scorers[i];
                    let at = if s.doc() < doc { s.seek(doc) } else { s.doc() };
                    if at == doc {
                        shares[i] = s.score();
                        score += shares[i];
                        matched |= !self.parts[i].2;
                    }
                }
                // The reported score is summed in one fixed order, whatever was essential:
                // the same document scores the same to the last bit in any index layout.
                let canonical: Score = shares.iter().sum();
                shares.iter_mut().for_each(|x| *x = 0.0);
                if complete && matched && canonical > threshold {
                    threshold = callback(doc, canonical);
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
