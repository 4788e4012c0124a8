"""Store: an agent it has no seq of is rebuilt from its replay, from the business day's start."""

from __future__ import annotations

import msgspec

from branchwatch.contract import events as ev
from branchwatch.contract.messages import Status
from collector.floor.config import FloorConfig
from collector.notices.config import NoticesConfig
from collector.rebuild import LONGEST, NO_ANSWER, SETTLE
from collector.store import Store
from collector.views import BranchSummary
from tests.support import parse_metrics, sample
from tests.unit.events import E

DAY = 86_400.0
YESTERDAY, TODAY = 1_764_000_000.0, 1_764_000_000.0 + DAY  # 9:00 openings, as Unix times
WAIT = 10.0  # mqtt.replay_min_interval_seconds


def business_day(first_seq: int, opened: float, tickets: int, *, close: bool) -> list[ev.Event]:
    """An opening, ``tickets`` served (ids A1, A2, ... every day), a rated one, a close."""
    events = [E(ev.BranchOpened, first_seq, opened)]
    for n in range(1, tickets + 1):
        ts = opened + 600 * n
        ticket = f"A{n}"
        events += [
            E(ev.TicketIssued, 0, ts, ticket=ticket, service="cash"),
            E(ev.TicketCalled, 0, ts + 60, ticket=ticket, counter="c1"),
            E(ev.ServiceStarted, 0, ts + 70, ticket=ticket, counter="c1"),
            E(ev.ServiceEnded, 0, ts + 200, ticket=ticket, counter="c1"),
        ]
    events.append(
        E(ev.EvaluationSubmitted, 0, opened + 600 * tickets + 210, counter="c1", rating="neutral")
    )
    if close:
        events.append(E(ev.BranchClosed, 0, opened + 8 * 3600))
    return [msgspec.structs.replace(e, seq=first_seq + i) for i, e in enumerate(events)]


def summary(store: Store, region: str = "r1", branch: str = "b1") -> BranchSummary:
    found = [s for s in store.branch_summaries(0.0) if (s.region, s.branch) == (region, branch)]
    assert found, f"no branch {region}/{branch}"
    return found[0]


def rebuilding_gauge(store: Store) -> float | None:
    samples = parse_metrics(store.render())
    return sample(samples, "branchwatch_branch_rebuilding", region="r1", branch="b1")


def online(session: int = 1, ts: float = TODAY) -> Status:
    return Status(v=1, state="online", session=session, ts=ts)


def test_a_live_first_event_waits_for_the_replay_then_counts_only_today() -> None:
    store = Store(FloorConfig(), rebuild=True)
    yesterday = business_day(100, YESTERDAY, 3, close=True)  # seqs 100..114
    today = business_day(115, TODAY, 2, close=False)  # seqs 115..124: ticket ids reused
    live, history = today[-1], yesterday + today[:-1]
    now = TODAY + 3 * 3600

    result = store.apply_events("r1", "b1", "q", [live], now)
    assert (result.held, result.applied) == (1, 0)
    assert summary(store).rebuilding and rebuilding_gauge(store) == 1.0
    assert store.replay_asks(now, WAIT) == [("r1", "b1", "q", 0)]
    assert store.replay_asks(now + 1, WAIT) == []  # asked once

    # The agent holds everything since yesterday and republishes it all, in seq order.
    assert store.apply_events("r1", "b1", "q", history, now + 1).held == len(history)
    assert (
        store.apply_events("r1", "b1", "q", [live], now + 1).duplicate == 1
    )  # passed the live one
    assert summary(store).issued_total == 0  # nothing applied before the answer is in

    (rebuilt,) = store.settle_rebuilds(now + 1.5)
    # Yesterday's opening and close apply (the newest decides), its tickets and rating not.
    assert (rebuilt.agents, rebuilt.events.late, rebuilt.events.missing) == (["q"], 12, 0)
    assert rebuilt.before_day == len(yesterday) - 2
    state = summary(store)
    assert not state.rebuilding and rebuilding_gauge(store) == 0.0
    assert (state.issued_total, state.served_total, state.lost_total) == (2, 2, 0)
    assert state.ratings["neutral"] == 1 and state.open and state.opened_ts == TODAY
    assert state.agents[0].last_seq == 124 and state.waiting_total == 0
    # From now on the agent's events go through as usual.
    after = E(ev.TicketIssued, 125, now + 5, ticket="A3", service="cash")
    assert store.apply_events("r1", "b1", "q", [after], now + 5).applied == 1
    assert summary(store).waiting_total == 1


