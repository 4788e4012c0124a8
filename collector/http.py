"""The collector's HTTP endpoints: an index page, /metrics, /healthz, /readyz, the JSON API.

Connections are kept by :mod:`collector.httpserver` (limits on size, time and count);
this module answers requests. A scrape (``/metrics``, or one shard of it:
``?shard=I&shards=N``) is answered from cached gzip members (by block), re-rendering only
the branches that changed, one at a time under the store lock
(:mod:`collector.exposition`); a client that accepts gzip (Prometheus does) gets the
members as they are, any other the text. With basic auth on (``http.basic_auth_users``),
``/metrics`` and the API (which shows staff ids) need credentials; ``/healthz``,
``/readyz`` and the lobby screen (``/screen/...``: no staff ids, :mod:`collector.screen`)
stay open, and ``/`` shows only its links to a visitor without them.
"""

from __future__ import annotations

import html
import io
import logging
import socket
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from itertools import chain
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import msgspec

from branchwatch import __version__
from branchwatch.logthrottle import ThrottledLog
from collector.config import HttpConfig
from collector.errors import CollectorError
from collector.exposition import ShardChunks, ShardError, member, parse_shard, texts
from collector.httpsecurity import CHALLENGE, Verdict
from collector.httpsend import accepts_gzip, send_gathered
from collector.httpserver import REFUSAL_REASONS, ConnectionServer, Limits, Peer
from collector.screen import LobbyScreen
from collector.selfmetrics import SelfMetrics
from collector.store import Store

log = logging.getLogger(__name__)

METRICS_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
JSON_CONTENT_TYPE: Final = "application/json"
HTML_CONTENT_TYPE: Final = "text/html; charset=utf-8"
TEXT_CONTENT_TYPE: Final = "text/plain; charset=utf-8"
# The index's links: (path, what a person finds there). Relative hrefs, so the page
# also works behind a reverse proxy that serves the collector under a sub-path.
INDEX_LINKS: Final = (
    (
        "metrics",
        "Prometheus metrics: every branch's floor and the collector's own "
        "(?shard=I&shards=N, N dividing 64: the branches of shard I of N)",
    ),
    ("healthz", "liveness: 200 while the process runs"),
    ("readyz", "readiness: 200 once subscribed to the broker"),
    ("api/v1/branches", "JSON: every branch's live summary (add /REGION/BRANCH for one)"),
)
_json: Final = msgspec.json.Encoder()
REFUSALS: Final = {
    Verdict.DENIED: "no valid credentials",
    Verdict.BUSY: "too many credential checks at once",
}


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
        screen: LobbyScreen | None = None,
    ) -> None:
        self.store = store
        self.lock = lock
        self.metrics = metrics
        self.ready = ready
        self.clock = clock
        self.docs_url = docs_url  # where the docs are published; empty: not linked
        self.screen = screen or LobbyScreen()  # the lobby screen (default settings)


