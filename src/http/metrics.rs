//! `GET /metrics` in the Prometheus text format: requests and latency by route and status,
//! rejections by reason, the search index's lag and size, open connections, process memory.
//!
//! Series (all names are part of the operator's contract):
//! - `http_requests_total{method, route, status}` counter
//! - `http_request_duration_seconds{method, route}` histogram
//! - `kb_rejections_total{reason}` counter: `rate_limited`, `overloaded`, `too_many_connections`,
//!   `too_many_streams`
//! - `kb_index_lag` gauge: changes written to the database but not yet searchable
//! - `kb_index_documents` gauge: questions in the search index
//! - `kb_question_cache_bytes`, `kb_question_cache_entries` gauges: the rendered-question
//!   cache (`KB_CACHE_MB`), bookkeeping included
//! - `kb_open_connections` gauge
//! - `kb_live_requests` gauge: open change streams and waiting long polls
//! - `kb_webhook_attempts_total{outcome, kind}` counter: delivery attempts by outcome
//!   (`delivered`, `failed`, `gone`) and kind (`queue`, `manual`, `ping`)
//! - `kb_webhook_disabled_total` counter: endpoints kb disabled (410, or the retry period over)
//! - `kb_webhook_queue_depth{webhook}` gauge: deliveries waiting per endpoint
//! - `kb_webhook_oldest_pending_seconds{webhook}` gauge: age of each endpoint's oldest waiting
//!   delivery (0 when none)
//! - `process_resident_memory_bytes` gauge

use super::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process-wide recorder (the `metrics` facade has one per process; every app built in this
/// process, e.g. by tests, shares it).
pub fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .expect("the buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (a library user's): then ours only
            // renders what it was given, which is nothing, and /metrics says so.
            let _ = metrics::set_global_recorder(recorder);
            // Histogram samples wait in a queue until upkeep folds them into buckets; without
            // a scraper that queue would grow with every request. A thread of its own, so it
            // runs whatever runtime (or none) is around.
            let upkeep = handle.clone();
            let _ = std::thread::Builder::new()
                .name("kb-metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(std::time::Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                });
            handle
        })
        .clone()
}

/// A rejection the edge made on its own (not a handler's error).
pub fn rejected(reason: &'static str) {
    metrics::counter!("kb_rejections_total", "reason" => reason).increment(1);
}

/// Counts and times every request by its route template (never the raw path: ids would make
/// every request a new series). A layer on the routes, where the matched route is known.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrackLayer;

impl<S> tower::Layer<S> for TrackLayer {
    type Service = Track<S>;
    fn layer(&self, inner: S) -> Track<S> {
        Track(inner)
    }
}

#[derive(Debug, Clone)]
pub struct Track<S>(S);

impl<S> tower::Service<Request> for Track<S>
where
    S: tower::Service<Request, Response = Response> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = futures_util::future::BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let started = Instant::now();
        let method = method_index(req.method());
        let route = req.extensions().get::<MatchedPath>().cloned();
        let fut = self.0.call(req);
        Box::pin(async move {
            let response = fut.await?;
            let route = route.as_ref().map_or("unmatched", |p| p.as_str());
            record(route, method, response.status().as_u16(), started);
            Ok(response)
        })
    }
}

/// A closed set: any token is a valid HTTP method, and every label value is a series kept
/// for good, so a client inventing methods must not be able to grow memory.
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other",
];

fn method_index(m: &Method) -> usize {
    match *m {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::PATCH => 4,
        Method::DELETE => 5,
        Method::OPTIONS => 6,
        _ => 7,
    }
}

/// One route's series, as handles: recording is then an atomic add, not a registry lookup
/// with its labels built, hashed and compared on every request.
#[derive(Default)]
struct RouteSeries {
    counters: Vec<(usize, u16, metrics::Counter)>,
    durations: [Option<metrics::Histogram>; 8],
}

