"""The pure branch simulator: reproducible, valid per the contract, realistic over a day."""

from __future__ import annotations

import collections
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec
import pytest

from branchwatch.contract import Event, decode_events, encode
from branchwatch.contract.events import (
    BranchClosed,
    BranchOpened,
    CounterClosed,
    CounterOpened,
    CounterPaused,
    DeviceFault,
    DeviceRecovered,
    EvaluationExpired,
    EvaluationRequested,
    EvaluationSubmitted,
    IntercomAck,
    IntercomCall,
    PositionStaffed,
    PositionVacated,
    ServiceEnded,
    ServiceStarted,
    TicketCalled,
    TicketIssued,
    TicketNoShow,
    TicketTransferred,
    TicketWalkout,
)
from branchwatch.contract.ids import MAX_BATCH_EVENTS
from branchwatch.sim import BranchSim, branch_ids, generate, generate_batches, make_branches
from branchwatch.sim.profile import HOUR, MINUTE, PRINTER_OUT, THIN_STAFFED

DAY = 8.5 * HOUR  # 09:00 to after close: one whole simulated branch day


def tag(event: Event) -> str:
    name: str = event.__struct_config__.tag  # type: ignore[assignment]
    return name


def day_events(branches: int = 4, seed: int = 1) -> dict[str, list[Event]]:
    """Each branch's first day: opening to closing and staff leaving (a night, then day 2)."""
    per_branch: dict[str, list[Event]] = collections.defaultdict(list)
    closed: set[str] = set()
    done: set[str] = set()
    for _, branch, _, event in generate(branches, seed, DAY):
        if branch in closed and not isinstance(event, PositionVacated):
            done.add(branch)
        if branch not in done:
            per_branch[branch].append(event)
        if isinstance(event, BranchClosed):
            closed.add(branch)
    assert closed == set(per_branch)
    return per_branch


@pytest.fixture(scope="module")
def day() -> dict[str, list[Event]]:
    return day_events()


