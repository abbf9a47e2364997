use crate::helpers::{TestApp, question};
use serde_json::json;

#[tokio::test]
async fn answers_can_be_added_listed_read_updated_and_deleted() {
    let app = TestApp::empty().await;
    let q = app.create_question(question("t")).await;
    let qid = q["id"].as_i64().unwrap();
    let list = format!("/api/v1/questions/{qid}/answers");
    assert_eq!(app.get(&list).await.json(), json!([]));

    let r = app.post(&list, json!({"body": "first"})).await;
    assert_eq!(r.status, 201);
    let a = r.json();
    let uri = format!("/api/v1/answers/{}", a["id"]);
    assert_eq!(r.header("location"), uri);
    assert_eq!(r.header("etag"), format!("\"a{}v1\"", a["id"]));
    assert_eq!(a["question_id"], qid);
    app.post(&list, json!({"body": "second"})).await;

    let bodies: Vec<String> = app
        .get(&list)
        .await
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["body"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(bodies, ["first", "second"], "oldest first");

    let r = app
        .patch(
            &uri,
            json!({"body": "first, improved"}),
            Some(&format!("\"a{}v1\"", a["id"])),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["version"], 2);
    assert_eq!(app.get(&uri).await.json()["body"], "first, improved");

    assert_eq!(app.delete(&uri, None).await.status, 204);
    app.get(&uri).await.assert_problem(404, "answer_not_found");
    assert_eq!(app.get(&list).await.json().as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn every_answer_change_bumps_the_question_version_and_etag() {
    let app = TestApp::empty().await;
    let q = app.create_question(question("t")).await;
    let quri = format!("/api/v1/questions/{}", q["id"]);
    let a = app
        .post(&format!("{quri}/answers"), json!({"body": "a"}))
        .await
        .json();
    assert_eq!(app.get(&quri).await.json()["version"], 2);
    let auri = format!("/api/v1/answers/{}", a["id"]);
    app.patch(&auri, json!({"body": "b"}), None).await;
    assert_eq!(app.get(&quri).await.json()["version"], 3);
    app.delete(&auri, None).await;
    let after = app.get(&quri).await;
    assert_eq!(after.json()["version"], 4);
    assert_eq!(after.header("etag"), format!("\"q{}v4\"", q["id"]));
}

#[tokio::test]
async fn answer_writes_honour_if_match_and_if_none_match() {
    let app = TestApp::empty().await;
    let q = app
        .create_question(json!({"title": "t", "category": "golang", "answers": [{"body": "a"}]}))
        .await;
    let id = q["answers"][0]["id"].as_i64().unwrap();
    let uri = format!("/api/v1/answers/{id}");
    let stale = format!("\"a{id}v0\"");
    app.patch(&uri, json!({"body": "b"}), Some(&stale))
        .await
        .assert_problem(412, "precondition_failed");
    app.patch(&uri, json!({}), Some(&stale))
        .await
        .assert_problem(412, "precondition_failed");
    app.delete(&uri, Some(&stale))
        .await
        .assert_problem(412, "precondition_failed");
    let current = format!("\"a{id}v1\"");
    let r = app
        .request(
            axum::http::Method::GET,
            &uri,
            &[("if-none-match", &current)],
            None,
        )
        .await;
    assert_eq!(r.status, 304);
    assert_eq!(
        app.patch(&uri, json!({}), Some(&current)).await.json()["version"],
        1
    );
}

#[tokio::test]
async fn answers_of_a_missing_question_are_not_found() {
    let app = TestApp::empty().await;
    app.get("/api/v1/questions/999/answers")
        .await
        .assert_problem(404, "question_not_found");
    app.post("/api/v1/questions/999/answers", json!({"body": "x"}))
        .await
        .assert_problem(404, "question_not_found");
}

#[tokio::test]
async fn an_answer_needs_a_nonblank_body() {
    let app = TestApp::empty().await;
    let q = app.create_question(question("t")).await;
    let list = format!("/api/v1/questions/{}/answers", q["id"]);
    let p = app
        .post(&list, json!({}))
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(p["errors"][0]["field"], "body");
    app.post(&list, json!({"body": "  \n "}))
        .await
        .assert_problem(422, "validation_failed");
    app.post(&list, json!({"body": "x".repeat(100_001)}))
        .await
        .assert_problem(422, "validation_failed");
    let p = app
        .post(
            "/api/v1/questions",
            json!({"title": "t", "category": "golang", "answers": [{"body": "ok"}, {"body": ""}]}),
        )
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(p["errors"][0]["field"], "answers[1].body");
}

#[tokio::test]
async fn an_answer_body_cannot_be_patched_to_null() {
    let app = TestApp::empty().await;
    let q = app
        .create_question(json!({"title": "t", "category": "golang", "answers": [{"body": "a"}]}))
        .await;
    let uri = format!("/api/v1/answers/{}", q["answers"][0]["id"]);
    let p = app
        .patch(&uri, json!({"body": null}), None)
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(p["errors"][0]["message"], "cannot be null");
    assert_eq!(app.get(&uri).await.json()["body"], "a");
}
