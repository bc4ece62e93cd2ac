//! A token of one workspace can neither read nor list nor change anything of another.

use reqwest::{Method, StatusCode};
use serde_json::json;
use trainyard_tests::{assert_problem, TestApp};

#[tokio::test]
async fn a_token_of_workspace_a_sees_nothing_of_workspace_b() {
    let app = TestApp::spawn().await;
    app.workspace("a").await;
    let b = app.workspace("b").await;
    let a_admin = app.token("a", "admin").await;
    let b_admin = app.token("b", "admin").await;
    let b_exp = app.experiment("b", &b_admin, "secret-exp").await;
    let b_run = app.run("b", &b_admin, "secret-exp", json!({})).await;
    let run_id = b_run["id"].as_str().unwrap();
    let exp_id = b_exp["id"].as_str().unwrap();
    let b_id = b["id"].as_str().unwrap();

    for ws in ["b", b_id] {
        let reads = [
            format!("/api/v1/workspaces/{ws}"),
            format!("/api/v1/workspaces/{ws}/experiments"),
            format!("/api/v1/workspaces/{ws}/experiments/secret-exp"),
            format!("/api/v1/workspaces/{ws}/experiments/{exp_id}"),
            format!("/api/v1/workspaces/{ws}/runs"),
            format!("/api/v1/workspaces/{ws}/runs/{run_id}"),
            format!("/api/v1/workspaces/{ws}/runs/{run_id}/events"),
            format!("/api/v1/workspaces/{ws}/tokens"),
        ];
        for path in reads {
            let answer = app.get(&path, &a_admin).await;
            assert_problem(&answer, StatusCode::NOT_FOUND, "not_found", None);
            assert!(
                !answer.1.to_string().contains("secret-exp"),
                "{path}: {}",
                answer.1
            );
        }
        let cancel = app
            .post(
                &format!("/api/v1/workspaces/{ws}/runs/{run_id}/cancel"),
                &a_admin,
                json!({}),
            )
            .await;
        assert_problem(&cancel, StatusCode::NOT_FOUND, "not_found", None);
        let tag = app
            .call(
                Method::PUT,
                &format!("/api/v1/workspaces/{ws}/runs/{run_id}/tags/x"),
                &a_admin,
                Some(json!({ "value": "y" })),
            )
            .await;
        assert_problem(&tag, StatusCode::NOT_FOUND, "not_found", None);
    }

    // Ids of B's resources used through A's own workspace are not found either.
    let own_path = format!("/api/v1/workspaces/a/runs/{run_id}");
    assert_problem(
        &app.get(&own_path, &a_admin).await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    let own_exp = format!("/api/v1/workspaces/a/experiments/{exp_id}");
    assert_problem(
        &app.get(&own_exp, &a_admin).await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    let (_, runs) = app.get("/api/v1/workspaces/a/runs", &a_admin).await;
    assert_eq!(runs["items"].as_array().unwrap().len(), 0);
    let submit = app
        .post(
            "/api/v1/workspaces/a/runs",
            &a_admin,
            json!({ "experiment": exp_id }),
        )
        .await;
    assert_problem(
        &submit,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("experiment"),
    );

    // B's run is untouched.
    let (_, run) = app
        .get(&format!("/api/v1/workspaces/b/runs/{run_id}"), &b_admin)
        .await;
    assert_eq!(run["status"], "Queued");
    assert!(run["tags"].as_object().unwrap().is_empty());
}
