"""MQTT connection settings shared by every program that talks to the broker.

The agent and the collector each extend :class:`MqttClientConfig` with what
only they need (and their own defaults); the connection keys, their meaning
and their checks live here once.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from branchwatch.config import parse_broker_url
from branchwatch.contract.topics import DEFAULT_PREFIX
from branchwatch.errors import ConfigError

MqttProtocol = Literal["5", "3.1.1"]


class MqttClientConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (TLS); never credentials in the URL.
    broker: str = "mqtt://127.0.0.1:1883"
    protocol: MqttProtocol = "5"
    # Stable across restarts: the broker keeps this client's session.
    client_id: str = ""
    username: str = ""
    password_file: str = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    topic_prefix: str = DEFAULT_PREFIX
    keepalive_seconds: int = 30
    session_expiry_seconds: int = 86_400
    reconnect_min_seconds: float = 1.0
    reconnect_max_seconds: float = 30.0

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first ``mqtt.*`` key that cannot be used."""
        parse_broker_url(self.broker)
        checks = [
            (not self.topic_prefix or any(c in self.topic_prefix for c in "/+#"),
             "mqtt.topic_prefix must be one topic level without / + #"),
            (len(self.client_id) > 64, "mqtt.client_id must be at most 64 characters"),
            (self.keepalive_seconds < 5, "mqtt.keepalive_seconds must be >= 5"),
            (self.session_expiry_seconds < 0, "mqtt.session_expiry_seconds must be >= 0"),
            (not 0 < self.reconnect_min_seconds <= self.reconnect_max_seconds,
             "mqtt.reconnect_min_seconds must be > 0 and <= reconnect_max_seconds"),
            (bool(self.password_file) and not self.username,
             "mqtt.password_file needs mqtt.username"),
            (bool(self.key_file) != bool(self.cert_file),
             "mqtt.cert_file and mqtt.key_file go together"),
        ]  # fmt: skip
        for failed, message in checks:
            if failed:
                raise ConfigError(message)
