//! Search latency over a generated corpus (100,000 questions by default), measured through the
//! service layer: index query, re-reading the hits from SQLite, and highlighting.
//!
//! `cargo bench --bench search` prints p50/p99 per query and overall, then criterion's figures.
//! `KB_BENCH_QUESTIONS=N` changes the corpus size; `KB_BENCH_DIR=path` keeps the corpus
//! between runs under `path/search-N` (built only when it has no database yet).

mod common;

use common::{corpus, data_dir, env_or, percentile};
use criterion::Criterion;
use kb::domain::SearchQuery;
use std::time::Instant;

const QUERIES: &[&str] = &[
    "GMP 调度器",
    "sync.Mutex 原理",
    "三色标记 写屏障",
    "一致性哈希",
    "TCP 三次握手",
    "缓存雪崩",
    "goroutine channel 区别",
    "waitgrop",
    "事务隔离级别 MVCC",
    "redo log binlog",
    "为什么需要 Raft 选主",
    "零拷贝 epoll",
];

fn request(q: &str) -> SearchQuery {
    SearchQuery {
        text: q.to_string(),
        limit: 10,
        ..Default::default()
    }
}

fn main() {
    let n: u64 = env_or("KB_BENCH_QUESTIONS", 100_000);
    let (dir, _tmp) = data_dir(&format!("search-{n}"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let service = rt.block_on(corpus(&dir, n));

    // Latency distribution at concurrency 1.
    let rounds: usize = std::env::var("KB_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut all = Vec::new();
    println!("{:<28} {:>8} {:>9} {:>9}", "query", "hits", "p50", "p99");
    for q in QUERIES {
        for _ in 0..20 {
            rt.block_on(service.search(request(q), false, None))
                .unwrap();
        }
        let mut times = Vec::with_capacity(rounds);
        let mut total = 0;
        for _ in 0..rounds {
            let t = Instant::now();
            let page = rt
                .block_on(service.search(request(q), false, None))
                .unwrap();
            times.push(t.elapsed());
            total = page.total;
        }
        times.sort();
        println!(
            "{:<28} {:>8} {:>9.2?} {:>9.2?}",
            q,
            total,
            percentile(&times, 0.5),
            percentile(&times, 0.99)
        );
        all.extend(times);
    }
    all.sort();
    println!(
        "{:<28} {:>8} {:>9.2?} {:>9.2?}   ({} searches over {n} questions)",
        "ALL",
        "",
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.len()
    );

    let mut c = Criterion::default().configure_from_args();
    let mut i = 0;
    c.bench_function(&format!("search/{n}/mixed-queries"), |b| {
        b.iter(|| {
            i = (i + 1) % QUERIES.len();
            rt.block_on(service.search(request(QUERIES[i]), false, None))
                .unwrap()
        })
    });
    c.final_summary();
    rt.block_on(service.shutdown());
}
