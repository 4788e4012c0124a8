"""``make bench``: collector ingest vs the broker's Python ceiling, and scrape time.

Reproducible: a seeded simulator load, a Mosquitto of our own on a free port.
Prints a report and exits non-zero if a target of issue 2 is missed:
ingest >= 0.5x a bare paho subscriber (single-event messages) and /metrics of
2,000 branches <= 100 ms.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
import time

from bench.ingest import Message, bare_drain, collector_drain
from bench.scrape import scrape_times
from branchwatch.broker import EmbeddedBroker
from branchwatch.contract import encode, topic_for
from branchwatch.sim.generate import generate

INGEST_RATIO_TARGET = 0.5
SCRAPE_MS_TARGET = 100.0


def load(branches: int, messages: int, seed: int) -> list[Message]:
    """``messages`` single-event messages from the simulator, over ``branches`` branches."""
    origin = time.time() - 3600
    stream = generate(branches, seed, sim_seconds=8 * 3600, ts_origin=origin)
    return [
        (topic_for(region, branch, agent, "events"), encode(event))
        for region, branch, agent, event in itertools.islice(stream, messages)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--branches", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    print(f"generating {args.messages} messages over {args.branches} branches …", flush=True)
    messages = load(args.branches, args.messages, args.seed)
    with EmbeddedBroker("mosquitto", persistent=False) as broker:
        print(f"broker: mosquitto on {broker.url}", flush=True)
        bare = bare_drain(broker, messages, timeout=300)
        print(f"bare paho subscriber: {bare.rate:,.0f} msg/s", flush=True)
        ours, collector = collector_drain(broker, messages, timeout=300)
        print(f"collector ingest:     {ours.rate:,.0f} msg/s", flush=True)
        try:
            scrape = scrape_times(collector)
        finally:
            collector.stop()

    ratio = ours.rate / bare.rate
    print()
    print("| measure | value | target |")
    print("|---|---|---|")
    print(f"| bare paho subscriber (counts only) | {bare.rate:,.0f} msg/s | ceiling |")
    print(f"| collector ingest | {ours.rate:,.0f} msg/s | |")
    print(f"| ratio collector / bare | {ratio:.2f} | ≥ {INGEST_RATIO_TARGET} |")
    print(f"| branches / series / bytes | {scrape.branches} / {scrape.series:,} / "
          f"{scrape.bytes:,} | |")  # fmt: skip
    print(f"| /metrics, all branches changed | {scrape.cold_ms:.1f} ms | |")
    print(f"| /metrics, nothing changed (median) | {scrape.warm_ms:.1f} ms | |")
    print(
        f"| /metrics, {scrape.churn_share:.0%} of branches changed (median) "
        f"| {scrape.churn_ms:.1f} ms | ≤ {SCRAPE_MS_TARGET:.0f} ms |"
    )
    failed = ratio < INGEST_RATIO_TARGET or scrape.churn_ms > SCRAPE_MS_TARGET
    print("\nresult:", "FAIL" if failed else "pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
