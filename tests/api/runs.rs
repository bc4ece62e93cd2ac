use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashSet;
use trainyard_core::RunStatus;
use trainyard_tests::{assert_problem, TestApp};
use uuid::Uuid;

async fn setup() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    app.workspace("vision").await;
    let token = app.token("vision", "contributor").await;
    app.experiment("vision", &token, "mnist").await;
    (app, token)
}

fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_submitted_run_is_queued_with_its_first_event() {
    let (app, token) = setup().await;
    let run = app
        .run("vision", &token, "mnist", json!({ "display_name": "baseline", "tags": { "lr": "0.1" }, "properties": { "git": "abc" } }))
        .await;
    assert_eq!(run["status"], "Queued");
    assert_eq!(run["display_name"], "baseline");
    assert_eq!(run["tags"]["lr"], "0.1");
    assert_eq!(run["properties"]["git"], "abc");
    assert_eq!(run["cancel_requested"], false);
    let id = run["id"].as_str().unwrap();

    let (status, got) = app
        .get(&format!("/api/v1/workspaces/vision/runs/{id}"), &token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, run);

    let (_, events) = app
        .get(
            &format!("/api/v1/workspaces/vision/runs/{id}/events"),
            &token,
        )
        .await;
    let items = events["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["to"], "Queued");
    assert!(items[0]["from"].is_null());
    assert_eq!(items[0]["reason"], "submitted");

    let missing = app
        .get(
            &format!("/api/v1/workspaces/vision/runs/{}", Uuid::new_v4()),
            &token,
        )
        .await;
    assert_problem(&missing, StatusCode::NOT_FOUND, "not_found", None);
}

#[tokio::test]
async fn run_input_is_validated_and_nothing_is_stored_on_refusal() {
    let (app, token) = setup().await;
    let path = "/api/v1/workspaces/vision/runs";
    let cases = [
        (json!({ "experiment": "nope" }), "experiment"),
        (
            json!({ "experiment": "mnist", "display_name": "x".repeat(257) }),
            "display_name",
        ),
        (
            json!({ "experiment": "mnist", "tags": { "k": "v".repeat(5001) } }),
            "tags.k",
        ),
        (
            json!({ "experiment": "mnist", "properties": { &"k".repeat(251): "v" } }),
            &format!("properties.{}", "k".repeat(251)),
        ),
        (
            json!({ "experiment": "mnist", "script": "train.py" }),
            "snapshot",
        ),
        (json!({ "experiment": "mnist", "colour": "red" }), "colour"),
        (json!({}), "experiment"),
    ];
    for (body, field) in cases {
        let answer = app.post(path, &token, body).await;
        assert_problem(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some(field),
        );
    }
    let (_, list) = app.get(path, &token).await;
    assert!(list["items"].as_array().unwrap().is_empty());

    let reader = app.token("vision", "reader").await;
    let answer = app
        .post(path, &reader, json!({ "experiment": "mnist" }))
        .await;
    assert_problem(&answer, StatusCode::FORBIDDEN, "forbidden", None);
}

#[tokio::test]
async fn runs_are_filtered_by_experiment_status_tag_and_time() {
    let (app, token) = setup().await;
    app.experiment("vision", &token, "other").await;
    let a = app
        .run(
            "vision",
            &token,
            "mnist",
            json!({ "tags": { "team": "cv", "size": "s" } }),
        )
        .await;
    let b = app
        .run(
            "vision",
            &token,
            "mnist",
            json!({ "tags": { "team": "nlp" } }),
        )
        .await;
    let c = app
        .run(
            "vision",
            &token,
            "other",
            json!({ "tags": { "team": "cv" } }),
        )
        .await;
    let id = |r: &Value| r["id"].as_str().unwrap().to_string();
    app.post(
        &format!("/api/v1/workspaces/vision/runs/{}/cancel", id(&b)),
        &token,
        json!({}),
    )
    .await;

    let list = |query: &'static str| {
        let app = &app;
        let token = &token;
        async move {
            let (status, body) = app
                .get(&format!("/api/v1/workspaces/vision/runs?{query}"), token)
                .await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            ids(&body)
        }
    };
    assert_eq!(list("").await, vec![id(&c), id(&b), id(&a)]);
    assert_eq!(list("experiment=mnist").await, vec![id(&b), id(&a)]);
    assert_eq!(list("status=Canceled").await, vec![id(&b)]);
    assert_eq!(list("status=Queued").await, vec![id(&c), id(&a)]);
    assert_eq!(list("status=Queued,Canceled").await.len(), 3);
    assert_eq!(list("status=Queued&status=Canceled").await.len(), 3);
    assert_eq!(list("tag=team%3Dcv").await, vec![id(&c), id(&a)]);
    assert_eq!(list("tag=team%3Dcv&tag=size").await, vec![id(&a)]);
    assert_eq!(list("tag=size").await, vec![id(&a)]);
    assert_eq!(
        list("experiment=other&tag=team%3Dnlp").await,
        Vec::<String>::new()
    );

    let b_created = b["created_at"].as_str().unwrap().replace('+', "%2B");
    let after = app
        .get(
            &format!("/api/v1/workspaces/vision/runs?created_after={b_created}"),
            &token,
        )
        .await;
    assert_eq!(ids(&after.1), vec![id(&c), id(&b)]);
    let before = app
        .get(
            &format!("/api/v1/workspaces/vision/runs?created_before={b_created}"),
            &token,
        )
        .await;
    assert_eq!(ids(&before.1), vec![id(&a)]);

    let bad = app
        .get("/api/v1/workspaces/vision/runs?status=Done", &token)
        .await;
    assert_problem(
        &bad,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("status"),
    );
    let bad = app
        .get(
            "/api/v1/workspaces/vision/runs?created_after=yesterday",
            &token,
        )
        .await;
    assert_problem(
        &bad,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("created_after"),
    );
}

