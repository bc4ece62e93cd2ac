//! One test per rule and per reason text.

use super::*;

const T: &str = "gpucluster";

/// A Ready node of `gpucluster` with 8 GPUs, 64 CPUs and 512000 MiB in all,
/// and `free` GPUs free with everything else free.
fn node(id: &str, free: &[u32]) -> Node {
    Node {
        id: id.to_string(),
        compute_target: T.to_string(),
        state: NodeState::Ready,
        total: Capacity {
            gpus: 8,
            cpus: 64.0,
            memory_mb: 512_000,
        },
        free_gpus: free.to_vec(),
        free_cpus: 64.0,
        free_memory_mb: 512_000,
        free_ports: None,
    }
}

fn gpus(n: u32) -> Vec<u32> {
    (0..n).collect()
}

fn demand(gpus: u32) -> ContainerDemand {
    ContainerDemand {
        gpus,
        cpus: 1.0,
        memory_mb: 1_000,
        ports: 0,
    }
}

fn ws(n: u128) -> Uuid {
    Uuid::from_u128(0xAA00 + n)
}

/// Run `n` of workspace `w`, submitted `n`-th, asking for `g` GPUs.
fn run(n: u128, w: u128, g: u32) -> WaitingRun {
    WaitingRun {
        id: Uuid::from_u128(n),
        workspace_id: ws(w),
        compute_target: T.to_string(),
        priority: 0,
        sequence: n as u64,
        waited_passes: 0,
        containers: vec![demand(g)],
        spread: false,
    }
}

fn input(nodes: Vec<Node>, runs: Vec<WaitingRun>) -> PlacementInput {
    PlacementInput {
        nodes,
        runs,
        ..PlacementInput::default()
    }
}

fn placed(plan: &Plan, n: u128) -> Option<&Assignment> {
    plan.assignments
        .iter()
        .find(|a| a.run_id == Uuid::from_u128(n))
}

fn node_of(plan: &Plan, n: u128) -> &str {
    &placed(plan, n).expect("placed").containers[0].node_id
}

fn reason(plan: &Plan, n: u128) -> String {
    plan.waiting
        .iter()
        .find(|w| w.run_id == Uuid::from_u128(n))
        .expect("waiting")
        .reason
        .to_string()
}

fn placed_order(plan: &Plan) -> Vec<u128> {
    plan.assignments
        .iter()
        .map(|a| a.run_id.as_u128())
        .collect()
}

#[test]
fn best_fit_takes_the_fewest_free_gpus_then_the_least_free_cpu() {
    let mut c = node("c", &gpus(2));
    c.free_cpus = 16.0;
    let nodes = vec![node("a", &gpus(8)), node("b", &gpus(2)), c];
    let plan = plan(&input(nodes.clone(), vec![run(1, 1, 2)]));
    assert_eq!(node_of(&plan, 1), "c");
    let plan = super::plan(&input(nodes, vec![run(1, 1, 3)]));
    assert_eq!(node_of(&plan, 1), "a");
}

#[test]
fn cpu_only_runs_keep_off_nodes_with_free_gpus() {
    let nodes = vec![node("a", &gpus(8)), node("b", &[])];
    let plan = plan(&input(nodes, vec![run(1, 1, 0)]));
    assert_eq!(node_of(&plan, 1), "b");
}

#[test]
fn gpus_are_taken_lowest_index_first() {
    let plan = plan(&input(vec![node("a", &[7, 3, 5, 1])], vec![run(1, 1, 2)]));
    let placement = &placed(&plan, 1).unwrap().containers[0];
    assert_eq!(placement.gpus, [1, 3]);
    assert_eq!((placement.cpus, placement.memory_mb), (1.0, 1_000));
}

#[test]
fn a_gpu_goes_to_one_container_only() {
    let plan = plan(&input(
        vec![node("a", &[4])],
        vec![run(1, 1, 1), run(2, 1, 1)],
    ));
    assert_eq!(placed(&plan, 1).unwrap().containers[0].gpus, [4]);
    assert!(placed(&plan, 2).is_none());
    assert_eq!(
        reason(&plan, 2),
        "needs 1 GPU; the largest free on gpucluster is 0"
    );
}

