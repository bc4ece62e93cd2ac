//! Why a run waits, as data and as the sentence shown to people.

use std::fmt;
use uuid::Uuid;

/// One resource a container asks for more of than a node offers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shortage {
    /// GPUs on one node.
    Gpus {
        /// What one container needs.
        needs: u32,
        /// The most any node offers.
        available: u32,
    },
    /// CPU cores on one node.
    Cpus {
        /// What one container needs.
        needs: f64,
        /// The most any node offers.
        available: f64,
    },
    /// Memory in MiB on one node.
    MemoryMb {
        /// What one container needs.
        needs: u64,
        /// The most any node offers.
        available: u64,
    },
    /// Ports on one node.
    Ports {
        /// What one container needs.
        needs: u32,
        /// The most any node offers.
        available: u32,
    },
}

/// Why a run stays waiting. `Display` gives the sentence for people, e.g.
/// `needs 2 GPUs; the largest free on gpucluster is 1`.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitReason {
    /// The run lists no container.
    NoContainers,
    /// A container's demand cannot be met by any node (e.g. NaN CPUs).
    InvalidDemand {
        /// Its position in the run's containers.
        container: usize,
        /// What is wrong.
        problem: String,
    },
    /// No node at all belongs to the compute target.
    UnknownComputeTarget {
        /// The run's compute target.
        target: String,
    },
    /// The compute target has nodes, but none is Ready.
    NoReadyNode {
        /// The run's compute target.
        target: String,
    },
    /// A container is larger than the largest Ready node of the target, even
    /// empty: it cannot start until a larger node joins.
    TooLarge {
        /// The run's compute target.
        target: String,
        /// How many containers the run has (the text differs for gangs).
        containers: usize,
        /// The resource at fault, with the largest node's total.
        shortage: Shortage,
    },
    /// The workspace's GPU quota would be exceeded.
    GpuQuota {
        /// Most GPUs at once.
        limit: u32,
        /// GPUs its runs hold, including those placed earlier in this pass.
        in_use: u64,
        /// GPUs this run needs.
        needs: u64,
    },
    /// The workspace's run quota is reached.
    RunQuota {
        /// Most runs at once.
        limit: u32,
        /// Its runs holding nodes, including those placed in this pass.
        running: u64,
    },
    /// No Ready node of the target has enough of one resource free now.
    NotEnoughFree {
        /// The run's compute target.
        target: String,
        /// How many containers the run has.
        containers: usize,
        /// The resource at fault, with the most any node has free.
        shortage: Shortage,
    },
    /// Each resource is free somewhere, but no node has all of a container's
    /// demand free at once.
    NoNodeFitsAll {
        /// The run's compute target.
        target: String,
        /// How many containers the run has.
        containers: usize,
        /// GPUs of the container that does not fit.
        gpus: u32,
        /// CPUs of that container.
        cpus: f64,
        /// Memory in MiB of that container.
        memory_mb: u64,
    },
    /// Every container of the gang fits somewhere alone, but not all at once.
    GangDoesNotFit {
        /// The run's compute target.
        target: String,
        /// How many containers the gang has.
        containers: usize,
        /// How many could be placed together before one did not fit.
        placeable: usize,
    },
    /// The run would fit, but only on nodes reserved for a run that has
    /// waited longer (see the reservation rule).
    HeldForReservation {
        /// The run's compute target.
        target: String,
        /// The run the nodes are reserved for.
        reserved_for: Uuid,
        /// The reserved nodes.
        nodes: Vec<String>,
    },
}

impl WaitReason {
    /// The same reason with target and node ids replaced by what people call
    /// them (the placement works on unique ids, people read names).
    pub fn renamed(
        mut self,
        target_name: impl Fn(&str) -> String,
        node_name: impl Fn(&str) -> String,
    ) -> WaitReason {
        match &mut self {
            WaitReason::UnknownComputeTarget { target }
            | WaitReason::NoReadyNode { target }
            | WaitReason::TooLarge { target, .. }
            | WaitReason::NotEnoughFree { target, .. }
            | WaitReason::NoNodeFitsAll { target, .. }
            | WaitReason::GangDoesNotFit { target, .. } => *target = target_name(target),
            WaitReason::HeldForReservation { target, nodes, .. } => {
                *target = target_name(target);
                for node in nodes.iter_mut() {
                    *node = node_name(node);
                }
            }
            WaitReason::NoContainers
            | WaitReason::InvalidDemand { .. }
            | WaitReason::GpuQuota { .. }
            | WaitReason::RunQuota { .. } => {}
        }
        self
    }
}

