"""The collector's command line: its help, its sample config; reconnect after a broker restart.

Bad flags and configs (exit status 2, one error line) are tested with every other
command's in ``test_cli_exit_codes``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from branchwatch.broker import EmbeddedBroker
from branchwatch.config import load_toml
from collector.config import CollectorConfig
from tests.integration import scenario
from tests.integration.test_collector_restart import issued_cash
from tests.support import CollectorProcess, FakeAgent, run_cli, sample, wait_until

pytestmark = pytest.mark.integration


def test_help_explains_the_endpoints() -> None:
    result = run_cli("collector", "run", "--help")
    assert result.returncode == 0
    for text in ("/metrics", "/readyz", "--state-dir", "mqtts://", "exit status"):
        assert text in result.stdout


def test_sample_config_is_valid_and_complete() -> None:
    sample_path = Path(__file__).parents[2] / "deploy" / "collector.toml"
    loaded = load_toml(sample_path, CollectorConfig)
    loaded.validate()
    assert loaded == CollectorConfig()  # the sample documents the defaults


def ticket_reaches(collector: CollectorProcess, broker_port: int, what: str) -> None:
    """A fake agent publishes the script's first ticket; the collector counts it within 10 s."""
    agent = FakeAgent(broker_port, scenario.REGION, scenario.BRANCH, scenario.AGENT)
    try:
        agent.publish(scenario.events(1, 8))
        wait_until(lambda: issued_cash(collector) == 1, 10, what)
    finally:
        agent.close()


@pytest.fixture
def forgetful_broker(mosquitto: EmbeddedBroker) -> Iterator[EmbeddedBroker]:
    """A Mosquitto without persistence: a restart forgets every session."""
    with EmbeddedBroker("mosquitto", persistent=False) as broker:
        yield broker


def test_reconnects_and_resubscribes_after_a_broker_restart(
    forgetful_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    mosquitto = forgetful_broker
    collector = CollectorProcess(mosquitto.url, tmp_path, "reconnect").start()
    try:
        mosquitto.restart()
        wait_until(lambda: collector.get("/readyz")[0] == 503, 10, "the loss to be noticed")
        wait_until(lambda: collector.get("/readyz")[0] == 200, 20, "resubscribed")
        ticket_reaches(collector, mosquitto.port, "ingest after the restart")
        assert sample(collector.metrics(), "branchwatch_collector_mqtt_connected") == 1
    finally:
        collector.kill()
