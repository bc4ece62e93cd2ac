//! From the database's picture of the compute targets to the input of
//! [`placement::plan`], and from its plan back to what is stored: a
//! placement per started run, a sentence per waiting one. Pure, so the
//! accounting (what is free on a node) is tested without a database.

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use trainyard_core::distribution::{node_address, Shape, PORT_RANGE};
use trainyard_core::{RankPlacement, Resources, RunPlacement};
use trainyard_db::scheduling::{ClusterState, SchedNode};
use uuid::Uuid;

use crate::placement::{
    self, Capacity, ContainerDemand, Node, NodeState, PlacementConfig, PlacementInput, Quota,
    WaitingRun, WorkspaceState,
};

/// What one pass decided, ready to store.
#[derive(Debug, Default)]
pub struct Decisions {
    /// Runs to start, with where.
    pub placements: Vec<(Uuid, RunPlacement)>,
    /// Runs that wait, with why.
    pub waits: Vec<(Uuid, String)>,
}

/// Plans one pass over `state`.
pub fn decide(state: &ClusterState, config: PlacementConfig) -> Decisions {
    let input = placement_input(state, config);
    let plan = placement::plan(&input);
    let nodes: HashMap<String, &SchedNode> =
        state.nodes.iter().map(|n| (n.id.to_string(), n)).collect();
    let target_names: HashMap<String, &str> = state
        .queued
        .iter()
        .map(|r| {
            let key = target_key(r.compute_target_id, &r.compute_target);
            (key, r.compute_target.as_str())
        })
        .collect();
    let runs: HashMap<Uuid, SchedFields> = state
        .queued
        .iter()
        .map(|r| (r.id, SchedFields::of(&r.spec.0)))
        .collect();
    let mut ports = PortPools::from_holdings(state);
    let mut decisions = Decisions::default();
    for assignment in plan.assignments {
        let fields = runs.get(&assignment.run_id).cloned().unwrap_or_default();
        // A distributed run's containers here are its nodes; each holds
        // that node's processes, which share its GPUs.
        let per_node = fields.processes_per_node() as usize;
        let resources = fields.process_resources();
        let expected = assignment.containers.len() * per_node;
        let mut ranks = Vec::with_capacity(expected);
        'nodes: for container in &assignment.containers {
            let Some(node) = nodes.get(&container.node_id) else {
                break;
            };
            let address = node_address(&node.endpoint);
            let share = container.gpus.len() / per_node;
            for local in 0..per_node {
                let port = if container.ports > 0 {
                    // Nodes that share an address share its ports; the plan
                    // counted each node's alone, so one may be short here.
                    match ports.take(&address) {
                        Some(port) => port,
                        None => break 'nodes,
                    }
                } else {
                    0
                };
                ranks.push(RankPlacement {
                    node_id: node.id,
                    node: node.name.clone(),
                    gpus: container.gpus[local * share..(local + 1) * share].to_vec(),
                    node_gpus: container.gpus.clone(),
                    gpu_mode: node.gpu_mode.clone(),
                    cpus: resources.cpus,
                    memory_mb: resources.memory_mb,
                    address: address.clone(),
                    port,
                });
            }
        }
        if ranks.len() != expected || ranks.is_empty() {
            for rank in &ranks {
                ports.give_back(&rank.address, rank.port);
            }
            decisions.waits.push((
                assignment.run_id,
                "waiting for free ports on its nodes' addresses".to_string(),
            ));
            continue;
        }
        let head = &ranks[0];
        let compute_target = nodes
            .get(&head.node_id.to_string())
            .map(|n| n.compute_target.clone())
            .unwrap_or_default();
        let mut placement = RunPlacement {
            node_id: head.node_id,
            node: head.node.clone(),
            compute_target,
            gpus: head.gpus.clone(),
            gpu_mode: head.gpu_mode.clone(),
            cpus: head.cpus,
            memory_mb: head.memory_mb,
            ranks: Vec::new(),
        };
        if fields.is_distributed() {
            placement.ranks = ranks;
        }
        decisions.placements.push((assignment.run_id, placement));
    }
    for waiting in plan.waiting {
        let reason = waiting.reason.renamed(
            |key| {
                target_names
                    .get(key)
                    .map_or_else(|| key.to_string(), |n| n.to_string())
            },
            |id| {
                nodes
                    .get(id)
                    .map_or_else(|| id.to_string(), |n| n.name.clone())
            },
        );
        decisions.waits.push((waiting.run_id, reason.to_string()));
    }
    decisions
}

/// The ports of each node address that active distributed runs hold.
struct PortPools {
    held: HashMap<String, BTreeSet<u16>>,
}

