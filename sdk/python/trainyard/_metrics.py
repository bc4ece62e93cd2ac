"""Sending metrics in the background: buffer, batch, retry, never drop.

``log()`` appends a small tuple to a deque under a lock and returns. A daemon
thread wakes every second (or as soon as 1,000 points wait, or on
``flush()``), turns the points into JSON entries and posts them in requests
of at most 10,000 entries (and under the server's body limit). Transient
failures (no answer, 5xx, 429) are retried with exponential backoff, for as
long as it takes. A permanent refusal (another 4xx) keeps the refused entries
and the error, and the next ``flush()`` raises them as a
:class:`~trainyard.exceptions.MetricsError`; a 422 that names one entry
(``metrics[3].value``) refuses only that entry and the rest is sent again.
Everything still buffered is flushed at interpreter exit.
"""

import atexit
import collections
import json
import math
import os
import re
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from .exceptions import MetricsError, TrainyardError

__all__ = ["MetricsSender", "encode_value", "format_timestamp"]

#: (name, kind, value, step, unix time); kind None for a scalar.
Item = Tuple[str, Optional[str], Any, Optional[int], float]

_FIELD_INDEX = re.compile(r"^metrics\[(\d+)\]")
_EXIT_FLUSH_SECONDS = float(os.environ.get("TRAINYARD_EXIT_FLUSH_TIMEOUT", "60"))


def format_timestamp(ts: float) -> str:
    """RFC 3339 in UTC with milliseconds: ``2026-11-23T12:00:00.123Z``."""
    moment = datetime.fromtimestamp(ts, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def encode_value(value: Any) -> Any:
    """A value ready for JSON: NaN and ±infinity become ``"NaN"``, ``"Infinity"``,
    ``"-Infinity"``; lists and dicts are converted throughout."""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, dict):
        return {str(k): encode_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode_value(v) for v in value]
    return value


def to_entry(item: Item) -> Dict[str, Any]:
    """The API's entry for one logged item."""
    name, kind, value, step, ts = item
    if kind is None:
        return {"name": name, "value": encode_value(value), "step": step,
                "timestamp": format_timestamp(ts)}
    return {"name": name, "kind": kind, "value": encode_value(value),
            "timestamp": format_timestamp(ts)}


