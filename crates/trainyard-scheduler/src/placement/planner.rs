//! One pass: queue order, placement attempts, reservations, then reasons.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use uuid::Uuid;

use super::index::{demand_mcpu, Cluster, Held, Need};
use super::{
    Assignment, ContainerDemand, ContainerPlacement, PlacementInput, Plan, Reservation, Shortage,
    WaitReason, Waiting, WaitingRun,
};

/// Most failed single-container demands remembered per target. Capacity only
/// shrinks during a pass, so a demand covering one that failed fails too:
/// a queue of thousands of same-shaped runs costs one search, not thousands.
/// The bound keeps the check cheap when shapes are all different.
const FAILED_SHAPES_PER_TARGET: usize = 64;

/// A workspace's share: runs holding nodes, and their GPUs.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    runs: u64,
    gpus: u64,
}

/// Why a run was not placed, settled at the end of the pass.
enum Pending {
    /// Known at once (invalid, no node, too large, quota).
    Reason(WaitReason),
    /// No room now; the reason is worked out from the final state.
    NoRoom { target: usize, needs: Vec<Need> },
}

/// Containers taken so far: (container, slot, GPU indexes).
type Taken = Vec<(usize, usize, Vec<u32>)>;

/// A turn in the fair-share heap, smallest first: the workspace's runs,
/// GPUs, the sequence of its next run, its id, and its queue.
type Turn = Reverse<(u64, u64, u64, Uuid, usize)>;

/// The state of one pass.
pub(super) struct Planner<'a> {
    input: &'a PlacementInput,
    cluster: Cluster,
    /// Target name → position in `cluster.targets`.
    targets: BTreeMap<&'a str, usize>,
    usage: BTreeMap<Uuid, Usage>,
    /// Per target, single-container demands that did not fit.
    failed: Vec<Vec<Need>>,
    assignments: Vec<Assignment>,
    waiting: Vec<(usize, Pending)>,
}

impl<'a> Planner<'a> {
    /// Indexes the nodes and the workspaces' usage.
    pub fn new(input: &'a PlacementInput) -> Self {
        let (cluster, targets) = Cluster::new(&input.nodes);
        let usage = input
            .workspaces
            .iter()
            .map(|(id, ws)| {
                let usage = Usage {
                    runs: ws.running_runs.into(),
                    gpus: ws.gpus_in_use.into(),
                };
                (*id, usage)
            })
            .collect();
        Planner {
            input,
            failed: vec![Vec::new(); cluster.targets.len()],
            cluster,
            targets,
            usage,
            assignments: Vec::new(),
            waiting: Vec::new(),
        }
    }

    /// Runs the pass.
    pub fn run(mut self) -> Plan {
        let runs = &self.input.runs;
        // Priority, then workspace, then submission: each priority is a
        // contiguous slice, and in it each workspace's queue too.
        let mut order: Vec<usize> = (0..runs.len()).collect();
        order.sort_by(|&a, &b| {
            let (x, y) = (&runs[a], &runs[b]);
            y.priority
                .cmp(&x.priority)
                .then(x.workspace_id.cmp(&y.workspace_id))
                .then(x.sequence.cmp(&y.sequence))
                .then(x.id.cmp(&y.id))
                .then(a.cmp(&b))
        });
        for level in order.chunk_by(|&a, &b| runs[a].priority == runs[b].priority) {
            self.schedule_level(level);
        }
        self.finish()
    }

    /// Fair share within one priority: the workspace using least takes the
    /// next turn, one run per turn, so a long queue cannot starve a short one.
    fn schedule_level(&mut self, level: &[usize]) {
        let runs = &self.input.runs;
        let queues: Vec<&[usize]> = level
            .chunk_by(|&a, &b| runs[a].workspace_id == runs[b].workspace_id)
            .collect();
        let mut next = vec![0; queues.len()];
        let mut heap: BinaryHeap<Turn> = queues
            .iter()
            .enumerate()
            .map(|(q, queue)| self.turn(queue[0], q))
            .collect();
        while let Some(Reverse((.., q))) = heap.pop() {
            let r = queues[q][next[q]];
            next[q] += 1;
            if let Err(pending) = self.try_place(r) {
                self.waiting.push((r, pending));
            }
            // Only this workspace's usage changed, so the other turns in the
            // heap are still right.
            if let Some(&head) = queues[q].get(next[q]) {
                heap.push(self.turn(head, q));
            }
        }
    }

