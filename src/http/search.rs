//! Search: `/api/v1/search`, `/api/v1/search/suggest` and `/api/v1/questions/{id}/similar`.

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorCode, Problem};
use super::extract::{PathId, Query};
use super::shared::{Filter, QuestionSummary, parse_limit};
use crate::domain::{Difficulty, FieldErrors, Scope, SearchQuery};
use crate::service::Principal;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

pub const QUERY_MAX_CHARS: usize = 500;
pub const OFFSET_MAX: usize = 10_000;

/// Matched terms wrapped in `<mark>…</mark>`; all other text HTML-escaped.
#[derive(Debug, Serialize, ToSchema)]
pub struct Highlights {
    #[schema(example = "<mark>sync</mark>.<mark>Map</mark> 了解吗？")]
    pub title: String,
    /// The best-matching fragment of the answers (their opening when only the title matched).
    #[schema(
        example = "…而使用 <mark>sync</mark>.<mark>map</mark> 之后，对 map 的读写，不需要加锁…"
    )]
    pub answer: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHitOut {
    pub question: QuestionSummary,
    /// Relevance; only the order is meaningful.
    pub score: f32,
    pub highlights: Highlights,
    /// With `explain=true` (admin key): what each part of the query added to the keyword
    /// score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<Vec<PartOut>>,
    /// With `explain=true` when vectors took part: each half's score and the fused one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fusion: Option<FusionOut>,
}

/// How a hit's score was fused: `score = (1 − weight) × keyword.normalized + weight ×
/// semantic.normalized`, each half min-max normalised over its own candidates (the best 1, the
/// worst 0); a half that did not find the question counts 0.
#[derive(Debug, Serialize, ToSchema)]
pub struct FusionOut {
    /// The keyword half's score, when it found the question.
    pub keyword: Option<HalfOut>,
    /// The vector half's cosine similarity, when it found the question.
    pub semantic: Option<HalfOut>,
    #[schema(example = 0.6)]
    pub weight: f32,
    #[schema(example = 0.83)]
    pub fused: f32,
}

/// One half's raw score and its normalised share.
#[derive(Debug, Serialize, ToSchema)]
pub struct HalfOut {
    #[schema(example = 0.87)]
    pub score: f32,
    #[schema(example = 0.75)]
    pub normalized: f32,
}

/// How search by meaning stands on this replica.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchStatusOut {
    /// Questions in the search index.
    #[schema(example = 268)]
    pub documents: u64,
    /// Questions with a vector of `model` in this replica's vector index.
    #[schema(example = 268)]
    pub embedded: u64,
    /// The embedding model whose vectors serve searches; null without an embedder.
    #[schema(example = "multilingual-e5-small")]
    pub model: Option<String>,
    /// Whether searches that do not set `semantic` use vectors now: an embedder is configured,
    /// the default weight is above 0, some questions are embedded, and the embedder answered
    /// the last query (or failed over 30 s ago).
    pub semantic: bool,
    /// The semantic weight of a search that does not set `semantic` (0 without an embedder).
    #[schema(example = 0.6)]
    pub weight: f32,
    /// While the configured model re-embeds the knowledge base: that model (`model` still
    /// serves until it covers as much).
    pub target_model: Option<String>,
    /// Questions embedded with the configured model.
    #[schema(example = 268)]
    pub target_embedded: u64,
}

/// One part of the query and what it added to a hit's score.
#[derive(Debug, Serialize, ToSchema)]
pub struct PartOut {
    /// The part: `bigram 捐款` / `word goroutine` (coverage: found anywhere, more in the
    /// title), `typo gorutine → goroutine …`, `synonym 捐款 → 捐赠`, `whole word 调度器`
    /// (BM25 only), `near 开机 加载` (the words close together), `character 捐` (relaxed).
    #[schema(example = "bigram 捐款")]
    pub part: String,
    #[schema(example = 412.7)]
    pub score: f32,
    /// Where it matched and the inputs: each term in a field with its BM25 share (term
    /// frequency, IDF, field length), and the coverage bonuses.
    #[schema(example = json!(["捐款 in answers_bigrams = 3.912 (tf = 2.000, idf = 3.100, field length = 80.000)", "coverage = 310.000"]))]
    pub details: Vec<String>,
}

