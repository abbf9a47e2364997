//! Search, suggest and similar: the index finds ids, the database supplies the rows (so a
//! deleted question never appears), and the highlighter marks the rows' text.

use super::{Result, Service};
use crate::domain::{Id, Question, SearchQuery};
use crate::search::{Facets, PartScore};
use std::collections::HashMap;
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
}

/// Index work is CPU-bound and blocking: it runs on the low-priority expensive-work threads,
/// never on the runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> Result<T> {
    Ok(super::pool::expensive(f).await??)
}

impl Service {
    #[tracing::instrument(level = "debug", skip_all)]
    pub async fn search(&self, req: SearchQuery, explain: bool) -> Result<SearchPage> {
        let started = Instant::now();
        let index = self.indexing.index.clone();
        let synonyms = self.synonyms();
        let found = blocking(move || index.search(&req, &synonyms.compiled, explain)).await?;
        let index_done = started.elapsed();
        let ids: Vec<i64> = found.hits.iter().map(|(id, _)| *id).collect();
        let scores: HashMap<i64, f32> = found.hits.iter().copied().collect();
        let mut explained: HashMap<i64, Vec<PartScore>> =
            ids.iter().copied().zip(found.explained).collect();
        let questions = self.store.get_questions(&ids).await?;
        let rows_done = started.elapsed();
        let highlighter = found.highlighter;
        let hits = blocking(move || {
            Ok(questions
                .into_iter()
                .map(|q| SearchHit {
                    explained: explained.remove(&q.id),
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
            "search timings"
        );
        Ok(SearchPage {
            relaxed: found.relaxed,
            total: found.total,
            total_exact: found.total_exact,
            took_ms: started.elapsed().as_millis() as u64,
            hits,
            facets: found.facets,
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
        let index = self.indexing.index.clone();
        let answers: Vec<String> = q.answers.iter().map(|a| a.body.clone()).collect();
        let (id, title) = (q.id, q.title.clone());
        let found = blocking(move || index.similar(id, &title, &answers, limit)).await?;
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
