//! The accept loop: HTTP/1.1 connections with a bounded time to send a request's headers, a cap
//! on open connections, the client's address in every request, and a graceful shutdown.
//!
//! `axum::serve` offers none of these knobs: a client that drips header lines held its
//! connection forever, and enough of them exhausted file descriptors.

use crate::config::LimitsConfig;
use crate::domain::Net;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

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

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests
/// finish (up to the grace period). The header timeout runs from the moment a connection is
/// ready for a request (just accepted, or its previous response sent) until that request's
/// headers are complete, so it is also the idle timeout of a keep-alive connection. Each client
/// address (an IPv6 client: its /64) holds at most its share of connections, so one host
/// cannot take every slot; loopback and `exempt` addresses (trusted proxies) are not limited.
pub async fn serve(
    listener: TcpListener,
    router: Router,
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
        let service =
            router
                .clone()
                .map_request(move |req: hyper::Request<hyper::body::Incoming>| {
                    let mut req = req.map(axum::body::Body::new);
                    req.extensions_mut().insert(ConnectInfo(peer));
                    req
                });
        let conn =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
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
