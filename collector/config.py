"""The collector's config schema: strict TOML, defaults in one place.

See ``deploy/collector.toml`` for the commented sample. Command-line flags
override the file (``collector.cli``). The ``[thresholds]`` table is the one
source of every service target (the alert rules and boards are built from the
same file); the wait keys are still accepted in ``[floor]``, where older
configs had them.
"""

from __future__ import annotations

import logging
import math
import ssl
from pathlib import Path
from typing import Final

import msgspec

from branchwatch.config import Tables, load_toml, parse_listen
from branchwatch.contract.ids import is_site_id
from branchwatch.errors import ConfigError
from branchwatch.mqttconfig import MqttClientConfig
from branchwatch.thresholds import (
    DEFAULT_THRESHOLDS,
    FLOOR_ALIASES,
    Thresholds,
    thresholds_from_tables,
)
from collector.floor.config import FloorConfig
from collector.httpsecurity import BasicAuth, server_tls_context
from collector.notices.config import NoticesConfig
from collector.notices.texts import Language

log = logging.getLogger(__name__)

MAX_RECENT_CALLS: Final = 20  # called tickets a lobby screen can list
MAX_SERVICE_NAME: Final = 40  # characters of a service's name on the lobby screen


class MqttConfig(MqttClientConfig, frozen=True, forbid_unknown_fields=True):
    # Stable across restarts: the broker keeps this client's session and queues
    # QoS 1 messages for it while the collector is down.
    client_id: str = "branchwatch-collector"
    # Subscribe to these regions only (one collector per region when scaling out); empty: all.
    regions: tuple[str, ...] = ()
    # Ask an agent for a replay at most this often when its seq has gaps.
    replay_min_interval_seconds: float = 10.0


class HttpConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``[http]``: the listener, its TLS and basic auth (the exporter-toolkit's model), limits."""

    listen: str = "0.0.0.0:9108"
    # Where the docs are published (http(s)://...): linked from the index page at /.
    docs_url: str = ""
    # TLS: a certificate and its key (PEM, both or neither); with a client CA, every
    # client must present a certificate it signed (mTLS).
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""
    # name -> bcrypt hash; any user turns basic auth on for /metrics and /api/.
    basic_auth_users: dict[str, str] = msgspec.field(default_factory=dict)
    max_connections: int = 4096
    read_header_timeout_seconds: float = 5.0
    idle_timeout_seconds: float = 60.0
    write_timeout_seconds: float = 30.0

    def validate(self) -> None:
        """Raise :class:`ConfigError` for the first ``http.*`` key that cannot be used."""
        parse_listen(self.listen)
        if self.docs_url and not self.docs_url.startswith(("http://", "https://")):
            raise ConfigError("http.docs_url must be an http(s):// URL (or empty)")
        if self.max_connections < 1:
            raise ConfigError("http.max_connections must be >= 1")
        for key in ("read_header", "idle", "write"):
            if getattr(self, f"{key}_timeout_seconds") <= 0:
                raise ConfigError(f"http.{key}_timeout_seconds must be > 0")
        self.tls_context()
        self.basic_auth()

    def tls_context(self) -> ssl.SSLContext | None:
        """The server's TLS context; None when TLS is off."""
        return server_tls_context(self.tls_cert_file, self.tls_key_file, self.tls_client_ca_file)

    def basic_auth(self) -> BasicAuth | None:
        """The credentials check; None when no user is configured (auth off)."""
        return BasicAuth(self.basic_auth_users) if self.basic_auth_users else None


class StateConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Empty: no snapshots (state is rebuilt from replays and live traffic only).
    dir: str = ""
    snapshot_interval_seconds: float = 15.0
    # A branch with no message for this long is dropped from /metrics and the API.
    stale_after_seconds: float = 7 * 86_400.0


class GrafanaConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Annotate the branch floor board when a required post is emptied or filled again.
    enabled: bool = False
    url: str = ""  # Grafana base URL, http(s)://HOST[:PORT][/PATH]
    token_file: str = ""  # a service-account token (Editor), mode 600; never logged
    dashboard_uid: str = "branchwatch-floor"
    timeout_seconds: float = 5.0
    # Incidents waiting to be posted; beyond this the newest are dropped and counted.
    queue_size: int = 1000


class ScreenConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``[screen]``: the lobby screen at ``/screen/REGION/BRANCH`` (docs/lobby-screen.md).

    Open without credentials even when basic auth protects ``/metrics`` and the API:
    a TV in the lobby shows what customers already see, never a staff id.
    """

    enabled: bool = True
    # What customers read ("en" or "zh"); a screen's URL may ask for the other with
    # ?lang=. Staff read the floor notices in notices.language.
    language: Language = "en"
    # How often the page asks for fresh figures (seconds).
    refresh_seconds: float = 5.0
    # How many of the latest called tickets it lists.
    recent_calls: int = 6
    # Service names per language, over the built-in ones: {en = {cash = "Cash"}, ...}.
    service_names: dict[Language, dict[str, str]] = msgspec.field(default_factory=dict)

    def validate(self, services: tuple[str, ...]) -> None:
        """Raise :class:`ConfigError` for the first ``screen.*`` key that cannot be used."""
        if not (math.isfinite(self.refresh_seconds) and 1.0 <= self.refresh_seconds <= 300.0):
            raise ConfigError(
                f"screen.refresh_seconds must be within 1..300, got {self.refresh_seconds!r}"
            )
        if not 0 <= self.recent_calls <= MAX_RECENT_CALLS:
            raise ConfigError(
                f"screen.recent_calls must be within 0..{MAX_RECENT_CALLS}, got {self.recent_calls}"
            )
        for language, names in self.service_names.items():
            unknown = sorted(set(names) - set(services))
            if unknown:
                raise ConfigError(
                    f"screen.service_names.{language} names services {unknown} that are not "
                    f"in floor.services {list(services)}"
                )
            for service, name in names.items():
                if not name.strip() or len(name) > MAX_SERVICE_NAME:
                    raise ConfigError(
                        f"screen.service_names.{language}.{service} must be 1 to "
                        f"{MAX_SERVICE_NAME} characters"
                    )


class CollectorConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    mqtt: MqttConfig = MqttConfig()
    http: HttpConfig = HttpConfig()
    state: StateConfig = StateConfig()
    floor: FloorConfig = FloorConfig()
    thresholds: Thresholds = DEFAULT_THRESHOLDS
    notices: NoticesConfig = NoticesConfig()
    grafana: GrafanaConfig = GrafanaConfig()
    screen: ScreenConfig = ScreenConfig()

    def validate(self) -> None:
        """Everything msgspec's types cannot say; raises :class:`ConfigError`."""
        self.mqtt.validate()
        self.http.validate()
        for region in self.mqtt.regions:
            if not is_site_id(region):
                raise ConfigError(f"mqtt.regions: {region!r} is not a valid region id")
        if not self.mqtt.client_id:
            raise ConfigError("mqtt.client_id must not be empty")
        if self.state.snapshot_interval_seconds <= 0:
            raise ConfigError("state.snapshot_interval_seconds must be > 0")
        if self.state.stale_after_seconds <= 0:
            raise ConfigError("state.stale_after_seconds must be > 0")
        self.thresholds.validate()
        self.floor.validate(self.thresholds, notices=self.notices.enabled)
        self.notices.validate({post.position for post in self.floor.posts})
        self.screen.validate(self.floor.services)
        grafana = self.grafana
        if grafana.enabled:
            if not grafana.url.startswith(("http://", "https://")):
                raise ConfigError("grafana.url must be http(s)://HOST[:PORT] when enabled")
            if not grafana.token_file:
                raise ConfigError("grafana.token_file is required when grafana is enabled")
            if not grafana.dashboard_uid:
                raise ConfigError("grafana.dashboard_uid must not be empty")
        if grafana.timeout_seconds <= 0 or grafana.queue_size < 1:
            raise ConfigError("grafana.timeout_seconds must be > 0 and queue_size >= 1")


def load_collector_config(path: str | Path) -> CollectorConfig:
    """The config file at ``path``, strictly decoded (not yet validated)."""
    return load_toml(path, CollectorConfig, _wait_keys_into_thresholds)


def _wait_keys_into_thresholds(tables: Tables) -> Tables:
    """``[thresholds]`` as :func:`thresholds_from_tables` reads it (the defaults that follow
    ``[notices]``); ``floor.wait_*`` (older configs) moved there; both at once is an error."""
    resolved = {**tables, "thresholds": msgspec.to_builtins(thresholds_from_tables(tables))}
    floor = tables.get("floor")
    if not isinstance(floor, dict) or not any(key in floor for key in FLOOR_ALIASES):
        return resolved
    log.warning(
        "%s in [floor] are read as [thresholds]: move them there",
        ", ".join(key for key in FLOOR_ALIASES if key in floor),
    )
    return {
        **resolved,
        "floor": {key: value for key, value in floor.items() if key not in FLOOR_ALIASES},
    }
