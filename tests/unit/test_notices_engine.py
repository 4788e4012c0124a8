"""Floor notices through the Store: backfill chains, acks, follow-ups, long queues.

Pure: contract events in, ``notify`` commands out, the clock injected
(``Floor.now``). Each test tells one rule of the floor loop.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from branchwatch.contract import events as ev
from branchwatch.contract.ids import LOCAL_ID_PATTERN
from branchwatch.contract.messages import Status
from branchwatch.thresholds import DEFAULT_THRESHOLDS
from collector.errors import CollectorConfigError
from collector.floor.config import FloorConfig
from collector.notices.book import Outbound
from collector.notices.config import NoticesConfig, NoticeTexts
from collector.notices.state import ACK_BUCKETS
from collector.notices.texts import MAX_TEXT
from collector.notices.view import NoticeMetrics, notice_metrics
from collector.snapshot import MAGIC
from collector.store import Store

START = 1000.0
NOTICES = NoticesConfig()  # post_empty 60 s, ack timeout 60 s, follow-ups [3, 2, 1]


class Floor:
    """One branch (r1/b1) fed event by event, with its own clock."""

    def __init__(self, notices: NoticesConfig = NOTICES, floor: FloorConfig | None = None) -> None:
        self.floor = floor or FloorConfig()
        self.notices = notices
        self.store = Store(self.floor, notices=notices)
        self.seq: dict[str, int] = {}
        self.now = START
        self.sent: list[Outbound] = []

    def event(
        self, cls: type[ev.Event], agent: str = "a1", ts: float | None = None, **fields: Any
    ) -> ev.Event:
        """The agent's next event (its next seq), stamped ``ts`` (default: now)."""
        self.seq[agent] = self.seq.get(agent, 0) + 1
        stamp = self.now if ts is None else ts
        return cls(v=1, seq=self.seq[agent], ts=stamp, device="dev", **fields)

    def send(self, *events: ev.Event, agent: str = "a1") -> None:
        self.store.apply_events("r1", "b1", agent, list(events), received=self.now)

    def __call__(self, cls: type[ev.Event], agent: str = "a1", **fields: Any) -> None:
        self.send(self.event(cls, agent, **fields), agent=agent)

    def opened(self, *staffed: tuple[int, str, str]) -> None:
        """Open the branch with ``(position, staff, agent)`` checked in."""
        self(ev.BranchOpened)
        for position, staff, agent in staffed:
            self(ev.PositionStaffed, agent, position=position, staff=staff)

    def at(self, when: float) -> list[Outbound]:
        """Move the clock to ``when`` and run one tick."""
        self.now = when
        out = self.store.due_notices(when)
        self.sent.extend(out)
        return out

    def until(self, when: float, step: float = 0.5) -> list[Outbound]:
        """Tick every ``step`` up to ``when``; every notice sent on the way."""
        out: list[Outbound] = []
        t = self.now
        while t < when:
            t = min(t + step, when)
            out.extend(self.at(t))
        return out

    def ack(self, position: int, notice: str | None = None, agent: str = "a1") -> None:
        self(ev.IntercomAck, agent, position=position, notice=notice)

    @property
    def metrics(self) -> NoticeMetrics:
        state = self.store._branches[("r1", "b1")]
        return notice_metrics(state.notices)

    def total(self, kind: str, outcome: str) -> int:
        return self.metrics.totals[(kind, outcome)]  # type: ignore[index]


def told(out: list[Outbound]) -> list[tuple[str, int]]:
    return [(o.agent, o.notify.position) for o in out]


LOBBY = ((1, "lm", "a1"), (2, "dlm", "a1"))  # the required posts, staffed
DEFAULT_STAFF = (*LOBBY, (3, "dir", "a1"), (4, "t4", "a1"))


def floor_with_post_1_empty(
    notices: NoticesConfig = NOTICES, staff: tuple[tuple[int, str, str], ...] = DEFAULT_STAFF
) -> Floor:
    """Open at START with ``staff`` checked in; post 1 vacated at START + 10."""
    floor = Floor(notices)
    floor.opened(*staff)
    floor.now = START + 10
    floor(ev.PositionVacated, position=1)
    return floor


