//! `trainyard compute …`: compute targets (named pools of nodes), their
//! nodes (Docker engines with GPUs, CPUs and memory) and their queues.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

use super::client::{Client, ConnectionArgs};
use super::{key_value, out, short_time, table};

/// Commands on compute targets and their nodes.
#[derive(Debug, Subcommand)]
pub enum ComputeCommand {
    /// Lists the workspace's compute targets.
    List(ConnectionArgs),
    /// Creates a compute target (workspace administrators); prints its name.
    ///
    /// It is created empty: register its nodes with `trainyard compute add-node`.
    ///
    /// Example: trainyard compute create gpucluster --max-nodes 4 --default-gpus 1 --label vm_size=8xA100
    Create(CreateArgs),
    /// Deletes a compute target and its nodes; refused while runs that use it are not finished.
    Delete(TargetArgs),
    /// Shows a compute target's nodes: state, health, and free / total GPUs, CPUs and memory.
    Nodes(NodesArgs),
    /// Registers a Docker engine as a node of a compute target (workspace administrators).
    ///
    /// Example: trainyard compute add-node gpucluster gpu-1 --endpoint tcp://10.0.0.7:2376 --tls-ca /etc/ty/ca.pem --tls-cert /etc/ty/cert.pem --tls-key /etc/ty/key.pem --gpus 8 --cpus 32 --memory-mb 262144
    AddNode(AddNodeArgs),
    /// Removes a node from its compute target.
    RemoveNode(NodeArgs),
    /// Cordons a node: it takes no new runs and keeps its running ones.
    Cordon(NodeStateArgs),
    /// Drains a node: it takes no new runs and its running ones finish.
    Drain(NodeStateArgs),
    /// Makes a cordoned or draining node take runs again.
    Uncordon(NodeArgs),
    /// Shows the runs waiting for a compute target, in queue order, and why they wait.
    Queue(TargetArgs),
}

/// A command on one compute target.
#[derive(Debug, Args)]
pub struct TargetArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// The compute target's name.
    target: String,
}

/// What `compute nodes` shows.
#[derive(Debug, Args)]
pub struct NodesArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// Print the server's JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// The compute target's name.
    target: String,
}

/// A command on one node.
#[derive(Debug, Args)]
pub struct NodeArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// The compute target's name.
    target: String,
    /// The node's name.
    node: String,
}

/// A node to cordon or drain, and why.
#[derive(Debug, Args)]
pub struct NodeStateArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// Why, for whoever looks at the node next.
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
}

/// The compute target to create.
#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// Its name, unique in the workspace (`gpucluster`).
    name: String,
    /// Most nodes it may hold (1 to 10,000).
    #[arg(long, value_name = "N")]
    max_nodes: i32,
    /// GPUs a run gets when it asks for none [server default: 0].
    #[arg(long, value_name = "N")]
    default_gpus: Option<u32>,
    /// CPU cores a run gets when it asks for none [server default: 1].
    #[arg(long, value_name = "CPUS")]
    default_cpus: Option<f64>,
    /// Memory in MiB a run gets when it asks for none [server default: 2048].
    #[arg(long, value_name = "MIB")]
    default_memory_mb: Option<u64>,
    /// A node label such as `vm_size=8xA100`; repeat for several.
    #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
    label: Vec<(String, String)>,
}

