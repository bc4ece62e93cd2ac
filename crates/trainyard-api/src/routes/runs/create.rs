use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use std::collections::BTreeMap;
use trainyard_core::distribution::RankOutputs;
use trainyard_core::run_spec::INPUTS_DIR;
use trainyard_core::{
    validate, Distribution, EnvironmentSpec, InputMode, Name, Resources, Role, RunEnvironment,
    RunInput, RunSpec,
};
use trainyard_db::runs::NewRun;
use trainyard_db::{Db, DbError};
use utoipa::ToSchema;

use super::RunView;
use crate::auth::InWorkspace;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::AppJson;

/// A run to submit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRun {
    /// The experiment, by id or name; it must exist.
    pub experiment: String,
    /// A label, at most 256 characters.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Labels: keys up to 250 characters, values up to 5000.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Descriptive key-values, same limits as tags.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Digest of an uploaded source snapshot (`POST …/snapshots`).
    #[serde(default)]
    pub snapshot: Option<String>,
    /// Entry script, relative to the snapshot root (`train.py`).
    #[serde(default)]
    pub script: Option<String>,
    /// A command to run instead of a script.
    #[serde(default)]
    pub command: Vec<String>,
    /// Arguments after the script or command.
    #[serde(default)]
    pub arguments: Vec<String>,
    /// The environment: a registered one, or a spec given inline.
    #[serde(default)]
    pub environment: Option<EnvironmentChoice>,
    /// The compute target; the server's own engine when absent or `local`.
    /// A named target must exist in the workspace.
    #[serde(default)]
    pub compute_target: Option<String>,
    /// GPUs, CPUs and memory the run needs; on a compute target, what is
    /// left out comes from the target's defaults.
    #[serde(default)]
    pub resources: ResourcesRequest,
    /// Higher goes first on its compute target (-1000 to 1000, default 0).
    #[serde(default)]
    pub priority: i32,
    /// Variables for the run's process.
    #[serde(default)]
    pub environment_variables: BTreeMap<String, String>,
    /// Stop the run and fail it after this many seconds.
    #[serde(default)]
    pub time_limit_seconds: Option<u64>,
    /// Dataset versions the run reads; `${{inputs.<name>}}` in the arguments
    /// or command becomes the input's path in the container.
    #[serde(default)]
    pub inputs: Vec<InputRequest>,
    /// Nodes a distributed run spans (default 1).
    #[serde(default)]
    pub node_count: Option<u32>,
    /// Processes per node (default 1); each is a container (rank) of its
    /// own and gets an equal share of `resources`.
    #[serde(default)]
    pub process_count_per_node: Option<u32>,
    /// How the processes find each other: `{"type": "pytorch"}`,
    /// `{"type": "tensorflow", "worker_count": 2, "parameter_server_count": 1}`
    /// or `{"type": "mpi"}`. Required with more than one process.
    #[serde(default)]
    pub distribution: Option<Distribution>,
    /// Which ranks' `./outputs` and `./logs` a distributed run keeps: `all`
    /// (default; rank N's under `outputs/rank-N/`) or `rank0`.
    #[serde(default)]
    pub rank_outputs: Option<RankOutputs>,
}

/// What a run asks for; absent amounts are the compute target's defaults
/// (on the server's own engine: no GPUs, no CPU or memory limit).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourcesRequest {
    /// Whole GPUs.
    #[serde(default)]
    pub gpus: Option<u32>,
    /// CPU cores (fractions allowed).
    #[serde(default)]
    pub cpus: Option<f64>,
    /// Memory in MiB.
    #[serde(default)]
    pub memory_mb: Option<u64>,
}

/// A dataset a run reads.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InputRequest {
    /// The input's name (for placeholders).
    pub name: String,
    /// The dataset's name.
    pub dataset: String,
    /// Its version; the latest when absent.
    #[serde(default)]
    pub version: Option<i32>,
    /// `mount` (read-only bind mount) or `download` (copied in before start).
    pub mode: InputMode,
    /// Where it appears; `/mnt/inputs/<name>` when absent.
    #[serde(default)]
    pub path: Option<String>,
}

