"""A small HTTP client for the Trainyard REST API, standard library only.

It sends the bearer token, encodes and decodes JSON, maps problem+json
answers to :class:`~trainyard.exceptions.TrainyardError` and reads
Server-Sent Events line by line from a streaming answer.
"""

import http.client
import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, BinaryIO, Dict, Iterator, Mapping, NamedTuple, Optional, Union

from .exceptions import TrainyardConnectionError, TrainyardError

__all__ = ["HttpClient", "SseEvent", "iter_sse", "quote", "USER_AGENT"]

USER_AGENT = "trainyard-python/0.1.0"

_NO_BODY = object()

QueryValue = Union[str, int, float, bool, None, list, tuple]


def quote(segment: Any) -> str:
    """Quotes one path segment (a name, id or key), slashes included."""
    return urllib.parse.quote(str(segment), safe="")


class SseEvent(NamedTuple):
    """One Server-Sent Event: its type (``message`` when unnamed) and data."""

    event: str
    data: str


class HttpClient:
    """Talks to one Trainyard server with one token.

    Args:
        url: The server's base URL, e.g. ``http://127.0.0.1:8420``.
        token: The API token (``tyd_…``), sent as ``Authorization: Bearer``.
        timeout: Seconds to wait for a connection or a read.
    """

    def __init__(self, url: str, token: Optional[str], timeout: float = 60.0) -> None:
        if not url:
            raise ValueError("a server URL is needed")
        if "://" not in url:
            url = "http://" + url
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._opener = urllib.request.build_opener()

    def __repr__(self) -> str:  # never show the token
        return f"HttpClient({self.url!r})"

    def build_url(self, path: str, query: Optional[Mapping[str, QueryValue]] = None) -> str:
        """The absolute URL of ``path`` with ``query`` (``None`` values left out)."""
        url = self.url + path
        if query:
            pairs = []
            for key, value in query.items():
                if value is None:
                    continue
                values = value if isinstance(value, (list, tuple)) else [value]
                for item in values:
                    if isinstance(item, bool):
                        item = "true" if item else "false"
                    pairs.append((key, str(item)))
            if pairs:
                url += "?" + urllib.parse.urlencode(pairs)
        return url

    def open(
        self,
        method: str,
        path: str,
        *,
        query: Optional[Mapping[str, QueryValue]] = None,
        data: Union[bytes, BinaryIO, None] = None,
        headers: Optional[Dict[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> http.client.HTTPResponse:
        """Sends a request and returns the open answer (the caller reads and closes it).

        Raises:
            TrainyardError: the server answered 4xx or 5xx.
            TrainyardConnectionError: no answer (refused, reset, timed out).
        """
        all_headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        all_headers.update(headers or {})
        request = urllib.request.Request(
            self.build_url(path, query), data=data, headers=all_headers, method=method
        )
        try:
            return self._opener.open(request, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as err:
            raise _problem(err) from None
        except urllib.error.URLError as err:
            raise TrainyardConnectionError(f"{method} {self.url}{path}: {err.reason}") from None
        except (OSError, http.client.HTTPException) as err:
            raise TrainyardConnectionError(f"{method} {self.url}{path}: {err!r}") from None

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Optional[Mapping[str, QueryValue]] = None,
        json_body: Any = _NO_BODY,
        data: Union[bytes, BinaryIO, None] = None,
        content_type: Optional[str] = None,
        content_length: Optional[int] = None,
        timeout: Optional[float] = None,
    ) -> Any:
        """Sends a request and returns the decoded JSON answer (``None`` when empty).

        Pass ``json_body`` for a JSON body, or ``data`` (bytes or a binary file)
        with its ``content_type``.
        """
        headers: Dict[str, str] = {}
        if json_body is not _NO_BODY:
            data = json.dumps(json_body, allow_nan=False, separators=(",", ":")).encode("utf-8")
            content_type = "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        if content_length is not None:
            headers["Content-Length"] = str(content_length)
        elif isinstance(data, (bytes, bytearray)):
            headers["Content-Length"] = str(len(data))
        elif data is None and method in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = "0"
        response = self.open(method, path, query=query, data=data, headers=headers,
                             timeout=timeout)
        try:
            body = response.read()
        except (OSError, http.client.HTTPException) as err:
            raise TrainyardConnectionError(f"{method} {self.url}{path}: {err!r}") from None
        finally:
            response.close()
        if not body:
            return None
        try:
            return json.loads(body.decode("utf-8"))
        except ValueError:
            return body

    def get(self, path: str, query: Optional[Mapping[str, QueryValue]] = None) -> Any:
        """``GET path`` and its JSON answer."""
        return self.request("GET", path, query=query)

    def post(self, path: str, body: Any = None) -> Any:
        """``POST path`` with a JSON body (``{}`` when ``None``) and its JSON answer."""
        return self.request("POST", path, json_body={} if body is None else body)

    def put(self, path: str, body: Any = None) -> Any:
        """``PUT path`` with a JSON body (``{}`` when ``None``) and its JSON answer."""
        return self.request("PUT", path, json_body={} if body is None else body)

    def patch(self, path: str, body: Any = None) -> Any:
        """``PATCH path`` with a JSON body (``{}`` when ``None``) and its JSON answer."""
        return self.request("PATCH", path, json_body={} if body is None else body)

    def delete(self, path: str) -> Any:
        """``DELETE path`` and its answer."""
        return self.request("DELETE", path)

    def paged(self, path: str, query: Optional[Dict[str, QueryValue]] = None) -> Iterator[Any]:
        """Every item of a keyset-paginated list, following ``next_cursor``."""
        query = dict(query or {})
        while True:
            page = self.get(path, query)
            yield from page.get("items", [])
            cursor = page.get("next_cursor")
            if not cursor:
                return
            query["cursor"] = cursor


def _problem(err: urllib.error.HTTPError) -> TrainyardError:
    """Turns an error answer into a TrainyardError, problem+json or not."""
    try:
        raw = err.read()
    except (OSError, http.client.HTTPException):
        raw = b""
    finally:
        err.close()
    retry_after = None
    header = err.headers.get("Retry-After") if err.headers else None
    if header:
        try:
            retry_after = max(0.0, float(header))
        except ValueError:
            retry_after = None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        return TrainyardError(
            err.code,
            str(doc.get("code") or f"http_{err.code}"),
            str(doc.get("detail") or doc.get("title") or err.reason),
            doc.get("field"),
            doc.get("title"),
            retry_after,
        )
    text = raw.decode("utf-8", "replace").strip()[:500] or str(err.reason)
    return TrainyardError(err.code, f"http_{err.code}", text, None, None, retry_after)


def iter_sse(response: http.client.HTTPResponse, keepalives: bool = False) -> Iterator[SseEvent]:
    """Reads Server-Sent Events from an open answer, line by line, as they come.

    A blank line ends an event. Comments (the server's keep-alives) are
    skipped, or yielded as ``SseEvent(":", text)`` with ``keepalives=True``
    (to let a caller check a deadline while nothing else happens). Ends when
    the server closes the stream.

    Raises:
        TrainyardConnectionError: the connection broke or a read timed out.
    """
    event: Optional[str] = None
    data = []
    while True:
        try:
            raw = response.readline()
        except (socket.timeout, OSError, http.client.HTTPException) as err:
            raise TrainyardConnectionError(f"the event stream broke: {err!r}") from None
        if not raw:
            return
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if data:
                yield SseEvent(event or "message", "\n".join(data))
            event, data = None, []
            continue
        if line.startswith(":"):
            if keepalives:
                yield SseEvent(":", line[1:].strip())
            continue
        field, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
