"""End-to-end probes for ``make bench-scale``: publish → visible on a collector's API.

Each region has one probe branch (``probe``) with one agent per broker node
(``via-mq1``…), each starting on its own node. A probe agent publishes a small event
(post 3 staffed, then vacated, by itself) every ``interval`` seconds, QoS 1, keeps
what it sent to answer the collector's ``replay`` (through
:mod:`branchwatch.agentlink`, as every agent does), and behaves as the edge agent does
on a broker list: a lost connection moves it to the next node at once, and a PUBACK
overdue by ``publish_timeout`` cuts the connection first.

A :class:`Poller` per collector asks ``/api/v1/branches/REGION/probe`` over one
keep-alive connection, as fast as it answers with a short pause, and notes when each
probe agent's ``last_seq`` moves: every seq it passes became visible then. With three
probe agents the collector shows a new event every ``interval / 3`` seconds while all
is well, so the longest time without one is the stall that collector sees.
"""

from __future__ import annotations

import http.client
import itertools
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from bench.scale_sim import PubackWatch, cut
from branchwatch.agentlink import read_command, replay_batches
from branchwatch.contract import PositionStaffed, PositionVacated, Replay, encode, topic_for
from branchwatch.errors import ContractError
from branchwatch.failover import BrokerRotation
from branchwatch.sim.retention import SentEvents

log = logging.getLogger("bench.scale_probe")

PROBE_BRANCH: Final = "probe"
PROBE_POST: Final = 3  # not a required post: the probe never starts a floor notice


def probe_agent_id(node: str) -> str:
    return f"via-{node}"


class ProbeAgent:
    """One probe agent: its own user, a broker list starting at its node, its seqs."""

    def __init__(
        self,
        region: str,
        agent: str,
        brokers: list[str],
        password_file: Path,
        interval: float,
        publish_timeout: float,
    ) -> None:
        self.region, self.agent, self.interval = region, agent, interval
        self.publish_timeout = publish_timeout
        self.topic = topic_for(region, PROBE_BRANCH, agent, "events")
        self.cmd_topic = topic_for(region, PROBE_BRANCH, agent, "cmd")
        self.brokers = BrokerRotation(brokers)
        self.published: dict[int, float] = {}  # seq -> wall-clock time handed to paho
        self.connects: list[tuple[float, str]] = []
        self.sent = SentEvents()
        self.watch = PubackWatch()
        self._seq = 0
        self._stop = threading.Event()
        self._connected = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"probe-{region}-{agent}",
            protocol=MQTTProtocolVersion.MQTTv311,
            reconnect_on_failure=False,  # the loop below picks the next broker instead
        )
        user = f"{region}/{PROBE_BRANCH}/{agent}"
        self.client.username_pw_set(user, password_file.read_text().strip())
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_: self._connected.clear()
        self.client.on_message = self._on_message
        self.client.on_publish = lambda _c, _u, mid, _rc, _p: self.watch.acked(mid)
        self._threads = [
            threading.Thread(target=self._connection, name=f"{agent}-mqtt", daemon=True),
            threading.Thread(target=self._publishing, name=f"{agent}-pub", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.client.disconnect()
        for thread in self._threads:
            thread.join(5)

    def _connection(self) -> None:
        while not self._stop.is_set():
            address = self.brokers.address
            try:
                self.client.connect(address.host, address.port, keepalive=10)
            except OSError:
                pass
            else:
                self.client.loop_forever(retry_first_connection=False)
            if self._stop.is_set():
                return
            if self.brokers.failed():  # every node failed since the last wait
                self._stop.wait(1.0)

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            return
        self.brokers.connected()
        self.connects.append((time.time(), self.brokers.url))
        self.watch.restart_clock()
        client.subscribe(self.cmd_topic, qos=1)
        self._connected.set()

    def _on_message(self, client: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        try:
            command = read_command(message.payload)
        except ContractError as exc:
            log.warning("%s: bad command: %s", self.agent, exc)
            return
        if isinstance(command, Replay):
            for batch in replay_batches(self.sent, command.from_seq, self.agent):
                self.watch.sent(client.publish(self.topic, batch.payload, qos=1))

    def _publishing(self) -> None:
        while not self._stop.wait(self.interval):
            self._seq += 1
            seq, now = self._seq, time.time()
            kind = PositionStaffed if seq % 2 else PositionVacated
            event = kind(
                v=1,
                seq=seq,
                ts=now,
                device="probe",
                position=PROBE_POST,
                staff=self.agent.replace("-", ""),
            )
            payload = encode(event)
            self.sent.add(seq, now, payload)
            self.published[seq] = now
            self.watch.sent(self.client.publish(self.topic, payload, qos=1))
            self._check_deadline()

    def _check_deadline(self) -> None:
        if self._connected.is_set() and self.watch.stalled_for() >= self.publish_timeout:
            self.watch.restart_clock()
            cut(self.client)  # loop_forever returns; the next node is tried


@dataclass
class Poller:
    """Polls one collector for the probe branch; notes when each probe seq became visible."""

    name: str
    host: str
    port: int
    region: str
    pause: float = 0.05
    visible: dict[str, dict[int, float]] = field(default_factory=dict)  # agent -> seq -> time
    errors: int = 0
    requests: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"poll-{self.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        path = f"/api/v1/branches/{self.region}/{PROBE_BRANCH}"
        connection = http.client.HTTPConnection(self.host, self.port, timeout=5)
        while not self._stop.wait(self.pause):
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                body = response.read()
                now = time.time()
            except (OSError, http.client.HTTPException):
                self.errors += 1
                connection.close()  # opened again by the next request
                continue
            self.requests += 1
            if response.status != 200:
                continue  # 404 until the first probe event is in
            for agent in json.loads(body)["branch"]["agents"]:
                seen = self.visible.setdefault(agent["agent"], {})
                last = agent["last_seq"] or 0
                first_new = max(seen, default=0) + 1
                for seq in range(first_new, last + 1):
                    seen[seq] = now
        connection.close()

    def latencies(self, probes: list[ProbeAgent], start: float, end: float) -> list[float]:
        """publish → visible of the probe events published within [start, end)."""
        out: list[float] = []
        for probe in probes:
            seen = self.visible.get(probe.agent, {})
            for seq, published in probe.published.items():
                if start <= published < end and seq in seen:
                    out.append(seen[seq] - published)
        return out

    def times(self, agent: str | None = None) -> list[float]:
        """When probe events (of ``agent``, or of all) became visible."""
        agents = [agent] if agent else list(self.visible)
        return [t for a in agents for t in self.visible.get(a, {}).values()]

    def longest_gap(self, start: float, end: float, agent: str | None = None) -> float:
        """The longest time within [start, end] with no probe event becoming visible."""
        return longest_gap(self.times(agent), start, end)


def longest_gap(times: list[float], start: float, end: float) -> float:
    """The longest time within [start, end] without one of ``times``. For an HA pair,
    the times of both twins: the region's view is stale only while both are."""
    edges = [start, *sorted(t for t in times if start <= t <= end), end]
    return max(b - a for a, b in itertools.pairwise(edges))
