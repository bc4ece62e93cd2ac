//! What a run executes: its source snapshot, entry point, environment,
//! resources and limits.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

use crate::distribution::{self, Distribution, RankOutputs, Shape};
use crate::environment::EnvironmentSpec;
use crate::validate::FieldError;

/// Where every run's source is unpacked and the working directory of its
/// process; `./outputs` and `./logs` are relative to it.
pub const WORKDIR: &str = "/workspace";
/// Longest time limit accepted: 30 days.
pub const MAX_TIME_LIMIT_SECONDS: u64 = 30 * 24 * 3600;

/// Largest priority either way.
pub const MAX_PRIORITY: i32 = 1000;

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// Where the scheduler placed a run: its node and what it holds there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunPlacement {
    /// The node's id.
    pub node_id: uuid::Uuid,
    /// The node's name.
    pub node: String,
    /// The node's compute target.
    pub compute_target: String,
    /// GPU indexes on the node, ascending; the container sees exactly these.
    pub gpus: Vec<u32>,
    /// How the node hands GPUs to containers: `nvidia` (device requests),
    /// `simulated` (only `NVIDIA_VISIBLE_DEVICES`) or `none`.
    pub gpu_mode: String,
    /// CPU cores the container is limited to.
    pub cpus: Option<f64>,
    /// Memory (MiB) the container is limited to.
    pub memory_mb: Option<u64>,
    /// For a distributed run: where each rank goes, in rank order (rank 0
    /// is also the fields above).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranks: Vec<RankPlacement>,
}

/// Where one rank (process) of a distributed run goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RankPlacement {
    /// The node's id.
    pub node_id: uuid::Uuid,
    /// The node's name.
    pub node: String,
    /// GPU indexes on the node that this rank holds.
    pub gpus: Vec<u32>,
    /// Every GPU its node's processes hold, which each of them sees (in
    /// this order, so `cuda:LOCAL_RANK` is the rank's own).
    #[serde(default)]
    pub node_gpus: Vec<u32>,
    /// How the node hands GPUs to containers.
    pub gpu_mode: String,
    /// CPU cores the rank's container is limited to.
    pub cpus: Option<f64>,
    /// Memory (MiB) the rank's container is limited to.
    pub memory_mb: Option<u64>,
    /// The node's address, as the other ranks reach it.
    pub address: String,
    /// The port allocated to the rank on that address.
    pub port: u16,
}

/// What one container of a placed run holds on its node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContainerHolding<'a> {
    /// The node's id.
    pub node_id: uuid::Uuid,
    /// GPU indexes.
    pub gpus: &'a [u32],
    /// CPU cores.
    pub cpus: Option<f64>,
    /// Memory, MiB.
    pub memory_mb: Option<u64>,
}

impl RunPlacement {
    /// What each container of the run holds: every rank of a distributed
    /// run, else the one container.
    pub fn holdings(&self) -> Vec<ContainerHolding<'_>> {
        if self.ranks.is_empty() {
            return vec![ContainerHolding {
                node_id: self.node_id,
                gpus: &self.gpus,
                cpus: self.cpus,
                memory_mb: self.memory_mb,
            }];
        }
        self.ranks
            .iter()
            .map(|r| ContainerHolding {
                node_id: r.node_id,
                gpus: &r.gpus,
                cpus: r.cpus,
                memory_mb: r.memory_mb,
            })
            .collect()
    }
}

/// What a run may use on its node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// Whole GPUs.
    #[serde(default)]
    pub gpus: u32,
    /// CPU cores (fractions allowed); unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Memory in MiB; unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mb: Option<u64>,
}

impl Resources {
    /// One process's share when a node's resources are split between
    /// `per_node` processes.
    pub fn per_process(&self, per_node: u32) -> Resources {
        let per_node = per_node.max(1);
        Resources {
            gpus: self.gpus / per_node,
            cpus: self.cpus.map(|c| c / f64::from(per_node)),
            memory_mb: self.memory_mb.map(|m| (m / u64::from(per_node)).max(1)),
        }
    }

