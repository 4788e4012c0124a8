"""The agent core without a broker: emit validation, link events, status, notices."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent import status
from agent.core import AgentCore, DeviceSlot
from agent.devices.base import DeviceConfig, DeviceContext
from agent.errors import AgentError
from agent.kinds import register
from agent.spool import Spool
from branchwatch.contract import Event, Notify, decode_events, decode_status


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


register("unit-quiet", Quiet)


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    with Spool(tmp_path / "spool.db") as opened:
        yield opened


def make_core(spool: Spool, *positions: int) -> AgentCore:
    devices = tuple(
        DeviceConfig(id=f"d{i}", protocol="unit-quiet", options={"position": p})
        for i, p in enumerate(positions or (0,))
    )
    core = AgentCore(devices, spool, clock=lambda: 1764053400.0)
    core.build_devices()
    return core


def events(spool: Spool) -> list[Event]:
    return [e for b in spool.held_batches(0, spool.last_seq) for e in decode_events(b.payload)]


def test_emit_stamps_v_seq_device_and_spools(spool: Spool) -> None:
    core = make_core(spool)
    slot = core.slots["d0"]
    slot.emit("ticket.issued", ticket="A001", service="cash")
    slot.emit("ticket.called", ts=1764053460.5, ticket="A001", counter="c1")
    assert core.new_events.is_set()
    first, second = events(spool)
    assert (first.seq, first.device, first.ts) == (1, "d0", 1764053400.0)
    assert (second.seq, second.ts) == (2, 1764053460.5)
    assert spool.depth == 2


@pytest.mark.parametrize(
    ("type_", "fields", "reason"),
    [
        ("ticket.issued", {"ticket": "A1", "service": "Cash Desk"}, "bad_identifier"),
        ("ticket.issued", {"ticket": "A1"}, "missing_field"),
        ("ticket.printed", {"ticket": "A1"}, "unknown_type"),
        ("position.staffed", {"position": 0}, "bad_value"),
        ("ticket.issued", {"ticket": "A1", "service": "cash", "seq": 7}, "reserved_field"),
        ("ticket.issued", {"ticket": object(), "service": "cash"}, "bad_value"),
    ],
)
def test_a_refused_event_is_a_counted_bad_frame_and_uses_no_seq(
    spool: Spool, type_: str, fields: dict[str, Any], reason: str
) -> None:
    core = make_core(spool)
    slot = core.slots["d0"]
    slot.emit(type_, **fields)
    assert slot.bad_frames == {reason: 1}
    assert spool.last_seq == 0 and spool.held == 0
    slot.emit("branch.opened")
    assert [e.seq for e in events(spool)] == [1]


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


def test_status_payloads(spool: Spool) -> None:
    core = make_core(spool)
    core.slots["d0"].set_link(True)
    core.slots["d0"].emit("branch.opened")
    online = decode_status(status.online(core, 7))
    assert (online.state, online.session, online.ts) == ("online", 7, 1764053400.0)
    assert online.devices["d0"].kind == "fake" and online.devices["d0"].link == "up"
    assert online.spool is not None
    assert (online.spool.depth, online.spool.oldest_ts, online.spool.dropped) == (
        1,
        1764053400.0,
        0,
    )
    assert status.will(7) == b'{"v":1,"state":"offline","session":7}'
    offline = decode_status(status.offline(7, 1764053401.0))
    assert (offline.state, offline.session, offline.ts) == ("offline", 7, 1764053401.0)


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
    core = AgentCore((DeviceConfig(id="q1", protocol="telex"),), spool)
    with pytest.raises(AgentError, match=r"protocol 'telex' is not available.*unit-quiet"):
        core.build_devices()


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
                core.slots["d0"].emit("branch.opened")
        assert small.dropped == 5
        assert core.status_changed.is_set()
        assert len([r for r in caplog.records if "spool full" in r.message]) == 1
        assert decode_status(status.online(core, 1)).spool.dropped == 5  # type: ignore[union-attr]