# -- post empty: the backfill chain ----------------------------------------------------


def test_nothing_before_the_threshold_then_the_first_staffed_backfill_post() -> None:
    floor = floor_with_post_1_empty()
    assert floor.until(START + 69.5) == []
    out = floor.at(START + 70)
    assert told(out) == [("a1", 3)]
    notify = out[0].notify
    assert (out[0].region, out[0].branch) == ("r1", "b1")
    assert re.match(LOCAL_ID_PATTERN, notify.id)
    assert notify.text == (
        "Post 1 (greeting and ticket desk) has been empty for 1 min: please cover it."
    )
    metrics = floor.metrics
    assert (floor.total("post_empty", "sent"), metrics.open["post_empty"]) == (1, 1)
    assert metrics.unanswered_since == {}
    assert floor.until(START + 129.5) == []  # one notice per step


def test_unacknowledged_notices_walk_the_chain_to_unanswered() -> None:
    floor = floor_with_post_1_empty(staff=(*DEFAULT_STAFF, (7, "rm", "a2")))
    steps = [floor.until(START + 70 + 60 * k) for k in range(6)]
    assert [told(step) for step in steps] == [
        [("a1", 3)],
        [("a1", 4)],
        [("a2", 7)],
        # all-call: one notice per intercom agent, at a staffed post of its own
        [("a1", 2), ("a2", 7)],
        [],  # the chain is exhausted
        [],
    ]
    assert floor.total("post_empty", "escalated") == 3
    assert floor.total("post_empty", "unanswered") == 1
    assert floor.metrics.unanswered_since == {"post_empty": START + 310}
    assert floor.metrics.open["post_empty"] == 1
    # The post is staffed again: the episode ends, the page condition goes.
    floor.now = START + 400
    floor(ev.PositionStaffed, position=1, staff="lm")
    metrics = floor.metrics
    assert (metrics.unanswered_since, metrics.open["post_empty"]) == ({}, 0)
    assert floor.total("post_empty", "resolved") == 1
    assert floor.until(START + 600) == []


def test_ack_stops_the_chain_then_one_renotice_then_escalation() -> None:
    floor = floor_with_post_1_empty()
    [first] = floor.until(START + 70)
    floor.now = START + 80
    floor.ack(3, first.notify.id)
    assert floor.total("post_empty", "acked") == 1
    assert floor.until(START + 139.5) == []  # ack + 60 s to fill the post
    renotice = floor.at(START + 140)
    assert told(renotice) == [("a1", 3)]
    assert renotice[0].notify.id != first.notify.id
    assert floor.until(START + 199.5) == []
    assert told(floor.at(START + 200)) == [("a1", 4)]  # no ack of the re-notice: next post
    assert floor.total("post_empty", "escalated") == 1
    ack_seconds = floor.metrics.ack_seconds["post_empty"]
    assert (ack_seconds.count, ack_seconds.sum) == (1, 10.0)
    assert ack_seconds.counts[ACK_BUCKETS.index(10.0)] == 1


def test_an_acked_renotice_still_escalates_when_the_post_stays_empty() -> None:
    floor = floor_with_post_1_empty()
    floor.until(START + 70)
    floor.ack(3)  # without a notice id, from the post told: counts
    [renotice] = floor.until(START + 140)
    floor.ack(3, renotice.notify.id)
    assert floor.total("post_empty", "acked") == 2
    assert told(floor.until(START + 200)) == [("a1", 4)]  # re-noticed once only


def test_restaffed_before_the_threshold_sends_nothing_and_counts_nothing() -> None:
    floor = floor_with_post_1_empty()
    floor.now = START + 50
    floor(ev.PositionStaffed, position=1, staff="t4")
    assert floor.until(START + 300) == []
    assert all(count == 0 for count in floor.metrics.totals.values())
    assert floor.store.notices_of("r1", "b1") == []