    /// Checks the amounts, naming the field at fault under `field`.
    pub fn validate(&self, field: &str) -> Result<(), FieldError> {
        if let Some(cpus) = self.cpus {
            if !(cpus.is_finite() && cpus > 0.0 && cpus <= 1024.0) {
                return Err(FieldError::new(
                    format!("{field}.cpus"),
                    "must be more than 0 and at most 1024",
                ));
            }
        }
        if self.memory_mb == Some(0) {
            return Err(FieldError::new(
                format!("{field}.memory_mb"),
                "must be more than 0",
            ));
        }
        if self.gpus > 64 {
            return Err(FieldError::new(
                format!("{field}.gpus"),
                "must be at most 64",
            ));
        }
        Ok(())
    }
}

/// The environment a run was submitted with, resolved to its spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunEnvironment {
    /// The registered environment's name, when the run named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The registered environment's version, when the run named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
    /// What the image contains.
    pub spec: EnvironmentSpec,
}

/// Where a run's inputs appear when no path is given.
pub const INPUTS_DIR: &str = "/mnt/inputs";

/// How a dataset reaches a run's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum InputMode {
    /// A read-only bind mount of the version's files (the node must see them).
    Mount,
    /// The files copied into the container before it starts.
    Download,
}

impl InputMode {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            InputMode::Mount => "mount",
            InputMode::Download => "download",
        }
    }
}

/// A dataset version a run reads, resolved at submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunInput {
    /// The input's name, used in `${{inputs.<name>}}` placeholders.
    pub name: String,
    /// The dataset's name.
    pub dataset: String,
    /// The dataset version used.
    pub version: i32,
    /// The dataset version's id.
    pub dataset_id: uuid::Uuid,
    /// How it reaches the container.
    pub mode: InputMode,
    /// Where it appears in the container.
    pub path: String,
}

/// Everything the executor needs to run a run, as stored with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunSpec {
    /// Digest of the source snapshot unpacked into the working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Entry script, relative to the snapshot root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// A command to run instead of a script.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Arguments after the script or command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    /// The image's contents.
    pub environment: RunEnvironment,
    /// The compute target; the local node when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_target: Option<String>,
    /// What the run may use.
    #[serde(default)]
    pub resources: Resources,
    /// Higher goes first on its compute target (-1000 to 1000).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub priority: i32,
    /// Variables set for the run's process.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment_variables: BTreeMap<String, String>,
    /// The run is stopped and fails after this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_limit_seconds: Option<u64>,
    /// Dataset versions the run reads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<RunInput>,
    /// Nodes a distributed run spans.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub node_count: u32,
    /// Processes on each node; each is a container (rank) of its own, and
    /// `resources` are split evenly between the processes of a node.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub process_count_per_node: u32,
    /// How the processes find each other; required with more than one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<Distribution>,
    /// Which ranks' files a distributed run keeps (`all` or `rank0`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub rank_outputs: RankOutputs,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

