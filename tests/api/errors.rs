use crate::helpers::{TestApp, question};
use axum::http::Method;
use serde_json::json;

#[tokio::test]
async fn malformed_json_is_400_invalid_json() {
    let app = TestApp::empty().await;
    for body in [
        &b"{"[..],
        b"{\"title\": }",
        b"",
        b"{} trailing",
        b"\xff\xfe",
    ] {
        let r = app
            .request(
                Method::POST,
                "/api/v1/questions",
                &[("content-type", "application/json")],
                Some(body.to_vec()),
            )
            .await;
        r.assert_problem(400, "invalid_json");
    }
}

#[tokio::test]
async fn unknown_fields_are_422_naming_the_field() {
    let app = TestApp::empty().await;
    let mut q = question("t");
    q["colour"] = json!("red");
    let p = app
        .post("/api/v1/questions", q)
        .await
        .assert_problem(422, "unknown_field");
    assert_eq!(p["errors"][0]["field"], "colour");
    let p = app
        .post(
            "/api/v1/questions",
            json!({"title": "t", "category": "golang", "answers": [{"body": "b", "x": 1}]}),
        )
        .await
        .assert_problem(422, "unknown_field");
    assert_eq!(p["errors"][0]["field"], "answers[0].x");
}

#[tokio::test]
async fn wrong_types_and_invalid_values_are_422_with_per_field_errors() {
    let app = TestApp::empty().await;
    let p = app
        .post(
            "/api/v1/questions",
            json!({"title": 5, "category": "golang"}),
        )
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(p["errors"][0]["field"], "title");
    let p = app
        .post("/api/v1/questions", json!({}))
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(p["errors"].as_array().unwrap().len(), 2);
    for bad in [json!([]), json!(null), json!("x")] {
        app.post("/api/v1/questions", bad)
            .await
            .assert_problem(422, "validation_failed");
    }
    // serde reads a struct from an array too: `[]` must not pass as an empty patch.
    let seeded = TestApp::seeded().await;
    for path in ["/api/v1/questions/1", "/api/v1/answers/1"] {
        seeded
            .patch(path, json!([]), None)
            .await
            .assert_problem(422, "validation_failed");
    }
    let too_many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
    let p = app
        .post(
            "/api/v1/questions",
            json!({"title": "t", "category": "golang", "tags": too_many, "difficulty": "extreme"}),
        )
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(crate::helpers::error_fields(&p), ["tags", "difficulty"]);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let app = TestApp::empty().await;
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/jsonx"),
    ] {
        let headers: Vec<(&str, &str)> = ct.map(|c| ("content-type", c)).into_iter().collect();
        let r = app
            .request(
                Method::POST,
                "/api/v1/questions",
                &headers,
                Some(question("t").to_string().into_bytes()),
            )
            .await;
        r.assert_problem(415, "unsupported_media_type");
    }
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_413() {
    let app = TestApp::empty().await;
    let huge = json!({"title": "t", "category": "golang", "body": "x".repeat(1024 * 1024 + 10)});
    app.post("/api/v1/questions", huge)
        .await
        .assert_problem(413, "payload_too_large");
}

#[tokio::test]
async fn unknown_ids_and_routes_are_404_and_bad_ids_are_400() {
    let app = TestApp::empty().await;
    app.get("/api/v1/questions/12345")
        .await
        .assert_problem(404, "question_not_found");
    app.get("/api/v1/answers/12345")
        .await
        .assert_problem(404, "answer_not_found");
    app.get("/api/v1/nothing-here")
        .await
        .assert_problem(404, "not_found");
    app.get("/nowhere").await.assert_problem(404, "not_found");
    app.get("/static/nothing.js")
        .await
        .assert_problem(404, "not_found");
    for bad in [
        "0",
        "-1",
        "abc",
        "1.5",
        "99999999999999999999",
        "%00",
        "%F0%9F%98%80",
    ] {
        app.get(&format!("/api/v1/questions/{bad}"))
            .await
            .assert_problem(400, "invalid_id");
        app.delete(&format!("/api/v1/answers/{bad}"), None)
            .await
            .assert_problem(400, "invalid_id");
    }
}

