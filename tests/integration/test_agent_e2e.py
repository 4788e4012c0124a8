"""The agent end to end: a real agent process → real Mosquitto → the real collector.

Exactness is checked against the agent's own spool: every event a device
produced is in it (written before publishing), so the collector's counters
must equal what the spool holds — after a broker outage and after ``kill -9``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from branchwatch.broker import EmbeddedBroker, free_port
from branchwatch.contract import Notify, Replay, Status, decode_status, encode, topic_for
from tests.integration.test_agent_fakes import (
    AGENT,
    BRANCH,
    REGION,
    AgentProcess,
    agent_toml,
    burst_device,
)
from tests.support import CollectorProcess, mqtt_client, sample, wait_until

pytestmark = pytest.mark.integration

SLOW_SNAPSHOTS = "[state]\nsnapshot_interval_seconds = 3600.0\n"


def _of_branch(collector: CollectorProcess, name: str, **labels: str) -> float:
    """The collector's sample ``name`` of the test branch (0 while absent)."""
    return sample(collector.metrics(), name, region=REGION, branch=BRANCH, **labels) or 0.0


def issued(collector: CollectorProcess) -> float:
    return _of_branch(collector, "branchwatch_tickets_issued_total", service="cash")


def requested(collector: CollectorProcess) -> float:
    return _of_branch(collector, "branchwatch_evaluations_requested_total", counter="c1")


def start_agent(workdir: Path, broker_url: str, device: str, mqtt_extra: str = "") -> AgentProcess:
    """An agent with one device, its spool in ``workdir``, started."""
    config = agent_toml(broker_url, str(workdir / "spool.db"), device, mqtt_extra)
    return AgentProcess(workdir, config).start()


def retained_status(broker: EmbeddedBroker) -> Status | None:
    """What a collector starting now would read on the agent's status topic."""
    got: list[bytes | bytearray] = []
    client = mqtt_client(broker.port)
    try:
        client.on_message = lambda _c, _u, message: got.append(message.payload)
        client.subscribe(topic_for(REGION, BRANCH, AGENT, "status"), qos=1)
        wait_until(lambda: got, 5, "retained status")
    finally:
        client.disconnect()
        client.loop_stop()
    return decode_status(got[0])


def agent_metric(collector: CollectorProcess, name: str) -> float | None:
    return sample(collector.metrics(), name, region=REGION, branch=BRANCH, agent=AGENT)


def settle(
    collector: CollectorProcess,
    agent: AgentProcess,
    expected: int,
    timeout: float = 20.0,
    evaluations: bool = False,
) -> int:
    """Wait until the device produced ``expected`` events, all acknowledged and counted."""
    type_, counted = (
        ("evaluation.requested", requested) if evaluations else ("ticket.issued", issued)
    )

    def done() -> int | None:
        count, unsent, _ = agent.spooled(type_)
        return count if count == expected and unsent == 0 and counted(collector) == count else None

    try:
        result: int = wait_until(done, timeout, "collector to count every spooled event")
    except AssertionError:
        print(agent.log())
        raise
    return result


@pytest.fixture
def collector(mosquitto: EmbeddedBroker, tmp_path: Path) -> Iterator[CollectorProcess]:
    state = tmp_path / "collector"
    state.mkdir()
    config = tmp_path / "collector.toml"
    config.write_text(SLOW_SNAPSHOTS)
    process = CollectorProcess(
        mosquitto.url, state, "collector", extra=["--config", str(config)]
    ).start()
    yield process
    process.kill()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "agent"
    path.mkdir()
    return path


