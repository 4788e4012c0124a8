"""The realistic scenario: busy peaks, self-service, queue-driven counters, rotating tellers."""

from __future__ import annotations

import argparse
import collections
import itertools
import statistics
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime

import pytest

from branchwatch.contract import Event, decode_events, encode
from branchwatch.contract.events import (
    BranchClosed,
    BranchOpened,
    CounterClosed,
    CounterOpened,
    EvaluationSubmitted,
    PositionVacated,
    ServiceStarted,
    TicketCalled,
    TicketIssued,
    TicketTransferred,
)
from branchwatch.sim import BranchSim, make_branches
from branchwatch.sim.cli import day_hours
from branchwatch.sim.profile import HOUR, REALISTIC_BUSY
from branchwatch.sim.realism import day_factor
from tests.unit.test_sim_model import check

BRANCHES = 30
DAY_END = 9 * HOUR + 8.5 * HOUR  # opening to after the close-out


def ts_origin(day: date) -> float:
    return datetime(day.year, day.month, day.day, 9, tzinfo=UTC).timestamp()


@dataclass
class BranchDay:
    sim: BranchSim
    events: list[Event]
    waits: list[tuple[float, float]] = field(default_factory=list)  # (hour, minutes)
    ratings: dict[str, collections.Counter[str]] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )

    def __post_init__(self) -> None:
        origin = self.sim.ts_at(9 * HOUR)
        since: dict[str, float] = {}
        for event in self.events:
            if isinstance(event, TicketIssued | TicketTransferred):
                since[event.ticket] = event.ts
            elif isinstance(event, TicketCalled):
                minutes = (event.ts - since[event.ticket]) / 60
                self.waits.append((9 + (event.ts - origin) / HOUR, minutes))
            elif isinstance(event, EvaluationSubmitted):
                assert event.teller is not None
                self.ratings[event.teller][event.rating] += 1

    @property
    def busy(self) -> bool:
        return self.sim.profile is REALISTIC_BUSY

    def tickets(self, service: str | None = None) -> int:
        return sum(
            1 for e in self.events if isinstance(e, TicketIssued) and service in (None, e.service)
        )


def simulate_day(day: date, seed: int = 3) -> list[BranchDay]:
    """The first business day of ``BRANCHES`` realistic branches on ``day``."""
    sims = make_branches(BRANCHES, seed, scenario="realistic", ts_origin=ts_origin(day))
    return [BranchDay(sim, first_day(sim.advance(DAY_END))) for sim in sims]


def first_day(events: list[Event]) -> list[Event]:
    """The events up to the close and the staff leaving (not the next day's opening)."""
    closed = next(i for i, e in enumerate(events) if isinstance(e, BranchClosed))
    leaving = itertools.takewhile(lambda e: isinstance(e, PositionVacated), events[closed + 1 :])
    return events[: closed + 1] + list(leaving)


MONTH_START = date(2026, 6, 1)  # a Monday, the first business day of June
MID_MONTH = date(2026, 6, 15)  # a Monday too


@pytest.fixture(scope="module")
def month_start() -> list[BranchDay]:
    return simulate_day(MONTH_START)


@pytest.fixture(scope="module")
def mid_month() -> list[BranchDay]:
    return simulate_day(MID_MONTH)


def test_a_day_is_one_opening_one_close_and_contract_valid(month_start: list[BranchDay]) -> None:
    for branch in month_start:
        tags = [type(e) for e in branch.events]
        assert tags.count(BranchOpened) == 1 and tags.count(BranchClosed) == 1
        # The collector's decoder takes every batch back unchanged.
        for start in range(0, len(branch.events), 100):
            batch = branch.events[start : start + 100]
            assert decode_events(encode(batch)) == batch
        check(branch.events)  # the lifecycle rules of every ticket, counter and post