@dataclass
class FloorCheck:
    """Replays one branch's events and asserts the lifecycle rules as it goes."""

    tickets: dict[str, str] = field(default_factory=dict)  # ticket -> state
    called_at: dict[str, str] = field(default_factory=dict)  # ticket -> counter
    finished: set[str] = field(default_factory=set)
    pending_evaluation: dict[str, str | None] = field(default_factory=dict)  # counter -> ticket
    counters: dict[str, str] = field(default_factory=dict)
    posts: dict[int, set[str]] = field(default_factory=lambda: collections.defaultdict(set))
    open: bool = False
    open_ts: float = 0.0
    empty_since: dict[int, float] = field(default_factory=dict)
    empty_spells: dict[int, list[float]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )
    closed_waiting: int = 0
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    ratings: collections.Counter[str] = field(default_factory=collections.Counter)
    cover_from: set[int] = field(default_factory=set)
    faults: set[str] = field(default_factory=set)

    def apply(self, events: Iterable[Event]) -> None:
        for event in events:
            self.counts[tag(event)] += 1
            self.one(event)

    def one(self, e: Event) -> None:
        if isinstance(e, BranchOpened):
            assert not self.open
            assert self.posts[1] and self.posts[2], "required posts staffed before opening"
            self.open, self.open_ts = True, e.ts
        elif isinstance(e, BranchClosed):
            assert self.open
            assert all(state == "closed" for state in self.counters.values())
            assert not self.pending_evaluation
            assert "serving" not in self.tickets.values() and "called" not in self.tickets.values()
            self.closed_waiting += sum(1 for s in self.tickets.values() if s == "waiting")
            self.finished.update(self.tickets)
            self.tickets.clear()
            self.open = False
        elif isinstance(e, TicketIssued):
            assert self.open
            assert e.ticket not in self.tickets and e.ticket not in self.finished
            assert e.vip == (e.service == "vip")
            self.tickets[e.ticket] = "waiting"
        elif isinstance(e, TicketCalled):
            assert self.tickets.get(e.ticket) == "waiting", f"{e.ticket} called, not waiting"
            assert self.counters[e.counter] == "open"
            assert e.counter not in self.called_at.values(), "one customer per counter"
            self.tickets[e.ticket] = "called"
            self.called_at[e.ticket] = e.counter
        elif isinstance(e, TicketTransferred):
            assert self.tickets.get(e.ticket) == "called"
            self.tickets[e.ticket] = "waiting"
            del self.called_at[e.ticket]
        elif isinstance(e, TicketNoShow):
            assert self.tickets.get(e.ticket) == "called"
            self.finish(e.ticket)
        elif isinstance(e, TicketWalkout):
            assert self.tickets.get(e.ticket) == "waiting"
            self.finish(e.ticket)
        elif isinstance(e, ServiceStarted):
            assert self.tickets.get(e.ticket) == "called"
            assert self.called_at[e.ticket] == e.counter
            assert e.teller is not None
            self.tickets[e.ticket] = "serving"
        elif isinstance(e, ServiceEnded):
            assert self.tickets.get(e.ticket) == "serving"
            assert self.called_at[e.ticket] == e.counter
            self.finish(e.ticket)
        elif isinstance(e, EvaluationRequested):
            assert e.ticket in self.finished, "ratings come after the service"
            assert e.counter not in self.pending_evaluation
            assert e.device == f"pad-{e.counter}"
            self.pending_evaluation[e.counter] = e.ticket
        elif isinstance(e, EvaluationSubmitted | EvaluationExpired):
            assert self.pending_evaluation.pop(e.counter) == e.ticket
            if isinstance(e, EvaluationSubmitted):
                self.ratings[e.rating] += 1
        elif isinstance(e, CounterOpened):
            assert self.counters.get(e.counter) != "open"
            assert e.kind in ("high", "low", "vip") and e.teller
            self.counters[e.counter] = "open"
        elif isinstance(e, CounterPaused | CounterClosed):
            assert e.counter not in self.called_at.values(), "counters pause when idle"
            assert e.counter not in self.pending_evaluation
            if isinstance(e, CounterPaused):
                assert self.counters[e.counter] == "open" and e.reason
                self.counters[e.counter] = "paused"
            else:
                assert self.counters[e.counter] in ("open", "paused")
                self.counters[e.counter] = "closed"
        elif isinstance(e, PositionStaffed):
            assert e.staff is not None and e.staff not in self.posts[e.position]
            assert all(e.staff not in staff for staff in self.posts.values()), "one post at once"
            self.posts[e.position].add(e.staff)
            if e.position in self.empty_since:
                self.empty_spells[e.position].append(e.ts - self.empty_since.pop(e.position))
            if e.position in (1, 2) and e.staff not in ("mgr", "deputy"):
                self.cover_from.add({"director": 3, "rm": 7}.get(e.staff, 4))
        elif isinstance(e, PositionVacated):
            assert e.staff in self.posts[e.position]
            self.posts[e.position].discard(e.staff)
            if self.open and e.position in (1, 2) and not self.posts[e.position]:
                self.empty_since[e.position] = e.ts
        elif isinstance(e, IntercomCall):
            assert e.from_position != e.to_position
        elif isinstance(e, DeviceFault):
            assert e.device == "queue-1" and e.fault not in self.faults
            self.faults.add(e.fault)
        elif isinstance(e, DeviceRecovered):
            self.faults.remove(e.fault)
        elif isinstance(e, IntercomAck):
            assert self.posts[e.position], "only a staffed post acknowledges"

    def finish(self, ticket: str) -> None:
        del self.tickets[ticket]
        self.called_at.pop(ticket, None)
        self.finished.add(ticket)

    @property
    def satisfaction(self) -> float:
        good = self.ratings["very_satisfied"] + self.ratings["satisfied"]
        return good / sum(self.ratings.values())


