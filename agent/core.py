"""The agent core: runs the devices and turns what they report into spooled events.

Each device gets a :class:`DeviceSlot`, the core's implementation of
:class:`agent.devices.base.DeviceContext`. ``emit`` validates the event with
the wire contract's own decoder (a field the contract refuses is a bad frame,
counted and never published), stamps the next ``seq`` and writes it to the
spool before anything is published.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Final

import msgspec

from agent.devices.base import Device, DeviceConfig, DeviceContext
from agent.errors import AgentError
from agent.kinds import device_kinds
from agent.spool import Spool, SpoolError
from branchwatch.contract import DeviceStatus, Event, Notify, decode_events, encode
from branchwatch.errors import ContractError

log = logging.getLogger(__name__)

RESERVED_FIELDS: Final = frozenset(("v", "seq", "device"))
BAD_FRAME_LOG_INTERVAL: Final = 10.0
DEVICE_RESTART_MAX: Final = 30.0
DROP_LOG_INTERVAL: Final = 60.0
_raw_encoder: Final = msgspec.json.Encoder()


def checked_event(
    context: DeviceContext, seq: int, ts: float, type_: str, fields: dict[str, Any]
) -> Event | None:
    """The event as the collector will decode it, or None after a counted bad frame."""
    if RESERVED_FIELDS & fields.keys():
        reserved = sorted(RESERVED_FIELDS & fields.keys())
        context.bad_frame("reserved_field", f"{type_}: fields {reserved}")
        return None
    raw = {"v": 1, "seq": seq, "ts": ts, "device": context.device_id, "type": type_, **fields}
    try:
        # The contract's own decoder: what passes here, the collector accepts.
        (event,) = decode_events(_raw_encoder.encode(raw))
    except ContractError as exc:
        context.bad_frame(exc.reason, f"{type_}: {exc.detail}")
        return None
    except (TypeError, ValueError) as exc:  # a field value JSON cannot carry
        context.bad_frame("bad_value", f"{type_}: {exc}")
        return None
    return event


class DeviceSlot:
    """One device's view of the core (implements ``DeviceContext``)."""

    def __init__(self, core: AgentCore, config: DeviceConfig) -> None:
        self._core = core
        self.config = config
        self.link: bool | None = None  # None: not reported yet
        self.bad_frames: Counter[str] = Counter()
        self._bad_logged_at = -BAD_FRAME_LOG_INTERVAL
        self._bad_unlogged = 0

    @property
    def device_id(self) -> str:
        return self.config.id

    def emit(self, type: str, ts: float | None = None, **fields: Any) -> None:
        self._core.record(self, type, ts, fields)

    def set_link(self, up: bool) -> None:
        previous, self.link = self.link, up
        if previous == up or self._core.stopping:
            return  # an adapter closing its port on shutdown is no fault
        self._core.status_changed.set()
        if not up:
            log.warning("device %s: link down", self.device_id)
            self.emit("device.fault", fault="link_down")
        elif previous is False:
            log.info("device %s: link up again", self.device_id)
            self.emit("device.recovered", fault="link_down")

    def bad_frame(self, reason: str, detail: str = "") -> None:
        """Count it; log the first of a burst and then a summary at most every 10 s."""
        self.bad_frames[reason] += 1
        now = time.monotonic()
        if now - self._bad_logged_at < BAD_FRAME_LOG_INTERVAL:
            self._bad_unlogged += 1
            return
        more = f" (+{self._bad_unlogged} more since the last report)" if self._bad_unlogged else ""
        log.warning("device %s: bad frame (%s) %s%s", self.device_id, reason, detail[:200], more)
        self._bad_logged_at, self._bad_unlogged = now, 0


