"""What to run: a script (or command) from a source folder, in an environment.

Mirrors ``azureml.core.ScriptRunConfig``. ``Experiment.submit(config)``
packs ``source_directory`` (ignore rules applied), uploads it as a snapshot
and submits the run. ``distributed_job_config`` (an
:class:`~trainyard.runconfig.MpiConfiguration`,
:class:`~trainyard.runconfig.PyTorchConfiguration` or
:class:`~trainyard.runconfig.TensorflowConfiguration`, also importable from
here) makes it a distributed run.
"""

import os
import shlex
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Union

from ._snapshot import IgnoreRules, pack_directory
from .dataset import DatasetConsumptionConfig, FileDataset
from .environment import Environment
from .runconfig import (DistributedConfiguration, MpiConfiguration, PyTorchConfiguration,
                        TensorflowConfiguration)

if TYPE_CHECKING:  # pragma: no cover
    from .experiment import Experiment
    from .run import Run

__all__ = ["ScriptRunConfig", "MpiConfiguration", "PyTorchConfiguration",
           "TensorflowConfiguration"]

_RESOURCE_KEYS = ("gpus", "cpus", "memory_mb")


class ScriptRunConfig:
    """A script or command to run from a source folder.

    Args:
        source_directory: The folder uploaded as the run's working directory
            (``/workspace``). ``None`` uploads nothing (then give ``command``).
        script: The entry script, relative to ``source_directory``: ``.py`` runs
            with ``python3 -u``, ``.sh`` with ``sh``, anything else is executed.
        arguments: Arguments after the script or command (turned into strings).
        compute_target: A compute target's name (or an object with ``.name``);
            the server's local node when absent.
        environment: An :class:`Environment` (registered ones are named by
            version, others sent inline), a registered environment's name, or
            ``None`` for the server's default image.
        command: A command instead of a script: a list of arguments, or one
            string run with ``sh -c``.
        resources: ``{"gpus": 1, "cpus": 4, "memory_mb": 8192}``.
        environment_variables: Variables for the run's process.
        max_run_duration_seconds: Stop and fail the run after this many seconds.
        inputs: Dataset inputs: ``ds.as_named_input("mnist").as_mount()`` (a
            :class:`~trainyard.dataset.DatasetConsumptionConfig`) or the API's
            ``{"name", "dataset", "version", "mode", "path"}``. Such a config
            given in ``arguments`` (or ``command``) is an input too, and stands
            there for its path in the container (``${{inputs.mnist}}``).
        distributed_job_config: A distributed run: :class:`MpiConfiguration`,
            :class:`PyTorchConfiguration` or :class:`TensorflowConfiguration`.
            Each process is a container (rank) of its own on the compute
            target's nodes (so ``compute_target`` is required), and
            ``resources`` are per node, split evenly between its processes.
        node_count: Nodes, instead of the configuration's ``node_count`` (what
            Azure code sets as ``run_config.node_count``). Without
            ``distributed_job_config`` only 1 is allowed.
        rank_outputs: Which ranks' ``./outputs`` and ``./logs`` a distributed
            run keeps: ``"all"`` (the server's default; rank N's under
            ``outputs/rank-N/``) or ``"rank0"``.

    Example::

        src = ScriptRunConfig(source_directory="./mnist", script="train.py",
                              arguments=["--lr", 0.01], environment=env,
                              resources={"cpus": 4, "memory_mb": 8192})
        run = Experiment(ws, "tf-mnist").submit(src)

        # 2 nodes × 4 processes, torch.distributed
        src = ScriptRunConfig("./src", "train.py", compute_target="gpucluster",
                              environment=env, resources={"gpus": 4},
                              distributed_job_config=PyTorchConfiguration(
                                  process_count=8, node_count=2))
    """

    def __init__(
        self,
        source_directory: Optional[str],
        script: Optional[str] = None,
        arguments: Optional[Sequence[Any]] = None,
        compute_target: Any = None,
        environment: Union[Environment, str, None] = None,
        command: Union[Sequence[Any], str, None] = None,
        resources: Optional[Dict[str, Any]] = None,
        environment_variables: Optional[Dict[str, Any]] = None,
        max_run_duration_seconds: Optional[int] = None,
        display_name: Optional[str] = None,
        inputs: Optional[Sequence[Union[DatasetConsumptionConfig, Dict[str, Any]]]] = None,
        distributed_job_config: Optional[DistributedConfiguration] = None,
        node_count: Optional[int] = None,
        rank_outputs: Optional[str] = None,
    ) -> None:
        self.source_directory = source_directory
        self.script = script
        self.arguments: List[Any] = list(arguments or [])
        self.compute_target = compute_target
        self.environment = environment
        self.command = command
        self.resources: Dict[str, Any] = dict(resources or {})
        self.environment_variables: Dict[str, Any] = dict(environment_variables or {})
        self.max_run_duration_seconds = max_run_duration_seconds
        self.display_name = display_name
        self.inputs: List[Union[DatasetConsumptionConfig, Dict[str, Any]]] = list(inputs or [])
        self.distributed_job_config = distributed_job_config
        self.node_count = node_count
        if rank_outputs not in (None, "all", "rank0"):
            raise ValueError(f"rank_outputs must be 'all' or 'rank0', not {rank_outputs!r}")
        self.rank_outputs = rank_outputs
        self._distribution_fields()

    # -- what is sent -------------------------------------------------------

    def _command_list(self) -> List[str]:
        if self.command is None:
            return []
        if isinstance(self.command, str):
            return ["sh", "-c", self.command]
        return [_stringify(part) for part in self.command]

    def _check(self) -> None:
        """Refuses, before anything is uploaded, what the server would refuse."""
        if not self.script and not self.command:
            raise ValueError("ScriptRunConfig needs a script or a command")
        if self.script and self.command:
            raise ValueError("give ScriptRunConfig a script or a command, not both")
        unknown = set(self.resources) - set(_RESOURCE_KEYS)
        if unknown:
            raise ValueError(
                f"unknown resources {sorted(unknown)}: use {', '.join(_RESOURCE_KEYS)}")
        if self.script:
            if self.source_directory is None:
                raise ValueError("a script needs a source_directory")
            script = self.script.replace(os.sep, "/")
            path = os.path.join(self.source_directory, script)
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"the script {self.script!r} is not in {self.source_directory!r}")
            if IgnoreRules.for_dir(self.source_directory).is_ignored(script):
                raise ValueError(f"the script {self.script!r} is left out by the ignore rules "
                                 f"(see .trainyardignore)")
        for argument in self.arguments:
            _stringify(argument)
        self._command_list()
        self._inputs()
        fields = self._distribution_fields()
        if fields:
            if not self._target_name():
                raise ValueError("a distributed run (distributed_job_config) is placed on a "
                                 "compute target's nodes: give compute_target")
            gpus = self.resources.get("gpus")
            per_node = fields["process_count_per_node"]
            if isinstance(gpus, int) and not isinstance(gpus, bool) and gpus % per_node:
                raise ValueError(f"resources['gpus'] ({gpus}) are per node and must be a "
                                 f"multiple of process_count_per_node ({per_node}): each "
                                 f"process gets an equal share")

    def _distribution_fields(self) -> Dict[str, Any]:
        """``node_count``, ``process_count_per_node`` and ``distribution`` for the
        body; empty for a run of one process without a configuration.

        Raises:
            ValueError: a bad count or shape, naming the argument.
            TypeError: ``distributed_job_config`` is something else.
        """
        config = self.distributed_job_config
        node_count = self.node_count
        if config is None:
            if node_count is not None and node_count != 1:
                raise ValueError(f"node_count={node_count!r} needs a distributed_job_config "
                                 f"(MpiConfiguration, PyTorchConfiguration or "
                                 f"TensorflowConfiguration)")
            return {}
        if not isinstance(config, DistributedConfiguration):
            raise TypeError(f"distributed_job_config must be an MpiConfiguration, "
                            f"PyTorchConfiguration or TensorflowConfiguration, "
                            f"not {type(config).__name__}")
        return config._run_fields(node_count)

    def _inputs(self) -> List[Dict[str, Any]]:
        """The run's ``inputs``: those given, then those used in arguments or the command,
        each name once.

        Raises:
            ValueError: one name stands for two different inputs, or a dataset is
                not registered.
        """
        found: List[Any] = list(self.inputs)
        command = self.command if isinstance(self.command, (list, tuple)) else []
        for value in list(self.arguments) + list(command):
            found.extend(_consumption_configs(value))
        entries: Dict[str, Dict[str, Any]] = {}
        for item in found:
            if isinstance(item, DatasetConsumptionConfig):
                entry = item._input()
            elif isinstance(item, dict) and item.get("name") and item.get("dataset"):
                entry = dict(item)
            else:
                raise TypeError(f"an input is a DatasetConsumptionConfig "
                                f"(ds.as_named_input(name).as_mount()) or a dict with "
                                f"name and dataset, not {item!r}")
            known = entries.setdefault(entry["name"], entry)
            if known != entry:
                raise ValueError(f"the input name {entry['name']!r} is used for two "
                                 f"different inputs: {known} and {entry}")
        return list(entries.values())

    def _environment_choice(self) -> Optional[Dict[str, Any]]:
        env = self.environment
        if env is None:
            return None
        if isinstance(env, str):
            return {"name": env}
        if isinstance(env, Environment):
            return env._choice()
        raise TypeError(f"environment must be an Environment or a name, not {type(env).__name__}")

    def _target_name(self) -> Optional[str]:
        target = self.compute_target
        if target is None or isinstance(target, str):
            return target or None
        name = getattr(target, "name", None)
        return str(name) if name else str(target)

    def _run_body(self, experiment_name: str, snapshot: Optional[str]) -> Dict[str, Any]:
        """The ``POST …/runs`` body, with absent settings left out."""
        body: Dict[str, Any] = {"experiment": experiment_name}
        if snapshot:
            body["snapshot"] = snapshot
        if self.script:
            body["script"] = self.script.replace(os.sep, "/")
        command = self._command_list()
        if command:
            body["command"] = command
        if self.arguments:
            body["arguments"] = [_stringify(a) for a in self.arguments]
        inputs = self._inputs()
        if inputs:
            body["inputs"] = inputs
        environment = self._environment_choice()
        if environment is not None:
            body["environment"] = environment
        target = self._target_name()
        if target:
            body["compute_target"] = target
        resources = {k: v for k, v in self.resources.items() if v is not None}
        if resources:
            body["resources"] = resources
        if self.environment_variables:
            body["environment_variables"] = {
                str(k): str(v) for k, v in self.environment_variables.items()
            }
        if self.max_run_duration_seconds is not None:
            body["time_limit_seconds"] = int(self.max_run_duration_seconds)
        if self.display_name:
            body["display_name"] = self.display_name
        body.update(self._distribution_fields())
        if self.rank_outputs is not None:
            body["rank_outputs"] = self.rank_outputs
        return body

    def _submit(self, experiment: "Experiment", tags: Optional[Dict[str, Any]] = None,
                **kwargs: Any) -> "Run":
        """Uploads the source and submits the run (``Experiment.submit`` calls this)."""
        from .run import Run

        self._check()
        workspace = experiment.workspace
        digest = None
        if self.source_directory is not None:
            archive, size, _ = pack_directory(self.source_directory)
            with archive:
                answer = workspace._http.request(
                    "POST", workspace._path("snapshots"), data=archive,
                    content_type="application/gzip", content_length=size, timeout=600,
                )
            digest = answer["digest"]
        body = self._run_body(experiment.name, digest)
        if tags:
            body["tags"] = {str(k): str(v) for k, v in tags.items()}
        if kwargs.get("properties"):
            body["properties"] = {str(k): str(v) for k, v in kwargs["properties"].items()}
        if kwargs.get("display_name"):
            body["display_name"] = kwargs["display_name"]
        view = workspace._http.post(workspace._path("runs"), body)
        return Run._from_view(experiment, view)

    def __repr__(self) -> str:
        what = f"script={self.script!r}" if self.script else f"command={self.command!r}"
        if self.distributed_job_config is not None:
            what += f", distributed_job_config={self.distributed_job_config!r}"
        return f"ScriptRunConfig(source_directory={self.source_directory!r}, {what})"


def _stringify(value: Any) -> str:
    """An argument as the command line gets it (a dataset input as its placeholder)."""
    if isinstance(value, str):
        return value
    if isinstance(value, DatasetConsumptionConfig):
        return value.placeholder
    if isinstance(value, FileDataset):
        raise TypeError(f"to pass {value!r} to a run, use ds.as_named_input(name).as_mount() "
                        f"or .as_download()")
    if isinstance(value, (list, tuple)):
        return " ".join(shlex.quote(_stringify(v)) for v in value)
    return str(value)


def _consumption_configs(value: Any) -> List[DatasetConsumptionConfig]:
    """The dataset inputs in one argument (lists are looked into)."""
    if isinstance(value, DatasetConsumptionConfig):
        return [value]
    if isinstance(value, (list, tuple)):
        return [config for item in value for config in _consumption_configs(item)]
    return []