def test_a_quiet_agent_is_rebuilt_once_its_answer_stops() -> None:
    store = Store(FloorConfig(), rebuild=True)
    now = TODAY + 9 * 3600  # evening: the day is over
    store.apply_status("r1", "b1", "q", online(), now)
    assert summary(store).rebuilding
    assert store.replay_asks(now, WAIT) == [("r1", "b1", "q", 0)]
    day = business_day(40, TODAY, 4, close=True)
    store.apply_events("r1", "b1", "q", day[:10], now + 0.2)
    store.apply_events("r1", "b1", "q", day[10:], now + 0.4)
    assert store.settle_rebuilds(now + 0.4 + SETTLE - 0.1) == []
    (rebuilt,) = store.settle_rebuilds(now + 0.4 + SETTLE)
    assert (rebuilt.events.late, rebuilt.before_day) == (len(day), 0)
    state = summary(store)
    assert (state.issued_total, state.served_total, state.open) == (4, 4, False)


def test_an_agent_that_holds_nothing_is_rebuilt_empty_and_its_next_event_counts() -> None:
    store = Store(FloorConfig(), rebuild=True)
    store.apply_status("r1", "b1", "q", online(), TODAY)
    store.replay_asks(TODAY, WAIT)
    assert store.settle_rebuilds(TODAY + NO_ANSWER - 0.1) == []
    (rebuilt,) = store.settle_rebuilds(TODAY + NO_ANSWER)
    assert rebuilt.events.late == 0 and not summary(store).rebuilding
    first = E(ev.BranchOpened, 7000, TODAY + 20)
    assert store.apply_events("r1", "b1", "q", [first], TODAY + 20).applied == 1


def test_an_offline_agent_waits_and_is_asked_again_when_back() -> None:
    store = Store(FloorConfig(), rebuild=True)
    store.apply_status("r1", "b1", "q", Status(v=1, state="offline", session=3), TODAY)
    assert store.replay_asks(TODAY, WAIT) == [("r1", "b1", "q", 0)]
    assert store.settle_rebuilds(TODAY + 10 * LONGEST) == []  # however long
    store.apply_status("r1", "b1", "q", online(session=4), TODAY + 700)
    assert store.replay_asks(TODAY + 700, WAIT) == [("r1", "b1", "q", 0)]
    assert summary(store).rebuilding


def test_live_events_do_not_keep_a_rebuild_waiting_for_an_answer() -> None:
    """An agent that sends live events all along but holds nothing old to answer with."""
    store = Store(FloorConfig(), rebuild=True)
    store.apply_events("r1", "b1", "q", [E(ev.BranchOpened, 500, TODAY)], TODAY)
    store.replay_asks(TODAY, WAIT)
    for n in range(1, 10):  # live events every 2 s, never an old one
        now = TODAY + 2 * n
        store.apply_events("r1", "b1", "q", [E(ev.BranchOpened, 500 + n, now)], now)
        if now < TODAY + NO_ANSWER:
            assert store.settle_rebuilds(now) == []
    (rebuilt,) = store.settle_rebuilds(TODAY + 18)
    assert rebuilt.events.applied == 10  # each was news when it came
    assert summary(store).agents[0].last_seq == 509


def test_an_answer_that_never_ends_is_let_through_after_the_longest_wait() -> None:
    store = Store(FloorConfig(), rebuild=True)
    store.apply_status("r1", "b1", "q", online(), TODAY)
    store.replay_asks(TODAY, WAIT)
    for n in range(40):  # old events every 2 s: a long answer, or a stuck one
        old = E(ev.BranchOpened, n, YESTERDAY + n)
        store.apply_events("r1", "b1", "q", [old], TODAY + 2 * n)
        if 2 * n < LONGEST:
            assert store.settle_rebuilds(TODAY + 2 * n) == []
    (rebuilt,) = store.settle_rebuilds(TODAY + 2 * 39)
    assert rebuilt.events.late == 40


def test_holes_in_the_answer_become_gaps_and_are_asked_for() -> None:
    store = Store(FloorConfig(), rebuild=True)
    store.apply_status("r1", "b1", "q", online(), TODAY)
    store.replay_asks(TODAY, WAIT)
    day = business_day(0, YESTERDAY, 2, close=False)  # seqs 0..9
    store.apply_events("r1", "b1", "q", day[:4] + day[6:], TODAY + 1)  # 4 and 5 not held
    (rebuilt,) = store.settle_rebuilds(TODAY + 1 + SETTLE)
    assert rebuilt.events.missing == 2
    assert summary(store).agents[0].events_missing == 2
    assert store.replay_asks(TODAY + 5, WAIT) == [("r1", "b1", "q", 4)]
    assert store.apply_events("r1", "b1", "q", day[4:6], TODAY + 6).late == 2
    assert summary(store).agents[0].events_missing == 0
    assert summary(store).served_total == 2


