"""Datastores: named places that hold data files, and paths on them.

Mirrors ``azureml.core.Datastore`` and ``azureml.data.datapath.DataPath``.
Every workspace has the built-in datastore ``default`` (the server's own
object store); ``Datastore.register(ws, name, "file:///srv/data")`` adds a
folder on the server's machine. ``upload`` streams local files to a
datastore, ``download`` streams them back.
"""

import os
import posixpath
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Tuple, Union

from ._transfer import CountingReader, Progress, copy_to_file
from .exceptions import TrainyardError

if TYPE_CHECKING:  # pragma: no cover
    from .workspace import Workspace

__all__ = ["Datastore", "DataPath", "DEFAULT_DATASTORE"]

#: The name of every workspace's built-in datastore.
DEFAULT_DATASTORE = "default"


class DataPath:
    """A path (or glob pattern) on a datastore, e.g. ``DataPath(ds, "mnist/*.gz")``.

    Args:
        datastore: A :class:`Datastore` or a datastore's name.
        path_on_datastore: The path, ``/``-separated; globs (``*``, ``**``) and a
            trailing ``/`` for a whole folder are allowed where datasets read it.
    """

    def __init__(self, datastore: Union["Datastore", str, None] = None,
                 path_on_datastore: Optional[str] = None, name: Optional[str] = None) -> None:
        self.datastore = datastore
        self.path_on_datastore = (path_on_datastore or "").lstrip("/")
        self.name = name

    @property
    def datastore_name(self) -> str:
        """The datastore's name (``default`` when none was given)."""
        store = self.datastore
        if store is None:
            return DEFAULT_DATASTORE
        return store if isinstance(store, str) else store.name

    def __repr__(self) -> str:
        return f"DataPath(datastore={self.datastore_name!r}, path={self.path_on_datastore!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DataPath) and (self.datastore_name, self.path_on_datastore) == (
            other.datastore_name, other.path_on_datastore)

    def __hash__(self) -> int:
        return hash((self.datastore_name, self.path_on_datastore))


