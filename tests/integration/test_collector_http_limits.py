"""Slow, idle, oversized and numerous HTTP clients against the collector's real server.

The promise: 500 idle or slow-drip connections do not delay a ``/metrics`` scrape by
more than 100 ms; a slow client is dropped after ``read_header_timeout_seconds``; heads
over the limits get 414/431; past ``max_connections`` a scrape still gets in.
"""

from __future__ import annotations

import resource
import select
import socket
import statistics
import threading
import time
from pathlib import Path
from typing import Final

import pytest

from branchwatch.broker import EmbeddedBroker
from branchwatch.contract import encode, topic_for
from collector.config import HttpConfig
from collector.httpserver import MAX_HEAD_BYTES, MAX_REQUEST_LINE, WORKERS
from tests.integration import scenario
from tests.integration.httpkit import (
    Pki,
    exchange,
    filled_store,
    get,
    is_closed,
    read_to_close,
    serving,
)
from tests.support import CollectorProcess, FakeAgent, wait_until

pytestmark = pytest.mark.integration

CROWD: Final = 500
BRANCHES: Final = 100
SCRAPES: Final = 9  # per median
DELAY_BUDGET: Final = 0.100  # seconds a crowd may add to a scrape
DRIP_EVERY: Final = 0.2  # seconds between a slow client's bytes
SHORT: Final = HttpConfig(read_header_timeout_seconds=1.0, idle_timeout_seconds=1.0)
SCRAPE: Final = b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
DRIP_START: Final = b"GET /metrics HTTP/1.1\r\nHost: test\r\nX-Drip: "


def scrape_seconds(address: tuple[str, int]) -> float:
    """One whole /metrics scrape on a new connection, as Prometheus' first scrape makes it."""
    start = time.perf_counter()
    answer = exchange(address, SCRAPE)
    elapsed = time.perf_counter() - start
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:100]
    return elapsed


def test_500_idle_or_dripping_connections_do_not_delay_a_scrape(
    mosquitto: EmbeddedBroker, tmp_path: Path
) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2 * CROWD:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * CROWD), hard))
    config = tmp_path / "collector.toml"
    # Long enough that nobody of the crowd is dropped while the scrapes are timed.
    config.write_text("[http]\nread_header_timeout_seconds = 120.0\n")
    collector = CollectorProcess(
        mosquitto.url, tmp_path, "http-crowd", extra=["--config", str(config)]
    ).start()
    agent = FakeAgent(mosquitto.port, scenario.REGION, scenario.BRANCH, scenario.AGENT)
    crowd: list[socket.socket] = []
    stop = threading.Event()
    try:
        # A scrape of some size (~1 MB): the crowd must not slow the sending either.
        day = encode(scenario.events(1, scenario.OPEN_PART))
        for n in range(BRANCHES):
            agent.publish_raw(
                topic_for(scenario.REGION, f"br-{n:04d}", scenario.AGENT, "events"), day
            )
        wait_until(
            lambda: len(collector.api("/branches")["branches"]) == BRANCHES,
            20,
            f"{BRANCHES} branches on /metrics",
        )
        address = ("127.0.0.1", collector.port)
        quiet = [scrape_seconds(address) for _ in range(SCRAPES)]
        crowd = [socket.create_connection(address, timeout=10) for _ in range(CROWD)]
        drippers = crowd[::2]  # the other half sends nothing at all
        for sock in drippers:
            sock.sendall(DRIP_START)

        def drip() -> None:
            while not stop.wait(DRIP_EVERY):
                for sock in drippers:
                    sock.sendall(b"a")

        dripping = threading.Thread(target=drip, daemon=True)
        dripping.start()
        # Connections are accepted in order: once this is answered, the crowd is all in.
        scrape_seconds(address)
        crowded = [scrape_seconds(address) for _ in range(SCRAPES)]
        assert dripping.is_alive()  # every drip went through: nobody was dropped
        assert not any(is_closed(sock) for sock in crowd)
        delay = statistics.median(crowded) - statistics.median(quiet)
        figures = f"median scrape {statistics.median(quiet) * 1000:.1f} ms alone, " + (
            f"{statistics.median(crowded) * 1000:.1f} ms with {CROWD} connections open"
        )
        print(figures)
        assert delay < DELAY_BUDGET, figures
    finally:
        stop.set()
        for sock in crowd:
            sock.close()
        agent.close()
        collector.kill()


def test_slow_and_idle_clients_are_dropped() -> None:
    with serving(SHORT) as server:
        start = time.monotonic()
        idle = socket.create_connection(server.server_address)
        drip = socket.create_connection(server.server_address, timeout=0.1)
        drip.sendall(DRIP_START)
        answer = b""
        while time.monotonic() - start < 10:
            try:
                drip.sendall(b"a")
                chunk = drip.recv(4096)
            except TimeoutError:
                continue
            except OSError:  # the server is gone
                break
            if not chunk:
                break
            answer += chunk
        dropped_after = time.monotonic() - start
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert 0.9 < dropped_after < 4.0
        idle.settimeout(5)
        assert idle.recv(1) == b""  # no answer: it never asked anything
        assert time.monotonic() - start < 4.0
        drip.close()
        idle.close()


def test_a_kept_alive_connection_is_closed_after_the_idle_timeout() -> None:
    with serving(SHORT) as server, socket.create_connection(server.server_address) as sock:
        asked = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        answer = read_to_close(sock)  # the answer in milliseconds, the close a second later
        assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"\r\n\r\nok\n")
        assert 0.9 < time.monotonic() - asked < 4.0


