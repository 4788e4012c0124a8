"""Simulated staff answering floor notices, and the thin-staffing scenario."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench.floor_loop import simulate_day
from branchwatch.contract import encode
from branchwatch.contract.events import (
    CounterOpened,
    CounterPaused,
    EvaluationSubmitted,
    Event,
    IntercomAck,
    PositionStaffed,
    PositionVacated,
)
from branchwatch.sim import BranchSim, make_branches
from branchwatch.sim.base import OPEN
from branchwatch.sim.profile import (
    DEFAULT_PROFILE,
    HOUR,
    MINUTE,
    NO_LOBBY_MANAGER,
    SCENARIOS,
    THIN_STAFFING,
    Incidents,
    NoticeResponse,
    Profile,
)
from collector.notices.config import NoticesConfig
from tests.unit.test_sim_model import DAY, check

# Staff who always answer, within 1 to 3 s, and walk 5 to 25 s.
PROMPT = NoticeResponse(ack_seconds=(1.0, 2.0, 3.0), busy_share=0.0, never_share=0.0)
# The lobby manager leaves post 1 a minute after opening, for 30 min, and nobody is asked.
GREETER_AWAY = Incidents(greeter_away=(1 * MINUTE, 30 * MINUTE))


def sim_from_ten(profile: Profile, seed: int = 3) -> BranchSim:
    return BranchSim("north", "br-0001", seed=seed, start_hour=10.0, ts_origin=0.0, profile=profile)


def advance(sim: BranchSim, seconds: float) -> list[Event]:
    return sim.advance(sim.now + seconds)


def of_post(events: list[Event], position: int) -> list[tuple[str, str | None]]:
    """(event type, staff) of the check-ins and check-outs at ``position``."""
    return [
        (type(e).__name__, e.staff)
        for e in events
        if isinstance(e, PositionStaffed | PositionVacated) and e.position == position
    ]


def test_post_3_acks_walks_to_post_1_and_goes_back_when_its_holder_returns() -> None:
    sim = sim_from_ten(replace(DEFAULT_PROFILE, notices=PROMPT, incidents=GREETER_AWAY))
    before = advance(sim, 2 * MINUTE)
    assert ("PositionVacated", "mgr") in of_post(before, 1), "post 1 is empty"
    sim.receive_notice("n1", 3, "Post 1 (greeting and ticket desk) has been empty for 1 min")
    after = advance(sim, MINUTE)
    acks = [e for e in after if isinstance(e, IntercomAck)]
    assert [(a.position, a.notice, a.device) for a in acks] == [(3, "n1", "intercom-1")]
    assert 1.0 <= acks[0].ts - 2 * MINUTE <= 3.0
    assert of_post(after, 3) == [("PositionVacated", "director")]
    assert of_post(after, 1) == [("PositionStaffed", "director")]
    arrived = next(e for e in after if isinstance(e, PositionStaffed) and e.position == 1)
    assert 5.0 <= arrived.ts - acks[0].ts <= 25.0, "the walk to the door"

    back = advance(sim, 30 * MINUTE)
    assert of_post(back, 1) == [("PositionStaffed", "mgr"), ("PositionVacated", "director")]
    assert ("PositionStaffed", "director") in of_post(back, 3)
    check(before + after + back)


def test_post_2_answers_for_post_1_and_post_1_is_not_left_for_post_2() -> None:
    sim = sim_from_ten(replace(DEFAULT_PROFILE, notices=PROMPT, incidents=GREETER_AWAY))
    events = advance(sim, 2 * MINUTE)
    sim.receive_notice("n1", 2, "post 1 empty")
    events += advance(sim, MINUTE)
    assert of_post(events, 2)[-1:] == [("PositionVacated", "deputy")]
    assert of_post(events, 1)[-1:] == [("PositionStaffed", "deputy")]
    events += advance(sim, 30 * MINUTE)
    assert of_post(events, 2)[-1:] == [("PositionStaffed", "deputy")], "back when mgr is"
    check(events)

    lobby = sim_from_ten(replace(DEFAULT_PROFILE, notices=PROMPT))
    advance(lobby, 5 * MINUTE)
    lobby._step_away(2, "deputy", 10 * MINUTE)
    lobby.receive_notice("n2", 1, "post 2 empty")
    answered = advance(lobby, MINUTE)
    assert not [e for e in answered if isinstance(e, IntercomAck) and e.notice], "no 'on my way'"
    assert ("PositionStaffed", "mgr") not in of_post(answered, 2), "the greeter stays at the door"


def counters_at_post_4(sim: BranchSim, *, busy: bool) -> bool:
    low = [c for c in sim._counters if c.post == 4 and c.state == OPEN and not c.flex]
    return bool(low) and all(c.busy == busy and c.pause is None for c in low)


@pytest.mark.parametrize("busy", [False, True])
def test_a_teller_acks_only_when_free_to_leave_the_counter(busy: bool) -> None:
    at_once = replace(PROMPT, ack_seconds=(1.0, 1.0, 1.0))
    away = replace(DEFAULT_PROFILE, notices=at_once, incidents=GREETER_AWAY)
    sim = sim_from_ten(replace(away, lobby_staff={1: "mgr", 2: "deputy"}))
    events = advance(sim, 2 * MINUTE)
    for _ in range(2000):
        if counters_at_post_4(sim, busy=busy):
            break
        events += advance(sim, 1.0)
    else:
        pytest.fail(f"no moment with every low counter {'busy' if busy else 'idle'}")
    sim.receive_notice("n1", 4, "post 1 empty")
    answer = advance(sim, 1.0)  # the answer comes 1 s in
    acks = [e for e in answer if isinstance(e, IntercomAck)]
    if busy:
        assert acks == [], "nobody leaves a customer: no 'on my way'"
        return
    assert [a.position for a in acks] == [4]
    paused = [e for e in answer if isinstance(e, CounterPaused)]
    assert [p.reason for p in paused] == ["covering"]
    answer += advance(sim, 30.0)
    teller = f"teller-{paused[0].counter.removeprefix('c')}"
    assert ("PositionStaffed", teller) in of_post(answer, 1)
    check(events + answer + advance(sim, 30 * MINUTE))


def test_an_unsatisfied_follow_up_is_acked_and_nobody_leaves_their_post() -> None:
    sim = BranchSim("north", "br-0001", seed=2, profile=replace(DEFAULT_PROFILE, notices=PROMPT))
    events: list[Event] = []
    rating = None
    while rating is None:
        new = advance(sim, 5.0)
        events += new
        rating = next(
            (e for e in new if isinstance(e, EvaluationSubmitted) and e.rating == "unsatisfied"),
            None,
        )
        assert sim.now < 17 * HOUR, "an unsatisfied rating within the day"
    text = f"Unsatisfied customer at counter {rating.counter}, ticket {rating.ticket}"
    staffed_3 = bool(sim._posts.get(3))
    sim.receive_notice("n9", 3, text)
    after = advance(sim, 10.0)
    assert [e.notice for e in after if isinstance(e, IntercomAck)] == (["n9"] if staffed_3 else [])
    assert of_post(after, 3) == [] or not staffed_3
    assert sim._unsatisfied == [], "that customer is being spoken to"


def test_a_long_queue_notice_may_open_a_flexible_counter_before_its_hours() -> None:
    eager = replace(DEFAULT_PROFILE, notices=replace(PROMPT, open_counter_share=1.0))
    sim = BranchSim("north", "br-0001", seed=4, profile=eager)
    events = sim.advance(9.5 * HOUR)
    assert not [e for e in events if isinstance(e, CounterOpened) and e.counter in ("c7", "c8")]
    sim.receive_notice("n3", 3, "Open another cash counter: 12 waiting, oldest 21 min.")
    events += advance(sim, MINUTE)
    flex = [e.counter for e in events if isinstance(e, CounterOpened) and e.ts > 0]
    assert {c.id for c in sim._counters if c.flex} & set(flex), "a flexible counter opened"
    check(events + sim.advance(9 * HOUR + DAY))


def test_staff_who_never_answer_and_closed_branches_send_no_ack() -> None:
    deaf = replace(DEFAULT_PROFILE, notices=replace(PROMPT, never_share=1.0))
    sim = sim_from_ten(deaf)
    advance(sim, MINUTE)
    for n in range(10):
        sim.receive_notice(f"n{n}", 3, "")
    assert not [e for e in advance(sim, 10 * MINUTE) if isinstance(e, IntercomAck) and e.notice]

    evening = sim_from_ten(replace(DEFAULT_PROFILE, notices=PROMPT))
    evening.advance(17 * HOUR)
    while evening.is_open:
        advance(evening, 1.0)
    evening.receive_notice("late", 3, "")
    assert not [e for e in advance(evening, MINUTE) if isinstance(e, IntercomAck)]


def test_answers_are_reproducible_per_notice_id() -> None:
    def run(notices: list[str]) -> list[bytes]:
        sim = sim_from_ten(replace(DEFAULT_PROFILE, incidents=GREETER_AWAY))
        out = advance(sim, 2 * MINUTE)
        for notice in notices:
            sim.receive_notice(notice, 3, "")
            out += advance(sim, 2 * MINUTE)
        return [encode(e) for e in out]

    assert run(["a", "b", "c"]) == run(["a", "b", "c"])
    acks = [
        [raw for raw in run([notice]) if b"intercom.ack" in raw and notice.encode() in raw]
        for notice in (f"id-{n}" for n in range(12))
    ]
    assert 8 <= sum(1 for a in acks if a) < 12, "the share that never answers, per notice id"


# -- thin staffing ----------------------------------------------------------------------------


def test_thin_staffing_follows_the_banks_figures() -> None:
    assert SCENARIOS["thin"] == THIN_STAFFING
    managers = [p.lobby_managers for p in THIN_STAFFING]
    assert 0.94 <= sum(managers) / len(managers) <= 1.54
    assert managers.count(0) / len(managers) == pytest.approx(0.18, abs=0.01)
    assert DEFAULT_PROFILE.lobby_managers == 3
    for profile in THIN_STAFFING:
        assert {1, 2} <= set(profile.lobby_staff), "someone at the required posts"
        assert profile.greeter_absences == DEFAULT_PROFILE.greeter_absences, "today's rates"
    with pytest.raises(ValueError, match="required posts"):
        Profile(lobby_staff={1: "mgr"})


def test_a_branch_without_lobby_manager_sometimes_has_nobody_to_backfill() -> None:
    sim = BranchSim("north", "br-0003", seed=1, profile=NO_LOBBY_MANAGER)
    events = sim.advance(9 * HOUR + DAY)
    floor = check(events)
    assert floor.counts["branch.closed"] == 1
    staffed: dict[int, set[str]] = {}
    nobody = 0.0
    last = None
    for e in events:
        if last is not None and not any(staffed.get(p) for p in (3, 4, 7)):
            nobody += e.ts - last
        last = e.ts
        if isinstance(e, PositionStaffed):
            staffed.setdefault(e.position, set()).add(e.staff or "")
        elif isinstance(e, PositionVacated):
            staffed.get(e.position, set()).discard(e.staff or "")
    assert nobody > 10 * MINUTE, "posts 3, 4 and 7 all empty for a while"
    opening = [e for e in events if isinstance(e, PositionStaffed) and e.ts == events[0].ts]
    assert {(e.position, e.staff) for e in opening} >= {(1, "flex-1"), (2, "flex-2")}


def test_thin_days_stay_consistent() -> None:
    for sim in make_branches(11, 5, scenario="thin"):
        check(sim.advance(9 * HOUR + DAY))


# -- the loop closed in process ---------------------------------------------------------------


def test_with_notices_post_1_is_backfilled_sooner_and_pages_less() -> None:
    off = simulate_day(10, 1, "normal", None)
    on = simulate_day(10, 1, "normal", NoticesConfig())
    assert off.sent == {} and off.acks == {}
    kinds = {sent.kind for sent in on.sent.values()}
    assert {"post_empty", "unsatisfied"} <= kinds
    assert len(on.acks) >= 0.8 * len(on.sent)
    assert on.empty_minutes() < 0.7 * off.empty_minutes()
    assert on.pages() < off.pages()
    assert off.thresholds.greeter_empty_seconds < on.thresholds.greeter_empty_seconds
    assert max(on.sent_after_threshold()) <= 0.5, "due_notices every simulated 0.5 s"