class Datastore:
    """A datastore of a workspace.

    ``Datastore(ws)`` is the default datastore, ``Datastore(ws, name)`` (or
    ``Datastore.get(ws, name)``) a named one.

    Attributes:
        name: Its name.
        datastore_type: ``builtin`` (the default one), ``file``, ``s3``, ``az`` or ``gs``.
        url: Where it keeps files (``file:///…`` for a folder on the server).
        is_default: Whether it is the workspace's default datastore.

    Example::

        ds = ws.get_default_datastore()
        ds.upload("./mnist", target_path="mnist", overwrite=True)
        print([f["path"] for f in ds.list("mnist")])
    """

    def __init__(self, workspace: "Workspace", name: Optional[str] = None,
                 **kwargs: Any) -> None:
        self._workspace = workspace
        view = kwargs.get("_view")
        if view is None:
            view = workspace._http.get(workspace._path("datastores", name or DEFAULT_DATASTORE))
        self._view: Dict[str, Any] = view

    @classmethod
    def _from_view(cls, workspace: "Workspace", view: Dict[str, Any]) -> "Datastore":
        return cls(workspace, view.get("name"), _view=view)

    @classmethod
    def get(cls, workspace: "Workspace", datastore_name: str) -> "Datastore":
        """A datastore by name."""
        return cls(workspace, datastore_name)

    @classmethod
    def get_default(cls, workspace: "Workspace") -> "Datastore":
        """The workspace's default datastore."""
        views = workspace._http.get(workspace._path("datastores")).get("items", [])
        for view in views:
            if view.get("is_default"):
                return cls._from_view(workspace, view)
        return cls(workspace, DEFAULT_DATASTORE)

    @classmethod
    def register(cls, workspace: "Workspace", datastore_name: str, url: str,
                 options: Optional[Dict[str, Any]] = None) -> "Datastore":
        """Registers a datastore: ``url`` is ``file:///abs/folder`` (a folder on the
        server's machine; a plain absolute path is turned into such a URL),
        ``s3://bucket/prefix``, ``az://container/prefix`` or ``gs://bucket/prefix``.

        Args:
            options: For s3/az/gs, object_store's configuration keys
                (``aws_region``, ``aws_endpoint``, ``azure_storage_account_name``,
                …). A secret is given as ``{"env": "NAME"}``, a variable of the
                server's environment: the server never stores a secret.

        Raises:
            TrainyardError: ``already_exists`` when the name is taken, or the URL
                or an option is refused.
        """
        if "://" not in url:
            if not posixpath.isabs(url):
                raise ValueError(f"{url!r}: give a URL (file:///abs/folder) or an absolute path")
            url = "file://" + url
        body: Dict[str, Any] = {"name": datastore_name, "url": url}
        if options:
            body["options"] = options
        view = workspace._http.post(workspace._path("datastores"), body)
        return cls._from_view(workspace, view)

    @classmethod
    def register_s3(cls, workspace: "Workspace", datastore_name: str, bucket_name: str,
                    prefix: str = "", region: Optional[str] = None,
                    endpoint: Optional[str] = None,
                    access_key_id_env: Optional[str] = None,
                    secret_access_key_env: Optional[str] = None) -> "Datastore":
        """Registers an S3 bucket (or an S3-compatible store at ``endpoint``).
        The keys are named by the server's environment variables that hold them."""
        options: Dict[str, Any] = {}
        if region:
            options["aws_region"] = region
        if endpoint:
            options["aws_endpoint"] = endpoint
            if endpoint.startswith("http://"):
                options["aws_allow_http"] = "true"
        if access_key_id_env:
            options["aws_access_key_id"] = {"env": access_key_id_env}
        if secret_access_key_env:
            options["aws_secret_access_key"] = {"env": secret_access_key_env}
        url = f"s3://{bucket_name}/{prefix.strip('/')}".rstrip("/")
        return cls.register(workspace, datastore_name, url, options)

    @classmethod
    def register_azure_blob_container(cls, workspace: "Workspace", datastore_name: str,
                                      container_name: str, account_name: str,
                                      account_key_env: Optional[str] = None,
                                      sas_token_env: Optional[str] = None,
                                      prefix: str = "") -> "Datastore":
        """Registers an Azure Blob container, as ``azureml``'s method of that name
        does; the key or SAS token is named by a server environment variable."""
        options: Dict[str, Any] = {"azure_storage_account_name": account_name}
        if account_key_env:
            options["azure_storage_account_key"] = {"env": account_key_env}
        if sas_token_env:
            options["azure_storage_sas_key"] = {"env": sas_token_env}
        url = f"az://{container_name}/{prefix.strip('/')}".rstrip("/")
        return cls.register(workspace, datastore_name, url, options)

    @classmethod
    def register_gcs(cls, workspace: "Workspace", datastore_name: str, bucket_name: str,
                     prefix: str = "", service_account_key_env: Optional[str] = None
                     ) -> "Datastore":
        """Registers a Google Cloud Storage bucket; the service account key (JSON)
        is named by a server environment variable."""
        options: Dict[str, Any] = {}
        if service_account_key_env:
            options["google_service_account_key"] = {"env": service_account_key_env}
        url = f"gs://{bucket_name}/{prefix.strip('/')}".rstrip("/")
        return cls.register(workspace, datastore_name, url, options)

    # -- properties ---------------------------------------------------------------

    @property
    def workspace(self) -> "Workspace":
        """The datastore's workspace."""
        return self._workspace

    @property
    def name(self) -> str:
        """The datastore's name."""
        return self._view["name"]

    @property
    def datastore_type(self) -> str:
        """``builtin`` (the default datastore), ``file``, ``s3``, ``az`` or ``gs``."""
        return self._view.get("kind", "")

    kind = datastore_type

    @property
    def url(self) -> Optional[str]:
        """Where it keeps its files."""
        return self._view.get("url")

    @property
    def is_default(self) -> bool:
        """Whether it is the workspace's default datastore."""
        return bool(self._view.get("is_default"))

    @property
    def created_at(self) -> Optional[str]:
        """When it was registered."""
        return self._view.get("created_at")

    def _path(self, *parts: Any) -> str:
        return self._workspace._path("datastores", self.name, *parts)

    def path(self, path: Optional[str] = None, data_reference_name: Optional[str] = None
             ) -> DataPath:
        """A :class:`DataPath` on this datastore (for ``Dataset.File.from_files``)."""
        return DataPath(self, path, data_reference_name)

    # -- files ------------------------------------------------------------------

    def list(self, prefix: Optional[str] = None) -> List[Dict[str, Any]]:
        """The files (under the folder ``prefix``): ``[{"path", "size", "modified"}]``."""
        query = {"prefix": prefix.strip("/") or None} if prefix else None
        return list(self._workspace._http.get(self._path("files"), query).get("items", []))

    def upload(self, src_dir: str, target_path: Optional[str] = None, overwrite: bool = False,
               show_progress: bool = True) -> DataPath:
        """Uploads every file under the folder ``src_dir`` to ``target_path/<relative path>``.

        Each file is streamed from disk. Files that exist on the datastore are
        skipped unless ``overwrite``. Returns the :class:`DataPath` of ``target_path``.
        """
        if not os.path.isdir(src_dir):
            raise NotADirectoryError(f"{src_dir!r} is not a folder")
        pairs = []
        for root, dirs, files in os.walk(src_dir):
            dirs.sort()
            for name in files:
                full = os.path.join(root, name)
                if os.path.isfile(full):
                    rel = os.path.relpath(full, src_dir).replace(os.sep, "/")
                    pairs.append((_join(target_path, rel), full))
        self._upload(sorted(pairs), target_path, overwrite, show_progress)
        return DataPath(self, target_path)

    def upload_files(self, files: Iterable[str], relative_root: Optional[str] = None,
                     target_path: Optional[str] = None, overwrite: bool = False,
                     show_progress: bool = True) -> DataPath:
        """Uploads the files named (local paths) to ``target_path``.

        Each goes to ``target_path/<its path relative to relative_root>``;
        ``relative_root`` defaults to the files' common folder, so files from
        one folder land directly under ``target_path``.
        """
        files = [os.path.abspath(f) for f in ([files] if isinstance(files, str) else files)]
        for full in files:
            if not os.path.isfile(full):
                raise FileNotFoundError(f"{full!r} is not a file")
        if not files:
            return DataPath(self, target_path)
        root = os.path.abspath(relative_root) if relative_root else os.path.commonpath(
            [os.path.dirname(f) for f in files])
        pairs = []
        for full in files:
            rel = os.path.relpath(full, root)
            if rel.startswith(os.pardir + os.sep) or rel == os.pardir:
                raise ValueError(f"{full!r} is not under relative_root {root!r}")
            pairs.append((_join(target_path, rel.replace(os.sep, "/")), full))
        self._upload(pairs, target_path, overwrite, show_progress)
        return DataPath(self, target_path)

    def _upload(self, pairs: List[Tuple[str, str]], target_path: Optional[str],
                overwrite: bool, show_progress: bool) -> List[str]:
        """PUTs each ``(datastore path, local file)``; returns the paths stored."""
        existing = set()
        if not overwrite and pairs:  # one listing, so existing files are not sent at all
            existing = {item["path"] for item in self.list(target_path)}
        sizes = [os.path.getsize(full) for _, full in pairs]
        progress = Progress("Uploading", len(pairs), sum(sizes), show_progress)
        http, stored = self._workspace._http, []
        for (target, full), size in zip(pairs, sizes):
            if target in existing:
                progress.file_done(target, size, skipped="exists (overwrite=False)")
                continue
            try:
                with open(full, "rb") as handle:
                    http.request("PUT", self._path("files"),
                                 query={"path": target, "overwrite": bool(overwrite)},
                                 data=CountingReader(handle, progress.advance),  # type: ignore
                                 content_type="application/octet-stream",
                                 content_length=size, timeout=600)
            except TrainyardError as err:
                # The server refuses an existing file before reading the body, so a
                # large one can meet a broken connection instead of the 409.
                exists = err.code == "already_exists" or (
                    err.status is None and self._exists(target))
                if overwrite or not exists:
                    raise
                progress.file_done(target, size, skipped="exists (overwrite=False)")
                continue
            stored.append(target)
            progress.file_done(target, size)
        return stored

    def _exists(self, path: str) -> bool:
        """Whether the file ``path`` is on the datastore (``False`` when that cannot be told)."""
        folder = posixpath.dirname(path)
        try:
            return any(item.get("path") == path for item in self.list(folder or None))
        except TrainyardError:
            return False

    def download(self, target_path: str, prefix: Optional[str] = None, overwrite: bool = False,
                 show_progress: bool = True) -> int:
        """Downloads the files (under the folder ``prefix``) into ``target_path``, keeping
        their paths. Local files that exist are skipped unless ``overwrite``.
        Returns how many files were downloaded."""
        items = [item for item in self.list(prefix) if _safe(item.get("path", ""))]
        progress = Progress("Downloading", len(items),
                            sum(int(item.get("size") or 0) for item in items), show_progress)
        count = 0
        for item in items:
            path, size = item["path"], int(item.get("size") or 0)
            local = os.path.join(target_path, *path.split("/"))
            if os.path.exists(local) and not overwrite:
                progress.file_done(path, size, skipped=f"{local} exists (overwrite=False)")
                continue
            response = self._workspace._http.open("GET", self._path("files", "download"),
                                                  query={"path": path}, timeout=600)
            with response:
                copy_to_file(response, local, progress.advance)
            count += 1
            progress.file_done(path, size)
        return count

    def __repr__(self) -> str:
        return f"Datastore(name={self.name!r}, type={self.datastore_type!r}, url={self.url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Datastore) and (self._workspace, self.name) == (
            other._workspace, other.name)

    def __hash__(self) -> int:
        return hash((self._workspace, self.name))


def _join(folder: Optional[str], rel: str) -> str:
    """``folder/rel`` on a datastore (``rel`` alone without a folder)."""
    folder = (folder or "").strip("/")
    return f"{folder}/{rel}" if folder else rel


def _safe(path: str) -> bool:
    """Whether a listed path stays inside the target folder when written locally."""
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and ".." not in parts and "" not in parts
