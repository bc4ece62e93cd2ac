"""Compute targets: named pools of Docker nodes, and the nodes themselves.

Mirrors ``azureml.core.compute`` so that the seed's "get or create" cell ports
with its import changed::

    from trainyard.compute import AmlCompute, ComputeTarget, ComputeTargetException

    try:
        target = ComputeTarget(workspace=ws, name="gpucluster")
    except ComputeTargetException:
        config = AmlCompute.provisioning_configuration(vm_size="8xA100", max_nodes=4)
        target = ComputeTarget.create(ws, "gpucluster", config)
        target.wait_for_completion(show_output=True)

A compute target is created empty; its nodes (Docker engines) are registered
with :meth:`ComputeTarget.register_node`. :meth:`ComputeTarget.get_status`
shows what each node has free, :meth:`ComputeTarget.queue` the runs waiting
and why, and :meth:`ComputeTarget.cordon` / :meth:`~ComputeTarget.drain` /
:meth:`~ComputeTarget.uncordon` take nodes out of and back into service.
"""

from typing import TYPE_CHECKING, Any, Dict, List, Optional

from .exceptions import TrainyardError

if TYPE_CHECKING:  # pragma: no cover
    from .workspace import Workspace

__all__ = ["AmlCompute", "ComputeTarget", "ComputeTargetException", "ComputeTargetStatus",
           "ProvisioningConfiguration"]


class ComputeTargetException(TrainyardError):
    """A compute target is missing, or the server refused a change to one."""


class ProvisioningConfiguration:
    """What :meth:`ComputeTarget.create` makes: labels, ``max_nodes`` and the
    resources a run gets when it asks for none."""

    def __init__(self, vm_size: Optional[str] = None, max_nodes: int = 4, gpus: int = 0,
                 cpus: float = 1.0, memory_mb: int = 2048,
                 labels: Optional[Dict[str, str]] = None, **_ignored: Any) -> None:
        self.labels = dict(labels or {})
        if vm_size:
            self.labels["vm_size"] = vm_size
        self.max_nodes = max_nodes
        self.default_resources = {"gpus": gpus, "cpus": cpus, "memory_mb": memory_mb}


class AmlCompute:
    """Kept for ported notebooks: builds a :class:`ProvisioningConfiguration`."""

    @staticmethod
    def provisioning_configuration(vm_size: Optional[str] = None, max_nodes: int = 4,
                                   **kwargs: Any) -> ProvisioningConfiguration:
        """Azure's ``min_nodes``, ``idle_seconds_before_scaledown`` and the like
        are accepted and ignored: nodes here are machines you register."""
        return ProvisioningConfiguration(vm_size=vm_size, max_nodes=max_nodes, **kwargs)


