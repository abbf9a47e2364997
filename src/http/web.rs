//! The study page (`GET /`) and its files (`/static/…`), compiled into the binary from `web/`.
//! Plain HTML, CSS and JavaScript modules: no build step, nothing fetched from elsewhere. Each
//! file has a strong ETag (its content hash) and must be revalidated (`no-cache`), so a
//! returning visitor costs a 304; the page may run only its own scripts.

use super::extract::{PathText, if_none_match};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;

/// The page's Content-Security-Policy: its own files only, nothing inline, never framed.
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

struct File {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const FILES: &[File] = &[
    File {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        bytes: include_bytes!("../../web/index.html"),
    },
    File {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../web/app.css"),
    },
    File {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../web/app.js"),
    },
    File {
        name: "api.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../web/api.js"),
    },
    File {
        name: "i18n.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../web/i18n.js"),
    },
    File {
        name: "markdown.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../web/markdown.js"),
    },
];

/// Each file's ETag, computed once.
fn etags() -> &'static [HeaderValue] {
    static TAGS: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    TAGS.get_or_init(|| {
        FILES
            .iter()
            .map(|f| {
                let hash = crate::secret::sha256_hex(&String::from_utf8_lossy(f.bytes));
                HeaderValue::from_str(&format!("\"{}\"", &hash[..16])).expect("hex is a header")
            })
            .collect()
    })
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(i) = FILES.iter().position(|f| f.name == name) else {
        return super::error::ApiError::new(super::error::ErrorCode::NotFound, "no such file")
            .into_response();
    };
    let file = &FILES[i];
    let tag = etags()[i].clone();
    let common = [
        (header::ETAG, tag.clone()),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        ),
    ];
    if if_none_match(headers, &tag) {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(file.content_type),
        )],
        file.bytes,
    )
        .into_response()
}

pub async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

pub async fn asset(PathText(name): PathText, headers: HeaderMap) -> Response {
    serve(&name, &headers)
}
