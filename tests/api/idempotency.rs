//! `Idempotency-Key` on POSTs: replays, reuse, scope, concurrency, leases and expiry, on the
//! real router; the crash and replica tests run `kb` processes (see the end of the file).

use crate::helpers::{ADMIN_KEY, TestApp, TestResponse, create_key, db_rows, question};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

const KEY: &str = "idempotency-key";
const REPLAYED: &str = "idempotent-replayed";

/// A POST of `body` with the admin key (or `bearer`) and `Idempotency-Key: key`.
async fn post_keyed(
    app: &TestApp,
    uri: &str,
    key: &str,
    body: &Value,
    bearer: Option<&str>,
) -> TestResponse {
    let auth = format!("Bearer {}", bearer.unwrap_or(ADMIN_KEY));
    app.anonymous(
        Method::POST,
        uri,
        &[
            ("content-type", "application/json"),
            ("authorization", &auth),
            (KEY, key),
        ],
        Some(body.to_string().into_bytes()),
    )
    .await
}

fn count(app: &TestApp, sql: &str) -> i64 {
    db_rows(app.dir.path(), &format!("SELECT CAST(({sql}) AS TEXT)"))[0]
        .parse()
        .unwrap()
}

fn questions_titled(app: &TestApp, title: &str) -> i64 {
    count(
        app,
        &format!("SELECT COUNT(*) FROM questions WHERE title = '{title}'"),
    )
}

#[track_caller]
fn assert_replay_of(first: &TestResponse, again: &TestResponse) {
    assert_eq!(again.status, first.status);
    assert_eq!(again.body, first.body, "byte for byte the first answer");
    assert_eq!(again.header(REPLAYED), "true");
    assert!(first.headers.get(REPLAYED).is_none());
    for name in ["content-type", "location", "etag"] {
        assert_eq!(
            first.headers.get(name),
            again.headers.get(name),
            "{name} is replayed too"
        );
    }
}

#[tokio::test]
async fn a_retry_with_the_same_key_gets_the_first_answer_marked_as_a_replay_and_writes_once() {
    let app = TestApp::empty().await;
    let body = question("重试 retried create");
    let first = post_keyed(&app, "/api/v1/questions", "k-1", &body, None).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = post_keyed(&app, "/api/v1/questions", "k-1", &body, None).await;
    assert_replay_of(&first, &again);
    assert_eq!(questions_titled(&app, "重试 retried create"), 1);
    // Another key is another request.
    let other = post_keyed(&app, "/api/v1/questions", "k-2", &body, None).await;
    assert_eq!(other.status, StatusCode::CREATED);
    assert_ne!(other.json()["id"], first.json()["id"]);
    // Without a key nothing is kept or replayed.
    let plain = app.post("/api/v1/questions", body).await;
    assert_eq!(plain.status, StatusCode::CREATED);
    assert!(plain.headers.get(REPLAYED).is_none());
    assert_eq!(questions_titled(&app, "重试 retried create"), 3);
}

#[tokio::test]
async fn the_same_key_for_a_different_request_is_422_idempotency_key_reused() {
    let app = TestApp::empty().await;
    let first = post_keyed(&app, "/api/v1/questions", "k", &question("one"), None).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let other_body = post_keyed(&app, "/api/v1/questions", "k", &question("two"), None).await;
    other_body.assert_problem(422, "idempotency_key_reused");
    let id = first.json()["id"].as_i64().unwrap();
    let other_path = post_keyed(
        &app,
        &format!("/api/v1/questions/{id}/answers"),
        "k",
        &json!({"body": "x"}),
        None,
    )
    .await;
    other_path.assert_problem(422, "idempotency_key_reused");
    assert_eq!(questions_titled(&app, "two"), 0);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM answers"), 0);
}