/// Counts per value over every match (not just this page), with the filters applied.
#[derive(Debug, Serialize, ToSchema)]
pub struct FacetsOut {
    #[schema(example = json!({"golang": 3}))]
    pub category: BTreeMap<String, u64>,
    #[schema(example = json!({"map": 2, "sync": 1}))]
    pub tag: BTreeMap<String, u64>,
    #[schema(example = json!({"medium": 3}))]
    pub difficulty: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    /// The query as received.
    pub query: String,
    /// Number of matching questions: exact up to 10,000, estimated beyond (see `total_exact`).
    pub total: u64,
    /// False when `total` is an estimate (more than 10,000 matches).
    pub total_exact: bool,
    pub took_ms: u64,
    pub hits: Vec<SearchHitOut>,
    /// Counts per value over the matches, exact or estimated like `total`.
    pub facets: FacetsOut,
    /// False when the facet counts are estimates (more than 10,000 matches).
    pub facets_exact: bool,
    /// True when nothing matched the query as typed and these hits match its single Chinese
    /// characters and near spellings of its Latin words instead.
    pub relaxed: bool,
    /// Whether vectors took part in this answer (an embedder is configured, the weight is
    /// above 0, and the query's embedding came in time). With vectors, `total` and the facets
    /// count the union of both halves' candidates: every keyword match plus up to 100 nearest
    /// questions only the vector half found.
    pub semantic: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// What the person typed: any text, 1–500 characters. Never a query language.
    #[param(value_type = String, min_length = 1, max_length = 500, pattern = "\\S", example = "sync.Map 读写分离")]
    pub q: Option<String>,
    /// Only this category (slug).
    #[param(value_type = String, required = false, format = "kb:slug")]
    pub category: Option<String>,
    /// Only questions with this tag.
    #[param(value_type = String, required = false, format = "kb:slug")]
    pub tag: Option<String>,
    #[param(value_type = Difficulty, required = false)]
    pub difficulty: Option<String>,
    /// 1–100.
    #[param(value_type = u32, required = false, minimum = 1, maximum = 100, default = 10)]
    pub limit: Option<String>,
    /// Hits to skip, 0–10,000.
    #[param(value_type = u32, required = false, minimum = 0, maximum = 10000, default = 0)]
    pub offset: Option<String>,
    /// `true`: each hit says which parts of the query matched where and what each added
    /// (needs an admin key).
    #[param(value_type = bool, required = false, default = false)]
    pub explain: Option<String>,
    /// The weight of search by meaning, 0–1 (0: keyword only); by default the configured
    /// weight (`GET /api/v1/search/status`). Ignored without an embedder.
    #[param(value_type = f32, required = false, minimum = 0, maximum = 1)]
    pub semantic: Option<String>,
}

fn parse_q(e: &mut FieldErrors, q: Option<&str>) -> Option<String> {
    match q.map(str::trim) {
        None | Some("") => {
            e.push("q", "is required and must not be blank");
            None
        }
        Some(q) if q.chars().count() > QUERY_MAX_CHARS => {
            e.push("q", format!("must be at most {QUERY_MAX_CHARS} characters"));
            None
        }
        Some(q) => Some(q.to_string()),
    }
}

impl SearchParams {
    fn parse(self) -> Result<(SearchQuery, bool, Option<f32>), FieldErrors> {
        let mut e = FieldErrors::new();
        let semantic = match self.semantic.as_deref() {
            None => None,
            Some(w) => e.check("semantic", crate::config::parse_weight(w)),
        };
        let explain = match self.explain.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => {
                e.push("explain", "must be true or false");
                false
            }
        };
        let text = parse_q(&mut e, self.q.as_deref());
        let filter = Filter::one_tag(&mut e, &self.category, &self.tag, &self.difficulty);
        let limit = e.check("limit", parse_limit(self.limit.as_deref(), 10, 100));
        let offset = match self.offset.as_deref() {
            None => Some(0),
            Some(o) => e.check(
                "offset",
                o.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n <= OFFSET_MAX)
                    .ok_or_else(|| format!("must be an integer from 0 to {OFFSET_MAX}")),
            ),
        };
        e.finish()?;
        let query = SearchQuery {
            text: text.unwrap_or_default(),
            category: filter.category,
            tag: filter.tag,
            difficulty: filter.difficulty,
            limit: limit.unwrap_or(10) as usize,
            offset: offset.unwrap_or(0),
        };
        Ok((query, explain, semantic))
    }
}

