//! A batch of 1,000 reviews over a knowledge base of 100,000 questions must take at most a
//! second. Each batch goes through the real router in-process: JSON parsing, checking each
//! review, and the one transaction that merges them and replays their cards.
//!
//! Four cases, each timed over several batches (`KB_BENCH_BATCHES`, default 10), every batch
//! for a learner of its own with 1,000 distinct questions drawn at random:
//! - `new`: 1,000 reviews of questions the learner never reviewed;
//! - `append`: 1,000 reviews dated after each card's 10 earlier reviews (the usual sync: one
//!   FSRS step per card);
//! - `late`: 1,000 reviews dated in the middle of each card's history (a device that was
//!   offline: each card replayed from there, its 6 later reviews restated);
//! - `again`: the `late` batch sent again (all duplicates: nothing is written).
//!
//! `cargo bench --bench reviews` prints p50 and max per case on SQLite, and on PostgreSQL too
//! when `KB_BENCH_DATABASE_URL` names a server (a database of its own is created there and
//! dropped at the end). `KB_BENCH_QUESTIONS=N` changes the corpus size; `KB_BENCH_DIR=path`
//! keeps the SQLite corpus between runs. Not a test, and not in CI.

// `corpus` is for the benchmarks that work on the service alone; this one builds an App.
#[allow(dead_code)]
mod common;

use axum::body::Body;
use axum::http::Request;
use chrono::{Duration as Days, Utc};
use common::{data_dir, env_or, import_generated};
use http_body_util::BodyExt;
use kb::App;
use kb::config::Config;
use rand::seq::index;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};
use tower::ServiceExt;

const KEY: &str = "bench-admin-key-of-at-least-32-characters";
const BATCH: usize = 1000;
/// Reviews each card has before the `append` and `late` batches.
const HISTORY: i64 = 10;
const RATINGS: [&str; 4] = ["again", "hard", "good", "easy"];

/// One review of a batch: question, rating, days ago.
fn review(learner: &str, question: u64, rating: &str, days_ago: f64) -> Value {
    let at = Utc::now() - Days::milliseconds((days_ago * 86_400_000.0) as i64);
    json!({
        "review_id": format!("{learner}:{question}:{}", at.timestamp_micros()),
        "question_id": question,
        "rating": rating,
        "reviewed_at": at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    })
}

/// Sends a batch and checks how many reviews had each status; returns how long it took.
async fn send(app: &App, learner: &str, reviews: &[Value], expect: &str) -> Duration {
    let body = json!({ "reviews": reviews }).to_string();
    let request = Request::post(format!("/api/v1/learners/{learner}/reviews/batch"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {KEY}"))
        .body(Body::from(body))
        .unwrap();
    let started = Instant::now();
    let response = app.router().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let took = started.elapsed();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), reviews.len());
    assert!(
        results.iter().all(|r| r["status"] == expect),
        "expected every review {expect}: {}",
        results.iter().find(|r| r["status"] != expect).unwrap()
    );
    took
}

struct Case {
    name: &'static str,
    times: Vec<Duration>,
}

impl Case {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            times: Vec::new(),
        }
    }
}

