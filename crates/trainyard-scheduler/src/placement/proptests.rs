//! Property tests: random clusters and queues, checked against every rule.

use std::collections::{BTreeMap, BTreeSet};

use proptest::collection::vec;
use proptest::prelude::*;

use super::index::{demand_mcpu, free_mcpu};
use super::*;

const TARGETS: [&str; 4] = ["t0", "t1", "t2", "no-nodes"];

prop_compose! {
    fn arb_node()(
        target in 0..3usize,
        state in prop_oneof![
            6 => Just(NodeState::Ready),
            1 => Just(NodeState::Cordoned),
            1 => Just(NodeState::Down),
        ],
        total_gpus in 0..=8u32,
        gpu_mask in any::<u8>(),
        total_tenths in 10..=640u32,
        cpu_free_share in 0..=100u32,
        total_mem in 1..=64u64,
        mem_free_share in 0..=100u64,
        free_ports in proptest::option::of(0..4u32),
    ) -> Node {
        let free_cpu_tenths = total_tenths * cpu_free_share / 100;
        Node {
            id: String::new(),
            compute_target: TARGETS[target].to_string(),
            state,
            total: Capacity {
                gpus: total_gpus,
                cpus: f64::from(total_tenths) / 10.0,
                memory_mb: total_mem * 16_000,
            },
            free_gpus: (0..total_gpus).filter(|g| gpu_mask & (1 << g) != 0).collect(),
            free_cpus: f64::from(free_cpu_tenths) / 10.0,
            free_memory_mb: total_mem * 16_000 * mem_free_share / 100,
            free_ports,
        }
    }
}

prop_compose! {
    fn arb_demand()(
        gpus in prop_oneof![3 => Just(0u32), 4 => 1..=2u32, 2 => 3..=8u32, 1 => 9..=10u32],
        cpu_tenths in 0..=120u32,
        memory_mb in 0..=64_000u64,
        ports in prop_oneof![4 => Just(0u32), 1 => 1..=2u32],
    ) -> ContainerDemand {
        ContainerDemand { gpus, cpus: f64::from(cpu_tenths) / 10.0, memory_mb, ports }
    }
}

prop_compose! {
    fn arb_run()(
        workspace in 0..5u128,
        target in prop_oneof![30 => 0..3usize, 1 => Just(3usize)],
        priority in 0..3i32,
        sequence in 0..60u64,
        waited_passes in 0..20u32,
        containers in prop_oneof![
            30 => vec(arb_demand(), 1),
            10 => vec(arb_demand(), 2..=4),
            1 => vec(arb_demand(), 0..=0),
        ],
        spread in proptest::bool::ANY,
    ) -> WaitingRun {
        WaitingRun {
            id: Uuid::nil(),
            workspace_id: Uuid::from_u128(workspace),
            compute_target: TARGETS[target].to_string(),
            priority,
            sequence,
            waited_passes,
            containers,
            spread,
        }
    }
}

prop_compose! {
    fn arb_workspace()(
        running_runs in 0..6u32,
        gpus_in_use in 0..12u32,
        max_gpus in proptest::option::of(0..16u32),
        max_runs in proptest::option::of(0..10u32),
    ) -> WorkspaceState {
        WorkspaceState { running_runs, gpus_in_use, quota: Quota { max_gpus, max_runs } }
    }
}

prop_compose! {
    fn arb_input()(
        nodes in vec(arb_node(), 1..=20),
        runs in vec(arb_run(), 0..=200),
        workspaces in vec(proptest::option::of(arb_workspace()), 5),
        reserve_after_passes in proptest::option::of(0..10u32),
    ) -> PlacementInput {
        let nodes = nodes
            .into_iter()
            .enumerate()
            .map(|(i, node)| Node { id: format!("n{i:02}"), ..node })
            .collect();
        let runs = runs
            .into_iter()
            .enumerate()
            .map(|(i, run)| WaitingRun { id: Uuid::from_u128(1_000 + i as u128), ..run })
            .collect();
        let workspaces = workspaces
            .into_iter()
            .enumerate()
            .filter_map(|(w, state)| Some((Uuid::from_u128(w as u128), state?)))
            .collect();
        PlacementInput {
            nodes,
            runs,
            workspaces,
            config: PlacementConfig { reserve_after_passes },
        }
    }
}

