"""The shipped broker kit's ACL, proven against an installed-like Mosquitto.

deploy/mosquitto/branchwatch.conf under a Debian-style main file, with TLS, a
password file and the ACL template (the ``shipped_broker`` fixture of the doctor
tests). Mosquitto drops a forbidden publish or delivery silently (MQTT 3.1.1
still answers PUBACK "Success"; MQTT 5 answers "Not authorized"; a SUBACK is
granted either way), so "never reaches" is proven with a reader that may read
the topic and a positive control sent right after the forbidden message: once
the control has arrived, the forbidden one would have arrived before it.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from branchwatch.config import parse_broker_url
from branchwatch.contract import Notify, encode, topic_for
from branchwatch.contract import events as ev
from branchwatch.contract.topics import TopicKind
from tests.integration.test_agent_doctor import (  # noqa: F401 - shipped_broker is a fixture
    PASSWORDS,
    secret,
    shipped_broker,
)
from tests.support import CollectorProcess, sample, wait_until

pytestmark = pytest.mark.integration

REGION, BRANCH = "north", "b0001"
AGENT_1, AGENT_2, COLLECTOR = (
    f"{REGION}/{BRANCH}/agent-1",
    f"{REGION}/{BRANCH}/agent-2",
    "collector",
)
PROTOCOLS = {"5": MQTTProtocolVersion.MQTTv5, "3.1.1": MQTTProtocolVersion.MQTTv311}
READ_ALL = ("bw/v1/+/+/+/events", "bw/v1/+/+/+/status")


def topic(user: str, kind: TopicKind) -> str:
    """``kind`` topic of the agent logged in as ``user`` ("region/branch/agent")."""
    region, branch, agent = user.split("/")
    return topic_for(region, branch, agent, kind)


class Peer:
    """One MQTT client logged in as a broker user: what it received, its PUBACK reasons."""

    def __init__(self, broker: tuple[str, Path], user: str, protocol: str = "5") -> None:
        url, ca = broker
        address = parse_broker_url(url)
        self.user = user
        self.received: list[tuple[str, bytes]] = []
        self.acks: dict[int, str] = {}
        self.granted: dict[int, list[str]] = {}
        self._lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=PROTOCOLS[protocol])
        self.client.username_pw_set(user, PASSWORDS[user])
        self.client.tls_set_context(ssl.create_default_context(cafile=str(ca)))
        self.client.on_message = self._message
        self.client.on_publish = self._published
        self.client.on_subscribe = self._subscribed
        self.client.connect(address.host, address.port)
        self.client.loop_start()
        wait_until(self.client.is_connected, 10, f"{user} connected")

    def _message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        with self._lock:
            self.received.append((message.topic, bytes(message.payload)))

    def _published(self, c: paho.Client, u: object, mid: int, rc: ReasonCode, p: object) -> None:
        self.acks[mid] = str(rc)

    def _subscribed(
        self, c: paho.Client, u: object, mid: int, codes: list[ReasonCode], p: Properties | None
    ) -> None:
        self.granted[mid] = [str(code) for code in codes]

    def publish(self, topic: str, payload: bytes) -> str:
        """QoS 1; the broker's PUBACK reason ("Success", "Not authorized")."""
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        mid = info.mid
        return str(wait_until(lambda: self.acks.get(mid), 10, f"PUBACK on {topic}"))

    def subscribe(self, *filters: str) -> list[str]:
        """The SUBACK's reasons, one per filter."""
        result, mid = self.client.subscribe([(f, 1) for f in filters])
        assert result == paho.MQTT_ERR_SUCCESS and mid is not None, result
        return list(wait_until(lambda: self.granted.get(mid), 10, f"SUBACK for {filters}"))

    def got(self, topic: str, payload: bytes) -> bool:
        with self._lock:
            return (topic, payload) in self.received

    def wait_for(self, topic: str, payload: bytes) -> None:
        wait_until(lambda: self.got(topic, payload), 10, f"{payload!r} on {topic} at {self.user}")

    def topics(self) -> list[str]:
        with self._lock:
            return [name for name, _ in self.received]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def peers(shipped_broker: tuple[str, Path]) -> Iterator[dict[str, Peer]]:  # noqa: F811
    made: dict[str, Peer] = {}
    yield made
    for peer in made.values():
        peer.close()


def connect(
    peers: dict[str, Peer], broker: tuple[str, Path], name: str, user: str, protocol: str = "5"
) -> Peer:
    peers[name] = Peer(broker, user, protocol)
    return peers[name]