#[tokio::test]
async fn keys_are_kept_per_credential_so_another_credential_with_the_same_key_runs_its_own() {
    let app = TestApp::empty().await;
    let writer = create_key(app.dir.path(), "write").await;
    let body = question("per credential");
    let admin = post_keyed(&app, "/api/v1/questions", "shared", &body, None).await;
    let mine = post_keyed(&app, "/api/v1/questions", "shared", &body, Some(&writer)).await;
    assert_eq!(admin.status, StatusCode::CREATED);
    assert_eq!(mine.status, StatusCode::CREATED);
    assert!(mine.headers.get(REPLAYED).is_none());
    assert_ne!(admin.json()["id"], mine.json()["id"]);
    let again = post_keyed(&app, "/api/v1/questions", "shared", &body, Some(&writer)).await;
    assert_replay_of(&mine, &again);
    assert_eq!(questions_titled(&app, "per credential"), 2);
    // Without a credential, keys are the client address's: a session started anonymously is
    // replayed to the next anonymous retry, not to a key holder.
    let app_ref = &app;
    let anonymous = |key: &'static str| async move {
        app_ref
            .anonymous(
                Method::POST,
                "/api/v1/quiz/sessions",
                &[("content-type", "application/json"), (KEY, key)],
                Some(b"{}".to_vec()),
            )
            .await
    };
    let first = anonymous("session").await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_replay_of(&first, &anonymous("session").await);
    let keyed = post_keyed(&app, "/api/v1/quiz/sessions", "session", &json!({}), None).await;
    assert_eq!(keyed.status, StatusCode::CREATED);
    assert_ne!(keyed.json()["token"], first.json()["token"]);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM quiz_sessions"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_sent_at_once_write_once_and_the_other_is_in_flight_or_a_replay() {
    let app = TestApp::empty().await;
    for n in 0..8 {
        let body = question(&format!("at once {n}")).to_string();
        let send = || {
            let router = app.router.clone();
            let req = Request::builder()
                .method(Method::POST)
                .uri("/api/v1/questions")
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {ADMIN_KEY}"))
                .header(KEY, format!("at-once-{n}"))
                .body(Body::from(body.clone()))
                .unwrap();
            tokio::spawn(async move {
                let res = router.oneshot(req).await.unwrap();
                let status = res.status();
                let replayed = res.headers().contains_key(REPLAYED);
                let body = http_body_util::BodyExt::collect(res.into_body())
                    .await
                    .unwrap()
                    .to_bytes();
                (status, replayed, body)
            })
        };
        let (a, b) = (send(), send());
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        let mut answers = [a, b];
        answers.sort_by_key(|(status, replayed, _)| (*status, *replayed));
        let [
            (first, first_replayed, first_body),
            (second, second_replayed, second_body),
        ] = answers;
        assert_eq!(first, StatusCode::CREATED);
        assert!(!first_replayed);
        match second {
            StatusCode::CREATED => {
                assert!(second_replayed);
                assert_eq!(second_body, first_body);
            }
            StatusCode::CONFLICT => {
                let p: Value = serde_json::from_slice(&second_body).unwrap();
                assert_eq!(p["code"], "idempotency_key_in_flight");
            }
            other => panic!("{other}: {second_body:?}"),
        }
        assert_eq!(questions_titled(&app, &format!("at once {n}")), 1);
    }
}

#[tokio::test]
async fn a_key_that_is_empty_too_long_or_not_printable_ascii_is_400_and_nothing_is_written() {
    let app = TestApp::empty().await;
    let long = "k".repeat(256);
    let body = question("bad key").to_string().into_bytes();
    // (DEL is not even a header value; the key's parser refuses it as well.)
    for bad in [
        &b""[..],
        long.as_bytes(),
        "键".as_bytes(),
        b"tab\there",
        b"\xff",
    ] {
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/questions")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {ADMIN_KEY}"))
            .header(KEY, axum::http::HeaderValue::from_bytes(bad).unwrap())
            .body(Body::from(body.clone()))
            .unwrap();
        app.send(req)
            .await
            .assert_problem(400, "invalid_idempotency_key");
    }
    let twice = app
        .request(
            Method::POST,
            "/api/v1/questions",
            &[
                ("content-type", "application/json"),
                (KEY, "one"),
                (KEY, "two"),
            ],
            Some(body.clone()),
        )
        .await;
    twice.assert_problem(400, "invalid_idempotency_key");
    let longest = "k".repeat(255);
    let ok = post_keyed(
        &app,
        "/api/v1/questions",
        &longest,
        &question("bad key"),
        None,
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED);
    assert_eq!(questions_titled(&app, "bad key"), 1);
}

