//! `/mcp`: the Model Context Protocol (Streamable HTTP) for AI assistants, on the official
//! Rust SDK (`rmcp`).
//!
//! Each tool is a REST request made in-process on the caller's behalf: the caller's
//! `Authorization` and address travel with it, so a tool call meets the same key checks,
//! scopes, quotas, limits and validation as the REST route it stands for, and its refusals are
//! the REST API's own, turned into tool errors that name the argument at fault. The tools
//! reshape what they return for a model (highlights as plain text, a quiz session started
//! when none is given).
//!
//! The transport is stateless: every POST carries one JSON-RPC message and gets its answer as
//! JSON, and no session is kept. Nothing then needs bounding beyond what bounds any request,
//! and replicas behind a load balancer need no affinity. `GET /mcp` (a server-initiated
//! stream) is 405, as the protocol allows for a server that sends nothing unasked.

use crate::domain::Difficulty;
use crate::service::Principal;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, Method, Request, StatusCode, header};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

/// The largest REST answer a tool reads (a page of 100 search hits is well under this).
const ANSWER_LIMIT: usize = 8 * 1024 * 1024;

/// Request headers a tool's REST request carries over from the MCP request: the credential,
/// and what names the client's address behind a trusted proxy.
const CARRIED: [HeaderName; 3] = [
    header::AUTHORIZATION,
    HeaderName::from_static("x-forwarded-for"),
    HeaderName::from_static("forwarded"),
];

const INSTRUCTIONS: &str = "kb is a knowledge base of interview questions and answers (much of \
it in Chinese, about Go internals and distributed systems). Use search_questions to find \
questions by keyword (Chinese, English or mixed, e.g. `GMP 调度`, `sync.Map`), get_question to \
read one with its answers, list_categories and list_tags to see what there is, draw_quiz and \
grade_answer to quiz someone, and create_question (with a key that may write) to add one.";

/// The MCP endpoint's service: tools over the REST router `rest` (the application without
/// `/mcp`), with the request body bounded as every other body is.
pub fn service(rest: Router) -> StreamableHttpService<Tools, NeverSessionManager> {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_max_request_body_bytes(super::BODY_LIMIT)
        // The Host check guards servers that trust whoever reaches them (a desktop tool on
        // localhost); kb checks every call's credential as its REST API does, is meant to be
        // reached by name, and already states which browser origins may call it (CORS).
        .disable_allowed_hosts();
    StreamableHttpService::new(
        move || Ok(Tools { rest: rest.clone() }),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

/// kb's tools for one MCP request.
#[derive(Clone)]
pub struct Tools {
    rest: Router,
}

impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("kb", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools().to_vec()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools().iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = Caller::of(context.extensions.get::<Parts>());
        let args = request.arguments.unwrap_or_default();
        let result = match request.name.as_ref() {
            "search_questions" => self.search(&caller, args).await,
            "get_question" => self.get_question(&caller, args).await,
            "list_categories" => self.list_categories(&caller, args).await,
            "list_tags" => self.list_tags(&caller, args).await,
            "draw_quiz" => self.draw_quiz(&caller, args).await,
            "grade_answer" => self.grade_answer(&caller, args).await,
            "create_question" => self.create_question(&caller, args).await,
            other => {
                return Err(ErrorData::invalid_params(
                    format!("no tool named `{other}`; tools/list names them"),
                    None,
                ));
            }
        };
        Ok(result.unwrap_or_else(|refusal| refusal).into())
    }
}

/// A tool's outcome: a result for the model, or a tool error (also a result, `isError`).
type Outcome = Result<CallToolResult, CallToolResult>;

fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

/// The arguments as `T`; a tool error naming the argument that does not fit otherwise.
fn parse<T: DeserializeOwned>(args: JsonObject) -> Result<T, CallToolResult> {
    serde_path_to_error::deserialize(Value::Object(args)).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            // serde names the field itself for a missing or unknown one.
            tool_error(format!("invalid arguments: {}", e.inner()))
        } else {
            tool_error(format!("invalid argument `{path}`: {}", e.inner()))
        }
    })
}

/// Who made the MCP request, as its REST requests must say.
struct Caller {
    headers: HeaderMap,
    peer: Option<ConnectInfo<SocketAddr>>,
    /// Whom `/mcp`'s guard authenticated: its REST requests carry it rather than have the
    /// key looked up again.
    principal: Option<Principal>,
}

impl Caller {
    fn of(parts: Option<&Parts>) -> Self {
        let mut headers = HeaderMap::new();
        let mut peer = None;
        let mut principal = None;
        if let Some(parts) = parts {
            for name in CARRIED {
                for value in parts.headers.get_all(&name) {
                    headers.append(name.clone(), value.clone());
                }
            }
            peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().cloned();
            principal = parts.extensions.get::<Principal>().cloned();
        }
        Caller {
            headers,
            peer,
            principal,
        }
    }
}

