"""Post state is order-independent: any interleaving of live and replayed events converges.

After a collector restart the events an agent sent while the collector was down
arrive first and the replayed older ones later. Whatever the order, the posts
(staff on each post, since when, who left last, who reported it), the branch's
opening hours and their rendered samples must be those of the in-order stream.
"""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from branchwatch.contract import events as ev
from collector.floor.config import FloorConfig
from collector.floor.posts import MAX_CLEARED
from collector.store import Store
from tests.support import parse_metrics, sample

POSITIONS = (1, 2, 5, 6)
STAFF = ("a", "b", "c", "d", "e")
WATCHED = (
    "branchwatch_branch_open{",
    "branchwatch_position_staffed{",
    "branchwatch_position_changed_timestamp_seconds{",
)
Sent = tuple[str, ev.Event]  # (agent, event)
# (stream, how many the collector knew, held back or not per event, replay order, restart)
Case = tuple[list[Sent], int, list[bool], list[int], bool]


@st.composite
def floor_streams(draw: st.DrawFn, agents: tuple[str, ...] = ("a1",)) -> list[Sent]:
    """Staffed/vacated (with and without staff ids, several staff per post), opened and
    closed, in the order they happened; equal times occur (one-second device clocks)."""
    seqs = dict.fromkeys(agents, 0)
    # One busy post sees more anonymous vacates than a post remembers (MAX_CLEARED).
    positions = draw(st.sampled_from(((5,), (1, 5), POSITIONS)))
    ts = 1000.0
    stream: list[Sent] = []
    for _ in range(draw(st.integers(1, 60))):
        ts += draw(st.sampled_from((0.0, 0.0, 1.0, 30.0)))
        agent = draw(st.sampled_from(agents))
        seqs[agent] += 1
        base: dict[str, Any] = {"v": 1, "seq": seqs[agent], "ts": ts, "device": "d1"}
        kind = draw(st.sampled_from(("staffed", "staffed", "vacated", "vacated", "day")))
        position = draw(st.sampled_from(positions))
        staff = draw(st.none() | st.sampled_from(STAFF))
        event: ev.Event
        if kind == "staffed":
            event = ev.PositionStaffed(**base, position=position, staff=staff)
        elif kind == "vacated":
            # Anonymous vacates are rarer: each empties the whole post.
            named = draw(st.booleans()) or staff is None
            event = ev.PositionVacated(**base, position=position, staff=staff if named else None)
        else:
            agent = agents[0]  # the queue machine's agent opens and closes the branch
            seqs[agent] += 1
            base["seq"] = seqs[agent]
            cls = ev.BranchOpened if draw(st.booleans()) else ev.BranchClosed
            event = cls(**base)
        stream.append((agent, event))
    return stream


def apply(store: Store, sent: list[Sent], received: float = 5000.0) -> tuple[int, int]:
    """Each event as its own message; (applied live, applied late)."""
    live = late = 0
    for agent, event in sent:
        result = store.apply_events("r1", "b1", agent, [event], received)
        assert not result.rejected and not result.duplicate, (event, result)
        live, late = live + result.applied, late + result.late
    return live, late


def post_state(store: Store) -> dict[str, Any]:
    detail = store.branch_detail("r1", "b1", now=9000.0)
    assert detail is not None
    samples = sorted(line for line in store.render().splitlines() if line.startswith(WATCHED))
    return {
        "posts": [(p.position, p.staff, p.since, p.last_staff) for p in detail.positions],
        "day": (detail.open, detail.opened_ts),
        "agents": {n: p.agent for n, p in _posts(store).items()},
        "samples": samples,
    }


def _posts(store: Store) -> dict[int, Any]:
    # Which agent reported a post (where its notices go) is not in the API view.
    return store._branches[("r1", "b1")].posts


def in_order(stream: list[Sent]) -> Store:
    store = Store(FloorConfig())
    assert apply(store, stream) == (len(stream), 0)
    return store


def interleaved(case: Case, agents: tuple[str, ...] = ("a1",)) -> Store:
    """The known prefix in order (what the snapshot held), then the rest: the events
    flagged late held back (gaps), the others live, then the held ones as a replay."""
    stream, known, late, order, restart = case
    # The collector knew every agent before (a snapshot): its first seq is no gap.
    known = max(known, *(next(i for i, s in enumerate(stream) if s[0] == a) + 1 for a in agents))
    store = Store(FloorConfig())
    applied = apply(store, stream[:known])
    if restart:
        store = Store.restore(FloorConfig(), store.snapshot())
    rest = range(known, len(stream))
    live = apply(store, [stream[i] for i in rest if not late[i]])
    replayed = apply(store, [stream[i] for i in order if i >= known and late[i]])
    assert sum(applied) + sum(live) + sum(replayed) == len(stream)
    return store


