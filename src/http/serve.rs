//! The accept loop: HTTP/1.1 connections with a bounded time to send a request's headers, a
//! bounded time a response may stall on a client that stopped reading, a cap on open
//! connections, the client's address in every request, and a graceful shutdown.
//!
//! `axum::serve` offers none of these knobs: a client that drips header lines held its
//! connection forever, and enough of them exhausted file descriptors.

use crate::config::LimitsConfig;
use crate::domain::Net;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// How long a response may wait for a client to take any of it: a client that stops reading
/// (a change stream it never consumes) is disconnected, rather than holding its connection and
/// whatever was written for it. Generous, because a slow link still moves.
pub const WRITE_STALL_LIMIT: Duration = Duration::from_secs(60);

/// A connection whose writes may not make no progress for longer than `limit`.
pub struct StallGuard<S> {
    inner: S,
    limit: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> StallGuard<S> {
    pub fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            stalled: None,
        }
    }

    /// Turns a write that is still pending after the limit into an error (which ends the
    /// connection); any progress starts the clock again.
    fn guard<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(r) => {
                self.stalled = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let limit = self.limit;
                let timer = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client stopped reading the response",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for StallGuard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallGuard<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.guard(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.guard(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.guard(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Open connections right now (for metrics).
#[derive(Debug, Clone, Default)]
pub struct OpenConnections(Arc<AtomicUsize>);

impl OpenConnections {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// What a client over the connection cap is told before the connection closes.
fn refusal() -> Vec<u8> {
    let body = r#"{"type":"urn:kb:problem:overloaded","title":"The server is overloaded","status":503,"detail":"too many open connections; retry in a moment","code":"overloaded"}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Connections per client address, for the per-client cap.
#[derive(Default)]
struct PerClient(Mutex<HashMap<IpAddr, usize>>);

impl PerClient {
    /// Counts a new connection from `ip` unless it already has `max`.
    fn enter(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientSlot(self.clone(), ip))
    }
}

/// Held for as long as a connection is open.
struct ClientSlot(Arc<PerClient>, IpAddr);

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut map = self.0.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.1);
            }
        }
    }
}

/// Serves `edge` on `listener` until `shutdown` resolves, then lets in-flight requests
/// finish (up to the grace period). The header timeout runs from the moment a connection is
/// ready for a request (just accepted, or its previous response sent) until that request's
/// headers are complete, so it is also the idle timeout of a keep-alive connection. Each client
/// address (an IPv6 client: its /64) holds at most its share of connections, so one host
/// cannot take every slot; loopback and `exempt` addresses (trusted proxies) are not limited.
pub async fn serve(
    listener: TcpListener,
    edge: super::edge::Edge,
    limits: &LimitsConfig,
    exempt: Vec<Net>,
    open: OpenConnections,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_client = Arc::new(PerClient::default());
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: back off
                    // briefly instead of spinning; the cap keeps this rare.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            super::metrics::rejected("too_many_connections");
            tokio::spawn(refuse(stream));
            continue;
        };
        let ip = peer.ip().to_canonical();
        let client_slot = if ip.is_loopback() || exempt.iter().any(|n| n.contains(ip)) {
            None
        } else {
            let key = match super::quota::anonymous_subject(ip) {
                super::quota::Subject::Ip(key) => key,
                super::quota::Subject::Caller(_) => ip,
            };
            match per_client.enter(key, limits.max_connections_per_client) {
                Some(s) => Some(s),
                None => {
                    super::metrics::rejected("too_many_connections");
                    tokio::spawn(refuse(stream));
                    continue;
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let service = super::edge::Connection {
            edge: edge.clone(),
            peer,
        };
        let conn = builder.serve_connection(
            TokioIo::new(StallGuard::new(stream, WRITE_STALL_LIMIT)),
            service,
        );
        let conn = graceful.watch(conn);
        let open = open.clone();
        open.0.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            open.0.fetch_sub(1, Ordering::Relaxed);
            drop(client_slot);
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace(), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period; closing them");
    }
    Ok(())
}

/// Tells a client over the connection cap to come back, without waiting on it for long.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&refusal())).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_refusal_declares_its_body_length_exactly() {
        let raw = super::refusal();
        let text = std::str::from_utf8(&raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["code"], "overloaded");
    }
}

#[cfg(test)]
mod stall_tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_write_the_client_never_takes_fails_after_the_limit() {
        let (client, server) = tokio::io::duplex(16);
        let mut guarded = StallGuard::new(server, Duration::from_secs(60));
        guarded.write_all(&[0; 16]).await.unwrap();
        let stuck = guarded.write_all(&[1; 16]).await.unwrap_err();
        assert_eq!(stuck.kind(), io::ErrorKind::TimedOut);
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_keeps_reading_is_never_cut_off() {
        let (mut client, server) = tokio::io::duplex(16);
        let mut guarded = StallGuard::new(server, Duration::from_secs(60));
        let reader = tokio::spawn(async move {
            let mut buf = [0; 8];
            let mut total = 0;
            while total < 1024 {
                tokio::time::sleep(Duration::from_secs(30)).await;
                total += tokio::io::AsyncReadExt::read(&mut client, &mut buf)
                    .await
                    .unwrap();
            }
            total
        });
        guarded.write_all(&[2; 1024]).await.unwrap();
        assert_eq!(reader.await.unwrap(), 1024);
    }
}

#[cfg(test)]
mod per_client_tests {
    use super::*;

    #[test]
    fn one_address_holds_at_most_its_share_and_frees_it_on_close() {
        let per = Arc::new(PerClient::default());
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let a = per.enter(ip, 2).unwrap();
        let _b = per.enter(ip, 2).unwrap();
        assert!(per.enter(ip, 2).is_none(), "a third connection is refused");
        assert!(
            per.enter("192.0.2.8".parse().unwrap(), 2).is_some(),
            "others are not"
        );
        drop(a);
        assert!(
            per.enter(ip, 2).is_some(),
            "a closed connection frees its place"
        );
    }
}