class Handler(BaseHTTPRequestHandler):
    """Answers the one request whose head the connection server has read."""

    protocol_version = "HTTP/1.1"
    server_version = "branchwatch-collector"

    def __init__(
        self, sock: socket.socket, peer: Peer, head: bytes, app: CollectorHttpServer
    ) -> None:
        # Not the socketserver way: the head is already read and the server is not a
        # socketserver, so BaseRequestHandler's constructor is replaced, not called.
        self.app = app
        self._head = head
        self.request = sock
        self.client_address = peer
        self.setup()
        try:
            self.handle()
        finally:
            self.finish()

    def setup(self) -> None:
        self.connection = self.request
        self.rfile = io.BytesIO(self._head)
        self.wfile = _SocketWriter(self.connection)

    def handle(self) -> None:
        self.handle_one_request()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Only http.server's own errors come here (a head it cannot parse, a method no
        # endpoint takes): the endpoints send theirs with _send.
        self.app.refused("bad_request")
        super().send_error(code, message, explain)

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.headers.get("Transfer-Encoding") or self.headers.get("Content-Length", "0") != "0":
            # No endpoint takes a body, and it is not read: its bytes must not be taken
            # for the next request.
            self.close_connection = True
        return True

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        try:
            self._route(send_body)
        except TimeoutError:
            # The client read nothing for write_timeout; http.server closes the connection
            # and swallows the error, so it is counted here.
            self.app.refused("write_timeout")
            raise

    def _route(self, send_body: bool) -> None:
        api = self.app.api
        target = urlsplit(self.path)
        path = unquote(target.path).rstrip("/") or "/"
        if path == "/":
            self._index(send_body)
        elif path == "/healthz":
            self._send(HTTPStatus.OK, b"ok\n", "text/plain", send_body)
        elif path == "/readyz":
            ready = api.ready()
            status = HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE
            body = b"ready\n" if ready else b"not subscribed to the broker yet\n"
            self._send(status, body, "text/plain", send_body)
        elif path.startswith("/screen/"):
            # Open, like /healthz: a lobby TV shows customers their queue, no staff ids.
            answer = api.screen.answer(path, target.query, api.store, api.lock, api.clock())
            self._send(HTTPStatus(answer.status), answer.body, answer.content_type, send_body)
        elif not self._authorized(send_body):
            return
        elif path == "/metrics":
            self._metrics(target.query, send_body)
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

    def _metrics(self, query: str, send_body: bool) -> None:
        api = self.app.api
        try:
            shard = parse_shard(query)
        except ShardError as exc:
            self._send(HTTPStatus.BAD_REQUEST, f"{exc}\n".encode(), TEXT_CONTENT_TYPE, send_body)
            return
        # The store's lock is taken branch by branch in there, never across the region.
        floor = api.store.render_chunks(shard, api.lock)
        own = api.metrics.render() if shard.carries_collector else b""
        self._send_exposition(floor, own, send_body)

    def _index(self, send_body: bool) -> None:
        api = self.app.api
        # With auth on, a visitor without credentials learns the links, nothing of the floor.
        private = self.app.auth is not None and not (
            self.headers.get("Authorization") and self._verdict() is Verdict.ALLOWED
        )
        with api.lock:
            known = api.store.branch_count
        page = index_page(api.ready(), known, api.docs_url, links_only=private)
        self._send(HTTPStatus.OK, page, HTML_CONTENT_TYPE, send_body)

    def _verdict(self) -> Verdict:
        auth = self.app.auth
        if auth is None:
            return Verdict.ALLOWED
        verdict = auth.check(self.headers.get("Authorization"))
        if verdict is not Verdict.ALLOWED:
            # Who knocked, never what they sent.
            self.app.denials.warning(
                "HTTP %s from %s refused: %s",
                self.path[:100],
                self.client_address[0],
                REFUSALS[verdict],
                key=self.client_address[0],
            )
        return verdict

    def _authorized(self, send_body: bool) -> bool:
        """Whether the request may see staff ids and metrics; if not, the refusal is sent."""
        verdict = self._verdict()
        if verdict is Verdict.ALLOWED:
            return True
        if verdict is Verdict.BUSY:
            body = b"too many credential checks at once; retry\n"
            self._send(
                HTTPStatus.SERVICE_UNAVAILABLE,
                body,
                TEXT_CONTENT_TYPE,
                send_body,
                extra=(("Retry-After", "1"),),
            )
        else:
            body = b"authentication required\n"
            self._send(
                HTTPStatus.UNAUTHORIZED,
                body,
                TEXT_CONTENT_TYPE,
                send_body,
                extra=(("WWW-Authenticate", CHALLENGE),),
            )
        return False

    def _json(self, status: HTTPStatus, body: Any, send_body: bool) -> None:
        self._send(status, _json.encode(body), JSON_CONTENT_TYPE, send_body)

    def _error(self, status: HTTPStatus, message: str, send_body: bool) -> None:
        self._json(status, {"error": message}, send_body)

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str,
        send_body: bool,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _send_exposition(self, floor: ShardChunks, own: bytes, send_body: bool) -> None:
        """A scrape: the floor's cached members, gathered by the kernel, never joined, then
        the collector's own metrics ``own``; gzip as they are, else their text."""
        gzip = accepts_gzip(self.headers.get("Accept-Encoding"))
        if gzip:
            tail = member(own)
            length = floor.gzip_length + len(tail)
        else:
            tail = own
            length = floor.text_length + len(tail)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", METRICS_CONTENT_TYPE)
        if gzip:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Vary", "Accept-Encoding")
        self.send_header("Content-Length", str(length))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if send_body:
            body = floor.members if gzip else texts(floor.members)
            send_gathered(self.connection, chain(body, (tail,)))

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class _SocketWriter(io.BufferedIOBase):
    """``wfile``: every write sent whole (a blocking socket with the write timeout)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._sock.sendall(data)
        return len(memoryview(data))


def index_page(ready: bool, branches: int, docs_url: str, *, links_only: bool = False) -> bytes:
    """A page for a person who opens the collector in a browser; loads nothing from elsewhere.

    ``links_only``: no version, readiness or branch count (a visitor without credentials).
    """
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
        ""
        if links_only
        else f"<p>Version {html.escape(__version__)}: {state}; branches known: {branches}.</p>",
        "<ul>",
        *items,
        "</ul></body></html>",
        "",
    )
    return "\n".join(lines).encode()


class CollectorHttpServer(ConnectionServer):
    """The collector's HTTP server, bound to ``address`` here, TLS and auth from ``http``."""

    def __init__(
        self, address: tuple[str, int], api: ApiState, http: HttpConfig | None = None
    ) -> None:
        http = http or HttpConfig()
        self.api = api
        self.auth = http.basic_auth()
        self.tls = http.tls_context()
        self.denials = ThrottledLog(log)
        limits = Limits(
            max_connections=http.max_connections,
            read_header_timeout=http.read_header_timeout_seconds,
            idle_timeout=http.idle_timeout_seconds,
            write_timeout=http.write_timeout_seconds,
        )
        self._refusals = {
            reason: api.metrics.http_refused.labels(reason) for reason in REFUSAL_REASONS
        }
        try:
            super().__init__(
                address, self._answer, tls=self.tls, limits=limits, on_refused=self.refused
            )
        except OSError as exc:
            raise HttpListenError(
                f"cannot listen on {address[0]}:{address[1]}: {exc.strerror or exc}"
            ) from exc
        api.metrics.http_connections.set_function(lambda: self.open_connections)

    def refused(self, reason: str) -> None:
        """Count a connection refused or closed unserved (reason: one of REFUSAL_REASONS)."""
        self._refusals[reason].inc()

    def _answer(self, sock: socket.socket, peer: Peer, head: bytes) -> bool:
        return not Handler(sock, peer, head, self).close_connection

    @property
    def url(self) -> str:
        host, port = self.server_address
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{host}:{port}"
