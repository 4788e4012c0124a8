"""What every device adapter is: the interface between devices and the agent core.

A device *kind* (protocol) is a pure codec (bytes in, frames/events out; no
I/O, like pymodbus framers) plus a transport loop that feeds it. Kinds are
looked up by protocol name in a mapping (the shipped one is
:data:`agent.devices.registry.DEVICE_KINDS`), never chosen by an if/elif chain.

The agent core gives each running device a :class:`DeviceContext`: the
device reports contract events (the typed structs of
:mod:`branchwatch.contract.events`) through :meth:`DeviceContext.emit` (the
core stamps ``seq`` and ``device``, spools, then publishes) and its link
state through :meth:`DeviceContext.set_link`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, Final, Literal, Protocol, TypedDict

import msgspec

from agent.errors import DeviceConfigError
from branchwatch.contract.events import Event
from branchwatch.contract.ids import LocalId, Token
from branchwatch.contract.messages import Notify

# Unix seconds now; kinds take one so tests can drive time (default: the context's now()).
Clock = Callable[[], float]


class Header(TypedDict):
    """The fields of an event that are the core's to fill in, not the device's."""

    v: Literal[1]
    seq: int
    device: str


UNSTAMPED: Final[Header] = {"v": 1, "seq": 0, "device": "unstamped"}
"""Header of an event as a device builds it (``TicketIssued(**UNSTAMPED, ts=…, …)``):
the core replaces ``seq`` and ``device`` when it spools the event."""


class DeviceConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One ``[[devices]]`` entry of the agent's config."""

    id: LocalId
    # Protocol name: a key of the kinds mapping ("queue-line", "evaluator-frame", ...).
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

    def now(self) -> float:
        """The agent's clock (Unix seconds): the ``ts`` of an event the device gives no time."""
        ...

    def emit(self, event: Event) -> None:
        """Record a contract event, built with the :data:`UNSTAMPED` header.

        The core stamps its ``seq`` and ``device``, spools it (SQLite) and
        publishes it later; it never blocks and checks nothing again: the
        event's fields were checked where they entered (the codec's
        :func:`agent.devices.frames.to_event`, the http body's decoder).
        """
        ...

    def set_link(self, up: bool) -> None:
        """Report the link state (status ``link``; ``device.fault link_down`` when it drops)."""
        ...

    def bad_frame(self, reason: str, detail: str = "") -> None:
        """Count a frame the codec refused (logged once per burst by the core)."""
        ...


class Device(Protocol):
    """A running device adapter (one per ``[[devices]]`` entry).

    Optional: ``describe_link(up: bool) -> str``, how ``agent doctor`` words
    the link state (a server says "listening on HOST:PORT"; default "link up").
    """

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


def kind_for(config: DeviceConfig, kinds: Mapping[str, DeviceKind]) -> DeviceKind:
    """The kind of ``config.protocol``; the one "unknown kind" error, naming the known ones."""
    try:
        return kinds[config.protocol]
    except KeyError:
        known = ", ".join(sorted(kinds)) or "none"
        raise DeviceConfigError(
            f"device {config.id}: unknown device protocol {config.protocol!r} (known: {known})"
        ) from None


def check_options(config: DeviceConfig, known: Collection[str]) -> None:
    """DeviceConfigError naming the options this kind does not have (a typo in the config)."""
    unknown = set(config.options) - set(known)
    if unknown:
        raise DeviceConfigError(f"device {config.id}: unknown options {sorted(unknown)}")


def option(options: Mapping[str, Any], name: str, default: Any, kind: type) -> Any:
    """A typed option with a default; raises DeviceConfigError naming the option when wrong."""
    value = options.get(name, default)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise DeviceConfigError(f"option {name!r} must be {kind.__name__}, got {value!r}")
    return value
