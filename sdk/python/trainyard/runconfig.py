"""Distributed training: how many processes a run has and how they find each other.

Mirrors ``azureml.core.runconfig``'s ``MpiConfiguration``,
``PyTorchConfiguration`` and ``TensorflowConfiguration``; give one to
``ScriptRunConfig(distributed_job_config=…)``::

    from trainyard import PyTorchConfiguration, ScriptRunConfig

    src = ScriptRunConfig("./src", "train.py", compute_target="gpucluster",
                          environment=env,
                          distributed_job_config=PyTorchConfiguration(process_count=8,
                                                                      node_count=2))

Every process is a container of its own (a *rank*), placed on the compute
target's nodes; a run's ``resources`` are per node, split evenly between the
processes of a node. Each rank gets ``TRAINYARD_RANK``,
``TRAINYARD_WORLD_SIZE``, ``TRAINYARD_NODE_RANK``, ``TRAINYARD_LOCAL_RANK``
and ``TRAINYARD_PORT``; PyTorch ranks also ``MASTER_ADDR``, ``MASTER_PORT``,
``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``NODE_RANK`` and
``LOCAL_WORLD_SIZE``; TensorFlow tasks ``TF_CONFIG``; MPI runs start with
``mpirun`` on rank 0.
"""

from typing import Any, Dict, Optional, Tuple

__all__ = ["DistributedConfiguration", "MpiConfiguration", "PyTorchConfiguration",
           "TensorflowConfiguration", "MAX_NODE_COUNT", "MAX_PROCESSES_PER_NODE",
           "MAX_PROCESSES"]

#: Most nodes a run may span.
MAX_NODE_COUNT = 64
#: Most processes on one node.
MAX_PROCESSES_PER_NODE = 64
#: Most processes (containers) of one run.
MAX_PROCESSES = 256

_BACKENDS = ("nccl", "gloo", "mpi")


def _count(name: str, value: Any, low: int, high: Optional[int] = None) -> int:
    """``value`` as an int from ``low`` to ``high``; ValueError naming ``name`` otherwise."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise ValueError(f"{name} must be {bounds}, not {value}")
    return value


class DistributedConfiguration:
    """What the three configurations share: the run's shape and its ``distribution``."""

    #: The ``distribution.type`` sent to the server.
    _type = ""

    def _shape(self, node_count: Optional[int] = None) -> Tuple[int, int]:
        """``(node_count, process_count_per_node)``; ``node_count`` is the
        ``ScriptRunConfig``'s, when it gave one. Raises ValueError."""
        raise NotImplementedError

    def _distribution(self) -> Dict[str, Any]:
        return {"type": self._type}

    def _run_fields(self, node_count: Optional[int] = None) -> Dict[str, Any]:
        """The ``POST …/runs`` fields: ``node_count``, ``process_count_per_node``
        and ``distribution``.

        Raises:
            ValueError: a count is out of range or the shape does not add up;
                the message names the argument.
        """
        nodes, per_node = self._shape(node_count)
        nodes = _count("node_count", nodes, 1, MAX_NODE_COUNT)
        per_node = _count("process_count_per_node", per_node, 1, MAX_PROCESSES_PER_NODE)
        if nodes * per_node > MAX_PROCESSES:
            raise ValueError(f"node_count × process_count_per_node must be at most "
                             f"{MAX_PROCESSES}, not {nodes} × {per_node}")
        return {"node_count": nodes, "process_count_per_node": per_node,
                "distribution": self._distribution()}


class MpiConfiguration(DistributedConfiguration):
    """An MPI job (Horovod or any MPI program): rank 0 starts every process
    with ``mpirun`` over SSH; the image needs Open MPI, ``ssh`` and ``sshd``
    (e.g. ``trainyard/mpi:bookworm``).

    Args:
        process_count_per_node: Processes on each node (1 to 64).
        node_count: Nodes (1 to 64).
    """

    _type = "mpi"

    def __init__(self, process_count_per_node: int = 1, node_count: int = 1) -> None:
        self.process_count_per_node = _count("process_count_per_node", process_count_per_node,
                                             1, MAX_PROCESSES_PER_NODE)
        self.node_count = _count("node_count", node_count, 1, MAX_NODE_COUNT)

    def _shape(self, node_count: Optional[int] = None) -> Tuple[int, int]:
        nodes = self.node_count if node_count is None else node_count
        return (_count("node_count", nodes, 1, MAX_NODE_COUNT),
                _count("process_count_per_node", self.process_count_per_node, 1,
                       MAX_PROCESSES_PER_NODE))

    def __repr__(self) -> str:
        return (f"MpiConfiguration(process_count_per_node={self.process_count_per_node}, "
                f"node_count={self.node_count})")


