//! Bulk import and export over HTTP (admin scope): the same importer and export pages as
//! `kb import` and `kb export`.

use super::AppState;
use super::error::{ApiError, ApiResult, ErrorCode, Problem};
use super::extract::Query;
use crate::service::{ExportPart, ImportReport};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// Also the learners' settings and reviews (personal data: only when asked), after the
    /// questions; every question then carries an `external_id` (a stable one is derived for
    /// those without). See docs/learners.md.
    #[param(required = false, default = false)]
    pub with_learners: Option<bool>,
}

/// A JSON array is parsed whole, so it is bounded; NDJSON streams and is not.
pub const ARRAY_LIMIT: usize = 256 * 1024 * 1024;
pub const NDJSON: &str = "application/x-ndjson";

/// NDJSON as the OpenAPI document describes it: bytes (each line is checked on its own, so no
/// schema of the whole body could be stricter).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct NdjsonBody(Vec<u8>);

/// What an import did.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ImportReport)]
#[schema(example = json!({"received": 4, "created": 2, "updated": 1, "unchanged": 0, "failed": 1,
    "errors": [{"line": 3, "message": "not valid JSON: EOF while parsing an object at line 1 column 1"}]}))]
pub struct ImportReportOut {
    /// Non-blank lines (or array elements) read.
    pub received: u64,
    pub created: u64,
    /// Lines whose `external_id` existed with different content: that question now matches
    /// the line.
    pub updated: u64,
    /// Lines already imported as they are: nothing changed.
    pub unchanged: u64,
    /// Lines refused; the first ones are listed in `errors`.
    pub failed: u64,
    pub errors: Vec<LineErrorOut>,
    /// A `{"synonyms": …}` line (as an export starts with) replaced the synonym table.
    pub synonyms_replaced: bool,
    /// Learner lines applied (an export made with `with_learners`).
    pub learner_lines: u64,
    /// Reviews those lines applied (or found already there).
    pub reviews: u64,
}

/// A line that was not imported, and why.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = LineError)]
pub struct LineErrorOut {
    /// 1-based line number (NDJSON) or element position (JSON array).
    pub line: u64,
    pub message: String,
}

impl From<ImportReport> for ImportReportOut {
    fn from(r: ImportReport) -> Self {
        Self {
            received: r.received,
            created: r.created,
            updated: r.updated,
            unchanged: r.unchanged,
            failed: r.failed,
            synonyms_replaced: r.synonyms_replaced,
            learner_lines: r.learner_lines,
            reviews: r.reviews,
            errors: r
                .errors
                .into_iter()
                .map(|e| LineErrorOut {
                    line: e.line,
                    message: e.message,
                })
                .collect(),
        }
    }
}

enum Format {
    Ndjson,
    Array,
}

fn format(headers: &HeaderMap) -> Option<Format> {
    let essence = headers
        .get(header::CONTENT_TYPE)?
        .to_str()
        .ok()?
        .split(';')
        .next()?
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/x-ndjson" | "application/jsonl" | "application/json-seq" => {
            Some(Format::Ndjson)
        }
        "application/json" => Some(Format::Array),
        _ => None,
    }
}

/// Import questions
///
/// One question per line (`application/x-ndjson`, streamed: any size) or a JSON array of them
/// (`application/json`, up to 256 MiB); each item has the shape of `BulkQuestion`. Idempotent:
/// an item whose `external_id` exists updates that question, or changes nothing when it is
/// unchanged since it was imported; an item without `external_id` is identified by its content.
/// Items are validated one by one: bad ones are listed with their line number in the report
/// while the others are imported (200 either way). Answers once every imported question is
/// searchable. Categories named by items are created when missing.
#[utoipa::path(
    post, path = "/api/v1/import", tag = "admin",
    request_body(
        description = "NDJSON lines, or a JSON array of objects; each item is a `BulkQuestion`.",
        content(
            (NdjsonBody = "application/x-ndjson", example = json!("{\"external_id\":\"q-1\",\"title\":\"GMP 指的是什么？\",\"category\":\"golang\",\"answers\":[{\"body\":\"G、M、P\"}]}\n")),
            (Vec<serde_json::Map<String, serde_json::Value>> = "application/json", example = json!([{"external_id": "q-1", "title": "GMP 指的是什么？", "category": "golang", "answers": [{"body": "G、M、P"}]}])),
        )
    ),
    responses(
        (status = 200, description = "What was imported, and the lines that were not", body = ImportReportOut),
        (status = 400, description = "Malformed JSON array, or the body could not be read", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "A JSON array over 256 MiB (send NDJSON instead)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither NDJSON nor JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A JSON body that is not an array of objects", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn import(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<axum::Json<ImportReportOut>> {
    let Some(format) = format(&headers) else {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send `application/x-ndjson` (one question per line) or `application/json` (an array)",
        ));
    };
    let mut importer = state.service.importer();
    match format {
        Format::Ndjson => {
            let mut stream = body.into_data_stream();
            while let Some(chunk) = stream.next().await {
                // Batches already written stay written; the client can resend the whole file.
                let chunk = chunk.map_err(|e| {
                    ApiError::new(
                        ErrorCode::InvalidJson,
                        format!("could not read the body: {e}"),
                    )
                })?;
                importer.push_ndjson(&chunk).await?;
            }
        }
        Format::Array => {
            let bytes = axum::body::to_bytes(body, ARRAY_LIMIT).await.map_err(|_| {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    "a JSON array must be at most 256 MiB; send NDJSON, which streams",
                )
            })?;
            importer.push_array(bytes).await?;
        }
    }
    Ok(axum::Json(importer.finish().await?.into()))
}

