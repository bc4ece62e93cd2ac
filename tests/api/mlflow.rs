//! The MLflow REST API: MLflow's error shape and status codes, its limits,
//! identity by Trainyard tokens, and tracked-only runs that the scheduler and
//! reconciliation leave alone. (The real `mlflow` client drives the same API
//! in `tests/mlflow/`.)

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use trainyard_tests::TestApp;
use uuid::Uuid;

async fn setup() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    app.workspace("ml").await;
    let token = app.token("ml", "contributor").await;
    (app, token)
}

async fn post(app: &TestApp, token: &str, endpoint: &str, body: Value) -> (StatusCode, Value) {
    app.post(&format!("/api/2.0/mlflow/{endpoint}"), token, body)
        .await
}

async fn get(app: &TestApp, token: &str, endpoint: &str) -> (StatusCode, Value) {
    app.get(&format!("/api/2.0/mlflow/{endpoint}"), token).await
}

/// Asserts MLflow's error shape: the status and `error_code`, and a message.
fn assert_error(answer: &(StatusCode, Value), status: StatusCode, code: &str) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["error_code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

async fn create_run(app: &TestApp, token: &str) -> String {
    create_run_in(app, token, "0").await
}

async fn create_run_in(app: &TestApp, token: &str, experiment_id: &str) -> String {
    let (status, body) = post(
        app,
        token,
        "runs/create",
        json!({ "experiment_id": experiment_id, "run_name": "r" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["run"]["info"]["run_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn tokens_authenticate_by_bearer_or_basic_and_roles_hold() {
    let (app, token) = setup().await;
    let reader = app.token("ml", "reader").await;
    let url = format!(
        "{}/api/2.0/mlflow/experiments/get?experiment_id=0",
        app.base
    );
    let client = reqwest::Client::new();

    let answer = client.get(&url).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error_code"], "UNAUTHENTICATED");

    let answer = client
        .get(&url)
        .basic_auth("anyone", Some(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["experiment"]["experiment_id"], "0");
    assert_eq!(body["experiment"]["name"], "Default");

    let answer = client
        .get(&url)
        .bearer_auth("tyd_nonsense")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);

    assert_error(
        &post(&app, &reader, "experiments/create", json!({ "name": "x" })).await,
        StatusCode::FORBIDDEN,
        "PERMISSION_DENIED",
    );
    // An administrator names the workspace with MLflow's workspace header.
    let answer = client
        .get(&url)
        .bearer_auth(&app.admin)
        .header("X-MLFLOW-WORKSPACE", "ml")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
}

#[tokio::test]
async fn experiments_answer_mlflow_errors() {
    let (app, token) = setup().await;
    let (status, created) = post(
        &app,
        &token,
        "experiments/create",
        json!({ "name": "my exp/1" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let id = created["experiment_id"].as_str().unwrap().to_string();
    assert_error(
        &post(
            &app,
            &token,
            "experiments/create",
            json!({ "name": "my exp/1" }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "RESOURCE_ALREADY_EXISTS",
    );
    assert_error(
        &post(&app, &token, "experiments/create", json!({ "name": "" })).await,
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
    );
    assert_error(
        &get(
            &app,
            &token,
            &format!("experiments/get?experiment_id={}", Uuid::now_v7()),
        )
        .await,
        StatusCode::NOT_FOUND,
        "RESOURCE_DOES_NOT_EXIST",
    );
    assert_error(
        &get(&app, &token, "experiments/get-by-name?experiment_name=nope").await,
        StatusCode::NOT_FOUND,
        "RESOURCE_DOES_NOT_EXIST",
    );
    assert_error(
        &post(
            &app,
            &token,
            "experiments/delete",
            json!({ "experiment_id": "0" }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
    );
    // Deleting archives it in Trainyard; runs cannot be created in it.
    let (status, _) = post(
        &app,
        &token,
        "experiments/delete",
        json!({ "experiment_id": id }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, experiment) = app
        .get(&format!("/api/v1/workspaces/ml/experiments/{id}"), &token)
        .await;
    assert!(experiment["archived_at"].is_string(), "{experiment}");
    assert_error(
        &post(&app, &token, "runs/create", json!({ "experiment_id": id })).await,
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
    );
    let (_, found) = post(
        &app,
        &token,
        "experiments/search",
        json!({ "view_type": "ALL" }),
    )
    .await;
    assert_eq!(found["experiments"].as_array().unwrap().len(), 2, "{found}");
}

#[tokio::test]
async fn log_batch_enforces_mlflow_limits_and_stores_nothing_refused() {
    let (app, token) = setup().await;
    let run = create_run(&app, &token).await;
    let metric =
        |i: usize| json!({ "key": format!("m{i}"), "value": 1.0, "timestamp": 0, "step": 0 });
    let kv = |i: usize| json!({ "key": format!("k{i}"), "value": "v" });
    let too_many = [
        json!({ "run_id": run, "metrics": (0..1001).map(metric).collect::<Vec<_>>() }),
        json!({ "run_id": run, "params": (0..101).map(kv).collect::<Vec<_>>() }),
        json!({ "run_id": run, "tags": (0..101).map(kv).collect::<Vec<_>>() }),
        json!({ "run_id": run, "metrics": (0..950).map(metric).collect::<Vec<_>>(),
                "params": (0..51).map(kv).collect::<Vec<_>>() }),
        json!({ "run_id": run, "metrics": [metric(1)], "params": [
            { "key": "bad;key", "value": "v" }] }),
        json!({ "run_id": run, "params": [{ "key": "k".repeat(251), "value": "v" }] }),
        json!({ "run_id": run, "params": [{ "key": "a", "value": "v".repeat(6001) }] }),
        json!({ "run_id": run, "tags": [{ "key": "a/../b", "value": "v" }] }),
        json!({ "run_id": run, "params": [kv(1), kv(1)] }),
        json!({ "run_id": run, "metrics": [{ "key": "m", "value": 1.0, "timestamp": -1 }] }),
        json!({ "run_id": run, "metrics": [{ "key": "m", "value": "high" }] }),
    ];
    for body in too_many {
        assert_error(
            &post(&app, &token, "runs/log-batch", body).await,
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
        );
    }
    let (_, got) = get(&app, &token, &format!("runs/get?run_id={run}")).await;
    assert!(got["run"]["data"]["metrics"].is_null(), "{got}");
    assert!(got["run"]["data"]["params"].is_null(), "{got}");

    let full = json!({ "run_id": run, "metrics": (0..900).map(metric).collect::<Vec<_>>(),
                       "params": (0..50).map(kv).collect::<Vec<_>>(), "tags": (0..50).map(kv).collect::<Vec<_>>() });
    let (status, body) = post(&app, &token, "runs/log-batch", full).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_error(
        &post(
            &app,
            &token,
            "runs/log-batch",
            json!({ "run_id": Uuid::now_v7(), "metrics": [metric(0)] }),
        )
        .await,
        StatusCode::NOT_FOUND,
        "RESOURCE_DOES_NOT_EXIST",
    );
}

#[tokio::test]
async fn params_never_change_and_special_values_round_trip() {
    let (app, token) = setup().await;
    let run = create_run(&app, &token).await;
    let param = |value: &str| json!({ "run_id": run, "key": "lr", "value": value });
    assert_eq!(
        post(&app, &token, "runs/log-parameter", param("0.1"))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        post(&app, &token, "runs/log-parameter", param("0.1"))
            .await
            .0,
        StatusCode::OK
    );
    let refused = post(&app, &token, "runs/log-parameter", param("0.2")).await;
    assert_error(&refused, StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE");
    assert!(refused.1["message"]
        .as_str()
        .unwrap()
        .contains("Changing param values is not allowed"));

    for (key, value) in [
        ("nan", json!("NaN")),
        ("inf", json!("Infinity")),
        ("ninf", json!("-Infinity")),
        ("big", json!(1.7976931348623157e308)),
    ] {
        let body = json!({ "run_id": run, "key": key, "value": value, "timestamp": 1_796_639_642_601_i64, "step": 3 });
        let (status, answer) = post(&app, &token, "runs/log-metric", body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let (_, history) = get(
            &app,
            &token,
            &format!("metrics/get-history?run_id={run}&metric_key={key}"),
        )
        .await;
        assert_eq!(history["metrics"][0]["value"], value, "{history}");
        assert_eq!(history["metrics"][0]["timestamp"], 1_796_639_642_601_i64);
        assert_eq!(history["metrics"][0]["step"], 3);
    }
    // runs/get and runs/search show each metric's latest point the same
    // way, NaN and infinities included, by key.
    let latest = json!([
        { "key": "big", "value": 1.7976931348623157e308, "timestamp": 1_796_639_642_601_i64, "step": 3 },
        { "key": "inf", "value": "Infinity", "timestamp": 1_796_639_642_601_i64, "step": 3 },
        { "key": "nan", "value": "NaN", "timestamp": 1_796_639_642_601_i64, "step": 3 },
        { "key": "ninf", "value": "-Infinity", "timestamp": 1_796_639_642_601_i64, "step": 3 },
    ]);
    let (_, got) = get(&app, &token, &format!("runs/get?run_id={run}")).await;
    assert_eq!(got["run"]["data"]["metrics"], latest, "{got}");
    let search =
        json!({ "experiment_ids": ["0"], "filter": format!("attributes.run_id = '{run}'") });
    let (_, found) = post(&app, &token, "runs/search", search).await;
    assert_eq!(found["runs"][0]["data"]["metrics"], latest, "{found}");
    // Params are the run's properties in Trainyard's own API.
    let (_, trainyard) = app
        .get(&format!("/api/v1/workspaces/ml/runs/{run}"), &token)
        .await;
    assert_eq!(trainyard["properties"]["lr"], "0.1", "{trainyard}");
    assert_eq!(trainyard["tracked_only"], true);
    assert_eq!(trainyard["status"], "Running");
}

/// A run with one metric logged, so that the server knows both, and the
/// log-metric body that logged it.
async fn run_with_a_metric(app: &TestApp, token: &str) -> (String, Value) {
    let run = create_run(app, token).await;
    let metric = json!({ "run_id": run, "key": "m", "value": 1.0, "timestamp": 0 });
    assert_eq!(
        post(app, token, "runs/log-metric", metric.clone()).await.0,
        StatusCode::OK
    );
    (run, metric)
}

#[tokio::test]
async fn deleted_runs_refuse_writes_until_restored() {
    let (app, token) = setup().await;
    let (run, metric) = run_with_a_metric(&app, &token).await;
    let (status, _) = post(&app, &token, "runs/delete", json!({ "run_id": run })).await;
    assert_eq!(status, StatusCode::OK);
    assert_error(
        &post(&app, &token, "runs/log-metric", metric.clone()).await,
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
    );
    let (_, got) = get(&app, &token, &format!("runs/get?run_id={run}")).await;
    assert_eq!(got["run"]["info"]["lifecycle_stage"], "deleted");
    let (_, found) = post(
        &app,
        &token,
        "runs/search",
        json!({ "experiment_ids": ["0"] }),
    )
    .await;
    assert!(found["runs"].is_null(), "{found}");
    post(&app, &token, "runs/restore", json!({ "run_id": run })).await;
    assert_eq!(
        post(&app, &token, "runs/log-metric", metric).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_run_deleted_by_another_server_refuses_metrics_within_the_cache_time() {
    let (app, token) = setup().await;
    let (run, metric) = run_with_a_metric(&app, &token).await;
    // As another server over the same database would delete it.
    sqlx::query("UPDATE runs SET deleted_at = now() WHERE id = $1")
        .bind(Uuid::parse_str(&run).unwrap())
        .execute(app.db.pool())
        .await
        .unwrap();
    tokio::time::sleep(trainyard_db::CACHE_TTL).await;
    assert_error(
        &post(&app, &token, "runs/log-metric", metric).await,
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
    );
    let (_, history) = get(
        &app,
        &token,
        &format!("metrics/get-history?run_id={run}&metric_key=m"),
    )
    .await;
    assert_eq!(
        history["metrics"].as_array().map(Vec::len),
        Some(1),
        "{history}"
    );
}

#[tokio::test]
async fn tracked_runs_move_as_their_client_says_and_are_never_claimed() {
    let (app, token) = setup().await;
    let run = create_run(&app, &token).await;
    let run_id = Uuid::parse_str(&run).unwrap();
    // Neither the queue nor a restarting executor touches a tracked run.
    assert!(app
        .db
        .claim_queued_run("replica", std::time::Duration::from_secs(60))
        .await
        .unwrap()
        .is_none());
    let adopted = app
        .db
        .adopt_active_runs("replica", std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert!(adopted.iter().all(|r| r.id != run_id));

    let update = |status: &str| json!({ "run_id": run, "status": status, "end_time": 5000 });
    let (status, body) = post(&app, &token, "runs/update", update("FINISHED")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["run_info"]["status"], "FINISHED");
    assert_eq!(body["run_info"]["end_time"], 5000);
    // MLflow's start_run(run_id=...) resumes an ended run.
    let (_, body) = post(&app, &token, "runs/update", update("RUNNING")).await;
    assert_eq!(body["run_info"]["status"], "RUNNING");
    assert!(body["run_info"]["end_time"].is_null(), "{body}");
    let (_, events) = app
        .get(&format!("/api/v1/workspaces/ml/runs/{run}/events"), &token)
        .await;
    let statuses: Vec<_> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].clone())
        .collect();
    assert_eq!(
        statuses,
        vec![json!("Running"), json!("Completed"), json!("Running")]
    );
    assert_error(
        &post(&app, &token, "runs/update", update("DONE")).await,
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
    );
    // Trainyard's cancel ends a tracked run at once.
    let (status, canceled) = app
        .post(
            &format!("/api/v1/workspaces/ml/runs/{run}/cancel"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{canceled}");
    assert_eq!(canceled["status"], "Canceled");
}

#[tokio::test]
async fn a_run_token_writes_only_to_its_run() {
    let (app, token) = setup().await;
    let own = create_run(&app, &token).await;
    let other = create_run(&app, &token).await;
    let workspace = Uuid::parse_str(&app.workspace_id("ml").await).unwrap();
    let run_token = app
        .db
        .create_run_token(workspace, Uuid::parse_str(&own).unwrap(), None)
        .await
        .unwrap();
    let metric = |run: &str| json!({ "run_id": run, "key": "m", "value": 1.0, "timestamp": 0 });
    assert_eq!(
        post(&app, &run_token, "runs/log-metric", metric(&own))
            .await
            .0,
        StatusCode::OK
    );
    assert_error(
        &post(&app, &run_token, "runs/log-metric", metric(&other)).await,
        StatusCode::FORBIDDEN,
        "PERMISSION_DENIED",
    );
    assert_error(
        &post(&app, &run_token, "runs/create", json!({})).await,
        StatusCode::FORBIDDEN,
        "PERMISSION_DENIED",
    );
}

#[tokio::test]
async fn searches_refuse_bad_filters_and_unknown_endpoints_say_so() {
    let (app, token) = setup().await;
    for filter in [
        "metrics.acc > 'x'",
        "params.a = 'b' or params.c = 'd'",
        "colour.x = 'y'",
    ] {
        assert_error(
            &post(
                &app,
                &token,
                "runs/search",
                json!({ "experiment_ids": ["0"], "filter": filter }),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
        );
    }
    assert_error(
        &post(
            &app,
            &token,
            "runs/search",
            json!({ "experiment_ids": ["0"], "page_token": "%%%" }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
    );
    assert_error(
        &get(&app, &token, "runs/fly").await,
        StatusCode::NOT_FOUND,
        "ENDPOINT_NOT_FOUND",
    );
    let (status, body) = app
        .call(
            Method::GET,
            "/api/2.0/mlflow-artifacts/artifacts?path=elsewhere",
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error_code"], "RESOURCE_DOES_NOT_EXIST");
}

#[tokio::test]
async fn registry_errors_follow_mlflow() {
    let (app, token) = setup().await;
    let (status, _) = post(
        &app,
        &token,
        "registered-models/create",
        json!({ "name": "iris" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_error(
        &post(
            &app,
            &token,
            "registered-models/create",
            json!({ "name": "iris" }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "RESOURCE_ALREADY_EXISTS",
    );
    assert_error(
        &post(
            &app,
            &token,
            "registered-models/create",
            json!({ "name": "a/b" }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
    );
    assert_error(
        &get(&app, &token, "registered-models/get?name=nope").await,
        StatusCode::NOT_FOUND,
        "RESOURCE_DOES_NOT_EXIST",
    );
    assert_error(
        &get(&app, &token, "model-versions/get?name=iris&version=7").await,
        StatusCode::NOT_FOUND,
        "RESOURCE_DOES_NOT_EXIST",
    );
    assert_error(
        &post(
            &app,
            &token,
            "model-versions/create",
            json!({ "name": "iris", "source": "s3://bucket/model" }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
    );
    assert_error(
        &post(
            &app,
            &token,
            "registered-models/alias",
            json!({ "name": "iris", "alias": "v1", "version": "1" }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "INVALID_PARAMETER_VALUE",
    );
}

#[tokio::test]
async fn metric_order_pages_through_runs_with_and_without_the_metric() {
    let (app, token) = setup().await;
    let mut with_metric = Vec::new();
    let mut without = Vec::new();
    let mut acc_of = std::collections::HashMap::new();
    for i in 0..8 {
        let (_, body) = post(
            &app,
            &token,
            "runs/create",
            json!({ "experiment_id": "0", "start_time": 1000 + i }),
        )
        .await;
        let run = body["run"]["info"]["run_id"].as_str().unwrap().to_string();
        if i < 5 {
            let metric =
                json!({ "run_id": run, "key": "acc", "value": i as f64 / 10.0, "timestamp": 0 });
            post(&app, &token, "runs/log-metric", metric).await;
            acc_of.insert(
                run.clone(),
                json!([{ "key": "acc", "value": i as f64 / 10.0, "timestamp": 0, "step": 0 }]),
            );
            with_metric.push(run);
        } else {
            without.push(run);
        }
    }
    // Highest accuracy first, then the runs without it, newest first.
    let expected: Vec<String> = with_metric
        .iter()
        .rev()
        .chain(without.iter().rev())
        .cloned()
        .collect();
    for (order, expected) in [
        ("metrics.acc DESC", expected.clone()),
        ("metrics.acc ASC", {
            let mut ascending = with_metric.clone();
            ascending.extend(without.iter().rev().cloned());
            ascending
        }),
    ] {
        let mut seen = Vec::new();
        let mut token_page: Option<String> = None;
        loop {
            let mut body =
                json!({ "experiment_ids": ["0"], "order_by": [order], "max_results": 3 });
            if let Some(page) = &token_page {
                body["page_token"] = json!(page);
            }
            let (status, found) = post(&app, &token, "runs/search", body).await;
            assert_eq!(status, StatusCode::OK, "{found}");
            // Every run of every page comes with its own metrics.
            for run in found["runs"].as_array().unwrap() {
                let id = run["info"]["run_id"].as_str().unwrap();
                let metrics = &run["data"]["metrics"];
                match acc_of.get(id) {
                    Some(acc) => assert_eq!(metrics, acc, "{run}"),
                    None => assert!(metrics.is_null(), "{run}"),
                }
            }
            seen.extend(
                found["runs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["info"]["run_id"].as_str().unwrap().to_string()),
            );
            match found["next_page_token"].as_str() {
                Some(next) => token_page = Some(next.to_string()),
                None => break,
            }
        }
        assert_eq!(seen, expected, "{order}");
    }
}

#[tokio::test]
async fn a_metric_sort_merges_the_experiments_searched_and_no_others() {
    let (app, token) = setup().await;
    // Each run's label: its experiment's name and its accuracy.
    let mut label_of_run = std::collections::HashMap::new();
    let mut experiments = Vec::new();
    // "a" and "b" tie at 0.5 (b's run is newer, so it comes first); "c"
    // holds the best values, yet is never searched.
    for (name, values) in [
        ("a", [0.1, 0.3, 0.5, 0.7]),
        ("b", [0.2, 0.4, 0.5, 0.8]),
        ("c", [0.91, 0.92, 0.93, 0.94]),
    ] {
        let (_, body) = post(&app, &token, "experiments/create", json!({ "name": name })).await;
        let experiment = body["experiment_id"].as_str().unwrap().to_string();
        for (i, value) in values.into_iter().enumerate() {
            let (_, body) = post(
                &app,
                &token,
                "runs/create",
                json!({ "experiment_id": experiment, "start_time": 1000 * label_of_run.len() + i }),
            )
            .await;
            let run = body["run"]["info"]["run_id"].as_str().unwrap().to_string();
            let metric = json!({ "run_id": run, "key": "acc", "value": value, "timestamp": 0 });
            let (status, body) = post(&app, &token, "runs/log-metric", metric).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            label_of_run.insert(run, format!("{name}:{value}"));
        }
        experiments.push(experiment);
    }
    let search = |experiment_ids: Vec<&String>, order: &str, page_token: Option<String>| {
        let mut body = json!({
            "experiment_ids": experiment_ids,
            "order_by": [order],
            "max_results": 3,
        });
        if let Some(page) = page_token {
            body["page_token"] = json!(page);
        }
        let (app, token, label_of_run) = (&app, &token, &label_of_run);
        async move {
            let (status, found) = post(app, token, "runs/search", body).await;
            assert_eq!(status, StatusCode::OK, "{found}");
            let labels = found["runs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|run| label_of_run[run["info"]["run_id"].as_str().unwrap()].clone())
                .collect::<Vec<String>>();
            (labels, found["next_page_token"].as_str().map(String::from))
        }
    };
    let (a, b) = (&experiments[0], &experiments[1]);
    let (first, _) = search(vec![a], "metrics.acc DESC", None).await;
    assert_eq!(first, ["a:0.7", "a:0.5", "a:0.3"]);
    let (first, next) = search(vec![a, b], "metrics.acc DESC", None).await;
    assert_eq!(first, ["b:0.8", "a:0.7", "b:0.5"]);
    let (second, _) = search(vec![a, b], "metrics.acc DESC", next).await;
    assert_eq!(second, ["a:0.5", "b:0.4", "a:0.3"]);
    let (first, _) = search(vec![b, a], "metrics.acc ASC", None).await;
    assert_eq!(first, ["a:0.1", "b:0.2", "a:0.3"]);
    // An experiment named twice does not return its runs twice.
    let (first, _) = search(vec![a, b, a], "metrics.acc DESC", None).await;
    assert_eq!(first, ["b:0.8", "a:0.7", "b:0.5"]);
    // Past the experiments merged in one read, the same answer.
    let mut many = vec![a.clone(), b.clone()];
    for i in 0..15 {
        let (_, body) = post(
            &app,
            &token,
            "experiments/create",
            json!({ "name": format!("empty-{i}") }),
        )
        .await;
        many.push(body["experiment_id"].as_str().unwrap().to_string());
    }
    let (first, next) = search(many.iter().collect(), "metrics.acc DESC", None).await;
    assert_eq!(first, ["b:0.8", "a:0.7", "b:0.5"]);
    let (second, _) = search(many.iter().collect(), "metrics.acc DESC", next).await;
    assert_eq!(second, ["a:0.5", "b:0.4", "a:0.3"]);
}

#[tokio::test]
async fn runs_created_together_each_land_where_asked_and_fail_alone() {
    let (app, token) = setup().await;
    app.workspace("other").await;
    let other_token = app.token("other", "contributor").await;
    let experiment = |token: &str, name: &str| {
        let (app, token, name) = (&app, token.to_string(), name.to_string());
        async move {
            let (_, created) =
                post(app, &token, "experiments/create", json!({ "name": name })).await;
            created["experiment_id"].as_str().unwrap().to_string()
        }
    };
    let active = experiment(&token, "active").await;
    let deleted = experiment(&token, "deleted").await;
    let elsewhere = experiment(&other_token, "elsewhere").await;
    post(
        &app,
        &token,
        "experiments/delete",
        json!({ "experiment_id": deleted }),
    )
    .await;

    // (token, experiment asked for, what the answer must be), all sent at once;
    // `Default` does not exist yet in either workspace.
    let mut asks = Vec::new();
    for _ in 0..10 {
        asks.push((&token, active.as_str(), "ok"));
        asks.push((&token, "0", "ok"));
    }
    for _ in 0..4 {
        asks.push((&token, deleted.as_str(), "INVALID_PARAMETER_VALUE"));
        asks.push((&token, elsewhere.as_str(), "RESOURCE_DOES_NOT_EXIST"));
    }
    asks.push((&other_token, elsewhere.as_str(), "ok"));
    asks.push((&other_token, "0", "ok"));
    let answers = futures::future::join_all(asks.iter().enumerate().map(
        |(i, (token, experiment_id, _))| {
            let body = json!({
                "experiment_id": experiment_id,
                "run_name": format!("run-{i}"),
                "tags": [{ "key": "ask", "value": i.to_string() }],
            });
            post(&app, token, "runs/create", body)
        },
    ))
    .await;
    for (i, ((token, experiment_id, expected), answer)) in asks.iter().zip(&answers).enumerate() {
        if *expected != "ok" {
            let status = match *expected {
                "INVALID_PARAMETER_VALUE" => StatusCode::BAD_REQUEST,
                _ => StatusCode::NOT_FOUND,
            };
            assert_error(answer, status, expected);
            continue;
        }
        let (status, body) = answer;
        assert_eq!(*status, StatusCode::OK, "ask {i}: {body}");
        let run = &body["run"];
        assert_eq!(
            run["info"]["experiment_id"], *experiment_id,
            "ask {i}: {body}"
        );
        assert_eq!(run["info"]["run_name"], format!("run-{i}"), "{body}");
        let tags = run["data"]["tags"].as_array().unwrap();
        let ask = i.to_string();
        assert!(
            tags.iter()
                .any(|t| t["key"] == "ask" && t["value"] == ask.as_str()),
            "ask {i}: {body}"
        );
        // What the answer says is what was stored.
        let id = run["info"]["run_id"].as_str().unwrap();
        let (_, got) = get(&app, token, &format!("runs/get?run_id={id}")).await;
        assert_eq!(got["run"]["info"], run["info"], "ask {i}");
    }
    let count = |token: &str, experiment_id: &str| {
        let (app, token, body) = (
            &app,
            token.to_string(),
            json!({ "experiment_ids": [experiment_id] }),
        );
        async move {
            let (_, found) = post(app, &token, "runs/search", body).await;
            found["runs"].as_array().map_or(0, Vec::len)
        }
    };
    assert_eq!(count(&token, &active).await, 10);
    assert_eq!(count(&token, "0").await, 10);
    let in_deleted: i64 = sqlx::query_scalar("SELECT count(*) FROM runs WHERE experiment_id = $1")
        .bind(Uuid::parse_str(&deleted).unwrap())
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(in_deleted, 0);
    assert_eq!(count(&other_token, &elsewhere).await, 1);
    assert_eq!(count(&other_token, "0").await, 1);
}

/// A metric's points as get-history gives them: (step, timestamp, value).
fn history_points(history: &Value) -> Vec<(i64, i64, Value)> {
    history["metrics"]
        .as_array()
        .unwrap_or_else(|| panic!("{history}"))
        .iter()
        .map(|m| {
            (
                m["step"].as_i64().unwrap(),
                m["timestamp"].as_i64().unwrap(),
                m["value"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_history_logged_in_batches_and_alone_reads_back_in_order_whole_and_paged() {
    let (app, token) = setup().await;
    let run = create_run(&app, &token).await;
    let point = |step: i64, at: i64, value: f64| json!({ "key": "loss", "value": value, "timestamp": at, "step": step });
    // (step, timestamp, value) of every point logged, NaN as MLflow writes it.
    let mut logged: Vec<(i64, i64, f64)> = Vec::new();
    let mut log_batch = |points: Vec<(i64, i64, f64)>, others: Vec<Value>| {
        logged.extend(&points);
        let mut metrics: Vec<Value> = points.iter().map(|&(s, t, v)| point(s, t, v)).collect();
        metrics.extend(others);
        json!({ "run_id": run, "metrics": metrics })
    };
    // Many steps at once (stored as chunks), then steps 100..120 again with
    // earlier times (a chunk overlapping the others), then a few scattered
    // steps with another metric's many steps between them (rows).
    let batches = [
        log_batch((0..150).map(|s| (s, 1000 + s, s as f64)).collect(), vec![]),
        log_batch((100..120).rev().map(|s| (s, 5, -1.0)).collect(), vec![]),
        log_batch(
            vec![(149, 2000, 0.25), (0, 999, 7.0), (75, 1075, 74.5)],
            (0..10)
                .map(|s| json!({ "key": "acc", "value": 0.5, "timestamp": 1, "step": s }))
                .collect(),
        ),
    ];
    for body in batches {
        let (status, answer) = post(&app, &token, "runs/log-batch", body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    // One at a time: points of a step and time already logged, told apart
    // by value (NaN above every number), and a step past the others.
    for (step, at, value) in [(60, 1060, f64::NAN), (60, 1060, 0.5), (300, 1, 3.0)] {
        logged.push((step, at, value));
        let body = json!({ "run_id": run, "key": "loss", "value": if value.is_nan() { json!("NaN") } else { json!(value) }, "timestamp": at, "step": step });
        let (status, answer) = post(&app, &token, "runs/log-metric", body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    logged.sort_by(|a, b| {
        (a.0, a.1)
            .cmp(&(b.0, b.1))
            .then(match (a.2.is_nan(), b.2.is_nan()) {
                (false, false) => a.2.partial_cmp(&b.2).unwrap(),
                (nan_a, nan_b) => nan_a.cmp(&nan_b),
            })
    });
    let expected: Vec<(i64, i64, Value)> = logged
        .iter()
        .map(|&(s, t, v)| (s, t, if v.is_nan() { json!("NaN") } else { json!(v) }))
        .collect();
    assert_eq!(expected.len(), 176);

    // Whole, in one answer.
    let path = format!("metrics/get-history?run_id={run}&metric_key=loss");
    let (status, whole) = get(&app, &token, &path).await;
    assert_eq!(status, StatusCode::OK, "{whole}");
    assert_eq!(history_points(&whole), expected);
    // In pages of 7.
    let mut paged = Vec::new();
    let mut token_part = String::new();
    loop {
        let (status, page) = get(&app, &token, &format!("{path}&max_results=7{token_part}")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        paged.extend(history_points(&page));
        match page["next_page_token"].as_str() {
            Some(next) => token_part = format!("&page_token={next}"),
            None => break,
        }
    }
    assert_eq!(paged, expected);
    // Trainyard's own history has every point, by step.
    let (status, own) = app
        .get(
            &format!("/api/v1/workspaces/ml/runs/{run}/metrics/history?name=loss&limit=1000"),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{own}");
    let steps: Vec<i64> = own["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["step"].as_i64().unwrap())
        .collect();
    assert_eq!(steps, expected.iter().map(|p| p.0).collect::<Vec<_>>());
    let (_, latest) = get(&app, &token, &format!("runs/get?run_id={run}")).await;
    let loss = latest["run"]["data"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == "loss")
        .cloned();
    assert_eq!(loss.unwrap()["step"], 300, "{latest}");

    // Both ways of storing points were taken.
    let (rows, chunks) = app.point_rows().await;
    assert!(rows > 0 && chunks > 0, "{rows} rows, {chunks} chunks");
    // Removing the run removes its points, chunks and rows alike.
    app.delete_run_row(&run).await;
    assert_eq!(app.point_rows().await, (0, 0));
}

#[tokio::test]
async fn a_search_answer_is_given_again_only_until_a_row_it_reads_changes() {
    let (app, token) = setup().await;
    let (_, body) = post(&app, &token, "experiments/create", json!({ "name": "e" })).await;
    let experiment = body["experiment_id"].as_str().unwrap().to_string();
    let mut runs = Vec::new();
    for value in [0.1, 0.2, 0.3] {
        let run = create_run_in(&app, &token, &experiment).await;
        let metric = json!({ "run_id": run, "key": "acc", "value": value, "timestamp": 0 });
        assert_eq!(
            post(&app, &token, "runs/log-metric", metric).await.0,
            StatusCode::OK
        );
        runs.push(run);
    }
    let query = json!({ "experiment_ids": [experiment], "order_by": ["metrics.acc DESC"] });
    let search = || async {
        let (status, found) = post(&app, &token, "runs/search", query.clone()).await;
        assert_eq!(status, StatusCode::OK, "{found}");
        found["runs"].as_array().unwrap().clone()
    };
    let ids = |found: &[Value]| -> Vec<String> {
        found
            .iter()
            .map(|run| run["info"]["run_id"].as_str().unwrap().to_string())
            .collect()
    };
    let pool = app.db.pool();
    let sql = |statement: String| async move {
        sqlx::query(&statement).execute(pool).await.unwrap();
    };
    // Renames the last run with the counters' trigger off: a change they
    // do not see.
    let rename_unseen = |name: &'static str| {
        let run = runs[2].clone();
        async move {
            sql("ALTER TABLE runs DISABLE TRIGGER runs_search_update".into()).await;
            sql(format!(
                "UPDATE runs SET display_name = '{name}' WHERE id = '{run}'"
            ))
            .await;
            sql("ALTER TABLE runs ENABLE TRIGGER runs_search_update".into()).await;
        }
    };
    let first = search().await;
    assert_eq!(ids(&first), [runs[2].as_str(), &runs[1], &runs[0]]);

    // Answers are kept: a change the counters do not see is not in the
    // next answer.
    rename_unseen("unseen").await;
    assert_eq!(search().await, first);

    // Each kind of change the search reads is seen at once.
    let best = json!({ "run_id": runs[0], "key": "acc", "value": 0.9, "timestamp": 1 });
    assert_eq!(
        post(&app, &token, "runs/log-metric", best).await.0,
        StatusCode::OK
    );
    let found = search().await;
    assert_eq!(ids(&found), [runs[0].as_str(), &runs[2], &runs[1]]);
    assert_eq!(found[1]["info"]["run_name"], "unseen");

    let tag = json!({ "run_id": runs[1], "key": "team", "value": "blue" });
    assert_eq!(
        post(&app, &token, "runs/set-tag", tag).await.0,
        StatusCode::OK
    );
    let found = search().await;
    assert!(
        found[2]["data"]["tags"].to_string().contains("blue"),
        "{}",
        found[2]
    );

    let dataset = json!({ "run_id": runs[1], "datasets": [{ "dataset": {
        "name": "digits", "digest": "d1", "source_type": "local", "source": "{}" } }] });
    assert_eq!(
        post(&app, &token, "runs/log-inputs", dataset).await.0,
        StatusCode::OK
    );
    let found = search().await;
    assert_eq!(
        found[2]["inputs"]["dataset_inputs"][0]["dataset"]["name"],
        "digits"
    );

    // Written by another process (an executor, another server), in SQL.
    sql(format!(
        "UPDATE runs SET status = 'Failed' WHERE id = '{}'",
        runs[2]
    ))
    .await;
    assert_eq!(search().await[1]["info"]["status"], "FAILED");

    assert_eq!(
        post(&app, &token, "runs/delete", json!({ "run_id": runs[0] }))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(ids(&search().await), [runs[2].as_str(), &runs[1]]);

    // A new run, with a new metric row.
    let newest = create_run_in(&app, &token, &experiment).await;
    let metric = json!({ "run_id": newest, "key": "acc", "value": 0.95, "timestamp": 2 });
    assert_eq!(
        post(&app, &token, "runs/log-metric", metric).await.0,
        StatusCode::OK
    );
    assert_eq!(ids(&search().await), [newest.as_str(), &runs[2], &runs[1]]);

    // The experiment's name says whether it is MLflow's "0".
    sql(format!(
        "UPDATE experiments SET name = 'Default' WHERE id = '{experiment}'"
    ))
    .await;
    assert_eq!(search().await[0]["info"]["experiment_id"], "0");

    // Another workspace naming the same experiment sees none of its runs.
    app.workspace("other").await;
    let stranger = app.token("other", "contributor").await;
    let (status, found) = post(&app, &stranger, "runs/search", query.clone()).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found.get("runs"), None, "{found}");

    // Folding the counters of backends that have exited keeps every sum:
    // answers kept before are given again.
    let dead_backend = i32::MAX;
    sql(format!(
        "INSERT INTO run_search_generations VALUES ('{experiment}', {dead_backend}, 5)"
    ))
    .await;
    let kept = search().await;
    rename_unseen("folded").await;
    assert!(app.db.fold_run_search_generations().await.unwrap() >= 1);
    let shards: Vec<i32> = sqlx::query_scalar(
        "SELECT shard FROM run_search_generations WHERE experiment_id = $1::uuid",
    )
    .bind(&experiment)
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(
        shards.contains(&0) && !shards.contains(&dead_backend),
        "{shards:?}"
    );
    assert_eq!(search().await, kept);

    // The experiment a change names is the one it touched: rows never move.
    let (_, body) = post(&app, &token, "experiments/create", json!({ "name": "f" })).await;
    let elsewhere = body["experiment_id"].as_str().unwrap().to_string();
    let other_run = create_run_in(&app, &token, &elsewhere).await;
    for moving in [
        format!("UPDATE runs SET experiment_id = '{elsewhere}' WHERE id = '{newest}'"),
        format!("UPDATE metrics SET run_id = '{other_run}' WHERE run_id = '{newest}'"),
    ] {
        let refused = sqlx::query(&moving).execute(pool).await.unwrap_err();
        assert!(refused.to_string().contains("cannot change"), "{refused}");
    }

    // Counters emptied (as PostgreSQL's crash recovery empties unlogged
    // tables) could climb back to the sum an answer was kept for: without
    // the epoch, no answer is given again.
    search().await;
    rename_unseen("after").await;
    sql("TRUNCATE run_search_epoch".into()).await;
    assert_eq!(search().await[1]["info"]["run_name"], "after");

    // TRUNCATE names no rows: it starts a new epoch.
    search().await;
    search().await;
    sql("TRUNCATE mlflow_run_io".into()).await;
    assert_eq!(search().await[2]["inputs"], json!({}));
}
