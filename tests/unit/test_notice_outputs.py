# ruff: noqa: E501 - exposition lines are long by nature
"""What the collector shows of floor notices: the exposition's notice families (exact
lines, the unanswered gauge's life) and the ``notices`` of the branch API."""

from __future__ import annotations

from functools import partial

import msgspec

from branchwatch.contract import events as ev
from collector.floor.config import FloorConfig, PostConfig
from collector.notices.config import NoticesConfig
from collector.store import Store
from tests.unit import events

FLOOR = FloorConfig(
    services=("cash",),
    posts=tuple(PostConfig(n, f"post {n}") for n in (1, 2, 3, 4)),
    required_posts=(1,),
    backfill_order=(3, 4),
    wait_buckets=(60.0,),
    service_buckets=(30.0,),
)
NOTICES = NoticesConfig(follow_up_positions=(3,), post_empty_seconds=60, ack_timeout_seconds=60)


E = partial(events.E, device="intercom-1")


def notice_lines(store: Store) -> list[str]:
    return [
        line
        for line in store.render().splitlines()
        if line.startswith("branchwatch_notice") and 'kind="post_empty"' in line
    ]


def test_a_chain_escalated_and_acknowledged_then_resolved() -> None:
    store = Store(FLOOR, notices=NOTICES)

    def apply(*events: ev.Event) -> None:
        store.apply_events("north", "b1", "ic", events, received=events[-1].ts)

    apply(
        E(ev.BranchOpened, 1, 1000.0),
        E(ev.PositionStaffed, 2, 1001.0, position=1, staff="s.li"),
        E(ev.PositionStaffed, 3, 1002.0, position=3, staff="s.wu"),
        E(ev.PositionStaffed, 4, 1003.0, position=4, staff="s.he"),
    )
    apply(E(ev.PositionVacated, 5, 1100.0, position=1))
    assert store.due_notices(1159.0) == []
    [first] = store.due_notices(1160.0)
    [second] = store.due_notices(1220.0)  # post 3 did not acknowledge
    assert (first.agent, first.notify.position, second.notify.position) == ("ic", 3, 4)
    apply(E(ev.IntercomAck, 6, 1225.0, position=4, notice=second.notify.id))
    assert notice_lines(store) == [
        'branchwatch_notices_total{region="north",branch="b1",kind="post_empty",outcome="sent"} 2',
        'branchwatch_notices_total{region="north",branch="b1",kind="post_empty",outcome="acked"} 1',
        'branchwatch_notices_total{region="north",branch="b1",kind="post_empty",outcome="escalated"} 1',
        'branchwatch_notices_total{region="north",branch="b1",kind="post_empty",outcome="unanswered"} 0',
        'branchwatch_notices_total{region="north",branch="b1",kind="post_empty",outcome="resolved"} 0',
        'branchwatch_notice_open{region="north",branch="b1",kind="post_empty"} 1',
        'branchwatch_notice_ack_seconds_bucket{region="north",branch="b1",kind="post_empty",le="5.0"} 1',
        'branchwatch_notice_ack_seconds_bucket{region="north",branch="b1",kind="post_empty",le="10.0"} 1',
        'branchwatch_notice_ack_seconds_bucket{region="north",branch="b1",kind="post_empty",le="30.0"} 1',
        'branchwatch_notice_ack_seconds_bucket{region="north",branch="b1",kind="post_empty",le="60.0"} 1',
        'branchwatch_notice_ack_seconds_bucket{region="north",branch="b1",kind="post_empty",le="120.0"} 1',
        'branchwatch_notice_ack_seconds_bucket{region="north",branch="b1",kind="post_empty",le="300.0"} 1',
        'branchwatch_notice_ack_seconds_bucket{region="north",branch="b1",kind="post_empty",le="+Inf"} 1',
        'branchwatch_notice_ack_seconds_sum{region="north",branch="b1",kind="post_empty"} 5.0',
        'branchwatch_notice_ack_seconds_count{region="north",branch="b1",kind="post_empty"} 1',
    ]
    apply(E(ev.PositionStaffed, 7, 1230.0, position=1, staff="s.li"))
    lines = notice_lines(store)
    assert (
        'branchwatch_notices_total{region="north",branch="b1",kind="post_empty",outcome="resolved"} 1'
        in lines
    )
    assert 'branchwatch_notice_open{region="north",branch="b1",kind="post_empty"} 0' in lines


