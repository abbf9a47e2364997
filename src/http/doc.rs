//! The OpenAPI document's fixed parts and the rules applied to it once every route is
//! registered: the bearer scheme, links from creates, text rules taken from the domain, and the
//! responses that follow from how a route is registered (its access, its JSON body).

use super::access::{Access, Cost};
use crate::domain::{
    self, BODY_MAX_CHARS, CATEGORY_NAME_MAX_CHARS, SLUG_MAX_CHARS, Scope, TITLE_MAX_CHARS,
};
use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem, Paths};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ArrayItems, Schema, SchemaFormat};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, Ref, RefOr};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "kb",
        description = "A knowledge base of interview questions and answers: CRUD, \
            Chinese-aware full-text search and quizzes. Errors are RFC 9457 problem+json \
            with a stable `code`.",
        license(name = "MIT", identifier = "MIT"),
    ),
    tags(
        (name = "questions", description = "Questions with their answers"),
        (name = "answers", description = "Answers to questions"),
        (name = "categories", description = "Categories and tags"),
        (name = "search", description = "Full-text search, suggestions and related questions"),
        (name = "quiz", description = "Random draws, no-repeat sessions and multiple choice"),
        (name = "learners", description = "Spaced repetition (FSRS) per learner"),
        (name = "admin", description = "Bulk import and export (admin keys)"),
        (name = "webhooks", description = "Endpoints told about every change, signed per Standard Webhooks (admin keys)"),
        (name = "keys", description = "API keys: create, list, revoke (admin keys), as `kb keys` does"),
        (name = "ops", description = "Health and readiness"),
    ),
    components(schemas(
        crate::http::error::Problem,
        crate::domain::FieldError,
        crate::domain::import::BulkQuestion
    )),
    modifiers(&BearerScheme)
)]
pub(super) struct ApiDoc;

/// Text rules of the domain, named in schema attributes by a `format` of this prefix
/// (`format = "kb:slug"`) and replaced by the rule's pattern and lengths when the document is
/// assembled: the attributes say which rule applies, the domain says what it is.
pub(super) const RULE_PREFIX: &str = "kb:";

/// A text rule: its name after [`RULE_PREFIX`], its pattern and its length bounds.
struct Rule {
    name: &'static str,
    pattern: &'static str,
    /// `(min, max)` characters; `None` when the pattern bounds the length itself.
    lengths: Option<(usize, usize)>,
}

const RULES: &[Rule] = &[
    Rule {
        name: "slug",
        pattern: domain::patterns::SLUG,
        lengths: Some((1, SLUG_MAX_CHARS)),
    },
    Rule {
        name: "title",
        pattern: domain::patterns::LINE,
        lengths: Some((1, TITLE_MAX_CHARS)),
    },
    Rule {
        name: "category-name",
        pattern: domain::patterns::LINE,
        lengths: Some((1, CATEGORY_NAME_MAX_CHARS)),
    },
    Rule {
        name: "markdown",
        pattern: domain::patterns::MARKDOWN,
        lengths: Some((1, BODY_MAX_CHARS)),
    },
    Rule {
        name: "synonym",
        pattern: domain::patterns::LINE,
        lengths: Some((1, domain::synonyms::MAX_TERM_CHARS)),
    },
    Rule {
        name: "key-name",
        pattern: domain::patterns::LINE,
        lengths: Some((1, domain::keys::KEY_NAME_MAX_CHARS)),
    },
    Rule {
        name: "learner",
        pattern: domain::patterns::LEARNER,
        lengths: None,
    },
    Rule {
        name: "review-id",
        pattern: domain::patterns::REVIEW_ID,
        lengths: None,
    },
];

/// The `format` that marks an IANA time zone name (see `apply_rules`).
pub(super) const TIME_ZONE_RULE: &str = "kb:time-zone";