def test_restaffed_after_a_notice_resolves_the_episode() -> None:
    floor = floor_with_post_1_empty()
    floor.until(START + 70)
    floor.now = START + 90
    floor(ev.PositionStaffed, position=1, staff="dir")
    assert floor.until(START + 600) == []
    assert (floor.total("post_empty", "resolved"), floor.metrics.open["post_empty"]) == (1, 0)


def test_a_closed_branch_is_told_nothing() -> None:
    floor = Floor()
    floor(ev.PositionStaffed, position=3, staff="dir")
    floor(ev.PositionVacated, position=1)  # never opened today
    assert floor.until(START + 600) == []
    floor = floor_with_post_1_empty()
    floor.until(START + 70)
    floor.now = START + 80
    floor(ev.BranchClosed)
    assert floor.until(START + 600) == []
    metrics = floor.metrics
    assert (metrics.open["post_empty"], metrics.unanswered_since) == (0, {})
    assert floor.total("post_empty", "resolved") == 1  # closing ends the episode


def test_nobody_staffed_in_the_backfill_order_goes_straight_to_escalation() -> None:
    config = NoticesConfig(escalation_positions=(6,))
    floor = Floor(config)
    floor.opened((1, "lm", "a1"), (2, "dlm", "a2"), (6, "head", "a2"))
    floor.now = START + 10
    floor(ev.PositionVacated, position=1)
    assert told(floor.until(START + 70)) == [("a2", 6)]
    assert told(floor.until(START + 130)) == []
    assert floor.total("post_empty", "unanswered") == 1


def test_all_call_reaches_every_intercom_agent_even_without_staff() -> None:
    floor = Floor()
    floor.opened((1, "lm", "a1"), (2, "dlm", "a2"), (5, "t5", "a2"), (6, "t6", "a3"))
    floor.now = START + 5
    floor(ev.PositionVacated, "a3", position=6)  # a3's only post is empty: still called
    floor.now = START + 10
    floor(ev.PositionVacated, position=1)  # a1's only post is the empty one
    out = floor.until(START + 70)
    assert sorted(told(out)) == [("a1", 1), ("a2", 2), ("a3", 6)]
    assert len({o.notify.id for o in out}) == 3


def test_an_offline_intercom_agent_is_skipped() -> None:
    staff = ((1, "lm", "a1"), (2, "dlm", "a1"), (3, "dir", "a2"), (4, "t4", "a1"))
    floor = floor_with_post_1_empty(staff=staff)
    offline = Status(v=1, state="offline", session=1)
    assert floor.store.apply_status("r1", "b1", "a2", offline, received=floor.now)
    assert told(floor.until(START + 70)) == [("a1", 4)]


def test_two_posts_empty_two_episodes_never_two_notices_to_one_post_at_once() -> None:
    floor = Floor()
    floor.opened((1, "lm", "a1"), (2, "dlm", "a1"), (3, "dir", "a1"), (4, "t4", "a1"))
    floor.now = START + 10
    floor(ev.PositionVacated, position=2)
    floor(ev.PositionVacated, position=1)
    out = floor.until(START + 70)
    assert told(out) == [("a1", 3), ("a1", 4)]
    assert "Post 1 " in out[0].notify.text and "Post 2 " in out[1].notify.text
    # Only post 3 staffed: post 2's episode waits for the next tick.
    floor = Floor()
    floor.opened((1, "lm", "a1"), (2, "dlm", "a1"), (3, "dir", "a1"))
    floor.now = START + 10
    floor(ev.PositionVacated, position=2)
    floor(ev.PositionVacated, position=1)
    first = floor.at(START + 70)
    assert told(first) == [("a1", 3)] and "Post 1 " in first[0].notify.text
    second = floor.at(START + 70.5)
    assert told(second) == [("a1", 3)] and "Post 2 " in second[0].notify.text


