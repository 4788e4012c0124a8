"""The NATS cluster kit (deploy/nats) as the broker: a real agent, a real collector, 3 nodes.

Each node runs the shipped ``branchwatch.conf`` on free loopback ports (never the
system's NATS server), users made by the kit's ``add-user.sh``. Exactness is checked
against the agent's spool, as in test_agent_e2e: every event the device produced is
counted once, whatever node died on the way.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from branchwatch.contract import topic_for
from branchwatch.contract.topics import TopicKind
from tests.integration.test_agent_e2e import issued, settle
from tests.integration.test_agent_fakes import AGENT, BRANCH, REGION, burst_device
from tests.integration.test_broker_failover import (
    agent_then_collector,
    gaps_and_duplicates,
    stall_after,
)
from tests.natscluster import KIT, NATS_PATHS, NatsCluster, mqtt_session
from tests.support import require_binary, sample, wait_until

pytestmark = pytest.mark.integration

OTHER_BRANCH = "b0002"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    nats = NatsCluster(tmp_path / "nats")
    nats.add_collector("collector")
    nats.add_agent(REGION, BRANCH, AGENT)
    nats.add_agent(REGION, OTHER_BRANCH, AGENT)
    try:
        yield nats.start()
    finally:
        nats.close()


def logins(cluster: NatsCluster) -> tuple[str, str]:
    """The [mqtt] lines of the agent and of the collector: NATS speaks MQTT 3.1.1 only.

    The agent waits 5 s for a PUBACK, not 15: a node whose message store lost its
    leader never answers a publish (it gives up storing after 4 s, silently), and the
    agent had better take its events to the next node.
    """
    user = f"{REGION}/{BRANCH}/{AGENT}"
    agent = (
        f'protocol = "3.1.1"\nusername = "{user}"\npassword_file = "{cluster.passwords[user]}"\n'
        "publish_timeout_seconds = 5.0\n"
    )
    collector = (
        f'protocol = "3.1.1"\nusername = "collector"\n'
        f'password_file = "{cluster.passwords["collector"]}"\n'
    )
    return agent, collector


def test_the_shipped_node_file_gives_a_valid_config(tmp_path: Path) -> None:
    """node.env.example, read as systemd reads an EnvironmentFile, fills branchwatch.conf."""
    binary = require_binary("nats-server", *NATS_PATHS)
    env = {}
    for line in (KIT / "node.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value.strip('"')
    assert sorted(env) == sorted(
        re.findall(r"\$(BW_NATS_\w+)", (KIT / "branchwatch.conf").read_text())
    )
    # Where this machine can check it: its own loopback and a temporary store.
    env |= {"BW_NATS_CLUSTER_LISTEN": "127.0.0.1:6222", "BW_NATS_STORE": str(tmp_path)}
    checked = subprocess.run(
        [binary, "-t", "-c", str(KIT / "branchwatch.conf")],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "is valid" in checked.stderr + checked.stdout


def test_agent_and_collector_through_the_cluster(cluster: NatsCluster, tmp_path: Path) -> None:
    urls = cluster.urls
    # The agent on mq3, the collector on mq2.
    device = burst_device(300, rate=100)
    agent, collector = agent_then_collector(
        tmp_path, device, urls[2:3], urls[1:2], *logins(cluster)
    )

    def up() -> float | None:
        metrics = collector.metrics()
        return sample(metrics, "branchwatch_agent_up", region=REGION, branch=BRANCH, agent=AGENT)

    try:
        settle(collector, agent, 300, 20)
        wait_until(lambda: up() == 1, 10, "agent up (its retained status)")
        metrics = collector.metrics()
        assert sample(metrics, "branchwatch_collector_events_missing_total") == 0
        assert sample(metrics, "branchwatch_collector_messages_total", result="rejected") == 0
        assert agent.stop() == 0
        wait_until(lambda: up() == 0, 10, "agent offline")
    finally:
        agent.kill()
        collector.kill()


def test_each_agent_is_pinned_to_its_own_topics(cluster: NatsCluster) -> None:
    own = f"{REGION}/{BRANCH}/{AGENT}"
    other = f"{REGION}/{OTHER_BRANCH}/{AGENT}"

    def topic(branch: str, kind: TopicKind) -> str:
        return topic_for(REGION, branch, AGENT, kind)

    port = cluster.nodes[0].mqtt_port
    seen: list[tuple[str, bytes]] = []
    with (
        mqtt_session(port, "collector", cluster.passwords["collector"], "c-1", False) as reader,
        mqtt_session(port, own, cluster.passwords[own], "a-1") as agent,
        mqtt_session(port, other, cluster.passwords[other], "a-2") as neighbour,
    ):
        granted: dict[tuple[int, int], bool] = {}  # (client, mid): granted (mids are per client)
        for client in (reader, agent, neighbour):
            client.on_subscribe = lambda c, _u, mid, codes, _p: granted.update(
                {(id(c), mid): not codes[0].is_failure}
            )
        reader.on_message = lambda _c, _u, message: seen.append(
            (message.topic, bytes(message.payload))
        )
        commands: list[bytes] = []
        neighbour.on_message = lambda _c, _u, message: commands.append(bytes(message.payload))

        def subscribe(client: paho.Client, filter_: str) -> bool:
            _, mid = client.subscribe(filter_, qos=1)
            assert mid is not None
            key = (id(client), mid)
            wait_until(lambda: key in granted, 15, f"SUBACK for {filter_}")
            return granted[key]

        wait_until(lambda: reader.is_connected() and agent.is_connected(), 10, "connected")
        assert subscribe(reader, "bw/v1/+/+/+/events") is True
        assert subscribe(reader, "bw/v1/+/+/+/status") is True
        assert subscribe(agent, topic(BRANCH, "cmd")) is True
        assert subscribe(neighbour, topic(OTHER_BRANCH, "cmd")) is True
        # Reading another agent's commands, or everybody's events: refused.
        assert subscribe(agent, topic(OTHER_BRANCH, "cmd")) is False
        assert subscribe(agent, "bw/v1/+/+/+/events") is False
        assert subscribe(agent, "$MQTT/sub/#") is False
        # Writing into another agent's subtree (or the collector into events): dropped.
        for client, where, payload in (
            (agent, topic(OTHER_BRANCH, "events"), b"forged events"),
            (agent, topic(OTHER_BRANCH, "status"), b"forged status"),
            (agent, topic(OTHER_BRANCH, "cmd"), b"forged command"),
            (reader, topic(BRANCH, "events"), b"collector posing as agent"),
        ):
            client.publish(where, payload, qos=1).wait_for_publish(5)
        # The agent's own messages pass, and come after the forged ones on the same
        # subscriptions: once they are in, the forged ones would have been too.
        agent.publish(topic(BRANCH, "events"), b"own events", qos=1).wait_for_publish(5)
        agent.publish(topic(BRANCH, "status"), b"own status", qos=1).wait_for_publish(5)
        reader.publish(topic(OTHER_BRANCH, "cmd"), b"collector command", qos=1)
        wait_until(lambda: len(seen) >= 2 and commands, 15, "own messages delivered")
        assert sorted(seen) == [(topic(BRANCH, "events"), b"own events"),
                                (topic(BRANCH, "status"), b"own status")]  # fmt: skip
        assert commands == [b"collector command"]


@pytest.mark.parametrize(
    ("victim", "how"),
    [(0, "crash"), (2, "crash"), (0, "stop")],
    ids=["crash-of-the-node-in-use", "crash-of-a-node-nobody-uses", "planned-stop"],
)
def test_a_node_goes_away_mid_stream(
    cluster: NatsCluster, tmp_path: Path, victim: int, how: str
) -> None:
    """Exact totals afterwards; the stall the collector sees is measured and reported.

    A crash costs the Raft elections of what the node led (4-9 s each in NATS 2.9,
    not configurable), plus 4 s for a client whose session record's leader died (the
    server gives up loading it and closes the connection; the next node is tried).
    A planned stop (SIGTERM) hands the leaderships over first: no stall to speak of.
    """
    urls = cluster.urls  # both start on mq1, the first of the list
    device = burst_device(1000, rate=100)
    agent, collector = agent_then_collector(tmp_path, device, urls, urls, *logins(cluster))
    try:
        wait_until(lambda: issued(collector) >= 200, 15, "events flowing")
        led = cluster.leaderships(victim)
        stall = stall_after(
            collector, lambda: cluster.kill(victim) if how == "crash" else cluster.stop(victim)
        )
        settle(collector, agent, 1000, 30)
        print(
            f"\nNATS {cluster.nodes[victim].name} {how}: the collector's stall {stall:.2f} s "
            f"(it led: {', '.join(led) or 'nothing'}); {gaps_and_duplicates(collector)}"
        )
        assert issued(collector) == 1000  # 0 lost, 0 double-counted
        if how == "stop":
            assert stall < 3.0
    finally:
        agent.kill()
        collector.kill()
