//! Webhooks: endpoints an admin registers, and the dispatcher that delivers the change feed's
//! events to them.
//!
//! Each replica runs one dispatcher. It looks for enabled endpoints with work (events after
//! the end of their queue, or a delivery due) whose lease is free, takes the lease and runs a
//! sender for each, up to the configured concurrency. A sender sends its endpoint's queue from
//! its head, one delivery at a time, and when the queue is empty fills it from the change log
//! (one row per event it wants, in feed order, the end of the queue moved in the same
//! transaction), so an endpoint gets its events in order and a failing endpoint holds up only
//! its own queue, whose later events wait in the change log rather than in rows of its own. A
//! failed attempt waits (exponential backoff with jitter) and the lease is let go meanwhile;
//! after the retry period the endpoint is disabled with the reason kept. Everything a sender
//! knows is in the database, so a replica that dies mid-delivery costs at most that delivery
//! sent again, by whichever replica takes the lease after it runs out.

use super::{Error, Result, Service};
use crate::domain::changes::ChangeEvent;
use crate::domain::webhooks::{
    Delivery, DeliveryStatus, NewWebhook, PING_TYPE, WEBHOOKS_MAX, Webhook, WebhookPatch,
};
use crate::domain::{FieldErrors, Slug};
use crate::store::{AttemptRecord, Feed, LeasedWebhook, QueueStats, QueuedEvent, Store};
use crate::webhook::address::{self, UrlError};
use crate::webhook::client::{Attempt, Outcome, Sender};
use crate::webhook::sign::{self, Secret};
use chrono::Utc;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// Events read from the change log per transaction while filling a queue.
const FILL_PAGE: i64 = 500;
/// Deliveries a sender reads from its queue at once.
const SEND_PAGE: i64 = 100;
/// The dispatcher looks for work at least this often (another replica's lease ran out, a
/// delivery fell due, a replica elsewhere changed an endpoint).
const POLL: Duration = Duration::from_secs(1);
/// The shortest pause of the dispatcher between looks for work when nothing wakes it.
const MIN_WAIT: Duration = Duration::from_millis(20);
/// The longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(3_600);
/// How long a rotated-out secret keeps signing.
pub const OLD_SECRET_OVERLAP: Duration = Duration::from_secs(24 * 3_600);
/// How long registration waits for a URL's name to resolve.
const RESOLVE_WAIT: Duration = Duration::from_secs(2);
/// How often finished deliveries older than the change feed's retention are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(3_600);

/// How deliveries are made (see `config::WebhooksConfig`).
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub allow_private: bool,
    pub timeout: Duration,
    pub retry_for: Duration,
    pub first_retry: Duration,
    pub lease: Duration,
    pub concurrency: usize,
    /// Finished deliveries are kept this long (the change feed's retention).
    pub keep: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private: false,
            timeout: Duration::from_secs(10),
            retry_for: Duration::from_secs(24 * 3_600),
            first_retry: Duration::from_secs(5),
            lease: Duration::from_secs(30),
            concurrency: 16,
            keep: super::DEFAULT_CHANGES_RETENTION,
        }
    }
}

