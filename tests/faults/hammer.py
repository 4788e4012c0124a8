"""Many HTTP clients at once against the collector's API, while Prometheus scrapes.

``python -m tests.faults.hammer HOST PORT CLIENTS SECONDS`` opens CLIENTS
keep-alive connections at once, each asking for the branch list, a branch's
detail and /metrics in turn as fast as it is answered, for SECONDS; then it
prints one JSON object: responses by status, connections the server cut or
refused, requests made. It runs as its own process so that the scrape timed by
:func:`http_hammer` competes with the clients for the collector, not with them
for this process's interpreter.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Final

from tests.faults.report import Outcome
from tests.faults.rig import REGION, Rig
from tests.faults.scenarios import Size, finish

PATHS: Final = ("/api/v1/branches", f"/api/v1/branches/{REGION}/b0001", "/metrics")
SCRAPE_EVERY: Final = 0.5
REFUSED: Final = "branchwatch_collector_http_connections_refused_total"


async def _client(host: str, port: int, deadline: float, tally: Counter[str], n: int) -> None:
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            tally[f"refused ({type(exc).__name__})"] += 1
            await asyncio.sleep(0.1)
            continue
        try:
            while time.monotonic() < deadline:
                path = PATHS[n % len(PATHS)]
                n += 1
                writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                status = head.split(b" ", 2)[1].decode()
                length = next(
                    (int(line.split(b":")[1]) for line in head.split(b"\r\n")
                     if line.lower().startswith(b"content-length:")),
                    0,
                )  # fmt: skip
                await reader.readexactly(length)
                tally[status] += 1
                if b"connection: close" in head.lower():
                    break
        except (OSError, asyncio.IncompleteReadError, IndexError, ValueError) as exc:
            tally[f"cut ({type(exc).__name__})"] += 1
        finally:
            writer.close()


async def _hammer(host: str, port: int, clients: int, seconds: float) -> Counter[str]:
    tally: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    await asyncio.gather(*(_client(host, port, deadline, tally, n) for n in range(clients)))
    return tally


def main(argv: list[str]) -> int:
    host, port, clients, seconds = argv[0], int(argv[1]), int(argv[2]), float(argv[3])
    print(json.dumps(asyncio.run(_hammer(host, port, clients, seconds))), flush=True)
    return 0


def http_hammer(rig: Rig, size: Size) -> Outcome:
    seconds = max(size.outage, 1.5)
    outcome = Outcome(f"{size.clients:,} HTTP clients hammering the API")
    rig.wait(size.steady)
    refused_before = refusals(rig)
    port = rig.http.port
    argv = [sys.executable, "-m", "tests.faults.hammer", "127.0.0.1", str(port),
            str(size.clients), str(seconds)]  # fmt: skip
    scrapes: list[tuple[int, float]] = []
    failed: list[str] = []  # how each failed scrape failed
    done = threading.Event()
    # Prometheus keeps its scrape connection alive between scrapes, and has it before any
    # flood: one scrape first, then the same connection. Like Go's HTTP client, it asks
    # once more on a new connection when the kept one turns out closed before any answer.
    prometheus = [http.client.HTTPConnection("127.0.0.1", port, timeout=10)]
    scraped(prometheus)
    retried: list[str] = []
    hammer = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)

    def scrape() -> None:  # /metrics every half second
        while not done.wait(SCRAPE_EVERY):
            started = time.monotonic()
            status = 0
            for attempt in range(2):
                try:
                    status = scraped(prometheus)
                    break
                except (OSError, http.client.HTTPException) as exc:
                    what = f"{type(exc).__name__} after {time.monotonic() - started:.1f} s"
                    (retried if attempt == 0 else failed).append(what)
                    prometheus[0].close()
                    prometheus[0] = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            scrapes.append((status, time.monotonic() - started))

    scraper = threading.Thread(target=scrape, daemon=True)
    scraper.start()
    out, _ = hammer.communicate(timeout=seconds + 120)
    done.set()
    scraper.join(15)
    prometheus[0].close()
    tally: Counter[str] = Counter(json.loads(out))
    answered = sum(n for status, n in tally.items() if status.isdigit())
    times = sorted(t for _, t in scrapes)
    outcome.figures["clients / seconds"] = f"{size.clients:,} / {seconds:.0f}"
    outcome.figures["responses"] = ", ".join(f"{k} {v:,}" for k, v in sorted(tally.items()))
    outcome.figures["requests answered per second"] = f"{answered / seconds:,.0f}"
    if times:
        outcome.figures["/metrics scrapes meanwhile"] = (
            f"{len(times)}, median {statistics.median(times) * 1000:.0f} ms,"
            f" max {times[-1] * 1000:.0f} ms"
        )
    after = refusals(rig)
    counted = {reason: after[reason] - refused_before.get(reason, 0) for reason in after}
    outcome.figures["connections the collector refused or cut, by reason (its metric)"] = (
        ", ".join(f"{reason} {n:,.0f}" for reason, n in sorted(counted.items()) if n) or "none"
    )
    outcome.seen.append(
        f"metric: {REFUSED} by reason: "
        + ", ".join(f"{reason} +{n:,.0f}" for reason, n in sorted(counted.items()) if n)
    )
    if retried:
        outcome.figures["scrapes whose kept connection was cut (asked again)"] = (
            f"{len(retried)}: {', '.join(retried)}"
        )
    outcome.check(
        "/metrics answered every scrape",
        bool(scrapes) and all(status == 200 for status, _ in scrapes),
        f"{[s for s, _ in scrapes]}; {failed}",
    )
    cuts = sum(n for what, n in tally.items() if what.startswith("cut")) + len(failed + retried)
    outcome.check(
        "the collector counted every connection the clients saw cut",
        sum(counted.values()) >= cuts,
        f"{sum(counted.values()):,.0f} counted, {cuts:,} cut",
    )
    outcome.check(
        "no server error but 503 (busy)",
        not any(k.startswith("5") and k != "503" for k in tally),
        f"{dict(tally)}",
    )
    outcome.check("the collector is alive", rig.collector.alive)
    finish(rig, size, outcome)
    return outcome


def scraped(connection: list[http.client.HTTPConnection]) -> int:
    """One scrape of /metrics on the kept-alive connection; its status."""
    connection[0].request("GET", "/metrics")
    response = connection[0].getresponse()
    response.read()
    return response.status


def refusals(rig: Rig) -> dict[str, float]:
    """The collector's count of HTTP connections refused or cut, by reason."""
    return {
        dict(labels)["reason"]: value
        for (name, labels), value in rig.metrics().items()
        if name == REFUSED
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