impl PortPools {
    fn from_holdings(state: &ClusterState) -> PortPools {
        let mut held: HashMap<String, BTreeSet<u16>> = HashMap::new();
        for holding in &state.holdings {
            for rank in &holding.placement.0.ranks {
                held.entry(rank.address.clone())
                    .or_default()
                    .insert(rank.port);
            }
        }
        PortPools { held }
    }

    fn free_count(&self, address: &str) -> u32 {
        let held = self
            .held
            .get(address)
            .map_or(0, |h| h.iter().filter(|p| PORT_RANGE.contains(p)).count());
        PORT_RANGE.len().saturating_sub(held) as u32
    }

    /// The lowest free port of `address`, now held.
    fn take(&mut self, address: &str) -> Option<u16> {
        let held = self.held.entry(address.to_string()).or_default();
        let port = PORT_RANGE.clone().find(|p| !held.contains(p))?;
        held.insert(port);
        Some(port)
    }

    fn give_back(&mut self, address: &str, port: u16) {
        if let Some(held) = self.held.get_mut(address) {
            held.remove(&port);
        }
    }
}

/// The placement input: each node's free capacity is its declared capacity
/// less what its active runs hold.
pub fn placement_input(state: &ClusterState, config: PlacementConfig) -> PlacementInput {
    let mut held_gpus: HashMap<Uuid, BTreeSet<u32>> = HashMap::new();
    let mut held_cpus: HashMap<Uuid, f64> = HashMap::new();
    let mut held_memory: HashMap<Uuid, u64> = HashMap::new();
    let mut workspaces: BTreeMap<Uuid, WorkspaceState> = BTreeMap::new();
    for holding in &state.holdings {
        let usage = workspaces.entry(holding.workspace_id).or_default();
        usage.running_runs += 1;
        for held in holding.placement.0.holdings() {
            held_gpus.entry(held.node_id).or_default().extend(held.gpus);
            *held_cpus.entry(held.node_id).or_default() += held.cpus.unwrap_or(0.0);
            *held_memory.entry(held.node_id).or_default() += held.memory_mb.unwrap_or(0);
            usage.gpus_in_use += held.gpus.len() as u32;
        }
    }
    for limits in &state.limits {
        workspaces.entry(limits.id).or_default().quota = Quota {
            max_gpus: limits.max_gpus.map(|n| n.max(0) as u32),
            max_runs: limits.max_runs.map(|n| n.max(0) as u32),
        };
    }
    let ports = PortPools::from_holdings(state);
    let nodes = state
        .nodes
        .iter()
        .map(|n| {
            let gpus = n.gpus.max(0) as u32;
            let memory_mb = n.memory_mb.max(0) as u64;
            let held = held_gpus.get(&n.id);
            Node {
                id: n.id.to_string(),
                compute_target: n.compute_target_id.to_string(),
                state: node_state(n),
                total: Capacity {
                    gpus,
                    cpus: n.cpus,
                    memory_mb,
                },
                free_gpus: (0..gpus)
                    .filter(|i| !held.is_some_and(|h| h.contains(i)))
                    .collect(),
                free_cpus: n.cpus - held_cpus.get(&n.id).copied().unwrap_or(0.0),
                free_memory_mb: memory_mb
                    .saturating_sub(held_memory.get(&n.id).copied().unwrap_or(0)),
                free_ports: Some(ports.free_count(&node_address(&n.endpoint))),
            }
        })
        .collect();
    let runs = state
        .queued
        .iter()
        .map(|r| {
            let fields = SchedFields::of(&r.spec.0);
            // A distributed run asks for its nodes, each on a node of its
            // own, with a port per process; an ordinary run for one container.
            let distributed = fields.is_distributed();
            let node = &fields.resources;
            let demand = ContainerDemand {
                gpus: node.gpus,
                cpus: node.cpus.unwrap_or(0.0),
                memory_mb: node.memory_mb.unwrap_or(0),
                ports: if distributed {
                    fields.processes_per_node()
                } else {
                    0
                },
            };
            let nodes = fields.node_count.unwrap_or(1).max(1);
            WaitingRun {
                id: r.id,
                workspace_id: r.workspace_id,
                compute_target: target_key(r.compute_target_id, &r.compute_target),
                priority: fields.priority,
                sequence: r.created_at.timestamp_micros().max(0) as u64,
                waited_passes: r.waited_passes.max(0) as u32,
                containers: vec![demand; nodes as usize],
                spread: nodes > 1,
            }
        })
        .collect();
    PlacementInput {
        nodes,
        runs,
        workspaces,
        config,
    }
}