/// The node to register.
#[derive(Debug, Args)]
pub struct AddNodeArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// The compute target's name.
    target: String,
    /// The node's name, unique in the compute target.
    name: String,
    /// The Docker engine: `unix:///var/run/docker.sock` or `tcp://host:port`.
    #[arg(long, value_name = "URL")]
    endpoint: String,
    /// For tcp://: the CA that signed the engine's certificate (a path on the server's machine).
    #[arg(long, value_name = "PATH", requires_all = ["tls_cert", "tls_key"])]
    tls_ca: Option<String>,
    /// For tcp://: the client certificate (a path on the server's machine).
    #[arg(long, value_name = "PATH", requires_all = ["tls_ca", "tls_key"])]
    tls_cert: Option<String>,
    /// For tcp://: the client key (a path on the server's machine).
    #[arg(long, value_name = "PATH", requires_all = ["tls_ca", "tls_cert"])]
    tls_key: Option<String>,
    /// GPUs (0 to 64).
    #[arg(long, value_name = "N", default_value_t = 0)]
    gpus: u32,
    /// CPU cores [default: what the engine reports].
    #[arg(long, value_name = "CPUS")]
    cpus: Option<f64>,
    /// Memory in MiB [default: what the engine reports].
    #[arg(long, value_name = "MIB")]
    memory_mb: Option<u64>,
    /// `nvidia` (runs get Docker device requests for their GPUs), `simulated`
    /// (GPUs only accounted) or `none` [default: nvidia with --gpus, none without].
    #[arg(long, value_name = "MODE", value_parser = ["nvidia", "simulated", "none"])]
    gpu_mode: Option<String>,
}

/// Runs a `trainyard compute …` command; returns the exit code.
pub async fn execute(command: ComputeCommand) -> anyhow::Result<i32> {
    match command {
        ComputeCommand::List(connection) => list(&connection.connect()?).await,
        ComputeCommand::Create(args) => create(args).await,
        ComputeCommand::Delete(args) => {
            let client = args.connection.connect()?;
            delete(&client, &["compute", &args.target]).await?;
            eprintln!("deleted compute target {}", args.target);
            Ok(0)
        }
        ComputeCommand::Nodes(args) => nodes(args).await,
        ComputeCommand::AddNode(args) => add_node(args).await,
        ComputeCommand::RemoveNode(args) => {
            let client = args.connection.connect()?;
            delete(&client, &["compute", &args.target, "nodes", &args.node]).await?;
            eprintln!("removed node {} from {}", args.node, args.target);
            Ok(0)
        }
        ComputeCommand::Cordon(args) => set_state(args.node, "cordoned", args.reason).await,
        ComputeCommand::Drain(args) => set_state(args.node, "draining", args.reason).await,
        ComputeCommand::Uncordon(args) => set_state(args, "ready", None).await,
        ComputeCommand::Queue(args) => queue(args).await,
    }
}

/// A `DELETE` answered with no body.
async fn delete(client: &Client, segments: &[&str]) -> anyhow::Result<()> {
    client
        .send(client.request(Method::DELETE, client.url(segments)))
        .await?;
    Ok(())
}

