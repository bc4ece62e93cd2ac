"""The logging methods a run offers (``log``, ``log_list``, ``log_row``, …).

Shared by :class:`~trainyard.run.Run`, which sends what is logged to the
server, and :class:`~trainyard.offline.OfflineRun`, which prints it.
Values are checked and converted when logged (numpy and torch scalars and
arrays become plain numbers and lists), so a mistake raises at the call
that made it rather than later in the background.
"""

import io
import os
import re
import time
from typing import Any, BinaryIO, Dict, Iterable, Optional, Tuple, Union

__all__ = ["LoggingMixin", "to_number", "to_plain"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def to_number(value: Any) -> Union[int, float]:
    """A scalar metric value as a plain ``int`` or ``float``.

    Accepts ints, floats, bools (as 0/1) and anything with ``.item()`` or
    ``__float__`` (numpy and torch scalars). Raises TypeError for text.
    """
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return value
    item = getattr(value, "item", None)
    if callable(item) and not isinstance(value, (str, bytes)):
        try:
            plain = item()
        except (TypeError, ValueError):
            plain = None
        if isinstance(plain, (int, float)) and not isinstance(plain, bool):
            return plain
        if isinstance(plain, bool):
            return int(plain)
    if isinstance(value, (str, bytes)):
        raise TypeError("metric values are numbers; use run.tag(name, value) for text")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"a metric value must be a number, not {type(value).__name__}") from None


