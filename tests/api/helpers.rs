//! Spins up the real application on a fresh temp dir and speaks HTTP to it in-process.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use kb::App;
use kb::config::Config;
use serde_json::Value;
use tempfile::TempDir;
use tower::ServiceExt;

/// Runs the `kb` binary over the data directory `dir` with extra environment `env`; panics
/// unless it succeeds; returns what it printed.
pub fn kb_command(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kb"))
        .env("KB_DATA_DIR", dir)
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kb {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The admin key every test app is started with.
pub const ADMIN_KEY: &str = "test-admin-key-of-at-least-32-characters";

pub struct TestApp {
    pub router: Router,
    pub app: App,
    pub dir: TempDir,
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    /// Asserts an RFC 9457 problem with the given status and code.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.header("content-type"), "application/problem+json");
        let p = self.json();
        assert_eq!(p["code"], code, "{p}");
        assert_eq!(p["status"], status);
        assert!(p["title"].is_string() && p["detail"].is_string() && p["type"].is_string());
        p
    }
}

impl TestApp {
    /// A fresh app with the seed loaded.
    pub async fn seeded() -> Self {
        Self::with(|_| {}).await
    }

    /// A fresh app with an empty database (only the two seed categories are created).
    pub async fn empty() -> Self {
        let app = Self::with(|c| c.seed = false).await;
        for (slug, name) in [("golang", "Golang"), ("distributed", "分布式")] {
            let r = app
                .post(
                    "/api/v1/categories",
                    serde_json::json!({"slug": slug, "name": name}),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED);
        }
        app
    }

    pub async fn with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::new(dir.path());
        config.admin_key = Some(ADMIN_KEY.into());
        // In-process requests have no client address, so they would all share one quota;
        // the quota tests turn them back on.
        config.quotas.enabled = false;
        tweak(&mut config);
        Self::start(dir, config).await
    }

    async fn start(dir: TempDir, config: Config) -> Self {
        let app = App::build(&config).await.expect("app builds");
        let app = Self {
            router: app.router(),
            app,
            dir,
        };
        app.wait_ready().await;
        app
    }

    /// A new index is built in the background; wait until `/readyz` says it is done.
    pub async fn wait_ready(&self) {
        for _ in 0..1000 {
            if self.get("/readyz").await.status == StatusCode::OK {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the app never became ready");
    }

    /// Stops the app and builds a new one on the same data directory, as a restart would;
    /// `meddle` may change the directory in between.
    pub async fn restart(self, meddle: impl FnOnce(&std::path::Path)) -> Self {
        let TestApp { router, app, dir } = self;
        drop(router);
        app.shutdown().await;
        meddle(dir.path());
        let mut config = Config::new(dir.path());
        config.admin_key = Some(ADMIN_KEY.into());
        config.quotas.enabled = false;
        Self::start(dir, config).await
    }

    /// Search hits' question ids for `q` (URL-encoded here), best first.
    pub async fn search_ids(&self, q: &str, extra: &str) -> Vec<i64> {
        let r = self
            .get(&format!("/api/v1/search?q={}{extra}", urlencode(q)))
            .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()["hits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["question"]["id"].as_i64().unwrap())
            .collect()
    }

    /// Titles of the hits of a search, best first.
    pub async fn search_titles(&self, q: &str, extra: &str) -> Vec<String> {
        let r = self
            .get(&format!("/api/v1/search?q={}{extra}", urlencode(q)))
            .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        hit_titles(&r.json())
    }

    pub async fn send(&self, req: Request<Body>) -> TestResponse {
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let body = res
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        TestResponse {
            status,
            headers,
            body,
        }
    }

    /// A request with the admin key, unless `headers` brings its own `authorization`.
    pub async fn request(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> TestResponse {
        let bearer = format!("Bearer {ADMIN_KEY}");
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            all.push(("authorization", &bearer));
        }
        self.anonymous(method, uri, &all, body).await
    }

    /// A request with exactly these headers (no key unless given).
    pub async fn anonymous(
        &self,
        method: Method,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> TestResponse {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        self.send(req).await
    }

    pub async fn get(&self, uri: &str) -> TestResponse {
        self.request(Method::GET, uri, &[], None).await
    }

    pub async fn post(&self, uri: &str, json: Value) -> TestResponse {
        self.request(
            Method::POST,
            uri,
            &[(header::CONTENT_TYPE.as_str(), "application/json")],
            Some(json.to_string().into_bytes()),
        )
        .await
    }

    pub async fn patch(&self, uri: &str, json: Value, if_match: Option<&str>) -> TestResponse {
        let mut headers = vec![("content-type", "application/merge-patch+json")];
        if let Some(tag) = if_match {
            headers.push(("if-match", tag));
        }
        self.request(
            Method::PATCH,
            uri,
            &headers,
            Some(json.to_string().into_bytes()),
        )
        .await
    }

    pub async fn delete(&self, uri: &str, if_match: Option<&str>) -> TestResponse {
        let headers: Vec<(&str, &str)> = if_match.map(|t| ("if-match", t)).into_iter().collect();
        self.request(Method::DELETE, uri, &headers, None).await
    }

    /// Creates a question and returns its JSON.
    pub async fn create_question(&self, body: Value) -> Value {
        let r = self.post("/api/v1/questions", body).await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        r.json()
    }

    /// Every page of a list query, following `next_cursor`.
    pub async fn list_all(&self, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut uri = format!("/api/v1/questions?{query}");
            if let Some(c) = &cursor {
                uri.push_str(&format!("&cursor={c}"));
            }
            let r = self.get(&uri).await;
            assert_eq!(
                r.status,
                StatusCode::OK,
                "{}",
                String::from_utf8_lossy(&r.body)
            );
            let page = r.json();
            out.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return out,
            }
        }
    }
}

/// Titles of the hits of a search response, best first.
pub fn hit_titles(search: &Value) -> Vec<String> {
    search["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["question"]["title"].as_str().unwrap().to_string())
        .collect()
}

pub fn question(title: &str) -> Value {
    serde_json::json!({"title": title, "category": "golang"})
}

/// Percent-encodes everything but unreserved ASCII.
pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `field` of every entry of a problem's `errors`, in order.
pub fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|es| {
            es.iter()
                .filter_map(|e| e["field"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