/// Query-string building that cannot fail.
fn query(pairs: &[(&str, Option<String>)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if let Some(v) = v {
            q.append_pair(k, v);
        }
    }
    q.finish()
}

impl Tools {
    /// Makes a REST request for `caller`; its JSON answer, or a tool error made of the REST
    /// API's refusal with its field names translated by `rename` (REST name → argument name).
    async fn rest(
        &self,
        caller: &Caller,
        method: Method,
        uri: &str,
        body: Option<Value>,
        rename: &[(&str, &str)],
    ) -> Result<Value, CallToolResult> {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(h) = req.headers_mut() {
            h.extend(caller.headers.clone());
            if body.is_some() {
                h.insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/json"),
                );
            }
        }
        if let Some(peer) = caller.peer {
            req = req.extension(peer);
        }
        if let Some(principal) = &caller.principal {
            req = req.extension(principal.clone());
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let req = match req.body(body) {
            Ok(r) => r,
            Err(e) => return Err(tool_error(format!("the request could not be made: {e}"))),
        };
        let response = match self.rest.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), ANSWER_LIMIT)
            .await
            .map_err(|e| tool_error(format!("the answer could not be read: {e}")))?;
        if status == StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(value);
        }
        Err(refusal(status, &value, rename))
    }

    async fn search(&self, caller: &Caller, args: JsonObject) -> Outcome {
        let a: SearchArgs = parse(args)?;
        let uri = format!(
            "/api/v1/search?{}",
            query(&[
                ("q", Some(a.query)),
                ("category", a.category),
                ("tag", a.tag),
                ("difficulty", a.difficulty.map(|d| d.as_str().to_string())),
                ("limit", Some(a.limit.unwrap_or(10).to_string())),
                ("offset", a.offset.map(|o| o.to_string())),
            ])
        );
        let page = self
            .rest(caller, Method::GET, &uri, None, &[("q", "query")])
            .await?;
        let hits: Vec<Value> = page["hits"]
            .as_array()
            .map(|hits| {
                hits.iter()
                    .map(|h| {
                        let q = &h["question"];
                        json!({
                            "id": q["id"],
                            "title": q["title"],
                            "category": q["category"]["slug"],
                            "tags": q["tags"],
                            "difficulty": q["difficulty"],
                            "title_highlight": plain(h["highlights"]["title"].as_str()),
                            "answer_highlight": plain(h["highlights"]["answer"].as_str()),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(CallToolResult::structured(json!({
            "query": page["query"],
            "total": page["total"],
            "total_exact": page["total_exact"],
            "relaxed": page["relaxed"],
            "hits": hits,
        })))
    }

    async fn get_question(&self, caller: &Caller, args: JsonObject) -> Outcome {
        let a: IdArgs = parse(args)?;
        let q = self
            .rest(
                caller,
                Method::GET,
                &format!("/api/v1/questions/{}", a.id),
                None,
                &[],
            )
            .await?;
        Ok(CallToolResult::structured(q))
    }

    async fn list_categories(&self, caller: &Caller, args: JsonObject) -> Outcome {
        let _: NoArgs = parse(args)?;
        let list = self
            .rest(caller, Method::GET, "/api/v1/categories", None, &[])
            .await?;
        Ok(CallToolResult::structured(json!({ "categories": list })))
    }

    async fn list_tags(&self, caller: &Caller, args: JsonObject) -> Outcome {
        let a: TagsArgs = parse(args)?;
        let uri = format!(
            "/api/v1/tags?{}",
            query(&[("limit", a.limit.map(|l| l.to_string()))])
        );
        let list = self.rest(caller, Method::GET, &uri, None, &[]).await?;
        Ok(CallToolResult::structured(json!({ "tags": list })))
    }

    async fn draw_quiz(&self, caller: &Caller, args: JsonObject) -> Outcome {
        let a: DrawArgs = parse(args)?;
        let mode = a.mode.map(|m| m.as_str().to_string());
        let difficulty = a.difficulty.map(|d| d.as_str().to_string());
        // Without a session, one is started with the filters, so the next draw can go on
        // without repeats; with one, its filters are the session's (the REST API refuses
        // filters beside a session, and so does this tool, with its words).
        let (session, filters) = match a.session {
            Some(s) => (s, (a.category, a.tag, difficulty)),
            None => {
                let created = self
                    .rest(
                        caller,
                        Method::POST,
                        "/api/v1/quiz/sessions",
                        Some(json!({
                            "category": a.category,
                            "tag": a.tag,
                            "difficulty": difficulty,
                        })),
                        &[],
                    )
                    .await?;
                let token = created["token"].as_str().unwrap_or_default().to_string();
                (token, (None, None, None))
            }
        };
        let uri = format!(
            "/api/v1/quiz?{}",
            query(&[
                ("session", Some(session.clone())),
                ("count", a.count.map(|c| c.to_string())),
                ("mode", mode),
                ("category", filters.0),
                ("tag", filters.1),
                ("difficulty", filters.2),
            ])
        );
        let mut drawn = self.rest(caller, Method::GET, &uri, None, &[]).await?;
        drawn["session"] = json!(session);
        Ok(CallToolResult::structured(drawn))
    }

    async fn grade_answer(&self, caller: &Caller, args: JsonObject) -> Outcome {
        let a: GradeArgs = parse(args)?;
        let graded = self
            .rest(
                caller,
                Method::POST,
                "/api/v1/quiz/answers",
                Some(json!({"ticket": a.ticket, "choice_id": a.choice_id})),
                &[],
            )
            .await?;
        Ok(CallToolResult::structured(graded))
    }

    async fn create_question(&self, caller: &Caller, args: JsonObject) -> Outcome {
        let a: CreateArgs = parse(args)?;
        let answers: Vec<Value> = a.answers.iter().map(|b| json!({ "body": b })).collect();
        let created = self
            .rest(
                caller,
                Method::POST,
                "/api/v1/questions",
                Some(json!({
                    "title": a.title,
                    "category": a.category,
                    "tags": a.tags,
                    "difficulty": a.difficulty.map(Difficulty::as_str),
                    "body": a.body,
                    "answers": answers,
                })),
                &[],
            )
            .await?;
        Ok(CallToolResult::structured(created))
    }
}

/// A REST refusal as a tool error: what went wrong in the API's words, the fields at fault
/// under the tool's argument names, and the stable code.
fn refusal(status: StatusCode, problem: &Value, rename: &[(&str, &str)]) -> CallToolResult {
    let detail = problem["detail"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| status.to_string());
    let code = problem["code"].as_str().unwrap_or("error");
    let mut message = format!("{detail} ({code}, HTTP {})", status.as_u16());
    if let Some(errors) = problem["errors"].as_array() {
        for e in errors {
            let field = e["field"].as_str().unwrap_or("?");
            let field = rename
                .iter()
                .find(|(rest, _)| field == *rest || field.starts_with(&format!("{rest}[")))
                .map_or_else(
                    || field.to_string(),
                    |(rest, arg)| field.replacen(rest, arg, 1),
                );
            let why = e["message"].as_str().unwrap_or("is invalid");
            message.push_str(&format!("\n- argument `{field}`: {why}"));
        }
    }
    CallToolResult::structured_error(json!({
        "error": message,
        "code": code,
        "status": status.as_u16(),
        "errors": problem["errors"],
    }))
}

/// A highlight as plain text: the `<mark>` tags dropped and the escaped characters restored.
fn plain(html: Option<&str>) -> String {
    let text = html
        .unwrap_or_default()
        .replace("<mark>", "")
        .replace("</mark>", "");
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    /// What to look for, as a person would type it: Chinese, English or both, identifiers
    /// included (`GMP 调度`, `sync.Map`, `new 和make`). Words, not a query language.
    #[schemars(length(min = 1, max = 500))]
    query: String,
    /// Only questions of this category (a slug from list_categories, e.g. `golang`).
    category: Option<String>,
    /// Only questions with this tag (a slug from list_tags).
    tag: Option<String>,
    /// Only questions of this difficulty.
    difficulty: Option<Difficulty>,
    /// How many hits, 1–100 (default 10).
    #[schemars(range(min = 1, max = 100))]
    limit: Option<u32>,
    /// Hits to skip, for the next page (0–10,000).
    #[schemars(range(max = 10_000))]
    offset: Option<u32>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct IdArgs {
    /// The question's id (from search_questions or draw_quiz).
    #[schemars(range(min = 1))]
    id: i64,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TagsArgs {
    /// How many tags, most used first (1–1,000; default 100).
    #[schemars(range(min = 1, max = 1000))]
    limit: Option<u32>,
}

/// How a quiz question is put.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum QuizMode {
    /// The question with its answers, to test oneself.
    Flashcard,
    /// The question with options to choose from, one right; grade the choice with
    /// grade_answer.
    Choice,
}

impl QuizMode {
    fn as_str(self) -> &'static str {
        match self {
            QuizMode::Flashcard => "flashcard",
            QuizMode::Choice => "choice",
        }
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DrawArgs {
    /// How many questions, 1–50 (default 10).
    #[schemars(range(min = 1, max = 50))]
    count: Option<u32>,
    /// `choice` (options and a ticket to grade with grade_answer) or `flashcard` (the
    /// answers at once; default).
    mode: Option<QuizMode>,
    /// The `session` a previous draw_quiz returned: no question repeats within a session.
    /// Leave it out to start one (then the filters below choose its questions).
    session: Option<String>,
    /// Only this category (slug); only when starting a session.
    category: Option<String>,
    /// Only this tag (slug); only when starting a session.
    tag: Option<String>,
    /// Only this difficulty; only when starting a session.
    difficulty: Option<Difficulty>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct GradeArgs {
    /// The `ticket` of a question drawn with mode `choice`.
    ticket: String,
    /// The `id` of the chosen option.
    choice_id: String,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct CreateArgs {
    /// The question, on one line (1–500 characters).
    #[schemars(length(min = 1, max = 500))]
    title: String,
    /// The category's slug (one of list_categories).
    category: String,
    /// The answers, each Markdown (at least one).
    #[schemars(length(min = 1))]
    answers: Vec<String>,
    /// Up to 20 tag slugs (lowercase letters, digits and `-`), created on first use.
    #[schemars(length(max = 20))]
    tags: Option<Vec<String>>,
    /// Defaults to medium.
    difficulty: Option<Difficulty>,
    /// More about the question, Markdown.
    body: Option<String>,
}

fn tool<T: JsonSchema + 'static>(
    name: &'static str,
    description: &'static str,
    annotations: ToolAnnotations,
) -> Tool {
    Tool::new(name, description, JsonObject::new())
        .with_input_schema::<T>()
        .with_annotations(annotations)
}

/// The tools, described for a model choosing among them.
fn tools() -> &'static [Tool] {
    static TOOLS: OnceLock<Vec<Tool>> = OnceLock::new();
    TOOLS.get_or_init(|| {
        let read = |title: &str| {
            ToolAnnotations::with_title(title)
                .read_only(true)
                .open_world(false)
        };
        vec![
            tool::<SearchArgs>(
                "search_questions",
                "Search the knowledge base's questions and answers by keyword. Chinese is \
                 split into words and English is case-insensitive, so type the words that \
                 matter (`GMP 调度`, `sync.Map 读写`, `raft leader election`); typos in longer \
                 English words are tolerated. Returns the best matches first: each hit's id, \
                 title, category, tags, difficulty and the matching passages as plain text. \
                 Read a hit in full with get_question.",
                read("Search questions"),
            ),
            tool::<IdArgs>(
                "get_question",
                "Read one question with all its answers (Markdown), by id.",
                read("Read a question"),
            ),
            tool::<NoArgs>(
                "list_categories",
                "List the categories (slug, name, number of questions). Use a slug to narrow \
                 search_questions or draw_quiz.",
                read("List categories"),
            ),
            tool::<TagsArgs>(
                "list_tags",
                "List the tags with how many questions carry each, most used first.",
                read("List tags"),
            ),
            tool::<DrawArgs>(
                "draw_quiz",
                "Draw random questions to quiz someone. Returns the questions and a `session`: \
                 pass it to the next draw_quiz and no question repeats. In `choice` mode each \
                 question comes with options and a `ticket`; check an answer with \
                 grade_answer.",
                ToolAnnotations::with_title("Draw quiz questions").open_world(false),
            ),
            tool::<GradeArgs>(
                "grade_answer",
                "Grade a chosen option of a `choice` quiz question: whether it is right, the \
                 right option, and the answer.",
                ToolAnnotations::with_title("Grade an answer").open_world(false),
            ),
            tool::<CreateArgs>(
                "create_question",
                "Add a question with its answers to the knowledge base. Needs an API key with \
                 `write` scope.",
                ToolAnnotations::with_title("Create a question")
                    .destructive(false)
                    .idempotent(false)
                    .open_world(false),
            ),
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlights_become_plain_text() {
        assert_eq!(
            plain(Some(
                "<mark>sync</mark>.<mark>Map</mark> &lt;T&gt; &amp; 锁"
            )),
            "sync.Map <T> & 锁"
        );
    }

    #[test]
    fn a_bad_argument_is_named_in_the_tool_error() {
        let args = json!({"query": "GMP", "limit": "ten"});
        let Err(e) = parse::<SearchArgs>(args.as_object().unwrap().clone()) else {
            panic!("`limit` is not a number");
        };
        assert_eq!(e.is_error, Some(true));
        let text = serde_json::to_string(&e.content).unwrap();
        assert!(text.contains("`limit`"), "{text}");
    }

    #[test]
    fn every_tool_has_an_object_schema_and_a_description() {
        for t in tools() {
            assert_eq!(t.input_schema["type"], "object", "{}", t.name);
            assert!(t.description.as_ref().is_some_and(|d| d.len() > 20));
        }
    }
}
