//! Trainyard's Docker executor, the only crate that talks to Docker: it builds
//! environment images (once per spec), runs each run in a labelled container,
//! pumps its logs into the run history without loss or duplication, collects
//! `./outputs`, re-adopts containers after a restart, and checks that the
//! registered nodes' engines answer.

mod container;
mod engine;
pub mod executor;
mod image;
mod lines;
pub mod nodes;

pub use engine::{DockerError, Engine, EngineTls};
pub use executor::{Executor, ExecutorConfig};

/// Label carrying the run id on every container Trainyard starts.
pub const LABEL_RUN_ID: &str = "trainyard.run_id";
/// Label naming the server replica that runs the container; reconciliation
/// only touches a replica's own containers.
pub const LABEL_OWNER: &str = "trainyard.owner";
/// Label carrying the workspace id on every container Trainyard starts.
pub const LABEL_WORKSPACE: &str = "trainyard.workspace";
/// Label naming the node a run's container was placed on (several nodes may
/// share one engine).
pub const LABEL_NODE: &str = "trainyard.node";
/// Label carrying a distributed run's rank on each of its containers.
pub const LABEL_RANK: &str = "trainyard.rank";