class ComputeTargetStatus:
    """What :meth:`ComputeTarget.get_status` returns (Azure's ``AmlComputeStatus``):
    the target's nodes as the server shows them, and totals over them.

    Each node is a dict with ``name``, ``state`` (``ready``, ``cordoned``,
    ``draining``, ``down``), ``state_reason``, ``health`` (``unknown``, ``up``,
    ``down``), ``capacity`` (``{"gpus": 8, "cpus": 32.0, "memory_mb": …}``),
    ``allocated`` and ``free`` (``{"gpus": [indexes], "cpus", "memory_mb"}``)
    and ``running_runs`` (run ids); ``allocated`` and ``free`` are None and
    ``running_runs`` empty when the server does not report them.
    """

    def __init__(self, name: str, nodes: List[Dict[str, Any]]) -> None:
        self.name = name
        self.nodes: List[Dict[str, Any]] = []
        for node in nodes:
            node = dict(node)
            node.setdefault("allocated", None)
            node.setdefault("free", None)
            node["running_runs"] = list(node.get("running_runs") or [])
            self.nodes.append(node)

    @property
    def current_node_count(self) -> int:
        """How many nodes are registered."""
        return len(self.nodes)

    @property
    def node_state_counts(self) -> Dict[str, int]:
        """Nodes per state: ``{"ready": 2, "cordoned": 0, "draining": 1, "down": 0}``."""
        counts = {"ready": 0, "cordoned": 0, "draining": 0, "down": 0}
        for node in self.nodes:
            state = node.get("state") or "unknown"
            counts[state] = counts.get(state, 0) + 1
        return counts

    @property
    def running_runs(self) -> List[str]:
        """The ids of the runs that hold a node now."""
        return [run for node in self.nodes for run in node["running_runs"]]

    @property
    def capacity(self) -> Dict[str, Any]:
        """The nodes' resources added up: ``{"gpus", "cpus", "memory_mb"}``."""
        return {key: sum((node.get("capacity") or {}).get(key) or 0 for node in self.nodes)
                for key in ("gpus", "cpus", "memory_mb")}

    @property
    def free(self) -> Optional[Dict[str, Any]]:
        """What the nodes that take runs (``ready``, ``up`` or not yet checked)
        have free, added up (``gpus`` a count); None when the server does not
        report it."""
        if any(node["free"] is None for node in self.nodes):
            return None
        total: Dict[str, Any] = {"gpus": 0, "cpus": 0.0, "memory_mb": 0}
        for node in self.nodes:
            if node.get("state") != "ready" or node.get("health") == "down":
                continue
            free = node["free"]
            total["gpus"] += len(free.get("gpus") or [])
            total["cpus"] += free.get("cpus") or 0
            total["memory_mb"] += free.get("memory_mb") or 0
        return total

    def serialize(self) -> Dict[str, Any]:
        """All of it as a plain dict."""
        return {"name": self.name, "current_node_count": self.current_node_count,
                "node_state_counts": self.node_state_counts,
                "running_runs": self.running_runs, "capacity": self.capacity,
                "free": self.free, "nodes": [dict(node) for node in self.nodes]}

    def __repr__(self) -> str:
        return (f"ComputeTargetStatus(name={self.name!r}, "
                f"current_node_count={self.current_node_count}, "
                f"node_state_counts={self.node_state_counts}, free={self.free})")


