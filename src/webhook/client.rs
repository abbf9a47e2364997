//! Sending one webhook delivery, bounded in every way a receiver could stretch it.
//!
//! A receiver is an arbitrary server on the internet, possibly hostile: it may never answer,
//! answer forever, redirect kb somewhere internal, or have its name resolve to an internal
//! address by the time kb connects. So every request has one deadline for connecting and one
//! for the whole exchange, redirects are reported and never followed, at most
//! [`MAX_RESPONSE_BYTES`] of a response are read, and (unless private addresses are allowed)
//! the address actually connected to is checked against [`address::check_ip`]: through a
//! resolver of our own for names, and here for IP literals, which reqwest connects to without
//! asking a resolver.
//!
//! [`Sender::send`] never fails: every way a delivery can go wrong is an [`Attempt`] with a
//! short reason, for the delivery log and the retry schedule.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, LOCATION};
use url::{Host, Url};

use super::address::{self, UrlError};

/// How much of a response body is read (reading stops within one chunk past it): enough for any
/// acknowledgement, and all an endless body can make kb take in.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The most of a response body kept, to show in the delivery log.
pub const EXCERPT_BYTES: usize = 1024;

/// The longest reason kept from what a receiver sent (a `Location`, an error's text).
const MAX_REASON_CHARS: usize = 300;

const USER_AGENT: &str = concat!("kb-webhooks/", env!("CARGO_PKG_VERSION"));

/// How a delivery attempt ended, as the Standard Webhooks specification reads a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A 2xx response: the receiver has it.
    Delivered,
    /// 410 Gone: the receiver asks not to be sent anything more.
    Gone,
    /// Anything else (a 3xx, which is not followed; a 4xx or 5xx; a timeout; a refused or
    /// failed connection; a forbidden address; a TLS error): to be retried later.
    Failed,
}

/// One delivery attempt as it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub outcome: Outcome,
    /// The response status, if a response came.
    pub status: Option<u16>,
    /// From sending until the response was read (or the attempt failed).
    pub latency: Duration,
    /// Why the attempt is not a delivery; `None` for a 2xx.
    pub error: Option<String>,
    /// The start of the response body ([`EXCERPT_BYTES`] at most, lossy UTF-8), if it had one.
    pub excerpt: Option<String>,
}

/// Sends deliveries over one pooled HTTP client.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
    timeout: Duration,
}