def to_plain(value: Any) -> Any:
    """A value (list, row cell, table column) as plain JSON-ready Python."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    tolist = getattr(value, "tolist", None)
    if callable(tolist):  # numpy arrays and scalars, torch tensors
        return to_plain(tolist())
    if isinstance(value, (list, tuple)) or _iterable(value):
        return [to_plain(v) for v in value]
    return to_number(value)


def _iterable(value: Any) -> bool:
    if isinstance(value, (str, bytes, dict)):
        return False
    try:
        iter(value)
    except TypeError:
        return False
    return True


_MAX_NAME = 250
_checked_names: set = set()


def _check_name(name: Any) -> str:
    """Refuses what the server would: empty, over 250 characters, control characters."""
    if name in _checked_names:
        return name
    if not isinstance(name, str) or not name.strip():
        raise TypeError("a metric name must be a non-empty string")
    if len(name) > _MAX_NAME:
        raise ValueError(f"a metric name must be at most {_MAX_NAME} characters")
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):
        raise ValueError("a metric name must not contain control characters")
    if len(_checked_names) > 10_000:
        _checked_names.clear()
    _checked_names.add(name)
    return name


def _cell(value: Any, where: str) -> Any:
    """A list item, row cell or table cell: a number, text, bool or None."""
    plain = to_plain(value)
    if isinstance(plain, (list, dict)):
        raise TypeError(f"{where} must hold numbers or strings, not nested lists or dicts")
    return plain


class LoggingMixin:
    """``log``, ``log_list``, ``log_row``, ``log_table`` and ``log_image``.

    Subclasses provide ``_record(item)`` (an item is ``(name, kind, value,
    step, unix time)``, kind ``None`` for scalars) and
    ``_store_image(name, data, suffix)`` returning the file's path in the run.
    """

    _image_counts: Dict[str, int]

    def _record(self, item: Tuple[str, Optional[str], Any, Optional[int], float]) -> None:
        raise NotImplementedError

    def _store_image(self, name: str, data: bytes, suffix: str) -> str:
        raise NotImplementedError

    def log(self, name: str, value: Any, step: Optional[int] = None,
            description: str = "") -> None:
        """Logs one value of a scalar metric (``loss``, ``accuracy``, …).

        Args:
            name: The metric's name.
            value: A number (numpy and torch scalars too; NaN and infinities allowed).
            step: Its step; when ``None`` the server numbers the points itself.
            description: Accepted for Azure ML compatibility; not stored.

        Cheap: the point is buffered and sent in the background (see ``flush``).
        """
        kind = type(value)
        if kind is not float and kind is not int:
            value = to_number(value)
        if name not in _checked_names:
            _check_name(name)
        if step is not None:
            step = int(step)
        self._record((name, None, value, step, time.time()))

    def log_list(self, name: str, value: Iterable[Any], description: str = "") -> None:
        """Logs a list of values as one metric (``[0.1, 0.2, 0.3]``)."""
        _check_name(name)
        array_like = callable(getattr(value, "tolist", None))
        if isinstance(value, (str, bytes, dict)) or not (array_like or _iterable(value)):
            raise TypeError("log_list takes a list (or an array) of values")
        plain = to_plain(value)
        items = plain if isinstance(plain, list) else [plain]
        values = [_cell(v, "a list metric") for v in items]
        self._record((name, "list", values, None, time.time()))

    def log_row(self, name: str, description: Optional[str] = None, **kwargs: Any) -> None:
        """Logs one row of a table metric: ``run.log_row("epochs", epoch=1, acc=0.9)``."""
        _check_name(name)
        if not kwargs:
            raise TypeError("log_row needs at least one column: log_row(name, col=value, …)")
        row = {k: _cell(v, "a row") for k, v in kwargs.items()}
        self._record((name, "row", row, None, time.time()))

    def log_table(self, name: str, value: Dict[str, Iterable[Any]],
                  description: str = "") -> None:
        """Logs a whole table as one metric: ``{"col_a": [1, 2], "col_b": [3, 4]}``."""
        _check_name(name)
        if not isinstance(value, dict):
            raise TypeError("log_table takes a dict of column name to list of values")
        table = {}
        for column, cells in value.items():
            cells = to_plain(cells)
            cells = cells if isinstance(cells, list) else [cells]
            table[str(column)] = [_cell(c, "a table column") for c in cells]
        if len({len(cells) for cells in table.values()}) > 1:
            raise ValueError("every column of a table must have the same length")
        self._record((name, "table", table, None, time.time()))

    def log_image(self, name: str, path: Optional[str] = None, plot: Any = None,
                  description: str = "") -> None:
        """Logs an image: a file at ``path``, or a matplotlib figure (or ``pyplot``) as PNG.

        The image is uploaded to the run's files as ``images/<name>/<n>.<ext>``
        and an ``image`` metric entry points at it.
        """
        _check_name(name)
        if (path is None) == (plot is None):
            raise TypeError("log_image needs exactly one of path= or plot=")
        if path is not None:
            with open(path, "rb") as handle:
                data = handle.read()
            suffix = os.path.splitext(str(path))[1].lower() or ".png"
        else:
            savefig = getattr(plot, "savefig", None)
            if not callable(savefig):
                raise TypeError("plot must be a matplotlib figure (or matplotlib.pyplot)")
            buffer = io.BytesIO()
            savefig(buffer, format="png")
            data, suffix = buffer.getvalue(), ".png"
        stored = self._store_image(name, data, suffix)
        self._record((name, "image", {"path": stored}, None, time.time()))

    def _next_image_path(self, name: str, suffix: str) -> str:
        """``images/<name>/<n><suffix>``, ``n`` counting per name from 0."""
        counts = self.__dict__.setdefault("_image_counts", {})
        number = counts.get(name, 0)
        counts[name] = number + 1
        safe = _UNSAFE.sub("_", name).strip("._") or "image"
        return f"images/{safe}/{number}{suffix}"


def read_stream(path_or_stream: Union[str, "os.PathLike[str]", BinaryIO, bytes]
                ) -> Tuple[Union[bytes, BinaryIO], Optional[int]]:
    """What to upload and its length: bytes, or an open file (the caller closes it)."""
    if isinstance(path_or_stream, (bytes, bytearray)):
        return bytes(path_or_stream), len(path_or_stream)
    if isinstance(path_or_stream, (str, os.PathLike)):
        handle = open(path_or_stream, "rb")
        return handle, os.fstat(handle.fileno()).st_size
    data = path_or_stream.read()
    if isinstance(data, str):
        data = data.encode("utf-8")
    return data, len(data)