/// Export questions
///
/// Every question with its answers as NDJSON (`BulkQuestion` per line, with its `id`), in id
/// order, streamed, all read from one snapshot of the database. The first line is
/// `{"changes_cursor": "…"}` (also the `Kb-Changes-Cursor` header): the export holds every
/// change up to that cursor of `GET /api/v1/changes` and none after, so a copy made from it
/// and kept up to date by following the feed from that cursor is exact. When the knowledge
/// base has its own synonym table, the next line is `{"synonyms": …}` (the body of `PUT
/// /api/v1/synonyms`). `POST /api/v1/import` of the output into an empty
/// knowledge base recreates the same questions, answers, categories, tags, timestamps and
/// synonyms.
#[utoipa::path(
    get, path = "/api/v1/export", tag = "admin",
    params(ExportParams),
    responses(
        (status = 200, description = "First `{\"changes_cursor\": …}`, then one `BulkQuestion` per line", body = String, content_type = "application/x-ndjson",
            headers(("Kb-Changes-Cursor" = String, description = "The change-feed cursor this export is consistent with: follow `GET /api/v1/changes?after=` from it")),
            example = json!("{\"title\":\"GMP 指的是什么？\",\"category\":\"golang\",\"category_name\":\"Golang\",\"tags\":[\"scheduler\"],\"difficulty\":\"medium\",\"answers\":[{\"body\":\"G、M、P\",\"created_at\":\"2026-01-01T00:00:00Z\",\"updated_at\":\"2026-01-01T00:00:00Z\"}],\"created_at\":\"2026-01-01T00:00:00Z\",\"updated_at\":\"2026-01-01T00:00:00Z\"}\n")),
    )
)]
pub async fn export(State(state): State<AppState>, Query(params): Query<ExportParams>) -> Response {
    let mut parts = state.service.export(params.with_learners.unwrap_or(false));
    // The snapshot's cursor comes first, before any line: it goes in a header too.
    let cursor = match parts.recv().await {
        Some(Ok(ExportPart::Cursor(c))) => c,
        Some(Err(e)) => return ApiError::from(crate::service::Error::from(e)).into_response(),
        _ => {
            return ApiError::internal(anyhow::anyhow!("the export began without its cursor"))
                .into_response();
        }
    };
    let synonyms = match state.service.export_synonyms().await {
        Ok(line) => line,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut head = Vec::new();
    for line in [
        Some(serde_json::json!({ "changes_cursor": cursor })),
        synonyms,
    ]
    .into_iter()
    .flatten()
    {
        serde_json::to_writer(&mut head, &line).expect("a line serializes");
        head.push(b'\n');
    }
    let pages = futures_util::stream::unfold(Some(parts), |parts| async move {
        let mut parts = parts?;
        match parts.recv().await? {
            Ok(ExportPart::Lines(lines)) => {
                let mut buf = Vec::with_capacity(lines.len() * 1024);
                for line in &lines {
                    serde_json::to_writer(&mut buf, line).expect("a line serializes");
                    buf.push(b'\n');
                }
                Some((Ok(Bytes::from(buf)), Some(parts)))
            }
            Ok(ExportPart::Learners(lines)) => {
                let mut buf = Vec::with_capacity(lines.len() * 1024);
                for line in &lines {
                    serde_json::to_writer(&mut buf, line).expect("a line serializes");
                    buf.push(b'\n');
                }
                Some((Ok(Bytes::from(buf)), Some(parts)))
            }
            Ok(ExportPart::Cursor(_)) => Some((Ok(Bytes::new()), Some(parts))),
            Err(e) => {
                // The status is already sent: cutting the stream short is the only signal.
                tracing::error!(error = ?anyhow::Error::new(e), "export failed mid-stream");
                Some((Err(std::io::Error::other("export failed")), None))
            }
        }
    });
    // Fused: the compression layer polls once more after the end, which a bare unfold forbids.
    let head = futures_util::stream::once(async { Ok::<_, std::io::Error>(Bytes::from(head)) });
    let cursor = HeaderValue::from_str(&cursor).expect("a cursor is base64url");
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(NDJSON)),
            (HeaderName::from_static("kb-changes-cursor"), cursor),
        ],
        Body::from_stream(head.chain(pages).fuse()),
    )
        .into_response()
}
