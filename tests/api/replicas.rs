//! Several kb processes on one PostgreSQL database, each with its own data directory and
//! search index. These run only when `KB_TEST_DATABASE_URL` names a PostgreSQL server (CI sets
//! it); on SQLite there is nothing to share. The last test, on pruning the change log by the
//! replicas' positions, runs on both stores.

use crate::helpers::{database_url_for, db_rows, kb_command, on_postgres};
use crate::process::{Server, db_ids, index_ids, json, request, request_as};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// Polls `check` until it holds; panics with `what` if it never does. Replicas converge
/// within about a second; the bound only keeps a broken build from hanging CI.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(60), "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A second replica over `data_dir` on the database of `first` (another data directory).
fn replica(data_dir: &Path, first: &Path, env: &[(&str, &str)]) -> Server {
    let url = database_url_for(first).expect("on PostgreSQL");
    let mut all = vec![("KB_DATABASE_URL", url.as_str())];
    all.extend_from_slice(env);
    ready(Server::start(data_dir, &all))
}

fn create(server: &Server, title: &str) -> i64 {
    let body = serde_json::json!({"title": title, "category": "golang"});
    let (status, body) = server.request("POST", "/api/v1/questions", Some(&body.to_string()));
    assert_eq!(status, 201, "{body}");
    json(&body)["id"].as_i64().unwrap()
}

/// Waits until `server` says it is ready (its index is built).
fn ready(server: Server) -> Server {
    eventually("the replica is ready", || {
        server.request("GET", "/readyz", None).0 == 200
    });
    server
}

#[test]
fn a_write_through_one_replica_is_found_by_search_on_another() {
    if !on_postgres() {
        return;
    }
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = ready(Server::start(a_dir.path(), &[]));
    let b = replica(b_dir.path(), a_dir.path(), &[]);
    // The seed was loaded once, by whichever replica came first.
    assert_eq!(db_ids(&a).len(), 29);
    assert_eq!(db_ids(&b), db_ids(&a));
    let id = create(&a, "副本之间 replicasync 的写入");
    // Read-your-writes on A: searchable when A answers.
    assert_eq!(index_ids(&a, "replicasync"), BTreeSet::from([id]));
    eventually("B finds A's write", || {
        index_ids(&b, "replicasync") == BTreeSet::from([id])
    });
    // A delete on B leaves A's index too.
    let (status, _) = b.request("DELETE", &format!("/api/v1/questions/{id}"), None);
    assert_eq!(status, 204);
    eventually("A forgets B's delete", || {
        index_ids(&a, "replicasync").is_empty()
    });
}

/// Where a reader of `server`'s change feed that has seen everything stands.
fn feed_head(server: &Server) -> String {
    let mut after = String::new();
    loop {
        let (status, body) =
            server.request("GET", &format!("/api/v1/changes?limit=1000{after}"), None);
        assert_eq!(status, 200, "{body}");
        let page = json(&body);
        after = format!("&after={}", page["next_cursor"].as_str().unwrap());
        if !page["has_more"].as_bool().unwrap() {
            return page["next_cursor"].as_str().unwrap().to_string();
        }
    }
}

#[test]
fn a_write_through_one_replica_wakes_a_long_poll_on_another() {
    if !on_postgres() {
        return;
    }
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = ready(Server::start(a_dir.path(), &[]));
    let b = replica(b_dir.path(), a_dir.path(), &[]);
    let cursor = feed_head(&b);
    assert_eq!(
        cursor,
        feed_head(&a),
        "cursors are the same on every replica"
    );
    let (b_addr, path) = (
        b.addr.clone(),
        format!("/api/v1/changes?after={cursor}&wait=30"),
    );
    let (page, id) = std::thread::scope(|s| {
        let poll = s.spawn(move || request(&b_addr, "GET", &path, None).expect("B answers"));
        std::thread::sleep(Duration::from_millis(300));
        let id = create(&a, "副本之间的长轮询");
        (poll.join().unwrap(), id)
    });
    assert_eq!(page.0, 200, "{}", page.1);
    let page = json(&page.1);
    assert_eq!(page["items"][0]["type"], "question.created");
    assert_eq!(page["items"][0]["data"]["id"], id);
}

