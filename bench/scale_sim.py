"""One shard of the bank for ``make bench-scale``: simulated branches on a few MQTT connections.

Run by :mod:`bench.scale` as ``python -m bench.scale_sim SPEC.json``, one process per
shard so that the shards' Python does not share one interpreter lock. A NATS node
stores one connection's QoS 1 publishes one after another (~2.5 ms each here), so one
connection standing for a region would cap it at ~400 messages/s where the region's
thousands of agents publish side by side: the shard spreads its branches over
``connections`` connections. Each is the simulator's own :class:`SimPublisher` with
what a broker cluster with users needs and the simulator lacks:

- a username and password (the NATS kit lets no anonymous client in);
- a PUBACK deadline, as agents have (``publish_timeout_seconds``): a node whose message
  store lost its Raft leader takes QoS 1 publishes and never acknowledges them, and a
  client that waits for ever stalls for ever. Past the deadline the connection is cut
  and paho moves to the next node of the list, where it sends the unacknowledged again;
- a slice of the branch numbers (``first``..``last``), so shards of one region never
  share a branch id;
- after ``seconds`` of traffic a quiet phase: no new events, but replays are still
  answered (a collector may still be filling a gap) until SIGTERM.

When the traffic stops, the shard writes ``SPEC.truth.json``: per branch what the
collector must show (the events it generated, their last seq, and the counts of
:class:`tests.faults.truth.Truth`). At exit it writes ``SPEC.final.json`` (its stats,
per connection every connect and every PUBACK deadline that ran out, with wall-clock
times).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from paho.mqtt.client import Client, ConnectFlags, MQTTMessage, MQTTMessageInfo, MQTTv311
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from branchwatch.config import parse_broker_url
from branchwatch.contract import decode_events
from branchwatch.contract.topics import CONTRACT_VERSION
from branchwatch.sim.cli import stop_on_signals
from branchwatch.sim.model import AGENT
from branchwatch.sim.publisher import MAX_QUEUED_MESSAGES, SimAgent, SimPublisher, SimSettings
from tests.faults.truth import Truth

log = logging.getLogger("bench.scale_sim")

SAMPLE_SECONDS: Final = 2.0
STOP_SECONDS: Final = 5.0  # for the offline statuses of all the connections at the end


@dataclass(frozen=True)
class ShardSpec:
    """What :mod:`bench.scale` asks of one shard (written as JSON)."""

    region: str
    first: int  # branch numbers first..last (br-0001 is 1)
    last: int
    brokers: list[str]
    user: str
    password_file: str
    speed: float
    seed: int
    start_hour: float
    seconds: float
    scenario: str = "normal"
    publish_timeout: float = 5.0
    status_interval: float = 60.0
    connections: int = 1  # MQTT connections sharing the branches

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> ShardSpec:
        return cls(**json.loads(path.read_text()))


class PubackWatch:
    """QoS 1 messages handed to paho and not yet acknowledged, and when the broker last
    made progress on them.

    One agent has one message in flight and gives up on the broker when it is not
    acknowledged in time. A connection that stands for thousands of agents has many in
    flight, stored by the broker one after another: the broker is stuck when none of
    them has been acknowledged for that long, not when the oldest is that old.
    Called from two threads (paho's network thread acknowledges, the ticking thread
    publishes and checks), hence the lock.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._mids: set[int] = set()
        self._progress = clock()
        self._lock = threading.Lock()

    def sent(self, info: MQTTMessageInfo) -> None:
        with self._lock:
            if not self._mids:
                self._progress = self._clock()  # the wait starts with this message
            self._mids.add(info.mid)

    def acked(self, mid: int) -> None:
        with self._lock:
            if mid in self._mids:
                self._mids.discard(mid)
                self._progress = self._clock()

    def restart_clock(self) -> None:
        """A new connection sends the unacknowledged again: the wait starts over."""
        with self._lock:
            self._progress = self._clock()

    def stalled_for(self) -> float:
        """Seconds without an acknowledgement while messages wait for one (else 0)."""
        with self._lock:
            return self._clock() - self._progress if self._mids else 0.0

    def outstanding(self) -> int:
        with self._lock:
            return len(self._mids)


