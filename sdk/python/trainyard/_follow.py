"""Waiting for a run: following its log live (Server-Sent Events) or polling.

The follower reads ``GET …/runs/{id}/logs/follow``: ``line`` events (JSON
``{source, seq, at, line}``), ``status`` events (the status name) and a final
``end`` event. When the stream breaks before ``end`` it reconnects; the
server starts again from the first line, and lines already shown (by
``(source, seq)``) are skipped, so nothing is printed twice.
"""

import json
import sys
import time
from typing import Any, Callable, Dict, Optional, TextIO

from ._http import HttpClient, iter_sse
from .exceptions import TrainyardError

__all__ = ["TERMINAL_STATUSES", "follow_log", "poll_until_ended", "print_line"]

#: Statuses a run never leaves.
TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Canceled"})

#: Failed connections in a row before giving up on the stream.
MAX_RECONNECTS = 5
#: Longest socket read while following; the server sends keep-alives every 15 s.
READ_TIMEOUT = 60.0


def print_line(line: Dict[str, Any], out: Optional[TextIO] = None) -> None:
    """Prints a log line: stdout's as it is, other sources' after ``[source] ``."""
    out = out or sys.stdout
    source = line.get("source", "stdout")
    text = line.get("line", "")
    out.write(text + "\n" if source == "stdout" else f"[{source}] {text}\n")
    out.flush()


def _remaining(deadline: Optional[float]) -> Optional[float]:
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the run did not end before the timeout")
    return left


def follow_log(http: HttpClient, run_path: str,
               on_line: Callable[[Dict[str, Any]], None],
               on_status: Callable[[str], None],
               deadline: Optional[float] = None,
               is_ended: Optional[Callable[[], bool]] = None) -> str:
    """Follows a run's log until its ``end`` event; returns the final status.

    Args:
        http: The client.
        run_path: ``/api/v1/workspaces/<ws>/runs/<id>``.
        on_line: Called with each new line (a dict), once per (source, seq).
        on_status: Called with each status the stream reports.
        deadline: A ``time.monotonic()`` after which TimeoutError is raised.
        is_ended: Asked after the stream ends without ``end``: when it says
            the run ended, that status is fetched instead of reconnecting.

    Raises:
        TimeoutError: the deadline passed.
        TrainyardError: the server refused (e.g. 404), or the stream failed
            ``MAX_RECONNECTS`` times in a row.
    """
    shown: Dict[str, int] = {}
    failures = 0
    while True:
        left = _remaining(deadline)
        timeout = READ_TIMEOUT if left is None else min(READ_TIMEOUT, left + 1.0)
        try:
            response = http.open("GET", run_path + "/logs/follow",
                                 headers={"Accept": "text/event-stream"}, timeout=timeout)
            with response:
                for event in iter_sse(response, keepalives=True):
                    failures = 0
                    if event.event == "line":
                        line = json.loads(event.data)
                        source, seq = line.get("source", ""), int(line.get("seq", -1))
                        if seq <= shown.get(source, -1):
                            continue
                        shown[source] = seq
                        on_line(line)
                    elif event.event == "status":
                        on_status(event.data.strip())
                    elif event.event == "end":
                        return event.data.strip()
                    _remaining(deadline)
        except TrainyardError as err:
            if not err.transient:
                raise
            failures += 1
            if failures > MAX_RECONNECTS:
                raise
            time.sleep(min(10.0, 0.5 * 2 ** failures))
        if is_ended is not None and is_ended():
            return ""
        time.sleep(0.5)  # the stream ended early: reconnect, but never in a tight loop


def poll_until_ended(get_status: Callable[[], str], deadline: Optional[float] = None,
                     on_status: Optional[Callable[[str], None]] = None,
                     interval: float = 1.0, max_interval: float = 5.0) -> str:
    """Asks for the status until it is terminal, slowing from ``interval`` to
    ``max_interval`` seconds; returns it. Transient errors are retried."""
    last = None
    while True:
        try:
            status = get_status()
        except TrainyardError as err:
            if not err.transient:
                raise
            status = last or ""
        if status != last and status and on_status is not None:
            on_status(status)
        last = status
        if status in TERMINAL_STATUSES:
            return status
        left = _remaining(deadline)
        time.sleep(interval if left is None else min(interval, left))
        interval = min(max_interval, interval * 1.5)