#[tokio::test]
async fn a_claim_left_by_a_crash_holds_its_key_only_until_its_lease_ends() {
    let app = TestApp::empty().await;
    let body = question("crashed before its write");
    let done = post_keyed(&app, "/api/v1/questions", "done", &body, None).await;
    assert_eq!(done.status, StatusCode::CREATED);
    // Claims of the same request whose process died before the write committed: one whose
    // lease still runs, one whose lease ended.
    for (key, lease_until) in [("live", "9000000000000000"), ("stale", "1")] {
        db_rows(
            app.dir.path(),
            &format!(
                "INSERT INTO idempotency_keys (scope, key, fingerprint, learner, state, claim,
                                               lease_until, created_at, expires_at)
                 SELECT scope, '{key}', fingerprint, NULL, 'running', 'a dead process',
                        {lease_until}, created_at, expires_at
                 FROM idempotency_keys WHERE key = 'done'"
            ),
        );
    }
    let live = post_keyed(&app, "/api/v1/questions", "live", &body, None).await;
    live.assert_problem(409, "idempotency_key_in_flight");
    assert_eq!(live.header("retry-after"), "1");
    let stale = post_keyed(&app, "/api/v1/questions", "stale", &body, None).await;
    assert_eq!(stale.status, StatusCode::CREATED);
    assert!(stale.headers.get(REPLAYED).is_none());
    let again = post_keyed(&app, "/api/v1/questions", "stale", &body, None).await;
    assert_replay_of(&stale, &again);
    assert_eq!(questions_titled(&app, "crashed before its write"), 2);
    // A stale claim of another request is still that request's key.
    db_rows(
        app.dir.path(),
        "UPDATE idempotency_keys SET lease_until = 1 WHERE key = 'live'",
    );
    let other = post_keyed(&app, "/api/v1/questions", "live", &question("other"), None).await;
    other.assert_problem(422, "idempotency_key_reused");
}

