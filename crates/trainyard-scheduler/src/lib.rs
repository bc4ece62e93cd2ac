//! The scheduling loop: claims queued runs from PostgreSQL (woken by
//! `LISTEN/NOTIFY`, with a slow poll as a fallback) while the node has room,
//! hands each to the executor, and renews the leases of the runs it holds.

pub mod placement;

use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use trainyard_db::Db;
use trainyard_docker::Executor;

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
    let mut running = JoinSet::new();
    match executor.reconcile(config.lease).await {
        Ok(adopted) => {
            for task in adopted {
                running.spawn(async move {
                    let _ = task.await;
                });
            }
        }
        Err(err) => tracing::error!(error = %err, "reconciling containers failed"),
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
        while running.len() < config.max_concurrent_runs {
            match db.claim_queued_run(&config.owner, config.lease).await {
                Ok(Some(run)) => {
                    tracing::info!(run_id = %run.id, "claimed a queued run");
                    let executor = executor.clone();
                    running.spawn(async move { executor.execute(run).await });
                }
                Ok(None) => break,
                Err(err) => {
                    tracing::warn!(error = %err, "claiming a queued run failed");
                    break;
                }
            }
        }
        tokio::select! {
            notification = listener.recv() => {
                if let Err(err) = notification {
                    tracing::warn!(error = %err, "the queue listener failed; polling until it reconnects");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            _ = tokio::time::sleep(config.poll_interval) => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
            _ = renew.tick() => {
                if let Err(err) = db.renew_leases(&config.owner, config.lease).await {
                    tracing::warn!(error = %err, "renewing run leases failed");
                }
            }
            _ = shutdown.changed() => break,
        }
    }
    // Detach: containers keep running and are re-adopted at the next start.
    running.detach_all();
}