/// Which environment a run uses.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentChoice {
    /// A registered environment's name.
    #[serde(default)]
    pub name: Option<String>,
    /// Its version; the latest when absent.
    #[serde(default)]
    pub version: Option<i32>,
    /// An inline spec, instead of a name.
    #[serde(default)]
    pub spec: Option<EnvironmentSpec>,
}

/// Submits a run; it starts Queued.
#[utoipa::path(post, path = "/workspaces/{workspace}/runs", tag = "runs",
    params(("workspace" = String, Path, description = "Workspace name or id")),
    request_body = CreateRun,
    responses(
        (status = 201, description = "Submitted", body = RunView),
        (status = 403, description = "Needs the contributor role", body = Problem),
        (status = 422, description = "A field is invalid or the experiment does not exist", body = Problem),
    ))]
pub(super) async fn create_run(
    State(db): State<Db>,
    scope: InWorkspace,
    AppJson(body): AppJson<CreateRun>,
) -> ApiResult<(StatusCode, AppJson<RunView>)> {
    let workspace_id = scope.require(Role::Contributor)?;
    let display_name = validate::display_name("display_name", body.display_name.clone())?;
    let tags = validate::tag_map("tags", &body.tags)?;
    let properties = validate::tag_map("properties", &body.properties)?;
    let experiment = db
        .find_experiment(workspace_id, &body.experiment)
        .await
        .map_err(|err| match err {
            DbError::NotFound(_) => ApiError::invalid(
                "experiment",
                "no experiment with this id or name in the workspace",
            ),
            other => other.into(),
        })?;
    let (spec, inputs) = executable_spec(&db, workspace_id, body).await?;
    let run = db
        .create_run(
            workspace_id,
            NewRun {
                experiment_id: experiment.id,
                display_name,
                spec,
                inputs,
                tags,
                properties,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, AppJson(run.into())))
}

/// The spec of what the run executes, checked, or an empty object for a run
/// that only records (a notebook's interactive run): such runs name neither a
/// script nor a command and are never placed on a node.
async fn executable_spec(
    db: &Db,
    workspace_id: uuid::Uuid,
    body: CreateRun,
) -> Result<(serde_json::Value, Vec<RunInput>), ApiError> {
    let records_only = body.script.is_none()
        && body.command.is_empty()
        && body.snapshot.is_none()
        && body.environment.is_none()
        && body.arguments.is_empty()
        && body.time_limit_seconds.is_none()
        && body.inputs.is_empty()
        && body.distribution.is_none()
        && body.node_count.is_none()
        && body.process_count_per_node.is_none()
        && body.rank_outputs.is_none();
    if records_only {
        return Ok((serde_json::json!({}), Vec::new()));
    }
    let (compute_target, resources) =
        resolve_compute(db, workspace_id, body.compute_target, body.resources).await?;
    let inputs = resolve_inputs(db, workspace_id, body.inputs).await?;
    let environment = resolve_environment(db, workspace_id, body.environment).await?;
    let spec = RunSpec {
        snapshot: body.snapshot,
        script: body.script,
        command: body.command,
        arguments: body.arguments,
        environment,
        compute_target,
        resources,
        priority: body.priority,
        environment_variables: body.environment_variables,
        time_limit_seconds: body.time_limit_seconds,
        inputs,
        node_count: body.node_count.unwrap_or(1),
        process_count_per_node: body.process_count_per_node.unwrap_or(1),
        distribution: body.distribution,
        rank_outputs: body.rank_outputs.unwrap_or_default(),
    };
    spec.validate()?;
    let mut spec = spec;
    spec.resolve_input_placeholders()?;
    if let Some(digest) = &spec.snapshot {
        db.get_snapshot(workspace_id, digest)
            .await
            .map_err(|err| match err {
                DbError::NotFound(_) => ApiError::invalid(
                    "snapshot",
                    "no snapshot with this digest was uploaded to the workspace",
                ),
                other => other.into(),
            })?;
    }
    let value = serde_json::to_value(&spec).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((value, spec.inputs))
}