#[tokio::test]
async fn a_wrong_method_is_405_with_allow() {
    let app = TestApp::empty().await;
    let r = app
        .request(Method::PUT, "/api/v1/questions/1", &[], None)
        .await;
    r.assert_problem(405, "method_not_allowed");
    let allow = r.header("allow");
    for m in ["GET", "PATCH", "DELETE"] {
        assert!(allow.contains(m), "{allow}");
    }
    let r = app
        .request(Method::DELETE, "/api/v1/questions", &[], None)
        .await;
    r.assert_problem(405, "method_not_allowed");
    assert!(r.header("allow").contains("POST"));
}

#[tokio::test]
async fn bad_query_parameters_are_4xx_never_5xx() {
    let app = TestApp::seeded().await;
    for q in [
        "limit=0",
        "limit=101",
        "limit=abc",
        "limit=-5",
        "difficulty=extreme",
        "category=Not%20A%20Slug",
        "tag=%00",
    ] {
        app.get(&format!("/api/v1/questions?{q}"))
            .await
            .assert_problem(422, "validation_failed");
    }
    for c in ["garbage", "%00", "-1", "1.5", "9999999999999999999"] {
        app.get(&format!("/api/v1/questions?cursor={c}"))
            .await
            .assert_problem(400, "invalid_cursor");
    }
    // Unknown parameters are ignored, as cache busters must be.
    assert_eq!(app.get("/api/v1/questions?_=123").await.status, 200);
}

#[tokio::test]
async fn hostile_input_never_panics_or_answers_500() {
    let app = TestApp::empty().await;
    let nasty = [
        "\u{0}",
        "a\u{0}b",
        "\u{202e}evil",
        "\u{200b}",
        "\u{feff}",
        "😀".repeat(400).as_str().to_owned().leak(),
        "'; DROP TABLE questions; --",
        "<script>alert(1)</script>",
        "\u{10ffff}",
        "e\u{301}\u{301}\u{301}",
        "a".repeat(10_000).leak(),
    ];
    for s in nasty {
        for body in [
            json!({"title": s, "category": "golang"}),
            json!({"title": "t", "category": s}),
            json!({"title": "t", "category": "golang", "tags": [s]}),
            json!({"title": "t", "category": "golang", "body": s, "answers": [{"body": s}]}),
        ] {
            let r = app.post("/api/v1/questions", body).await;
            assert!(
                r.status.is_success() || r.status.is_client_error(),
                "{} for {s:?}",
                r.status
            );
        }
    }
    // Nothing it accepted corrupted anything: every question still reads back.
    for q in app.list_all("limit=100").await {
        assert_eq!(
            app.get(&format!("/api/v1/questions/{}", q["id"]))
                .await
                .status,
            200
        );
    }
    // Nesting deeper than the parser's recursion limit is refused, not a stack overflow.
    let deep = format!("{{\"title\": {}", "[".repeat(100_000));
    let r = app
        .request(
            Method::POST,
            "/api/v1/questions",
            &[("content-type", "application/json")],
            Some(deep.into_bytes()),
        )
        .await;
    assert!(r.status.is_client_error(), "{}", r.status);
    assert_eq!(r.header("content-type"), "application/problem+json");
    let r = app
        .request(
            Method::GET,
            "/api/v1/questions/1",
            &[("if-none-match", "\"unterminated")],
            None,
        )
        .await;
    assert_eq!(
        r.status, 200,
        "a garbled If-None-Match matches nothing: the full response"
    );
}

