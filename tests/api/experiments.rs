use reqwest::{Method, StatusCode};
use serde_json::json;
use trainyard_tests::{assert_problem, TestApp};

#[tokio::test]
async fn experiments_are_created_and_found_by_id_or_name() {
    let app = TestApp::spawn().await;
    app.workspace("vision").await;
    let token = app.token("vision", "contributor").await;
    let (status, created) = app
        .post(
            "/api/v1/workspaces/vision/experiments",
            &token,
            json!({ "name": "tf-mnist", "description": "digits", "tags": { "team": "cv" } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["tags"]["team"], "cv");
    let id = created["id"].as_str().unwrap();

    let (_, by_name) = app
        .get("/api/v1/workspaces/vision/experiments/tf-mnist", &token)
        .await;
    let (_, by_id) = app
        .get(
            &format!("/api/v1/workspaces/vision/experiments/{id}"),
            &token,
        )
        .await;
    assert_eq!(by_name, created);
    assert_eq!(by_id, created);

    let dup = app
        .post(
            "/api/v1/workspaces/vision/experiments",
            &token,
            json!({ "name": "tf-mnist" }),
        )
        .await;
    assert_problem(&dup, StatusCode::CONFLICT, "already_exists", Some("name"));
    let missing = app
        .get("/api/v1/workspaces/vision/experiments/nope", &token)
        .await;
    assert_problem(&missing, StatusCode::NOT_FOUND, "not_found", None);
}

#[tokio::test]
async fn get_or_create_returns_the_same_experiment_every_time() {
    let app = TestApp::spawn().await;
    app.workspace("vision").await;
    let token = app.token("vision", "contributor").await;
    let path = "/api/v1/workspaces/vision/experiments/keras-mnist";
    let (first_status, first) = app
        .call(
            Method::PUT,
            path,
            &token,
            Some(json!({ "description": "first" })),
        )
        .await;
    assert_eq!(first_status, StatusCode::CREATED);
    let (again_status, again) = app
        .call(
            Method::PUT,
            path,
            &token,
            Some(json!({ "description": "ignored" })),
        )
        .await;
    assert_eq!(again_status, StatusCode::OK);
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["description"], "first");

    // Racing callers all get the one experiment.
    let racers = (0..8).map(|_| {
        app.call(
            Method::PUT,
            "/api/v1/workspaces/vision/experiments/raced",
            &token,
            Some(json!({})),
        )
    });
    let answers = futures::future::join_all(racers).await;
    let ids: std::collections::HashSet<_> = answers
        .iter()
        .map(|(s, b)| {
            assert!(s.is_success(), "{b}");
            b["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(
        answers
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count(),
        1
    );

    let bad = app
        .call(
            Method::PUT,
            "/api/v1/workspaces/vision/experiments/bad%20name",
            &token,
            Some(json!({})),
        )
        .await;
    assert_problem(
        &bad,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("experiment"),
    );
}

#[tokio::test]
async fn archived_experiments_leave_the_default_list() {
    let app = TestApp::spawn().await;
    app.workspace("vision").await;
    let token = app.token("vision", "contributor").await;
    app.experiment("vision", &token, "old").await;
    app.experiment("vision", &token, "new").await;

    let (status, archived) = app
        .post(
            "/api/v1/workspaces/vision/experiments/old/archive",
            &token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(archived["archived"], true);

    let names = |list: serde_json::Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, default) = app
        .get("/api/v1/workspaces/vision/experiments", &token)
        .await;
    assert_eq!(names(default), vec!["new"]);
    let (_, all) = app
        .get(
            "/api/v1/workspaces/vision/experiments?include_archived=true",
            &token,
        )
        .await;
    assert_eq!(names(all), vec!["new", "old"]);
    let bad = app
        .get(
            "/api/v1/workspaces/vision/experiments?include_archived=maybe",
            &token,
        )
        .await;
    assert_problem(
        &bad,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("include_archived"),
    );

    let (_, restored) = app
        .post(
            "/api/v1/workspaces/vision/experiments/old/restore",
            &token,
            json!({}),
        )
        .await;
    assert_eq!(restored["archived"], false);
    let (_, default) = app
        .get("/api/v1/workspaces/vision/experiments", &token)
        .await;
    assert_eq!(names(default).len(), 2);
}

#[tokio::test]
async fn experiment_fields_are_validated() {
    let app = TestApp::spawn().await;
    app.workspace("vision").await;
    let path = "/api/v1/workspaces/vision/experiments";
    let cases = [
        (
            json!({ "name": "ok", "tags": { "k": "v".repeat(5001) } }),
            "tags.k",
        ),
        (json!({ "name": "ok", "tags": { "": "v" } }), "tags."),
        (
            json!({ "name": "7c9e6679-7425-40de-944b-e07fc1f90ae7" }),
            "name",
        ),
        (
            json!({ "name": "ok", "description": "d".repeat(5001) }),
            "description",
        ),
        (json!({ "name": 5 }), "name"),
        (json!({ "description": "no name" }), "name"),
    ];
    for (body, field) in cases {
        let answer = app.post(path, &app.admin, body.clone()).await;
        assert_problem(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some(field),
        );
    }
    let (_, list) = app.get(path, &app.admin).await;
    assert!(list["items"].as_array().unwrap().is_empty());
}
