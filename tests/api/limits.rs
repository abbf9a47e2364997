//! Holding ground in public: quotas with their headers, private learner data, and bounds on
//! what one question may hold.

use crate::helpers::{TestApp, db_rows, kb_run, with_key};
use axum::http::Method;
use kb::domain::Rate;
use serde_json::{Value, json};

fn rate(units: u32) -> Rate {
    Rate {
        units,
        window_secs: 60,
    }
}

async fn create_key(app: &TestApp, scope: &str, extra: &[&str]) -> String {
    let mut args = vec!["keys", "create", "--scope", scope, "--name", "test"];
    args.extend_from_slice(extra);
    kb_run(app.dir.path(), &[], &args)
        .await
        .lines()
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn every_api_response_says_where_the_caller_stands_and_over_quota_is_429() {
    let app = TestApp::with(|c| {
        c.limits.quotas = true;
        c.limits.anonymous_rate = rate(12);
    })
    .await;
    let r = app
        .anonymous(Method::GET, "/api/v1/questions/16", &[], None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("ratelimit-policy"), "\"anonymous\";q=12;w=60");
    assert!(
        r.header("ratelimit").starts_with("\"anonymous\";r=11;t="),
        "{}",
        r.header("ratelimit")
    );
    // A search costs more than a read by id.
    let r = app
        .anonymous(Method::GET, "/api/v1/search?q=GMP", &[], None)
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("ratelimit").starts_with("\"anonymous\";r=6;"),
        "{}",
        r.header("ratelimit")
    );
    // Unknown routes count and carry the headers too.
    let r = app
        .anonymous(Method::GET, "/api/v1/nowhere", &[], None)
        .await;
    r.assert_problem(404, "not_found");
    assert!(r.header("ratelimit").starts_with("\"anonymous\";r=5;"));
    let r = app
        .anonymous(Method::GET, "/api/v1/search?q=GMP", &[], None)
        .await;
    assert_eq!(r.status, 200);
    let r = app
        .anonymous(Method::GET, "/api/v1/search?q=GMP", &[], None)
        .await;
    r.assert_problem(429, "rate_limited");
    let wait: u64 = r.header("retry-after").parse().unwrap();
    assert!(wait >= 1);
    assert!(r.header("ratelimit").starts_with("\"anonymous\";r=0;"));
    // Probes are never counted.
    assert_eq!(
        app.anonymous(Method::GET, "/healthz", &[], None)
            .await
            .status,
        200
    );
    // A key has its own bucket, here set when it was created.
    let key = create_key(&app, "read", &["--rate", "3/min"]).await;
    for _ in 0..3 {
        let r = with_key(&app, Method::GET, "/api/v1/questions/16", &key, None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("ratelimit-policy"), "\"key\";q=3;w=60");
    }
    with_key(&app, Method::GET, "/api/v1/questions/16", &key, None)
        .await
        .assert_problem(429, "rate_limited");
}

#[tokio::test]
async fn guessing_keys_ends_in_429_within_a_few_dozen_tries() {
    let app = TestApp::with(|c| c.limits.quotas = true).await;
    let mut tries = 0;
    loop {
        tries += 1;
        let r = with_key(
            &app,
            Method::GET,
            "/api/v1/questions/16",
            &format!("kb_guess{tries}"),
            None,
        )
        .await;
        if r.status == 429 {
            r.assert_problem(429, "rate_limited");
            break;
        }
        r.assert_problem(401, "unauthorized");
        assert!(tries < 36, "still guessing after {tries} tries");
    }
}

#[tokio::test]
async fn with_quotas_off_there_is_no_limit_and_no_headers() {
    let app = TestApp::seeded().await;
    for _ in 0..30 {
        let r = app
            .anonymous(Method::GET, "/api/v1/search?q=GMP", &[], None)
            .await;
        assert_eq!(r.status, 200);
        assert!(!r.headers.contains_key("ratelimit"));
    }
}