impl RunSpec {
    /// Checks the parts that do not need the store, naming the field at fault.
    pub fn validate(&self) -> Result<(), FieldError> {
        match (&self.script, self.command.is_empty()) {
            (Some(_), false) => {
                return Err(FieldError::new(
                    "command",
                    "give either script or command, not both",
                ))
            }
            (None, true) => return Err(FieldError::new("script", "is required (or give command)")),
            _ => {}
        }
        if let Some(script) = &self.script {
            let bad = script.is_empty()
                || script.starts_with('/')
                || script.split('/').any(|part| part == "..")
                || script.chars().any(char::is_control);
            if bad {
                return Err(FieldError::new(
                    "script",
                    "must be a relative path inside the source directory",
                ));
            }
            if self.snapshot.is_none() {
                return Err(FieldError::new("snapshot", "is required to run a script"));
            }
        }
        if let Some(snapshot) = &self.snapshot {
            if snapshot.len() != 64 || !snapshot.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(FieldError::new(
                    "snapshot",
                    "must be the digest returned by the snapshot upload",
                ));
            }
        }
        if self.command.iter().any(|part| part.contains('\0')) {
            return Err(FieldError::new(
                "command",
                "must not contain NUL characters",
            ));
        }
        self.environment.spec.validate("environment")?;
        self.resources.validate("resources")?;
        if !(-MAX_PRIORITY..=MAX_PRIORITY).contains(&self.priority) {
            return Err(FieldError::new(
                "priority",
                format!("must be between -{MAX_PRIORITY} and {MAX_PRIORITY}"),
            ));
        }
        for key in self.environment_variables.keys() {
            let ok = key
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok || key.starts_with("TRAINYARD_") {
                return Err(FieldError::new(
                    format!("environment_variables.{key}"),
                    "must be a variable name (letters, digits, '_') not starting with TRAINYARD_",
                ));
            }
        }
        distribution::validate(self.shape(), self.distribution.as_ref())?;
        if !self
            .resources
            .gpus
            .is_multiple_of(self.process_count_per_node)
        {
            return Err(FieldError::new(
                "resources.gpus",
                "must be a multiple of process_count_per_node (each process gets an equal share)",
            ));
        }
        if self.is_distributed() && self.compute_target.is_none() {
            return Err(FieldError::new(
                "compute_target",
                "a distributed run is placed on a compute target's nodes; name one",
            ));
        }
        if let Some(limit) = self.time_limit_seconds {
            if limit == 0 || limit > MAX_TIME_LIMIT_SECONDS {
                return Err(FieldError::new(
                    "time_limit_seconds",
                    format!("must be from 1 to {MAX_TIME_LIMIT_SECONDS}"),
                ));
            }
        }
        Ok(())
    }

    /// Nodes × processes per node.
    pub fn shape(&self) -> Shape {
        Shape {
            nodes: self.node_count,
            per_node: self.process_count_per_node,
        }
    }

    /// Whether the run's processes are ranks that find each other (then it
    /// has a container per process and a port per rank).
    pub fn is_distributed(&self) -> bool {
        self.shape().is_distributed(self.distribution.is_some())
    }

    /// What each process may use: the run's resources (per node) split
    /// evenly between the node's processes.
    pub fn process_resources(&self) -> Resources {
        self.resources.per_process(self.process_count_per_node)
    }

    /// Replaces each `${{inputs.<name>}}` in the arguments and the command
    /// with that input's path in the container.
    pub fn resolve_input_placeholders(&mut self) -> Result<(), FieldError> {
        let inputs = self.inputs.clone();
        let resolve = |field: String, text: &mut String| -> Result<(), FieldError> {
            while let Some(start) = text.find("${{inputs.") {
                let rest = &text[start + "${{inputs.".len()..];
                let end = rest.find("}}").ok_or_else(|| {
                    FieldError::new(
                        field.clone(),
                        "an ${{inputs.<name>}} placeholder is not closed",
                    )
                })?;
                let name = &rest[..end];
                let input = inputs.iter().find(|i| i.name == name).ok_or_else(|| {
                    FieldError::new(field.clone(), format!("no input named {name:?}"))
                })?;
                let placeholder_len = "${{inputs.".len() + end + "}}".len();
                text.replace_range(start..start + placeholder_len, &input.path);
            }
            Ok(())
        };
        for (i, argument) in self.arguments.iter_mut().enumerate() {
            resolve(format!("arguments[{i}]"), argument)?;
        }
        for (i, part) in self.command.iter_mut().enumerate() {
            resolve(format!("command[{i}]"), part)?;
        }
        Ok(())
    }

    /// The process the container runs: `python3 script.py args…` for Python
    /// scripts, `sh script.sh args…` for shell scripts, the script itself
    /// otherwise, or the command.
    pub fn process(&self) -> Vec<String> {
        let mut process = match &self.script {
            Some(script) if script.ends_with(".py") => {
                vec!["python3".to_string(), "-u".to_string(), script.clone()]
            }
            Some(script) if script.ends_with(".sh") => vec!["sh".to_string(), script.clone()],
            Some(script) => vec![format!("./{script}")],
            None => self.command.clone(),
        };
        process.extend(self.arguments.iter().cloned());
        process
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RunSpec {
        RunSpec {
            snapshot: Some("a".repeat(64)),
            script: Some("train.py".into()),
            command: vec![],
            arguments: vec!["--lr".into(), "0.1".into()],
            environment: RunEnvironment {
                name: None,
                version: None,
                spec: EnvironmentSpec::default(),
            },
            compute_target: None,
            resources: Resources::default(),
            priority: 0,
            environment_variables: BTreeMap::new(),
            time_limit_seconds: None,
            inputs: vec![],
            node_count: 1,
            process_count_per_node: 1,
            distribution: None,
            rank_outputs: RankOutputs::All,
        }
    }

    #[test]
    fn each_process_gets_an_equal_share_of_its_node() {
        let spec = RunSpec {
            process_count_per_node: 4,
            distribution: Some(Distribution::Pytorch {}),
            compute_target: Some("gpucluster".into()),
            resources: Resources {
                gpus: 8,
                cpus: Some(6.0),
                memory_mb: Some(4096),
            },
            ..spec()
        };
        spec.validate().unwrap();
        assert!(spec.is_distributed());
        assert_eq!(
            spec.process_resources(),
            Resources {
                gpus: 2,
                cpus: Some(1.5),
                memory_mb: Some(1024)
            }
        );
        assert!(!super::tests::spec().is_distributed());
    }

    #[test]
    fn input_placeholders_become_container_paths() {
        let mut spec = spec();
        spec.inputs.push(RunInput {
            name: "mnist".into(),
            dataset: "mnist".into(),
            version: 2,
            dataset_id: uuid::Uuid::nil(),
            mode: InputMode::Mount,
            path: "/mnt/inputs/mnist".into(),
        });
        spec.arguments = vec![
            "--data-folder".into(),
            "${{inputs.mnist}}".into(),
            "x=${{inputs.mnist}}/a".into(),
        ];
        spec.resolve_input_placeholders().unwrap();
        assert_eq!(
            spec.arguments,
            [
                "--data-folder",
                "/mnt/inputs/mnist",
                "x=/mnt/inputs/mnist/a"
            ]
        );
        spec.arguments = vec!["${{inputs.cifar}}".into()];
        assert_eq!(
            spec.resolve_input_placeholders().unwrap_err().field,
            "arguments[0]"
        );
    }

    #[test]
    fn scripts_run_with_their_interpreter() {
        assert_eq!(
            spec().process(),
            ["python3", "-u", "train.py", "--lr", "0.1"]
        );
        let shell = RunSpec {
            script: Some("run.sh".into()),
            arguments: vec![],
            ..spec()
        };
        assert_eq!(shell.process(), ["sh", "run.sh"]);
        let command = RunSpec {
            script: None,
            command: vec!["echo".into(), "hi".into()],
            arguments: vec![],
            ..spec()
        };
        assert_eq!(command.process(), ["echo", "hi"]);
    }

    #[test]
    fn bad_specs_name_their_field() {
        let cases = [
            (
                RunSpec {
                    script: Some("../x.py".into()),
                    ..spec()
                },
                "script",
            ),
            (
                RunSpec {
                    script: None,
                    ..spec()
                },
                "script",
            ),
            (
                RunSpec {
                    command: vec!["x".into()],
                    ..spec()
                },
                "command",
            ),
            (
                RunSpec {
                    snapshot: None,
                    ..spec()
                },
                "snapshot",
            ),
            (
                RunSpec {
                    snapshot: Some("xyz".into()),
                    ..spec()
                },
                "snapshot",
            ),
            (
                RunSpec {
                    time_limit_seconds: Some(0),
                    ..spec()
                },
                "time_limit_seconds",
            ),
            (
                RunSpec {
                    resources: Resources {
                        cpus: Some(-1.0),
                        ..Default::default()
                    },
                    ..spec()
                },
                "resources.cpus",
            ),
            (
                RunSpec {
                    environment_variables: BTreeMap::from([(
                        "TRAINYARD_RUN_ID".into(),
                        "x".into(),
                    )]),
                    ..spec()
                },
                "environment_variables.TRAINYARD_RUN_ID",
            ),
            (
                RunSpec {
                    node_count: 2,
                    distribution: Some(Distribution::Pytorch {}),
                    ..spec()
                },
                "compute_target",
            ),
            (
                RunSpec {
                    process_count_per_node: 2,
                    distribution: Some(Distribution::Pytorch {}),
                    compute_target: Some("gpucluster".into()),
                    resources: Resources {
                        gpus: 3,
                        ..Default::default()
                    },
                    ..spec()
                },
                "resources.gpus",
            ),
        ];
        for (spec, field) in cases {
            assert_eq!(spec.validate().unwrap_err().field, field);
        }
        assert!(spec().validate().is_ok());
    }
}
