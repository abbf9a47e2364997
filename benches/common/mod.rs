//! Shared by the benchmarks: a generated corpus in a data directory, and latency percentiles.

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
    let started = Instant::now();
    let service = Service::start(store, &dir.join("index"))
        .await
        .expect("start");
    while service.ready().await.is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("service ready in {:.1?}", started.elapsed());
    if fresh {
        import_generated(&service, n).await;
    }
    service
}

/// Imports `n` generated questions (ids 1 to `n` in an empty knowledge base).
pub async fn import_generated(service: &Service, n: u64) {
    let started = Instant::now();
    let mut importer = service.importer();
    for i in 0..n {
        let mut line = serde_json::to_vec(&kb::generate::question(1, i)).unwrap();
        line.push(b'\n');
        importer.push_ndjson(&line).await.unwrap();
    }
    let report = importer.finish().await.unwrap();
    assert_eq!(report.created, n, "{:?}", report.errors);
    eprintln!("imported {n} questions in {:.1?}", started.elapsed());
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