def refused(protocol: str) -> str:
    """What the broker answers a forbidden QoS 1 publish with."""
    return "Not authorized" if protocol == "5" else "Success"


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_an_agent_publishes_only_its_own_events_and_status(
    shipped_broker: tuple[str, Path],  # noqa: F811
    peers: dict[str, Peer],
    protocol: str,
) -> None:
    reader = connect(peers, shipped_broker, "reader", COLLECTOR)
    assert reader.subscribe(*READ_ALL) == ["Granted QoS 1", "Granted QoS 1"]
    agent = connect(peers, shipped_broker, "agent", AGENT_1, protocol)
    forged = b'{"forged": true}'
    forbidden = [
        topic(AGENT_2, "events"),  # another agent of the same branch
        topic(AGENT_2, "status"),
        topic(f"{REGION}/b0002/agent-1", "events"),  # another branch, same agent name
        topic(f"south/{BRANCH}/agent-1", "status"),  # another region
    ]
    for name in forbidden:
        assert agent.publish(name, forged) == refused(protocol), name
    control = b'{"control": true}'
    assert agent.publish(topic(AGENT_1, "events"), control) == "Success"
    assert agent.publish(topic(AGENT_1, "status"), control) == "Success"
    reader.wait_for(topic(AGENT_1, "status"), control)
    assert reader.got(topic(AGENT_1, "events"), control)
    assert sorted(reader.topics()) == [topic(AGENT_1, "events"), topic(AGENT_1, "status")]


def test_an_agent_cannot_publish_commands(
    shipped_broker: tuple[str, Path],  # noqa: F811
    peers: dict[str, Peer],
) -> None:
    agent_1 = connect(peers, shipped_broker, "agent-1", AGENT_1)
    agent_2 = connect(peers, shipped_broker, "agent-2", AGENT_2)
    collector = connect(peers, shipped_broker, "collector", COLLECTOR)
    for agent in (agent_1, agent_2):
        assert agent.subscribe(topic(agent.user, "cmd")) == ["Granted QoS 1"]
    forged = encode(Notify(v=1, id="forged", position=1, text="leave the door"))
    # Not to another agent, and not to itself (a command would come from the collector).
    assert agent_1.publish(topic(AGENT_2, "cmd"), forged) == "Not authorized"
    assert agent_1.publish(topic(AGENT_1, "cmd"), forged) == "Not authorized"
    control = encode(Notify(v=1, id="control", position=1, text="from the collector"))
    for agent in (agent_1, agent_2):
        assert collector.publish(topic(agent.user, "cmd"), control) == "Success"
    for agent in (agent_1, agent_2):
        agent.wait_for(topic(agent.user, "cmd"), control)
        assert agent.received == [(topic(agent.user, "cmd"), control)]


def test_an_agent_cannot_read_another_agents_commands_events_or_status(
    shipped_broker: tuple[str, Path],  # noqa: F811
    peers: dict[str, Peer],
) -> None:
    nosy = connect(peers, shipped_broker, "nosy", AGENT_1)
    # Mosquitto grants every subscription and filters each delivery against the ACL.
    filters = (topic(AGENT_2, "cmd"), f"bw/v1/{REGION}/{BRANCH}/+/cmd", "bw/v1/#", "#", *READ_ALL)
    assert nosy.subscribe(*filters) == ["Granted QoS 1"] * len(filters)
    agent_2 = connect(peers, shipped_broker, "agent-2", AGENT_2)
    assert agent_2.subscribe(topic(AGENT_2, "cmd")) == ["Granted QoS 1"]
    collector = connect(peers, shipped_broker, "collector", COLLECTOR)
    assert collector.subscribe(*READ_ALL) == ["Granted QoS 1"] * 2
    secret_notice = encode(Notify(v=1, id="n-2", position=3, text="for agent-2 only"))
    assert collector.publish(topic(AGENT_2, "cmd"), secret_notice) == "Success"
    event = b'{"agent-2": "event"}'
    assert agent_2.publish(topic(AGENT_2, "events"), event) == "Success"
    assert agent_2.publish(topic(AGENT_2, "status"), event) == "Success"
    agent_2.wait_for(topic(AGENT_2, "cmd"), secret_notice)
    collector.wait_for(topic(AGENT_2, "status"), event)
    # Last control: a command of its own does reach the nosy agent, through the same filters.
    own = encode(Notify(v=1, id="n-1", position=1, text="for agent-1"))
    assert collector.publish(topic(AGENT_1, "cmd"), own) == "Success"
    nosy.wait_for(topic(AGENT_1, "cmd"), own)
    assert set(nosy.topics()) == {topic(AGENT_1, "cmd")}, nosy.topics()


