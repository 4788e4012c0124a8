"""The consumers ``bench.ingest_paths`` compares, each in a process of its own.

- ``mosquitto_sub`` (Mosquitto's C client, QoS 1), its output lines counted;
- a bare paho subscriber that only counts (the ceiling of a paho consumer);
- the real collector (paho network thread, strict decode, floor model, self-metrics),
  and the same with paho's own receive path (``collector-paho``, as before issue 11).

Every consumer is timed the same way: from the first message received to the
last (``time.monotonic()``, one clock for every process). The Python ones run
as ``python -m bench.consumers KIND`` and speak a line protocol on stdio:
``ready`` once subscribed (live), or ``primed`` once their persistent session
exists and they have disconnected (drain); on ``go`` they reconnect and drain;
a JSON line with the timing last.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from branchwatch.config import parse_broker_url
from branchwatch.contract import subscription_filter
from branchwatch.contract.codec import Payload
from branchwatch.mqttconfig import MqttProtocol
from collector import mqtt
from collector.app import Collector
from collector.config import CollectorConfig, HttpConfig, MqttConfig
from collector.ingest import tune_gc

Mode = Literal["live", "drain"]
FILTER = subscription_filter("events")


@dataclass
class Timing:
    messages: int
    first: float
    last: float
    cpu: float = 0.0  # CPU seconds the consumer's process used from first to last

    @property
    def rate(self) -> float:
        """Messages per second between the first and the last received."""
        span = self.last - self.first
        return (self.messages - 1) / span if span > 0 else float("inf")

    @property
    def cpu_us(self) -> float:
        """CPU microseconds per message: on a shared machine, steadier than the rate."""
        return self.cpu / max(1, self.messages - 1) * 1e6


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Counter:
    """Counts messages to ``total``; notes when the first and the last arrived, and the
    consumer's CPU time then (``cpu_clock``: this process's by default)."""

    def __init__(self, total: int, skip: int = 0,
                 cpu_clock: Callable[[], float] = time.process_time) -> None:  # fmt: skip
        self.total = total
        self.skip = skip  # messages before the load (probes): not timed
        self.cpu_clock = cpu_clock
        self.count = 0
        self.first = self.last = 0.0
        self.cpu_first = self.cpu_last = 0.0
        self.done = threading.Event()

    def add(self, n: int = 1) -> None:
        now = time.monotonic()
        if self.count <= self.skip < self.count + n:
            self.first = now
            self.cpu_first = self.cpu_clock()
        self.count += n
        if self.count >= self.total and not self.done.is_set():
            self.last = now
            self.cpu_last = self.cpu_clock()
            self.done.set()

    def timing(self) -> Timing:
        cpu = self.cpu_last - self.cpu_first
        return Timing(self.count - self.skip, self.first, self.last, cpu)


# mosquitto_sub --------------------------------------------------------------------------


class MosquittoSub:
    """``mosquitto_sub -q 1 -c`` counting output lines; ``probes`` messages come first."""

    def __init__(self, url: str, protocol: MqttProtocol, client_id: str) -> None:
        address = parse_broker_url(url)
        self.argv = ["mosquitto_sub", "-h", address.host, "-p", str(address.port),
                     "-q", "1", "-c", "-i", client_id, "-t", FILTER,
                     "-V", "5" if protocol == "5" else "mqttv311"]  # fmt: skip
        if protocol == "5":
            self.argv += ["-x", "3600"]  # v5: a session that outlives the connection
        self.proc: subprocess.Popen[bytes] | None = None
        self.counter: Counter | None = None

    def prime(self) -> None:
        """Create the persistent session (subscribe, then exit at once)."""
        subprocess.run([*self.argv, "-E"], check=True, timeout=30)

    def start(self, total: int) -> Counter:
        proc = self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE)
        counter = self.counter = Counter(total, cpu_clock=lambda: process_cpu(proc.pid))
        threading.Thread(target=self._read, args=(proc.stdout, counter), daemon=True).start()
        return counter

    @staticmethod
    def _read(stream: IO[bytes] | None, counter: Counter) -> None:
        assert stream is not None
        # Payloads are one-line JSON: a newline per message.
        while chunk := stream.read1(1 << 16):  # type: ignore[attr-defined]
            counter.add(chunk.count(b"\n"))

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


# Python consumers (child side) ---------------------------------------------------------


def _paho_client(client_id: str, protocol: MqttProtocol) -> paho.Client:
    v5 = protocol == "5"
    return paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        clean_session=None if v5 else False,
    )


def _paho_connect(client: paho.Client, url: str, protocol: MqttProtocol) -> None:
    address = parse_broker_url(url)
    properties = None
    if protocol == "5":
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 3600
    client.connect(
        address.host,
        address.port,
        clean_start=False if protocol == "5" else paho.MQTT_CLEAN_START_FIRST_ONLY,
        properties=properties,
    )


def run_paho(url: str, protocol: MqttProtocol, mode: Mode, total: int, say: Callable[[str], None],
             wait_go: Callable[[], None]) -> Timing:  # fmt: skip
    """A bare paho subscriber, QoS 1, that only counts: the ceiling of any paho consumer."""
    client_id = f"bench-paho-{protocol}"
    counter = Counter(total)

    def connect() -> tuple[paho.Client, threading.Event]:
        client = _paho_client(client_id, protocol)
        subscribed = threading.Event()
        client.on_subscribe = lambda *_: subscribed.set()
        client.on_connect = lambda c, *_: c.subscribe(FILTER, qos=1)
        client.on_message = lambda *_: counter.add()
        _paho_connect(client, url, protocol)
        client.loop_start()
        return client, subscribed

    client, subscribed = connect()
    if not subscribed.wait(10):
        raise RuntimeError("bare paho: no SUBACK")
    if mode == "drain":
        client.disconnect()
        client.loop_stop()
        say("primed")
        wait_go()
        client, _ = connect()
    else:
        say("ready")
    finished = counter.done.wait(600)
    client.disconnect()
    client.loop_stop()
    if not finished:
        raise RuntimeError(f"bare paho got {counter.count} of {total}")
    return counter.timing()


def run_collector(url: str, protocol: MqttProtocol, mode: Mode, total: int,
                  say: Callable[[str], None], wait_go: Callable[[], None],
                  profile: str = "", batched: bool = True) -> Timing:  # fmt: skip
    """The real collector, in steady state (every event applied at once, none held for a
    rebuild: these agents never answer a replay); ``batched=False``: with paho's own
    receive path, as before issue 11."""
    mqtt.BATCHED_READS = batched
    tune_gc()  # as `branchwatch collector run` does

    config = CollectorConfig(
        mqtt=MqttConfig(broker=url, client_id=f"bench-collector-{protocol}", protocol=protocol),
        http=HttpConfig(listen="127.0.0.1:0"),
    )
    counter = Counter(total)

    def started() -> Collector:
        collector = Collector(config, rebuild=False)
        handle = collector.ingestor.handle

        def counted(topic: str, payload: Payload) -> None:
            handle(topic, payload)
            counter.add()  # after the apply: the message is in the store

        collector.mqtt._handler = counted
        if profile:
            _profile_thread(collector.mqtt, profile)
        collector.start()
        if not collector.mqtt.ready.wait(10):
            raise RuntimeError("collector did not subscribe")
        return collector

    collector = started()
    if mode == "drain":
        collector.stop()
        say("primed")
        wait_go()
        collector = started()
    else:
        say("ready")
    finished = counter.done.wait(600)
    collector.stop()
    if not finished:
        raise RuntimeError(f"collector handled {counter.count} of {total}")
    # Every message must have been applied, not refused or dropped as a duplicate: a
    # rate of messages thrown away would flatter the collector.
    accepted = collector.metrics.registry.get_sample_value(
        "branchwatch_collector_messages_total", {"result": "accepted"}
    )
    if accepted != total:
        raise RuntimeError(f"collector accepted {accepted} of {total} messages")
    return counter.timing()


def _profile_thread(session: Any, path: str) -> None:
    """cProfile the MQTT network thread (the ingest hot path) into ``path``."""
    run = session._run

    def profiled() -> None:
        profiler = cProfile.Profile()
        profiler.enable()
        try:
            run()
        finally:
            profiler.disable()
            profiler.dump_stats(path)

    session._run = profiled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.consumers")
    parser.add_argument("kind", choices=("paho", "collector", "collector-paho"))
    parser.add_argument("--broker", required=True)
    parser.add_argument("--protocol", choices=("5", "3.1.1"), default="5")
    parser.add_argument("--mode", choices=("live", "drain"), default="live")
    parser.add_argument("--total", type=int, required=True, help="messages to wait for")
    parser.add_argument("--profile", default="", help="collector: cProfile its MQTT thread")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(line, flush=True)

    def wait_go() -> None:
        if sys.stdin.readline().strip() != "go":
            raise SystemExit("expected go")

    if args.kind == "paho":
        timing = run_paho(args.broker, args.protocol, args.mode, args.total, say, wait_go)
    else:
        timing = run_collector(args.broker, args.protocol, args.mode, args.total, say, wait_go,
                               args.profile, batched=args.kind == "collector")  # fmt: skip
    say(json.dumps(timing.__dict__))
    return 0


if __name__ == "__main__":
    sys.exit(main())
