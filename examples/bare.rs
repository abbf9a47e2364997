//! The ceiling for `benches/load.sh`: a bare axum endpoint answering a small JSON object, on
//! the same runtime and HTTP stack as kb but with no middleware, database or index.
//!
//! `cargo run --release --example bare -- 127.0.0.1:8090`

use axum::routing::get;
use serde::Serialize;

#[derive(Serialize)]
struct Reply {
    id: i64,
    title: &'static str,
    difficulty: &'static str,
}

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".into());
    let app = axum::Router::new().route(
        "/bare",
        get(|| async {
            axum::Json(Reply {
                id: 16,
                title: "GMP 指的是什么？",
                difficulty: "medium",
            })
        }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    axum::serve(listener, app).await.expect("serve");
}