class PyTorchConfiguration(DistributedConfiguration):
    """A ``torch.distributed`` job: each rank gets ``MASTER_ADDR``,
    ``MASTER_PORT``, ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``NODE_RANK``
    and ``LOCAL_WORLD_SIZE``, so ``init_process_group(backend)`` with the
    ``env://`` method just works.

    Args:
        communication_backend: ``"Nccl"``, ``"Gloo"`` or ``"Mpi"``; kept for
            Azure code, but not sent: the script picks its backend.
        process_count: Every process of the run (default: one per node); a
            multiple of ``node_count``.
        node_count: Nodes (1 to 64).
    """

    _type = "pytorch"

    def __init__(self, communication_backend: str = "Nccl",
                 process_count: Optional[int] = None, node_count: int = 1) -> None:
        if not isinstance(communication_backend, str) or \
                communication_backend.lower() not in _BACKENDS:
            raise ValueError(f"communication_backend must be Nccl, Gloo or Mpi, "
                             f"not {communication_backend!r}")
        self.communication_backend = communication_backend
        self.node_count = _count("node_count", node_count, 1, MAX_NODE_COUNT)
        self.process_count = (None if process_count is None
                              else _count("process_count", process_count, 1, MAX_PROCESSES))
        self._shape()

    def _shape(self, node_count: Optional[int] = None) -> Tuple[int, int]:
        nodes = _count("node_count", self.node_count if node_count is None else node_count,
                       1, MAX_NODE_COUNT)
        total = nodes if self.process_count is None else _count(
            "process_count", self.process_count, 1, MAX_PROCESSES)
        if total % nodes:
            raise ValueError(f"process_count ({total}) must be a multiple of node_count "
                             f"({nodes}): each node runs as many processes")
        return nodes, total // nodes

    @property
    def process_count_per_node(self) -> int:
        """``process_count // node_count``."""
        return self._shape()[1]

    def __repr__(self) -> str:
        return (f"PyTorchConfiguration(communication_backend={self.communication_backend!r}, "
                f"process_count={self.process_count}, node_count={self.node_count})")


class TensorflowConfiguration(DistributedConfiguration):
    """A TensorFlow job (parameter servers or multi-worker): each task gets
    ``TF_CONFIG`` (``cluster`` and its own ``task``). Tasks are the chief
    (when asked), then the workers, then the parameter servers, one process
    each; by default each on a node of its own.

    Args:
        worker_count: Worker tasks.
        parameter_server_count: Parameter-server tasks.
        chief: Whether task 0 is a ``chief`` (a Trainyard addition; Azure has none).

    ``node_count`` is ``worker_count + parameter_server_count`` (+1 with a
    chief), one process per node; ``ScriptRunConfig(node_count=n)`` packs the
    tasks on ``n`` nodes instead (the tasks must divide evenly).
    """

    _type = "tensorflow"

    def __init__(self, worker_count: int = 1, parameter_server_count: int = 1,
                 chief: bool = False) -> None:
        self.worker_count = _count("worker_count", worker_count, 0, MAX_PROCESSES)
        self.parameter_server_count = _count("parameter_server_count", parameter_server_count,
                                             0, MAX_PROCESSES)
        if not isinstance(chief, bool):
            raise ValueError(f"chief must be True or False, not {chief!r}")
        self.chief = chief
        self._shape()

    @property
    def node_count(self) -> int:
        """One node per task: ``worker_count + parameter_server_count`` (+1 with a chief)."""
        return self._tasks()

    def _tasks(self) -> int:
        workers = _count("worker_count", self.worker_count, 0, MAX_PROCESSES)
        servers = _count("parameter_server_count", self.parameter_server_count, 0,
                         MAX_PROCESSES)
        if workers == 0 and not self.chief:
            raise ValueError("worker_count must be at least 1 (or ask for a chief)")
        return int(bool(self.chief)) + workers + servers

    def _shape(self, node_count: Optional[int] = None) -> Tuple[int, int]:
        tasks = self._tasks()
        if tasks > MAX_PROCESSES:
            raise ValueError(f"worker_count + parameter_server_count must be at most "
                             f"{MAX_PROCESSES}, not {tasks}")
        if node_count is None:
            if tasks > MAX_NODE_COUNT:
                raise ValueError(f"{tasks} TensorFlow tasks need {tasks} nodes, more than "
                                 f"{MAX_NODE_COUNT}: give ScriptRunConfig(node_count=…) to "
                                 f"put several on a node")
            return tasks, 1
        nodes = _count("node_count", node_count, 1, MAX_NODE_COUNT)
        if tasks % nodes:
            raise ValueError(f"node_count ({nodes}) must divide the TensorFlow tasks "
                             f"({tasks}: chief, workers and parameter servers) evenly")
        return nodes, tasks // nodes

    def _distribution(self) -> Dict[str, Any]:
        distribution: Dict[str, Any] = {"type": "tensorflow",
                                        "worker_count": self.worker_count,
                                        "parameter_server_count": self.parameter_server_count}
        if self.chief:
            distribution["chief"] = True
        return distribution

    def __repr__(self) -> str:
        chief = ", chief=True" if self.chief else ""
        return (f"TensorflowConfiguration(worker_count={self.worker_count}, "
                f"parameter_server_count={self.parameter_server_count}{chief})")
