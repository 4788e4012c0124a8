"""The agent core without a broker: stamping, schema checks per event, link events,
status, notices, device kinds."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import status
from agent.core import AgentCore, DeviceSlot
from agent.devices.base import UNSTAMPED, DeviceConfig, DeviceContext
from agent.devices.frames import BadFrame
from agent.devices.queue_line import QueueLineDevice
from agent.devices.registry import DEVICE_KINDS
from agent.devices.testing import SchemaChecks
from agent.devices.transports import Link
from agent.errors import DeviceConfigError
from agent.spool import Spool
from branchwatch.contract import Event, Notify, decode_events, decode_status
from branchwatch.contract.events import BranchOpened, TicketCalled, TicketIssued
from tests.faults import agent_main


class Quiet:
    kind = "fake"

    def __init__(self, config: DeviceConfig, context: DeviceContext) -> None:
        self.config = config
        self.notices: list[str] = []

    async def run(self) -> None:
        await asyncio.Event().wait()

    async def notify(self, command: Notify) -> bool:
        if command.position != int(self.config.options.get("position", 0)):
            return False
        self.notices.append(command.id)
        return True


KINDS = {**DEVICE_KINDS, "unit-quiet": Quiet}


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path / "spool.db") as opened:
        yield opened


def make_core(spool: Spool, *positions: int) -> AgentCore:
    devices = tuple(
        DeviceConfig(id=f"d{i}", protocol="unit-quiet", options={"position": p})
        for i, p in enumerate(positions or (0,))
    )
    core = AgentCore(devices, spool, KINDS, clock=lambda: 1764053400.0)
    core.build_devices()
    return core


def events(spool: Spool) -> list[Event]:
    return [e for b in spool.held_batches(0, spool.last_seq) for e in decode_events(b.payload)]


def opened(slot: DeviceSlot) -> BranchOpened:
    return BranchOpened(**UNSTAMPED, ts=slot.now())


def test_emit_stamps_seq_and_device_and_spools(spool: Spool) -> None:
    core = make_core(spool)
    slot = core.slots["d0"]
    slot.emit(TicketIssued(**UNSTAMPED, ts=slot.now(), ticket="A001", service="cash"))
    # Whatever seq and device an event arrives with (the sim model sets its own), the
    # core's are the ones spooled.
    foreign = {"v": 1, "seq": 99, "device": "queue-7"}
    slot.emit(TicketCalled(**foreign, ts=1764053460.5, ticket="A001", counter="c1"))  # type: ignore[arg-type]
    assert core.new_events.is_set()
    first, second = events(spool)
    one = spool.last_seq - 1
    assert first == TicketIssued(
        v=1, seq=one, ts=1764053400.0, device="d0", ticket="A001", service="cash"
    )
    assert (second.seq, second.device, second.ts) == (one + 1, "d0", 1764053460.5)
    assert spool.depth == 2


def test_a_bad_frame_is_counted_by_reason_and_uses_no_seq(spool: Spool) -> None:
    core = make_core(spool)
    slot = core.slots["d0"]
    slot.bad_frame("bad_args", "ISSUE A1")
    slot.bad_frame("bad_args", "ISSUE A2")
    slot.bad_frame("unknown_verb", "HELLO")
    assert slot.bad_frames == {"bad_args": 2, "unknown_verb": 1}
    next_seq = spool.next_seq
    assert spool.held == 0
    slot.emit(opened(slot))
    assert [e.seq for e in events(spool)] == [next_seq]


class OneLine:
    """A link that delivers one line and then stays quiet (no EOF, no link-down event)."""

    def __init__(self, line: bytes) -> None:
        self.line = line

    async def read(self) -> bytes:
        if self.line:
            line, self.line = self.line, b""
            return line
        await asyncio.Event().wait()
        return b""

    async def write(self, data: bytes) -> None:
        raise AssertionError("nothing is written to a queue machine")

    def close(self) -> None:
        pass


def test_ticket_issued_from_a_serial_line_is_checked_once_and_encoded_once(
    spool: Spool,
) -> None:
    """Serial line to spool: one schema check (the codec's conversion), one encode.

    Before events were handed over as contract structs this path ran four checks
    (the codec's two id regexes, a msgspec conversion in the codec, the contract
    decoder in the core) and encoded twice.
    """
    config = DeviceConfig(id="queue-1", protocol="queue-line", url="loop://")
    core = AgentCore((config,), spool, KINDS, clock=lambda: 1764053400.0)
    core.build_devices()
    device = core.devices["queue-1"]
    assert isinstance(device, QueueLineDevice)

    async def one_line(url: str, baudrate: int = 9600) -> Link:
        return OneLine(b"ISSUE A001 cash\r\n")

    device.opener = one_line

    async def main() -> None:
        task = asyncio.create_task(device.run())
        try:
            await asyncio.wait_for(core.new_events.wait(), 5)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    with SchemaChecks() as calls:
        asyncio.run(main())
    assert calls.checks == ["msgspec convert"]
    assert calls.encodes == 1
    assert events(spool) == [
        TicketIssued(
            v=1, seq=spool.last_seq, ts=1764053400.0, device="queue-1", ticket="A001",
            service="cash",
        )
    ]  # fmt: skip
    # The same check refuses a bad id: a counted bad frame, no seq used.
    (refused,) = device.codec.feed(bytearray(b"ISSUE A001 Cash\n"))
    assert isinstance(refused, BadFrame) and refused.reason == "bad_args"
    assert "service" in refused.detail


def test_bad_frames_are_logged_once_per_burst(
    spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    slot = make_core(spool).slots["d0"]
    with caplog.at_level(logging.WARNING):
        for _ in range(50):
            slot.bad_frame("checksum", "frame 02 41 ff")
    assert slot.bad_frames["checksum"] == 50
    assert len([r for r in caplog.records if "bad frame" in r.message]) == 1


def test_link_changes_emit_fault_and_recovery(spool: Spool) -> None:
    core = make_core(spool)
    slot: DeviceSlot = core.slots["d0"]
    assert core.device_status()["d0"].link == "down"
    slot.set_link(True)  # first report: no event
    assert spool.held == 0 and core.status_changed.is_set()
    assert core.device_status()["d0"].link == "up"
    slot.set_link(True)
    slot.set_link(False)
    slot.set_link(False)
    slot.set_link(True)
    kinds = [(type(e).__name__, getattr(e, "fault", None)) for e in events(spool)]
    assert kinds == [("DeviceFault", "link_down"), ("DeviceRecovered", "link_down")]


def test_online_status_payload(spool: Spool) -> None:
    core = make_core(spool)
    core.slots["d0"].set_link(True)
    core.slots["d0"].emit(opened(core.slots["d0"]))
    online = decode_status(status.online(core, 7))
    assert (online.state, online.session) == ("online", 7)
    # The event clock: the wall clock (fixed here) or, if that stands still, later.
    assert online.ts is not None and 1764053400.0 <= online.ts < 1764053401.0
    assert online.devices["d0"].kind == "fake" and online.devices["d0"].link == "up"
    assert online.spool is not None
    assert (online.spool.depth, online.spool.oldest_ts, online.spool.dropped) == (
        1,
        1764053400.0,
        0,
    )
    assert online.spool.refused == 0


def test_notify_goes_to_the_devices_that_take_it(
    spool: Spool, caplog: pytest.LogCaptureFixture
) -> None:
    core = make_core(spool, 3, 5)
    notice = Notify(v=1, id="n-1", position=3, text="cover post 1")
    assert asyncio.run(core.notify(notice)) == 1
    assert core.devices["d0"].notices == ["n-1"]  # type: ignore[attr-defined]
    assert core.devices["d1"].notices == []  # type: ignore[attr-defined]
    with caplog.at_level(logging.WARNING):
        assert asyncio.run(core.notify(Notify(v=1, id="n-2", position=9, text="x"))) == 0
    assert "no device took it" in caplog.text


def test_unknown_protocol_names_the_known_ones(spool: Spool) -> None:
    core = AgentCore((DeviceConfig(id="q1", protocol="telex"),), spool, KINDS)
    with pytest.raises(DeviceConfigError, match=r"q1: unknown device protocol 'telex'.*unit-quiet"):
        core.build_devices()


def test_the_kinds_are_the_ones_passed_in(spool: Spool) -> None:
    # The shipped table is read-only; another mapping is handed to the core, not registered.
    with pytest.raises(TypeError):
        DEVICE_KINDS["unit-quiet"] = Quiet  # type: ignore[index]
    shipped_only = AgentCore((DeviceConfig(id="d0", protocol="unit-quiet"),), spool, DEVICE_KINDS)
    with pytest.raises(DeviceConfigError, match="known: evaluator-frame, http"):
        shipped_only.build_devices()


def test_no_fault_event_when_the_agent_stops(spool: Spool) -> None:
    core = make_core(spool)
    core.slots["d0"].set_link(True)
    core.stopping = True
    core.slots["d0"].set_link(False)
    assert spool.held == 0


def test_drops_at_the_spool_bound_are_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Spool(tmp_path / "small.db", max_events=10) as small:
        core = make_core(small)
        with caplog.at_level(logging.ERROR):
            for _ in range(15):
                core.slots["d0"].emit(opened(core.slots["d0"]))
        assert small.dropped == 5
        assert core.status_changed.is_set()
        assert len([r for r in caplog.records if "spool full" in r.message]) == 1
        assert decode_status(status.online(core, 1)).spool.dropped == 5  # type: ignore[union-attr]


class WallClock:
    """The branch PC's clock: someone may set it."""

    def __init__(self) -> None:
        self.now = 1795996800.0

    def __call__(self) -> float:
        return self.now


def test_event_times_never_go_back_when_the_pc_clock_is_set_back(spool: Spool) -> None:
    wall = WallClock()
    core = AgentCore((DeviceConfig(id="d0", protocol="unit-quiet"),), spool, KINDS, clock=wall)
    core.build_devices()
    slot = core.slots["d0"]
    slot.emit(opened(slot))
    wall.now -= 3600
    slot.emit(opened(slot))
    online = decode_status(status.online(core, 1))
    before, after = events(spool)
    assert before.ts == 1795996800.0
    assert before.ts <= after.ts < before.ts + 60  # time ran on from the last event
    assert online.ts is not None and online.ts >= after.ts


def test_a_restarted_agent_resumes_from_the_last_time_it_stamped(tmp_path: Path) -> None:
    wall = WallClock()
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        core = AgentCore((DeviceConfig(id="d0", protocol="unit-quiet"),), spool, KINDS, wall)
        core.slots["d0"].emit(opened(core.slots["d0"]))
        core.slots["d0"].now()  # a later stamp (a status), kept with the next event only
        last = events(spool)[-1].ts
    wall.now -= 3600  # set back while the agent was down
    with Spool(path) as spool:
        core = AgentCore((DeviceConfig(id="d0", protocol="unit-quiet"),), spool, KINDS, wall)
        core.slots["d0"].emit(opened(core.slots["d0"]))
        assert last <= events(spool)[-1].ts < last + 60


def test_the_fault_suites_clock_step_gives_monotone_event_times(
    spool: Spool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tests/faults/agent_main.py steps the clock it hands the core; times still never go back."""
    monkeypatch.setattr(agent_main, "_offset", 0.0)
    core = agent_main.SteppedCore((DeviceConfig(id="d0", protocol="unit-quiet"),), spool, KINDS)
    core.build_devices()
    slot = core.slots["d0"]
    before = slot.now()
    agent_main._step(signal.SIGUSR1, None)  # the hook's "set the clock back an hour"
    assert agent_main.stepped_clock() < before - 3000
    after = slot.now()
    assert before <= after < before + 60
