"""Environments: what a run's container image holds.

Mirrors ``azureml.core.Environment`` in a simpler shape: a base image
(``env.docker.base_image``) with ``apt_packages``, ``pip_packages``, a pip
requirements file, a conda specification and ``environment_variables`` on
top; or a whole Dockerfile. Registering a name again adds a version.
"""

import copy
import os
from typing import TYPE_CHECKING, Any, Dict, List, Optional

if TYPE_CHECKING:  # pragma: no cover
    from .workspace import Workspace

__all__ = ["Environment", "DockerSection", "DEFAULT_BASE_IMAGE"]

#: The base image the server uses when none is named.
DEFAULT_BASE_IMAGE = "trainyard/python:3.11-bookworm"


class DockerSection:
    """The Docker part of an environment (``env.docker``).

    Attributes:
        base_image: The image to start from (default ``trainyard/python:3.11-bookworm``).
        base_dockerfile: A whole Dockerfile's text instead; no other setting may be used then.
    """

    def __init__(self) -> None:
        self.base_image: Optional[str] = None
        self.base_dockerfile: Optional[str] = None
        #: Accepted for compatibility with Azure ML; Trainyard always uses Docker.
        self.enabled: bool = True

    def __repr__(self) -> str:
        return f"DockerSection(base_image={self.base_image!r}, " \
               f"base_dockerfile={'…' if self.base_dockerfile else None})"


