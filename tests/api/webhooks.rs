//! Webhooks: registration and its refusals, deliveries in feed order with Standard Webhooks
//! signatures, retries, disabling, pings, manual retries and secret rotation, against a real
//! receiver on a local port.

use crate::helpers::{TestApp, error_fields, question};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: String,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a delivery is JSON")
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Script {
    received: Vec<Received>,
    /// Statuses to answer with, in order; then `then`.
    answers: VecDeque<u16>,
    then: u16,
    /// How long each answer takes.
    delay: Duration,
}

/// A webhook receiver on 127.0.0.1, on a runtime of its own (so process tests can use it).
pub struct Receiver {
    pub url: String,
    script: Arc<Mutex<Script>>,
}

impl Receiver {
    /// Answers 204 to everything.
    pub fn start() -> Self {
        Self::answering(&[], 204)
    }

    /// Answers `first` in order, then `then`.
    pub fn answering(first: &[u16], then: u16) -> Self {
        let script = Arc::new(Mutex::new(Script {
            received: Vec::new(),
            answers: first.iter().copied().collect(),
            then,
            delay: Duration::ZERO,
        }));
        let shared = script.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let app = axum::Router::new().fallback(receive).with_state(shared);
                axum::serve(listener, app).await.unwrap();
            });
        });
        let addr = rx.recv().unwrap();
        Self {
            url: format!("http://{addr}/hook"),
            script,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }

    /// Takes `delay` over each answer from now on.
    pub fn slow(&self, delay: Duration) {
        self.script.lock().unwrap().delay = delay;
    }

    /// Waits until at least `n` requests have arrived; returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the receiver got {} of {n} deliveries: {:?}",
                got.len(),
                got.iter().map(|r| r.body.clone()).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn receive(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let (status, delay) = {
        let mut s = script.lock().unwrap();
        s.received.push(Received { headers, body });
        (s.answers.pop_front().unwrap_or(s.then), s.delay)
    };
    tokio::time::sleep(delay).await;
    StatusCode::from_u16(status).unwrap()
}

