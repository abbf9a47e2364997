//! `/mcp`, the Model Context Protocol endpoint, spoken by hand (JSON-RPC over a POST, as the
//! Streamable HTTP transport has it): the tools, their arguments' errors, and the REST API's
//! keys, scopes and limits applying to them. With `KB_TEST_MCP_PYTHON` (a Python with PyPI's
//! `mcp`, as `.ci/mcp-client` prints), the official client drives a running kb too.

use crate::helpers::{TestApp, create_key};
use axum::http::Method;
use serde_json::{Value, json};

const ACCEPT: &str = "application/json, text/event-stream";

/// One JSON-RPC request to `/mcp` with `key` (none: anonymous); the HTTP status and the
/// JSON-RPC answer.
async fn rpc(app: &TestApp, key: Option<&str>, method: &str, params: Value) -> (u16, Value) {
    let bearer = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![
        ("host", "kb.example.com"),
        ("content-type", "application/json"),
        ("accept", ACCEPT),
        ("mcp-protocol-version", "2025-06-18"),
    ];
    if let Some(b) = &bearer {
        headers.push(("authorization", b));
    }
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let r = app
        .anonymous(
            Method::POST,
            "/mcp",
            &headers,
            Some(body.to_string().into_bytes()),
        )
        .await;
    let value = serde_json::from_slice(&r.body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&r.body).into_owned()));
    (r.status.as_u16(), value)
}

/// A tool call's result (a protocol error fails the test).
async fn call(app: &TestApp, key: Option<&str>, tool: &str, args: Value) -> Value {
    let (status, answer) = rpc(
        app,
        key,
        "tools/call",
        json!({"name": tool, "arguments": args}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["error"].is_null(), "a protocol error: {answer}");
    answer["result"].clone()
}

fn text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn an_assistant_initialises_and_lists_tools_with_schemas_and_descriptions() {
    let app = TestApp::seeded().await;
    let (status, init) = rpc(
        &app,
        None,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "test", "version": "1"}}),
    )
    .await;
    assert_eq!(status, 200, "{init}");
    assert_eq!(init["result"]["serverInfo"]["name"], "kb");
    assert!(
        init["result"]["capabilities"]["tools"].is_object(),
        "{init}"
    );
    let (_, list) = rpc(&app, None, "tools/list", json!({})).await;
    let tools = list["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    for expected in [
        "search_questions",
        "get_question",
        "list_categories",
        "list_tags",
        "draw_quiz",
        "grade_answer",
        "create_question",
    ] {
        assert!(names.contains(&expected), "{names:?}");
    }
    let search = tools
        .iter()
        .find(|t| t["name"] == "search_questions")
        .unwrap();
    assert_eq!(search["inputSchema"]["required"], json!(["query"]));
    assert_eq!(
        search["inputSchema"]["properties"]["query"]["maxLength"],
        500
    );
    // The difficulty is the REST API's own enum.
    let difficulty = search["inputSchema"].to_string();
    assert!(difficulty.contains("\"easy\"") && difficulty.contains("\"hard\""));
    assert_eq!(search["annotations"]["readOnlyHint"], true);
}

