//! The scheduling loop, woken by `LISTEN/NOTIFY` (with a slow poll as a
//! fallback) and whenever one of its runs ends. Runs without a compute
//! target are claimed while the server's own engine has room; runs on
//! compute targets are placed on nodes by a [`placement::plan`] pass. Each
//! run is handed to an executor on its engine, and the leases of the runs
//! this replica holds are renewed.

pub mod cluster;
pub mod placement;

use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use trainyard_core::{RunPlacement, RunStatus};
use trainyard_db::runs::Run;
use trainyard_db::{Db, DbError};
use trainyard_docker::{nodes::connect_node, Executor};
use uuid::Uuid;

use placement::PlacementConfig;

/// How soon a pass is tried again when another replica held the pass lock.
const PASS_RETRY: Duration = Duration::from_secs(1);

/// Most queued runs one placement pass considers (oldest first).
const MAX_QUEUED_PER_PASS: i64 = 20_000;

/// How the loop behaves.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// This replica's name; it owns the runs it claims.
    pub owner: String,
    /// How long a claim holds without renewal.
    pub lease: Duration,
    /// Most runs executed at once on the node.
    pub max_concurrent_runs: usize,
    /// How often the queue is polled when no notification arrives.
    pub poll_interval: Duration,
    /// Tunables of placement on compute targets.
    pub placement: PlacementConfig,
}