def check(events: list[Event]) -> FloorCheck:
    floor = FloorCheck()
    floor.apply(events)
    return floor


# -- reproducibility --------------------------------------------------------------------------


def test_same_seed_same_events_other_seed_other_events() -> None:
    first = [(b, encode(e)) for _, b, _, e in generate(3, 42, 2 * HOUR)]
    again = [(b, encode(e)) for _, b, _, e in generate(3, 42, 2 * HOUR)]
    other = [(b, encode(e)) for _, b, _, e in generate(3, 43, 2 * HOUR)]
    assert first == again
    assert len(first) > 300
    assert first != other


# SHA-256 of the encoded events of 12 branches (seed 7) over two days, advanced 37 s at a
# time, as the simulator produced them before staff reacted to floor notices: a branch that
# is sent no notice must behave exactly as it did then.
NO_NOTICE_DIGESTS = {
    "normal": (41778, "0acad0d43efffb4f8cad2e72d3cc5476297e8264b74a26004803ff9557fc0cd8"),
    "demo": (40174, "d81d642b2387a7dfb21986a2a3284f1e4b923f96837f913a78ce903c294e16ce"),
}


@pytest.mark.parametrize("scenario", sorted(NO_NOTICE_DIGESTS))
def test_without_notices_the_events_are_byte_identical_to_before(scenario: str) -> None:
    digest = hashlib.sha256()
    count = 0
    for sim in make_branches(12, 7, scenario=scenario):
        t = 9 * HOUR
        while t < 9 * HOUR + 2 * DAY:
            t += 37.0
            for event in sim.advance(t):
                digest.update(encode(event))
                count += 1
    assert (count, digest.hexdigest()) == NO_NOTICE_DIGESTS[scenario]


def test_events_do_not_depend_on_how_time_is_advanced() -> None:
    whole = BranchSim("north", "br-0001", seed=5).advance(9 * HOUR + DAY)
    sim = BranchSim("north", "br-0001", seed=5)
    stepped: list[Event] = []
    t = 9 * HOUR
    while t < 9 * HOUR + DAY:
        t += 7.3
        stepped += sim.advance(min(t, 9 * HOUR + DAY))
    assert [encode(e) for e in stepped] == [encode(e) for e in whole]


# -- the contract -----------------------------------------------------------------------------


