use reqwest::{Method, StatusCode};
use serde_json::json;
use trainyard_tests::{assert_problem, TestApp};

/// A workspace `vision` and a reader token of it: the token as created
/// (secret included) and its secret.
async fn vision_reader(app: &TestApp, token: serde_json::Value) -> (serde_json::Value, String) {
    app.workspace("vision").await;
    let (status, created) = app
        .post("/api/v1/workspaces/vision/tokens", &app.admin, token)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap().to_string();
    (created, secret)
}

#[tokio::test]
async fn a_secret_is_shown_once_and_stored_only_hashed() {
    let app = TestApp::spawn().await;
    app.workspace("vision").await;
    let (status, created) = app
        .post(
            "/api/v1/workspaces/vision/tokens",
            &app.admin,
            json!({ "name": "ci", "role": "contributor" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("tyd_"));
    assert_eq!(created["role"], "contributor");

    let (_, list) = app
        .get("/api/v1/workspaces/vision/tokens", &app.admin)
        .await;
    let listed = &list["items"][0];
    assert_eq!(listed["id"], created["id"]);
    assert!(listed.get("secret").is_none(), "{listed}");
    assert!(!list.to_string().contains(&secret));
    assert!(secret.starts_with(listed["prefix"].as_str().unwrap()));

    // The database holds a hash, never the secret.
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT secret_hash FROM api_tokens WHERE prefix = $1")
            .bind(listed["prefix"].as_str().unwrap())
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_eq!(stored.len(), 32);
    assert!(!String::from_utf8_lossy(&stored).contains(&secret[4..]));

    let (status, me) = app.get("/api/v1/whoami", &secret).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["role"], "contributor");
    assert_eq!(me["server_admin"], false);
}

#[tokio::test]
async fn a_revoked_token_stops_working_at_once() {
    let app = TestApp::spawn().await;
    let (created, secret) =
        vision_reader(&app, json!({ "name": "laptop", "role": "reader" })).await;
    let secret = secret.as_str();
    assert_eq!(
        app.get("/api/v1/workspaces/vision/experiments", secret)
            .await
            .0,
        StatusCode::OK
    );

    let id = created["id"].as_str().unwrap();
    let (status, revoked) = app
        .call(
            Method::DELETE,
            &format!("/api/v1/workspaces/vision/tokens/{id}"),
            &app.admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(revoked["revoked_at"].is_string());

    let after = app
        .get("/api/v1/workspaces/vision/experiments", secret)
        .await;
    assert_problem(&after, StatusCode::UNAUTHORIZED, "unauthenticated", None);
    let missing = app
        .call(
            Method::DELETE,
            &format!("/api/v1/workspaces/vision/tokens/{}", uuid::Uuid::new_v4()),
            &app.admin,
            None,
        )
        .await;
    assert_problem(&missing, StatusCode::NOT_FOUND, "not_found", None);
}

#[tokio::test]
async fn a_token_revoked_by_another_server_stops_working_within_the_cache_time() {
    let app = TestApp::spawn().await;
    let (created, secret) =
        vision_reader(&app, json!({ "name": "laptop", "role": "reader" })).await;
    let secret = secret.as_str();
    assert_eq!(app.get("/api/v1/whoami", secret).await.0, StatusCode::OK);
    // As another server over the same database would revoke it.
    sqlx::query("UPDATE api_tokens SET revoked_at = now() WHERE id = $1")
        .bind(uuid::Uuid::parse_str(created["id"].as_str().unwrap()).unwrap())
        .execute(app.db.pool())
        .await
        .unwrap();
    tokio::time::sleep(trainyard_db::CACHE_TTL).await;
    let answer = app.get("/api/v1/whoami", secret).await;
    assert_problem(&answer, StatusCode::UNAUTHORIZED, "unauthenticated", None);
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused() {
    let app = TestApp::spawn().await;
    app.workspace("vision").await;
    let url = format!("{}/api/v1/workspaces/vision/experiments", app.base);
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );

    let client = reqwest::Client::new();
    for header in ["Basic abc", "Bearer ", "Bearer tyd_not-a-real-token"] {
        let response = client
            .get(&url)
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{header}");
    }
}

#[tokio::test]
async fn roles_limit_what_a_token_may_do() {
    let app = TestApp::spawn().await;
    app.workspace("vision").await;
    let reader = app.token("vision", "reader").await;
    let contributor = app.token("vision", "contributor").await;

    let write = app
        .post(
            "/api/v1/workspaces/vision/experiments",
            &reader,
            json!({ "name": "e" }),
        )
        .await;
    assert_problem(&write, StatusCode::FORBIDDEN, "forbidden", None);
    assert!(write.1["detail"].as_str().unwrap().contains("contributor"));
    assert_eq!(
        app.get("/api/v1/workspaces/vision/experiments", &reader)
            .await
            .0,
        StatusCode::OK
    );

    app.experiment("vision", &contributor, "e").await;
    let manage = app
        .post(
            "/api/v1/workspaces/vision/tokens",
            &contributor,
            json!({ "name": "x", "role": "admin" }),
        )
        .await;
    assert_problem(&manage, StatusCode::FORBIDDEN, "forbidden", None);
    let list = app
        .get("/api/v1/workspaces/vision/tokens", &contributor)
        .await;
    assert_problem(&list, StatusCode::FORBIDDEN, "forbidden", None);
}

#[tokio::test]
async fn token_input_is_validated() {
    let app = TestApp::spawn().await;
    app.workspace("vision").await;
    let path = "/api/v1/workspaces/vision/tokens";
    let role = app
        .post(path, &app.admin, json!({ "name": "x", "role": "owner" }))
        .await;
    assert_problem(
        &role,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("role"),
    );
    let name = app
        .post(path, &app.admin, json!({ "name": "", "role": "reader" }))
        .await;
    assert_problem(
        &name,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("name"),
    );
    let past = app
        .post(
            path,
            &app.admin,
            json!({ "name": "x", "role": "reader", "expires_at": "2001-01-01T00:00:00Z" }),
        )
        .await;
    assert_problem(
        &past,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("expires_at"),
    );
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let app = TestApp::spawn().await;
    let expires_at = chrono::Utc::now() + chrono::Duration::seconds(2);
    let (_, secret) = vision_reader(
        &app,
        json!({ "name": "short", "role": "reader", "expires_at": expires_at }),
    )
    .await;
    let secret = secret.as_str();
    // Used once, so the server now knows it; its expiry still holds.
    assert_eq!(app.get("/api/v1/whoami", secret).await.0, StatusCode::OK);
    let left = (expires_at - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(left + std::time::Duration::from_millis(200)).await;
    let answer = app.get("/api/v1/whoami", secret).await;
    assert_problem(&answer, StatusCode::UNAUTHORIZED, "unauthenticated", None);
}
