//! Collecting: the best k hits of a query in an order that never depends on how the index is
//! segmented, and counting its matches (exact up to a limit, estimated beyond) with facets.
//!
//! Both walk the segments themselves rather than run a tantivy collector through
//! `Searcher::search`: top-k breaks ties by question id (`TopDocs` breaks them by document
//! address, which depends on segmentation) while feeding its threshold to the query's
//! pruning, and counting stops after a limit.

use super::SearchIndex;
use super::facets::{FacetCollector, Facets};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::query::{EnableScoring, Query};
use tantivy::{DocAddress, DocSet, Searcher, SegmentOrdinal, TERMINATED};

/// Matches counted one by one; beyond this `total` and the facets are estimated.
pub const EXACT_COUNT: usize = 10_000;

impl SearchIndex {
    /// The best `k` live documents, by score and then by question id (so equal scores always
    /// come in the same order, however the index is segmented), with pruning.
    pub(super) fn top(
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
pub(super) struct Counted {
    pub(super) total: usize,
    pub(super) exact: bool,
    pub(super) facets: Facets,
}

/// Counts matches without scoring, and stops after `limit`: the rest is estimated from the
/// share of the document space walked so far, as ids are in no relation to content. This
/// bounds the cost of a common term at a million questions to that of `limit` matches.
pub(super) fn count_matches(
    searcher: &Searcher,
    query: &dyn Query,
    limit: usize,
) -> anyhow::Result<Counted> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SearchQuery;
    use crate::search::maxscore::MaxScoreQuery;
    use crate::search::plan::COMMON_MIN_DOCS;
    use crate::search::{IndexDoc, Synonyms};
    use rand::rngs::StdRng;
    use rand::seq::IndexedRandom;
    use rand::{Rng, SeedableRng};
    use tantivy::collector::TopDocs;

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
