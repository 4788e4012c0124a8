"""The simulator's MQTT edge against a real Mosquitto, watched by a paho subscriber."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from branchwatch.broker import EmbeddedBroker
from branchwatch.config import parse_broker_url
from branchwatch.contract import Event, Status, decode_events, decode_status, parse_topic
from branchwatch.contract.events import IntercomAck
from branchwatch.sim.publisher import SimPublisher, SimSettings
from tests.support import wait_until

pytestmark = pytest.mark.integration


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool
    at: float


@dataclass
class Watcher:
    """A subscriber to ``bw/#`` that records every message (resubscribes on reconnect)."""

    port: int
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        self.client.on_connect = lambda c, *_: c.subscribe("bw/#", qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect("127.0.0.1", self.port)
        self.client.loop_start()
        wait_until(self.client.is_connected, 5, "subscriber connected")

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        received = Received(message.topic, bytes(message.payload), message.retain, time.time())
        with self.lock:
            self.messages.append(received)

    def of_kind(self, kind: str) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if m.topic.endswith("/" + kind)]

    def events(self) -> dict[str, list[Event]]:
        """Events per events topic, in arrival order."""
        out: dict[str, list[Event]] = {}
        for message in self.of_kind("events"):
            out.setdefault(message.topic, []).extend(decode_events(message.payload))
        return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def watcher(mosquitto: EmbeddedBroker) -> Iterator[Watcher]:
    w = Watcher(mosquitto.port)
    yield w
    w.close()


def settings(broker: EmbeddedBroker, **changes: Any) -> SimSettings:
    values: dict[str, Any] = {
        "broker": parse_broker_url(broker.url),
        "branches": 3,
        "regions": ("north", "south"),
        "speed": 600.0,
        "seed": 1,
        "tick": 0.05,
    }
    values.update(changes)
    return SimSettings(**values)


def retained_statuses(port: int, count: int) -> dict[str, Any]:
    """What a new subscriber gets: the retained status of every agent."""
    late = Watcher(port)
    try:
        wait_until(lambda: len(late.of_kind("status")) >= count, 5, f"{count} retained statuses")
        return {m.topic: decode_status(m.payload) for m in late.of_kind("status") if m.retain}
    finally:
        late.close()


EXPECTED_TOPICS = {
    "bw/v1/north/br-0001/edge-1/events",
    "bw/v1/south/br-0002/edge-1/events",
    "bw/v1/north/br-0003/edge-1/events",
}


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_events_in_seq_order_on_agent_topics_status_online_then_offline(
    mosquitto: EmbeddedBroker, watcher: Watcher, protocol: str
) -> None:
    publisher = SimPublisher(settings(mosquitto, mqtt_protocol=protocol))
    stop = threading.Event()
    runner = threading.Thread(target=publisher.run, args=(stop,))
    runner.start()
    try:
        wait_until(
            lambda: (
                len(watcher.events()) == 3 and all(len(e) >= 40 for e in watcher.events().values())
            ),
            15,
            "40 events from each of 3 branches",
        )
    finally:
        stop.set()
        runner.join(10)
    assert not runner.is_alive()

    def offline_seen() -> bool:
        # The broker acknowledged the offline statuses to the publisher; their delivery
        # to our subscriber may still be on its way.
        latest = dict((m.topic, decode_status(m.payload)) for m in watcher.of_kind("status"))
        return len(latest) == 3 and all(s.state == "offline" for s in latest.values())

    wait_until(offline_seen, 5, "the offline statuses to reach the subscriber")
    per_topic = watcher.events()
    assert set(per_topic) == EXPECTED_TOPICS
    for events in per_topic.values():
        seqs = [e.seq for e in events]
        assert seqs == list(range(1, len(seqs) + 1)), "QoS 1 on one connection: in order, none lost"
    for message in watcher.of_kind("events"):
        assert not message.retain
        assert max(e.ts for e in decode_events(message.payload)) <= message.at, "ts never ahead"
    batches = [m for m in watcher.of_kind("events") if m.payload.startswith(b"[")]
    assert batches, "the opening's events of one tick arrive as one array"

    statuses = [(m.topic, decode_status(m.payload)) for m in watcher.of_kind("status")]
    first = {topic: status for topic, status in reversed(statuses)}
    last = dict(statuses)
    assert set(first) == {t.replace("/events", "/status") for t in EXPECTED_TOPICS}
    for topic, status in first.items():
        assert status.state == "online"
        assert status.session == publisher.session
        assert status.version and status.spool is not None and status.spool.depth == 0
        assert {"queue-1", "intercom-1", "pad-c1"} <= set(status.devices)
        assert all(d.link == "up" for d in status.devices.values())
        assert last[topic].state == "offline" and last[topic].session == status.session

    retained = retained_statuses(mosquitto.port, 3)
    assert {s.state for s in retained.values()} == {"offline"}
    assert {s.session for s in retained.values()} == {publisher.session}


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def test_replay_republishes_from_seq_and_bad_commands_are_counted(
    mosquitto: EmbeddedBroker, watcher: Watcher
) -> None:
    clock = FakeClock(time.time() - 600)  # the simulated past: every ts is behind now
    publisher = SimPublisher(settings(mosquitto, branches=2, speed=60.0), clock=clock)
    publisher.start()
    try:
        wait_until(publisher.connected.is_set, 5, "publisher connected")
        clock.now += 40  # 40 min of simulated time
        sent = publisher.tick()
        topic = "bw/v1/north/br-0001/edge-1/events"
        wait_until(lambda: sum(len(e) for e in watcher.events().values()) == sent, 5, "all sent")
        last_seq = watcher.events()[topic][-1].seq
        assert last_seq > 20
        before = len(watcher.of_kind("events"))

        commander = Watcher(mosquitto.port)
        cmd = "bw/v1/north/br-0001/edge-1/cmd"
        commander.client.publish(cmd, b'{"v":1,"type":"replay","from_seq":7}', qos=1)
        commander.client.publish(cmd, b'{"v":1,"type":"explode"}', qos=1)
        commander.client.publish(cmd, b"\xff not json", qos=1)
        commander.client.publish(
            "bw/v1/west/br-0404/edge-1/cmd", b'{"v":1,"type":"replay","from_seq":1}', qos=1
        )
        commander.client.publish(cmd, b'{"v":1,"type":"replay","from_seq":100000}', qos=1)

        def replayed() -> list[int]:
            publisher.tick()  # the clock stands still: only replays are published
            again = watcher.of_kind("events")[before:]
            return [e.seq for m in again for e in decode_events(m.payload)]

        wait_until(lambda: publisher.stats.bad_commands == 3, 5, "3 bad commands counted")
        wait_until(lambda: len(replayed()) >= last_seq - 6, 5, "the replay")
        assert replayed() == list(range(7, last_seq + 1))
        assert {m.topic for m in watcher.of_kind("events")[before:]} == {topic}
        assert publisher.stats.replayed == last_seq - 6

        # A floor notice is logged and acknowledged from the post's intercom.
        commander.client.publish(
            cmd, b'{"v":1,"type":"notify","id":"n-1","position":3,"text":"post 1 empty"}', qos=1
        )
        wait_until(lambda: publisher.tick() >= 0 and publisher.stats.notices == 1, 5, "notice")
        clock.now += 2  # 2 min of simulated time: the director answers within that

        def ack() -> list[IntercomAck]:
            publisher.tick()
            events = watcher.events()[topic]
            return [e for e in events if isinstance(e, IntercomAck) and e.notice == "n-1"]

        acks = wait_until(ack, 5, "intercom ack of the notice")
        assert acks[0].position == 3

        # The HA twin's copy of the same notice: not shown, not answered again.
        commander.client.publish(
            cmd, b'{"v":1,"type":"notify","id":"n-1","position":3,"text":"post 1 empty"}', qos=1
        )
        wait_until(lambda: publisher.tick() >= 0 and publisher.stats.notice_repeats == 1, 5, "2nd")
        clock.now += 2
        publisher.tick()
        assert publisher.stats.notices == 1
        assert len(ack()) == 1
        commander.close()
    finally:
        publisher.stop()


