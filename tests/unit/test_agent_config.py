"""The agent's strict config: the sample loads, mistakes name their key."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from agent.config import AgentConfig, MqttConfig, SpoolConfig, load_config
from branchwatch.errors import ConfigError

SAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "agent.toml"
MINIMAL = 'region = "north"\nbranch = "b0001"\nagent = "agent-1"\n'


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_sample_loads_and_documents_every_key() -> None:
    config = load_config(SAMPLE)
    assert (config.region, config.branch, config.agent) == ("north", "b0001", "agent-1")
    assert [d.id for d in config.devices] == ["queue-1", "pad-c1", "intercom-1", "qms-http"]
    text = SAMPLE.read_text()
    for schema in (AgentConfig, MqttConfig, SpoolConfig):
        for field in msgspec.structs.fields(schema):
            key = f"\n[[{field.name}]]" if field.name == "devices" else f"\n{field.name} = "
            if field.name in ("mqtt", "spool"):
                key = f"\n[{field.name}]"
            assert key in text, f"{field.name} is not in the sample"


def test_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.client_id == "bw-north-b0001-agent-1"
    assert config.topic("cmd") == "bw/v1/north/b0001/agent-1/cmd"
    assert config.spool.retention_hours == 24.0
    assert config.devices == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MINIMAL + "colour = 1\n", "colour"),
        ('region = "North"\nbranch = "b"\nagent = "a"\n', "region"),
        ('branch = "b"\nagent = "a"\n', "region"),
        (MINIMAL + '[mqtt]\nbroker = "mqtt://u:p@host"\n', "credentials"),
        (MINIMAL + '[mqtt]\nbroker = "http://host"\n', "scheme"),
        (MINIMAL + '[mqtt]\nprotocol = "4"\n', "protocol"),
        (MINIMAL + '[mqtt]\npassword_file = "/x"\n', "needs mqtt.username"),
        (MINIMAL + '[mqtt]\ntopic_prefix = "a/b"\n', "topic_prefix"),
        (MINIMAL + "[spool]\nmax_events = 10\n", "max_events"),
        (MINIMAL + "[spool]\nretention_hours = -1.0\n", "retention_hours"),
        (MINIMAL + '[[devices]]\nid = "q1"\nprotocol = "x"\n' * 2, "appears twice"),
        (MINIMAL + '[[devices]]\nid = "q 1"\nprotocol = "x"\n', "devices"),
        (MINIMAL + '[[devices]]\nid = "q1"\nprotocol = "x"\nspeed = 3\n', "speed"),
    ],
)  # fmt: skip
def test_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.toml")
