"""Broker lists: a real agent and a real collector given two independent Mosquittos.

The first broker dies mid-stream; both move to the second on their own. What the
dead broker had acknowledged but not delivered is gone with it: the collector,
finding no session of its own on the second broker, asks the agent to replay
from the last seq it applied, and the totals come out exact (0 lost, 0 double-
counted). The helpers here serve the NATS cluster tests too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from branchwatch.broker import EmbeddedBroker, free_port
from branchwatch.config import parse_broker_url
from branchwatch.sim.publisher import SimPublisher, SimSettings
from tests.integration.test_agent_doctor import row
from tests.integration.test_agent_e2e import issued, settle
from tests.integration.test_agent_fakes import AgentProcess, agent_toml, burst_device
from tests.support import CollectorProcess, require_binary, sample, wait_until

pytestmark = pytest.mark.integration


def start_collector(tmp_path: Path, urls: list[str], mqtt_extra: str = "") -> CollectorProcess:
    """The collector with ``--broker`` for each of ``urls``, quick to retry and to replay."""
    state = tmp_path / "collector"
    state.mkdir()
    config = tmp_path / "collector.toml"
    config.write_text(
        f"[mqtt]\n{mqtt_extra}reconnect_min_seconds = 0.2\nreconnect_max_seconds = 1.0\n"
        "replay_min_interval_seconds = 1.0\n[state]\nsnapshot_interval_seconds = 3600.0\n"
    )
    # CollectorProcess gives the first --broker; the others follow it.
    brokers = [flag for url in urls[1:] for flag in ("--broker", url)]
    extra = ["--config", str(config), *brokers]
    return CollectorProcess(urls[0], state, "collector-1", extra=extra).start(30)


def start_agent(tmp_path: Path, urls: list[str], device: str, mqtt_extra: str = "") -> AgentProcess:
    """The agent (fake device kind) with ``mqtt.broker`` the list ``urls``."""
    workdir = tmp_path / "agent"
    workdir.mkdir()
    config = agent_toml(urls[0], str(workdir / "spool.db"), device, mqtt_extra)
    listed = ", ".join(f'"{url}"' for url in urls)
    config = config.replace(f'broker = "{urls[0]}"', f"broker = [{listed}]")
    return AgentProcess(workdir, config).start()


def agent_then_collector(
    tmp_path: Path,
    device: str,
    agent_urls: list[str],
    collector_urls: list[str],
    agent_mqtt: str = "",
    collector_mqtt: str = "",
) -> tuple[AgentProcess, CollectorProcess]:
    """The agent first, some events sent, then the collector: its first replay request
    (for an agent it has no seq of) finds events to answer with, as in production."""
    agent = start_agent(tmp_path, agent_urls, device, agent_mqtt)
    try:
        wait_until(lambda: agent.spooled()[0] >= 30 and not agent.spooled()[1], 15, "a head start")
        return agent, start_collector(tmp_path, collector_urls, collector_mqtt)
    except BaseException:
        print(agent.log())
        agent.kill()
        raise


def stall_after(collector: CollectorProcess, break_broker: Callable[[], None]) -> float:
    """Seconds from ``break_broker()`` until the collector counts new events again."""
    before = issued(collector)
    start = time.monotonic()
    break_broker()
    wait_until(lambda: issued(collector) > before + 5, 25, "events flowing again")
    return time.monotonic() - start


def gaps_and_duplicates(collector: CollectorProcess) -> str:
    metrics = collector.metrics()
    missing = sample(metrics, "branchwatch_collector_events_missing_total") or 0
    duplicates = sample(metrics, "branchwatch_collector_messages_total", result="duplicate") or 0
    return f"gaps seen {missing:g}, duplicates dropped {duplicates:g}"


def test_two_independent_mosquittos_the_first_dies(tmp_path: Path) -> None:
    require_binary("mosquitto", "/usr/sbin/mosquitto")
    with (
        EmbeddedBroker("mosquitto", persistent=False) as first,
        EmbeddedBroker("mosquitto", persistent=False) as second,
    ):
        urls = [first.url, second.url]
        device = burst_device(800, rate=100)
        agent, collector = agent_then_collector(tmp_path, device, urls, urls)
        try:
            wait_until(lambda: issued(collector) >= 150, 15, "events flowing")
            stall = stall_after(collector, first.stop)
            settle(collector, agent, 800, 30)
            print(f"\nMosquitto 1 of 2 stopped: the collector's stall {stall:.2f} s; "
                  f"{gaps_and_duplicates(collector)}")  # fmt: skip
            assert issued(collector) == 800  # 0 lost, 0 double-counted
            assert f"connected to {second.url} (broker 2 of 2)" in collector.log()
            assert f"connected to {second.url} (broker 2 of 2)" in agent.log()
        finally:
            agent.kill()
            collector.kill()


def test_the_doctor_checks_every_broker_of_the_list(tmp_path: Path) -> None:
    """``--broker`` twice replaces the file's broker; a dead second broker fails the run."""
    require_binary("mosquitto", "/usr/sbin/mosquitto")
    with EmbeddedBroker("mosquitto", persistent=False) as alive:
        dead = f"mqtt://127.0.0.1:{free_port()}"
        workdir = tmp_path / "doctor"
        workdir.mkdir()
        config = agent_toml("mqtt://127.0.0.1:1", str(workdir / "spool.db"), burst_device(3))
        flags = ("--device-seconds", "0.5", "--broker", alive.url, "--broker", dead)
        doctor = AgentProcess(workdir, config).start("doctor", *flags)
        assert doctor.proc is not None
        assert doctor.proc.wait(30) == 1
        output = doctor.log()
    assert "PASS" in row(output, "broker 1") and alive.url in row(output, "broker 1")
    assert "PASS" in row(output, "broker 1 publish")
    assert "FAIL" in row(output, "broker 2") and "cannot connect" in row(output, "broker 2")
    assert "failed: broker 2" in output


def test_the_simulator_moves_to_the_next_broker(tmp_path: Path) -> None:
    """Started with a dead first broker it takes the second; losing that one, the third."""
    require_binary("mosquitto", "/usr/sbin/mosquitto")
    dead = parse_broker_url(f"mqtt://127.0.0.1:{free_port()}")
    with (
        EmbeddedBroker("mosquitto", persistent=False) as second,
        EmbeddedBroker("mosquitto", persistent=False) as third,
    ):
        later = (parse_broker_url(second.url), parse_broker_url(third.url))
        settings = SimSettings(broker=dead, fallback_brokers=later, speed=600.0, tick=0.05)
        publisher = SimPublisher(settings)
        stop = threading.Event()
        runner = threading.Thread(target=publisher.run, args=(stop,))
        runner.start()
        try:
            wait_until(publisher.connected.is_set, 10, "connected to the second broker")
            assert publisher.brokers.url == second.url
            second.stop()
            wait_until(lambda: publisher.stats.connects == 2, 15, "connected again")
            assert publisher.brokers.url == third.url and publisher.connected.is_set()
        finally:
            stop.set()
            runner.join(10)
        assert not runner.is_alive()
