//! A run's life on a node: Preparing (its image) → Starting (its container,
//! with the source copied in) → Running (logs pumped, cancel and time limit
//! watched) → Finalizing (`./outputs` kept) → Completed, Failed or Canceled.
//! Also the reconciliation pass that re-adopts containers after a restart.

mod distributed;
mod files;
mod inputs;
mod mpi;
mod outcome;
mod reconcile;
mod supervise;
mod writer;

pub use files::run_files_prefix;

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use trainyard_core::run_spec::WORKDIR;
use trainyard_core::{RunSpec, RunStatus};
use trainyard_db::environments::ImageState;
use trainyard_db::logs::LogLine;
use trainyard_db::runs::Run;
use trainyard_db::Db;
use trainyard_storage::Storage;

use self::outcome::{outcome, Ended};
use self::supervise::Sources;
use crate::container::ContainerSpec;
use crate::{
    DockerError, Engine, LABEL_NODE, LABEL_OWNER, LABEL_RANK, LABEL_RUN_ID, LABEL_WORKSPACE,
};

/// The Python SDK, packed by the build script; copied into every container.
const PYTHON_SDK: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/python-sdk.tar"));
/// Where the SDK lands in the container (on `PYTHONPATH`).
const PYTHON_SDK_DIR: &str = "/opt/trainyard/python";

/// Pings of a node's engine, each within the timeout and after the pause,
/// that must all fail before its runs are taken as lost.
const NODE_LOST_PINGS: u32 = 3;
const NODE_LOST_PING_TIMEOUT: Duration = Duration::from_secs(5);
const NODE_LOST_PING_PAUSE: Duration = Duration::from_secs(2);

/// How the executor runs containers.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// This server replica's name; it owns the runs it executes.
    pub owner: String,
    /// The API's URL as seen from inside a container.
    pub api_url: String,
    /// Docker network mode of run containers (`host` lets them reach a
    /// server listening on the node's loopback).
    pub network_mode: Option<String>,
    /// PEM certificates that image builds must trust.
    pub extra_ca: Vec<u8>,
    /// Seconds between SIGTERM and SIGKILL when a run is stopped.
    pub stop_grace_seconds: i64,
    /// Keep containers after their run ended (for debugging).
    pub keep_containers: bool,
    /// How often `./logs` is read while a run runs.
    pub logs_poll: Duration,
    /// Where dataset versions are laid out for mounting.
    pub mounts_dir: std::path::PathBuf,
}

/// Executes runs on one Docker engine: the server's own, or a node's.
#[derive(Clone)]
pub struct Executor {
    db: Db,
    storage: Storage,
    engine: Engine,
    /// The node's name, when the engine is a compute target's node.
    node: Option<Arc<str>>,
    config: Arc<ExecutorConfig>,
}

/// What one container of a run is: its name, what it holds on its node, and
/// for a rank of a distributed run, the rank's variables and peers.
struct ContainerPlan {
    name: String,
    holds: Option<Holds>,
    rank: Option<u32>,
    env: Vec<(String, String)>,
    extra_hosts: Vec<String>,
    network_mode: Option<String>,
    /// Its names on `network_mode`'s network.
    network_aliases: Vec<String>,
    /// Networks it joins besides (the server's container network, for a
    /// rank on its run's own network).
    also_networks: Vec<String>,
    /// For a rank of an MPI run: the SSH and MPI files to unpack at `/`.
    mpi_files: Option<Bytes>,
}

/// What a container holds on its node.
struct Holds {
    node: String,
    /// The GPUs it sees.
    gpus: Vec<u32>,
    gpu_mode: String,
    cpus: Option<f64>,
    memory_mb: Option<u64>,
}

impl ContainerPlan {
    /// The one container of an ordinary run.
    fn single(run: &Run) -> ContainerPlan {
        ContainerPlan {
            name: format!("trainyard-run-{}", run.id),
            holds: run.placement.as_ref().map(|p| Holds {
                node: p.0.node.clone(),
                gpus: p.0.gpus.clone(),
                gpu_mode: p.0.gpu_mode.clone(),
                cpus: p.0.cpus,
                memory_mb: p.0.memory_mb,
            }),
            rank: None,
            env: Vec::new(),
            extra_hosts: Vec::new(),
            network_mode: None,
            network_aliases: Vec::new(),
            also_networks: Vec::new(),
            mpi_files: None,
        }
    }
}