/// FNV-1a: route templates are short and chosen by kb, not by clients, so a hash that
/// resists flooding buys nothing here.
#[derive(Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type Series = std::collections::HashMap<Box<str>, RouteSeries, std::hash::BuildHasherDefault<Fnv>>;

thread_local! {
    /// Per thread, so no request waits for another to record; bounded by routes × methods ×
    /// statuses, all closed sets.
    static SERIES: std::cell::RefCell<Series> = std::cell::RefCell::default();
}

fn record(route: &str, method: usize, status: u16, started: Instant) {
    SERIES.with_borrow_mut(|series| {
        // One lookup once the route has been seen (the map is borrowed in either arm only).
        match series.get_mut(route) {
            Some(s) => s.record(route, method, status, started),
            None => series
                .entry(route.into())
                .or_default()
                .record(route, method, status, started),
        }
    });
}

impl RouteSeries {
    fn record(&mut self, route: &str, method: usize, status: u16, started: Instant) {
        let m = METHODS[method];
        let counter = match self
            .counters
            .iter()
            .position(|(i, code, _)| *i == method && *code == status)
        {
            Some(at) => &self.counters[at].2,
            None => {
                let c = metrics::counter!("http_requests_total", "method" => m,
                    "route" => route.to_string(), "status" => status.to_string());
                self.counters.push((method, status, c));
                &self.counters[self.counters.len() - 1].2
            }
        };
        counter.increment(1);
        self.durations[method]
            .get_or_insert_with(|| {
                metrics::histogram!("http_request_duration_seconds", "method" => m,
                    "route" => route.to_string())
            })
            .record(started.elapsed().as_secs_f64());
    }
}

fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// The current values of the gauges, then everything rendered.
pub async fn render(state: &AppState) -> String {
    if let Ok(lag) = state.service.index_lag().await {
        metrics::gauge!("kb_index_lag").set(lag as f64);
    }
    metrics::gauge!("kb_index_documents").set(state.service.indexed_documents() as f64);
    metrics::gauge!("kb_question_cache_bytes").set(state.service.cached_bytes() as f64);
    metrics::gauge!("kb_question_cache_entries").set(state.service.cached_questions() as f64);
    metrics::gauge!("kb_open_connections").set(state.open_connections.get() as f64);
    metrics::gauge!("kb_live_requests").set(state.live.open_now() as f64);
    if let Some(rss) = resident_memory_bytes() {
        metrics::gauge!("process_resident_memory_bytes").set(rss as f64);
    }
    let mut text = state.metrics.render();
    if let Ok(hooks) = state.service.webhooks().await {
        webhook_gauges(&mut text, &hooks);
    }
    text
}

/// Queue depth and age per endpoint, written here rather than kept in the recorder, so a
/// deleted endpoint's series goes with it.
fn webhook_gauges(text: &mut String, hooks: &[crate::domain::webhooks::Webhook]) {
    use std::fmt::Write as _;
    if hooks.is_empty() {
        return;
    }
    let now = chrono::Utc::now();
    text.push_str("# TYPE kb_webhook_queue_depth gauge\n");
    for w in hooks {
        let _ = writeln!(
            text,
            "kb_webhook_queue_depth{{webhook=\"{}\"}} {}",
            w.id, w.pending
        );
    }
    text.push_str("# TYPE kb_webhook_oldest_pending_seconds gauge\n");
    for w in hooks {
        let age = w
            .oldest_pending_at
            .map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
        let _ = writeln!(
            text,
            "kb_webhook_oldest_pending_seconds{{webhook=\"{}\"}} {age}",
            w.id
        );
    }
}

/// Metrics
///
/// The server's metrics in the Prometheus text format (series listed in the README). Needs an
/// `admin` key here; `--metrics-bind` also serves them, without a key, on an address of their
/// own (for a scraper on a private network).
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain; version=0.0.4")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let body = render(&state).await;
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        body,
    )
        .into_response()
}
