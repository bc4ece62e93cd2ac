//! Compute targets (named pools of nodes of a workspace) and their nodes
//! (Docker engines with declared GPUs, CPUs and memory): created, listed,
//! cordoned, drained and removed by workspace administrators.

mod nodes;
mod queue;
mod targets;

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use trainyard_db::compute::{ComputeTarget, Node};
use trainyard_db::scheduling::Holding;
use trainyard_db::{Db, DbError};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(targets::create_target, targets::list_targets))
        .routes(routes!(targets::get_target, targets::delete_target))
        .routes(routes!(nodes::register_node, nodes::list_nodes))
        .routes(routes!(nodes::get_node, nodes::delete_node))
        .routes(routes!(nodes::set_node_state))
        .routes(routes!(queue::get_queue))
}

/// Resources a run gets when it asks for none.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DefaultResources {
    /// GPUs (default 0).
    #[serde(default)]
    pub gpus: u32,
    /// CPU cores (default 1).
    #[serde(default = "one_cpu")]
    pub cpus: f64,
    /// Memory in MiB (default 2048).
    #[serde(default = "two_gib")]
    pub memory_mb: u64,
}

fn one_cpu() -> f64 {
    1.0
}

fn two_gib() -> u64 {
    2048
}

impl Default for DefaultResources {
    fn default() -> Self {
        DefaultResources {
            gpus: 0,
            cpus: one_cpu(),
            memory_mb: two_gib(),
        }
    }
}

/// A compute target as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComputeTargetView {
    /// Its id.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Node labels such as a VM size.
    pub labels: BTreeMap<String, String>,
    /// Most nodes it may hold.
    pub max_nodes: i32,
    /// Resources a run gets when it asks for none.
    pub default_resources: DefaultResources,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

impl From<ComputeTarget> for ComputeTargetView {
    fn from(t: ComputeTarget) -> Self {
        ComputeTargetView {
            id: t.id,
            name: t.name,
            labels: t.labels.0,
            max_nodes: t.max_nodes,
            default_resources: DefaultResources {
                gpus: t.default_gpus.max(0) as u32,
                cpus: t.default_cpus,
                memory_mb: t.default_memory_mb.max(0) as u64,
            },
            created_at: t.created_at,
        }
    }
}

/// A node's resources.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NodeCapacity {
    /// GPUs.
    pub gpus: u32,
    /// CPU cores.
    pub cpus: f64,
    /// Memory in MiB.
    pub memory_mb: u64,
}

/// A node as the API shows it (TLS files by path; never their content).
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeView {
    /// Its id.
    pub id: Uuid,
    /// Its compute target.
    pub compute_target: String,
    /// Its name.
    pub name: String,
    /// `unix:///…` or `tcp://host:port`.
    pub endpoint: String,
    /// Whether the engine is reached over TLS.
    pub tls: bool,
    /// `nvidia` (device requests), `simulated` (GPUs only accounted) or `none`.
    pub gpu_mode: String,
    /// `ready`, `cordoned`, `draining` or `down`.
    pub state: String,
    /// Why it is not ready.
    pub state_reason: Option<String>,
    /// `unknown` (not checked yet), `up` or `down`: whether its engine
    /// answered the node monitor's last check.
    pub health: String,
    /// Why it is down.
    pub health_reason: Option<String>,
    /// When its engine last answered.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Its engine's version.
    pub engine_version: Option<String>,
    /// Its whole capacity.
    pub capacity: NodeCapacity,
    /// What its active runs hold.
    pub allocated: NodeAllocation,
    /// What is left for new runs.
    pub free: NodeAllocation,
    /// The runs that hold it now (preparing, starting, running or finalizing).
    pub running_runs: Vec<Uuid>,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
}

/// Resources of a node held by runs, or free.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct NodeAllocation {
    /// GPU indexes, ascending.
    pub gpus: Vec<u32>,
    /// CPU cores.
    pub cpus: f64,
    /// Memory in MiB.
    pub memory_mb: u64,
}

impl NodeView {
    /// The views of `nodes`, with what their active runs hold.
    pub(super) async fn of(db: &Db, nodes: Vec<Node>) -> Result<Vec<NodeView>, DbError> {
        let ids: Vec<Uuid> = nodes.iter().map(|n| n.id).collect();
        let holdings = db.holdings_on_nodes(&ids).await?;
        Ok(nodes
            .into_iter()
            .map(|node| {
                let on_node: Vec<&Holding> = holdings
                    .iter()
                    .filter(|h| {
                        h.placement
                            .0
                            .holdings()
                            .iter()
                            .any(|c| c.node_id == node.id)
                    })
                    .collect();
                NodeView::new(node, &on_node)
            })
            .collect())
    }

    /// The view of one node.
    pub(super) async fn one(db: &Db, node: Node) -> Result<NodeView, DbError> {
        let mut views = NodeView::of(db, vec![node]).await?;
        views.pop().ok_or(DbError::NotFound("node"))
    }

    fn new(n: Node, holdings: &[&Holding]) -> Self {
        let mut allocated = NodeAllocation::default();
        let containers = holdings.iter().flat_map(|h| h.placement.0.holdings());
        for held in containers.filter(|c| c.node_id == n.id) {
            allocated.gpus.extend(held.gpus);
            allocated.cpus += held.cpus.unwrap_or(0.0);
            allocated.memory_mb += held.memory_mb.unwrap_or(0);
        }
        allocated.gpus.sort_unstable();
        let gpus = n.gpus.max(0) as u32;
        let memory_mb = n.memory_mb.max(0) as u64;
        let free = NodeAllocation {
            gpus: (0..gpus).filter(|i| !allocated.gpus.contains(i)).collect(),
            cpus: (n.cpus - allocated.cpus).max(0.0),
            memory_mb: memory_mb.saturating_sub(allocated.memory_mb),
        };
        NodeView {
            allocated,
            free,
            running_runs: holdings.iter().map(|h| h.run_id).collect(),
            id: n.id,
            compute_target: n.compute_target,
            name: n.name,
            endpoint: n.endpoint,
            tls: n.tls.is_some(),
            gpu_mode: n.gpu_mode,
            state: n.state,
            state_reason: n.state_reason,
            health: n.health,
            health_reason: n.health_reason,
            last_seen_at: n.last_seen_at,
            engine_version: n.engine_version,
            capacity: NodeCapacity {
                gpus: n.gpus.max(0) as u32,
                cpus: n.cpus,
                memory_mb: n.memory_mb.max(0) as u64,
            },
            created_at: n.created_at,
        }
    }
}