/// Why a run ended early.
#[derive(Debug)]
enum Stop {
    Failed(String),
    Canceled,
}

impl From<DockerError> for Stop {
    fn from(err: DockerError) -> Stop {
        Stop::Failed(err.to_string())
    }
}

impl Executor {
    /// An executor over `engine`, writing to `db` and `storage`.
    pub fn new(db: Db, storage: Storage, engine: Engine, config: ExecutorConfig) -> Executor {
        Executor {
            db,
            storage,
            engine,
            node: None,
            config: Arc::new(config),
        }
    }

    /// The same executor driving a node's engine.
    pub fn for_node(&self, engine: Engine, node: &str) -> Executor {
        Executor {
            engine,
            node: Some(node.into()),
            ..self.clone()
        }
    }

    /// When this executor drives a node whose engine no longer answers, the
    /// reason a run on it fails; `None` while the engine answers.
    async fn node_lost(&self, err: &str) -> Option<String> {
        let node = self.node.as_ref()?;
        // A slow or briefly unreachable engine is not a lost one: asked a
        // few times over some seconds, each time briefly.
        for attempt in 0..NODE_LOST_PINGS {
            if attempt > 0 {
                tokio::time::sleep(NODE_LOST_PING_PAUSE).await;
            }
            let answered = tokio::time::timeout(NODE_LOST_PING_TIMEOUT, self.engine.ping()).await;
            if matches!(answered, Ok(true)) {
                return None;
            }
        }
        Some(format!("node {node} stopped answering ({err})"))
    }

    /// The engine this executor drives.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Takes a claimed (Preparing) run to its end. Never panics on a run's
    /// failure: every failure ends the run Failed with its reason.
    #[tracing::instrument(skip_all, fields(run_id = %run.id))]
    pub async fn execute(&self, run: Run) {
        let result = self.prepare_and_start(&run).await;
        match result {
            Ok(container) => self.supervise_and_finish(&run, &container).await,
            Err(stop) => self.end_early(&run, stop).await,
        }
    }

    async fn prepare_and_start(&self, run: &Run) -> Result<String, Stop> {
        let spec: RunSpec = serde_json::from_value(run.spec.0.clone())
            .map_err(|e| Stop::Failed(format!("the run's spec is unreadable: {e}")))?;
        let image = self.prepare_image(run, &spec).await?;
        self.check_cancel(run).await?;
        self.transition(run, RunStatus::Starting, "image ready", None)
            .await?;
        let container = self.create(run, &spec, &image).await?;
        self.check_cancel(run).await?;
        self.engine.start_container(&container).await?;
        self.transition(run, RunStatus::Running, "container started", None)
            .await?;
        Ok(container)
    }

