"""A run's files: uploading, listing and downloading them (mixed into ``Run``)."""

import os
import shutil
from typing import Any, BinaryIO, List, Optional, Union

from ._files import extract_archive, walk_folder
from ._logging import read_stream
from .workspace import Workspace

__all__ = ["RunFilesMixin"]


class RunFilesMixin:
    """``upload_file``, ``upload_folder``, ``get_file_names``, ``download_file(s)``."""

    _workspace: Workspace

    def _path(self, *parts: Any) -> str:  # pragma: no cover - Run defines it
        raise NotImplementedError

    def upload_file(self, name: str, path_or_stream: Union[str, "os.PathLike[str]", BinaryIO,
                                                           bytes]) -> Any:
        """Stores a file in the run as ``name`` (e.g. ``outputs/model.pt``)."""
        data, length = read_stream(path_or_stream)
        try:
            return self._workspace._http.request(
                "PUT", self._path("files", "upload"), query={"path": name}, data=data,
                content_type="application/octet-stream", content_length=length, timeout=600)
        finally:
            if hasattr(data, "close") and data is not path_or_stream:
                data.close()  # type: ignore[union-attr]

    def upload_folder(self, name: str, path: str) -> List[str]:
        """Stores every file under the folder ``path`` as ``name/<relative path>``."""
        stored = []
        for rel, full in walk_folder(path):
            target = f"{name.rstrip('/')}/{rel}"
            self.upload_file(target, full)
            stored.append(target)
        return stored

    def get_file_names(self) -> List[str]:
        """The run's files: ``outputs/…``, ``logs/…``, ``images/…``."""
        answer = self._workspace._http.get(self._path("files"))
        return [item["path"] for item in answer.get("items", [])]

    def download_file(self, name: str, output_file_path: Optional[str] = None,
                      **kwargs: Any) -> str:
        """Downloads one file; to ``output_file_path`` (a file or a folder), or to its
        base name in the current folder. Returns the path written."""
        target = output_file_path or os.path.basename(name)
        if os.path.isdir(target):
            target = os.path.join(target, os.path.basename(name))
        response = self._workspace._http.open("GET", self._path("files", "download"),
                                              query={"path": name}, timeout=600)
        folder = os.path.dirname(os.path.abspath(target))
        os.makedirs(folder, exist_ok=True)
        with response, open(target, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
        return target

    def download_files(self, prefix: Optional[str] = None, output_directory: Optional[str] = None,
                       append_prefix: bool = True, **kwargs: Any) -> List[str]:
        """Downloads every file (under the folder ``prefix``, e.g. ``outputs``) into
        ``output_directory`` (default: the current folder), keeping their paths
        (without ``prefix`` when ``append_prefix`` is False). Returns the paths written."""
        out = output_directory or os.getcwd()
        sub = (prefix or "").strip("/")
        response = self._workspace._http.open("GET", self._path("files", "archive"),
                                              query={"prefix": sub or None}, timeout=600)
        with response:
            return extract_archive(response, out, sub if append_prefix else "")
