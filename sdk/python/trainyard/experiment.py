"""Experiments: named groups of runs.

Mirrors ``azureml.core.Experiment``: ``Experiment(ws, name)`` gets the
experiment or creates it, ``submit`` runs a :class:`ScriptRunConfig`,
``start_logging`` opens an interactive run to log into from a notebook.
"""

from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Union

from .workspace import Workspace

if TYPE_CHECKING:  # pragma: no cover
    from .run import Run

__all__ = ["Experiment"]


class Experiment:
    """An experiment in a workspace, created on first use.

    Args:
        workspace: The workspace.
        name: The experiment's name (letters, digits, ``_``, ``-``, ``.``).
        description: Set only when the experiment is created.

    Example::

        exp = Experiment(ws, "tf-mnist")
        run = exp.submit(ScriptRunConfig("./mnist", script="train.py"))
        run.wait_for_completion(show_output=True)
    """

    def __init__(self, workspace: Workspace, name: str, description: Optional[str] = None,
                 **kwargs: Any) -> None:
        self._workspace = workspace
        self._name = name
        body: Dict[str, Any] = {}
        if description is not None:
            body["description"] = description
        if kwargs.get("_view") is not None:
            self._view: Dict[str, Any] = kwargs["_view"]
        else:
            self._view = workspace._http.put(workspace._path("experiments", name), body)
            self._name = self._view.get("name", name)

    @classmethod
    def _from_view(cls, workspace: Workspace, view: Dict[str, Any]) -> "Experiment":
        return cls(workspace, view["name"], _view=view)

    @classmethod
    def from_id(cls, workspace: Workspace, experiment_id: str) -> "Experiment":
        """An existing experiment by id (or name), without creating anything."""
        view = workspace._http.get(workspace._path("experiments", experiment_id))
        return cls._from_view(workspace, view)

    @staticmethod
    def list(workspace: Workspace, include_archived: bool = False) -> List["Experiment"]:
        """The workspace's experiments, newest first."""
        query = {"include_archived": True} if include_archived else None
        return [Experiment._from_view(workspace, item)
                for item in workspace._http.paged(workspace._path("experiments"), query)]

    # -- properties ---------------------------------------------------------

    @property
    def workspace(self) -> Workspace:
        """The experiment's workspace."""
        return self._workspace

    @property
    def name(self) -> str:
        """The experiment's name."""
        return self._name

    @property
    def id(self) -> str:
        """The experiment's id."""
        return self._view["id"]

    @property
    def tags(self) -> Dict[str, str]:
        """The experiment's tags."""
        return dict(self._view.get("tags") or {})

    @property
    def archived_time(self) -> Optional[str]:
        """When the experiment was archived, if it is."""
        return self._view.get("archived_at")

    def get_details(self) -> Dict[str, Any]:
        """The experiment as the server shows it now."""
        self._view = self._workspace._http.get(self._workspace._path("experiments", self.id))
        return dict(self._view)

    # -- runs -----------------------------------------------------------------

    def submit(self, config: Any, tags: Optional[Dict[str, Any]] = None, **kwargs: Any) -> "Run":
        """Submits ``config`` (a :class:`ScriptRunConfig`): uploads its source and queues the run.

        Args:
            config: What to run.
            tags: Tags to put on the run.
            **kwargs: ``display_name`` and ``properties`` are passed on too.

        Returns:
            The submitted :class:`Run` (status ``Queued``).
        """
        submit = getattr(config, "_submit", None)
        if submit is None:
            raise TypeError(f"cannot submit a {type(config).__name__}; use a ScriptRunConfig")
        return submit(self, tags=tags, **kwargs)

    def start_logging(self, *args: Any, display_name: Optional[str] = None,
                      tags: Optional[Dict[str, Any]] = None, **kwargs: Any) -> "Run":
        """Opens an interactive run (a record, never executed) to log metrics and files into.

        ``snapshot_directory`` and ``outputs`` (Azure ML's arguments) are accepted
        and ignored: upload files with ``run.upload_file``.
        """
        from .run import Run

        body: Dict[str, Any] = {"experiment": self._name}
        if display_name:
            body["display_name"] = display_name
        if tags:
            body["tags"] = {str(k): str(v) for k, v in tags.items()}
        properties = kwargs.get("properties")
        if properties:
            body["properties"] = {str(k): str(v) for k, v in properties.items()}
        view = self._workspace._http.post(self._workspace._path("runs"), body)
        return Run._from_view(self, view)

    def get_runs(self, type: Optional[str] = None,
                 tags: Union[str, Dict[str, Any], None] = None,
                 properties: Optional[Dict[str, Any]] = None,
                 include_children: bool = False,
                 status: Union[str, List[str], None] = None) -> Iterator["Run"]:
        """The experiment's runs, newest first, as a generator.

        Args:
            tags: A tag name (runs that have it) or ``{name: value}`` to match.
            status: Only runs in these statuses (``"Failed"`` or a list).
            type, properties, include_children: Accepted for Azure ML
                compatibility; properties are filtered on the client.
        """
        from .run import Run

        query: Dict[str, Any] = {"experiment": self.id}
        if isinstance(tags, str):
            query["tag"] = [tags]
        elif tags:
            query["tag"] = [f"{k}={v}" for k, v in tags.items()]
        if status:
            query["status"] = [status] if isinstance(status, str) else list(status)
        for view in self._workspace._http.paged(self._workspace._path("runs"), query):
            if properties and any(str(view.get("properties", {}).get(k)) != str(v)
                                  for k, v in properties.items()):
                continue
            yield Run._from_view(self, view)

    def archive(self) -> None:
        """Archives the experiment (hidden from lists by default)."""
        self._view = self._workspace._http.post(
            self._workspace._path("experiments", self.id, "archive"))

    def reactivate(self, new_name: Optional[str] = None) -> None:
        """Restores an archived experiment."""
        self._view = self._workspace._http.post(
            self._workspace._path("experiments", self.id, "restore"))

    def __repr__(self) -> str:
        return f"Experiment(name={self._name!r}, workspace={self._workspace.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Experiment) and self.id == other.id

    def __hash__(self) -> int:
        return hash(self.id)
