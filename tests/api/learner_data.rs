//! Learners own their data: their progress in their own time zone, their history (pages and
//! NDJSON, replayable on another kb), their erasure (nothing left in any table, old tokens
//! refused), their settings and a fit of their parameters. On whichever store the test binary
//! runs on.

use crate::helpers::{TestApp, TestResponse, db_rows, error_fields, kb_run};
use axum::http::Method;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

async fn batch(app: &TestApp, learner: &str, reviews: Vec<Value>) {
    let r = app
        .post(
            &format!("/api/v1/learners/{learner}/reviews/batch"),
            json!({ "reviews": reviews }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    for x in r.json()["results"].as_array().unwrap() {
        assert_eq!(x["status"], "applied", "{x}");
    }
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A review of `question` rated `rating`, `days_ago` days before now.
fn reviewed(id: &str, question: i64, rating: &str, ago: Duration) -> Value {
    json!({"review_id": id, "question_id": question, "rating": rating,
           "reviewed_at": at(Utc::now() - ago)})
}

async fn token(app: &TestApp, learner: &str) -> String {
    let r = app
        .post(&format!("/api/v1/learners/{learner}/tokens"), json!({}))
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()["token"].as_str().unwrap().to_string()
}

async fn as_learner(app: &TestApp, token: &str, method: Method, uri: &str) -> TestResponse {
    let bearer = format!("Bearer {token}");
    app.request(method, uri, &[("authorization", &bearer)], None)
        .await
}

#[tokio::test]
async fn a_learner_without_reviews_gets_an_empty_valid_answer() {
    let app = TestApp::seeded().await;
    let r = app.get("/api/v1/learners/nobody/stats?days=7").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let s = r.json();
    assert_eq!(s["days"].as_array().unwrap().len(), 7);
    assert!(
        s["days"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["reviews"] == 0)
    );
    assert_eq!(s["streak"], json!({"current": 0, "longest": 0}));
    assert_eq!(s["retention"], Value::Null);
    assert_eq!(
        s["cards"],
        json!({"new": 29, "learning": 0, "review": 0, "relearning": 0})
    );
    assert_eq!(s["forecast"].as_array().unwrap().len(), 30);
    assert_eq!(s["next_due_at"], Value::Null);
    assert_eq!(s["time_zone"], "UTC");
}

#[tokio::test]
async fn stats_count_days_in_the_learners_time_zone_with_streaks_and_retention() {
    let app = TestApp::seeded().await;
    let now = Utc::now();
    // Question 1 reviewed four days in a row ending today (early each time: not due);
    // questions 2 and 4 once, 10 and 15 days ago, then again today, when they were due:
    // question 2 forgotten, question 4 recalled.
    batch(
        &app,
        "ann",
        vec![
            reviewed("a1", 1, "good", Duration::days(3)),
            reviewed("a2", 1, "good", Duration::days(2)),
            reviewed("a3", 1, "hard", Duration::days(1)),
            reviewed("a4", 1, "good", Duration::minutes(5)),
            reviewed("b1", 2, "good", Duration::days(10)),
            reviewed("b2", 2, "again", Duration::minutes(4)),
            reviewed("d1", 4, "good", Duration::days(15)),
            reviewed("d2", 4, "good", Duration::minutes(3)),
        ],
    )
    .await;
    let s = app
        .get("/api/v1/learners/ann/stats?days=14&tz=Asia/Shanghai")
        .await
        .json();
    assert_eq!(s["time_zone"], "Asia/Shanghai");
    let days = s["days"].as_array().unwrap();
    assert_eq!(days.len(), 14);
    let total: i64 = days.iter().map(|d| d["reviews"].as_i64().unwrap()).sum();
    assert_eq!(total, 7, "the review 15 days ago is before the 14 days");
    let today = now
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
        .to_string();
    let last = days.last().unwrap();
    assert_eq!(last["date"], today);
    assert_eq!(last["reviews"], 3);
    assert_eq!(last["again"], 1);
    assert!(s["streak"]["current"].as_i64().unwrap() >= 3, "{s}");
    assert!(s["streak"]["longest"].as_i64().unwrap() >= s["streak"]["current"].as_i64().unwrap());
    assert_eq!(s["cards"]["relearning"], 1);
    assert_eq!(s["cards"]["new"], 26);
    // Two reviews of due cards, one forgotten.
    assert_eq!(s["retention"], 0.5, "{s}");
    let forecast: i64 = s["forecast"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["due"].as_i64().unwrap())
        .sum();
    assert!(forecast >= 1, "question 2 is due again soon: {s}");
    assert!(s["next_due_at"].is_string());
}

#[tokio::test]
async fn a_late_review_slotted_into_a_cards_past_changes_its_retention_as_in_time_order() {
    let app = TestApp::seeded().await;
    // Question 3 learnt 20 days ago and forgotten a minute ago, long after it fell due. Then
    // a review an hour ago arrives late (an offline device): recalled when due, it set the
    // next due date days ahead, so the review a minute ago came early and no longer counts
    // for retention, exactly as for a learner whose device sent all three in time order.
    let first = reviewed("c1", 3, "good", Duration::days(20));
    let late = reviewed("c2", 3, "good", Duration::hours(1));
    let last = reviewed("c3", 3, "again", Duration::minutes(1));
    batch(&app, "ann", vec![first.clone(), last.clone()]).await;
    let before = app.get("/api/v1/learners/ann/stats?days=30").await.json();
    assert_eq!(before["retention"], 0.0, "{before}");
    batch(&app, "ann", vec![late.clone()]).await;
    batch(&app, "bob", vec![first, late, last]).await;
    let ann = app.get("/api/v1/learners/ann/stats?days=30").await.json();
    let bob = app.get("/api/v1/learners/bob/stats?days=30").await.json();
    assert_eq!(ann["retention"], 1.0, "{ann}");
    for field in [
        "days",
        "retention",
        "cards",
        "forecast",
        "next_due_at",
        "streak",
    ] {
        assert_eq!(ann[field], bob[field], "{field}");
    }
}

#[tokio::test]
async fn bad_stats_parameters_name_the_field() {
    let app = TestApp::seeded().await;
    for (query, field) in [
        ("days=0", "days"),
        ("days=366", "days"),
        ("days=x", "days"),
        ("tz=Mars/Olympus", "tz"),
    ] {
        let r = app
            .get(&format!("/api/v1/learners/ann/stats?{query}"))
            .await;
        assert_eq!(
            error_fields(&r.assert_problem(422, "validation_failed")),
            [field],
            "{query}"
        );
    }
}

#[tokio::test]
async fn a_learners_own_token_sees_their_stats_and_not_anothers() {
    let app = TestApp::seeded().await;
    let t = token(&app, "ann").await;
    let r = as_learner(&app, &t, Method::GET, "/api/v1/learners/ann/stats").await;
    assert_eq!(r.status, 200);
    let r = as_learner(&app, &t, Method::GET, "/api/v1/learners/bob/stats").await;
    r.assert_problem(403, "forbidden");
}

#[tokio::test]
async fn the_history_pages_through_every_review_with_the_card_before_and_after() {
    let app = TestApp::seeded().await;
    batch(
        &app,
        "cy",
        vec![
            reviewed("c1", 3, "good", Duration::days(5)),
            reviewed("c2", 3, "again", Duration::days(1)),
            reviewed("c3", 4, "easy", Duration::days(2)),
        ],
    )
    .await;
    let mut items = Vec::new();
    let mut after = String::new();
    loop {
        let page = app
            .get(&format!("/api/v1/learners/cy/reviews?limit=2{after}"))
            .await
            .json();
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => after = format!("&after={c}"),
            None => break,
        }
    }
    assert_eq!(items.len(), 3);
    let c2 = items.iter().find(|i| i["review_id"] == "c2").unwrap();
    let c1 = items.iter().find(|i| i["review_id"] == "c1").unwrap();
    assert_eq!(c1["before"], Value::Null, "a card's first review");
    assert_eq!(c2["before"]["due"], c1["after"]["due"]);
    assert_eq!(c2["before"]["stability"], c1["after"]["stability"]);
    assert_eq!(c2["rating"], "again");
    assert!(
        c2["after"]["stability"].as_f64().unwrap() < c1["after"]["stability"].as_f64().unwrap()
    );
    // The same, streamed.
    let r = app
        .request(
            Method::GET,
            "/api/v1/learners/cy/reviews",
            &[("accept", "application/x-ndjson")],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), "application/x-ndjson");
    let lines: Vec<Value> = String::from_utf8(r.body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The stream goes card by card; the same reviews, the same states.
    let key = |v: &Value| v["review_id"].as_str().unwrap().to_string();
    let (mut lines, mut items) = (lines, items);
    lines.sort_by_key(key);
    items.sort_by_key(key);
    assert_eq!(lines, items);
}

#[tokio::test]
async fn a_history_fed_to_another_kb_rebuilds_the_same_cards() {
    let a = TestApp::seeded().await;
    let mut log = Vec::new();
    for (n, (q, rating, days)) in [
        (5, "good", 20),
        (5, "good", 9),
        (5, "again", 2),
        (6, "hard", 7),
        (6, "good", 1),
        (7, "easy", 3),
    ]
    .into_iter()
    .enumerate()
    {
        log.push(reviewed(&format!("r{n}"), q, rating, Duration::days(days)));
    }
    batch(&a, "dee", log).await;
    let r = a
        .request(
            Method::GET,
            "/api/v1/learners/dee/reviews",
            &[("accept", "application/x-ndjson")],
            None,
        )
        .await;
    let history: Vec<Value> = String::from_utf8(r.body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let b = TestApp::seeded().await;
    let replay: Vec<Value> = history
        .iter()
        .map(|h| {
            json!({"review_id": h["review_id"], "question_id": h["question_id"],
                   "rating": h["rating"], "reviewed_at": h["reviewed_at"]})
        })
        .collect();
    batch(&b, "dee", replay).await;
    for uri in [
        "/api/v1/learners/dee/due?limit=100",
        "/api/v1/learners/dee/stats?days=30",
    ] {
        assert_eq!(a.get(uri).await.json(), b.get(uri).await.json(), "{uri}");
    }
}

/// Every row of every table that mentions `needle`, as `table: row`.
fn rows_mentioning(app: &TestApp, needle: &str) -> Vec<String> {
    let tables = if crate::helpers::on_postgres() {
        db_rows(
            app.dir.path(),
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
        )
    } else {
        db_rows(
            app.dir.path(),
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )
    };
    assert!(tables.len() > 10, "{tables:?}");
    let mut found = Vec::new();
    for table in tables {
        let sql = if crate::helpers::on_postgres() {
            format!("SELECT CAST(t AS TEXT) FROM \"{table}\" t")
        } else {
            // Every column of every row, joined.
            let columns = db_rows(
                app.dir.path(),
                &format!("SELECT name FROM pragma_table_info('{table}')"),
            );
            // As hex: some columns hold bytes (stored response bodies).
            let parts: Vec<String> = columns
                .iter()
                .map(|c| format!("hex(CAST(\"{c}\" AS BLOB))"))
                .collect();
            format!("SELECT {} FROM \"{table}\"", parts.join(" || '|' || "))
        };
        let hex: String = needle.bytes().map(|b| format!("{b:02X}")).collect();
        for row in db_rows(app.dir.path(), &sql) {
            if row.contains(needle) || row.to_uppercase().contains(&hex) {
                found.push(format!("{table}: {row}"));
            }
        }
    }
    found
}

#[tokio::test]
async fn an_erased_learner_leaves_nothing_behind_and_their_old_tokens_are_refused() {
    let app = TestApp::seeded().await;
    let learner = "erase-me-7f3a";
    let t = token(&app, learner).await;
    batch(
        &app,
        learner,
        vec![
            reviewed("e1", 1, "good", Duration::days(2)),
            reviewed("e2", 2, "again", Duration::days(1)),
        ],
    )
    .await;
    let r = app
        .request(
            Method::PUT,
            &format!("/api/v1/learners/{learner}/settings"),
            &[("content-type", "application/json")],
            Some(
                json!({"time_zone": "Europe/Berlin"})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(r.status, 200);
    // An idempotent request of the learner's leaves a stored answer.
    let bearer = format!("Bearer {t}");
    let r = app
        .request(
            Method::POST,
            &format!("/api/v1/learners/{learner}/reviews"),
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
                ("idempotency-key", "erase-test-key"),
            ],
            Some(
                json!({"question_id": 3, "rating": "good"})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert!(!rows_mentioning(&app, learner).is_empty());

    let r = as_learner(
        &app,
        &t,
        Method::DELETE,
        &format!("/api/v1/learners/{learner}"),
    )
    .await;
    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(rows_mentioning(&app, learner), Vec::<String>::new());
    let r = as_learner(
        &app,
        &t,
        Method::GET,
        &format!("/api/v1/learners/{learner}/due"),
    )
    .await;
    r.assert_problem(401, "unauthorized");
    // A token issued afterwards works: the id is free for a new learner.
    let fresh = token(&app, learner).await;
    let r = as_learner(
        &app,
        &fresh,
        Method::GET,
        &format!("/api/v1/learners/{learner}/stats"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["cards"]["review"], 0);
}

#[tokio::test]
async fn the_command_line_erases_a_learner_too() {
    let app = TestApp::seeded().await;
    let learner = "cli-erased-91c";
    batch(
        &app,
        learner,
        vec![reviewed("x1", 1, "good", Duration::days(1))],
    )
    .await;
    let out = kb_run(app.dir.path(), &[], &["learners", "delete", learner]).await;
    assert!(out.contains("erased learner"), "{out}");
    assert_eq!(rows_mentioning(&app, learner), Vec::<String>::new());
}

#[tokio::test]
async fn settings_are_validated_and_shape_the_next_due_date() {
    let app = TestApp::seeded().await;
    let s = app.get("/api/v1/learners/eve/settings").await.json();
    assert_eq!(s["desired_retention"], 0.9);
    assert_eq!(s["time_zone"], "UTC");
    assert_eq!(s["parameters"]["source"], "default");
    assert_eq!(s["fit"], "idle");
    for (body, field) in [
        (json!({"desired_retention": 0.5}), "desired_retention"),
        (json!({"desired_retention": 0.99}), "desired_retention"),
        (json!({"maximum_interval_days": 0}), "maximum_interval_days"),
        (
            json!({"maximum_interval_days": 2.5}),
            "maximum_interval_days",
        ),
        (json!({"time_zone": "Nowhere/Land"}), "time_zone"),
    ] {
        let r = app
            .request(
                Method::PUT,
                "/api/v1/learners/eve/settings",
                &[("content-type", "application/json")],
                Some(body.to_string().into_bytes()),
            )
            .await;
        assert_eq!(
            error_fields(&r.assert_problem(422, "validation_failed")),
            [field]
        );
    }
    // Two learners review the same question the same way; one caps intervals at 2 days.
    let put = app
        .request(
            Method::PUT,
            "/api/v1/learners/eve/settings",
            &[("content-type", "application/json")],
            Some(
                // 2.0 is the whole number 2, as JSON Schema counts integers.
                json!({"desired_retention": 0.8, "maximum_interval_days": 2.0, "time_zone": "Asia/Tokyo"})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(put.status, 200);
    assert_eq!(put.json()["maximum_interval_days"], 2);
    for learner in ["eve", "fay"] {
        batch(
            &app,
            learner,
            vec![reviewed(
                &format!("{learner}1"),
                1,
                "easy",
                Duration::minutes(1),
            )],
        )
        .await;
    }
    let interval = |learner: &'static str| {
        let app = &app;
        async move {
            let h = app
                .get(&format!("/api/v1/learners/{learner}/reviews"))
                .await
                .json();
            let item = &h["items"][0];
            let due: DateTime<Utc> = item["after"]["due"].as_str().unwrap().parse().unwrap();
            let reviewed: DateTime<Utc> = item["reviewed_at"].as_str().unwrap().parse().unwrap();
            due - reviewed
        }
    };
    assert!(interval("eve").await <= Duration::days(2));
    assert!(interval("fay").await > Duration::days(2));
}

#[tokio::test]
async fn a_fit_runs_in_the_background_and_a_second_request_meanwhile_is_a_conflict() {
    let app = TestApp::seeded().await;
    // Twelve questions, each reviewed on a schedule over two months.
    let mut log = Vec::new();
    for q in 1..=12i64 {
        for (k, days) in [60, 55, 45, 30, 10].into_iter().enumerate() {
            let rating = if (q + k as i64) % 4 == 0 {
                "again"
            } else {
                "good"
            };
            log.push(reviewed(
                &format!("f{q}-{k}"),
                q,
                rating,
                Duration::days(days),
            ));
        }
    }
    batch(&app, "gus", log).await;
    let r = app
        .request(Method::POST, "/api/v1/learners/gus/settings/fit", &[], None)
        .await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    assert!(["queued", "running", "idle"].contains(&r.json()["fit"].as_str().unwrap()));
    let again = app
        .request(Method::POST, "/api/v1/learners/gus/settings/fit", &[], None)
        .await;
    // Either the first is still queued or running (409), or it was already done (202).
    assert!(
        again.status == 409 || again.status == 202,
        "{}",
        again.status
    );
    if again.status == 409 {
        again.assert_problem(409, "fit_in_progress");
    }
    let start = std::time::Instant::now();
    let settings = loop {
        let s = app.get("/api/v1/learners/gus/settings").await.json();
        if s["fit"] == "idle" {
            break s;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(60), "{s}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let p = &settings["parameters"];
    match p["source"].as_str().unwrap() {
        "fitted" => {
            assert_eq!(p["reviews"], 60);
            assert!(p["fitted_at"].is_string());
        }
        _ => assert!(p["note"].is_string(), "kept the defaults and said why: {p}"),
    }
    assert_eq!(p["values"].as_array().unwrap().len(), 21);
}

/// A learner's due list as titles and due times (ids may differ between knowledge bases).
async fn due_by_title(app: &TestApp, learner: &str) -> Vec<(String, Value)> {
    let r = app
        .get(&format!("/api/v1/learners/{learner}/due?limit=100"))
        .await;
    assert_eq!(r.status, 200);
    r.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["question"]["title"].as_str().unwrap().to_string(),
                i["due"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_knowledge_base_moved_with_its_learners_keeps_every_due_list_and_stats() {
    // From SQLite, whatever store this run is on, into this run's store.
    let a = TestApp::with(|c| c.store.database_url = None).await;
    let extra = a
        .create_question(crate::helpers::question("没有外部标识的问题 movable"))
        .await;
    let extra_id = extra["id"].as_i64().unwrap();
    let r = a
        .request(
            Method::PUT,
            "/api/v1/learners/hana/settings",
            &[("content-type", "application/json")],
            Some(
                json!({"desired_retention": 0.85, "maximum_interval_days": 400, "time_zone": "Asia/Shanghai"})
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await;
    assert_eq!(r.status, 200);
    batch(
        &a,
        "hana",
        vec![
            reviewed("h1", 1, "good", Duration::days(40)),
            reviewed("h2", 1, "hard", Duration::days(12)),
            reviewed("h3", extra_id, "again", Duration::days(3)),
            reviewed("h4", extra_id, "good", Duration::days(1)),
        ],
    )
    .await;
    batch(
        &a,
        "ivo",
        vec![
            reviewed("i1", 2, "easy", Duration::days(30)),
            reviewed("i2", 9, "good", Duration::days(2)),
        ],
    )
    .await;
    // Without the flag, nothing of the learners leaves.
    let plain = String::from_utf8(a.get("/api/v1/export").await.body).unwrap();
    assert!(!plain.contains("hana") && !plain.contains("\"learner\""));
    let export = a.get("/api/v1/export?with_learners=true").await;
    assert_eq!(export.status, 200);
    let text = String::from_utf8(export.body).unwrap();
    assert!(text.contains("\"learner\":\"hana\""));
    assert!(
        text.lines()
            .filter(|l| l.contains("\"title\""))
            .all(|l| l.contains("\"external_id\"")),
        "every question carries an identity the reviews can point at"
    );

    let b = TestApp::with(|c| c.store.no_seed = true).await;
    let r = b
        .request(
            Method::POST,
            "/api/v1/import",
            &[("content-type", "application/x-ndjson")],
            Some(text.clone().into_bytes()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let report = r.json();
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(report["reviews"], 6, "{report}");
    for learner in ["hana", "ivo"] {
        assert_eq!(
            due_by_title(&a, learner).await,
            due_by_title(&b, learner).await,
            "{learner}"
        );
        let uri = format!("/api/v1/learners/{learner}/stats?days=60");
        assert_eq!(
            a.get(&uri).await.json(),
            b.get(&uri).await.json(),
            "{learner}"
        );
        let uri = format!("/api/v1/learners/{learner}/settings");
        assert_eq!(
            a.get(&uri).await.json(),
            b.get(&uri).await.json(),
            "{learner}"
        );
    }
    // Importing the same file again changes nothing.
    let again = b
        .request(
            Method::POST,
            "/api/v1/import",
            &[("content-type", "application/x-ndjson")],
            Some(text.into_bytes()),
        )
        .await
        .json();
    assert_eq!(again["failed"], 0, "{again}");
    assert_eq!(
        due_by_title(&a, "hana").await,
        due_by_title(&b, "hana").await
    );
}