#[tokio::test]
async fn a_chinese_search_finds_the_question_and_its_hit_reads_in_full() {
    let app = TestApp::seeded().await;
    let found = call(
        &app,
        None,
        "search_questions",
        json!({"query": "GMP 调度", "limit": 3}),
    )
    .await;
    assert_eq!(found["isError"], false, "{found}");
    let hits = found["structuredContent"]["hits"].as_array().unwrap();
    assert!(!hits.is_empty() && hits.len() <= 3, "{found}");
    let first = &hits[0];
    assert!(first["title"].as_str().unwrap().contains("GMP"), "{first}");
    let highlight = first["answer_highlight"].as_str().unwrap();
    assert!(!highlight.contains("<mark>"), "plain text: {highlight}");
    let id = first["id"].as_i64().unwrap();
    let q = call(&app, None, "get_question", json!({"id": id})).await;
    assert_eq!(q["structuredContent"]["id"], id);
    assert!(
        !q["structuredContent"]["answers"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{q}"
    );
    let cats = call(&app, None, "list_categories", json!({})).await;
    assert!(text(&cats).contains("golang"), "{cats}");
    let tags = call(&app, None, "list_tags", json!({"limit": 5})).await;
    assert!(
        !tags["structuredContent"]["tags"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn bad_arguments_are_tool_errors_that_name_the_argument() {
    let app = TestApp::seeded().await;
    // The wrong type, caught before the REST API is asked.
    let r = call(
        &app,
        None,
        "search_questions",
        json!({"query": "GMP", "limit": "ten"}),
    )
    .await;
    assert_eq!(r["isError"], true, "{r}");
    assert!(text(&r).contains("`limit`"), "{r}");
    // Out of range: the REST API's own limit and words, under the tool's argument name.
    let r = call(
        &app,
        None,
        "search_questions",
        json!({"query": "GMP", "limit": 1000}),
    )
    .await;
    assert_eq!(r["isError"], true, "{r}");
    assert!(text(&r).contains("`limit`"), "{r}");
    let long = "长".repeat(501);
    let r = call(&app, None, "search_questions", json!({"query": long})).await;
    assert_eq!(r["isError"], true);
    assert!(text(&r).contains("`query`"), "{r}");
    let r = call(&app, None, "search_questions", json!({})).await;
    assert!(text(&r).contains("query"), "{r}");
    let r = call(&app, None, "get_question", json!({"id": 99_999_999})).await;
    assert_eq!(r["isError"], true);
    assert!(text(&r).contains("question_not_found"), "{r}");
    let r = call(
        &app,
        None,
        "search_questions",
        json!({"query": "x", "colour": "red"}),
    )
    .await;
    assert!(text(&r).contains("colour"), "{r}");
    // An unknown tool is the protocol's error, not a 500.
    let (status, answer) = rpc(
        &app,
        None,
        "tools/call",
        json!({"name": "drop_tables", "arguments": {}}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
}

#[tokio::test]
async fn a_quiz_drawn_over_mcp_never_repeats_within_its_session_and_grades() {
    let app = TestApp::seeded().await;
    let first = call(
        &app,
        None,
        "draw_quiz",
        json!({"count": 5, "mode": "choice"}),
    )
    .await;
    assert_eq!(first["isError"], false, "{first}");
    let drawn = &first["structuredContent"];
    let session = drawn["session"].as_str().unwrap().to_string();
    let mut seen: Vec<i64> = drawn["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["question"]["id"].as_i64().unwrap())
        .collect();
    let second = call(
        &app,
        None,
        "draw_quiz",
        json!({"count": 5, "mode": "choice", "session": session}),
    )
    .await;
    for item in second["structuredContent"]["items"].as_array().unwrap() {
        let id = item["question"]["id"].as_i64().unwrap();
        assert!(!seen.contains(&id), "{id} repeated");
        seen.push(id);
    }
    let item = &drawn["items"][0];
    let ticket = item["ticket"].as_str().unwrap();
    let choice = item["choices"][0]["id"].as_str().unwrap();
    let graded = call(
        &app,
        None,
        "grade_answer",
        json!({"ticket": ticket, "choice_id": choice}),
    )
    .await;
    assert_eq!(graded["isError"], false, "{graded}");
    assert!(graded["structuredContent"]["correct"].is_boolean());
    // Filters beside a session are refused in the REST API's words.
    let r = call(
        &app,
        None,
        "draw_quiz",
        json!({"session": session, "category": "golang"}),
    )
    .await;
    assert_eq!(r["isError"], true);
    assert!(text(&r).contains("quiz_session_conflict"), "{r}");
}

#[tokio::test]
async fn creating_needs_a_key_that_may_write() {
    let app = TestApp::seeded().await;
    let args = json!({"title": "MCP 创建的问题？", "category": "golang",
                      "answers": ["一个答案。"], "tags": ["mcp"]});
    let read = create_key(app.dir.path(), "read").await;
    let r = call(&app, Some(&read), "create_question", args.clone()).await;
    assert_eq!(r["isError"], true, "{r}");
    assert!(text(&r).contains("forbidden"), "{r}");
    let r = call(&app, None, "create_question", args.clone()).await;
    assert!(text(&r).contains("unauthorized"), "{r}");
    let write = create_key(app.dir.path(), "write").await;
    let r = call(&app, Some(&write), "create_question", args).await;
    assert_eq!(r["isError"], false, "{r}");
    let id = r["structuredContent"]["id"].as_i64().unwrap();
    let found = app.search_ids("MCP 创建", "").await;
    assert!(found.contains(&id), "searchable at once: {found:?}");
    // A key that is not one is refused before any tool runs.
    let (status, _) = rpc(&app, Some("kb_not_a_key"), "tools/list", json!({})).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn tool_calls_spend_the_callers_quota_like_rest_requests() {
    let app = TestApp::with(|c| {
        c.limits.quotas = true;
        c.limits.anonymous_rate = kb::domain::Rate {
            units: 30,
            window_secs: 60,
        };
    })
    .await;
    let mut refused = None;
    for n in 0..30 {
        let (status, answer) = rpc(
            &app,
            None,
            "tools/call",
            json!({"name": "search_questions", "arguments": {"query": "GMP"}}),
        )
        .await;
        if status == 429 {
            refused = Some(n);
            break;
        }
        if answer["result"]["isError"] == true {
            assert!(text(&answer["result"]).contains("rate_limited"), "{answer}");
            refused = Some(n);
            break;
        }
    }
    // A search costs 5 units and its message 1: the 30 units of the minute last five calls.
    let n = refused.expect("the quota ends the calls");
    assert!((4..=6).contains(&n), "refused at call {n}");
}

#[tokio::test]
async fn a_get_of_the_endpoint_is_refused_as_the_stateless_transport_allows() {
    let app = TestApp::seeded().await;
    let r = app
        .anonymous(
            Method::GET,
            "/mcp",
            &[("accept", "text/event-stream"), ("host", "kb.example.com")],
            None,
        )
        .await;
    assert_eq!(r.status, 405);
}

#[tokio::test]
async fn the_official_python_client_searches_reads_quizzes_and_is_refused_on_create() {
    let Some(python) = std::env::var("KB_TEST_MCP_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
    else {
        eprintln!("KB_TEST_MCP_PYTHON is not set: the official-client check is skipped");
        return;
    };
    let app = TestApp::seeded().await;
    let read = create_key(app.dir.path(), "read").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = app.router.clone();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/client.py");
    let url = format!("http://127.0.0.1:{port}/mcp");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .arg(url)
            .arg(read)
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    server.abort();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("ALL CHECKS PASSED"), "{stdout}");
}
