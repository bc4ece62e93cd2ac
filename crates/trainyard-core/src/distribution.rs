//! Distributed runs: one script on `node_count` nodes × `process_count_per_node`
//! processes, each process in a container of its own (a rank), and the
//! variables each framework's launcher expects, computed from where the
//! ranks were placed. Pure: the executor only applies what is decided here.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::validate::FieldError;

/// Most nodes a run may span.
pub const MAX_NODE_COUNT: u32 = 64;
/// Most processes per node.
pub const MAX_PROCESSES_PER_NODE: u32 = 64;
/// Most processes (containers) of one run.
pub const MAX_PROCESSES: u32 = 256;

/// Ports that distributed runs open on a node's address (host networking):
/// each rank gets one, never shared by two ranks on the same address.
pub const PORT_RANGE: std::ops::Range<u16> = 29500..30500;

/// How the processes of a run find each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Distribution {
    /// `torch.distributed`: `MASTER_ADDR`, `MASTER_PORT`, `WORLD_SIZE`,
    /// `RANK`, `LOCAL_RANK`, `NODE_RANK`, `LOCAL_WORLD_SIZE` per process.
    Pytorch {},
    /// TensorFlow's parameter-server or multi-worker shape: `TF_CONFIG` per
    /// task. Tasks are the chief (when asked), then the workers, then the
    /// parameter servers; together they are `node_count ×
    /// process_count_per_node`.
    Tensorflow {
        /// Worker tasks; by default every process not a chief or a
        /// parameter server.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        worker_count: Option<u32>,
        /// Parameter-server tasks.
        #[serde(default)]
        parameter_server_count: u32,
        /// Whether task 0 is a chief.
        #[serde(default)]
        chief: bool,
    },
    /// MPI (Horovod or any MPI program): rank 0 launches the processes with
    /// `mpirun` over SSH on every rank's container (the image needs Open MPI,
    /// `ssh` and `sshd`).
    Mpi {},
}

/// Which ranks' `./outputs` and `./logs` a distributed run keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RankOutputs {
    /// Rank 0's as the run's, every other rank's under `outputs/rank-N/`
    /// and `logs/rank-N/`.
    #[default]
    All,
    /// Rank 0's only.
    Rank0,
}

impl RankOutputs {
    /// Whether rank `rank`'s files are kept.
    pub fn keeps(self, rank: u32) -> bool {
        self == RankOutputs::All || rank == 0
    }
}

/// A rank's address as the other ranks reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The node's address (host networking).
    pub address: String,
    /// The port allocated to the rank.
    pub port: u16,
}

/// The shape of a run's processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Nodes.
    pub nodes: u32,
    /// Processes on each.
    pub per_node: u32,
}

impl Shape {
    /// Every process of the run.
    pub fn processes(self) -> u32 {
        self.nodes * self.per_node
    }

    /// Whether a run of this shape (with a `distribution` or not) has ranks
    /// that find each other: a container per process and a port per rank.
    pub fn is_distributed(self, has_distribution: bool) -> bool {
        has_distribution || self.processes() > 1
    }
}

/// Checks a distributed shape, naming the field at fault.
pub fn validate(shape: Shape, distribution: Option<&Distribution>) -> Result<(), FieldError> {
    if !(1..=MAX_NODE_COUNT).contains(&shape.nodes) {
        return Err(FieldError::new(
            "node_count",
            format!("must be from 1 to {MAX_NODE_COUNT}"),
        ));
    }
    if !(1..=MAX_PROCESSES_PER_NODE).contains(&shape.per_node) {
        return Err(FieldError::new(
            "process_count_per_node",
            format!("must be from 1 to {MAX_PROCESSES_PER_NODE}"),
        ));
    }
    if shape.processes() > MAX_PROCESSES {
        return Err(FieldError::new(
            "node_count",
            format!("node_count × process_count_per_node must be at most {MAX_PROCESSES}"),
        ));
    }
    match distribution {
        None if shape.processes() > 1 => Err(FieldError::new(
            "distribution",
            "is required when a run has more than one process (pytorch, tensorflow or mpi)",
        )),
        Some(Distribution::Tensorflow { .. }) => tensorflow_tasks(shape, distribution).map(|_| ()),
        _ => Ok(()),
    }
}

/// TensorFlow task (type, index) of each rank.
fn tensorflow_tasks(
    shape: Shape,
    distribution: Option<&Distribution>,
) -> Result<Vec<(&'static str, u32)>, FieldError> {
    let Some(Distribution::Tensorflow {
        worker_count,
        parameter_server_count,
        chief,
    }) = distribution
    else {
        return Ok(Vec::new());
    };
    let total = shape.processes();
    let chiefs = u32::from(*chief);
    let workers = match worker_count {
        Some(n) => *n,
        None => total.saturating_sub(chiefs + parameter_server_count),
    };
    if chiefs + workers + parameter_server_count != total {
        return Err(FieldError::new(
            "distribution.worker_count",
            format!(
                "chief, workers and parameter servers ({}) must add up to node_count × \
                 process_count_per_node ({total})",
                chiefs + workers + parameter_server_count
            ),
        ));
    }
    if workers == 0 && chiefs == 0 {
        return Err(FieldError::new(
            "distribution.worker_count",
            "needs at least one worker or a chief",
        ));
    }
    let mut tasks = Vec::with_capacity(total as usize);
    tasks.extend((0..chiefs).map(|i| ("chief", i)));
    tasks.extend((0..workers).map(|i| ("worker", i)));
    tasks.extend((0..*parameter_server_count).map(|i| ("ps", i)));
    Ok(tasks)
}

