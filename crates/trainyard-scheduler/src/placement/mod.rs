//! GPU-aware placement of waiting runs onto many Docker nodes.
//!
//! [`plan`] is a pure function: given the nodes with their free capacity, the
//! runs waiting to start and what each workspace already uses, it decides
//! which runs start now — on which node, with which GPU indexes — and says in
//! words why every other run waits. It does no I/O, reads no clock and draws
//! no random numbers: the same input always gives the same [`Plan`], whatever
//! the order of `nodes` and `runs` (ties are broken by node id, run id and
//! workspace id, never by position).
//!
//! # Rules
//!
//! - **Capacity.** A GPU index goes to at most one container and must be in
//!   the node's free list; a node's CPUs, memory and (when counted) ports
//!   never go below zero. CPUs are accounted in thousandths of a CPU (demands
//!   rounded up, free amounts rounded down), so `10 × 0.1` fits on `1.0`
//!   exactly and rounding never oversubscribes.
//! - **Nodes.** Only [`NodeState::Ready`] nodes of the run's own compute
//!   target are used.
//! - **Order.** Priority first (higher first). Within one priority, fair
//!   share: the workspace using least — running runs plus runs placed earlier
//!   in this pass, ties by GPUs, then by the age of its oldest waiting run,
//!   then by workspace id — goes next, one run at a time. Within a
//!   workspace, submission order ([`WaitingRun::sequence`], then run id).
//! - **Quotas** ([`Quota`]) are hard limits checked before capacity; a run
//!   blocked by its quota waits and the runs behind it are still tried.
//! - **Backfill.** A run that does not fit does not block the runs behind it.
//!   That lets a steady stream of small runs starve a large one, so:
//! - **Reservation against starvation.** A run that has waited at least
//!   [`PlacementConfig::reserve_after_passes`] passes and still does not fit
//!   reserves nodes of its compute target: the Ready nodes whose *total*
//!   capacity holds it, choosing those with the most free now (closest to
//!   draining). Runs later in this pass's order are not placed on reserved
//!   nodes, so those nodes drain as their running work ends and the large run
//!   fits in a later pass. At most one run per compute target holds a
//!   reservation in a pass (the first starving one in queue order, like EASY
//!   backfill), which bounds the capacity left idle. The function keeps no
//!   state: reservations are recomputed each pass, and because the order and
//!   the node choice are deterministic and nothing new lands on a reserved
//!   node, the same nodes tend to be chosen again. A reservation protects
//!   only against runs *behind* it in queue order: a higher priority, or a
//!   workspace with a smaller share, still goes first (that is what
//!   priority and fair share mean). Runs blocked by a quota, or too large
//!   for any node, never reserve. Ports are not considered when choosing
//!   reserved nodes (a drained node's port count is not known).
//! - **Gangs** (several containers) are placed all or none within a pass; a
//!   spread gang puts each container on a different node.
//!   Containers are placed largest first; each goes to a node the gang
//!   already uses if one fits, otherwise to the best-fit node for *all the
//!   remaining containers together* if one exists (packing them there),
//!   otherwise to the node with the most room for it. Greedy: a gang that a
//!   smarter packing could fit may wait a pass.
//! - **Heuristic for one container:** best fit — the node with the fewest
//!   free GPUs that still fits, then the least free CPU — so big holes stay
//!   for big runs; GPUs are taken by lowest index.
//! - **Reasons** for capacity are computed from the state at the end of the
//!   pass (capacity only shrinks during a pass, so a run that did not fit
//!   still does not), so all texts agree with one another.

#![warn(missing_docs)]

mod index;
mod planner;
mod reason;
mod synthetic;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use reason::{Shortage, WaitReason};
pub use synthetic::synthetic_input;

use std::collections::BTreeMap;
use uuid::Uuid;

/// Default for [`PlacementConfig::reserve_after_passes`].
pub const DEFAULT_RESERVE_AFTER_PASSES: u32 = 10;

/// Whether a node takes new work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeState {
    /// Takes new containers.
    Ready,
    /// Keeps its running containers but takes no new ones.
    Cordoned,
    /// Unreachable; takes nothing.
    Down,
}

/// A node's whole capacity, used or not.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Capacity {
    /// GPUs installed.
    pub gpus: u32,
    /// CPU cores.
    pub cpus: f64,
    /// Memory in MiB.
    pub memory_mb: u64,
}

/// One Docker node as the scheduler sees it now.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Unique name of the node.
    pub id: String,
    /// The compute target it belongs to.
    pub compute_target: String,
    /// Whether it takes new work.
    pub state: NodeState,
    /// Its whole capacity; decides whether a run could *ever* fit.
    pub total: Capacity,
    /// Indexes of its GPUs that no container holds (any order; duplicates
    /// are ignored).
    pub free_gpus: Vec<u32>,
    /// CPU cores not yet promised (negative or NaN counts as 0).
    pub free_cpus: f64,
    /// Memory in MiB not yet promised.
    pub free_memory_mb: u64,
    /// Ports still free for distributed training, or `None` when ports are
    /// not counted on this node (then they never limit placement).
    pub free_ports: Option<u32>,
}

