use reqwest::StatusCode;
use serde_json::json;
use trainyard_tests::{assert_problem, TestApp};

#[tokio::test]
async fn an_admin_creates_gets_and_lists_workspaces() {
    let app = TestApp::spawn().await;
    let created = app.workspace("vision").await;
    assert_eq!(created["name"], "vision");
    app.workspace("nlp").await;

    let (status, by_name) = app.get("/api/v1/workspaces/vision", &app.admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_name["id"], created["id"]);
    let id = created["id"].as_str().unwrap();
    let (_, by_id) = app
        .get(&format!("/api/v1/workspaces/{id}"), &app.admin)
        .await;
    assert_eq!(by_id["name"], "vision");

    let (status, list) = app.get("/api/v1/workspaces", &app.admin).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("nlp"), json!("vision")]);
    assert!(list["next_cursor"].is_null());
}

#[tokio::test]
async fn workspace_names_are_unique_and_validated() {
    let app = TestApp::spawn().await;
    app.workspace("vision").await;
    let dup = app
        .post(
            "/api/v1/workspaces",
            &app.admin,
            json!({ "name": "vision" }),
        )
        .await;
    assert_problem(&dup, StatusCode::CONFLICT, "already_exists", Some("name"));

    for bad in ["", "has space", "-x", &"x".repeat(129)] {
        let answer = app
            .post("/api/v1/workspaces", &app.admin, json!({ "name": bad }))
            .await;
        assert_problem(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("name"),
        );
    }
    let long = app
        .post(
            "/api/v1/workspaces",
            &app.admin,
            json!({ "name": "ok", "description": "d".repeat(5001) }),
        )
        .await;
    assert_problem(
        &long,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("description"),
    );
    // Nothing refused was stored.
    let (_, list) = app.get("/api/v1/workspaces", &app.admin).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn only_server_admins_create_or_list_workspaces() {
    let app = TestApp::spawn().await;
    app.workspace("vision").await;
    let ws_admin = app.token("vision", "admin").await;
    let create = app
        .post("/api/v1/workspaces", &ws_admin, json!({ "name": "mine" }))
        .await;
    assert_problem(&create, StatusCode::FORBIDDEN, "forbidden", None);
    let list = app.get("/api/v1/workspaces", &ws_admin).await;
    assert_problem(&list, StatusCode::FORBIDDEN, "forbidden", None);
    // A member may read its own workspace.
    let (status, own) = app.get("/api/v1/workspaces/vision", &ws_admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(own["name"], "vision");
}

#[tokio::test]
async fn workspace_pages_follow_the_cursor() {
    let app = TestApp::spawn().await;
    for i in 0..5 {
        app.workspace(&format!("ws{i}")).await;
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = app
            .get(
                &format!("/api/v1/workspaces?limit=2&cursor={cursor}"),
                &app.admin,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["name"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, vec!["ws4", "ws3", "ws2", "ws1", "ws0"]);
}