#[test]
fn the_gpu_reason_names_the_largest_free() {
    let plan = plan(&input(
        vec![node("a", &[0]), node("b", &[3])],
        vec![run(1, 1, 2)],
    ));
    assert_eq!(
        reason(&plan, 1),
        "needs 2 GPUs; the largest free on gpucluster is 1"
    );
}

#[test]
fn fractional_cpus_add_up_exactly_and_never_go_below_zero() {
    let mut a = node("a", &[]);
    a.free_cpus = 1.0;
    let runs: Vec<WaitingRun> = (1..=11)
        .map(|n| {
            let mut r = run(n, n, 0);
            r.containers[0].cpus = 0.1;
            r
        })
        .collect();
    let plan = plan(&input(vec![a], runs));
    assert_eq!(plan.assignments.len(), 10);
    assert_eq!(
        reason(&plan, 11),
        "needs 0.1 CPUs; the most free on a node of gpucluster is 0"
    );
}

#[test]
fn the_memory_reason_names_the_most_free() {
    let mut a = node("a", &gpus(8));
    a.free_memory_mb = 32_000;
    let mut r = run(1, 1, 1);
    r.containers[0].memory_mb = 64_000;
    let plan = plan(&input(vec![a], vec![r]));
    assert_eq!(
        reason(&plan, 1),
        "needs 64000 MiB of memory; the most free on a node of gpucluster is 32000"
    );
}

#[test]
fn ports_are_counted_where_the_node_counts_them() {
    let mut a = node("a", &gpus(8));
    a.free_ports = Some(1);
    let runs: Vec<WaitingRun> = (1..=2)
        .map(|n| {
            let mut r = run(n, n, 1);
            r.containers[0].ports = 1;
            r
        })
        .collect();
    let plan = plan(&input(vec![a], runs.clone()));
    assert_eq!(plan.assignments.len(), 1);
    assert_eq!(
        reason(&plan, 2),
        "needs 1 port; the most free on a node of gpucluster is 0"
    );
    // Not counted: ports never limit.
    let plan = super::plan(&input(vec![node("a", &gpus(8))], runs));
    assert_eq!(plan.assignments.len(), 2);
}

#[test]
fn cordoned_and_down_nodes_take_nothing() {
    let mut cordoned = node("a", &gpus(8));
    cordoned.state = NodeState::Cordoned;
    let mut down = node("b", &gpus(8));
    down.state = NodeState::Down;
    let nodes = vec![cordoned.clone(), down.clone(), node("c", &[])];
    let plan = plan(&input(nodes, vec![run(1, 1, 1)]));
    assert!(plan.assignments.is_empty());
    assert_eq!(
        reason(&plan, 1),
        "needs 1 GPU; the largest free on gpucluster is 0"
    );
    let plan = super::plan(&input(vec![cordoned, down], vec![run(1, 1, 1)]));
    assert_eq!(
        reason(&plan, 1),
        "no Ready node in compute target gpucluster"
    );
}

#[test]
fn runs_stay_in_their_compute_target() {
    let mut other = node("z", &gpus(8));
    other.compute_target = "other".into();
    let mut elsewhere = run(2, 1, 1);
    elsewhere.compute_target = "other".into();
    let plan = plan(&input(vec![other], vec![run(1, 1, 1), elsewhere]));
    assert_eq!(reason(&plan, 1), "no node in compute target gpucluster");
    assert_eq!(node_of(&plan, 2), "z");
}

#[test]
fn a_run_larger_than_any_node_says_so() {
    let plan = plan(&input(vec![node("a", &gpus(8))], vec![run(1, 1, 16)]));
    assert_eq!(
        reason(&plan, 1),
        "needs 16 GPUs; the largest Ready node of gpucluster has 8 in all"
    );
    let mut r = run(2, 1, 1);
    r.containers[0].memory_mb = 600_000;
    let plan = super::plan(&input(vec![node("a", &gpus(8))], vec![r]));
    assert_eq!(
        reason(&plan, 2),
        "needs 600000 MiB of memory; the largest Ready node of gpucluster has 512000 in all"
    );
}

#[test]
fn no_node_with_everything_at_once_is_its_own_reason() {
    let mut a = node("a", &gpus(2));
    a.free_cpus = 1.0;
    let b = node("b", &[]);
    let mut r = run(1, 1, 2);
    r.containers[0].cpus = 8.0;
    let plan = plan(&input(vec![a, b], vec![r]));
    assert_eq!(
        reason(&plan, 1),
        "needs 2 GPUs, 8 CPUs and 1000 MiB of memory on one node; \
         no Ready node of gpucluster has all of that free at once"
    );
}

