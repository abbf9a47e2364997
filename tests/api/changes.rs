//! The change feed: every write as an event in commit order, pages and cursors, filters,
//! expiry, long polls, the event stream, and the protocol a mirror follows (export, then the
//! feed from the export's cursor).

use crate::helpers::{ADMIN_KEY, TestApp, question};
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use tower::ServiceExt;

/// The feed's cursor now: where a client that has seen everything stands.
async fn head(app: &TestApp) -> String {
    let mut after: Option<String> = None;
    loop {
        let page = feed(app, after.as_deref(), "limit=1000").await;
        after = Some(page["next_cursor"].as_str().unwrap().to_string());
        if !page["has_more"].as_bool().unwrap() {
            return after.unwrap();
        }
    }
}

async fn feed(app: &TestApp, after: Option<&str>, query: &str) -> Value {
    let uri = match after {
        Some(a) => format!("/api/v1/changes?after={a}&{query}"),
        None => format!("/api/v1/changes?{query}"),
    };
    let r = app.get(&uri).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

fn types(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn every_write_is_an_event_in_commit_order_carrying_what_a_get_rendered() {
    let app = TestApp::seeded().await;
    let start = head(&app).await;
    let q = app.create_question(question("事件流 是什么？")).await;
    let id = q["id"].as_i64().unwrap();
    let created = app.get(&format!("/api/v1/questions/{id}")).await.json();
    let r = app
        .post(
            &format!("/api/v1/questions/{id}/answers"),
            json!({"body": "按提交顺序的变更。"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let with_answer = app.get(&format!("/api/v1/questions/{id}")).await.json();
    let r = app
        .patch(
            &format!("/api/v1/questions/{id}"),
            json!({"difficulty": "hard"}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app
        .post(
            "/api/v1/categories",
            json!({"slug": "sync", "name": "同步"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(
        app.delete(&format!("/api/v1/questions/{id}"), None)
            .await
            .status,
        204
    );

    let page = feed(&app, Some(&start), "limit=100").await;
    assert_eq!(
        types(&page),
        [
            "question.created",
            "question.updated",
            "question.updated",
            "category.created",
            "question.deleted"
        ]
    );
    let items = page["items"].as_array().unwrap();
    assert_eq!(
        items[0]["data"], created,
        "the question exactly as GET rendered it"
    );
    assert_eq!(
        items[1]["data"], with_answer,
        "an answer added updates its question"
    );
    assert_eq!(items[2]["data"]["difficulty"], "hard");
    assert_eq!(
        items[3]["data"],
        json!({"slug": "sync", "name": "同步", "question_count": 0})
    );
    let tombstone = &items[4]["data"];
    assert_eq!(tombstone["id"], id);
    assert_eq!(tombstone["external_id"], Value::Null);
    assert_eq!(
        tombstone["version"],
        items[2]["data"]["version"].as_i64().unwrap() + 1
    );
    assert!(tombstone["deleted_at"].is_string());
    let ids: HashSet<&str> = items.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), items.len(), "event ids are unique");
    assert_eq!(page["next_cursor"], items[4]["cursor"]);
    assert_eq!(page["has_more"], false);
}

#[tokio::test]
async fn the_same_page_read_twice_has_the_same_event_ids_and_cursors() {
    let app = TestApp::seeded().await;
    let a = feed(&app, None, "limit=5").await;
    let b = feed(&app, None, "limit=5").await;
    assert_eq!(a, b);
    assert_eq!(a["items"].as_array().unwrap().len(), 5);
    assert_eq!(a["has_more"], true);
}

#[tokio::test]
async fn paging_with_next_cursor_reads_every_event_once_and_then_stays_put() {
    let app = TestApp::seeded().await;
    let all = feed(&app, None, "limit=1000").await;
    let total = all["items"].as_array().unwrap().len();
    assert!(
        total >= 29,
        "the seed's questions and categories are in the feed: {total}"
    );
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = feed(&app, after.as_deref(), "limit=4").await;
        for e in page["items"].as_array().unwrap() {
            seen.push(e["id"].as_str().unwrap().to_string());
        }
        after = Some(page["next_cursor"].as_str().unwrap().to_string());
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
    }
    let expected: Vec<String> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(seen, expected);
    let again = feed(&app, after.as_deref(), "limit=4").await;
    assert_eq!(again["items"], json!([]));
    assert_eq!(
        again["next_cursor"].as_str(),
        after.as_deref(),
        "no news: the cursor stays"
    );
}

#[tokio::test]
async fn filters_by_type_and_category_and_a_filtered_reader_still_moves_on() {
    let app = TestApp::seeded().await;
    let start = head(&app).await;
    let go = app.create_question(question("只看删除")).await;
    let dist = app
        .create_question(json!({"title": "分布式里的一个", "category": "distributed"}))
        .await;
    for q in [&go, &dist] {
        let id = q["id"].as_i64().unwrap();
        assert_eq!(
            app.delete(&format!("/api/v1/questions/{id}"), None)
                .await
                .status,
            204
        );
    }
    let deletes = feed(&app, Some(&start), "types=question.deleted").await;
    assert_eq!(types(&deletes), ["question.deleted", "question.deleted"]);
    let dist_only = feed(&app, Some(&start), "category=distributed").await;
    assert_eq!(types(&dist_only), ["question.created", "question.deleted"]);
    assert!(
        dist_only["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["data"]["id"] == dist["id"])
    );
    let wild = feed(&app, Some(&start), "types=category.*").await;
    assert_eq!(wild["items"], json!([]));
    assert_eq!(
        wild["next_cursor"], deletes["next_cursor"],
        "a reader whose filter matched nothing is still moved past what it skipped"
    );
}

#[tokio::test]
async fn learner_reviews_are_never_in_the_feed() {
    let app = TestApp::seeded().await;
    let start = head(&app).await;
    let r = app
        .post(
            "/api/v1/learners/alice/reviews",
            json!({"question_id": 1, "rating": "good"}),
        )
        .await;
    assert!(
        r.status.is_success(),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let page = feed(&app, Some(&start), "").await;
    assert_eq!(page["items"], json!([]));
}

#[tokio::test]
async fn bad_cursors_are_400_and_out_of_range_parameters_422() {
    let app = TestApp::seeded().await;
    for bad in ["nonsense", "AAAA", "%FF"] {
        app.get(&format!("/api/v1/changes?after={bad}"))
            .await
            .assert_problem(400, "invalid_cursor");
    }
    // A cursor of another knowledge base names positions in another log.
    let other = TestApp::seeded().await;
    let foreign = head(&other).await;
    let p = app
        .get(&format!("/api/v1/changes?after={foreign}"))
        .await
        .assert_problem(400, "invalid_cursor");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("another kb database"),
        "{p}"
    );
    for q in [
        "wait=61",
        "wait=-1",
        "wait=soon",
        "limit=0",
        "limit=1001",
        "types=question.moved",
        "category=Not%20A%20Slug",
    ] {
        app.get(&format!("/api/v1/changes?{q}"))
            .await
            .assert_problem(422, "validation_failed");
    }
    // Unknown parameters are ignored, as everywhere (cache busters must work).
    assert_eq!(
        app.get("/api/v1/changes?colour=red").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_cursor_older_than_the_feed_keeps_is_410_with_how_to_start_again() {
    let app = TestApp::seeded().await;
    let old = feed(&app, None, "limit=1").await["next_cursor"]
        .as_str()
        .unwrap()
        .to_string();
    // Every replica has applied everything, and everything is older than "now": all may go.
    let app = app
        .restart(|dir| {
            let dir = dir.to_path_buf();
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(async move {
                        let store = crate::replicas::store_of(&dir).await;
                        let now = chrono::Utc::now().timestamp_micros();
                        assert!(store.prune_changes(0, now).await.unwrap() > 0);
                        store.close().await;
                    })
            })
            .join()
            .unwrap();
        })
        .await;
    let p = app
        .get(&format!("/api/v1/changes?after={old}"))
        .await
        .assert_problem(410, "cursor_expired");
    assert!(
        p["detail"].as_str().unwrap().contains("/api/v1/export"),
        "{p}"
    );
    // Without a cursor a reader starts at the oldest event kept: after the pruned ones.
    let page = feed(&app, None, "").await;
    assert_eq!(page["items"], json!([]));
    let q = app.create_question(question("修剪之后")).await;
    let page = feed(&app, Some(page["next_cursor"].as_str().unwrap()), "").await;
    assert_eq!(page["items"][0]["data"]["id"], q["id"]);
}

#[tokio::test]
async fn a_long_poll_answers_with_the_write_it_waited_for() {
    let app = TestApp::seeded().await;
    let start = head(&app).await;
    let uri = format!("/api/v1/changes?after={start}&wait=30");
    let (page, created) = tokio::join!(app.get(&uri), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        app.create_question(question("长轮询")).await
    });
    assert_eq!(page.status, StatusCode::OK);
    let page = page.json();
    assert_eq!(types(&page), ["question.created"]);
    assert_eq!(page["items"][0]["data"]["id"], created["id"]);
}

#[tokio::test]
async fn a_long_poll_with_nothing_new_ends_empty_at_its_deadline_where_it_was() {
    let app = TestApp::seeded().await;
    let start = head(&app).await;
    let page = feed(&app, Some(&start), "wait=1").await;
    assert_eq!(page["items"], json!([]));
    assert_eq!(page["next_cursor"], start.as_str());
}

#[tokio::test]
async fn waiting_polls_beyond_a_credentials_share_are_429_with_retry_after() {
    let app = TestApp::with(|c| c.sync.live_per_credential = 1).await;
    let start = head(&app).await;
    let uri = format!("/api/v1/changes?after={start}&wait=2");
    let (a, b) = tokio::join!(app.get(&uri), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.get(&uri).await
    });
    assert_eq!(a.status, StatusCode::OK);
    b.assert_problem(429, "too_many_streams");
    assert!(b.header("retry-after").parse::<u64>().unwrap() >= 1);
    // A poll that needs no wait holds nothing.
    assert_eq!(
        app.get("/api/v1/changes?limit=1").await.status,
        StatusCode::OK
    );
}

/// Reads Server-Sent Events from `body` until `n` events (not comments) have arrived.
async fn sse_events(body: &mut Body, n: usize) -> Vec<(String, String, Value)> {
    let mut text = String::new();
    let mut events = Vec::new();
    while events.len() < n {
        let frame = tokio::time::timeout(Duration::from_secs(20), body.frame())
            .await
            .expect("an event arrives")
            .expect("the stream is open")
            .expect("a frame");
        if let Ok(data) = frame.into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let (mut id, mut kind, mut data) = (String::new(), String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = v.to_string();
                } else if let Some(v) = line.strip_prefix("event: ") {
                    kind = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            if !kind.is_empty() {
                events.push((id, kind, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    events
}

async fn open_stream(router: &Router, query: &str, last_event_id: Option<&str>) -> Body {
    let mut req = Request::builder()
        .uri(format!("/api/v1/changes/stream{query}"))
        .header("authorization", format!("Bearer {ADMIN_KEY}"));
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let res = router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    res.into_body()
}

#[tokio::test]
async fn the_stream_sends_new_events_live_and_resumes_after_last_event_id() {
    let app = TestApp::seeded().await;
    let start = head(&app).await;
    let mut body = open_stream(&app.router, &format!("?after={start}"), None).await;
    let a = app.create_question(question("流里的第一个")).await;
    let b = app.create_question(question("流里的第二个")).await;
    let events = sse_events(&mut body, 2).await;
    assert_eq!(events[0].1, "question.created");
    assert_eq!(events[0].2["data"]["id"], a["id"]);
    assert_eq!(events[1].2["data"]["id"], b["id"]);
    assert_eq!(
        events[0].0,
        events[0].2["cursor"].as_str().unwrap(),
        "id: is the cursor"
    );
    drop(body);

    // Reconnecting with the first event's id resumes with the second, as EventSource does.
    let mut body = open_stream(&app.router, "", Some(&events[0].0)).await;
    let again = sse_events(&mut body, 1).await;
    assert_eq!(again[0].2["id"], events[1].2["id"]);
}

#[tokio::test]
async fn the_stream_ends_cleanly_when_the_server_shuts_down() {
    let app = TestApp::seeded().await;
    let start = head(&app).await;
    let mut body = open_stream(
        &app.router,
        &format!("?after={start}&types=question.*"),
        None,
    )
    .await;
    app.app.state().live.close();
    let end = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(frame) = body.frame().await {
            frame.expect("no error, just the end");
        }
    })
    .await;
    assert!(end.is_ok(), "the stream ended");
}

#[tokio::test]
async fn a_stream_from_an_expired_or_foreign_cursor_is_refused_before_it_starts() {
    let app = TestApp::seeded().await;
    let other = TestApp::seeded().await;
    let foreign = head(&other).await;
    let r = app
        .request(
            Method::GET,
            "/api/v1/changes/stream",
            &[("last-event-id", foreign.as_str())],
            None,
        )
        .await;
    r.assert_problem(400, "invalid_cursor");
}

/// A question reduced to what a mirror keeps, from either an export line or a feed event.
fn content(q: &Value) -> Value {
    let category = q["category"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| q["category"]["slug"].as_str().unwrap().to_string());
    let answers: Vec<&Value> = q["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["body"])
        .collect();
    json!({
        "title": q["title"], "body": q["body"], "category": category, "tags": q["tags"],
        "difficulty": q["difficulty"], "answers": answers,
    })
}

/// Applies a page of the feed to a mirror as a client would (each event at most once);
/// returns where to continue.
fn apply(page: &Value, mirror: &mut BTreeMap<i64, Value>, seen: &mut HashSet<String>) -> String {
    for e in page["items"].as_array().unwrap() {
        assert!(
            seen.insert(e["id"].as_str().unwrap().to_string()),
            "no event twice"
        );
        match e["type"].as_str().unwrap() {
            "question.created" | "question.updated" => {
                mirror.insert(e["data"]["id"].as_i64().unwrap(), content(&e["data"]));
            }
            "question.deleted" => {
                mirror.remove(&e["data"]["id"].as_i64().unwrap());
            }
            _ => {}
        }
    }
    page["next_cursor"].as_str().unwrap().to_string()
}

async fn export(app: &TestApp) -> (String, BTreeMap<i64, Value>) {
    let r = app.get("/api/v1/export").await;
    assert_eq!(r.status, StatusCode::OK);
    let header = r.header("kb-changes-cursor").to_string();
    let text = String::from_utf8(r.body).unwrap();
    let mut lines = text.lines();
    let first: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(
        first,
        json!({"changes_cursor": header}),
        "the first line repeats the header"
    );
    let mut mirror = BTreeMap::new();
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap();
        if v.get("synonyms").is_none() {
            mirror.insert(v["id"].as_i64().unwrap(), content(&v));
        }
    }
    (header, mirror)
}

/// Creates, edits and deletes, as other clients would while a mirror is made.
async fn churn(app: &TestApp, round: usize) {
    for i in 0..6 {
        let q = app
            .create_question(json!({"title": format!("镜像 {round}-{i}"), "category": "golang", "answers": [{"body": "一"}]}))
            .await;
        let id = q["id"].as_i64().unwrap();
        match i % 3 {
            0 => {
                app.patch(
                    &format!("/api/v1/questions/{id}"),
                    json!({"title": format!("改过 {round}-{i}")}),
                    None,
                )
                .await;
            }
            1 => {
                app.post(
                    &format!("/api/v1/questions/{id}/answers"),
                    json!({"body": "二"}),
                )
                .await;
            }
            _ => {
                app.delete(&format!("/api/v1/questions/{id}"), None).await;
            }
        }
        tokio::task::yield_now().await;
    }
    // Seed questions change and go too.
    let seeded = 1 + round as i64;
    app.patch(
        &format!("/api/v1/questions/{seeded}"),
        json!({"tags": ["mirror"]}),
        None,
    )
    .await;
    app.delete(&format!("/api/v1/questions/{}", seeded + 10), None)
        .await;
}

#[tokio::test]
async fn export_then_following_the_feed_from_its_cursor_gives_an_exact_mirror_while_others_write() {
    let app = TestApp::seeded().await;
    let (mirror, cursor) = {
        let (_, (cursor, mirror)) = tokio::join!(churn(&app, 0), async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            export(&app).await
        });
        (mirror, cursor)
    };
    let mut mirror = mirror;
    let mut cursor = cursor;
    let mut seen = HashSet::new();
    let follow = async {
        for round in 1..4 {
            churn(&app, round).await;
        }
    };
    let read = async {
        // Follows while the churn goes on, then drains what is left.
        for _ in 0..200 {
            let page = feed(&app, Some(&cursor), "limit=3").await;
            cursor = apply(&page, &mut mirror, &mut seen);
            tokio::task::yield_now().await;
        }
    };
    tokio::join!(follow, read);
    loop {
        let page = feed(&app, Some(&cursor), "limit=1000").await;
        cursor = apply(&page, &mut mirror, &mut seen);
        if !page["has_more"].as_bool().unwrap() {
            break;
        }
    }
    let (_, fresh) = export(&app).await;
    assert_eq!(mirror, fresh);
}

async fn create_with(router: Router, title: String) -> i64 {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/questions")
        .header("authorization", format!("Bearer {ADMIN_KEY}"))
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"title": title, "category": "golang"}).to_string(),
        ))
        .unwrap();
    let res = router.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice::<Value>(&body).unwrap()["id"]
        .as_i64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_paging_while_many_clients_write_at_once_sees_every_write_once_in_order() {
    let app = TestApp::seeded().await;
    let mut cursor = head(&app).await;
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let router = app.router.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..10 {
                    ids.push(create_with(router.clone(), format!("并发 {w}-{i}")).await);
                }
                ids
            })
        })
        .collect();
    let mut seen: Vec<i64> = Vec::new();
    let mut seqs: Vec<String> = Vec::new();
    while seen.len() < 40 {
        let page = feed(&app, Some(&cursor), "limit=3&types=question.created").await;
        for e in page["items"].as_array().unwrap() {
            seen.push(e["data"]["id"].as_i64().unwrap());
            seqs.push(e["cursor"].as_str().unwrap().to_string());
        }
        cursor = page["next_cursor"].as_str().unwrap().to_string();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut written: Vec<i64> = Vec::new();
    for w in writers {
        written.extend(w.await.unwrap());
    }
    let mut sorted_seen = seen.clone();
    sorted_seen.sort_unstable();
    written.sort_unstable();
    assert_eq!(sorted_seen, written, "every write seen, none twice");
    let distinct: HashSet<&String> = seqs.iter().collect();
    assert_eq!(distinct.len(), seqs.len());
    let after = feed(&app, Some(&cursor), "types=question.created").await;
    assert_eq!(after["items"], json!([]), "nothing left behind");
}
