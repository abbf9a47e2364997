//! The bulk format shared by `kb import`/`kb export`, `kb gen` and their HTTP twins: one
//! question with its answers per NDJSON line (or per element of a JSON array). Lines are parsed
//! and validated here, one at a time, so a bad line is reported without stopping the others.

use super::{CategoryName, FieldErrors, NewQuestion, Question, QuestionDraft, QuestionSize};
use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const EXTERNAL_ID_MAX_CHARS: usize = 200;

/// One question as a bulk line. `external_id` is the caller's stable identity for the question:
/// importing a line whose `external_id` already exists updates that question (or changes
/// nothing when the line is unchanged). Without it, the line's content hash is its identity.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"external_id": "q-1", "title": "GMP 指的是什么？", "category": "golang",
    "category_name": "Golang", "tags": ["scheduler"], "difficulty": "medium",
    "answers": [{"body": "G 是 goroutine，M 是线程，P 是处理器。"}]}))]
pub struct BulkQuestion {
    /// The question's id where it was exported from (export writes it so a mirror can match
    /// the change feed's events to lines); import ignores it: `external_id` is what identifies
    /// a line across imports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// A category slug; created on import when it does not exist yet.
    pub category: String,
    /// The name to give the category if the import creates it (default: the slug).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_name: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub difficulty: Option<String>,
    #[serde(default)]
    pub answers: Vec<BulkAnswer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkAnswer {
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl BulkQuestion {
    /// The export line of a stored question: everything needed to recreate it elsewhere.
    pub fn from_question(q: &Question, external_id: Option<String>) -> Self {
        Self {
            id: Some(q.id),
            external_id,
            title: q.title.clone(),
            body: q.body.clone(),
            category: q.category.slug.clone(),
            category_name: Some(q.category.name.clone()),
            tags: q.tags.clone(),
            difficulty: Some(q.difficulty.as_str().to_string()),
            answers: q
                .answers
                .iter()
                .map(|a| BulkAnswer {
                    body: a.body.clone(),
                    created_at: Some(a.created_at),
                    updated_at: Some(a.updated_at),
                })
                .collect(),
            created_at: Some(q.created_at),
            updated_at: Some(q.updated_at),
        }
    }
}

/// A validated bulk line, ready for the store.
#[derive(Debug, Clone)]
pub struct ImportItem {
    pub external_id: Option<String>,
    pub question: NewQuestion,
    pub category_name: CategoryName,
    /// Microseconds; `None` means "now".
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    /// `(created_at, updated_at)` per answer, in microseconds.
    pub answer_times: Vec<(Option<i64>, Option<i64>)>,
    /// SHA-256 (hex) of the line's canonical JSON: equal lines, equal hashes, whatever the
    /// key order or spacing.
    pub hash: String,
}

/// Parses and validates one line; the message names the offending field.
pub fn parse_line(text: &str) -> Result<ImportItem, String> {
    let line: BulkQuestion = serde_json::from_str(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => e.to_string(),
        _ => format!("not valid JSON: {e}"),
    })?;
    validate(line)
}

/// As [`parse_line`], for an element already parsed (a JSON array's item).
pub fn parse_value(value: serde_json::Value) -> Result<ImportItem, String> {
    validate(serde_json::from_value(value).map_err(|e| e.to_string())?)
}

/// Validates a line already in the bulk shape. Every bad field is named in the message
/// (`title: …; answers[0].body: …`).
pub fn validate(line: BulkQuestion) -> Result<ImportItem, String> {
    // The hash covers the parsed line re-serialized (fixed key order, no spacing, absent and
    // empty lists alike), so equal content hashes equally however it was written.
    let hash = crate::secret::sha256_hex(&serde_json::to_string(&line).expect("a line serializes"));
    let mut errors = FieldErrors::new();
    let external_id = match line.external_id.as_deref() {
        None => None,
        Some(id) => errors.check("external_id", parse_external_id(id)),
    };
    let category_name = errors.check(
        "category_name",
        CategoryName::parse(line.category_name.as_deref().unwrap_or(&line.category)),
    );
    let draft = QuestionDraft {
        title: Some(&line.title),
        body: line.body.as_deref(),
        category: Some(&line.category),
        tags: &line.tags,
        difficulty: line.difficulty.as_deref(),
        answers: line.answers.iter().map(|a| Ok(a.body.as_str())).collect(),
    };
    let question = match NewQuestion::parse(&draft) {
        Ok(q) => match QuestionSize::of(&q).check_growth(QuestionSize::default()) {
            Ok(()) => Some(q),
            Err(e) => {
                errors.push("answers", e.to_string());
                None
            }
        },
        Err(e) => {
            for f in e.into_vec() {
                errors.push(f.field, f.message);
            }
            None
        }
    };
    // Timestamps kb stores are echoed back; keep them to years it writes with four digits.
    let mut times: Vec<(String, Option<DateTime<Utc>>)> = vec![
        ("created_at".into(), line.created_at),
        ("updated_at".into(), line.updated_at),
    ];
    for (i, a) in line.answers.iter().enumerate() {
        times.push((format!("answers[{i}].created_at"), a.created_at));
        times.push((format!("answers[{i}].updated_at"), a.updated_at));
    }
    for (field, t) in times {
        if t.is_some_and(|t| !(1970..=9999).contains(&t.year())) {
            errors.push(field, "must be between the years 1970 and 9999");
        }
    }
    let (Some(question), Some(category_name), true) = (question, category_name, errors.is_empty())
    else {
        return Err(errors.to_string());
    };
    let micros = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp_micros());
    Ok(ImportItem {
        external_id,
        question,
        category_name,
        created_at: micros(line.created_at),
        updated_at: micros(line.updated_at),
        answer_times: line
            .answers
            .iter()
            .map(|a| (micros(a.created_at), micros(a.updated_at)))
            .collect(),
        hash,
    })
}

fn parse_external_id(id: &str) -> Result<String, String> {
    let n = id.chars().count();
    if n == 0 || n > EXTERNAL_ID_MAX_CHARS || id.trim() != id {
        return Err(format!(
            "must be 1–{EXTERNAL_ID_MAX_CHARS} characters without surrounding spaces"
        ));
    }
    if id.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_lines_hash_equally_whatever_their_key_order() {
        let a = parse_line(r#"{"title":"什么是 GMP？","category":"golang"}"#).unwrap();
        let b = parse_line(r#"{ "category": "golang", "title": "什么是 GMP？" }"#).unwrap();
        let c = parse_line(r#"{"title":"什么是 GC？","category":"golang"}"#).unwrap();
        assert_eq!(a.hash, b.hash);
        assert_ne!(a.hash, c.hash);
    }

    #[test]
    fn a_bad_line_names_the_field_at_fault() {
        let err = |s: &str| parse_line(s).unwrap_err();
        assert!(err("{").starts_with("not valid JSON"));
        assert!(err(r#"{"title":"","category":"golang"}"#).starts_with("title:"));
        assert!(err(r#"{"title":"t","category":"Go Lang"}"#).starts_with("category:"));
        assert!(
            err(r#"{"title":"t","category":"go","answers":[{"body":""}]}"#)
                .starts_with("answers[0].body:")
        );
        assert!(err(r#"{"title":"t","category":"go","colour":1}"#).contains("unknown field"));
        assert!(
            err(r#"{"title":"t","category":"go","external_id":" x"}"#).starts_with("external_id:")
        );
    }
}
