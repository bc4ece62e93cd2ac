use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use trainyard_core::{Name, Role};
use trainyard_db::compute::{NewNode, NodeTls};
use trainyard_docker::nodes::connect_endpoint;
use utoipa::ToSchema;

use super::NodeView;
use crate::auth::InWorkspace;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{AppJson, AppPath};
use crate::AppState;

/// Most GPUs one node may declare.
const MAX_NODE_GPUS: u32 = 64;
/// Longest wait for an engine asked for its capacity at registration.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(5);

/// A Docker engine to register as a node.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterNode {
    /// Its name, unique in the compute target.
    pub name: String,
    /// `unix:///var/run/docker.sock`, or `tcp://host:port`.
    pub endpoint: String,
    /// For `tcp://`: the CA, client certificate and key, as paths on the
    /// server's machine (`{"ca": …, "cert": …, "key": …}`).
    pub tls: Option<TlsFiles>,
    /// `nvidia` (runs get Docker device requests for their GPUs),
    /// `simulated` (GPUs are accounted and announced only through
    /// `NVIDIA_VISIBLE_DEVICES`: engines without the NVIDIA runtime, tests),
    /// or `none` (the default, no GPUs).
    #[serde(default)]
    pub gpu_mode: Option<String>,
    /// GPUs (0 to 64).
    #[serde(default)]
    pub gpus: u32,
    /// CPU cores; read from the engine when left out.
    #[serde(default)]
    pub cpus: Option<f64>,
    /// Memory in MiB; read from the engine when left out.
    #[serde(default)]
    pub memory_mb: Option<u64>,
}

/// The client certificate files of a TCP engine with TLS, as absolute paths
/// on the server's machine.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The CA that signed the engine's certificate.
    pub ca: String,
    /// The client certificate.
    pub cert: String,
    /// The client key.
    pub key: String,
}

/// Registers a node in a compute target (workspace administrators); refused
/// (409 `in_use`) when the target holds `max_nodes` already.
#[utoipa::path(post, path = "/workspaces/{workspace}/compute/{name}/nodes", tag = "compute",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("name" = String, Path, description = "Compute target name"),
    ),
    request_body = RegisterNode,
    responses(
        (status = 201, description = "Registered", body = NodeView),
        (status = 409, description = "The name is taken, or the target is full", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ))]
pub(super) async fn register_node(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String)>,
    AppJson(body): AppJson<RegisterNode>,
) -> ApiResult<(StatusCode, AppJson<NodeView>)> {
    let (_, target_name) = path;
    let workspace_id = scope.require(Role::Admin)?;
    let name = Name::parse("name", &body.name)?;
    check_endpoint(&body.endpoint, body.tls.as_ref())?;
    let gpu_mode = body.gpu_mode.as_deref().unwrap_or("none");
    if !["nvidia", "simulated", "none"].contains(&gpu_mode) {
        return Err(ApiError::invalid(
            "gpu_mode",
            "must be nvidia, simulated or none",
        ));
    }
    if gpu_mode == "none" && body.gpus > 0 {
        return Err(ApiError::invalid(
            "gpus",
            "a node with gpu_mode none has no GPUs; say nvidia or simulated",
        ));
    }
    if body.gpus > MAX_NODE_GPUS {
        return Err(ApiError::invalid(
            "gpus",
            format!("must be at most {MAX_NODE_GPUS}"),
        ));
    }
    let tls = body.tls.map(|files| NodeTls {
        ca: files.ca,
        cert: files.cert,
        key: files.key,
    });
    let (cpus, memory_mb) =
        capacity(&body.endpoint, tls.as_ref(), body.cpus, body.memory_mb).await?;
    let target = state
        .db
        .get_compute_target(workspace_id, &target_name)
        .await?;
    let node = state
        .db
        .create_node(
            &target,
            NewNode {
                name: &name,
                endpoint: &body.endpoint,
                tls: tls.as_ref(),
                gpu_mode,
                gpus: body.gpus as i32,
                cpus,
                memory_mb: i64::try_from(memory_mb).unwrap_or(i64::MAX),
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        AppJson(NodeView::one(&state.db, node).await?),
    ))
}

/// The node's CPUs and memory: as declared, or what its engine reports
/// (asked only when one is left out, within a few seconds).
async fn capacity(
    endpoint: &str,
    tls: Option<&NodeTls>,
    cpus: Option<f64>,
    memory_mb: Option<u64>,
) -> Result<(f64, u64), ApiError> {
    if let Some(cpus) = cpus {
        if !(cpus.is_finite() && cpus > 0.0) {
            return Err(ApiError::invalid("cpus", "must be a positive number"));
        }
    }
    if memory_mb == Some(0) {
        return Err(ApiError::invalid("memory_mb", "must be positive"));
    }
    if let (Some(cpus), Some(memory_mb)) = (cpus, memory_mb) {
        return Ok((cpus, memory_mb));
    }
    let field = if cpus.is_none() { "cpus" } else { "memory_mb" };
    let unreported = |why: String| {
        ApiError::invalid(
            field,
            format!(
                "not given, and the engine at {endpoint} did not report it ({why}); declare it"
            ),
        )
    };
    let engine = connect_endpoint(endpoint, tls).map_err(|e| unreported(e.to_string()))?;
    let reported = tokio::time::timeout(ENGINE_TIMEOUT, engine.capacity())
        .await
        .map_err(|_| unreported(format!("no answer within {} s", ENGINE_TIMEOUT.as_secs())))?
        .map_err(|e| unreported(e.to_string()))?;
    Ok((cpus.unwrap_or(reported.0), memory_mb.unwrap_or(reported.1)))
}

