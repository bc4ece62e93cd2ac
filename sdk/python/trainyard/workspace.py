"""The workspace: where a Trainyard server is, which workspace, and the token.

Mirrors ``azureml.core.Workspace``: ``Workspace.from_config()`` reads
``.trainyard/config.json`` (searched from the current folder upwards) and the
``TRAINYARD_URL`` / ``TRAINYARD_WORKSPACE`` / ``TRAINYARD_TOKEN`` variables,
the variables winning over the file.
"""

import json
import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from ._http import HttpClient, quote
from .exceptions import ConfigError, TrainyardError

__all__ = ["Workspace", "DEFAULT_URL", "CONFIG_FILE"]

#: The server used when neither the environment nor a config file names one.
DEFAULT_URL = "http://127.0.0.1:8420"
#: The per-project settings file, searched from the current folder upwards.
CONFIG_FILE = os.path.join(".trainyard", "config.json")

_ENV_KEYS = {"url": "TRAINYARD_URL", "workspace": "TRAINYARD_WORKSPACE", "token": "TRAINYARD_TOKEN"}


class Workspace:
    """A workspace on a Trainyard server.

    Args:
        url: The server's base URL, e.g. ``http://127.0.0.1:8420``.
        name: The workspace's name (or id).
        token: An API token for it (``tyd_…``), or a server administrator's.
        timeout: Seconds to wait for the server on each request.

    Example::

        ws = Workspace.from_config()
        print(ws.name, ws.get_details()["id"])
    """

    def __init__(self, url: str, name: str, token: str, *, timeout: float = 60.0) -> None:
        if not name:
            raise ConfigError("a workspace name is needed")
        self._name = name
        self._http = HttpClient(url, token, timeout=timeout)

    # -- construction -----------------------------------------------------

    @classmethod
    def from_config(cls, path: Union[str, os.PathLike, None] = None,
                    _file_name: Optional[str] = None) -> "Workspace":
        """Loads the connection settings of the nearest ``.trainyard/config.json``.

        Args:
            path: A config file, or a folder to start searching from (upwards)
                instead of the current folder.

        The file's keys are ``url``, ``workspace`` and ``token``; the
        environment variables ``TRAINYARD_URL``, ``TRAINYARD_WORKSPACE`` and
        ``TRAINYARD_TOKEN`` override them. Without a URL, ``TRAINYARD_API_URL``
        (set inside a run's container) or else ``http://127.0.0.1:8420`` is used.

        Raises:
            ConfigError: no workspace or token was found, or the file is unreadable.
        """
        settings, found = load_settings(path, _file_name)
        where = f"{found}" if found else f"no {CONFIG_FILE} was found at or above {_start(path)}"
        for key in ("workspace", "token"):
            if not settings.get(key):
                raise ConfigError(
                    f"no {key}: set {_ENV_KEYS[key]} or put \"{key}\" in {CONFIG_FILE} ({where})"
                )
        return cls(settings.get("url") or DEFAULT_URL, settings["workspace"], settings["token"])

    @classmethod
    def get(cls, name: str, url: Optional[str] = None, token: Optional[str] = None) -> "Workspace":
        """The workspace ``name``; URL and token default to the environment and config file."""
        settings, _ = load_settings(None)
        workspace = cls(url or settings.get("url") or DEFAULT_URL, name,
                        token or settings.get("token") or "")
        workspace.get_details()
        return workspace

    @classmethod
    def create(cls, name: str, url: str, token: str, description: Optional[str] = None,
               exist_ok: bool = False) -> "Workspace":
        """Creates a workspace (needs a server administrator token).

        Args:
            exist_ok: When the name is taken, return that workspace instead of failing.
        """
        http = HttpClient(url, token)
        body: Dict[str, Any] = {"name": name}
        if description is not None:
            body["description"] = description
        try:
            http.post("/api/v1/workspaces", body)
        except TrainyardError as err:
            if not (exist_ok and err.code == "already_exists"):
                raise
        return cls(url, name, token)

    @classmethod
    def list(cls, url: str, token: str) -> Dict[str, "Workspace"]:
        """Every workspace by name (needs a server administrator token)."""
        http = HttpClient(url, token)
        return {item["name"]: cls(url, item["name"], token)
                for item in http.paged("/api/v1/workspaces")}

    # -- properties -------------------------------------------------------

    @property
    def name(self) -> str:
        """The workspace's name (or id, as it was given)."""
        return self._name

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self._http.url

    @property
    def token(self) -> Optional[str]:
        """The API token used."""
        return self._http.token

    @property
    def experiments(self) -> Dict[str, Any]:
        """The workspace's experiments by name (archived ones left out)."""
        from .experiment import Experiment

        return {item["name"]: Experiment._from_view(self, item)
                for item in self._http.paged(self._path("experiments"))}

    @property
    def environments(self) -> Dict[str, Any]:
        """The latest version of each registered environment, by name."""
        from .environment import Environment

        answer = self._http.get(self._path("environments"))
        return {item["name"]: Environment._from_view(item) for item in answer.get("items", [])}

    @property
    def datastores(self) -> Dict[str, Any]:
        """The workspace's datastores by name (the built-in ``default`` among them)."""
        from .datastore import Datastore

        answer = self._http.get(self._path("datastores"))
        return {item["name"]: Datastore._from_view(self, item) for item in answer.get("items", [])}

    def get_default_datastore(self) -> Any:
        """The default datastore (the built-in ``default``, the server's object store)."""
        from .datastore import Datastore

        return Datastore.get_default(self)

    @property
    def datasets(self) -> Dict[str, Any]:
        """The latest version of each registered dataset, by name."""
        from .dataset import Dataset

        return Dataset.get_all(self)

    @property
    def models(self) -> Dict[str, Any]:
        """The latest version of each registered model, by name."""
        from .model import Model

        return {model.name: model for model in Model.list(self, latest=True)}

    def get_details(self) -> Dict[str, Any]:
        """The workspace as the server shows it: ``id``, ``name``, ``description``,
        ``created_at``."""
        return self._http.get(self._path())

    def write_config(self, path: Union[str, os.PathLike, None] = None,
                     file_name: Optional[str] = None, include_token: bool = True) -> str:
        """Writes ``<path>/.trainyard/config.json`` (mode 0600); returns its path."""
        folder = Path(path or os.getcwd()) / ".trainyard"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / (file_name or "config.json")
        content: Dict[str, Any] = {"url": self.url, "workspace": self.name}
        if include_token and self.token:
            content["token"] = self.token
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(content, handle, indent=2)
            handle.write("\n")
        return str(target)

    def _path(self, *parts: Any) -> str:
        """``/api/v1/workspaces/<ws>/<parts…>`` with every segment quoted."""
        tail = "".join("/" + quote(part) for part in parts)
        return f"/api/v1/workspaces/{quote(self._name)}{tail}"

    def __repr__(self) -> str:
        return f"Workspace(url={self.url!r}, name={self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Workspace) and (self.url, self.name) == (other.url, other.name)

    def __hash__(self) -> int:
        return hash((self.url, self.name))


