use crate::helpers::{TestApp, question};
use serde_json::{Value, json};

fn ids(items: &[Value]) -> Vec<i64> {
    items.iter().map(|q| q["id"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn creating_a_question_returns_201_with_location_etag_and_defaults() {
    let app = TestApp::empty().await;
    let r = app
        .post(
            "/api/v1/questions",
            json!({"title": "  WaitGroup 的原理？ ", "category": "golang", "tags": ["Sync", "concurrency"],
                   "answers": [{"body": "两个计数器"}, {"body": "信号量唤醒"}]}),
        )
        .await;
    assert_eq!(r.status, 201);
    let q = r.json();
    let id = q["id"].as_i64().unwrap();
    assert_eq!(r.header("location"), format!("/api/v1/questions/{id}"));
    assert_eq!(r.header("etag"), format!("\"q{id}v1\""));
    assert_eq!(q["title"], "WaitGroup 的原理？");
    assert_eq!(q["body"], Value::Null);
    assert_eq!(q["difficulty"], "medium");
    assert_eq!(q["tags"], json!(["sync", "concurrency"]));
    assert_eq!(q["category"], json!({"slug": "golang", "name": "Golang"}));
    assert_eq!(q["version"], 1);
    assert_eq!(q["answers"][0]["body"], "两个计数器");
    assert_eq!(q["answers"][1]["question_id"], id);
    assert!(q["created_at"].as_str().unwrap().ends_with('Z'));

    let got = app.get(r.header("location")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json(), q);
    assert_eq!(got.header("etag"), r.header("etag"));
}

#[tokio::test]
async fn a_matching_if_none_match_gets_304_and_a_stale_one_gets_the_body() {
    let app = TestApp::empty().await;
    let q = app.create_question(question("q")).await;
    let uri = format!("/api/v1/questions/{}", q["id"]);
    let tag = app.get(&uri).await.header("etag").to_string();
    let r = app
        .request(
            axum::http::Method::GET,
            &uri,
            &[("if-none-match", &tag)],
            None,
        )
        .await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), tag);
    let weak = format!("W/{tag}");
    let r = app
        .request(
            axum::http::Method::GET,
            &uri,
            &[("if-none-match", &weak)],
            None,
        )
        .await;
    assert_eq!(r.status, 304);
    let r = app
        .request(
            axum::http::Method::GET,
            &uri,
            &[("if-none-match", "\"q1v99\"")],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn the_list_pages_through_every_question_once_and_ends_with_a_null_cursor() {
    let app = TestApp::seeded().await;
    let first = app.get("/api/v1/questions?limit=10").await.json();
    assert_eq!(first["items"].as_array().unwrap().len(), 10);
    assert!(first["next_cursor"].is_string());
    let all = app.list_all("limit=7").await;
    let mut seen = ids(&all);
    assert_eq!(seen.len(), 29);
    seen.dedup();
    assert_eq!(seen.len(), 29);
    let last = app.get("/api/v1/questions?limit=100").await.json();
    assert_eq!(last["next_cursor"], Value::Null);
}

#[tokio::test]
async fn pagination_stays_correct_while_rows_are_inserted_and_deleted() {
    let app = TestApp::empty().await;
    for i in 0..5 {
        app.create_question(question(&format!("before {i}"))).await;
    }
    let page1 = app.get("/api/v1/questions?limit=2").await.json();
    let cursor = page1["next_cursor"].as_str().unwrap().to_string();
    // Concurrent writers: one new question, and one of the first page deleted.
    let new = app.create_question(question("inserted while paging")).await;
    app.delete(
        &format!("/api/v1/questions/{}", page1["items"][0]["id"]),
        None,
    )
    .await;
    let mut rest = Vec::new();
    let mut next = Some(cursor);
    while let Some(c) = next {
        let page = app
            .get(&format!("/api/v1/questions?limit=2&cursor={c}"))
            .await
            .json();
        rest.extend(page["items"].as_array().unwrap().iter().cloned());
        next = page["next_cursor"].as_str().map(str::to_string);
    }
    let mut all = ids(page1["items"].as_array().unwrap());
    all.extend(ids(&rest));
    let mut unique = all.clone();
    unique.dedup();
    assert_eq!(all, unique, "no question is served twice");
    assert_eq!(all.len(), 6);
    assert_eq!(*all.last().unwrap(), new["id"].as_i64().unwrap());
}

#[tokio::test]
async fn the_list_filters_by_category_difficulty_and_every_tag_given() {
    let app = TestApp::seeded().await;
    let distributed = app.list_all("category=distributed").await;
    assert_eq!(distributed.len(), 6);
    assert!(
        distributed
            .iter()
            .all(|q| q["category"]["slug"] == "distributed")
    );

    let hard = app.list_all("difficulty=hard").await;
    assert!(!hard.is_empty() && hard.iter().all(|q| q["difficulty"] == "hard"));

    let gc = app.list_all("tag=gc").await;
    assert_eq!(gc.len(), 7);
    let gc_and_barrier = app.list_all("tag=gc&tag=write-barrier").await;
    assert_eq!(gc_and_barrier.len(), 3);
    assert!(gc_and_barrier.iter().all(|q| {
        let tags = q["tags"].as_array().unwrap();
        tags.contains(&json!("gc")) && tags.contains(&json!("write-barrier"))
    }));
    let none = app.list_all("tag=gc&tag=cap").await;
    assert!(none.is_empty());
    assert!(app.list_all("category=nonexistent").await.is_empty());
    let combined = app
        .list_all("category=golang&difficulty=easy&tag=concurrency")
        .await;
    assert_eq!(combined.len(), 2);
}

#[tokio::test]
async fn updated_since_returns_only_questions_changed_at_or_after_the_instant() {
    let app = TestApp::seeded().await;
    let all = app.list_all("limit=100").await;
    let target = &all[3];
    let patched = app
        .patch(
            &format!("/api/v1/questions/{}", target["id"]),
            json!({"difficulty": "hard"}),
            None,
        )
        .await
        .json();
    let since = patched["updated_at"].as_str().unwrap();
    let changed = app
        .list_all(&format!("updated_since={}", urlencode(since)))
        .await;
    assert_eq!(ids(&changed), vec![target["id"].as_i64().unwrap()]);
    app.get("/api/v1/questions?updated_since=yesterday")
        .await
        .assert_problem(422, "validation_failed");
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn a_merge_patch_keeps_absent_fields_clears_nulls_and_bumps_the_version() {
    let app = TestApp::empty().await;
    let q = app
        .create_question(json!({"title": "t", "body": "detail", "category": "golang",
                                "tags": ["a"], "difficulty": "easy", "answers": [{"body": "x"}]}))
        .await;
    let uri = format!("/api/v1/questions/{}", q["id"]);
    let r = app
        .patch(&uri, json!({"body": null, "category": "distributed"}), None)
        .await;
    assert_eq!(r.status, 200);
    let p = r.json();
    assert_eq!(p["title"], "t");
    assert_eq!(p["body"], Value::Null);
    assert_eq!(p["category"]["slug"], "distributed");
    assert_eq!(p["tags"], json!(["a"]));
    assert_eq!(p["difficulty"], "easy");
    assert_eq!(p["answers"][0]["body"], "x");
    assert_eq!(p["version"], 2);
    assert_eq!(r.header("etag"), format!("\"q{}v2\"", q["id"]));

    let p = app
        .patch(
            &uri,
            json!({"tags": null, "answers": [{"body": "y"}, {"body": "z"}]}),
            None,
        )
        .await
        .json();
    assert_eq!(p["tags"], json!([]));
    let bodies: Vec<&str> = p["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["y", "z"]);
    assert_eq!(p["version"], 3);

    // An empty patch changes nothing, not even the version.
    let same = app.patch(&uri, json!({}), None).await.json();
    assert_eq!(same["version"], 3);
    assert_eq!(app.get(&uri).await.json(), same);
}

#[tokio::test]
async fn a_patch_may_not_null_required_fields() {
    let app = TestApp::empty().await;
    let q = app.create_question(question("t")).await;
    let uri = format!("/api/v1/questions/{}", q["id"]);
    let r = app
        .patch(
            &uri,
            json!({"title": null, "category": null, "difficulty": null}),
            None,
        )
        .await;
    let p = r.assert_problem(422, "validation_failed");
    assert_eq!(p["errors"].as_array().unwrap().len(), 3);
    assert_eq!(app.get(&uri).await.json()["version"], 1);
}

#[tokio::test]
async fn a_patch_accepts_plain_json_too() {
    let app = TestApp::empty().await;
    let q = app.create_question(question("t")).await;
    let r = app
        .request(
            axum::http::Method::PATCH,
            &format!("/api/v1/questions/{}", q["id"]),
            &[("content-type", "application/json; charset=utf-8")],
            Some(br#"{"title":"new"}"#.to_vec()),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["title"], "new");
}

#[tokio::test]
async fn if_match_protects_patch_and_delete_from_stale_writers() {
    let app = TestApp::empty().await;
    let q = app.create_question(question("t")).await;
    let uri = format!("/api/v1/questions/{}", q["id"]);
    let v1 = format!("\"q{}v1\"", q["id"]);
    let r = app.patch(&uri, json!({"title": "first"}), Some(&v1)).await;
    assert_eq!(r.status, 200);
    let v2 = r.header("etag").to_string();
    app.patch(&uri, json!({"title": "second"}), Some(&v1))
        .await
        .assert_problem(412, "precondition_failed");
    app.patch(&uri, json!({"title": "weak"}), Some(&format!("W/{v2}")))
        .await
        .assert_problem(412, "precondition_failed");
    app.patch(&uri, json!({"title": "other"}), Some("\"q999v2\""))
        .await
        .assert_problem(412, "precondition_failed");
    app.patch(&uri, json!({"title": "x"}), Some("not-quoted"))
        .await
        .assert_problem(412, "precondition_failed");
    assert_eq!(app.get(&uri).await.json()["title"], "first");
    app.delete(&uri, Some(&v1))
        .await
        .assert_problem(412, "precondition_failed");
    assert_eq!(
        app.patch(&uri, json!({"title": "any"}), Some("*"))
            .await
            .status,
        200
    );
    let current = app.get(&uri).await.header("etag").to_string();
    assert_eq!(app.delete(&uri, Some(&current)).await.status, 204);
}

#[tokio::test]
async fn deleting_a_question_deletes_its_answers() {
    let app = TestApp::empty().await;
    let q = app
        .create_question(json!({"title": "t", "category": "golang", "answers": [{"body": "a"}]}))
        .await;
    let answer = format!("/api/v1/answers/{}", q["answers"][0]["id"]);
    assert_eq!(app.get(&answer).await.status, 200);
    let uri = format!("/api/v1/questions/{}", q["id"]);
    assert_eq!(app.delete(&uri, None).await.status, 204);
    app.get(&uri)
        .await
        .assert_problem(404, "question_not_found");
    app.get(&answer)
        .await
        .assert_problem(404, "answer_not_found");
    app.delete(&uri, None)
        .await
        .assert_problem(404, "question_not_found");
}
