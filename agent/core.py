"""The agent core: runs the devices and turns what they report into spooled events.

Each device gets a :class:`DeviceSlot`, the core's implementation of
:class:`agent.devices.base.DeviceContext`. ``emit`` takes a contract event
the device already checked where its input entered, stamps the next ``seq``
and the device id, and writes it to the spool (encoded once) before anything
is published.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Final, Literal

import msgspec

from agent.devices.base import UNSTAMPED, Device, DeviceConfig, DeviceKind, kind_for
from agent.eventclock import EventClock
from agent.notices import DeliveredNotices
from agent.spool import Spool, SpoolError, SpoolWriteError
from branchwatch.contract import DeviceStatus, Event, Notify, encode
from branchwatch.contract.events import DeviceFault, DeviceRecovered
from branchwatch.contract.ids import is_token
from branchwatch.contract.messages import MAX_BAD_FRAME_REASONS, OTHER_REASON
from branchwatch.logthrottle import ThrottledLog
from branchwatch.retry import Backoff

log = logging.getLogger(__name__)

BAD_FRAME_LOG_INTERVAL: Final = 10.0
DROP_LOG_INTERVAL: Final = 60.0
REFUSE_LOG_INTERVAL: Final = 60.0
DEVICE_RESTART_FIRST: Final = 1.0
DEVICE_RESTART_MAX: Final = 30.0
# An adapter that ran this long before it stopped was working: restart it quickly again.
DEVICE_HEALTHY_RUN: Final = 60.0


class DeviceSlot:
    """One device's view of the core (implements ``DeviceContext``)."""

    def __init__(self, core: AgentCore, config: DeviceConfig) -> None:
        self._core = core
        self.config = config
        self.link: bool | None = None  # None: not reported yet
        self.bad_frames: Counter[str] = Counter()

    @property
    def device_id(self) -> str:
        return self.config.id

    def now(self) -> float:
        return self._core.clock()

    def emit(self, event: Event) -> None:
        self._core.record(self, event)

    def set_link(self, up: bool) -> None:
        previous, self.link = self.link, up
        if previous == up or self._core.stopping:
            return  # an adapter closing its port on shutdown is no fault
        self._core.status_changed.set()
        if not up:
            log.warning("device %s: link down", self.device_id)
            self.emit(DeviceFault(**UNSTAMPED, ts=self.now(), fault="link_down"))
        elif previous is False:
            log.info("device %s: link up again", self.device_id)
            self.emit(DeviceRecovered(**UNSTAMPED, ts=self.now(), fault="link_down"))

    def bad_frame(self, reason: str, detail: str = "") -> None:
        """Count it; log the first of a burst and then a summary at most every 10 s.

        The counts go out in the status as they are counted: a reason that is no
        token, or one beyond the status's bound, counts as "other". A reason seen
        for the first time republishes the status now; the rest ride the next one.
        """
        counted = reason
        known = self.bad_frames
        # One entry stays free for "other".
        named = len(known) - (OTHER_REASON in known)
        if counted not in known and (not is_token(counted) or named >= MAX_BAD_FRAME_REASONS - 1):
            counted = OTHER_REASON
        if counted not in known and not self._core.stopping:
            self._core.status_changed.set()
        known[counted] += 1
        self._core.bad_frame_log.warning(
            "device %s: bad frame (%s) %s", self.device_id, reason, detail[:200],
            key=self.device_id,
        )  # fmt: skip


