"""Kept-alive requests are answered at once, not after the client's delayed ACK.

The server writes a response's head and body separately; without TCP_NODELAY the body
waits for the client to acknowledge the head, which Linux delays by ~40 ms on a
connection that is already open. Prometheus keeps its scrape connections alive, and the
wall's API polls do too.
"""

from __future__ import annotations

import http.client
import statistics
import time

from collector.config import HttpConfig
from tests.integration.httpkit import serving

REQUESTS = 15
# A delayed ACK costs ~40 ms per request on Linux; an answer from memory costs ~1 ms.
DELAYED_ACK_FLOOR = 0.030


def test_kept_alive_requests_do_not_wait_for_a_delayed_ack() -> None:
    with serving(HttpConfig()) as server:
        host, port = server.server_address[:2]
        conn = http.client.HTTPConnection(str(host), int(port), timeout=10)
        try:
            times = []
            for path in ["/metrics", "/api/v1/branches"] * REQUESTS:
                started = time.perf_counter()
                conn.request("GET", path)
                response = conn.getresponse()
                body = response.read()
                times.append(time.perf_counter() - started)
                assert response.status == 200 and body
                assert not response.will_close  # one connection for every request
        finally:
            conn.close()
    # The first request of a connection is never delayed: judge the kept-alive ones.
    assert statistics.median(times[1:]) < DELAYED_ACK_FLOOR, times
