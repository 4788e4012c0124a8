"""What the collector HTTP tests share: a throwaway PKI, an in-process server, raw requests."""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from collector.config import HttpConfig
from collector.floor.config import FloorConfig
from collector.http import ApiState, CollectorHttpServer
from collector.selfmetrics import SelfMetrics
from collector.store import Store
from tests.integration import scenario
from tests.support import require_binary


class Pki:
    """A CA of its own in ``directory`` issuing certificates with the openssl CLI."""

    def __init__(self, directory: Path, name: str = "ca") -> None:
        self.openssl = require_binary("openssl")
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.ca, self.ca_key = directory / f"{name}.pem", directory / f"{name}.key"
        subject = f"/CN=branchwatch test {name}"
        self._run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.ca_key,
                  "-out", self.ca, "-days", "1", "-subj", subject)  # fmt: skip

    def issue(self, name: str, extension: str) -> tuple[Path, Path]:
        """(certificate, key) for ``name``; ``extension`` is an openssl x509 extension line."""
        cert, key = self.directory / f"{name}.pem", self.directory / f"{name}.key"
        csr, ext = self.directory / f"{name}.csr", self.directory / f"{name}.ext"
        ext.write_text(extension + "\n")
        self._run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                  "-subj", f"/CN={name}")  # fmt: skip
        self._run("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                  "-CAcreateserial", "-out", cert, "-days", "1", "-extfile", ext)  # fmt: skip
        return cert, key

    def server(self) -> tuple[Path, Path]:
        return self.issue("server", "subjectAltName=IP:127.0.0.1,DNS:localhost")

    def client(self, name: str = "client") -> tuple[Path, Path]:
        return self.issue(name, "extendedKeyUsage=clientAuth")

    def _run(self, *args: str | Path) -> None:
        subprocess.run([self.openssl, *map(str, args)], check=True, capture_output=True)


def client_context(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def filled_store(branches: int = 1) -> Store:
    """A store holding the scenario's open day in ``branches`` branches."""
    store = Store(FloorConfig())
    for n in range(branches):
        branch = scenario.BRANCH if n == 0 else f"br-{n:04d}"
        store.apply_events(
            scenario.REGION, branch, scenario.AGENT, scenario.events(1, scenario.OPEN_PART),
            received=time.time(),
        )  # fmt: skip
    return store


@contextmanager
def serving(http: HttpConfig, store: Store | None = None) -> Iterator[CollectorHttpServer]:
    """The collector's HTTP server on a free loopback port, in this process."""
    api = ApiState(store or filled_store(), threading.Lock(), SelfMetrics(), lambda: True)
    server = CollectorHttpServer(("127.0.0.1", 0), api, http)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


Response = tuple[int, http.client.HTTPMessage, bytes]


def get(
    server: CollectorHttpServer,
    path: str,
    authorization: str | None = None,
    context: ssl.SSLContext | None = None,
    method: str = "GET",
) -> Response:
    """One request on a new connection: (status, headers, body)."""
    host, port = server.server_address
    connection: http.client.HTTPConnection
    if server.tls is not None:
        connection = http.client.HTTPSConnection(host, port, timeout=10, context=context)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=10)
    headers = {"Authorization": authorization} if authorization else {}
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def exchange(address: tuple[str, int], data: bytes, timeout: float = 10.0) -> bytes:
    """Send raw bytes, return everything the server sends until it closes."""
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.sendall(data)
        return read_to_close(sock)


def read_to_close(sock: socket.socket) -> bytes:
    received = bytearray()
    while chunk := sock.recv(65536):
        received += chunk
    return bytes(received)


def is_closed(sock: socket.socket) -> bool:
    """Whether the server closed ``sock`` (read without waiting: EOF or a reset)."""
    sock.setblocking(False)
    try:
        return sock.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