class AgentCore:
    """Devices, their slots and the spool they write to.

    ``kinds`` maps each protocol name to its factory (the agent passes
    :data:`agent.devices.registry.DEVICE_KINDS`; tests pass their own).
    ``clock`` is the wall clock; events and statuses are stamped by an
    :class:`EventClock` over it, which resumes from the spool's last stamp.
    """

    def __init__(
        self,
        devices: tuple[DeviceConfig, ...],
        spool: Spool,
        kinds: Mapping[str, DeviceKind],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spool = spool
        self.kinds = kinds
        self.clock = EventClock(clock, since=spool.stamp)
        # Set when a new event is spooled (the publisher drains) or the status changes.
        self.new_events = asyncio.Event()
        self.status_changed = asyncio.Event()
        self.slots = {config.id: DeviceSlot(self, config) for config in devices}
        self.devices: dict[str, Device] = {}
        self.events_recorded = 0
        self.failure: SpoolError | None = None
        self.stopping = False
        self.bad_frame_log = ThrottledLog(log, BAD_FRAME_LOG_INTERVAL)
        self._drop_log = ThrottledLog(log, DROP_LOG_INTERVAL)
        self._dropped_seen = spool.dropped
        self._refuse_log = ThrottledLog(log, REFUSE_LOG_INTERVAL)
        self._refusing = False
        self.failed = asyncio.Event()
        self.notices = DeliveredNotices()  # a notice id goes to the devices once

    def build_devices(self) -> None:
        """Instantiate every configured device; an unknown kind or bad option is fatal."""
        for device_id, slot in self.slots.items():
            self.devices[device_id] = kind_for(slot.config, self.kinds)(slot.config, slot)

    def record(self, slot: DeviceSlot, event: Event) -> bool:
        """Stamp ``seq`` and the device id, encode once, spool; False if not stored."""
        seq = self.spool.next_seq
        stamped = msgspec.structs.replace(event, seq=seq, device=slot.device_id)
        try:
            self.spool.append(seq, stamped.ts, encode(stamped), stamp=self.clock.latest)
        except SpoolWriteError as exc:
            # The disk refused it (full): the event is lost, but the agent goes on
            # reading its devices and sending what it holds, and stores again as soon
            # as the disk takes it. The seq was not used: no gap for the collector.
            self._report_refusal(exc)
            return False
        except SpoolError as exc:
            # Not the device's fault: do not let an adapter swallow it. The event is not
            # acknowledged to anyone.
            self.fail(exc, "write")
            return False
        self.events_recorded += 1
        self.new_events.set()
        if self._refusing:
            # Throttled too: a disk on the edge of full may take one event and refuse the next.
            self._refusing = False
            self._refuse_log.log(
                logging.INFO, "spool stores events again (%d refused so far)",
                self.spool.refused, key="again",
            )  # fmt: skip
        if self.spool.dropped != self._dropped_seen:
            self._report_drops()
        return True

    def fail(self, exc: SpoolError, doing: str) -> None:
        """A corrupt spool file (or a bug): stop the agent. systemd restarts it, and a
        corrupt spool is set aside then."""
        if self.failure is None:
            log.error("spool %s failed, stopping: %s", doing, exc)
            self.failure = exc
            self.failed.set()

    def _report_refusal(self, exc: SpoolWriteError) -> None:
        """In the status at once (its refused count), in the log once a minute."""
        self._refusing = True
        self.status_changed.set()
        self._refuse_log.error(
            "%s: event refused (%d so far); devices still read, stored events still sent",
            exc, self.spool.refused,
        )  # fmt: skip

    def _report_drops(self) -> None:
        """The spool hit its bound: say so in status now, and in the log once a minute."""
        self.status_changed.set()
        self._drop_log.error(
            "spool full (%d events / %d bytes max): dropped %d oldest unsent events so far",
            self.spool.max_events, self.spool.max_bytes, self.spool.dropped,
        )  # fmt: skip
        self._dropped_seen = self.spool.dropped

    def device_status(self) -> dict[str, DeviceStatus]:
        result = {}
        for device_id, slot in self.slots.items():
            device = self.devices.get(device_id)
            kind = getattr(device, "kind", None) or "unknown"
            link: Literal["up", "down"] = "up" if slot.link else "down"
            result[device_id] = DeviceStatus(kind=kind, link=link, bad_frames=dict(slot.bad_frames))
        return result

    async def run_devices(self) -> None:
        """Run every device until cancelled, restarting one that stops or fails."""
        async with asyncio.TaskGroup() as group:
            for device_id, device in self.devices.items():
                group.create_task(self._supervise(device_id, device), name=f"device-{device_id}")

    async def _supervise(self, device_id: str, device: Device) -> None:
        backoff = Backoff(DEVICE_RESTART_FIRST, DEVICE_RESTART_MAX)
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
            if time.monotonic() - started > DEVICE_HEALTHY_RUN:
                backoff.reset()
            await asyncio.sleep(backoff.next())

    async def notify(self, command: Notify) -> int:
        """Offer a floor notice to every device; return how many took it.

        A notice id delivered already (the other collector of an HA pair sent it too)
        is not offered again: 0, logged at DEBUG and counted in ``notices.repeats``.
        """
        claim = await self.notices.claim(command.id)
        if claim is None:
            log.debug("notice %s for post %d: delivered already", command.id, command.position)
            return 0
        taken = 0
        try:
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
        finally:
            self.notices.done(claim, taken)
        if not taken:
            log.warning("notice %s for post %d: no device took it", command.id, command.position)
        return taken
