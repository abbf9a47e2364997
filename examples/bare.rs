//! The ceilings for `benches/load.sh`: bare axum endpoints on the same runtime and HTTP stack
//! as kb, with no middleware, database or index.
//!
//! - `GET /bare`: a small JSON object (57 bytes), the cost of HTTP alone.
//! - `GET /questions/{id}`: a body of `SIZE` bytes per id (1 to `N`), made at start and looked
//!   up in memory by id: what a GET by id would cost if reading and rendering a question were
//!   free. `benches/load.sh` sets `SIZE` to the mean size of kb's own answers.
//!
//! `cargo run --release --example bare -- 127.0.0.1:8090 [N] [SIZE]`

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Serialize;
use std::sync::Arc;

#[derive(Serialize)]
struct Reply {
    id: i64,
    title: &'static str,
    difficulty: &'static str,
}

/// One JSON body of exactly `size` bytes (at least the wrapper's) for `id`.
fn body(id: usize, size: usize) -> Bytes {
    let head = format!("{{\"id\":{id},\"title\":\"");
    let tail = "\"}";
    let fill = size.saturating_sub(head.len() + tail.len());
    let mut text = head;
    text.extend(std::iter::repeat_n('x', fill));
    text.push_str(tail);
    Bytes::from(text)
}

async fn question(State(bodies): State<Arc<Vec<Bytes>>>, Path(id): Path<usize>) -> Response {
    match id.checked_sub(1).and_then(|i| bodies.get(i)) {
        Some(b) => ([(header::CONTENT_TYPE, "application/json")], b.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8090".into());
    let n: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let size: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(1116);
    let bodies = Arc::new((1..=n).map(|id| body(id, size)).collect::<Vec<_>>());
    let app = axum::Router::new()
        .route(
            "/bare",
            get(|| async {
                axum::Json(Reply {
                    id: 16,
                    title: "GMP 指的是什么？",
                    difficulty: "medium",
                })
            }),
        )
        .route("/questions/{id}", get(question))
        .with_state(bodies);
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