@pytest.mark.parametrize(
    ("position", "notice", "reason"),
    [
        (3, "n999-1", "unknown_notice"),
        (4, None, "no_notice"),
        (4, "<sent>", "wrong_post"),
    ],
)
def test_acks_that_acknowledge_nothing_are_ignored_and_counted(
    position: int, notice: str | None, reason: str
) -> None:
    floor = floor_with_post_1_empty()
    [first] = floor.until(START + 70)
    floor.now = START + 75
    floor.ack(position, first.notify.id if notice == "<sent>" else notice)
    assert floor.metrics.ignored_acks == {reason: 1}
    assert floor.total("post_empty", "acked") == 0
    assert told(floor.until(START + 130)) == [("a1", 4)]  # the chain went on


def test_an_ack_of_a_notice_already_acked_is_counted_once() -> None:
    floor = floor_with_post_1_empty()
    [first] = floor.until(START + 70)
    floor.ack(3, first.notify.id)
    floor.ack(3, first.notify.id)
    assert floor.total("post_empty", "acked") == 1
    assert floor.metrics.ignored_acks == {"already_acked": 1}


def test_the_api_view_shows_the_chain() -> None:
    floor = floor_with_post_1_empty()
    [first] = floor.until(START + 70)
    floor.now = START + 72
    floor.ack(3, first.notify.id)
    [episode] = floor.store.notices_of("r1", "b1") or []
    assert (episode.kind, episode.position, episode.stage, episode.since) == (
        "post_empty",
        1,
        "acked",
        START + 10,
    )
    assert episode.acked_by == 3
    [notice] = episode.notices
    assert (notice.id, notice.position, notice.agent, notice.sent_ts) == (
        first.notify.id,
        3,
        "a1",
        START + 70,
    )
    assert (notice.acked_ts, notice.acked_by) == (START + 72, 3)
    encoded = msgspec.json.decode(msgspec.json.encode(floor.store.notices_of("r1", "b1")))
    assert encoded[0]["notices"][0]["acked_by"] == 3
    assert floor.store.notices_of("r1", "nope") is None


# -- restarts and replays --------------------------------------------------------------


def test_an_episode_survives_a_restart_without_duplicate_or_lost_notices() -> None:
    floor = floor_with_post_1_empty()
    [first] = floor.until(START + 70)
    restored = Store.restore(floor.floor, floor.store.snapshot(), notices=NOTICES)
    floor.store = restored
    assert floor.until(START + 129.5) == []  # post 3 is not told again
    [second] = floor.until(START + 130)  # ... and the escalation is not lost
    assert (second.notify.position, second.notify.id != first.notify.id) == (4, True)
    floor.ack(3, first.notify.id)  # an id sent before the restart still counts
    assert floor.total("post_empty", "acked") == 1
    assert floor.total("post_empty", "sent") == 2


def test_an_older_snapshot_without_notice_state_still_loads() -> None:
    floor = floor_with_post_1_empty()
    document = msgspec.msgpack.decode(floor.store.snapshot()[len(MAGIC) :])
    for branch in document["branches"]:
        del branch["notices"]
        for post in branch["posts"].values():
            post.pop("agent", None)
        for agent in branch["agents"].values():
            del agent["name"]
    old = MAGIC + msgspec.msgpack.encode(document)
    floor.store = Store.restore(floor.floor, old, notices=NOTICES)
    floor(ev.PositionStaffed, position=3, staff="dir")  # the agent is named again
    assert told(floor.until(START + 200)) == []  # no episode was restored
    floor.now = START + 210
    floor(ev.PositionVacated, position=2)
    assert told(floor.until(START + 270)) == [("a1", 3)]


