use crate::helpers::{TestApp, TestResponse, db_rows, question};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};

fn ids(r: &TestResponse) -> Vec<i64> {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["question"]["id"].as_i64().unwrap())
        .collect()
}

fn distinct(v: &[i64]) -> bool {
    v.iter().collect::<HashSet<_>>().len() == v.len()
}

#[tokio::test]
async fn a_draw_returns_distinct_questions_that_match_the_filters() {
    let app = TestApp::seeded().await;
    let r = app.get("/api/v1/quiz").await;
    let drawn = ids(&r);
    assert_eq!(drawn.len(), 10, "count defaults to 10");
    assert!(distinct(&drawn));
    let item = &r.json()["items"][0];
    assert!(
        item["answers"].as_array().is_some_and(|a| !a.is_empty()),
        "flashcards carry answers"
    );
    assert!(item.get("choices").is_none() && item.get("ticket").is_none());

    let all = ids(&app.get("/api/v1/quiz?count=50").await);
    assert_eq!(all.len(), 29, "fewer than asked when fewer match");
    assert!(distinct(&all));

    let r = app.get("/api/v1/quiz?count=50&category=distributed").await;
    assert_eq!(ids(&r).len(), 6);
    assert!(
        r.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["question"]["category"]["slug"] == "distributed")
    );

    let r = app
        .get("/api/v1/quiz?count=50&tag=gc&difficulty=hard")
        .await;
    let items = r.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    for i in &items {
        assert_eq!(i["question"]["difficulty"], "hard");
        assert!(
            i["question"]["tags"]
                .as_array()
                .unwrap()
                .contains(&json!("gc"))
        );
    }
}

