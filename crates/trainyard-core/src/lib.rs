//! Domain types and rules of Trainyard, free of I/O.
//!
//! Everything here is plain data and pure functions: names that parse, roles,
//! and the one place that decides which run status may follow which.

pub mod distribution;
pub mod environment;
pub mod metrics;
pub mod mlflow;
pub mod role;
pub mod run_spec;
pub mod run_status;
pub mod validate;

pub use distribution::Distribution;
pub use environment::EnvironmentSpec;
pub use metrics::{MetricKind, MetricValue};
pub use role::Role;
pub use run_spec::{
    InputMode, RankPlacement, Resources, RunEnvironment, RunInput, RunPlacement, RunSpec,
};
pub use run_status::{RunStatus, TransitionError};
pub use validate::{FieldError, Name, TagKey, TagValue};