fn apply_rules(schema: &mut RefOr<Schema>) {
    let RefOr::T(schema) = schema else {
        return;
    };
    match schema {
        Schema::Object(o) => {
            // A time zone is one of the IANA names kb knows: listed, so a client (or a
            // checker) knows exactly which strings are taken.
            if matches!(&o.format, Some(SchemaFormat::Custom(f)) if f == TIME_ZONE_RULE) {
                use utoipa::openapi::schema::{SchemaType, Type};
                o.format = None;
                let mut names: Vec<serde_json::Value> = chrono_tz::TZ_VARIANTS
                    .iter()
                    .map(|tz| serde_json::Value::from(tz.name()))
                    .collect();
                if matches!(&o.schema_type, SchemaType::Array(types) if types.contains(&Type::Null))
                {
                    names.push(serde_json::Value::Null);
                }
                o.enum_values = Some(names);
            }
            if let Some(SchemaFormat::Custom(format)) = &o.format
                && let Some(rule) = format.strip_prefix(RULE_PREFIX)
                && let Some(rule) = RULES.iter().find(|r| r.name == rule)
            {
                o.format = None;
                o.pattern = Some(rule.pattern.to_string());
                if let Some((min, max)) = rule.lengths {
                    o.min_length = Some(min);
                    o.max_length = Some(max);
                }
            }
            o.properties.values_mut().for_each(apply_rules);
        }
        Schema::Array(a) => {
            if let ArrayItems::RefOrSchema(items) = &mut a.items {
                apply_rules(items);
            }
        }
        Schema::OneOf(s) => s.items.iter_mut().for_each(apply_rules),
        Schema::AllOf(s) => s.items.iter_mut().for_each(apply_rules),
        Schema::AnyOf(s) => s.items.iter_mut().for_each(apply_rules),
        _ => {}
    }
}

pub(super) fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
}

/// Fills in the text rules everywhere in the document: component schemas and parameters.
pub(super) fn apply_text_rules(doc: &mut utoipa::openapi::OpenApi) {
    if let Some(components) = doc.components.as_mut() {
        components.schemas.values_mut().for_each(apply_rules);
    }
    for item in doc.paths.paths.values_mut() {
        for op in operations_mut(item) {
            for p in op.parameters.iter_mut().flatten() {
                let RefOr::T(p) = p else { continue };
                let header = p.parameter_in == utoipa::openapi::path::ParameterIn::Header;
                if let Some(schema) = p.schema.as_mut() {
                    apply_rules(schema);
                    // A header is absent or has a value; it cannot be null. (utoipa makes an
                    // optional one nullable, which led generated clients to send `None`.)
                    if header && let RefOr::T(Schema::Object(o)) = schema {
                        use utoipa::openapi::schema::{SchemaType, Type};
                        if let SchemaType::Array(types) = &o.schema_type {
                            let left: Vec<Type> = types
                                .iter()
                                .filter(|t| **t != Type::Null)
                                .cloned()
                                .collect();
                            if left.len() == 1 {
                                o.schema_type = SchemaType::Type(left[0].clone());
                            }
                        }
                    }
                }
            }
        }
    }
}

fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                crate::http::error::PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build(),
    )
}

/// What the 403 of a route says its key needs.
fn needs(scope: Scope) -> &'static str {
    match scope {
        Scope::Read => "any valid API key",
        Scope::Write => "an API key with `write` scope",
        Scope::Learners => "an API key with `learners` scope",
        Scope::Admin => "`admin`",
    }
}

fn with_headers(
    response: RefOr<utoipa::openapi::Response>,
    headers: &[(&str, &str)],
) -> RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let RefOr::T(mut response) = response else {
        return response;
    };
    for (name, description) in headers {
        response.headers.insert(
            (*name).to_string(),
            RefOr::T(
                HeaderBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                    .description(Some(*description))
                    .build(),
            ),
        );
    }
    RefOr::T(response)
}

