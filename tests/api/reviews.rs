//! Reviews that merge: a card is the fold of its reviews in `reviewed_at` order, whatever order
//! they were uploaded in, one by one or in batches, from one device or several; the same
//! review twice counts once. On whichever store the test binary runs on.

use crate::helpers::{TestApp, TestResponse, db_rows, kb_run};
use axum::http::Method;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;

async fn review(app: &TestApp, learner: &str, body: Value) -> TestResponse {
    app.post(&format!("/api/v1/learners/{learner}/reviews"), body)
        .await
}

async fn batch(app: &TestApp, learner: &str, reviews: Vec<Value>) -> TestResponse {
    app.post(
        &format!("/api/v1/learners/{learner}/reviews/batch"),
        json!({ "reviews": reviews }),
    )
    .await
}

/// The batch's results as (status, code) pairs, checking they come in request order.
fn statuses(r: &TestResponse) -> Vec<(String, String)> {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let results = r.json()["results"].as_array().unwrap().clone();
    results
        .iter()
        .enumerate()
        .map(|(i, x)| {
            assert_eq!(x["index"], i, "{x}");
            (
                x["status"].as_str().unwrap().to_string(),
                x["code"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

const RATINGS: [&str; 4] = ["again", "hard", "good", "easy"];

fn applied(n: usize) -> Vec<(String, String)> {
    vec![("applied".to_string(), String::new()); n]
}

/// Every card of every learner as the database holds it, by learner and question.
fn cards(app: &TestApp) -> BTreeMap<(String, String), String> {
    db_rows(
        app.dir.path(),
        "SELECT learner || '|' || CAST(question_id AS TEXT) || '|' || CAST(stability AS TEXT)
                || ' ' || CAST(difficulty AS TEXT) || ' ' || CAST(due AS TEXT) || ' '
                || CAST(last_review AS TEXT) || ' ' || CAST(reps AS TEXT) || ' '
                || CAST(interval_days AS TEXT)
         FROM review_cards",
    )
    .into_iter()
    .map(|row| {
        let mut parts = row.splitn(3, '|');
        let learner = parts.next().unwrap().to_string();
        let question = parts.next().unwrap().to_string();
        ((learner, question), parts.next().unwrap().to_string())
    })
    .collect()
}

fn card(app: &TestApp, learner: &str, question: i64) -> String {
    cards(app)
        .remove(&(learner.to_string(), question.to_string()))
        .unwrap_or_else(|| panic!("{learner} has no card for question {question}"))
}

/// How many reviews the learner's card for the question counts.
fn reps(app: &TestApp, learner: &str, question: i64) -> i64 {
    assert!(learner.bytes().all(|b| b.is_ascii_alphanumeric()));
    let sql = format!(
        "SELECT CAST(reps AS TEXT) FROM review_cards
         WHERE learner = '{learner}' AND question_id = {question}"
    );
    db_rows(app.dir.path(), &sql)
        .first()
        .map_or(0, |r| r.parse().unwrap())
}

/// Each of the learner's reviews with the state it led to, in time order.
fn log(app: &TestApp, learner: &str) -> Vec<String> {
    assert!(learner.bytes().all(|b| b.is_ascii_alphanumeric()));
    let sql = format!(
        "SELECT CAST(question_id AS TEXT) || ' ' || CAST(reviewed_at AS TEXT) || ' ' || rating
                || ' ' || CAST(interval_days AS TEXT) || ' '
                || coalesce(CAST(stability AS TEXT), '-') || ' '
                || coalesce(CAST(difficulty AS TEXT), '-')
         FROM reviews WHERE learner = '{learner}'
         ORDER BY question_id, reviewed_at, rating"
    );
    db_rows(app.dir.path(), &sql)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Four reviews of question 3 over three days, as a phone and a laptop made them.
fn small_log() -> Vec<Value> {
    let start = Utc::now() - Duration::days(3);
    [
        ("phone-1", 0, "good"),
        ("laptop-1", 7, "again"),
        ("phone-2", 30, "hard"),
        ("laptop-2", 55, "easy"),
    ]
    .into_iter()
    .map(|(id, hours, rating)| {
        json!({
            "review_id": id,
            "question_id": 3,
            "rating": rating,
            "reviewed_at": rfc3339(start + Duration::hours(hours) + Duration::microseconds(123_457)),
        })
    })
    .collect()
}

fn permutations(items: &[Value]) -> Vec<Vec<Value>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = Vec::new();
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut p in permutations(&rest) {
            p.insert(0, first.clone());
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn every_upload_order_of_a_log_gives_the_same_card_and_history() {
    let app = TestApp::seeded().await;
    let orders = permutations(&small_log());
    assert_eq!(orders.len(), 24);
    let mut last_answers = Vec::new();
    for (i, order) in orders.iter().enumerate() {
        let mut last = Value::Null;
        for r in order {
            let res = review(&app, &format!("p{i}"), r.clone()).await;
            assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
            last = res.json();
        }
        assert_eq!(last["duplicate"], false);
        last_answers.push(last);
    }
    // The first order is the one the reviews were made in: each landed at the end.
    let reference = card(&app, "p0", 3);
    assert_eq!(reps(&app, "p0", 3), 4);
    let history = log(&app, "p0");
    assert_eq!(history.len(), 4);
    assert!(history.iter().all(|h| !h.ends_with(" -")), "{history:?}");
    for i in 1..orders.len() {
        let learner = format!("p{i}");
        assert_eq!(card(&app, &learner, 3), reference, "order {i}");
        assert_eq!(log(&app, &learner), history, "order {i}");
        assert_eq!(last_answers[i], last_answers[0], "order {i}");
    }
}

#[tokio::test]
async fn the_same_reviews_as_one_batch_in_any_order_give_the_same_card() {
    let app = TestApp::seeded().await;
    let log_in_order = small_log();
    for r in &log_in_order {
        assert_eq!(review(&app, "ref", r.clone()).await.status, 201);
    }
    let mut reversed = log_in_order.clone();
    reversed.reverse();
    let shuffled = vec![
        log_in_order[2].clone(),
        log_in_order[0].clone(),
        log_in_order[3].clone(),
        log_in_order[1].clone(),
    ];
    for (learner, reviews) in [("rev", reversed), ("mix", shuffled)] {
        let r = batch(&app, learner, reviews).await;
        assert_eq!(statuses(&r), applied(4));
        assert_eq!(card(&app, learner, 3), card(&app, "ref", 3), "{learner}");
        assert_eq!(log(&app, learner), log(&app, "ref"), "{learner}");
    }
    // Half in a batch, the rest one by one, the late ones last.
    let r = batch(
        &app,
        "half",
        vec![log_in_order[3].clone(), log_in_order[1].clone()],
    )
    .await;
    assert_eq!(statuses(&r), applied(2));
    for r in [&log_in_order[2], &log_in_order[0]] {
        assert_eq!(review(&app, "half", r.clone()).await.status, 201);
    }
    assert_eq!(card(&app, "half", 3), card(&app, "ref", 3));
}

#[tokio::test]
async fn a_review_sent_twice_with_its_review_id_is_applied_once() {
    let app = TestApp::seeded().await;
    let body = json!({"review_id": "r-1", "question_id": 5, "rating": "good",
                      "reviewed_at": rfc3339(Utc::now() - Duration::hours(2))});
    let first = review(&app, "ann", body.clone()).await;
    assert_eq!(first.status, 201);
    assert_eq!(first.json()["duplicate"], false);
    let again = review(&app, "ann", body.clone()).await;
    assert_eq!(again.status, 200, "a duplicate is no error");
    let mut expected = first.json();
    expected["duplicate"] = json!(true);
    assert_eq!(again.json(), expected, "the card as it was");
    // A retry the server dates itself is the same review too.
    let undated = json!({"review_id": "r-2", "question_id": 6, "rating": "hard"});
    assert_eq!(review(&app, "ann", undated.clone()).await.status, 201);
    assert_eq!(review(&app, "ann", undated).await.status, 200);
    // And in a batch, sent again or twice in it.
    let r = batch(&app, "ann", vec![body.clone(), body]).await;
    assert_eq!(
        statuses(&r),
        vec![("duplicate".to_string(), String::new()); 2]
    );
    assert_eq!(log(&app, "ann").len(), 2);
    assert_eq!(reps(&app, "ann", 5), 1);
}

#[tokio::test]
async fn a_review_without_an_id_that_repeats_a_stored_one_is_that_review() {
    let app = TestApp::seeded().await;
    let when = rfc3339(Utc::now() - Duration::days(1));
    let body = json!({"question_id": 7, "rating": "easy", "reviewed_at": when});
    assert_eq!(review(&app, "bea", body.clone()).await.status, 201);
    let again = review(&app, "bea", body.clone()).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["duplicate"], true);
    // With an id this time: still the review already stored (same time and rating).
    let named = json!({"review_id": "late-name", "question_id": 7, "rating": "easy",
                       "reviewed_at": when});
    assert_eq!(review(&app, "bea", named).await.status, 200);
    // Another rating at that instant is another review.
    let other = json!({"question_id": 7, "rating": "again", "reviewed_at": when});
    assert_eq!(review(&app, "bea", other).await.status, 201);
    let r = batch(&app, "bea", vec![body.clone(), body]).await;
    assert_eq!(
        statuses(&r),
        vec![("duplicate".to_string(), String::new()); 2]
    );
    assert_eq!(log(&app, "bea").len(), 2);
}

#[tokio::test]
async fn an_older_review_from_a_second_device_is_merged_into_the_card() {
    let app = TestApp::seeded().await;
    let now = Utc::now();
    let at = |days: i64| rfc3339(now - Duration::days(days));
    let phone = [(5, "good"), (1, "good")];
    let tablet = (3, "again");
    for (days, rating) in phone {
        let body = json!({"question_id": 9, "rating": rating, "reviewed_at": at(days)});
        assert_eq!(review(&app, "cy", body).await.status, 201);
    }
    // The tablet was offline: its review is older than the phone's latest.
    let late = json!({"question_id": 9, "rating": tablet.1, "reviewed_at": at(tablet.0)});
    let r = review(&app, "cy", late.clone()).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    // As if the three had been made on one device and sent in time order.
    let mut last = Value::Null;
    for (days, rating) in [phone[0], tablet, phone[1]] {
        let body = json!({"question_id": 9, "rating": rating, "reviewed_at": at(days)});
        let r = review(&app, "one", body).await;
        assert_eq!(r.status, 201);
        last = r.json();
    }
    assert_eq!(card(&app, "cy", 9), card(&app, "one", 9));
    assert_eq!(log(&app, "cy"), log(&app, "one"));
    assert_eq!(reps(&app, "cy", 9), 3);
    assert_eq!(
        r.json(),
        last,
        "the answer is the card as it stands, not the state right after the late review"
    );
}

#[tokio::test]
async fn a_review_id_sent_again_for_another_review_is_refused_and_the_first_stays() {
    let app = TestApp::seeded().await;
    let when = rfc3339(Utc::now() - Duration::hours(3));
    let first = json!({"review_id": "x1", "question_id": 4, "rating": "good", "reviewed_at": when});
    assert_eq!(review(&app, "dee", first).await.status, 201);
    let before = card(&app, "dee", 4);
    for other in [
        json!({"review_id": "x1", "question_id": 4, "rating": "again", "reviewed_at": when}),
        json!({"review_id": "x1", "question_id": 8, "rating": "good", "reviewed_at": when}),
        json!({"review_id": "x1", "question_id": 4, "rating": "good",
               "reviewed_at": rfc3339(Utc::now() - Duration::days(2))}),
    ] {
        review(&app, "dee", other)
            .await
            .assert_problem(409, "review_id_reused");
    }
    assert_eq!(card(&app, "dee", 4), before);
    assert_eq!(log(&app, "dee").len(), 1);
    // Ids are the learner's own: another learner may use the same one.
    let theirs = json!({"review_id": "x1", "question_id": 4, "rating": "again"});
    assert_eq!(review(&app, "eve", theirs).await.status, 201);
}

#[tokio::test]
async fn one_bad_review_in_a_batch_is_refused_with_its_code_and_the_others_are_applied() {
    let app = TestApp::seeded().await;
    let ago = |hours: i64| rfc3339(Utc::now() - Duration::hours(hours));
    assert_eq!(
        review(
            &app,
            "fay",
            json!({"review_id": "taken", "question_id": 1, "rating": "good"})
        )
        .await
        .status,
        201
    );
    let reviews = vec![
        json!({"question_id": 2, "rating": "good", "reviewed_at": ago(30)}),
        json!({"question_id": 999999, "rating": "good"}),
        json!({"question_id": 2, "rating": "perfect"}),
        json!({"question_id": 2, "rating": "good", "reviewed_at": "2999-01-01T00:00:00Z"}),
        json!({"question_id": 2, "rating": "good", "reviewed_at": "1500-01-01T00:00:00Z"}),
        json!("not a review"),
        json!({"question_id": 2, "rating": "good", "mood": "tired"}),
        json!({"question_id": 0, "rating": "good"}),
        json!({"review_id": "has space", "question_id": 2, "rating": "good"}),
        json!({"review_id": "taken", "question_id": 2, "rating": "good"}),
        json!({"question_id": 2, "rating": "hard", "reviewed_at": ago(2)}),
    ];
    let r = batch(&app, "fay", reviews).await;
    let got = statuses(&r);
    let refused = |code: &str| ("refused".to_string(), code.to_string());
    assert_eq!(
        got,
        vec![
            ("applied".to_string(), String::new()),
            refused("question_not_found"),
            refused("validation_failed"),
            refused("review_time_out_of_range"),
            refused("review_time_out_of_range"),
            refused("validation_failed"),
            refused("unknown_field"),
            refused("validation_failed"),
            refused("validation_failed"),
            refused("review_id_reused"),
            ("applied".to_string(), String::new()),
        ]
    );
    let results = r.json()["results"].clone();
    assert_eq!(results[2]["errors"][0]["field"], "rating");
    assert!(results[1]["detail"].as_str().unwrap().contains("999999"));
    assert!(results[0].get("code").is_none() && results[0].get("detail").is_none());
    // The same codes the single route answers with.
    review(
        &app,
        "fay",
        json!({"question_id": 999999, "rating": "good"}),
    )
    .await
    .assert_problem(404, "question_not_found");
    assert_eq!(
        log(&app, "fay").len(),
        3,
        "question 1 once, question 2 twice"
    );
    assert_eq!(reps(&app, "fay", 2), 2);
}

#[tokio::test]
async fn a_batch_takes_1000_reviews_in_one_body_and_refuses_1001_with_413() {
    let app = TestApp::seeded().await;
    let start = Utc::now() - Duration::days(300);
    // A year of a diligent learner: 100 reviews of each of ten questions, with long ids.
    let reviews: Vec<Value> = (0..1000)
        .map(|i: i64| {
            json!({
                "review_id": format!("{:0>64}", i),
                "question_id": 1 + i % 10,
                "rating": RATINGS[(i % 7 % 4) as usize],
                "reviewed_at": rfc3339(start + Duration::minutes(i * 397) + Duration::microseconds(i)),
            })
        })
        .collect();
    let body = json!({ "reviews": reviews }).to_string();
    assert!(body.len() < 1024 * 1024, "{} bytes", body.len());
    let mut shuffled = reviews.clone();
    shuffled.reverse();
    let r = batch(&app, "gus", shuffled).await;
    assert_eq!(statuses(&r), applied(1000));
    assert_eq!(log(&app, "gus").len(), 1000);
    assert_eq!(reps(&app, "gus", 1), 100);
    // The same reviews again: all duplicates, nothing changes.
    let before = cards(&app);
    let r = batch(&app, "gus", reviews.clone()).await;
    assert!(statuses(&r).iter().all(|(s, _)| s == "duplicate"));
    assert_eq!(cards(&app), before);

    let mut too_many = reviews;
    too_many.push(json!({"question_id": 1, "rating": "good"}));
    batch(&app, "gus", too_many)
        .await
        .assert_problem(413, "too_many_items");
    assert_eq!(log(&app, "gus").len(), 1000, "nothing of it was applied");
    let empty = batch(&app, "gus", Vec::new()).await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.json(), json!({"results": []}));
    app.post("/api/v1/learners/gus/reviews/batch", json!({}))
        .await
        .assert_problem(422, "validation_failed");
    app.post("/api/v1/learners/gus/reviews/batch", json!({"reviews": 5}))
        .await
        .assert_problem(422, "validation_failed");
    app.post(
        "/api/v1/learners/gus/reviews/batch",
        json!({"reviews": [], "extra": 1}),
    )
    .await
    .assert_problem(422, "unknown_field");
}

#[tokio::test]
async fn concurrent_uploads_from_three_devices_end_in_the_cards_of_all_their_reviews() {
    let app = TestApp::seeded().await;
    let now = Utc::now();
    // Twelve reviews of two questions, made alternately on two devices.
    let made: Vec<Value> = (0..12)
        .map(|i: i64| {
            json!({
                "review_id": format!("d{}-{i}", i % 2),
                "question_id": 11 + i / 2 % 2,
                "rating": RATINGS[(i % 4 + 2) as usize % 4],
                "reviewed_at": rfc3339(now - Duration::hours(300 - i * 23)),
            })
        })
        .collect();
    // And a tablet's backlog: forty reviews of seventeen other questions (a batch that, on
    // PostgreSQL, locks the learner's whole log rather than card by card).
    let backlog: Vec<Value> = (0..40)
        .map(|i: i64| {
            json!({
                "review_id": format!("tab-{i}"),
                "question_id": 13 + i % 17,
                "rating": RATINGS[(i % 3 + 1) as usize],
                "reviewed_at": rfc3339(now - Duration::hours(100 - i)),
            })
        })
        .collect();
    for r in made.iter().chain(&backlog) {
        assert_eq!(review(&app, "solo", r.clone()).await.status, 201);
    }
    let device = |d: i64| -> Vec<Value> {
        made.iter()
            .enumerate()
            .filter(|(i, _)| *i as i64 % 2 == d)
            .map(|(_, r)| r.clone())
            .rev()
            .collect()
    };
    // All at once: the first device one by one, newest first; the second in a batch, and
    // that batch again in the other order (both cards in both batches); the tablet's backlog
    // in a batch of its own.
    let singles = device(0)
        .into_iter()
        .map(|r| review(&app, "duo", r))
        .collect::<Vec<_>>();
    let mut again = device(1);
    again.reverse();
    let (singles, batched, repeated, tablet) = tokio::join!(
        futures_util::future::join_all(singles),
        batch(&app, "duo", device(1)),
        batch(&app, "duo", again),
        batch(&app, "duo", backlog.iter().rev().cloned().collect()),
    );
    assert!(singles.iter().all(|r| r.status == 201));
    assert_eq!(statuses(&tablet), applied(40));
    let mut outcomes: Vec<_> = statuses(&batched);
    outcomes.extend(statuses(&repeated));
    let applied_once = outcomes.iter().filter(|(s, _)| s == "applied").count();
    assert_eq!(applied_once, 6, "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|(s, _)| s == "applied" || s == "duplicate")
    );
    for q in 11..30 {
        assert_eq!(card(&app, "duo", q), card(&app, "solo", q), "question {q}");
    }
    assert_eq!(log(&app, "duo"), log(&app, "solo"));
}

#[tokio::test]
async fn one_review_id_sent_for_two_questions_at_once_is_applied_once_and_refused_once() {
    let app = TestApp::seeded().await;
    let (a, b) = tokio::join!(
        review(
            &app,
            "kim",
            json!({"review_id": "twice", "question_id": 13, "rating": "good"})
        ),
        review(
            &app,
            "kim",
            json!({"review_id": "twice", "question_id": 14, "rating": "good"})
        ),
    );
    let mut got = [a.status.as_u16(), b.status.as_u16()];
    got.sort_unstable();
    assert_eq!(got, [201, 409]);
    let refused = if a.status == 409 { a } else { b };
    refused.assert_problem(409, "review_id_reused");
    assert_eq!(log(&app, "kim").len(), 1);
}

#[tokio::test]
async fn the_batch_takes_the_keys_the_other_learner_routes_take() {
    let app = TestApp::seeded().await;
    let key = async |scope: &str| {
        kb_run(
            app.dir.path(),
            &[],
            &["keys", "create", "--scope", scope, "--name", "t"],
        )
        .await
        .lines()
        .next()
        .unwrap()
        .to_string()
    };
    let body = json!({"reviews": [{"question_id": 1, "rating": "good"}]})
        .to_string()
        .into_bytes();
    let send = |learner: &'static str, token: Option<String>| {
        let body = body.clone();
        let app = &app;
        async move {
            let bearer = token.map(|t| format!("Bearer {t}"));
            let mut headers = vec![("content-type", "application/json")];
            if let Some(b) = &bearer {
                headers.push(("authorization", b.as_str()));
            }
            app.anonymous(
                Method::POST,
                &format!("/api/v1/learners/{learner}/reviews/batch"),
                &headers,
                Some(body),
            )
            .await
        }
    };
    send("hal", None).await.assert_problem(401, "unauthorized");
    send("hal", Some(key("write").await))
        .await
        .assert_problem(403, "forbidden");
    let learners = key("learners").await;
    assert_eq!(send("hal", Some(learners.clone())).await.status, 200);
    let token = app
        .request(
            Method::POST,
            "/api/v1/learners/hal/tokens",
            &[
                ("content-type", "application/json"),
                ("authorization", &format!("Bearer {learners}")),
            ],
            Some(b"{}".to_vec()),
        )
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(send("hal", Some(token.clone())).await.status, 200);
    send("ivy", Some(token))
        .await
        .assert_problem(403, "forbidden");
    send("a.b", Some(learners))
        .await
        .assert_problem(400, "invalid_learner");
}
