//! Search by meaning, end to end, against an embedding service: a small OpenAI-compatible
//! server in the test (its vectors come from a table of concepts named in Chinese and
//! English, so "garbage collector" and 垃圾回收 are near), which can also be made slow, wrong
//! or down. Quality with a real model is in `relevance.rs`; here, the plumbing: background
//! embedding, storage, the vector index following changes, fusion, filters, explanations,
//! `similar`, the fallback to keyword search, and model changes.

use crate::helpers::{TestApp, db_rows, urlencode};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

/// How the test embedder answers.
const NORMAL: u8 = 0;
const SLOW: u8 = 1;
const WRONG_DIMENSION: u8 = 2;
const NAN: u8 = 3;
const FAILING: u8 = 4;

const DIM: usize = 16;

/// Words of one concept, in both languages.
const CONCEPTS: &[&[&str]] = &[
    &["garbage", "垃圾", "gc"],
    &["schedul", "调度", "gmp"],
    &["lock", "锁", "mutex"],
    &["consisten", "一致性"],
    &["channel", "通道"],
    &["memory", "内存"],
    &["slice", "切片", "数组", "array"],
    &["raft", "选举", "leader"],
];

#[derive(Default)]
struct Fake {
    mode: AtomicU8,
    /// Passages (background embedding) answered 503 while set.
    passages_blocked: AtomicBool,
    passages: AtomicUsize,
    queries: AtomicUsize,
}

fn vector(text: &str) -> Vec<f64> {
    let lower = text.to_lowercase();
    let mut v = vec![0.0; DIM];
    for (i, words) in CONCEPTS.iter().enumerate() {
        if words.iter().any(|w| lower.contains(w)) {
            v[i] += 1.0;
        }
    }
    for c in lower.chars() {
        v[8 + (c as usize) % 8] += 0.02;
    }
    v
}

async fn embeddings(
    State(fake): State<Arc<Fake>>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let query = body["input_type"] == "query";
    if query {
        fake.queries.fetch_add(1, Ordering::Relaxed);
    } else {
        fake.passages.fetch_add(1, Ordering::Relaxed);
        if fake.passages_blocked.load(Ordering::Relaxed) {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "busy"})),
            );
        }
    }
    let inputs: Vec<String> = body["input"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    let mode = fake.mode.load(Ordering::Relaxed);
    if query {
        match mode {
            SLOW => tokio::time::sleep(Duration::from_secs(3)).await,
            FAILING => {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({"error": "boom"})),
                );
            }
            _ => {}
        }
    }
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let embedding: Value = match mode {
                WRONG_DIMENSION if query => json!(vec![0.5; DIM / 2]),
                NAN if query => json!(vec!["NaN"; DIM]),
                _ => json!(vector(t)),
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    (
        StatusCode::OK,
        Json(json!({"object": "list", "data": data, "model": body["model"]})),
    )
}

/// Starts the test embedder; its base URL and its controls.
async fn fake_embedder() -> (String, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let app = axum::Router::new()
        .route("/v1/embeddings", axum::routing::post(embeddings))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, fake)
}

/// A seeded app searching by meaning through `url`, every question embedded.
async fn app_with(url: &str) -> TestApp {
    let url = url.to_string();
    let app = TestApp::with(move |c| {
        c.embedder.url = Some(url);
        c.embedder.model = "concepts-v1".into();
    })
    .await;
    wait_embedded(&app).await;
    app
}

async fn status(app: &TestApp) -> Value {
    let r = app.get("/api/v1/search/status").await;
    assert_eq!(r.status, 200);
    r.json()
}

/// Waits (bounded: an eventual background write, not a speed check) until every question
/// has a vector in the vector index.
async fn wait_embedded(app: &TestApp) -> Value {
    wait_status(app, |s| {
        s["embedded"] == s["documents"] && s["documents"] != 0
    })
    .await
}