impl Sender {
    /// A sender whose requests each take at most `timeout` (connecting, and the whole
    /// exchange), and that refuses forbidden addresses unless `allow_private`.
    pub fn new(allow_private: bool, timeout: Duration) -> Self {
        let mut builder = reqwest::Client::builder()
            // A redirect is the receiver's to fix, and following it would let a public URL
            // lead kb to an internal one.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would connect on kb's behalf to addresses this module never sees.
            .no_proxy()
            // One attempt is one request: retries belong to the delivery schedule.
            .retry(reqwest::retry::never())
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(USER_AGENT)
            .referer(false);
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(CheckedResolver));
        }
        // Building fails only for settings this code does not use (a TLS backend that cannot
        // start, an unreadable root store file): a bug here, not a condition to handle.
        let client = builder
            .build()
            .expect("the webhook HTTP client's settings are valid");
        Self {
            client,
            allow_private,
            timeout,
        }
    }

    /// POSTs `body` to `url` as `application/json` with `headers` (which may replace the
    /// content type), and reports how it went.
    pub async fn send(
        &self,
        url: &Url,
        headers: &[(&'static str, String)],
        body: Bytes,
    ) -> Attempt {
        let started = Instant::now();
        let result = self.exchange(url, headers, body).await;
        let latency = started.elapsed();
        match result {
            Err(error) => Attempt {
                outcome: Outcome::Failed,
                status: None,
                latency,
                error: Some(error),
                excerpt: None,
            },
            Ok(answer) => {
                let code = answer.status.as_u16();
                let (outcome, error) = if answer.status.is_success() {
                    (Outcome::Delivered, None)
                } else if answer.status == StatusCode::GONE {
                    (Outcome::Gone, Some("response status 410 (gone)".to_owned()))
                } else if answer.status.is_redirection() {
                    let error = match answer.location {
                        Some(location) => format!("redirect ({code}) to {location} not followed"),
                        None => format!("redirect ({code}) not followed"),
                    };
                    (Outcome::Failed, Some(error))
                } else {
                    (Outcome::Failed, Some(format!("response status {code}")))
                };
                Attempt {
                    outcome,
                    status: Some(code),
                    latency,
                    error,
                    excerpt: answer.excerpt,
                }
            }
        }
    }

    async fn exchange(
        &self,
        url: &Url,
        headers: &[(&'static str, String)],
        body: Bytes,
    ) -> Result<Answer, String> {
        if !self.allow_private {
            let literal = match url.host() {
                Some(Host::Ipv4(ip)) => Some(ip.into()),
                Some(Host::Ipv6(ip)) => Some(ip.into()),
                _ => None,
            };
            if let Some(address) = literal {
                address::check_ip(address).map_err(|reason| {
                    UrlError::Forbidden {
                        address,
                        reason,
                        host: None,
                    }
                    .to_string()
                })?;
            }
        }
        let mut map = HeaderMap::with_capacity(headers.len() + 1);
        map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("invalid header name {name:?}"))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("invalid value for header {name}"))?;
            map.insert(name, value);
        }
        let mut response = self
            .client
            .post(url.clone())
            .headers(map)
            .body(body)
            .send()
            .await
            .map_err(|e| self.describe(&e))?;

        let status = response.status();
        let location = status
            .is_redirection()
            .then(|| response.headers().get(LOCATION))
            .flatten()
            .map(|value| clip(&String::from_utf8_lossy(value.as_bytes()), MAX_REASON_CHARS));

        // Read in chunks and stop once past the limit: dropping a response mid-body closes
        // the connection rather than draining it, so an endless body costs one chunk more than
        // the limit. A body that fails or times out midway leaves the status as the answer.
        let mut read = 0usize;
        let mut excerpt = Vec::new();
        while read < MAX_RESPONSE_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    read += chunk.len();
                    let room = EXCERPT_BYTES - excerpt.len();
                    excerpt.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) | Err(_) => break,
            }
        }
        drop(response);
        let excerpt = (!excerpt.is_empty()).then(|| lossy_excerpt(&excerpt));
        Ok(Answer {
            status,
            location,
            excerpt,
        })
    }

    /// A short reason for a request that got no response.
    fn describe(&self, error: &reqwest::Error) -> String {
        if let Some(refused) = find::<UrlError>(error) {
            return refused.to_string();
        }
        if error.is_timeout() {
            return format!("timed out after {:?}", self.timeout);
        }
        if let Some(io) = find::<std::io::Error>(error) {
            use std::io::ErrorKind::*;
            let known = match io.kind() {
                ConnectionRefused => Some("connection refused"),
                ConnectionReset => Some("connection reset"),
                ConnectionAborted => Some("connection aborted"),
                HostUnreachable => Some("host unreachable"),
                NetworkUnreachable => Some("network unreachable"),
                UnexpectedEof => Some("connection closed before a response"),
                _ => None,
            };
            if let Some(known) = known {
                return known.to_owned();
            }
        }
        let cause = clip(&innermost(error).to_string(), MAX_REASON_CHARS);
        if error.is_connect() {
            format!("cannot connect: {cause}")
        } else {
            format!("request failed: {cause}")
        }
    }
}

/// What a receiver answered.
struct Answer {
    status: StatusCode,
    location: Option<String>,
    excerpt: Option<String>,
}

/// Resolves names with the system resolver and refuses a name if any of its addresses is
/// forbidden. reqwest connects only to what this returns, so the check applies to the address
/// actually used, whatever the name resolved to at registration.
#[derive(Debug)]
struct CheckedResolver;

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str();
            // Port 0: reqwest puts the URL's port on the addresses.
            let addrs = address::lookup(host, 0).await?;
            let addrs = address::check_resolved(host, addrs, false)?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The first `T` in the chain of causes of `error`.
fn find<'a, T: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut next = Some(error);
    while let Some(current) = next {
        if let Some(found) = current.downcast_ref::<T>() {
            return Some(found);
        }
        next = through_io(current).or_else(|| current.source());
    }
    None
}

/// The error an `io::Error` wraps: its `source()` skips it and goes to that error's own source.
fn through_io<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    let inner = error.downcast_ref::<std::io::Error>()?.get_ref()?;
    Some(inner)
}