/// Search questions
///
/// Full-text search over titles, answers and tags. Chinese is segmented into words, Latin
/// text is case-folded, identifiers like `sync.Map` or `GOMAXPROCS` work, word order does not
/// matter, and Latin words of 5+ letters tolerate typos. Questions covering more of what the
/// query says rank first (rare words count more than common ones, question words like 怎么 or
/// `how` hardly at all), then by BM25; words typed together rank higher when they stand
/// together. The knowledge base's synonyms apply (`/api/v1/synonyms`). When nothing matches,
/// the query is relaxed to its single characters and near spellings (`relaxed: true`).
#[utoipa::path(
    get, path = "/api/v1/search", tag = "search",
    params(SearchParams),
    responses(
        (status = 200, description = "Matching questions, best first", body = SearchResponse),
        (status = 422, description = "`q` missing, blank or too long, or a bad filter", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn search_questions(
    State(state): State<AppState>,
    caller: Option<axum::Extension<Principal>>,
    Query(params): Query<SearchParams>,
) -> ApiResult<axum::Json<SearchResponse>> {
    let (req, explain, semantic) = params.parse()?;
    if explain {
        match &caller {
            None => {
                return Err(ApiError::new(
                    ErrorCode::Unauthorized,
                    "explain=true needs an admin key: send it as `Authorization: Bearer <key>`",
                ));
            }
            Some(axum::Extension(p)) if !p.scope.grants(Scope::Admin) => {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    format!(
                        "explain=true needs scope `admin`; this credential has `{}`",
                        p.scope.as_str()
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    let query = req.text.clone();
    let page = state.service.search(req, explain, semantic).await?;
    Ok(axum::Json(SearchResponse {
        query,
        total: page.total as u64,
        total_exact: page.total_exact,
        facets_exact: page.total_exact,
        relaxed: page.relaxed,
        semantic: page.semantic,
        took_ms: page.took_ms,
        hits: page
            .hits
            .into_iter()
            .map(|h| SearchHitOut {
                highlights: Highlights {
                    title: h.title_html,
                    answer: h.answer_html,
                },
                score: h.score,
                explain: h.explained.map(|parts| {
                    parts
                        .into_iter()
                        .map(|p| PartOut {
                            part: p.part,
                            score: p.score,
                            details: p.details,
                        })
                        .collect()
                }),
                fusion: h.fusion.map(|f| FusionOut {
                    keyword: f
                        .keyword
                        .map(|(score, normalized)| HalfOut { score, normalized }),
                    semantic: f
                        .semantic
                        .map(|(score, normalized)| HalfOut { score, normalized }),
                    weight: page.weight,
                    fused: f.score,
                }),
                question: h.question.into(),
            })
            .collect(),
        facets: FacetsOut {
            category: page.facets.category,
            tag: page.facets.tag,
            difficulty: page.facets.difficulty,
        },
    }))
}

/// Search status
///
/// How many questions the search index holds, how many of them have a vector for search by
/// meaning, with which model, and whether searches use vectors now.
#[utoipa::path(
    get, path = "/api/v1/search/status", tag = "search",
    responses(
        (status = 200, description = "The state of keyword and semantic search on this replica", body = SearchStatusOut),
    )
)]
pub async fn search_status(State(state): State<AppState>) -> axum::Json<SearchStatusOut> {
    let s = state.service.search_status();
    axum::Json(SearchStatusOut {
        documents: s.documents,
        embedded: s.embedded,
        model: s.model,
        semantic: s.semantic,
        weight: s.weight,
        target_model: s.target_model,
        target_embedded: s.target_embedded,
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuggestParams {
    /// What has been typed so far; the last word may be unfinished.
    #[param(value_type = String, min_length = 1, max_length = 500, pattern = "\\S", example = "sync.Ma")]
    pub q: Option<String>,
    /// 1–10.
    #[param(value_type = u32, required = false, minimum = 1, maximum = 10, default = 10)]
    pub limit: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Suggestion {
    #[schema(example = 9)]
    pub id: i64,
    #[schema(example = "sync.Map 了解吗？")]
    pub title: String,
}

/// Suggest titles
///
/// Completes what a person is typing into a search box: up to 10 questions whose title
/// contains the typed words, the last of which may be unfinished.
#[utoipa::path(
    get, path = "/api/v1/search/suggest", tag = "search",
    params(SuggestParams),
    responses(
        (status = 200, description = "Up to 10 suggestions, best first", body = Vec<Suggestion>),
        (status = 422, description = "`q` missing, blank or too long", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn suggest(
    State(state): State<AppState>,
    Query(params): Query<SuggestParams>,
) -> ApiResult<axum::Json<Vec<Suggestion>>> {
    let mut e = FieldErrors::new();
    let q = parse_q(&mut e, params.q.as_deref());
    let limit = e.check("limit", parse_limit(params.limit.as_deref(), 10, 10));
    e.finish()?;
    let found = state
        .service
        .suggest(q.unwrap_or_default(), limit.unwrap_or(10) as usize)
        .await?;
    Ok(axum::Json(
        found
            .into_iter()
            .map(|q| Suggestion {
                id: q.id,
                title: q.title,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SimilarParams {
    /// 1–50.
    #[param(value_type = u32, required = false, minimum = 1, maximum = 50, default = 5)]
    pub limit: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SimilarItem {
    pub question: QuestionSummary,
    /// Relatedness; only the order is meaningful.
    pub score: f32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SimilarResponse {
    pub items: Vec<SimilarItem>,
}

/// Similar questions
///
/// Questions related to this one by the words of its title and answers, most related first;
/// never the question itself.
#[utoipa::path(
    get, path = "/api/v1/questions/{id}/similar", tag = "search",
    params(("id" = i64, Path, description = "Question id", minimum = 1), SimilarParams),
    responses(
        (status = 200, description = "Related questions", body = SimilarResponse),
        (status = 400, description = "The id is not a positive integer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such question", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid limit", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn similar_questions(
    State(state): State<AppState>,
    PathId(id): PathId,
    Query(params): Query<SimilarParams>,
) -> ApiResult<axum::Json<SimilarResponse>> {
    let mut e = FieldErrors::new();
    let limit = e.check("limit", parse_limit(params.limit.as_deref(), 5, 50));
    e.finish()?;
    let found = state
        .service
        .similar(id, limit.unwrap_or(5) as usize)
        .await?;
    Ok(axum::Json(SimilarResponse {
        items: found
            .into_iter()
            .map(|(q, score)| SimilarItem {
                question: q.into(),
                score,
            })
            .collect(),
    }))
}