class AgentCore:
    """Devices, their slots and the spool they write to."""

    def __init__(
        self,
        devices: tuple[DeviceConfig, ...],
        spool: Spool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spool = spool
        self.clock = clock
        # Set when a new event is spooled (the publisher drains) or the status changes.
        self.new_events = asyncio.Event()
        self.status_changed = asyncio.Event()
        self.slots = {config.id: DeviceSlot(self, config) for config in devices}
        self.devices: dict[str, Device] = {}
        self.events_recorded = 0
        self.failure: SpoolError | None = None
        self.stopping = False
        self._dropped_seen = spool.dropped
        self._drops_logged_at = -DROP_LOG_INTERVAL
        self.failed = asyncio.Event()

    def build_devices(self) -> None:
        """Instantiate every configured device; a missing kind or bad option is fatal."""
        kinds = device_kinds()
        for device_id, slot in self.slots.items():
            kind = kinds.get(slot.config.protocol)
            if kind is None:
                known = ", ".join(sorted(kinds)) or "none"
                raise AgentError(
                    f"device {device_id}: protocol {slot.config.protocol!r} is not available "
                    f"in this build (known: {known})"
                )
            self.devices[device_id] = kind(slot.config, slot)

    def record(
        self, slot: DeviceSlot, type_: str, ts: float | None, fields: dict[str, Any]
    ) -> bool:
        """Validate, stamp and spool one event; False (and a bad frame) if refused."""
        seq = self.spool.next_seq
        event = checked_event(slot, seq, self.clock() if ts is None else ts, type_, fields)
        if event is None:
            return False
        try:
            self.spool.append(seq, event.ts, encode(event))
        except SpoolError as exc:
            # Not the device's fault: stop the agent (systemd restarts it), do not
            # let an adapter swallow it. The event is not acknowledged to anyone.
            if self.failure is None:
                log.error("spool write failed, stopping: %s", exc)
                self.failure = exc
                self.failed.set()
            return False
        self.events_recorded += 1
        self.new_events.set()
        if self.spool.dropped != self._dropped_seen:
            self._report_drops()
        return True

    def _report_drops(self) -> None:
        """The spool hit its bound: say so in status now, and in the log once a minute."""
        self.status_changed.set()
        now = time.monotonic()
        if now - self._drops_logged_at >= DROP_LOG_INTERVAL:
            log.error(
                "spool full (%d events / %d bytes max): dropped %d oldest unsent events so far",
                self.spool.max_events, self.spool.max_bytes, self.spool.dropped,
            )  # fmt: skip
            self._drops_logged_at = now
        self._dropped_seen = self.spool.dropped

    def device_status(self) -> dict[str, DeviceStatus]:
        result = {}
        for device_id, slot in self.slots.items():
            device = self.devices.get(device_id)
            kind = getattr(device, "kind", None) or "unknown"
            result[device_id] = DeviceStatus(kind=kind, link="up" if slot.link else "down")
        return result

    async def run_devices(self) -> None:
        """Run every device until cancelled, restarting one that stops or fails."""
        async with asyncio.TaskGroup() as group:
            for device_id, device in self.devices.items():
                group.create_task(self._supervise(device_id, device), name=f"device-{device_id}")

    async def _supervise(self, device_id: str, device: Device) -> None:
        delay = 1.0
        while True:
            started = time.monotonic()
            try:
                await device.run()
                log.warning("device %s: adapter returned; restarting it", device_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # an adapter bug must not stop the other devices
                log.exception("device %s: adapter failed; restarting it", device_id)
            self.slots[device_id].set_link(False)
            if time.monotonic() - started > 60:
                delay = 1.0
            await asyncio.sleep(delay)
            delay = min(delay * 2, DEVICE_RESTART_MAX)

    async def notify(self, command: Notify) -> int:
        """Offer a floor notice to every device; return how many took it."""
        taken = 0
        for device_id, device in self.devices.items():
            try:
                if await device.notify(command):
                    taken += 1
                    log.info(
                        "notice %s for post %d delivered by %s",
                        command.id,
                        command.position,
                        device_id,
                    )
            except Exception:  # one device failing must not stop the others
                log.exception("device %s: notify failed", device_id)
        if not taken:
            log.warning("notice %s for post %d: no device took it", command.id, command.position)
        return taken
