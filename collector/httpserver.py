"""Connections for the collector's HTTP: one selector thread reads requests, a few workers answer.

A thread-per-connection server gives every idle or slow-drip client a thread; five
hundred of them cost five hundred threads fighting over the interpreter. Here a
connection costs a registered socket until its request head is complete: the selector
thread accepts, finishes TLS handshakes, and reads heads under a deadline; only a whole
head goes to a worker, which answers it (a scrape sends its cached fragments straight
from the worker) and hands a kept-alive connection back. Limits, as Go's HTTP server
and the Prometheus exporters have them:

- a request line of at most :data:`MAX_REQUEST_LINE` bytes (else 414), a head of at
  most :data:`MAX_HEAD_BYTES` (else 431), no request bodies (the collector takes none);
- ``read_header_timeout``: from accept, or from the first byte of a kept-alive
  connection's next request, to the end of the head (else 408 and closed);
- ``idle_timeout``: how long a kept-alive connection may wait for its next request;
- ``write_timeout``: how long a client may read nothing of a response;
- ``max_connections``: when every slot is taken, a new connection replaces the one that
  has waited longest for a complete request head (a slow client cannot lock a scraper
  out), a kept-alive one idle between its requests only when no other waits; only when
  every connection is being answered is the new one refused.

Each connection closed or answered with an error before it was served is reported to
``on_refused`` with one of :data:`REFUSAL_REASONS` (the collector counts them), before the
client can see it; a kept-alive connection that stays idle past ``idle_timeout`` has been
served, and is not. A handler that swallows its own write timeout (http.server's does)
reports ``write_timeout`` itself.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import selectors
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from queue import SimpleQueue
from typing import Final

log = logging.getLogger(__name__)

MAX_REQUEST_LINE: Final = 8192
MAX_HEAD_BYTES: Final = 16384  # request line and headers
WORKERS: Final = 8
SWEEP_SECONDS: Final = 0.25  # how often deadlines are checked
DRAIN_SECONDS: Final = 1.0  # after an error reply: read what the client still sends, then close
ACCEPTS_PER_WAKE: Final = 64  # bounded, so a connection storm cannot stall the reading
RECV_BYTES: Final = 65536
FD_MARGIN: Final = 64  # descriptors besides the HTTP connections (broker, snapshots, logs)

# Why a connection was not served: evicted for a newer one at the cap; refused at the cap
# (every connection busy); its request head (or TLS handshake) too slow; its request line
# or head too large; a head HTTP cannot parse (or a method no endpoint takes); a failed TLS
# handshake; a client that read nothing of its answer for write_timeout.
REFUSAL_REASONS: Final = (
    "cap_evicted",
    "cap_refused",
    "header_timeout",
    "too_large",
    "bad_request",
    "tls_failed",
    "write_timeout",
)

Peer = tuple[str, int]
# Answers one request head on a blocking socket; True keeps the connection open.
RequestHandler = Callable[[socket.socket, Peer, bytes], bool]
# Told each refusal's reason (one of REFUSAL_REASONS), from the selector thread or a worker.
RefusalHook = Callable[[str], None]


def _not_counted(reason: str) -> None:
    pass


@dataclass(frozen=True)
class Limits:
    max_connections: int = 4096
    read_header_timeout: float = 5.0
    idle_timeout: float = 60.0
    write_timeout: float = 30.0


class _Connection:
    __slots__ = ("buffer", "deadline", "draining", "handshaking", "idle", "peer", "sock")

    def __init__(self, sock: socket.socket, peer: Peer, deadline: float, tls: bool) -> None:
        self.sock = sock
        self.peer = peer
        self.buffer = bytearray()
        self.deadline = deadline
        self.idle = False  # kept alive, waiting for the first byte of its next request
        self.handshaking = tls
        self.draining = False  # an error reply was sent; closing once the client stops


class ConnectionServer:
    """Listens on ``address`` (bound here) and serves with ``handle`` once ``serve_forever``."""

    def __init__(
        self,
        address: tuple[str, int],
        handle: RequestHandler,
        *,
        tls: ssl.SSLContext | None = None,
        limits: Limits = Limits(),
        on_refused: RefusalHook = _not_counted,
    ) -> None:
        self._handle = handle
        self._refused = on_refused
        self._tls = tls
        self.limits = limits
        self._listener = socket.create_server(
            address, backlog=socket.SOMAXCONN, family=_family(address[0])
        )
        self._listener.setblocking(False)
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._waiting: dict[_Connection, None] = {}  # reading a head, oldest first
        self._busy = 0  # connections a worker holds
        self._jobs: SimpleQueue[tuple[_Connection, bytes] | None] = SimpleQueue()
        self._returned: deque[tuple[_Connection, bool]] = deque()
        self._stopping = False
        self._stopped = threading.Event()
        self._stopped.set()  # nothing to wait for until serve_forever runs
        _raise_fd_limit(limits.max_connections + FD_MARGIN)

    @property
    def server_address(self) -> tuple[str, int]:
        host, port = self._listener.getsockname()[:2]
        return str(host), int(port)

    @property
    def open_connections(self) -> int:
        return len(self._waiting) + self._busy

    def serve_forever(self) -> None:
        self._stopped.clear()
        workers = [
            threading.Thread(target=self._work, name=f"http-worker-{n}", daemon=True)
            for n in range(WORKERS)
        ]
        for worker in workers:
            worker.start()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._selector.register(self._wake_read, selectors.EVENT_READ)
        try:
            self._loop()
        finally:
            for _ in workers:
                self._jobs.put(None)
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop ``serve_forever`` (from another thread) and wait until it has returned."""
        self._stopping = True
        self._wake()
        self._stopped.wait()

    def server_close(self) -> None:
        self._stopping = True
        for connection in list(self._waiting):
            self._close(connection)
        for sock in (self._listener, self._wake_read, self._wake_write):
            sock.close()
        self._selector.close()

    # the selector thread ---------------------------------------------------------------

    def _loop(self) -> None:
        next_sweep = time.monotonic() + SWEEP_SECONDS
        while not self._stopping:
            for key, _ in self._selector.select(timeout=SWEEP_SECONDS):
                if key.fileobj is self._listener:
                    self._accept()
                elif key.fileobj is self._wake_read:
                    self._take_back()
                else:
                    self._serve_one(key.data)
            now = time.monotonic()
            if now >= next_sweep:
                self._sweep(now)
                next_sweep = now + SWEEP_SECONDS

    def _accept(self) -> None:
        for _ in range(ACCEPTS_PER_WAKE):
            try:
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors: the sweep frees some
                log.warning("HTTP accept failed: %s", exc)
                return
            if self.open_connections >= self.limits.max_connections and not self._evict():
                self._refused("cap_refused")
                sock.close()  # every connection is being answered: refuse this one
                continue
            try:
                sock.setblocking(False)
                # Headers and body leave in separate writes: with Nagle's algorithm the
                # second waits for the client's delayed ACK (~40 ms) on every kept-alive
                # request, and Prometheus scrapes keep their connections alive.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self._tls is not None:
                    sock = self._tls.wrap_socket(
                        sock, server_side=True, do_handshake_on_connect=False
                    )
            except OSError as exc:  # gone already
                log.debug("HTTP connection from %s lost at accept: %s", address[0], exc)
                sock.close()
                continue
            deadline = time.monotonic() + self.limits.read_header_timeout
            connection = _Connection(sock, address[:2], deadline, self._tls is not None)
            self._waiting[connection] = None
            self._selector.register(sock, selectors.EVENT_READ, connection)

    def _evict(self) -> bool:
        """Close the connection that has waited longest for a request head, if any: one that
        was never served first. A kept-alive connection idle between requests has been
        served before (Prometheus keeps its scrape connection so): a flood of new clients
        must not cut it, or the next scrape meets a reset."""
        waiting = self._waiting
        oldest = next((c for c in waiting if not c.idle), None) or next(iter(waiting), None)
        if oldest is None:
            return False
        log.debug("HTTP connection limit reached: closing %s's idle connection", oldest.peer[0])
        self._refused("cap_evicted")
        self._close(oldest)
        return True

    def _serve_one(self, connection: _Connection) -> None:
        try:
            self._readable(connection)
        except Exception:
            # A bug met by one client must not stop the HTTP server for everyone.
            log.exception("HTTP connection from %s failed", connection.peer[0])
            self._close(connection)

    def _readable(self, connection: _Connection) -> None:
        sock = connection.sock
        if connection.handshaking and not self._handshake(connection):
            return
        while True:
            try:
                data = sock.recv(RECV_BYTES)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
                break
            except OSError:  # reset, or a TLS alert
                self._close(connection)
                return
            if not data:
                self._close(connection)
                return
            if connection.draining:
                continue
            connection.buffer += data
            if len(connection.buffer) > MAX_HEAD_BYTES:
                break
        if not connection.draining:
            self._parse(connection)

    def _handshake(self, connection: _Connection) -> bool:
        assert isinstance(connection.sock, ssl.SSLSocket)
        try:
            connection.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._selector.modify(connection.sock, selectors.EVENT_READ, connection)
            return False
        except ssl.SSLWantWriteError:
            self._selector.modify(connection.sock, selectors.EVENT_WRITE, connection)
            return False
        except OSError as exc:  # no or an untrusted client certificate, plain HTTP, a reset
            log.debug("TLS handshake with %s failed: %s", connection.peer[0], exc)
            self._refused("tls_failed")
            self._close(connection)
            return False
        connection.handshaking = False
        self._selector.modify(connection.sock, selectors.EVENT_READ, connection)
        return True

    def _parse(self, connection: _Connection) -> None:
        """Hand a complete head to a worker; reply 414/431 to one over the limits."""
        buffer = connection.buffer
        if buffer.startswith((b"\r", b"\n")):  # blank lines between requests are allowed
            del buffer[: len(buffer) - len(buffer.lstrip(b"\r\n"))]
        if not buffer:
            return
        if connection.idle:  # the next request has begun: its head has a deadline now
            connection.idle = False
            connection.deadline = time.monotonic() + self.limits.read_header_timeout
        line_end = buffer.find(b"\n", 0, MAX_REQUEST_LINE + 1)
        if line_end < 0 and len(buffer) > MAX_REQUEST_LINE:
            self._refused("too_large")
            self._reject(connection, 414, "URI Too Long", "request line too long")
            return
        ends = [
            i + n for i, n in ((buffer.find(b"\n\r\n"), 3), (buffer.find(b"\n\n"), 2)) if i >= 0
        ]
        end = min(ends, default=-1)
        if end > MAX_HEAD_BYTES or (end < 0 and len(buffer) > MAX_HEAD_BYTES):
            self._refused("too_large")
            self._reject(
                connection, 431, "Request Header Fields Too Large", "request headers too large"
            )
            return
        if end < 0:
            return
        head = bytes(buffer[:end])
        del buffer[:end]
        self._selector.unregister(connection.sock)
        del self._waiting[connection]
        self._busy += 1
        connection.sock.settimeout(self.limits.write_timeout)
        self._jobs.put((connection, head))

    def _reject(self, connection: _Connection, status: int, reason: str, text: str) -> None:
        """Reply with an error, stop reading requests, close once the client stops sending."""
        body = f"{text}\n".encode()
        reply = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body
        try:
            connection.sock.send(reply)  # a few hundred bytes: fits any socket buffer
            # Closing with unread input would reset the connection and lose the reply.
            connection.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(connection)
            return
        connection.buffer.clear()
        connection.draining = True
        connection.deadline = time.monotonic() + DRAIN_SECONDS

    def _sweep(self, now: float) -> None:
        for connection in [c for c in self._waiting if c.deadline <= now]:
            if connection.draining or connection.idle:
                self._close(connection)  # refused already, or served and now idle too long
                continue
            self._refused("header_timeout")
            if connection.handshaking or not connection.buffer:
                self._close(connection)  # never sent a byte of a request: nobody to tell
            else:
                self._reject(connection, 408, "Request Timeout", "request head too slow")

    def _take_back(self) -> None:
        """Workers' connections: closed, or kept alive and waiting for the next request."""
        try:
            while self._wake_read.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        while self._returned:
            connection, keep = self._returned.popleft()
            self._busy -= 1
            if not keep or self._stopping:
                self._close(connection, registered=False)
                continue
            connection.sock.settimeout(0.0)
            connection.idle = True
            connection.deadline = time.monotonic() + self.limits.idle_timeout
            self._waiting[connection] = None
            self._selector.register(connection.sock, selectors.EVENT_READ, connection)
            if connection.buffer:  # a pipelined request arrived with the previous one
                self._parse(connection)

    def _close(self, connection: _Connection, registered: bool = True) -> None:
        if registered:
            self._waiting.pop(connection, None)
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(connection.sock)
        connection.sock.close()

    def _wake(self) -> None:
        # A full pipe means a wake-up is pending already; a closed one, the server is gone.
        with contextlib.suppress(OSError):
            self._wake_write.send(b"\0")

    # the workers -------------------------------------------------------------------------

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            connection, head = job
            keep = False
            try:
                keep = self._handle(connection.sock, connection.peer, head)
            except OSError as exc:  # the client went away, or read nothing for write_timeout
                log.debug("HTTP client %s: %s", connection.peer[0], exc)
                if isinstance(exc, TimeoutError):
                    self._refused("write_timeout")
            except Exception:
                log.exception("HTTP request from %s failed", connection.peer[0])
            if self._stopping:
                connection.sock.close()
                continue
            self._returned.append((connection, keep))
            self._wake()


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _raise_fd_limit(wanted: int) -> None:
    """Raise the soft descriptor limit toward ``wanted`` (Go programs raise it at start too)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        log.warning("cannot raise the open-file limit to %d: %s", target, exc)
        return
    if target < wanted:
        log.warning(
            "open-file limit %d is below http.max_connections + %d: raise LimitNOFILE",
            target,
            FD_MARGIN,
        )