#[test]
fn bad_demands_wait_with_a_reason() {
    let mut nan = run(1, 1, 0);
    nan.containers[0].cpus = f64::NAN;
    let mut empty = run(2, 1, 0);
    empty.containers.clear();
    let plan = plan(&input(vec![node("a", &gpus(8))], vec![nan, empty]));
    assert_eq!(
        reason(&plan, 1),
        "container 0: cpus must be a finite number of at least 0, not NaN"
    );
    assert_eq!(reason(&plan, 2), "the run has no container to place");
}

#[test]
fn higher_priority_goes_first() {
    let mut urgent = run(2, 2, 1);
    urgent.priority = 5;
    let plan = plan(&input(vec![node("a", &[0])], vec![run(1, 1, 1), urgent]));
    assert!(placed(&plan, 2).is_some());
    assert!(placed(&plan, 1).is_none());
}

#[test]
fn the_workspace_using_least_goes_next() {
    let mut i = input(vec![node("a", &[0])], vec![run(1, 1, 1), run(2, 2, 1)]);
    i.workspaces.insert(
        ws(1),
        WorkspaceState {
            running_runs: 3,
            ..Default::default()
        },
    );
    i.workspaces.insert(
        ws(2),
        WorkspaceState {
            running_runs: 1,
            ..Default::default()
        },
    );
    assert_eq!(placed_order(&plan(&i)), [2]);
    // Same runs: GPUs decide.
    i.workspaces.get_mut(&ws(1)).unwrap().running_runs = 1;
    i.workspaces.get_mut(&ws(1)).unwrap().gpus_in_use = 0;
    i.workspaces.get_mut(&ws(2)).unwrap().gpus_in_use = 4;
    assert_eq!(placed_order(&plan(&i)), [1]);
}

#[test]
fn workspaces_take_turns_and_keep_submission_order_inside() {
    let runs = vec![
        run(4, 1, 1),
        run(1, 1, 1),
        run(2, 1, 1),
        run(3, 2, 1),
        run(5, 2, 1),
        run(6, 2, 1),
    ];
    let plan = plan(&input(vec![node("a", &gpus(4))], runs));
    assert_eq!(placed_order(&plan), [1, 3, 2, 5]);
}

#[test]
fn a_run_that_does_not_fit_does_not_block_smaller_ones() {
    let plan = plan(&input(
        vec![node("a", &gpus(2))],
        vec![run(1, 1, 4), run(2, 1, 1)],
    ));
    assert!(placed(&plan, 2).is_some());
    assert_eq!(
        reason(&plan, 1),
        "needs 4 GPUs; the largest free on gpucluster is 1"
    );
    assert!(plan.reservations.is_empty());
}

/// Node `a` has 2 of 8 GPUs free, `b` 1; run 1 needs 4 and runs 2 to 4 need 1.
fn starving(waited: u32, config: PlacementConfig) -> Plan {
    let mut big = run(1, 1, 4);
    big.waited_passes = waited;
    let runs = vec![big, run(2, 2, 1), run(3, 3, 1), run(4, 4, 1)];
    let mut i = input(vec![node("a", &[0, 1]), node("b", &[5])], runs);
    i.config = config;
    plan(&i)
}

#[test]
fn a_run_that_waited_long_reserves_nodes_and_smaller_runs_keep_off() {
    let config = PlacementConfig {
        reserve_after_passes: Some(3),
    };
    let plan = starving(3, config);
    assert_eq!(
        plan.reservations,
        [Reservation {
            run_id: Uuid::from_u128(1),
            compute_target: T.into(),
            node_ids: vec!["a".into()],
        }]
    );
    assert_eq!(placed_order(&plan), [2]);
    assert_eq!(node_of(&plan, 2), "b");
    assert_eq!(
        reason(&plan, 3),
        format!(
            "would fit, but node a of gpucluster is reserved for run {}, \
             which has waited longer, so that it is not starved",
            Uuid::from_u128(1)
        )
    );
    assert_eq!(
        reason(&plan, 1),
        "needs 4 GPUs; the largest free on gpucluster is 2"
    );

    // Not yet starving, or reservations off: plain backfill.
    for plan in [
        starving(2, config),
        starving(
            50,
            PlacementConfig {
                reserve_after_passes: None,
            },
        ),
    ] {
        assert!(plan.reservations.is_empty());
        assert_eq!(placed_order(&plan), [2, 3, 4]);
    }
}