class MetricsSender:
    """Buffers items and posts them from a daemon thread.

    Args:
        post: Sends one request body (``{"metrics": [...]}`` as bytes); raises
            :class:`TrainyardError` on failure.
        interval: Seconds between sends while points wait.
        batch_size: Points that wake the sender at once.
        max_per_request: Most entries in one request.
        max_body_bytes: Largest request body built (the server takes 16 MiB; a 413
            or ``batch_too_large`` answer splits the batch in halves anyway).
        backoff_initial, backoff_max: Retry delays (doubling, capped).
    """

    def __init__(self, post: Callable[[bytes], Any], *, interval: float = 1.0,
                 batch_size: int = 1000, max_per_request: int = 10_000,
                 max_body_bytes: int = 8_000_000, backoff_initial: float = 0.5,
                 backoff_max: float = 30.0) -> None:
        self._post = post
        self.interval = interval
        self.batch_size = batch_size
        self.max_per_request = max_per_request
        self.max_body_bytes = max_body_bytes
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._init_state()
        _register(self)

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._buffer: Deque[Item] = collections.deque()
        self._appended = 0  # items ever appended
        self._done = 0  # items delivered or refused
        self._flushing = 0  # flush() calls waiting
        self._refused: List[Tuple[Exception, List[Dict[str, Any]]]] = []
        self._last_transient: Optional[Exception] = None
        self._thread: Optional[threading.Thread] = None
        self._pid = os.getpid()

    # -- the caller's side ------------------------------------------------------

    def append(self, item: Item) -> None:
        """Buffers one item; cheap, never blocks on the network."""
        if self._pid != os.getpid():  # a forked child: its own buffer and thread
            self._init_state()
        with self._lock:
            self._buffer.append(item)
            self._appended += 1
            if len(self._buffer) == self.batch_size:
                self._cond.notify_all()
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._loop, name="trainyard-metrics",
                                            daemon=True)
            self._thread.start()

    @property
    def pending(self) -> int:
        """Items appended but not yet delivered or refused."""
        with self._lock:
            return self._appended - self._done

    def flush(self, timeout: Optional[float] = None) -> None:
        """Sends everything appended so far and waits for it.

        Raises:
            MetricsError: the server refused points for good (since the last flush).
            TimeoutError: ``timeout`` passed first; the points stay buffered.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._appended
            if self._done < target:
                self._flushing += 1
                self._cond.notify_all()
                try:
                    while self._done < target:
                        remaining = None if deadline is None else deadline - time.monotonic()
                        if remaining is not None and remaining <= 0:
                            cause = f" (last error: {self._last_transient})" \
                                if self._last_transient else ""
                            raise TimeoutError(
                                f"{target - self._done} metric point(s) not yet sent after "
                                f"{timeout} s; they stay buffered{cause}")
                        self._cond.wait(remaining if remaining is not None else 1.0)
                finally:
                    self._flushing -= 1
            refused, self._refused = self._refused, []
        if refused:
            entries = [entry for _, batch in refused for entry in batch]
            raise MetricsError(refused[0][0], entries)

    # -- the thread's side ----------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                deadline = time.monotonic() + self.interval
                while not ((self._flushing and self._buffer)
                           or len(self._buffer) >= self.batch_size):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                count = min(len(self._buffer), self.max_per_request)
                batch = [self._buffer.popleft() for _ in range(count)]
            if not batch:
                continue
            try:
                self._deliver(batch)
            except BaseException as err:  # never let the thread die with points in hand
                self._refuse(err, [to_entry_safe(i) for i in batch])
            with self._cond:
                self._done += len(batch)
                self._cond.notify_all()

    def _refuse(self, err: Exception, entries: List[Dict[str, Any]]) -> None:
        with self._lock:
            self._refused.append((err, entries))

    def _chunks(self, batch: List[Item]) -> List[Tuple[List[Dict[str, Any]], List[bytes]]]:
        """Splits a batch into request-sized (entries, encoded entries) chunks."""
        chunks: List[Tuple[List[Dict[str, Any]], List[bytes]]] = []
        entries: List[Dict[str, Any]] = []
        encoded: List[bytes] = []
        size = 0
        for item in batch:
            entry = to_entry_safe(item)
            try:
                raw = json.dumps(entry, allow_nan=False, separators=(",", ":")).encode("utf-8")
            except (TypeError, ValueError) as err:
                self._refuse(TrainyardError(None, "unencodable", str(err), entry.get("name")),
                             [entry])
                continue
            if encoded and (len(encoded) >= self.max_per_request
                            or size + len(raw) + 1 > self.max_body_bytes):
                chunks.append((entries, encoded))
                entries, encoded, size = [], [], 0
            entries.append(entry)
            encoded.append(raw)
            size += len(raw) + 1
        if encoded:
            chunks.append((entries, encoded))
        return chunks

    def _deliver(self, batch: List[Item]) -> None:
        queue = collections.deque(self._chunks(batch))
        while queue:
            entries, encoded = queue.popleft()
            attempt = 0
            while True:
                try:
                    self._post(b'{"metrics":[' + b",".join(encoded) + b"]}")
                    self._last_transient = None
                    break
                except TrainyardError as err:
                    if err.transient:
                        self._last_transient = err
                        delay = min(self.backoff_max, self.backoff_initial * (2 ** attempt))
                        if err.retry_after is not None:
                            delay = min(max(delay, err.retry_after), max(self.backoff_max, 1.0))
                        attempt += 1
                        time.sleep(delay)
                        continue
                    too_large = err.status == 413 or err.code in ("batch_too_large",
                                                                  "body_too_large")
                    if too_large and len(entries) > 1:
                        half = len(entries) // 2
                        queue.appendleft((entries[half:], encoded[half:]))
                        queue.appendleft((entries[:half], encoded[:half]))
                        break
                    match = _FIELD_INDEX.match(err.field or "")
                    index = int(match.group(1)) if match else -1
                    if err.status in (400, 422) and 0 <= index < len(entries) and len(entries) > 1:
                        self._refuse(err, [entries[index]])
                        queue.appendleft((entries[:index] + entries[index + 1:],
                                          encoded[:index] + encoded[index + 1:]))
                        break
                    self._refuse(err, entries)
                    break


def to_entry_safe(item: Item) -> Dict[str, Any]:
    """:func:`to_entry`, falling back to the raw value's text if it cannot be converted."""
    try:
        return to_entry(item)
    except Exception:  # pragma: no cover - values are checked when logged
        return {"name": item[0], "kind": item[1], "value": repr(item[2])}


_senders: List[MetricsSender] = []
_senders_lock = threading.Lock()


def _register(sender: MetricsSender) -> None:
    with _senders_lock:
        _senders.append(sender)


@atexit.register
def _flush_at_exit() -> None:
    """Flushes every sender before the interpreter goes; reports, never raises."""
    deadline = time.monotonic() + _EXIT_FLUSH_SECONDS
    with _senders_lock:
        senders = list(_senders)
    for sender in senders:
        if sender._pid != os.getpid() or sender._thread is None:
            continue
        try:
            sender.flush(timeout=max(0.1, deadline - time.monotonic()))
        except Exception as err:  # noqa: BLE001 - report and go on
            print(f"trainyard: metrics were not all sent before exit: {err}", file=sys.stderr)