#[tokio::test]
async fn the_answer_commits_with_the_effect_so_a_lost_claim_rolls_back_every_transactional_post() {
    let app = TestApp::seeded().await;
    let dir = app.dir.path();
    // A trigger on the table each POST writes takes the running claim over from inside that
    // POST's transaction, as a request that took the key over after this one's lease ended
    // would have. Were the answer recorded after the effect's commit instead, the effect
    // would stay and the request would succeed.
    let posts: [(&str, &str, Value); 6] = [
        ("questions", "/api/v1/questions", question("stolen")),
        (
            "answers",
            "/api/v1/questions/1/answers",
            json!({"body": "stolen"}),
        ),
        (
            "categories",
            "/api/v1/categories",
            json!({"slug": "stolen", "name": "Stolen"}),
        ),
        ("quiz_sessions", "/api/v1/quiz/sessions", json!({})),
        (
            "reviews",
            "/api/v1/learners/ana/reviews",
            json!({"question_id": 1, "rating": "good"}),
        ),
        (
            "reviews",
            "/api/v1/learners/ana/reviews/batch",
            json!({"reviews": [{"question_id": 2, "rating": "good"}, {"question_id": 3, "rating": "hard"}]}),
        ),
    ];
    // The key is the table's name: the trigger replaces whatever holds it by another
    // request's live claim.
    let steal = |key: &str| {
        format!(
            "DELETE FROM idempotency_keys WHERE key = {key};
             INSERT INTO idempotency_keys (scope, key, state, claim, lease_until, created_at,
                                           expires_at)
             VALUES ('admin', {key}, 'running', 'another request', 9000000000000000, 0,
                     9000000000000000)"
        )
    };
    let pg = crate::helpers::on_postgres();
    if pg {
        db_rows(
            dir,
            &format!(
                "CREATE FUNCTION steal() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN {}; RETURN NEW; END $$",
                steal("TG_TABLE_NAME")
            ),
        );
    }
    let mut tables: Vec<&str> = posts.iter().map(|(t, _, _)| *t).collect();
    tables.dedup();
    for table in &tables {
        let create = if pg {
            format!(
                "CREATE TRIGGER steal_{table} BEFORE INSERT ON {table}
                 FOR EACH ROW EXECUTE FUNCTION steal()"
            )
        } else {
            format!(
                "CREATE TRIGGER steal_{table} BEFORE INSERT ON {table} BEGIN {}; END",
                steal(&format!("'{table}'"))
            )
        };
        db_rows(dir, &create);
    }
    let rows = |table: &str| count(&app, &format!("SELECT COUNT(*) FROM {table}"));
    for (table, uri, body) in &posts {
        let before = rows(table);
        let lost = post_keyed(&app, uri, table, body, None).await;
        lost.assert_problem(409, "idempotency_key_in_flight");
        assert_eq!(rows(table), before, "{uri}: the write rolled back");
        // Rolled back with it, the key was still this request's, which gave it up.
        assert_eq!(count(&app, "SELECT COUNT(*) FROM idempotency_keys"), 0);
    }
    for table in &tables {
        let drop = if pg {
            format!("DROP TRIGGER steal_{table} ON {table}")
        } else {
            format!("DROP TRIGGER steal_{table}")
        };
        db_rows(dir, &drop);
    }
    for (table, uri, body) in &posts {
        let before = rows(table);
        // A key of its own: the two review routes write one table.
        let retry = post_keyed(&app, uri, uri, body, None).await;
        // The batch answers 200 with each review's fate, and records its two.
        let (status, added) = if uri.ends_with("/batch") {
            (StatusCode::OK, 2)
        } else {
            (StatusCode::CREATED, 1)
        };
        assert_eq!(retry.status, status, "{uri}");
        assert_eq!(rows(table), before + added, "{uri}");
    }
}

#[tokio::test]
async fn an_answer_older_than_24_hours_is_not_replayed() {
    let app = TestApp::empty().await;
    let body = question("a day later");
    let first = post_keyed(&app, "/api/v1/questions", "day", &body, None).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let row = db_rows(
        app.dir.path(),
        "SELECT CAST(expires_at - created_at AS TEXT) FROM idempotency_keys WHERE key = 'day'",
    );
    assert_eq!(row, ["86400000000"], "kept 24 hours, in microseconds");
    db_rows(
        app.dir.path(),
        "UPDATE idempotency_keys SET created_at = created_at - 86400000001,
                                     expires_at = expires_at - 86400000001",
    );
    let later = post_keyed(&app, "/api/v1/questions", "day", &body, None).await;
    assert_eq!(later.status, StatusCode::CREATED);
    assert!(later.headers.get(REPLAYED).is_none());
    assert_ne!(later.json()["id"], first.json()["id"]);
    assert_eq!(questions_titled(&app, "a day later"), 2);
}

