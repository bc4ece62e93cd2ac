//! Distributed runs on real containers: PyTorch's gloo all-reduce over
//! 2 nodes × 2 processes, TensorFlow's TF_CONFIG shape, MPI over SSH, a
//! failing rank that stops the others, and two runs at once on the same
//! nodes. The nodes are declared on the machine's one engine; every rank is
//! a container of its own on the host network with its own port.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use trainyard_tests::{assert_problem, require_image, Options, TestApp};

const BUSYBOX: &str = "trainyard/busybox:latest";
const PYTHON: &str = "trainyard/python:3.11-bookworm";
const PYTORCH: &str = "trainyard/pytorch:bookworm";
const MPI: &str = "trainyard/mpi:bookworm";
const LIMIT: Duration = Duration::from_secs(300);

fn id(run: &Value) -> String {
    run["id"].as_str().unwrap().to_string()
}

fn env(image: &str) -> Value {
    json!({ "spec": { "base_image": image } })
}

/// Each test app allocates ports from the same range on the same host (a
/// server owns its nodes' ports; two servers sharing a host would not), so
/// the tests that open ports take turns.
static PORTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A server that executes runs, a workspace `lab` with a contributor
/// token, an experiment `exp` and a compute target `cluster` of two nodes
/// with 4 simulated GPUs each on the machine's engine.
async fn setup() -> Option<(TestApp, String)> {
    setup_with(Options::default()).await
}

