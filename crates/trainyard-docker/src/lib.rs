//! Trainyard's Docker executor, the only crate that talks to Docker: it builds
//! environment images (once per spec), runs each run in a labelled container,
//! pumps its logs into the run history without loss or duplication, collects
//! `./outputs`, and re-adopts containers after a restart.

mod container;
mod engine;
pub mod executor;
mod image;
mod lines;

pub use engine::{DockerError, Engine};
pub use executor::{Executor, ExecutorConfig};

/// Label carrying the run id on every container Trainyard starts.
pub const LABEL_RUN_ID: &str = "trainyard.run_id";
/// Label naming the server replica that runs the container; reconciliation
/// only touches a replica's own containers.
pub const LABEL_OWNER: &str = "trainyard.owner";
/// Label carrying the workspace id on every container Trainyard starts.
pub const LABEL_WORKSPACE: &str = "trainyard.workspace";
