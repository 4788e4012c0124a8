"""The agent's config schema: strict TOML, defaults in one place.

See ``deploy/agent.toml`` for the commented sample. Unknown keys, wrong types
and unusable values stop the agent at start with a message naming the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import msgspec

from agent.devices.base import DeviceConfig
from branchwatch.config import load_toml
from branchwatch.contract.ids import SiteId
from branchwatch.contract.topics import topic_for
from branchwatch.errors import ConfigError
from branchwatch.mqttconfig import MqttClientConfig, broker_setting


class MqttConfig(MqttClientConfig, frozen=True, forbid_unknown_fields=True):
    # Empty: "bw-{region}-{branch}-{agent}". Must stay stable: the broker keeps
    # this client's session (its cmd subscription and queued commands).
    client_id: str = ""
    reconnect_min_seconds: float = 0.5
    status_interval_seconds: float = 60.0
    # A PUBACK that does not come within this time counts as a lost connection.
    publish_timeout_seconds: float = 15.0


class SpoolConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    path: str = "/var/lib/branchwatch-agent/spool.db"
    # Bounds on what the spool holds (sent events kept for replay + unsent ones).
    # At the bound the oldest events are dropped, counted and reported in status.
    max_events: int = 1_000_000
    max_bytes: int = 512 * 1024 * 1024
    # Sent events are kept this long to answer a collector's `replay`.
    retention_hours: float = 24.0


class AgentConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    region: SiteId
    branch: SiteId
    agent: SiteId
    mqtt: MqttConfig = MqttConfig()
    spool: SpoolConfig = SpoolConfig()
    devices: tuple[DeviceConfig, ...] = ()

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"bw-{self.region}-{self.branch}-{self.agent}"

    def topic(self, kind: str) -> str:
        """``{prefix}/v1/{region}/{branch}/{agent}/{kind}`` (kind may be ``doctor``)."""
        base = topic_for(self.region, self.branch, self.agent, "events", self.mqtt.topic_prefix)
        return base.rsplit("/", 1)[0] + "/" + kind


def load_config(path: str | Path, brokers: Sequence[str] = ()) -> AgentConfig:
    """The config at ``path``; ``brokers`` (``--broker`` flags) replace its ``mqtt.broker``."""
    config = load_toml(path, AgentConfig)
    if brokers:
        mqtt = msgspec.structs.replace(config.mqtt, broker=broker_setting(brokers))
        try:
            mqtt.broker_addresses()
        except ConfigError as exc:
            raise ConfigError(f"--broker: {exc}") from exc
        config = msgspec.structs.replace(config, mqtt=mqtt)
    validate(config, str(path))
    return config


def validate(config: AgentConfig, source: str = "<config>") -> None:
    """Checks a type cannot say: raise ConfigError naming the key."""
    mqtt, spool = config.mqtt, config.spool
    try:
        mqtt.validate()
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    checks = [
        (mqtt.status_interval_seconds <= 0, "mqtt.status_interval_seconds must be > 0"),
        (mqtt.publish_timeout_seconds <= 0, "mqtt.publish_timeout_seconds must be > 0"),
        (not spool.path, "spool.path must not be empty"),
        (spool.max_events < 1000, "spool.max_events must be >= 1000"),
        (spool.max_bytes < 1024 * 1024, "spool.max_bytes must be >= 1 MiB"),
        (spool.retention_hours < 0, "spool.retention_hours must be >= 0"),
    ]  # fmt: skip
    for failed, message in checks:
        if failed:
            raise ConfigError(f"{source}: {message}")
    seen: set[str] = set()
    for device in config.devices:
        if device.id in seen:
            raise ConfigError(f"{source}: devices: id {device.id!r} appears twice")
        seen.add(device.id)
