"""Replays against a real Mosquitto and a real collector process.

The agent here is one as ``branchwatch.agentlink`` makes them: a retained online
status with its will, events kept by event time (``SentEvents``, the simulator's
retention) and a ``replay`` answered with ``agentlink.replay_batches``, the code
the edge agent and the simulator answer with. It can hold its answers, so a test
sees what the collector shows before they come.

- A collector with no snapshot rebuilds the business day from the agent's
  retention: yesterday's tickets (their ids come again today) stay out.
- A broker restarted without persistence while the branch is quiet: the events
  the agent sent before the collector was back are asked for and arrive.
- Seqs the agent no longer holds end as lost, and the missing gauge goes back to 0.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from branchwatch.agentlink import ClockSessions, online_status, read_command, replay_batches, will
from branchwatch.broker import EmbeddedBroker
from branchwatch.contract import Replay, encode, topic_for
from branchwatch.contract import events as ev
from branchwatch.contract.messages import SpoolStatus
from branchwatch.sim.retention import SentEvents
from tests.support import CollectorProcess, Samples, sample, wait_until
from tests.unit.test_store_rebuild import business_day

pytestmark = pytest.mark.integration

REGION, BRANCH, AGENT = "north", "b-rebuild", "edge-1"
HOUR = 3600.0


class ReplayingAgent:
    """Publishes events, keeps them ``retention`` seconds (event time) and answers replays."""

    def __init__(self, broker: EmbeddedBroker, retention: float = 24 * HOUR) -> None:
        self.sent = SentEvents(max_age=retention)
        self.asks: list[int] = []
        self.holding = False
        self._held: list[int] = []
        self._lock = threading.Lock()
        self.connected = threading.Event()
        self.topic = {kind: topic_for(REGION, BRANCH, AGENT, kind) for kind in ("events", "cmd")}
        self.status_topic = topic_for(REGION, BRANCH, AGENT, "status")
        self.session = ClockSessions(time.time()).next_session()
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"agent-{BRANCH}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        client.will_set(self.status_topic, will(self.session), qos=1, retain=True)
        client.reconnect_delay_set(1, 1)
        client.on_connect = self._connected
        client.on_disconnect = lambda *args: self.connected.clear()
        client.on_message = self._command
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        self.client = client
        wait_until(self.connected.is_set, 10, "agent connected")

    def _connected(self, client: paho.Client, *args: Any) -> None:
        # A broker without persistence forgot our subscription and status: say them again.
        client.subscribe(self.topic["cmd"], qos=1)
        status = online_status(self.session, time.time(), {}, SpoolStatus())
        client.publish(self.status_topic, status, qos=1, retain=True)
        self.connected.set()

    def publish(self, events: Sequence[ev.Event]) -> None:
        """One message per event, each kept for replays."""
        for event in events:
            payload = encode(event)
            self.sent.add(event.seq, event.ts, payload)
            self.client.publish(self.topic["events"], payload, qos=1).wait_for_publish(5)

    def _command(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        command = read_command(message.payload)
        if not isinstance(command, Replay):
            return
        with self._lock:
            self.asks.append(command.from_seq)
            if self.holding:
                self._held.append(command.from_seq)
                return
        self._answer(command.from_seq)

    def _answer(self, from_seq: int) -> None:
        for batch in replay_batches(self.sent, from_seq, AGENT):
            self.client.publish(self.topic["events"], batch.payload, qos=1)

    def release(self) -> None:
        """Answer the replays held so far, and the next ones at once."""
        with self._lock:
            held, self._held, self.holding = self._held, [], False
        for from_seq in held:
            self._answer(from_seq)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def collector(broker: EmbeddedBroker, tmp_path: Path, config: str = "") -> CollectorProcess:
    """A collector with an empty state dir (no snapshot): a new machine, a lost disk."""
    state = tmp_path / "state"
    state.mkdir()
    extra: list[str] = []
    if config:
        path = tmp_path / "collector.toml"
        path.write_text(config)
        extra = ["--config", str(path)]
    return CollectorProcess(broker.url, state, "collector-rebuild", extra=extra).start()


def branch_view(process: CollectorProcess) -> Any:
    return process.api(f"/branches/{REGION}/{BRANCH}")["branch"]


def floor(process: CollectorProcess, name: str, **labels: str) -> float | None:
    samples: Samples = process.metrics()
    return sample(samples, name, region=REGION, branch=BRANCH, **labels)


def issued(process: CollectorProcess) -> float | None:
    return floor(process, "branchwatch_tickets_issued_total", service="cash")


@pytest.fixture
def agent(mosquitto: EmbeddedBroker) -> Iterator[ReplayingAgent]:
    started = ReplayingAgent(mosquitto)
    yield started
    started.close()


def test_a_collector_without_snapshot_rebuilds_the_day_from_the_agents_retention(
    mosquitto: EmbeddedBroker, agent: ReplayingAgent, tmp_path: Path
) -> None:
    today = time.time() - 3 * HOUR  # opened 3 h ago
    yesterday = business_day(300, today - 24 * HOUR, 5, close=True)  # seqs 300..322
    morning = business_day(323, today, 3, close=False)  # 323..336: ticket ids A1.. again
    agent.publish(yesterday + morning)  # nobody listens yet
    # Retention (24 h of event time) no longer holds yesterday's opening and first tickets.
    oldest = agent.sent.oldest_held_seq()
    assert oldest is not None and 300 < oldest < 323
    agent.holding = True

    process = collector(mosquitto, tmp_path)
    try:
        wait_until(lambda: agent.asks == [0], 10, "a replay from seq 0 asked")
        view = branch_view(process)
        assert view["rebuilding"] is True and view["issued_total"] == 0
        assert view["agents"][0]["rebuilding"] is True
        assert floor(process, "branchwatch_branch_rebuilding") == 1.0
        live = ev.TicketIssued(
            v=1, seq=337, ts=time.time(), device="q1", ticket="A4", service="cash"
        )
        agent.publish([live])  # held with the rest until the answer is in
        assert branch_view(process)["issued_total"] == 0

        agent.release()
        wait_until(lambda: not branch_view(process)["rebuilding"], 15, "the rebuild done")
        view = branch_view(process)
        # The morning's three tickets and the live one; none of yesterday's.
        assert (view["issued_total"], view["served_total"], view["waiting_total"]) == (4, 3, 1)
        assert view["open"] is True and view["opened_ts"] == pytest.approx(today)
        assert view["agents"][0]["last_seq"] == 337
        assert view["agents"][0]["events_missing"] == view["agents"][0]["events_lost"] == 0
        assert floor(process, "branchwatch_branch_rebuilding") == 0.0
        assert issued(process) == 4.0
        assert "rebuilt from the replay of edge-1" in process.log_path.read_text()
    finally:
        process.kill()


def test_a_broker_that_lost_our_session_is_asked_for_what_a_quiet_branch_sent(
    tmp_path: Path,
) -> None:
    broker = EmbeddedBroker("mosquitto", persistent=False, workdir=tmp_path)
    broker.start()
    agent = ReplayingAgent(broker)
    # The collector takes its time to come back, so the agent's events reach the new
    # broker before the collector's subscription does: the broker drops them.
    slow = "[mqtt]\nreconnect_min_seconds = 4.0\nreconnect_max_seconds = 4.0\n"
    process: CollectorProcess | None = None
    try:
        today = time.time() - HOUR
        morning = business_day(10, today, 2, close=False)  # seqs 10..19
        agent.publish(morning)
        process = collector(broker, tmp_path, slow)
        wait_until(lambda: issued(process) == 2.0, 15, "the morning rebuilt")
        wait_until(lambda: not branch_view(process)["rebuilding"], 10, "rebuilt")
        asks_before = len(agent.asks)

        broker.restart()  # no persistence: sessions, queues and retained statuses are gone
        wait_until(agent.connected.is_set, 10, "agent back on the new broker")
        gap = [
            ev.TicketIssued(v=1, seq=20 + n, ts=time.time(), device="q1", ticket=t, service="cash")
            for n, t in enumerate(("A3", "A4"))
        ]
        agent.publish(gap)
        assert process.metrics()[("branchwatch_collector_mqtt_connected", ())] == 0.0

        # The branch stays quiet: only the replay asked on reconnect brings the two.
        wait_until(lambda: issued(process) == 4.0, 20, "the events of the gap replayed")
        assert agent.asks[asks_before:] == [20]
        view = branch_view(process)
        assert (view["waiting_total"], view["agents"][0]["last_seq"]) == (2, 21)
        assert view["agents"][0]["events_missing"] == 0
        assert "as the broker had lost our session" in process.log_path.read_text()
    finally:
        if process is not None:
            process.kill()
        agent.close()
        broker.close()


def test_seqs_the_agent_no_longer_holds_end_as_lost_and_the_gauge_returns_to_0(
    mosquitto: EmbeddedBroker, agent: ReplayingAgent, tmp_path: Path
) -> None:
    today = time.time() - HOUR
    morning = business_day(1, today, 1, close=False)  # seqs 1..6
    agent.publish(morning)
    process = collector(mosquitto, tmp_path)
    try:
        wait_until(lambda: issued(process) == 1.0, 15, "the morning rebuilt")
        labels = {"agent": AGENT}
        agent.holding = True
        # 7, 8 and 9 were dropped from a full spool: never sent, never held.
        agent.publish(
            [
                ev.TicketIssued(
                    v=1, seq=10, ts=time.time(), device="q1", ticket="B10", service="cash"
                )
            ]
        )
        wait_until(
            lambda: floor(process, "branchwatch_agent_events_missing", **labels) == 3.0,
            10,
            "7, 8 and 9 missing",
        )
        wait_until(lambda: agent.asks[-1:] == [7], 10, "asked from the first missing seq")
        assert floor(process, "branchwatch_agent_events_lost_total", **labels) == 0.0

        agent.release()  # answers start at 10: twice, and 7..9 are written off
        wait_until(
            lambda: floor(process, "branchwatch_agent_events_lost_total", **labels) == 3.0,
            15,
            "7, 8 and 9 lost",
        )
        assert floor(process, "branchwatch_agent_events_missing", **labels) == 0.0
        assert agent.asks.count(7) >= 2
        agent_view = branch_view(process)["agents"][0]
        assert (agent_view["events_missing"], agent_view["events_lost"]) == (0, 3)
        assert issued(process) == 2.0  # A1 of the morning and B10
        assert process.metrics()[("branchwatch_collector_events_missing_total", ())] == 3.0
    finally:
        process.kill()
