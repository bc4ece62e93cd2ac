//! Every refusal comes back as one problem shape naming what is wrong.

use reqwest::StatusCode;
use serde_json::json;
use trainyard_api::Limits;
use trainyard_tests::{assert_problem, TestApp};

#[tokio::test]
async fn malformed_bodies_get_problem_details() {
    let app = TestApp::spawn().await;
    let url = format!("{}/api/v1/workspaces", app.base);
    let client = reqwest::Client::new();
    let send = |body: &'static str, content_type: &'static str| {
        client
            .post(&url)
            .bearer_auth(&app.admin)
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    let response = send("{\"name\": ", "application/json").await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "malformed_json");
    assert_eq!(body["type"], "urn:trainyard:problem:malformed_json");

    let response = send("{\"name\": \"ok\"}", "text/plain").await.unwrap();
    assert_eq!(response.status(), 415);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "unsupported_media_type");

    let response = send("{\"name\": \"ok\", \"colour\": 1}", "application/json")
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["code"], "invalid_field");
    assert_eq!(body["field"], "colour");
    assert_eq!(body["detail"], "is not a known field");

    let response = send("{\"name\": \"ok\"} trailing", "application/json")
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn unknown_nested_fields_are_named_with_their_path() {
    let app = TestApp::spawn().await;
    app.workspace("vision").await;
    let answer = app
        .post(
            "/api/v1/workspaces/vision/runs",
            &app.admin,
            json!({ "experiment": "x", "tags": { "a": 1 } }),
        )
        .await;
    assert_problem(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("tags.a"),
    );
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_with_the_limit_named() {
    let app = TestApp::spawn_with(Limits {
        max_request_body_bytes: 2048,
        ..Limits::default()
    })
    .await;
    let answer = app
        .post(
            "/api/v1/workspaces",
            &app.admin,
            json!({ "name": "big", "description": "d".repeat(4000) }),
        )
        .await;
    assert_problem(
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        None,
    );
    assert!(answer.1["detail"].as_str().unwrap().contains("2048"));
    let (_, list) = app.get("/api/v1/workspaces", &app.admin).await;
    assert!(list["items"].as_array().unwrap().is_empty());
    // Just under the limit is fine.
    app.workspace("small").await;
}

#[tokio::test]
async fn bad_path_and_query_parameters_are_named() {
    let app = TestApp::spawn().await;
    app.workspace("vision").await;
    let answer = app
        .get("/api/v1/workspaces/vision/runs/not-a-uuid", &app.admin)
        .await;
    assert_problem(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("run_id"),
    );
    let answer = app
        .get("/api/v1/workspaces/vision/runs?colour=red", &app.admin)
        .await;
    assert_problem(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("colour"),
    );
    let answer = app
        .get("/api/v1/workspaces/vision/runs?limit=0", &app.admin)
        .await;
    assert_problem(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("limit"),
    );
    let answer = app
        .get("/api/v1/workspaces/vision/runs?cursor=xyz", &app.admin)
        .await;
    assert_problem(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("cursor"),
    );
}

#[tokio::test]
async fn unknown_routes_answer_in_the_problem_shape() {
    let app = TestApp::spawn().await;
    let answer = app.get("/api/v1/nothing-here", &app.admin).await;
    assert_problem(&answer, StatusCode::NOT_FOUND, "not_found", None);
}
