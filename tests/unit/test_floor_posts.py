"""Lobby posts, opening hours, counters and evaluations; the forward-in-time rule."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from branchwatch.contract import events as ev
from branchwatch.contract.messages import Status
from collector.floor.config import FloorConfig, PostConfig
from collector.floor.posts import MAX_STAFF_PER_POST
from collector.snapshot import MAGIC
from collector.store import Store
from collector.views import PositionView
from tests.floorfeed import FloorFeed


class Feed(FloorFeed):
    def __init__(self, config: FloorConfig | None = None) -> None:
        super().__init__(Store(config or FloorConfig()))

    def post(self, position: int) -> PositionView:
        return next(p for p in self.detail.positions if p.position == position)

    def sample(self, series: str) -> str:
        for line in self.store.render().splitlines():
            name, _, value = line.rpartition(" ")
            if name == series:
                return value
        raise AssertionError(f"{series} not rendered")


def test_first_message_initialises_every_post_empty_at_its_ts() -> None:
    feed = Feed()
    feed(ev.CounterOpened, 1234.5, counter="c1")
    assert [(p.position, p.staffed, p.since) for p in feed.detail.positions] == [
        (n, 0, 1234.5) for n in range(1, 8)
    ]
    assert feed.post(1).name == "greeting and ticket desk"
    assert feed.detail.empty_required == [1, 2]
    assert feed.sample('branchwatch_position_staffed{region="r1",branch="b1",position="7"}') == "0"


def test_first_status_without_ts_initialises_posts_at_receive_time() -> None:
    store = Store(FloorConfig())
    store.apply_status("r1", "b1", "a1", Status(v=1, state="offline", session=1), received=777.0)
    detail = store.branch_detail("r1", "b1", now=800.0)
    assert detail is not None
    assert {p.since for p in detail.positions} == {777.0}


def test_staffing_several_staff_and_vacating() -> None:
    feed = Feed()
    feed(ev.PositionStaffed, 100, position=5, staff="t1")
    feed(ev.PositionStaffed, 110, position=5, staff="t2")
    feed(ev.PositionStaffed, 115, position=5, staff="t2")  # already there
    assert (feed.post(5).staff, feed.post(5).staffed, feed.post(5).since) == (
        ["t1", "t2"],
        2,
        115.0,
    )
    assert feed.post(5).last_staff == []
    feed(ev.PositionVacated, 120, position=5, staff="t1")
    assert (feed.post(5).staff, feed.post(5).last_staff) == (["t2"], ["t1"])
    feed(ev.PositionVacated, 121, position=5, staff="nobody")  # not there: nothing changes
    assert feed.post(5).last_staff == ["t1"]
    feed(ev.PositionStaffed, 130, position=5)
    assert feed.post(5).staff == ["t2", "(anonymous)"]
    feed(ev.PositionVacated, 140, position=5)  # without staff: empties the post
    assert (feed.post(5).staffed, feed.post(5).since) == (0, 140.0)
    assert feed.post(5).last_staff == ["t2", "(anonymous)"]  # who was there last
    assert (
        feed.sample(
            'branchwatch_position_changed_timestamp_seconds{region="r1",branch="b1",position="5"}'
        )
        == "140.0"
    )


def test_post_state_moves_forward_in_event_time_only() -> None:
    feed = Feed()
    feed(ev.PositionStaffed, 200, position=1, staff="lm")
    result = feed(ev.PositionVacated, 150, position=1, staff="lm")  # older: a replay
    assert result.applied == 1
    assert (feed.post(1).staff, feed.post(1).since) == (["lm"], 200.0)


def test_late_staffing_older_than_the_first_message_still_applies() -> None:
    feed = Feed()
    feed(ev.CounterOpened, 500, counter="c1")  # first message: posts initialised at 500
    feed(ev.PositionStaffed, 400, position=1, staff="lm")  # a spooled, older event
    assert (feed.post(1).staffed, feed.post(1).since) == (1, 400.0)


def test_opening_restarts_the_empty_clock_of_empty_posts_only() -> None:
    feed = Feed()
    feed(ev.PositionStaffed, 100, position=1, staff="lm")
    feed(ev.PositionVacated, 110, position=2, staff="x")
    feed(ev.BranchOpened, 300)
    assert (feed.post(1).since, feed.post(2).since, feed.post(3).since) == (100.0, 300.0, 300.0)
    assert feed.detail.empty_required == [2]
    feed(ev.PositionVacated, 400, position=3)
    feed(ev.BranchOpened, 350)  # older than the last opening: ignored
    assert feed.post(3).since == 400.0


def test_branch_open_and_closed_move_forward_only() -> None:
    feed = Feed()
    feed(ev.BranchOpened, 100)
    assert (feed.detail.open, feed.detail.opened_ts) == (True, 100.0)
    assert feed.sample('branchwatch_branch_open{region="r1",branch="b1"}') == "1"
    feed(ev.BranchClosed, 500)
    feed(ev.BranchOpened, 400)  # older than the closing: the day started then, and ended
    assert (feed.detail.open, feed.detail.opened_ts) == (False, 400.0)
    assert feed.sample('branchwatch_branch_open{region="r1",branch="b1"}') == "0"


@pytest.mark.parametrize(
    ("cls", "fields"),
    [
        (ev.PositionStaffed, {"position": 9}),
        (ev.PositionVacated, {"position": 42, "staff": "x"}),
        (ev.IntercomCall, {"from_position": 8, "reason": "vip"}),
        (ev.IntercomCall, {"from_position": 1, "to_position": 8, "reason": "handoff"}),
        (ev.IntercomAck, {"position": 99}),
    ],
)
def test_unknown_position_is_refused(cls: type[ev.Event], fields: dict[str, Any]) -> None:
    feed = Feed()
    result = feed(cls, 100, **fields)
    assert (result.applied, result.rejected) == (0, {"unknown_position": 1})
    assert [p.position for p in feed.detail.positions] == list(range(1, 8))


def test_intercom_between_configured_posts_is_applied() -> None:
    feed = Feed()
    assert feed(ev.IntercomCall, 100, from_position=1, to_position=7, reason="vip").applied == 1
    assert feed(ev.IntercomAck, 101, position=7, notice="n1").applied == 1


def test_configured_posts_replace_the_defaults() -> None:
    config = FloorConfig(
        posts=(PostConfig(1, "door"), PostConfig(10, "annex")),
        required_posts=(10,),
        backfill_order=(),
    )
    feed = Feed(config)
    assert feed(ev.PositionStaffed, 100, position=10, staff="s").applied == 1
    assert feed(ev.PositionStaffed, 100, position=2, staff="s").rejected == {"unknown_position": 1}
    assert [(p.position, p.name, p.required) for p in feed.detail.positions] == [
        (1, "door", False),
        (10, "annex", True),
    ]
    assert feed.detail.empty_required == []


def test_counter_states_are_counted_all_three_always() -> None:
    feed = Feed()
    feed(ev.CounterOpened, 100, counter="c1", kind="high", teller="t1")
    feed(ev.CounterOpened, 100, counter="c2", kind="low")
    feed(ev.CounterPaused, 110, counter="c2", reason="lunch")
    assert feed.detail.counters == {"open": 1, "paused": 1, "closed": 0}
    assert feed.sample('branchwatch_counters{region="r1",branch="b1",state="closed"}') == "0"
    feed(ev.CounterClosed, 120, counter="c1")
    feed(ev.CounterOpened, 115, counter="c1")  # older than the close: ignored
    assert feed.detail.counters == {"open": 0, "paused": 1, "closed": 1}
    views = {c.counter: (c.state, c.kind, c.teller, c.since) for c in feed.detail.counter_list}
    assert views == {"c1": ("closed", "high", "t1", 120.0), "c2": ("paused", "low", None, 110.0)}


def test_evaluations_per_counter_and_ratios() -> None:
    feed = Feed()
    for _ in range(4):
        feed(ev.EvaluationRequested, 100, counter="c1", ticket="A1")
    feed(ev.EvaluationSubmitted, 101, counter="c1", rating="very_satisfied")
    feed(ev.EvaluationSubmitted, 102, counter="c1", rating="unsatisfied", teller="t1")
    feed(ev.EvaluationSubmitted, 103, counter="c1", rating="satisfied")
    feed(ev.EvaluationExpired, 104, counter="c1")
    [evaluations] = feed.detail.evaluations
    assert (evaluations.requested, evaluations.expired) == (4, 1)
    assert evaluations.ratings == {
        "very_satisfied": 1,
        "satisfied": 1,
        "neutral": 0,
        "unsatisfied": 1,
    }
    assert evaluations.satisfaction == pytest.approx(2 / 3)
    assert evaluations.evaluation_rate == pytest.approx(3 / 4)
    assert (feed.detail.satisfaction, feed.detail.evaluation_rate) == (
        evaluations.satisfaction,
        0.75,
    )
    assert (
        feed.sample('branchwatch_evaluations_requested_total{region="r1",branch="b1",counter="c1"}')
        == "4"
    )
    assert (
        feed.sample(
            'branchwatch_evaluations_total{region="r1",branch="b1",counter="c1",rating="neutral"}'
        )
        == "0"
    )
    # known from evaluations only: no counter state
    assert feed.detail.counters == {"open": 0, "paused": 0, "closed": 0}


def test_no_ratings_means_no_ratio() -> None:
    feed = Feed()
    feed(ev.CounterOpened, 100, counter="c1")
    assert (feed.detail.satisfaction, feed.detail.evaluation_rate) == (None, None)
    assert (
        feed.sample(
            'branchwatch_evaluations_total{region="r1",branch="b1",counter="c1",rating="satisfied"}'
        )
        == "0"
    )


@pytest.mark.parametrize(
    ("cls", "fields"),
    [
        (ev.CounterOpened, {}),
        (ev.CounterPaused, {}),
        (ev.CounterClosed, {}),
        (ev.EvaluationRequested, {}),
        (ev.EvaluationSubmitted, {"rating": "neutral"}),
        (ev.EvaluationExpired, {}),
    ],
)
def test_counter_cap_refuses_a_new_counter(cls: type[ev.Event], fields: dict[str, Any]) -> None:
    feed = Feed(FloorConfig(max_counters=2))
    feed(ev.CounterOpened, 100, counter="c1")
    feed(ev.EvaluationRequested, 100, counter="c2")
    result = feed(cls, 101, counter="c3", **fields)
    assert result.rejected == {"too_many_counters": 1}
    assert [c.counter for c in feed.detail.counter_list] == ["c1", "c2"]
    assert feed(cls, 102, counter="c2", **fields).applied == 1  # a known one still works


def test_a_late_close_does_not_lose_todays_queue() -> None:
    feed = Feed()
    feed(ev.BranchOpened, 1000)
    feed(ev.TicketIssued, 1010, ticket="A1", service="cash")
    feed(ev.BranchClosed, 900)  # yesterday's closing, replayed
    assert (feed.detail.open, feed.detail.waiting_total, feed.detail.lost_total) == (True, 1, 0)


def test_staff_per_post_are_bounded() -> None:
    feed = Feed()
    for n in range(MAX_STAFF_PER_POST):
        feed(ev.PositionStaffed, 100 + n, position=5, staff=f"t{n}")
    assert feed(ev.PositionStaffed, 200, position=5, staff="one-more").rejected == {
        "too_many_staff": 1
    }
    assert feed.post(5).staffed == MAX_STAFF_PER_POST


def test_an_older_message_moves_back_the_start_of_posts_never_reported() -> None:
    feed = Feed()
    feed(ev.PositionStaffed, 500, position=1, staff="lm")  # the first message
    feed.seq = 2
    feed(ev.PositionStaffed, 510, position=7, staff="rm")  # seq 3: seq 2 is missing
    feed.seq = 1
    assert feed(ev.CounterOpened, 300, counter="c1").late == 1  # seq 2, replayed
    assert (feed.post(1).since, feed.post(2).since, feed.post(7).since) == (500.0, 300.0, 510.0)


def _without_post_marks(snapshot: bytes) -> bytes:
    """The snapshot as a collector before order-independent posts wrote it."""
    document = msgspec.msgpack.decode(snapshot[len(MAGIC) :])
    for branch in document["branches"]:
        del branch["open_changed_seq"]
        for post in branch["posts"].values():
            for field in ("staff_marks", "cleared", "event_seq"):
                post.pop(field, None)  # absent when empty
    return MAGIC + msgspec.msgpack.encode(document)


def test_a_snapshot_without_post_marks_loads_and_carries_on() -> None:
    feed = Feed()
    feed(ev.BranchOpened, 90)
    for n, teller in enumerate(("t1", "t2", "t3")):
        feed(ev.PositionStaffed, 100 + n, position=5, staff=teller)
    feed(ev.PositionVacated, 110, position=5, staff="t2")
    feed(ev.PositionStaffed, 120, position=1, staff="lm")
    feed(ev.PositionVacated, 130, position=1)
    before = feed.detail.positions
    feed.store = Store.restore(FloorConfig(), _without_post_marks(feed.store.snapshot()))
    assert feed.detail.positions == before
    feed(ev.PositionVacated, 105, position=5, staff="t3")  # older than the post's state
    assert (feed.post(5).staff, feed.post(5).last_staff) == (["t1", "t3"], ["t2"])
    feed(ev.PositionStaffed, 140, position=5, staff="t4")
    feed(ev.PositionVacated, 150, position=5, staff="t1")
    assert (feed.post(5).staff, feed.post(5).last_staff, feed.post(5).since) == (
        ["t3", "t4"],
        ["t1"],
        150.0,
    )
    assert (feed.post(1).staff, feed.post(1).last_staff) == ([], ["lm"])