/// What a node has left after the plan, in the planner's units.
#[derive(Default)]
struct Left {
    gpus: BTreeSet<u32>,
    mcpu: i128,
    memory_mb: i128,
    ports: Option<i128>,
    cpus_used: f64,
}

fn check(input: &PlacementInput, plan: &Plan) -> Result<(), TestCaseError> {
    let runs: BTreeMap<Uuid, &WaitingRun> = input.runs.iter().map(|r| (r.id, r)).collect();
    let nodes: BTreeMap<&str, &Node> = input.nodes.iter().map(|n| (n.id.as_str(), n)).collect();

    // Every run once: placed or waiting with a reason.
    let mut seen = BTreeSet::new();
    for id in plan.assignments.iter().map(|a| a.run_id) {
        prop_assert!(seen.insert(id), "run {id} twice");
    }
    for id in plan.waiting.iter().map(|w| w.run_id) {
        prop_assert!(seen.insert(id), "run {id} twice");
    }
    prop_assert_eq!(seen, runs.keys().copied().collect::<BTreeSet<_>>());

    let mut left: BTreeMap<&str, Left> = nodes
        .iter()
        .map(|(&id, n)| {
            let left = Left {
                gpus: n.free_gpus.iter().copied().collect(),
                mcpu: free_mcpu(n.free_cpus).into(),
                memory_mb: n.free_memory_mb.into(),
                ports: n.free_ports.map(i128::from),
                cpus_used: 0.0,
            };
            (id, left)
        })
        .collect();
    let mut placed_runs: BTreeMap<Uuid, u64> = BTreeMap::new();
    let mut placed_gpus: BTreeMap<Uuid, u64> = BTreeMap::new();
    for assignment in &plan.assignments {
        let run = runs[&assignment.run_id];
        prop_assert_eq!(assignment.workspace_id, run.workspace_id);
        // Gangs: all containers or none.
        prop_assert_eq!(assignment.containers.len(), run.containers.len());
        prop_assert!(!run.containers.is_empty());
        if run.spread {
            // A spread gang: each container on a node of its own.
            let distinct: BTreeSet<&str> = assignment
                .containers
                .iter()
                .map(|c| c.node_id.as_str())
                .collect();
            prop_assert_eq!(distinct.len(), assignment.containers.len());
        }
        for (demand, placement) in run.containers.iter().zip(&assignment.containers) {
            let node = nodes[placement.node_id.as_str()];
            prop_assert_eq!(node.state, NodeState::Ready);
            prop_assert_eq!(&node.compute_target, &run.compute_target);
            prop_assert_eq!(placement.gpus.len(), demand.gpus as usize);
            prop_assert!(placement.gpus.windows(2).all(|w| w[0] < w[1]));
            prop_assert_eq!(
                (placement.cpus, placement.memory_mb, placement.ports),
                (demand.cpus, demand.memory_mb, demand.ports)
            );
            let node_left = left.get_mut(placement.node_id.as_str()).unwrap();
            for gpu in &placement.gpus {
                // Free before, and not given twice.
                prop_assert!(node_left.gpus.remove(gpu), "GPU {gpu} of {}", node.id);
            }
            node_left.mcpu -= i128::from(demand_mcpu(demand.cpus));
            node_left.memory_mb -= i128::from(demand.memory_mb);
            if let Some(ports) = &mut node_left.ports {
                *ports -= i128::from(demand.ports);
            }
            node_left.cpus_used += demand.cpus;
        }
        *placed_runs.entry(run.workspace_id).or_default() += 1;
        *placed_gpus.entry(run.workspace_id).or_default() += run
            .containers
            .iter()
            .map(|c| u64::from(c.gpus))
            .sum::<u64>();
    }
    for (id, node_left) in &left {
        let node = nodes[id];
        prop_assert!(
            node_left.mcpu >= 0 && node_left.memory_mb >= 0,
            "{id} oversubscribed"
        );
        prop_assert!(node_left.cpus_used <= node.free_cpus + 1e-6, "{id} CPUs");
        prop_assert!(node_left.ports.unwrap_or(0) >= 0, "{id} ports");
    }

    // Quotas hold (a workspace placing nothing may already be over them).
    for (ws, state) in &input.workspaces {
        let runs_now = placed_runs.get(ws).copied().unwrap_or(0);
        let gpus_now = placed_gpus.get(ws).copied().unwrap_or(0);
        if let (Some(max), true) = (state.quota.max_runs, runs_now > 0) {
            prop_assert!(u64::from(state.running_runs) + runs_now <= u64::from(max));
        }
        if let (Some(max), true) = (state.quota.max_gpus, gpus_now > 0) {
            prop_assert!(u64::from(state.gpus_in_use) + gpus_now <= u64::from(max));
        }
    }

    // Reservations: one per target at most, on Ready nodes of the waiting
    // run's target.
    let reserved: BTreeSet<&str> = plan
        .reservations
        .iter()
        .flat_map(|r| r.node_ids.iter().map(String::as_str))
        .collect();
    let mut targets = BTreeSet::new();
    for reservation in &plan.reservations {
        prop_assert!(targets.insert(&reservation.compute_target));
        let run = runs[&reservation.run_id];
        prop_assert!(plan.waiting.iter().any(|w| w.run_id == run.id));
        prop_assert_eq!(&reservation.compute_target, &run.compute_target);
        for id in &reservation.node_ids {
            prop_assert_eq!(nodes[id.as_str()].state, NodeState::Ready);
            prop_assert_eq!(&nodes[id.as_str()].compute_target, &run.compute_target);
        }
    }

    // Backfill leaves no room unused: a single-container run waiting for
    // room finds none on any unreserved Ready node of its target.
    for waiting in &plan.waiting {
        let run = runs[&waiting.run_id];
        match &waiting.reason {
            WaitReason::NotEnoughFree { .. }
            | WaitReason::NoNodeFitsAll { .. }
            | WaitReason::TooLarge { .. }
                if run.containers.len() == 1 =>
            {
                let demand = &run.containers[0];
                let room = left.iter().find(|(id, l)| {
                    let node = nodes[*id];
                    node.state == NodeState::Ready
                        && node.compute_target == run.compute_target
                        && !reserved.contains(*id)
                        && l.gpus.len() >= demand.gpus as usize
                        && l.mcpu >= i128::from(demand_mcpu(demand.cpus))
                        && l.memory_mb >= i128::from(demand.memory_mb)
                        && l.ports.is_none_or(|p| p >= i128::from(demand.ports))
                });
                prop_assert!(
                    room.is_none(),
                    "{} waits but fits on {:?}",
                    run.id,
                    room.map(|r| r.0)
                );
            }
            WaitReason::UnknownComputeTarget { target } => {
                prop_assert!(nodes.values().all(|n| &n.compute_target != target));
            }
            WaitReason::NoReadyNode { target } => {
                prop_assert!(nodes
                    .values()
                    .all(|n| &n.compute_target != target || n.state != NodeState::Ready));
            }
            WaitReason::RunQuota { limit, .. } => {
                let state = input.workspaces[&run.workspace_id];
                let running = u64::from(state.running_runs)
                    + placed_runs.get(&run.workspace_id).copied().unwrap_or(0);
                prop_assert!(running >= u64::from(*limit));
            }
            WaitReason::GpuQuota { limit, needs, .. } => {
                let state = input.workspaces[&run.workspace_id];
                let in_use = u64::from(state.gpus_in_use)
                    + placed_gpus.get(&run.workspace_id).copied().unwrap_or(0);
                prop_assert!(in_use + needs > u64::from(*limit));
            }
            _ => {}
        }
        prop_assert!(!waiting.reason.to_string().is_empty());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        // Keep the source tree untouched: a failure prints its input.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_rule_holds_on_random_clusters(input in arb_input()) {
        let plan = plan(&input);
        check(&input, &plan)?;
        // Deterministic, and blind to the order of nodes and runs.
        prop_assert_eq!(&plan, &super::plan(&input));
        let mut reversed = input.clone();
        reversed.nodes.reverse();
        reversed.runs.reverse();
        prop_assert_eq!(&plan, &super::plan(&reversed));
    }
}
