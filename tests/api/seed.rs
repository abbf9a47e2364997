use crate::helpers::TestApp;
use serde_json::Value;

fn seed_file() -> Value {
    serde_json::from_str(include_str!("../../seed/seed.json")).unwrap()
}

#[tokio::test]
async fn the_seed_loads_all_29_questions_with_their_answers_verbatim() {
    let app = TestApp::seeded().await;
    let items = app.list_all("limit=100").await;
    assert_eq!(items.len(), 29);
    let seed = seed_file();
    for (stored, source) in items.iter().zip(seed["questions"].as_array().unwrap()) {
        assert_eq!(stored["title"], source["title"]);
        assert_eq!(stored["category"]["slug"], source["category"]);
        assert_eq!(stored["difficulty"], source["difficulty"]);
        assert_eq!(stored["tags"], source["tags"]);
        let answers = stored["answers"].as_array().unwrap();
        assert!(!answers.is_empty(), "{} has no answer", stored["title"]);
        assert_eq!(answers[0]["body"], source["answers"][0]["body"]);
    }
    // The user's text is kept as written, typos included.
    assert!(
        items
            .iter()
            .any(|q| q["title"] == "你能说说go语言中的垃圾回么？")
    );
    let zk = items
        .iter()
        .find(|q| q["title"] == "zookeeper 分布式锁")
        .unwrap();
    assert!(
        zk["answers"][0]["body"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );
}

#[tokio::test]
async fn the_seed_has_both_categories_with_their_counts() {
    let app = TestApp::seeded().await;
    let cats = app.get("/api/v1/categories").await.json();
    assert_eq!(
        cats,
        serde_json::json!([
            {"slug": "distributed", "name": "分布式", "question_count": 6},
            {"slug": "golang", "name": "Golang", "question_count": 23},
        ])
    );
}

#[tokio::test]
async fn restarting_never_duplicates_the_seed() {
    let app = TestApp::seeded().await;
    let app = app.restart(|_| {}).await;
    assert_eq!(app.list_all("limit=100").await.len(), 29);
}

#[tokio::test]
async fn deleting_every_question_does_not_bring_the_seed_back_on_restart() {
    let app = TestApp::seeded().await;
    for q in app.list_all("limit=100").await {
        let r = app
            .delete(&format!("/api/v1/questions/{}", q["id"]), None)
            .await;
        assert_eq!(r.status, 204);
    }
    let app = app.restart(|_| {}).await;
    assert!(app.list_all("").await.is_empty());
}

#[tokio::test]
async fn no_seed_leaves_the_database_empty() {
    let app = TestApp::with(|c| c.store.no_seed = true).await;
    assert!(app.list_all("").await.is_empty());
    assert_eq!(
        app.get("/api/v1/categories").await.json(),
        serde_json::json!([])
    );
}
