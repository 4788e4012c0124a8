"""How long a Prometheus scrape of /metrics takes with thousands of branches.

Asked as Prometheus asks (``Accept-Encoding: gzip``): the collector sends its cached
gzip members as they are.
"""

from __future__ import annotations

import gzip
import io
import socket
import statistics
import time
from dataclasses import dataclass

from branchwatch.contract import Status, encode, topic_for
from collector.app import Collector

# One preallocated, pre-touched receive buffer: the client must not be what we time.
_BUFFER = 256 << 20


@dataclass
class ScrapeTimes:
    branches: int
    series: int
    bytes: int
    cold_ms: float  # every branch changed since the last scrape
    warm_ms: float  # median, nothing changed
    churn_ms: float  # median, a share of the branches changed between scrapes
    churn_share: float


def _get(address: tuple[str, int], view: memoryview, path: str = "/metrics") -> tuple[float, bytes]:
    """GET ``path`` gzipped and read it whole, as fast as Prometheus's Go client would;
    the time in ms and the body as sent (see :func:`text`).

    urllib's reader would dominate the time for tens of MB; this measures the server.
    """
    request = (
        f"GET {path} HTTP/1.1\r\nHost: bench\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
    )
    start = time.perf_counter()
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(request.encode())
        size = 0
        while n := sock.recv_into(view[size:]):
            size += n
            if size == len(view):
                raise RuntimeError("response larger than the bench's buffer")
    elapsed = (time.perf_counter() - start) * 1000.0
    head, _, body = bytes(view[:size]).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"{path} answered {head[:40]!r}")
    if b"\r\nContent-Encoding: gzip" not in head:
        raise RuntimeError(f"{path} answered without gzip: {head[:200]!r}")
    return elapsed, body


def text(body: bytes) -> bytes:
    """A gzip body's text. The collector sends one gzip member per branch and family
    (tens of thousands): ``gzip.decompress`` copies the rest of the body after each
    member (quadratic: minutes for a region), a ``GzipFile`` reads it in buffered steps."""
    with gzip.GzipFile(fileobj=io.BytesIO(body)) as unpacked:
        return unpacked.read()


def scrape_times(collector: Collector, rounds: int = 20, churn_share: float = 0.05) -> ScrapeTimes:
    host, port = collector.http.server_address[:2]
    url = (str(host), int(port))
    view = memoryview(bytearray(b"\1" * _BUFFER))  # touched now, not while timing
    cold, packed = _get(url, view)
    body = text(packed)
    series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    warm = [_get(url, view)[0] for _ in range(rounds)]

    with collector.lock:
        summaries = collector.store.branch_summaries(time.time())
    keys = [(s.region, s.branch) for s in summaries]
    step = max(1, int(1 / churn_share))
    churn: list[float] = []
    for round_no in range(rounds):
        # A status message per changed branch: the cheapest real way to dirty a branch.
        for region, branch in keys[round_no % step :: step]:
            status = Status(v=1, state="online", session=1, ts=time.time())
            collector.ingestor.handle(topic_for(region, branch, "edge-1", "status"), encode(status))
        churn.append(_get(url, view)[0])
    return ScrapeTimes(
        branches=len(keys),
        series=series,
        bytes=len(body),
        cold_ms=cold,
        warm_ms=statistics.median(warm),
        churn_ms=statistics.median(churn),
        churn_share=churn_share,
    )
