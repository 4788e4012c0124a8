"""What the collector's HTTP server refuses or cuts off is counted, by reason, and the
connections open are a gauge: every case through a real socket on a real server."""

from __future__ import annotations

import contextlib
import select
import socket
from pathlib import Path
from typing import Final

import pytest

from collector.config import HttpConfig
from collector.http import CollectorHttpServer
from collector.httpserver import MAX_HEAD_BYTES, MAX_REQUEST_LINE, REFUSAL_REASONS
from tests.integration.httpkit import (
    Pki,
    exchange,
    filled_store,
    get,
    is_closed,
    read_to_close,
    serving,
)
from tests.support import parse_metrics, sample, wait_until

pytestmark = pytest.mark.integration

REFUSED: Final = "branchwatch_collector_http_connections_refused_total"
OPEN: Final = "branchwatch_collector_http_connections"
SCRAPE: Final = b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"


def refusals(server: CollectorHttpServer) -> dict[str, float]:
    """The refusal counter by reason, as the collector renders it (every reason present)."""
    samples = parse_metrics(server.api.metrics.render().decode())
    found = {reason: sample(samples, REFUSED, reason=reason) for reason in REFUSAL_REASONS}
    assert None not in found.values(), found
    return {reason: value for reason, value in found.items() if value is not None}


def only(**counts: float) -> dict[str, float]:
    """Every reason at 0 but those given."""
    return {reason: counts.get(reason, 0.0) for reason in REFUSAL_REASONS}


def test_evictions_at_the_cap_are_counted_and_the_gauge_shows_the_house() -> None:
    cap = 5
    config = HttpConfig(max_connections=cap, read_header_timeout_seconds=60)
    with serving(config) as server:
        idle = [socket.create_connection(server.server_address) for _ in range(cap + 2)]
        try:
            wait_until(lambda: is_closed(idle[0]) and is_closed(idle[1]), 5, "two evictions")
            assert refusals(server) == only(cap_evicted=2)
            status, _, body = get(server, "/metrics")  # full house: it evicts one more
            assert status == 200
            samples = parse_metrics(body.decode())
            assert sample(samples, OPEN) == cap  # four idle and the scrape itself
            assert sample(samples, REFUSED, reason="cap_evicted") == 3
        finally:
            for sock in idle:
                sock.close()
        wait_until(lambda: server.open_connections == 0, 5, "every connection closed")
        assert sample(parse_metrics(get(server, "/metrics")[2].decode()), OPEN) == 1


def test_a_full_house_of_stuck_answers_refuses_and_then_times_them_out() -> None:
    """Two workers stuck sending scrapes nobody reads fill a house of two: a third
    connection is refused; the write timeout then cuts both stuck answers off."""
    config = HttpConfig(max_connections=2, write_timeout_seconds=1.0)
    with serving(config, filled_store(600)) as server:
        stuck = []
        for _ in range(2):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # no room for 8 MB
            sock.connect(server.server_address)
            sock.sendall(SCRAPE)
            stuck.append(sock)
        try:
            wait_until(
                lambda: len(select.select(stuck, [], [], 0)[0]) == len(stuck),
                10,
                "both answers begun",
            )
            with socket.create_connection(server.server_address, timeout=5) as third:
                third.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
                with contextlib.suppress(ConnectionResetError):  # or reset: closed unread
                    assert third.recv(100) == b""  # closed unanswered
            assert refusals(server)["cap_refused"] == 1
            wait_until(lambda: server.open_connections == 0, 10, "the stuck answers cut off")
            assert refusals(server) == only(cap_refused=1, write_timeout=2)
        finally:
            for sock in stuck:
                sock.close()


def test_slow_heads_are_counted_but_an_idle_kept_alive_connection_is_not() -> None:
    config = HttpConfig(read_header_timeout_seconds=1.0, idle_timeout_seconds=1.0)
    with serving(config) as server:
        silent = socket.create_connection(server.server_address, timeout=5)
        drip = socket.create_connection(server.server_address, timeout=5)
        drip.sendall(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
        kept = socket.create_connection(server.server_address, timeout=5)
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            # Answered, then closed after its idle timeout: served, not refused.
            assert read_to_close(kept).startswith(b"HTTP/1.1 200 ")
            assert read_to_close(drip).startswith(b"HTTP/1.1 408 ")
            assert silent.recv(1) == b""
        finally:
            for sock in (silent, drip, kept):
                sock.close()
        wait_until(lambda: server.open_connections == 0, 5, "every connection closed")
        assert refusals(server) == only(header_timeout=2)


def test_oversized_and_unparsable_requests_are_counted() -> None:
    with serving(HttpConfig()) as server:
        address = server.server_address
        too_long = b"GET /" + b"a" * MAX_REQUEST_LINE + b" HTTP/1.1\r\n\r\n"
        assert exchange(address, too_long).startswith(b"HTTP/1.1 414 ")
        line = b"X-Fill: " + b"x" * 90 + b"\r\n"
        too_big = b"GET / HTTP/1.1\r\n" + line * (MAX_HEAD_BYTES // len(line) + 1) + b"\r\n"
        assert exchange(address, too_big).startswith(b"HTTP/1.1 431 ")
        assert exchange(address, b"GET / x HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400 ")
        posted = exchange(address, b"POST /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert posted.startswith(b"HTTP/1.1 501 ")
        assert get(server, "/no/such/page")[0] == 404  # an answer, not a refusal
        assert refusals(server) == only(too_large=2, bad_request=2)


def test_a_failed_tls_handshake_is_counted(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    cert, key = pki.server()
    with serving(HttpConfig(tls_cert_file=str(cert), tls_key_file=str(key))) as server:
        try:
            plain = exchange(server.server_address, b"GET /healthz HTTP/1.1\r\n\r\n")
        except ConnectionResetError:  # closed with the request unread
            plain = b""
        assert not plain.startswith(b"HTTP/")
        assert refusals(server) == only(tls_failed=1)