def test_the_day_starts_at_the_opening_whichever_agent_sent_it() -> None:
    """The pad's agent has no opening of its own: its ratings count from the queue's."""
    store = Store(FloorConfig(), rebuild=True)
    now = TODAY + 4 * 3600
    for agent in ("q", "pad"):
        store.apply_status("r1", "b1", agent, online(), now)
    assert sorted(store.replay_asks(now, WAIT)) == [("r1", "b1", "pad", 0), ("r1", "b1", "q", 0)]
    rated = [
        E(ev.EvaluationRequested, seq, ts, device="pad1", counter="c1")
        for seq, ts in enumerate((YESTERDAY + 3600, YESTERDAY + 7200, TODAY + 3600))
    ]
    store.apply_events("r1", "b1", "pad", rated, now + 0.1)
    assert store.settle_rebuilds(now + 0.1 + SETTLE) == []  # the queue's agent has not answered
    opened = [E(ev.BranchOpened, 10, YESTERDAY), E(ev.BranchOpened, 11, TODAY)]
    store.apply_events("r1", "b1", "q", opened, now + 1)
    (rebuilt,) = store.settle_rebuilds(now + 1 + SETTLE)
    assert rebuilt.agents == ["pad", "q"] and rebuilt.before_day == 2
    detail = store.branch_detail("r1", "b1", now)
    assert detail is not None
    assert [c.requested for c in detail.evaluations] == [1]


def test_a_rebuild_tells_the_floor_only_of_what_is_wrong_now() -> None:
    store = Store(FloorConfig(), notices=NoticesConfig(), rebuild=True)
    store.apply_status("r1", "b1", "q", online(), TODAY)
    store.replay_asks(TODAY, WAIT)
    past = [
        E(ev.BranchOpened, 0, TODAY - 3600),  # posts 1 and 2 empty since an hour ago
        E(ev.PositionStaffed, 1, TODAY - 3000, position=2, staff="bo"),
        E(ev.PositionVacated, 2, TODAY - 2000, position=2, staff="bo"),
        E(ev.PositionStaffed, 3, TODAY - 1000, position=2, staff="bo"),  # post 2 held now
    ]
    store.apply_events("r1", "b1", "q", past, TODAY + 0.5)
    assert store.due_notices(TODAY + 1) == []  # nothing while the history is held
    store.settle_rebuilds(TODAY + 0.5 + SETTLE)
    # Post 1 is empty now: an episode, whatever way that came to be known. Post 2's
    # empty spell is over: history, not an episode.
    episodes = store.notices_of("r1", "b1")
    assert episodes is not None
    assert [(e.kind, e.position) for e in episodes] == [("post_empty", 1)]


def test_what_happens_on_the_floor_during_a_rebuild_is_news() -> None:
    store = Store(FloorConfig(), notices=NoticesConfig(), rebuild=True)
    store.apply_status("r1", "b1", "q", online(), TODAY)
    store.replay_asks(TODAY, WAIT)
    now = [
        E(ev.BranchOpened, 0, TODAY - 3600),  # history
        E(ev.PositionStaffed, 1, TODAY + 1, position=1, staff="anna"),  # news
        E(ev.PositionVacated, 2, TODAY + 2, position=1, staff="anna"),
    ]
    for event in now:
        store.apply_events("r1", "b1", "q", [event], TODAY + 2.5)
    (rebuilt,) = store.settle_rebuilds(TODAY + 2.5 + SETTLE)
    assert (rebuilt.events.late, rebuilt.events.applied) == (1, 2)
    episodes = store.notices_of("r1", "b1")
    assert episodes is not None
    # Post 1 from the news; post 2, never staffed since the opening, is empty now too.
    assert sorted((e.kind, e.position) for e in episodes) == [("post_empty", 1), ("post_empty", 2)]


def test_a_snapshot_taken_mid_rebuild_rebuilds_again() -> None:
    store = Store(FloorConfig(), rebuild=True)
    store.apply_events("r1", "b1", "q", [E(ev.BranchOpened, 9, TODAY)], TODAY)
    data = store.snapshot()
    restored = Store.restore(FloorConfig(), data, rebuild=True)
    assert summary(restored).rebuilding
    assert restored.replay_asks(TODAY + 1, WAIT) == [("r1", "b1", "q", 0)]
    assert restored.replay_requests() == []  # asked as a rebuild, not from a seq
    plain = Store.restore(FloorConfig(), data)
    assert not summary(plain).rebuilding and plain.replay_requests() == [("r1", "b1", "q", 0)]


def test_a_lost_session_asks_every_rebuild_again() -> None:
    store = Store(FloorConfig(), rebuild=True)
    store.apply_status("r1", "b1", "q", online(), TODAY)
    store.replay_asks(TODAY, WAIT)
    store.apply_events("r1", "b1", "q", business_day(0, TODAY, 1, close=False), TODAY + 1)
    assert store.session_lost() == []  # no seq to ask from: the rebuild asks
    assert store.replay_asks(TODAY + 1, WAIT) == [("r1", "b1", "q", 0)]
