"""Strict TOML config loading shared by every program.

One typed schema per program (msgspec structs with ``forbid_unknown_fields``),
defaults in the schema, and one error type that names the file and the key.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Callable
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import msgspec

from branchwatch.errors import ConfigError

T = TypeVar("T")
Tables = dict[str, Any]  # a parsed TOML document


def load_toml(
    path: str | Path, schema: type[T], adjust: Callable[[Tables], Tables] | None = None
) -> T:
    """Decode ``path`` into ``schema``; unknown keys and wrong types are errors.

    ``adjust`` may rewrite the parsed tables first (a program that still accepts
    keys of an older layout); a :class:`ConfigError` it raises names the file.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    return decode_toml(data, schema, str(path), adjust)


def decode_toml(
    data: bytes | str,
    schema: type[T],
    source: str = "<config>",
    adjust: Callable[[Tables], Tables] | None = None,
) -> T:
    try:
        tables = tomllib.loads(data.decode() if isinstance(data, bytes) else data)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    try:
        if adjust is not None:
            tables = adjust(tables)
        # What msgspec.toml.decode does after parsing, with the tables in our hands.
        return msgspec.convert(
            tables, type=schema, str_keys=True, builtin_types=(datetime, date, time)
        )
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {_readable(str(exc))}") from exc
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def _readable(message: str) -> str:
    # msgspec says "at `$.mqtt.broker`"; operators think in TOML keys.
    return message.replace("`$.", "`").replace("- at `$`", "")


def read_secret(path: str | Path, what: str) -> str:
    """A secret from a file (never from the command line, never logged)."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        secret = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} file {path}: {exc.strerror or exc}") from exc
    if not secret:
        raise ConfigError(f"{what} file {path} is empty")
    if mode & 0o004:
        # Readable by everyone: warn loudly but keep running, installers fix modes later.
        logging.getLogger(__name__).warning("%s file %s is world-readable (chmod 600)", what, path)
    return secret


class BrokerAddress(msgspec.Struct, frozen=True):
    host: str
    port: int
    tls: bool


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtt://HOST[:PORT]`` or ``mqtts://HOST[:PORT]`` (TLS, default port 8883)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ConfigError(f"broker URL {url!r}: scheme must be mqtt:// or mqtts://")
    if parts.password is not None or parts.username is not None:
        raise ConfigError(
            f"broker URL for host {parts.hostname!r} carries credentials: "
            "put the username in the config and the password in a password file"
        )
    if not parts.hostname:
        raise ConfigError(f"broker URL {url!r} has no host")
    if parts.path not in ("", "/") or parts.query:
        raise ConfigError(f"broker URL {url!r}: only scheme, host and port are allowed")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise ConfigError(f"broker URL {url!r}: bad port") from exc
    return BrokerAddress(parts.hostname, port, tls)


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` for a listening socket (``[::1]:9108`` for IPv6)."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"listen address {value!r}: expected HOST:PORT, e.g. 0.0.0.0:9108")
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104 - an empty host means all interfaces
    return host, int(port_text)
