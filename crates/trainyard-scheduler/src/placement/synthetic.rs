//! A deterministic synthetic cluster and queue, for benchmarks and tests.

use std::collections::BTreeMap;
use uuid::Uuid;

use super::{
    Capacity, ContainerDemand, Node, NodeState, PlacementConfig, PlacementInput, Quota, WaitingRun,
    WorkspaceState,
};

/// SplitMix64: a tiny seeded generator, so the input is the same on every
/// machine without a dependency.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A busy cluster of `nodes` nodes and `runs` waiting runs, the same for the
/// same `seed`: compute targets `gpu-a` and `gpu-b` (4 or 8 GPUs a node,
/// about half in use) and `cpu`, a few nodes Cordoned or Down, 50 workspaces
/// with a skewed share of the queue (some with quotas), three priorities,
/// runs of 0 to 8 GPUs, one run in ten a gang of 2 to 8 containers, and
/// some runs that have waited long enough to reserve nodes. Meant for
/// `plan(&synthetic_input(10_000, 1_000, 1))` in a benchmark.
pub fn synthetic_input(runs: usize, nodes: usize, seed: u64) -> PlacementInput {
    let mut mix = Mix(seed);
    let nodes: Vec<Node> = (0..nodes).map(|i| node(&mut mix, i)).collect();

    let workspace_count = 50;
    let workspace_id =
        |w: u64| Uuid::from_u128(0x5157_0000_0000_0000_0000_0000_0000_0000 | u128::from(w));
    let workspaces: BTreeMap<Uuid, WorkspaceState> = (0..workspace_count)
        .map(|w| {
            let quota = if mix.chance(30) {
                Quota {
                    max_gpus: Some(32 + mix.below(96) as u32),
                    max_runs: Some(10 + mix.below(40) as u32),
                }
            } else {
                Quota::default()
            };
            let state = WorkspaceState {
                running_runs: mix.below(20) as u32,
                gpus_in_use: mix.below(64) as u32,
                quota,
            };
            (workspace_id(w), state)
        })
        .collect();

    let runs = (0..runs)
        .map(|i| {
            // Squaring a uniform draw skews the queue towards the first
            // workspaces, as real queues are.
            let u = mix.below(1_000) as f64 / 1_000.0;
            let w = (u * u * workspace_count as f64) as u64;
            let compute_target = match mix.below(100) {
                0 => "gpu-old",
                1..=40 => "gpu-a",
                41..=80 => "gpu-b",
                _ => "cpu",
            }
            .to_string();
            let gang = compute_target != "cpu" && mix.chance(10);
            let containers = if compute_target == "cpu" {
                vec![cpu_container(&mut mix)]
            } else if gang {
                let size = 2 + mix.below(7) as usize;
                let gpus = mix.pick(&[1, 2, 4, 8]);
                vec![gpu_container(gpus); size]
            } else {
                vec![gpu_container(mix.pick(&[0, 1, 1, 1, 2, 2, 4, 8]))]
            };
            WaitingRun {
                id: Uuid::from_u128(0x7275_6E00_0000_0000_0000_0000_0000_0000 | i as u128),
                workspace_id: workspace_id(w),
                compute_target,
                priority: mix.pick(&[0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 10]),
                sequence: i as u64,
                waited_passes: mix.below(30) as u32,
                // Half the gangs are distributed runs, a container per node.
                spread: gang && mix.chance(50),
                containers,
            }
        })
        .collect();

    PlacementInput {
        nodes,
        runs,
        workspaces,
        config: PlacementConfig::default(),
    }
}

fn node(mix: &mut Mix, i: usize) -> Node {
    let (compute_target, gpus, cpus, memory_mb) = match mix.below(10) {
        0..=3 => ("gpu-a", 8, 96.0, 1_024_000),
        4..=7 => ("gpu-b", mix.pick(&[4, 8]), 64.0, 512_000),
        _ => ("cpu", 0, 128.0, 512_000),
    };
    let free_gpus: Vec<u32> = (0..gpus).filter(|_| mix.chance(50)).collect();
    let share = (free_gpus.len() as f64 + 1.0) / (f64::from(gpus) + 1.0);
    let state = match mix.below(100) {
        0..=2 => NodeState::Cordoned,
        3..=4 => NodeState::Down,
        _ => NodeState::Ready,
    };
    Node {
        id: format!("node-{i:05}"),
        compute_target: compute_target.to_string(),
        state,
        total: Capacity {
            gpus,
            cpus,
            memory_mb,
        },
        free_gpus,
        free_cpus: (cpus * share * 2.0).round() / 2.0,
        free_memory_mb: (memory_mb as f64 * share) as u64,
        free_ports: mix.chance(50).then(|| mix.below(64) as u32),
    }
}

fn gpu_container(gpus: u32) -> ContainerDemand {
    ContainerDemand {
        gpus,
        cpus: f64::from(gpus.max(1)) * 8.0,
        memory_mb: u64::from(gpus.max(1)) * 64_000,
        ports: u32::from(gpus > 0),
    }
}

fn cpu_container(mix: &mut Mix) -> ContainerDemand {
    ContainerDemand {
        gpus: 0,
        cpus: mix.pick(&[0.5, 1.0, 2.0, 4.0, 16.0]),
        memory_mb: mix.pick(&[2_000, 8_000, 32_000]),
        ports: 0,
    }
}
