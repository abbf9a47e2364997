//! Webhook endpoints and their deliveries, written once for both databases.
//!
//! An endpoint's queue is its `pending` deliveries in id order. Only the replica holding the
//! endpoint's lease fills the queue from the change log or sends from it, so the events reach
//! the endpoint once each and in the feed's order; a lease is taken without waiting (a replica
//! that finds it held moves on to another endpoint) and runs out on its own if its holder dies.
//! Lease times are the replicas' clocks, like idempotency claims: keep them in step (NTP).

use super::changes::ChangeSql;
use super::sql::Conn;
use super::{Store, StoreResult, decode_error, from_micros, now_micros};
use crate::domain::changes::EventType;
use crate::domain::webhooks::{Delivery, DeliveryStatus, NewWebhook, Webhook, WebhookPatch};
use sqlx::FromRow;

/// An endpoint's row, with its queue's length and age.
#[derive(FromRow)]
struct WebhookRow {
    id: i64,
    url: String,
    events: Option<String>,
    category: Option<String>,
    description: String,
    enabled: bool,
    disabled_reason: Option<String>,
    old_secret_until: Option<i64>,
    created_at: i64,
    updated_at: i64,
    pending: i64,
    oldest_pending_at: Option<i64>,
}

fn events_from_json(raw: Option<&str>) -> sqlx::Result<Option<Vec<EventType>>> {
    raw.map(|raw| {
        let names: Vec<String> = serde_json::from_str(raw).map_err(decode_error)?;
        names
            .iter()
            .map(|n| EventType::parse(n).ok_or_else(|| decode_error(format!("event type `{n}`"))))
            .collect()
    })
    .transpose()
}

fn events_to_json(events: Option<&[EventType]>) -> Option<String> {
    events.map(|list| {
        serde_json::to_string(&list.iter().map(|t| t.as_str()).collect::<Vec<_>>())
            .expect("strings serialize")
    })
}

impl TryFrom<WebhookRow> for Webhook {
    type Error = sqlx::Error;

    fn try_from(r: WebhookRow) -> Result<Self, Self::Error> {
        Ok(Webhook {
            id: r.id,
            events: events_from_json(r.events.as_deref())?,
            url: r.url,
            category: r.category,
            description: r.description,
            enabled: r.enabled,
            disabled_reason: r.disabled_reason,
            old_secret_until: r.old_secret_until.map(from_micros),
            created_at: from_micros(r.created_at),
            updated_at: from_micros(r.updated_at),
            pending: r.pending,
            oldest_pending_at: r.oldest_pending_at.map(from_micros),
        })
    }
}

/// Every endpoint (or the one of `$1` when it is not NULL) with its queue.
/// What waits for endpoint `w`, as `pending` and `oldest_pending_at`: its queued deliveries,
/// and the events after its queue's end still in the change log (a queue is filled only once
/// it is empty, so a failing endpoint's later events wait there). Those are counted by the
/// endpoint's category, not its event types: for an endpoint that names types, an upper bound.
macro_rules! queue_columns {
    () => {
        "(SELECT count(*) FROM webhook_deliveries d
          WHERE d.webhook_id = w.id AND d.status = 'pending')
         + (SELECT count(*) FROM index_changes e
            WHERE e.seq > w.enqueued_upto AND e.event IS NOT NULL
              AND (w.category IS NULL OR e.category = w.category)) AS pending,
         COALESCE((SELECT min(d.created_at) FROM webhook_deliveries d
                   WHERE d.webhook_id = w.id AND d.status = 'pending'),
                  (SELECT min(e.created_at) FROM index_changes e
                   WHERE e.seq > w.enqueued_upto AND e.event IS NOT NULL
                     AND (w.category IS NULL OR e.category = w.category))) AS oldest_pending_at"
    };
}

const SELECT_WEBHOOKS: &str = concat!(
    "SELECT w.id, w.url, w.events, w.category, w.description, w.enabled,
        w.disabled_reason, w.old_secret_until, w.created_at, w.updated_at, ",
    queue_columns!(),
    " FROM webhooks w WHERE $1 IS NULL OR w.id = $1 ORDER BY w.id"
);