/// The deepest cause of `error`, usually the most specific text (a TLS alert, a DNS failure).
fn innermost<'a>(error: &'a (dyn StdError + 'static)) -> &'a (dyn StdError + 'static) {
    let mut current = error;
    while let Some(next) = through_io(current).or_else(|| current.source()) {
        current = next;
    }
    current
}

/// `text` cut to at most `max` characters.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// `bytes` as text for the log, at most [`EXCERPT_BYTES`] long: a character cut at the end, or
/// replacement characters, must not push it past the limit.
fn lossy_excerpt(bytes: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    let mut end = text.len().min(EXCERPT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::sign::{Secret, signature_header};
    use axum::Router;
    use axum::body::Body;
    use axum::http::HeaderMap;
    use axum::response::{IntoResponse, Response};
    use std::future::Future;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::net::TcpListener;

    /// What a test receiver was sent: each request's headers and body.
    type Log = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

    /// A receiver on 127.0.0.1 that records every request and answers with `respond`, given
    /// its own URL.
    async fn receiver<F, Fut>(respond: F) -> (Url, Log)
    where
        F: Fn(Url) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/hook", listener.local_addr().unwrap())).unwrap();
        let log = Log::default();
        let handler = {
            let (log, url) = (log.clone(), url.clone());
            move |headers: HeaderMap, body: Bytes| {
                log.lock().unwrap().push((headers, body));
                respond(url.clone())
            }
        };
        let app = Router::new().fallback(handler);
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, log)
    }

    fn requests(log: &Log) -> usize {
        log.lock().unwrap().len()
    }

    const LONG: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn a_2xx_is_delivered_with_the_body_and_headers() {
        let (url, log) = receiver(|_| async { (StatusCode::OK, "thanks").into_response() }).await;
        let body = Bytes::from_static(br#"{"type":"question.created"}"#);
        let secret = Secret::generate();
        let signature = signature_header(&[&secret], "msg_1", 1_700_000_000, &body);
        let headers = [
            ("webhook-id", "msg_1".to_owned()),
            ("webhook-timestamp", "1700000000".to_owned()),
            ("webhook-signature", signature.clone()),
        ];

        let attempt = Sender::new(true, LONG)
            .send(&url, &headers, body.clone())
            .await;

        assert_eq!(attempt.outcome, Outcome::Delivered, "{attempt:?}");
        assert_eq!(attempt.status, Some(200));
        assert_eq!(attempt.error, None);
        assert_eq!(attempt.excerpt.as_deref(), Some("thanks"));
        let seen = log.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let (headers, received) = &seen[0];
        assert_eq!(received, &body);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["webhook-id"], "msg_1");
        assert_eq!(headers["webhook-timestamp"], "1700000000");
        assert_eq!(headers["webhook-signature"], signature.as_str());
        let agent = headers["user-agent"].to_str().unwrap();
        assert_eq!(agent, format!("kb-webhooks/{}", env!("CARGO_PKG_VERSION")));
    }

    #[tokio::test]
    async fn an_empty_2xx_is_delivered_without_an_excerpt() {
        let (url, _) = receiver(|_| async { StatusCode::NO_CONTENT.into_response() }).await;
        let attempt = Sender::new(true, LONG)
            .send(&url, &[], Bytes::from_static(b"{}"))
            .await;
        assert_eq!(attempt.outcome, Outcome::Delivered);
        assert_eq!(attempt.status, Some(204));
        assert_eq!(attempt.excerpt, None);
    }

    #[tokio::test]
    async fn a_410_is_gone() {
        let (url, _) = receiver(|_| async { StatusCode::GONE.into_response() }).await;
        let attempt = Sender::new(true, LONG)
            .send(&url, &[], Bytes::from_static(b"{}"))
            .await;
        assert_eq!(attempt.outcome, Outcome::Gone);
        assert_eq!(attempt.status, Some(410));
        assert!(attempt.error.is_some());
    }

    #[tokio::test]
    async fn a_500_fails_with_its_status_and_excerpt() {
        let (url, _) =
            receiver(|_| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response() })
                .await;
        let attempt = Sender::new(true, LONG)
            .send(&url, &[], Bytes::from_static(b"{}"))
            .await;
        assert_eq!(attempt.outcome, Outcome::Failed);
        assert_eq!(attempt.status, Some(500));
        assert_eq!(attempt.error.as_deref(), Some("response status 500"));
        assert_eq!(attempt.excerpt.as_deref(), Some("boom"));
    }

    #[tokio::test]
    async fn a_redirect_fails_and_is_not_followed() {
        let (url, log) = receiver(|own: Url| async move {
            (StatusCode::FOUND, [(LOCATION, own.to_string())]).into_response()
        })
        .await;
        let attempt = Sender::new(true, LONG)
            .send(&url, &[], Bytes::from_static(b"{}"))
            .await;
        assert_eq!(attempt.outcome, Outcome::Failed);
        assert_eq!(attempt.status, Some(302));
        assert_eq!(
            attempt.error,
            Some(format!("redirect (302) to {url} not followed"))
        );
        assert_eq!(requests(&log), 1);
    }

    #[tokio::test]
    async fn a_receiver_that_never_answers_fails_after_the_timeout() {
        let (url, log) = receiver(|_| std::future::pending::<Response>()).await;
        let timeout = Duration::from_millis(300);
        let attempt = Sender::new(true, timeout)
            .send(&url, &[], Bytes::from_static(b"{}"))
            .await;
        assert_eq!(attempt.outcome, Outcome::Failed);
        assert_eq!(attempt.status, None);
        assert_eq!(attempt.error.as_deref(), Some("timed out after 300ms"));
        assert_eq!(requests(&log), 1);
    }

    #[tokio::test]
    async fn a_body_that_never_ends_is_cut_by_the_timeout_and_keeps_the_status() {
        let (url, _) = receiver(|_| async {
            let first = futures_util::stream::once(async {
                Ok::<_, std::io::Error>(Bytes::from_static(b"partial"))
            });
            let never = futures_util::stream::pending();
            Body::from_stream(futures_util::StreamExt::chain(first, never)).into_response()
        })
        .await;
        let timeout = Duration::from_millis(300);
        let attempt = Sender::new(true, timeout)
            .send(&url, &[], Bytes::from_static(b"{}"))
            .await;
        assert_eq!(attempt.outcome, Outcome::Delivered);
        assert_eq!(attempt.status, Some(200));
        assert_eq!(attempt.excerpt.as_deref(), Some("partial"));
    }

    #[tokio::test]
    async fn an_endless_response_is_read_only_to_the_limit() {
        const TOTAL: usize = 100 * 1024 * 1024;
        let produced = Arc::new(AtomicUsize::new(0));
        let counter = produced.clone();
        let (url, _) = receiver(move |_| {
            let counter = counter.clone();
            async move {
                // "€" is three bytes, so the excerpt's limit falls inside a character.
                let chunk = Bytes::from("€".repeat(21_846));
                let chunks = TOTAL / chunk.len() + 1;
                let stream = futures_util::stream::iter((0..chunks).map(move |_| {
                    counter.fetch_add(chunk.len(), Ordering::Relaxed);
                    Ok::<_, std::io::Error>(chunk.clone())
                }));
                Body::from_stream(stream).into_response()
            }
        })
        .await;

        let attempt = Sender::new(true, LONG)
            .send(&url, &[], Bytes::from_static(b"{}"))
            .await;

        assert_eq!(attempt.outcome, Outcome::Delivered);
        assert_eq!(attempt.status, Some(200));
        let excerpt = attempt.excerpt.unwrap();
        assert!(excerpt.len() <= EXCERPT_BYTES, "{}", excerpt.len());
        assert!(excerpt.starts_with("€€€"));
        assert!(
            produced.load(Ordering::Relaxed) < TOTAL,
            "the receiver got to send everything"
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_a_refused_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let url = Url::parse(&format!("http://{addr}/")).unwrap();
        let attempt = Sender::new(true, LONG)
            .send(&url, &[], Bytes::from_static(b"{}"))
            .await;
        assert_eq!(attempt.outcome, Outcome::Failed);
        assert_eq!(attempt.status, None);
        assert_eq!(attempt.error.as_deref(), Some("connection refused"));
    }

    #[tokio::test]
    async fn a_failed_tls_handshake_is_a_failed_attempt() {
        // A plain-HTTP receiver behind an https URL: the handshake gets an HTTP answer. This
        // also proves the TLS stack starts (its crypto provider is the one compiled in).
        let (url, _) = receiver(|_| async { StatusCode::OK.into_response() }).await;
        let tls = Url::parse(&format!("https://127.0.0.1:{}/", url.port().unwrap())).unwrap();
        let attempt = Sender::new(true, LONG).send(&tls, &[], Bytes::new()).await;
        assert_eq!(attempt.outcome, Outcome::Failed);
        assert_eq!(attempt.status, None);
        let error = attempt.error.unwrap();
        assert!(error.starts_with("cannot connect: "), "{error}");
    }

    #[tokio::test]
    async fn a_forbidden_literal_address_is_never_contacted() {
        let (url, log) = receiver(|_| async { StatusCode::OK.into_response() }).await;
        let sender = Sender::new(false, LONG);
        let attempt = sender.send(&url, &[], Bytes::from_static(b"{}")).await;
        assert_eq!(attempt.outcome, Outcome::Failed);
        assert_eq!(attempt.status, None);
        assert_eq!(
            attempt.error.as_deref(),
            Some("address 127.0.0.1 is a loopback address")
        );
        let port = url.port().unwrap();
        for spelling in [
            format!("http://[::ffff:127.0.0.1]:{port}/"),
            format!("http://[::1]:{port}/"),
            format!("https://2130706433:{port}/"),
            format!("https://169.254.169.254:{port}/"),
        ] {
            let attempt = sender
                .send(&Url::parse(&spelling).unwrap(), &[], Bytes::new())
                .await;
            assert_eq!(attempt.outcome, Outcome::Failed, "{spelling}");
            assert!(
                attempt.error.as_deref().unwrap().starts_with("address "),
                "{spelling}: {attempt:?}"
            );
        }
        assert_eq!(requests(&log), 0);
    }

    #[tokio::test]
    async fn a_name_resolving_to_a_forbidden_address_is_refused_by_the_resolver() {
        let (url, log) = receiver(|_| async { StatusCode::OK.into_response() }).await;
        // `send` applies no scheme or name rules of its own: only the resolver stands between
        // `localhost` and the receiver.
        let by_name =
            Url::parse(&format!("http://localhost:{}/hook", url.port().unwrap())).unwrap();

        let attempt = Sender::new(false, LONG)
            .send(&by_name, &[], Bytes::new())
            .await;
        assert_eq!(attempt.outcome, Outcome::Failed, "{attempt:?}");
        assert_eq!(attempt.status, None);
        let error = attempt.error.unwrap();
        assert!(
            error.starts_with("localhost resolves to ") && error.ends_with("a loopback address"),
            "{error}"
        );
        assert_eq!(requests(&log), 0);

        // The same request with private addresses allowed does arrive.
        let attempt = Sender::new(true, LONG)
            .send(&by_name, &[], Bytes::new())
            .await;
        assert_eq!(attempt.outcome, Outcome::Delivered, "{attempt:?}");
        assert_eq!(requests(&log), 1);
    }

    #[tokio::test]
    async fn bad_headers_fail_the_attempt_without_sending() {
        let (url, log) = receiver(|_| async { StatusCode::OK.into_response() }).await;
        let sender = Sender::new(true, LONG);
        let attempt = sender
            .send(&url, &[("webhook-id", "a\r\nb".to_owned())], Bytes::new())
            .await;
        assert_eq!(attempt.outcome, Outcome::Failed);
        assert_eq!(
            attempt.error.as_deref(),
            Some("invalid value for header webhook-id")
        );
        let attempt = sender
            .send(&url, &[("bad header", "x".to_owned())], Bytes::new())
            .await;
        assert_eq!(attempt.outcome, Outcome::Failed);
        assert_eq!(
            attempt.error.as_deref(),
            Some("invalid header name \"bad header\"")
        );
        assert_eq!(requests(&log), 0);
    }

    #[test]
    fn excerpts_and_reasons_stay_within_their_limits() {
        let cut = lossy_excerpt("€".repeat(400).as_bytes().get(..EXCERPT_BYTES).unwrap());
        assert!(cut.len() <= EXCERPT_BYTES);
        assert_eq!(lossy_excerpt(&[0xff; EXCERPT_BYTES]).len(), 1023);
        assert_eq!(lossy_excerpt(b"ok"), "ok");
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("abc", 3), "abc");
    }
}