#[tokio::test]
async fn the_same_seed_draws_the_same_questions() {
    let app = TestApp::seeded().await;
    let a = ids(&app.get("/api/v1/quiz?count=5&seed=42").await);
    let b = ids(&app.get("/api/v1/quiz?count=5&seed=42").await);
    let c = ids(&app.get("/api/v1/quiz?count=5&seed=43").await);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

/// Pearson's chi-square statistic of observed counts against a uniform expectation.
fn chi_square(counts: &HashMap<i64, u32>, categories: usize, total: u32) -> f64 {
    let expected = f64::from(total) / categories as f64;
    let observed: f64 = counts
        .values()
        .map(|&o| (f64::from(o) - expected).powi(2) / expected)
        .sum();
    let unseen = (categories - counts.len()) as f64 * expected;
    observed + unseen
}

#[tokio::test]
async fn draws_are_uniform_over_the_matching_questions() {
    let app = TestApp::seeded().await;
    // Every question, through the single 'all' pool: 1,500 seeded draws of 4.
    let mut counts = HashMap::new();
    for seed in 0..1500 {
        for id in ids(&app.get(&format!("/api/v1/quiz?count=4&seed={seed}")).await) {
            *counts.entry(id).or_insert(0u32) += 1;
        }
    }
    let chi = chi_square(&counts, 29, 6000);
    // 28 degrees of freedom: the 0.1 % critical value is 56.89. Seeds are fixed, so the
    // outcome is deterministic; a biased draw would land far above it.
    assert!(chi < 56.89, "chi-square {chi:.1} over {counts:?}");

    // Two filters: slots of the smaller pool with rejection of the rest.
    let eligible = app
        .list_all("category=golang&difficulty=medium")
        .await
        .len();
    assert!(eligible >= 5);
    let mut counts = HashMap::new();
    for seed in 0..800 {
        for id in ids(&app
            .get(&format!(
                "/api/v1/quiz?count=1&category=golang&difficulty=medium&seed={seed}"
            ))
            .await)
        {
            *counts.entry(id).or_insert(0u32) += 1;
        }
    }
    assert_eq!(counts.len(), eligible);
    let chi = chi_square(&counts, eligible, 800);
    // df = eligible - 1 ≤ 12: the 0.1 % critical value for 12 is 32.9.
    assert!(chi < 32.9, "chi-square {chi:.1} over {counts:?}");
}

#[tokio::test]
async fn bad_quiz_input_is_a_clear_4xx() {
    let app = TestApp::seeded().await;
    for q in [
        "count=0",
        "count=51",
        "count=abc",
        "mode=essay",
        "seed=-1",
        "difficulty=extreme",
        "category=Bad%20Slug",
    ] {
        app.get(&format!("/api/v1/quiz?{q}"))
            .await
            .assert_problem(422, "validation_failed");
    }
    app.get("/api/v1/quiz?category=rust")
        .await
        .assert_problem(404, "category_not_found");
    app.get("/api/v1/quiz?tag=no-such-tag")
        .await
        .assert_problem(404, "tag_not_found");
    app.get("/api/v1/quiz?session=nope")
        .await
        .assert_problem(404, "quiz_session_not_found");
    app.get("/api/v1/quiz?tag=cap&difficulty=hard")
        .await
        .assert_problem(404, "quiz_no_questions");
    let empty = TestApp::empty().await;
    empty
        .get("/api/v1/quiz")
        .await
        .assert_problem(404, "quiz_no_questions");
    empty
        .post("/api/v1/quiz/sessions", json!({}))
        .await
        .assert_problem(404, "quiz_no_questions");
}

async fn new_session(app: &TestApp, body: Value) -> Value {
    let r = app.post("/api/v1/quiz/sessions", body).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

#[tokio::test]
async fn a_session_never_repeats_until_exhausted_then_answers_409() {
    let app = TestApp::seeded().await;
    let s = new_session(&app, json!({"category": "golang"})).await;
    assert_eq!(s["remaining"], 23);
    let token = s["token"].as_str().unwrap();
    assert!(token.len() >= 43, "at least 256 bits: {token}");
    assert!(s["expires_at"].is_string());
    let mut seen = Vec::new();
    loop {
        let r = app
            .get(&format!("/api/v1/quiz?count=5&session={token}"))
            .await;
        if r.status == 409 {
            r.assert_problem(409, "quiz_session_exhausted");
            break;
        }
        seen.extend(ids(&r));
    }
    assert_eq!(seen.len(), 23);
    assert!(distinct(&seen));
    let other = new_session(&app, json!({})).await;
    assert_ne!(other["token"], s["token"]);
    app.get(&format!("/api/v1/quiz?session={token}&category=golang"))
        .await
        .assert_problem(409, "quiz_session_conflict");
}

#[tokio::test]
async fn a_session_survives_a_restart_and_skips_deleted_questions() {
    let app = TestApp::seeded().await;
    let s = new_session(&app, json!({"category": "distributed"})).await;
    let token = s["token"].as_str().unwrap().to_string();
    let first = ids(&app
        .get(&format!("/api/v1/quiz?count=2&session={token}"))
        .await);
    let app = app.restart(|_| {}).await;
    let pool: Vec<i64> = app
        .list_all("category=distributed")
        .await
        .iter()
        .map(|q| q["id"].as_i64().unwrap())
        .collect();
    let deleted = *pool.iter().find(|id| !first.contains(id)).unwrap();
    assert_eq!(
        app.delete(&format!("/api/v1/questions/{deleted}"), None)
            .await
            .status,
        204
    );
    let rest = ids(&app
        .get(&format!("/api/v1/quiz?count=50&session={token}"))
        .await);
    assert_eq!(rest.len(), 3, "six minus two served minus one deleted");
    assert!(!rest.contains(&deleted));
    assert!(rest.iter().all(|id| !first.contains(id)));
    app.get(&format!("/api/v1/quiz?session={token}"))
        .await
        .assert_problem(409, "quiz_session_exhausted");
}

#[tokio::test]
async fn an_ended_session_is_gone() {
    let app = TestApp::seeded().await;
    let s = new_session(&app, json!({"tag": "gc"})).await;
    assert_eq!(s["remaining"], 7);
    let token = s["token"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/api/v1/quiz/sessions/{token}"), None)
            .await
            .status,
        204
    );
    app.get(&format!("/api/v1/quiz?session={token}"))
        .await
        .assert_problem(404, "quiz_session_not_found");
    app.delete(&format!("/api/v1/quiz/sessions/{token}"), None)
        .await
        .assert_problem(404, "quiz_session_not_found");
    app.post("/api/v1/quiz/sessions", json!({"category": "nope"}))
        .await
        .assert_problem(404, "category_not_found");
    app.post("/api/v1/quiz/sessions", json!({"colour": "red"}))
        .await
        .assert_problem(422, "unknown_field");
}

async fn grade(app: &TestApp, ticket: &str, choice: &str) -> TestResponse {
    app.post(
        "/api/v1/quiz/answers",
        json!({"ticket": ticket, "choice_id": choice}),
    )
    .await
}

#[tokio::test]
async fn multiple_choice_has_four_options_and_exactly_one_is_right() {
    let app = TestApp::seeded().await;
    let r = app.get("/api/v1/quiz?mode=choice&count=5&seed=7").await;
    let items = r.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 5);
    for item in &items {
        let choices = item["choices"].as_array().unwrap();
        assert_eq!(choices.len(), 4);
        let ids: HashSet<&str> = choices.iter().map(|c| c["id"].as_str().unwrap()).collect();
        let texts: HashSet<&str> = choices
            .iter()
            .map(|c| c["text"].as_str().unwrap())
            .collect();
        assert_eq!((ids.len(), texts.len()), (4, 4), "no duplicates");
        assert!(ids.iter().all(|id| id.len() == 16), "ids all look alike");
        assert!(
            item.get("answers").is_none(),
            "the answer is not given away"
        );
        let ticket = item["ticket"].as_str().unwrap();
        let mut right = Vec::new();
        for id in &ids {
            let g = grade(&app, ticket, id).await;
            assert_eq!(g.status, 200);
            let g = g.json();
            assert!(g["correct_choice_id"].is_string() && g["answer"].is_string());
            if g["correct"] == true {
                right.push(id.to_string());
            }
            assert!(ids.contains(g["correct_choice_id"].as_str().unwrap()));
        }
        assert_eq!(right.len(), 1, "exactly one option is right");
        let q = app
            .get(&format!("/api/v1/questions/{}", item["question"]["id"]))
            .await
            .json();
        let own = q["answers"][0]["body"].as_str().unwrap();
        let right_text = choices
            .iter()
            .find(|c| c["id"] == right[0].as_str())
            .unwrap()["text"]
            .as_str()
            .unwrap();
        assert!(
            own.contains(right_text.trim_end_matches('…')),
            "the right option is an excerpt of its own answer"
        );
        let g = grade(&app, ticket, &right[0]).await.json();
        assert_eq!(g["answer"], own);
    }
}

#[tokio::test]
async fn a_forged_or_altered_ticket_is_refused() {
    let app = TestApp::seeded().await;
    let item = app
        .get("/api/v1/quiz?mode=choice&count=1&seed=3")
        .await
        .json()["items"][0]
        .clone();
    let ticket = item["ticket"].as_str().unwrap();
    let choice = item["choices"][0]["id"].as_str().unwrap();
    let (payload, sig) = ticket.split_once('.').unwrap();
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&engine.decode(payload).unwrap()).unwrap();
    assert!(claims.get("correct").is_none());
    claims["q"] = json!(1);
    let altered = format!("{}.{sig}", engine.encode(claims.to_string()));
    grade(&app, &altered, choice)
        .await
        .assert_problem(404, "invalid_ticket");
    grade(&app, "garbage", choice)
        .await
        .assert_problem(404, "invalid_ticket");
    grade(
        &app,
        &format!("{payload}.{}", engine.encode([0u8; 32])),
        choice,
    )
    .await
    .assert_problem(404, "invalid_ticket");
    grade(&app, ticket, "0000000000000000")
        .await
        .assert_problem(404, "choice_not_found");
    app.post("/api/v1/quiz/answers", json!({}))
        .await
        .assert_problem(422, "validation_failed");
}