/// The responses and security that follow from how a route is registered and what it
/// extracts: a key-guarded route declares the `bearer` scheme with its 401 and 403; a route
/// with query or path parameters the extractors' 400; a route with a JSON body the body
/// extractor's 400, 413, 415 and 422. A response the handler documents itself is kept.
pub(super) fn document_route(paths: &mut Paths, access: Access, cost: Cost) {
    let bearer = || SecurityRequirement::new("bearer", Vec::<String>::new());
    for item in paths.paths.values_mut() {
        for op in operations_mut(item) {
            let responses = &mut op.responses.responses;
            let forbidden = match access {
                Access::Public => {
                    // A key is optional: it brings its own quota.
                    op.security = Some(vec![SecurityRequirement::default(), bearer()]);
                    responses.entry("401".into()).or_insert_with(|| {
                        problem(
                            "The key or token sent is unknown, revoked or expired, or the server \
                             requires a key for reads and none was sent",
                        )
                    });
                    None
                }
                Access::Key(scope) => {
                    Some(format!("The key lacks the needed scope ({})", needs(scope)))
                }
                Access::Learner => {
                    Some("Neither a key with `learners` scope nor this learner's token".to_string())
                }
            };
            if let Some(forbidden) = forbidden {
                op.security = Some(vec![bearer()]);
                responses.entry("401".into()).or_insert_with(|| {
                    problem("No API key, or an unknown, revoked or expired one")
                });
                responses
                    .entry("403".into())
                    .or_insert_with(|| problem(&forbidden));
            }
            responses.entry("429".into()).or_insert_with(|| {
                with_headers(
                    problem("Over quota (`rate_limited`): retry after `Retry-After` seconds"),
                    &[
                        ("Retry-After", "Whole seconds to wait, at least 1"),
                        (
                            "RateLimit-Policy",
                            "The caller's quota, e.g. `\"key\";q=6000;w=60`",
                        ),
                        ("RateLimit", "What is left of it, e.g. `\"key\";r=0;t=12`"),
                    ],
                )
            });
            let overload = match cost {
                Cost::Light(_) => {
                    "The request took too long and was cancelled (`request_timeout`), or the \
                     database cannot be reached (`database_unavailable`, with `Retry-After`)"
                }
                Cost::Heavy(_) | Cost::Draw => {
                    "Too many expensive requests at once (`overloaded`, with `Retry-After`), the \
                     request took too long (`request_timeout`), or the database cannot be \
                     reached (`database_unavailable`, with `Retry-After`)"
                }
            };
            responses
                .entry("503".into())
                .or_insert_with(|| problem(overload));
            let has_query = op
                .parameters
                .iter()
                .flatten()
                .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Query));
            if has_query {
                responses
                    .entry("400".into())
                    .or_insert_with(|| problem("Malformed query string"));
            }
            let has_path = op
                .parameters
                .iter()
                .flatten()
                .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Path));
            if has_path {
                responses
                    .entry("400".into())
                    .or_insert_with(|| problem("A path parameter could not be decoded"));
            }
            if op.request_body.is_some() {
                for (status, description) in [
                    ("400", "Malformed JSON"),
                    ("413", "Body over 1 MiB"),
                    ("415", "Not JSON"),
                    ("422", "Invalid or unknown fields"),
                ] {
                    responses
                        .entry(status.into())
                        .or_insert_with(|| problem(description));
                }
            }
        }
    }
}

