//! Shared by the benchmarks: a generated corpus in a data directory, and latency percentiles.

use kb::domain::{CategoryName, Slug};
use kb::service::Service;
use kb::store::Store;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Opens (building it on first use) a corpus of `n` generated questions under `dir`, starts the
/// service on it and waits until the search index is ready.
pub async fn corpus(dir: &Path, n: u64) -> Service {
    std::fs::create_dir_all(dir).unwrap();
    let db = dir.join("kb.sqlite3");
    let fresh = !db.exists();
    let store = Store::open(&db).await.expect("open store");
    if fresh {
        let started = Instant::now();
        for (slug, name) in kb::generate::CATEGORIES {
            store
                .create_category(
                    &Slug::parse(slug).unwrap(),
                    &CategoryName::parse(name).unwrap(),
                )
                .await
                .unwrap();
        }
        for start in (0..n).step_by(1000) {
            let batch: Vec<_> = (start..(start + 1000).min(n))
                .map(|i| kb::generate::question(1, i).to_new_question().unwrap())
                .collect();
            store.create_questions(&batch).await.unwrap();
        }
        eprintln!("inserted {n} questions in {:.1?}", started.elapsed());
    }
    let started = Instant::now();
    let service = Service::start(store, &dir.join("index"))
        .await
        .expect("start");
    while service.ready().await.is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("service ready in {:.1?}", started.elapsed());
    service
}

/// `KB_BENCH_DIR/<name>` when set (kept between runs), else a fresh temporary directory.
pub fn data_dir(name: &str) -> (PathBuf, Option<tempfile::TempDir>) {
    match std::env::var_os("KB_BENCH_DIR") {
        Some(d) => (PathBuf::from(d).join(name), None),
        None => {
            let tmp = tempfile::tempdir().unwrap();
            (tmp.path().to_path_buf(), Some(tmp))
        }
    }
}

pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}