def test_busy_branches_pass_the_wait_target_at_the_lunch_peak(
    month_start: list[BranchDay], mid_month: list[BranchDay]
) -> None:
    for day in (month_start, mid_month):
        busy = [b for b in day if b.busy]
        assert len(busy) == 12  # two in five
        lunch = [m for b in busy for hour, m in b.waits if 11.5 <= hour <= 13.5]
        assert statistics.mean(lunch) > 15.0
        waits = [m for b in day for _, m in b.waits]
        assert sum(m > 20 for m in waits) > 100
        assert statistics.median(waits) > 0.5  # no longer a floor where nobody waits
    quiet = [m for b in mid_month if not b.busy for _, m in b.waits]
    assert statistics.mean(quiet) < 10.0


def test_month_start_is_busier_than_mid_month(
    month_start: list[BranchDay], mid_month: list[BranchDay]
) -> None:
    start = sum(b.tickets() for b in month_start)
    middle = sum(b.tickets() for b in mid_month)
    assert start > 1.15 * middle
    assert day_factor(date(2026, 6, 3), (1.0,) * 7, 3, 1.5) == 1.5  # 3rd business day
    assert day_factor(date(2026, 6, 4), (1.0,) * 7, 3, 1.5) == 1.0
    assert day_factor(date(2026, 8, 3), (1.0,) * 7, 3, 1.5) == 1.5  # Aug 1-2 is a weekend


def test_per_teller_satisfaction_spreads_across_the_banks_90_percent(
    month_start: list[BranchDay],
) -> None:
    satisfaction = [
        (c["very_satisfied"] + c["satisfied"]) / sum(c.values())
        for b in month_start
        for c in b.ratings.values()
        if sum(c.values()) >= 20
    ]
    assert sum(s < 0.9 for s in satisfaction) >= 10
    assert sum(s >= 0.9 for s in satisfaction) >= 10


def test_tellers_rotate_between_counters(month_start: list[BranchDay]) -> None:
    rotating = relieving = 0
    for branch in month_start:
        counters_of: dict[str, set[str]] = collections.defaultdict(set)
        for e in branch.events:
            if isinstance(e, ServiceStarted) and e.teller is not None:
                counters_of[e.teller].add(e.counter)
        rotating += any(len(counters) > 1 for counters in counters_of.values())
        relief = len(counters_of) - len({c for cs in counters_of.values() for c in cs})
        relieving += relief > 0
    # Relief tellers (more tellers than counters) take over counters in most branches.
    assert rotating >= 0.8 * len(month_start)
    assert relieving >= 0.5 * len(month_start)


def test_flexible_counters_open_for_queues_and_close_when_drained(
    month_start: list[BranchDay],
) -> None:
    opened_with: list[int] = []  # cash customers waiting when a flexible counter opened
    closed_with: list[int] = []  # … and when one closed before the end of the day
    branches_opening = branches_closing = 0
    for branch in month_start:
        flex = {c.id for c in branch.sim._counters if c.flex}
        closing_time = branch.sim.ts_at(17 * HOUR)
        waiting: dict[str, str] = {}  # ticket -> service
        opens = closes = 0
        for e in branch.events:
            if isinstance(e, TicketIssued | TicketTransferred):
                waiting[e.ticket] = e.service
            elif isinstance(e, TicketCalled):
                waiting.pop(e.ticket, None)
            cash = sum(1 for service in waiting.values() if service == "cash")
            if isinstance(e, CounterOpened) and e.counter in flex:
                opened_with.append(cash)
                opens += 1
            elif isinstance(e, CounterClosed) and e.counter in flex and e.ts < closing_time:
                closed_with.append(cash)
                closes += 1
        branches_opening += opens > 0
        branches_closing += closes > 0
    assert branches_opening >= 25 and branches_closing >= 20
    # Opened for a queue (decided a walk earlier, so it may have shrunk a little) …
    assert min(opened_with) >= 2 and statistics.median(opened_with) >= 6
    # … closed once nobody was waiting (plus whoever came during the last customer).
    assert statistics.median(closed_with) <= 3
    assert statistics.mean(opened_with) > 2 * statistics.mean(closed_with)


