//! The exact vector scan of search by meaning (`search/vectors.rs`) at growing sizes: how long
//! one search over every vector takes, to say up to where exact search is fast enough and
//! where an approximate index would have to take over (docs/benchmarks.md).
//!
//!     cargo bench --bench vectors
//!     SIZES="100000 1000000" cargo bench --bench vectors

use kb::search::{VectorFields, VectorFilter, VectorIndex};
use std::time::Instant;

const DIM: usize = 384;

fn next(seed: &mut u64) -> f32 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    (*seed % 2001) as f32 / 1000.0 - 1.0
}

/// A deterministic pseudo-random unit vector (xorshift), near one of `centres` as questions of
/// one topic are (uniform noise would be the worst case for the approximate search, and is
/// not what embeddings look like), no dependency needed.
fn vector(seed: &mut u64, centres: &[Vec<f32>]) -> Vec<f32> {
    let c = &centres[(next(seed).abs() * (centres.len() - 1) as f32) as usize];
    let mut v: Vec<f32> = c.iter().map(|x| x + 0.6 * next(seed)).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

fn main() {
    let sizes: Vec<usize> = std::env::var("SIZES")
        .unwrap_or_else(|_| "10000 100000 300000 1000000".into())
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    println!(
        "| vectors | exact median ms | exact p99 ms | exact, one category (1/8) ms | approximate median ms | approximate p99 ms | approximate recall@100 |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for n in sizes {
        let idx = VectorIndex::new();
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let centres: Vec<Vec<f32>> = (0..(n / 300).max(1))
            .map(|_| (0..DIM).map(|_| next(&mut seed)).collect())
            .collect();
        for id in 1..=n as i64 {
            idx.set_vector(id, &vector(&mut seed, &centres));
            idx.set_fields(
                id,
                &VectorFields {
                    category: format!("c{}", id % 8),
                    tags: vec![],
                    difficulty: "easy".into(),
                },
            );
        }
        let mut times = Vec::new();
        let mut filtered = Vec::new();
        let mut approx = Vec::new();
        let mut recall = 0.0;
        let runs = 50;
        for _ in 0..runs {
            let q = vector(&mut seed, &centres);
            let t = Instant::now();
            let hits = idx.search_exact(&q, 100, VectorFilter::default(), None);
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(hits.len(), 100);
            let t = Instant::now();
            let f = VectorFilter {
                category: Some("c3"),
                ..Default::default()
            };
            idx.search_exact(&q, 100, f, None);
            filtered.push(t.elapsed().as_secs_f64() * 1000.0);
            let t = Instant::now();
            let near = idx.search_approximate(&q, 100, VectorFilter::default(), None);
            approx.push(t.elapsed().as_secs_f64() * 1000.0);
            let exact: std::collections::HashSet<i64> = hits.iter().map(|h| h.0).collect();
            recall += near.iter().filter(|h| exact.contains(&h.0)).count() as f64 / 100.0;
        }
        for v in [&mut times, &mut filtered, &mut approx] {
            v.sort_by(f64::total_cmp);
        }
        let p = |v: &Vec<f64>, q: usize| v[v.len() * q / 100];
        println!(
            "| {n} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.3} |",
            p(&times, 50),
            p(&times, 99),
            p(&filtered, 50),
            p(&approx, 50),
            p(&approx, 99),
            recall / runs as f64
        );
    }
}
