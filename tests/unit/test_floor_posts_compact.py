"""Posts held compactly: one mark per staff member in a tuple, its keys as plain numbers;
a restored post shares its names and times as a post fed by events does."""

from __future__ import annotations

from branchwatch.contract import events as ev
from collector.floor.branch import BranchState
from collector.floor.config import FloorConfig
from collector.floor.posts import MAX_DEPARTED_PER_POST
from collector.store import Store
from tests.floorfeed import FloorFeed


def branch(store: Store) -> BranchState:
    state = store.branch_state("r1", "b1")
    assert state is not None
    return state


def fed() -> FloorFeed:
    feed = FloorFeed(Store(FloorConfig()))
    feed(ev.BranchOpened, 1000)
    feed(ev.PositionStaffed, 1010, position=5, staff="t1")
    feed(ev.PositionStaffed, 1020, position=5, staff="t2")
    feed(ev.PositionVacated, 1030, position=5, staff="t1")
    feed(ev.PositionStaffed, 1040, position=5, staff="t1")
    feed(ev.PositionVacated, 1005, seq=50, position=5, staff="t3")  # never checked in
    return feed


def test_a_post_holds_one_mark_per_staff_member_in_the_order_first_seen() -> None:
    posts = branch(fed().store).posts
    post = posts[5]
    assert [(m.staff, m.on_ts, m.on_seq, m.off_ts, m.off_seq) for m in post.staff_marks] == [
        ("t1", 1040.0, 5, 1030.0, 4),
        ("t2", 1020.0, 3, None, 0),
        ("t3", None, 0, 1005.0, 50),
    ]
    assert (post.staff, post.last_staff) == (("t2", "t1"), ())
    assert all(not p.staff_marks for n, p in posts.items() if n != 5)


def test_a_restored_post_shares_its_names_and_times() -> None:
    feed = fed()
    store = Store.restore(FloorConfig(), feed.store.snapshot())
    post = branch(store).posts[5]
    marks = {m.staff: m for m in post.staff_marks}
    assert post.staff[0] is marks["t2"].staff and post.staff[1] is marks["t1"].staff
    assert post.event_ts is marks["t1"].on_ts and post.changed_ts is post.event_ts
    other = branch(Store.restore(FloorConfig(), feed.store.snapshot())).posts[5]
    assert other.staff[0] is post.staff[0]  # one name for every branch and restore
    assert branch(store).posts == branch(feed.store).posts


def test_a_post_forgets_the_staff_that_left_longest_ago_beyond_its_bound() -> None:
    feed = FloorFeed(Store(FloorConfig()))
    feed(ev.PositionStaffed, 1000, position=5, staff="stays")
    for n in range(MAX_DEPARTED_PER_POST + 3):
        feed(ev.PositionStaffed, 1010 + 10 * n, position=5, staff=f"s{n}")
        feed(ev.PositionVacated, 1015 + 10 * n, position=5, staff=f"s{n}")
    post = branch(feed.store).posts[5]
    assert [m.staff for m in post.staff_marks] == ["stays"] + [
        f"s{n}" for n in range(3, MAX_DEPARTED_PER_POST + 3)
    ]
    assert (post.staff, post.last_staff) == (("stays",), (f"s{MAX_DEPARTED_PER_POST + 2}",))
