"""The lobby screen's wait estimate, on floors built by events through a real store.

Every expected number is worked out by hand in the test's comments. Unless a test says
otherwise the model has no turnaround, so a counter time is the median/prior alone.
"""

from __future__ import annotations

from typing import Any

import pytest

from branchwatch.contract import events as ev
from collector.floor.branch import BranchState
from collector.floor.config import FloorConfig
from collector.floor.estimate import (
    DEFAULT_MODEL,
    EstimateModel,
    Patience,
    WaitEstimate,
    counter_seconds,
    estimate_waits,
)
from collector.store import Store

PLAIN = EstimateModel(turnaround_seconds=0.0)  # S = 300 s before any data
NOW = 2000.0


class Floor:
    """One branch, opened at 1000, fed one event at a time."""

    def __init__(self, config: FloorConfig | None = None) -> None:
        self.store = Store(config or FloorConfig())
        self.seq = 0
        self(ev.BranchOpened, 1000)

    def __call__(self, cls: type[ev.Event], ts: float, **fields: Any) -> None:
        self.seq += 1
        event = cls(v=1, seq=self.seq, ts=float(ts), device="q1", **fields)
        result = self.store.apply_events("r1", "b1", "a1", [event], received=ts)
        assert not result.rejected, result.rejected

    @property
    def state(self) -> BranchState:
        state = self.store.branch_state("r1", "b1")
        assert state is not None
        return state

    def counter(self, counter: str, kind: str | None, ts: float = 1001) -> None:
        if kind is None:
            self(ev.CounterOpened, ts, counter=counter)
        else:
            self(ev.CounterOpened, ts, counter=counter, kind=kind, teller=f"t-{counter}")

    def issue(self, ticket: str, service: str, ts: float) -> None:
        self(ev.TicketIssued, ts, ticket=ticket, service=service)

    def serve(self, ticket: str, counter: str, called: float, took: float) -> None:
        """Call, start 10 s later, end ``took`` after the call."""
        self(ev.TicketCalled, called, ticket=ticket, counter=counter)
        self(ev.ServiceStarted, called + 10, ticket=ticket, counter=counter, teller="t")
        self(ev.ServiceEnded, called + took, ticket=ticket, counter=counter)

    def waits(self, model: EstimateModel = PLAIN, now: float = NOW) -> dict[str, WaitEstimate]:
        return estimate_waits(self.state, now, model)


@pytest.fixture
def floor() -> Floor:
    return Floor()


def test_an_idle_counter_means_no_wait_and_a_service_nobody_serves_has_none(
    floor: Floor,
) -> None:
    floor.counter("c1", "high")
    waits = floor.waits()
    assert waits["cash"] == WaitEstimate(0, 0.0, 1, 0, 300.0)
    assert waits["non_cash"].seconds is None  # no low counter
    assert waits["corporate"].seconds is None  # low counters too
    assert waits["vip"].seconds is None


def test_a_service_without_a_counter_kind_takes_any_counter() -> None:
    floor = Floor(FloorConfig(services=("cash", "loans")))
    floor.counter("c1", "high")
    floor.issue("A1", "cash", 1950)
    # A1 -> c1 (idle): free at 300; a loans ticket taken now is next on c1.
    loans = floor.waits()["loans"]
    assert (loans.waiting, loans.seconds, loans.counters_open) == (0, 300.0, 1)


def test_one_busy_counter_takes_the_queue_in_turn(floor: Floor) -> None:
    floor.counter("c1", "high")
    floor.issue("A1", "cash", 1900)
    floor(ev.TicketCalled, 1940, ticket="A1", counter="c1")  # at the counter for 60 s
    floor.issue("A2", "cash", 1950)
    floor.issue("A3", "cash", 1960)
    # c1: free in 300 - 60 = 240, then A2 (+300) = 540, then A3 (+300) = 840.
    cash = floor.waits()["cash"]
    assert (cash.waiting, cash.seconds, cash.counters_open) == (2, 840.0, 1)


