"""Waiting for a run: following its log live (Server-Sent Events) or polling.

The follower reads ``GET …/runs/{id}/logs/follow``: ``line`` events (JSON
``{source, seq, at, line}``), ``status`` events (the status name) and a final
``end`` event. When the stream breaks before ``end`` it reconnects; the
server starts again from the first line, and lines already shown (by
``(source, seq)``) are skipped, so nothing is printed twice.

While a run waits in a compute target's queue, :class:`QueueWatcher` reads
the run alongside the stream and reports why it waits (``wait_reason``,
whenever that changes) and where it was placed (``placement``; for a
distributed run, where each rank went). A distributed run's processes log
to ``stdout/rank-N`` and ``stderr/rank-N``; their lines are printed after
``[rank N] ``.
"""

import json
import re
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, TextIO, Tuple

from ._http import HttpClient, iter_sse
from .exceptions import TrainyardError

__all__ = ["TERMINAL_STATUSES", "QueueWatcher", "follow_log", "line_prefix",
           "placement_text", "poll_until_ended", "print_line"]

#: Statuses a run never leaves.
TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Canceled"})

#: Failed connections in a row before giving up on the stream.
MAX_RECONNECTS = 5
#: Longest socket read while following; the server sends keep-alives every 15 s.
READ_TIMEOUT = 60.0
#: Seconds between looks at a Queued run (sooner when its status changes).
QUEUE_POLL = 2.0


#: A distributed run's process output: ``stdout/rank-3``, ``stderr/rank-3``.
_RANK_SOURCE = re.compile(r"(?:stdout|stderr)/rank-(\d+)")


def line_prefix(source: str) -> str:
    """What a line of ``source`` is printed after: nothing for ``stdout``,
    ``[rank N] `` for a rank's ``stdout/rank-N`` or ``stderr/rank-N``, else
    ``[source] `` (``[stderr] ``, ``[logs/rank-1/train.log] ``)."""
    if source == "stdout":
        return ""
    rank = _RANK_SOURCE.fullmatch(source)
    if rank:
        return f"[rank {rank.group(1)}] "
    return f"[{source}] "


def print_line(line: Dict[str, Any], out: Optional[TextIO] = None) -> None:
    """Prints a log line: stdout's as it is, a rank's after ``[rank N] ``,
    other sources' after ``[source] ``."""
    out = out or sys.stdout
    source = line.get("source", "stdout")
    text = line.get("line", "")
    out.write(f"{line_prefix(source)}{text}\n")
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


def _gpus_text(gpus: List[Any]) -> str:
    return f"GPU{'s' if len(gpus) > 1 else ''} {','.join(str(g) for g in gpus)}"


def placement_text(placement: Dict[str, Any]) -> str:
    """``gpu-1 (GPUs 0,3)``: the node a run was placed on, and its GPUs.

    A distributed run's (``placement["ranks"]``), node by node:
    ``2 ranks: gpu-1 (rank 0, GPU 0), gpu-2 (rank 1, GPU 0)``."""
    ranks = placement.get("ranks") or []
    if ranks:
        nodes: Dict[str, Tuple[List[int], List[Any]]] = {}
        for index, rank in enumerate(ranks):
            held = nodes.setdefault(str(rank.get("node") or "?"), ([], []))
            held[0].append(index)
            held[1].extend(rank.get("gpus") or [])
        parts = []
        for node, (indexes, gpus) in nodes.items():
            what = f"rank{'s' if len(indexes) > 1 else ''} {_index_ranges(indexes)}"
            if gpus:
                what += f", {_gpus_text(gpus)}"
            parts.append(f"{node} ({what})")
        return f"{len(ranks)} rank{'s' if len(ranks) > 1 else ''}: {', '.join(parts)}"
    node = placement.get("node") or "?"
    gpus = placement.get("gpus") or []
    if not gpus:
        return str(node)
    return f"{node} ({_gpus_text(gpus)})"


def _index_ranges(indexes: List[int]) -> str:
    """``0-3,6``: sorted indexes, runs shortened."""
    parts: List[str] = []
    start = prev = None
    for i in sorted(indexes):
        if prev is not None and i == prev + 1:
            prev = i
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = i
    if start is not None:
        parts.append(str(start) if start == prev else f"{start}-{prev}")
    return ",".join(parts)


class QueueWatcher:
    """Reports a run's place in its compute target's queue: why it waits,
    each time that changes, then the node it was placed on.

    :meth:`observe` is the pure part (a run's JSON in, lines out);
    :meth:`start` runs it on a thread. The thread is told each status the
    log stream reports (:meth:`status`); while that is ``Queued`` it reads
    the run every ``QUEUE_POLL`` seconds, and once more when the run leaves
    the queue (for its placement). A run never seen Queued is not read.
    """

    def __init__(self, get_run: Optional[Callable[[], Dict[str, Any]]] = None,
                 emit: Optional[Callable[[str], None]] = None,
                 interval: Optional[float] = None) -> None:
        self._get_run = get_run
        self._emit = emit
        self._interval = QUEUE_POLL if interval is None else interval
        self._reason: Optional[str] = None
        self._status: Optional[str] = None
        self._nudged = threading.Event()
        self._stopped = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def observe(self, run: Dict[str, Any]) -> Tuple[List[str], bool]:
        """The lines a new look at the run calls for, and whether the watch is
        over (the run was placed, or left the queue without a placement: a
        run without a compute target, or one that ended)."""
        lines: List[str] = []
        status = run.get("status")
        if status == "Queued":
            reason = run.get("wait_reason") or None
            if reason is not None and reason != self._reason:
                lines.append(f"==> Queued: {reason}")
            self._reason = reason
        placement = run.get("placement")
        if isinstance(placement, dict):
            lines.append(f"==> placed on {placement_text(placement)}")
            return lines, True
        return lines, status != "Queued"

    def status(self, status: str) -> None:
        """The log stream reported a status: look now."""
        self._status = status
        self._nudged.set()

    def start(self) -> "QueueWatcher":
        """Starts watching on a daemon thread."""
        self._thread = threading.Thread(target=self._loop, name="trainyard-queue-watch",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops watching (waits briefly for the thread)."""
        self._stopped.set()
        self._nudged.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _loop(self) -> None:
        assert self._get_run is not None and self._emit is not None
        seen_queued = False
        while not self._stopped.is_set():
            self._nudged.wait(self._interval)
            self._nudged.clear()
            status = self._status
            if self._stopped.is_set():
                return
            if status is None:
                continue  # the stream has not said yet
            if status == "Queued":
                seen_queued = True
            elif not seen_queued:
                return
            try:
                run = self._get_run()
            except Exception:  # noqa: BLE001 - informative only; the stream reports the end
                continue
            lines, done = self.observe(run)
            for line in lines:
                if self._stopped.is_set():
                    return
                self._emit(line)
            if done:
                return
