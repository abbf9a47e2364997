//! Extractors whose every rejection is an [`ApiError`], plus the ETag and precondition helpers.

use super::error::{ApiError, ErrorCode};
use crate::domain::{FieldError, Id, Precondition};
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::{HeaderMap, HeaderValue, header, request::Parts};
use serde::de::DeserializeOwned;

/// A JSON request body: `application/json`, `application/merge-patch+json` or any `+json`
/// type. Syntax errors are 400 `invalid_json`; well-formed JSON of the wrong shape is 422.
pub struct Json<T>(pub T);

fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json_content_type(req.headers()) {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send the body as `application/json` (or `application/merge-patch+json` for PATCH)",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(ErrorCode::PayloadTooLarge, "the body must be at most 1 MiB")
            } else {
                ApiError::new(
                    ErrorCode::InvalidJson,
                    format!("could not read the body: {e}"),
                )
            }
        })?;
        // Every body of this API is an object, but serde also reads a struct from an array
        // (`[]` would be an empty patch): refuse that shape explicitly.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            parse_json::<serde::de::IgnoredAny>(&bytes)?;
            return Err(ApiError::validation(vec![FieldError::new(
                String::new(),
                "the body must be a JSON object".to_string(),
            )]));
        }
        parse_json(&bytes).map(Json)
    }
}

/// Parses a JSON document, classifying failures the way the API promises.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de);
    if value.is_ok() {
        // Trailing data after the document is a syntax error, like any other.
        de.end()
            .map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("malformed JSON: {e}")))?;
    }
    value.map_err(classify)
}

/// Reads `T` from one element of a parsed body (an item of a batch), classifying failures as
/// [`parse_json`] does: a field of the wrong shape is `validation_failed`, an unknown one
/// `unknown_field`, and so is an element that is not an object.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::validation(vec![FieldError::new(
            String::new(),
            "must be a JSON object".to_string(),
        )]));
    }
    serde_path_to_error::deserialize(value).map_err(classify)
}

fn classify(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    match inner.classify() {
        serde_json::error::Category::Data => {
            let message = strip_position(&inner.to_string());
            let (code, field) = if message.starts_with("unknown field") {
                (ErrorCode::UnknownField, field_of_unknown(&path, &message))
            } else {
                (ErrorCode::ValidationFailed, path)
            };
            let mut err = ApiError::validation(vec![FieldError::new(field, message)]);
            err.code = code;
            err
        }
        _ => ApiError::new(ErrorCode::InvalidJson, format!("malformed JSON: {inner}")),
    }
}

/// serde_json appends " at line L column C", which means nothing for a field error.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// serde_path_to_error's path already ends at the unknown field; fall back to the name
/// serde quotes in its message when the path is empty.
fn field_of_unknown(path: &str, message: &str) -> String {
    if path.is_empty() || path == "." {
        message.split('`').nth(1).unwrap_or_default().to_string()
    } else {
        path.to_string()
    }
}

/// A query string parsed into `T`; repeated keys fill a `Vec`. Only a query string that cannot
/// be decoded at all is refused here (400); values are checked by the handler (422).
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let raw = parts.uri.query().unwrap_or("");
        serde_html_form::from_str(raw)
            .map(Query)
            .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.to_string()))
    }
}

/// A positive integer id from the single path parameter; anything else is 400 `invalid_id`.
pub struct PathId(pub Id);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(ErrorCode::InvalidId, e.to_string()))?;
        Id::parse(&raw)
            .map(PathId)
            .map_err(|e| ApiError::new(ErrorCode::InvalidId, e))
    }
}

/// The single path parameter as text; one that cannot be decoded (e.g. `%ff`, not UTF-8) is
/// 400 `invalid_path` in problem+json rather than the framework's plain-text rejection.
pub struct PathText(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathText {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(raw)| PathText(raw))
            .map_err(|e| ApiError::new(ErrorCode::InvalidPath, e.body_text()))
    }
}

/// A strong ETag naming one version of one resource, e.g. `"q12v3"`.
pub fn etag(kind: char, id: i64, version: i64) -> HeaderValue {
    // Written into a buffer on the stack: this runs for every read.
    use std::io::Write as _;
    let mut buf = [0u8; 48];
    let mut w = &mut buf[..];
    let _ = write!(w, "\"{kind}{id}v{version}\"");
    let n = 48 - w.len();
    HeaderValue::from_bytes(&buf[..n]).expect("ascii etag")
}

/// Splits an `If-Match`/`If-None-Match` value into entity tags; `None` for `*`. Anything that
/// is not a well-formed entity tag matches nothing (so a garbled `If-Match` ends in 412 and a
/// garbled `If-None-Match` in a full response) rather than failing the request.
fn entity_tags(value: &str) -> Option<Vec<(bool, &str)>> {
    if value.trim() == "*" {
        return None;
    }
    Some(
        value
            .split(',')
            .filter_map(|part| {
                let part = part.trim();
                let (weak, quoted) = match part.strip_prefix("W/") {
                    Some(rest) => (true, rest),
                    None => (false, part),
                };
                let opaque = quoted.strip_prefix('"')?.strip_suffix('"')?;
                (!opaque.contains('"')).then_some((weak, opaque))
            })
            .collect(),
    )
}