async fn setup_with(options: Options) -> Option<(TestApp, String)> {
    let app = TestApp::spawn_executing(options).await?;
    app.workspace("lab").await;
    let token = app.token("lab", "contributor").await;
    app.experiment("lab", &token, "exp").await;
    let (status, body) = app
        .post(
            "/api/v1/workspaces/lab/compute",
            &app.admin,
            json!({ "name": "cluster", "max_nodes": 4,
                    "default_resources": { "gpus": 0, "cpus": 0.5, "memory_mb": 512 } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for node in ["node-a", "node-b"] {
        let (status, body) = app
            .post(
                "/api/v1/workspaces/lab/compute/cluster/nodes",
                &app.admin,
                json!({ "name": node, "endpoint": "unix:///var/run/docker.sock",
                        "gpu_mode": "simulated", "gpus": 4, "cpus": 4, "memory_mb": 8192 }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    Some((app, token))
}

/// The run's containers still on the engine, by the run's label.
async fn containers_left(app: &TestApp, run_id: &str) -> usize {
    let engine = app.engine.as_ref().expect("an engine");
    engine
        .containers_of_run(run_id.parse().unwrap())
        .await
        .unwrap()
        .len()
}

/// The text of every line of one source.
async fn lines(app: &TestApp, token: &str, run_id: &str, source: &str) -> Vec<String> {
    app.log_lines("lab", token, run_id, source)
        .await
        .iter()
        .map(|l| l["line"].as_str().unwrap().to_string())
        .collect()
}

/// A run's metrics by name: (number of points, latest value); `query` is
/// `""` or `"?ranks=all"`.
async fn metrics(
    app: &TestApp,
    token: &str,
    run_id: &str,
    query: &str,
) -> BTreeMap<String, (Value, Value)> {
    let path = format!("/api/v1/workspaces/lab/runs/{run_id}/metrics{query}");
    let (status, body) = app.get(&path, token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let name = m["name"].as_str().unwrap().to_string();
            (name, (m["count"].clone(), m["latest"]["value"].clone()))
        })
        .collect()
}

/// The paths of a run's kept files under `outputs/`, in order.
async fn outputs(app: &TestApp, token: &str, run_id: &str) -> Vec<String> {
    let path = format!("/api/v1/workspaces/lab/runs/{run_id}/files");
    let (status, files) = app.get(&path, token).await;
    assert_eq!(status, StatusCode::OK, "{files}");
    let mut paths: Vec<String> = files["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .filter(|p| p.starts_with("outputs/"))
        .collect();
    paths.sort();
    paths
}

const ALL_REDUCE: &str = r#"
import os, torch, torch.distributed as dist
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
value = torch.tensor([float(rank + 1)])
dist.all_reduce(value)
print(f"rank={rank} world={world} sum={value.item()} local_rank={os.environ['LOCAL_RANK']} "
      f"node_rank={os.environ['NODE_RANK']} gpus={os.environ['NVIDIA_VISIBLE_DEVICES']}")
from trainyard import Run
run = Run.get_context()
run.log("world_size", world)
run.log("reduced", value.item())
run.flush()
with open(f"outputs/rank.txt", "w") as f:
    f.write(str(rank))
dist.destroy_process_group()
"#;

#[tokio::test]
async fn pytorch_2_nodes_x_2_processes_all_reduce_over_gloo() {
    let _ports = PORTS.lock().await;
    let Some((app, token)) = setup().await else {
        return;
    };
    if !require_image(&app, PYTORCH, "docker/build-base-images.sh --distributed").await {
        return;
    }
    let run = app
        .run(
            "lab",
            &token,
            "exp",
            json!({ "command": ["python3", "-u", "-c", ALL_REDUCE],
                    "environment": env(PYTORCH), "compute_target": "cluster",
                    "node_count": 2, "process_count_per_node": 2,
                    "distribution": { "type": "pytorch" },
                    "resources": { "gpus": 2, "cpus": 1, "memory_mb": 2048 } }),
        )
        .await;
    let run_id = id(&run);
    let run = app.wait_for_end("lab", &token, &run_id, LIMIT).await;
    assert_eq!(run["status"], "Completed", "{run}");

    // Four ranks, each with its own GPU, port and container limits.
    let ranks = run["placement"]["ranks"].as_array().expect("ranks").clone();
    assert_eq!(ranks.len(), 4, "{run}");
    let mut gpus_held = BTreeSet::new();
    for rank in &ranks {
        assert_eq!(rank["gpus"].as_array().unwrap().len(), 1, "{rank}");
        assert_eq!(rank["cpus"], 0.5, "{rank}");
        assert_eq!(rank["memory_mb"], 1024, "{rank}");
        let gpu = format!("{} {}", rank["node"], rank["gpus"][0]);
        assert!(gpus_held.insert(gpu), "a GPU given twice: {run}");
    }
    // Each of the two nodes of the run is a node of its own, and its two
    // processes see both of its GPUs, each its own at LOCAL_RANK.
    assert_eq!(ranks[0]["node"], ranks[1]["node"], "{run}");
    assert_eq!(ranks[2]["node"], ranks[3]["node"], "{run}");
    assert_ne!(ranks[0]["node"], ranks[2]["node"], "{run}");
    for (i, rank) in ranks.iter().enumerate() {
        assert_eq!(rank["node_gpus"].as_array().unwrap().len(), 2, "{rank}");
        assert_eq!(rank["gpus"][0], rank["node_gpus"][i % 2], "{rank}");
    }
    let ports: BTreeSet<u64> = ranks.iter().map(|r| r["port"].as_u64().unwrap()).collect();
    assert_eq!(ports.len(), 4, "each rank has its own port: {run}");

    // Every rank's output is kept apart and saw the same reduced value.
    for (rank, placed) in ranks.iter().enumerate() {
        let out = lines(&app, &token, &run_id, &format!("stdout/rank-{rank}")).await;
        let node_gpus: Vec<String> = placed["node_gpus"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.to_string())
            .collect();
        let expected = format!(
            "rank={rank} world=4 sum=10.0 local_rank={} node_rank={} gpus={}",
            rank % 2,
            rank / 2,
            node_gpus.join(",")
        );
        assert!(
            out.iter().any(|l| l.starts_with(&expected)),
            "rank {rank}: {out:?}"
        );
    }
    // The default page of a distributed run's log is rank 0's.
    let (_, page) = app
        .get(
            &format!("/api/v1/workspaces/lab/runs/{run_id}/logs"),
            &token,
        )
        .await;
    assert_eq!(page["source"], "stdout/rank-0", "{page}");

    // Metrics of rank 0 are the run's: world size 4 and the reduced value;
    // every rank's are kept, the others' as rank-N/<name>.
    let shown = metrics(&app, &token, &run_id, "").await;
    assert_eq!(
        shown.keys().collect::<Vec<_>>(),
        ["reduced", "world_size"],
        "{shown:?}"
    );
    assert_eq!(shown["world_size"].0, 1, "only rank 0's point: {shown:?}");
    assert_eq!(shown["world_size"].1.as_f64(), Some(4.0));
    assert_eq!(shown["reduced"].1.as_f64(), Some(10.0));
    let every_rank = metrics(&app, &token, &run_id, "?ranks=all").await;
    assert_eq!(every_rank.len(), 8, "{every_rank:?}");
    assert_eq!(every_rank["rank-3/reduced"].1.as_f64(), Some(10.0));

    // Rank 0's outputs are the run's; the others' are under outputs/rank-N.
    let paths = outputs(&app, &token, &run_id).await;
    for path in [
        "outputs/rank.txt",
        "outputs/rank-1/rank.txt",
        "outputs/rank-3/rank.txt",
    ] {
        assert!(paths.iter().any(|p| p == path), "{path} missing: {paths:?}");
    }
    assert_eq!(containers_left(&app, &run_id).await, 0);
}

const TF_TASK: &str = r#"
import json, os, socket, sys, time
config = json.loads(os.environ["TF_CONFIG"])
task = config["task"]
me = config["cluster"][task["type"]][task["index"]]
addresses = [a for tasks in config["cluster"].values() for a in tasks]
assert me in addresses, (me, addresses)
host, port = me.rsplit(":", 1)
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", int(port)))
server.listen(16)
server.settimeout(0.2)
reached = set()
deadline = time.time() + 60
while len(reached) < len(addresses) - 1 and time.time() < deadline:
    for address in addresses:
        if address == me or address in reached:
            continue
        peer_host, peer_port = address.rsplit(":", 1)
        try:
            socket.create_connection((peer_host, int(peer_port)), timeout=1).close()
            reached.add(address)
        except OSError:
            pass
    try:
        server.accept()[0].close()
    except OSError:
        pass
print(f"task={task['type']}:{task['index']} me={me} reached={len(reached)} of {len(addresses) - 1}")
with open("outputs/task.txt", "w") as f:
    f.write(f"{task['type']}:{task['index']}")
# A parameter server serves until it is stopped, as TensorFlow's do; the
# run ends when the chief and the workers have.
end = time.time() + (3600 if task["type"] == "ps" else 3)
while time.time() < end:
    try:
        server.accept()[0].close()
    except OSError:
        pass
sys.exit(0 if len(reached) == len(addresses) - 1 else 1)
"#;

#[tokio::test]
async fn tensorflow_tasks_see_themselves_in_tf_config_and_reach_every_other_task_and_two_runs_do_not_collide(
) {
    let _ports = PORTS.lock().await;
    let Some((app, token)) = setup().await else {
        return;
    };
    if !require_image(&app, PYTHON, "docker/build-base-images.sh").await {
        return;
    }
    let submit = |rank_outputs: &'static str| {
        app.run(
            "lab",
            &token,
            "exp",
            json!({ "command": ["python3", "-u", "-c", TF_TASK],
                    "environment": env(PYTHON), "compute_target": "cluster",
                    "node_count": 2, "process_count_per_node": 2,
                    "distribution": { "type": "tensorflow", "parameter_server_count": 1,
                                      "chief": true },
                    "rank_outputs": rank_outputs,
                    "resources": { "cpus": 0.5, "memory_mb": 512 } }),
        )
    };
    // Two runs at once on the same two nodes; the first keeps only rank 0's
    // files, the second every rank's.
    let first = id(&submit("rank0").await);
    let second = id(&submit("all").await);
    let mut addresses = BTreeSet::new();
    for run_id in [&first, &second] {
        let run = app.wait_for_end("lab", &token, run_id, LIMIT).await;
        let out = lines(&app, &token, run_id, "stderr/rank-0").await;
        assert_eq!(run["status"], "Completed", "{run} {out:?}");
        for rank in run["placement"]["ranks"].as_array().unwrap() {
            let address = format!("{}:{}", rank["address"], rank["port"]);
            assert!(addresses.insert(address), "a port given twice: {run}");
        }
        let tasks = [
            (0, "chief:0"),
            (1, "worker:0"),
            (2, "worker:1"),
            (3, "ps:0"),
        ];
        for (rank, task) in tasks {
            let out = lines(&app, &token, run_id, &format!("stdout/rank-{rank}")).await;
            assert!(
                out.iter()
                    .any(|l| l.starts_with(&format!("task={task} "))
                        && l.ends_with("reached=3 of 3")),
                "rank {rank}: {out:?}"
            );
        }
    }
    assert_eq!(addresses.len(), 8);
    assert_eq!(outputs(&app, &token, &first).await, ["outputs/task.txt"]);
    assert_eq!(
        outputs(&app, &token, &second).await,
        [
            "outputs/rank-1/task.txt",
            "outputs/rank-2/task.txt",
            "outputs/rank-3/task.txt",
            "outputs/task.txt"
        ]
    );
}

#[tokio::test]
async fn on_one_node_with_a_bridge_container_network_a_run_gets_a_network_of_its_own() {
    let Some((app, token)) = setup_with(Options {
        container_network: Some("bridge".to_string()),
        ..Options::default()
    })
    .await
    else {
        return;
    };
    if !require_image(&app, PYTHON, "docker/build-base-images.sh").await {
        return;
    }
    // One node, three processes: TF_CONFIG names them rank-0..rank-2 on the
    // run's network, where each reaches the others by name.
    let run = app
        .run(
            "lab",
            &token,
            "exp",
            json!({ "command": ["python3", "-u", "-c", TF_TASK],
                    "environment": env(PYTHON), "compute_target": "cluster",
                    "process_count_per_node": 3,
                    "distribution": { "type": "tensorflow" },
                    "resources": { "cpus": 0.6, "memory_mb": 768 } }),
        )
        .await;
    let run_id = id(&run);
    let network = format!("trainyard-run-{run_id}");
    let engine = app.engine.clone().expect("an engine");
    app.wait_for_status("lab", &token, &run_id, "Running", LIMIT)
        .await;
    let run = app.wait_for_end("lab", &token, &run_id, LIMIT).await;
    let out = lines(&app, &token, &run_id, "stderr/rank-0").await;
    assert_eq!(run["status"], "Completed", "{run} {out:?}");
    for rank in 0..3 {
        let out = lines(&app, &token, &run_id, &format!("stdout/rank-{rank}")).await;
        let port = &run["placement"]["ranks"][rank]["port"];
        assert!(
            out.iter().any(|l| l.starts_with(&format!(
                "task=worker:{rank} me=rank-{rank}:{port} reached=2 of 2"
            ))),
            "rank {rank}: {out:?}"
        );
    }
    // The network went with the run.
    assert!(!engine.has_network(&network).await.unwrap());
    assert_eq!(containers_left(&app, &run_id).await, 0);
}

#[tokio::test]
async fn a_failing_rank_fails_the_run_by_name_and_no_container_is_left() {
    let Some((app, token)) = setup().await else {
        return;
    };
    let script = "if [ \"$TRAINYARD_RANK\" = 2 ]; then sleep 1; echo failing; exit 1; fi; \
                  echo waiting; sleep 300";
    let run = app
        .run(
            "lab",
            &token,
            "exp",
            json!({ "command": ["sh", "-c", script],
                    "environment": env(BUSYBOX), "compute_target": "cluster",
                    "node_count": 2, "process_count_per_node": 2,
                    "distribution": { "type": "pytorch" } }),
        )
        .await;
    let run_id = id(&run);
    let run = app
        .wait_for_end("lab", &token, &run_id, Duration::from_secs(60))
        .await;
    assert_eq!(run["status"], "Failed", "{run}");
    let error = run["error"].as_str().unwrap();
    assert!(
        error.starts_with("rank 2 (node ") && error.contains("exited with code 1"),
        "{error}"
    );
    assert_eq!(run["exit_code"], 1, "{run}");
    assert_eq!(
        lines(&app, &token, &run_id, "stdout/rank-2").await,
        ["failing"]
    );
    assert_eq!(containers_left(&app, &run_id).await, 0);

    // Cancel stops every rank.
    let run = app
        .run(
            "lab",
            &token,
            "exp",
            json!({ "command": ["sh", "-c", "echo up; sleep 300"],
                    "environment": env(BUSYBOX), "compute_target": "cluster",
                    "node_count": 2, "process_count_per_node": 2,
                    "distribution": { "type": "pytorch" } }),
        )
        .await;
    let run_id = id(&run);
    app.wait_for_status("lab", &token, &run_id, "Running", Duration::from_secs(60))
        .await;
    let (status, body) = app
        .post(
            &format!("/api/v1/workspaces/lab/runs/{run_id}/cancel"),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let run = app
        .wait_for_end("lab", &token, &run_id, Duration::from_secs(60))
        .await;
    assert_eq!(run["status"], "Canceled", "{run}");
    assert_eq!(containers_left(&app, &run_id).await, 0);
}

const MPI_ALL_REDUCE: &str = r#"
import os
from mpi4py import MPI
from trainyard import Run
comm = MPI.COMM_WORLD
total = comm.allreduce(comm.Get_rank() + 1)
print(f"rank={comm.Get_rank()} size={comm.Get_size()} sum={total} "
      f"trainyard_rank={os.environ['TRAINYARD_RANK']}", flush=True)
run = Run.get_context()
run.log("mpi_rank", comm.Get_rank())
run.flush()
"#;

#[tokio::test]
async fn mpi_2_nodes_x_2_processes_all_reduce_over_ssh() {
    let _ports = PORTS.lock().await;
    let Some((app, token)) = setup().await else {
        return;
    };
    if !require_image(&app, MPI, "docker/build-base-images.sh --distributed").await {
        return;
    }
    let run = app
        .run(
            "lab",
            &token,
            "exp",
            json!({ "command": ["python3", "-u", "-c", MPI_ALL_REDUCE],
                    "environment": env(MPI), "compute_target": "cluster",
                    "node_count": 2, "process_count_per_node": 2,
                    "distribution": { "type": "mpi" } }),
        )
        .await;
    let run_id = id(&run);
    let run = app.wait_for_end("lab", &token, &run_id, LIMIT).await;
    let out = lines(&app, &token, &run_id, "stderr/rank-0").await;
    assert_eq!(run["status"], "Completed", "{run} {out:?}");
    for rank in 0..4 {
        // Each MPI process runs in its own rank's container, with its
        // variables (and token).
        let source = format!("stdout/rank-{rank}");
        let out = lines(&app, &token, &run_id, &source).await;
        assert!(
            out.contains(&format!("rank={rank} size=4 sum=10 trainyard_rank={rank}")),
            "{source}: {out:?}"
        );
    }
    let all = metrics(&app, &token, &run_id, "?ranks=all").await;
    assert_eq!(
        all.keys().collect::<Vec<_>>(),
        [
            "mpi_rank",
            "rank-1/mpi_rank",
            "rank-2/mpi_rank",
            "rank-3/mpi_rank"
        ],
        "{all:?}"
    );
    // The run's key pair never reaches its log.
    let stderr = lines(&app, &token, &run_id, "stderr/rank-0").await;
    assert!(!stderr.iter().any(|l| l.contains("PRIVATE KEY")));
    assert_eq!(containers_left(&app, &run_id).await, 0);
}

#[tokio::test]
async fn distributed_specs_are_checked_by_field() {
    let Some((app, token)) = setup().await else {
        return;
    };
    let cases = [
        (
            json!({ "node_count": 2, "command": ["true"] }),
            "distribution",
        ),
        (
            json!({ "node_count": 2, "command": ["true"], "compute_target": "local",
                    "distribution": { "type": "pytorch" } }),
            "compute_target",
        ),
        (
            json!({ "process_count_per_node": 2, "command": ["true"], "compute_target": "cluster",
                    "distribution": { "type": "pytorch" }, "resources": { "gpus": 3 } }),
            "resources.gpus",
        ),
        (
            json!({ "node_count": 2, "command": ["true"], "compute_target": "cluster",
                    "distribution": { "type": "tensorflow", "worker_count": 5 } }),
            "distribution.worker_count",
        ),
        (
            json!({ "node_count": 0, "command": ["true"], "compute_target": "cluster",
                    "distribution": { "type": "pytorch" } }),
            "node_count",
        ),
    ];
    for (body, field) in cases {
        let mut body = body;
        body["experiment"] = json!("exp");
        body["environment"] = env(BUSYBOX);
        let answer = app.post("/api/v1/workspaces/lab/runs", &token, body).await;
        assert_problem(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some(field),
        );
    }
    let answer = app
        .post(
            "/api/v1/workspaces/lab/runs",
            &token,
            json!({ "experiment": "exp", "command": ["true"], "node_count": 2,
                    "compute_target": "cluster", "distribution": { "type": "horovod" } }),
        )
        .await;
    assert_problem(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        Some("distribution.type"),
    );
}
