"""Runs: status, waiting, logging metrics, files, tags.

Mirrors ``azureml.core.Run``. Inside a run's container ``Run.get_context()``
is the run itself (from ``TRAINYARD_RUN_ID`` and friends); elsewhere it is an
:class:`~trainyard.offline.OfflineRun` that prints what is logged.
"""

import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Union

from . import _follow
from ._logging import LoggingMixin
from ._metrics import MetricsSender
from ._results import combine_metric
from ._run_files import RunFilesMixin
from .exceptions import RunFailedError, TrainyardError
from .workspace import Workspace

if TYPE_CHECKING:  # pragma: no cover
    from .experiment import Experiment
    from .model import Model, ResourceConfiguration

__all__ = ["Run"]

_CONTEXT_VARIABLES = ("TRAINYARD_RUN_ID", "TRAINYARD_API_URL", "TRAINYARD_WORKSPACE",
                      "TRAINYARD_TOKEN")
_context_runs: Dict[tuple, Any] = {}
_context_lock = threading.Lock()


def _print_now(text: str) -> None:
    """One line to standard output, written whole (two threads print while following)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class Run(LoggingMixin, RunFilesMixin):
    """A run of an experiment.

    Args:
        experiment: Its experiment.
        run_id: Its id.

    Example::

        run = exp.submit(src)
        run.wait_for_completion(show_output=True)
        print(run.get_metrics())
        run.download_files(prefix="outputs", output_directory="./results")
    """

    def __init__(self, experiment: Optional["Experiment"], run_id: str, **kwargs: Any) -> None:
        self._experiment = experiment
        workspace = kwargs.get("_workspace") or (experiment.workspace if experiment else None)
        if workspace is None:
            raise ValueError("a Run needs an experiment (or a workspace)")
        self._workspace: Workspace = workspace
        self._id = str(run_id)
        self._view: Optional[Dict[str, Any]] = kwargs.get("_view")
        self._sender: Optional[MetricsSender] = None
        self._sender_lock = threading.Lock()

    @classmethod
    def _from_view(cls, experiment: Optional["Experiment"], view: Dict[str, Any],
                   workspace: Optional[Workspace] = None) -> "Run":
        return cls(experiment, view["id"], _view=view, _workspace=workspace)

    @classmethod
    def get(cls, workspace: Workspace, run_id: str) -> "Run":
        """An existing run by id."""
        view = workspace._http.get(workspace._path("runs", run_id))
        return cls._from_view(None, view, workspace)

    @classmethod
    def get_context(cls, allow_offline: bool = True) -> Union["Run", Any]:
        """The run this code executes in, or an ``OfflineRun`` outside of one.

        Every call in a process returns the same object.

        Inside a run the executor sets ``TRAINYARD_RUN_ID``, ``TRAINYARD_API_URL``,
        ``TRAINYARD_WORKSPACE`` and ``TRAINYARD_TOKEN`` (a token that may write
        only to this run).
        """
        key = tuple(os.environ.get(name) for name in _CONTEXT_VARIABLES)
        run_id, url, workspace, token = key
        if not (run_id and url and workspace and token) and not allow_offline:
            raise RuntimeError("not inside a Trainyard run (TRAINYARD_RUN_ID is not set)")
        with _context_lock:  # one object per process: one buffer, points kept in order
            cached = _context_runs.get(key)
            if cached is not None:
                return cached
            if run_id and url and workspace and token:
                run: Any = cls(None, run_id, _workspace=Workspace(url, workspace, token))
                run._experiment_id = os.environ.get("TRAINYARD_EXPERIMENT_ID") or None
            else:
                from .offline import OfflineRun

                run = OfflineRun()
            _context_runs[key] = run
            return run

    # -- identity ---------------------------------------------------------------

    _experiment_id: Optional[str] = None

    @property
    def id(self) -> str:
        """The run's id."""
        return self._id

    @property
    def workspace(self) -> Workspace:
        """The run's workspace."""
        return self._workspace

    @property
    def experiment(self) -> "Experiment":
        """The run's experiment (fetched on first use when not known)."""
        if self._experiment is None:
            from .experiment import Experiment

            experiment_id = self._experiment_id or self._details()["experiment_id"]
            self._experiment = Experiment.from_id(self._workspace, experiment_id)
        return self._experiment

    @property
    def display_name(self) -> Optional[str]:
        """The run's label."""
        return self._details().get("display_name")

    @property
    def status(self) -> str:
        """The status when last fetched (``get_status()`` asks the server)."""
        return self._details().get("status", "")

    @property
    def tags(self) -> Dict[str, str]:
        """The run's tags when last fetched."""
        return dict(self._details().get("tags") or {})

    @property
    def properties(self) -> Dict[str, str]:
        """The run's properties when last fetched."""
        return dict(self._details().get("properties") or {})

    def _path(self, *parts: Any) -> str:
        return self._workspace._path("runs", self._id, *parts)

    def _details(self) -> Dict[str, Any]:
        if self._view is None:
            self.get_details()
        assert self._view is not None
        return self._view

    # -- status ---------------------------------------------------------------

    def get_details(self) -> Dict[str, Any]:
        """The run as the server shows it: ``status``, ``error``, ``exit_code``, ``spec``,
        ``tags``, ``properties``, ``created_at``, ``started_at``, ``ended_at``, …

        A run submitted to a compute target also has ``wait_reason`` (while
        it is Queued, why it waits, e.g. ``"needs 2 GPUs; the largest free on
        gpucluster is 1"``; otherwise None) and ``placement`` (None until it
        is placed, then ``{"node", "compute_target", "gpus", "cpus",
        "memory_mb"}``). Both are None when the server does not send them.

        A distributed run's placement also has ``ranks``: one entry per rank
        (process), in rank order, ``{"node_id", "node", "gpus", "gpu_mode",
        "cpus", "memory_mb", "address", "port"}`` (and, from servers that
        send it, ``node_gpus``: the node's GPUs the rank sees); its top-level
        fields are rank 0's. :meth:`get_ranks` returns that list."""
        self._view = self._workspace._http.get(self._path())
        details = dict(self._view)
        details.setdefault("wait_reason", None)
        details.setdefault("placement", None)
        return details

    def get_ranks(self) -> List[Dict[str, Any]]:
        """Where each process of a distributed run went, in rank order
        (``placement["ranks"]``, fetched now): ``{"node", "gpus", "cpus",
        "memory_mb", "address", "port", …}``. Empty until the run is placed,
        and for a run of one process."""
        placement = self.get_details().get("placement") or {}
        return [dict(rank) for rank in placement.get("ranks") or []]

    def get_status(self) -> str:
        """The run's status: ``Queued``, ``Preparing``, ``Starting``, ``Running``,
        ``Finalizing``, ``Completed``, ``Failed`` or ``Canceled``."""
        return self.get_details()["status"]

    def get_portal_url(self) -> str:
        """The run's page in the web console."""
        return f"{self._workspace.url}/#/workspaces/{self._workspace.name}/runs/{self._id}"

    def wait_for_completion(self, show_output: bool = False, wait_post_processing: bool = False,
                            raise_on_error: bool = True,
                            timeout: Optional[float] = None) -> Dict[str, Any]:
        """Waits for the run to end; returns its details.

        Args:
            show_output: Print stage changes and the log (every source) live;
                while the run waits in a compute target's queue, why it waits
                (``==> Queued: needs 2 GPUs; …``, each time that changes) and
                then where it was placed (``==> placed on gpu-1 (GPUs 0,3)``).
                A distributed run's lines show every rank's output, each
                after ``[rank N] `` (``stdout/rank-N`` and ``stderr/rank-N``).
            raise_on_error: Raise when the run did not end ``Completed``.
            timeout: Seconds to wait at most (``TimeoutError`` after that).

        Raises:
            RunFailedError: it ended ``Failed`` or ``Canceled`` (carries ``error``).
            TimeoutError: ``timeout`` passed first.

        A run that only records (``exp.start_logging()``) is never executed, so
        its details are returned at once.
        """
        self._flush_quietly()
        deadline = None if timeout is None else time.monotonic() + timeout
        details = self.get_details()
        if not details.get("spec"):
            return details
        if show_output:
            print(f"RunId: {self._id}\nWeb View: {self.get_portal_url()}\n", flush=True)

            http, run_path = self._workspace._http, self._path()
            watcher = _follow.QueueWatcher(lambda: http.get(run_path), _print_now)

            def on_status(status: str) -> None:
                _print_now(f"==> {status}")
                watcher.status(status)

            def is_ended() -> bool:
                try:
                    return self.get_status() in _follow.TERMINAL_STATUSES
                except TrainyardError as err:
                    if err.transient:
                        return False
                    raise

            watcher.start()
            try:
                _follow.follow_log(self._workspace._http, self._path(), _follow.print_line,
                                   on_status, deadline, is_ended)
            finally:
                watcher.stop()
        else:
            _follow.poll_until_ended(self.get_status, deadline)
        details = self.get_details()
        if show_output:
            summary = f"\nrun {self._id} {details['status']}"
            if details.get("exit_code") is not None:
                summary += f" (exit code {details['exit_code']})"
            print(summary + (f"\nerror: {details['error']}" if details.get("error") else ""),
                  flush=True)
        if raise_on_error and details.get("status") != "Completed":
            raise RunFailedError(self._id, details.get("status", ""), details.get("error"),
                                 details.get("exit_code"), details)
        return details

    def cancel(self) -> None:
        """Cancels the run (a queued run at once, an active one once its container stops)."""
        self._view = self._workspace._http.post(self._path("cancel"))

    # -- tags and properties ------------------------------------------------------

    def tag(self, key: str, value: Any = None) -> None:
        """Sets one tag (an empty value when ``value`` is None)."""
        self._view = self._workspace._http.put(self._path("tags", key),
                                               {"value": "" if value is None else str(value)})

    def set_tags(self, tags: Dict[str, Any]) -> None:
        """Sets several tags."""
        for key, value in tags.items():
            self.tag(key, value)

    def get_tags(self) -> Dict[str, str]:
        """The run's tags, fetched now."""
        return dict(self.get_details().get("tags") or {})

    def remove_tags(self, tags: Union[str, Iterable[str]]) -> None:
        """Removes tags by key."""
        for key in [tags] if isinstance(tags, str) else tags:
            self._view = self._workspace._http.delete(self._path("tags", key))

    def add_properties(self, properties: Dict[str, Any]) -> None:
        """Sets properties (descriptive key-values)."""
        for key, value in properties.items():
            self._view = self._workspace._http.put(self._path("properties", key),
                                                   {"value": str(value)})

    def get_properties(self) -> Dict[str, str]:
        """The run's properties, fetched now."""
        return dict(self.get_details().get("properties") or {})

    # -- metrics ------------------------------------------------------------------

    def _get_sender(self) -> MetricsSender:
        if self._sender is None:
            with self._sender_lock:
                if self._sender is None:
                    http, path = self._workspace._http, self._path("metrics")
                    self._sender = MetricsSender(lambda body: http.request(
                        "POST", path, data=body, content_type="application/json"))
        return self._sender

    def _record(self, item: Any) -> None:
        sender = self._sender or self._get_sender()
        sender.append(item)

    def _store_image(self, name: str, data: bytes, suffix: str) -> str:
        path = self._next_image_path(name, suffix)
        self.upload_file(path, data)
        return path

    def flush(self, timeout_seconds: Optional[float] = 300) -> None:
        """Sends every metric logged so far and waits for the server to take them.

        Raises:
            MetricsError: the server refused points for good (they are kept in the error).
            TimeoutError: not all sent in time (they stay buffered and keep being retried).
        """
        if self._sender is not None:
            self._sender.flush(timeout_seconds)

    def _flush_quietly(self, timeout_seconds: float = 30) -> None:
        """:meth:`flush`, ignoring its errors (used before reads)."""
        try:
            self.flush(timeout_seconds)
        except Exception:  # noqa: BLE001 - the next flush() reports them
            pass

    def get_metrics(self, name: Optional[str] = None, **kwargs: Any) -> Dict[str, Any]:
        """Logged metrics by name, as Azure ML shows them.

        A scalar logged once is its value, logged several times the list of
        values in step order; a list is the list; rows are merged into
        ``{column: [values]}``; a table is its dict of columns; an image is its
        file path (``images/<name>/<n>.png``). Points this process logged are
        flushed first.
        """
        if self._sender is not None and self._sender.pending:
            self.flush()
        http = self._workspace._http
        metrics: Dict[str, Any] = {}
        for item in http.paged(self._path("metrics")):
            if name is not None and item.get("name") != name:
                continue
            latest = item.get("latest") or {}
            if item.get("count") == 1 and "value" in latest:
                values = [latest["value"]]
            else:
                values = [p.get("value") for p in self.get_metric_history(item["name"])]
            metrics[item["name"]] = combine_metric(item.get("kind") or "scalar", values)
        return metrics

    def get_metric_history(self, name: str, max_points: Optional[int] = None,
                           page_size: int = 10_000) -> List[Dict[str, Any]]:
        """Every point of one metric by step: ``{"step", "timestamp", "value"}``.

        With ``max_points`` (2 to 10,000) the server cuts a long history down to
        about that many points, keeping each bucket's lowest and highest value.
        """
        http = self._workspace._http
        points: List[Dict[str, Any]] = []
        query: Dict[str, Any] = {"name": name, "limit": page_size}
        if max_points is not None:
            query = {"name": name, "max_points": max_points}
        while True:
            page = http.get(self._path("metrics", "history"), query)
            batch = page.get("points") or []
            points.extend(batch)
            after = page.get("next_after_step")
            if after is None or not batch:
                return points
            query["after_step"] = after

    # -- inputs and models -----------------------------------------------------------

    @property
    def input_datasets(self) -> Dict[str, str]:
        """The run's dataset inputs: ``{input name: path in the container}``."""
        details = self._details()
        inputs = details.get("inputs") or (details.get("spec") or {}).get("inputs") or []
        return {item["name"]: item.get("path", "") for item in inputs}

    def register_model(self, model_name: str, model_path: str,
                       tags: Optional[Dict[str, Any]] = None,
                       properties: Optional[Dict[str, Any]] = None,
                       model_framework: Optional[str] = None,
                       model_framework_version: Optional[str] = None,
                       description: Optional[str] = None,
                       resource_configuration: Union["ResourceConfiguration", Dict[str, Any],
                                                     None] = None,
                       **kwargs: Any) -> "Model":
        """Registers a file or folder among the run's files (``outputs/model.npz``,
        ``outputs``) as a new version of ``model_name``; returns the :class:`Model`.

        The version records this run, its environment and the dataset versions
        it read. Files the script wrote to ``./outputs`` are the run's files once
        it has ended; from inside a running script, ``upload_file`` them first.
        """
        from .model import Model

        return Model._register_from_run(
            self, model_name, model_path, tags=tags, properties=properties,
            model_framework=model_framework, model_framework_version=model_framework_version,
            description=description, resource_configuration=resource_configuration)

    def __repr__(self) -> str:
        return f"Run(id={self._id!r}, workspace={self._workspace.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other._id == self._id

    def __hash__(self) -> int:
        return hash(self._id)