/// The webhook part of the service: settings, the HTTP client deliveries go out through, and
/// the running dispatcher.
#[derive(Debug)]
pub(super) struct Webhooks {
    settings: WebhookSettings,
    sender: Sender,
    /// Names this replica on the leases it takes.
    owner: String,
    /// Something changed that the dispatcher should look at now (an endpoint was created or
    /// enabled, a retry was asked for).
    wake: Notify,
    stop: watch::Sender<bool>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Webhooks {
    pub(super) fn new(settings: WebhookSettings) -> Self {
        Self {
            sender: Sender::new(settings.allow_private, settings.timeout),
            settings,
            // The process id first: an operator (or a test) can tell which replica holds what.
            owner: format!("{}-{}", std::process::id(), crate::secret::random_hex(6)),
            wake: Notify::new(),
            stop: watch::channel(false).0,
            task: std::sync::Mutex::new(None),
        }
    }

    /// Stops the dispatcher; its senders stop where they are and let their leases go.
    pub(super) async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// A webhook and the secret that signs its deliveries (shown once: on creation and rotation).
#[derive(Debug, Clone)]
pub struct WithSecret {
    pub webhook: Webhook,
    pub secret: String,
}

impl Service {
    /// Uses `settings` for deliveries from now on (before the dispatcher starts).
    pub fn with_webhooks(mut self, settings: WebhookSettings) -> Self {
        self.webhooks = Arc::new(Webhooks::new(settings));
        self
    }

    /// Starts delivering webhooks from this replica.
    pub fn start_webhooks(&self) {
        let hooks = self.webhooks.clone();
        let service = self.clone();
        let stop = hooks.stop.subscribe();
        let task = tokio::spawn(async move { dispatch(service, stop).await });
        if let Ok(mut slot) = hooks.task.lock() {
            *slot = Some(task);
        }
    }

    /// Checks where a URL points: syntax (422 naming `url`), then the address it names or
    /// resolves to (422 `webhook_url_forbidden`). A name that does not resolve yet is taken:
    /// every delivery checks the address it connects to anyway.
    async fn check_webhook_url(&self, raw: &str) -> Result<String> {
        let allow = self.webhooks.settings.allow_private;
        let url = address::parse_url(raw, allow).map_err(url_error)?;
        if allow {
            return Ok(url.to_string());
        }
        // A resolver that does not answer must not hold the request: the name is checked
        // again at every delivery anyway.
        match tokio::time::timeout(RESOLVE_WAIT, address::resolve_checked(&url, allow)).await {
            Err(_) | Ok(Ok(_)) | Ok(Err(UrlError::Unresolvable(_))) => Ok(url.to_string()),
            Ok(Err(e)) => Err(url_error(e)),
        }
    }

    async fn check_webhook_category(&self, slug: &Option<String>) -> Result<()> {
        if let Some(slug) = slug {
            let parsed = Slug::parse(slug).map_err(|m| FieldErrors::one("category", m))?;
            if self.store.get_category(&parsed).await?.is_none() {
                return Err(Error::UnknownCategory(parsed.as_str().to_string()));
            }
        }
        Ok(())
    }

    /// Registers an endpoint; its deliveries start with the next change.
    pub async fn create_webhook(&self, mut new: NewWebhook) -> Result<WithSecret> {
        new.url = self.check_webhook_url(&new.url).await?;
        self.check_webhook_category(&new.category).await?;
        let secret = Secret::generate().to_string();
        let webhook = self
            .store
            .create_webhook(&new, &secret, WEBHOOKS_MAX)
            .await?
            .ok_or(Error::TooManyWebhooks(WEBHOOKS_MAX))?;
        self.webhooks.wake.notify_one();
        Ok(WithSecret { webhook, secret })
    }

    pub async fn webhooks(&self) -> Result<Vec<Webhook>> {
        Ok(self.store.webhooks().await?)
    }

    pub async fn webhook(&self, id: i64) -> Result<Webhook> {
        self.store
            .webhook(id)
            .await?
            .ok_or(Error::WebhookNotFound(id))
    }

    pub async fn update_webhook(&self, id: i64, mut patch: WebhookPatch) -> Result<Webhook> {
        if let Some(url) = &patch.url {
            patch.url = Some(self.check_webhook_url(url).await?);
        }
        if let Some(category) = &patch.category {
            self.check_webhook_category(category).await?;
        }
        let webhook = self
            .store
            .update_webhook(id, &patch)
            .await?
            .ok_or(Error::WebhookNotFound(id))?;
        self.webhooks.wake.notify_one();
        Ok(webhook)
    }

    pub async fn delete_webhook(&self, id: i64) -> Result<()> {
        if !self.store.delete_webhook(id).await? {
            return Err(Error::WebhookNotFound(id));
        }
        Ok(())
    }

    /// A new signing secret; the old one keeps signing too for [`OLD_SECRET_OVERLAP`], so a
    /// receiver can switch without losing a delivery.
    pub async fn rotate_webhook_secret(&self, id: i64) -> Result<WithSecret> {
        let secret = Secret::generate().to_string();
        let until = (Utc::now() + OLD_SECRET_OVERLAP).timestamp_micros();
        let webhook = self
            .store
            .rotate_webhook_secret(id, &secret, until)
            .await?
            .ok_or(Error::WebhookNotFound(id))?;
        Ok(WithSecret { webhook, secret })
    }

    /// An endpoint's deliveries, newest first.
    pub async fn webhook_deliveries(
        &self,
        id: i64,
        status: Option<DeliveryStatus>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Delivery>> {
        self.webhook(id).await?;
        Ok(self
            .store
            .webhook_deliveries(id, status, before, limit)
            .await?)
    }

    pub async fn webhook_delivery(&self, id: i64, delivery: i64) -> Result<Delivery> {
        self.store
            .webhook_delivery(id, delivery)
            .await?
            .ok_or(Error::DeliveryNotFound(delivery))
    }

    /// Sends a delivery again. A pending one is in its queue: it falls due now and keeps its
    /// place in the order (the answer is `false`: not attempted here). A delivered or failed
    /// one is attempted now, outside the queue, and the outcome recorded on it (`true`).
    pub async fn retry_delivery(&self, id: i64, delivery: i64) -> Result<(Delivery, bool)> {
        let stored = self
            .store
            .stored_delivery(id, delivery)
            .await?
            .ok_or(Error::DeliveryNotFound(delivery))?;
        if stored.status == DeliveryStatus::Pending.as_str() {
            self.store.hasten_delivery(id, delivery).await?;
            self.webhooks.wake.notify_one();
            return Ok((self.webhook_delivery(id, delivery).await?, false));
        }
        let lease = self.signing_view(id).await?;
        let attempt = self
            .attempt(&lease, &stored.event_id, &stored.payload)
            .await;
        let record = AttemptRecord {
            // A manual attempt never takes back a delivery that once succeeded.
            status: if attempt.outcome == Outcome::Delivered
                || stored.status == DeliveryStatus::Delivered.as_str()
            {
                DeliveryStatus::Delivered
            } else {
                DeliveryStatus::Failed
            },
            next_attempt_at: None,
            ..record_of(&attempt)
        };
        count(&attempt, "manual");
        self.store.record_attempt(delivery, &record).await?;
        Ok((self.webhook_delivery(id, delivery).await?, true))
    }

    /// Sends a test event (`webhook.ping`) now, whether the endpoint is enabled or not, and
    /// records it as a delivery outside the queue; its outcome never disables the endpoint.
    pub async fn ping_webhook(&self, id: i64) -> Result<Delivery> {
        let lease = self.signing_view(id).await?;
        let event_id = format!("ping_{}", crate::secret::random_hex(12));
        let payload = serde_json::json!({
            "id": event_id,
            "type": PING_TYPE,
            "at": Utc::now(),
            "data": {"webhook_id": id},
        })
        .to_string();
        let attempt = self.attempt(&lease, &event_id, &payload).await;
        count(&attempt, "ping");
        let record = AttemptRecord {
            status: if attempt.outcome == Outcome::Delivered {
                DeliveryStatus::Delivered
            } else {
                DeliveryStatus::Failed
            },
            next_attempt_at: None,
            ..record_of(&attempt)
        };
        self.store
            .record_ping(id, &event_id, &payload, &record)
            .await?
            .ok_or(Error::WebhookNotFound(id))
    }

    /// Queue length and age per endpoint, for the metrics.
    pub async fn webhook_queues(&self) -> Result<Vec<QueueStats>> {
        Ok(self.store.webhook_queue_stats().await?)
    }

    /// What signing needs, without taking the lease (a manual attempt is outside the queue).
    async fn signing_view(&self, id: i64) -> Result<LeasedWebhook> {
        self.store
            .webhook_signing(id)
            .await?
            .ok_or(Error::WebhookNotFound(id))
    }

    /// One attempt to deliver `payload` as event `event_id`, signed with every live secret.
    async fn attempt(&self, hook: &LeasedWebhook, event_id: &str, payload: &str) -> Attempt {
        let now = Utc::now();
        let mut secrets = Vec::with_capacity(2);
        match Secret::parse(&hook.secret) {
            Ok(s) => secrets.push(s),
            Err(e) => return broken(format!("the endpoint's secret is unreadable: {e}")),
        }
        if let (Some(old), Some(until)) = (&hook.old_secret, hook.old_secret_until)
            && until > now.timestamp_micros()
            && let Ok(old) = Secret::parse(old)
        {
            secrets.push(old);
        }
        let refs: Vec<&Secret> = secrets.iter().collect();
        let timestamp = now.timestamp();
        let signature = sign::signature_header(&refs, event_id, timestamp, payload.as_bytes());
        let url = match url::Url::parse(&hook.url) {
            Ok(u) => u,
            Err(e) => return broken(format!("the endpoint's URL is unreadable: {e}")),
        };
        let headers = [
            ("webhook-id", event_id.to_string()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", signature),
        ];
        self.webhooks
            .sender
            .send(&url, &headers, bytes::Bytes::from(payload.to_string()))
            .await
    }
}

fn url_error(e: UrlError) -> Error {
    match e {
        UrlError::Invalid(m) | UrlError::Unresolvable(m) => FieldErrors::one("url", m).into(),
        forbidden => Error::WebhookUrlForbidden(forbidden.to_string()),
    }
}

fn broken(error: String) -> Attempt {
    Attempt {
        outcome: Outcome::Failed,
        status: None,
        latency: Duration::ZERO,
        error: Some(error),
        excerpt: None,
    }
}

/// What an attempt leaves on its delivery, before its status is decided.
fn record_of(a: &Attempt) -> AttemptRecord {
    AttemptRecord {
        status: DeliveryStatus::Pending,
        at: Utc::now().timestamp_micros(),
        next_attempt_at: None,
        response_status: a.status,
        latency_ms: i64::try_from(a.latency.as_millis()).unwrap_or(i64::MAX),
        error: a.error.clone(),
        excerpt: a.excerpt.clone(),
    }
}

fn count(a: &Attempt, kind: &'static str) {
    let outcome = match a.outcome {
        Outcome::Delivered => "delivered",
        Outcome::Gone => "gone",
        Outcome::Failed => "failed",
    };
    metrics::counter!("kb_webhook_attempts_total", "outcome" => outcome, "kind" => kind)
        .increment(1);
}

/// The wait after the `attempts`-th failed attempt: `first` doubled each time, at most an
/// hour, then scaled by `jitter` (0.8–1.2 in use) so endpoints that failed together do not
/// retry together.
pub(crate) fn backoff(attempts: i64, first: Duration, jitter: f64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let base = first
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(MAX_BACKOFF);
    base.mul_f64(jitter.clamp(0.5, 1.5))
}

/// The dispatcher of one replica (see the module's documentation).
async fn dispatch(service: Service, mut stop: watch::Receiver<bool>) {
    let hooks = service.webhooks.clone();
    let mut applied = service.indexing.subscribe();
    let mut senders: JoinSet<i64> = JoinSet::new();
    let mut running: HashSet<i64> = HashSet::new();
    let mut pruned = Instant::now();
    if service.store.kind() == "sqlite" {
        // One process serves a SQLite file: any lease in it is a previous run's, dead.
        if let Err(e) = service.store.release_all_webhooks().await {
            tracing::warn!(error = %e, "webhooks: cannot release a previous run's leases");
        }
    }
    loop {
        if *stop.borrow() {
            break;
        }
        while let Some(done) = senders.try_join_next() {
            if let Ok(id) = done {
                running.remove(&id);
            }
        }
        let mut next = Instant::now() + POLL;
        match find_work(&service, &hooks.owner).await {
            Ok((ids, due)) => {
                for id in ids {
                    if running.len() >= hooks.settings.concurrency {
                        break;
                    }
                    if running.insert(id) {
                        let service = service.clone();
                        let stop = stop.clone();
                        senders.spawn(async move {
                            send_queue(&service, id, stop).await;
                            id
                        });
                    }
                }
                if let Some(due) = due {
                    next = next.min(due);
                }
            }
            Err(e) => tracing::warn!(error = %e, "webhooks: cannot look for work"),
        }
        if pruned.elapsed() >= PRUNE_EVERY {
            pruned = Instant::now();
            let before = Utc::now() - hooks.settings.keep;
            if let Err(e) = service
                .store
                .prune_deliveries(before.timestamp_micros())
                .await
            {
                tracing::warn!(error = %e, "webhooks: cannot prune old deliveries");
            }
        }
        tokio::select! {
            _ = stop.changed() => {}
            _ = applied.changed() => {}
            () = hooks.wake.notified() => {}
            Some(done) = senders.join_next(), if !senders.is_empty() => {
                if let Ok(id) = done {
                    running.remove(&id);
                }
            }
            () = tokio::time::sleep_until(next) => {}
        }
    }
    // Senders stop at their next step; an attempt in flight is cut short and counts as not
    // made (the next holder of the lease sends it again).
    senders.abort_all();
    while senders.join_next().await.is_some() {}
    for id in running {
        let _ = service.store.release_webhook(id, &hooks.owner).await;
    }
}

/// The endpoints with work now, and when the next may have some.
async fn find_work(service: &Service, owner: &str) -> Result<(Vec<i64>, Option<Instant>)> {
    let head = service.store.last_change_seq().await?;
    let now = Utc::now().timestamp_micros();
    let ids = service.store.webhooks_with_work(head, now, owner).await?;
    // Never sooner than a moment from now: work that is due but cannot start (every sender
    // busy) must not spin the loop; a sender finishing wakes it anyway.
    let due = service
        .store
        .next_webhook_work(owner, now)
        .await?
        .map(|at| {
            let wait = u64::try_from(at.saturating_sub(now)).unwrap_or(0);
            Instant::now() + Duration::from_micros(wait).max(MIN_WAIT)
        });
    Ok((ids, due))
}

/// Fills and sends one endpoint's queue while this replica holds its lease.
async fn send_queue(service: &Service, id: i64, stop: watch::Receiver<bool>) {
    if let Err(e) = try_send_queue(service, id, stop).await {
        tracing::warn!(webhook = id, error = %e, "webhooks: sending stopped");
    }
    let _ = service
        .store
        .release_webhook(id, &service.webhooks.owner)
        .await;
}

async fn try_send_queue(service: &Service, id: i64, stop: watch::Receiver<bool>) -> Result<()> {
    let hooks = &service.webhooks;
    let settings = &hooks.settings;
    let lease_for = |now: i64| now + i64::try_from(settings.lease.as_micros()).unwrap_or(i64::MAX);
    let now = Utc::now().timestamp_micros();
    let Some(mut hook) = service
        .store
        .lease_webhook(id, &hooks.owner, now, lease_for(now))
        .await?
    else {
        return Ok(());
    };
    loop {
        // The queue is filled only once it is empty: while its head waits for a retry, new
        // events wait in the change log (in order, as the queue would hold them), so a failing
        // endpoint costs no write per event, only one per attempt.
        let mut batch = service.store.queue_head(id, SEND_PAGE).await?;
        if batch.is_empty() {
            fill_queue(service, &mut hook).await?;
            batch = service.store.queue_head(id, SEND_PAGE).await?;
        }
        if batch.is_empty() {
            return Ok(());
        }
        for d in batch {
            if *stop.borrow() {
                return Ok(());
            }
            let now = Utc::now().timestamp_micros();
            if d.next_attempt_at.is_some_and(|at| at > now) {
                return Ok(());
            }
            // An attempt must end inside the lease: renew it when what is left is short.
            let margin = i64::try_from((settings.timeout + Duration::from_secs(1)).as_micros())
                .unwrap_or(i64::MAX);
            if hook.lease_until - now < margin {
                match service
                    .store
                    .lease_webhook(id, &hooks.owner, now, lease_for(now))
                    .await?
                {
                    Some(renewed) => hook = renewed,
                    None => return Ok(()),
                }
            }
            let attempt = service.attempt(&hook, &d.event_id, &d.payload).await;
            count(&attempt, "queue");
            let mut record = record_of(&attempt);
            let first = d.first_attempt_at.unwrap_or(record.at);
            let gave_up = match attempt.outcome {
                Outcome::Delivered => {
                    record.status = DeliveryStatus::Delivered;
                    None
                }
                Outcome::Gone => {
                    record.status = DeliveryStatus::Failed;
                    Some(format!(
                        "the receiver answered 410 Gone at {}: it asked not to be sent more",
                        chrono::DateTime::<Utc>::from_timestamp_micros(record.at)
                            .unwrap_or_default()
                    ))
                }
                Outcome::Failed => {
                    let wait = backoff(
                        d.attempts + 1,
                        settings.first_retry,
                        0.8 + rand::random::<f64>() * 0.4,
                    );
                    let next = record.at + i64::try_from(wait.as_micros()).unwrap_or(i64::MAX);
                    let period = i64::try_from(settings.retry_for.as_micros()).unwrap_or(i64::MAX);
                    if next - first > period {
                        record.status = DeliveryStatus::Failed;
                        Some(format!(
                            "deliveries failed for {:?} (since {}), the last with: {}",
                            settings.retry_for,
                            chrono::DateTime::<Utc>::from_timestamp_micros(first)
                                .unwrap_or_default(),
                            attempt.error.as_deref().unwrap_or("an error")
                        ))
                    } else {
                        record.status = DeliveryStatus::Pending;
                        record.next_attempt_at = Some(next);
                        None
                    }
                }
            };
            service.store.record_attempt(d.id, &record).await?;
            if let Some(reason) = gave_up {
                tracing::warn!(webhook = id, %reason, "webhooks: endpoint disabled");
                metrics::counter!("kb_webhook_disabled_total").increment(1);
                service.store.disable_webhook(id, &reason).await?;
                return Ok(());
            }
            if record.status == DeliveryStatus::Pending {
                // The head waits for its retry; the rest of the queue waits behind it.
                return Ok(());
            }
        }
    }
}

/// Queues, for the leased endpoint, the events after its queue's end that it wants.
async fn fill_queue(service: &Service, hook: &mut LeasedWebhook) -> Result<()> {
    let types = hook.event_types()?;
    let tag = service.cursor_tag().await?;
    let store: &Store = &service.store;
    loop {
        let page = store
            .feed(
                Some(hook.enqueued_upto),
                FILL_PAGE,
                types.as_deref(),
                hook.category.as_deref(),
            )
            .await?;
        let (events, next, has_more) = match page {
            Feed::Page {
                events,
                next,
                has_more,
            } => (events, next, has_more),
            Feed::Expired { upto } => {
                // Disabled for longer than the change feed keeps events: what is gone cannot
                // be delivered; carry on from the oldest event still kept.
                tracing::warn!(
                    webhook = hook.id,
                    from = hook.enqueued_upto,
                    upto,
                    "webhooks: events older than the change feed's retention were not delivered"
                );
                (Vec::new(), upto, true)
            }
        };
        if next <= hook.enqueued_upto && events.is_empty() {
            return Ok(());
        }
        let queued: Vec<QueuedEvent> = events
            .into_iter()
            .map(|e| {
                let event_type = e.event.as_str();
                let seq = e.seq;
                let out = ChangeEvent::new(tag, seq, e.event, e.at, e.data);
                let payload = serde_json::to_string(&out).map_err(anyhow::Error::new)?;
                Ok(QueuedEvent {
                    seq,
                    event_id: out.id,
                    event_type,
                    payload,
                })
            })
            .collect::<Result<_>>()?;
        if !store
            .enqueue_deliveries(
                hook.id,
                &service.webhooks.owner,
                hook.enqueued_upto,
                next,
                &queued,
            )
            .await?
        {
            return Err(Error::Internal(anyhow::anyhow!(
                "the queue of webhook {} moved under its lease",
                hook.id
            )));
        }
        hook.enqueued_upto = next;
        if !has_more {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_first_wait_up_to_an_hour() {
        let first = Duration::from_secs(5);
        assert_eq!(backoff(1, first, 1.0), Duration::from_secs(5));
        assert_eq!(backoff(2, first, 1.0), Duration::from_secs(10));
        assert_eq!(backoff(5, first, 1.0), Duration::from_secs(80));
        assert_eq!(backoff(40, first, 1.0), MAX_BACKOFF);
        assert_eq!(backoff(2, first, 1.2), Duration::from_secs(12));
    }

    #[test]
    fn a_day_of_retries_is_about_thirty_attempts() {
        let mut waited = Duration::ZERO;
        let mut attempts = 0;
        while waited < Duration::from_secs(24 * 3_600) {
            attempts += 1;
            waited += backoff(attempts, Duration::from_secs(5), 1.0);
        }
        assert!((25..=40).contains(&attempts), "{attempts}");
    }
}