def test_notice_state_of_another_layout_or_version_is_repaired_on_restore() -> None:
    floor = floor_with_post_1_empty()
    [first] = floor.until(START + 70)
    floor.ack(3, first.notify.id)
    document = msgspec.msgpack.decode(floor.store.snapshot()[len(MAGIC) :])
    book = document["branches"][0]["notices"]
    book["open"][0]["position"] = 50  # a post this layout does not have
    book["ack"]["post_empty"]["counts"] = [1]  # other ack buckets
    floor.store = Store.restore(
        floor.floor, MAGIC + msgspec.msgpack.encode(document), notices=NOTICES
    )
    assert floor.store.notices_of("r1", "b1") == []
    assert floor.until(START + 300) == []
    assert floor.metrics.ack_seconds["post_empty"].counts == [0] * (len(ACK_BUCKETS) + 1)


def test_late_events_never_resurrect_an_episode() -> None:
    floor = Floor()
    floor.opened(*LOBBY, (3, "dir", "a1"))
    floor.now = START + 10
    skipped = floor.event(ev.PositionStaffed, position=1, staff="t4", ts=START + 9)
    floor(ev.PositionVacated, position=1)  # seq after `skipped`: a gap
    floor.until(START + 70)
    floor.now = START + 80
    floor(ev.PositionStaffed, position=1, staff="lm")
    assert floor.total("post_empty", "resolved") == 1
    # The gap is filled late; and an old vacate is replayed from another agent.
    floor.now = START + 100
    floor.send(skipped)
    floor(ev.PositionVacated, "a2", position=1, ts=START + 50)
    assert floor.until(START + 400) == []
    assert floor.store.notices_of("r1", "b1") == []


def test_a_late_vacate_that_leaves_the_post_empty_now_starts_an_episode() -> None:
    # The floor state is order-independent: post 1 IS empty now, however that came to be
    # known, so the branch is told (from the vacate's time on: no second chance at the
    # threshold), and a vacate overtaken by a newer check-in tells nobody.
    floor = Floor()
    floor.opened(*LOBBY, (3, "dir", "a1"))
    floor.now = START + 10
    missing = floor.event(ev.PositionVacated, position=1)
    floor(ev.TicketIssued, ticket="A1", service="cash")  # seq after `missing`
    floor.now = START + 20
    floor.send(missing)  # late: fills the gap, and post 1 is empty now
    assert ("a1", 3) in told(floor.until(START + 200))
    # The same vacate, late after a newer check-in: nothing to tell.
    floor = Floor()
    floor.opened(*LOBBY, (3, "dir", "a1"))
    floor.now = START + 10
    missing = floor.event(ev.PositionVacated, position=1)
    floor(ev.PositionStaffed, position=1, staff="lm2")
    floor.now = START + 20
    floor.send(missing)
    assert floor.until(START + 200) == []


def test_a_late_staffed_ends_an_episode() -> None:
    floor = floor_with_post_1_empty()
    late_staffed = floor.event(ev.PositionStaffed, position=1, staff="lm", ts=START + 75)
    floor(ev.TicketIssued, ticket="A1", service="cash")
    floor.until(START + 70)
    floor.now = START + 80
    floor.send(late_staffed)
    assert floor.until(START + 300) == []
    assert floor.total("post_empty", "resolved") == 1


# -- unsatisfied ratings ---------------------------------------------------------------


def served(floor: Floor, ticket: str, issued: float, called: float) -> None:
    floor(ev.TicketIssued, ts=issued, ticket=ticket, service="cash")
    floor(ev.TicketCalled, ts=called, ticket=ticket, counter="c1")
    floor(ev.ServiceStarted, ts=called + 5, ticket=ticket, counter="c1", teller="t07")
    floor(ev.ServiceEnded, ts=called + 200, ticket=ticket, counter="c1")


def test_an_unsatisfied_rating_is_followed_up_with_counter_teller_ticket_and_wait() -> None:
    floor = Floor()
    floor.opened((1, "lm", "a1"), (2, "dlm", "a1"))  # post 3 empty: post 2 is next
    served(floor, "A042", issued=START + 10, called=START + 10 + 21 * 60)
    floor.now = START + 1600
    floor(ev.EvaluationSubmitted, counter="c1", rating="unsatisfied", ticket="A042")
    [out] = floor.at(START + 1600.5)
    assert told([out]) == [("a1", 2)]
    assert out.notify.text == (
        "Unsatisfied customer at counter c1 (teller t07), ticket A042, waited 21 min: "
        "please speak to them before they leave."
    )
    floor.ack(2)
    assert floor.total("unsatisfied", "acked") == 1
    assert floor.store.notices_of("r1", "b1") == []
    assert floor.until(START + 2000) == []