#[test]
fn a_sigkill_mid_writes_loses_no_acknowledged_write_on_any_replica() {
    if !on_postgres() {
        return;
    }
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = ready(Server::start(a_dir.path(), &[]));
    let b = replica(b_dir.path(), a_dir.path(), &[]);
    let addr = a.addr.clone();
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let writer = {
        let acknowledged = acknowledged.clone();
        std::thread::spawn(move || {
            for n in 0..80 {
                let body = serde_json::json!({
                    "title": format!("杀进程 killstream 第 {n} 条"), "category": "golang"});
                match request(&addr, "POST", "/api/v1/questions", Some(&body.to_string())) {
                    Ok((201, body)) => {
                        let id = json(&body)["id"].as_i64().unwrap();
                        acknowledged.lock().unwrap().insert(id);
                    }
                    _ => return,
                }
            }
        })
    };
    eventually("some writes are acknowledged", || {
        acknowledged.lock().unwrap().len() >= 15
    });
    a.signal("KILL");
    writer.join().unwrap();
    drop(a);
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() < 80,
        "killed in the middle of the stream"
    );
    // Every acknowledged write is in PostgreSQL and in B's index (B may also hold a write
    // that committed as A died, before A could acknowledge it).
    let stored = db_ids(&b);
    assert!(acknowledged.is_subset(&stored));
    eventually("B's index holds every acknowledged write", || {
        acknowledged.is_subset(&index_ids(&b, "killstream"))
    });
    let in_db: BTreeSet<i64> = stored.iter().copied().filter(|id| *id > 29).collect();
    eventually("B's index equals the database", || {
        index_ids(&b, "killstream") == in_db
    });
    // A restarts on its old index and catches up from the payload.
    let a = ready(Server::start(a_dir.path(), &[]));
    eventually("A caught up", || index_ids(&a, "killstream") == in_db);
}