#[test]
fn one_reservation_per_compute_target() {
    let mut first = run(1, 1, 4);
    first.waited_passes = 99;
    let mut second = run(2, 2, 8);
    second.waited_passes = 99;
    let nodes = vec![node("a", &[0, 1]), node("b", &[5])];
    let plan = plan(&input(nodes, vec![first, second, run(3, 3, 1)]));
    assert_eq!(plan.reservations.len(), 1);
    assert_eq!(plan.reservations[0].run_id, Uuid::from_u128(1));
    assert_eq!(node_of(&plan, 3), "b");
}

#[test]
fn a_gang_spreads_around_a_reserved_node() {
    let mut big = run(1, 1, 8);
    big.waited_passes = 99;
    let nodes = vec![node("a", &gpus(6)), node("b", &[0, 1]), node("c", &[0, 1])];
    let plan = plan(&input(nodes, vec![big, gang(2, 2, &[2, 2])]));
    assert_eq!(plan.reservations[0].node_ids, ["a"]);
    let on: Vec<&str> = placed(&plan, 2)
        .unwrap()
        .containers
        .iter()
        .map(|c| c.node_id.as_str())
        .collect();
    assert_eq!(on, ["b", "c"]);
}

#[test]
fn a_gpu_quota_is_a_hard_limit_counting_this_pass() {
    let mut i = input(
        vec![node("a", &gpus(8))],
        vec![run(1, 1, 1), run(2, 1, 1), run(3, 1, 1), run(4, 1, 0)],
    );
    i.workspaces.insert(
        ws(1),
        WorkspaceState {
            running_runs: 6,
            gpus_in_use: 6,
            quota: Quota {
                max_gpus: Some(8),
                max_runs: None,
            },
        },
    );
    let plan = plan(&i);
    assert_eq!(placed_order(&plan), [1, 2, 4]);
    assert_eq!(
        reason(&plan, 3),
        "workspace quota: 8 GPUs at once, 8 in use; this run needs 1"
    );
}

#[test]
fn a_run_quota_is_a_hard_limit() {
    let mut i = input(vec![node("a", &gpus(8))], vec![run(1, 1, 1), run(2, 1, 0)]);
    i.workspaces.insert(
        ws(1),
        WorkspaceState {
            quota: Quota {
                max_gpus: None,
                max_runs: Some(1),
            },
            ..Default::default()
        },
    );
    let plan = plan(&i);
    assert_eq!(placed_order(&plan), [1]);
    assert_eq!(
        reason(&plan, 2),
        "workspace quota: 1 run at once, 1 running"
    );
}

fn gang(n: u128, w: u128, sizes: &[u32]) -> WaitingRun {
    WaitingRun {
        containers: sizes.iter().map(|&g| demand(g)).collect(),
        spread: false,
        ..run(n, w, 0)
    }
}

#[test]
fn a_gang_is_placed_all_or_none() {
    let nodes = vec![node("a", &gpus(4)), node("b", &gpus(4))];
    let plan = plan(&input(nodes.clone(), vec![gang(1, 1, &[4, 4, 4])]));
    assert!(plan.assignments.is_empty());
    assert_eq!(
        reason(&plan, 1),
        "gang of 3 containers: only 2 fit on gpucluster at once, \
         and all start together or none"
    );
    // A run behind it backfills; the reason tells the state after the pass.
    let plan = super::plan(&input(nodes, vec![gang(1, 1, &[4, 4, 4]), run(2, 2, 1)]));
    assert_eq!(placed_order(&plan), [2]);
    assert_eq!(
        reason(&plan, 1),
        "gang of 3 containers: only 1 fit on gpucluster at once, \
         and all start together or none"
    );
}

