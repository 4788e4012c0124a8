"""The collector's HTTP endpoints: an index page, /metrics, /healthz, /readyz, the JSON API.

A stdlib threading server: each scrape renders under the store lock from
cached per-branch text (a quiet branch is never re-rendered), so a handler
holds it for milliseconds.
"""

from __future__ import annotations

import html
import logging
import socket
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import msgspec

from branchwatch import __version__
from collector.errors import CollectorError
from collector.selfmetrics import SelfMetrics
from collector.store import Store

log = logging.getLogger(__name__)

METRICS_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
SENDMSG_BATCH: Final = 512  # buffers per sendmsg call (well under IOV_MAX = 1024)
JSON_CONTENT_TYPE: Final = "application/json"
HTML_CONTENT_TYPE: Final = "text/html; charset=utf-8"
TEXT_CONTENT_TYPE: Final = "text/plain; charset=utf-8"
# The index's links: (path, what a person finds there). Relative hrefs, so the page
# also works behind a reverse proxy that serves the collector under a sub-path.
INDEX_LINKS: Final = (
    ("metrics", "Prometheus metrics: every branch's floor and the collector's own"),
    ("healthz", "liveness: 200 while the process runs"),
    ("readyz", "readiness: 200 once subscribed to the broker"),
    ("api/v1/branches", "JSON: every branch's live summary (add /REGION/BRANCH for one)"),
)
_json: Final = msgspec.json.Encoder()


class HttpListenError(CollectorError):
    """The HTTP listener could not be started (address in use, not on this host)."""


class ApiState:
    """What the handlers read: the store (under its lock), metrics and readiness."""

    def __init__(
        self,
        store: Store,
        lock: threading.Lock,
        metrics: SelfMetrics,
        ready: Callable[[], bool],
        clock: Callable[[], float] = time.time,
        docs_url: str = "",
    ) -> None:
        self.store = store
        self.lock = lock
        self.metrics = metrics
        self.ready = ready
        self.clock = clock
        self.docs_url = docs_url  # where the docs are published; empty: not linked


class Handler(BaseHTTPRequestHandler):
    server: CollectorHttpServer
    protocol_version = "HTTP/1.1"
    server_version = "branchwatch-collector"

    def do_GET(self) -> None:
        self._route(send_body=True)

    def do_HEAD(self) -> None:
        self._route(send_body=False)

    def _route(self, send_body: bool) -> None:
        api = self.server.api
        path = unquote(urlsplit(self.path).path).rstrip("/") or "/"
        if path == "/":
            with api.lock:
                known = api.store.branch_count
            page = index_page(api.ready(), known, api.docs_url)
            self._send(HTTPStatus.OK, page, HTML_CONTENT_TYPE, send_body)
        elif path == "/metrics":
            with api.lock:
                floor = api.store.render_chunks()
            self._send_chunks([*floor, api.metrics.render()], send_body)
        elif path == "/healthz":
            self._send(HTTPStatus.OK, b"ok\n", "text/plain", send_body)
        elif path == "/readyz":
            ready = api.ready()
            status = HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE
            body = b"ready\n" if ready else b"not subscribed to the broker yet\n"
            self._send(status, body, "text/plain", send_body)
        elif path == "/api/v1/branches":
            now = api.clock()
            with api.lock:
                branches = api.store.branch_summaries(now)
            self._json(HTTPStatus.OK, {"now": now, "branches": branches}, send_body)
        elif path.startswith("/api/v1/branches/") and path.count("/") == 5:
            region, branch = path.split("/")[4:6]
            now = api.clock()
            with api.lock:
                detail = api.store.branch_detail(region, branch, now)
            if detail is None:
                self._error(HTTPStatus.NOT_FOUND, f"no branch {region}/{branch}", send_body)
            else:
                self._json(HTTPStatus.OK, {"now": now, "branch": detail}, send_body)
        else:
            body = f"not found: {path[:200]} (the endpoints are listed at /)\n".encode()
            self._send(HTTPStatus.NOT_FOUND, body, TEXT_CONTENT_TYPE, send_body)

    def _json(self, status: HTTPStatus, body: Any, send_body: bool) -> None:
        self._send(status, _json.encode(body), JSON_CONTENT_TYPE, send_body)

    def _error(self, status: HTTPStatus, message: str, send_body: bool) -> None:
        self._json(status, {"error": message}, send_body)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, send_body: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _send_chunks(self, chunks: list[bytes], send_body: bool) -> None:
        """A scrape: tens of MB of cached fragments, gathered by the kernel, never joined."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", METRICS_CONTENT_TYPE)
        self.send_header("Content-Length", str(sum(map(len, chunks))))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if send_body:
            send_gathered(self.connection, chunks)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


def index_page(ready: bool, branches: int, docs_url: str) -> bytes:
    """A page for a person who opens the collector in a browser; loads nothing from elsewhere."""
    state = "subscribed to the broker" if ready else "not subscribed to the broker yet"
    items = [
        f'<li><a href="{href}">/{href}</a> — {html.escape(what)}</li>' for href, what in INDEX_LINKS
    ]
    if docs_url:
        url = html.escape(docs_url, quote=True)
        items.append(f'<li><a href="{url}">documentation</a> — {url}</li>')
    lines = (
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>branchwatch collector</title>",
        "<style>body{font-family:sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem}"
        "li{margin:.4rem 0}</style></head><body>",
        "<h1>branchwatch collector</h1>",
        f"<p>Version {html.escape(__version__)}: {state}; branches known: {branches}.</p>",
        "<ul>",
        *items,
        "</ul></body></html>",
        "",
    )
    return "\n".join(lines).encode()


def send_gathered(sock: socket.socket, chunks: list[bytes]) -> None:
    """``sendall`` for a list of buffers: ``sendmsg`` in batches, finishing short writes."""
    for start in range(0, len(chunks), SENDMSG_BATCH):
        batch = chunks[start : start + SENDMSG_BATCH]
        sent = sock.sendmsg(batch)
        for chunk in batch:
            if sent >= len(chunk):
                sent -= len(chunk)
                continue
            sock.sendall(memoryview(chunk)[sent:])
            sent = 0


class CollectorHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], api: ApiState) -> None:
        self.api = api
        try:
            super().__init__(address, Handler)
        except OSError as exc:
            raise HttpListenError(
                f"cannot listen on {address[0]}:{address[1]}: {exc.strerror or exc}"
            ) from exc

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"