#[tokio::test]
async fn a_tiny_knowledge_base_offers_fewer_choices_or_a_clear_409() {
    let app = TestApp::empty().await;
    let mut q = question("only one");
    q["answers"] = json!([{"body": "the one answer"}]);
    app.create_question(q).await;
    app.create_question(question("no answer at all")).await;
    app.get("/api/v1/quiz?mode=choice")
        .await
        .assert_problem(409, "quiz_too_few_questions");
    let mut q = question("second");
    q["answers"] = json!([{"body": "another answer"}]);
    app.create_question(q).await;
    let r = app.get("/api/v1/quiz?mode=choice&count=10").await.json();
    let items = r["items"].as_array().unwrap();
    assert_eq!(
        items.len(),
        2,
        "only questions with answers are drawn for multiple choice"
    );
    assert!(
        items
            .iter()
            .all(|i| i["choices"].as_array().unwrap().len() == 2)
    );
}

async fn review(app: &TestApp, learner: &str, body: Value) -> TestResponse {
    app.post(&format!("/api/v1/learners/{learner}/reviews"), body)
        .await
}

#[tokio::test]
async fn better_ratings_schedule_longer_intervals() {
    let app = TestApp::seeded().await;
    let mut intervals = Vec::new();
    for (qid, rating) in [(1, "again"), (2, "hard"), (3, "good"), (4, "easy")] {
        let r = review(&app, "alice", json!({"question_id": qid, "rating": rating})).await;
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        let r = r.json();
        assert_eq!(r["question_id"], qid);
        assert!(r["due"].is_string() && r["stability"].as_f64().unwrap() > 0.0);
        intervals.push(r["interval_days"].as_f64().unwrap());
    }
    assert!(intervals.windows(2).all(|w| w[0] < w[1]), "{intervals:?}");
}