def test_an_unanswered_follow_up_is_counted_and_not_escalated() -> None:
    floor = Floor()
    floor.opened(*LOBBY, (3, "dir", "a1"))
    floor(ev.EvaluationSubmitted, counter="c9", rating="unsatisfied")
    [out] = floor.at(START + 0.5)
    assert "counter c9 (teller unknown), ticket unknown, waited unknown" in out.notify.text
    assert floor.until(START + 300) == []
    assert (floor.total("unsatisfied", "sent"), floor.total("unsatisfied", "unanswered")) == (1, 1)


def test_two_identical_ratings_are_two_follow_ups_never_two_to_one_post() -> None:
    floor = Floor()
    floor.opened(*LOBBY, (3, "dir", "a1"))
    floor.send(
        *(floor.event(ev.EvaluationSubmitted, counter="c1", rating="unsatisfied") for _ in "abc")
    )
    assert told(floor.at(START + 0.5)) == [("a1", 3), ("a1", 2), ("a1", 1)]
    floor.ack(2)  # without an id: the notice to post 2
    floor.ack(1)
    assert floor.total("unsatisfied", "acked") == 2
    [episode] = floor.store.notices_of("r1", "b1") or []
    assert episode.notices[0].position == 3


@pytest.mark.parametrize("case", ["satisfied", "closed", "late", "stale"])
def test_ratings_that_are_not_followed_up(case: str) -> None:
    floor = Floor()
    if case != "closed":
        floor.opened(*LOBBY, (3, "dir", "a1"))
    else:
        floor(ev.PositionStaffed, position=3, staff="dir")
    rating = "satisfied" if case == "satisfied" else "unsatisfied"
    if case == "late":
        missing = floor.event(ev.EvaluationSubmitted, counter="c1", rating=rating)
        floor(ev.TicketIssued, ticket="A1", service="cash")
        floor.send(missing)
    elif case == "stale":  # a rating heard 10 minutes after it was given
        floor(ev.EvaluationSubmitted, counter="c1", rating=rating, ts=START - 600)
    else:
        floor(ev.EvaluationSubmitted, counter="c1", rating=rating)
    assert floor.until(START + 100) == []


# -- long queues -----------------------------------------------------------------------


def test_a_long_queue_asks_for_a_counter_at_most_once_per_repeat() -> None:
    floor = Floor()
    floor.opened(*LOBBY, (3, "dir", "a1"))
    floor(ev.CounterOpened, counter="c1", kind="high")
    floor(ev.CounterOpened, counter="c4", kind="low")  # not a cash counter
    for n in range(9):
        floor(ev.TicketIssued, ticket=f"A{n}", service="cash")
    [out] = floor.at(START + 0.5)
    assert told([out]) == [("a1", 3)]
    assert out.notify.text == "Open another cash counter: 9 waiting, oldest 0 s."
    floor.now = START + 100
    floor(ev.TicketIssued, ticket="A9", service="cash")
    assert floor.until(START + 600) == []  # the first was sent at START + 0.5
    [again] = floor.until(START + 600.5)
    assert "10 waiting, oldest 10 min" in again.notify.text
    assert floor.metrics.open["queue_long"] == 1
    floor.now = START + 700
    for n in range(5):
        floor(ev.TicketCalled, ticket=f"A{n}", counter="c1")  # 5 left: short again
    assert floor.at(START + 700.5) == []  # looked at on the next tick
    assert (floor.metrics.open["queue_long"], floor.total("queue_long", "resolved")) == (0, 1)
    assert floor.until(START + 1200) == []
    # Short, but the oldest ticket reaches the warning wait (20 min): long again.
    [late] = floor.until(START + 1200.5)
    assert late.notify.text == "Open another cash counter: 5 waiting, oldest 20 min."