/// Runs every case over `batches` batches against the app; the knowledge base holds `n`
/// questions with ids 1 to `n`.
async fn measure(app: &App, n: u64, batches: usize, run: &str) -> Vec<Case> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut cases = ["new", "append", "late", "again"].map(Case::new);
    for b in 0..batches {
        let pick = |rng: &mut rand::rngs::StdRng| -> Vec<u64> {
            index::sample(rng, n as usize, BATCH)
                .into_iter()
                .map(|i| i as u64 + 1)
                .collect()
        };
        let rating = |rng: &mut rand::rngs::StdRng| RATINGS[rng.random_range(0..4)];

        let learner = format!("new{run}x{b}");
        let questions = pick(&mut rng);
        let reviews: Vec<Value> = questions
            .iter()
            .map(|&q| review(&learner, q, rating(&mut rng), 1.0))
            .collect();
        cases[0]
            .times
            .push(send(app, &learner, &reviews, "applied").await);

        // A learner with ten reviews of each card, 25 days apart (not timed).
        let learner = format!("hist{run}x{b}");
        let questions = pick(&mut rng);
        for h in 0..HISTORY {
            let days_ago = 260.0 - 25.0 * h as f64;
            let reviews: Vec<Value> = questions
                .iter()
                .map(|&q| review(&learner, q, rating(&mut rng), days_ago))
                .collect();
            send(app, &learner, &reviews, "applied").await;
        }
        let append: Vec<Value> = questions
            .iter()
            .map(|&q| review(&learner, q, rating(&mut rng), 2.0))
            .collect();
        cases[1]
            .times
            .push(send(app, &learner, &append, "applied").await);
        let late: Vec<Value> = questions
            .iter()
            .map(|&q| review(&learner, q, rating(&mut rng), 150.0))
            .collect();
        cases[2]
            .times
            .push(send(app, &learner, &late, "applied").await);
        cases[3]
            .times
            .push(send(app, &learner, &late, "duplicate").await);
        eprintln!("batch {} of {batches} done", b + 1);
    }
    cases.into_iter().collect()
}

fn config(dir: &Path, database_url: Option<&str>) -> Config {
    let mut config = Config::new(dir);
    config.store.database_url = database_url.map(Into::into);
    config.store.no_seed = true;
    config.server.admin_key = Some(KEY.into());
    config.limits.quotas = false;
    config
}

async fn on_sqlite(n: u64, batches: usize, run: &str) -> Vec<Case> {
    let (dir, _tmp) = data_dir(&format!("reviews-{n}"));
    std::fs::create_dir_all(&dir).unwrap();
    let fresh = !dir.join("kb.sqlite3").exists();
    let app = App::build(&config(&dir, None)).await.unwrap();
    if fresh {
        import_generated(app.service(), n).await;
    }
    let cases = measure(&app, n, batches, run).await;
    app.shutdown().await;
    cases
}

async fn on_postgres(server: &str, n: u64, batches: usize, run: &str) -> Vec<Case> {
    use sqlx::Connection;
    let name = format!("kb_bench_reviews_{}", std::process::id());
    let url = match server.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("KB_BENCH_DATABASE_URL={server} names no database"),
    };
    let mut admin = sqlx::PgConnection::connect(server).await.unwrap();
    let create = format!("CREATE DATABASE \"{name}\"");
    sqlx::query(sqlx::AssertSqlSafe(create))
        .execute(&mut admin)
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let app = App::build(&config(tmp.path(), Some(&url))).await.unwrap();
    import_generated(app.service(), n).await;
    let cases = measure(&app, n, batches, run).await;
    app.shutdown().await;
    let drop = format!("DROP DATABASE \"{name}\" WITH (FORCE)");
    sqlx::query(sqlx::AssertSqlSafe(drop))
        .execute(&mut admin)
        .await
        .unwrap();
    cases
}

fn report(store: &str, n: u64, cases: &mut [Case]) {
    for case in cases {
        case.times.sort();
        let p50 = common::percentile(&case.times, 0.5);
        let max = *case.times.last().unwrap();
        println!(
            "{store:<10} {n:>8} {:<8} {:>3} batches  p50 {:>8.1?}  max {:>8.1?}",
            case.name,
            case.times.len(),
            p50,
            max
        );
    }
}

fn main() {
    let n: u64 = env_or("KB_BENCH_QUESTIONS", 100_000);
    let batches: usize = env_or("KB_BENCH_BATCHES", 10);
    let run = Utc::now().timestamp().to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut sqlite = rt.block_on(on_sqlite(n, batches, &run));
    let postgres = std::env::var("KB_BENCH_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .map(|url| rt.block_on(on_postgres(&url, n, batches, &run)));
    println!("store      questions case     batches of {BATCH} reviews");
    report("sqlite", n, &mut sqlite);
    if let Some(mut postgres) = postgres {
        report("postgres", n, &mut postgres);
    }
}