def _start(path: Union[str, os.PathLike, None]) -> Path:
    return Path(path) if path is not None else Path.cwd()


def find_config(start: Union[str, os.PathLike, None] = None,
                file_name: Optional[str] = None) -> Optional[Path]:
    """The nearest ``.trainyard/config.json`` at or above ``start`` (default: the cwd)."""
    base = _start(start).resolve()
    relative = Path(".trainyard") / (file_name or "config.json")
    for folder in [base, *base.parents]:
        candidate = folder / relative
        if candidate.is_file():
            return candidate
    return None


def load_settings(path: Union[str, os.PathLike, None] = None,
                  file_name: Optional[str] = None) -> Tuple[Dict[str, str], Optional[Path]]:
    """The merged settings (``url``, ``workspace``, ``token``) and the file they came from.

    ``path`` is a config file, or a folder to search upwards from. Environment
    variables win over the file; empty values count as absent.
    """
    found: Optional[Path]
    if path is not None and Path(path).is_file():
        found = Path(path)
    else:
        found = find_config(path, file_name)
    settings: Dict[str, str] = {}
    if found is not None:
        try:
            content = json.loads(found.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ConfigError(f"{found} could not be read as JSON: {err}") from None
        if not isinstance(content, dict):
            raise ConfigError(f"{found} must hold a JSON object")
        for key in _ENV_KEYS:
            value = content.get(key)
            if value:
                settings[key] = str(value)
    for key, variable in _ENV_KEYS.items():
        value = os.environ.get(variable)
        if value:
            settings[key] = value
    if "url" not in settings and os.environ.get("TRAINYARD_API_URL"):
        settings["url"] = os.environ["TRAINYARD_API_URL"]  # inside a run's container
    return settings, found