#[tokio::test]
async fn sql_in_text_is_stored_as_text() {
    let app = TestApp::empty().await;
    let q = app
        .create_question(question("'); DELETE FROM questions; --"))
        .await;
    assert_eq!(q["title"], "'); DELETE FROM questions; --");
    assert_eq!(app.list_all("").await.len(), 1);
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_echoes_the_clients() {
    let app = TestApp::empty().await;
    let r = app.get("/healthz").await;
    assert!(!r.header("x-request-id").is_empty());
    let r = app
        .request(
            Method::GET,
            "/api/v1/questions/999",
            &[("x-request-id", "trace-me-42")],
            None,
        )
        .await;
    assert_eq!(r.header("x-request-id"), "trace-me-42");
}

#[tokio::test]
async fn request_ids_the_server_makes_differ_from_request_to_request() {
    let app = TestApp::empty().await;
    let a = app.get("/healthz").await.header("x-request-id").to_string();
    let b = app.get("/healthz").await.header("x-request-id").to_string();
    assert_ne!(a, b);
    assert_eq!(a.len(), 36, "{a}");
}

#[tokio::test]
async fn a_response_varies_on_origin_and_encoding_even_when_the_request_sent_neither() {
    // A shared cache must not hand the answer to a plain request to a browser's cross-origin
    // one (or a gzip client), though the plain request skipped CORS and compression.
    let app = TestApp::seeded().await;
    let r = app.get("/api/v1/questions/1").await;
    let vary: Vec<String> = r
        .headers
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let vary = vary.join(", ");
    for name in ["origin", "accept-encoding"] {
        assert!(vary.contains(name), "vary: {vary}");
    }
    assert_eq!(r.header("x-content-type-options"), "nosniff");
    assert!(r.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn the_stores_reachability_is_what_its_last_probe_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = kb::store::Store::open(&dir.path().join("kb.db"))
        .await
        .unwrap();
    assert!(store.reachable());
    assert!(store.probe().await);
    store.close().await;
    assert!(store.reachable(), "nothing has asked since");
    assert!(!store.probe().await, "a closed database does not answer");
    assert!(!store.reachable(), "and the answer is remembered");
}

#[tokio::test]
async fn health_and_readiness_answer_ok() {
    let app = TestApp::empty().await;
    assert_eq!(app.get("/healthz").await.json(), json!({"status": "ok"}));
    assert_eq!(app.get("/readyz").await.json(), json!({"status": "ok"}));
}

#[tokio::test]
async fn large_responses_are_compressed_when_the_client_accepts_it() {
    let app = TestApp::seeded().await;
    let r = app
        .request(
            Method::GET,
            "/api/v1/questions?limit=100",
            &[("accept-encoding", "gzip")],
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), "gzip");
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let app = TestApp::with(|c| {
        c.server.cors_origins = kb::config::Origins::Only(vec!["https://study.example".into()])
    })
    .await;
    let ok = app
        .request(
            Method::GET,
            "/healthz",
            &[("origin", "https://study.example")],
            None,
        )
        .await;
    assert_eq!(
        ok.header("access-control-allow-origin"),
        "https://study.example"
    );
    let other = app
        .request(
            Method::GET,
            "/healthz",
            &[("origin", "https://evil.example")],
            None,
        )
        .await;
    assert!(other.headers.get("access-control-allow-origin").is_none());
    let preflight = app
        .request(
            Method::OPTIONS,
            "/api/v1/questions",
            &[
                ("origin", "https://study.example"),
                ("access-control-request-method", "POST"),
            ],
            None,
        )
        .await;
    assert!(preflight.status.is_success());
    assert!(
        preflight
            .header("access-control-allow-methods")
            .contains("POST")
            || preflight.header("access-control-allow-methods") == "*"
    );
}

#[tokio::test]
async fn an_entity_tag_matches_only_as_the_server_spells_it() {
    let app = TestApp::seeded().await;
    for other_spelling in ["\"q16v01\"", "\"q16v+1\"", "\"q016v1\"", "W/\"q16v1\""] {
        app.patch(
            "/api/v1/questions/16",
            json!({"difficulty": "hard"}),
            Some(other_spelling),
        )
        .await
        .assert_problem(412, "precondition_failed");
    }
    let r = app
        .patch(
            "/api/v1/questions/16",
            json!({"difficulty": "hard"}),
            Some("\"q16v1\""),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = app
        .anonymous(
            Method::GET,
            "/api/v1/questions/16",
            &[("if-none-match", "\"q16v02\"")],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "If-None-Match compares the opaque tag too");
}

#[tokio::test]
async fn a_path_parameter_that_cannot_be_decoded_is_a_problem_not_plain_text() {
    let app = TestApp::seeded().await;
    app.get("/api/v1/categories/%ff")
        .await
        .assert_problem(400, "invalid_path");
    app.request(Method::DELETE, "/api/v1/quiz/sessions/%ff", &[], None)
        .await
        .assert_problem(400, "invalid_path");
    app.get("/api/v1/learners/%ff/due")
        .await
        .assert_problem(400, "invalid_learner");
}

#[tokio::test]
async fn api_responses_forbid_sniffing_and_the_docs_page_forbids_framing_and_foreign_scripts() {
    let app = TestApp::seeded().await;
    for uri in [
        "/api/v1/questions/16",
        "/api/v1/questions/99999",
        "/healthz",
    ] {
        let r = app.get(uri).await;
        assert_eq!(r.header("x-content-type-options"), "nosniff", "{uri}");
    }
    let r = app.get("/docs/").await;
    assert_eq!(r.status, 200);
    let csp = r.header("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("script-src 'self' 'unsafe-inline'"), "{csp}");
}
