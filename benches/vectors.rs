//! The exact vector scan of search by meaning (`search/vectors.rs`) at growing sizes: how long
//! one search over every vector takes, to say up to where exact search is fast enough and
//! where an approximate index would have to take over (docs/benchmarks.md).
//!
//!     cargo bench --bench vectors
//!     SIZES="100000 1000000" cargo bench --bench vectors

use kb::search::{VectorFields, VectorFilter, VectorIndex};
use std::time::Instant;

const DIM: usize = 384;

/// A deterministic pseudo-random unit vector (xorshift), no dependency needed.
fn vector(seed: &mut u64) -> Vec<f32> {
    let mut v: Vec<f32> = (0..DIM)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            (*seed % 2001) as f32 / 1000.0 - 1.0
        })
        .collect();
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
    println!("| vectors | median ms | p99 ms | filtered to a category (1/8) ms |");
    println!("|---:|---:|---:|---:|");
    for n in sizes {
        let idx = VectorIndex::new();
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for id in 1..=n as i64 {
            idx.set_vector(id, &vector(&mut seed));
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
        for _ in 0..50 {
            let q = vector(&mut seed);
            let t = Instant::now();
            let hits = idx.search(&q, 100, VectorFilter::default(), None);
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(hits.len(), 100);
            let t = Instant::now();
            let f = VectorFilter {
                category: Some("c3"),
                ..Default::default()
            };
            idx.search(&q, 100, f, None);
            filtered.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        filtered.sort_by(f64::total_cmp);
        println!(
            "| {n} | {:.2} | {:.2} | {:.2} |",
            times[times.len() / 2],
            times[times.len() * 99 / 100],
            filtered[filtered.len() / 2]
        );
    }
}