/// A unix socket, or a TCP address (with TLS files that are absolute paths).
fn check_endpoint(endpoint: &str, tls: Option<&TlsFiles>) -> Result<(), ApiError> {
    match endpoint.split_once("://") {
        Some(("unix", path)) if path.starts_with('/') => {
            if tls.is_some() {
                return Err(ApiError::invalid(
                    "tls",
                    "TLS applies to tcp:// endpoints, not to a unix socket",
                ));
            }
        }
        Some(("tcp", address))
            if address.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
            }) => {}
        _ => {
            return Err(ApiError::invalid(
                "endpoint",
                "must be unix:///path/to/docker.sock or tcp://host:port",
            ))
        }
    }
    if let Some(tls) = tls {
        for (field, path) in [
            ("tls.ca", &tls.ca),
            ("tls.cert", &tls.cert),
            ("tls.key", &tls.key),
        ] {
            if !path.starts_with('/') {
                return Err(ApiError::invalid(
                    field,
                    "must be an absolute path on the server's machine",
                ));
            }
        }
    }
    Ok(())
}

/// The nodes of a compute target.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeList {
    /// By name.
    pub items: Vec<NodeView>,
}

/// Lists a compute target's nodes.
#[utoipa::path(get, path = "/workspaces/{workspace}/compute/{name}/nodes", tag = "compute",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("name" = String, Path, description = "Compute target name"),
    ),
    responses(
        (status = 200, description = "The nodes", body = NodeList),
        (status = 404, description = "No such compute target", body = Problem),
    ))]
pub(super) async fn list_nodes(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String)>,
) -> ApiResult<AppJson<NodeList>> {
    let (_, target_name) = path;
    let workspace_id = scope.require(Role::Reader)?;
    let target = state
        .db
        .get_compute_target(workspace_id, &target_name)
        .await?;
    let items = NodeView::of(&state.db, state.db.list_nodes(&target).await?).await?;
    Ok(AppJson(NodeList { items }))
}

/// Gets a node.
#[utoipa::path(get, path = "/workspaces/{workspace}/compute/{name}/nodes/{node}", tag = "compute",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("name" = String, Path, description = "Compute target name"),
        ("node" = String, Path, description = "Node name"),
    ),
    responses(
        (status = 200, description = "The node", body = NodeView),
        (status = 404, description = "No such compute target or node", body = Problem),
    ))]
pub(super) async fn get_node(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String, String)>,
) -> ApiResult<AppJson<NodeView>> {
    let (_, target_name, node) = path;
    let workspace_id = scope.require(Role::Reader)?;
    let target = state
        .db
        .get_compute_target(workspace_id, &target_name)
        .await?;
    let node = state.db.get_node(&target, &node).await?;
    Ok(AppJson(NodeView::one(&state.db, node).await?))
}

/// Removes a node from its compute target (workspace administrators).
#[utoipa::path(delete, path = "/workspaces/{workspace}/compute/{name}/nodes/{node}", tag = "compute",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("name" = String, Path, description = "Compute target name"),
        ("node" = String, Path, description = "Node name"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such compute target or node", body = Problem),
    ))]
pub(super) async fn delete_node(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let (_, target_name, node) = path;
    let workspace_id = scope.require(Role::Admin)?;
    let target = state
        .db
        .get_compute_target(workspace_id, &target_name)
        .await?;
    state.db.delete_node(&target, &node).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A node's new state.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetNodeState {
    /// `ready` (takes runs), `cordoned` (takes none, keeps its running ones)
    /// or `draining` (cordoned until its runs end).
    pub state: String,
    /// Why, for whoever looks at the node next.
    pub reason: Option<String>,
}

/// Cordons, drains or readies a node (workspace administrators).
#[utoipa::path(put, path = "/workspaces/{workspace}/compute/{name}/nodes/{node}/state", tag = "compute",
    params(
        ("workspace" = String, Path, description = "Workspace name or id"),
        ("name" = String, Path, description = "Compute target name"),
        ("node" = String, Path, description = "Node name"),
    ),
    request_body = SetNodeState,
    responses(
        (status = 200, description = "The node", body = NodeView),
        (status = 404, description = "No such compute target or node", body = Problem),
        (status = 422, description = "Not a state one may set", body = Problem),
    ))]
pub(super) async fn set_node_state(
    State(state): State<AppState>,
    scope: InWorkspace,
    AppPath(path): AppPath<(String, String, String)>,
    AppJson(body): AppJson<SetNodeState>,
) -> ApiResult<AppJson<NodeView>> {
    let (_, target_name, node) = path;
    let workspace_id = scope.require(Role::Admin)?;
    if !["ready", "cordoned", "draining"].contains(&body.state.as_str()) {
        return Err(ApiError::invalid(
            "state",
            "must be ready, cordoned or draining",
        ));
    }
    let target = state
        .db
        .get_compute_target(workspace_id, &target_name)
        .await?;
    let reason = body.reason.as_deref().filter(|_| body.state != "ready");
    let node = state
        .db
        .set_node_state(&target, &node, &body.state, reason)
        .await?;
    Ok(AppJson(NodeView::one(&state.db, node).await?))
}
