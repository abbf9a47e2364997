//! Webhooks as kb keeps them: an endpoint told about the change feed's events, and the
//! deliveries made to it. Where an endpoint's URL may point is decided in `crate::webhook`
//! (it needs the network); what it asks for is parsed here.

use super::changes::EventType;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Endpoints one knowledge base may have: each costs a queue, a lease and a sender.
pub const WEBHOOKS_MAX: i64 = 100;
/// Characters of a description.
pub const DESCRIPTION_MAX_CHARS: usize = 500;
/// Items of an endpoint's event list.
pub const EVENTS_MAX: usize = 8;
/// The type of the test event `POST /api/v1/webhooks/{id}/ping` sends (never in the feed).
pub const PING_TYPE: &str = "webhook.ping";

/// The events an endpoint wants, as a client lists them (at most [`EVENTS_MAX`] items): feed
/// types, `question.*` or `category.*`, or `*` for every type (also those added later).
/// `None`: every type.
pub fn parse_events(list: &[String]) -> Result<Option<Vec<EventType>>, String> {
    if list.is_empty() {
        return Err("name at least one event type, or `*` for all".into());
    }
    if list.len() > EVENTS_MAX {
        return Err(format!(
            "at most {EVENTS_MAX} items (there are {} types; `question.*` and `category.*` name them by resource)",
            EventType::ALL.len()
        ));
    }
    // `*` is every type, whatever else is listed beside it.
    if list.iter().any(|t| t.trim() == "*") {
        return Ok(None);
    }
    if let Some(bad) = list.iter().find(|t| t.contains(',')) {
        return Err(format!("`{bad}`: give each type as its own item"));
    }
    EventType::parse_list(&list.join(",")).map(Some)
}

/// A description: up to [`DESCRIPTION_MAX_CHARS`] characters, newlines allowed.
pub fn parse_description(raw: &str) -> Result<String, String> {
    let n = raw.chars().count();
    if n > DESCRIPTION_MAX_CHARS {
        return Err(format!(
            "must be at most {DESCRIPTION_MAX_CHARS} characters (got {n})"
        ));
    }
    super::check_controls(raw, true)?;
    Ok(raw.trim().to_string())
}

/// An endpoint as stored.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    /// `None`: every type.
    pub events: Option<Vec<EventType>>,
    pub category: Option<String>,
    pub description: String,
    pub enabled: bool,
    /// Why kb disabled it (a receiver that answered 410, or failed for the retry period).
    pub disabled_reason: Option<String>,
    /// While a rotated-out secret still signs.
    pub old_secret_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Deliveries waiting in its queue.
    pub pending: i64,
    /// When the oldest of them was queued.
    pub oldest_pending_at: Option<DateTime<Utc>>,
}

/// What a new endpoint is, parsed (its URL checked by the service).
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub events: Option<Vec<EventType>>,
    pub category: Option<String>,
    pub description: String,
    pub enabled: bool,
}

/// A change to an endpoint: each field that is `Some` is set.
#[derive(Debug, Clone, Default)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub events: Option<Option<Vec<EventType>>>,
    pub category: Option<Option<String>>,
    pub description: Option<String>,
    pub enabled: Option<bool>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// In the queue: not yet sent, or failed and waiting for its next attempt.
    Pending,
    /// A receiver answered 2xx.
    Delivered,
    /// Given up: the endpoint was disabled (410, or failures for the whole retry period), or
    /// a ping or a manual retry failed.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// One event for one endpoint, with its latest attempt.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: i64,
    /// The `webhook-id` header: the feed event's `id` (the same on every attempt and replica).
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub response_status: Option<u16>,
    pub latency_ms: Option<i64>,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_star_means_every_type_whatever_is_listed_beside_it() {
        assert_eq!(parse_events(&list(&["*"])), Ok(None));
        assert_eq!(parse_events(&list(&["*", "question.created"])), Ok(None));
        assert!(parse_events(&list(&["question.*"; 9])).is_err());
    }

    #[test]
    fn event_lists_expand_wildcards_and_refuse_unknown_types() {
        assert_eq!(
            parse_events(&list(&["category.*", "question.deleted"])),
            Ok(Some(vec![
                EventType::QuestionDeleted,
                EventType::CategoryCreated,
                EventType::CategoryUpdated,
                EventType::CategoryDeleted,
            ]))
        );
        assert!(
            parse_events(&list(&["question.moved"]))
                .unwrap_err()
                .contains("question.moved")
        );
        assert!(parse_events(&[]).is_err());
        assert!(parse_events(&list(&["question.created,question.deleted"])).is_err());
    }

    #[test]
    fn descriptions_are_bounded_and_free_of_controls() {
        assert_eq!(parse_description("  chat bot \n").unwrap(), "chat bot");
        assert!(parse_description(&"x".repeat(501)).is_err());
        assert!(parse_description("a\u{0}b").is_err());
    }
}