#[tokio::test]
async fn expired_records_are_purged_by_the_housekeeping_and_live_ones_stay() {
    let app = TestApp::empty().await;
    for key in ["old", "new"] {
        let r = post_keyed(&app, "/api/v1/questions", key, &question(key), None).await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    db_rows(
        app.dir.path(),
        "UPDATE idempotency_keys SET expires_at = 1 WHERE key = 'old'",
    );
    // Housekeeping runs as the index follower starts, then every few seconds.
    let app = app.restart(|_| {}).await;
    let start = std::time::Instant::now();
    while count(
        &app,
        "SELECT COUNT(*) FROM idempotency_keys WHERE key = 'old'",
    ) > 0
    {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "never purged"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM idempotency_keys WHERE key = 'new'"
        ),
        1
    );
}

#[tokio::test]
async fn a_refusal_for_the_request_itself_is_kept_and_a_conflict_with_the_moment_is_not() {
    let app = TestApp::empty().await;
    let invalid = json!({"title": "", "category": "golang"});
    let first = post_keyed(&app, "/api/v1/questions", "invalid", &invalid, None).await;
    first.assert_problem(422, "validation_failed");
    assert_replay_of(
        &first,
        &post_keyed(&app, "/api/v1/questions", "invalid", &invalid, None).await,
    );
    // 409: the category may exist by the retry, which then runs.
    let later = json!({"title": "in a category made later", "category": "later"});
    post_keyed(&app, "/api/v1/questions", "later", &later, None)
        .await
        .assert_problem(409, "unknown_category");
    let made = app
        .post(
            "/api/v1/categories",
            json!({"slug": "later", "name": "Later"}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED);
    let retry = post_keyed(&app, "/api/v1/questions", "later", &later, None).await;
    assert_eq!(retry.status, StatusCode::CREATED);
    assert!(retry.headers.get(REPLAYED).is_none());
    assert_eq!(count(&app, "SELECT COUNT(*) FROM idempotency_keys"), 2);
}

#[tokio::test]
async fn every_kind_of_post_is_replayed_and_its_effect_happens_once() {
    let app = TestApp::seeded().await;
    let twice = |uri: &'static str, key: &'static str, body: Value| {
        let app = &app;
        async move {
            let first = post_keyed(app, uri, key, &body, None).await;
            assert!(first.status.is_success(), "{uri}: {}", first.status);
            assert_replay_of(&first, &post_keyed(app, uri, key, &body, None).await);
            first
        }
    };
    let answers = count(&app, "SELECT COUNT(*) FROM answers");
    twice("/api/v1/questions/1/answers", "a", json!({"body": "once"})).await;
    assert_eq!(count(&app, "SELECT COUNT(*) FROM answers"), answers + 1);
    twice(
        "/api/v1/categories",
        "c",
        json!({"slug": "once", "name": "Once"}),
    )
    .await;
    twice("/api/v1/quiz/sessions", "s", json!({})).await;
    assert_eq!(count(&app, "SELECT COUNT(*) FROM quiz_sessions"), 1);
    let review = json!({"question_id": 1, "rating": "good"});
    twice("/api/v1/learners/ana/reviews", "r", review).await;
    assert_eq!(count(&app, "SELECT COUNT(*) FROM reviews"), 1);
    // A review record names its learner, for when the learner is erased.
    let learner = db_rows(
        app.dir.path(),
        "SELECT learner FROM idempotency_keys WHERE key = 'r'",
    );
    assert_eq!(learner, ["ana"]);
    twice(
        "/api/v1/learners/ana/tokens",
        "t",
        json!({"expires_in_days": 1}),
    )
    .await;
    let drawn = app
        .get("/api/v1/quiz?mode=choice&count=1&seed=3")
        .await
        .json();
    let item = &drawn["items"][0];
    let grade = json!({"ticket": item["ticket"], "choice_id": item["choices"][0]["id"]});
    let first = post_keyed(&app, "/api/v1/quiz/answers", "g", &grade, None).await;
    assert_eq!(first.status, StatusCode::OK);
    let again = post_keyed(&app, "/api/v1/quiz/answers", "g", &grade, None).await;
    assert_replay_of(&first, &again);
}

async fn import(app: &TestApp, key: &str, content_type: &str, body: &str) -> TestResponse {
    app.request(
        Method::POST,
        "/api/v1/import",
        &[("content-type", content_type), (KEY, key)],
        Some(body.as_bytes().to_vec()),
    )
    .await
}

#[tokio::test]
async fn an_import_streams_its_body_into_the_fingerprint_and_is_replayed_only_for_the_same_body() {
    let app = TestApp::empty().await;
    let lines = (0..50)
        .map(|n| {
            json!({"external_id": format!("x-{n}"), "title": format!("imported {n}"),
                   "category": "golang"})
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n");
    let first = import(&app, "i", "application/x-ndjson", &lines).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.json()["created"], 50);
    let again = import(&app, "i", "application/x-ndjson", &lines).await;
    assert_replay_of(&first, &again);
    let other = format!("{lines}\n");
    import(&app, "i", "application/x-ndjson", &other)
        .await
        .assert_problem(422, "idempotency_key_reused");
    // Refused before its body was read: nothing to compare a retry with, so nothing is kept.
    import(&app, "t", "text/plain", &lines)
        .await
        .assert_problem(415, "unsupported_media_type");
    let retry = import(&app, "t", "application/x-ndjson", &lines).await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(retry.json()["unchanged"], 50);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM questions"), 50);
}

#[test]
fn every_post_documents_the_key_and_its_409_and_422_and_nothing_else_does() {
    let doc = serde_json::to_value(kb::http::openapi()).unwrap();
    let mut posts = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let keyed = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "Idempotency-Key"));
            assert_eq!(keyed, method == "post", "{method} {path}");
            if method != "post" {
                continue;
            }
            posts += 1;
            let responses = &op["responses"];
            for (status, code) in [
                ("400", "invalid_idempotency_key"),
                ("409", "idempotency_key_in_flight"),
                ("422", "idempotency_key_reused"),
            ] {
                let description = responses[status]["description"].as_str().unwrap();
                assert!(description.contains(code), "{path} {status}: {description}");
            }
            let success = responses
                .as_object()
                .unwrap()
                .iter()
                .find(|(s, _)| s.starts_with('2'))
                .unwrap()
                .1;
            assert!(
                success["headers"]["Idempotent-Replayed"].is_object(),
                "{path}"
            );
        }
    }
    assert!(posts >= 8, "{posts}");
}

