//! `trainyard run submit`: get-or-create the experiment, pack and upload the
//! source directory, submit the run.

use anyhow::Context;
use clap::Args;
use reqwest::Method;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use trainyard_storage::StorageError;
use uuid::Uuid;

use super::client::{Client, ConnectionArgs};
use super::{env_ref, key_value, logs, out, EnvRef};

/// Largest source directory packed, uncompressed (the server's default limit).
const SNAPSHOT_LIMIT_BYTES: u64 = 300 * 1024 * 1024;

/// What to run and with what.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    connection: ConnectionArgs,
    /// The source directory; its files become the run's working directory.
    #[arg(long, value_name = "DIR", required_unless_present = "command")]
    source: Option<PathBuf>,
    /// The entry script, relative to the source directory: `.py` runs with
    /// python3, `.sh` with sh, anything else as an executable.
    #[arg(
        long,
        value_name = "PATH",
        required_unless_present = "command",
        conflicts_with = "command"
    )]
    script: Option<String>,
    /// Run ARGS (after `--`) as the command instead of a script, e.g.
    /// `--command -- python3 -m pkg.train`.
    #[arg(long)]
    command: bool,
    /// A registered environment, NAME or NAME:VERSION (the latest version by default).
    #[arg(long = "env", value_name = "NAME[:VERSION]", value_parser = env_ref)]
    environment: Option<EnvRef>,
    /// Run in this image as it is, instead of a registered environment.
    #[arg(long, value_name = "IMAGE", conflicts_with = "environment")]
    base_image: Option<String>,
    /// The experiment, created when missing [default: the source directory's name].
    #[arg(long, value_name = "NAME")]
    experiment: Option<String>,
    /// The compute target [default: the server's local node].
    #[arg(long, value_name = "NAME")]
    compute: Option<String>,
    /// Whole GPUs the run needs.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    gpus: Option<u32>,
    /// CPU cores (fractions allowed) [default: no limit].
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    cpus: Option<f64>,
    /// Memory in MiB [default: no limit].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    memory_mb: Option<u64>,
    /// Stop the run and fail it after this many seconds.
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    time_limit: Option<u64>,
    /// Distributed training: how the processes find each other.
    #[arg(long, value_enum, value_name = "KIND")]
    distribution: Option<DistributionKind>,
    /// Nodes a distributed run spans [default: 1].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    node_count: Option<u32>,
    /// Processes (ranks) per node [default: 1]; --gpus, --cpus and
    /// --memory-mb are per node and split between them.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    process_count_per_node: Option<u32>,
    /// TensorFlow worker tasks [default: every process not a chief or a
    /// parameter server].
    #[arg(long, value_name = "N", requires = "distribution")]
    worker_count: Option<u32>,
    /// TensorFlow parameter-server tasks [default: 0].
    #[arg(long, value_name = "N", requires = "distribution")]
    parameter_server_count: Option<u32>,
    /// TensorFlow: task 0 is the chief.
    #[arg(long, requires = "distribution")]
    chief: bool,
    /// Which ranks' ./outputs and ./logs to keep [default: all; rank N's
    /// under outputs/rank-N/].
    #[arg(long, value_name = "all|rank0", value_parser = ["all", "rank0"])]
    rank_outputs: Option<String>,
    /// A variable for the run's process; repeat for several.
    #[arg(short = 'e', long = "env-var", value_name = "KEY=VALUE", value_parser = key_value)]
    env_vars: Vec<(String, String)>,
    /// A tag on the run; repeat for several.
    #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
    tag: Vec<(String, String)>,
    /// A display name for the run.
    #[arg(long, value_name = "DISPLAY")]
    name: Option<String>,
    /// Then follow the run like `run wait` (log lines follow the id on standard output).
    #[arg(long)]
    wait: bool,
    /// Arguments after the script (or the command, with --command); put them after `--`.
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,
}

/// The distribution types of `--distribution`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum DistributionKind {
    /// torch.distributed (MASTER_ADDR, RANK, WORLD_SIZE, … per process).
    Pytorch,
    /// TensorFlow (TF_CONFIG per task).
    Tensorflow,
    /// MPI over SSH, launched by mpirun on rank 0.
    Mpi,
}