def test_the_queue_goes_to_whichever_counter_is_free_first(floor: Floor) -> None:
    floor.counter("c1", "high")
    floor.counter("c2", "high")
    floor.issue("A1", "cash", 1900)
    floor(ev.TicketCalled, 1940, ticket="A1", counter="c1")  # c1 free in 240
    floor.issue("A2", "cash", 1950)
    floor.issue("A3", "cash", 1960)
    # A2 -> c2 (idle): free at 300; A3 -> c1: free at 240 + 300 = 540. Next: c2 at 300.
    assert floor.waits()["cash"].seconds == 300.0


def test_a_paused_counter_is_expected_back(floor: Floor) -> None:
    floor.counter("c1", "high")
    floor.counter("c2", "high")
    floor(ev.CounterPaused, NOW - 600, counter="c2", reason="break")  # back at 900 - 600 = 300
    floor.issue("A1", "cash", 1900)
    floor(ev.TicketCalled, 1940, ticket="A1", counter="c1")  # c1 free in 240
    for n, ts in ((2, 1950), (3, 1960), (4, 1970)):
        floor.issue(f"A{n}", "cash", ts)
    # A2 -> c1: 240 + 300 = 540; A3 -> c2: 300 + 300 = 600; A4 -> c1: 540 + 300 = 840.
    # Next: c2 at 600.
    cash = floor.waits()["cash"]
    assert (cash.seconds, cash.counters_open, cash.counters_paused) == (600.0, 1, 1)


def test_an_overdue_pause_is_expected_to_end_a_few_minutes_from_now(floor: Floor) -> None:
    floor.counter("c1", "high")
    floor(ev.CounterPaused, NOW - 950, counter="c1", reason="lunch")  # 50 s past 900
    assert floor.waits()["cash"].seconds == 300.0  # overdue_seconds from now
    longer = EstimateModel(turnaround_seconds=0.0, overdue_seconds=120.0)
    assert floor.waits(longer)["cash"].seconds == 120.0


def test_closed_counters_and_a_closed_branch_serve_nobody(floor: Floor) -> None:
    floor.counter("c1", "high")
    floor(ev.CounterClosed, 1500, counter="c1")
    assert floor.waits()["cash"].seconds is None
    floor.counter("c2", "high", ts=1600)
    assert floor.waits()["cash"].seconds == 0.0
    floor(ev.BranchClosed, 1700)
    assert all(w.seconds is None for w in floor.waits().values())


def test_a_long_service_keeps_a_share_of_its_counter_time(floor: Floor) -> None:
    floor.counter("c1", "high")
    floor.issue("A1", "cash", 1000)
    floor(ev.TicketCalled, 1100, ticket="A1", counter="c1")  # 900 s at the counter by now
    floor(ev.ServiceStarted, 1110, ticket="A1", counter="c1", teller="t")
    # 300 - 900 < 0: at least 0.2 x 300 = 60 more.
    assert floor.waits()["cash"].seconds == 60.0


def test_tickets_of_a_service_sharing_the_counters_are_ahead_too(floor: Floor) -> None:
    floor.counter("c1", "high")
    floor.counter("c2", "low")
    floor.issue("D1", "corporate", 1950)  # corporate and non-cash share the low counters
    # D1 -> c2 (idle): free at 300; a non-cash ticket taken now is next on c2.
    waits = floor.waits()
    assert (waits["non_cash"].waiting, waits["non_cash"].seconds) == (0, 300.0)
    assert (waits["corporate"].waiting, waits["corporate"].seconds) == (1, 300.0)
    assert waits["cash"].seconds == 0.0  # c1 stays free


def test_a_counter_of_unknown_kind_takes_every_service(floor: Floor) -> None:
    floor.counter("c9", None)
    waits = floor.waits()
    assert all(w.seconds == 0.0 and w.counters_open == 1 for w in waits.values())


