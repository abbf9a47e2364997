//! Search that finds what people mean: weighted coverage, fallbacks for queries that match
//! nothing, synonyms (managed, built in, exported), and explanations of a ranking.

use crate::helpers::{TestApp, hit_titles, question, urlencode};
use axum::http::Method;
use serde_json::{Value, json};

async fn put_synonyms(
    app: &TestApp,
    body: Value,
    if_match: Option<&str>,
) -> crate::helpers::TestResponse {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(tag) = if_match {
        headers.push(("if-match", tag));
    }
    app.request(
        Method::PUT,
        "/api/v1/synonyms",
        &headers,
        Some(body.to_string().into_bytes()),
    )
    .await
}

async fn search(app: &TestApp, q: &str) -> Value {
    let r = app.get(&format!("/api/v1/search?q={}", urlencode(q))).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn titles(r: &Value) -> Vec<String> {
    hit_titles(r)
}

#[tokio::test]
async fn content_words_outweigh_question_words_and_particles() {
    let app = TestApp::empty().await;
    app.create_question(question("编译好的软件安装到什么位置"))
        .await;
    app.create_question(question("应该在哪里提问？在哪里反馈？"))
        .await;
    let r = search(&app, "自己编译的软件应该装在哪里").await;
    assert_eq!(titles(&r)[0], "编译好的软件安装到什么位置", "{r}");

    app.create_question(question("升级软件后要重启吗")).await;
    app.create_question(question("需要什么吗？需要吗？")).await;
    let r = search(&app, "升级软件需要重启吗").await;
    assert_eq!(titles(&r)[0], "升级软件后要重启吗", "{r}");
}

#[tokio::test]
async fn a_question_whose_title_says_it_ranks_above_one_that_mentions_it_in_passing() {
    let app = TestApp::empty().await;
    app.create_question(json!({
        "title": "性能问题汇总", "category": "golang",
        "answers": [{"body": "常见的有内存泄漏。"}]
    }))
    .await;
    app.create_question(json!({
        "title": "如何排查内存泄漏", "category": "golang",
        "answers": [{"body": "先用 pprof 看 heap 的增长，再对比两次快照，找出一直在增长的对象和持有它们的引用链。"}]
    }))
    .await;
    let r = search(&app, "内存泄漏").await;
    assert_eq!(titles(&r)[0], "如何排查内存泄漏", "{r}");
}

#[tokio::test]
async fn a_query_that_matches_nothing_as_typed_is_relaxed_not_answered_with_an_empty_page() {
    let app = TestApp::empty().await;
    app.create_question(question("如何向项目捐赠")).await;
    app.create_question(question("怎么编辑配置文件")).await;
    let r = search(&app, "捐款").await;
    assert_eq!(r["relaxed"], true);
    assert_eq!(titles(&r), ["如何向项目捐赠"]);

    let r = search(&app, "捐赠").await;
    assert_eq!(r["relaxed"], false, "a real match is never relaxed");
    let r = search(&app, "量子纠缠").await;
    assert_eq!(r["relaxed"], false);
    assert_eq!(
        r["total"], 0,
        "nothing plausible: still an honest empty page"
    );
}

#[tokio::test]
async fn synonyms_are_managed_by_admins_and_apply_to_the_next_search_without_reindexing() {
    let app = TestApp::empty().await;
    app.create_question(question("如何向项目捐赠")).await;
    app.create_question(question("怎样打包发布")).await;

    let r = app.get("/api/v1/synonyms").await;
    assert_eq!(r.status, 200);
    let before = r.json();
    assert_eq!(before["builtin"], true);
    assert_eq!(before["sets"], json!([]));
    assert!(before["builtin_sets"].as_array().unwrap().len() > 20);
    let tag = r.header("etag").to_string();

    let body = json!({"sets": [
        {"terms": ["捐款", "捐赠"]},
        {"from": "构建", "to": ["打包", "packaging"]}
    ]});
    let anonymous = app
        .anonymous(
            Method::PUT,
            "/api/v1/synonyms",
            &[("content-type", "application/json")],
            Some(body.to_string().into_bytes()),
        )
        .await;
    assert_eq!(anonymous.status, 401);
    let r = put_synonyms(&app, body.clone(), Some(&tag)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_ne!(r.header("etag"), tag);
    put_synonyms(&app, body.clone(), Some(&tag))
        .await
        .assert_problem(412, "precondition_failed");

    let r = search(&app, "捐款").await;
    assert_eq!(r["relaxed"], false);
    assert_eq!(titles(&r), ["如何向项目捐赠"]);
    assert_eq!(titles(&search(&app, "构建").await), ["怎样打包发布"]);
    assert!(
        titles(&search(&app, "打包").await).len() == 1,
        "one-way: 打包 still finds itself"
    );
    let got = app.get("/api/v1/synonyms").await.json();
    assert_eq!(got["sets"], body["sets"]);

    let bad = put_synonyms(
        &app,
        json!({"sets": [{"terms": ["孤单"]}, {"from": "x"}]}),
        None,
    )
    .await;
    let problem = bad.assert_problem(422, "validation_failed");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["sets[0].terms", "sets[1]"]);
}

#[tokio::test]
async fn built_in_programming_synonyms_apply_until_a_knowledge_base_turns_them_off() {
    let app = TestApp::empty().await;
    app.create_question(question("Go 的垃圾回收是怎么工作的"))
        .await;
    assert_eq!(
        titles(&search(&app, "GC").await),
        ["Go 的垃圾回收是怎么工作的"]
    );
    let r = put_synonyms(&app, json!({"builtin": false, "sets": []}), None).await;
    assert_eq!(r.status, 200);
    let r = search(&app, "GC").await;
    assert_eq!(r["total"], 0, "{r}");
}

#[tokio::test]
async fn synonyms_travel_with_an_export_into_another_knowledge_base() {
    let app = TestApp::empty().await;
    app.create_question(question("如何向项目捐赠")).await;
    put_synonyms(
        &app,
        json!({"builtin": false, "sets": [{"terms": ["捐款", "捐赠"]}]}),
        None,
    )
    .await;
    let export = app.request(Method::GET, "/api/v1/export", &[], None).await;
    let text = String::from_utf8(export.body).unwrap();
    let first = crate::helpers::export_content(&text).remove(0);
    assert_eq!(
        first["synonyms"]["sets"][0]["terms"],
        json!(["捐款", "捐赠"])
    );

    let other = TestApp::empty().await;
    let r = other
        .request(
            Method::POST,
            "/api/v1/import",
            &[("content-type", "application/x-ndjson")],
            Some(text.into_bytes()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let report = r.json();
    assert_eq!(report["synonyms_replaced"], true);
    assert_eq!(report["created"], 1);
    let got = other.get("/api/v1/synonyms").await.json();
    assert_eq!(got["builtin"], false);
    assert_eq!(titles(&search(&other, "捐款").await), ["如何向项目捐赠"]);
}

#[tokio::test]
async fn an_admin_can_see_why_a_question_ranks_where_it_does() {
    let app = TestApp::seeded().await;
    let r = app
        .get(&format!(
            "/api/v1/search?q={}&explain=true&limit=3",
            urlencode("gorutine 调度")
        ))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    let hit = &body["hits"][0];
    let parts = hit["explain"].as_array().unwrap();
    let labels: Vec<&str> = parts.iter().map(|p| p["part"].as_str().unwrap()).collect();
    assert!(
        labels.iter().any(|l| l.starts_with("typo gorutine → ")),
        "{labels:?}"
    );
    assert!(labels.contains(&"bigram 调度"), "{labels:?}");
    let sum: f64 = parts.iter().map(|p| p["score"].as_f64().unwrap()).sum();
    let score = hit["score"].as_f64().unwrap();
    assert!(
        (sum - score).abs() < 0.01 * score,
        "parts add up: {sum} vs {score}"
    );
    assert!(
        parts
            .iter()
            .all(|p| !p["details"].as_array().unwrap().is_empty())
    );

    let plain = app.get("/api/v1/search?q=GMP").await.json();
    assert!(plain["hits"][0].get("explain").is_none());
    let anonymous = app
        .anonymous(Method::GET, "/api/v1/search?q=GMP&explain=true", &[], None)
        .await;
    anonymous.assert_problem(401, "unauthorized");
    app.get("/api/v1/search?q=GMP&explain=yes")
        .await
        .assert_problem(422, "validation_failed");
}