/// The run's compute target (`None`: the server's own engine) and its
/// resources with the target's defaults filled in.
async fn resolve_compute(
    db: &Db,
    workspace_id: uuid::Uuid,
    target: Option<String>,
    asked: ResourcesRequest,
) -> Result<(Option<String>, Resources), ApiError> {
    let name = target.filter(|name| !name.is_empty() && name != "local");
    let Some(name) = name else {
        let resources = Resources {
            gpus: asked.gpus.unwrap_or(0),
            cpus: asked.cpus,
            memory_mb: asked.memory_mb,
        };
        return Ok((None, resources));
    };
    let target = db
        .get_compute_target(workspace_id, &name)
        .await
        .map_err(|err| match err {
            DbError::NotFound(_) => ApiError::invalid(
                "compute_target",
                "no compute target with this name in the workspace (leave it out, or use 'local', to run on the server's own engine)",
            ),
            other => other.into(),
        })?;
    let resources = Resources {
        gpus: asked.gpus.unwrap_or(target.default_gpus.max(0) as u32),
        cpus: Some(asked.cpus.unwrap_or(target.default_cpus)),
        memory_mb: Some(
            asked
                .memory_mb
                .unwrap_or(target.default_memory_mb.max(0) as u64),
        ),
    };
    Ok((Some(target.name), resources))
}

/// Resolves each input to a dataset version of the workspace.
async fn resolve_inputs(
    db: &Db,
    workspace_id: uuid::Uuid,
    requests: Vec<InputRequest>,
) -> Result<Vec<RunInput>, ApiError> {
    let mut inputs: Vec<RunInput> = Vec::new();
    for (i, request) in requests.into_iter().enumerate() {
        let field = format!("inputs[{i}]");
        Name::parse(&format!("{field}.name"), &request.name)?;
        if inputs.iter().any(|input| input.name == request.name) {
            return Err(ApiError::invalid(
                format!("{field}.name"),
                "is used by another input",
            ));
        }
        let path = request
            .path
            .unwrap_or_else(|| format!("{INPUTS_DIR}/{}", request.name));
        if !path.starts_with('/') || path.split('/').any(|p| p == "..") || path == "/" {
            return Err(ApiError::invalid(
                format!("{field}.path"),
                "must be an absolute path in the container, without '..'",
            ));
        }
        let dataset = db
            .get_dataset(workspace_id, &request.dataset, request.version)
            .await
            .map_err(|err| match err {
                DbError::NotFound(_) => ApiError::invalid(
                    format!("{field}.dataset"),
                    "no dataset with this name and version in the workspace",
                ),
                other => other.into(),
            })?;
        inputs.push(RunInput {
            name: request.name,
            dataset: dataset.name,
            version: dataset.version,
            dataset_id: dataset.id,
            mode: request.mode,
            path,
        });
    }
    Ok(inputs)
}

/// Turns the submitted choice into the spec the run will use, recording the
/// registered environment's name and version for lineage.
async fn resolve_environment(
    db: &Db,
    workspace_id: uuid::Uuid,
    choice: Option<EnvironmentChoice>,
) -> Result<RunEnvironment, ApiError> {
    let Some(choice) = choice else {
        return Ok(RunEnvironment {
            name: None,
            version: None,
            spec: EnvironmentSpec::default(),
        });
    };
    match (choice.name, choice.spec) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "environment",
            "give either name or spec, not both",
        )),
        (None, Some(spec)) => Ok(RunEnvironment {
            name: None,
            version: None,
            spec,
        }),
        (Some(name), None) => {
            let found = db
                .get_environment(workspace_id, &name, choice.version)
                .await
                .map_err(|err| match err {
                    DbError::NotFound(_) => ApiError::invalid(
                        "environment",
                        "no environment with this name and version in the workspace",
                    ),
                    other => other.into(),
                })?;
            Ok(RunEnvironment {
                name: Some(found.name),
                version: Some(found.version),
                spec: found.spec.0,
            })
        }
        (None, None) => Err(ApiError::invalid("environment", "give a name or a spec")),
    }
}
