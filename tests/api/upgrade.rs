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

/// The fixture's quiz session was made to last a day from when it was written; it is opened
/// here as on that day, so the test does not expire with it.
const KEEP_SESSIONS: &str = "UPDATE quiz_sessions SET expires_at = 4102444800000000";
/// The same on PostgreSQL, whose dump leaves the search path empty.
const KEEP_SESSIONS_PG: &str = "UPDATE public.quiz_sessions SET expires_at = 4102444800000000";

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
            let file = dir.join("kb.sqlite3");
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(async move {
                        use sqlx::Connection;
                        let url = format!("sqlite://{}", file.display());
                        let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                        sqlx::raw_sql(KEEP_SESSIONS).execute(&mut c).await.unwrap();
                        c.close().await.unwrap();
                    })
            })
            .join()
            .unwrap();
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
                        sqlx::raw_sql(KEEP_SESSIONS_PG)
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
    let expected = serde_json::from_str::<serde_json::Value>(&read("due.json")).unwrap();
    let expected = expected["items"].as_array().unwrap();
    // The list is as of now: a reviewed card that was not yet due when the fixture was
    // written may be due today. Such a card must be due by now; everything else is as it was.
    let now = chrono::Utc::now();
    let (since, as_then): (Vec<_>, Vec<_>) = due.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .partition(|item| !item["due"].is_null() && !expected.contains(item));
    assert_eq!(&as_then, expected);
    for item in since {
        let at: chrono::DateTime<chrono::Utc> = item["due"].as_str().unwrap().parse().unwrap();
        assert!(at <= now, "{item}");
    }

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

#[tokio::test]
async fn a_card_written_by_the_previous_release_takes_a_new_review_as_it_would_have() {
    use crate::helpers::db_rows;
    let app = TestApp::empty().await.restart(install_fixture).await;
    let row = |sql: &str| db_rows(app.dir.path(), sql).into_iter().next().unwrap();
    // alice reviewed question 3 once, before reviews kept the state they led to.
    let old_card: Vec<String> = row(
        "SELECT CAST(stability AS TEXT) || ' ' || CAST(difficulty AS TEXT) || ' '
                || CAST(last_review AS TEXT)
         FROM review_cards WHERE learner = 'alice' AND question_id = 3",
    )
    .split(' ')
    .map(str::to_string)
    .collect();
    assert_eq!(
        row(
            "SELECT coalesce(CAST(stability AS TEXT), 'none') FROM reviews
             WHERE learner = 'alice' AND question_id = 3"
        ),
        "none"
    );
    let (stability, difficulty): (f64, f64) =
        (old_card[0].parse().unwrap(), old_card[1].parse().unwrap());
    let last = chrono::DateTime::from_timestamp_micros(old_card[2].parse().unwrap()).unwrap();

    let at = chrono::Utc::now() - chrono::Duration::minutes(1);
    let r = app
        .post(
            "/api/v1/learners/alice/reviews",
            serde_json::json!({"question_id": 3, "rating": "good", "reviewed_at": at.to_rfc3339()}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let expected = kb::quiz::schedule(
        Some((stability as f32, difficulty as f32, last)),
        kb::quiz::Rating::Good,
        at,
    )
    .unwrap();
    let r = r.json();
    assert_eq!(r["stability"].as_f64().unwrap() as f32, expected.stability);
    assert_eq!(
        r["difficulty"].as_f64().unwrap() as f32,
        expected.difficulty
    );
    assert_eq!(r["interval_days"].as_f64().unwrap(), expected.interval_days);
    // The card was replayed from its first review, which now keeps the state the old card
    // held.
    let states = db_rows(
        app.dir.path(),
        "SELECT coalesce(CAST(stability AS TEXT), 'none') FROM reviews
         WHERE learner = 'alice' AND question_id = 3 ORDER BY reviewed_at",
    );
    assert_eq!(states.len(), 2);
    assert_eq!(states[0], old_card[0]);
}
