//! Reads served from memory are never stale, and clients can revalidate cheaply.

use crate::helpers::TestApp;
use axum::http::Method;
use serde_json::{Value, json};

/// Question 16 as the (uncached) list endpoint reads it from the database.
async fn from_the_list(app: &TestApp, id: i64) -> Option<Value> {
    let page = app.get("/api/v1/questions?limit=100").await.json();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["id"] == id)
        .cloned()
}

fn has_answer(question: &Value, body: &str) -> bool {
    question["answers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["body"] == body)
}

#[tokio::test]
async fn a_read_after_a_write_sees_the_write_with_the_cache_on() {
    let app = TestApp::seeded().await;
    let before = app.get("/api/v1/questions/16").await.json();
    assert_eq!(
        app.get("/api/v1/questions/16").await.json(),
        before,
        "served again"
    );
    let r = app
        .patch("/api/v1/questions/16", json!({"title": "改过的标题"}), None)
        .await;
    assert_eq!(r.status, 200);
    let after = app.get("/api/v1/questions/16").await;
    assert_eq!(after.json()["title"], "改过的标题");
    assert_eq!(after.header("etag"), "\"q16v2\"");
    let a = app
        .post("/api/v1/questions/16/answers", json!({"body": "新答案"}))
        .await
        .json();
    let q = app.get("/api/v1/questions/16").await.json();
    assert!(has_answer(&q, "新答案"));
    let id = a["id"].as_i64().unwrap();
    app.request(
        Method::PATCH,
        &format!("/api/v1/answers/{id}"),
        &[("content-type", "application/json")],
        Some(r#"{"body": "再改一次"}"#.as_bytes().to_vec()),
    )
    .await;
    let q = app.get("/api/v1/questions/16").await.json();
    assert!(has_answer(&q, "再改一次"));
    assert_eq!(
        app.delete(&format!("/api/v1/answers/{id}"), None)
            .await
            .status,
        204
    );
    let q = app.get("/api/v1/questions/16").await.json();
    assert!(!has_answer(&q, "再改一次"));
    assert_eq!(Some(q), from_the_list(&app, 16).await);
    assert_eq!(app.delete("/api/v1/questions/16", None).await.status, 204);
    app.get("/api/v1/questions/16")
        .await
        .assert_problem(404, "question_not_found");
}

#[tokio::test]
async fn concurrent_writers_and_readers_leave_the_cache_agreeing_with_the_database() {
    let app = TestApp::seeded().await;
    let mut tasks = Vec::new();
    for w in 0..4 {
        let router = app.router.clone();
        tasks.push(tokio::spawn(async move {
            use tower::ServiceExt;
            for i in 0..15 {
                let req = axum::http::Request::builder()
                    .method("PATCH")
                    .uri("/api/v1/questions/16")
                    .header(
                        "authorization",
                        format!("Bearer {}", crate::helpers::ADMIN_KEY),
                    )
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from(
                        json!({"title": format!("写者 {w} 第 {i} 次")}).to_string(),
                    ))
                    .unwrap();
                assert_eq!(router.clone().oneshot(req).await.unwrap().status(), 200);
            }
        }));
    }
    // Readers fill the cache while the writers run.
    for _ in 0..60 {
        assert_eq!(app.get("/api/v1/questions/16").await.status, 200);
    }
    for t in tasks {
        t.await.unwrap();
    }
    let cached = app.get("/api/v1/questions/16").await.json();
    assert_eq!(cached["version"], 61);
    assert_eq!(Some(cached), from_the_list(&app, 16).await);
}

#[tokio::test]
async fn a_write_that_fails_halfway_leaves_the_question_as_it_was() {
    let app = TestApp::seeded().await;
    let before = app.get("/api/v1/questions/16").await.json();
    // The title is applied, then the answers take the question over its size limit: the
    // transaction rolls back as a whole.
    let long = "x".repeat(100_000);
    let answers: Vec<Value> = (0..6).map(|_| json!({"body": long})).collect();
    app.patch(
        "/api/v1/questions/16",
        json!({"title": "不该留下的标题", "answers": answers}),
        None,
    )
    .await
    .assert_problem(422, "question_too_large");
    let after = app.get("/api/v1/questions/16").await.json();
    assert_eq!(after, before);
    assert_eq!(Some(after), from_the_list(&app, 16).await);
}

#[tokio::test]
async fn the_cache_stays_within_its_byte_bound() {
    let app = TestApp::with(|c| c.search.cache_bytes = 16 * 1024).await;
    for round in 0..3 {
        for id in 1..=29 {
            let r = app.get(&format!("/api/v1/questions/{id}")).await;
            assert_eq!(r.status, 200, "round {round}");
        }
    }
    let held = app.app.service().cached_bytes();
    assert!(held > 0 && held <= 16 * 1024, "{held} bytes held");
}

#[tokio::test]
async fn lists_categories_and_tags_answer_304_while_unchanged_and_say_how_long_to_keep_them() {
    let app = TestApp::seeded().await;
    for uri in [
        "/api/v1/questions?limit=5",
        "/api/v1/categories",
        "/api/v1/tags",
        "/api/v1/categories/golang",
    ] {
        let r = app.get(uri).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("cache-control"), "no-cache", "{uri}");
        let tag = r.header("etag").to_string();
        let again = app
            .request(Method::GET, uri, &[("if-none-match", &tag)], None)
            .await;
        assert_eq!(again.status, 304, "{uri}");
        assert!(again.body.is_empty());
    }
    let tag = app
        .get("/api/v1/categories")
        .await
        .header("etag")
        .to_string();
    app.post(
        "/api/v1/categories",
        json!({"slug": "os", "name": "操作系统"}),
    )
    .await;
    let r = app
        .request(
            Method::GET,
            "/api/v1/categories",
            &[("if-none-match", &tag)],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "changed since");
    let r = app.get("/api/v1/questions/16").await;
    assert_eq!(r.header("cache-control"), "no-cache");
    let r = app.get("/api/v1/learners/alice/due").await;
    assert_eq!(r.header("cache-control"), "private, no-store");
}
