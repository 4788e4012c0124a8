"""What every device adapter is: the interface between devices and the agent core.

A device *kind* (protocol) is a pure codec (bytes in, frames/events out; no
I/O, like pymodbus framers) plus a transport loop that feeds it. Kinds are
registered by protocol name in :data:`agent.devices.registry.DEVICE_KINDS`,
never chosen by an if/elif chain.

The agent core gives each running device a :class:`DeviceContext`: the
device reports contract events through :meth:`DeviceContext.emit` (the core
stamps ``v``, ``seq`` and ``device``, spools, then publishes) and its link
state through :meth:`DeviceContext.set_link`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import msgspec

from agent.errors import DeviceError
from branchwatch.contract.ids import LocalId, Token
from branchwatch.contract.messages import Notify


class DeviceConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One ``[[devices]]`` entry of the agent's config."""

    id: LocalId
    # Protocol name: a key of DEVICE_KINDS ("queue-line", "evaluator-frame", ...).
    protocol: str
    # Where the device is: a pyserial URL ("/dev/ttyUSB0", "loop://", "socket://h:p",
    # "rfc2217://…"), "tcp://HOST:PORT", or for the http kind the listen "HOST:PORT".
    url: str = ""
    # Serial line settings (ignored by non-serial transports).
    baudrate: int = 9600
    # Protocol-specific options, validated by the kind (see docs/devices/<name>.md).
    options: dict[str, Any] = msgspec.field(default_factory=dict)


class DeviceContext(Protocol):
    """What the agent core offers a running device."""

    @property
    def device_id(self) -> str: ...

    def emit(self, type: str, ts: float | None = None, **fields: Any) -> None:
        """Record a contract event of ``type`` (e.g. ``"ticket.issued"``) with ``fields``.

        ``ts`` defaults to now. Never blocks: the core spools it (SQLite) and
        publishes it later. Raises nothing for well-formed input; a field the
        contract refuses is counted and logged by the core as a bad frame.
        """
        ...

    def set_link(self, up: bool) -> None:
        """Report the link state (status ``link``; ``device.fault link_down`` when it drops)."""
        ...

    def bad_frame(self, reason: str, detail: str = "") -> None:
        """Count a frame the codec refused (logged once per burst by the core)."""
        ...


class Device(Protocol):
    """A running device adapter (one per ``[[devices]]`` entry)."""

    kind: Token  # reported in status ("queue", "pad", "intercom", ...)

    async def run(self) -> None:
        """Talk to the device until cancelled; reconnect with backoff on link loss."""
        ...

    async def notify(self, command: Notify) -> bool:
        """Deliver a floor notice; False when this device does not take notices."""
        ...


class DeviceKind(Protocol):
    """A registry entry: validates options and builds the running adapter."""

    def __call__(self, config: DeviceConfig, context: DeviceContext) -> Device: ...


def option(options: Mapping[str, Any], name: str, default: Any, kind: type) -> Any:
    """A typed option with a default; raises DeviceError naming the option when wrong."""
    value = options.get(name, default)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise DeviceError(f"option {name!r} must be {kind.__name__}, got {value!r}")
    return value
