use crate::helpers::TestApp;

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let generated = kb::http::openapi().to_pretty_json().unwrap() + "\n";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    if committed != generated {
        if std::env::var_os("KB_UPDATE_OPENAPI").is_some() {
            std::fs::write(path, &generated).unwrap();
            return;
        }
        panic!(
            "openapi/openapi.json is out of date with the routes.\n\
             Regenerate it with: cargo run -- openapi > openapi/openapi.json\n\
             (or: KB_UPDATE_OPENAPI=1 cargo test openapi)"
        );
    }
}

#[tokio::test]
async fn the_served_document_is_the_committed_one_and_docs_are_served() {
    let app = TestApp::empty().await;
    let served = app.get("/openapi.json").await.json();
    let committed: serde_json::Value =
        serde_json::from_str(include_str!("../../openapi/openapi.json")).unwrap();
    assert_eq!(served, committed);
    assert!(served["openapi"].as_str().unwrap().starts_with("3.1"));
    let docs = app.get("/docs/").await;
    assert_eq!(docs.status, 200);
    assert!(String::from_utf8_lossy(&docs.body).contains("swagger"));
}

#[test]
fn every_operation_has_a_summary_a_tag_and_documents_its_errors() {
    let doc = serde_json::to_value(kb::http::openapi()).unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let name = format!("{method} {path}");
            assert!(op["summary"].is_string(), "{name} has no summary");
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{name} has no tag"
            );
            let codes: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
            if path.contains("{id}") {
                assert!(
                    codes.iter().any(|c| *c == "404"),
                    "{name} does not document 404"
                );
            }
            // A POST without a body (a ping, a retry, a rotation) has no body to refuse.
            if (method == "post" || method == "patch") && op.get("requestBody").is_some() {
                for c in ["400", "415", "422"] {
                    assert!(
                        codes.iter().any(|k| *k == c),
                        "{name} does not document {c}"
                    );
                }
            }
        }
    }
}
