//! A distributed run: a container per rank, possibly on several nodes, all
//! created before any starts, followed together, and all stopped when one
//! rank fails, so no rank is left waiting for a peer that is gone.

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use trainyard_core::distribution::{essential_ranks, rank_environment, rank_host, Peer};
use trainyard_core::{Distribution, RankPlacement, RunSpec, RunStatus};
use trainyard_db::runs::Run;

use super::mpi;
use super::outcome::{outcome, Ended};
use super::supervise::Sources;
use super::{files, ContainerPlan, Executor, Holds, Stop};

/// Ranks of a distributed run share their node's network: each listens on
/// the port the scheduler gave it. (With a container network other than the
/// host's, a run on one node gets a network of its own instead.)
const RANK_NETWORK_MODE: &str = "host";

/// The name of a run's own network.
fn run_network(run_id: uuid::Uuid) -> String {
    format!("trainyard-run-{run_id}")
}

/// A rank's container, on its node's engine.
struct RankContainer {
    rank: u32,
    node: String,
    executor: Executor,
    container: String,
    sources: Sources,
    /// Whether the run ends when this rank (and the other essential ones)
    /// has ended; the rest are then stopped.
    essential: bool,
    /// Whether its `./outputs` and `./logs` are kept.
    keeps_files: bool,
}

/// The first rank that failed, and how.
struct Failure {
    rank: u32,
    node: String,
    exit_code: Option<i64>,
    error: Option<String>,
}

impl Failure {
    fn describe(&self) -> String {
        let how = match (&self.error, self.exit_code) {
            (Some(error), _) => format!("could not be followed ({error})"),
            (None, Some(code)) => format!("exited with code {code}"),
            (None, None) => "disappeared before it exited".to_string(),
        };
        format!(
            "rank {} (node {}) {how}; the other ranks were stopped",
            self.rank, self.node
        )
    }
}

impl Executor {
    /// Takes a placed distributed run to its end. `ranks` holds the executor
    /// of each rank's node, in rank order.
    #[tracing::instrument(skip_all, fields(run_id = %run.id))]
    pub async fn execute_distributed(&self, run: Run, ranks: Vec<Executor>) {
        let mut containers = Vec::new();
        match self.start_ranks(&run, &ranks, &mut containers).await {
            Ok(()) => self.follow_ranks(&run, &containers).await,
            Err(stop) => {
                let (status, reason, error) = match stop {
                    Stop::Canceled => (RunStatus::Canceled, "canceled by user", None),
                    Stop::Failed(message) => {
                        (RunStatus::Failed, "failed before running", Some(message))
                    }
                };
                // Found by the run's label: a container whose creation
                // failed half-way is not in `containers`. They go before the
                // final status, so an ended run holds nothing.
                self.cleanup(&run, None).await;
                self.remove_run_containers(&run, &ranks).await;
                let _ = self
                    .transition(&run, status, reason, error.as_deref())
                    .await;
            }
        }
    }