def test_reconnects_after_a_broker_restart_with_a_new_session(
    mosquitto: EmbeddedBroker, watcher: Watcher
) -> None:
    publisher = SimPublisher(settings(mosquitto, branches=1, speed=300.0))
    stop = threading.Event()
    runner = threading.Thread(target=publisher.run, args=(stop,))
    runner.start()
    try:
        wait_until(lambda: publisher.stats.connects == 1 and watcher.events(), 5, "first events")
        first_session = publisher.session
        mosquitto.restart()
        wait_until(lambda: publisher.stats.connects == 2, 10, "reconnect (backoff ≥ 1 s)")
        assert publisher.session == first_session + 1

        def newest_status() -> Status:
            return decode_status(watcher.of_kind("status")[-1].payload)

        wait_until(lambda: newest_status().session == first_session + 1, 5, "new online status")
        assert newest_status().state == "online"
        seen = max(e.seq for e in watcher.events()["bw/v1/north/br-0001/edge-1/events"])
        wait_until(
            lambda: (
                max(e.seq for e in watcher.events()["bw/v1/north/br-0001/edge-1/events"]) > seen + 5
            ),
            10,
            "events after the restart",
        )
    finally:
        stop.set()
        runner.join(10)
    assert publisher.stats.bad_commands == 0


def test_cli_stops_on_sigterm_within_5_s_leaving_offline_statuses(
    mosquitto: EmbeddedBroker, watcher: Watcher
) -> None:
    argv = [
        sys.executable, "-m", "branchwatch", "simulate", "--broker", mosquitto.url,
        "--branches", "2", "--speed", "120", "--seed", "3", "--regions", "east",
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: len(watcher.events()) == 2, 10, "events of both branches")
        assert set(watcher.events()) == {
            "bw/v1/east/br-0001/edge-1/events",
            "bw/v1/east/br-0002/edge-1/events",
        }
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
        assert time.monotonic() - started < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stdout is not None
    log = proc.stdout.read().decode()
    assert "seed 3" in log and "SIGTERM" in log
    retained = retained_statuses(mosquitto.port, 2)
    assert {parse_topic(t).branch for t in retained} == {"br-0001", "br-0002"}
    assert {s.state for s in retained.values()} == {"offline"}


def test_cli_rejects_bad_arguments_clearly() -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "branchwatch", "simulate", *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)

    for args, message in [
        (("--speed", "0"), "the speed must be greater than 0"),
        (("--branches", "0"), "the number of branches must be within 1..100000"),
        (("--regions", "North,south"), "region 'North' is not a valid id"),
        (("--broker", "http://localhost"), "scheme must be mqtt:// or mqtts://"),
        (("--start-hour", "24"), "the start hour must be below 24"),
        (("--mqtt-protocol", "4"), "invalid choice"),
    ]:
        result = run(*args)
        assert result.returncode == 2
        assert message in result.stderr, result.stderr
    usage = run("--help")
    assert usage.returncode == 0
    for option in ("--broker", "--branches", "--regions", "--speed", "--seed", "--duration"):
        assert option in usage.stdout
    assert "--start-hour" in usage.stdout and "--mqtt-protocol" in usage.stdout
