//! Runs placed on the nodes of compute targets, on real Docker engines: the
//! machine's own (shared by several declared nodes with simulated GPUs) and a
//! second one over TLS. GPU sharing is checked from container inspection,
//! not from the scheduler's own tables.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use trainyard_tests::{assert_problem, Options, TestApp};

use crate::compute::TlsEngine;

const BUSYBOX: &str = "trainyard/busybox:latest";
const INVALID: &str = "invalid_field";

fn busybox_env() -> Value {
    json!({ "spec": { "base_image": BUSYBOX } })
}

fn id(run: &Value) -> String {
    run["id"].as_str().unwrap().to_string()
}

/// A server that executes runs, a workspace `lab` with a contributor token,
/// an experiment `exp` and a compute target `gpucluster`.
async fn setup(options: Options) -> Option<(TestApp, String)> {
    let app = TestApp::spawn_executing(options).await?;
    app.workspace("lab").await;
    let token = app.token("lab", "contributor").await;
    app.experiment("lab", &token, "exp").await;
    let (status, body) = app
        .post(
            "/api/v1/workspaces/lab/compute",
            &app.admin,
            json!({ "name": "gpucluster", "max_nodes": 8,
                    "default_resources": { "gpus": 1, "cpus": 0.5, "memory_mb": 256 } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Some((app, token))
}

async fn add_node(app: &TestApp, target: &str, body: Value) {
    let (status, node) = app
        .post(
            &format!("/api/v1/workspaces/lab/compute/{target}/nodes"),
            &app.admin,
            body,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{node}");
}

/// What the watcher saw: samples taken, most containers running at once,
/// and every GPU it saw held twice.
type Watched = (usize, usize, Vec<String>);

/// Records, from the engine, every (node, GPU index) two running
/// containers held at once, until stopped.
fn watch_gpu_sharing(app: &TestApp) -> (Arc<AtomicBool>, tokio::task::JoinHandle<Watched>) {
    let engine = app.engine.clone().expect("an engine");
    let owner = app.owner.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let task = tokio::spawn(async move {
        let (mut samples, mut most_at_once, mut shared) = (0, 0, Vec::new());
        while !stopped.load(Ordering::Relaxed) {
            let holders = engine.running_gpu_holders(&owner).await.unwrap();
            let mut held: BTreeMap<(String, String), String> = BTreeMap::new();
            for (run, node, visible) in &holders {
                let node = node.clone().unwrap_or_default();
                for gpu in visible.as_deref().unwrap_or("").split(',') {
                    if gpu.is_empty() || gpu == "void" {
                        continue;
                    }
                    if let Some(other) = held.insert((node.clone(), gpu.to_string()), run.clone()) {
                        shared.push(format!("{node} GPU {gpu}: runs {other} and {run}"));
                    }
                }
            }
            samples += 1;
            most_at_once = most_at_once.max(holders.len());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (samples, most_at_once, shared)
    });
    (stop, task)
}

#[tokio::test]
async fn two_hundred_runs_of_mixed_sizes_share_four_8_gpu_nodes_and_no_gpu_is_held_twice() {
    let Some((app, token)) = setup(Options::default()).await else {
        return;
    };
    for node in 1..=4 {
        add_node(
            &app,
            "gpucluster",
            json!({ "name": format!("gpu-{node}"), "endpoint": "unix:///var/run/docker.sock",
                    "gpu_mode": "simulated", "gpus": 8, "cpus": 64, "memory_mb": 65536 }),
        )
        .await;
    }
    let (stop, watcher) = watch_gpu_sharing(&app);
    let sizes = [1u32, 2, 4, 8, 1, 3, 2, 1];
    let mut runs = Vec::new();
    for i in 0..200 {
        let gpus = sizes[i % sizes.len()];
        let run = app
            .run(
                "lab",
                &token,
                "exp",
                json!({ "command": ["sh", "-c", "echo \"gpus=$NVIDIA_VISIBLE_DEVICES\"; sleep 0.5"],
                        "environment": busybox_env(), "compute_target": "gpucluster",
                        "resources": { "gpus": gpus } }),
            )
            .await;
        runs.push((id(&run), gpus));
    }
    let mut node_use: BTreeMap<String, usize> = BTreeMap::new();
    for (run_id, gpus) in &runs {
        let run = app
            .wait_for_end("lab", &token, run_id, Duration::from_secs(900))
            .await;
        assert_eq!(run["status"], "Completed", "{run}");
        let placement = &run["placement"];
        let held: Vec<u64> = placement["gpus"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_u64().unwrap())
            .collect();
        assert_eq!(held.len() as u32, *gpus, "{run}");
        assert!(held.iter().all(|g| *g < 8), "{run}");
        assert_eq!(placement["cpus"], 0.5, "the target's default: {run}");
        // The container saw exactly its GPUs.
        let lines = app.log_lines("lab", &token, run_id, "stdout").await;
        let visible: Vec<String> = held.iter().map(u64::to_string).collect();
        assert_eq!(
            lines[0]["line"],
            format!("gpus={}", visible.join(",")),
            "{run}"
        );
        *node_use
            .entry(placement["node"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let (samples, most_at_once, shared) = watcher.await.unwrap();
    assert!(shared.is_empty(), "GPUs held twice: {shared:?}");
    assert!(samples > 10, "the watcher sampled {samples} times");
    assert!(
        most_at_once > 1,
        "runs never ran side by side ({most_at_once})"
    );
    assert_eq!(node_use.len(), 4, "every node took runs: {node_use:?}");
    // Nothing is held once everything ended.
    let (_, nodes) = app
        .get("/api/v1/workspaces/lab/compute/gpucluster/nodes", &token)
        .await;
    for node in nodes["items"].as_array().unwrap() {
        assert_eq!(node["free"]["gpus"].as_array().unwrap().len(), 8, "{node}");
        assert!(node["running_runs"].as_array().unwrap().is_empty());
    }
    eprintln!(
        "200 runs: {node_use:?}; {samples} samples, at most {most_at_once} containers at once"
    );
}

#[tokio::test]
async fn a_run_on_an_nvidia_node_gets_device_requests_for_its_gpus_and_limits() {
    let Some((app, token)) = setup(Options {
        keep_containers: true,
        ..Options::default()
    })
    .await
    else {
        return;
    };
    add_node(
        &app,
        "gpucluster",
        json!({ "name": "dgx", "endpoint": "unix:///var/run/docker.sock",
                "gpu_mode": "nvidia", "gpus": 4, "cpus": 16, "memory_mb": 65536 }),
    )
    .await;
    let run = app
        .run(
            "lab",
            &token,
            "exp",
            json!({ "command": ["true"], "environment": busybox_env(),
                    "compute_target": "gpucluster",
                    "resources": { "gpus": 2, "cpus": 1.5, "memory_mb": 512 } }),
        )
        .await;
    // Without the NVIDIA runtime the engine refuses to start it; on a GPU
    // machine it completes. Either way the created container is inspected.
    let run = app
        .wait_for_end("lab", &token, &id(&run), Duration::from_secs(120))
        .await;
    let placement = &run["placement"];
    assert_eq!(placement["node"], "dgx", "{run}");
    assert_eq!(placement["gpus"], json!([0, 1]), "{run}");
    let engine = app.engine.clone().unwrap();
    let containers = engine.run_containers(&app.owner).await.unwrap();
    let (container, _, _) = containers
        .iter()
        .find(|(_, run_id, _)| *run_id == id(&run))
        .expect("the run's container was kept");
    let requests = engine.container_gpu_requests(container).await.unwrap();
    assert_eq!(
        requests,
        vec![("nvidia".to_string(), vec!["0".to_string(), "1".to_string()])]
    );
    if run["status"] == "Failed" {
        assert!(
            run["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{run}"
        );
    }
    engine.remove_container(container).await.unwrap();
}

#[tokio::test]
async fn a_queued_run_says_why_it_waits_and_unknown_targets_are_refused() {
    let Some((app, token)) = setup(Options::default()).await else {
        return;
    };
    // No node yet.
    let big = submit_gpus(&app, &token, 16).await;
    let reason = wait_reason(&app, &token, &id(&big)).await;
    assert_eq!(reason, "no node in compute target gpucluster");
    add_node(
        &app,
        "gpucluster",
        json!({ "name": "gpu-1", "endpoint": "unix:///var/run/docker.sock",
                "gpu_mode": "simulated", "gpus": 8, "cpus": 8, "memory_mb": 8192 }),
    )
    .await;
    let reason = wait_reason_other_than(&app, &token, &id(&big), &reason).await;
    assert_eq!(
        reason,
        "needs 16 GPUs; the largest Ready node of gpucluster has 8 in all"
    );
    let (status, queue) = app
        .get("/api/v1/workspaces/lab/compute/gpucluster/queue", &token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(queue["runs"][0]["run_id"], id(&big));
    assert_eq!(queue["runs"][0]["wait_reason"], reason);

    // A cordoned node takes nothing; uncordoned, the run that fits starts.
    app.call(
        reqwest::Method::PUT,
        "/api/v1/workspaces/lab/compute/gpucluster/nodes/gpu-1/state",
        &app.admin,
        Some(json!({ "state": "cordoned", "reason": "maintenance" })),
    )
    .await;
    let small = submit_gpus(&app, &token, 2).await;
    let reason = wait_reason(&app, &token, &id(&small)).await;
    assert_eq!(reason, "no Ready node in compute target gpucluster");
    app.call(
        reqwest::Method::PUT,
        "/api/v1/workspaces/lab/compute/gpucluster/nodes/gpu-1/state",
        &app.admin,
        Some(json!({ "state": "ready" })),
    )
    .await;
    let small = app
        .wait_for_end("lab", &token, &id(&small), Duration::from_secs(120))
        .await;
    assert_eq!(small["status"], "Completed", "{small}");
    assert_eq!(small["wait_reason"], Value::Null);

    // A workspace quota holds runs back, saying so; only server
    // administrators set it.
    let quota = "/api/v1/workspaces/lab/quota";
    let (status, _) = app
        .call(
            reqwest::Method::PUT,
            quota,
            &token,
            Some(json!({ "max_gpus": 1 })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .call(
            reqwest::Method::PUT,
            quota,
            &app.admin,
            Some(json!({ "max_gpus": 1 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let over = submit_gpus(&app, &token, 2).await;
    let reason = wait_reason(&app, &token, &id(&over)).await;
    assert_eq!(
        reason,
        "workspace quota: 1 GPU at once, 0 in use; this run needs 2"
    );
    let (_, read) = app.get(quota, &token).await;
    assert_eq!(read, json!({ "max_gpus": 1, "max_runs": null }));

    let unknown = app
        .post(
            "/api/v1/workspaces/lab/runs",
            &token,
            json!({ "experiment": "exp", "command": ["true"], "compute_target": "nowhere" }),
        )
        .await;
    assert_problem(
        &unknown,
        StatusCode::UNPROCESSABLE_ENTITY,
        INVALID,
        Some("compute_target"),
    );
    let too_high = app
        .post(
            "/api/v1/workspaces/lab/runs",
            &token,
            json!({ "experiment": "exp", "command": ["true"], "priority": 5000 }),
        )
        .await;
    assert_problem(
        &too_high,
        StatusCode::UNPROCESSABLE_ENTITY,
        INVALID,
        Some("priority"),
    );
}

#[tokio::test]
async fn a_node_over_tls_runs_a_job_and_its_runs_fail_clearly_when_its_engine_dies() {
    let Some((app, token)) = setup(Options::default()).await else {
        return;
    };
    let mut remote = TlsEngine::start();
    remote.load_image(BUSYBOX);
    let (status, _) = app
        .post(
            "/api/v1/workspaces/lab/compute",
            &app.admin,
            json!({ "name": "remote", "max_nodes": 1,
                    "default_resources": { "gpus": 0, "cpus": 1, "memory_mb": 256 } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    add_node(
        &app,
        "remote",
        json!({ "name": "tls-1", "endpoint": remote.endpoint, "tls": remote.tls(),
                "cpus": 2, "memory_mb": 2048 }),
    )
    .await;
    add_node(
        &app,
        "gpucluster",
        json!({ "name": "local-1", "endpoint": "unix:///var/run/docker.sock",
                "gpu_mode": "simulated", "gpus": 2, "cpus": 4, "memory_mb": 4096 }),
    )
    .await;
    let job = |target: &str, script: &str| {
        json!({ "command": ["sh", "-c", script], "environment": busybox_env(),
                "compute_target": target })
    };
    let hello = app
        .run("lab", &token, "exp", job("remote", "echo hello over tls"))
        .await;
    let hello = app
        .wait_for_end("lab", &token, &id(&hello), Duration::from_secs(180))
        .await;
    assert_eq!(hello["status"], "Completed", "{hello}");
    assert_eq!(hello["placement"]["node"], "tls-1");
    let lines = app.log_lines("lab", &token, &id(&hello), "stdout").await;
    assert_eq!(lines[0]["line"], "hello over tls");

    // Its engine dies while a run runs there; a run on another node goes on.
    let doomed = app
        .run(
            "lab",
            &token,
            "exp",
            job("remote", "echo started; sleep 30"),
        )
        .await;
    app.wait_for_status(
        "lab",
        &token,
        &id(&doomed),
        "Running",
        Duration::from_secs(120),
    )
    .await;
    let survivor = app
        .run(
            "lab",
            &token,
            "exp",
            job("gpucluster", "sleep 3; echo survived"),
        )
        .await;
    app.wait_for_status(
        "lab",
        &token,
        &id(&survivor),
        "Running",
        Duration::from_secs(120),
    )
    .await;
    remote.kill();
    let doomed = app
        .wait_for_end("lab", &token, &id(&doomed), Duration::from_secs(120))
        .await;
    assert_eq!(doomed["status"], "Failed", "{doomed}");
    let error = doomed["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("node tls-1 stopped answering"),
        "the reason names the node: {error}"
    );
    let survivor = app
        .wait_for_end("lab", &token, &id(&survivor), Duration::from_secs(120))
        .await;
    assert_eq!(survivor["status"], "Completed", "{survivor}");
    let lines = app.log_lines("lab", &token, &id(&survivor), "stdout").await;
    assert_eq!(lines[0]["line"], "survived");
}

/// Submits a run of `true` to `gpucluster` asking for `gpus` GPUs.
async fn submit_gpus(app: &TestApp, token: &str, gpus: u32) -> Value {
    app.run(
        "lab",
        token,
        "exp",
        json!({ "command": ["true"], "environment": busybox_env(),
                "compute_target": "gpucluster", "resources": { "gpus": gpus } }),
    )
    .await
}

/// Waits until the run has a wait reason.
async fn wait_reason(app: &TestApp, token: &str, run_id: &str) -> String {
    wait_reason_other_than(app, token, run_id, "").await
}

/// Waits until the run's wait reason is set and differs from `previous`.
async fn wait_reason_other_than(
    app: &TestApp,
    token: &str,
    run_id: &str,
    previous: &str,
) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, run) = app
            .get(&format!("/api/v1/workspaces/lab/runs/{run_id}"), token)
            .await;
        // A run may be placed and come back to the queue meanwhile.
        assert!(
            matches!(run["status"].as_str(), Some("Queued" | "Preparing")),
            "{run}"
        );
        if let (Some("Queued"), Some(reason)) =
            (run["status"].as_str(), run["wait_reason"].as_str())
        {
            if reason != previous {
                return reason.to_string();
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no new wait reason: {run}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_run_placed_on_a_node_that_does_not_answer_goes_back_to_the_queue() {
    let Some((app, token)) = setup(Options::default()).await else {
        return;
    };
    // Nothing listens there; the node monitor has not looked yet, so the
    // node counts as ready.
    add_node(
        &app,
        "gpucluster",
        json!({ "name": "gone", "endpoint": "tcp://127.0.0.1:1",
                "gpu_mode": "simulated", "gpus": 1, "cpus": 4, "memory_mb": 4096 }),
    )
    .await;
    let run = submit_gpus(&app, &token, 1).await;
    let reason = wait_reason(&app, &token, &id(&run)).await;
    assert_eq!(reason, "no Ready node in compute target gpucluster");
    let (_, events) = app
        .get(
            &format!("/api/v1/workspaces/lab/runs/{}/events", id(&run)),
            &token,
        )
        .await;
    let requeued = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["to"] == "Queued" && e["from"] == "Preparing")
        .unwrap_or_else(|| panic!("no requeue in {events}"));
    assert!(
        requeued["reason"]
            .as_str()
            .unwrap()
            .starts_with("node gone stopped answering"),
        "{requeued}"
    );
    let (_, node) = app
        .get(
            "/api/v1/workspaces/lab/compute/gpucluster/nodes/gone",
            &token,
        )
        .await;
    assert_eq!(node["health"], "down", "{node}");

    // A node that answers takes it.
    add_node(
        &app,
        "gpucluster",
        json!({ "name": "local", "endpoint": "unix:///var/run/docker.sock",
                "gpu_mode": "simulated", "gpus": 1, "cpus": 4, "memory_mb": 4096 }),
    )
    .await;
    let run = app
        .wait_for_end("lab", &token, &id(&run), Duration::from_secs(120))
        .await;
    assert_eq!(run["status"], "Completed", "{run}");
    assert_eq!(run["placement"]["node"], "local");
}

#[tokio::test]
async fn a_node_that_answers_again_loses_the_containers_of_runs_that_ended_meanwhile() {
    let Some((app, token)) = setup(Options {
        keep_containers: true,
        ..Options::default()
    })
    .await
    else {
        return;
    };
    add_node(
        &app,
        "gpucluster",
        json!({ "name": "gpu-1", "endpoint": "unix:///var/run/docker.sock",
                "gpu_mode": "simulated", "gpus": 2, "cpus": 4, "memory_mb": 4096 }),
    )
    .await;
    // One run ended and (kept here) left its container, as a run whose node
    // was lost does; another still runs.
    let ended = submit_gpus(&app, &token, 1).await;
    let ended = app
        .wait_for_end("lab", &token, &id(&ended), Duration::from_secs(120))
        .await;
    assert_eq!(ended["status"], "Completed", "{ended}");
    let running = app
        .run(
            "lab",
            &token,
            "exp",
            json!({ "command": ["sleep", "60"], "environment": busybox_env(),
                    "compute_target": "gpucluster", "resources": { "gpus": 1 } }),
        )
        .await;
    app.wait_for_status(
        "lab",
        &token,
        &id(&running),
        "Running",
        Duration::from_secs(120),
    )
    .await;
    let engine = app.engine.clone().unwrap();
    let runs_with_containers = || async {
        let containers = engine.run_containers(&app.owner).await.unwrap();
        let mut runs: Vec<String> = containers.into_iter().map(|(_, run, _)| run).collect();
        runs.sort();
        runs
    };
    let mut both = vec![id(&ended), id(&running)];
    both.sort();
    assert_eq!(runs_with_containers().await, both);

    // The node was down; it answers again.
    let (_, node) = app
        .get(
            "/api/v1/workspaces/lab/compute/gpucluster/nodes/gpu-1",
            &token,
        )
        .await;
    let node_id = uuid::Uuid::parse_str(node["id"].as_str().unwrap()).unwrap();
    app.db
        .node_unreachable(node_id, "test: lost")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    trainyard_docker::nodes::check_all_with(&app.db, Duration::ZERO).await;
    assert_eq!(runs_with_containers().await, vec![id(&running)]);
    let (_, node) = app
        .get(
            "/api/v1/workspaces/lab/compute/gpucluster/nodes/gpu-1",
            &token,
        )
        .await;
    assert_eq!(node["health"], "up", "{node}");
    let (status, _) = app
        .post(
            &format!("/api/v1/workspaces/lab/runs/{}/cancel", id(&running)),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.wait_for_end("lab", &token, &id(&running), Duration::from_secs(60))
        .await;
    for (container, _, _) in engine.run_containers(&app.owner).await.unwrap() {
        let _ = engine.remove_container(&container).await;
    }
}

#[tokio::test]
async fn a_run_placed_just_before_the_server_stopped_is_queued_again_and_runs_after_restart() {
    let Some((mut app, token)) = setup(Options::default()).await else {
        return;
    };
    add_node(
        &app,
        "gpucluster",
        json!({ "name": "gpu-1", "endpoint": "unix:///var/run/docker.sock",
                "gpu_mode": "simulated", "gpus": 1, "cpus": 4, "memory_mb": 4096 }),
    )
    .await;
    // The server stops; a pass it made just before had placed the run, and
    // nothing started it.
    app.stop_scheduler();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let run = submit_gpus(&app, &token, 1).await;
    let mut pass = app.db.begin_scheduling_pass().await.unwrap().unwrap();
    let state = pass.cluster_state(100).await.unwrap();
    let decisions = trainyard_scheduler::cluster::decide(&state, Default::default());
    assert_eq!(decisions.placements.len(), 1, "{decisions:?}");
    let (run_id, placement) = &decisions.placements[0];
    let placed = pass
        .place(*run_id, placement, &app.owner, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(placed.is_some());
    pass.commit().await.unwrap();
    let (_, before) = app
        .get(&format!("/api/v1/workspaces/lab/runs/{}", id(&run)), &token)
        .await;
    assert_eq!(before["status"], "Preparing", "{before}");

    app.start_scheduler();
    let run = app
        .wait_for_end("lab", &token, &id(&run), Duration::from_secs(120))
        .await;
    assert_eq!(run["status"], "Completed", "{run}");
    let (_, events) = app
        .get(
            &format!("/api/v1/workspaces/lab/runs/{}/events", id(&run)),
            &token,
        )
        .await;
    assert!(
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["to"] == "Queued"
                && e["reason"]
                    .as_str()
                    .unwrap()
                    .contains("between placing the run and starting it")),
        "{events}"
    );
}
