use crate::helpers::{TestApp, question};
use serde_json::json;

#[tokio::test]
async fn a_created_category_is_listed_and_readable_at_its_location() {
    let app = TestApp::empty().await;
    let r = app
        .post(
            "/api/v1/categories",
            json!({"slug": "Database", "name": " 数据库 "}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.header("location"), "/api/v1/categories/database");
    assert_eq!(
        r.json(),
        json!({"slug": "database", "name": "数据库", "question_count": 0})
    );
    let one = app.get("/api/v1/categories/database").await;
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["name"], "数据库");
    let all = app.get("/api/v1/categories").await.json();
    assert_eq!(all.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_duplicate_category_slug_is_a_conflict() {
    let app = TestApp::empty().await;
    let r = app
        .post(
            "/api/v1/categories",
            json!({"slug": "golang", "name": "Go again"}),
        )
        .await;
    r.assert_problem(409, "category_exists");
}

#[tokio::test]
async fn an_invalid_category_reports_each_field() {
    let app = TestApp::empty().await;
    let r = app
        .post("/api/v1/categories", json!({"slug": "no spaces"}))
        .await;
    let p = r.assert_problem(422, "validation_failed");
    assert_eq!(crate::helpers::error_fields(&p), ["slug", "name"]);
}

#[tokio::test]
async fn an_unknown_category_is_not_found() {
    let app = TestApp::empty().await;
    app.get("/api/v1/categories/nope")
        .await
        .assert_problem(404, "category_not_found");
    app.get("/api/v1/categories/%E2%80%8B")
        .await
        .assert_problem(404, "category_not_found");
}

#[tokio::test]
async fn a_question_in_an_unknown_category_is_a_conflict() {
    let app = TestApp::empty().await;
    let r = app
        .post(
            "/api/v1/questions",
            json!({"title": "x", "category": "rust"}),
        )
        .await;
    let p = r.assert_problem(409, "unknown_category");
    assert!(p["detail"].as_str().unwrap().contains("rust"));
}

#[tokio::test]
async fn tags_are_listed_most_used_first_and_unused_tags_drop_out() {
    let app = TestApp::empty().await;
    let mut q = question("a");
    q["tags"] = json!(["gc", "map"]);
    app.create_question(q).await;
    let mut q = question("b");
    q["tags"] = json!(["GC"]);
    let b = app.create_question(q).await;
    let mut q = question("c");
    q["tags"] = json!(["channel"]);
    let c = app.create_question(q).await;
    assert_eq!(
        app.get("/api/v1/tags").await.json(),
        json!([
            {"slug": "gc", "question_count": 2},
            {"slug": "channel", "question_count": 1},
            {"slug": "map", "question_count": 1},
        ])
    );
    app.delete(&format!("/api/v1/questions/{}", c["id"]), None)
        .await;
    app.patch(
        &format!("/api/v1/questions/{}", b["id"]),
        json!({"tags": null}),
        None,
    )
    .await;
    assert_eq!(
        app.get("/api/v1/tags?limit=1").await.json(),
        json!([{"slug": "gc", "question_count": 1}])
    );
    app.get("/api/v1/tags?limit=0")
        .await
        .assert_problem(422, "validation_failed");
}
