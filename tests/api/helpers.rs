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

/// The PostgreSQL server the tests run against, when `KB_TEST_DATABASE_URL` names one
/// (e.g. `postgres://postgres@127.0.0.1:5432/postgres`); otherwise every test uses SQLite.
pub fn postgres_url() -> Option<String> {
    std::env::var("KB_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

pub fn on_postgres() -> bool {
    postgres_url().is_some()
}

/// `url` naming the database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{name}{query}", &base[..host_end])
}

/// The store a test's data directory uses: on PostgreSQL, a database of its own named after
/// the directory (created here if it does not exist yet); `None` on SQLite. Databases left by
/// earlier test processes that have exited are dropped on first use.
pub fn database_url_for(dir: &std::path::Path) -> Option<String> {
    use std::hash::{Hash, Hasher};
    let server = postgres_url()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut h);
    let name = format!("kbt_{}_{:016x}", std::process::id(), h.finish());
    let url = with_database(&server, &name);
    block_on_thread(async move { create_database(&server, &name).await });
    Some(url)
}

/// Runs `f` to completion on a thread and runtime of its own: callable from sync tests and
/// from inside async ones alike.
fn block_on_thread<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    })
    .join()
    .expect("the database work succeeds")
}

static CLEANED: std::sync::Once = std::sync::Once::new();

async fn create_database(server: &str, name: &str) {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(server)
        .await
        .unwrap_or_else(|e| panic!("KB_TEST_DATABASE_URL={server}: cannot connect: {e}"));
    let mut stale = Vec::new();
    CLEANED.call_once(|| stale.push(()));
    if !stale.is_empty() {
        let names: Vec<String> =
            sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'kbt\\_%'")
                .fetch_all(&mut admin)
                .await
                .unwrap();
        for db in names {
            let pid = db.split('_').nth(1).unwrap_or("");
            if !pid.is_empty() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await;
            }
        }
    }
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut admin)
            .await
            .unwrap();
    if !exists {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    admin.close().await.unwrap();
}

/// Runs `sql` (written so that SQLite and PostgreSQL both accept it) against the database of
/// the data directory `dir`, behind the API's back; returns the first column of each row as
/// text.
pub fn db_rows(dir: &std::path::Path, sql: &str) -> Vec<String> {
    let url = database_url_for(dir);
    let file = dir.join("kb.sqlite3");
    let sql = sql.to_string();
    block_on_thread(async move {
        use sqlx::Row;
        match url {
            Some(url) => {
                let pool = sqlx::PgPool::connect(&url).await.unwrap();
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&pool).await;
                pool.close().await;
                rows.unwrap()
                    .iter()
                    .map(|r| r.get::<String, _>(0))
                    .collect()
            }
            None => {
                let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display()))
                    .await
                    .unwrap();
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&pool).await;
                pool.close().await;
                rows.unwrap()
                    .iter()
                    .map(|r| r.get::<String, _>(0))
                    .collect()
            }
        }
    })
}

/// The `kb` binary over the data directory `dir` (and its own PostgreSQL database when the
/// tests run on PostgreSQL).
pub fn kb_cmd(dir: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kb"));
    cmd.env("KB_DATA_DIR", dir);
    if let Some(url) = database_url_for(dir) {
        cmd.env("KB_DATABASE_URL", url);
    }
    cmd
}

/// Runs the `kb` binary over the data directory `dir` with extra environment `env`; panics
/// unless it succeeds; returns what it printed.
pub fn kb_command(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let out = kb_cmd(dir)
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

/// `kb_command` from an async test whose app is live: the command runs on a blocking thread,
/// so the app's tasks (on the test's one-thread runtime) go on meanwhile. Called in place, the
/// command would wait out the busy timeout for a write transaction the app began and cannot
/// finish while its runtime is blocked.
pub async fn kb_run(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let dir = dir.to_path_buf();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        kb_command(&dir, &env, &args)
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
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
        let app = Self::with(|c| c.store.no_seed = true).await;
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
        config.store.database_url = database_url_for(dir.path()).map(Into::into);
        // Tests run side by side: a few connections each keep the server's limit far away.
        config.store.database_connections = 4;
        config.server.admin_key = Some(ADMIN_KEY.into());
        // In-process requests have no client address, so they would all share one quota;
        // the quota tests turn them back on.
        config.limits.quotas = false;
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
        self.restart_with(meddle, |_| {}).await
    }

    /// As [`Self::restart`], with settings changed by `tweak`.
    pub async fn restart_with(
        self,
        meddle: impl FnOnce(&std::path::Path),
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let TestApp { router, app, dir } = self;
        drop(router);
        app.shutdown().await;
        meddle(dir.path());
        let mut config = Config::new(dir.path());
        config.store.database_url = database_url_for(dir.path()).map(Into::into);
        config.store.database_connections = 4;
        config.server.admin_key = Some(ADMIN_KEY.into());
        config.limits.quotas = false;
        tweak(&mut config);
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

/// What an export carries, without where it stands (its `changes_cursor` line, which names a
/// position in its own database's feed) or the ids its database gave (an import gives new
/// ones): two exports of the same knowledge base compare equal this way.
pub fn export_content(ndjson: &str) -> Vec<serde_json::Value> {
    ndjson
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("changes_cursor").is_none())
        .map(|mut v| {
            if let Some(o) = v.as_object_mut() {
                o.remove("id");
            }
            v
        })
        .collect()
}

/// A request with `key` as the bearer (and a JSON body, if given).
pub async fn with_key(
    app: &TestApp,
    method: Method,
    uri: &str,
    key: &str,
    body: Option<Value>,
) -> TestResponse {
    let bearer = format!("Bearer {key}");
    let mut headers = vec![("authorization", bearer.as_str())];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    app.anonymous(
        method,
        uri,
        &headers,
        body.map(|b| b.to_string().into_bytes()),
    )
    .await
}

/// A key made with `kb keys create --scope <scope>` on the app in `dir`.
pub async fn create_key(dir: &std::path::Path, scope: &str) -> String {
    let out = kb_run(
        dir,
        &[],
        &[
            "keys",
            "create",
            "--scope",
            scope,
            "--name",
            &format!("{scope} key"),
        ],
    )
    .await;
    let key = out.lines().next().unwrap().to_string();
    assert!(key.starts_with("kb_") && key.len() > 40, "{out}");
    key
}