def test_events_status_and_clean_shutdown(
    mosquitto: EmbeddedBroker, collector: CollectorProcess, workdir: Path
) -> None:
    agent = start_agent(workdir, mosquitto.url, burst_device(300, bad_every=100))
    try:
        assert settle(collector, agent, 300) == 300
        wait_until(lambda: agent_metric(collector, "branchwatch_agent_up") == 1, 10, "agent up")
        labels = {"region": REGION, "branch": BRANCH, "agent": AGENT, "device": "queue-1"}
        up = wait_until(
            lambda: sample(collector.metrics(), "branchwatch_device_up", **labels, kind="fake"),
            10,
            "device up",
        )
        assert up == 1
        assert agent.stop() == 0
    finally:
        agent.kill()
    wait_until(lambda: agent_metric(collector, "branchwatch_agent_up") == 0, 10, "agent offline")
    metrics = collector.metrics()
    assert sample(metrics, "branchwatch_collector_events_missing_total") == 0
    assert sample(metrics, "branchwatch_collector_messages_total", result="rejected") == 0
    log = agent.log()
    assert "bad frame (bad_identifier)" in log  # the 3 refused events: counted, not sent
    assert "published offline status" in log


def test_mqtt_3_1_1(mosquitto: EmbeddedBroker, collector: CollectorProcess, workdir: Path) -> None:
    mqtt = 'protocol = "3.1.1"\n'
    agent = start_agent(workdir, mosquitto.url, burst_device(20), mqtt)
    try:
        assert settle(collector, agent, 20) == 20
        wait_until(lambda: agent_metric(collector, "branchwatch_agent_up") == 1, 10, "agent up")
        assert agent.stop() == 0
    finally:
        agent.kill()


def test_broker_outage_loses_and_double_counts_nothing(
    mosquitto: EmbeddedBroker, collector: CollectorProcess, workdir: Path
) -> None:
    agent = start_agent(workdir, mosquitto.url, burst_device(800, rate=200))
    try:
        wait_until(lambda: issued(collector) >= 100, 10, "events flowing")
        mosquitto.stop()
        spooled_during = agent.spooled()[0]
        wait_until(lambda: agent.spooled()[0] >= spooled_during + 200, 10, "spooling offline")
        mosquitto.start()
        assert settle(collector, agent, 800, 30) == 800
        metrics = collector.metrics()
        assert sample(metrics, "branchwatch_collector_events_missing_total") == 0
        assert issued(collector) == 800
    finally:
        agent.kill()


def test_kill_9_during_a_burst_then_restart(
    mosquitto: EmbeddedBroker, collector: CollectorProcess, workdir: Path
) -> None:
    device = burst_device(20_000, events="evaluation")
    agent = AgentProcess(workdir, agent_toml(mosquitto.url, str(workdir / "spool.db"), device))
    agent.start()
    try:
        # Judged from the agent's spool, not the collector: a fresh collector holds a new
        # agent's first events until its replay answer is in, and the burst goes on meanwhile.
        wait_until(lambda: agent.spooled("evaluation.requested")[0] >= 200, 10, "burst under way")
        agent.kill()
        produced, _, last_seq = agent.spooled("evaluation.requested")
        assert 200 <= produced < 20_000, "the kill must land mid-burst"
        # Restart: the device bursts again; the spool resumes its seq and sends the rest.
        agent.config.write_text(agent.config.read_text().replace("count = 20000", "count = 500"))
        agent.start()
        expected = produced + 500
        assert settle(collector, agent, expected, 30, evaluations=True) == expected
        assert agent.spooled("evaluation.requested")[2] == last_seq + 500
        assert sample(collector.metrics(), "branchwatch_collector_events_missing_total") == 0
        # The killed connection's will must not have replaced the new online status.
        retained = retained_status(mosquitto)
        assert retained is not None and retained.state == "online", retained
        wait_until(lambda: agent_metric(collector, "branchwatch_agent_up") == 1, 10, "agent up")
    finally:
        agent.kill()


