"""MQTT connection settings shared by every program that talks to the broker.

The agent and the collector each extend :class:`MqttClientConfig` with what
only they need (and their own defaults); the connection keys, their meaning
and their checks live here once.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence
from typing import Final, Literal

import msgspec

from branchwatch.config import BrokerAddress, parse_broker_url
from branchwatch.contract.topics import DEFAULT_PREFIX
from branchwatch.errors import ConfigError
from branchwatch.tlsfiles import check_pem_pair, read_tls_files

MqttProtocol = Literal["5", "3.1.1"]


class MqttClientConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (TLS); never credentials in the URL.
    # A list: the nodes of a broker cluster (or independent brokers), tried in turn:
    # the first that answers, the next one when it is lost.
    broker: str | tuple[str, ...] = "mqtt://127.0.0.1:1883"
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

    @property
    def brokers(self) -> tuple[str, ...]:
        """Every broker URL, in the order they are tried."""
        return (self.broker,) if isinstance(self.broker, str) else self.broker

    def broker_addresses(self) -> tuple[BrokerAddress, ...]:
        """The brokers parsed; raises :class:`ConfigError` naming the first unusable one."""
        if isinstance(self.broker, str):
            return (parse_broker_url(self.broker),)
        if not self.broker:
            raise ConfigError("mqtt.broker: give at least one broker URL")
        addresses: list[BrokerAddress] = []
        for index, url in enumerate(self.broker):
            try:
                address = parse_broker_url(url)
            except ConfigError as exc:
                raise ConfigError(f"mqtt.broker[{index}]: {exc}") from None
            if addresses and address.tls != addresses[0].tls:
                # One TLS context (CA, client certificate) serves every broker in the list.
                raise ConfigError(
                    f"mqtt.broker[{index}] {url!r}: mixes mqtt:// and mqtts:// in one list"
                )
            if url in self.broker[:index]:
                raise ConfigError(f"mqtt.broker[{index}] {url!r} is listed twice")
            addresses.append(address)
        return tuple(addresses)

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first ``mqtt.*`` key that cannot be used."""
        self.broker_addresses()
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

    def tls_context(self) -> ssl.SSLContext | None:
        """The client TLS context for an ``mqtts://`` broker (None for ``mqtt://``)."""
        if not self.broker_addresses()[0].tls:  # every broker of a list alike
            return None
        return tls_context(self.ca_file, self.cert_file, self.key_file)


BROKER_FLAG_HELP: Final = (
    "mqtt://HOST:PORT or mqtts://HOST:PORT (TLS); repeat it for a list of brokers "
    "(cluster nodes), tried in turn: the first that answers, the next when it is lost"
)


def broker_setting(urls: Sequence[str]) -> str | tuple[str, ...]:
    """``mqtt.broker`` from repeated ``--broker`` flags (one URL stays a plain string)."""
    return urls[0] if len(urls) == 1 else tuple(urls)


# What each TLS file holds, for errors that say which file is wrong.
_TLS_FILE_ROLES: Final = {
    "ca_file": "CA certificates",
    "cert_file": "client certificate",
    "key_file": "client key",
}


def tls_context(
    ca_file: str = "",
    cert_file: str = "",
    key_file: str = "",
    names: Mapping[str, str] | None = None,
) -> ssl.SSLContext:
    """A client TLS context: the system's CAs unless ``ca_file``, a client certificate if
    ``cert_file`` (its key in ``key_file``, or in the same file).

    Raises :class:`ConfigError` naming the file (by its key, or by ``names[key]``, e.g. a
    command-line flag) and its path.
    """

    def fail(key: str, path: str, problem: str) -> ConfigError:
        name = (names or {}).get(key, f"mqtt.{key}")
        return ConfigError(f"{name} {path}: {problem}")

    paths = {"ca_file": ca_file, "cert_file": cert_file, "key_file": key_file}
    contents = read_tls_files(paths, _TLS_FILE_ROLES, fail)
    try:
        context = ssl.create_default_context(cafile=ca_file or None)
    except ssl.SSLError as exc:
        raise fail("ca_file", ca_file, f"no usable CA certificate in it ({exc.reason})") from exc
    if not cert_file:
        return context
    key_text = contents.get("key_file", contents["cert_file"])
    key_source = ("key_file", key_file) if key_file else ("cert_file", cert_file)
    check_pem_pair(contents["cert_file"], ("cert_file", cert_file), key_text, key_source, fail)
    try:
        context.load_cert_chain(cert_file, key_file or None)
    except ssl.SSLError as exc:
        raise fail(
            *key_source, f"the key does not fit the certificate {cert_file} ({exc.reason})"
        ) from exc
    return context