#[derive(FromRow)]
struct DeliveryRow {
    id: i64,
    webhook_id: i64,
    event_id: String,
    #[sqlx(rename = "type")]
    event_type: String,
    status: String,
    attempts: i64,
    response_status: Option<i64>,
    latency_ms: Option<i64>,
    error: Option<String>,
    response_excerpt: Option<String>,
    created_at: i64,
    last_attempt_at: Option<i64>,
    next_attempt_at: Option<i64>,
    delivered_at: Option<i64>,
}

/// The start of every statement that reads [`DeliveryRow`]s.
macro_rules! select_deliveries {
    () => {
        "SELECT id, webhook_id, event_id, type, status, attempts, response_status, latency_ms,
            error, response_excerpt, created_at, last_attempt_at, next_attempt_at, delivered_at
         FROM webhook_deliveries "
    };
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = sqlx::Error;

    fn try_from(r: DeliveryRow) -> Result<Self, Self::Error> {
        Ok(Delivery {
            id: r.id,
            webhook_id: r.webhook_id,
            event_id: r.event_id,
            event_type: r.event_type,
            status: DeliveryStatus::parse(&r.status)
                .ok_or_else(|| decode_error(format!("delivery status `{}`", r.status)))?,
            attempts: r.attempts,
            response_status: r.response_status.and_then(|s| u16::try_from(s).ok()),
            latency_ms: r.latency_ms,
            error: r.error,
            response_excerpt: r.response_excerpt,
            created_at: from_micros(r.created_at),
            last_attempt_at: r.last_attempt_at.map(from_micros),
            next_attempt_at: r.next_attempt_at.map(from_micros),
            delivered_at: r.delivered_at.map(from_micros),
        })
    }
}

/// What the replica holding an endpoint's lease needs to fill and send its queue.
#[derive(Debug, Clone, FromRow)]
pub struct LeasedWebhook {
    pub id: i64,
    pub url: String,
    pub events: Option<String>,
    pub category: Option<String>,
    pub secret: String,
    pub old_secret: Option<String>,
    pub old_secret_until: Option<i64>,
    pub enqueued_upto: i64,
    pub lease_until: i64,
}

impl LeasedWebhook {
    /// The event types it wants (`None`: all).
    pub fn event_types(&self) -> StoreResult<Option<Vec<EventType>>> {
        Ok(events_from_json(self.events.as_deref())?)
    }
}

/// [`LeasedWebhook`] of endpoint `$1`.
const SELECT_LEASED: &str = "SELECT id, url, events, category, secret, old_secret,
    old_secret_until, enqueued_upto, lease_until
 FROM webhooks WHERE id = $1";

/// A delivery waiting in a queue, as its sender needs it.
#[derive(Debug, Clone, FromRow)]
pub struct PendingDelivery {
    pub id: i64,
    pub event_id: String,
    pub payload: String,
    pub attempts: i64,
    pub first_attempt_at: Option<i64>,
    pub next_attempt_at: Option<i64>,
}

/// A delivery as a manual attempt needs it (any status).
#[derive(Debug, Clone, FromRow)]
pub struct StoredDelivery {
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: String,
    pub payload: String,
    pub status: String,
}

/// One event to queue for an endpoint.
#[derive(Debug, Clone)]
pub struct QueuedEvent {
    pub seq: i64,
    pub event_id: String,
    pub event_type: &'static str,
    pub payload: String,
}

/// The outcome of one attempt, as recorded on its delivery.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub status: DeliveryStatus,
    /// Microseconds.
    pub at: i64,
    pub next_attempt_at: Option<i64>,
    pub response_status: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub excerpt: Option<String>,
}

/// Queue figures of one endpoint, for the metrics.
#[derive(Debug, Clone, FromRow)]
pub struct QueueStats {
    pub webhook_id: i64,
    pub pending: i64,
    pub oldest_pending_at: Option<i64>,
}

impl Store {
    /// Every endpoint with its queue, by id.
    pub async fn webhooks(&self) -> StoreResult<Vec<Webhook>> {
        self.reading(async |c| select_webhooks(c, None).await).await
    }

    pub async fn webhook(&self, id: i64) -> StoreResult<Option<Webhook>> {
        self.reading(async |c| Ok(select_webhooks(c, Some(id)).await?.pop()))
            .await
    }