class Environment:
    """A named, versioned environment.

    Args:
        name: Its name (letters, digits, ``_``, ``-``, ``.``).

    Example::

        env = Environment.from_pip_requirements("torchy", "requirements.txt")
        env.apt_packages = ["libgomp1"]
        env.environment_variables = {"OMP_NUM_THREADS": "4"}
        env = env.register(ws)           # version 1, 2, … at each registration
        print(env.version, env.image, env.build_state)
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.docker = DockerSection()
        self.environment_variables: Dict[str, str] = {}
        self.pip_packages: List[str] = []
        self.apt_packages: List[str] = []
        #: The text of a pip requirements file, installed after ``pip_packages``.
        self.pip_requirements: Optional[str] = None
        #: The text of a conda environment file (the base image must have conda).
        self.conda_specification: Optional[str] = None
        self.description: Optional[str] = None
        #: Set once registered (or fetched with :meth:`get`).
        self.version: Optional[int] = None
        self.image: Optional[str] = None
        self.build_state: Optional[str] = None
        self.build_error: Optional[str] = None
        self.id: Optional[str] = None

    # -- constructors like Azure ML's -------------------------------------

    @classmethod
    def from_pip_requirements(cls, name: str, file_path: str) -> "Environment":
        """An environment installing a pip requirements file (its text is sent)."""
        env = cls(name)
        env.pip_requirements = _read(file_path)
        return env

    @classmethod
    def from_conda_specification(cls, name: str, file_path: str) -> "Environment":
        """An environment applying a conda environment file with ``conda env update``.

        The base image must have conda: set ``env.docker.base_image`` to one that does.
        """
        env = cls(name)
        env.conda_specification = _read(file_path)
        return env

    @classmethod
    def from_dockerfile(cls, name: str, dockerfile: str) -> "Environment":
        """An environment built from a whole Dockerfile: a path to one, or its text."""
        env = cls(name)
        if os.path.isfile(dockerfile):
            env.docker.base_dockerfile = _read(dockerfile)
        elif "\n" in dockerfile or dockerfile.lstrip().upper().startswith(("FROM", "ARG", "#")):
            env.docker.base_dockerfile = dockerfile
        else:
            raise FileNotFoundError(f"no Dockerfile at {dockerfile!r} (pass a path or the text)")
        return env

    @classmethod
    def from_docker_image(cls, name: str, image: str) -> "Environment":
        """An environment using ``image`` as it is (plus whatever is added later)."""
        env = cls(name)
        env.docker.base_image = image
        return env

    # -- the registry -----------------------------------------------------

    def register(self, workspace: "Workspace") -> "Environment":
        """Registers this spec as the next version of ``name``; returns the registered version.

        This object is updated too (``version``, ``image``, ``build_state``).
        """
        body: Dict[str, Any] = {"name": self.name, "spec": self.spec()}
        if self.description:
            body["description"] = self.description
        view = workspace._http.post(workspace._path("environments"), body)
        self._update(view)
        return Environment._from_view(view)

    @staticmethod
    def get(workspace: "Workspace", name: str, version: Optional[int] = None) -> "Environment":
        """A registered environment: ``version``, or the latest one."""
        query = {"version": version} if version is not None else None
        return Environment._from_view(workspace._http.get(workspace._path("environments", name),
                                                          query))

    @staticmethod
    def list(workspace: "Workspace") -> Dict[str, "Environment"]:
        """The latest version of every registered environment, by name."""
        return workspace.environments

    # -- the spec ---------------------------------------------------------

    @property
    def dockerfile(self) -> Optional[str]:
        """The whole Dockerfile, if any (the same as ``docker.base_dockerfile``)."""
        return self.docker.base_dockerfile

    @dockerfile.setter
    def dockerfile(self, value: Optional[str]) -> None:
        self.docker.base_dockerfile = value

    def spec(self) -> Dict[str, Any]:
        """The spec as the API takes it, with empty settings left out."""
        spec: Dict[str, Any] = {}
        if self.docker.base_dockerfile:
            spec["dockerfile"] = self.docker.base_dockerfile
        if self.docker.base_image:
            spec["base_image"] = self.docker.base_image
        if self.apt_packages:
            spec["apt_packages"] = [str(p) for p in self.apt_packages]
        if self.pip_packages:
            spec["pip_packages"] = [str(p) for p in self.pip_packages]
        if self.pip_requirements:
            spec["pip_requirements"] = self.pip_requirements
        if self.conda_specification:
            spec["conda_specification"] = self.conda_specification
        if self.environment_variables:
            spec["environment_variables"] = {
                str(k): str(v) for k, v in self.environment_variables.items()
            }
        return spec

    def _choice(self) -> Dict[str, Any]:
        """How a run names this environment: by name and version once registered and
        unchanged since, else by its spec inline."""
        if self.version is not None and self._registered_spec == self.spec():
            return {"name": self.name, "version": self.version}
        return {"spec": self.spec()}

    _registered_spec: Optional[Dict[str, Any]] = None

    def clone(self, new_name: str) -> "Environment":
        """A copy under another name, not registered."""
        env = copy.deepcopy(self)
        env.name = new_name
        env.version = env.image = env.build_state = env.build_error = env.id = None
        env._registered_spec = None
        return env

    def _update(self, view: Dict[str, Any]) -> None:
        spec = view.get("spec") or {}
        self.name = view.get("name", self.name)
        self.id = view.get("id")
        self.version = view.get("version")
        self.image = view.get("image")
        self.build_state = view.get("build_state")
        self.build_error = view.get("build_error")
        self.description = view.get("description")
        self.docker.base_image = spec.get("base_image")
        self.docker.base_dockerfile = spec.get("dockerfile")
        self.apt_packages = list(spec.get("apt_packages") or [])
        self.pip_packages = list(spec.get("pip_packages") or [])
        self.pip_requirements = spec.get("pip_requirements")
        self.conda_specification = spec.get("conda_specification")
        self.environment_variables = dict(spec.get("environment_variables") or {})
        self._registered_spec = self.spec()

    @classmethod
    def _from_view(cls, view: Dict[str, Any]) -> "Environment":
        env = cls(view["name"])
        env._update(view)
        return env

    def __repr__(self) -> str:
        version = f", version={self.version}" if self.version is not None else ""
        return f"Environment(name={self.name!r}{version}, spec={self.spec()!r})"


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()
