"""The running adapter shared by the byte-stream kinds (queue-line, evaluator-frame, intercom-line).

Each kind supplies a codec object with ``feed(buffer) -> results`` (complete
frames are removed from the buffer); this class runs the transport loop,
hands results to the context, and keeps the open link for kinds that write.
"""

from __future__ import annotations

import logging
from typing import Final, Protocol

from agent.devices.base import DeviceConfig, DeviceContext, check_options
from agent.devices.frames import BadFrame, Result
from agent.devices.transports import Link, check_url, open_link, run_link
from agent.errors import DeviceConfigError
from branchwatch.contract.messages import Notify
from branchwatch.retry import Backoff

log = logging.getLogger(__name__)

# A peer that sends bytes but never a complete frame must not grow our buffer forever;
# every codec's frames are far smaller than this.
MAX_BUFFER: Final = 64 * 1024


class StreamCodec(Protocol):
    def feed(self, buf: bytearray) -> list[Result]: ...

    def reset(self) -> None:
        """Forget partial framing (a new connection starts a new byte stream)."""
        ...


def deliver(context: DeviceContext, results: list[Result]) -> None:
    """Hand codec results to the core: events emitted, refused frames counted."""
    for result in results:
        if isinstance(result, BadFrame):
            context.bad_frame(result.reason, result.detail)
        else:
            context.emit(result)


def number_option(config: DeviceConfig, name: str, default: float) -> float:
    """A positive number option (int or float in TOML); DeviceConfigError naming it otherwise."""
    value = config.options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise DeviceConfigError(f"device {config.id}: option {name!r} must be a positive number")
    return float(value)


def reconnect_backoff(config: DeviceConfig) -> Backoff:
    first = number_option(config, "reconnect_min", 0.5)
    return Backoff(first, max(first, number_option(config, "reconnect_max", 30.0)))


class StreamDevice:
    """Talks to one device over a :class:`Link`; the codec's framing is reset per connection."""

    kind = "device"

    def __init__(
        self,
        config: DeviceConfig,
        context: DeviceContext,
        codec: StreamCodec,
        known_options: frozenset[str] = frozenset(),
    ) -> None:
        check_options(config, known_options | {"reconnect_min", "reconnect_max"})
        check_url(config.url)
        self.config = config
        self.context = context
        self.backoff = reconnect_backoff(config)
        self.codec = codec
        self.link: Link | None = None
        self.opener = open_link

    async def run(self) -> None:
        await run_link(
            self.config.url,
            self.config.baudrate,
            self.context,
            self._session,
            self.backoff,
            self.opener,
        )

    async def _session(self, link: Link) -> None:
        codec = self.codec
        codec.reset()
        buf = bytearray()
        self.link = link
        try:
            while data := await link.read():
                buf += data
                deliver(self.context, codec.feed(buf))
                if len(buf) > MAX_BUFFER:
                    self.context.bad_frame("overflow", f"{len(buf)} bytes without a frame")
                    buf.clear()
        finally:
            self.link = None

    async def notify(self, command: Notify) -> bool:
        return False
