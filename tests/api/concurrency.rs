use crate::helpers::{TestApp, question};
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dozens_of_parallel_creates_all_succeed_with_distinct_ids() {
    let app = Arc::new(TestApp::empty().await);
    let tasks: Vec<_> = (0..48)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                let mut q = question(&format!("parallel {i}"));
                q["tags"] = json!([format!("t{}", i % 5), "shared"]);
                app.post("/api/v1/questions", q).await
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        ids.insert(r.json()["id"].as_i64().unwrap());
    }
    assert_eq!(ids.len(), 48);
    assert_eq!(app.list_all("limit=100").await.len(), 48);
    let tags = app.get("/api/v1/tags").await.json();
    assert_eq!(tags[0], json!({"slug": "shared", "question_count": 48}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_patches_with_one_if_match_have_exactly_one_winner() {
    let app = Arc::new(TestApp::empty().await);
    let q = app.create_question(question("contested")).await;
    let uri = format!("/api/v1/questions/{}", q["id"]);
    let tag = format!("\"q{}v1\"", q["id"]);
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let (app, uri, tag) = (app.clone(), uri.clone(), tag.clone());
            tokio::spawn(async move {
                app.patch(&uri, json!({"title": format!("writer {i}")}), Some(&tag))
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        match r.status.as_u16() {
            200 => winners.push(r.json()["title"].clone()),
            412 => {
                r.assert_problem(412, "precondition_failed");
            }
            other => panic!("unexpected {other}: {}", String::from_utf8_lossy(&r.body)),
        }
    }
    assert_eq!(winners.len(), 1);
    let stored = app.get(&uri).await.json();
    assert_eq!(stored["title"], winners[0]);
    assert_eq!(stored["version"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_concurrent_reads_and_writes_never_fail() {
    let app = Arc::new(TestApp::seeded().await);
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                match i % 4 {
                    0 => {
                        app.post("/api/v1/questions", question(&format!("w{i}")))
                            .await
                            .status
                    }
                    1 => {
                        app.patch(
                            "/api/v1/questions/1",
                            json!({"body": format!("b{i}")}),
                            None,
                        )
                        .await
                        .status
                    }
                    2 => {
                        app.post(
                            "/api/v1/questions/2/answers",
                            json!({"body": format!("a{i}")}),
                        )
                        .await
                        .status
                    }
                    _ => app.get("/api/v1/questions?limit=50").await.status,
                }
            })
        })
        .collect();
    for t in tasks {
        let status = t.await.unwrap();
        assert!(status.is_success(), "{status}");
    }
    assert_eq!(app.get("/api/v1/questions/1").await.json()["version"], 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paging_while_questions_are_inserted_sees_every_earlier_question_exactly_once() {
    let app = Arc::new(TestApp::seeded().await);
    let before: HashSet<i64> = app
        .list_all("limit=100")
        .await
        .iter()
        .map(|q| q["id"].as_i64().unwrap())
        .collect();
    let writer = {
        let app = app.clone();
        tokio::spawn(async move {
            for i in 0..30 {
                let r = app
                    .post("/api/v1/questions", question(&format!("inserted {i}")))
                    .await;
                assert_eq!(r.status, 201);
            }
        })
    };
    let mut seen = Vec::new();
    let mut uri = "/api/v1/questions?limit=3".to_string();
    loop {
        let page = app.get(&uri).await.json();
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|q| q["id"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => uri = format!("/api/v1/questions?limit=3&cursor={c}"),
            None => break,
        }
    }
    writer.await.unwrap();
    let distinct: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(distinct.len(), seen.len(), "no question twice: {seen:?}");
    assert!(before.is_subset(&distinct), "every earlier question once");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in id order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_import_sent_twice_at_once_creates_each_question_once() {
    let app = Arc::new(TestApp::empty().await);
    let mut body = Vec::new();
    for i in 0..200 {
        let line = serde_json::to_value(kb::generate::question(8, i)).unwrap();
        body.extend_from_slice(line.to_string().as_bytes());
        body.push(b'\n');
    }
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let (app, body) = (app.clone(), body.clone());
            tokio::spawn(async move {
                app.request(
                    axum::http::Method::POST,
                    "/api/v1/import",
                    &[("content-type", "application/x-ndjson")],
                    Some(body),
                )
                .await
            })
        })
        .collect();
    let mut created = 0;
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        created += r.json()["created"].as_u64().unwrap();
    }
    assert_eq!(created, 200, "each line created by exactly one of the two");
    assert_eq!(app.list_all("limit=100").await.len(), 200);
}
