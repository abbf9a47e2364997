//! Connection hygiene over real sockets: slow clients are cut off, the connection cap holds,
//! and an oversized body is refused before it is sent.

use crate::helpers::ADMIN_KEY;
use crate::process::Server;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Reads once; `Some(n)` when the server sent `n` bytes or closed (0), `None` while it is quiet.
fn poll_read(s: &mut TcpStream) -> Option<usize> {
    let mut buf = [0u8; 4096];
    match s.read(&mut buf) {
        Ok(n) => Some(n),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(_) => Some(0),
    }
}

#[test]
fn a_client_that_drips_header_lines_is_disconnected_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("KB_HEADER_TIMEOUT_SECS", "1")]);
    let mut slow = TcpStream::connect(&server.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: kb\r\n")
        .unwrap();
    let mut cut_off = false;
    for i in 0..150 {
        // A header line every 200 ms: always sending, never finishing.
        if slow
            .write_all(format!("X-Drip-{i}: 1\r\n").as_bytes())
            .is_err()
        {
            cut_off = true;
            break;
        }
        if i == 2 {
            let (status, _) = server.request("GET", "/healthz", None);
            assert_eq!(status, 200, "others are served while a client drips");
        }
        if poll_read(&mut slow).is_some() {
            cut_off = true;
            break;
        }
    }
    assert!(
        cut_off,
        "a client that never finishes its headers is disconnected"
    );
    let (status, _) = server.request("GET", "/healthz", None);
    assert_eq!(status, 200);
}

#[test]
fn connections_over_the_cap_are_told_to_retry_and_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            ("KB_MAX_CONNECTIONS", "2"),
            ("KB_HEADER_TIMEOUT_SECS", "60"),
        ],
    );
    let idle_a = TcpStream::connect(&server.addr).unwrap();
    let _idle_b = TcpStream::connect(&server.addr).unwrap();
    // Both idle connections hold their slots: the next one is refused with a problem body.
    let mut refused = None;
    for _ in 0..100 {
        match crate::process::request(&server.addr, "GET", "/healthz", None) {
            Ok((503, body)) => {
                refused = Some(body);
                break;
            }
            // The idle connections may not be counted yet: try again.
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let body = refused.expect("a connection over the cap gets 503");
    let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["code"], "overloaded");
    // Closing one frees its slot.
    drop(idle_a);
    let mut served = false;
    for _ in 0..200 {
        if let Ok((200, _)) = crate::process::request(&server.addr, "GET", "/healthz", None) {
            served = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(served, "a freed slot takes a new connection");
}

#[test]
fn a_declared_oversized_body_is_refused_before_it_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("KB_NO_SEED", "1")]);
    let mut s = TcpStream::connect(&server.addr).unwrap();
    // Without this the test would hang rather than fail if the server waited for the body.
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST /api/v1/questions HTTP/1.1\r\nHost: kb\r\nAuthorization: Bearer {ADMIN_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 2000000\r\n\r\n"
    )
    .unwrap();
    let mut buf = vec![0u8; 8192];
    let n = s
        .read(&mut buf)
        .expect("an answer without sending the body");
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("payload_too_large"), "{text}");
}

#[test]
fn metrics_can_be_served_without_a_key_on_an_address_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("KB_METRICS_BIND", "127.0.0.1:0")]);
    let addr = loop {
        let line = server
            .logs
            .recv_timeout(Duration::from_secs(30))
            .expect("kb logs where metrics are served");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if v["fields"]["message"] == "metrics are served without a key" {
            break v["fields"]["address"].as_str().unwrap().to_string();
        }
    };
    let mut s = TcpStream::connect(&addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: kb\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("kb_index_documents"), "{text}");
}

/// One GET over its own connection, with extra header lines; the status and the raw head.
fn get_with_headers(addr: &str, path: &str, extra: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: kb\r\nConnection: close\r\n{extra}\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    (status, text)
}

#[test]
fn anonymous_quotas_follow_the_socket_peer_and_forwarded_addresses_only_from_trusted_proxies() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &[
            ("KB_ANONYMOUS_RATE", "3/min"),
            ("KB_TRUSTED_PROXIES", "127.0.0.1"),
        ],
    );
    // Behind the trusted proxy (the loopback peer), each forwarded client has its own bucket.
    for client in ["203.0.113.1", "203.0.113.2"] {
        let xff = format!("X-Forwarded-For: {client}\r\n");
        for _ in 0..3 {
            let (status, head) = get_with_headers(&server.addr, "/api/v1/questions/1", &xff);
            assert_eq!(status, 200, "{head}");
            assert!(
                head.to_ascii_lowercase()
                    .contains("ratelimit-policy: \"anonymous\";q=3;w=60")
            );
        }
        let (status, head) = get_with_headers(&server.addr, "/api/v1/questions/1", &xff);
        assert_eq!(status, 429, "{head}");
        assert!(
            head.to_ascii_lowercase().contains("retry-after: "),
            "{head}"
        );
    }
}

#[test]
fn forwarded_addresses_from_an_untrusted_peer_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("KB_ANONYMOUS_RATE", "3/min")]);
    // Every request claims another address; the peer is what counts.
    let statuses: Vec<u16> = (0..4)
        .map(|i| {
            let xff = format!("X-Forwarded-For: 198.51.100.{i}\r\n");
            get_with_headers(&server.addr, "/api/v1/questions/1", &xff).0
        })
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429]);
}