def test_counter_time_is_the_recent_median_leaning_on_the_histogram_prior(floor: Floor) -> None:
    floor.counter("c1", "high")
    for n, (called, took) in enumerate(((1100, 100), (1300, 200), (1600, 600)), start=1):
        floor.issue(f"A{n}", "cash", called - 50)
        floor.serve(f"A{n}", "c1", called, took)
    # Call -> end: 100, 200, 600: median 200. Histogram (start -> end): 90, 190, 590,
    # mean 290. Three samples against a prior worth 3: (3 x 200 + 3 x 290) / 6 = 245,
    # plus the default 15 s turnaround.
    assert counter_seconds(floor.state, DEFAULT_MODEL)["cash"] == 260.0
    # A service with no data: the default, plus the turnaround.
    assert counter_seconds(floor.state, DEFAULT_MODEL)["vip"] == 315.0


def test_only_the_latest_samples_count_and_a_no_show_holds_its_counter(floor: Floor) -> None:
    floor.counter("c1", "high")
    model = EstimateModel(turnaround_seconds=0.0, recent_samples=2, prior_weight=0.0)
    floor.issue("A1", "cash", 1000)
    floor.serve("A1", "c1", 1010, 500)  # the oldest: left out
    floor.issue("A2", "cash", 1600)
    floor.serve("A2", "c1", 1610, 100)
    floor.issue("A3", "cash", 1700)
    floor(ev.TicketCalled, 1720, ticket="A3", counter="c1")
    floor(ev.TicketNoShow, 1800, ticket="A3")  # held c1 for 80 s
    # Latest two: 100 and 80, median 90; the prior weighs nothing.
    assert counter_seconds(floor.state, model)["cash"] == 90.0


def test_a_walkout_and_a_transfer_leave_the_queue_ahead(floor: Floor) -> None:
    floor.counter("c1", "high")
    floor.counter("c2", "low")
    floor.issue("A1", "cash", 1900)
    floor(ev.TicketCalled, 1900, ticket="A1", counter="c1")  # c1 free in 300 - 100 = 200
    floor.issue("A2", "cash", 1910)
    floor.issue("A3", "cash", 1920)
    floor(ev.TicketWalkout, 1930, ticket="A2")
    floor(ev.TicketTransferred, 1940, ticket="A3", service="non_cash")
    # Cash: nobody ahead, c1 free in 200. Non-cash: A3 on c2 (idle): free at 300.
    waits = floor.waits()
    assert (waits["cash"].waiting, waits["cash"].seconds) == (0, 200.0)
    assert (waits["non_cash"].waiting, waits["non_cash"].seconds) == (1, 300.0)


def test_patience_is_the_kaplan_meier_survival_of_todays_waits() -> None:
    # Gave up after 60 and 120 s; others were still there at 30, 90 and 200 s.
    # At 60: 4 at risk (30 left the count), 1 gives up: 3/4. At 120: 2 at risk: 3/4 x 1/2.
    patience = Patience(gave_up=[60.0, 120.0], stayed=[30.0, 90.0, 200.0])
    assert [patience.survival(t) for t in (59.0, 60.0, 119.0, 130.0, 1e6)] == [
        1.0,
        0.75,
        0.75,
        0.375,
        0.375,
    ]
    assert patience.stays(70.0, 130.0) == 0.5  # 0.375 / 0.75
    assert patience.stays(0.0, 10.0) == 1.0


def test_customers_ahead_give_up_as_todays_did(floor: Floor) -> None:
    floor.counter("c1", "high")
    floor.issue("W1", "cash", 1100)
    floor(ev.TicketWalkout, 1500, ticket="W1")  # gave up after 400 s
    floor.issue("A1", "cash", 1900)
    floor(ev.TicketCalled, 1940, ticket="A1", counter="c1")  # c1 free at 2240
    floor.issue("A2", "cash", 1950)
    floor.issue("A3", "cash", 1960)
    # Waits seen: gave up at 400; still there at 40 (A1 called), 50 and 40 (A2, A3
    # waiting now): the one at risk at 400 gave up, so nobody stays past 400 s.
    # A2 would be called at 2240, after 290 s: stays (1.0): c1 free at 2540.
    # A3 would be called at 2540, after 580 s: gone (0.0): c1 still free at 2540.
    quick = EstimateModel(turnaround_seconds=0.0, min_walkouts=1)
    assert floor.waits(quick)["cash"].seconds == 540.0
    # One walkout is not enough for the default model: everybody ahead stays.
    assert floor.waits()["cash"].seconds == 840.0