/// `1 GPU`, `2 GPUs`.
fn count(n: impl Into<f64> + fmt::Display + Copy, one: &str, many: &str) -> String {
    if n.into() == 1.0 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

impl Shortage {
    /// `2 GPUs`, `0.5 CPUs`, `64000 MiB of memory`.
    fn needs_text(&self) -> String {
        match *self {
            Shortage::Gpus { needs, .. } => count(needs, "GPU", "GPUs"),
            Shortage::Cpus { needs, .. } => count(needs, "CPU", "CPUs"),
            Shortage::MemoryMb { needs, .. } => format!("{needs} MiB of memory"),
            Shortage::Ports { needs, .. } => count(needs, "port", "ports"),
        }
    }

    /// The amount on offer, without unit (the sentence names it already).
    fn available_text(&self) -> String {
        match *self {
            Shortage::Gpus { available, .. } | Shortage::Ports { available, .. } => {
                available.to_string()
            }
            Shortage::Cpus { available, .. } => available.to_string(),
            Shortage::MemoryMb { available, .. } => available.to_string(),
        }
    }
}

/// `needs …` for one container, `one of its 4 containers needs …` for gangs.
fn subject(containers: usize) -> String {
    if containers > 1 {
        format!("one of its {containers} containers needs")
    } else {
        "needs".to_string()
    }
}

impl fmt::Display for WaitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitReason::NoContainers => write!(f, "the run has no container to place"),
            WaitReason::InvalidDemand { container, problem } => {
                write!(f, "container {container}: {problem}")
            }
            WaitReason::UnknownComputeTarget { target } => {
                write!(f, "no node in compute target {target}")
            }
            WaitReason::NoReadyNode { target } => {
                write!(f, "no Ready node in compute target {target}")
            }
            WaitReason::TooLarge {
                target,
                containers,
                shortage,
            } => write!(
                f,
                "{} {}; the largest Ready node of {target} has {} in all",
                subject(*containers),
                shortage.needs_text(),
                shortage.available_text()
            ),
            WaitReason::GpuQuota {
                limit,
                in_use,
                needs,
            } => write!(
                f,
                "workspace quota: {} at once, {in_use} in use; this run needs {needs}",
                count(*limit, "GPU", "GPUs")
            ),
            WaitReason::RunQuota { limit, running } => write!(
                f,
                "workspace quota: {} at once, {running} running",
                count(*limit, "run", "runs")
            ),
            WaitReason::NotEnoughFree {
                target,
                containers,
                shortage,
            } => {
                let place = match shortage {
                    Shortage::Gpus { .. } => format!("the largest free on {target} is"),
                    _ => format!("the most free on a node of {target} is"),
                };
                write!(
                    f,
                    "{} {}; {place} {}",
                    subject(*containers),
                    shortage.needs_text(),
                    shortage.available_text()
                )
            }
            WaitReason::NoNodeFitsAll {
                target,
                containers,
                gpus,
                cpus,
                memory_mb,
            } => write!(
                f,
                "{} {}, {} and {memory_mb} MiB of memory on one node; \
                 no Ready node of {target} has all of that free at once",
                subject(*containers),
                count(*gpus, "GPU", "GPUs"),
                count(*cpus, "CPU", "CPUs"),
            ),
            WaitReason::GangDoesNotFit {
                target,
                containers,
                placeable,
            } => write!(
                f,
                "gang of {containers} containers: only {placeable} fit on {target} at once, \
                 and all start together or none"
            ),
            WaitReason::HeldForReservation {
                target,
                reserved_for,
                nodes,
            } => write!(
                f,
                "would fit, but {} of {target} {} reserved for run {reserved_for}, \
                 which has waited longer, so that it is not starved",
                if nodes.len() == 1 {
                    format!("node {}", nodes[0])
                } else {
                    format!("nodes {}", nodes.join(", "))
                },
                if nodes.len() == 1 { "is" } else { "are" },
            ),
        }
    }
}