    /// Creates an endpoint that starts with the next change written; `None` when there are
    /// `max` already.
    pub async fn create_webhook(
        &self,
        new: &NewWebhook,
        secret: &str,
        max: i64,
    ) -> StoreResult<Option<Webhook>> {
        let now = now_micros();
        let events = events_to_json(new.events.as_deref());
        self.write(async |c| {
            let count: i64 = c
                .value("SELECT count(*) FROM webhooks", &[])
                .await?
                .unwrap_or(0);
            if count >= max {
                return Ok(None);
            }
            let head = c.last_change_seq().await?;
            let (id,): (i64,) = c
                .fetch_one(
                    "INSERT INTO webhooks (url, events, category, description, enabled, secret,
                        enqueued_upto, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
                    &[
                        new.url.as_str().into(),
                        events.as_deref().into(),
                        new.category.as_deref().into(),
                        new.description.as_str().into(),
                        new.enabled.into(),
                        secret.into(),
                        head.into(),
                        now.into(),
                    ],
                )
                .await?;
            Ok(select_webhooks(c, Some(id)).await?.pop())
        })
        .await
    }

    /// Changes an endpoint; `None` if there is none. Enabling a disabled endpoint puts the
    /// deliveries it gave up on back at the head of its queue, with a new retry period.
    pub async fn update_webhook(
        &self,
        id: i64,
        patch: &WebhookPatch,
    ) -> StoreResult<Option<Webhook>> {
        let now = now_micros();
        self.write(async |c| {
            let Some(was_enabled) = c
                .value::<bool>("SELECT enabled FROM webhooks WHERE id = $1", &[id.into()])
                .await?
            else {
                return Ok(None);
            };
            if let Some(url) = &patch.url {
                c.execute(
                    "UPDATE webhooks SET url = $2 WHERE id = $1",
                    &[id.into(), url.as_str().into()],
                )
                .await?;
            }
            if let Some(events) = &patch.events {
                let events = events_to_json(events.as_deref());
                c.execute(
                    "UPDATE webhooks SET events = $2 WHERE id = $1",
                    &[id.into(), events.as_deref().into()],
                )
                .await?;
            }
            if let Some(category) = &patch.category {
                c.execute(
                    "UPDATE webhooks SET category = $2 WHERE id = $1",
                    &[id.into(), category.as_deref().into()],
                )
                .await?;
            }
            if let Some(description) = &patch.description {
                c.execute(
                    "UPDATE webhooks SET description = $2 WHERE id = $1",
                    &[id.into(), description.as_str().into()],
                )
                .await?;
            }
            match patch.enabled {
                Some(true) if !was_enabled => {
                    c.execute(
                        "UPDATE webhooks SET enabled = TRUE, disabled_reason = NULL WHERE id = $1",
                        &[id.into()],
                    )
                    .await?;
                    c.execute(
                        "UPDATE webhook_deliveries
                         SET status = 'pending', next_attempt_at = $2, first_attempt_at = NULL
                         WHERE webhook_id = $1 AND status = 'failed' AND seq IS NOT NULL",
                        &[id.into(), now.into()],
                    )
                    .await?;
                }
                Some(false) if was_enabled => {
                    c.execute(
                        "UPDATE webhooks SET enabled = FALSE, disabled_reason = NULL WHERE id = $1",
                        &[id.into()],
                    )
                    .await?;
                }
                _ => {}
            }
            c.execute(
                "UPDATE webhooks SET updated_at = $2 WHERE id = $1",
                &[id.into(), now.into()],
            )
            .await?;
            Ok(select_webhooks(c, Some(id)).await?.pop())
        })
        .await
    }

    /// Deletes an endpoint and its deliveries; false if there was none.
    pub async fn delete_webhook(&self, id: i64) -> StoreResult<bool> {
        self.write(async |c| {
            c.execute(
                "DELETE FROM webhook_deliveries WHERE webhook_id = $1",
                &[id.into()],
            )
            .await?;
            Ok(
                c.execute("DELETE FROM webhooks WHERE id = $1", &[id.into()])
                    .await?
                    == 1,
            )
        })
        .await
    }

    /// Makes `secret` the endpoint's signing secret; the one it replaces keeps signing until
    /// `old_until` (microseconds). `None` if there is no such endpoint.
    pub async fn rotate_webhook_secret(
        &self,
        id: i64,
        secret: &str,
        old_until: i64,
    ) -> StoreResult<Option<Webhook>> {
        let now = now_micros();
        self.write(async |c| {
            let n = c
                .execute(
                    "UPDATE webhooks SET old_secret = secret, old_secret_until = $3,
                        secret = $2, updated_at = $4
                     WHERE id = $1",
                    &[id.into(), secret.into(), old_until.into(), now.into()],
                )
                .await?;
            if n == 0 {
                return Ok(None);
            }
            Ok(select_webhooks(c, Some(id)).await?.pop())
        })
        .await
    }

