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
with :meth:`ComputeTarget.register_node`.
"""

from typing import TYPE_CHECKING, Any, Dict, List, Optional

from .exceptions import TrainyardError

if TYPE_CHECKING:  # pragma: no cover
    from .workspace import Workspace

__all__ = ["AmlCompute", "ComputeTarget", "ComputeTargetException", "ProvisioningConfiguration"]


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

    def register_node(self, name: str, endpoint: str, cpus: float, memory_mb: int,
                      gpus: int = 0, gpu_mode: Optional[str] = None,
                      tls: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
        """Registers a Docker engine as a node: ``unix:///var/run/docker.sock`` or
        ``tcp://host:port`` with ``tls={"ca", "cert", "key"}`` (paths on the
        server's machine). ``gpu_mode`` is ``nvidia``, ``simulated`` or ``none``
        (``nvidia`` when GPUs are given and no mode is)."""
        body: Dict[str, Any] = {"name": name, "endpoint": endpoint, "cpus": cpus,
                                "memory_mb": memory_mb, "gpus": gpus,
                                "gpu_mode": gpu_mode or ("nvidia" if gpus else "none")}
        if tls:
            body["tls"] = tls
        return self._workspace._http.post(self._path("nodes"), body)

    def list_nodes(self) -> List[Dict[str, Any]]:
        """Its nodes with their state and capacity."""
        return list(self._workspace._http.get(self._path("nodes")).get("items", []))

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
