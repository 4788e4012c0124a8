"""A list of brokers: how it is configured, checked, and walked through on failures."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from agent.config import load_config
from branchwatch.errors import ConfigError
from branchwatch.failover import BrokerRotation
from branchwatch.mqttconfig import MqttClientConfig
from branchwatch.sim.cli import configure as configure_sim
from branchwatch.sim.cli import settings_from
from collector.cli import configure as configure_collector
from collector.cli import load_config as load_collector_config

AGENT = 'region = "north"\nbranch = "b0001"\nagent = "agent-1"\n'


def test_one_url_or_a_list() -> None:
    assert MqttClientConfig(broker="mqtt://a:1883").brokers == ("mqtt://a:1883",)
    listed = MqttClientConfig(broker=("mqtts://a", "mqtts://b:8884"))
    assert listed.brokers == ("mqtts://a", "mqtts://b:8884")
    assert [(a.host, a.port, a.tls) for a in listed.broker_addresses()] == [
        ("a", 8883, True),
        ("b", 8884, True),
    ]
    assert listed.tls_context() is not None


def test_a_toml_list_loads(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(AGENT + '[mqtt]\nbroker = ["mqtt://a:1883", "mqtt://b:1883"]\n')
    assert load_config(path).mqtt.brokers == ("mqtt://a:1883", "mqtt://b:1883")


@pytest.mark.parametrize(
    ("brokers", "message"),
    [
        ((), "mqtt.broker: give at least one broker URL"),
        (("mqtt://a", "http://b"), "mqtt.broker[1]: broker URL 'http://b': scheme must be"),
        (("mqtt://a", "mqtt://u:p@b"), "mqtt.broker[1]: broker URL for host 'b' carries"),
        (("mqtt://a", "mqtts://b"), "mqtt.broker[1] 'mqtts://b': mixes mqtt:// and mqtts://"),
        (("mqtt://a", "mqtt://a"), "mqtt.broker[1] 'mqtt://a' is listed twice"),
    ],
)
def test_every_url_is_checked_and_named_by_its_index(
    brokers: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        MqttClientConfig(broker=brokers).validate()


def test_agent_flags_replace_the_configured_broker(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(AGENT + '[mqtt]\nbroker = "mqtt://configured:1883"\n')
    assert load_config(path, ["mqtt://x:1", "mqtt://y:2"]).mqtt.brokers == (
        "mqtt://x:1",
        "mqtt://y:2",
    )
    assert load_config(path, ["mqtt://x:1"]).mqtt.broker == "mqtt://x:1"
    with pytest.raises(ConfigError, match=r"--broker: mqtt.broker\[1\]"):
        load_config(path, ["mqtt://x:1", "ftp://y"])


def test_collector_and_simulator_flags_repeat() -> None:
    parser = argparse.ArgumentParser()
    configure_collector(parser)
    args = parser.parse_args(["run", "--broker", "mqtt://a:1", "--broker", "mqtt://b:2"])
    assert load_collector_config(args).mqtt.brokers == ("mqtt://a:1", "mqtt://b:2")

    sim = argparse.ArgumentParser()
    configure_sim(sim)
    settings = settings_from(sim.parse_args(["--broker", "mqtt://a:1", "--broker", "mqtt://b:2"]))
    assert (settings.broker.host, [b.host for b in settings.fallback_brokers]) == ("a", ["b"])
    assert settings_from(sim.parse_args([])).broker.port == 1883
    with pytest.raises(ConfigError, match="cannot be mixed"):
        settings_from(sim.parse_args(["--broker", "mqtt://a", "--broker", "mqtts://b"]))


def test_rotation_moves_on_at_once_and_waits_after_a_full_round() -> None:
    rotation = BrokerRotation(["mqtt://a", "mqtt://b", "mqtt://c"])
    assert rotation.describe() == "mqtt://a (broker 1 of 3)"
    # Starting: a and b refuse, c takes us; no wait until every one has failed.
    assert [rotation.failed(), rotation.failed()] == [False, False]
    assert rotation.url == "mqtt://c"
    rotation.connected()
    # c is lost: a at once, then b at once; both fail: back to c only after a wait.
    assert rotation.failed() is False and rotation.url == "mqtt://a"
    assert rotation.failed() is False and rotation.url == "mqtt://b"
    assert rotation.failed() is True and rotation.url == "mqtt://c"
    # After the wait a new round: c and a are tried without waiting in between.
    assert rotation.failed() is False and rotation.url == "mqtt://a"


def test_a_single_broker_waits_before_every_retry() -> None:
    rotation = BrokerRotation(["mqtt://only"])
    assert rotation.describe() == "mqtt://only"
    rotation.connected()
    assert rotation.failed() is True
    assert rotation.failed() is True and rotation.url == "mqtt://only"
