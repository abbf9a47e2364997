//! Bulk import and export over HTTP: idempotency, per-line errors, round trips, formats, scope.

use crate::helpers::{TestApp, TestResponse};
use axum::http::Method;
use serde_json::{Value, json};

fn ndjson(lines: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

async fn import(app: &TestApp, content_type: &str, body: Vec<u8>) -> TestResponse {
    app.request(
        Method::POST,
        "/api/v1/import",
        &[("content-type", content_type)],
        Some(body),
    )
    .await
}

async fn import_ok(app: &TestApp, body: Vec<u8>) -> Value {
    let r = import(app, "application/x-ndjson", body).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

async fn export(app: &TestApp) -> Vec<Value> {
    let r = app.request(Method::GET, "/api/v1/export", &[], None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "application/x-ndjson");
    crate::helpers::export_content(&String::from_utf8(r.body).unwrap())
}

fn generated(n: u64) -> Vec<Value> {
    (0..n)
        .map(|i| serde_json::to_value(kb::generate::question(5, i)).unwrap())
        .collect()
}

#[tokio::test]
async fn importing_the_same_file_twice_changes_nothing() {
    let app = TestApp::empty().await;
    let mut lines = generated(30);
    // A line without external_id is identified by its content.
    lines.push(json!({"title": "没有外部 id 的问题", "category": "golang"}));
    let body = ndjson(&lines);
    let first = import_ok(&app, body.clone()).await;
    assert_eq!(first["received"], 31);
    assert_eq!(first["created"], 31);
    assert_eq!(first["failed"], 0);
    let before = export(&app).await;
    let second = import_ok(&app, body).await;
    assert_eq!(second["created"], 0);
    assert_eq!(second["updated"], 0);
    assert_eq!(second["unchanged"], 31);
    assert_eq!(
        export(&app).await,
        before,
        "nothing changed, not even a timestamp"
    );
    assert_eq!(app.list_all("limit=100").await.len(), 31);
}

#[tokio::test]
async fn bad_lines_are_reported_by_number_while_the_good_ones_are_imported() {
    let app = TestApp::empty().await;
    let good = generated(3);
    let mut body = ndjson(&good[..1]);
    body.extend_from_slice(b"{not json\n");
    body.extend_from_slice(b"\n"); // blank lines are skipped, but still counted as lines
    body.extend_from_slice(&ndjson(&[json!({"title": "", "category": "golang"})]));
    body.extend_from_slice(&ndjson(&[
        json!({"title": "t", "category": "golang", "colour": 1}),
    ]));
    body.extend_from_slice(&[0xff, 0xfe, b'\n']);
    body.extend_from_slice(&ndjson(&good[1..]));
    // The last line needs no newline.
    body.extend_from_slice(r#"{"title": "最后一行", "category": "golang"}"#.as_bytes());
    let report = import_ok(&app, body).await;
    assert_eq!(report["created"], 4);
    assert_eq!(report["failed"], 4);
    let errors: Vec<(u64, String)> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap(),
                e["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(errors.iter().map(|e| e.0).collect::<Vec<_>>(), [2, 4, 5, 6]);
    assert!(errors[0].1.starts_with("not valid JSON"), "{errors:?}");
    assert!(errors[1].1.starts_with("title:"), "{errors:?}");
    assert!(errors[2].1.contains("unknown field"), "{errors:?}");
    assert!(errors[3].1.contains("UTF-8"), "{errors:?}");
    assert_eq!(app.list_all("limit=100").await.len(), 4);
}

#[tokio::test]
async fn an_edited_line_updates_the_question_with_its_external_id() {
    let app = TestApp::empty().await;
    let line = json!({"external_id": "ext-1", "title": "关于 defer 的问题", "category": "golang",
        "tags": ["gc"], "answers": [{"body": "旧答案"}]});
    import_ok(&app, ndjson(&[line])).await;
    let edited = json!({"external_id": "ext-1", "title": "about channels", "category": "golang",
        "tags": ["channel"], "difficulty": "hard", "answers": [{"body": "新答案"}]});
    let report = import_ok(&app, ndjson(&[edited])).await;
    assert_eq!(
        (report["created"].as_u64(), report["updated"].as_u64()),
        (Some(0), Some(1))
    );
    let all = app.list_all("limit=100").await;
    assert_eq!(all.len(), 1);
    let q = &all[0];
    assert_eq!(q["external_id"], "ext-1");
    assert_eq!(q["title"], "about channels");
    assert_eq!(q["tags"], json!(["channel"]));
    assert_eq!(q["answers"][0]["body"], "新答案");
    assert_eq!(q["version"], 2);
    // The index follows the update: the new words are found, the old ones are gone.
    assert_eq!(
        app.search_ids("channels", "").await,
        [q["id"].as_i64().unwrap()]
    );
    assert!(app.search_ids("defer", "").await.is_empty());
}

#[tokio::test]
async fn imported_questions_are_searchable_and_drawable_as_soon_as_the_import_answers() {
    let app = TestApp::empty().await;
    import_ok(&app, ndjson(&generated(200))).await;
    let hits = app.search_ids("goroutine", "").await;
    assert!(!hits.is_empty());
    let r = app.get("/api/v1/quiz?count=50&category=golang").await;
    assert_eq!(r.status, 200);
    assert!(!r.json()["items"].as_array().unwrap().is_empty());
    // Categories named by the lines were created, with their names.
    let cats = app.get("/api/v1/categories").await.json();
    let names: Vec<&str> = cats
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"操作系统"), "{names:?}");
}

#[tokio::test]
async fn export_then_import_into_an_empty_database_gives_back_the_same_data() {
    let source = TestApp::seeded().await;
    source
        .create_question(json!({"title": "API 创建的问题", "category": "distributed",
            "body": "细节", "tags": ["raft", "cap"], "difficulty": "easy",
            "answers": [{"body": "一"}, {"body": "二"}]}))
        .await;
    import_ok(&source, ndjson(&generated(40))).await;
    let exported = export(&source).await;
    assert_eq!(exported.len(), 29 + 1 + 40);

    let target = TestApp::empty().await;
    let body = ndjson(&exported);
    let report = import_ok(&target, body).await;
    assert_eq!(report["created"], 70);
    assert_eq!(export(&target).await, exported);
    // The derived data came back too: categories, tags and search.
    assert_eq!(
        target.get("/api/v1/categories").await.json(),
        source.get("/api/v1/categories").await.json()
    );
    assert_eq!(
        target.get("/api/v1/tags").await.json(),
        source.get("/api/v1/tags").await.json()
    );
    assert_eq!(
        target.search_ids("sync.Map", "").await.len(),
        source.search_ids("sync.Map", "").await.len()
    );
}

#[tokio::test]
async fn a_compressed_export_streams_to_the_end() {
    let app = TestApp::seeded().await;
    let r = app
        .request(
            Method::GET,
            "/api/v1/export",
            &[("accept-encoding", "gzip")],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), "gzip");
    // A gzip stream ends with an 8-byte trailer; a stream cut short has none.
    assert!(r.body.len() > 1000, "{} bytes", r.body.len());
    assert_eq!(&r.body[..2], &[0x1f, 0x8b]);
}

#[tokio::test]
async fn a_json_array_imports_like_ndjson_and_anything_else_is_refused() {
    let app = TestApp::empty().await;
    let body = serde_json::to_vec(&generated(5)).unwrap();
    let r = import(&app, "application/json", body).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["created"], 5);
    let r = import(&app, "application/json", b"[{\"title\": 1}]".to_vec()).await;
    let p = r.json();
    assert_eq!(
        (p["failed"].as_u64(), p["errors"][0]["line"].as_u64()),
        (Some(1), Some(1))
    );
    import(&app, "application/json", b"{\"title\": \"t\"}".to_vec())
        .await
        .assert_problem(422, "validation_failed");
    import(&app, "application/json", b"[1, 2]".to_vec())
        .await
        .assert_problem(422, "validation_failed");
    import(&app, "application/json", b"[{".to_vec())
        .await
        .assert_problem(400, "invalid_json");
    import(&app, "text/csv", b"a,b".to_vec())
        .await
        .assert_problem(415, "unsupported_media_type");
}
