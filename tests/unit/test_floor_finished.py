"""Finished tickets as compact records: every fact comes back; a bad record is forgotten."""

from __future__ import annotations

import math
from typing import Final

import msgspec
import pytest

from branchwatch.contract import events as ev
from collector.floor import finished
from collector.floor.branch import Ticket
from collector.floor.config import FloorConfig
from collector.snapshot import MAGIC
from collector.store import Store

SERVICES = dict.fromkeys(("cash", "non_cash", "vip", "corporate"))

TICKETS = [
    Ticket(state="done"),
    Ticket(
        service="cash",
        state="done",
        issued_ts=1010.0,
        wait_since=1010.0,
        called_ts=1100.0,
        counter="c1",
        teller="t1",
        started_ts=1105.5,
        ended_ts=1400.25,
        done_ts=1400.25,
        wait_counted=True,
        served_counted=True,
        service_counted=True,
    ),
    Ticket(
        service="non_cash",
        state="done",
        vip=True,
        issued_ts=1030.0,
        wait_since=1130.0,
        transferred_ts=1130.0,
        called_ts=1300.0,
        counter="c2",
        lost="no_show",
        done_ts=1360.0,
        wait_counted=True,
        lost_counted=True,
    ),
    # Seven different times (the most a record holds), a zero of each sign, a transfer
    # still owed and the longest ids.
    Ticket(
        service="vip",
        state="done",
        issued_ts=0.0,
        wait_since=-0.0,
        transferred_ts=3.0,
        called_ts=4.0,
        counter="C" * 32,
        teller="T" * 32,
        started_ts=5.0,
        ended_ts=6.0,
        lost="walkout",
        done_ts=7.0,
        transfer_owed="corporate",
    ),
    Ticket(state="done", lost="closed", done_ts=1.0e9 + 0.123456789, lost_counted=True),
]


@pytest.mark.parametrize("ticket", TICKETS)
def test_a_record_gives_back_the_ticket(ticket: Ticket) -> None:
    back = finished.unpack(finished.pack(ticket), SERVICES)
    assert back == ticket
    assert back is not None
    for name in finished.TIMES:
        value, kept = getattr(ticket, name), getattr(back, name)
        if value is not None:
            assert math.copysign(1.0, value) == math.copysign(1.0, kept), name


def test_a_served_ticket_keeps_each_time_once() -> None:
    issued, ended = 1010.0, 1400.25
    ticket = msgspec.structs.replace(TICKETS[1], wait_since=issued, done_ts=ended)
    ticket.issued_ts, ticket.ended_ts = issued, ended
    # The word, 4 doubles (the wait from the issue, done at the end), 4 strings.
    assert len(finished.pack(ticket)) == 4 + 4 * 8 + len("cash c1 t1 \x01")


@pytest.mark.parametrize(
    "record",
    [
        b"",
        b"\x00\x00\x00",
        finished.pack(TICKETS[1])[:-1],
        finished.pack(TICKETS[1]) + b"x",
        b"\x00\x00\x00\xf0" + finished.pack(TICKETS[0])[4:],  # a loss beyond the reasons
        finished.pack(TICKETS[1]).replace(b"cash", b"\xff\xfesh"),
        finished.pack(TICKETS[1]).replace(b"cash", b"gold"),  # a service not configured
    ],
)
def test_a_record_that_cannot_be_read_is_none(record: bytes) -> None:
    assert finished.unpack(record, SERVICES) is None


def _entry(ticket_id: bytes, record: bytes) -> bytes:
    """A log entry as the collector frames it (collector.floor.finished_log)."""
    return (
        bytes((len(ticket_id), len(record)))
        + ticket_id
        + record
        + bytes((len(ticket_id) + len(record) + 3,))
    )


ONE_TICKET_DAY: Final = [
    ev.BranchOpened(v=1, seq=1, ts=100.0, device="q"),
    ev.TicketIssued(v=1, seq=2, ts=110.0, device="q", ticket="A1", service="cash"),
    ev.TicketCalled(v=1, seq=3, ts=120.0, device="q", ticket="A1", counter="c1"),
    ev.ServiceStarted(v=1, seq=4, ts=125.0, device="q", ticket="A1", counter="c1"),
    ev.ServiceEnded(v=1, seq=5, ts=130.0, device="q", ticket="A1", counter="c1"),
]
LATE_END: Final = [
    ev.EvaluationSubmitted(
        v=1, seq=6, ts=140.0, device="q", counter="c1", rating="satisfied", ticket="A1"
    ),
    ev.ServiceEnded(v=1, seq=7, ts=150.0, device="q", ticket="A1", counter="c1"),
]


def _restored_with_log(entries: bytes) -> Store:
    """A one-ticket day, restored from its snapshot with the finished log replaced."""
    store = Store(FloorConfig())
    store.apply_events("r", "b", "a", ONE_TICKET_DAY, received=131.0)
    document = msgspec.msgpack.decode(store.snapshot()[len(MAGIC) :])
    document["branches"][0]["finished_log"]["entries"] = entries
    document["branches"][0]["finished_log"]["index"] = b"\xff" * 5  # never trusted
    return Store.restore(FloorConfig(), MAGIC + msgspec.msgpack.encode(document))


def test_a_tampered_record_forgets_its_ticket_without_failing() -> None:
    restored = _restored_with_log(_entry(b"A1", b"\x07"))
    result = restored.apply_events("r", "b", "a", LATE_END, received=151.0)
    assert (result.applied, result.rejected) == (2, {})
    state = restored.branch_state("r", "b")
    assert state is not None
    kept = finished.get(state, "A1")
    assert kept is not None and kept.ended_ts == 150.0  # known again from its late end


@pytest.mark.parametrize(
    "tail",
    [
        b"\x00\x01\x07\x04",  # an empty id
        b"\x02\x01B",  # cut short
        _entry(b"B2", b"\x07")[:-1] + b"\x09",  # its length byte does not match
        _entry(b"A2", finished.pack(TICKETS[2])),  # A2 again: the first is kept
    ],
)
def test_a_log_that_does_not_frame_keeps_the_entries_before(tail: bytes) -> None:
    first = _entry(b"A2", finished.pack(TICKETS[1]))
    restored = _restored_with_log(first + tail)
    state = restored.branch_state("r", "b")
    assert state is not None
    assert [(t, ticket) for t, ticket in finished.newest(state)] == [("A2", TICKETS[1])]
    assert finished.get(state, "A1") is None
    result = restored.apply_events("r", "b", "a", LATE_END, received=151.0)
    assert (result.applied, result.rejected) == (2, {})
    assert [t for t, _ in finished.newest(state)] == ["A1", "A2"]


def test_the_oldest_finished_tickets_are_forgotten_beyond_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(finished, "MAX_FINISHED_TICKETS", 2)
    store = Store(FloorConfig())
    store.apply_events(
        "r",
        "b",
        "a",
        [ev.TicketNoShow(v=1, seq=n, ts=100.0 + n, device="q", ticket=f"A{n}") for n in (1, 2, 3)],
        received=110.0,
    )
    state = store.branch_state("r", "b")
    assert state is not None
    assert [ticket_id for ticket_id, _ in finished.newest(state)] == ["A3", "A2"]