    /// Builds the image on each node, creates every rank's container, then
    /// starts them all. Containers created so far are pushed to `created`.
    async fn start_ranks(
        &self,
        run: &Run,
        ranks: &[Executor],
        created: &mut Vec<RankContainer>,
    ) -> Result<(), Stop> {
        let spec: RunSpec = serde_json::from_value(run.spec.0.clone())
            .map_err(|e| Stop::Failed(format!("the run's spec is unreadable: {e}")))?;
        let placed: Vec<RankPlacement> = run
            .placement
            .as_ref()
            .map(|p| p.0.ranks.clone())
            .unwrap_or_default();
        if placed.len() != ranks.len() || placed.is_empty() {
            return Err(Stop::Failed(format!(
                "the run was placed with {} ranks but has {} executors",
                placed.len(),
                ranks.len()
            )));
        }
        // One build per node, however many of its ranks the node has.
        let mut images: HashMap<uuid::Uuid, String> = HashMap::new();
        for (executor, rank) in ranks.iter().zip(&placed) {
            if let Entry::Vacant(entry) = images.entry(rank.node_id) {
                entry.insert(executor.prepare_image(run, &spec).await?);
            }
        }
        self.check_cancel(run).await?;
        self.transition(run, RunStatus::Starting, "images ready on every node", None)
            .await?;
        // All ranks on one node, and containers not on the host's network:
        // the run gets a network of its own where each rank is `rank-N`.
        let container_network = self
            .config
            .network_mode
            .clone()
            .filter(|mode| mode != RANK_NETWORK_MODE);
        let one_node = placed.iter().all(|r| r.node_id == placed[0].node_id);
        let own_network = (one_node && container_network.is_some()).then(|| run_network(run.id));
        if let Some(network) = &own_network {
            ranks[0].engine.create_run_network(network, run.id).await?;
        }
        let peers: Vec<Peer> = placed
            .iter()
            .enumerate()
            .map(|(i, r)| Peer {
                address: match own_network {
                    Some(_) => rank_host(i as u32),
                    None => r.address.clone(),
                },
                port: r.port,
            })
            .collect();
        // MPI: a key pair for this run alone, and the files every rank needs.
        let is_mpi = matches!(spec.distribution, Some(Distribution::Mpi {}));
        let mpi_files = if is_mpi {
            let keys = mpi::generate_key_pair(&format!("trainyard-run-{}", run.id))?;
            Some(bytes::Bytes::from(mpi::rank_files(&keys, &placed)?))
        } else {
            None
        };
        let essential = essential_ranks(spec.distribution.as_ref(), spec.shape());
        let hosts: Vec<String> = placed
            .iter()
            .enumerate()
            .map(|(i, r)| format!("{}:{}", rank_host(i as u32), r.address))
            .collect();
        for (i, (executor, rank)) in ranks.iter().zip(&placed).enumerate() {
            let i = i as u32;
            let plan = ContainerPlan {
                name: format!("trainyard-run-{}-rank-{i}", run.id),
                holds: Some(Holds {
                    node: rank.node.clone(),
                    // The processes of a node see all of its GPUs, in an
                    // order where `cuda:LOCAL_RANK` is the rank's own; an MPI
                    // process, whose local rank MPI sets to 0 (a host per
                    // rank), sees only its own.
                    gpus: if rank.node_gpus.is_empty() || is_mpi {
                        rank.gpus.clone()
                    } else {
                        rank.node_gpus.clone()
                    },
                    gpu_mode: rank.gpu_mode.clone(),
                    cpus: rank.cpus,
                    memory_mb: rank.memory_mb,
                }),
                rank: Some(i),
                env: rank_environment(spec.distribution.as_ref(), spec.shape(), i, &peers),
                // mpirun would take names of one address for one host; its
                // SSH settings carry each rank's address and port instead.
                extra_hosts: if is_mpi || own_network.is_some() {
                    Vec::new()
                } else {
                    hosts.clone()
                },
                network_mode: Some(
                    own_network
                        .clone()
                        .unwrap_or_else(|| RANK_NETWORK_MODE.to_string()),
                ),
                network_aliases: match own_network {
                    Some(_) => vec![rank_host(i)],
                    None => Vec::new(),
                },
                also_networks: match own_network {
                    Some(_) => container_network.clone().into_iter().collect(),
                    None => Vec::new(),
                },
                mpi_files: mpi_files.clone(),
            };
            let sources = Sources::of(Some(i));
            let image = &images[&rank.node_id];
            let container = executor.create_container(run, &spec, image, &plan).await?;
            created.push(RankContainer {
                rank: i,
                node: rank.node.clone(),
                executor: executor.clone(),
                container,
                sources,
                essential: essential.get(i as usize).copied().unwrap_or(true),
                keeps_files: spec.rank_outputs.keeps(i),
            });
        }
        self.check_cancel(run).await?;
        for rank in created.iter() {
            rank.executor
                .engine
                .start_container(&rank.container)
                .await?;
        }
        let reason = format!("all {} ranks started", created.len());
        self.transition(run, RunStatus::Running, &reason, None)
            .await
    }