def test_replay_after_a_collector_crash(
    mosquitto: EmbeddedBroker, collector: CollectorProcess, workdir: Path
) -> None:
    agent = start_agent(workdir, mosquitto.url, burst_device(40))
    try:
        assert settle(collector, agent, 40) == 40
        assert collector.stop() == 0  # snapshot at 40
        collector.start()
        # More events, then a crash before any snapshot: the collector forgets them.
        before = agent.spooled()[2]
        agent.stop()
        agent.config.write_text(agent.config.read_text().replace("count = 40", "count = 25"))
        agent.start()
        wait_until(lambda: issued(collector) == 65, 10, "second burst counted")
        assert agent.spooled()[2] == before + 25 + 0  # seq continues
        collector.kill()
        collector.start()  # restores 40, asks the agent to replay from seq 41
        wait_until(lambda: issued(collector) == 65, 15, "replayed events counted")
        assert "replay from seq" in agent.log()
    finally:
        agent.kill()


def test_replay_command_and_notify_reach_the_agent(
    mosquitto: EmbeddedBroker, workdir: Path
) -> None:
    notices = workdir / "notices.jsonl"
    device = burst_device(10, notify_file=str(notices))
    agent = start_agent(workdir, mosquitto.url, device)
    received: list[bytes | bytearray] = []
    client = mqtt_client(mosquitto.port)
    try:
        client.on_message = lambda _c, _u, message: received.append(message.payload)
        client.subscribe(topic_for(REGION, BRANCH, AGENT, "events"), qos=1)
        wait_until(lambda: agent.spooled()[:2] == (10, 0), 10, "events sent")
        fourth = agent.spooled()[2] - 6  # a fresh spool's seqs start at a clock-based base
        cmd = topic_for(REGION, BRANCH, AGENT, "cmd")
        client.publish(cmd, encode(Replay(v=1, from_seq=fourth)), qos=1).wait_for_publish(5)

        def replay_batch() -> list[int] | None:
            for payload in received:
                events = json.loads(payload)
                if isinstance(events, list) and events[0]["seq"] == fourth:
                    return [event["seq"] for event in events]
            return None

        assert wait_until(replay_batch, 10, "replayed batch") == list(range(fourth, fourth + 7))
        client.publish(cmd, encode(Notify(v=1, id="n-1", position=3, text="cover post 1")), qos=1)
        client.publish(cmd, encode(Notify(v=1, id="n-2", position=9, text="nobody")), qos=1)
        wait_until(notices.exists, 10, "notice delivered to the device")
        assert [json.loads(line)["id"] for line in notices.read_text().splitlines()] == ["n-1"]
        wait_until(lambda: "notice n-2 for post 9: no device took it" in agent.log(), 10, "log")
        assert agent.stop() == 0
    finally:
        client.disconnect()
        client.loop_stop()
        agent.kill()


def test_config_errors_exit_2_without_a_traceback(workdir: Path) -> None:
    mqtt = 'username = "u"\npassword_file = "/nonexistent/agent.password"\n'
    config = agent_toml("mqtt://127.0.0.1:1", str(workdir / "spool.db"), burst_device(1), mqtt)
    agent = AgentProcess(workdir, config).start()
    assert agent.proc is not None
    assert agent.proc.wait(15) == 2
    assert "cannot read MQTT password file /nonexistent/agent.password" in agent.log()
    assert "Traceback" not in agent.log()
    bad = AgentProcess(workdir, config.replace('region = "north"', 'region = "North"')).start()
    assert bad.proc is not None
    assert bad.proc.wait(15) == 2
    assert "region" in bad.log()


def test_sigterm_while_the_broker_is_away_exits_promptly(workdir: Path) -> None:
    port = free_port()  # nobody listens: the agent is in its reconnect loop
    agent = start_agent(workdir, f"mqtt://127.0.0.1:{port}", burst_device(5))
    try:
        wait_until(lambda: agent.spooled()[0] == 5, 10, "events spooled offline")
        wait_until(lambda: "Connection refused" in agent.log(), 10, "reconnect loop")
        started = time.monotonic()
        assert agent.stop(timeout=5) == 0
        assert time.monotonic() - started < 5
        assert agent.spooled()[1] == 5  # kept for the next start
    finally:
        agent.kill()
