//! `GET/PUT /api/v1/synonyms`: the knowledge base's synonym table (admin keys).

use super::AppState;
use super::error::{ApiResult, Problem};
use super::extract::{Json, etag, if_match};
use crate::domain::{RawSynonymSet, RawSynonymTable, SynonymTable};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// ETag kind letter of the synonym table.
const KIND: char = 's';

/// A synonym term: 1–24 characters, Chinese or Latin (at most 24 before trimming), matched
/// case-insensitively: Chinese anywhere in a query, Latin as whole words.
#[derive(ToSchema)]
#[schema(value_type = String, format = "kb:synonym", example = "捐赠")]
#[allow(dead_code)]
pub struct SynonymTerm(String);

/// Terms that find each other.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct EquivalentSet {
    #[schema(value_type = Vec<SynonymTerm>, min_items = 2, max_items = 20)]
    pub terms: Vec<String>,
}

/// A query for `from` also finds `to`; not the other way round.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct OneWaySet {
    #[schema(value_type = SynonymTerm)]
    pub from: String,
    #[schema(value_type = Vec<SynonymTerm>, min_items = 1, max_items = 20)]
    pub to: Vec<String>,
}

/// One set: `{"terms": [...]}` (2–20 terms that find each other) or `{"from": "…", "to":
/// [...]}` (a query for `from` also finds `to`, 1–20 terms).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
#[schema(as = SynonymSet, example = json!({"terms": ["捐款", "捐赠"]}))]
#[allow(dead_code)]
pub enum SynonymSetDoc {
    Equivalent(EquivalentSet),
    OneWay(OneWaySet),
}

/// The synonym table. Applied at query time: a change needs no reindex and applies to the next
/// search.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Synonyms, example = json!({"builtin": true, "sets": [
    {"terms": ["捐款", "捐赠"]},
    {"terms": ["打包", "构建", "packaging"]},
    {"from": "禁止升级", "to": ["保留", "hold"]}
]}))]
#[allow(dead_code)]
pub struct SynonymsDoc {
    /// Whether the built-in programming synonyms (协程/goroutine, 哈希/hash, 垃圾回收/GC, …,
    /// listed in `builtin_sets`) apply. Default true.
    pub builtin: Option<bool>,
    /// The knowledge base's own sets, at most 500 (default none).
    #[schema(max_items = 500)]
    pub sets: Option<Vec<SynonymSetDoc>>,
}

/// `GET` answers the table, with the built-in sets for reference.
#[derive(Debug, Serialize, ToSchema)]
pub struct SynonymsOut {
    pub builtin: bool,
    #[schema(value_type = Vec<SynonymSetDoc>)]
    pub sets: Vec<RawSynonymSet>,
    /// The built-in sets (read-only), each a list of terms that find each other.
    pub builtin_sets: Vec<Vec<String>>,
}

fn out(table: &SynonymTable) -> SynonymsOut {
    let raw = table.to_raw();
    SynonymsOut {
        builtin: table.builtin,
        sets: raw.sets.unwrap_or_default(),
        builtin_sets: crate::service::builtin_synonym_sets(),
    }
}

/// Get the synonym table
///
/// The knowledge base's synonym sets and whether the built-in ones apply; the ETag names this
/// version of the table, for `If-Match` on `PUT`.
#[utoipa::path(
    get, path = "/api/v1/synonyms", tag = "admin",
    responses(
        (status = 200, description = "The table", body = SynonymsOut, headers(("ETag" = String, description = "This version of the table"))),
    )
)]
pub async fn get_synonyms(State(state): State<AppState>) -> Response {
    let loaded = state.service.synonyms();
    (
        [(header::ETAG, etag(KIND, 0, loaded.version))],
        axum::Json(out(&loaded.table)),
    )
        .into_response()
}

/// Replace the synonym table
///
/// Replaces every set at once (send `{"builtin": false, "sets": []}` to turn synonyms off).
/// Applies to the next search; nothing is reindexed. Exported and imported with the knowledge
/// base (`/api/v1/export` writes it as a first line `{"synonyms": …}`). With `If-Match`, the
/// table is replaced only if it is still the version named.
#[utoipa::path(
    put, path = "/api/v1/synonyms", tag = "admin",
    request_body(content = SynonymsDoc, content_type = "application/json"),
    responses(
        (status = 200, description = "The table as stored", body = SynonymsOut, headers(("ETag" = String, description = "The new version"))),
        (status = 412, description = "The table changed since the ETag in If-Match", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn put_synonyms(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<RawSynonymTable>,
) -> ApiResult<Response> {
    let table = SynonymTable::parse(&body)?;
    let expected = if_match(&headers, KIND, 0);
    let version = state.service.put_synonyms(table.clone(), &expected).await?;
    Ok((
        [(header::ETAG, etag(KIND, 0, version))],
        axum::Json(out(&table)),
    )
        .into_response())
}