/// The variables of rank `rank` of a run of `shape`, whose ranks are
/// reachable at `peers` (one per rank, in rank order).
pub fn rank_environment(
    distribution: Option<&Distribution>,
    shape: Shape,
    rank: u32,
    peers: &[Peer],
) -> Vec<(String, String)> {
    let world = shape.processes();
    let node_rank = rank / shape.per_node;
    let local_rank = rank % shape.per_node;
    let own_port = peers.get(rank as usize).map_or(0, |p| p.port);
    let mut env = vec![
        ("TRAINYARD_RANK".to_string(), rank.to_string()),
        ("TRAINYARD_WORLD_SIZE".to_string(), world.to_string()),
        ("TRAINYARD_NODE_RANK".to_string(), node_rank.to_string()),
        ("TRAINYARD_LOCAL_RANK".to_string(), local_rank.to_string()),
        ("TRAINYARD_PORT".to_string(), own_port.to_string()),
    ];
    let head = peers.first();
    match distribution {
        None => {}
        Some(Distribution::Pytorch {}) => {
            let (address, port) = head.map_or(("127.0.0.1", 0), |h| (h.address.as_str(), h.port));
            env.extend([
                ("MASTER_ADDR".to_string(), address.to_string()),
                ("MASTER_PORT".to_string(), port.to_string()),
                ("WORLD_SIZE".to_string(), world.to_string()),
                ("RANK".to_string(), rank.to_string()),
                ("LOCAL_RANK".to_string(), local_rank.to_string()),
                ("NODE_RANK".to_string(), node_rank.to_string()),
                ("GROUP_RANK".to_string(), node_rank.to_string()),
                ("LOCAL_WORLD_SIZE".to_string(), shape.per_node.to_string()),
            ]);
        }
        Some(Distribution::Tensorflow { .. }) => {
            if let Ok(tasks) = tensorflow_tasks(shape, distribution) {
                env.push(("TF_CONFIG".to_string(), tf_config(&tasks, rank, peers)));
            }
        }
        Some(Distribution::Mpi {}) => {
            env.extend([
                ("OMPI_COMM_WORLD_SIZE".to_string(), world.to_string()),
                (
                    "OMPI_COMM_WORLD_LOCAL_SIZE".to_string(),
                    shape.per_node.to_string(),
                ),
            ]);
        }
    }
    env
}

/// Which ranks' ends end the run (the others are then stopped): MPI's
/// launcher (rank 0, whose `mpirun` runs every process); TensorFlow's chief
/// and workers when there are parameter servers (which serve until
/// stopped); otherwise every rank.
pub fn essential_ranks(distribution: Option<&Distribution>, shape: Shape) -> Vec<bool> {
    let world = shape.processes() as usize;
    match distribution {
        Some(Distribution::Mpi {}) => (0..world).map(|rank| rank == 0).collect(),
        Some(Distribution::Tensorflow { .. }) => match tensorflow_tasks(shape, distribution) {
            Ok(tasks) => tasks.iter().map(|(kind, _)| *kind != "ps").collect(),
            Err(_) => vec![true; world],
        },
        _ => vec![true; world],
    }
}

