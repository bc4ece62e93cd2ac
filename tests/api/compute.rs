//! Compute targets and nodes: the registry, its validation, limits and roles.

use reqwest::StatusCode;
use serde_json::json;
use trainyard_tests::{assert_problem, TestApp};

#[tokio::test]
async fn compute_targets_hold_nodes_up_to_max_nodes_and_nodes_are_cordoned() {
    let app = TestApp::spawn().await;
    app.workspace("lab").await;
    let reader = app.token("lab", "reader").await;
    let base = "/api/v1/workspaces/lab/compute";

    let (status, target) = app
        .post(
            base,
            &app.admin,
            json!({ "name": "gpucluster", "labels": { "vm_size": "8xA100" }, "max_nodes": 2,
                    "default_resources": { "gpus": 1, "cpus": 4, "memory_mb": 16384 } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{target}");
    assert_eq!(target["default_resources"]["gpus"], 1);
    assert_eq!(target["labels"]["vm_size"], "8xA100");
    let again = app
        .post(
            base,
            &app.admin,
            json!({ "name": "gpucluster", "max_nodes": 1 }),
        )
        .await;
    assert_problem(&again, StatusCode::CONFLICT, "already_exists", Some("name"));
    let (status, got) = app.get(&format!("{base}/gpucluster"), &reader).await;
    assert_eq!(
        (status, &got["name"]),
        (StatusCode::OK, &json!("gpucluster"))
    );
    let (status, _) = app.get(&format!("{base}/cpucluster"), &reader).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the SDK's get-or-create asks first"
    );
    let by_reader = app
        .post(base, &reader, json!({ "name": "mine", "max_nodes": 1 }))
        .await;
    assert_eq!(by_reader.0, StatusCode::FORBIDDEN);
    let bad = app
        .post(base, &app.admin, json!({ "name": "x", "max_nodes": 0 }))
        .await;
    assert_problem(
        &bad,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("max_nodes"),
    );

    let nodes = format!("{base}/gpucluster/nodes");
    let node = |name: &str, endpoint: &str| {
        json!({ "name": name, "endpoint": endpoint, "gpu_mode": "simulated", "gpus": 8,
                "cpus": 32, "memory_mb": 262144 })
    };
    let (status, first) = app
        .post(
            &nodes,
            &app.admin,
            node("node-1", "unix:///var/run/docker.sock"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(
        first["capacity"],
        json!({ "gpus": 8, "cpus": 32.0, "memory_mb": 262144 })
    );
    assert_eq!(
        (first["state"].as_str(), first["tls"].as_bool()),
        (Some("ready"), Some(false))
    );
    let mut tls_node = node("node-2", "tcp://10.0.0.7:2376");
    tls_node["tls"] = json!({ "ca": "/etc/trainyard/ca.pem", "cert": "/etc/trainyard/cert.pem",
                              "key": "/etc/trainyard/key.pem" });
    let (status, second) = app.post(&nodes, &app.admin, tls_node).await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    assert_eq!(second["tls"], true);
    let full = app
        .post(
            &nodes,
            &app.admin,
            node("node-3", "unix:///var/run/docker.sock"),
        )
        .await;
    assert_problem(&full, StatusCode::CONFLICT, "in_use", None);
    assert!(full.1["detail"].as_str().unwrap().contains("max_nodes"));

    for (body, field) in [
        (node("n", "http://host:2375"), "endpoint"),
        (node("n", "tcp://host"), "endpoint"),
        (
            json!({ "name": "n", "endpoint": "unix:///d.sock", "gpus": 2, "cpus": 1, "memory_mb": 1 }),
            "gpus",
        ),
        (
            json!({ "name": "n", "endpoint": "unix:///d.sock", "gpu_mode": "amd", "cpus": 1, "memory_mb": 1 }),
            "gpu_mode",
        ),
        (
            json!({ "name": "n", "endpoint": "unix:///d.sock", "cpus": 0, "memory_mb": 1 }),
            "cpus",
        ),
        (
            json!({ "name": "n", "endpoint": "tcp://h:1", "cpus": 1, "memory_mb": 1,
                 "tls": { "ca": "ca.pem", "cert": "/c", "key": "/k" } }),
            "tls.ca",
        ),
    ] {
        let answer = app.post(&nodes, &app.admin, body).await;
        assert_problem(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some(field),
        );
    }

    let state = format!("{nodes}/node-1/state");
    let (status, cordoned) = app
        .call(
            reqwest::Method::PUT,
            &state,
            &app.admin,
            Some(json!({ "state": "cordoned", "reason": "disk swap" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cordoned}");
    assert_eq!(
        (
            cordoned["state"].as_str(),
            cordoned["state_reason"].as_str()
        ),
        (Some("cordoned"), Some("disk swap"))
    );
    let down = app
        .call(
            reqwest::Method::PUT,
            &state,
            &app.admin,
            Some(json!({ "state": "down" })),
        )
        .await;
    assert_problem(
        &down,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("state"),
    );
    let (_, ready) = app
        .call(
            reqwest::Method::PUT,
            &state,
            &app.admin,
            Some(json!({ "state": "ready" })),
        )
        .await;
    assert_eq!(
        (ready["state"].as_str(), &ready["state_reason"]),
        (Some("ready"), &json!(null))
    );
    let (_, listed) = app.get(&nodes, &reader).await;
    let names: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["node-1", "node-2"]);

    // Deleting a target is refused while a run that names it is not finished.
    let token = app.token("lab", "contributor").await;
    app.experiment("lab", &token, "exp").await;
    let run = app
        .run(
            "lab",
            &token,
            "exp",
            json!({ "command": ["true"], "compute_target": "gpucluster" }),
        )
        .await;
    let refused = app
        .request(
            reqwest::Method::DELETE,
            &format!("{base}/gpucluster"),
            &app.admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let run_id = run["id"].as_str().unwrap();
    let (status, _) = app
        .post(
            &format!("/api/v1/workspaces/lab/runs/{run_id}/cancel"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let deleted = app
        .request(
            reqwest::Method::DELETE,
            &format!("{base}/gpucluster"),
            &app.admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let (status, _) = app.get(&nodes, &reader).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