    /// Follows every rank to its end; the first rank to fail stops the
    /// others. When every essential rank has ended well (MPI's launcher,
    /// TensorFlow's chief and workers, otherwise all), the others are
    /// stopped. Then keeps the files of every rank and ends the run.
    async fn follow_ranks(&self, run: &Run, ranks: &[RankContainer]) {
        let mut following: FuturesUnordered<_> = ranks
            .iter()
            .map(|rank| async move {
                let ended = rank
                    .executor
                    .supervise(run, &rank.container, &rank.sources)
                    .await;
                (rank, ended)
            })
            .collect();
        let mut failure: Option<Failure> = None;
        let mut stopped = None;
        let mut head_exit_code = None;
        let mut essential_left = ranks.iter().filter(|r| r.essential).count();
        let mut done = false;
        while let Some((rank, ended)) = following.next().await {
            if done {
                // Stopped because the essential ranks were done.
                continue;
            }
            let failed = match ended {
                Ok(ended) => {
                    if rank.rank == 0 {
                        head_exit_code = ended.exit_code;
                    }
                    if ended.stopped.is_some() {
                        stopped = stopped.or(ended.stopped);
                        None
                    } else if ended.exit_code == Some(0) {
                        None
                    } else {
                        Some(Failure {
                            rank: rank.rank,
                            node: rank.node.clone(),
                            exit_code: ended.exit_code,
                            error: None,
                        })
                    }
                }
                Err(err) => Some(Failure {
                    rank: rank.rank,
                    node: rank.node.clone(),
                    exit_code: None,
                    error: Some(err.to_string()),
                }),
            };
            // Ranks stopped because another failed exit non-zero too: only
            // the first failure counts.
            if failure.is_some() || stopped.is_some() {
                continue;
            }
            if let Some(failed) = failed {
                tracing::info!(run_id = %run.id, rank = failed.rank, "a rank failed; stopping the others");
                self.stop_ranks(ranks, |r| r.rank != failed.rank);
                failure = Some(failed);
            } else if rank.essential {
                essential_left -= 1;
                if essential_left == 0 {
                    self.stop_ranks(ranks, |r| !r.essential);
                    done = true;
                }
            }
        }
        drop(following);

        if self
            .transition(run, RunStatus::Finalizing, "every rank exited", None)
            .await
            .is_err()
        {
            return;
        }
        let exit_code = failure.as_ref().map_or(head_exit_code, |f| f.exit_code);
        if let Some(code) = exit_code {
            let _ = self.db.set_run_exit_code(run.id, code as i32).await;
        }
        let mut kept = Ok(());
        for rank in ranks.iter().filter(|r| r.keeps_files) {
            let collected = files::collect_files(
                &rank.executor.engine,
                &self.storage,
                &rank.container,
                run.id,
                Some(rank.rank),
            )
            .await;
            if let Err(err) = collected {
                kept = Err(err);
            }
        }
        let (status, reason, error) = match &failure {
            Some(failure) if stopped.is_none() => {
                let message = failure.describe();
                (RunStatus::Failed, message.clone(), Some(message))
            }
            _ => outcome(
                run,
                Ended {
                    exit_code: Some(0),
                    stopped,
                },
                kept,
            ),
        };
        self.remove_ranks(run, ranks).await;
        let _ = self
            .transition(run, status, &reason, error.as_deref())
            .await;
    }

    /// Stops the ranks `which` picks, in the background.
    fn stop_ranks(&self, ranks: &[RankContainer], which: impl Fn(&RankContainer) -> bool) {
        let grace = self.config.stop_grace_seconds;
        for rank in ranks.iter().filter(|r| which(r)) {
            let engine = rank.executor.engine.clone();
            let container = rank.container.clone();
            tokio::spawn(async move {
                if let Err(err) = engine.stop_container(&container, grace).await {
                    tracing::warn!(error = %err, "stopping a rank failed");
                }
            });
        }
    }

    /// Revokes the run's tokens and removes its ranks' containers (before the
    /// run's final status, so an ended run has no container left).
    async fn remove_ranks(&self, run: &Run, ranks: &[RankContainer]) {
        self.cleanup(run, None).await;
        if self.config.keep_containers {
            return;
        }
        for rank in ranks {
            if let Err(err) = rank.executor.engine.remove_container(&rank.container).await {
                tracing::warn!(error = %err, "removing a rank's container failed");
            }
        }
        if let Some(head) = ranks.first() {
            remove_run_network(&head.executor, run).await;
        }
    }

    /// Removes every container of the run from the engines of `nodes`
    /// (found by the run's label, each engine once).
    async fn remove_run_containers(&self, run: &Run, nodes: &[Executor]) {
        if self.config.keep_containers {
            return;
        }
        let mut seen: Vec<&str> = Vec::new();
        for executor in nodes {
            let node = executor.node.as_deref().unwrap_or("");
            if seen.contains(&node) {
                continue;
            }
            seen.push(node);
            let containers = executor.engine.containers_of_run(run.id).await;
            for (container, _, _) in containers.unwrap_or_default() {
                let _ = executor.engine.remove_container(&container).await;
            }
        }
        if let Some(head) = nodes.first() {
            remove_run_network(head, run).await;
        }
    }

    /// After a restart: a distributed run is not followed again. Its ranks'
    /// containers on the engines of `nodes` are removed and it fails.
    pub async fn abandon_distributed(&self, run: Run, nodes: Vec<Executor>) {
        self.remove_run_containers(&run, &nodes).await;
        let reason = format!(
            "the server stopped while the distributed run was {}; its ranks were stopped, \
             submit it again",
            run.status()
        );
        self.fail_lost_in_restart(&run, &reason).await;
    }
}

/// Removes the run's own network, if it has one (on its one node).
async fn remove_run_network(head: &Executor, run: &Run) {
    if let Err(err) = head.engine.remove_network(&run_network(run.id)).await {
        tracing::warn!(error = %err, "removing the run's network failed");
    }
}