def test_the_collector_reads_events_and_status_and_writes_only_commands(
    shipped_broker: tuple[str, Path],  # noqa: F811
    peers: dict[str, Peer],
) -> None:
    collector = connect(peers, shipped_broker, "collector", COLLECTOR)
    assert collector.subscribe(*READ_ALL, "bw/v1/+/+/+/cmd") == ["Granted QoS 1"] * 3
    twin = connect(peers, shipped_broker, "twin", COLLECTOR)  # an HA twin reads too
    assert twin.subscribe(*READ_ALL) == ["Granted QoS 1"] * 2
    agent = connect(peers, shipped_broker, "agent", AGENT_1)
    assert agent.subscribe(topic(AGENT_1, "cmd")) == ["Granted QoS 1"]
    forged = b'{"from": "the collector"}'
    assert collector.publish(topic(AGENT_1, "events"), forged) == "Not authorized"
    assert collector.publish(topic(AGENT_1, "status"), forged) == "Not authorized"
    control = b'{"from": "agent-1"}'
    assert agent.publish(topic(AGENT_1, "events"), control) == "Success"
    command = encode(Notify(v=1, id="n-1", position=1, text="cover post 1"))
    assert collector.publish(topic(AGENT_1, "cmd"), command) == "Success"
    for reader in (collector, twin):
        reader.wait_for(topic(AGENT_1, "events"), control)
        assert reader.topics() == [topic(AGENT_1, "events")]  # no forged event, no cmd read
    agent.wait_for(topic(AGENT_1, "cmd"), command)


def test_a_forged_event_never_reaches_the_floor(
    shipped_broker: tuple[str, Path],  # noqa: F811
    peers: dict[str, Peer],
    tmp_path: Path,
) -> None:
    url, ca = shipped_broker
    config = tmp_path / "collector.toml"
    password = secret(tmp_path, "collector.pw", PASSWORDS[COLLECTOR])
    config.write_text(
        f'[mqtt]\nusername = "{COLLECTOR}"\npassword_file = "{password}"\nca_file = "{ca}"\n'
    )
    state = tmp_path / "state"
    state.mkdir()
    collector = CollectorProcess(url, state, "acl-collector", extra=["--config", str(config)])
    collector.start()
    try:
        honest = connect(peers, shipped_broker, "honest", AGENT_2)
        forger = connect(peers, shipped_broker, "forger", AGENT_1)

        def issued(seq: int, ticket: str) -> bytes:
            return encode(
                ev.TicketIssued(
                    v=1, seq=seq, ts=1.7e9 + seq, device="q1", ticket=ticket, service="cash"
                )
            )

        assert honest.publish(topic(AGENT_2, "events"), issued(1, "A001")) == "Success"
        labels = {"region": REGION, "branch": BRANCH, "service": "cash"}
        wait_until(
            lambda: sample(collector.metrics(), "branchwatch_tickets_issued_total", **labels) == 1,
            15,
            "the honest agent's first event",
        )
        before = collector.metrics()
        # Forged: the next seqs of agent-2 (they would make its own later events duplicates),
        # and another branch's agent that has never spoken.
        for seq in (2, 3, 500):
            forged = issued(seq, f"F{seq}")
            assert forger.publish(topic(AGENT_2, "events"), forged) == "Not authorized"
        other_branch = topic(f"{REGION}/b0002/agent-1", "events")
        assert forger.publish(other_branch, issued(1, "F1")) == "Not authorized"
        assert honest.publish(topic(AGENT_2, "events"), issued(2, "A002")) == "Success"
        wait_until(
            lambda: sample(collector.metrics(), "branchwatch_tickets_issued_total", **labels) == 2,
            15,
            "the honest agent's control event",
        )
        after = collector.metrics()
        accepted = "branchwatch_collector_messages_total"
        assert sample(after, accepted, result="accepted") == (
            (sample(before, accepted, result="accepted") or 0) + 1
        )
        for result in ("duplicate", "rejected"):
            assert sample(after, accepted, result=result) == sample(before, accepted, result=result)
        assert sample(after, "branchwatch_collector_events_missing_total") == 0
        branches = [(b["region"], b["branch"]) for b in collector.api("/branches")["branches"]]
        assert branches == [(REGION, BRANCH)]
    finally:
        collector.kill()
