"""Exceptions raised by the Trainyard SDK.

Every error the server answers (an RFC 9457 ``application/problem+json``
document) becomes a :class:`TrainyardError` carrying its status, stable
``code``, ``detail`` and the ``field`` at fault.
"""

from typing import Any, Dict, List, Optional

__all__ = [
    "TrainyardError",
    "TrainyardConnectionError",
    "ConfigError",
    "RunFailedError",
    "MetricsError",
    "ActivityFailedException",
    "UserErrorException",
]


class TrainyardError(Exception):
    """An error answer from the Trainyard server.

    Attributes:
        status: The HTTP status (``None`` when no answer came at all).
        code: The problem's stable code, e.g. ``not_found`` or ``invalid_field``.
        detail: What went wrong in this case.
        field: The input at fault (``name``, ``tags.team``), when the server named one.
        title: The problem's short summary.
        retry_after: Seconds the server asked to wait (``Retry-After``), if any.
    """

    def __init__(
        self,
        status: Optional[int],
        code: str,
        detail: str,
        field: Optional[str] = None,
        title: Optional[str] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field
        self.title = title
        self.retry_after = retry_after
        super().__init__(str(self))

    def __str__(self) -> str:
        head = f"{self.status} {self.code}" if self.status is not None else self.code
        text = f"{head}: {self.detail}"
        if self.field:
            text += f" (field: {self.field})"
        return text

    def __reduce__(self):  # keep pickling (multiprocessing) working
        return (
            type(self),
            (self.status, self.code, self.detail, self.field, self.title, self.retry_after),
        )

    @property
    def transient(self) -> bool:
        """Whether trying again later may succeed (no answer, 5xx or 429)."""
        return self.status is None or self.status == 429 or self.status >= 500


class TrainyardConnectionError(TrainyardError):
    """The server could not be reached, or the connection broke mid-answer."""

    def __init__(self, detail: str) -> None:
        super().__init__(None, "connection_error", detail)

    def __reduce__(self):
        return (type(self), (self.detail,))


class ConfigError(Exception):
    """The connection settings (URL, workspace, token) are missing or unreadable."""


class RunFailedError(Exception):
    """A run ended in a status other than ``Completed``.

    Attributes:
        run_id: The run's id.
        status: Its final status (``Failed`` or ``Canceled``).
        error: The server's reason (``run.get_details()["error"]``), if any.
        exit_code: Its process's exit code, if it exited.
        details: The run's details as :meth:`trainyard.Run.get_details` returns them.
    """

    def __init__(self, run_id: str, status: str, error: Optional[str],
                 exit_code: Optional[int] = None,
                 details: Optional[Dict[str, Any]] = None) -> None:
        self.run_id = run_id
        self.status = status
        self.error = error
        self.exit_code = exit_code
        self.details = details or {}
        text = f"run {run_id} ended {status}"
        if exit_code is not None:
            text += f" (exit code {exit_code})"
        if error:
            text += f": {error}"
        super().__init__(text)

    def __reduce__(self):
        return (type(self), (self.run_id, self.status, self.error, self.exit_code, self.details))


class MetricsError(Exception):
    """Metrics the server refused for good (a 4xx other than 429).

    Raised by ``run.flush()`` (and by the next ``log`` call's flush) after the
    background sender met the refusal. Nothing is silently dropped: the refused
    entries are kept in :attr:`entries`, exactly as they were to be sent.

    Attributes:
        cause: The :class:`TrainyardError` the server answered.
        entries: The metric entries (JSON-ready dicts) the server refused.
    """

    def __init__(self, cause: Exception, entries: List[Dict[str, Any]]) -> None:
        self.cause = cause
        self.entries = entries
        super().__init__(f"the server refused {len(entries)} metric point(s): {cause}")


# Names Azure ML's SDK v1 uses, so `except ActivityFailedException:` keeps working.
ActivityFailedException = RunFailedError
UserErrorException = ConfigError
