//! A knowledge base written by an earlier release opens unchanged: the files under
//! `tests/fixtures/release-8af9355/` were written by kb at commit 8af9355 (the release before
//! the store was rewritten; `make.sh` there says how), in SQLite and in PostgreSQL, together
//! with what that release answered about them.

use crate::helpers::{TestApp, database_url_for, on_postgres};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    let store = if on_postgres() { "postgres" } else { "sqlite" };
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/release-8af9355")
        .join(store)
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

/// Replaces the data directory's database with the fixture's, and drops the search index so
/// it is built from that database.
fn install_fixture(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir.join("index"));
    match database_url_for(dir) {
        None => {
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(dir.join(format!("kb.sqlite3{suffix}")));
            }
            std::fs::copy(fixture("kb.sqlite3"), dir.join("kb.sqlite3")).unwrap();
        }
        Some(url) => {
            // psql's meta-commands (`\restrict`) are not SQL.
            let dump: String = read("dump.sql")
                .lines()
                .filter(|l| !l.starts_with('\\'))
                .map(|l| format!("{l}\n"))
                .collect();
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(async move {
                        use sqlx::Connection;
                        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
                        sqlx::raw_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
                            .execute(&mut c)
                            .await
                            .unwrap();
                        sqlx::raw_sql(sqlx::AssertSqlSafe(dump))
                            .execute(&mut c)
                            .await
                            .unwrap();
                        c.close().await.unwrap();
                    })
            })
            .join()
            .unwrap();
        }
    }
}

#[tokio::test]
async fn a_knowledge_base_written_by_the_previous_release_opens_and_answers_as_it_did() {
    let app = TestApp::empty().await.restart(install_fixture).await;

    let export = app.get("/api/v1/export").await;
    assert_eq!(export.status, 200);
    assert_eq!(
        crate::helpers::export_content(&String::from_utf8_lossy(&export.body)),
        crate::helpers::export_content(&read("export.ndjson"))
    );

    let due = app.get("/api/v1/learners/alice/due?limit=100").await;
    assert_eq!(due.status, 200);
    assert_eq!(
        due.json(),
        serde_json::from_str::<serde_json::Value>(&read("due.json")).unwrap()
    );

    // The index was built from the old database: its writes are searchable, its deletes not.
    let hits = app.search_titles("多版本并发", "").await;
    assert_eq!(hits.first().map(String::as_str), Some("MVCC 是什么"));
    assert_eq!(app.get("/api/v1/questions/2").await.status, 404);

    // The quiz session it handed out goes on where it stopped: three questions were served,
    // and the rest of its pool comes without repeats until it is exhausted.
    let token = read("session");
    let mut seen = HashSet::new();
    loop {
        let r = app
            .get(&format!("/api/v1/quiz?count=5&session={}", token.trim()))
            .await;
        if r.status == 409 {
            break;
        }
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        for item in r.json()["items"].as_array().unwrap() {
            assert!(seen.insert(item["question"]["id"].as_i64().unwrap()));
        }
    }
    let golang = app.get("/api/v1/categories/golang").await.json();
    assert_eq!(
        seen.len() as i64,
        golang["question_count"].as_i64().unwrap() - 3
    );
}