    fn turn(&self, head: usize, q: usize) -> Turn {
        let run = &self.input.runs[head];
        let usage = self.usage_of(run.workspace_id);
        Reverse((usage.runs, usage.gpus, run.sequence, run.workspace_id, q))
    }

    fn usage_of(&self, workspace: Uuid) -> Usage {
        self.usage.get(&workspace).copied().unwrap_or_default()
    }

    /// Places run `r` now, or says why not.
    fn try_place(&mut self, r: usize) -> Result<(), Pending> {
        let input = self.input;
        let run = &input.runs[r];
        let needs = needs_of(run).map_err(Pending::Reason)?;
        let Some(&t) = self.targets.get(run.compute_target.as_str()) else {
            return Err(Pending::Reason(WaitReason::UnknownComputeTarget {
                target: run.compute_target.clone(),
            }));
        };
        let target = &self.cluster.targets[t];
        if target.slots.is_empty() {
            return Err(Pending::Reason(WaitReason::NoReadyNode {
                target: run.compute_target.clone(),
            }));
        }
        for (demand, need) in run.containers.iter().zip(&needs) {
            if let Some(shortage) = shortage(demand, need, &target.largest_total) {
                return Err(Pending::Reason(WaitReason::TooLarge {
                    target: run.compute_target.clone(),
                    containers: needs.len(),
                    shortage,
                }));
            }
        }
        if let Some(reason) = self.quota_block(run, &needs) {
            return Err(Pending::Reason(reason));
        }
        let failed = &self.failed[t];
        let known_not_to_fit = needs.iter().any(|n| failed.iter().any(|f| n.covers(f)));
        if !known_not_to_fit {
            match self.place(t, &needs, run.spread, false) {
                Ok(taken) => {
                    self.commit(r, &needs, taken);
                    return Ok(());
                }
                Err(_) if needs.len() == 1 && self.failed[t].len() < FAILED_SHAPES_PER_TARGET => {
                    self.failed[t].push(needs[0]);
                }
                Err(_) => {}
            }
        }
        self.maybe_reserve(r, t, &needs);
        Err(Pending::NoRoom { target: t, needs })
    }

    /// The workspace quota this run would break, if any.
    fn quota_block(&self, run: &WaitingRun, needs: &[Need]) -> Option<WaitReason> {
        let quota = self.input.workspaces.get(&run.workspace_id)?.quota;
        let used = self.usage_of(run.workspace_id);
        let gpus: u64 = needs.iter().map(|n| n.gpus).sum();
        if let Some(limit) = quota.max_gpus {
            // A CPU-only run never breaks a GPU quota, even one already
            // exceeded (e.g. lowered while runs were going).
            if gpus > 0 && used.gpus + gpus > u64::from(limit) {
                return Some(WaitReason::GpuQuota {
                    limit,
                    in_use: used.gpus,
                    needs: gpus,
                });
            }
        }
        if let Some(limit) = quota.max_runs {
            if used.runs >= u64::from(limit) {
                return Some(WaitReason::RunQuota {
                    limit,
                    running: used.runs,
                });
            }
        }
        None
    }

    /// Places every container of a run on target `t`, or none (then returns
    /// how many were placed before one did not fit). Largest container
    /// first; each goes to a node the run already uses if one fits, else to
    /// the best fit for all remaining containers together (so a gang packs
    /// onto one node when it can), else to the node with most room for it.
    /// One container alone is therefore a plain best fit. A spread gang's
    /// containers each take the best fit among the nodes it does not use yet.
    fn place(
        &mut self,
        t: usize,
        needs: &[Need],
        spread: bool,
        include_reserved: bool,
    ) -> Result<Taken, usize> {
        let mut order: Vec<usize> = (0..needs.len()).collect();
        order.sort_by(|&a, &b| needs[b].cmp(&needs[a]).then(a.cmp(&b)));
        // rest[i]: what containers order[i..] ask for together.
        let mut rest = vec![Need::default(); order.len() + 1];
        for i in (0..order.len()).rev() {
            rest[i] = rest[i + 1].plus(needs[order[i]]);
        }
        let mut taken: Taken = Vec::with_capacity(needs.len());
        let mut used: Vec<usize> = Vec::new();
        for (i, &c) in order.iter().enumerate() {
            let need = &needs[c];
            let cluster = &self.cluster;
            let chosen = if spread {
                cluster.best_fit_except(t, need, include_reserved, &used)
            } else {
                used.iter()
                    .copied()
                    .filter(|&s| cluster.fits(s, need, include_reserved))
                    .min_by_key(|&s| {
                        let slot = &cluster.slots[s];
                        (slot.free_gpus.len(), slot.free_mcpu, s)
                    })
                    .or_else(|| cluster.best_fit(t, &rest[i], include_reserved))
                    .or_else(|| {
                        // For the last container `rest[i]` is itself: no second look.
                        (i + 1 < order.len())
                            .then(|| cluster.roomiest_fit(t, need, include_reserved, &[]))
                            .flatten()
                    })
            };
            let Some(s) = chosen else {
                self.undo(needs, taken);
                return Err(i);
            };
            let gpus = self.cluster.take(s, need);
            if !used.contains(&s) {
                used.push(s);
            }
            taken.push((c, s, gpus));
        }
        Ok(taken)
    }

