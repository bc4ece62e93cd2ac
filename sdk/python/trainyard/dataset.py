"""File datasets: named, versioned, immutable sets of files, and feeding them to runs.

Mirrors ``azureml.core.Dataset`` (``Dataset.File``), ``FileDataset`` and
``DatasetConsumptionConfig``. ``Dataset.File.from_files`` describes files on a
datastore (globs allowed) or URLs; ``register`` makes a version, whose files
the server copies at registration, so a version never changes. In a run,
``ds.as_named_input("mnist").as_mount()`` in ``ScriptRunConfig(arguments=…)``
becomes the folder where the files are in the container.
"""

import os
import re
import tempfile
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Tuple, Union

from ._transfer import Progress, copy_to_file
from .datastore import DEFAULT_DATASTORE, DataPath, Datastore, _safe

if TYPE_CHECKING:  # pragma: no cover
    from .workspace import Workspace

__all__ = ["Dataset", "FileDataset", "FileDatasetFactory", "DatasetConsumptionConfig"]

#: How a run gets a dataset's files.
MODES = ("mount", "download")

PathSpec = Union[str, DataPath, Tuple[Any, Union[str, Iterable[str]]]]


class DatasetConsumptionConfig:
    """A dataset as one input of a run: its name there, the mode, and where it goes.

    Put it in ``ScriptRunConfig(arguments=[…])`` (it becomes the placeholder
    ``${{inputs.<name>}}``, which the server replaces with the path in the
    container) or in ``ScriptRunConfig(inputs=[…])``.

    Args:
        name: The input's name in the run (``${{inputs.<name>}}``).
        dataset: A registered :class:`FileDataset`.
        mode: ``mount`` (the default) or ``download``.
        path_on_compute: The path in the container (default ``/mnt/inputs/<name>``).
    """

    def __init__(self, name: str, dataset: "FileDataset", mode: str = "mount",
                 path_on_compute: Optional[str] = None) -> None:
        if not name or not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", name):
            raise ValueError(f"input name {name!r}: use letters, digits, '_', '-' and '.'")
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: use 'mount' or 'download'")
        self.name = name
        self.dataset = dataset
        self.mode = mode
        self.path_on_compute = path_on_compute

    def as_mount(self, path_on_compute: Optional[str] = None) -> "DatasetConsumptionConfig":
        """The same input, mounted (read-only) at ``path_on_compute``."""
        return DatasetConsumptionConfig(self.name, self.dataset, "mount",
                                        path_on_compute or self.path_on_compute)

    def as_download(self, path_on_compute: Optional[str] = None) -> "DatasetConsumptionConfig":
        """The same input, copied into the container at ``path_on_compute``."""
        return DatasetConsumptionConfig(self.name, self.dataset, "download",
                                        path_on_compute or self.path_on_compute)

    @property
    def placeholder(self) -> str:
        """``${{inputs.<name>}}``: what an argument string uses to name the input's path."""
        return "${{inputs.%s}}" % self.name

    def _input(self) -> Dict[str, Any]:
        """The entry of the run's ``inputs``."""
        dataset = self.dataset
        if not isinstance(dataset, FileDataset) or not dataset.name:
            raise ValueError(f"input {self.name!r}: register the dataset first "
                             f"(dataset.register(ws, name)), or use Dataset.get_by_name")
        entry: Dict[str, Any] = {"name": self.name, "dataset": dataset.name, "mode": self.mode}
        if dataset.version is not None:
            entry["version"] = dataset.version
        if self.path_on_compute:
            entry["path"] = self.path_on_compute
        return entry

    def __repr__(self) -> str:
        dataset = self.dataset.name if isinstance(self.dataset, FileDataset) else self.dataset
        return (f"DatasetConsumptionConfig(name={self.name!r}, dataset={dataset!r}, "
                f"mode={self.mode!r}, path_on_compute={self.path_on_compute!r})")


