//! The node monitor: asks every registered node's engine for its version at
//! a steady pace and records whether it answered, so that a node whose
//! engine stops answering shows as down with the reason.

use std::time::Duration;
use tokio::sync::watch;
use trainyard_db::compute::{NodeEndpoint, NodeTls};
use trainyard_db::Db;

use crate::engine::{DockerError, Engine, EngineTls};

/// Longest one node's check may take before it counts as unanswered.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks every node each `interval` until `shutdown` turns true.
pub async fn monitor_nodes(db: Db, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = tick.tick() => check_all(&db).await,
            _ = shutdown.changed() => return,
        }
    }
}

/// Containers younger than this are never taken as left over: a run may be
/// between creating its container and recording it.
const LEFT_OVER_MIN_AGE: Duration = Duration::from_secs(120);

/// One round: every node at once, each bounded by [`CHECK_TIMEOUT`].
pub async fn check_all(db: &Db) {
    check_all_with(db, LEFT_OVER_MIN_AGE).await
}

/// [`check_all`], taking containers older than `left_over_age` as
/// possibly left over.
pub async fn check_all_with(db: &Db, left_over_age: Duration) {
    let nodes = match db.node_endpoints().await {
        Ok(nodes) => nodes,
        Err(err) => {
            tracing::warn!(error = %err, "listing nodes to check failed");
            return;
        }
    };
    let checks = nodes.into_iter().map(|node| async move {
        let answer = tokio::time::timeout(CHECK_TIMEOUT, engine_version(&node)).await;
        let recorded = match answer {
            Ok(Ok(version)) => {
                if node.health != "up" {
                    remove_left_over_containers(db, &node, left_over_age).await;
                }
                db.node_answered(node.id, &version).await
            }
            Ok(Err(reason)) => unreachable(db, &node, &reason).await,
            Err(_) => {
                let reason = format!("no answer within {} s", CHECK_TIMEOUT.as_secs());
                unreachable(db, &node, &reason).await
            }
        };
        if let Err(err) = recorded {
            tracing::warn!(node = %node.id, error = %err, "recording a node's health failed");
        }
    });
    futures::future::join_all(checks).await;
}

/// A client of a node's engine.
pub fn connect_node(node: &NodeEndpoint) -> Result<Engine, DockerError> {
    connect_endpoint(&node.endpoint, node.tls.as_ref().map(|tls| &tls.0))
}

/// A client of the engine at `endpoint`, with a node's TLS files.
pub fn connect_endpoint(endpoint: &str, tls: Option<&NodeTls>) -> Result<Engine, DockerError> {
    let tls = tls.map(|tls| EngineTls {
        ca: tls.ca.clone().into(),
        cert: tls.cert.clone().into(),
        key: tls.key.clone().into(),
    });
    Engine::connect(endpoint, tls.as_ref())
}

/// Before a node that was down (or not seen yet) takes runs again, the
/// containers left on it by runs that ended meanwhile are removed: their runs
/// failed when the node was lost and no longer hold its GPUs. Containers
/// younger than `min_age` are left alone (a run may be starting).
async fn remove_left_over_containers(db: &Db, node: &NodeEndpoint, min_age: Duration) {
    let Ok(engine) = connect_node(node) else {
        return;
    };
    let containers = match engine.node_run_containers_older_than(min_age).await {
        Ok(containers) => containers,
        Err(err) => {
            tracing::warn!(node = %node.id, error = %err, "listing a node's containers failed");
            return;
        }
    };
    for (container, run_id) in containers {
        let Ok(run_id) = uuid::Uuid::parse_str(&run_id) else {
            continue;
        };
        if let Ok(true) = db.container_is_left_over(run_id, &container).await {
            tracing::info!(node = %node.id, %container, %run_id, "removing a container left by a run that ended while its node was lost");
            if let Err(err) = engine.remove_container(&container).await {
                tracing::warn!(%container, error = %err, "removing a left-over container failed");
            }
        }
    }
}

async fn engine_version(node: &NodeEndpoint) -> Result<String, String> {
    let engine = connect_node(node).map_err(|e| e.to_string())?;
    engine.version().await.map_err(|e| e.to_string())
}

async fn unreachable(
    db: &Db,
    node: &NodeEndpoint,
    reason: &str,
) -> Result<(), trainyard_db::DbError> {
    if node.health != "down" {
        tracing::warn!(node = %node.id, endpoint = %node.endpoint, %reason, "a node's engine does not answer");
    }
    db.node_unreachable(node.id, &format!("{}: {reason}", node.endpoint))
        .await
}
