use crate::helpers::{TestApp, TestResponse, create_key, db_rows, question};
use axum::http::Method;
use std::path::Path;

/// Runs the `kb` binary against the test app's data directory.
async fn kb(dir: &Path, args: &[&str]) -> String {
    crate::helpers::kb_run(dir, &[], args).await
}

async fn post_question(app: &TestApp, auth: Option<&str>) -> TestResponse {
    let bearer = auth.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(b) = &bearer {
        headers.push(("authorization", b));
    }
    app.anonymous(
        Method::POST,
        "/api/v1/questions",
        &headers,
        Some(question("auth").to_string().into_bytes()),
    )
    .await
}

async fn get_with(app: &TestApp, uri: &str, key: Option<&str>) -> TestResponse {
    let bearer = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("authorization", b.as_str()))
        .collect();
    app.anonymous(Method::GET, uri, &headers, None).await
}

#[tokio::test]
async fn writes_need_a_key_with_write_scope() {
    let app = TestApp::seeded().await;
    let dir = app.dir.path().to_path_buf();
    let (read, write, admin) = (
        create_key(&dir, "read").await,
        create_key(&dir, "write").await,
        create_key(&dir, "admin").await,
    );

    let r = post_question(&app, None).await;
    r.assert_problem(401, "unauthorized");
    assert_eq!(r.header("www-authenticate"), "Bearer realm=\"kb\"");
    post_question(&app, Some("kb_not-a-real-key"))
        .await
        .assert_problem(401, "unauthorized");
    let basic = app
        .anonymous(
            Method::DELETE,
            "/api/v1/questions/1",
            &[("authorization", "Basic dXNlcjpwYXNz")],
            None,
        )
        .await;
    basic.assert_problem(401, "unauthorized");
    let p = post_question(&app, Some(&read))
        .await
        .assert_problem(403, "forbidden");
    assert!(p["detail"].as_str().unwrap().contains("write"));
    assert_eq!(post_question(&app, Some(&write)).await.status, 201);
    assert_eq!(post_question(&app, Some(&admin)).await.status, 201);
    assert_eq!(
        post_question(&app, Some(crate::helpers::ADMIN_KEY))
            .await
            .status,
        201,
        "KB_ADMIN_KEY is admin"
    );

    // Reads stay public by default, with a key or none; a key that is wrong is still wrong.
    for key in [None, Some(read.as_str())] {
        assert_eq!(get_with(&app, "/api/v1/questions/1", key).await.status, 200);
    }
    get_with(&app, "/api/v1/questions/1", Some("garbage"))
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn learner_data_needs_a_learners_key_and_studying_needs_none() {
    let app = TestApp::seeded().await;
    let read = create_key(app.dir.path(), "read").await;
    let body = br#"{"question_id": 1, "rating": "good"}"#.to_vec();
    let review = |key: Option<String>| {
        let body = body.clone();
        let app = &app;
        async move {
            let bearer = key.map(|k| format!("Bearer {k}"));
            let mut headers = vec![("content-type", "application/json")];
            if let Some(b) = &bearer {
                headers.push(("authorization", b.as_str()));
            }
            app.anonymous(
                Method::POST,
                "/api/v1/learners/amy/reviews",
                &headers,
                Some(body),
            )
            .await
        }
    };
    review(None).await.assert_problem(401, "unauthorized");
    review(Some(read.clone()))
        .await
        .assert_problem(403, "forbidden");
    let learners = create_key(app.dir.path(), "learners").await;
    assert_eq!(review(Some(learners)).await.status, 201);
    // Studying needs no account: a session and its draws are open to anyone.
    let session = app
        .anonymous(
            Method::POST,
            "/api/v1/quiz/sessions",
            &[("content-type", "application/json")],
            Some(b"{}".to_vec()),
        )
        .await;
    assert_eq!(session.status, 201);
}

#[tokio::test]
async fn a_revoked_key_stops_working_at_once() {
    let app = TestApp::seeded().await;
    let dir = app.dir.path().to_path_buf();
    let key = create_key(&dir, "write").await;
    assert_eq!(post_question(&app, Some(&key)).await.status, 201);
    let list = kb(&dir, &["keys", "list"]).await;
    let id = list
        .lines()
        .find(|l| l.contains("write key"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    assert!(
        list.contains(&key[..10]),
        "keys are listed by prefix: {list}"
    );
    assert!(!list.contains(&key), "never the key itself");
    assert!(kb(&dir, &["keys", "revoke", &id]).await.contains("revoked"));
    post_question(&app, Some(&key))
        .await
        .assert_problem(401, "unauthorized");
    let list = kb(&dir, &["keys", "list"]).await;
    assert!(
        list.lines()
            .any(|l| l.starts_with(&format!("{id:>4}")) && !l.contains("  -  ")),
        "{list}"
    );
}

#[tokio::test]
async fn reads_can_require_a_key_too() {
    let app = TestApp::with(|c| c.server.require_key_for_reads = true).await;
    let read = create_key(app.dir.path(), "read").await;
    get_with(&app, "/api/v1/questions", None)
        .await
        .assert_problem(401, "unauthorized");
    get_with(&app, "/api/v1/search?q=GMP", Some("nope"))
        .await
        .assert_problem(401, "unauthorized");
    assert_eq!(
        get_with(&app, "/api/v1/questions", Some(&read))
            .await
            .status,
        200
    );
    for public in ["/healthz", "/readyz", "/openapi.json", "/docs/"] {
        assert_eq!(get_with(&app, public, None).await.status, 200, "{public}");
    }
}

#[tokio::test]
async fn the_database_never_holds_a_key_in_clear() {
    let app = TestApp::seeded().await;
    let dir = app.dir.path().to_path_buf();
    let mut keys = Vec::new();
    for scope in ["read", "write", "admin"] {
        keys.push(create_key(&dir, scope).await);
    }
    let rows: Vec<String> = db_rows(&dir, "SELECT key_hash || ' ' || prefix FROM api_keys");
    assert_eq!(rows.len(), 3);
    let rows: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            let (h, p) = r.split_once(' ').unwrap();
            (h.to_string(), p.to_string())
        })
        .collect();
    // Every byte the database keeps: the SQLite file and its log, or on PostgreSQL the whole
    // of every table that could hold it.
    let bytes: Vec<u8> = if crate::helpers::on_postgres() {
        db_rows(
            &dir,
            "SELECT CAST(k AS TEXT) FROM api_keys k UNION ALL SELECT CAST(m AS TEXT) FROM meta m",
        )
        .concat()
        .into_bytes()
    } else {
        let mut bytes = std::fs::read(dir.join("kb.sqlite3")).unwrap();
        if let Ok(wal) = std::fs::read(dir.join("kb.sqlite3-wal")) {
            bytes.extend(wal);
        }
        bytes
    };
    for key in &keys {
        let needle = key.as_bytes();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "a key is stored in clear"
        );
        assert!(
            rows.iter()
                .all(|(hash, _)| hash.len() == 64 && !hash.contains(&key[3..]))
        );
    }
    assert!(
        !bytes
            .windows(crate::helpers::ADMIN_KEY.len())
            .any(|w| w == crate::helpers::ADMIN_KEY.as_bytes())
    );
}

#[tokio::test]
async fn bulk_import_and_export_need_an_admin_key() {
    let app = TestApp::empty().await;
    let dir = app.dir.path().to_path_buf();
    let (write, admin) = (
        create_key(&dir, "write").await,
        create_key(&dir, "admin").await,
    );
    let ndjson = ("content-type", "application/x-ndjson");
    for (method, path) in [
        (Method::POST, "/api/v1/import"),
        (Method::GET, "/api/v1/export"),
    ] {
        app.anonymous(method.clone(), path, &[ndjson], None)
            .await
            .assert_problem(401, "unauthorized");
        let bearer = format!("Bearer {write}");
        let p = app
            .anonymous(
                method.clone(),
                path,
                &[ndjson, ("authorization", &bearer)],
                None,
            )
            .await
            .assert_problem(403, "forbidden");
        assert!(p["detail"].as_str().unwrap().contains("admin"));
        let bearer = format!("Bearer {admin}");
        let r = app
            .anonymous(method, path, &[ndjson, ("authorization", &bearer)], None)
            .await;
        assert_eq!(r.status, 200, "{path}");
    }
}
