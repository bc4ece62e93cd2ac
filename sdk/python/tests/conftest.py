"""Shared fixtures: a tiny programmable HTTP server standing in for Trainyard."""

import json
import os
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple, Union

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from trainyard import Workspace  # noqa: E402


class Request(NamedTuple):
    method: str
    path: str
    query: Dict[str, List[str]]
    headers: Dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


#: A reply: (status, body) or (status, body, headers); body is bytes, a str,
#: JSON-able, or a list of byte chunks streamed one by one. "drop" closes the
#: connection without answering.
Reply = Union[str, Tuple[int, Any], Tuple[int, Any, Dict[str, str]]]
Handler = Callable[[Request], Reply]


def problem(status: int, code: str, detail: str = "refused",
            field: Optional[str] = None) -> Tuple[int, Any, Dict[str, str]]:
    """A problem+json reply like the server's."""
    doc = {"type": f"urn:trainyard:problem:{code}", "title": code, "status": status,
           "detail": detail, "code": code}
    if field:
        doc["field"] = field
    return status, json.dumps(doc).encode(), {"Content-Type": "application/problem+json"}


class FakeServer:
    """Answers with the handlers registered per (method, path); records every request."""

    def __init__(self) -> None:
        self.requests: List[Request] = []
        self.routes: Dict[Tuple[str, str], Handler] = {}
        self.lock = threading.Lock()
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                parsed = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, urllib.parse.unquote(parsed.path),
                                  urllib.parse.parse_qs(parsed.query),
                                  {k.lower(): v for k, v in self.headers.items()}, body)
                with fake.lock:
                    fake.requests.append(request)
                    handler = fake.routes.get((self.command, request.path))
                reply = handler(request) if handler else problem(404, "not_found",
                                                                 "route not found")
                if reply == "drop":
                    self.close_connection = True
                    return
                status, payload = reply[0], reply[1]
                headers = dict(reply[2]) if len(reply) > 2 else {}  # type: ignore[misc]
                if isinstance(payload, list) and payload and isinstance(payload[0], bytes):
                    self.send_response(status)
                    headers.setdefault("Content-Type", "text/event-stream")
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    for chunk in payload:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    return
                if isinstance(payload, (bytes, bytearray)):
                    data = bytes(payload)
                elif isinstance(payload, str):
                    data = payload.encode()
                elif payload is None:
                    data = b""
                else:
                    data = json.dumps(payload).encode()
                    headers.setdefault("Content-Type", "application/json")
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def route(self, method: str, path: str, handler: Union[Handler, Reply]) -> None:
        """Answers ``method path`` with ``handler(request)`` (or a fixed reply)."""
        if not callable(handler):
            fixed = handler
            handler = lambda request: fixed  # noqa: E731
        with self.lock:
            self.routes[(method, path)] = handler  # type: ignore[assignment]

    def sequence(self, method: str, path: str, replies: List[Reply]) -> None:
        """Answers with ``replies`` in turn, repeating the last one."""
        state = {"i": 0}

        def handler(request: Request) -> Reply:
            index = min(state["i"], len(replies) - 1)
            state["i"] += 1
            return replies[index]

        self.route(method, path, handler)

    def received(self, method: str, path: str) -> List[Request]:
        with self.lock:
            return [r for r in self.requests if r.method == method and r.path == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake() -> Any:
    server = FakeServer()
    yield server
    server.close()


@pytest.fixture
def workspace(fake: FakeServer) -> Workspace:
    return Workspace(fake.url, "ws", "tyd_test")


WS = "/api/v1/workspaces/ws"
RUN_ID = "01a20885-0000-7000-8000-000000000001"
RUN_PATH = f"{WS}/runs/{RUN_ID}"


def run_view(status: str = "Queued", **extra: Any) -> Dict[str, Any]:
    """A RunView like the server's."""
    view = {"id": RUN_ID, "workspace_id": "w", "experiment_id": "e", "display_name": None,
            "status": status, "error": None, "tags": {}, "properties": {}, "exit_code": None,
            "spec": {"script": "train.py"}, "cancel_requested": False,
            "created_at": "2026-11-23T12:00:00Z", "started_at": None, "ended_at": None}
    view.update(extra)
    return view
