"""Ingest against its ceilings, same run: ``python -m bench.ingest_paths`` (issue 11).

One Mosquitto; one seeded simulator load (2,000 branches, 100,000 single-event
messages by default), pre-encoded and written by ``bench.mqttload``'s raw
publisher, which outpaces every consumer. Each consumer (bench.consumers) is
measured twice:

- **live**: subscribed first, then the publisher writes at a fixed rate
  (``--live-rate``, above what any consumer takes): messages stream in while
  the consumer works, and what it cannot take at once waits in the broker;
- **drain**: the consumer's persistent session is created, it disconnects, the
  whole load is queued by the broker, and it reconnects and drains it.

The consumers: ``mosquitto_sub`` (C, QoS 1), a bare paho subscriber that only
counts, and the collector, each in MQTT 3.1.1 and 5. With ``--batches`` the
load is each branch's day as arrays of up to 500 events (an agent catching up)
and the collector's rate is counted in events applied.

Exits 1 when a target is missed: collector ≥ 0.9x bare paho of the same
protocol (live and drain), and with ``--batches`` ≥ 100,000 events/s applied.
The ratio to mosquitto_sub is printed beside them (the 0.7x goal of issue 11).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.consumers import Counter, Mode, MosquittoSub, Timing
from bench.mqttload import Publisher, batches, publish_packets, single_events
from branchwatch.broker import EmbeddedBroker
from branchwatch.contract import topic_for
from branchwatch.mqttconfig import MqttProtocol

PAHO_RATIO_TARGET = 0.9
MOSQUITTO_RATIO_GOAL = 0.7
BATCH_EVENTS_TARGET = 100_000.0
PROTOCOLS: tuple[MqttProtocol, ...] = ("3.1.1", "5")


@dataclass
class Result:
    consumer: str  # mosquitto_sub, paho, collector
    protocol: MqttProtocol
    mode: Mode
    timing: Timing
    offered: float  # the publisher's rate, messages/s (drain: queued before)


class Bench:
    def __init__(self, packets: Path, total: int, live_rate: float,
                 profile_dir: Path | None) -> None:  # fmt: skip
        self.broker = EmbeddedBroker("mosquitto", persistent=False)
        self.packets = packets
        self.total = total
        self.live_rate = live_rate
        self.profile_dir = profile_dir
        self._run = 0

    def _publisher(self, rate: float) -> Publisher:
        self._run += 1
        return Publisher(
            self.broker.host, self.broker.port, self.packets, rate, f"bench-pub-{self._run}"
        )

    def run(self, consumer: str, protocol: MqttProtocol, mode: Mode) -> Result:
        # A broker of its own for each run: a persistent session left by an earlier run
        # would queue this run's load too (more work for the broker, stale messages).
        with EmbeddedBroker("mosquitto", persistent=False) as self.broker:
            if consumer == "mosquitto_sub":
                return self.mosquitto(protocol, mode)
            return self.python(consumer, protocol, mode)

    def python(self, kind: str, protocol: MqttProtocol, mode: Mode) -> Result:
        argv = [sys.executable, "-m", "bench.consumers", kind, "--broker", self.broker.url,
                "--protocol", protocol, "--mode", mode, "--total", str(self.total)]  # fmt: skip
        if self.profile_dir is not None and kind.startswith("collector"):
            name = f"{kind}-{protocol}-{mode}.prof"
            argv += ["--profile", str(self.profile_dir / name)]
        child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert child.stdin is not None and child.stdout is not None
        try:
            line = child.stdout.readline().strip()
            if line not in ("ready", "primed"):
                raise RuntimeError(f"{kind} {protocol} {mode}: said {line!r}")
            published = self._publisher(0.0 if mode == "drain" else self.live_rate)
            if mode == "drain":
                done = published.wait()
                child.stdin.write("go\n")
                child.stdin.flush()
            else:
                done = None
            result = json.loads(child.stdout.readline())
            if done is None:
                done = published.wait()
            child.wait(30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        return Result(kind, protocol, mode, Timing(**result), done.rate)

    def mosquitto(self, protocol: MqttProtocol, mode: Mode) -> Result:
        sub = MosquittoSub(self.broker.url, protocol, f"bench-mosq-{protocol}-{mode}")
        sub.prime()
        try:
            if mode == "drain":
                done = self._publisher(0.0).wait()
                counter = sub.start(self.total)
            else:
                counter = sub.start(self.total)
                self._probe(counter)
                published = self._publisher(self.live_rate)
            if not counter.done.wait(600):
                raise RuntimeError(f"mosquitto_sub got {counter.count} of {counter.total}")
            if mode == "live":
                done = published.wait()
        finally:
            sub.stop()
        return Result("mosquitto_sub", protocol, mode, counter.timing(), done.rate)

    def _probe(self, counter: Counter) -> None:
        """Wait until mosquitto_sub receives: probe messages, counted and not timed."""
        client = paho.Client(CallbackAPIVersion.VERSION2)
        client.connect(self.broker.host, self.broker.port)
        client.loop_start()
        topic = topic_for("bench", "probe", "probe", "events")
        sent = 0
        try:
            while not counter.count:
                client.publish(topic, b"probe", qos=1).wait_for_publish(5)
                sent += 1
                deadline = time.monotonic() + 0.2
                while not counter.count and time.monotonic() < deadline:
                    time.sleep(0.005)
                if sent > 100:
                    raise RuntimeError("mosquitto_sub receives nothing")
            deadline = time.monotonic() + 10
            while counter.count < sent and time.monotonic() < deadline:
                time.sleep(0.005)
        finally:
            client.disconnect()
            client.loop_stop()
        counter.skip = sent
        counter.total = sent + self.total


def machine() -> str:
    load = os.getloadavg()
    return (f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, "
            f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")  # fmt: skip


def medians(results: list[Result]) -> list[Result]:
    """Per consumer, protocol and mode, the round with the median rate."""
    groups: dict[tuple[str, str, str], list[Result]] = {}
    for r in results:
        groups.setdefault((r.consumer, r.protocol, r.mode), []).append(r)
    return [sorted(g, key=lambda r: r.timing.rate)[len(g) // 2] for g in groups.values()]


def report(results: list[Result], events_per_message: float) -> bool:
    """Print the table; True when every target is met."""
    by = {(r.consumer, r.protocol, r.mode): r for r in results}
    unit = "events/s" if events_per_message != 1 else "msg/s"
    print(f"\n| consumer | MQTT | mode | {unit} | × bare paho | × mosquitto_sub "
          "| consumer's CPU µs/msg |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    ok = True
    for r in results:
        rate = r.timing.rate * events_per_message
        paho_ = by.get(("paho", r.protocol, r.mode))
        mosq = by.get(("mosquitto_sub", r.protocol, r.mode))
        x_paho = r.timing.rate / paho_.timing.rate if paho_ else float("nan")
        x_mosq = r.timing.rate / mosq.timing.rate if mosq else float("nan")
        print(f"| {r.consumer} | {r.protocol} | {r.mode} | {rate:,.0f} | {x_paho:.2f} | "
              f"{x_mosq:.2f} | {r.timing.cpu_us:.1f} |")  # fmt: skip
        if r.consumer == "collector":  # collector-paho: for comparison only
            if events_per_message == 1 and paho_ and x_paho < PAHO_RATIO_TARGET:
                ok = False
            if events_per_message != 1 and rate < BATCH_EVENTS_TARGET:
                ok = False
    offered = [r.offered for r in results if r.mode == "live"]
    if offered:
        print(f"\nlive publisher: {min(offered):,.0f}–{max(offered):,.0f} msg/s offered")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_paths", description=__doc__)
    parser.add_argument("--branches", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--live-rate", type=float, default=100_000.0, help="msg/s offered")
    parser.add_argument("--batches", action="store_true", help="arrays of up to 500 events")
    parser.add_argument("--consumers", default="mosquitto_sub,paho,collector-paho,collector")
    parser.add_argument("--rounds", type=int, default=3, help="the median of N rounds")
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    parser.add_argument("--modes", default="live,drain")
    parser.add_argument("--profile", type=Path, help="write cProfile stats of the collector here")
    args = parser.parse_args(argv)

    if args.batches:
        branches = min(args.branches, 300)
        messages, events = batches(branches, args.seed)
        print(f"load: {branches} branches' day, {events:,} events in {len(messages):,} arrays")
    else:
        messages = single_events(args.branches, args.messages, args.seed)
        events = len(messages)
        print(f"load: {len(messages):,} single-event messages over {args.branches} branches")
    per_message = events / len(messages)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}", flush=True)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        packets = Path(tmp) / "load.bin"
        packets.write_bytes(publish_packets(messages))
        bench = Bench(packets, len(messages), args.live_rate, args.profile)
        # Rounds interleave the consumers: a neighbour's load on this shared machine
        # then falls on all of them alike, and the median drops a disturbed round.
        for round_no in range(1, args.rounds + 1):
            for protocol in args.protocols.split(","):
                for mode in args.modes.split(","):
                    for consumer in args.consumers.split(","):
                        result = bench.run(consumer, protocol, mode)
                        results.append(result)
                        rate = result.timing.rate * per_message
                        print(f"round {round_no}: {consumer} {protocol} {mode}: "
                              f"{rate:,.0f}/s", flush=True)  # fmt: skip
    ok = report(medians(results), per_message)
    print(f"machine after: {machine()}")
    print("\nresult:", "pass" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