def test_self_service_takes_more_cash_customers_when_the_queue_is_long(
    month_start: list[BranchDay],
) -> None:
    arrivals = [sum(b.sim.cash_arrivals_by_queue[i] for b in month_start) for i in range(10)]
    machines = [sum(b.sim.self_served_by_queue[i] for b in month_start) for i in range(10)]
    short = machines[0] / arrivals[0]
    long = sum(machines[4:]) / sum(arrivals[4:])
    assert 0.04 < short < 0.15
    assert long > 2 * short
    # Without the machines the same branches issue more cash tickets.
    without = [
        BranchSim(
            b.sim.region,
            b.sim.branch,
            seed=3,
            ts_origin=ts_origin(MONTH_START),
            profile=replace(b.sim.profile, self_service=None),
        )
        for b in month_start[:10]
    ]
    plain = sum(1 for sim in without for e in sim.advance(DAY_END) if is_cash_ticket(e))
    assert plain > 1.1 * sum(b.tickets("cash") for b in month_start[:10])


def is_cash_ticket(event: Event) -> bool:
    return isinstance(event, TicketIssued) and event.service == "cash"


def test_realistic_days_are_reproducible() -> None:
    first = [encode(e) for b in simulate_day(MID_MONTH, seed=11)[:3] for e in b.events]
    again = [encode(e) for b in simulate_day(MID_MONTH, seed=11)[:3] for e in b.events]
    assert first == again and len(first) > 1000


def test_day_hours_give_each_day_its_own_date() -> None:
    sims = make_branches(
        2, 5, scenario="realistic", ts_origin=ts_origin(MID_MONTH), day_hours=(8.5, 16.5)
    )
    opened: list[float] = []
    for sim in sims[:1]:
        for event in sim.advance(9 * HOUR + 3 * 24 * HOUR):
            if isinstance(event, BranchOpened):
                opened.append(event.ts)
    # Started at 09:00, after the 08:30 opening: open at once, then 08:30 on the next dates.
    gaps = [b - a for a, b in itertools.pairwise(opened)]
    assert gaps[0] == pytest.approx(23.5 * HOUR) and gaps[1:] == [pytest.approx(24 * HOUR)] * 2
    assert sims[0].sim_date == date(2026, 6, 18)


def test_short_nights_make_short_days_follow_each_other() -> None:
    """Day hours with a short night: each day opens that night after the last one closed,
    at the day's opening hour, and closes after its closing hour."""
    (sim,) = make_branches(
        1, 5, ts_origin=ts_origin(MID_MONTH), start_hour=11.0, day_hours=(11.0, 12.5),
        night_minutes=7,
    )  # fmt: skip
    events = sim.advance(11 * HOUR + 8 * HOUR)
    opened = [e.ts for e in events if isinstance(e, BranchOpened)]
    closed = [e.ts for e in events if isinstance(e, BranchClosed)]
    assert len(opened) >= 4 and len(closed) >= len(opened) - 1
    for day, (opening, closing) in enumerate(zip(opened, closed, strict=False)):
        assert closing - opening >= 1.5 * HOUR, f"day {day + 1} closed early"
        assert closing - opening < 1.5 * HOUR + 30 * 60, f"day {day + 1} ran on"
    assert [b - a for a, b in zip(closed, opened[1:], strict=False)] == [
        pytest.approx(7 * 60)
    ] * min(len(closed), len(opened) - 1)
    assert sim.day == len(opened)


def test_a_night_must_be_positive() -> None:
    with pytest.raises(ValueError, match="night of 0 minutes"):
        make_branches(1, 5, night_minutes=0)


def test_day_hours_flag() -> None:
    assert day_hours("09:00-17:00") == (9.0, 17.0)
    assert day_hours("8-16:30") == (8.0, 16.5)
    for bad in ("17-9", "9", "9:75-17", "x-17"):
        with pytest.raises(argparse.ArgumentTypeError, match=r"expected|before|minutes|hour"):
            day_hours(bad)