/// `TF_CONFIG`: the whole cluster by task type, and this rank's task.
fn tf_config(tasks: &[(&'static str, u32)], rank: u32, peers: &[Peer]) -> String {
    let mut cluster = serde_json::Map::new();
    for ((kind, _), peer) in tasks.iter().zip(peers) {
        let list = cluster
            .entry(kind.to_string())
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let serde_json::Value::Array(list) = list {
            list.push(format!("{}:{}", peer.address, peer.port).into());
        }
    }
    let (kind, index) = tasks.get(rank as usize).copied().unwrap_or(("worker", 0));
    serde_json::json!({
        "cluster": cluster,
        "task": {"type": kind, "index": index},
        "environment": "cloud",
    })
    .to_string()
}

/// The name a rank's peers know it by (`/etc/hosts` of every rank).
pub fn rank_host(rank: u32) -> String {
    format!("rank-{rank}")
}

/// The address other nodes reach a node's host-networked containers at:
/// the host of a `tcp://` endpoint, loopback for the local socket.
pub fn node_address(endpoint: &str) -> String {
    let Some(rest) = endpoint.strip_prefix("tcp://") else {
        return "127.0.0.1".to_string();
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host {
        "" | "localhost" => "127.0.0.1".to_string(),
        host => host.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(n: u16) -> Vec<Peer> {
        (0..n)
            .map(|i| Peer {
                address: format!("10.0.0.{}", i / 2),
                port: 29500 + i,
            })
            .collect()
    }

    fn get<'a>(env: &'a [(String, String)], name: &str) -> &'a str {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{name} is not set"))
    }

    #[test]
    fn pytorch_ranks_know_the_head_and_their_place() {
        let shape = Shape {
            nodes: 2,
            per_node: 2,
        };
        let env = rank_environment(Some(&Distribution::Pytorch {}), shape, 3, &peers(4));
        assert_eq!(get(&env, "MASTER_ADDR"), "10.0.0.0");
        assert_eq!(get(&env, "MASTER_PORT"), "29500");
        assert_eq!(get(&env, "WORLD_SIZE"), "4");
        assert_eq!(get(&env, "RANK"), "3");
        assert_eq!(get(&env, "LOCAL_RANK"), "1");
        assert_eq!(get(&env, "NODE_RANK"), "1");
        assert_eq!(get(&env, "LOCAL_WORLD_SIZE"), "2");
        assert_eq!(get(&env, "TRAINYARD_PORT"), "29503");
    }

    #[test]
    fn tf_config_lists_every_task_and_names_this_one() {
        let tf = Distribution::Tensorflow {
            worker_count: None,
            parameter_server_count: 1,
            chief: true,
        };
        let shape = Shape {
            nodes: 4,
            per_node: 1,
        };
        validate(shape, Some(&tf)).unwrap();
        let env = rank_environment(Some(&tf), shape, 2, &peers(4));
        let config: serde_json::Value = serde_json::from_str(get(&env, "TF_CONFIG")).unwrap();
        assert_eq!(
            config["cluster"]["chief"],
            serde_json::json!(["10.0.0.0:29500"])
        );
        assert_eq!(
            config["cluster"]["worker"],
            serde_json::json!(["10.0.0.0:29501", "10.0.0.1:29502"])
        );
        assert_eq!(
            config["cluster"]["ps"],
            serde_json::json!(["10.0.0.1:29503"])
        );
        assert_eq!(
            config["task"],
            serde_json::json!({"type": "worker", "index": 1})
        );
    }

    #[test]
    fn launchers_chiefs_and_workers_end_a_run() {
        let shape = Shape {
            nodes: 2,
            per_node: 2,
        };
        assert_eq!(
            essential_ranks(Some(&Distribution::Mpi {}), shape),
            [true, false, false, false]
        );
        let tf = Distribution::Tensorflow {
            worker_count: None,
            parameter_server_count: 1,
            chief: true,
        };
        assert_eq!(essential_ranks(Some(&tf), shape), [true, true, true, false]);
        assert_eq!(
            essential_ranks(Some(&Distribution::Pytorch {}), shape),
            [true; 4]
        );
    }

    #[test]
    fn bad_shapes_name_their_field() {
        let one = Shape {
            nodes: 1,
            per_node: 1,
        };
        assert!(validate(one, None).is_ok());
        let four = Shape {
            nodes: 2,
            per_node: 2,
        };
        assert_eq!(validate(four, None).unwrap_err().field, "distribution");
        let zero = Shape {
            nodes: 0,
            per_node: 1,
        };
        assert_eq!(validate(zero, None).unwrap_err().field, "node_count");
        let wide = Shape {
            nodes: 1,
            per_node: 65,
        };
        assert_eq!(
            validate(wide, Some(&Distribution::Mpi {}))
                .unwrap_err()
                .field,
            "process_count_per_node"
        );
        let tf = Distribution::Tensorflow {
            worker_count: Some(3),
            parameter_server_count: 2,
            chief: false,
        };
        assert_eq!(
            validate(four, Some(&tf)).unwrap_err().field,
            "distribution.worker_count"
        );
    }

    #[test]
    fn distribution_json_is_tagged_by_type() {
        let tf: Distribution = serde_json::from_str(
            r#"{"type": "tensorflow", "worker_count": 2, "parameter_server_count": 1}"#,
        )
        .unwrap();
        assert_eq!(
            tf,
            Distribution::Tensorflow {
                worker_count: Some(2),
                parameter_server_count: 1,
                chief: false
            }
        );
        assert!(serde_json::from_str::<Distribution>(r#"{"type": "horovod"}"#).is_err());
        assert!(serde_json::from_str::<Distribution>(r#"{"type": "mpi", "x": 1}"#).is_err());
    }

    #[test]
    fn node_addresses_come_from_endpoints() {
        assert_eq!(node_address("unix:///var/run/docker.sock"), "127.0.0.1");
        assert_eq!(node_address("tcp://10.1.2.3:2376"), "10.1.2.3");
        assert_eq!(node_address("tcp://gpu-7.lan:2376"), "gpu-7.lan");
        assert_eq!(node_address("tcp://localhost:2375"), "127.0.0.1");
        assert_eq!(node_address("tcp://[fd00::1]:2376"), "fd00::1");
    }
}
