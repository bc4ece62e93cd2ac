//! The Ready nodes of each compute target, indexed by free GPU count then
//! free CPU, so a best fit is found without looking at every node.

use std::collections::{BTreeMap, BTreeSet};

use super::{Node, NodeState};

/// Slack when turning CPUs into thousandths, so `0.7 * 1000.0` (which is
/// `700.0000000000001` or `699.9999999999999` in floating point) stays 700.
const CPU_ROUNDING_SLACK: f64 = 1e-6;

/// A container's demand in integer units: CPUs in thousandths, and u64
/// everywhere so sums over a gang cannot overflow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Need {
    pub gpus: u64,
    pub mcpu: u64,
    pub memory_mb: u64,
    pub ports: u64,
}

impl Need {
    /// Whether `self` asks for at least as much as `other` of everything.
    pub fn covers(&self, other: &Need) -> bool {
        self.gpus >= other.gpus
            && self.mcpu >= other.mcpu
            && self.memory_mb >= other.memory_mb
            && self.ports >= other.ports
    }

    /// Both demands together.
    pub fn plus(self, other: Need) -> Need {
        Need {
            gpus: self.gpus.saturating_add(other.gpus),
            mcpu: self.mcpu.saturating_add(other.mcpu),
            memory_mb: self.memory_mb.saturating_add(other.memory_mb),
            ports: self.ports.saturating_add(other.ports),
        }
    }
}

/// Thousandths of a CPU a demand takes, rounded up so rounding never
/// oversubscribes.
pub(super) fn demand_mcpu(cpus: f64) -> u64 {
    // `as` saturates: huge demands become u64::MAX and fit nowhere.
    (cpus * 1000.0 - CPU_ROUNDING_SLACK).ceil().max(0.0) as u64
}

/// Thousandths of a CPU a node offers, rounded down; NaN and negatives are 0.
pub(super) fn free_mcpu(cpus: f64) -> u64 {
    (cpus * 1000.0 + CPU_ROUNDING_SLACK).floor().max(0.0) as u64
}

/// One Ready node and what is still free on it.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    /// Its position in the input's nodes.
    pub node: usize,
    /// Its compute target's position in [`Cluster::targets`].
    pub target: usize,
    /// Free GPU indexes, ascending, without duplicates.
    pub free_gpus: Vec<u32>,
    pub free_mcpu: u64,
    pub free_memory_mb: u64,
    /// `u64::MAX` when the node does not count ports.
    pub free_ports: u64,
    /// Whole capacity (ports unlimited), each at least what is free.
    pub total: Need,
    /// Held for a starving run: skipped unless a search includes reserved
    /// nodes.
    pub reserved: bool,
}

impl Slot {
    /// What is free, as a [`Need`].
    pub fn free(&self) -> Need {
        Need {
            gpus: self.free_gpus.len() as u64,
            mcpu: self.free_mcpu,
            memory_mb: self.free_memory_mb,
            ports: self.free_ports,
        }
    }

    fn fits(&self, need: &Need, include_reserved: bool) -> bool {
        (include_reserved || !self.reserved) && self.free().covers(need)
    }

    fn key(&self, slot: usize) -> (u64, usize) {
        (self.free_mcpu, slot)
    }
}

/// A reservation held in this pass.
#[derive(Debug, Clone)]
pub(super) struct Held {
    /// The run's position in the input.
    pub run: usize,
    /// The reserved slots.
    pub slots: Vec<usize>,
}

/// One compute target.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub name: String,
    /// Its Ready nodes' slots, ascending (that is, by node id).
    pub slots: Vec<usize>,
    /// Per resource, the largest total of any Ready node.
    pub largest_total: Need,
    /// `buckets[k]` holds `(free_mcpu, slot)` of the Ready nodes with `k`
    /// free GPUs: a best fit walks up from the GPUs needed and, inside a
    /// bucket, starts at the CPUs needed.
    buckets: Vec<BTreeSet<(u64, usize)>>,
    pub reservation: Option<Held>,
}

/// Every Ready node, grouped by compute target.
#[derive(Debug, Clone)]
pub(super) struct Cluster {
    pub slots: Vec<Slot>,
    pub targets: Vec<Target>,
}

impl Cluster {
    /// Indexes the nodes; returns the cluster and each target name's
    /// position (targets whose nodes are all Cordoned or Down are listed,
    /// with no slot).
    pub fn new(nodes: &[Node]) -> (Cluster, BTreeMap<&str, usize>) {
        // Node id order, not input order, breaks ties, so the plan does not
        // depend on how the caller listed the nodes.
        let mut order: Vec<usize> = (0..nodes.len()).collect();
        order.sort_by(|&a, &b| nodes[a].id.cmp(&nodes[b].id).then(a.cmp(&b)));

        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        let mut targets: Vec<Target> = Vec::new();
        let mut slots: Vec<Slot> = Vec::new();
        for &n in &order {
            let node = &nodes[n];
            let t = *names
                .entry(node.compute_target.as_str())
                .or_insert_with(|| {
                    targets.push(Target {
                        name: node.compute_target.clone(),
                        slots: Vec::new(),
                        largest_total: Need {
                            ports: u64::MAX,
                            ..Need::default()
                        },
                        buckets: Vec::new(),
                        reservation: None,
                    });
                    targets.len() - 1
                });
            if node.state != NodeState::Ready {
                continue;
            }
            let mut free_gpus = node.free_gpus.clone();
            free_gpus.sort_unstable();
            free_gpus.dedup();
            let mcpu = free_mcpu(node.free_cpus);
            let total = Need {
                gpus: u64::from(node.total.gpus).max(free_gpus.len() as u64),
                mcpu: free_mcpu(node.total.cpus).max(mcpu),
                memory_mb: node.total.memory_mb.max(node.free_memory_mb),
                // A drained node's port count is not known: ports never
                // make a run too large or stop a reservation.
                ports: u64::MAX,
            };
            let slot = Slot {
                node: n,
                target: t,
                free_gpus,
                free_mcpu: mcpu,
                free_memory_mb: node.free_memory_mb,
                free_ports: node.free_ports.map_or(u64::MAX, u64::from),
                total,
                reserved: false,
            };
            let target = &mut targets[t];
            let largest = &mut target.largest_total;
            largest.gpus = largest.gpus.max(total.gpus);
            largest.mcpu = largest.mcpu.max(total.mcpu);
            largest.memory_mb = largest.memory_mb.max(total.memory_mb);
            let k = slot.free_gpus.len();
            if target.buckets.len() <= k {
                target.buckets.resize_with(k + 1, BTreeSet::new);
            }
            target.buckets[k].insert(slot.key(slots.len()));
            target.slots.push(slots.len());
            slots.push(slot);
        }
        (Cluster { slots, targets }, names)
    }