/// What one container of a run asks for.
///
/// A run's `Resources` map onto it as `gpus`, `cpus.unwrap_or(0.0)`,
/// `memory_mb.unwrap_or(0)`: an unlimited container reserves nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ContainerDemand {
    /// Whole GPUs, all on the same node.
    pub gpus: u32,
    /// CPU cores (fractions allowed; must be finite and not negative).
    pub cpus: f64,
    /// Memory in MiB.
    pub memory_mb: u64,
    /// Ports to open on the node (0 for an ordinary run).
    pub ports: u32,
}

/// A run waiting to be placed.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitingRun {
    /// The run's id.
    pub id: Uuid,
    /// The workspace it belongs to.
    pub workspace_id: Uuid,
    /// The compute target it must run on.
    pub compute_target: String,
    /// Higher goes first.
    pub priority: i32,
    /// Submission order: a sequence or the submission time in microseconds;
    /// smaller is older and goes first within its workspace.
    pub sequence: u64,
    /// How many earlier passes left this run waiting (the caller counts:
    /// the function keeps no state). Drives the reservation against
    /// starvation.
    pub waited_passes: u32,
    /// One container for an ordinary run; several for a gang, placed all or
    /// none, possibly on different nodes of the target.
    pub containers: Vec<ContainerDemand>,
    /// Each container on a node of its own (the nodes of a distributed
    /// run); otherwise a gang packs onto as few nodes as it can.
    pub spread: bool,
}

/// A workspace's hard limits; `None` is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quota {
    /// Most GPUs its runs hold at once.
    pub max_gpus: Option<u32>,
    /// Most runs it has running at once.
    pub max_runs: Option<u32>,
}

/// What a workspace already uses, and its quota.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkspaceState {
    /// Its runs that hold nodes now (preparing, starting or running).
    pub running_runs: u32,
    /// GPUs those runs hold.
    pub gpus_in_use: u32,
    /// Its limits.
    pub quota: Quota,
}

/// Tunables of a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlacementConfig {
    /// A run that has waited this many passes and still does not fit
    /// reserves nodes (see the module documentation); `None` turns
    /// reservations off (pure backfill, which can starve large runs).
    pub reserve_after_passes: Option<u32>,
}

impl Default for PlacementConfig {
    fn default() -> Self {
        PlacementConfig {
            reserve_after_passes: Some(DEFAULT_RESERVE_AFTER_PASSES),
        }
    }
}

/// Everything one pass decides from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlacementInput {
    /// Every node, whatever its state.
    pub nodes: Vec<Node>,
    /// The runs waiting to start, in any order.
    pub runs: Vec<WaitingRun>,
    /// Usage and quota per workspace id; a workspace not listed uses nothing
    /// and has no quota.
    pub workspaces: BTreeMap<Uuid, WorkspaceState>,
    /// Tunables.
    pub config: PlacementConfig,
}

/// Where one container goes.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerPlacement {
    /// The node's id.
    pub node_id: String,
    /// The GPU indexes it gets, ascending.
    pub gpus: Vec<u32>,
    /// CPU cores it gets (as asked).
    pub cpus: f64,
    /// Memory in MiB it gets.
    pub memory_mb: u64,
    /// Ports it gets.
    pub ports: u32,
}

/// A run placed in this pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// The run's id.
    pub run_id: Uuid,
    /// Its workspace.
    pub workspace_id: Uuid,
    /// One placement per container, in the order of
    /// [`WaitingRun::containers`].
    pub containers: Vec<ContainerPlacement>,
}

/// A run that stays waiting, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    /// The run's id.
    pub run_id: Uuid,
    /// Why; its `Display` is the text shown to people.
    pub reason: WaitReason,
}

/// Nodes held back in this pass for a run that has waited too long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The run the nodes drain for.
    pub run_id: Uuid,
    /// Their compute target.
    pub compute_target: String,
    /// The reserved nodes' ids.
    pub node_ids: Vec<String>,
}

/// The outcome of one pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Runs to start now, in the order they were placed.
    pub assignments: Vec<Assignment>,
    /// Every other run with its reason, in queue order.
    pub waiting: Vec<Waiting>,
    /// Nodes reserved against starvation, one entry per compute target at
    /// most.
    pub reservations: Vec<Reservation>,
}

/// Decides one scheduling pass: which waiting runs start where, and why the
/// others wait. Pure and deterministic; see the module documentation for
/// the rules. Cost is about O(runs × log(runs) + nodes × log(nodes)) plus, per
/// placement attempt, a walk of the free-GPU buckets of one compute target,
/// so 10,000 runs on 1,000 nodes take milliseconds.
pub fn plan(input: &PlacementInput) -> Plan {
    planner::Planner::new(input).run()
}