@st.composite
def reorderings(draw: st.DrawFn, agents: tuple[str, ...] = ("a1",)) -> Case:
    stream = draw(floor_streams(agents))
    assume({agent for agent, _ in stream} == set(agents))
    known = draw(st.integers(1, len(stream)))
    late = draw(st.lists(st.booleans(), min_size=len(stream), max_size=len(stream)))
    order = draw(st.permutations(range(len(stream))))
    return stream, known, late, order, draw(st.booleans())


@settings(max_examples=300, deadline=None)
@given(reorderings())
def test_any_interleaving_of_live_and_replayed_events_gives_the_in_order_state(
    case: Case,
) -> None:
    assert post_state(interleaved(case)) == post_state(in_order(case[0]))


@settings(max_examples=150, deadline=None)
@given(reorderings(agents=("a1", "a2")))
def test_two_agents_reporting_posts_converge_too(case: Case) -> None:
    assert post_state(interleaved(case, ("a1", "a2"))) == post_state(in_order(case[0]))


class Script(list[Sent]):
    """One agent's events in the order they happened, numbered from seq 1."""

    def add(self, cls: type[ev.Event], ts: float, **fields: Any) -> None:
        self.append(("a1", cls(v=1, seq=len(self) + 1, ts=ts, device="d1", **fields)))


def test_the_restart_case_of_the_issue() -> None:
    """Post 6 holds four tellers, post 5 one who leaves; the collector missed it all and
    gets the newer events first: 4 on post 6 and post 5 empty, for good."""
    at = Script()
    at.add(ev.BranchOpened, 100)
    for n, teller in enumerate(("t1", "t2", "t3", "t4")):
        at.add(ev.PositionStaffed, 110 + n, position=6, staff=teller)
    at.add(ev.PositionStaffed, 120, position=5, staff="t5")
    at.add(ev.PositionVacated, 130, position=5, staff="t5")
    at.add(ev.PositionStaffed, 140, position=1, staff="lm")
    store = Store(FloorConfig())
    apply(store, at[:1])  # the snapshot knew the opening
    apply(store, at[6:])  # 130 and 140 came live, queued by the broker
    assert apply(store, at[1:6]) == (0, 5)  # then the replay
    samples = parse_metrics(store.render())
    staffed = [
        sample(samples, "branchwatch_position_staffed", region="r1", branch="b1", position=p)
        for p in ("6", "5", "1")
    ]
    assert staffed == [4, 0, 1]
    assert post_state(store) == post_state(in_order(at))


def test_who_left_last_survives_anonymous_vacates_arriving_first() -> None:
    """Anonymous vacates beyond those remembered: an old check-in cannot become 'last'."""
    at = Script()
    at.add(ev.PositionStaffed, 50, position=7, staff="rm")
    at.add(ev.PositionStaffed, 100, position=5, staff="old")
    for n in range(MAX_CLEARED + 2):
        at.add(ev.PositionStaffed, 200 + 10 * n, position=5, staff=f"s{n}")
        at.add(ev.PositionVacated, 205 + 10 * n, position=5)
    expected = post_state(in_order(at))
    assert expected["posts"][4] == (5, [], 255.0, [f"s{MAX_CLEARED + 1}"])
    store = Store(FloorConfig())
    apply(store, at[:1])
    apply(store, at[2:])
    apply(store, at[1:2])  # the oldest check-in, replayed last
    assert post_state(store) == expected
    assert len(_posts(store)[5].staff_marks) <= MAX_CLEARED  # older marks were let go


def test_a_check_in_older_than_every_remembered_anonymous_vacate_is_never_last() -> None:
    """Whichever comes first, the old check-in or a later check-out of the same staff."""
    at = Script()
    at.add(ev.PositionStaffed, 50, position=7, staff="rm")
    at.add(ev.PositionStaffed, 100, position=5, staff="x")
    for n in range(MAX_CLEARED + 1):
        at.add(ev.PositionVacated, 110 + 10 * n, position=5)
    at.add(ev.PositionVacated, 300, position=5, staff="x")
    expected = post_state(in_order(at))
    assert expected["posts"][4] == (5, [], 300.0, [])
    store = Store(FloorConfig())
    apply(store, at[:1])
    apply(store, at[2:])
    apply(store, at[1:2])
    assert post_state(store) == expected