def test_clients_that_read_nothing_cannot_hold_the_workers() -> None:
    """Every worker stuck sending an 8 MB scrape to a client that never reads: the write
    timeout frees them, and the next request is answered."""
    config = HttpConfig(write_timeout_seconds=1.0)
    with serving(config, filled_store(600)) as server:
        stuck = []
        for _ in range(WORKERS):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # no room to hide 8 MB
            sock.connect(server.server_address)
            sock.sendall(SCRAPE)
            stuck.append(sock)
        try:
            # Every stuck request taken up by a worker (its answer has begun) before the
            # next one asks: a request still queued would be answered in full later.
            wait_until(
                lambda: len(select.select(stuck, [], [], 0)[0]) == len(stuck),
                10,
                "every worker sending a scrape",
            )
            start = time.monotonic()
            assert get(server, "/healthz")[0] == 200
            assert time.monotonic() - start < 6.0
            # The stuck answers end by the write timeout, not by being read: only then read.
            wait_until(lambda: server.open_connections == 0, 10, "the stuck answers cut off")
            for sock in stuck:  # each was cut off: less than the whole answer, then the end
                sock.settimeout(10)
                try:
                    received = len(read_to_close(sock))
                except ConnectionResetError:
                    received = 0
                assert received < 8_000_000
        finally:
            for sock in stuck:
                sock.close()


def test_a_tls_handshake_must_not_dawdle(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    cert, key = pki.server()
    tls = HttpConfig(tls_cert_file=str(cert), tls_key_file=str(key), read_header_timeout_seconds=1)
    with serving(tls) as server, socket.create_connection(server.server_address) as sock:
        start = time.monotonic()
        sock.sendall(b"\x16\x03\x01")  # the start of a ClientHello, and then nothing
        sock.settimeout(5)
        assert read_to_close(sock) == b""
        assert 0.9 < time.monotonic() - start < 4.0


def test_oversized_heads_are_refused_and_a_large_one_within_limits_is_served() -> None:
    def fill(size: int) -> bytes:
        line = b"X-Fill: " + b"x" * 90 + b"\r\n"
        return line * (size // len(line) + 1)

    with serving(HttpConfig()) as server:
        address = server.server_address
        long_line = b"GET /" + b"a" * MAX_REQUEST_LINE + b" HTTP/1.1\r\n\r\n"
        assert exchange(address, long_line).startswith(b"HTTP/1.1 414 ")
        big = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fill(MAX_HEAD_BYTES) + b"\r\n"
        assert exchange(address, big).startswith(b"HTTP/1.1 431 ")
        within = b"GET /healthz HTTP/1.1\r\nConnection: close\r\n" + fill(MAX_HEAD_BYTES // 2)
        assert exchange(address, within + b"\r\n").startswith(b"HTTP/1.1 200 ")


def test_kept_alive_pipelined_requests_are_answered_in_order_and_a_body_closes() -> None:
    with serving(HttpConfig()) as server:
        address = server.server_address
        two = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /readyz HTTP/1.0\r\n\r\n"
        answer = exchange(address, two)
        assert answer.count(b"HTTP/1.1 200 OK") == 2
        assert answer.endswith(b"ready\n")
        # The collector reads no bodies: the body is never taken for the next request.
        with_body = (
            b"GET /healthz HTTP/1.1\r\nContent-Length: 25\r\n\r\nGET /readyz HTTP/1.1\r\n\r\n"
        )
        answer = exchange(address, with_body)
        assert answer.count(b"HTTP/1.1 ") == 1 and answer.endswith(b"ok\n")


def test_a_full_house_makes_room_for_a_scrape() -> None:
    cap = 20
    config = HttpConfig(max_connections=cap, read_header_timeout_seconds=60)
    with serving(config) as server:
        idle = [socket.create_connection(server.server_address) for _ in range(2 * cap + 10)]
        try:
            assert get(server, "/metrics")[0] == 200
            # Each connection past the cap replaced the one that had waited longest.
            evicted = len(idle) - cap + 1  # +1: the scrape's own
            wait_until(lambda: all(is_closed(sock) for sock in idle[:evicted]), 5, "evictions")
            assert not any(is_closed(sock) for sock in idle[evicted:])
            assert server.open_connections <= cap
        finally:
            for sock in idle:
                sock.close()


def test_a_flood_at_the_cap_does_not_cut_a_kept_alive_scrape_connection() -> None:
    """Prometheus keeps its scrape connection alive between scrapes: at the cap, the new
    connections of a flood replace each other, not the scraper's idle one."""
    cap = 10
    config = HttpConfig(max_connections=cap, read_header_timeout_seconds=60)
    keep = b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n"
    with serving(config) as server:
        scraper = socket.create_connection(server.server_address, timeout=10)
        flood: list[socket.socket] = []
        try:
            scraper.sendall(keep)
            first = read_answer(scraper)
            assert first.startswith(b"HTTP/1.1 200 OK"), first[:80]
            flood = [socket.create_connection(server.server_address) for _ in range(3 * cap)]
            # Every connection past the cap replaced a flood connection that waited longest.
            evicted = len(flood) - (cap - 1)
            wait_until(lambda: all(is_closed(s) for s in flood[:evicted]), 5, "evictions")
            scraper.setblocking(True)
            scraper.sendall(keep)
            assert read_answer(scraper).startswith(b"HTTP/1.1 200 OK")
        finally:
            for sock in [scraper, *flood]:
                sock.close()


def read_answer(sock: socket.socket) -> bytes:
    """One kept-alive answer: its head, then as many body bytes as Content-Length says."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data[:80]!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(
        line.split(b":", 1)[1] for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    ))  # fmt: skip
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed mid-answer"
        body += chunk
    return head + b"\r\n\r\n" + body