#[test]
fn a_gang_packs_onto_few_nodes() {
    let nodes = vec![
        node("a", &gpus(8)),
        node("b", &gpus(2)),
        node("c", &gpus(4)),
    ];
    let plan = plan(&input(nodes.clone(), vec![gang(1, 1, &[2, 2])]));
    let on: Vec<&str> = placed(&plan, 1)
        .unwrap()
        .containers
        .iter()
        .map(|c| c.node_id.as_str())
        .collect();
    assert_eq!(on, ["c", "c"]);
    assert_eq!(placed(&plan, 1).unwrap().containers[1].gpus, [2, 3]);

    let plan = super::plan(&input(nodes, vec![gang(1, 1, &[4, 4, 4])]));
    let mut on: Vec<&str> = placed(&plan, 1)
        .unwrap()
        .containers
        .iter()
        .map(|c| c.node_id.as_str())
        .collect();
    on.sort_unstable();
    on.dedup();
    assert_eq!(on, ["a", "c"]);
}

#[test]
fn a_gangs_placements_follow_its_containers() {
    let plan = plan(&input(
        vec![node("a", &gpus(8))],
        vec![gang(1, 1, &[1, 4, 2])],
    ));
    let sizes: Vec<usize> = placed(&plan, 1)
        .unwrap()
        .containers
        .iter()
        .map(|c| c.gpus.len())
        .collect();
    assert_eq!(sizes, [1, 4, 2]);
}

#[test]
fn a_gang_reason_names_the_container() {
    let plan = plan(&input(
        vec![node("a", &gpus(8))],
        vec![gang(1, 1, &[1, 16]), gang(2, 1, &[2, 2])],
    ));
    assert_eq!(
        reason(&plan, 1),
        "one of its 2 containers needs 16 GPUs; the largest Ready node of gpucluster has 8 in all"
    );
    assert!(placed(&plan, 2).is_some());
}

#[test]
fn a_single_run_is_not_starved_by_a_thousand_queued_ones() {
    let mut runs: Vec<WaitingRun> = (0..1_000).map(|n| run(n, 1, 1)).collect();
    runs.push(run(1_000, 2, 1));
    let plan = plan(&input(vec![node("a", &gpus(4))], runs));
    assert_eq!(plan.assignments.len(), 4);
    assert!(placed(&plan, 1_000).is_some());
    assert_eq!(plan.waiting.len(), 997);
}

#[test]
fn the_plan_depends_on_the_input_not_its_order() {
    let i = synthetic_input(600, 60, 7);
    let plan = plan(&i);
    assert!(!plan.assignments.is_empty() && !plan.waiting.is_empty());
    assert_eq!(plan, super::plan(&i.clone()));
    let mut reversed = i.clone();
    reversed.nodes.reverse();
    reversed.runs.reverse();
    assert_eq!(plan, super::plan(&reversed));
}

/// `cargo test -p trainyard-scheduler --release -- --ignored --nocapture`
#[test]
#[ignore = "timing; run by hand"]
fn ten_thousand_runs_on_a_thousand_nodes() {
    let input = synthetic_input(10_000, 1_000, 1);
    let mut best = std::time::Duration::MAX;
    let mut plan = Plan::default();
    for _ in 0..5 {
        let start = std::time::Instant::now();
        plan = super::plan(&input);
        best = best.min(start.elapsed());
    }
    println!(
        "10,000 runs x 1,000 nodes: {} placed, {} waiting, {} reservations, best of 5: {best:?}",
        plan.assignments.len(),
        plan.waiting.len(),
        plan.reservations.len()
    );
    assert!(best < std::time::Duration::from_secs(1));
}

#[test]
fn a_spread_gang_takes_a_node_per_container() {
    let nodes = vec![
        node("a", &gpus(8)),
        node("b", &gpus(2)),
        node("c", &gpus(4)),
    ];
    let spread = |n, sizes: &[u32]| WaitingRun {
        spread: true,
        ..gang(n, 1, sizes)
    };
    // Packed, both would go to c; spread, each takes the best fit left.
    let plan = plan(&input(nodes.clone(), vec![spread(1, &[2, 2])]));
    let on: Vec<&str> = placed(&plan, 1)
        .unwrap()
        .containers
        .iter()
        .map(|c| c.node_id.as_str())
        .collect();
    assert_eq!(on, ["b", "c"]);

    // Three containers of 4 GPUs: only a and c hold 4, so it waits.
    let plan = super::plan(&input(nodes, vec![spread(1, &[4, 4, 4])]));
    assert!(plan.assignments.is_empty());
    assert_eq!(
        reason(&plan, 1),
        "gang of 3 containers: only 2 fit on gpucluster at once, \
         and all start together or none"
    );
}