def test_the_oldest_ticket_passing_the_warning_wait_asks_for_a_counter() -> None:
    floor = Floor(NoticesConfig(language="zh"))
    floor.opened(*LOBBY)
    floor(ev.CounterOpened, counter="c1", kind="high")
    floor(ev.TicketIssued, ticket="A1", service="cash")
    warning = DEFAULT_THRESHOLDS.wait_warning_seconds
    assert floor.until(START + warning - 0.5) == []
    [out] = floor.at(START + warning)
    assert told([out]) == [("a1", 2)]
    assert out.notify.text == "请加开现金窗口：1人等候，最久已等20分钟。"


def test_a_queue_of_a_service_without_a_counter_kind_counts_every_open_counter() -> None:
    floor = Floor(NoticesConfig(waiting_per_counter=1.5), FloorConfig(services=("cash", "loans")))
    floor.opened(*LOBBY, (3, "dir", "a1"))
    floor(ev.CounterOpened, counter="c1", kind="high")
    floor(ev.CounterOpened, counter="c2", kind="low")
    for n in range(3):  # 3 per 2 counters is not more than 1.5
        floor(ev.TicketIssued, ticket=f"L{n}", service="loans")
    assert floor.at(START + 0.5) == []
    floor(ev.TicketIssued, ticket="L3", service="loans")
    assert "loans counter: 4 waiting" in floor.at(START + 1)[0].notify.text


# -- configuration and texts -----------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (NoticesConfig(post_empty_seconds=0), "notices.post_empty_seconds must be a positive"),
        (NoticesConfig(ack_timeout_seconds=-1), "notices.ack_timeout_seconds"),
        (NoticesConfig(repeat_seconds=float("nan")), "notices.repeat_seconds"),
        (NoticesConfig(waiting_per_counter=0), "notices.waiting_per_counter"),
        (NoticesConfig(follow_up_positions=()), "at least one post"),
        (NoticesConfig(follow_up_positions=(3, 3)), "lists a post twice"),
        (NoticesConfig(escalation_positions=(8,)), r"posts \[8\] that are not configured"),
        (NoticesConfig(texts=NoticeTexts(post_empty="{post} {who}")), r"uses \['who'\]"),
        (NoticesConfig(texts=NoticeTexts(queue_long="{service.x}")), "uses"),
        (NoticesConfig(texts=NoticeTexts(unsatisfied="{0}")), "uses"),
        (NoticesConfig(texts=NoticeTexts(unsatisfied="{ticket")), "not a valid template"),
        (NoticesConfig(texts=NoticeTexts(post_empty="   ")), "is empty"),
    ],
)
def test_config_errors_name_the_setting(config: NoticesConfig, message: str) -> None:
    with pytest.raises(CollectorConfigError, match=message):
        config.validate(frozenset(range(1, 8)))
    with pytest.raises(CollectorConfigError):
        Store(FloorConfig(), notices=config)


def test_the_notices_table_decodes_from_toml_with_fractions() -> None:
    text = b"""
    post_empty_seconds = 45.5
    escalation_positions = [6]
    language = "zh"
    [texts]
    post_empty = "{post_name} empty {empty_for}"
    """
    config = msgspec.toml.decode(text, type=NoticesConfig)
    config.validate(frozenset(range(1, 8)))
    assert (config.post_empty_seconds, config.escalation_positions) == (45.5, (6,))
    with pytest.raises(msgspec.ValidationError, match="unknown"):
        msgspec.toml.decode(b"post_empty_second = 3", type=NoticesConfig)


