use trainyard_tests::TestApp;

#[tokio::test]
async fn probes_answer_without_a_token() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/readyz"] {
        let response = reqwest::get(format!("{}{path}", app.base)).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["status"], "ok");
    }
}

#[tokio::test]
async fn readiness_fails_when_the_database_is_gone() {
    let app = TestApp::spawn().await;
    app.db.close().await;
    let response = reqwest::get(format!("{}/readyz", app.base)).await.unwrap();
    assert_eq!(response.status(), 503);
    let live = reqwest::get(format!("{}/healthz", app.base)).await.unwrap();
    assert_eq!(live.status(), 200);
}

#[tokio::test]
async fn database_connections_run_queries_without_jit_compilation() {
    let app = TestApp::spawn().await;
    // Every connection of the pool, not only the first one made.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut conn = app.db.pool().acquire().await.unwrap();
        let jit: String = sqlx::query_scalar("SHOW jit")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(jit, "off");
        held.push(conn);
    }
}