/// A node takes work when it is ready and its engine was not found down.
fn node_state(node: &SchedNode) -> NodeState {
    match (node.state.as_str(), node.health.as_str()) {
        ("down", _) | (_, "down") => NodeState::Down,
        ("ready", _) => NodeState::Ready,
        _ => NodeState::Cordoned,
    }
}

/// The key of a run's compute target: its id, or (when the run names a
/// target that no longer exists) a key no node has.
fn target_key(id: Option<Uuid>, name: &str) -> String {
    match id {
        Some(id) => id.to_string(),
        None => format!("missing:{name}"),
    }
}

/// The parts of a queued run's stored spec that placement reads.
#[derive(Debug, Clone, Default, Deserialize)]
struct SchedFields {
    #[serde(default)]
    resources: Resources,
    #[serde(default)]
    priority: i32,
    #[serde(default)]
    node_count: Option<u32>,
    #[serde(default)]
    process_count_per_node: Option<u32>,
    #[serde(default)]
    distribution: Option<serde_json::Value>,
}

impl SchedFields {
    /// Read leniently: a spec that does not parse asks for nothing.
    fn of(spec: &serde_json::Value) -> SchedFields {
        SchedFields::deserialize(spec).unwrap_or_default()
    }

    fn processes_per_node(&self) -> u32 {
        self.process_count_per_node.unwrap_or(1).max(1)
    }

    fn is_distributed(&self) -> bool {
        let shape = Shape {
            nodes: self.node_count.unwrap_or(1),
            per_node: self.processes_per_node(),
        };
        shape.is_distributed(self.distribution.is_some())
    }

