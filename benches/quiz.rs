//! The cost of a quiz draw must not grow with the table: draws of 10 questions at 1,000 and at
//! 1,000,000 questions, unfiltered, with one filter, and with two (rejection sampling).
//!
//! `cargo bench --bench quiz` prints p50/p99 per case and size, then the ratio 1M / 1k.
//! `KB_BENCH_DIR=path` keeps the two corpora between runs (the 1M one takes minutes to build).

mod common;

use common::{corpus, data_dir, env_or, percentile};
use criterion::Criterion;
use kb::domain::{Difficulty, QuizFilter, Slug};
use kb::service::{DrawRequest, QuizMode, Service};
use std::time::{Duration, Instant};

fn cases() -> Vec<(&'static str, QuizFilter)> {
    vec![
        ("all", QuizFilter::default()),
        (
            "category",
            QuizFilter {
                category: Some(Slug::parse("database").unwrap()),
                ..Default::default()
            },
        ),
        (
            "category+difficulty",
            QuizFilter {
                category: Some(Slug::parse("golang").unwrap()),
                difficulty: Some(Difficulty::Hard),
                ..Default::default()
            },
        ),
    ]
}

fn request(filter: &QuizFilter) -> DrawRequest {
    DrawRequest {
        filter: filter.clone(),
        count: 10,
        mode: QuizMode::Flashcard,
        session: None,
        seed: None,
    }
}

fn measure(
    rt: &tokio::runtime::Runtime,
    service: &Service,
    filter: &QuizFilter,
    rounds: usize,
) -> (Duration, Duration) {
    for _ in 0..50 {
        rt.block_on(service.draw(request(filter))).unwrap();
    }
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            let items = rt.block_on(service.draw(request(filter))).unwrap();
            assert_eq!(items.len(), 10);
            t.elapsed()
        })
        .collect();
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99))
}

fn main() {
    let rounds: usize = env_or("KB_BENCH_ROUNDS", 1000);
    let large: u64 = env_or("KB_BENCH_LARGE", 1_000_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut results = Vec::new();
    let mut services = Vec::new();
    let mut dirs = Vec::new();
    for n in [1_000, large] {
        let (dir, tmp) = data_dir(&format!("quiz-{n}"));
        let service = rt.block_on(corpus(&dir, n));
        for (name, filter) in cases() {
            let (p50, p99) = measure(&rt, &service, &filter, rounds);
            results.push((n, name, p50, p99));
        }
        services.push((n, service));
        dirs.push(tmp);
    }
    println!(
        "{:<22} {:>10} {:>10} {:>10}",
        "case", "questions", "p50", "p99"
    );
    for (n, name, p50, p99) in &results {
        println!("{name:<22} {n:>10} {p50:>10.2?} {p99:>10.2?}");
    }
    for (name, _) in cases() {
        let at = |n: u64| results.iter().find(|r| r.0 == n && r.1 == name).unwrap();
        let (small, big) = (at(1_000), at(large));
        println!(
            "{name:<22} p50 ratio {:.2}, p99 ratio {:.2} ({large} vs 1000)",
            big.2.as_secs_f64() / small.2.as_secs_f64(),
            big.3.as_secs_f64() / small.3.as_secs_f64()
        );
    }
    let mut c = Criterion::default().configure_from_args();
    for (n, service) in &services {
        c.bench_function(&format!("quiz/draw10/{n}"), |b| {
            b.iter(|| {
                rt.block_on(service.draw(request(&QuizFilter::default())))
                    .unwrap()
            })
        });
    }
    c.final_summary();
    for (_, s) in services {
        rt.block_on(s.shutdown());
    }
}