    fn undo(&mut self, needs: &[Need], taken: Taken) {
        for (c, s, gpus) in taken.into_iter().rev() {
            self.cluster.give_back(s, &needs[c], &gpus);
        }
    }

    fn commit(&mut self, r: usize, needs: &[Need], mut taken: Taken) {
        let input = self.input;
        let run = &input.runs[r];
        taken.sort_by_key(|&(c, ..)| c);
        let containers = taken
            .into_iter()
            .map(|(c, s, gpus)| {
                let demand = &run.containers[c];
                ContainerPlacement {
                    node_id: input.nodes[self.cluster.slots[s].node].id.clone(),
                    gpus,
                    cpus: demand.cpus,
                    memory_mb: demand.memory_mb,
                    ports: demand.ports,
                }
            })
            .collect();
        let usage = self.usage.entry(run.workspace_id).or_default();
        usage.runs += 1;
        usage.gpus += needs.iter().map(|n| n.gpus).sum::<u64>();
        self.assignments.push(Assignment {
            run_id: run.id,
            workspace_id: run.workspace_id,
            containers,
        });
    }

    /// Reserves nodes for run `r` when it has waited long enough and its
    /// target has no reservation yet in this pass.
    fn maybe_reserve(&mut self, r: usize, t: usize, needs: &[Need]) {
        let Some(after) = self.input.config.reserve_after_passes else {
            return;
        };
        if self.input.runs[r].waited_passes < after || self.cluster.targets[t].reservation.is_some()
        {
            return;
        }
        let Some(slots) = self.reservable(t, needs, self.input.runs[r].spread) else {
            return;
        };
        for &s in &slots {
            self.cluster.slots[s].reserved = true;
        }
        self.cluster.targets[t].reservation = Some(Held { run: r, slots });
    }

    /// Nodes whose whole capacity holds the run, largest container first,
    /// preferring nodes already chosen (to pack; a spread run takes a node
    /// per container), then those with the most free now (they drain
    /// soonest). `None` if the totals cannot hold it.
    fn reservable(&self, t: usize, needs: &[Need], spread: bool) -> Option<Vec<usize>> {
        let cluster = &self.cluster;
        let mut order: Vec<usize> = (0..needs.len()).collect();
        order.sort_by(|&a, &b| needs[b].cmp(&needs[a]).then(a.cmp(&b)));
        let mut promised: Vec<(usize, Need)> = Vec::new();
        for c in order {
            let promised_on = |s: usize| promised.iter().position(|&(p, _)| p == s);
            let s = cluster.targets[t]
                .slots
                .iter()
                .copied()
                .filter(|&s| !cluster.slots[s].reserved)
                .filter(|&s| !spread || promised_on(s).is_none())
                .filter(|&s| {
                    let already = promised_on(s).map_or(Need::default(), |i| promised[i].1);
                    cluster.slots[s].total.covers(&already.plus(needs[c]))
                })
                .max_by_key(|&s| {
                    let slot = &cluster.slots[s];
                    let free = slot.free();
                    let chosen = promised_on(s).is_some();
                    (chosen, free.gpus, free.mcpu, free.memory_mb, Reverse(s))
                })?;
            match promised_on(s) {
                Some(i) => promised[i].1 = promised[i].1.plus(needs[c]),
                None => promised.push((s, needs[c])),
            }
        }
        let mut slots: Vec<usize> = promised.into_iter().map(|(s, _)| s).collect();
        slots.sort_unstable();
        Some(slots)
    }