#[tokio::test]
async fn a_learners_data_is_open_only_to_learners_keys_and_that_learners_token() {
    let app = TestApp::seeded().await;
    let write = create_key(&app, "write", &[]).await;
    let learners = create_key(&app, "learners", &[]).await;
    let review = json!({"question_id": 16, "rating": "good"});
    let due = "/api/v1/learners/victim/due";
    app.anonymous(Method::GET, due, &[], None)
        .await
        .assert_problem(401, "unauthorized");
    with_key(&app, Method::GET, due, &write, None)
        .await
        .assert_problem(403, "forbidden");
    with_key(
        &app,
        Method::POST,
        "/api/v1/learners/victim/reviews",
        &write,
        Some(review.clone()),
    )
    .await
    .assert_problem(403, "forbidden");
    assert_eq!(
        with_key(&app, Method::GET, due, &learners, None)
            .await
            .status,
        200
    );

    // A learners key hands out tokens; a token acts for its learner and reads, nothing else.
    with_key(
        &app,
        Method::POST,
        "/api/v1/learners/victim/tokens",
        &write,
        Some(json!({})),
    )
    .await
    .assert_problem(403, "forbidden");
    let r = with_key(
        &app,
        Method::POST,
        "/api/v1/learners/victim/tokens",
        &learners,
        Some(json!({"expires_in_days": 7})),
    )
    .await;
    assert_eq!(r.status, 201);
    let token = r.json()["token"].as_str().unwrap().to_string();
    assert!(r.json()["expires_at"].as_str().unwrap().starts_with("20"));
    let r = with_key(
        &app,
        Method::POST,
        "/api/v1/learners/victim/reviews",
        &token,
        Some(review.clone()),
    )
    .await;
    assert_eq!(r.status, 201);
    let r = with_key(&app, Method::GET, due, &token, None).await;
    assert_eq!(r.status, 200);
    with_key(
        &app,
        Method::GET,
        "/api/v1/learners/someone-else/due",
        &token,
        None,
    )
    .await
    .assert_problem(403, "forbidden");
    assert_eq!(
        with_key(&app, Method::GET, "/api/v1/questions/16", &token, None)
            .await
            .status,
        200
    );
    let r = with_key(
        &app,
        Method::POST,
        "/api/v1/quiz/sessions",
        &token,
        Some(json!({})),
    )
    .await;
    assert_eq!(
        r.status, 201,
        "a token grants read, which quiz sessions need"
    );
    with_key(
        &app,
        Method::POST,
        "/api/v1/questions",
        &token,
        Some(crate::helpers::question("x")),
    )
    .await
    .assert_problem(403, "forbidden");
    // An altered token is no token.
    let mut forged = token.clone();
    forged.replace_range(6..7, if &token[6..7] == "A" { "B" } else { "A" });
    with_key(&app, Method::GET, due, &forged, None)
        .await
        .assert_problem(401, "unauthorized");
    with_key(
        &app,
        Method::POST,
        "/api/v1/learners/victim/tokens",
        &learners,
        Some(json!({"expires_in_days": 0})),
    )
    .await
    .assert_problem(422, "validation_failed");
    // A token lives only as long as the key that issued it.
    let id = kb_run(app.dir.path(), &[], &["keys", "list"])
        .await
        .lines()
        .find(|l| l.contains("learners"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    kb_run(app.dir.path(), &[], &["keys", "revoke", &id]).await;
    with_key(&app, Method::GET, due, &token, None)
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn a_question_holds_at_most_100_answers_and_a_bounded_amount_of_text() {
    let app = TestApp::seeded().await;
    let answers: Vec<Value> = (0..101)
        .map(|i| json!({"body": format!("答案 {i}")}))
        .collect();
    app.post(
        "/api/v1/questions",
        json!({"title": "很多答案", "category": "golang", "answers": answers}),
    )
    .await
    .assert_problem(422, "too_many_answers");
    let answers: Vec<Value> = (0..100)
        .map(|i| json!({"body": format!("答案 {i}")}))
        .collect();
    let r = app
        .post(
            "/api/v1/questions",
            json!({"title": "一百个答案", "category": "golang", "answers": answers}),
        )
        .await;
    assert_eq!(r.status, 201);
    let id = r.json()["id"].as_i64().unwrap();
    app.post(
        &format!("/api/v1/questions/{id}/answers"),
        json!({"body": "第 101 个"}),
    )
    .await
    .assert_problem(422, "too_many_answers");

    // 4 answers of 100,000 characters fit; a fifth takes the text over 500,000.
    let long = "x".repeat(100_000);
    let r = app
        .post(
            "/api/v1/questions",
            json!({"title": "长答案", "category": "golang",
                   "answers": [{"body": long}, {"body": long}, {"body": long}, {"body": long}]}),
        )
        .await;
    assert_eq!(r.status, 201);
    let id = r.json()["id"].as_i64().unwrap();
    let p = app
        .post(
            &format!("/api/v1/questions/{id}/answers"),
            json!({"body": long}),
        )
        .await
        .assert_problem(422, "question_too_large");
    assert!(p["detail"].as_str().unwrap().contains("500000"));
    assert_eq!(
        app.get(&format!("/api/v1/questions/{id}")).await.json()["answers"]
            .as_array()
            .unwrap()
            .len(),
        4,
        "nothing was stored"
    );
}

#[tokio::test]
async fn a_question_stored_over_the_limits_before_they_existed_keeps_working() {
    let app = TestApp::seeded().await;
    // Give question 16 a hundred and ten answers behind the API's back.
    for i in 0..110 {
        db_rows(
            app.dir.path(),
            &format!(
                "INSERT INTO answers (question_id, body, created_at, updated_at)
                 VALUES (16, '旧答案 {i}', 0, 0)"
            ),
        );
    }
    let r = app
        .patch("/api/v1/questions/16", json!({"difficulty": "hard"}), None)
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let first = r.json()["answers"][0]["id"].as_i64().unwrap();
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/answers/{first}"),
            &[("content-type", "application/json")],
            Some(br#"{"body": "short"}"#.to_vec()),
        )
        .await;
    assert_eq!(r.status, 200, "editing an answer does not grow the count");
    app.post("/api/v1/questions/16/answers", json!({"body": "one more"}))
        .await
        .assert_problem(422, "too_many_answers");
    assert_eq!(
        app.delete(&format!("/api/v1/answers/{first}"), None)
            .await
            .status,
        204
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_need_an_admin_key() {
    let app = TestApp::seeded().await;
    assert_eq!(app.get("/api/v1/questions/16").await.status, 200);
    app.anonymous(Method::GET, "/metrics", &[], None)
        .await
        .assert_problem(401, "unauthorized");
    let r = app.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").starts_with("text/plain"));
    let text = String::from_utf8(r.body).unwrap();
    for series in [
        "http_requests_total{method=\"GET\",route=\"/api/v1/questions/{id}\",status=\"200\"}",
        "http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/questions/{id}\"",
        "kb_index_lag ",
        "kb_index_documents ",
        "kb_open_connections ",
        "process_resident_memory_bytes ",
    ] {
        assert!(text.contains(series), "no {series} in:\n{text}");
    }
}

#[tokio::test]
async fn a_refusal_by_a_route_guard_is_charged_once_to_the_address_and_says_so() {
    let app = TestApp::with(|c| {
        c.limits.quotas = true;
        c.limits.anonymous_rate = rate(3);
    })
    .await;
    let post = || {
        app.anonymous(
            Method::POST,
            "/api/v1/questions",
            &[("content-type", "application/json")],
            Some(b"{}".to_vec()),
        )
    };
    for left in [2, 1, 0] {
        let r = post().await;
        r.assert_problem(401, "unauthorized");
        assert!(
            r.header("ratelimit")
                .starts_with(&format!("\"anonymous\";r={left};")),
            "{}",
            r.header("ratelimit")
        );
    }
    post().await.assert_problem(429, "rate_limited");
}

#[tokio::test]
async fn when_every_expensive_slot_is_busy_expensive_requests_get_503_at_once_and_cheap_ones_pass()
{
    use axum::body::{Body, Bytes};
    use axum::http::Request;
    use tower::ServiceExt;
    let app = TestApp::with(|c| c.search.max_expensive = 1).await;
    // An import whose body keeps streaming holds the one slot.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    let body = Body::from_stream(tokio_stream_from(rx));
    let import = Request::builder()
        .method("POST")
        .uri("/api/v1/import")
        .header(
            "authorization",
            format!("Bearer {}", crate::helpers::ADMIN_KEY),
        )
        .header("content-type", "application/x-ndjson")
        .body(body)
        .unwrap();
    let router = app.router.clone();
    let importing = tokio::spawn(async move { router.oneshot(import).await.unwrap() });
    // The channel holds one chunk: when the second send completes, the handler has taken the
    // first, so the import is running and holds the slot.
    for line in [
        &b"{\"title\":\"\xe6\xb5\x81 1\",\"category\":\"golang\"}\n"[..],
        &b"{\"title\":\"\xe6\xb5\x81 2\",\"category\":\"golang\"}\n"[..],
    ] {
        tx.send(Ok(Bytes::from_static(line))).await.unwrap();
    }
    // The search is refused at once while the import streams; a read by id is not held up.
    let mut refused = None;
    for _ in 0..200 {
        let r = app.get("/api/v1/search?q=GMP").await;
        if r.status == 503 {
            refused = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    if refused.is_none() && importing.is_finished() {
        let res = importing.await.unwrap();
        panic!("the import ended early: {}", res.status());
    }
    let r = refused.expect("the import holds the slot");
    r.assert_problem(503, "overloaded");
    assert_eq!(r.header("retry-after"), "1");
    assert_eq!(app.get("/api/v1/questions/16").await.status, 200);
    drop(tx);
    let report = importing.await.unwrap();
    assert_eq!(report.status(), 200);
    assert_eq!(
        app.get("/api/v1/search?q=GMP").await.status,
        200,
        "the slot is free again"
    );
}

/// A receiver as a stream of body chunks.
fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<axum::body::Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<axum::body::Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
