"""Format-1 snapshots written before finished tickets were kept as a log still restore.

``tests/fixtures/snapshot-format1-tickets.bin`` was written by the collector of
commit 770e71a (finished tickets kept as whole ``Ticket`` structs),
``snapshot-format1-records.bin`` by that of 22a608a (one record a ticket id, in
a map), both from :data:`DAY`: every way a ticket ends (served, transferred and served, no-show,
walkout, closed, heard of only by its end), tickets whose issue is still
missing, live tickets, ratings of finished tickets and an unsatisfied one. The
tests restore it and check that the branch behaves as one fed the same events
by this code: the same views, screen, notices and snapshot, and the same
outcome of the late and new events that follow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest

from branchwatch.contract import events as ev
from collector.floor.config import FloorConfig
from collector.notices.config import NoticesConfig
from collector.screen import LobbyScreen
from collector.store import Store
from tests.unit import store_views
from tests.unit.events import E

FIXTURES: Final = [
    Path(__file__).parent.parent / "fixtures" / f"snapshot-format1-{kind}.bin"
    for kind in ("tickets", "records")
]
CONFIG: Final = FloorConfig()
NOTICES: Final = NoticesConfig()
NOW: Final = 3000.0


# Branch north/b1, agent a1; seqs 5 and 40-41 are missing (issues that come late in LATER).
DAY: Final[list[ev.Event]] = [
    E(ev.BranchOpened, 1, 1000.0),
    E(ev.CounterOpened, 2, 1001.0, counter="c1", kind="high", teller="t1"),
    E(ev.CounterOpened, 3, 1002.0, counter="c2", kind="low", teller="t2"),
    E(ev.PositionStaffed, 4, 1003.0, position=3, staff="dir"),
    # A1 served by t1 at c1, rated unsatisfied (the teller found from the ticket) later on.
    E(ev.TicketIssued, 6, 1010.0, ticket="A1", service="cash"),
    E(ev.TicketCalled, 7, 1100.0, ticket="A1", counter="c1"),
    E(ev.ServiceStarted, 8, 1105.0, ticket="A1", counter="c1", teller="t1"),
    E(ev.ServiceEnded, 9, 1400.0, ticket="A1", counter="c1"),
    E(ev.EvaluationRequested, 10, 2150.0, counter="c1", ticket="A1"),
    E(ev.EvaluationSubmitted, 11, 2155.0, counter="c1", rating="unsatisfied", ticket="A1"),
    # A2 (VIP) called, never came.
    E(ev.TicketIssued, 12, 1020.0, ticket="A2", service="vip", vip=True),
    E(ev.TicketCalled, 13, 1200.0, ticket="A2", counter="c1"),
    E(ev.TicketNoShow, 14, 1260.0, ticket="A2"),
    # A3 transferred cash -> non_cash, served at c2 by the counter's teller.
    E(ev.TicketIssued, 15, 1030.0, ticket="A3", service="cash"),
    E(ev.TicketTransferred, 16, 1130.0, ticket="A3", service="non_cash"),
    E(ev.TicketCalled, 17, 1300.0, ticket="A3", counter="c2"),
    E(ev.ServiceStarted, 18, 1310.0, ticket="A3", counter="c2"),
    E(ev.ServiceEnded, 19, 1700.0, ticket="A3", counter="c2"),
    E(ev.EvaluationSubmitted, 20, 1702.0, counter="c2", rating="very_satisfied", ticket="A3"),
    # W1..W6 walked out after waits of 100..600 s (enough for the screen's patience curve).
    *(
        event
        for n in range(1, 7)
        for event in (
            E(ev.TicketIssued, 19 + 2 * n, 1040.0 + n, ticket=f"W{n}", service="cash"),
            E(ev.TicketWalkout, 20 + 2 * n, 1040.0 + n + 100.0 * n, ticket=f"W{n}"),
        )
    ),
    # A5's issue (seq 5) is missing: called, served and ended, issued late.
    E(ev.TicketCalled, 33, 1500.0, ticket="A5", counter="c1"),
    E(ev.ServiceStarted, 34, 1510.0, ticket="A5", counter="c1", teller="t9"),
    E(ev.ServiceEnded, 35, 1800.0, ticket="A5", counter="c1"),
    # A6: its transfer came before its issue (seq 40, missing); served by c2's teller.
    E(ev.TicketTransferred, 36, 1550.0, ticket="A6", service="non_cash"),
    E(ev.TicketCalled, 37, 1600.0, ticket="A6", counter="c2"),
    E(ev.ServiceStarted, 38, 1610.0, ticket="A6", counter="c2"),
    E(ev.ServiceEnded, 39, 1900.0, ticket="A6", counter="c2"),
    # Z1, Z2: heard of only by their end (issues never seen).
    E(ev.TicketNoShow, 42, 1910.0, ticket="Z1"),
    E(ev.ServiceEnded, 43, 1920.0, ticket="Z2", counter="c2"),
    # Live at the snapshot: A7 waiting, A8 called, A9 being served.
    E(ev.TicketIssued, 44, 2000.0, ticket="A7", service="non_cash"),
    E(ev.TicketIssued, 45, 2010.0, ticket="A8", service="cash"),
    E(ev.TicketIssued, 46, 2020.0, ticket="A9", service="corporate"),
    E(ev.TicketCalled, 47, 2100.0, ticket="A8", counter="c1"),
    E(ev.TicketCalled, 48, 2110.0, ticket="A9", counter="c2"),
    E(ev.ServiceStarted, 49, 2115.0, ticket="A9", counter="c2", teller="t2"),
]

# Branch north/b2, agent a2: its day closed with tickets still waiting (lost "closed").
CLOSED_DAY: Final[list[ev.Event]] = [
    E(ev.BranchOpened, 1, 500.0),
    E(ev.TicketIssued, 2, 510.0, ticket="B1", service="cash"),
    E(ev.TicketIssued, 3, 520.0, ticket="B2", service="vip", vip=True),
    E(ev.TicketCalled, 4, 600.0, ticket="B1", counter="k1"),
    E(ev.BranchClosed, 5, 900.0),
]

LATER: Final[list[ev.Event]] = [
    E(ev.TicketIssued, 5, 1050.0, ticket="A5", service="cash"),  # late: settles A5's wait
    E(ev.TicketIssued, 40, 1540.0, ticket="A6", service="cash"),  # late: the owed transfer
    E(ev.TicketIssued, 41, 1040.0, ticket="A1", service="cash"),  # before A1 ended: duplicate
    E(ev.EvaluationSubmitted, 50, 2200.0, counter="c2", rating="satisfied", ticket="A6"),
    E(ev.EvaluationSubmitted, 51, 2210.0, counter="c1", rating="unsatisfied", ticket="A5"),
    E(ev.ServiceStarted, 52, 2220.0, ticket="A8", counter="c1", teller="t1"),
    E(ev.ServiceEnded, 53, 2400.0, ticket="A8", counter="c1"),
    E(ev.TicketCalled, 54, 2410.0, ticket="A2", counter="c1"),  # a finished no-show: stays so
    E(ev.TicketIssued, 55, 2500.0, ticket="A1", service="non_cash"),  # A1's id used again
    E(ev.TicketWalkout, 56, 2600.0, ticket="A7"),
]


def fed_store() -> Store:
    """The fixture's two branches, fed their events by this code."""
    store = Store(CONFIG, notices=NOTICES)
    store.apply_events("north", "b1", "a1", DAY, received=2200.0)
    store.apply_events("north", "b2", "a2", CLOSED_DAY, received=901.0)
    return store


