//! `/api/v1/keys`: API keys managed over HTTP, as `kb keys` manages them, and the rules every
//! key lives by however it was made: its secret shown once, its scope, revocation, expiry,
//! and when it was last used.

use crate::helpers::{
    TestApp, TestResponse, db_rows, error_fields, kb_cmd, kb_run, on_postgres, with_key,
};
use axum::http::Method;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use std::time::Instant;

/// Creates a key over HTTP with the admin key; its answer.
async fn create(app: &TestApp, body: Value) -> Value {
    let r = app.post("/api/v1/keys", body).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

async fn post_question(app: &TestApp, key: &str) -> TestResponse {
    let body = json!({"title": "keys over HTTP", "category": "golang"});
    with_key(app, Method::POST, "/api/v1/questions", key, Some(body)).await
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .unwrap_or_else(|| panic!("not a time: {v}"))
        .parse()
        .unwrap()
}

/// Sets a key's expiry behind the API's back (an expiry can only be asked for in the future).
fn expire(app: &TestApp, id: i64, at: DateTime<Utc>) {
    db_rows(
        app.dir.path(),
        &format!(
            "UPDATE api_keys SET expires_at = {} WHERE id = {id}",
            at.timestamp_micros()
        ),
    );
}

#[tokio::test]
async fn a_key_created_over_http_works_at_once_and_its_secret_is_shown_only_then() {
    let app = TestApp::seeded().await;
    let r = app
        .post(
            "/api/v1/keys",
            json!({"scope": "write", "name": " study app ", "rate": "50/s"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let created = r.json();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(r.header("location"), format!("/api/v1/keys/{id}"));
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("kb_") && secret.len() > 40, "{secret}");
    assert_eq!(created["prefix"], secret[..10]);
    assert_eq!(created["scope"], "write");
    assert_eq!(created["name"], "study app", "names are trimmed");
    assert_eq!(created["rate"], "3000/min", "rates are kept per minute");
    for never in ["last_used_at", "expires_at", "revoked_at"] {
        assert_eq!(created[never], Value::Null, "{never}");
    }

    assert_eq!(post_question(&app, &secret).await.status, 201);
    let p = with_key(&app, Method::GET, "/api/v1/keys", &secret, None)
        .await
        .assert_problem(403, "forbidden");
    assert!(p["detail"].as_str().unwrap().contains("admin"), "{p}");

    let one = app.get(&format!("/api/v1/keys/{id}")).await;
    assert_eq!(one.status, 200);
    let mut expected = created.clone();
    expected.as_object_mut().unwrap().remove("secret");
    expected["last_used_at"] = one.json()["last_used_at"].clone();
    assert_eq!(one.json(), expected, "the same key, without its secret");
    let list = app.get("/api/v1/keys").await;
    assert_eq!(list.json(), json!([expected]));
    assert!(!String::from_utf8_lossy(&list.body).contains(&secret[10..]));
}

#[tokio::test]
async fn a_keys_last_use_is_listed_once_it_has_been_used() {
    let app = TestApp::seeded().await;
    let before = Utc::now();
    let key = create(&app, json!({"scope": "read", "name": "reader"})).await;
    let (id, secret) = (key["id"].as_i64().unwrap(), key["secret"].as_str().unwrap());
    assert_eq!(
        app.get("/api/v1/keys").await.json()[0]["last_used_at"],
        Value::Null
    );

    let r = with_key(&app, Method::GET, "/api/v1/questions/1", secret, None).await;
    assert_eq!(r.status, 200);
    // The use is written in the background, so as not to hold up the request.
    let start = Instant::now();
    let used = loop {
        let listed = app.get("/api/v1/keys").await.json();
        assert_eq!(listed[0]["id"], id);
        if !listed[0]["last_used_at"].is_null() {
            break time(&listed[0]["last_used_at"]);
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "the use was never recorded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(before <= used && used <= Utc::now(), "{used}");
    let list = kb_run(app.dir.path(), &[], &["keys", "list"]).await;
    let line = list.lines().find(|l| l.contains("reader")).unwrap();
    assert!(
        line.contains(&used.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        "{list}"
    );
}

#[tokio::test]
async fn a_revoked_key_is_refused_and_revoking_it_again_is_key_not_found() {
    let app = TestApp::seeded().await;
    let key = create(&app, json!({"scope": "write", "name": "leaky"})).await;
    let (id, secret) = (key["id"].as_i64().unwrap(), key["secret"].as_str().unwrap());
    assert_eq!(post_question(&app, secret).await.status, 201);

    let r = app.delete(&format!("/api/v1/keys/{id}"), None).await;
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    post_question(&app, secret)
        .await
        .assert_problem(401, "unauthorized");
    with_key(&app, Method::GET, "/api/v1/questions/1", secret, None)
        .await
        .assert_problem(401, "unauthorized");
    // Gone from the API, as a deleted resource is; the command line keeps the record.
    app.get(&format!("/api/v1/keys/{id}"))
        .await
        .assert_problem(404, "key_not_found");
    let listed = app.get("/api/v1/keys").await.json();
    assert!(listed.as_array().unwrap().iter().all(|k| k["id"] != id));
    let cli = kb_run(app.dir.path(), &[], &["keys", "list"]).await;
    assert!(cli.contains("leaky"), "{cli}");

    let again = app.delete(&format!("/api/v1/keys/{id}"), None).await;
    let p = again.assert_problem(404, "key_not_found");
    assert!(p["detail"].as_str().unwrap().contains("revoked"), "{p}");
    app.delete("/api/v1/keys/999", None)
        .await
        .assert_problem(404, "key_not_found");
    app.get("/api/v1/keys/999")
        .await
        .assert_problem(404, "key_not_found");
    app.get("/api/v1/keys/x")
        .await
        .assert_problem(400, "invalid_id");
}

#[tokio::test]
async fn an_expired_key_is_refused_and_so_are_the_learner_tokens_it_issued() {
    let app = TestApp::seeded().await;
    let in_a_day = Utc::now() + Duration::days(1);
    let key = create(
        &app,
        json!({"scope": "learners", "name": "app server", "expires_at": in_a_day.to_rfc3339()}),
    )
    .await;
    let (id, secret) = (key["id"].as_i64().unwrap(), key["secret"].as_str().unwrap());
    let shown = time(&key["expires_at"]);
    assert!(
        (shown - in_a_day).abs() < Duration::milliseconds(1),
        "{shown}"
    );
    let due = "/api/v1/learners/amy/due";
    assert_eq!(
        with_key(&app, Method::GET, due, secret, None).await.status,
        200
    );
    let issued = with_key(
        &app,
        Method::POST,
        "/api/v1/learners/amy/tokens",
        secret,
        Some(json!({})),
    )
    .await;
    assert_eq!(issued.status, 201);
    let token = issued.json()["token"].as_str().unwrap().to_string();
    assert_eq!(
        with_key(&app, Method::GET, due, &token, None).await.status,
        200
    );

    expire(&app, id, Utc::now() - Duration::seconds(1));
    with_key(&app, Method::GET, due, secret, None)
        .await
        .assert_problem(401, "unauthorized");
    with_key(&app, Method::GET, due, &token, None)
        .await
        .assert_problem(401, "unauthorized");
    let listed = app.get(&format!("/api/v1/keys/{id}")).await.json();
    assert!(time(&listed["expires_at"]) < Utc::now());
    assert_eq!(listed["revoked_at"], Value::Null);
    // An expired key can still be revoked, so that its listing says so.
    assert_eq!(
        app.delete(&format!("/api/v1/keys/{id}"), None).await.status,
        204
    );
}

#[tokio::test]
async fn bad_keys_are_refused_naming_every_field() {
    let app = TestApp::seeded().await;
    let now = Utc::now();
    let eleven_years = (now + Duration::days(11 * 365)).to_rfc3339();
    for (body, fields) in [
        (
            json!({"scope": "root", "name": "  ", "rate": "lots", "expires_at": "tomorrow"}),
            vec!["scope", "name", "rate", "expires_at"],
        ),
        (json!({}), vec!["scope", "name"]),
        (
            json!({"scope": "read", "name": "x".repeat(101)}),
            vec!["name"],
        ),
        (json!({"scope": "read", "name": "a\nb"}), vec!["name"]),
        (
            json!({"scope": "read", "name": "x", "rate": "0/min"}),
            vec!["rate"],
        ),
        (
            json!({"scope": "read", "name": "x", "expires_at": "2020-01-01T00:00:00Z"}),
            vec!["expires_at"],
        ),
        (
            json!({"scope": "read", "name": "x", "expires_at": eleven_years}),
            vec!["expires_at"],
        ),
        (json!({"scope": "read", "name": 7}), vec!["name"]),
    ] {
        let r = app.post("/api/v1/keys", body.clone()).await;
        let p = r.assert_problem(422, "validation_failed");
        assert_eq!(error_fields(&p), fields, "{body}");
    }
    let r = app
        .post(
            "/api/v1/keys",
            json!({"scope": "read", "name": "x", "secret": "kb_mine"}),
        )
        .await;
    let p = r.assert_problem(422, "unknown_field");
    assert_eq!(error_fields(&p), ["secret"]);
    assert_eq!(
        app.get("/api/v1/keys").await.json(),
        json!([]),
        "nothing was made"
    );
}

#[tokio::test]
async fn only_an_admin_key_may_see_or_manage_keys() {
    let app = TestApp::seeded().await;
    let write = create(&app, json!({"scope": "write", "name": "w"})).await;
    let learners = create(&app, json!({"scope": "learners", "name": "l"})).await;
    let admin = create(&app, json!({"scope": "admin", "name": "a"})).await;
    let admin_body = json!({"scope": "admin", "name": "escalation"});
    for key in [&write, &learners] {
        let secret = key["secret"].as_str().unwrap();
        for (method, uri, body) in [
            (Method::GET, "/api/v1/keys", None),
            (Method::GET, "/api/v1/keys/1", None),
            (Method::POST, "/api/v1/keys", Some(admin_body.clone())),
            (Method::DELETE, "/api/v1/keys/1", None),
        ] {
            with_key(&app, method.clone(), uri, secret, body)
                .await
                .assert_problem(403, "forbidden");
        }
    }
    app.anonymous(Method::GET, "/api/v1/keys", &[], None)
        .await
        .assert_problem(401, "unauthorized");
    // A key made over HTTP with admin scope manages keys too.
    let secret = admin["secret"].as_str().unwrap();
    let listed = with_key(&app, Method::GET, "/api/v1/keys", secret, None).await;
    assert_eq!(listed.json().as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn the_command_line_and_the_api_manage_the_same_keys() {
    let app = TestApp::seeded().await;
    let dir = app.dir.path();
    let out = kb_run(
        dir,
        &[],
        &[
            "keys",
            "create",
            "--scope",
            "read",
            "--name",
            "cli",
            "--expires",
            "30d",
        ],
    )
    .await;
    let secret = out.lines().next().unwrap();
    assert!(out.contains("expires at "), "{out}");
    let listed = app.get("/api/v1/keys").await.json();
    let cli = &listed[0];
    assert_eq!(cli["name"], "cli");
    assert_eq!(cli["prefix"], secret[..10]);
    let expires = time(&cli["expires_at"]);
    let month = Utc::now() + Duration::days(30);
    assert!((month - expires).abs() < Duration::minutes(5), "{expires}");

    let made = create(
        &app,
        json!({"scope": "learners", "name": "http", "rate": "1200/min",
            "expires_at": "2030-01-01T00:00:00Z"}),
    )
    .await;
    let list = kb_run(dir, &[], &["keys", "list"]).await;
    let line = list.lines().find(|l| l.ends_with("  http")).unwrap();
    for part in ["learners", "1200/min", "2030-01-01T00:00:00Z", "never"] {
        assert!(line.contains(part), "{part}: {list}");
    }
    let id = made["id"].as_i64().unwrap().to_string();
    assert!(
        kb_run(dir, &[], &["keys", "revoke", &id])
            .await
            .contains("revoked")
    );
    app.get(&format!("/api/v1/keys/{id}"))
        .await
        .assert_problem(404, "key_not_found");
    app.delete(&format!("/api/v1/keys/{id}"), None)
        .await
        .assert_problem(404, "key_not_found");

    for (expires, why) in [
        ("yesterday", "RFC 3339"),
        ("2020-01-01T00:00:00Z", "future"),
    ] {
        let failed = kb_cmd(dir)
            .args(["keys", "create", "--scope", "read", "--expires", expires])
            .output()
            .unwrap();
        assert!(!failed.status.success());
        let err = String::from_utf8_lossy(&failed.stderr);
        assert!(err.contains("--expires") && err.contains(why), "{err}");
    }
    assert_eq!(
        app.get("/api/v1/keys")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        1,
        "the refused creations made no key (and the revoked one is gone from the API)"
    );
}

/// Whether the database holds `needle` anywhere a key could be kept: the SQLite file and its
/// log, or on PostgreSQL the keys and the kept answers (bytes shown in hex).
fn database_holds(app: &TestApp, needle: &str) -> bool {
    let dir = app.dir.path();
    if on_postgres() {
        let rows = db_rows(
            dir,
            "SELECT CAST(k AS TEXT) FROM idempotency_keys k
             UNION ALL SELECT CAST(a AS TEXT) FROM api_keys a",
        )
        .concat();
        rows.contains(needle) || rows.contains(&hex::encode(needle))
    } else {
        let mut bytes = std::fs::read(dir.join("kb.sqlite3")).unwrap();
        if let Ok(wal) = std::fs::read(dir.join("kb.sqlite3-wal")) {
            bytes.extend(wal);
        }
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    }
}

#[tokio::test]
async fn a_retried_creation_gets_the_same_key_without_its_secret() {
    let app = TestApp::seeded().await;
    let send = || {
        app.request(
            Method::POST,
            "/api/v1/keys",
            &[
                ("content-type", "application/json"),
                ("idempotency-key", "make-the-deploy-key"),
            ],
            Some(br#"{"scope": "write", "name": "deploy"}"#.to_vec()),
        )
    };
    let first = send().await;
    assert_eq!(first.status, 201);
    let secret = first.json()["secret"].as_str().unwrap().to_string();
    let retry = send().await;
    assert_eq!(retry.status, 201);
    assert_eq!(retry.header("idempotent-replayed"), "true");
    assert_eq!(retry.header("location"), first.header("location"));
    let mut expected = first.json();
    expected.as_object_mut().unwrap().remove("secret");
    assert_eq!(retry.json(), expected, "the same key, and no second one");
    assert_eq!(
        app.get("/api/v1/keys")
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(!database_holds(&app, &secret), "a key is kept in clear");
    assert_eq!(post_question(&app, &secret).await.status, 201);
}