/// Claims and executes runs until `shutdown` turns true. Runs still going at
/// shutdown keep their containers; the next start re-adopts them.
pub async fn run(
    db: Db,
    executor: Executor,
    config: SchedulerConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    // Runs stay queued until an engine answers.
    let mut warned = false;
    while !executor.engine().ping().await {
        if !warned {
            tracing::error!("no Docker engine answers (DOCKER_HOST or /var/run/docker.sock); runs stay queued until one does");
            warned = true;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = shutdown.changed() => return,
        }
    }
    // Runs on the server's own engine (bounded by max_concurrent_runs) and
    // runs on nodes (bounded by their capacity) are counted apart.
    let mut running = Running::default();
    let mut nodes = NodeExecutors::new(executor.clone());
    match db.adopt_active_runs(&config.owner, config.lease).await {
        Ok(adopted) => reconcile(&db, &executor, &mut nodes, adopted, &mut running).await,
        Err(err) => tracing::error!(error = %err, "adopting active runs failed"),
    }
    let mut listener = loop {
        match db.listen_for_queued_runs().await {
            Ok(listener) => break listener,
            Err(err) => {
                tracing::warn!(error = %err, "listening for queued runs failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    };
    let mut renew = tokio::time::interval(config.lease / 3);
    loop {
        // Claim while there is room; the listener is already registered, so
        // a run queued after an empty claim still wakes the loop.
        while running.local.len() < config.max_concurrent_runs {
            match db.claim_queued_run(&config.owner, config.lease).await {
                Ok(Some(run)) => {
                    tracing::info!(run_id = %run.id, "claimed a queued run");
                    let executor = executor.clone();
                    running
                        .local
                        .spawn(async move { executor.execute(run).await });
                }
                Ok(None) => break,
                Err(err) => {
                    tracing::warn!(error = %err, "claiming a queued run failed");
                    break;
                }
            }
        }
        // Another replica's pass may have read the queue before a run this
        // one was woken for: look again soon rather than at the next poll.
        let wait = match place_on_targets(&db, &mut nodes, &config, &mut running.on_nodes).await {
            Ok(Pass::Done) => config.poll_interval,
            Ok(Pass::OtherReplica) => PASS_RETRY.min(config.poll_interval),
            Err(err) => {
                tracing::warn!(error = %err, "a placement pass failed");
                config.poll_interval
            }
        };
        tokio::select! {
            notification = listener.recv() => {
                if let Err(err) = notification {
                    tracing::warn!(error = %err, "the queue listener failed; polling until it reconnects");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            _ = tokio::time::sleep(wait) => {}
            Some(_) = running.local.join_next(), if !running.local.is_empty() => {}
            Some(_) = running.on_nodes.join_next(), if !running.on_nodes.is_empty() => {}
            _ = renew.tick() => {
                if let Err(err) = db.renew_leases(&config.owner, config.lease).await {
                    tracing::warn!(error = %err, "renewing run leases failed");
                }
            }
            _ = shutdown.changed() => break,
        }
    }
    // Detach: containers keep running and are re-adopted at the next start.
    running.local.detach_all();
    running.on_nodes.detach_all();
}

/// The executions this replica follows.
#[derive(Default)]
struct Running {
    /// On the server's own engine.
    local: JoinSet<()>,
    /// On the nodes of compute targets.
    on_nodes: JoinSet<()>,
}

/// Executors of the nodes' engines, connected on first use.
struct NodeExecutors {
    base: Executor,
    by_node: HashMap<Uuid, Executor>,
}

impl NodeExecutors {
    fn new(base: Executor) -> Self {
        NodeExecutors {
            base,
            by_node: HashMap::new(),
        }
    }

    /// The executor of a run's node, or why there is none.
    async fn of(&mut self, db: &Db, placement: &RunPlacement) -> Result<Executor, String> {
        self.of_node(db, placement.node_id, &placement.node).await
    }

    /// The executor of a node, or why there is none.
    async fn of_node(&mut self, db: &Db, id: Uuid, name: &str) -> Result<Executor, String> {
        if let Some(executor) = self.by_node.get(&id) {
            return Ok(executor.clone());
        }
        let endpoint = db
            .node_endpoint(id)
            .await
            .map_err(|e| format!("node {name} is gone: {e}"))?;
        let engine =
            connect_node(&endpoint).map_err(|e| format!("connecting to node {name}: {e}"))?;
        let executor = self.base.for_node(engine, name);
        self.by_node.insert(id, executor.clone());
        Ok(executor)
    }

    /// The executor of each rank's node of a distributed run, in rank order
    /// (never empty: a distributed placement has its ranks).
    async fn of_ranks(
        &mut self,
        db: &Db,
        placement: &RunPlacement,
    ) -> Result<Vec<Executor>, String> {
        let mut executors = Vec::with_capacity(placement.ranks.len());
        for rank in &placement.ranks {
            executors.push(self.of_node(db, rank.node_id, &rank.node).await?);
        }
        Ok(executors)
    }
}

/// How a placement pass went.
enum Pass {
    /// Made, or nothing waits.
    Done,
    /// Another replica was in a pass.
    OtherReplica,
}

/// One placement pass over every compute target: stores where each placed
/// run goes and why the others wait, then starts the placed runs.
async fn place_on_targets(
    db: &Db,
    nodes: &mut NodeExecutors,
    config: &SchedulerConfig,
    running: &mut JoinSet<()>,
) -> Result<Pass, DbError> {
    if !db.runs_wait_on_targets().await? {
        return Ok(Pass::Done);
    }
    let Some(mut pass) = db.begin_scheduling_pass().await? else {
        return Ok(Pass::OtherReplica);
    };
    let state = pass.cluster_state(MAX_QUEUED_PER_PASS).await?;
    let decisions = cluster::decide(&state, config.placement);
    let mut placed = Vec::new();
    for (run_id, placement) in &decisions.placements {
        if let Some(run) = pass
            .place(*run_id, placement, &config.owner, config.lease)
            .await?
        {
            placed.push(run);
        }
    }
    let count_up_to = config.placement.reserve_after_passes.unwrap_or(0) as i32;
    pass.record_waits(&decisions.waits, count_up_to).await?;
    pass.commit().await?;
    for run in placed {
        start_on_node(db, nodes, run, running).await;
    }
    Ok(Pass::Done)
}

/// Hands a placed run to its node's executor, or fails it with the reason
/// its node cannot be reached.
async fn start_on_node(db: &Db, nodes: &mut NodeExecutors, run: Run, running: &mut JoinSet<()>) {
    let Some(placement) = run.placement.as_ref().map(|p| p.0.clone()) else {
        return;
    };
    if !placement.ranks.is_empty() {
        // Rank 0's executor drives the run.
        match nodes.of_ranks(db, &placement).await {
            Ok(ranks) => {
                tracing::info!(run_id = %run.id, ranks = ranks.len(), "placed a distributed run");
                let head = ranks[0].clone();
                running.spawn(async move { head.execute_distributed(run, ranks).await });
            }
            Err(reason) => fail_all(db, std::slice::from_ref(&run), &reason).await,
        }
        return;
    }
    match nodes.of(db, &placement).await {
        Ok(executor) => {
            tracing::info!(run_id = %run.id, node = %placement.node, gpus = ?placement.gpus, "placed a run");
            running.spawn(async move { executor.execute(run).await });
        }
        Err(reason) => fail_all(db, std::slice::from_ref(&run), &reason).await,
    }
}

/// After a restart: each adopted run is reconciled by the executor of the
/// engine its container is on.
async fn reconcile(
    db: &Db,
    executor: &Executor,
    nodes: &mut NodeExecutors,
    adopted: Vec<Run>,
    running: &mut Running,
) {
    let mut by_node: HashMap<Uuid, Vec<Run>> = HashMap::new();
    let mut local = Vec::new();
    for run in adopted {
        if let Some(placement) = run.placement.as_ref().filter(|p| !p.0.ranks.is_empty()) {
            match nodes.of_ranks(db, &placement.0.clone()).await {
                Ok(ranks) => {
                    let head = ranks[0].clone();
                    running
                        .on_nodes
                        .spawn(async move { head.abandon_distributed(run, ranks).await });
                }
                Err(reason) => fail_all(db, std::slice::from_ref(&run), &reason).await,
            }
            continue;
        }
        match &run.placement {
            Some(placement) => by_node.entry(placement.0.node_id).or_default().push(run),
            None => local.push(run),
        }
    }
    let mut groups = vec![(executor.clone(), None, local)];
    for (_, runs) in by_node {
        let placement = runs[0].placement.as_ref().map(|p| p.0.clone());
        let Some(placement) = placement else { continue };
        match nodes.of(db, &placement).await {
            Ok(node_executor) => groups.push((node_executor, Some(placement.node), runs)),
            Err(reason) => fail_all(db, &runs, &reason).await,
        }
    }
    for (executor, node, runs) in groups {
        let ids = runs.clone();
        let set = match node {
            Some(_) => &mut running.on_nodes,
            None => &mut running.local,
        };
        match executor.reconcile(runs).await {
            Ok(tasks) => {
                for task in tasks {
                    set.spawn(async move {
                        let _ = task.await;
                    });
                }
            }
            Err(err) => match node {
                Some(node) => {
                    let reason = format!("node {node} did not answer when the server restarted ({err}); the run's container was lost with it");
                    fail_all(db, &ids, &reason).await;
                }
                None => tracing::error!(error = %err, "reconciling containers failed"),
            },
        }
    }
}

/// Fails runs whose node cannot be reached.
async fn fail_all(db: &Db, runs: &[Run], reason: &str) {
    for run in runs {
        let failed = db
            .transition_run(
                run.workspace_id,
                run.id,
                RunStatus::Failed,
                "node unreachable",
                Some(reason),
            )
            .await;
        if let Err(err) = failed {
            tracing::warn!(run_id = %run.id, error = %err, "failing a run failed");
        }
    }
}