#[test]
fn a_quiz_session_and_a_learner_token_from_one_replica_work_on_another() {
    if !on_postgres() {
        return;
    }
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = ready(Server::start(a_dir.path(), &[]));
    let b = replica(b_dir.path(), a_dir.path(), &[]);
    let (status, body) = a.request(
        "POST",
        "/api/v1/quiz/sessions",
        Some(r#"{"category": "distributed"}"#),
    );
    assert_eq!(status, 201, "{body}");
    let session = json(&body);
    let total = session["remaining"].as_u64().unwrap() as usize;
    let token = session["token"].as_str().unwrap().to_string();
    let mut seen = Vec::new();
    for (n, server) in [&a, &b].iter().cycle().enumerate().take(total) {
        let (status, body) = server.request(
            "GET",
            &format!("/api/v1/quiz?count=1&session={token}"),
            None,
        );
        assert_eq!(status, 200, "draw {n}: {body}");
        let items = json(&body)["items"].as_array().unwrap().clone();
        seen.extend(items.iter().map(|i| i["question"]["id"].as_i64().unwrap()));
    }
    let distinct: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        total,
        "no repeats across replicas: {seen:?}"
    );
    let (status, _) = b.request(
        "GET",
        &format!("/api/v1/quiz?count=1&session={token}"),
        None,
    );
    assert_eq!(status, 409, "exhausted on both");

    // A multiple-choice ticket signed by A is graded by B.
    let (_, body) = a.request("GET", "/api/v1/quiz?mode=choice&count=1", None);
    let item = json(&body)["items"][0].clone();
    let ticket = item["ticket"].as_str().unwrap();
    let choice = item["choices"][0]["id"].as_str().unwrap();
    let (status, body) = b.request(
        "POST",
        "/api/v1/quiz/answers",
        Some(&serde_json::json!({"ticket": ticket, "choice_id": choice}).to_string()),
    );
    assert_eq!(status, 200, "{body}");

    // A learner token issued by A acts for its learner on B.
    let (status, body) = a.request(
        "POST",
        "/api/v1/learners/ana/tokens",
        Some(r#"{"expires_in_days": 1}"#),
    );
    assert_eq!(status, 201, "{body}");
    let learner = json(&body)["token"].as_str().unwrap().to_string();
    let (status, body) = request_as(
        &b.addr,
        &learner,
        "POST",
        "/api/v1/learners/ana/reviews",
        Some(r#"{"question_id": 16, "rating": "good"}"#),
    )
    .unwrap();
    assert_eq!(status, 201, "{body}");
    let (status, body) =
        request_as(&a.addr, &learner, "GET", "/api/v1/learners/ana/due", None).unwrap();
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_replica_that_fell_behind_the_pruned_log_rebuilds_and_a_new_one_builds_from_scratch() {
    if !on_postgres() {
        return;
    }
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // A forgets replicas silent for a second, and keeps the feed for a second, so B's
    // absence lets A prune past B.
    let a = ready(Server::start(
        a_dir.path(),
        &[
            ("KB_REPLICA_EXPIRY_SECS", "1"),
            ("KB_CHANGES_RETENTION", "1s"),
        ],
    ));
    let b = replica(b_dir.path(), a_dir.path(), &[]);
    assert_eq!(index_ids(&b, "GMP").len(), index_ids(&a, "GMP").len());
    b.signal("TERM");
    drop(b);
    std::thread::sleep(Duration::from_millis(1500));
    let id = create(&a, "掉队的副本 fellbehind 要重建");
    let last_seq = |dir: &Path| -> i64 {
        db_rows(
            dir,
            "SELECT CAST(last_value AS TEXT) FROM index_changes_seq_seq",
        )[0]
        .parse()
        .unwrap()
    };
    let pruned = |dir: &Path| -> i64 {
        db_rows(
            dir,
            "SELECT value FROM meta WHERE key = 'changes_pruned_upto'",
        )
        .first()
        .map_or(0, |v| v.parse().unwrap())
    };
    eventually("A pruned the log past B", || {
        pruned(a_dir.path()) >= last_seq(a_dir.path())
    });
    let b = replica(b_dir.path(), a_dir.path(), &[]);
    eventually("B rebuilt and finds the write", || {
        index_ids(&b, "fellbehind") == BTreeSet::from([id])
    });
    let mut logs = Vec::new();
    eventually("B said why it rebuilt", || {
        logs.extend(b.logs.try_iter());
        logs.iter().any(|l| l.contains("fell behind"))
    });

    // A new replica with an empty data directory builds its index from the database; until
    // then /readyz says 503 with the reason. The build is held at its first step (reading the
    // log's head, which waits for a writer holding the change-log lock) so the window is
    // certain to be seen.
    let c_dir = tempfile::tempdir().unwrap();
    let url = database_url_for(a_dir.path()).unwrap();
    let lock = ChangeLogLock::hold(&url);
    let c = Server::start(c_dir.path(), &[("KB_DATABASE_URL", url.as_str())]);
    let (status, body) = c.request("GET", "/readyz", None);
    assert_eq!(status, 503, "{body}");
    assert_eq!(json(&body)["code"], "not_ready");
    assert!(
        json(&body)["detail"].as_str().unwrap().contains("rebuilt"),
        "{body}"
    );
    lock.release();
    eventually("C is ready", || c.request("GET", "/readyz", None).0 == 200);
    assert_eq!(index_ids(&c, "fellbehind"), BTreeSet::from([id]));
    assert_eq!(index_ids(&c, "GMP"), index_ids(&a, "GMP"));
}

/// The change-log lock (the key kb's PostgreSQL store uses), held by another session as a
/// writer of another replica would hold it, until released.
struct ChangeLogLock {
    release: std::sync::mpsc::Sender<()>,
    holder: std::thread::JoinHandle<()>,
}

impl ChangeLogLock {
    fn hold(url: &str) -> Self {
        let url = url.to_string();
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let holder = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use sqlx::Connection;
                let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
                sqlx::query("SELECT pg_advisory_lock($1)")
                    .bind(kb::store::CHANGE_LOG_LOCK)
                    .execute(&mut conn)
                    .await
                    .unwrap();
                held_tx.send(()).unwrap();
                let _ = release_rx.recv();
                conn.close().await.unwrap();
            });
        });
        held_rx.recv().expect("the lock is taken");
        Self { release, holder }
    }

    fn release(self) {
        self.release.send(()).unwrap();
        self.holder.join().unwrap();
    }
}