    /// Settles every waiting run's reason and assembles the plan.
    fn finish(mut self) -> Plan {
        let input = self.input;
        let most_free: Vec<Need> = (0..self.cluster.targets.len())
            .map(|t| self.cluster.most_free(t))
            .collect();
        let pending = std::mem::take(&mut self.waiting);
        let waiting = pending
            .into_iter()
            .map(|(r, pending)| {
                let reason = match pending {
                    Pending::Reason(reason) => reason,
                    Pending::NoRoom { target, needs } => {
                        self.no_room_reason(r, target, &needs, &most_free[target])
                    }
                };
                Waiting {
                    run_id: input.runs[r].id,
                    reason,
                }
            })
            .collect();
        let reservations = self
            .targets
            .values()
            .filter_map(|&t| {
                let target = &self.cluster.targets[t];
                let held = target.reservation.as_ref()?;
                Some(Reservation {
                    run_id: input.runs[held.run].id,
                    compute_target: target.name.clone(),
                    node_ids: self.node_ids(&held.slots),
                })
            })
            .collect();
        Plan {
            assignments: self.assignments,
            waiting,
            reservations,
        }
    }

    fn node_ids(&self, slots: &[usize]) -> Vec<String> {
        slots
            .iter()
            .map(|&s| self.input.nodes[self.cluster.slots[s].node].id.clone())
            .collect()
    }

    /// Why run `r` found no room, judged on the final state (capacity only
    /// shrank since it was tried, so it still does not fit).
    fn no_room_reason(
        &mut self,
        r: usize,
        t: usize,
        needs: &[Need],
        most_free: &Need,
    ) -> WaitReason {
        let input = self.input;
        let run = &input.runs[r];
        let target = run.compute_target.clone();
        let containers = needs.len();
        if let Some(held) = self.cluster.targets[t].reservation.clone() {
            if held.run != r {
                if let Ok(taken) = self.place(t, needs, run.spread, true) {
                    self.undo(needs, taken);
                    return WaitReason::HeldForReservation {
                        target,
                        reserved_for: input.runs[held.run].id,
                        nodes: self.node_ids(&held.slots),
                    };
                }
            }
        }
        for (demand, need) in run.containers.iter().zip(needs) {
            if self.cluster.best_fit(t, need, true).is_none() {
                return match shortage(demand, need, most_free) {
                    Some(shortage) => WaitReason::NotEnoughFree {
                        target,
                        containers,
                        shortage,
                    },
                    None => WaitReason::NoNodeFitsAll {
                        target,
                        containers,
                        gpus: demand.gpus,
                        cpus: demand.cpus,
                        memory_mb: demand.memory_mb,
                    },
                };
            }
        }
        // Each container fits alone: only a gang gets here.
        let placeable = match self.place(t, needs, run.spread, true) {
            Ok(taken) => {
                let placed = taken.len();
                self.undo(needs, taken);
                placed
            }
            Err(placed) => placed,
        };
        WaitReason::GangDoesNotFit {
            target,
            containers,
            placeable,
        }
    }
}

/// A run's containers in integer units, or why they cannot be placed.
fn needs_of(run: &WaitingRun) -> Result<Vec<Need>, WaitReason> {
    if run.containers.is_empty() {
        return Err(WaitReason::NoContainers);
    }
    run.containers
        .iter()
        .enumerate()
        .map(|(container, demand)| {
            if !(demand.cpus.is_finite() && demand.cpus >= 0.0) {
                return Err(WaitReason::InvalidDemand {
                    container,
                    problem: format!(
                        "cpus must be a finite number of at least 0, not {}",
                        demand.cpus
                    ),
                });
            }
            Ok(Need {
                gpus: demand.gpus.into(),
                mcpu: demand_mcpu(demand.cpus),
                memory_mb: demand.memory_mb,
                ports: demand.ports.into(),
            })
        })
        .collect()
}

/// The first resource (GPUs, CPUs, memory, ports) where `need` exceeds
/// `offer`, in the demand's own units.
fn shortage(demand: &ContainerDemand, need: &Need, offer: &Need) -> Option<Shortage> {
    let small = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
    if need.gpus > offer.gpus {
        Some(Shortage::Gpus {
            needs: demand.gpus,
            available: small(offer.gpus),
        })
    } else if need.mcpu > offer.mcpu {
        Some(Shortage::Cpus {
            needs: demand.cpus,
            available: offer.mcpu as f64 / 1000.0,
        })
    } else if need.memory_mb > offer.memory_mb {
        Some(Shortage::MemoryMb {
            needs: demand.memory_mb,
            available: offer.memory_mb,
        })
    } else if need.ports > offer.ports {
        Some(Shortage::Ports {
            needs: demand.ports,
            available: small(offer.ports),
        })
    } else {
        None
    }
}