def test_every_kind_has_its_totals_open_gauge_and_histogram_from_the_start() -> None:
    store = Store(FLOOR, notices=NOTICES)
    store.apply_events("north", "b1", "q", [E(ev.BranchClosed, 1, 10.0)], received=10.0)
    text = store.render()
    for kind, outcomes in (
        ("post_empty", ("sent", "acked", "escalated", "unanswered", "resolved")),
        ("unsatisfied", ("sent", "acked", "unanswered")),
        ("queue_long", ("sent", "acked", "resolved")),
    ):
        for outcome in outcomes:
            assert f'kind="{kind}",outcome="{outcome}"}} 0\n' in text
        assert f'branchwatch_notice_open{{region="north",branch="b1",kind="{kind}"}} 0\n' in text
        assert (
            f'branchwatch_notice_ack_seconds_count{{region="north",branch="b1",kind="{kind}"}} 0\n'
            in text
        )
    assert "branchwatch_notice_unanswered_timestamp_seconds{" not in text


def test_the_unanswered_gauge_lives_while_the_chain_is_exhausted() -> None:
    store = Store(FLOOR, notices=NOTICES)
    # No intercom reported any post: nobody can be told, the chain ends at once.
    store.apply_events("north", "b1", "q", [E(ev.BranchOpened, 1, 1000.0)], received=1000.0)
    assert store.due_notices(1061.0) == []
    gauge = 'branchwatch_notice_unanswered_timestamp_seconds{region="north",branch="b1",kind="post_empty"}'
    assert f"{gauge} 1061.0" in notice_lines(store)
    staffed = E(ev.PositionStaffed, 2, 1070.0, position=1, staff="s.li")
    store.apply_events("north", "b1", "q", [staffed], received=1070.0)
    lines = notice_lines(store)
    assert not any(line.startswith(gauge) for line in lines)
    assert (
        'branchwatch_notices_total{region="north",branch="b1",kind="post_empty",outcome="unanswered"} 1'
        in lines
    )


def test_notices_off_render_no_notice_series() -> None:
    store = Store(FLOOR)
    store.apply_events("north", "b1", "q", [E(ev.BranchOpened, 1, 1000.0)], received=1000.0)
    store.due_notices(2000.0)
    text = store.render()
    assert "# TYPE branchwatch_notices_total counter" in text
    assert not [line for line in text.splitlines() if line.startswith("branchwatch_notice")]


def test_the_branch_api_lists_open_episodes_with_their_chain() -> None:
    store = Store(FLOOR, notices=NOTICES)
    events = [
        E(ev.BranchOpened, 1, 1000.0),
        E(ev.PositionStaffed, 2, 1002.0, position=3, staff="s.wu"),
    ]
    store.apply_events("north", "b1", "ic", events, received=1002.0)
    [sent] = store.due_notices(1060.0)  # post 1 empty since opening
    ack = E(ev.IntercomAck, 3, 1064.0, position=3, notice=sent.notify.id)
    store.apply_events("north", "b1", "ic", [ack], received=1064.0)
    detail = msgspec.json.decode(msgspec.json.encode(store.branch_detail("north", "b1", 1065.0)))
    assert detail["notices"] == [
        {
            "kind": "post_empty",
            "stage": "acked",
            "since": 1000.0,
            "due": 1124.0,  # the post has ack_timeout_seconds after the ack to be staffed
            "unanswered_ts": None,
            "acked_by": 3,
            "position": 1,
            "counter": None,
            "teller": None,
            "ticket": None,
            "waited": None,
            "service": None,
            "notices": [
                {
                    "id": sent.notify.id,
                    "position": 3,
                    "agent": "ic",
                    "sent_ts": 1060.0,
                    "acked_ts": 1064.0,
                    "acked_by": 3,
                }
            ],
        }
    ]
    off = Store(FLOOR)
    off.apply_events("north", "b1", "ic", events, received=1002.0)
    off.due_notices(1060.0)
    quiet = off.branch_detail("north", "b1", 1065.0)
    assert quiet is not None and quiet.notices == []
