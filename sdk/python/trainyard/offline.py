"""The run you get outside of Trainyard: ``Run.get_context()`` on a laptop.

It accepts every call a training script makes and prints what it would
have logged, so the same script runs locally and on the server unchanged.
It also remembers what was logged, so ``get_metrics()`` works locally.
"""

import os
import sys
import uuid
from typing import Any, BinaryIO, Dict, Iterable, List, Optional, TextIO, Tuple, Union

from ._files import walk_folder
from ._logging import LoggingMixin, read_stream
from ._results import combine_metric

__all__ = ["OfflineRun"]

_KIND_NAMES = {None: "scalar", "list": "list", "row": "row", "table": "table", "image": "image"}


class OfflineRun(LoggingMixin):
    """A stand-in run that prints instead of sending.

    Args:
        out: Where to print (standard output by default).
    """

    def __init__(self, out: Optional[TextIO] = None) -> None:
        self._id = f"OfflineRun_{uuid.uuid4()}"
        self._out = out
        self._tags: Dict[str, str] = {}
        self._properties: Dict[str, str] = {}
        self._metrics: Dict[str, Tuple[str, List[Any]]] = {}
        self._files: Dict[str, bytes] = {}

    def _print(self, text: str) -> None:
        print(text, file=self._out or sys.stdout, flush=True)

    # -- identity -------------------------------------------------------------------

    @property
    def id(self) -> str:
        """A made-up id: ``OfflineRun_<uuid>``."""
        return self._id

    @property
    def experiment(self) -> None:
        """An offline run belongs to no experiment."""
        return None

    @property
    def display_name(self) -> Optional[str]:
        return None

    @property
    def status(self) -> str:
        return "Running"

    @property
    def tags(self) -> Dict[str, str]:
        return dict(self._tags)

    @property
    def properties(self) -> Dict[str, str]:
        return dict(self._properties)

    def get_status(self) -> str:
        """Always ``Running``."""
        return "Running"

    def get_details(self) -> Dict[str, Any]:
        """A minimal details dict."""
        return {"id": self._id, "status": "Running", "tags": self.tags,
                "properties": self.properties, "spec": {}}

    def wait_for_completion(self, show_output: bool = False, **kwargs: Any) -> Dict[str, Any]:
        """Returns the details at once: there is nothing to wait for."""
        return self.get_details()

    def get_portal_url(self) -> Optional[str]:
        return None

    def cancel(self) -> None:
        self._print("Attempted to cancel an offline run; nothing to do")

    # -- logging ------------------------------------------------------------------------

    def _record(self, item: Tuple[str, Optional[str], Any, Optional[int], float]) -> None:
        name, kind, value, step, _ = item
        stored_kind, values = self._metrics.setdefault(name, (kind or "scalar", []))
        values.append(value)
        where = f" (step {step})" if step is not None else ""
        self._print(f"Attempted to log {_KIND_NAMES.get(kind, kind)} metric {name}{where}:\n"
                    f"{value}")

    def _store_image(self, name: str, data: bytes, suffix: str) -> str:
        path = self._next_image_path(name, suffix)
        self._files[path] = data
        return path

    def flush(self, timeout_seconds: Optional[float] = None) -> None:
        """Nothing to send."""

    def get_metrics(self, name: Optional[str] = None, **kwargs: Any) -> Dict[str, Any]:
        """What this process logged, shaped like ``Run.get_metrics``."""
        return {key: combine_metric(kind, list(values))
                for key, (kind, values) in self._metrics.items()
                if name is None or key == name}

    # -- tags, properties, files ----------------------------------------------------

    def tag(self, key: str, value: Any = None) -> None:
        self._tags[key] = "" if value is None else str(value)
        self._print(f"Attempted to set tag {key}={self._tags[key]}")

    def set_tags(self, tags: Dict[str, Any]) -> None:
        for key, value in tags.items():
            self.tag(key, value)

    def get_tags(self) -> Dict[str, str]:
        return dict(self._tags)

    def remove_tags(self, tags: Union[str, Iterable[str]]) -> None:
        for key in [tags] if isinstance(tags, str) else tags:
            self._tags.pop(key, None)

    def add_properties(self, properties: Dict[str, Any]) -> None:
        for key, value in properties.items():
            self._properties[key] = str(value)
        self._print(f"Attempted to add properties {properties}")

    def get_properties(self) -> Dict[str, str]:
        return dict(self._properties)

    def upload_file(self, name: str,
                    path_or_stream: Union[str, "os.PathLike[str]", BinaryIO, bytes]) -> None:
        """Prints what would be uploaded (a path is checked to exist)."""
        data, length = read_stream(path_or_stream)
        if hasattr(data, "close") and data is not path_or_stream:
            data.close()  # type: ignore[union-attr]
        self._print(f"Attempted to upload file {name} ({length} bytes)")

    def upload_folder(self, name: str, path: str) -> List[str]:
        stored = [f"{name.rstrip('/')}/{rel}" for rel, _ in walk_folder(path)]
        self._print(f"Attempted to upload folder {path} as {name} ({len(stored)} files)")
        return stored

    def get_file_names(self) -> List[str]:
        return sorted(self._files)

    def download_file(self, name: str, output_file_path: Optional[str] = None,
                      **kwargs: Any) -> Optional[str]:
        if name not in self._files:
            self._print(f"Attempted to download {name} from an offline run; nothing to do")
            return None
        target = output_file_path or os.path.basename(name)
        with open(target, "wb") as handle:
            handle.write(self._files[name])
        return target

    def download_files(self, prefix: Optional[str] = None,
                       output_directory: Optional[str] = None, **kwargs: Any) -> List[str]:
        self._print("Attempted to download files from an offline run; nothing to do")
        return []

    def __repr__(self) -> str:
        return f"OfflineRun(id={self._id!r})"