/// What every POST says about `Idempotency-Key` (`http/idempotency.rs`): the optional header,
/// its 400, 409 and 422, and the `Idempotent-Replayed` header of a replayed answer. Added to a
/// response the handler documents itself, so each status keeps one description.
pub(super) fn document_idempotency(paths: &mut Paths) {
    use utoipa::openapi::path::ParameterBuilder;
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{Required, header::HeaderBuilder};
    let max = crate::domain::IDEMPOTENCY_KEY_MAX_CHARS;
    let parameter = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(format!(
            "Makes a retry safe: a retry within 24 hours with the same key and the same \
             request (method, path and query, body) from the same credential (or, without \
             one, the same client address) gets the first answer again, marked \
             `Idempotent-Replayed: true`, instead of repeating the request. 1–{max} printable \
             ASCII characters; a fresh random value (a UUID) per request. See \
             docs/idempotency.md."
        )))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(max))
                .pattern(Some(r"^[\x20-\x7E]+$")),
        ))
        .build();
    let replayed = || {
        RefOr::T(
            HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .description(Some(
                    "`true` when this is the kept answer to an earlier request with the same \
                     `Idempotency-Key`",
                ))
                .build(),
        )
    };
    let additions = [
        (
            "400",
            "an `Idempotency-Key` that is not 1–255 printable ASCII characters \
             (`invalid_idempotency_key`)",
        ),
        (
            "409",
            "a request with the same `Idempotency-Key` is still running \
             (`idempotency_key_in_flight`, with `Retry-After`)",
        ),
        (
            "422",
            "the `Idempotency-Key` was used for a different request \
             (`idempotency_key_reused`)",
        ),
    ];
    for item in paths.paths.values_mut() {
        let Some(op) = item.post.as_mut() else {
            continue;
        };
        op.parameters
            .get_or_insert_with(Vec::new)
            .push(RefOr::T(parameter.clone()));
        let responses = &mut op.responses.responses;
        for (status, response) in responses.iter_mut() {
            if status.starts_with('2')
                && let RefOr::T(response) = response
            {
                response
                    .headers
                    .insert("Idempotent-Replayed".to_string(), replayed());
            }
        }
        for (status, why) in additions {
            match responses.get_mut(status) {
                Some(RefOr::T(response)) => {
                    response.description = format!("{}; or {why}", response.description);
                }
                Some(RefOr::Ref(_)) => {}
                None => {
                    let mut first = why.to_string();
                    first[..1].make_ascii_uppercase();
                    responses.insert(status.to_string(), problem(&first));
                }
            }
        }
    }
}

/// OpenAPI links from each create to the operations on what it created, so clients (and
/// stateful conformance tests) can follow them.
pub(super) struct CreateLinks;

impl utoipa::Modify for CreateLinks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::link::LinkBuilder;
        let links: [(&str, &[(&str, &str)]); 3] = [
            (
                "/api/v1/questions",
                &[
                    ("GetQuestion", "get_question"),
                    ("UpdateQuestion", "patch_question"),
                    ("DeleteQuestion", "delete_question"),
                    ("ListAnswers", "list_answers"),
                    ("AddAnswer", "add_answer"),
                    ("SimilarQuestions", "similar_questions"),
                ],
            ),
            (
                "/api/v1/questions/{id}/answers",
                &[
                    ("GetAnswer", "get_answer"),
                    ("UpdateAnswer", "patch_answer"),
                    ("DeleteAnswer", "delete_answer"),
                ],
            ),
            (
                "/api/v1/keys",
                &[("GetKey", "get_key"), ("RevokeKey", "revoke_key")],
            ),
        ];
        for (path, targets) in links {
            let created = openapi
                .paths
                .paths
                .get_mut(path)
                .and_then(|item| item.post.as_mut())
                .and_then(|op| op.responses.responses.get_mut("201"));
            if let Some(RefOr::T(response)) = created {
                for (name, operation_id) in targets {
                    let link = LinkBuilder::new()
                        .operation_id(*operation_id)
                        .parameter("id", "$response.body#/id")
                        .build();
                    response.links.insert((*name).to_string(), RefOr::T(link));
                }
            }
        }
    }
}

/// Declares the `bearer` security scheme that key-guarded operations require.
struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key: `kb keys create --scope write` (or `POST /api/v1/keys`), or the `KB_ADMIN_KEY` the server was started with.",
                    ))
                    .build(),
            ),
        );
    }
}