class FileDataset:
    """A set of files: unregistered (a definition) or a registered, immutable version.

    Attributes:
        name, version, id: Set once registered (``None`` before).
        description, tags: As registered.
        file_count, total_bytes: What the version holds.
    """

    def __init__(self, datastore: Optional[str] = None, paths: Optional[List[str]] = None,
                 urls: Optional[List[str]] = None, **kwargs: Any) -> None:
        self._datastore = datastore
        self._paths = list(paths or [])
        self._urls = list(urls or [])
        self._workspace: Optional["Workspace"] = kwargs.get("_workspace")
        self._view: Dict[str, Any] = kwargs.get("_view") or {}
        if self._view:  # the server lists the URLs among the paths
            sources = [str(p) for p in self._view.get("paths") or []]
            self._datastore = self._view.get("datastore", datastore)
            self._paths = [p for p in sources if "://" not in p]
            self._urls = [p for p in sources if "://" in p]

    @classmethod
    def _from_view(cls, workspace: "Workspace", view: Dict[str, Any]) -> "FileDataset":
        return cls(_workspace=workspace, _view=view)

    # -- properties ---------------------------------------------------------------

    name = property(lambda self: self._view.get("name"), doc="The registered name.")
    version = property(lambda self: self._view.get("version"), doc="The version number.")
    id = property(lambda self: self._view.get("id"), doc="The version's id.")
    description = property(lambda self: self._view.get("description"), doc="Its description.")
    file_count = property(lambda self: self._view.get("file_count"), doc="How many files.")
    total_bytes = property(lambda self: self._view.get("total_bytes"), doc="Their size.")
    created_at = property(lambda self: self._view.get("created_at"), doc="When registered.")

    @property
    def tags(self) -> Dict[str, str]:
        """The version's tags."""
        return dict(self._view.get("tags") or {})

    @property
    def datastore(self) -> Optional[str]:
        """The datastore the paths are on."""
        return self._datastore

    @property
    def paths(self) -> List[str]:
        """The paths, folders (``train/``) and globs on the datastore."""
        return list(self._paths)

    @property
    def urls(self) -> List[str]:
        """The URLs."""
        return list(self._urls)

    @property
    def workspace(self) -> Optional["Workspace"]:
        """The workspace it is registered in."""
        return self._workspace

    def _registered(self) -> "Workspace":
        if self._workspace is None or not self.name:
            raise ValueError("this dataset is not registered: call register(ws, name) first")
        return self._workspace

    # -- registering and reading --------------------------------------------------

    def register(self, workspace: "Workspace", name: str, description: Optional[str] = None,
                 tags: Optional[Dict[str, Any]] = None,
                 create_new_version: bool = False) -> "FileDataset":
        """Registers these files as dataset ``name`` (the server copies them now).

        Args:
            create_new_version: Add version N+1 when the name exists; otherwise
                an existing name is refused (``TrainyardError``, ``already_exists``).

        Returns:
            The registered version.
        """
        body: Dict[str, Any] = {"name": name, "paths": self._paths, "urls": self._urls,
                                "tags": {str(k): str(v) for k, v in (tags or {}).items()},
                                "create_new_version": bool(create_new_version)}
        if self._paths or self._datastore:
            body["datastore"] = self._datastore or DEFAULT_DATASTORE
        if description is not None:
            body["description"] = description
        view = workspace._http.post(workspace._path("datasets"), body)
        return FileDataset._from_view(workspace, view)

    def list_files(self) -> List[Dict[str, Any]]:
        """The version's files: ``[{"path", "size", "sha256"}]``."""
        workspace = self._registered()
        answer = workspace._http.get(workspace._path("datasets", self.name, "files"),
                                     {"version": self.version})
        return list(answer.get("items", []))

    def download(self, target_path: Optional[str] = None, overwrite: bool = False,
                 show_progress: bool = True) -> List[str]:
        """Downloads the version's files into ``target_path`` (a new temporary
        folder when ``None``), keeping their paths; the bytes are the ones
        registered, whatever happened to the source since. Local files that
        exist are refused unless ``overwrite`` (as Azure ML does).

        Returns:
            The local paths of the files.
        """
        workspace = self._registered()
        target = target_path or tempfile.mkdtemp(prefix=f"{self.name}-v{self.version}-")
        items = [item for item in self.list_files() if _safe(item.get("path", ""))]
        progress = Progress("Downloading", len(items),
                            sum(int(item.get("size") or 0) for item in items), show_progress)
        local_paths = []
        for item in items:
            path, size = item["path"], int(item.get("size") or 0)
            local = os.path.join(target, *path.split("/"))
            if os.path.exists(local) and not overwrite:
                raise FileExistsError(f"{local} exists; pass overwrite=True to replace it")
            response = workspace._http.open(
                "GET", workspace._path("datasets", self.name, "files", "download"),
                query={"path": path, "version": self.version}, timeout=600)
            with response:
                copy_to_file(response, local, progress.advance)
            progress.file_done(path, size)
            local_paths.append(local)
        return local_paths

    def to_path(self) -> List[str]:
        """The files' paths as Azure ML lists them: ``/``-prefixed, relative to the
        folder the dataset is mounted or downloaded at."""
        return ["/" + item["path"].lstrip("/") for item in self.list_files()]

    # -- in runs ----------------------------------------------------------------

    def as_named_input(self, name: str) -> DatasetConsumptionConfig:
        """This dataset as the run input ``name`` (mounted unless ``.as_download()``)."""
        return DatasetConsumptionConfig(name, self)

    def as_mount(self, path_on_compute: Optional[str] = None) -> DatasetConsumptionConfig:
        """This dataset mounted, as an input named after the dataset."""
        return DatasetConsumptionConfig(self._input_name(), self, "mount", path_on_compute)

    def as_download(self, path_on_compute: Optional[str] = None) -> DatasetConsumptionConfig:
        """This dataset copied into the container, as an input named after the dataset."""
        return DatasetConsumptionConfig(self._input_name(), self, "download", path_on_compute)

    def _input_name(self) -> str:
        self._registered()
        return re.sub(r"[^A-Za-z0-9_.-]", "_", self.name)

    def __repr__(self) -> str:
        if self.name:
            return (f"FileDataset(name={self.name!r}, version={self.version}, "
                    f"files={self.file_count}, bytes={self.total_bytes})")
        return f"FileDataset(datastore={self._datastore!r}, paths={self._paths!r}, " \
               f"urls={self._urls!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FileDataset):
            return False
        if self.id or other.id:
            return self.id == other.id
        return (self._datastore, self._paths, self._urls) == (
            other._datastore, other._paths, other._urls)

    def __hash__(self) -> int:
        return hash(self.id or (self._datastore, tuple(self._paths), tuple(self._urls)))