    fn process_resources(&self) -> Resources {
        self.resources
            .per_process(self.process_count_per_node.unwrap_or(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use sqlx::types::Json;
    use trainyard_db::scheduling::{Holding, QueuedRun, WorkspaceLimits};

    fn node(target: Uuid, name: &str, gpus: i32) -> SchedNode {
        SchedNode {
            id: Uuid::new_v4(),
            name: name.into(),
            compute_target_id: target,
            compute_target: "gpucluster".into(),
            gpu_mode: "simulated".into(),
            gpus,
            cpus: 8.0,
            memory_mb: 16_384,
            state: "ready".into(),
            health: "up".into(),
            endpoint: "unix:///var/run/docker.sock".into(),
        }
    }

    fn queued(ws: Uuid, target: Option<Uuid>, gpus: u32) -> QueuedRun {
        QueuedRun {
            id: Uuid::new_v4(),
            workspace_id: ws,
            compute_target_id: target,
            compute_target: "gpucluster".into(),
            spec: Json(
                serde_json::json!({"resources": {"gpus": gpus, "cpus": 1.0, "memory_mb": 1024}}),
            ),
            created_at: Utc::now(),
            waited_passes: 0,
        }
    }

    fn holding(ws: Uuid, node: &SchedNode, gpus: Vec<u32>) -> Holding {
        Holding {
            run_id: Uuid::new_v4(),
            workspace_id: ws,
            node_id: node.id,
            placement: Json(RunPlacement {
                node_id: node.id,
                node: node.name.clone(),
                compute_target: node.compute_target.clone(),
                gpus,
                gpu_mode: node.gpu_mode.clone(),
                cpus: Some(2.0),
                memory_mb: Some(4096),
                ranks: Vec::new(),
            }),
        }
    }

    #[test]
    fn held_gpus_cpus_and_memory_are_not_free() {
        let target = Uuid::new_v4();
        let ws = Uuid::new_v4();
        let gpu1 = node(target, "gpu-1", 4);
        let state = ClusterState {
            holdings: vec![holding(ws, &gpu1, vec![0, 2])],
            nodes: vec![gpu1],
            ..Default::default()
        };
        let input = placement_input(&state, PlacementConfig::default());
        assert_eq!(input.nodes[0].free_gpus, vec![1, 3]);
        assert_eq!(input.nodes[0].free_cpus, 6.0);
        assert_eq!(input.nodes[0].free_memory_mb, 12_288);
        assert_eq!(input.workspaces[&ws].gpus_in_use, 2);
        assert_eq!(input.workspaces[&ws].running_runs, 1);
    }

    #[test]
    fn a_run_gets_free_gpus_and_a_too_large_one_says_why_by_name() {
        let target = Uuid::new_v4();
        let ws = Uuid::new_v4();
        let gpu1 = node(target, "gpu-1", 2);
        let fits = queued(ws, Some(target), 1);
        let too_large = queued(ws, Some(target), 4);
        let state = ClusterState {
            holdings: vec![holding(ws, &gpu1, vec![0])],
            nodes: vec![gpu1],
            queued: vec![fits.clone(), too_large.clone()],
            limits: vec![],
        };
        let decisions = decide(&state, PlacementConfig::default());
        assert_eq!(decisions.placements.len(), 1);
        let (run, placement) = &decisions.placements[0];
        assert_eq!(*run, fits.id);
        assert_eq!(placement.gpus, vec![1]);
        assert_eq!(placement.node, "gpu-1");
        assert_eq!(placement.cpus, Some(1.0));
        assert_eq!(
            decisions.waits,
            vec![(
                too_large.id,
                "needs 4 GPUs; the largest Ready node of gpucluster has 2 in all".to_string()
            )]
        );
    }

    #[test]
    fn down_cordoned_and_missing_targets_take_nothing() {
        let target = Uuid::new_v4();
        let ws = Uuid::new_v4();
        let mut down = node(target, "gpu-1", 8);
        down.health = "down".into();
        let mut cordoned = node(target, "gpu-2", 8);
        cordoned.state = "draining".into();
        let on_target = queued(ws, Some(target), 1);
        let mut missing = queued(ws, None, 1);
        missing.compute_target = "gone".into();
        let state = ClusterState {
            nodes: vec![down, cordoned],
            queued: vec![on_target, missing],
            ..Default::default()
        };
        let decisions = decide(&state, PlacementConfig::default());
        assert!(decisions.placements.is_empty());
        let reasons: Vec<&str> = decisions.waits.iter().map(|(_, r)| r.as_str()).collect();
        assert!(reasons.contains(&"no Ready node in compute target gpucluster"));
        assert!(reasons.contains(&"no node in compute target gone"));
    }

    #[test]
    fn a_workspace_gpu_quota_holds_runs_back() {
        let target = Uuid::new_v4();
        let ws = Uuid::new_v4();
        let gpu1 = node(target, "gpu-1", 8);
        let state = ClusterState {
            holdings: vec![holding(ws, &gpu1, vec![0, 1])],
            nodes: vec![gpu1],
            queued: vec![queued(ws, Some(target), 1)],
            limits: vec![WorkspaceLimits {
                id: ws,
                max_gpus: Some(2),
                max_runs: None,
            }],
        };
        let decisions = decide(&state, PlacementConfig::default());
        assert!(decisions.placements.is_empty());
        assert!(decisions.waits[0]
            .1
            .starts_with("workspace quota: 2 GPUs at once"));
    }

    #[test]
    fn a_distributed_run_takes_a_node_per_node_and_a_port_per_process() {
        let target = Uuid::new_v4();
        let ws = Uuid::new_v4();
        let (a, b) = (node(target, "a", 4), node(target, "b", 4));
        // A distributed run already holds port 29500 of the shared address.
        let mut held = holding(ws, &a, vec![3]);
        held.placement.0.ranks = vec![RankPlacement {
            node_id: a.id,
            node: "a".into(),
            gpus: vec![3],
            node_gpus: vec![3],
            gpu_mode: "simulated".into(),
            cpus: Some(2.0),
            memory_mb: Some(4096),
            address: "127.0.0.1".into(),
            port: 29500,
        }];
        let mut run = queued(ws, Some(target), 2);
        run.spec.0["node_count"] = 2.into();
        run.spec.0["process_count_per_node"] = 2.into();
        run.spec.0["distribution"] = serde_json::json!({"type": "pytorch"});
        let state = ClusterState {
            holdings: vec![held],
            nodes: vec![a.clone(), b.clone()],
            queued: vec![run.clone()],
            limits: vec![],
        };
        let decisions = decide(&state, PlacementConfig::default());
        assert_eq!(decisions.placements.len(), 1, "{decisions:?}");
        let placement = &decisions.placements[0].1;
        let ranks = &placement.ranks;
        assert_eq!(ranks.len(), 4);
        // Ranks 0 and 1 share a node, 2 and 3 the other.
        assert_eq!(ranks[0].node_id, ranks[1].node_id);
        assert_eq!(ranks[2].node_id, ranks[3].node_id);
        assert_ne!(ranks[0].node_id, ranks[2].node_id);
        for (i, rank) in ranks.iter().enumerate() {
            // Each holds one of its node's two GPUs and sees both, its own
            // at LOCAL_RANK.
            assert_eq!(rank.node_gpus.len(), 2, "{rank:?}");
            assert_eq!(rank.gpus, [rank.node_gpus[i % 2]], "{rank:?}");
            assert_eq!((rank.cpus, rank.memory_mb), (Some(0.5), Some(512)));
        }
        let ports: Vec<u16> = ranks.iter().map(|r| r.port).collect();
        assert_eq!(ports, [29501, 29502, 29503, 29504]);
        assert_eq!(placement.node_id, ranks[0].node_id);
    }
}