    /// Builds the run's image unless the engine has it; the build's output
    /// goes into the run's log as source `build`.
    async fn prepare_image(&self, run: &Run, spec: &RunSpec) -> Result<String, Stop> {
        let environment = &spec.environment.spec;
        let tag = environment.image_tag(&self.config.extra_ca);
        if self.engine.has_image(&tag).await? {
            return Ok(tag);
        }
        self.db
            .start_image_build(&tag, run.id)
            .await
            .map_err(|e| Stop::Failed(e.to_string()))?;
        let (lines_tx, mut lines_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let db = self.db.clone();
        let run_id = run.id;
        // Build lines are written as they come, in batches, by their own task.
        let writer = tokio::spawn(async move {
            let mut seq = 0i64;
            let mut batch = Vec::new();
            while let Some(line) = lines_rx.recv().await {
                batch.push(build_line(seq, line));
                seq += 1;
                while let Ok(line) = lines_rx.try_recv() {
                    batch.push(build_line(seq, line));
                    seq += 1;
                }
                if let Err(err) = db.append_run_logs(run_id, &batch).await {
                    tracing::warn!(error = %err, "storing build log lines failed");
                }
                batch.clear();
            }
        });
        let outcome = self
            .engine
            .ensure_image(&tag, environment, &self.config.extra_ca, |line| {
                let _ = lines_tx.send(line);
            })
            .await;
        drop(lines_tx);
        let _ = writer.await;
        match outcome {
            Ok(_) => {
                self.db
                    .set_image_state(&tag, ImageState::Ready, None)
                    .await
                    .map_err(|e| Stop::Failed(e.to_string()))?;
                Ok(tag)
            }
            Err(err) => {
                let message = err.to_string();
                let _ = self
                    .db
                    .set_image_state(&tag, ImageState::Failed, Some(&message))
                    .await;
                Err(Stop::Failed(message))
            }
        }
    }

    /// Creates the run's container and copies its source in.
    async fn create(&self, run: &Run, spec: &RunSpec, image: &str) -> Result<String, Stop> {
        let plan = ContainerPlan::single(run);
        self.create_container(run, spec, image, &plan).await
    }

    /// Creates one container of a run as `plan` says, and copies its source in.
    async fn create_container(
        &self,
        run: &Run,
        spec: &RunSpec,
        image: &str,
        plan: &ContainerPlan,
    ) -> Result<String, Stop> {
        let workspace = self
            .db
            .find_workspace(&run.workspace_id.to_string())
            .await
            .map_err(|e| Stop::Failed(e.to_string()))?;
        let token = self
            .db
            .create_run_token(run.workspace_id, run.id, plan.rank)
            .await
            .map_err(|e| Stop::Failed(e.to_string()))?;
        let mut env: Vec<String> = spec
            .environment_variables
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        env.extend([
            format!("TRAINYARD_API_URL={}", self.config.api_url),
            format!("TRAINYARD_RUN_ID={}", run.id),
            format!("TRAINYARD_WORKSPACE={}", workspace.name),
            format!("TRAINYARD_EXPERIMENT_ID={}", run.experiment_id),
            format!("TRAINYARD_TOKEN={token}"),
            "PYTHONUNBUFFERED=1".to_string(),
        ]);
        // An MLflow client in the run logs into this run through the server's
        // MLflow API, unless the run points it elsewhere itself.
        let mlflow = [
            ("MLFLOW_TRACKING_URI", self.config.api_url.clone()),
            ("MLFLOW_TRACKING_TOKEN", token.clone()),
            ("MLFLOW_RUN_ID", run.id.to_string()),
            ("MLFLOW_EXPERIMENT_ID", run.experiment_id.to_string()),
        ];
        env.extend(
            mlflow
                .into_iter()
                .filter(|(name, _)| !spec.environment_variables.contains_key(*name))
                .map(|(name, value)| format!("{name}={value}")),
        );
        // The SDK goes after any path the run sets itself.
        let python_path = match spec.environment_variables.get("PYTHONPATH") {
            Some(own) => format!("PYTHONPATH={own}:{PYTHON_SDK_DIR}"),
            None => format!("PYTHONPATH={PYTHON_SDK_DIR}"),
        };
        env.retain(|var| !var.starts_with("PYTHONPATH="));
        env.push(python_path);
        // A rank's own variables win over the run's.
        for (name, value) in &plan.env {
            let prefix = format!("{name}=");
            env.retain(|var| !var.starts_with(&prefix));
            env.push(format!("{name}={value}"));
        }
        let mut labels = HashMap::from([
            (LABEL_RUN_ID.to_string(), run.id.to_string()),
            (LABEL_WORKSPACE.to_string(), run.workspace_id.to_string()),
            (LABEL_OWNER.to_string(), self.config.owner.clone()),
        ]);
        if let Some(rank) = plan.rank {
            labels.insert(LABEL_RANK.to_string(), rank.to_string());
        }
        let mut process = spec.process();
        let mut mpi_files = Vec::new();
        if let Some(files) = &plan.mpi_files {
            process = mpi::rank_process(process);
            mpi_files.push(files.clone());
            mpi_files.push(Bytes::from(mpi::rank_env_file(&env)?));
        }
        let (mut cpus, mut memory_mb) = (spec.resources.cpus, spec.resources.memory_mb);
        let mut gpu_device_ids = Vec::new();
        if let Some(holds) = &plan.holds {
            labels.insert(LABEL_NODE.to_string(), holds.node.clone());
            (cpus, memory_mb) = (holds.cpus, holds.memory_mb);
            let ids: Vec<String> = holds.gpus.iter().map(u32::to_string).collect();
            if holds.gpu_mode != "none" {
                // The NVIDIA runtime exposes exactly these; "void" hides all.
                let visible = if ids.is_empty() {
                    "void".to_string()
                } else {
                    ids.join(",")
                };
                env.retain(|var| !var.starts_with("NVIDIA_VISIBLE_DEVICES="));
                env.push(format!("NVIDIA_VISIBLE_DEVICES={visible}"));
            }
            if holds.gpu_mode == "nvidia" {
                gpu_device_ids = ids;
            }
        }
        let container_spec = ContainerSpec {
            name: plan.name.clone(),
            image: image.to_string(),
            process,
            env,
            labels,
            workdir: WORKDIR.to_string(),
            cpus,
            memory_mb,
            gpu_device_ids,
            network_mode: plan
                .network_mode
                .clone()
                .or_else(|| self.config.network_mode.clone()),
            binds: self.mount_inputs(&spec.inputs).await?,
            extra_hosts: plan.extra_hosts.clone(),
            network_aliases: plan.network_aliases.clone(),
        };
        let container = self.engine.create_container(&container_spec).await?;
        for network in &plan.also_networks {
            self.engine.connect_network(network, &container).await?;
        }
        if plan.rank.unwrap_or(0) == 0 {
            self.db
                .set_run_container(run.id, &container)
                .await
                .map_err(|e| Stop::Failed(e.to_string()))?;
        }
        self.engine
            .upload_archive(&container, "/", Bytes::from(workdir_skeleton()?))
            .await?;
        self.engine
            .upload_archive(&container, "/", Bytes::from_static(PYTHON_SDK))
            .await?;
        for files in mpi_files {
            self.engine.upload_archive(&container, "/", files).await?;
        }
        self.copy_downloads(&container, &spec.inputs).await?;
        if let Some(digest) = &spec.snapshot {
            let key = Storage::snapshot_key(digest)
                .map_err(|e| Stop::Failed(format!("reading the source snapshot: {e}")))?;
            let snapshot = self
                .storage
                .get(&key)
                .await
                .map_err(|e| Stop::Failed(format!("reading the source snapshot: {e}")))?;
            self.engine
                .upload_archive(&container, WORKDIR, snapshot)
                .await?;
        }
        Ok(container)
    }

    /// Runs the container to its end, keeps its files, and records how it ended.
    async fn supervise_and_finish(&self, run: &Run, container: &str) {
        let ended = match self.supervise(run, container, &Sources::of(None)).await {
            Ok(ended) => ended,
            Err(err) => {
                tracing::warn!(error = %err, "supervising the run failed");
                if let Some(lost) = self.node_lost(&err.to_string()).await {
                    let reason = format!("{lost}; the run's container was lost with it");
                    self.mark_node_down(run, &lost).await;
                    let _ = self
                        .transition(run, RunStatus::Failed, "node lost", Some(&reason))
                        .await;
                    self.cleanup(run, None).await;
                    return;
                }
                let state = self.engine.container_state(container).await.ok().flatten();
                Ended {
                    exit_code: state.and_then(|s| s.exit_code),
                    stopped: None,
                }
            }
        };
        self.finish(run, container, ended).await;
    }

    async fn finish(&self, run: &Run, container: &str, ended: Ended) {
        if let Err(stop) = self
            .transition(run, RunStatus::Finalizing, "container exited", None)
            .await
        {
            if let Stop::Failed(message) = stop {
                tracing::warn!(%message, "could not finalize the run");
            }
            return;
        }
        if let Some(code) = ended.exit_code {
            let _ = self.db.set_run_exit_code(run.id, code as i32).await;
        }
        let kept = files::collect_files(&self.engine, &self.storage, container, run.id, None).await;
        let (status, reason, error) = outcome(run, ended, kept.map(|_| ()));
        let _ = self
            .transition(run, status, &reason, error.as_deref())
            .await;
        self.cleanup(run, Some(container)).await;
    }

    /// Ends a run that never got to run.
    async fn end_early(&self, run: &Run, stop: Stop) {
        let current = self.db.get_run_for_executor(run.id).await.ok();
        let container = current.as_ref().and_then(|r| r.container_id.clone());
        match stop {
            Stop::Canceled => {
                let _ = self
                    .transition(run, RunStatus::Canceled, "canceled by user", None)
                    .await;
            }
            Stop::Failed(message) => {
                let lost = self.node_lost(&message).await;
                if let Some(reason) = &lost {
                    self.mark_node_down(run, reason).await;
                    if self.requeue(run, reason).await {
                        return;
                    }
                }
                let message = lost.unwrap_or(message);
                tracing::info!(%message, "run failed before it ran");
                let _ = self
                    .transition(
                        run,
                        RunStatus::Failed,
                        "failed before running",
                        Some(&message),
                    )
                    .await;
            }
        }
        self.cleanup(run, container.as_deref()).await;
    }

    /// Records the run's node as down: nothing new goes there until it
    /// answers again, and then the monitor removes what lost runs left.
    async fn mark_node_down(&self, run: &Run, reason: &str) {
        if let Some(placement) = &run.placement {
            if let Err(err) = self.db.node_unreachable(placement.0.node_id, reason).await {
                tracing::warn!(error = %err, "recording a lost node failed");
            }
        }
    }

    /// Puts a run that never started back in the queue, its node being
    /// lost; `false` when it cannot go back.
    async fn requeue(&self, run: &Run, reason: &str) -> bool {
        let Some(placement) = &run.placement else {
            return false;
        };
        let reason = format!("{reason}; queued again before it started");
        let requeued = self
            .db
            .requeue_unstarted(run.workspace_id, run.id, Some(placement.0.node_id), &reason)
            .await;
        match requeued {
            Ok(true) => {
                tracing::warn!(run_id = %run.id, %reason, "run queued again");
                if let Err(err) = self.db.revoke_run_tokens(run.id).await {
                    tracing::warn!(error = %err, "revoking the run's token failed");
                }
                true
            }
            Ok(false) => false,
            Err(err) => {
                tracing::warn!(run_id = %run.id, error = %err, "queueing a run again failed");
                false
            }
        }
    }

    async fn cleanup(&self, run: &Run, container: Option<&str>) {
        if let Err(err) = self.db.revoke_run_tokens(run.id).await {
            tracing::warn!(error = %err, "revoking the run's token failed");
        }
        if let Some(container) = container {
            if !self.config.keep_containers {
                if let Err(err) = self.engine.remove_container(container).await {
                    tracing::warn!(error = %err, "removing the container failed");
                }
            }
        }
    }

    async fn check_cancel(&self, run: &Run) -> Result<(), Stop> {
        match self.db.cancel_requested_at(run.id).await {
            Ok(Some(_)) => Err(Stop::Canceled),
            Ok(None) => Ok(()),
            Err(err) => Err(Stop::Failed(err.to_string())),
        }
    }

    async fn transition(
        &self,
        run: &Run,
        to: RunStatus,
        reason: &str,
        error: Option<&str>,
    ) -> Result<(), Stop> {
        self.db
            .transition_run(run.workspace_id, run.id, to, reason, error)
            .await
            .map(|_| ())
            .map_err(|e| Stop::Failed(e.to_string()))
    }
}

fn build_line(seq: i64, line: String) -> LogLine {
    LogLine {
        source: "build".to_string(),
        seq,
        at: chrono::Utc::now(),
        line,
    }
}

/// A tar that creates the working directory with `outputs/` and `logs/`,
/// writable by any user the image runs as.
fn workdir_skeleton() -> Result<Vec<u8>, Stop> {
    let mut builder = tar::Builder::new(Vec::new());
    let root = WORKDIR.trim_start_matches('/');
    for dir in [
        format!("{root}/"),
        format!("{root}/outputs/"),
        format!("{root}/logs/"),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o777);
        header.set_size(0);
        header.set_cksum();
        builder
            .append_data(&mut header, &dir, std::io::empty())
            .map_err(|e| Stop::Failed(format!("preparing the working directory: {e}")))?;
    }
    builder
        .into_inner()
        .map_err(|e| Stop::Failed(format!("preparing the working directory: {e}")))
}