#[tokio::test]
async fn due_lists_the_most_overdue_first_then_new_questions() {
    let app = TestApp::seeded().await;
    let ago = |days: i64| (chrono::Utc::now() - chrono::Duration::days(days)).to_rfc3339();
    review(
        &app,
        "bob",
        json!({"question_id": 5, "rating": "good", "reviewed_at": ago(10)}),
    )
    .await;
    review(
        &app,
        "bob",
        json!({"question_id": 7, "rating": "good", "reviewed_at": ago(40)}),
    )
    .await;
    review(&app, "bob", json!({"question_id": 1, "rating": "easy"})).await;
    let r = app.get("/api/v1/learners/bob/due?limit=5").await.json();
    let items = r["items"].as_array().unwrap();
    let order: Vec<i64> = items
        .iter()
        .map(|i| i["question"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        order,
        vec![7, 5, 2, 3, 4],
        "overdue (most first), then never reviewed; 1 is not due"
    );
    assert!(items[0]["due"].is_string() && items[2]["due"].is_null());
    let other = app.get("/api/v1/learners/carol/due?limit=3").await.json();
    let order: Vec<i64> = other["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["question"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(order, vec![1, 2, 3], "learners are independent");
}

#[tokio::test]
async fn bad_review_input_is_a_clear_4xx() {
    let app = TestApp::seeded().await;
    for learner in ["a%20b", &"x".repeat(65), "%C3%A9", "a.b"] {
        review(&app, learner, json!({"question_id": 1, "rating": "good"}))
            .await
            .assert_problem(400, "invalid_learner");
        app.get(&format!("/api/v1/learners/{learner}/due"))
            .await
            .assert_problem(400, "invalid_learner");
    }
    for body in [
        json!({"question_id": 1, "rating": "perfect"}),
        json!({"question_id": 0, "rating": "good"}),
        json!({"question_id": "1", "rating": "good"}),
        json!({"question_id": 1.5, "rating": "good"}),
        json!({"rating": "good"}),
        json!({"question_id": 1, "rating": "good", "reviewed_at": "tomorrow"}),
    ] {
        review(&app, "dave", body)
            .await
            .assert_problem(422, "validation_failed");
    }
    review(&app, "dave", json!({"question_id": 999, "rating": "good"}))
        .await
        .assert_problem(404, "question_not_found");
    // JSON Schema counts 2.0 as an integer; so does the server.
    let r = review(&app, "dave", json!({"question_id": 2.0, "rating": "good"})).await;
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["question_id"], 2);
    // Far in the future or absurdly old is refused, and nothing is stored.
    for when in [
        "2999-01-01T00:00:00Z",
        "0000-01-01T00:00:00+23:59",
        "1500-06-01T00:00:00Z",
    ] {
        review(
            &app,
            "dave",
            json!({"question_id": 3, "rating": "good", "reviewed_at": when}),
        )
        .await
        .assert_problem(409, "review_time_out_of_range");
    }
    let due = app.get("/api/v1/learners/dave/due?limit=100").await.json();
    assert!(
        due["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["question"]["id"] == 3 && i["due"].is_null()),
        "question 3 was never reviewed"
    );
    // A client clock running a little ahead counts as now.
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc3339();
    let r = review(
        &app,
        "dave",
        json!({"question_id": 1, "rating": "good", "reviewed_at": soon}),
    )
    .await;
    assert_eq!(r.status, 201);
    assert!(r.json()["due"].as_str().unwrap() < "2100");
    // A review dated before the learner's latest one of the same question is no conflict: it
    // takes its place in the card's history (tests/api/reviews.rs).
    let earlier = (chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339();
    let r = review(
        &app,
        "dave",
        json!({"question_id": 1, "rating": "again", "reviewed_at": earlier}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    app.get("/api/v1/learners/dave/due?limit=0")
        .await
        .assert_problem(422, "validation_failed");
    app.get("/api/v1/learners/dave/due?limit=101")
        .await
        .assert_problem(422, "validation_failed");
}

#[tokio::test]
async fn an_expired_session_is_not_found_and_a_draw_extends_the_expiry() {
    let app = TestApp::seeded().await;
    let s = new_session(&app, json!({})).await;
    let token = s["token"].as_str().unwrap();
    let created_expiry = s["expires_at"].as_str().unwrap().to_string();
    ids(&app
        .get(&format!("/api/v1/quiz?count=1&session={token}"))
        .await);
    // Six hours and a second pass without a draw: age the session in the database itself.
    let expiry: i64 = db_rows(
        app.dir.path(),
        "SELECT CAST(expires_at AS TEXT) FROM quiz_sessions",
    )[0]
    .parse()
    .unwrap();
    let created = chrono::DateTime::parse_from_rfc3339(&created_expiry)
        .unwrap()
        .timestamp_micros();
    assert!(expiry >= created, "a draw pushes the expiry forward");
    db_rows(
        app.dir.path(),
        "UPDATE quiz_sessions SET expires_at = expires_at - 21601000000",
    );
    app.get(&format!("/api/v1/quiz?session={token}"))
        .await
        .assert_problem(404, "quiz_session_not_found");
}

#[tokio::test]
async fn choice_draws_racing_answer_rewrites_never_fail_with_a_500() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;
    let app = TestApp::seeded().await;
    let router = app.router.clone();
    // Another client deletes and re-adds the answers of questions while draws run.
    let writer = tokio::spawn(async move {
        for i in 0..120 {
            let id = 1 + i % 29;
            for answers in [json!(null), json!([{"body": format!("重写的答案 {i}")}])] {
                let req = Request::builder()
                    .method("PATCH")
                    .uri(format!("/api/v1/questions/{id}"))
                    .header(
                        "authorization",
                        format!("Bearer {}", crate::helpers::ADMIN_KEY),
                    )
                    .header("content-type", "application/json")
                    .body(Body::from(json!({ "answers": answers }).to_string()))
                    .unwrap();
                let res = router.clone().oneshot(req).await.unwrap();
                assert_eq!(res.status(), 200);
            }
        }
    });
    for _ in 0..150 {
        let r = app.get("/api/v1/quiz?mode=choice&count=10").await;
        assert!(
            r.status == 200 || r.status == 404,
            "{}: {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        if r.status == 200 {
            for item in r.json()["items"].as_array().unwrap() {
                assert!(item["choices"].as_array().unwrap().len() >= 2);
            }
        }
    }
    writer.await.unwrap();
}