def test_a_text_override_is_used_and_cut_to_the_contract_bound() -> None:
    long_text = "{post_name} is empty since {empty_for}. " + "Please go. " * 30
    floor = floor_with_post_1_empty(NoticesConfig(texts=NoticeTexts(post_empty=long_text)))
    [out] = floor.until(START + 70)
    assert out.notify.text.startswith("greeting and ticket desk is empty since 1 min.")
    assert len(out.notify.text) == MAX_TEXT and out.notify.text.endswith("…")


def test_chinese_post_notice() -> None:
    floor = floor_with_post_1_empty(NoticesConfig(language="zh"))
    [out] = floor.until(START + 70)
    assert out.notify.text == "1号岗（greeting and ticket desk）已空岗1分钟，请补位。"


def test_disabled_notices_send_nothing() -> None:
    floor = floor_with_post_1_empty(NoticesConfig(enabled=False))
    floor(ev.EvaluationSubmitted, counter="c1", rating="unsatisfied")
    assert floor.until(START + 600) == []
    assert floor.store.notices_of("r1", "b1") == []
    assert not floor.store.notices_enabled


# -- the tick's cost ---------------------------------------------------------------------


def test_a_tick_only_visits_branches_whose_deadline_passed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = Store(FloorConfig(), notices=NOTICES)
    for n in range(2000):
        events = [
            ev.BranchOpened(v=1, seq=1, ts=START, device="d"),
            *(
                ev.PositionStaffed(v=1, seq=p + 1, ts=START, device="d", position=p, staff="s")
                for p in (1, 2, 3)
            ),
            ev.PositionVacated(v=1, seq=5, ts=START + n % 100, device="d", position=1),
        ]
        store.apply_events("r1", f"b{n}", "a1", events, received=START)
    visited: list[str] = []
    engine_due = store._notices.due

    def spy(branch: Any, now: float) -> list[Outbound]:
        visited.append(branch.branch)
        return engine_due(branch, now)

    monkeypatch.setattr(store._notices, "due", spy)
    assert store.due_notices(START + 59) == [] and visited == []
    out = store.due_notices(START + 62)  # vacated at START + 0, 1, 2
    assert len(out) == len(visited) == 3 * 20


# -- a property over any sequence ------------------------------------------------------

OPS = st.one_of(
    st.tuples(st.just("staff"), st.sampled_from([1, 2, 3, 4, 7]), st.sampled_from(["a1", "a2"])),
    st.tuples(st.just("vacate"), st.sampled_from([1, 2, 3, 4, 7]), st.sampled_from(["a1", "a2"])),
    st.tuples(st.just("ack"), st.sampled_from([1, 2, 3, 4, 7]), st.booleans()),
    st.tuples(st.just("open"), st.none(), st.none()),
    st.tuples(st.just("close"), st.none(), st.none()),
    st.tuples(st.just("rate"), st.none(), st.none()),
    st.tuples(st.just("wait"), st.sampled_from([0.5, 20.0, 61.0]), st.none()),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPS, max_size=60))
def test_no_post_is_told_twice_at_once_and_a_closed_branch_never_hears(ops: list[Any]) -> None:
    floor = Floor(NoticesConfig(post_empty_seconds=30, ack_timeout_seconds=20))
    ids: set[str] = set()
    for op, arg, extra in ops:
        if op == "staff":
            floor(ev.PositionStaffed, extra, position=arg, staff=f"s{arg}")
        elif op == "vacate":
            floor(ev.PositionVacated, extra, position=arg)
        elif op == "ack":
            last = floor.sent[-1].notify.id if floor.sent and extra else None
            floor.ack(arg, last)
        elif op == "open":
            floor(ev.BranchOpened)
        elif op == "close":
            floor(ev.BranchClosed)
        elif op == "rate":
            floor(ev.EvaluationSubmitted, counter="c1", rating="unsatisfied")
        else:
            out = floor.at(floor.now + arg)
            positions = [o.notify.position for o in out]
            assert len(positions) == len(set(positions))
            state = floor.store._branches.get(("r1", "b1"))
            if state is None or not state.open:
                assert out == []
            for o in out:
                assert o.notify.id not in ids
                ids.add(o.notify.id)