class FileDatasetFactory:
    """``Dataset.File``: makes :class:`FileDataset` definitions."""

    @staticmethod
    def from_files(path: Union[PathSpec, List[PathSpec]], validate: bool = True,
                   partition_format: Optional[str] = None,
                   is_file: bool = False) -> FileDataset:
        """Files on one datastore, and/or URLs.

        Args:
            path: One or a list of: ``(datastore, "mnist/*.gz")`` (a
                :class:`Datastore` or its name, and a path, glob or list of
                them; a trailing ``/`` takes a whole folder), a :class:`DataPath`,
                or a URL string (``https://…``).
            validate, partition_format, is_file: Accepted for Azure ML
                compatibility; the server checks the paths when registering.

        Returns:
            An unregistered :class:`FileDataset`; ``register`` it to use it.
        """
        items = path if isinstance(path, list) else [path]
        stores, paths, urls = [], [], []
        for item in items:
            if isinstance(item, str):
                if "://" not in item:
                    raise ValueError(f"{item!r}: give (datastore, path) for a datastore path; "
                                     f"a string must be a URL")
                urls.append(item)
                continue
            if isinstance(item, DataPath):
                stores.append(item.datastore_name)
                paths.append(item.path_on_datastore)
                continue
            if isinstance(item, tuple) and len(item) == 2:
                store, spec = item
                stores.append(store.name if isinstance(store, Datastore) else str(store))
                for one in [spec] if isinstance(spec, str) else list(spec):
                    paths.append(str(one).lstrip("/"))
                continue
            raise TypeError(f"cannot use {item!r} as a dataset path: give (datastore, path), "
                            f"a DataPath or a URL")
        if len(set(stores)) > 1:
            raise ValueError(
                f"a dataset reads one datastore; these paths name {sorted(set(stores))}")
        if not paths and not urls:
            raise ValueError("no paths given")
        return FileDataset(stores[0] if stores else None, paths, urls)


class _TabularDatasetFactory:
    """``Dataset.Tabular``: not available in Trainyard."""

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(
            "tabular datasets are not available in Trainyard: register the files with "
            "Dataset.File.from_files and read them with pandas in the script")


class Dataset:
    """Azure ML's entry point: ``Dataset.File.from_files(…)``, ``Dataset.get_by_name(…)``.

    Example::

        ds = Dataset.File.from_files(path=[(datastore, "mnist/*.gz")])
        ds = ds.register(ws, "mnist", create_new_version=True)
        ds = Dataset.get_by_name(ws, "mnist")          # the latest version
        print(ds.version, ds.to_path())
    """

    File = FileDatasetFactory
    Tabular = _TabularDatasetFactory()

    @staticmethod
    def get_by_name(workspace: "Workspace", name: str,
                    version: Union[int, str] = "latest") -> FileDataset:
        """A registered dataset: its latest version, or version ``version``."""
        query = None if version in (None, "latest") else {"version": int(version)}
        view = workspace._http.get(workspace._path("datasets", name), query)
        return FileDataset._from_view(workspace, view)

    @staticmethod
    def get_all(workspace: "Workspace") -> Dict[str, FileDataset]:
        """The latest version of every registered dataset, by name."""
        answer = workspace._http.get(workspace._path("datasets"))
        return {view["name"]: FileDataset._from_view(workspace, view)
                for view in answer.get("items", [])}