def connection_slices(spec: ShardSpec) -> list[tuple[int, int]]:
    """The branch numbers (first, last) of each of the shard's connections."""
    count = spec.last - spec.first + 1
    bounds = [spec.first + count * c // spec.connections for c in range(spec.connections + 1)]
    return [(a, b - 1) for a, b in itertools.pairwise(bounds) if b > a]


def client_id(spec: ShardSpec) -> str:
    """A connection's MQTT client id: stable, so its session outlives a connection."""
    return f"bench-sim-{spec.region}-{spec.first}"


class ShardSim(SimPublisher):
    """The simulator's publisher, logged in, with a PUBACK deadline, for one branch slice."""

    def __init__(self, spec: ShardSpec) -> None:
        self.spec = spec
        self.watch = PubackWatch()
        self.connects: list[tuple[float, str]] = []
        self.timeouts: list[tuple[float, str]] = []
        self.max_outstanding = 0
        self.foreign_commands = 0
        brokers = [parse_broker_url(url) for url in spec.brokers]
        settings = SimSettings(
            broker=brokers[0],
            fallback_brokers=tuple(brokers[1:]),
            branches=spec.last,
            regions=(spec.region,),
            speed=spec.speed,
            seed=spec.seed,
            start_hour=spec.start_hour,
            mqtt_protocol="3.1.1",  # NATS speaks no MQTT 5
            scenario=spec.scenario,
            # The periodic statuses are spread over the interval (tick below): thousands
            # of agents do not all report in the same 100 ms.
            status_interval=float("inf"),
        )
        super().__init__(settings)
        # Branches below ``first`` belong to another shard of the region.
        self.agents = {
            key: agent for key, agent in self.agents.items() if int(key[1][3:]) >= spec.first
        }
        self._status_order = list(self.agents.values())
        self._status_next = 0
        self._status_credit = 0.0
        self._status_clock = time.monotonic()

    @property
    def command_filter(self) -> str:
        return f"{self.settings.prefix}/{CONTRACT_VERSION}/{self.spec.region}/+/{AGENT}/cmd"

    def _make_client(self) -> Client:
        # A persistent session, as agents have: the cluster keeps the cmd subscription
        # (a JetStream consumer) across connections instead of making it again each time.
        client = Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id(self.spec),
            protocol=MQTTv311,  # NATS speaks no MQTT 5
            clean_session=False,
        )
        client.username_pw_set(self.spec.user, Path(self.spec.password_file).read_text().strip())
        # Thousands of agents behind one connection: many of their messages in flight.
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(MAX_QUEUED_MESSAGES)
        # An agent moves to the next broker at once; waiting is for when all have failed.
        client.reconnect_delay_set(min_delay=0, max_delay=5)
        client.on_connect = self._on_connect
        client.on_connect_fail = lambda _client, _userdata: self._next_broker()
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = lambda _c, _u, mid, _rc, _p: self.watch.acked(mid)
        return client

    def _on_message(self, client: Client, userdata: Any, message: MQTTMessage) -> None:
        where = message.topic.split("/")
        if len(where) > 3 and (where[2], where[3]) not in self.agents:
            self.foreign_commands += 1  # another shard's agent of this region
            return
        super()._on_message(client, userdata, message)

    def _on_connect(
        self,
        client: Client,
        userdata: Any,
        flags: ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        super()._on_connect(client, userdata, flags, reason, properties)
        if not reason.is_failure:
            self.watch.restart_clock()
            self.connects.append((time.time(), self.brokers.url))

    def _publish_events(self, agent: SimAgent, message: bytes) -> None:
        info = self._client.publish(agent.events_topic, message, qos=1)
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            self.stats.dropped += 1  # a gap: the collector asks for a replay
            return
        self.watch.sent(info)
        self.stats.messages += 1

    def _publish_status(self, agent: SimAgent, state: str) -> MQTTMessageInfo:
        info = super()._publish_status(agent, state)
        self.watch.sent(info)
        return info

    def tick(self) -> int:
        published = super().tick()
        now = time.monotonic()
        elapsed, self._status_clock = now - self._status_clock, now
        if self.connected.is_set():
            order = self._status_order
            self._status_credit += len(order) * elapsed / self.spec.status_interval
            while self._status_credit >= 1.0:
                self._status_credit -= 1.0
                self._publish_status(order[self._status_next], "online")
                self._status_next = (self._status_next + 1) % len(order)
        return published

    def answer_commands(self) -> None:
        """Replays (and notices) asked for, once the traffic has stopped."""
        self._handle_commands()

    def check_deadline(self) -> None:
        """Cut the connection when a PUBACK is overdue: paho then takes the next broker."""
        self.max_outstanding = max(self.max_outstanding, self.watch.outstanding())
        stalled = self.watch.stalled_for()
        if not self.connected.is_set() or stalled < self.spec.publish_timeout:
            return
        self.timeouts.append((time.time(), self.brokers.url))
        log.warning("no PUBACK from %s for %.1f s: moving on", self.brokers.url, stalled)
        self.watch.restart_clock()  # one cut per deadline, not one per tick
        cut(self._client)

    def truth(self) -> dict[str, Any]:
        """Per branch: what the collector must count, from every event generated."""
        branches: dict[str, Any] = {}
        for (region, branch), agent in self.agents.items():
            events = [
                event
                for batch in agent.sent.held_batches(0, agent.sent.last_sent_seq())
                for event in decode_events(batch.payload)
            ]
            tally = Truth(region, branch)
            for event in events:
                fields = {name: getattr(event, name) for name in event.__struct_fields__}
                tally.add({**fields, "type": event.__struct_config__.tag})
            branches[branch] = {
                "events": len(events),
                "first_seq": events[0].seq if events else None,
                "last_seq": agent.sent.last_sent_seq() or None,
                "issued": sum(tally.issued.values()),
                "served": sum(tally.served.values()),
                "rated": sum(tally.rated.values()),
            }
        return branches

    def report(self) -> dict[str, Any]:
        return {
            **asdict(self.stats),
            "client": self._client._client_id.decode(),
            "connects": self.connects,
            "publish_timeouts": self.timeouts,
            "max_outstanding": self.max_outstanding,
            "foreign_commands": self.foreign_commands,
        }


class Shard:
    """The process's connections, ticked in turn by one thread (each has paho's own)."""

    def __init__(self, spec: ShardSpec, spec_path: Path) -> None:
        self.spec, self.spec_path = spec, spec_path
        self.sims = [
            ShardSim(dataclasses.replace(spec, first=first, last=last))
            for first, last in connection_slices(spec)
        ]
        # (wall time, events generated, messages published, unacknowledged) every few s.
        self.samples: list[tuple[float, int, int, int]] = []

    def serve(self, stop: threading.Event) -> None:
        """Traffic for ``spec.seconds``, the truth written, then replays only until ``stop``.

        While the traffic runs, ``SPEC.live.json`` holds the latest sample.
        """
        for sim in self.sims:
            sim.start()
        deadline = time.monotonic() + self.spec.seconds
        next_sample = 0.0
        tick = self.sims[0].settings.tick
        while not stop.is_set() and time.monotonic() < deadline:
            for sim in self.sims:
                sim.tick()
                sim.check_deadline()
            if time.monotonic() >= next_sample:
                next_sample = time.monotonic() + SAMPLE_SECONDS
                self.samples.append(self.sample())
                write_whole(self.spec_path.with_suffix(".live.json"), self.samples[-1])
            stop.wait(tick)
        truth = {name: row for sim in self.sims for name, row in sim.truth().items()}
        write_whole(self.spec_path.with_suffix(".truth.json"), {"branches": truth})
        log.info("traffic stopped after %d events; answering replays", self.sample()[1])
        while not stop.wait(tick):
            for sim in self.sims:
                sim.answer_commands()
                sim.check_deadline()

    def sample(self) -> tuple[float, int, int, int]:
        stats = [sim.stats for sim in self.sims]
        return (
            time.time(),
            sum(s.events for s in stats),
            sum(s.messages for s in stats),
            sum(sim.watch.outstanding() for sim in self.sims),
        )

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Every connection's offline statuses and disconnect, within ``timeout`` together."""
        deadline = time.monotonic() + timeout
        for sim in self.sims:
            sim.stop(max(0.1, deadline - time.monotonic()))

    def report(self) -> dict[str, Any]:
        connections = [sim.report() for sim in self.sims]
        totals = {
            key: sum(c[key] for c in connections)
            for key in ("events", "messages", "replayed", "dropped", "foreign_commands")
        }
        return {**totals, "connections": connections, "samples": self.samples}


def write_whole(path: Path, value: object) -> None:
    """JSON to ``path``, whole or not at all for a reader (written aside, then renamed)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(value))
    partial.rename(path)


def cut(client: Client) -> None:
    """Shut the connection's socket: paho's network thread sees it lost and reconnects
    (to the next broker, as the publisher's disconnect callback points it)."""
    sock = client.socket()
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # already gone
            sock.shutdown(socket.SHUT_RDWR)


def main(argv: list[str]) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    spec_path = Path(argv[0])
    shard = Shard(ShardSpec.load(spec_path), spec_path)
    stop = threading.Event()
    with stop_on_signals(stop):
        try:
            shard.serve(stop)
        finally:
            shard.stop()
            write_whole(spec_path.with_suffix(".final.json"), shard.report())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