/// Reads `If-Match` for the resource `kind`/`id` into the versions it admits. Strong
/// comparison: weak tags and tags of other resources admit nothing, so they end in 412.
pub fn if_match(headers: &HeaderMap, kind: char, id: i64) -> Precondition {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Precondition::Any;
    };
    let Some(tags) = entity_tags(value.to_str().unwrap_or("")) else {
        return Precondition::Any;
    };
    // Entity tags are opaque: `"q1v01"` or `"q1v+1"` is not `"q1v1"`. A tag admits the one
    // version whose tag it is, spelled exactly as the server spells it.
    let prefix = format!("{kind}{id}v");
    let versions = tags
        .into_iter()
        .filter(|(weak, _)| !weak)
        .filter_map(|(_, t)| {
            let digits = t.strip_prefix(&prefix)?;
            let version = digits.parse::<i64>().ok()?;
            (version.to_string() == digits).then_some(version)
        })
        .collect();
    Precondition::OneOf(versions)
}

/// True when `If-None-Match` matches the current ETag (weak comparison), meaning 304.
pub fn if_none_match(headers: &HeaderMap, current: &HeaderValue) -> bool {
    none_match(headers.get(header::IF_NONE_MATCH), current)
}

/// The request's `If-None-Match`, and nothing else of its headers (taking the whole header
/// map would copy it for every read).
#[derive(Debug)]
pub struct IfNoneMatch(pub Option<HeaderValue>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for IfNoneMatch {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.headers.get(header::IF_NONE_MATCH).cloned()))
    }
}

impl IfNoneMatch {
    /// True when it matches the current ETag (weak comparison), meaning 304.
    pub fn matches(&self, current: &HeaderValue) -> bool {
        none_match(self.0.as_ref(), current)
    }
}

fn none_match(value: Option<&HeaderValue>, current: &HeaderValue) -> bool {
    let Some(value) = value else {
        return false;
    };
    let current = current.to_str().unwrap_or_default().trim_matches('"');
    match entity_tags(value.to_str().unwrap_or("")) {
        None => true,
        Some(tags) => tags.iter().any(|(_, t)| *t == current),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: header::HeaderName, v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn if_match_admits_only_strong_tags_of_the_same_resource() {
        let p = if_match(
            &headers(header::IF_MATCH, "\"q1v3\", W/\"q1v4\", \"a1v5\""),
            'q',
            1,
        );
        assert!(p.admits(3));
        assert!(!p.admits(4));
        assert!(!p.admits(5));
        assert!(if_match(&headers(header::IF_MATCH, "*"), 'q', 1).admits(9));
        assert!(
            !if_match(&headers(header::IF_MATCH, "q1v3"), 'q', 1).admits(3),
            "unquoted is no tag"
        );
        for other_spelling in ["\"q1v03\"", "\"q1v+3\"", "\"q01v3\""] {
            assert!(
                !if_match(&headers(header::IF_MATCH, other_spelling), 'q', 1).admits(3),
                "{other_spelling} is another tag"
            );
        }
    }

    #[test]
    fn if_none_match_uses_weak_comparison() {
        let cur = etag('q', 1, 2);
        assert!(if_none_match(
            &headers(header::IF_NONE_MATCH, "W/\"q1v2\""),
            &cur
        ));
        assert!(!if_none_match(
            &headers(header::IF_NONE_MATCH, "\"q1v1\""),
            &cur
        ));
        assert!(if_none_match(&headers(header::IF_NONE_MATCH, "*"), &cur));
        assert!(!if_none_match(
            &headers(header::IF_NONE_MATCH, "garbage"),
            &cur
        ));
    }

    #[test]
    fn json_errors_are_classified_by_kind() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct T {
            a: Option<String>,
        }
        assert_eq!(
            parse_json::<T>(b"{").unwrap_err().code,
            ErrorCode::InvalidJson
        );
        assert_eq!(
            parse_json::<T>(b"{} x").unwrap_err().code,
            ErrorCode::InvalidJson
        );
        let unknown = parse_json::<T>(br#"{"b": 1}"#).unwrap_err();
        assert_eq!(unknown.code, ErrorCode::UnknownField);
        assert_eq!(unknown.errors[0].field, "b");
        let wrong = parse_json::<T>(br#"{"a": 1}"#).unwrap_err();
        assert_eq!(wrong.code, ErrorCode::ValidationFailed);
        assert_eq!(wrong.errors[0].field, "a");
    }
}