/// Submits the run and prints its id; with `--wait`, follows it.
pub async fn submit(args: SubmitArgs) -> anyhow::Result<i32> {
    if args.command && args.args.is_empty() {
        anyhow::bail!("--command needs the command after `--`, e.g. --command -- python3 -m train");
    }
    let client = args.connection.connect()?;
    let experiment = match (&args.experiment, &args.source) {
        (Some(name), _) => name.clone(),
        (None, Some(dir)) => experiment_name(dir)?,
        (None, None) => anyhow::bail!("give --experiment (there is no --source to name it after)"),
    };
    client
        .send_json::<Value>(Method::PUT, &["experiments", &experiment], &json!({}))
        .await?;
    let snapshot = match &args.source {
        Some(dir) => Some(upload_source(&client, dir).await?),
        None => None,
    };
    let body = run_body(&args, experiment.clone(), snapshot);
    let run: Value = client.send_json(Method::POST, &["runs"], &body).await?;
    let id = run["id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .context("the server's answer has no run id")?;
    eprintln!("submitted run {id} to experiment {experiment} (status Queued)");
    out(&id.to_string())?;
    if args.wait {
        return logs::wait(&client, id).await;
    }
    Ok(0)
}

/// The experiment name a source directory gives: its own name, with
/// characters that names may not hold turned into `-`.
fn experiment_name(dir: &Path) -> anyhow::Result<String> {
    let full = dir
        .canonicalize()
        .with_context(|| format!("--source {}", dir.display()))?;
    let base = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mapped: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    // Names start with a letter or digit; a trailing dash is only noise.
    let name: String = mapped
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .trim_end_matches('-')
        .chars()
        .take(128)
        .collect();
    anyhow::ensure!(
        !name.is_empty(),
        "cannot name an experiment after {}; give --experiment",
        full.display()
    );
    Ok(name)
}

/// Packs `dir` (the ignore rules apply here, so ignored files never travel)
/// and uploads it; returns the snapshot's digest.
async fn upload_source(client: &Client, dir: &Path) -> anyhow::Result<String> {
    let folder = dir.to_path_buf();
    let packed = tokio::task::spawn_blocking(move || {
        trainyard_storage::pack_dir(&folder, SNAPSHOT_LIMIT_BYTES)
    })
    .await
    .context("packing the source directory")?
    .map_err(|err| match err {
        StorageError::TooLarge { limit } => anyhow::anyhow!(
            "{} holds more than {} MiB of files; leave some out with a .trainyardignore file (gitignore syntax)",
            dir.display(),
            limit / (1024 * 1024)
        ),
        other => anyhow::Error::new(other).context(format!("packing {}", dir.display())),
    })?;
    eprintln!(
        "packed {} files ({}) from {}",
        packed.files,
        human_size(packed.uncompressed),
        dir.display()
    );
    // Held in memory: reqwest streams a file body only with its "stream" feature.
    let bytes = std::fs::read(&packed.path).context("reading the packed snapshot")?;
    let request = client
        .request(Method::POST, client.url(&["snapshots"]))
        .header(reqwest::header::CONTENT_TYPE, "application/gzip")
        .body(bytes);
    let stored: Value = client.json(request).await?;
    let digest = stored["digest"]
        .as_str()
        .context("the server's answer has no snapshot digest")?
        .to_string();
    eprintln!("uploaded snapshot {digest} ({})", human_size(packed.size));
    Ok(digest)
}

/// The body of `POST …/runs`; fields left out take the server's defaults.
fn run_body(args: &SubmitArgs, experiment: String, snapshot: Option<String>) -> Value {
    let mut body = Map::new();
    body.insert("experiment".into(), json!(experiment));
    if let Some(digest) = snapshot {
        body.insert("snapshot".into(), json!(digest));
    }
    if args.command {
        body.insert("command".into(), json!(args.args));
    } else {
        body.insert("script".into(), json!(args.script));
        body.insert("arguments".into(), json!(args.args));
    }
    if let Some(image) = &args.base_image {
        body.insert("environment".into(), json!({"spec": {"base_image": image}}));
    } else if let Some(env) = &args.environment {
        let mut choice = json!({"name": env.name});
        if let Some(version) = env.version {
            choice["version"] = json!(version);
        }
        body.insert("environment".into(), choice);
    }
    if let Some(compute) = &args.compute {
        body.insert("compute_target".into(), json!(compute));
    }
    let mut resources = Map::new();
    if let Some(gpus) = args.gpus {
        resources.insert("gpus".into(), json!(gpus));
    }
    if let Some(cpus) = args.cpus {
        resources.insert("cpus".into(), json!(cpus));
    }
    if let Some(memory) = args.memory_mb {
        resources.insert("memory_mb".into(), json!(memory));
    }
    body.insert("resources".into(), Value::Object(resources));
    let variables: BTreeMap<_, _> = args.env_vars.iter().cloned().collect();
    body.insert("environment_variables".into(), json!(variables));
    let tags: BTreeMap<_, _> = args.tag.iter().cloned().collect();
    body.insert("tags".into(), json!(tags));
    if let Some(limit) = args.time_limit {
        body.insert("time_limit_seconds".into(), json!(limit));
    }
    if let Some(nodes) = args.node_count {
        body.insert("node_count".into(), json!(nodes));
    }
    if let Some(processes) = args.process_count_per_node {
        body.insert("process_count_per_node".into(), json!(processes));
    }
    if let Some(kind) = args.distribution {
        let distribution = match kind {
            DistributionKind::Pytorch => json!({"type": "pytorch"}),
            DistributionKind::Mpi => json!({"type": "mpi"}),
            DistributionKind::Tensorflow => {
                let mut tf = json!({"type": "tensorflow", "chief": args.chief});
                if let Some(workers) = args.worker_count {
                    tf["worker_count"] = json!(workers);
                }
                if let Some(ps) = args.parameter_server_count {
                    tf["parameter_server_count"] = json!(ps);
                }
                tf
            }
        };
        body.insert("distribution".into(), distribution);
    }
    if let Some(keep) = &args.rank_outputs {
        body.insert("rank_outputs".into(), json!(keep));
    }
    if let Some(name) = &args.name {
        body.insert("display_name".into(), json!(name));
    }
    Value::Object(body)
}

/// Bytes in KiB/MiB/GiB for progress messages.
fn human_size(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experiment_names_come_from_the_folder_name() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("my project (v2)");
        std::fs::create_dir(&dir).unwrap();
        assert_eq!(experiment_name(&dir).unwrap(), "my-project--v2");
        assert!(experiment_name(&root.path().join("missing")).is_err());
        let hidden = root.path().join(".hidden");
        std::fs::create_dir(&hidden).unwrap();
        assert_eq!(experiment_name(&hidden).unwrap(), "hidden");
    }

    #[test]
    fn distributed_flags_become_the_run_body() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            submit: SubmitArgs,
        }
        let parse = |flags: &[&str]| {
            let mut argv = vec!["trainyard", "--experiment", "exp", "--compute", "cluster"];
            argv.extend(flags);
            argv.extend(["--command", "--", "python3", "train.py"]);
            <Cli as clap::Parser>::try_parse_from(argv)
                .map(|cli| run_body(&cli.submit, "exp".into(), None))
        };
        let body = parse(&[
            "--distribution",
            "tensorflow",
            "--node-count",
            "2",
            "--process-count-per-node",
            "2",
            "--parameter-server-count",
            "1",
            "--chief",
        ])
        .unwrap();
        assert_eq!(body["node_count"], 2);
        assert_eq!(body["process_count_per_node"], 2);
        assert_eq!(
            body["distribution"],
            json!({"type": "tensorflow", "chief": true, "parameter_server_count": 1})
        );
        let body = parse(&[
            "--distribution",
            "mpi",
            "--node-count",
            "4",
            "--rank-outputs",
            "rank0",
        ])
        .unwrap();
        assert_eq!(body["distribution"], json!({"type": "mpi"}));
        assert_eq!(body["rank_outputs"], "rank0");
        assert!(body.get("process_count_per_node").is_none());
        assert!(parse(&["--distribution", "horovod"]).is_err());
        assert!(
            parse(&["--worker-count", "2"]).is_err(),
            "needs --distribution"
        );
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(12), "12 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(300 * 1024 * 1024), "300.0 MiB");
    }
}