class ComputeTarget:
    """A compute target of a workspace; ``ComputeTarget(ws, name)`` raises
    :class:`ComputeTargetException` when there is none of that name.

    Pass it (or its name) as ``ScriptRunConfig(compute_target=…)``.
    """

    def __init__(self, workspace: "Workspace", name: str, **kwargs: Any) -> None:
        self._workspace = workspace
        view = kwargs.get("_view")
        if view is None:
            try:
                view = workspace._http.get(workspace._path("compute", name))
            except TrainyardError as err:
                if err.status == 404:
                    raise ComputeTargetException(
                        404, "not_found",
                        f"no compute target named {name!r} in the workspace") from err
                raise
        self._view: Dict[str, Any] = view

    @classmethod
    def create(cls, workspace: "Workspace", name: str,
               provisioning_configuration: ProvisioningConfiguration) -> "ComputeTarget":
        """Creates a compute target (workspace administrators)."""
        config = provisioning_configuration
        view = workspace._http.post(workspace._path("compute"), {
            "name": name, "labels": config.labels, "max_nodes": config.max_nodes,
            "default_resources": config.default_resources})
        return cls(workspace, name, _view=view)

    @classmethod
    def list(cls, workspace: "Workspace") -> List["ComputeTarget"]:
        """The workspace's compute targets, by name."""
        answer = workspace._http.get(workspace._path("compute"))
        return [cls(workspace, item["name"], _view=item) for item in answer.get("items", [])]

    @property
    def name(self) -> str:
        """Its name."""
        return self._view["name"]

    @property
    def max_nodes(self) -> int:
        """Most nodes it may hold."""
        return int(self._view["max_nodes"])

    @property
    def labels(self) -> Dict[str, str]:
        """Node labels such as a VM size."""
        return dict(self._view.get("labels") or {})

    @property
    def default_resources(self) -> Dict[str, Any]:
        """What a run gets when it asks for nothing."""
        return dict(self._view.get("default_resources") or {})

    def wait_for_completion(self, show_output: bool = False, **_ignored: Any) -> None:
        """A target is ready when created; prints its nodes with ``show_output``."""
        if show_output:
            nodes = self.list_nodes()
            print(f"{self.name}: {len(nodes)} of at most {self.max_nodes} nodes registered")
            for node in nodes:
                capacity = node["capacity"]
                print(f"  {node['name']} {node['state']} {capacity['gpus']} GPUs "
                      f"{capacity['cpus']} CPUs {capacity['memory_mb']} MiB")

    def register_node(self, name: str, endpoint: str, cpus: Optional[float] = None,
                      memory_mb: Optional[int] = None, gpus: int = 0,
                      gpu_mode: Optional[str] = None,
                      tls: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
        """Registers a Docker engine as a node: ``unix:///var/run/docker.sock`` or
        ``tcp://host:port`` with ``tls={"ca", "cert", "key"}`` (paths on the
        server's machine). CPUs and memory left out are read from the engine.
        ``gpu_mode`` is ``nvidia``, ``simulated`` or ``none`` (``nvidia`` when
        GPUs are given and no mode is)."""
        body: Dict[str, Any] = {"name": name, "endpoint": endpoint, "gpus": gpus,
                                "gpu_mode": gpu_mode or ("nvidia" if gpus else "none")}
        if cpus is not None:
            body["cpus"] = cpus
        if memory_mb is not None:
            body["memory_mb"] = memory_mb
        if tls:
            body["tls"] = tls
        return self._workspace._http.post(self._path("nodes"), body)

    def list_nodes(self) -> List[Dict[str, Any]]:
        """Its nodes with their state, health and capacity and, from servers
        that report them, ``allocated``, ``free`` and ``running_runs``."""
        return list(self._workspace._http.get(self._path("nodes")).get("items", []))

    def get_node(self, node: str) -> Dict[str, Any]:
        """One node, as :meth:`list_nodes` shows it."""
        return self._workspace._http.get(self._path("nodes", node))

    def remove_node(self, node: str) -> None:
        """Removes a node from the target (workspace administrators)."""
        self._workspace._http.delete(self._path("nodes", node))

    def get_status(self) -> ComputeTargetStatus:
        """Its nodes now (state, health, capacity, allocated, free, running
        runs) and totals over them, like Azure's ``AmlCompute.get_status()``::

            status = target.get_status()
            print(status.node_state_counts, status.free)
            for node in status.nodes:
                print(node["name"], node["state"], node["free"], node["running_runs"])
        """
        return ComputeTargetStatus(self.name, self.list_nodes())

    def queue(self) -> List[Dict[str, Any]]:
        """The runs waiting for this target, in the order they will be placed:
        ``{"run_id", "display_name", "priority", "created_at", "wait_reason"}``."""
        return list(self._workspace._http.get(self._path("queue")).get("runs", []))

    def cordon(self, node: str, reason: Optional[str] = None) -> Dict[str, Any]:
        """Takes a node out of placement: no new runs, running ones keep running."""
        return self.set_node_state(node, "cordoned", reason)

    def drain(self, node: str, reason: Optional[str] = None) -> Dict[str, Any]:
        """Like :meth:`cordon`, for a node whose running runs are to finish
        before it is worked on."""
        return self.set_node_state(node, "draining", reason)

    def uncordon(self, node: str) -> Dict[str, Any]:
        """Makes a cordoned or draining node take runs again."""
        return self.set_node_state(node, "ready")

    def set_node_state(self, node: str, state: str, reason: Optional[str] = None
                       ) -> Dict[str, Any]:
        """``ready``, ``cordoned`` (no new runs) or ``draining`` (no new runs,
        running ones finish)."""
        body: Dict[str, Any] = {"state": state}
        if reason:
            body["reason"] = reason
        return self._workspace._http.put(self._path("nodes", node, "state"), body)

    def delete(self) -> None:
        """Deletes it and its nodes; refused while runs that use it are not finished."""
        self._workspace._http.delete(self._workspace._path("compute", self.name))

    def _path(self, *parts: Any) -> str:
        return self._workspace._path("compute", self.name, *parts)

    def __repr__(self) -> str:
        return f"ComputeTarget(name={self.name!r}, max_nodes={self.max_nodes})"