#[test]
fn a_data_dir_moved_from_sqlite_to_postgresql_rebuilds_its_index_from_the_new_database() {
    if !on_postgres() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // First on SQLite (an empty KB_DATABASE_URL means SQLite), seeded: the index holds the seed.
    let sqlite = ready(Server::start(dir.path(), &[("KB_DATABASE_URL", "")]));
    assert!(!index_ids(&sqlite, "GMP").is_empty());
    sqlite.signal("TERM");
    drop(sqlite);
    // Then the same directory on an empty PostgreSQL database: nothing of the old index shows.
    let pg = ready(Server::start(dir.path(), &[("KB_NO_SEED", "1")]));
    assert!(
        index_ids(&pg, "GMP").is_empty(),
        "no hits from the old database"
    );
    let (status, body) = pg.request(
        "POST",
        "/api/v1/categories",
        Some(r#"{"slug": "golang", "name": "Golang"}"#),
    );
    assert_eq!(status, 201, "{body}");
    let id = create(&pg, "搬到新库 movedkb 之后");
    assert_eq!(index_ids(&pg, "movedkb"), BTreeSet::from([id]));
    let mut logs = Vec::new();
    eventually("kb said why it rebuilt", || {
        logs.extend(pg.logs.try_iter());
        logs.iter().any(|l| l.contains("another database"))
    });
}

#[test]
fn export_from_sqlite_then_import_into_postgresql_gives_the_same_knowledge_base() {
    if !on_postgres() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let (sqlite_dir, pg_dir) = (work.path().join("sqlite"), work.path().join("pg"));
    let file = work.path().join("kb.ndjson");
    let file = file.to_str().unwrap();
    // The SQLite side: a generated knowledge base, imported and exported.
    // An empty KB_DATABASE_URL means SQLite.
    let sqlite = |args: &[&str]| -> String {
        kb_command(
            &sqlite_dir,
            &[("KB_DATABASE_URL", ""), ("KB_LOG", "warn")],
            args,
        )
    };
    let generated = work.path().join("gen.ndjson");
    let generated = generated.to_str().unwrap();
    sqlite(&["gen", "--count", "300", "--seed", "3", "-o", generated]);
    sqlite(&["import", generated]);
    sqlite(&["export", "-o", file]);

    // The PostgreSQL side: an empty database, the file imported.
    let env = [("KB_NO_SEED", "1"), ("KB_LOG", "warn")];
    let report = kb_command(&pg_dir, &env, &["import", file]);
    assert!(report.contains("300 created"), "{report}");
    let exported = kb_command(&pg_dir, &env, &["export"]);
    let from_sqlite = std::fs::read_to_string(file).unwrap();
    assert_eq!(
        strip_times(&exported),
        strip_times(&from_sqlite),
        "the same questions, answers, categories and tags"
    );
    // And it serves: search over the imported knowledge base.
    let server = Server::start(&pg_dir, &[("KB_NO_SEED", "1")]);
    assert!(!index_ids(&server, "goroutine").is_empty());
}

/// Export lines without the timestamps of import itself.
fn strip_times(ndjson: &str) -> Vec<serde_json::Value> {
    crate::helpers::export_content(ndjson)
        .into_iter()
        .map(|mut v| {
            if let Some(o) = v.as_object_mut() {
                o.remove("created_at");
                o.remove("updated_at");
                o.remove("id");
                if let Some(answers) = o.get_mut("answers").and_then(|a| a.as_array_mut()) {
                    for a in answers.iter_mut().filter_map(|a| a.as_object_mut()) {
                        a.remove("created_at");
                        a.remove("updated_at");
                    }
                }
            }
            v
        })
        .collect()
}

/// A PostgreSQL server of the test's own (initdb in a temp dir, on a free port), so stopping
/// it disturbs no other test.
struct PrivateServer {
    dir: tempfile::TempDir,
    port: u16,
    bin: std::path::PathBuf,
}

impl PrivateServer {
    /// `None` when this machine has no PostgreSQL server binaries.
    fn start() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .find(|b| b.join("initdb").exists())?;
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = Self { dir, port, bin };
        if is_root() {
            // PostgreSQL refuses to run as root: its files belong to the postgres user.
            let ok = std::process::Command::new("chown")
                .args(["-R", "postgres"])
                .arg(server.dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok);
        }
        let data = server.data();
        server.run("initdb", &["-A", "trust", "-U", "postgres", "-D", &data]);
        server.pg_ctl("start");
        Some(server)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self, action: &str) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        let data = self.data();
        let mut args = vec![action, "-w", "-D", &data, "-l", &log, "-o", &options];
        if action == "stop" {
            args.extend(["-m", "fast"]);
        }
        self.run("pg_ctl", &args);
    }

    fn run(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let mut cmd = if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            std::process::Command::new(&path)
        };
        let out = cmd.args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let data = self.data();
        let _ = std::process::Command::new(if is_root() { "runuser" } else { "true" })
            .args(if is_root() {
                vec!["-u", "postgres", "--"]
            } else {
                vec![]
            })
            .arg(self.bin.join("pg_ctl"))
            .args(["stop", "-m", "immediate", "-D", &data])
            .output();
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn while_postgresql_is_down_requests_get_503_and_service_resumes_when_it_is_back() {
    if !on_postgres() {
        return;
    }
    let Some(pg) = PrivateServer::start() else {
        eprintln!("no PostgreSQL server binaries here; skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = pg.url();
    let mut server = ready(Server::start(
        dir.path(),
        &[("KB_DATABASE_URL", url.as_str())],
    ));
    let before = create(&server, "停机之前 outage 写入");

    pg.pg_ctl("stop");
    for (method, path, body) in [
        ("GET", "/api/v1/questions?limit=5", None),
        (
            "POST",
            "/api/v1/questions",
            Some(r#"{"title": "停机期间", "category": "golang"}"#),
        ),
        ("GET", "/api/v1/categories", None),
    ] {
        let (status, body) = server.request(method, path, body);
        assert_eq!(status, 503, "{method} {path}: {body}");
        assert_eq!(json(&body)["code"], "database_unavailable", "{body}");
    }
    let (status, body) = server.request("GET", "/readyz", None);
    assert_eq!(status, 503, "{body}");
    // Search hits carry whole questions, read from the database: the same clear 503.
    let (status, body) = server.request("GET", "/api/v1/search?q=outage", None);
    assert_eq!(status, 503, "{body}");
    assert_eq!(json(&body)["code"], "database_unavailable", "{body}");
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "kb is still running"
    );

    pg.pg_ctl("start");
    eventually("kb serves again without a restart", || {
        server.request("GET", "/api/v1/questions?limit=5", None).0 == 200
    });
    let after = create(&server, "恢复之后 outage 写入");
    assert_eq!(
        index_ids(&server, "outage"),
        BTreeSet::from([before, after])
    );
    assert_eq!(server.request("GET", "/readyz", None).0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_starting_together_migrate_the_database_once() {
    if !on_postgres() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = database_url_for(dir.path()).unwrap();
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { kb::store::Store::connect_postgres(&url).await })
        })
        .collect();
    for open in opens {
        let store = open.await.unwrap().expect("every replica opens the store");
        store.close().await;
    }
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .count();
    let applied = db_rows(
        dir.path(),
        "SELECT CAST(count(*) AS TEXT) FROM _sqlx_migrations WHERE success",
    );
    assert_eq!(applied, vec![files.to_string()]);
}

/// A store of its own in `dir`, as a replica's process opens it: SQLite there, or a
/// PostgreSQL database of its own when the tests run on PostgreSQL.
pub async fn store_of(dir: &Path) -> kb::store::Store {
    match database_url_for(dir) {
        Some(url) => kb::store::Store::connect_postgres_with(&url, 2)
            .await
            .unwrap(),
        None => kb::store::Store::open(&dir.join("kb.sqlite3"))
            .await
            .unwrap(),
    }
}

#[tokio::test]
async fn the_change_log_is_pruned_only_below_what_every_live_replica_has_applied_and_the_feed_no_longer_keeps()
 {
    use kb::store::Changes;
    let dir = tempfile::tempdir().unwrap();
    let store = store_of(dir.path()).await;
    let items: Vec<_> = (0..6)
        .map(|i| {
            kb::domain::import::parse_line(&format!(
                r#"{{"title": "pruned {i}", "category": "golang"}}"#
            ))
            .unwrap()
        })
        .collect();
    let last = store.import_batch(&items).await.unwrap().last_seq;
    assert_eq!(last, store.last_change_seq().await.unwrap());
    assert!(last >= 6);
    let now = || chrono::Utc::now().timestamp_micros();
    store.record_position("replica-behind", 2).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let between = now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    store.record_position("replica-ahead", last).await.unwrap();

    // Younger than the feed's retention: nothing goes, whoever has applied it.
    let hour = 3_600_000_000;
    assert_eq!(store.prune_changes(between, now() - hour).await.unwrap(), 0);

    // Both live: nothing the one behind still needs goes.
    assert_eq!(
        store
            .prune_changes(now() - 60_000_000, now())
            .await
            .unwrap(),
        2
    );
    match store.changes_after(2, 100).await.unwrap() {
        Changes::Entries(e) => assert_eq!(e.len() as i64, last - 2, "{e:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.changes_after(1, 100).await.unwrap(),
        Changes::Pruned { upto: 2 },
        "a replica below the pruned part is told to rebuild"
    );

    // The one behind falls silent: the log is pruned past it, and it is told so.
    assert_eq!(store.prune_changes(between, now()).await.unwrap(), last);
    assert_eq!(
        store.changes_after(2, 100).await.unwrap(),
        Changes::Pruned { upto: last }
    );
    assert_eq!(
        store.changes_after(last, 100).await.unwrap(),
        Changes::Entries(vec![])
    );
    store.close().await;
}

#[test]
fn webhook_deliveries_resume_after_a_postgresql_restart_with_nothing_lost() {
    if !on_postgres() {
        return;
    }
    let Some(pg) = PrivateServer::start() else {
        eprintln!("no PostgreSQL server binaries here; skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = pg.url();
    let server = ready(Server::start(
        dir.path(),
        &[
            ("KB_DATABASE_URL", url.as_str()),
            ("KB_WEBHOOKS_ALLOW_PRIVATE", "true"),
            ("KB_WEBHOOKS_FIRST_RETRY", "100ms"),
        ],
    ));
    let receiver = crate::webhooks::Receiver::start();
    receiver.slow(Duration::from_millis(50));
    let (status, body) = server.request(
        "POST",
        "/api/v1/webhooks",
        Some(&serde_json::json!({"url": receiver.url, "events": ["question.created"]}).to_string()),
    );
    assert_eq!(status, 201, "{body}");
    let ids: Vec<i64> = (0..15)
        .map(|n| create(&server, &format!("数据库重启 webhook {n}")))
        .collect();
    eventually("deliveries have begun", || receiver.received().len() >= 2);
    pg.pg_ctl("stop");
    std::thread::sleep(Duration::from_millis(500));
    pg.pg_ctl("start");
    eventually("every event arrived", || {
        let mut got: Vec<i64> = receiver
            .received()
            .iter()
            .map(|r| r.json()["data"]["id"].as_i64().unwrap())
            .collect();
        got.dedup();
        got == ids
    });
}