async fn wait_status(app: &TestApp, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        last = status(app).await;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("search status never got there: {last}");
}

/// Waits (bounded, for a background write) until `done` holds; panics if it never does.
async fn eventually(done: impl Fn() -> bool) {
    for _ in 0..600 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("a background write never came");
}

async fn search(app: &TestApp, q: &str, extra: &str) -> Value {
    let r = app
        .get(&format!("/api/v1/search?q={}{extra}", urlencode(q)))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn titles(v: &Value) -> Vec<String> {
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["question"]["title"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn without_an_embedder_search_is_keyword_only_and_says_so() {
    let app = TestApp::seeded().await;
    let s = status(&app).await;
    assert_eq!(s["semantic"], false);
    assert_eq!(s["model"], Value::Null);
    assert_eq!(s["embedded"], 0);
    assert_eq!(s["documents"], 29);
    let r = search(&app, "GC", "&semantic=0.7").await;
    assert_eq!(r["semantic"], false);
    assert!(!titles(&r).is_empty());
    for bad in ["2", "-0.1", "x", "NaN"] {
        let p = app
            .get(&format!("/api/v1/search?q=GC&semantic={bad}"))
            .await
            .assert_problem(422, "validation_failed");
        assert!(p.to_string().contains("semantic"), "{p}");
    }
}

#[tokio::test]
async fn an_english_question_finds_chinese_answers_by_meaning() {
    let (url, fake) = fake_embedder().await;
    let app = app_with(&url).await;
    let s = status(&app).await;
    assert_eq!(s["semantic"], true);
    assert_eq!(s["model"], "concepts-v1");
    assert_eq!(s["target_model"], Value::Null);
    let q = "how is the garbage collector tuned";
    let keyword = search(&app, q, "&semantic=0").await;
    assert_eq!(keyword["semantic"], false);
    assert!(
        !titles(&keyword).iter().take(3).any(|t| t.contains("GC")),
        "keyword search alone should not bridge the languages: {:?}",
        titles(&keyword)
    );
    let meaning = search(&app, q, "").await;
    assert_eq!(meaning["semantic"], true);
    let top: Vec<String> = titles(&meaning).into_iter().take(3).collect();
    assert!(
        top.iter().all(|t| t.contains("GC") || t.contains("垃圾")),
        "{top:?}"
    );
    assert!(fake.queries.load(Ordering::Relaxed) >= 1);
    // The same query again comes from the cache, not the embedder.
    let asked = fake.queries.load(Ordering::Relaxed);
    search(&app, q, "").await;
    assert_eq!(fake.queries.load(Ordering::Relaxed), asked);
}

#[tokio::test]
async fn filters_apply_to_both_halves_and_totals_count_both() {
    let (url, _) = fake_embedder().await;
    let app = app_with(&url).await;
    let r = search(&app, "garbage collector", "&category=distributed&limit=50").await;
    assert_eq!(r["semantic"], true);
    for h in r["hits"].as_array().unwrap() {
        assert_eq!(h["question"]["category"]["slug"], "distributed", "{h}");
    }
    assert_eq!(r["facets"]["category"].as_object().unwrap().len(), 1, "{r}");
    let r = search(&app, "garbage collector", "&tag=gc&limit=50").await;
    let n = r["hits"].as_array().unwrap().len();
    assert!(n > 0);
    for h in r["hits"].as_array().unwrap() {
        let tags = h["question"]["tags"].as_array().unwrap();
        assert!(tags.iter().any(|t| t == "gc"), "{h}");
    }
    assert_eq!(r["total"], n, "{r}");
    assert_eq!(r["facets"]["tag"]["gc"], n, "{r}");
    // Paging walks the fused list without repeating a question.
    let all: Vec<String> = titles(&search(&app, "内存 分配", "&limit=20").await);
    let first = titles(&search(&app, "内存 分配", "&limit=10").await);
    let second = titles(&search(&app, "内存 分配", "&limit=10&offset=10").await);
    assert_eq!([first, second].concat(), all);
}

#[tokio::test]
async fn explain_shows_both_halves_and_how_they_were_fused() {
    let (url, _) = fake_embedder().await;
    let app = app_with(&url).await;
    let r = search(&app, "GC 垃圾回收", "&explain=true&semantic=0.25").await;
    let hits = r["hits"].as_array().unwrap();
    assert!(!hits.is_empty());
    for h in hits {
        let f = &h["fusion"];
        assert_eq!(f["weight"], 0.25);
        let part = |half: &str| f[half]["normalized"].as_f64().unwrap_or(0.0);
        let fused = 0.75 * part("keyword") + 0.25 * part("semantic");
        assert!((f["fused"].as_f64().unwrap() - fused).abs() < 1e-4, "{f}");
        assert!((h["score"].as_f64().unwrap() - fused).abs() < 1e-4, "{h}");
        if f["keyword"].is_object() {
            assert!(
                h["explain"].is_array(),
                "keyword parts still explained: {h}"
            );
        }
    }
    let first = &hits[0]["fusion"];
    assert!(
        first["keyword"].is_object() && first["semantic"].is_object(),
        "{first}"
    );
}

#[tokio::test]
async fn similar_questions_come_from_the_vectors_when_there_are_some() {
    let (url, _) = fake_embedder().await;
    let app = app_with(&url).await;
    let gc = app.search_ids("GC 的触发时机", "&semantic=0").await[0];
    let r = app
        .get(&format!("/api/v1/questions/{gc}/similar?limit=4"))
        .await;
    assert_eq!(r.status, 200);
    let items = r.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 4);
    for it in &items {
        assert_ne!(it["question"]["id"], gc);
        let score = it["score"].as_f64().unwrap();
        assert!(score <= 1.001, "a cosine, not a keyword score: {it}");
        let title = it["question"]["title"].as_str().unwrap();
        assert!(title.contains("GC") || title.contains("垃圾"), "{title}");
    }
}

#[tokio::test]
async fn a_slow_failing_or_wrong_embedder_leaves_the_keyword_answer() {
    let (url, fake) = fake_embedder().await;
    let app = {
        let url = url.clone();
        TestApp::with(move |c| {
            c.embedder.url = Some(url);
            c.embedder.model = "concepts-v1".into();
            c.embedder.deadline = Duration::from_millis(300);
        })
        .await
    };
    wait_embedded(&app).await;
    for (i, mode) in [SLOW, FAILING, WRONG_DIMENSION, NAN]
        .into_iter()
        .enumerate()
    {
        fake.mode.store(mode, Ordering::Relaxed);
        // A query nobody asked before, so the cache cannot answer it.
        let q = format!("GC 调优 {i}");
        let keyword = search(&app, &q, "&semantic=0").await;
        let r = search(&app, &q, "").await;
        assert_eq!(r["semantic"], false, "mode {mode}: {r}");
        assert_eq!(titles(&r), titles(&keyword), "mode {mode}");
        assert_eq!(r["total"], keyword["total"]);
    }
    assert_eq!(
        status(&app).await["semantic"],
        false,
        "a failing embedder shows"
    );
    let metrics = String::from_utf8(app.get("/metrics").await.body).unwrap();
    assert!(metrics.contains("kb_semantic_fallbacks_total"), "{metrics}");
    fake.mode.store(NORMAL, Ordering::Relaxed);
    assert_eq!(search(&app, "GC 调优 again", "").await["semantic"], true);
}

#[tokio::test]
async fn an_embedder_that_is_down_costs_searches_nothing_but_their_vectors() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = TestApp::with(move |c| {
        c.embedder.url = Some(format!("http://127.0.0.1:{port}/v1"));
    })
    .await;
    let r = search(&app, "GC 是怎么实现的", "").await;
    assert_eq!(r["semantic"], false);
    assert!(!titles(&r).is_empty());
    let s = status(&app).await;
    assert_eq!(s["embedded"], 0);
    assert_eq!(s["semantic"], false);
}

#[tokio::test]
async fn writes_reach_the_vectors_in_the_background_and_deletes_leave_them() {
    let (url, fake) = fake_embedder().await;
    let app = app_with(&url).await;
    let created = app
        .create_question(json!({"title": "How does Raft elect a leader?", "category": "distributed",
                                "answers": [{"body": "A candidate asks for votes; a majority makes it leader."}]}))
        .await;
    let id = created["id"].as_i64().unwrap();
    wait_status(&app, |s| s["embedded"] == 30).await;
    let r = search(&app, "选举", "&semantic=1").await;
    assert_eq!(r["hits"][0]["question"]["id"], id, "{r}");
    // An edit of the text is embedded again; an edit of the tags alone is not.
    let passages = fake.passages.load(Ordering::Relaxed);
    let r = app
        .patch(
            &format!("/api/v1/questions/{id}"),
            json!({"tags": ["raft"]}),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let versions = |app: &TestApp| {
        db_rows(
            app.dir.path(),
            &format!("SELECT CAST(version AS TEXT) FROM embeddings WHERE question_id = {id}"),
        )
    };
    eventually(|| versions(&app) == vec!["2".to_string()]).await;
    assert_eq!(
        fake.passages.load(Ordering::Relaxed),
        passages,
        "same text, no new embedding"
    );
    let r = app.delete(&format!("/api/v1/questions/{id}"), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(status(&app).await["embedded"], 29);
    let rows = db_rows(
        app.dir.path(),
        &format!("SELECT CAST(COUNT(*) AS TEXT) FROM embeddings WHERE question_id = {id}"),
    );
    assert_eq!(rows, vec!["0".to_string()]);
    let r = search(&app, "选举", "&semantic=1").await;
    assert!(
        r["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["question"]["id"] != id)
    );
}

#[tokio::test]
async fn vectors_are_kept_so_a_restart_embeds_nothing_and_a_new_model_takes_over_when_ready() {
    let (url, fake) = fake_embedder().await;
    let app = app_with(&url).await;
    let passages = fake.passages.load(Ordering::Relaxed);
    let u = url.clone();
    let app = app
        .restart_with(
            |_| {},
            move |c| {
                c.embedder.url = Some(u);
                c.embedder.model = "concepts-v1".into();
            },
        )
        .await;
    let s = wait_embedded(&app).await;
    assert_eq!(s["model"], "concepts-v1");
    assert_eq!(
        fake.passages.load(Ordering::Relaxed),
        passages,
        "nothing embedded again"
    );
    // A new model: the old vectors serve until the new ones cover as much.
    fake.passages_blocked.store(true, Ordering::Relaxed);
    let u = url.clone();
    let app = app
        .restart_with(
            |_| {},
            move |c| {
                c.embedder.url = Some(u);
                c.embedder.model = "concepts-v2".into();
            },
        )
        .await;
    let s = wait_status(&app, |s| s["embedded"] == 29).await;
    assert_eq!(s["model"], "concepts-v1");
    assert_eq!(s["target_model"], "concepts-v2");
    assert_eq!(s["target_embedded"], 0);
    assert_eq!(
        search(&app, "garbage collector", "").await["semantic"],
        true
    );
    fake.passages_blocked.store(false, Ordering::Relaxed);
    let s = wait_status(&app, |s| s["model"] == "concepts-v2" && s["embedded"] == 29).await;
    assert_eq!(s["target_model"], Value::Null);
    let models = || {
        db_rows(
            app.dir.path(),
            "SELECT DISTINCT model FROM embeddings ORDER BY model",
        )
    };
    // The old model's vectors are dropped.
    eventually(|| models() == vec!["concepts-v2".to_string()]).await;
}