def observable(store: Store, screen: LobbyScreen) -> tuple[object, ...]:
    """What users see of the fixture's two branches."""
    return store_views.observable(store, screen, NOW, "north", ("b1", "b2"))


@pytest.fixture(params=FIXTURES, ids=lambda path: path.stem)
def restored_store(request: pytest.FixtureRequest) -> Store:
    fixture: Path = request.param
    return Store.restore(CONFIG, fixture.read_bytes(), notices=NOTICES)


def test_the_fixture_restores_as_the_day_fed_now(restored_store: Store) -> None:
    restored, fed = restored_store, fed_store()
    screen = LobbyScreen()
    assert observable(restored, screen) == observable(fed, screen)
    assert restored.snapshot() == fed.snapshot()
    called = screen.view(restored.branch_state("north", "b1"), "north", "b1", "en", NOW).called
    assert [(c.ticket, c.counter) for c in called[:3]] == [("A9", "c2"), ("A8", "c1"), ("A6", "c2")]
    unsatisfied = [e for e in restored.notices_of("north", "b1") or [] if e.kind == "unsatisfied"]
    assert [(e.ticket, e.teller, e.waited) for e in unsatisfied] == [("A1", "t1", 90.0)]


def test_the_restored_day_goes_on_as_the_fed_one(restored_store: Store) -> None:
    restored, fed = restored_store, fed_store()
    results = [s.apply_events("north", "b1", "a1", LATER, received=2250.0) for s in (restored, fed)]
    assert results[0] == results[1]
    assert (results[0].late, results[0].rejected) == (2, {"duplicate_ticket": 1})
    screen = LobbyScreen()
    assert observable(restored, screen) == observable(fed, screen)
    assert restored.snapshot() == fed.snapshot()
    detail = restored.branch_detail("north", "b1", now=NOW)
    assert detail is not None
    assert {t.ticket: t.state for t in detail.tickets} == {"A1": "waiting", "A9": "serving"}
    unsatisfied = [e for e in restored.notices_of("north", "b1") or [] if e.kind == "unsatisfied"]
    assert [(e.ticket, e.teller, e.waited) for e in unsatisfied][-1] == ("A5", "t9", 450.0)