/// Checks a delivery's Standard Webhooks signature against `secret` (`whsec_…`), computed
/// here from the specification, not with kb's own code: true when one of the header's
/// signatures matches.
pub fn signed_with(r: &Received, secret: &str) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .unwrap();
    let content = format!(
        "{}.{}.{}",
        r.header("webhook-id"),
        r.header("webhook-timestamp"),
        r.body
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(content.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    r.header("webhook-signature")
        .split(' ')
        .any(|s| s == format!("v1,{expected}"))
}

/// An app whose webhooks may reach this machine, retrying quickly.
async fn app() -> TestApp {
    TestApp::with(|c| {
        c.store.no_seed = true;
        c.webhooks.allow_private = true;
        c.webhooks.first_retry = Duration::from_millis(50);
        c.webhooks.timeout = Duration::from_secs(2);
    })
    .await
}

async fn with_categories(app: &TestApp) {
    for (slug, name) in [("golang", "Golang"), ("distributed", "分布式")] {
        let r = app
            .post("/api/v1/categories", json!({"slug": slug, "name": name}))
            .await;
        assert_eq!(r.status, 201);
    }
}

async fn register(app: &TestApp, body: Value) -> Value {
    let r = app.post("/api/v1/webhooks", body).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

/// A POST without a body (a ping, a retry, a rotation), with the admin key.
async fn post_empty(app: &TestApp, uri: &str) -> crate::helpers::TestResponse {
    app.request(axum::http::Method::POST, uri, &[], None).await
}

async fn deliveries(app: &TestApp, id: i64) -> Vec<Value> {
    let r = app
        .get(&format!("/api/v1/webhooks/{id}/deliveries?limit=100"))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["items"].as_array().unwrap().clone()
}

/// Waits until the webhook's deliveries satisfy `check`.
async fn deliveries_until(app: &TestApp, id: i64, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let items = deliveries(app, id).await;
        if check(&items) {
            return items;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "deliveries never got there: {items:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_new_webhook_shows_its_secret_once_and_never_again() {
    let app = app().await;
    let receiver = Receiver::start();
    let created = register(&app, json!({"url": receiver.url, "description": "partner"})).await;
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(created["events"], json!(["*"]));
    assert_eq!(created["enabled"], true);
    let id = created["id"].as_i64().unwrap();
    let one = app.get(&format!("/api/v1/webhooks/{id}")).await;
    assert_eq!(one.status, 200);
    assert!(one.json().get("secret").is_none());
    let all = app.get("/api/v1/webhooks").await.json();
    assert_eq!(all.as_array().unwrap().len(), 1);
    assert!(all[0].get("secret").is_none());
    assert!(!String::from_utf8_lossy(&app.get("/api/v1/webhooks").await.body).contains(secret));
}

#[tokio::test]
async fn webhooks_are_for_admin_keys_only() {
    let app = app().await;
    let r = app
        .anonymous(axum::http::Method::GET, "/api/v1/webhooks", &[], None)
        .await;
    r.assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn a_url_aimed_inward_is_refused_in_every_spelling() {
    // Private addresses are not allowed here (the default).
    let app = TestApp::with(|c| c.store.no_seed = true).await;
    for url in [
        "https://127.0.0.1/hook",
        "https://127.1/hook",
        "https://2130706433/hook",
        "https://0177.0.0.1/hook",
        "https://0x7f.0.0.1/hook",
        "https://127.0.0.1./hook",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[::ffff:7f00:1]/hook",
        "https://10.1.2.3/hook",
        "https://172.16.0.1/hook",
        "https://192.168.1.1/hook",
        "https://100.64.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[fe80::1]/hook",
        "https://[fd00:ec2::254]/hook",
        "https://0.0.0.0/hook",
        "https://224.0.0.1/hook",
        "https://localhost/hook",
        "https://LOCALHOST./hook",
        "https://api.localhost/hook",
        "https://metadata.google.internal/computeMetadata/v1/",
    ] {
        let r = app.post("/api/v1/webhooks", json!({"url": url})).await;
        let p = r.assert_problem(422, "webhook_url_forbidden");
        assert!(!p["detail"].as_str().unwrap().is_empty(), "{url}");
    }
    assert_eq!(app.get("/api/v1/webhooks").await.json(), json!([]));
}

#[tokio::test]
async fn plain_http_needs_the_private_setting() {
    let app = TestApp::with(|c| c.store.no_seed = true).await;
    let r = app
        .post(
            "/api/v1/webhooks",
            json!({"url": "http://example.com/hook"}),
        )
        .await;
    let p = r.assert_problem(422, "validation_failed");
    assert_eq!(error_fields(&p), ["url"]);
}

#[tokio::test]
async fn bad_registrations_name_the_field() {
    let app = app().await;
    let long = format!("https://example.com/{}", "a".repeat(2000));
    for (body, field) in [
        (json!({"url": "not a url"}), "url"),
        (json!({"url": "https://user:pass@example.com/hook"}), "url"),
        (json!({"url": long}), "url"),
        (json!({"url": "ftp://example.com/hook"}), "url"),
        (json!({}), "url"),
        (
            json!({"url": "https://example.com/", "events": ["question.moved"]}),
            "events",
        ),
        (
            json!({"url": "https://example.com/", "events": []}),
            "events",
        ),
        (
            json!({"url": "https://example.com/", "description": "x".repeat(501)}),
            "description",
        ),
    ] {
        let r = app.post("/api/v1/webhooks", body.clone()).await;
        let p = r.assert_problem(422, "validation_failed");
        assert_eq!(error_fields(&p), [field], "{body}");
    }
    let r = app
        .post(
            "/api/v1/webhooks",
            json!({"url": "https://example.com/", "secret": "x"}),
        )
        .await;
    r.assert_problem(422, "unknown_field");
}

#[tokio::test]
async fn the_hundred_and_first_webhook_is_a_conflict() {
    let app = app().await;
    for n in 0..100 {
        register(
            &app,
            json!({"url": format!("http://127.0.0.1:9/{n}"), "enabled": false}),
        )
        .await;
    }
    let r = app
        .post(
            "/api/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/last"}),
        )
        .await;
    r.assert_problem(409, "too_many_webhooks");
}

#[tokio::test]
async fn every_change_reaches_the_receiver_in_feed_order_signed() {
    let app = app().await;
    with_categories(&app).await;
    let receiver = Receiver::start();
    let hook = register(&app, json!({"url": receiver.url})).await;
    let secret = hook["secret"].as_str().unwrap().to_string();
    let a = app.create_question(question("第一个 webhook 问题")).await;
    let b = app.create_question(question("第二个 webhook 问题")).await;
    let a_id = a["id"].as_i64().unwrap();
    let r = app
        .patch(
            &format!("/api/v1/questions/{a_id}"),
            json!({"title": "第一个问题改了"}),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        app.delete(&format!("/api/v1/questions/{}", b["id"]), None)
            .await
            .status,
        204
    );
    let got = receiver.wait_for(4).await;
    let kinds: Vec<String> = got
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        [
            "question.created",
            "question.created",
            "question.updated",
            "question.deleted"
        ]
    );
    assert_eq!(got[2].json()["data"]["title"], "第一个问题改了");
    // The feed's events, exactly: the same ids, in the same order.
    let feed = app.get("/api/v1/changes?types=question.*").await.json();
    let feed_ids: Vec<&str> = feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    let sent_ids: Vec<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(sent_ids, feed_ids);
    for r in &got {
        assert_eq!(r.json()["id"], r.header("webhook-id"));
        assert!(signed_with(r, &secret), "{:?}", r.headers);
        assert!(!signed_with(r, "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
        let ts: i64 = r.header("webhook-timestamp").parse().unwrap();
        assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
        assert_eq!(r.header("content-type"), "application/json");
    }
    let listed = deliveries_until(&app, hook["id"].as_i64().unwrap(), |items| {
        items.len() == 4 && items.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    assert_eq!(listed[0]["type"], "question.deleted", "newest first");
    assert_eq!(listed[0]["response_status"], 204);
    assert_eq!(listed[0]["attempts"], 1);
}

#[tokio::test]
async fn an_endpoint_gets_only_the_types_and_category_it_asked_for() {
    let app = app().await;
    with_categories(&app).await;
    let receiver = Receiver::start();
    register(
        &app,
        json!({"url": receiver.url, "events": ["question.created"], "category": "distributed"}),
    )
    .await;
    app.create_question(question("不在分布式里")).await;
    let wanted = app
        .create_question(json!({"title": "分布式里的问题", "category": "distributed"}))
        .await;
    app.post(
        "/api/v1/categories",
        json!({"slug": "db", "name": "数据库"}),
    )
    .await;
    let got = receiver.wait_for(1).await;
    // Give anything unwanted the time to arrive too.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got_after = receiver.received();
    assert_eq!(got_after.len(), 1, "{got:?}");
    assert_eq!(got_after[0].json()["data"]["id"], wanted["id"]);
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_and_keeps_its_order() {
    let app = app().await;
    with_categories(&app).await;
    let receiver = Receiver::answering(&[500, 503], 204);
    let hook = register(&app, json!({"url": receiver.url})).await;
    let id = hook["id"].as_i64().unwrap();
    let first = app.create_question(question("先来的")).await;
    let second = app.create_question(question("后到的")).await;
    let got = receiver.wait_for(4).await;
    let order: Vec<Value> = got.iter().map(|r| r.json()["data"]["id"].clone()).collect();
    // The first event three times (two failures, then delivered), only then the second.
    assert_eq!(
        order,
        [
            first["id"].clone(),
            first["id"].clone(),
            first["id"].clone(),
            second["id"].clone()
        ]
    );
    assert_eq!(got[0].header("webhook-id"), got[2].header("webhook-id"));
    let items = deliveries_until(&app, id, |items| {
        items.len() == 2 && items.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    assert_eq!(items[1]["attempts"], 3);
    assert_eq!(items[0]["attempts"], 1);
}

#[tokio::test]
async fn a_failing_endpoint_holds_up_only_its_own_queue() {
    let app = app().await;
    with_categories(&app).await;
    let down = Receiver::answering(&[], 500);
    let up = Receiver::start();
    register(&app, json!({"url": down.url})).await;
    register(&app, json!({"url": up.url})).await;
    for n in 0..3 {
        app.create_question(question(&format!("队列 {n}"))).await;
    }
    let got = up.wait_for(3).await;
    assert_eq!(got.len(), 3);
    assert!(!down.received().is_empty());
}

#[tokio::test]
async fn a_410_disables_the_endpoint_at_once_and_enabling_resumes_where_it_stopped() {
    let app = app().await;
    with_categories(&app).await;
    let receiver = Receiver::answering(&[410], 204);
    let hook = register(&app, json!({"url": receiver.url})).await;
    let id = hook["id"].as_i64().unwrap();
    let q = app.create_question(question("会被拒收的")).await;
    receiver.wait_for(1).await;
    let disabled = loop {
        let w = app.get(&format!("/api/v1/webhooks/{id}")).await.json();
        if w["enabled"] == false {
            break w;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("410"),
        "{disabled}"
    );
    let items = deliveries(&app, id).await;
    assert_eq!(items[0]["status"], "failed");
    assert_eq!(items[0]["response_status"], 410);
    // Nothing is sent while disabled.
    app.create_question(question("停用期间写的")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1);
    // Enabled again: the refused event first, then what was written meanwhile.
    let r = app
        .patch(
            &format!("/api/v1/webhooks/{id}"),
            json!({"enabled": true}),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["disabled_reason"], Value::Null);
    let got = receiver.wait_for(3).await;
    assert_eq!(got[1].json()["data"]["id"], q["id"]);
    assert_eq!(got[2].json()["data"]["title"], "停用期间写的");
}

#[tokio::test]
async fn an_endpoint_failing_for_the_whole_retry_period_is_disabled_with_the_reason() {
    let app = TestApp::with(|c| {
        c.store.no_seed = true;
        c.webhooks.allow_private = true;
        c.webhooks.first_retry = Duration::from_millis(50);
        c.webhooks.retry_for = Duration::from_secs(1);
    })
    .await;
    with_categories(&app).await;
    let receiver = Receiver::answering(&[], 503);
    let hook = register(&app, json!({"url": receiver.url})).await;
    let id = hook["id"].as_i64().unwrap();
    app.create_question(question("一直失败")).await;
    let start = Instant::now();
    let w = loop {
        let w = app.get(&format!("/api/v1/webhooks/{id}")).await.json();
        if w["enabled"] == false {
            break w;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{w}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let reason = w["disabled_reason"].as_str().unwrap();
    assert!(reason.contains("503"), "{reason}");
    let items = deliveries(&app, id).await;
    assert_eq!(items[0]["status"], "failed");
    assert!(items[0]["attempts"].as_i64().unwrap() >= 3, "{items:?}");
    assert_eq!(
        receiver.received().len() as i64,
        items[0]["attempts"].as_i64().unwrap()
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_counts_as_a_failure() {
    let app = app().await;
    with_categories(&app).await;
    let receiver = Receiver::answering(&[307], 204);
    let hook = register(&app, json!({"url": receiver.url})).await;
    app.create_question(question("重定向")).await;
    let got = receiver.wait_for(2).await;
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    let items = deliveries_until(&app, hook["id"].as_i64().unwrap(), |items| {
        items.first().is_some_and(|d| d["status"] == "delivered")
    })
    .await;
    assert_eq!(items[0]["attempts"], 2);
}

#[tokio::test]
async fn a_ping_is_sent_now_and_recorded() {
    let app = app().await;
    let receiver = Receiver::start();
    let hook = register(&app, json!({"url": receiver.url, "enabled": false})).await;
    let id = hook["id"].as_i64().unwrap();
    let r = post_empty(&app, &format!("/api/v1/webhooks/{id}/ping")).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let d = r.json();
    assert_eq!(d["status"], "delivered");
    assert_eq!(d["type"], "webhook.ping");
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["type"], "webhook.ping");
    assert_eq!(got[0].json()["data"]["webhook_id"], id);
    assert!(signed_with(&got[0], hook["secret"].as_str().unwrap()));
    // A ping to a dead endpoint fails, and says why.
    let dead = register(&app, json!({"url": "http://127.0.0.1:9/nothing"})).await;
    let r = post_empty(&app, &format!("/api/v1/webhooks/{}/ping", dead["id"])).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "failed");
    assert!(r.json()["error"].is_string());
    let w = app
        .get(&format!("/api/v1/webhooks/{}", dead["id"]))
        .await
        .json();
    assert_eq!(w["enabled"], true, "a ping never disables");
}

#[tokio::test]
async fn a_delivered_event_can_be_sent_again_by_hand() {
    let app = app().await;
    with_categories(&app).await;
    let receiver = Receiver::start();
    let hook = register(&app, json!({"url": receiver.url})).await;
    let id = hook["id"].as_i64().unwrap();
    app.create_question(question("再发一次")).await;
    let items = deliveries_until(&app, id, |items| {
        items.first().is_some_and(|d| d["status"] == "delivered")
    })
    .await;
    let delivery = items[0]["id"].as_i64().unwrap();
    let r = post_empty(
        &app,
        &format!("/api/v1/webhooks/{id}/deliveries/{delivery}/retry"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["attempts"], 2);
    let got = receiver.wait_for(2).await;
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert_eq!(got[0].body, got[1].body);
    let r = post_empty(
        &app,
        &format!("/api/v1/webhooks/{id}/deliveries/999999/retry"),
    )
    .await;
    r.assert_problem(404, "delivery_not_found");
}

#[tokio::test]
async fn after_a_rotation_both_secrets_sign_and_the_new_one_is_shown_once() {
    let app = app().await;
    with_categories(&app).await;
    let receiver = Receiver::start();
    let hook = register(&app, json!({"url": receiver.url})).await;
    let id = hook["id"].as_i64().unwrap();
    let old = hook["secret"].as_str().unwrap().to_string();
    let r = post_empty(&app, &format!("/api/v1/webhooks/{id}/secret")).await;
    assert_eq!(r.status, 200);
    let rotated = r.json();
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert!(rotated["previous_secret_expires_at"].is_string());
    app.create_question(question("轮换之后")).await;
    let got = receiver.wait_for(1).await;
    assert!(signed_with(&got[0], &old));
    assert!(signed_with(&got[0], &new));
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2);
    assert!(
        app.get(&format!("/api/v1/webhooks/{id}"))
            .await
            .json()
            .get("secret")
            .is_none()
    );
}

#[tokio::test]
async fn deliveries_page_newest_first_and_filter_by_status() {
    let app = app().await;
    with_categories(&app).await;
    let receiver = Receiver::start();
    let hook = register(&app, json!({"url": receiver.url})).await;
    let id = hook["id"].as_i64().unwrap();
    for n in 0..5 {
        app.create_question(question(&format!("分页 {n}"))).await;
    }
    deliveries_until(&app, id, |items| {
        items.len() == 5 && items.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let page = app
            .get(&format!("/api/v1/webhooks/{id}/deliveries?limit=2{after}"))
            .await
            .json();
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => after = format!("&after={c}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "{seen:?}");
    let none = app
        .get(&format!("/api/v1/webhooks/{id}/deliveries?status=failed"))
        .await
        .json();
    assert_eq!(none["items"], json!([]));
    let r = app
        .get(&format!("/api/v1/webhooks/{id}/deliveries?status=lost"))
        .await;
    assert_eq!(
        error_fields(&r.assert_problem(422, "validation_failed")),
        ["status"]
    );
    let r = app.get("/api/v1/webhooks/9999/deliveries").await;
    r.assert_problem(404, "webhook_not_found");
}

#[tokio::test]
async fn metrics_show_each_endpoints_queue() {
    let app = app().await;
    with_categories(&app).await;
    let hook = register(&app, json!({"url": "http://127.0.0.1:9/down"})).await;
    app.create_question(question("排队中")).await;
    let id = hook["id"].as_i64().unwrap();
    deliveries_until(&app, id, |items| {
        items
            .first()
            .is_some_and(|d| d["attempts"].as_i64() >= Some(1))
    })
    .await;
    let text = String::from_utf8(app.get("/metrics").await.body).unwrap();
    assert!(
        text.contains(&format!("kb_webhook_queue_depth{{webhook=\"{id}\"}} 1")),
        "{text}"
    );
    assert!(text.contains(&format!(
        "kb_webhook_oldest_pending_seconds{{webhook=\"{id}\"}}"
    )));
    assert!(text.contains("kb_webhook_attempts_total"));
}

#[tokio::test]
async fn a_deleted_webhook_takes_its_deliveries_with_it() {
    let app = app().await;
    let receiver = Receiver::start();
    let hook = register(&app, json!({"url": receiver.url})).await;
    let id = hook["id"].as_i64().unwrap();
    assert_eq!(
        app.delete(&format!("/api/v1/webhooks/{id}"), None)
            .await
            .status,
        204
    );
    app.get(&format!("/api/v1/webhooks/{id}"))
        .await
        .assert_problem(404, "webhook_not_found");
    app.delete(&format!("/api/v1/webhooks/{id}"), None)
        .await
        .assert_problem(404, "webhook_not_found");
}

/// The Python receiver of `tests/webhooks/receiver.py`, verifying with the reference library.
struct ReferenceReceiver {
    child: std::process::Child,
    url: String,
    secret_file: std::path::PathBuf,
    log_file: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl ReferenceReceiver {
    /// `None` when `KB_TEST_PYTHON` (a Python with `standardwebhooks`, as `.ci/webhook-client`
    /// prints) is not set: plain `cargo test` runs without it.
    fn start() -> Option<Self> {
        use std::io::BufRead as _;
        let python = std::env::var("KB_TEST_PYTHON")
            .ok()
            .filter(|p| !p.is_empty())?;
        let dir = tempfile::tempdir().unwrap();
        let secret_file = dir.path().join("secret");
        let log_file = dir.path().join("log.ndjson");
        std::fs::write(&secret_file, "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhooks/receiver.py");
        let mut child = std::process::Command::new(python)
            .arg(script)
            .arg(&secret_file)
            .arg(&log_file)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the reference receiver starts");
        let mut port = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut port)
            .unwrap();
        Some(Self {
            child,
            url: format!("http://127.0.0.1:{}/hook", port.trim()),
            secret_file,
            log_file,
            _dir: dir,
        })
    }

    fn use_secret(&self, secret: &str) {
        std::fs::write(&self.secret_file, secret).unwrap();
    }

    fn log(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log_file)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    async fn wait_for(&self, n: usize) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let log = self.log();
            if log.len() >= n {
                return log;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "{log:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ReferenceReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_reference_library_verifies_every_delivery_through_a_secret_rotation() {
    let Some(receiver) = ReferenceReceiver::start() else {
        eprintln!("KB_TEST_PYTHON is not set: the reference-library check is skipped");
        return;
    };
    let app = app().await;
    with_categories(&app).await;
    // A receiver holding a wrong secret refuses: the check is real.
    let hook = register(&app, json!({"url": receiver.url, "enabled": false})).await;
    let id = hook["id"].as_i64().unwrap();
    let ping = post_empty(&app, &format!("/api/v1/webhooks/{id}/ping"))
        .await
        .json();
    assert_eq!(ping["status"], "failed");
    assert_eq!(ping["response_status"], 401);
    assert_eq!(receiver.log()[0]["verified"], false);
    // With the right secret, every delivery verifies.
    let old = hook["secret"].as_str().unwrap().to_string();
    receiver.use_secret(&old);
    let r = app
        .patch(
            &format!("/api/v1/webhooks/{id}"),
            json!({"enabled": true}),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    for n in 0..3 {
        app.create_question(question(&format!("参考库验证 {n}")))
            .await;
    }
    receiver.wait_for(4).await;
    // Rotated: the receiver still holds the old secret, then switches to the new one.
    let new = post_empty(&app, &format!("/api/v1/webhooks/{id}/secret"))
        .await
        .json()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    for n in 0..2 {
        app.create_question(question(&format!("轮换中 {n}"))).await;
    }
    receiver.wait_for(6).await;
    receiver.use_secret(&new);
    for n in 0..2 {
        app.create_question(question(&format!("换成新密钥 {n}")))
            .await;
    }
    let log = receiver.wait_for(8).await;
    let after_ping = &log[1..];
    assert!(
        after_ping.iter().all(|e| e["verified"] == true),
        "the reference library refused a delivery: {after_ping:?}"
    );
    assert!(after_ping.iter().all(|e| e["type"] == "question.created"));
    let items = deliveries_until(&app, id, |items| {
        items
            .iter()
            .filter(|d| d["type"] == "question.created" && d["status"] == "delivered")
            .count()
            == 7
    })
    .await;
    assert!(
        items
            .iter()
            .filter(|d| d["type"] == "question.created")
            .all(|d| d["attempts"] == 1)
    );
}

/// Settings for kb processes whose webhooks reach this machine and whose leases run out soon.
const PROCESS_ENV: &[(&str, &str)] = &[
    ("KB_WEBHOOKS_ALLOW_PRIVATE", "true"),
    ("KB_WEBHOOKS_LEASE", "3s"),
    ("KB_WEBHOOKS_TIMEOUT", "2s"),
    ("KB_WEBHOOKS_FIRST_RETRY", "100ms"),
];

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(60), "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every `question.created` event id in `server`'s feed after `cursor`, in feed order, and
/// the cursor at its end.
fn created_event_ids(server: &crate::process::Server, cursor: &str) -> (Vec<String>, String) {
    let mut ids = Vec::new();
    let mut after = format!("&after={cursor}");
    loop {
        let (status, body) = server.request(
            "GET",
            &format!("/api/v1/changes?types=question.created&limit=1000{after}"),
            None,
        );
        assert_eq!(status, 200, "{body}");
        let page = crate::process::json(&body);
        ids.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string()),
        );
        let next = page["next_cursor"].as_str().unwrap().to_string();
        if !page["has_more"].as_bool().unwrap() {
            return (ids, next);
        }
        after = format!("&after={next}");
    }
}

/// Where a reader who has read all of `server`'s feed stands.
fn feed_end(server: &crate::process::Server) -> String {
    let (status, body) = server.request("GET", "/api/v1/changes?limit=1", None);
    assert_eq!(status, 200, "{body}");
    let first = crate::process::json(&body)["next_cursor"]
        .as_str()
        .unwrap()
        .to_string();
    created_event_ids(server, &first).1
}

/// The received event ids are the feed's, in its order: each resend (a duplicate) comes right
/// after the delivery it repeats, and there are at most `max_duplicates` of them.
fn assert_in_order_at_least_once(received: &[String], feed: &[String], max_duplicates: usize) {
    let position: std::collections::HashMap<&str, usize> = feed
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let positions: Vec<usize> = received
        .iter()
        .map(|id| {
            *position
                .get(id.as_str())
                .unwrap_or_else(|| panic!("{id} is not in the feed"))
        })
        .collect();
    let mut distinct = positions.clone();
    distinct.dedup();
    assert_eq!(
        distinct,
        (0..feed.len()).collect::<Vec<_>>(),
        "every event once, in feed order, repeats only of the one just sent: {positions:?}"
    );
    assert!(
        positions.len() - distinct.len() <= max_duplicates,
        "{} duplicates: {positions:?}",
        positions.len() - distinct.len()
    );
}

/// Registers an endpoint for `question.created` events; returns its id.
fn register_process(server: &crate::process::Server, url: &str, enabled: bool) -> i64 {
    let (status, body) = server.request(
        "POST",
        "/api/v1/webhooks",
        Some(&json!({"url": url, "events": ["question.created"], "enabled": enabled}).to_string()),
    );
    assert_eq!(status, 201, "{body}");
    crate::process::json(&body)["id"].as_i64().unwrap()
}

#[test]
fn a_kill_9_of_kb_loses_no_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let env = PROCESS_ENV;
    let server = crate::process::Server::start(dir.path(), env);
    let receiver = Receiver::start();
    receiver.slow(Duration::from_millis(100));
    let start = feed_end(&server);
    // Disabled while the events are written, so all 30 are queued when it is enabled and the
    // kill comes with most of them still to send.
    let id = register_process(&server, &receiver.url, false);
    for n in 0..30 {
        let body = json!({"title": format!("杀掉重启 {n}"), "category": "golang"}).to_string();
        assert_eq!(
            server.request("POST", "/api/v1/questions", Some(&body)).0,
            201
        );
    }
    let (status, body) = server.request(
        "PATCH",
        &format!("/api/v1/webhooks/{id}"),
        Some(r#"{"enabled": true}"#),
    );
    assert_eq!(status, 200, "{body}");
    eventually("some deliveries arrived", || receiver.received().len() >= 5);
    server.signal("KILL");
    drop(server);
    let got_before = receiver.received().len();
    assert!(
        got_before < 30,
        "killed mid-queue ({got_before} of 30 arrived)"
    );
    let server = crate::process::Server::start(dir.path(), env);
    let (feed, _) = created_event_ids(&server, &start);
    assert_eq!(feed.len(), 30);
    eventually("every event arrived", || {
        let mut ids: Vec<String> = receiver
            .received()
            .iter()
            .map(|r| r.header("webhook-id").to_string())
            .collect();
        ids.dedup();
        ids.len() >= 30
    });
    let ids: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.header("webhook-id").to_string())
        .collect();
    assert_in_order_at_least_once(&ids, &feed, 1);
}

#[test]
fn two_replicas_deliver_every_event_in_order_through_a_sigkill() {
    if !crate::helpers::on_postgres() {
        return;
    }
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = crate::process::Server::start(a_dir.path(), PROCESS_ENV);
    let url = crate::helpers::database_url_for(a_dir.path()).unwrap();
    let mut env = PROCESS_ENV.to_vec();
    env.push(("KB_DATABASE_URL", url.as_str()));
    let b = crate::process::Server::start(b_dir.path(), &env);
    let receiver = Receiver::start();
    receiver.slow(Duration::from_millis(30));
    let start = feed_end(&a);
    register_process(&a, &receiver.url, true);
    // Writes through both replicas, alternating, until told to stop.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = [a.addr.clone(), b.addr.clone()]
        .into_iter()
        .enumerate()
        .map(|(w, addr)| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 40 {
                    let body = json!({"title": format!("两个副本 {w}-{n}"), "category": "golang"});
                    let _ = crate::process::request(
                        &addr,
                        "POST",
                        "/api/v1/questions",
                        Some(&body.to_string()),
                    );
                    n += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        })
        .collect();
    eventually("deliveries are flowing", || receiver.received().len() >= 10);
    // Kill the replica sending right now (its process id leads its lease's owner name).
    let owner = crate::helpers::db_rows(
        a_dir.path(),
        "SELECT COALESCE(lease_owner, '') FROM webhooks",
    )
    .pop()
    .unwrap_or_default();
    let b_holds = owner.starts_with(&format!("{}-", b.child.id()));
    let (victim, survivor) = if b_holds { (b, a) } else { (a, b) };
    victim.signal("KILL");
    drop(victim);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let (feed, _) = created_event_ids(&survivor, &start);
    eventually("every event arrived through the survivor", || {
        let mut ids: Vec<String> = receiver
            .received()
            .iter()
            .map(|r| r.header("webhook-id").to_string())
            .collect();
        ids.dedup();
        ids.len() >= feed.len()
    });
    let ids: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.header("webhook-id").to_string())
        .collect();
    assert_in_order_at_least_once(&ids, &feed, 2);
}
