//! The checked-in OpenAPI document matches the code, and the server serves it.

use std::path::PathBuf;
use trainyard_tests::TestApp;

#[test]
fn the_checked_in_openapi_document_is_up_to_date() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json");
    let mut expected = trainyard_api::openapi_document().to_pretty_json().unwrap();
    expected.push('\n');
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "openapi/openapi.json is stale; regenerate it with `cargo run -p trainyard -- openapi --out openapi/openapi.json`"
    );
}

#[tokio::test]
async fn the_document_and_the_docs_page_are_served() {
    let app = TestApp::spawn().await;
    let document: serde_json::Value = reqwest::get(format!("{}/api/v1/openapi.json", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(document["info"]["version"], trainyard_api::API_VERSION);
    for path in [
        "/api/v1/workspaces/{workspace}/runs",
        "/api/v1/workspaces/{workspace}/runs/{run_id}/cancel",
        "/readyz",
    ] {
        assert!(document["paths"].get(path).is_some(), "{path} missing");
    }
    let page = reqwest::get(format!("{}/api/v1/docs/", app.base))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("swagger"));
}