def test_every_event_round_trips_through_the_contract_codec(day: dict[str, list[Event]]) -> None:
    types = set()
    for events in day.values():
        for event in events:
            assert decode_events(encode(event)) == [event]
            types.add(tag(event))
        for start in range(0, len(events), MAX_BATCH_EVENTS // 2):
            batch = events[start : start + MAX_BATCH_EVENTS // 2]
            assert decode_events(encode(batch)) == batch
    assert len(types) == 21, "every event type of the contract occurs in a day"


def test_seq_strictly_increasing_and_ts_in_order_per_agent(day: dict[str, list[Event]]) -> None:
    for events in day.values():
        seqs = [e.seq for e in events]
        assert seqs == list(range(1, len(events) + 1))
        stamps = [e.ts for e in events]
        assert stamps == sorted(stamps)


def test_generate_names_branches_and_regions_round_robin() -> None:
    assert branch_ids(6, ("north", "south")) == [
        ("north", "br-0001"),
        ("south", "br-0002"),
        ("north", "br-0003"),
        ("south", "br-0004"),
        ("north", "br-0005"),
        ("south", "br-0006"),
    ]
    seen = {(r, b, a) for r, b, a, _ in generate(5, 1, 600)}
    assert seen == {(r, b, "edge-1") for r, b in branch_ids(5)}
    with pytest.raises(ValueError, match="not a valid id"):
        branch_ids(2, ("North",))


def test_batches_hold_one_agent_in_seq_order() -> None:
    last: dict[str, int] = {}
    for _, branch, _, events in generate_batches(4, 3, HOUR, step=30):
        for event in events:
            assert event.seq > last.get(branch, 0)
            last[branch] = event.seq


def test_devices_one_pad_per_counter() -> None:
    sim = BranchSim("north", "br-0001", seed=1)
    opened = [e for e in sim.advance(9 * HOUR + 12 * HOUR) if isinstance(e, CounterOpened)]
    pads = {f"pad-{e.counter}" for e in opened}
    assert set(sim.devices) == {"queue-1", "intercom-1", *pads}
    assert sim.devices["queue-1"] == "queue" and sim.devices["intercom-1"] == "intercom"


# -- the floor over a day ---------------------------------------------------------------------


def test_ticket_counter_post_lifecycles_are_consistent(day: dict[str, list[Event]]) -> None:
    for events in day.values():
        floor = check(events)
        assert floor.counts["branch.opened"] == 1 and floor.counts["branch.closed"] == 1
        assert not floor.tickets, "every ticket ends: served, lost or closed"
        assert not any(floor.posts.values()), "everyone leaves after closing"


def test_a_day_shows_every_path(day: dict[str, list[Event]]) -> None:
    floors = [check(events) for events in day.values()]
    total: collections.Counter[str] = sum((f.counts for f in floors), collections.Counter())
    issued = total["ticket.issued"]
    assert 150 * len(floors) < issued < 400 * len(floors)
    assert 0 < total["ticket.walkout"] < 0.08 * issued
    assert 0 < total["ticket.no_show"] < 0.08 * issued
    assert 0 < total["ticket.transferred"] < 0.1 * issued
    assert sum(f.closed_waiting for f in floors) > 0, "some still wait at close"
    assert total["evaluation.requested"] > 0.75 * total["service.ended"]
    assert 0 < total["evaluation.expired"] < 0.15 * total["evaluation.requested"]
    for floor in floors:
        assert floor.counts["device.fault"] >= 1
        assert floor.counts["counter.paused"] >= 3
    left_empty = [f for f in floors if any(d > 30 for d in f.empty_spells[1])]
    assert len(left_empty) >= len(floors) // 2, "post 1 is left empty for a while now and then"
    faults = {e.fault for events in day.values() for e in events if isinstance(e, DeviceFault)}
    assert {"paper_low", "paper_jam"} <= faults
    spells = [d for f in floors for d in f.empty_spells[1]]
    assert max(spells) > 2 * MINUTE, "long enough to page on-call"
    assert {3, 4, 7} <= set().union(*(f.cover_from for f in floors))
    reasons = {e.reason for evs in day.values() for e in evs if isinstance(e, IntercomCall)}
    assert reasons == {"handoff", "vip", "assist", "backup"}
    assert total["intercom.ack"] > 0.7 * total["intercom.call"]
    kinds = {e.kind for evs in day.values() for e in evs if isinstance(e, CounterOpened)}
    assert kinds == {"high", "low", "vip"}


def test_transfers_go_non_cash_to_cash(day: dict[str, list[Event]]) -> None:
    services: dict[str, str] = {}
    moves: collections.Counter[tuple[str, str]] = collections.Counter()
    for events in day.values():
        for e in events:
            if isinstance(e, TicketIssued):
                services[e.ticket] = e.service
            elif isinstance(e, TicketTransferred):
                moves[(services[e.ticket], e.service)] += 1
    assert moves[("non_cash", "cash")] > 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_satisfaction_near_the_banks_target(seed: int) -> None:
    ratings: collections.Counter[str] = collections.Counter()
    for events in day_events(4, seed).values():
        ratings += check(events).ratings
    satisfaction = (ratings["very_satisfied"] + ratings["satisfied"]) / sum(ratings.values())
    assert 0.80 <= satisfaction <= 0.97
    assert ratings["unsatisfied"] > 0


def test_ratings_arrive_within_the_pad_window(day: dict[str, list[Event]]) -> None:
    for events in day.values():
        requested: dict[str, float] = {}
        for e in events:
            if isinstance(e, EvaluationRequested):
                requested[e.counter] = e.ts
            elif isinstance(e, EvaluationSubmitted | EvaluationExpired):
                assert 0 < e.ts - requested.pop(e.counter) <= 10.0


def test_arrivals_peak_late_morning_and_at_lunch(day: dict[str, list[Event]]) -> None:
    origin = 1_767_258_000.0 - 9 * HOUR  # DEFAULT_TS_ORIGIN is 09:00
    per_hour: collections.Counter[int] = collections.Counter()
    for events in day.values():
        for e in events:
            if isinstance(e, TicketIssued):
                per_hour[int((e.ts - origin) // HOUR)] += 1
    assert set(per_hour) == set(range(9, 17))
    assert per_hour[11] > 1.2 * per_hour[9]
    assert per_hour[12] > 1.2 * per_hour[15]


# -- days and time ----------------------------------------------------------------------------


def test_after_close_a_new_day_starts() -> None:
    events = BranchSim("north", "br-0001", seed=9).advance(9 * HOUR + 2 * DAY)
    kinds = [tag(e) for e in events if isinstance(e, BranchOpened | BranchClosed)]
    assert kinds[:4] == ["branch.opened", "branch.closed", "branch.opened", "branch.closed"]
    check(events)
    tickets = [e.ticket for e in events if isinstance(e, TicketIssued)]
    assert len(tickets) == len(set(tickets)), "ticket ids are unique across days"
    assert {t[-3:] for t in tickets} >= {"-d1", "-d2"}


def test_start_hour_mid_day_opens_at_once_and_evening_waits_for_the_night() -> None:
    noon = BranchSim("north", "br-0001", seed=1, start_hour=12.5, ts_origin=1000.0)
    first = noon.advance(12.5 * HOUR)
    assert [e.ts for e in first if isinstance(e, BranchOpened)] == [1000.0]
    assert noon.is_open
    check(first + noon.advance(12.5 * HOUR + 5 * HOUR))

    evening = BranchSim("north", "br-0001", seed=1, start_hour=18.0)
    assert evening.advance(18 * HOUR + 4 * MINUTE) == []
    assert any(isinstance(e, BranchOpened) for e in evening.advance(18 * HOUR + 6 * MINUTE))

    early = BranchSim("north", "br-0001", seed=1, start_hour=8.0)
    assert early.advance(8.99 * HOUR) == []
    with pytest.raises(ValueError, match="start_hour"):
        BranchSim("north", "br-0001", seed=1, start_hour=24.0)


def test_speed_compresses_event_time() -> None:
    sim = BranchSim("north", "br-0001", seed=1, ts_origin=5000.0, speed=10.0)
    events = sim.advance(9 * HOUR + HOUR)
    assert events[0].ts == 5000.0
    assert max(e.ts for e in events) <= 5000.0 + HOUR / 10
    assert sim.sim_time(5000.0 + 36.0) == 9 * HOUR + 360.0


def test_a_floor_notice_is_acknowledged_from_its_post() -> None:
    sim = BranchSim("north", "br-0001", seed=1)
    sim.advance(9.5 * HOUR)
    acked = []
    for n in range(10):
        sim.receive_notice(f"n-{n}", 3)
        acked += [
            e for e in sim.advance(sim.now + 2 * MINUTE) if isinstance(e, IntercomAck) and e.notice
        ]
    assert {e.position for e in acked} == {3}
    assert 5 <= len(acked) <= 10
    assert {e.notice for e in acked} <= {f"n-{n}" for n in range(10)}


def test_many_branches_generate_quickly() -> None:
    sims = make_branches(200, 1)
    count = sum(len(sim.advance(9 * HOUR + HOUR)) for sim in sims)
    assert count > 200 * 50
    assert msgspec.json.decode(encode(sims[0].advance(10.5 * HOUR)))


# -- the demo scenario ------------------------------------------------------------------------


def demo_floor(seed: int, minutes: float) -> dict[str, list[Event]]:
    """Each branch's events over the first ``minutes`` of the demo scenario from 10:00."""
    per_branch: dict[str, list[Event]] = collections.defaultdict(list)
    for _, branch, _, events in generate_batches(
        3, seed, minutes * MINUTE, start_hour=10.0, step=10, ts_origin=0.0, scenario="demo"
    ):
        per_branch[branch] += events
    return per_branch


def oldest_wait(events: list[Event], service: str, at: float) -> float:
    """The longest current wait in ``service`` at event time ``at``."""
    since: dict[str, float] = {}
    for e in events:
        if e.ts > at:
            break
        if isinstance(e, TicketIssued) and e.service == service:
            since[e.ticket] = e.ts
        elif isinstance(e, TicketCalled | TicketWalkout):
            since.pop(e.ticket, None)
    return max((at - t for t in since.values()), default=0.0)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_demo_scenario_shows_its_trouble_within_minutes(seed: int) -> None:
    floor = demo_floor(seed, 25)
    thin, busy, printer = floor["br-0001"], floor["br-0002"], floor["br-0003"]

    vacated = [e for e in thin if isinstance(e, PositionVacated) and e.position == 1]
    back = [e for e in thin if isinstance(e, PositionStaffed) and e.position == 1 and e.ts > 0]
    assert THIN_STAFFED.incidents.greeter_away == (1 * MINUTE, 30 * MINUTE)
    assert vacated and vacated[0].ts == 1 * MINUTE, "the lobby manager leaves after a minute"
    assert not back or back[0].ts - vacated[0].ts == 30 * MINUTE, "and nobody covers post 1"
    at_opening = {e.position for e in thin if isinstance(e, PositionStaffed) and e.ts == 0}
    assert {1, 2} <= at_opening and not {3, 7} & at_opening, "thin: no lobby director, no RM"

    assert oldest_wait(busy, "cash", 23 * MINUTE) > 20 * MINUTE, "past the 20-minute warning"
    assert not any(isinstance(e, TicketIssued) and e.service == "vip" for e in busy)

    assert PRINTER_OUT.incidents.paper_out == (5 * MINUTE, 30 * MINUTE)
    faults = [(e.ts, e.fault) for e in printer if isinstance(e, DeviceFault)]
    assert (2.5 * MINUTE, "paper_low") in faults and (5 * MINUTE, "paper_out") in faults
    issued = [e.ts for e in printer if isinstance(e, TicketIssued)]
    assert not [ts for ts in issued if ts > 5 * MINUTE], "no tickets while out of paper"
    for events in floor.values():
        check(events)
    later = demo_floor(seed, 40)["br-0003"]
    recovered = {e.fault: e.ts for e in later if isinstance(e, DeviceRecovered)}
    assert recovered["paper_out"] == 35 * MINUTE


def test_demo_scenario_days_stay_consistent_and_reproducible() -> None:
    def two_days() -> list[list[bytes]]:
        sims = make_branches(4, 3, start_hour=10.0, scenario="demo")
        return [[encode(e) for e in sim.advance(10 * HOUR + 2 * DAY)] for sim in sims]

    days = two_days()
    assert days == two_days()
    for encoded in days:
        floor = check([e for raw in encoded for e in decode_events(raw)])
        assert floor.counts["branch.opened"] >= 2 and floor.counts["branch.closed"] >= 1
    fourth = [e for raw in days[3] for e in decode_events(raw)]
    first_vacated = next(e for e in fourth if isinstance(e, PositionVacated) and e.position == 1)
    assert first_vacated.ts - fourth[0].ts == 1 * MINUTE, "br-0004 is thin-staffed, as br-0001"
    with pytest.raises(ValueError, match="unknown scenario 'calm'"):
        make_branches(1, 1, scenario="calm")