fn items(listing: &Value) -> &[Value] {
    listing["items"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

async fn list(client: &Client) -> anyhow::Result<i32> {
    let listing: Value = client.get(&["compute"], &[]).await?;
    let mut rows = Vec::new();
    for target in items(&listing) {
        let name = target["name"].as_str().unwrap_or_default();
        // The listing has no node count: ask each target (a "?" if that fails).
        let count = match client.get::<Value>(&["compute", name, "nodes"], &[]).await {
            Ok(nodes) => items(&nodes).len().to_string(),
            Err(_) => "?".to_string(),
        };
        rows.push(target_row(target, &count));
    }
    table(
        &[
            "NAME",
            "NODES",
            "MAX NODES",
            "DEFAULT GPUS",
            "DEFAULT CPUS",
            "DEFAULT MEMORY",
            "LABELS",
        ],
        &rows,
    )?;
    Ok(0)
}

/// One compute target's row of `compute list`.
fn target_row(target: &Value, node_count: &str) -> Vec<String> {
    let defaults = &target["default_resources"];
    let labels = target["labels"]
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    vec![
        target["name"].as_str().unwrap_or_default().to_string(),
        node_count.to_string(),
        target["max_nodes"]
            .as_i64()
            .map_or_else(String::new, |n| n.to_string()),
        defaults["gpus"]
            .as_u64()
            .map_or_else(String::new, |n| n.to_string()),
        defaults["cpus"].as_f64().map_or_else(String::new, number),
        defaults["memory_mb"]
            .as_u64()
            .map_or_else(String::new, memory),
        labels,
    ]
}

async fn create(args: CreateArgs) -> anyhow::Result<i32> {
    let mut defaults = Map::new();
    if let Some(gpus) = args.default_gpus {
        defaults.insert("gpus".into(), json!(gpus));
    }
    if let Some(cpus) = args.default_cpus {
        defaults.insert("cpus".into(), json!(cpus));
    }
    if let Some(memory_mb) = args.default_memory_mb {
        defaults.insert("memory_mb".into(), json!(memory_mb));
    }
    let labels: BTreeMap<_, _> = args.label.iter().cloned().collect();
    let body = json!({
        "name": args.name,
        "max_nodes": args.max_nodes,
        "labels": labels,
        "default_resources": defaults,
    });
    let client = args.connection.connect()?;
    let created: Value = client.send_json(Method::POST, &["compute"], &body).await?;
    let name = created["name"].as_str().unwrap_or(&args.name);
    eprintln!(
        "created compute target {name} (at most {} nodes); add nodes with `trainyard compute add-node {name} NODE --endpoint …`",
        created["max_nodes"]
    );
    out(name)?;
    Ok(0)
}

async fn nodes(args: NodesArgs) -> anyhow::Result<i32> {
    let client = args.connection.connect()?;
    let listing: Value = client.get(&["compute", &args.target, "nodes"], &[]).await?;
    if args.json {
        out(&serde_json::to_string_pretty(&listing)?)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = items(&listing).iter().map(node_row).collect();
    table(
        &[
            "NAME", "STATE", "HEALTH", "GPUS", "CPUS", "MEMORY", "RUNS", "REASON",
        ],
        &rows,
    )?;
    if rows.is_empty() {
        eprintln!(
            "{} has no nodes; add one with `trainyard compute add-node {} NODE --endpoint …`",
            args.target, args.target
        );
    }
    Ok(0)
}

/// One node's row of `compute nodes`: GPUs, CPUs and memory as free/total
/// (the free GPU indexes in parentheses). A server that does not report
/// `free` gets the totals alone.
fn node_row(node: &Value) -> Vec<String> {
    let text = |key: &str| node[key].as_str().unwrap_or_default().to_string();
    let capacity = &node["capacity"];
    let free = node.get("free").filter(|f| f.is_object());
    let gpus = gpu_cell(
        capacity["gpus"].as_u64().unwrap_or(0),
        free.map(|f| gpu_indexes(&f["gpus"])).as_deref(),
    );
    let cpus = pair(
        free.and_then(|f| f["cpus"].as_f64()),
        capacity["cpus"].as_f64().unwrap_or(0.0),
        number,
    );
    let memory = pair(
        free.and_then(|f| f["memory_mb"].as_u64()),
        capacity["memory_mb"].as_u64().unwrap_or(0),
        memory,
    );
    let runs = node["running_runs"]
        .as_array()
        .map_or_else(String::new, |runs| runs.len().to_string());
    let reasons: Vec<&str> = [&node["state_reason"], &node["health_reason"]]
        .into_iter()
        .filter_map(Value::as_str)
        .filter(|r| !r.is_empty())
        .collect();
    vec![
        text("name"),
        text("state"),
        text("health"),
        gpus,
        cpus,
        memory,
        runs,
        reasons.join("; "),
    ]
}

/// The GPU indexes of a JSON array (`[0, 3]`).
fn gpu_indexes(value: &Value) -> Vec<u64> {
    value
        .as_array()
        .map(|gpus| gpus.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

/// `3/8 (0,4,7)`: free of total GPUs and the free indexes; `0/8` when none
/// is free, `-` for a node without GPUs, `8` when the free ones are not known.
fn gpu_cell(total: u64, free: Option<&[u64]>) -> String {
    if total == 0 {
        return "-".to_string();
    }
    match free {
        None => total.to_string(),
        Some([]) => format!("0/{total}"),
        Some(free) => format!("{}/{total} ({})", free.len(), index_list(free)),
    }
}

/// `0,3`.
fn index_list(indexes: &[u64]) -> String {
    indexes
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// `free/total` in one unit, or the total alone when free is not known.
fn pair<T: Copy>(free: Option<T>, total: T, show: fn(T) -> String) -> String {
    match free {
        Some(free) => {
            let (free, total) = (show(free), show(total));
            // One unit for both: `12/64 GiB`, not `12 GiB/64 GiB`.
            match (free.split_once(' '), total.split_once(' ')) {
                (Some((f, unit)), Some((t, unit2))) if unit == unit2 => format!("{f}/{t} {unit}"),
                _ => format!("{free}/{total}"),
            }
        }
        None => show(total),
    }
}

/// A count of CPUs: `8`, `2.5`.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.2}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Memory in MiB as the person reads it: `512 MiB`, `4 GiB`, `1.5 GiB`.
fn memory(mb: u64) -> String {
    if mb < 1024 {
        format!("{mb} MiB")
    } else {
        format!("{} GiB", number(mb as f64 / 1024.0))
    }
}

async fn add_node(args: AddNodeArgs) -> anyhow::Result<i32> {
    let gpu_mode = args
        .gpu_mode
        .clone()
        .unwrap_or_else(|| if args.gpus > 0 { "nvidia" } else { "none" }.to_string());
    let mut body = json!({
        "name": args.name,
        "endpoint": args.endpoint,
        "gpu_mode": gpu_mode,
        "gpus": args.gpus,
    });
    if let Some(cpus) = args.cpus {
        body["cpus"] = json!(cpus);
    }
    if let Some(memory_mb) = args.memory_mb {
        body["memory_mb"] = json!(memory_mb);
    }
    if let (Some(ca), Some(cert), Some(key)) = (&args.tls_ca, &args.tls_cert, &args.tls_key) {
        body["tls"] = json!({"ca": ca, "cert": cert, "key": key});
    }
    let client = args.connection.connect()?;
    let node: Value = client
        .send_json(Method::POST, &["compute", &args.target, "nodes"], &body)
        .await?;
    let name = node["name"].as_str().unwrap_or(&args.name);
    eprintln!(
        "registered node {name} in {} ({}, {} GPUs, {} CPUs, {}; state {})",
        args.target,
        node["endpoint"].as_str().unwrap_or(&args.endpoint),
        args.gpus,
        number(node["capacity"]["cpus"].as_f64().unwrap_or(0.0)),
        memory(node["capacity"]["memory_mb"].as_u64().unwrap_or(0)),
        node["state"].as_str().unwrap_or("?"),
    );
    out(name)?;
    Ok(0)
}

async fn set_state(args: NodeArgs, state: &str, reason: Option<String>) -> anyhow::Result<i32> {
    let client = args.connection.connect()?;
    let mut body = json!({ "state": state });
    if let Some(reason) = reason {
        body["reason"] = json!(reason);
    }
    let node: Value = client
        .send_json(
            Method::PUT,
            &["compute", &args.target, "nodes", &args.node, "state"],
            &body,
        )
        .await?;
    let now = node["state"].as_str().unwrap_or(state);
    let running = node["running_runs"].as_array().map_or(0, Vec::len);
    if state != "ready" && running > 0 {
        let ends = if state == "draining" {
            "finish there"
        } else {
            "keep running"
        };
        eprintln!(
            "{}: {running} run(s) on it {ends}; no new runs are placed there",
            args.node
        );
    }
    out(&format!("{} {now}", args.node))?;
    Ok(0)
}

async fn queue(args: TargetArgs) -> anyhow::Result<i32> {
    let client = args.connection.connect()?;
    let answer: Value = client.get(&["compute", &args.target, "queue"], &[]).await?;
    let runs = answer["runs"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let rows: Vec<Vec<String>> = runs.iter().map(queue_row).collect();
    table(
        &["RUN", "NAME", "PRIORITY", "SUBMITTED", "WAIT REASON"],
        &rows,
    )?;
    if rows.is_empty() {
        eprintln!("no runs wait for {}", args.target);
    }
    Ok(0)
}

/// One entry's row of `compute queue`.
fn queue_row(entry: &Value) -> Vec<String> {
    vec![
        entry["run_id"].as_str().unwrap_or_default().to_string(),
        entry["display_name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        entry["priority"]
            .as_i64()
            .map_or_else(String::new, |p| p.to_string()),
        short_time(&entry["created_at"]),
        entry["wait_reason"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpus_show_free_of_total_and_the_free_indexes() {
        assert_eq!(gpu_cell(8, Some(&[0, 4, 7])), "3/8 (0,4,7)");
        assert_eq!(gpu_cell(8, Some(&[])), "0/8");
        assert_eq!(gpu_cell(0, Some(&[])), "-");
        assert_eq!(gpu_cell(4, None), "4");
    }

    #[test]
    fn cpus_and_memory_read_as_people_write_them() {
        assert_eq!(number(8.0), "8");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(0.333_333), "0.33");
        assert_eq!(memory(512), "512 MiB");
        assert_eq!(memory(4096), "4 GiB");
        assert_eq!(memory(1536), "1.5 GiB");
        assert_eq!(pair(Some(12_288), 65_536, memory), "12/64 GiB");
        assert_eq!(pair(Some(512), 65_536, memory), "512 MiB/64 GiB");
        assert_eq!(pair(Some(5.0), 8.0, number), "5/8");
        assert_eq!(pair(None, 8.0, number), "8");
    }

    #[test]
    fn node_rows_show_free_of_total_and_the_runs_holding_the_node() {
        let node = json!({
            "name": "gpu-1", "state": "cordoned", "state_reason": "new drivers",
            "health": "up", "health_reason": null,
            "capacity": {"gpus": 8, "cpus": 32.0, "memory_mb": 262_144},
            "allocated": {"gpus": [1, 2, 3, 5, 6], "cpus": 12.5, "memory_mb": 65_536},
            "free": {"gpus": [0, 4, 7], "cpus": 19.5, "memory_mb": 196_608},
            "running_runs": ["r1", "r2"],
        });
        assert_eq!(
            node_row(&node),
            [
                "gpu-1",
                "cordoned",
                "up",
                "3/8 (0,4,7)",
                "19.5/32",
                "192/256 GiB",
                "2",
                "new drivers"
            ]
        );
    }

    #[test]
    fn node_rows_of_a_server_without_allocations_show_totals() {
        let node = json!({
            "name": "cpu-1", "state": "ready", "health": "down",
            "health_reason": "connection refused",
            "capacity": {"gpus": 0, "cpus": 8.0, "memory_mb": 16_384},
        });
        assert_eq!(
            node_row(&node),
            [
                "cpu-1",
                "ready",
                "down",
                "-",
                "8",
                "16 GiB",
                "",
                "connection refused"
            ]
        );
    }

    #[test]
    fn targets_and_queue_entries_make_rows() {
        let target = json!({
            "name": "gpucluster", "max_nodes": 4, "labels": {"vm_size": "8xA100"},
            "default_resources": {"gpus": 1, "cpus": 1.0, "memory_mb": 2048},
        });
        assert_eq!(
            target_row(&target, "2"),
            ["gpucluster", "2", "4", "1", "1", "2 GiB", "vm_size=8xA100"]
        );
        let entry = json!({
            "run_id": "r1", "display_name": null, "priority": 0,
            "created_at": "2026-11-23T12:00:00.123Z",
            "wait_reason": "needs 2 GPUs; the largest free on gpucluster is 1",
        });
        assert_eq!(
            queue_row(&entry),
            [
                "r1",
                "",
                "0",
                "2026-11-23 12:00:00",
                "needs 2 GPUs; the largest free on gpucluster is 1"
            ]
        );
    }
}