    /// Whether slot `s` has room for `need`.
    pub fn fits(&self, s: usize, need: &Need, include_reserved: bool) -> bool {
        self.slots[s].fits(need, include_reserved)
    }

    /// The best fit for `need` on target `t`: fewest free GPUs that still
    /// fit, then least free CPU, then node id.
    pub fn best_fit(&self, t: usize, need: &Need, include_reserved: bool) -> Option<usize> {
        self.best_fit_except(t, need, include_reserved, &[])
    }

    /// [`Cluster::best_fit`] among the nodes not in `except`.
    pub fn best_fit_except(
        &self,
        t: usize,
        need: &Need,
        include_reserved: bool,
        except: &[usize],
    ) -> Option<usize> {
        let buckets = &self.targets[t].buckets;
        let from = usize::try_from(need.gpus).ok()?;
        buckets.get(from..)?.iter().find_map(|bucket| {
            bucket
                .range((need.mcpu, 0)..)
                .map(|&(_, s)| s)
                .find(|&s| !except.contains(&s) && self.fits(s, need, include_reserved))
        })
    }

    /// The node with the most room for `need` on target `t`: most free GPUs
    /// then most free CPU when it asks for GPUs; fewest free GPUs then most
    /// free CPU when it does not (a CPU-only container should not take a
    /// GPU node's room); then node id.
    pub fn roomiest_fit(
        &self,
        t: usize,
        need: &Need,
        include_reserved: bool,
        except: &[usize],
    ) -> Option<usize> {
        let buckets = &self.targets[t].buckets;
        let from = usize::try_from(need.gpus).ok()?;
        let candidates = buckets.get(from..)?;
        let in_bucket = |bucket: &BTreeSet<(u64, usize)>| {
            // Most free CPU first; among equals, the lowest node id (the
            // walk goes downwards, so keep the last fitting one).
            let mut best: Option<(u64, usize)> = None;
            for &(mcpu, s) in bucket.range((need.mcpu, 0)..).rev() {
                if best.is_some_and(|(most, _)| mcpu < most) {
                    break;
                }
                if !except.contains(&s) && self.fits(s, need, include_reserved) {
                    best = Some((mcpu, s));
                }
            }
            best.map(|(_, s)| s)
        };
        if need.gpus > 0 {
            candidates.iter().rev().find_map(in_bucket)
        } else {
            candidates.iter().find_map(in_bucket)
        }
    }

    /// Takes `need` from slot `s` (which must fit it); returns the GPU
    /// indexes taken, lowest first.
    pub fn take(&mut self, s: usize, need: &Need) -> Vec<u32> {
        self.unindex(s);
        let slot = &mut self.slots[s];
        let gpus: Vec<u32> = slot.free_gpus.drain(..need.gpus as usize).collect();
        slot.free_mcpu -= need.mcpu;
        slot.free_memory_mb -= need.memory_mb;
        slot.free_ports -= need.ports;
        self.index(s);
        gpus
    }

    /// Undoes [`Cluster::take`].
    pub fn give_back(&mut self, s: usize, need: &Need, gpus: &[u32]) {
        self.unindex(s);
        let slot = &mut self.slots[s];
        slot.free_gpus.extend_from_slice(gpus);
        slot.free_gpus.sort_unstable();
        slot.free_mcpu += need.mcpu;
        slot.free_memory_mb += need.memory_mb;
        slot.free_ports += need.ports;
        self.index(s);
    }

    fn unindex(&mut self, s: usize) {
        let slot = &self.slots[s];
        self.targets[slot.target].buckets[slot.free_gpus.len()].remove(&slot.key(s));
    }

    fn index(&mut self, s: usize) {
        let slot = &self.slots[s];
        self.targets[slot.target].buckets[slot.free_gpus.len()].insert(slot.key(s));
    }

    /// Per resource, the most any Ready node of target `t` has free,
    /// reserved nodes included.
    pub fn most_free(&self, t: usize) -> Need {
        self.targets[t]
            .slots
            .iter()
            .fold(Need::default(), |most, &s| {
                let free = self.slots[s].free();
                Need {
                    gpus: most.gpus.max(free.gpus),
                    mcpu: most.mcpu.max(free.mcpu),
                    memory_mb: most.memory_mb.max(free.memory_mb),
                    ports: most.ports.max(free.ports),
                }
            })
    }
}