#[tokio::test]
async fn paging_is_stable_while_runs_are_being_submitted() {
    let (app, token) = setup().await;
    let mut existing = HashSet::new();
    for _ in 0..60 {
        existing.insert(
            app.run("vision", &token, "mnist", json!({})).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }

    // Submit 40 more runs while a reader walks the list in pages of 7.
    let writer = async {
        for _ in 0..40 {
            app.run("vision", &token, "mnist", json!({})).await;
        }
    };
    let reader = async {
        let mut seen = Vec::new();
        let mut cursor = String::new();
        loop {
            let (status, page) = app
                .get(
                    &format!("/api/v1/workspaces/vision/runs?limit=7&cursor={cursor}"),
                    &token,
                )
                .await;
            assert_eq!(status, StatusCode::OK);
            seen.extend(ids(&page));
            match page["next_cursor"].as_str() {
                Some(next) => cursor = next.to_string(),
                None => break seen,
            }
            tokio::task::yield_now().await;
        }
    };
    let ((), seen) = tokio::join!(writer, reader);

    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "a run was returned twice");
    assert!(
        existing.is_subset(&unique),
        "a run that existed before paging began was skipped"
    );
}

#[tokio::test]
async fn tags_and_properties_are_set_and_deleted() {
    let (app, token) = setup().await;
    let run = app
        .run(
            "vision",
            &token,
            "mnist",
            json!({ "tags": { "keep": "1" } }),
        )
        .await;
    let base = format!(
        "/api/v1/workspaces/vision/runs/{}",
        run["id"].as_str().unwrap()
    );

    let (status, tagged) = app
        .call(
            Method::PUT,
            &format!("{base}/tags/stage"),
            &token,
            Some(json!({ "value": "tuning" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tagged["tags"], json!({ "keep": "1", "stage": "tuning" }));
    let (_, retagged) = app
        .call(
            Method::PUT,
            &format!("{base}/tags/stage"),
            &token,
            Some(json!({ "value": "final" })),
        )
        .await;
    assert_eq!(retagged["tags"]["stage"], "final");
    let (_, untagged) = app
        .call(Method::DELETE, &format!("{base}/tags/stage"), &token, None)
        .await;
    assert_eq!(untagged["tags"], json!({ "keep": "1" }));
    let (status, _) = app
        .call(
            Method::DELETE,
            &format!("{base}/tags/never-set"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let (_, with_prop) = app
        .call(
            Method::PUT,
            &format!("{base}/properties/commit"),
            &token,
            Some(json!({ "value": "abc123" })),
        )
        .await;
    assert_eq!(with_prop["properties"]["commit"], "abc123");
    let (_, without) = app
        .call(
            Method::DELETE,
            &format!("{base}/properties/commit"),
            &token,
            None,
        )
        .await;
    assert!(without["properties"].as_object().unwrap().is_empty());

    let long = app
        .call(
            Method::PUT,
            &format!("{base}/tags/x"),
            &token,
            Some(json!({ "value": "v".repeat(5001) })),
        )
        .await;
    assert_problem(
        &long,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("value"),
    );
    let reader = app.token("vision", "reader").await;
    let denied = app
        .call(
            Method::PUT,
            &format!("{base}/tags/x"),
            &reader,
            Some(json!({ "value": "v" })),
        )
        .await;
    assert_problem(&denied, StatusCode::FORBIDDEN, "forbidden", None);
}

#[tokio::test]
async fn canceling_a_queued_run_ends_it_and_records_why() {
    let (app, token) = setup().await;
    let run = app.run("vision", &token, "mnist", json!({})).await;
    let base = format!(
        "/api/v1/workspaces/vision/runs/{}",
        run["id"].as_str().unwrap()
    );

    let (status, canceled) = app.post(&format!("{base}/cancel"), &token, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(canceled["status"], "Canceled");
    assert!(canceled["ended_at"].is_string());

    let (_, events) = app.get(&format!("{base}/events"), &token).await;
    let last = events["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["from"], "Queued");
    assert_eq!(last["to"], "Canceled");
    assert_eq!(last["reason"], "canceled by user");

    let again = app.post(&format!("{base}/cancel"), &token, json!({})).await;
    assert_problem(&again, StatusCode::CONFLICT, "invalid_transition", None);
    assert!(again.1["detail"].as_str().unwrap().contains("Canceled"));
}

#[tokio::test]
async fn canceling_an_active_run_asks_its_executor_to_stop_it() {
    let (app, token) = setup().await;
    // A run with something to execute (one without is tracked only, and a
    // cancel ends it at once).
    let run = app
        .run("vision", &token, "mnist", json!({ "command": ["true"] }))
        .await;
    let id = Uuid::parse_str(run["id"].as_str().unwrap()).unwrap();
    let ws = Uuid::parse_str(run["workspace_id"].as_str().unwrap()).unwrap();
    for (to, reason) in [
        (RunStatus::Preparing, "placed"),
        (RunStatus::Starting, "image ready"),
        (RunStatus::Running, "container started"),
    ] {
        app.db
            .transition_run(ws, id, to, reason, None)
            .await
            .unwrap();
    }
    let (status, answer) = app
        .post(
            &format!("/api/v1/workspaces/vision/runs/{id}/cancel"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["status"], "Running");
    assert_eq!(answer["cancel_requested"], true);
    assert!(answer["started_at"].is_string());

    let (_, events) = app
        .get(
            &format!("/api/v1/workspaces/vision/runs/{id}/events"),
            &token,
        )
        .await;
    let path: Vec<_> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["to"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(path, vec!["Queued", "Preparing", "Starting", "Running"]);
}

#[tokio::test]
async fn the_store_refuses_transitions_the_state_machine_forbids() {
    let (app, token) = setup().await;
    let run = app.run("vision", &token, "mnist", json!({})).await;
    let id = Uuid::parse_str(run["id"].as_str().unwrap()).unwrap();
    let ws = Uuid::parse_str(run["workspace_id"].as_str().unwrap()).unwrap();
    let err = app
        .db
        .transition_run(ws, id, RunStatus::Running, "skip ahead", None)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "a run cannot go from Queued to Running");
    app.db
        .transition_run(ws, id, RunStatus::Failed, "no node", Some("needs 2 GPUs"))
        .await
        .unwrap();
    let (_, failed) = app
        .get(&format!("/api/v1/workspaces/vision/runs/{id}"), &token)
        .await;
    assert_eq!(failed["status"], "Failed");
    assert_eq!(failed["error"], "needs 2 GPUs");
    let (_, events) = app
        .get(
            &format!("/api/v1/workspaces/vision/runs/{id}/events"),
            &token,
        )
        .await;
    assert_eq!(events["items"].as_array().unwrap().len(), 2);
}
