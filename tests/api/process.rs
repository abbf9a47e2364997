//! Runs the real `kb` binary as a child process and talks to it over TCP.

use crate::helpers::ADMIN_KEY;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

pub struct Server {
    pub child: Child,
    pub addr: String,
    /// Log lines printed after the "serving" line, collected by a thread.
    pub logs: std::sync::mpsc::Receiver<String>,
}

impl Server {
    /// Starts `kb` on a free port over `data_dir` and waits until it serves.
    pub fn start(data_dir: &Path, extra_env: &[(&str, &str)]) -> Self {
        let mut cmd = crate::helpers::kb_cmd(data_dir);
        cmd.env("KB_BIND", "127.0.0.1:0")
            .env("KB_LOG_FORMAT", "json")
            .env("KB_LOG", "info")
            .env("KB_ADMIN_KEY", ADMIN_KEY)
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
        request(&self.addr, method, path, body).expect("the server answers")
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

/// One HTTP/1.1 request to `addr` with the admin key; an error when the server is gone or
/// answers nothing.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    request_as(addr, ADMIN_KEY, method, path, body)
}

/// One HTTP/1.1 request to `addr` with the bearer token `bearer`.
pub fn request_as(
    addr: &str,
    bearer: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: kb\r\nConnection: close\r\n\
         Authorization: Bearer {bearer}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
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
    let (status, body) = server.request(
        "POST",
        "/api/v1/questions",
        Some(r#"{"title":"written before shutdown","category":"golang"}"#),
    );
    assert_eq!(status, 201, "{body}");
    server.signal("TERM");
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let logs: Vec<String> = server.logs.try_iter().collect();
    assert!(
        logs.iter().any(|l| l.contains("stopped cleanly")),
        "{logs:?}"
    );
    // A new data directory is nothing to warn of: its index is simply built.
    assert!(
        logs.iter()
            .any(|l| l.contains("building the search index for a new data directory")),
        "{logs:?}"
    );
    assert!(!logs.iter().any(|l| l.contains("\"WARN\"")), "{logs:?}");
    // A clean close checkpoints and truncates SQLite's write-ahead log.
    let wal = dir.path().join("kb.sqlite3-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
    if crate::helpers::on_postgres() {
        assert!(
            !dir.path().join("kb.sqlite3").exists(),
            "no SQLite beside PostgreSQL"
        );
    }
    let server = Server::start(dir.path(), &[]);
    let (_, body) = server.request("GET", "/api/v1/questions?limit=100", None);
    assert!(body.contains("written before shutdown"));
}

pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Every question id in the database, through the list endpoint.
pub fn db_ids(server: &Server) -> BTreeSet<i64> {
    let mut ids = BTreeSet::new();
    let mut cursor = String::new();
    loop {
        let (_, body) =
            server.request("GET", &format!("/api/v1/questions?limit=100{cursor}"), None);
        let page = json(&body);
        for q in page["items"].as_array().unwrap() {
            ids.insert(q["id"].as_i64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return ids,
        }
    }
}

/// Every id the index returns for `q`, paging through all hits.
pub fn index_ids(server: &Server, q: &str) -> BTreeSet<i64> {
    let mut ids = BTreeSet::new();
    for offset in (0..).step_by(100) {
        let (_, body) = server.request(
            "GET",
            &format!("/api/v1/search?q={q}&limit=100&offset={offset}"),
            None,
        );
        let page = json(&body);
        let hits = page["hits"].as_array().unwrap();
        for h in hits {
            ids.insert(h["question"]["id"].as_i64().unwrap());
        }
        if hits.len() < 100 {
            return ids;
        }
    }
    unreachable!()
}

#[test]
fn a_sigkill_mid_writes_loses_no_acknowledged_write_and_index_and_database_agree() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[("KB_NO_SEED", "1")]);
    let (status, _) = server.request(
        "POST",
        "/api/v1/categories",
        Some(r#"{"slug":"golang","name":"Golang"}"#),
    );
    assert_eq!(status, 201);

    let acked = Arc::new(Mutex::new(Vec::<(i64, String)>::new()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (addr, acked) = (server.addr.clone(), acked.clone());
            std::thread::spawn(move || {
                for n in 0.. {
                    let token = format!("w{w}n{n}");
                    let body = format!(
                        r#"{{"title":"crashtoken {token}","category":"golang","answers":[{{"body":"答案 {token}"}}]}}"#
                    );
                    match request(&addr, "POST", "/api/v1/questions", Some(&body)) {
                        Ok((201, body)) => {
                            let id = json(&body)["id"].as_i64().unwrap();
                            acked.lock().unwrap().push((id, token));
                        }
                        Ok((status, body)) => panic!("write failed with {status}: {body}"),
                        Err(_) => return, // the server is gone
                    }
                    // Edits and deletes are part of the stream too.
                    if n % 5 == 4 {
                        let last = acked.lock().unwrap().last().cloned();
                        if let Some((id, _)) = last {
                            let _ = request(&addr, "PATCH", &format!("/api/v1/questions/{id}"), Some(r#"{"difficulty":"hard"}"#));
                        }
                    }
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    server.signal("KILL");
    for w in writers {
        w.join().unwrap();
    }
    drop(server);

    let acked = acked.lock().unwrap().clone();
    let server = Server::start(dir.path(), &[("KB_NO_SEED", "1")]);
    for (id, token) in &acked {
        let (status, _) = server.request("GET", &format!("/api/v1/questions/{id}"), None);
        assert_eq!(status, 200, "acknowledged question {id} was lost");
        let (_, body) = server.request("GET", &format!("/api/v1/search?q={token}"), None);
        let hits: Vec<i64> = json(&body)["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["question"]["id"].as_i64().unwrap())
            .collect();
        assert_eq!(
            hits,
            vec![*id],
            "acknowledged question {id} is not searchable by {token}"
        );
    }
    let in_db = db_ids(&server);
    assert!(in_db.len() >= acked.len());
    assert_eq!(
        index_ids(&server, "crashtoken"),
        in_db,
        "index and database disagree"
    );
}

#[test]
fn reindex_rebuilds_the_index_from_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let before = index_ids(&server, "GC");
    assert!(!before.is_empty());
    server.signal("TERM");
    drop(server);
    let out = crate::helpers::kb_cmd(dir.path())
        .arg("reindex")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("reindexed 29 questions"));
    let server = Server::start(dir.path(), &[]);
    assert_eq!(index_ids(&server, "GC"), before);
}

#[test]
fn reindex_refuses_while_a_server_holds_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let _server = Server::start(dir.path(), &[]);
    let out = crate::helpers::kb_cmd(dir.path())
        .arg("reindex")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another kb process"));
}

#[test]
fn a_setting_out_of_range_stops_kb_at_start_with_the_setting_and_its_range_named() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value, flag, range) in [
        (
            "KB_DATABASE_CONNECTIONS",
            "1",
            "--database-connections",
            "from 2",
        ),
        (
            "KB_MAX_CONNECTIONS_PER_CLIENT",
            "0",
            "--max-connections-per-client",
            "at least 1",
        ),
        ("KB_MAX_CONNECTIONS", "0", "--max-connections", "at least 1"),
        (
            "KB_REQUEST_TIMEOUT_SECS",
            "0",
            "--request-timeout-secs",
            "at least 1",
        ),
    ] {
        let out = crate::helpers::kb_cmd(dir.path())
            .env("KB_BIND", "127.0.0.1:0")
            .env(var, value)
            .arg("serve")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{var}={value} was accepted");
        assert!(
            stderr.contains(flag) && stderr.contains(range),
            "{var}={value}: {stderr}"
        );
    }
}

/// Runs `kb` over `dir` to completion, without a seed; panics unless it succeeds.
fn kb(dir: &Path, args: &[&str]) -> String {
    crate::helpers::kb_command(dir, &[("KB_NO_SEED", "1"), ("KB_LOG", "warn")], args)
}

/// The export of `dir` without timestamps (which record when each import ran).
fn export_without_times(dir: &Path) -> Vec<serde_json::Value> {
    crate::helpers::export_content(&kb(dir, &["export"]))
        .into_iter()
        .map(|mut v| {
            let q = v.as_object_mut().unwrap();
            q.remove("created_at");
            q.remove("updated_at");
            for a in q["answers"].as_array_mut().unwrap() {
                let a = a.as_object_mut().unwrap();
                a.remove("created_at");
                a.remove("updated_at");
            }
            v
        })
        .collect()
}

#[test]
fn importing_into_a_new_data_dir_brings_only_what_was_imported_not_the_seed() {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("q.ndjson");
    kb(
        work.path(),
        &["gen", "--count", "40", "-o", file.to_str().unwrap()],
    );
    let dir = work.path().join("data");
    // Seeding is on (no KB_NO_SEED): an import still must not mix the Go seed in.
    let with_seeding =
        |args: &[&str]| crate::helpers::kb_command(&dir, &[("KB_LOG", "warn")], args);
    let out = with_seeding(&["import", file.to_str().unwrap()]);
    assert!(out.contains("40 created"), "{out}");
    assert_eq!(
        crate::helpers::export_content(&with_seeding(&["export"])).len(),
        40
    );
}

#[test]
fn gen_import_and_export_round_trip_through_the_command_line() {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("q.ndjson");
    kb(
        work.path(),
        &[
            "gen",
            "--count",
            "300",
            "--seed",
            "4",
            "-o",
            file.to_str().unwrap(),
        ],
    );
    let generated = std::fs::read_to_string(&file).unwrap();
    assert_eq!(generated.lines().count(), 300);
    let again = kb(work.path(), &["gen", "--count", "300", "--seed", "4"]);
    assert_eq!(again, generated, "the generator is deterministic");

    let a = work.path().join("a");
    let out = kb(&a, &["import", file.to_str().unwrap()]);
    assert!(out.contains("300 created"), "{out}");
    let out = kb(&a, &["import", file.to_str().unwrap()]);
    assert!(out.contains("0 created, 0 updated, 300 unchanged"), "{out}");
    let exported = work.path().join("export.ndjson");
    kb(&a, &["export", "-o", exported.to_str().unwrap()]);
    let first = std::fs::read_to_string(&exported).unwrap();
    let first = json(first.lines().next().unwrap());
    assert!(
        first["changes_cursor"].is_string(),
        "the export says where it stands in the change feed: {first}"
    );
    let b = work.path().join("b");
    kb(&b, &["import", exported.to_str().unwrap()]);
    assert_eq!(
        crate::helpers::export_content(&kb(&b, &["export"])),
        crate::helpers::export_content(&std::fs::read_to_string(&exported).unwrap())
    );

    // A bad line fails the command (exit 1) after importing the rest, naming the line.
    let bad = work.path().join("bad.ndjson");
    std::fs::write(
        &bad,
        "{\"title\": \"好\", \"category\": \"golang\"}\n{oops\n",
    )
    .unwrap();
    let out = crate::helpers::kb_cmd(&work.path().join("c"))
        .env("KB_NO_SEED", "1")
        .args(["import", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2: not valid JSON"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 created"));
}

/// The issue asks for 100k; CI runs a debug build, so the default is smaller and
/// `benches/load.sh` runs the full size (`KB_CRASH_IMPORT_N=100000`) on a release build.
#[test]
fn a_sigkill_mid_import_then_the_same_import_again_equals_a_clean_import() {
    let n: u64 = std::env::var("KB_CRASH_IMPORT_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("q.ndjson");
    let file_arg = file.to_str().unwrap().to_string();
    kb(
        work.path(),
        &[
            "gen",
            "--count",
            &n.to_string(),
            "--seed",
            "9",
            "-o",
            &file_arg,
        ],
    );

    let crashed = work.path().join("crashed");
    std::fs::create_dir_all(&crashed).unwrap();
    let mut child = crate::helpers::kb_cmd(&crashed)
        .env("KB_NO_SEED", "1")
        .env("KB_LOG", "warn")
        .args(["import", &file_arg])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Kill once a few batches are committed: SQLite's write-ahead log has grown, or
    // PostgreSQL holds a few thousand questions.
    let wal = crashed.join("kb.sqlite3-wal");
    let committed = || {
        if crate::helpers::on_postgres() {
            // Ids handed out so far (the tables may not even exist yet).
            let n = crate::helpers::db_rows(
                &crashed,
                "SELECT CAST(coalesce(max(last_value), 0) AS TEXT) FROM pg_sequences
                 WHERE sequencename = 'questions_id_seq'",
            );
            n[0].parse::<u64>().unwrap() >= 4000
        } else {
            std::fs::metadata(&wal).map_or(0, |m| m.len()) >= 4 << 20
        }
    };
    while !committed() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the import ended before the kill"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = export_without_times(&crashed).len() as u64;
    assert!(partial < n, "killed in the middle, not after the end");

    let out = kb(&crashed, &["import", &file_arg]);
    assert!(
        out.contains(&format!("{} created", n - partial)),
        "{out} (after {partial} survived the crash)"
    );
    let clean = work.path().join("clean");
    kb(&clean, &["import", &file_arg]);
    assert_eq!(export_without_times(&crashed), export_without_times(&clean));

    let (a, b) = (
        Server::start(&crashed, &[("KB_NO_SEED", "1")]),
        Server::start(&clean, &[("KB_NO_SEED", "1")]),
    );
    for q in [
        "goroutine",
        "%E4%B8%80%E8%87%B4%E6%80%A7",
        "sync.Mutex",
        "GC",
    ] {
        let (x, y) = (search_summary(&a, q), search_summary(&b, q));
        assert!(x.0 > 0, "{q}");
        assert_eq!(x, y, "search for {q} differs");
    }
}

/// What a search finds, independent of rank ties: the total and the facet counts. (Ranks can
/// differ between two equal indexes: BM25 statistics count deleted documents until segments
/// merge.)
fn search_summary(server: &Server, q: &str) -> (u64, serde_json::Value) {
    let (status, body) = server.request("GET", &format!("/api/v1/search?q={q}&limit=1"), None);
    assert_eq!(status, 200, "{body}");
    let page = json(&body);
    (page["total"].as_u64().unwrap(), page["facets"].clone())
}
