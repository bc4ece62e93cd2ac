"""The model registry: named, versioned model files with their lineage.

Mirrors ``azureml.core.Model`` and ``ResourceConfiguration``. A version is
registered from a run's files (``run.register_model``) or from local files
(``Model.register``, uploaded as a snapshot); it records the run, its
environment and the dataset versions the run read. Aliases
(``production``) point at one version each.
"""

import os
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Union

from ._files import extract_archive
from ._transfer import pack_path

if TYPE_CHECKING:  # pragma: no cover
    from .run import Run
    from .workspace import Workspace

__all__ = ["Model", "ResourceConfiguration"]


class ResourceConfiguration:
    """What a model needs to serve: CPU cores, memory and GPUs.

    Args:
        cpu: CPU cores.
        memory_in_gb: Memory in GiB.
        gpu: GPUs.
    """

    def __init__(self, cpu: Optional[float] = None, memory_in_gb: Optional[float] = None,
                 gpu: Optional[int] = None) -> None:
        self.cpu = cpu
        self.memory_in_gb = memory_in_gb
        self.gpu = gpu

    def serialize(self) -> Dict[str, Any]:
        """As the API takes it, unset values left out."""
        return {key: value for key, value in
                (("cpu", self.cpu), ("memory_in_gb", self.memory_in_gb), ("gpu", self.gpu))
                if value is not None}

    @staticmethod
    def deserialize(payload: Optional[Dict[str, Any]]) -> Optional["ResourceConfiguration"]:
        """From the API's form (``None`` stays ``None``)."""
        if not payload:
            return None
        return ResourceConfiguration(payload.get("cpu"), payload.get("memory_in_gb"),
                                     payload.get("gpu"))

    def __repr__(self) -> str:
        return (f"ResourceConfiguration(cpu={self.cpu}, memory_in_gb={self.memory_in_gb}, "
                f"gpu={self.gpu})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ResourceConfiguration) and \
            self.serialize() == other.serialize()


class _Framework:
    """Model frameworks (free text on the server; these are Azure ML's names)."""

    CUSTOM = "Custom"
    MULTI = "Multi"
    ONNX = "Onnx"
    PYTORCH = "PyTorch"
    SCIKITLEARN = "ScikitLearn"
    TENSORFLOW = "TensorFlow"


def _model_body(model_name: str, model_framework: Optional[str],
                model_framework_version: Optional[str],
                resource_configuration: Union[ResourceConfiguration, Dict[str, Any], None],
                tags: Optional[Dict[str, Any]], properties: Optional[Dict[str, Any]],
                description: Optional[str]) -> Dict[str, Any]:
    """The ``POST …/models`` body without its source (``run_id`` + ``path`` or ``snapshot``)."""
    body: Dict[str, Any] = {"name": model_name}
    if model_framework:
        body["framework"] = model_framework
    if model_framework_version:
        body["framework_version"] = str(model_framework_version)
    if resource_configuration is not None:
        body["resource_configuration"] = (
            resource_configuration.serialize()
            if isinstance(resource_configuration, ResourceConfiguration)
            else dict(resource_configuration))
    if tags:
        body["tags"] = {str(k): str(v) for k, v in tags.items()}
    if properties:
        body["properties"] = {str(k): str(v) for k, v in properties.items()}
    if description is not None:
        body["description"] = description
    return body


class Model:
    """A registered model version.

    ``Model(ws, name)`` is the latest version, ``Model(ws, name, version=3)``
    (or Azure ML's ``Model(ws, id="name:3")``) one version and
    ``Model(ws, name, alias="production")`` the version an alias points at.

    Example::

        model = run.register_model("mnist-cnn", "outputs/model.npz",
                                   model_framework=Model.Framework.PYTORCH,
                                   tags={"acc": 0.99})
        model.set_alias("production")
        Model(ws, "mnist-cnn", alias="production").download("./model", exist_ok=True)
    """

    Framework = _Framework

    def __init__(self, workspace: "Workspace", name: Optional[str] = None,
                 version: Optional[int] = None, alias: Optional[str] = None,
                 **kwargs: Any) -> None:
        self._workspace = workspace
        view = kwargs.get("_view")
        if view is None and not name and kwargs.get("id"):
            name, _, number = str(kwargs["id"]).partition(":")  # Azure ML's "name:version"
            version = int(number) if number else version
        if view is None:
            if not name:
                raise ValueError("a model name is needed")
            if version is not None and alias is not None:
                raise ValueError("give a version or an alias, not both")
            query = {"version": version, "alias": alias}
            view = workspace._http.get(workspace._path("models", name), query)
        self._view: Dict[str, Any] = view

    @classmethod
    def _from_view(cls, workspace: "Workspace", view: Dict[str, Any]) -> "Model":
        return cls(workspace, _view=view)

    @classmethod
    def get(cls, workspace: "Workspace", name: str, version: Optional[int] = None,
            alias: Optional[str] = None) -> "Model":
        """A version by number or alias; the latest without either."""
        return cls(workspace, name, version=version, alias=alias)

    @classmethod
    def list(cls, workspace: "Workspace", name: Optional[str] = None,
             tags: Optional[Iterable[Any]] = None, properties: Optional[Iterable[Any]] = None,
             latest: bool = False) -> List["Model"]:
        """Registered models.

        Args:
            name: Only this model's versions (newest first, as the server lists them).
            tags, properties: Only versions having these: names (``["prod"]``) or
                ``[name, value]`` pairs.
            latest: Only the latest version of each name (without ``name``, one
                request; otherwise every version of every model).
        """
        http = workspace._http
        if name is not None:
            views = http.get(workspace._path("models", name, "versions")).get("items", [])
            if latest and views:
                views = [max(views, key=lambda v: v.get("version", 0))]
        else:
            views = http.get(workspace._path("models")).get("items", [])
            if not latest:
                views = [version for view in views for version in http.get(
                    workspace._path("models", view["name"], "versions")).get("items", [])]
        models = [cls._from_view(workspace, view) for view in views]
        return [m for m in models if _has(m.tags, tags) and _has(m.properties, properties)]

    @classmethod
    def register(cls, workspace: "Workspace", model_path: str, model_name: str,
                 tags: Optional[Dict[str, Any]] = None,
                 properties: Optional[Dict[str, Any]] = None,
                 description: Optional[str] = None,
                 model_framework: Optional[str] = None,
                 model_framework_version: Optional[str] = None,
                 resource_configuration: Union[ResourceConfiguration, Dict[str, Any],
                                               None] = None,
                 **kwargs: Any) -> "Model":
        """Registers local files as a new version of ``model_name``.

        Args:
            model_path: A file (kept under its base name) or a folder (its files,
                relative to it). They are packed as tar.gz and uploaded as a snapshot,
                so the server's snapshot rules and size limit apply.
            model_framework: e.g. ``Model.Framework.SCIKITLEARN``.
        """
        archive, size, _ = pack_path(model_path)
        with archive:
            answer = workspace._http.request(
                "POST", workspace._path("snapshots"), data=archive,
                content_type="application/gzip", content_length=size, timeout=600)
        body = _model_body(model_name, model_framework, model_framework_version,
                           resource_configuration, tags, properties, description)
        body["snapshot"] = answer["digest"]
        return cls._from_view(workspace, workspace._http.post(workspace._path("models"), body))

    @classmethod
    def _register_from_run(cls, run: "Run", model_name: str, model_path: str,
                           **options: Any) -> "Model":
        body = _model_body(model_name, options.get("model_framework"),
                           options.get("model_framework_version"),
                           options.get("resource_configuration"), options.get("tags"),
                           options.get("properties"), options.get("description"))
        body["run_id"] = run.id
        body["path"] = model_path.strip("/")
        workspace = run.workspace
        return cls._from_view(workspace, workspace._http.post(workspace._path("models"), body))

    # -- properties ---------------------------------------------------------------

    id = property(lambda self: self._view.get("id"), doc="The version's id.")
    name = property(lambda self: self._view.get("name"), doc="The model's name.")
    version = property(lambda self: self._view.get("version"), doc="The version number.")
    description = property(lambda self: self._view.get("description"), doc="Its description.")
    framework = property(lambda self: self._view.get("framework"), doc="e.g. ``PyTorch``.")
    framework_version = property(lambda self: self._view.get("framework_version"),
                                 doc="The framework's version.")
    run_id = property(lambda self: self._view.get("run_id"), doc="The run it came from.")
    environment = property(lambda self: self._view.get("environment"),
                           doc="The run's environment: ``{name, version}`` or ``None``.")
    created_time = property(lambda self: self._view.get("created_at"), doc="When registered.")

    @property
    def workspace(self) -> "Workspace":
        """The model's workspace."""
        return self._workspace

    @property
    def tags(self) -> Dict[str, str]:
        """The version's tags."""
        return dict(self._view.get("tags") or {})

    @property
    def properties(self) -> Dict[str, str]:
        """The version's properties."""
        return dict(self._view.get("properties") or {})

    @property
    def resource_configuration(self) -> Optional[ResourceConfiguration]:
        """What it needs to serve."""
        return ResourceConfiguration.deserialize(self._view.get("resource_configuration"))

    @property
    def datasets(self) -> List[Dict[str, Any]]:
        """The dataset versions its run read: ``[{"name", "version"}]``."""
        return list(self._view.get("datasets") or [])

    @property
    def files(self) -> List[Dict[str, Any]]:
        """Its files: ``[{"path", "size"}]``, relative to the model's root."""
        return list(self._view.get("files") or [])

    @property
    def aliases(self) -> List[str]:
        """The aliases pointing at this version."""
        return list(self._view.get("aliases") or [])

    @property
    def run(self) -> Optional["Run"]:
        """The run it was registered from, if any."""
        from .run import Run

        return Run.get(self._workspace, self.run_id) if self.run_id else None

    def get_details(self) -> Dict[str, Any]:
        """The version as the server shows it now."""
        self._view = self._workspace._http.get(self._workspace._path("models", self.name),
                                               {"version": self.version})
        return dict(self._view)

    def _version_path(self, *parts: Any) -> str:
        return self._workspace._path("models", self.name, "versions", self.version, *parts)

    # -- changes ------------------------------------------------------------------

    def update(self, tags: Optional[Dict[str, Any]] = None,
               description: Optional[str] = None) -> None:
        """Replaces the tags and/or the description."""
        body: Dict[str, Any] = {}
        if tags is not None:
            body["tags"] = {str(k): str(v) for k, v in tags.items()}
        if description is not None:
            body["description"] = description
        if body:
            self._view = self._workspace._http.patch(self._version_path(), body)

    def add_tags(self, tags: Dict[str, Any]) -> None:
        """Adds tags (or changes their values), keeping the others."""
        self.update(tags={**self.tags, **{str(k): str(v) for k, v in tags.items()}})

    def remove_tags(self, tags: Union[str, Iterable[str]]) -> None:
        """Removes tags by key."""
        drop = {tags} if isinstance(tags, str) else set(tags)
        self.update(tags={k: v for k, v in self.tags.items() if k not in drop})

    def delete(self) -> None:
        """Deletes this version."""
        self._workspace._http.delete(self._version_path())

    def set_alias(self, alias: str) -> None:
        """Points ``alias`` (e.g. ``production``) at this version, moving it if it was elsewhere."""
        self._workspace._http.put(self._workspace._path("models", self.name, "aliases", alias),
                                  {"version": self.version})
        self._view["aliases"] = sorted(set(self.aliases) | {alias})

    def remove_alias(self, alias: str) -> None:
        """Removes ``alias`` from the model (wherever it points)."""
        self._workspace._http.delete(self._workspace._path("models", self.name, "aliases",
                                                           alias))
        self._view["aliases"] = [a for a in self.aliases if a != alias]

    # -- files --------------------------------------------------------------------

    def download(self, target_dir: str = ".", exist_ok: bool = False, **kwargs: Any) -> str:
        """Downloads the model's files into ``target_dir``, keeping their paths.

        Returns the file's path for a one-file model, else ``target_dir``.

        Raises:
            FileExistsError: a file would be overwritten and ``exist_ok`` is False.
        """
        if not exist_ok:
            clashes = [f["path"] for f in self.files
                       if os.path.exists(os.path.join(target_dir, *f["path"].split("/")))]
            if clashes:
                raise FileExistsError(f"{len(clashes)} file(s) exist in {target_dir!r} "
                                      f"({clashes[0]}, …); pass exist_ok=True to overwrite")
        os.makedirs(target_dir, exist_ok=True)
        response = self._workspace._http.open("GET", self._version_path("download"),
                                              timeout=600)
        with response:
            written = extract_archive(response, target_dir)
        if len(written) == 1 and len(self.files) <= 1:
            return written[0]
        return target_dir

    def __repr__(self) -> str:
        return f"Model(name={self.name!r}, version={self.version}, framework={self.framework!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and (self.name, self.version) == (
            other.name, other.version) and self._workspace == other._workspace

    def __hash__(self) -> int:
        return hash((self.name, self.version))


def _has(values: Dict[str, str], wanted: Optional[Iterable[Any]]) -> bool:
    """Whether ``values`` has every name, or ``[name, value]`` pair, of ``wanted``."""
    for item in wanted or []:
        if isinstance(item, (list, tuple)) and len(item) == 2:
            if values.get(str(item[0])) != str(item[1]):
                return False
        elif str(item) not in values:
            return False
    return True