    /// An endpoint's deliveries, newest first, below id `before` (all when `None`), of one
    /// status (any when `None`), at most `limit`.
    pub async fn webhook_deliveries(
        &self,
        webhook_id: i64,
        status: Option<DeliveryStatus>,
        before: Option<i64>,
        limit: i64,
    ) -> StoreResult<Vec<Delivery>> {
        self.reading(async |c| {
            let rows: Vec<DeliveryRow> = c
                .fetch_all(
                    concat!(
                        select_deliveries!(),
                        "WHERE webhook_id = $1 AND ($2 IS NULL OR status = $2)
                           AND ($3 IS NULL OR id < $3)
                         ORDER BY id DESC LIMIT $4"
                    ),
                    &[
                        webhook_id.into(),
                        status.map(DeliveryStatus::as_str).into(),
                        before.into(),
                        limit.into(),
                    ],
                )
                .await?;
            Ok(rows
                .into_iter()
                .map(Delivery::try_from)
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    /// One delivery of an endpoint.
    pub async fn webhook_delivery(
        &self,
        webhook_id: i64,
        id: i64,
    ) -> StoreResult<Option<Delivery>> {
        self.reading(async |c| {
            let row: Option<DeliveryRow> = c
                .fetch_optional(
                    concat!(select_deliveries!(), "WHERE webhook_id = $1 AND id = $2"),
                    &[webhook_id.into(), id.into()],
                )
                .await?;
            Ok(row.map(Delivery::try_from).transpose()?)
        })
        .await
    }

    /// A delivery with its body, for an attempt made by hand.
    pub async fn stored_delivery(
        &self,
        webhook_id: i64,
        id: i64,
    ) -> StoreResult<Option<StoredDelivery>> {
        self.reading(async |c| {
            Ok(c.fetch_optional(
                "SELECT id, webhook_id, event_id, payload, status FROM webhook_deliveries
                 WHERE webhook_id = $1 AND id = $2",
                &[webhook_id.into(), id.into()],
            )
            .await?)
        })
        .await
    }

    /// Makes a pending delivery due now; false if it is not pending.
    pub async fn hasten_delivery(&self, webhook_id: i64, id: i64) -> StoreResult<bool> {
        let now = now_micros();
        self.write(async |c| {
            Ok(c.execute(
                "UPDATE webhook_deliveries SET next_attempt_at = $3
                 WHERE webhook_id = $1 AND id = $2 AND status = 'pending'",
                &[webhook_id.into(), id.into(), now.into()],
            )
            .await?
                == 1)
        })
        .await
    }

    /// Records a delivery made outside any queue (a ping), already attempted.
    pub async fn record_ping(
        &self,
        webhook_id: i64,
        event_id: &str,
        payload: &str,
        attempt: &AttemptRecord,
    ) -> StoreResult<Option<Delivery>> {
        self.write(async |c| {
            let (id,): (i64,) = c
                .fetch_one(
                    "INSERT INTO webhook_deliveries (webhook_id, seq, event_id, type, payload,
                        status, attempts, first_attempt_at, last_attempt_at, response_status,
                        latency_ms, error, response_excerpt, created_at, delivered_at)
                     VALUES ($1, NULL, $2, $3, $4, $5, 1, $6, $6, $7, $8, $9, $10, $6,
                        CASE WHEN $5 = 'delivered' THEN $6 END)
                     RETURNING id",
                    &[
                        webhook_id.into(),
                        event_id.into(),
                        crate::domain::webhooks::PING_TYPE.into(),
                        payload.into(),
                        attempt.status.as_str().into(),
                        attempt.at.into(),
                        attempt.response_status.map(i64::from).into(),
                        attempt.latency_ms.into(),
                        attempt.error.as_deref().into(),
                        attempt.excerpt.as_deref().into(),
                    ],
                )
                .await?;
            let row: Option<DeliveryRow> = c
                .fetch_optional(
                    concat!(select_deliveries!(), "WHERE webhook_id = $1 AND id = $2"),
                    &[webhook_id.into(), id.into()],
                )
                .await?;
            Ok(row.map(Delivery::try_from).transpose()?)
        })
        .await
    }

    /// Records the outcome of an attempt on its delivery.
    pub async fn record_attempt(&self, id: i64, a: &AttemptRecord) -> StoreResult<()> {
        self.write(async |c| {
            c.execute(
                "UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1,
                    first_attempt_at = COALESCE(first_attempt_at, $3), last_attempt_at = $3,
                    next_attempt_at = $4, response_status = $5, latency_ms = $6, error = $7,
                    response_excerpt = $8,
                    delivered_at = CASE WHEN $2 = 'delivered' THEN $3 ELSE delivered_at END
                 WHERE id = $1",
                &[
                    id.into(),
                    a.status.as_str().into(),
                    a.at.into(),
                    a.next_attempt_at.into(),
                    a.response_status.map(i64::from).into(),
                    a.latency_ms.into(),
                    a.error.as_deref().into(),
                    a.excerpt.as_deref().into(),
                ],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Disables an endpoint, keeping why.
    pub async fn disable_webhook(&self, id: i64, reason: &str) -> StoreResult<()> {
        let now = now_micros();
        self.write(async |c| {
            c.execute(
                "UPDATE webhooks SET enabled = FALSE, disabled_reason = $2, updated_at = $3,
                    lease_owner = NULL, lease_until = 0
                 WHERE id = $1",
                &[id.into(), reason.into(), now.into()],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// The enabled endpoints with work now whose lease is free (or `owner`'s): the head of
    /// their queue is due by `now`, or their queue is empty and events follow its end (below
    /// `head`). Only the head counts: what waits behind it is sent after it, and while it waits
    /// for a retry new events wait in the change log, rather than every write costing each
    /// failing endpoint a lease and a queue fill.
    pub async fn webhooks_with_work(
        &self,
        head: i64,
        now: i64,
        owner: &str,
    ) -> StoreResult<Vec<i64>> {
        self.reading(async |c| {
            Ok(c.values(
                "SELECT w.id FROM webhooks w
                 WHERE w.enabled AND (w.lease_until < $2 OR w.lease_owner = $3)
                   AND COALESCE((SELECT d.next_attempt_at FROM webhook_deliveries d
                                 WHERE d.webhook_id = w.id AND d.status = 'pending'
                                 ORDER BY d.id LIMIT 1),
                                CASE WHEN w.enqueued_upto < $1 THEN $2 ELSE NULL END) <= $2
                 ORDER BY w.id",
                &[head.into(), now.into(), owner.into()],
            )
            .await?)
        })
        .await
    }

    /// When the head of the queue of an enabled endpoint that nobody holds falls due, or a lease
    /// held elsewhere runs out (microseconds), if ever. Endpoints held by a live lease (this
    /// replica's senders included) are their holder's business until it lets go.
    pub async fn next_webhook_work(&self, owner: &str, now: i64) -> StoreResult<Option<i64>> {
        self.reading(async |c| {
            let due: Option<i64> = c
                .value(
                    "SELECT min((SELECT d.next_attempt_at FROM webhook_deliveries d
                                 WHERE d.webhook_id = w.id AND d.status = 'pending'
                                 ORDER BY d.id LIMIT 1))
                     FROM webhooks w WHERE w.enabled AND w.lease_until < $1",
                    &[now.into()],
                )
                .await?
                .flatten();
            let lease: Option<i64> = c
                .value(
                    "SELECT min(lease_until) FROM webhooks
                     WHERE enabled AND lease_owner IS NOT NULL AND lease_owner <> $1",
                    &[owner.into()],
                )
                .await?
                .flatten();
            Ok(match (due, lease) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            })
        })
        .await
    }

    /// Takes (or extends) the lease on an enabled endpoint until `until` when it is free or
    /// already `owner`'s; what sending needs, or `None` if another replica holds it.
    pub async fn lease_webhook(
        &self,
        id: i64,
        owner: &str,
        now: i64,
        until: i64,
    ) -> StoreResult<Option<LeasedWebhook>> {
        self.write_unflushed(async |c| {
            let n = c
                .execute(
                    "UPDATE webhooks SET lease_owner = $2, lease_until = $4
                     WHERE id = $1 AND enabled AND (lease_until < $3 OR lease_owner = $2)",
                    &[id.into(), owner.into(), now.into(), until.into()],
                )
                .await?;
            if n == 0 {
                return Ok(None);
            }
            Ok(c.fetch_optional(SELECT_LEASED, &[id.into()]).await?)
        })
        .await
    }

    /// What signing a delivery to an endpoint needs, without its lease (an attempt made by
    /// hand, outside the queue).
    pub async fn webhook_signing(&self, id: i64) -> StoreResult<Option<LeasedWebhook>> {
        self.reading(async |c| Ok(c.fetch_optional(SELECT_LEASED, &[id.into()]).await?))
            .await
    }

    /// Gives up `owner`'s lease on an endpoint, so another replica need not wait it out.
    pub async fn release_webhook(&self, id: i64, owner: &str) -> StoreResult<()> {
        self.write_unflushed(async |c| {
            c.execute(
                "UPDATE webhooks SET lease_owner = NULL, lease_until = 0
                 WHERE id = $1 AND lease_owner = $2",
                &[id.into(), owner.into()],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Gives up every lease (a process that alone serves the database, at start).
    pub async fn release_all_webhooks(&self) -> StoreResult<()> {
        self.write_unflushed(async |c| {
            c.execute(
                "UPDATE webhooks SET lease_owner = NULL, lease_until = 0
                 WHERE lease_owner IS NOT NULL",
                &[],
            )
            .await?;
            Ok(())
        })
        .await
    }

    /// Queues `events` for an endpoint whose queue ends at `from`, and moves its end to
    /// `to`; false (nothing queued) if the end has moved meanwhile or `owner` no longer holds
    /// the lease.
    pub async fn enqueue_deliveries(
        &self,
        webhook_id: i64,
        owner: &str,
        from: i64,
        to: i64,
        events: &[QueuedEvent],
    ) -> StoreResult<bool> {
        let now = now_micros();
        self.write(async |c| {
            let moved = c
                .execute(
                    "UPDATE webhooks SET enqueued_upto = $4
                     WHERE id = $1 AND lease_owner = $2 AND enqueued_upto = $3",
                    &[webhook_id.into(), owner.into(), from.into(), to.into()],
                )
                .await?;
            if moved == 0 {
                return Ok(false);
            }
            for e in events {
                c.execute(
                    "INSERT INTO webhook_deliveries (webhook_id, seq, event_id, type, payload,
                        status, next_attempt_at, created_at)
                     VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6)",
                    &[
                        webhook_id.into(),
                        e.seq.into(),
                        e.event_id.as_str().into(),
                        e.event_type.into(),
                        e.payload.as_str().into(),
                        now.into(),
                    ],
                )
                .await?;
            }
            Ok(true)
        })
        .await
    }

    /// The first `limit` deliveries of an endpoint's queue, in order.
    pub async fn queue_head(
        &self,
        webhook_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<PendingDelivery>> {
        self.reading(async |c| {
            Ok(c.fetch_all(
                "SELECT id, event_id, payload, attempts, first_attempt_at, next_attempt_at
                 FROM webhook_deliveries
                 WHERE webhook_id = $1 AND status = 'pending'
                 ORDER BY id LIMIT $2",
                &[webhook_id.into(), limit.into()],
            )
            .await?)
        })
        .await
    }

    /// Queue length and age of every endpoint (see `queue_columns!`).
    pub async fn webhook_queue_stats(&self) -> StoreResult<Vec<QueueStats>> {
        self.reading(async |c| {
            Ok(c.fetch_all(
                concat!(
                    "SELECT w.id AS webhook_id, ",
                    queue_columns!(),
                    " FROM webhooks w ORDER BY w.id"
                ),
                &[],
            )
            .await?)
        })
        .await
    }

    /// Forgets finished deliveries made before `before` (microseconds); returns how many.
    pub async fn prune_deliveries(&self, before: i64) -> StoreResult<u64> {
        self.write(async |c| {
            Ok(c.execute(
                "DELETE FROM webhook_deliveries
                 WHERE status <> 'pending' AND created_at < $1",
                &[before.into()],
            )
            .await?)
        })
        .await
    }
}

async fn select_webhooks(c: &mut Conn<'_>, id: Option<i64>) -> StoreResult<Vec<Webhook>> {
    let rows: Vec<WebhookRow> = c.fetch_all(SELECT_WEBHOOKS, &[id.into()]).await?;
    Ok(rows
        .into_iter()
        .map(Webhook::try_from)
        .collect::<Result<_, _>>()?)
}