/// One keyed POST over TCP with the admin key: (status, response headers, body).
fn keyed_post(
    addr: &str,
    path: &str,
    key: &str,
    body: &str,
) -> std::io::Result<(u16, String, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: kb\r\nConnection: close\r\n\
         Authorization: Bearer {ADMIN_KEY}\r\nIdempotency-Key: {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no response"))?;
    let status = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    Ok((status, head.to_ascii_lowercase(), body.to_string()))
}

/// Sends a keyed POST until it is not in flight any more (a claim of a killed process holds
/// its key until its lease ends); the bound only keeps a broken build from hanging.
fn keyed_post_settled(addr: &str, path: &str, key: &str, body: &str) -> (u16, String, String) {
    let start = std::time::Instant::now();
    loop {
        let (status, head, answer) = keyed_post(addr, path, key, body).expect("kb answers");
        if status != 409 {
            return (status, head, answer);
        }
        assert!(answer.contains("idempotency_key_in_flight"), "{answer}");
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "{key} stays in flight"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn a_sigkill_mid_keyed_writes_leaves_every_key_with_one_effect_and_its_answer_kept() {
    use crate::process::Server;
    use std::collections::{BTreeSet, HashMap};
    use std::sync::{Arc, Mutex};
    const N: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    // A short lease: a claim the kill leaves behind frees its key within seconds.
    let env = [("KB_REQUEST_TIMEOUT_SECS", "2")];
    let server = Server::start(dir.path(), &env);
    let body =
        |n: usize| json!({"title": format!("idemkill {n}"), "category": "golang"}).to_string();
    let answered: Arc<Mutex<HashMap<usize, String>>> = Arc::default();
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (addr, answered) = (server.addr.clone(), answered.clone());
            std::thread::spawn(move || {
                for n in (w..N).step_by(2) {
                    let key = format!("kill-{n}");
                    match keyed_post(&addr, "/api/v1/questions", &key, &body(n)) {
                        Ok((201, _, answer)) => {
                            answered.lock().unwrap().insert(n, answer);
                        }
                        Ok((status, _, answer)) => panic!("{status}: {answer}"),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    let start = std::time::Instant::now();
    while answered.lock().unwrap().len() < 8 {
        assert!(start.elapsed() < std::time::Duration::from_secs(60));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    server.signal("KILL");
    for w in writers {
        w.join().unwrap();
    }
    drop(server);
    let answered = answered.lock().unwrap().clone();
    assert!(answered.len() < N, "killed in the middle");
    let server = Server::start(dir.path(), &env);
    for n in 0..N {
        let key = format!("kill-{n}");
        let (status, head, answer) =
            keyed_post_settled(&server.addr, "/api/v1/questions", &key, &body(n));
        assert_eq!(status, 201, "{answer}");
        if let Some(first) = answered.get(&n) {
            assert_eq!(&answer, first, "{key}: the first answer again");
            assert!(head.contains("idempotent-replayed: true"), "{head}");
        }
    }
    // Each key's effect happened exactly once: none lost, none repeated by its retry.
    let titles = db_rows(
        dir.path(),
        "SELECT title FROM questions WHERE title LIKE 'idemkill %'",
    );
    assert_eq!(titles.len(), N, "{titles:?}");
    assert_eq!(titles.iter().collect::<BTreeSet<_>>().len(), N);
}

#[test]
fn a_retry_on_another_replica_gets_the_answer_the_first_replica_kept() {
    use crate::process::Server;
    if !crate::helpers::on_postgres() {
        return;
    }
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = Server::start(a_dir.path(), &[]);
    let url = crate::helpers::database_url_for(a_dir.path()).unwrap();
    let b = Server::start(b_dir.path(), &[("KB_DATABASE_URL", url.as_str())]);
    for server in [&a, &b] {
        let start = std::time::Instant::now();
        while server.request("GET", "/readyz", None).0 != 200 {
            assert!(start.elapsed() < std::time::Duration::from_secs(60));
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    let body = json!({"title": "副本 idemreplica", "category": "golang"}).to_string();
    let (status, _, first) = keyed_post(&a.addr, "/api/v1/questions", "across", &body).unwrap();
    assert_eq!(status, 201, "{first}");
    let (status, head, again) = keyed_post(&b.addr, "/api/v1/questions", "across", &body).unwrap();
    assert_eq!(status, 201);
    assert_eq!(again, first);
    assert!(head.contains("idempotent-replayed: true"), "{head}");
    // The same new key on both replicas at once: one effect; the other request is told it is
    // in flight, or gets the answer.
    let both: Vec<_> = [a.addr.clone(), b.addr.clone()]
        .into_iter()
        .map(|addr| {
            let body = json!({"title": "副本 idemrace", "category": "golang"}).to_string();
            std::thread::spawn(move || {
                keyed_post(&addr, "/api/v1/questions", "race", &body).unwrap()
            })
        })
        .collect();
    let mut statuses: Vec<u16> = both.into_iter().map(|t| t.join().unwrap().0).collect();
    statuses.sort();
    assert!(
        statuses == [201, 201] || statuses == [201, 409],
        "{statuses:?}"
    );
    for title in ["副本 idemreplica", "副本 idemrace"] {
        let rows = db_rows(
            a_dir.path(),
            &format!("SELECT title FROM questions WHERE title = '{title}'"),
        );
        assert_eq!(rows.len(), 1, "{title}");
    }
}
