//! Runs the real `kb` binary as a child process and talks to it over TCP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct Server {
    pub child: Child,
    pub addr: String,
    /// Log lines printed after the "serving" line, collected by a thread.
    pub logs: std::sync::mpsc::Receiver<String>,
}

impl Server {
    /// Starts `kb` on a free port over `data_dir` and waits until it serves.
    pub fn start(data_dir: &Path, extra_env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kb"));
        cmd.env("KB_DATA_DIR", data_dir)
            .env("KB_BIND", "127.0.0.1:0")
            .env("KB_LOG_FORMAT", "json")
            .env("KB_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("kb starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut addr_tx = Some(addr_tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(tx) = addr_tx.as_ref()
                    && let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && let Some(a) = v["fields"]["address"].as_str()
                {
                    let _ = tx.send(a.to_string());
                    addr_tx = None;
                    continue;
                }
                let _ = tx.send(line);
            }
        });
        let addr = addr_rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("kb printed its address");
        Self {
            child,
            addr,
            logs: rx,
        }
    }

    /// One HTTP/1.1 request; returns (status, body).
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).expect("connect");
        let body = body.unwrap_or("");
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: kb\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw).to_string();
        let status = text[9..12].parse().expect("status line");
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([format!("-{sig}"), self.child.id().to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sigterm_stops_the_server_cleanly_and_checkpoints_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    let (status, body) = server.request("GET", "/api/v1/questions?limit=1", None);
    assert_eq!(status, 200, "{body}");
    let (status, _) = server.request(
        "POST",
        "/api/v1/questions",
        Some(r#"{"title":"written before shutdown","category":"golang"}"#),
    );
    assert_eq!(status, 201);
    server.signal("TERM");
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let logs: Vec<String> = server.logs.try_iter().collect();
    assert!(
        logs.iter().any(|l| l.contains("stopped cleanly")),
        "{logs:?}"
    );
    // A clean close checkpoints and truncates the write-ahead log.
    let wal = dir.path().join("kb.sqlite3-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
    let server = Server::start(dir.path(), &[]);
    let (_, body) = server.request("GET", "/api/v1/questions?limit=100", None);
    assert!(body.contains("written before shutdown"));
}
