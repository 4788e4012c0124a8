"""The collector's command line: clear errors, no tracebacks; reconnect after a broker restart."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from branchwatch.broker import EmbeddedBroker
from branchwatch.config import load_toml
from collector.config import CollectorConfig
from tests.integration import scenario
from tests.support import CollectorProcess, FakeAgent, sample, wait_until

pytestmark = pytest.mark.integration


def run_cli(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "branchwatch", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize(
    ("config", "flags", "message"),
    [
        ("[mqtt]\nbrokr = 'x'\n", [], "unknown field `brokr`"),
        ("[mqtt]\nkeepalive_seconds = 'ten'\n", [], "mqtt.keepalive_seconds"),
        ("[floor]\nrequired_posts = [1, 9]\n", [], "floor.required_posts"),
        ("[floor]\nservices = ['Cash']\n", [], "Cash"),
        ("not toml at all [", [], "not valid TOML"),
        ("", ["--broker", "http://host:1883"], "mqtt:// or mqtts://"),
        ("", ["--broker", "mqtt://user:secret@host"], "password file"),
        ("", ["--http", "nohostport"], "HOST:PORT"),
        ("", ["--region", "North"], "not a valid region id"),
    ],
)
def test_bad_config_is_a_clear_error(
    tmp_path: Path, config: str, flags: list[str], message: str
) -> None:
    path = tmp_path / "collector.toml"
    path.write_text(config)
    result = run_cli("collector", "run", "--config", str(path), *flags)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "secret" not in result.stderr  # a password never reaches the output


def test_missing_config_file(tmp_path: Path) -> None:
    result = run_cli("collector", "run", "--config", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert "cannot read config" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_explains_the_endpoints() -> None:
    result = run_cli("collector", "run", "--help")
    assert result.returncode == 0
    for text in ("/metrics", "/readyz", "--state-dir", "mqtts://"):
        assert text in result.stdout


def test_sample_config_is_valid_and_complete() -> None:
    sample_path = Path(__file__).parents[2] / "deploy" / "collector.toml"
    loaded = load_toml(sample_path, CollectorConfig)
    loaded.validate()
    assert loaded == CollectorConfig()  # the sample documents the defaults


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
        agent = FakeAgent(mosquitto.port, scenario.REGION, scenario.BRANCH, scenario.AGENT)
        try:
            agent.publish(scenario.events(1, 8))
            wait_until(
                lambda: (
                    sample(
                        collector.metrics(),
                        "branchwatch_tickets_issued_total",
                        **scenario.L(service="cash"),
                    )
                    == 1
                ),
                10,
                "ingest after the restart",
            )
        finally:
            agent.close()
        assert sample(collector.metrics(), "branchwatch_collector_mqtt_connected") == 1
    finally:
        collector.kill()
