//! The change feed's vocabulary: what kinds of event there are, how a client names them in a
//! filter, and the position a client holds in the feed (its cursor).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// What happened to a question or a category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
pub enum EventType {
    #[serde(rename = "question.created")]
    QuestionCreated,
    #[serde(rename = "question.updated")]
    QuestionUpdated,
    #[serde(rename = "question.deleted")]
    QuestionDeleted,
    #[serde(rename = "category.created")]
    CategoryCreated,
    #[serde(rename = "category.updated")]
    CategoryUpdated,
    #[serde(rename = "category.deleted")]
    CategoryDeleted,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::QuestionCreated,
        EventType::QuestionUpdated,
        EventType::QuestionDeleted,
        EventType::CategoryCreated,
        EventType::CategoryUpdated,
        EventType::CategoryDeleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::QuestionCreated => "question.created",
            EventType::QuestionUpdated => "question.updated",
            EventType::QuestionDeleted => "question.deleted",
            EventType::CategoryCreated => "category.created",
            EventType::CategoryUpdated => "category.updated",
            EventType::CategoryDeleted => "category.deleted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// A filter as a client writes it: a comma-separated list of types, where `question.*`
    /// (or `category.*`) stands for every type of that resource. Duplicates collapse; the
    /// result is in the order of [`EventType::ALL`].
    pub fn parse_list(list: &str) -> Result<Vec<Self>, String> {
        let mut chosen = [false; 6];
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let matched: Vec<usize> = match part.strip_suffix(".*") {
                Some(resource) => (0..6)
                    .filter(|&i| Self::ALL[i].as_str().split('.').next() == Some(resource))
                    .collect(),
                None => (0..6).filter(|&i| Self::ALL[i].as_str() == part).collect(),
            };
            if matched.is_empty() {
                return Err(format!(
                    "`{part}` is not an event type; the types are {}",
                    Self::ALL.map(Self::as_str).join(", ")
                ));
            }
            for i in matched {
                chosen[i] = true;
            }
        }
        if !chosen.contains(&true) {
            return Err("name at least one event type".into());
        }
        Ok((0..6)
            .filter(|&i| chosen[i])
            .map(|i| Self::ALL[i])
            .collect())
    }
}

/// One event of the change feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeEvent {
    /// Stable and unique in this knowledge base: the same event always has this id (on every
    /// replica, in the feed, the stream and webhook deliveries), so it de-duplicates.
    #[schema(example = "evt_AQAAAAAAAAAAAAAAEg")]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// When the change was committed.
    pub at: DateTime<Utc>,
    /// The position just after this event: pass it as `after` to continue from here.
    pub cursor: String,
    /// For `question.created` and `question.updated`: the question exactly as `GET
    /// /api/v1/questions/{id}` rendered it after the change. For `question.deleted`: the
    /// tombstone `{id, external_id, version, deleted_at}` (version one past the last). For
    /// category events: the category as `GET /api/v1/categories/{slug}` renders it.
    #[schema(value_type = Object)]
    pub data: Box<serde_json::value::RawValue>,
}

impl ChangeEvent {
    /// The event at `seq` of the database tagged `tag`, as the feed, the stream and webhook
    /// deliveries carry it.
    pub fn new(
        tag: [u8; 4],
        seq: i64,
        kind: EventType,
        at: DateTime<Utc>,
        data: Box<serde_json::value::RawValue>,
    ) -> Self {
        let cursor = Cursor { seq }.encode(tag);
        ChangeEvent {
            id: format!("evt_{cursor}"),
            kind,
            at,
            cursor,
            data,
        }
    }
}

/// A position in one database's change feed: every event up to `seq` is behind it. On the
/// wire it is opaque (base64url of a format byte, four bytes naming the database and the
/// sequence), so a cursor from another kb is recognised instead of silently misread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub seq: i64,
}

/// Why a presented cursor is not one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error(
        "the cursor is malformed; pass back a `next_cursor` or event `cursor` exactly as kb returned it"
    )]
    Malformed,
    #[error(
        "the cursor belongs to another kb database; start again from this database's export or from the start of its feed"
    )]
    Foreign,
}

const CURSOR_FORMAT: u8 = 1;

impl Cursor {
    /// The tag that ties a cursor to the database it came from (the same on every replica).
    pub fn database_tag(database_id: &str) -> [u8; 4] {
        let digest = Sha256::digest(database_id.as_bytes());
        [digest[0], digest[1], digest[2], digest[3]]
    }

    pub fn encode(self, tag: [u8; 4]) -> String {
        let mut bytes = [0u8; 13];
        bytes[0] = CURSOR_FORMAT;
        bytes[1..5].copy_from_slice(&tag);
        bytes[5..].copy_from_slice(&self.seq.to_be_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    pub fn decode(text: &str, tag: [u8; 4]) -> Result<Self, CursorError> {
        if text.len() > 64 {
            return Err(CursorError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text.as_bytes())
            .map_err(|_| CursorError::Malformed)?;
        if bytes.len() != 13 || bytes[0] != CURSOR_FORMAT {
            return Err(CursorError::Malformed);
        }
        if bytes[1..5] != tag {
            return Err(CursorError::Foreign);
        }
        let seq = i64::from_be_bytes(bytes[5..].try_into().map_err(|_| CursorError::Malformed)?);
        if seq < 0 {
            return Err(CursorError::Malformed);
        }
        Ok(Cursor { seq })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_the_position_it_was_made_from() {
        let tag = Cursor::database_tag("db-1");
        let text = Cursor { seq: 1234 }.encode(tag);
        assert_eq!(Cursor::decode(&text, tag), Ok(Cursor { seq: 1234 }));
    }

    #[test]
    fn a_cursor_from_another_database_is_foreign() {
        let text = Cursor { seq: 5 }.encode(Cursor::database_tag("db-1"));
        assert_eq!(
            Cursor::decode(&text, Cursor::database_tag("db-2")),
            Err(CursorError::Foreign)
        );
    }

    #[test]
    fn garbage_is_a_malformed_cursor() {
        let tag = Cursor::database_tag("db-1");
        for bad in ["", "abc", "!!!!", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
            assert_eq!(
                Cursor::decode(bad, tag),
                Err(CursorError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_type_list_accepts_wildcards_and_refuses_unknown_names() {
        assert_eq!(
            EventType::parse_list("question.*").unwrap(),
            vec![
                EventType::QuestionCreated,
                EventType::QuestionUpdated,
                EventType::QuestionDeleted
            ]
        );
        assert_eq!(
            EventType::parse_list("category.created, question.deleted").unwrap(),
            vec![EventType::QuestionDeleted, EventType::CategoryCreated]
        );
        assert!(EventType::parse_list("question.moved").is_err());
        assert!(EventType::parse_list(",").is_err());
    }
}
