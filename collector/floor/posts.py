"""Lobby posts and the branch's opening hours, whatever order their events arrive in.

After a collector restart the events the agent sent while the collector was
down come first and the replayed older ones after them. So nothing here is
"the last event applied": each post keeps, per staff member, the key
(``ts``, ``seq``) of the newest check-in and the newest named check-out, plus
the keys of the newest vacates without a staff id (each empties the post), and
:func:`derive` computes who is on the post, who left last and since when it
stands as it is from those alone. The same holds for the branch: open or closed
is the newest of its opened/closed events, the day's start the newest opening.
So any interleaving of live and replayed events gives the state of the in-order
stream (``tests/unit/test_floor_posts_order.py`` checks it).

Bounds: at most :data:`MAX_STAFF_PER_POST` on a post (more are refused), marks
of at most :data:`MAX_DEPARTED_PER_POST` staff who left (the oldest forgotten
first) and the :data:`MAX_CLEARED` newest anonymous vacates. Only a replay
older than what those bounds forgot can still be applied out of order.
"""

from __future__ import annotations

import sys
from bisect import bisect_right, insort
from typing import Final, Literal

import msgspec

from branchwatch.contract.events import (
    BranchClosed,
    BranchOpened,
    PositionStaffed,
    PositionVacated,
)
from collector.floor.branch import (
    ANONYMOUS_STAFF,
    AgentState,
    BranchState,
    EventKey,
    Post,
    StaffMark,
)
from collector.floor.config import FloorRules
from collector.floor.tickets import clear_tickets, lose_waiting

MAX_STAFF_PER_POST: Final = 32
MAX_DEPARTED_PER_POST: Final = 32  # marks of staff not on the post; the oldest go first
# Anonymous vacates remembered per post. Who left at an older one is not known any more:
# it is too old to be "who left last".
MAX_CLEARED: Final = 4


class PostIncident(msgspec.Struct, frozen=True, gc=False):
    """A required post emptied, or filled again, while its branch is open."""

    region: str
    branch: str
    position: int
    kind: Literal["emptied", "filled"]
    ts: float  # event time of the change
    empty_since: float  # when the post became empty (or the day opened); == ts if emptied


def post_incident(
    rules: FloorRules, branch: BranchState, position: int, was_staffed: bool, empty_since: float
) -> PostIncident | None:
    """What a staffed/vacated just applied to ``position`` means for the floor, if anything.

    ``was_staffed`` and ``empty_since`` are the post's state before the event.
    """
    post = branch.posts.get(position)
    if post is None or position not in rules.required_posts or not branch.open:
        return None
    staffed = bool(post.staff)
    if staffed == was_staffed:
        return None
    if staffed:
        return PostIncident(
            branch.region, branch.branch, position, "filled", post.changed_ts, empty_since
        )
    return PostIncident(
        branch.region, branch.branch, position, "emptied", post.changed_ts, post.changed_ts
    )


def _newer(key: EventKey, than: EventKey | None) -> bool:
    return than is None or key > than


def _is_on(mark: StaffMark, cleared: tuple[EventKey, ...]) -> bool:
    on = mark.on
    return on is not None and _newer(on, mark.off) and (not cleared or on > cleared[-1])


def _left_at(mark: StaffMark, cleared: tuple[EventKey, ...]) -> EventKey | None:
    """When a staff member not on the post left it after its newest check-in.

    None when it never checked in, or checked in before every anonymous vacate
    still remembered (an older one, forgotten, may have been where it left).
    """
    on = mark.on
    if on is None or (len(cleared) >= MAX_CLEARED and on < cleared[0]):
        return None
    ends = [] if mark.off is None or mark.off < on else [mark.off]
    after = bisect_right(cleared, on)
    if after < len(cleared):
        ends.append(cleared[after])
    return min(ends) if ends else None


def changed_ts(branch: BranchState, post: Post) -> float:
    """When the post was last staffed or vacated, or the day opened while it stood empty.

    A post nothing was ever reported of counts from the branch's first message.
    """
    opened, event_ts = branch.opened_ts, post.event_ts
    if not post.staff and opened is not None and (event_ts is None or event_ts < opened):
        return opened
    return branch.first_ts if event_ts is None else event_ts


def derive(branch: BranchState, post: Post) -> None:
    """Who is on the post, who left last and since when: from its marks alone."""
    cleared = post.cleared
    on: list[tuple[EventKey, str]] = []
    left: list[tuple[EventKey, EventKey, str]] = []  # (left at, checked in at, staff)
    for staff, mark in post.marks.items():
        if _is_on(mark, cleared):
            assert mark.on is not None
            on.append((mark.on, staff))
        else:
            at = _left_at(mark, cleared)
            if at is not None:
                assert mark.on is not None
                left.append((at, mark.on, staff))
    on.sort()
    post.staff = tuple([staff for _, staff in on])
    last = max((at for at, _, _ in left), default=None)
    post.last_staff = tuple([staff for at, _, staff in sorted(left) if at == last])
    post.changed_ts = changed_ts(branch, post)


def _forget_departed(post: Post) -> None:
    """Drop marks that can no longer matter, then the oldest beyond the bound."""
    cleared, marks = post.cleared, post.marks
    if len(cleared) >= MAX_CLEARED:
        # Older than every remembered anonymous vacate: off the post, and never "who left
        # last" again, whatever else arrives (see _left_at).
        oldest = cleared[0]
        for staff in [s for s, m in marks.items() if max(_keys(m)) < oldest]:
            del marks[staff]
    departed = [(max(_keys(m)), s) for s, m in marks.items() if not _is_on(m, cleared)]
    if len(departed) > MAX_DEPARTED_PER_POST:
        departed.sort()
        for _, staff in departed[: len(departed) - MAX_DEPARTED_PER_POST]:
            del marks[staff]


def _keys(mark: StaffMark) -> list[EventKey]:
    return [key for key in (mark.on, mark.off) if key is not None]


def _reported(branch: BranchState, post: Post, agent: AgentState, key: EventKey) -> None:
    """Note the event's key; the newest event's agent is the one that reports the post."""
    # Two agents' events of the same second and seq: the agent name decides, not arrival.
    if post.event_ts is None or (key, agent.name) >= (
        (post.event_ts, post.event_seq),
        post.agent or "",
    ):
        post.event_ts, post.event_seq = key
        post.agent = agent.name
    _forget_departed(post)
    derive(branch, post)


def earlier_start(branch: BranchState, ts: float) -> None:
    """A message older than any before (a replay): posts never reported count from it."""
    if ts < branch.first_ts:
        branch.first_ts = ts
        for post in branch.posts.values():
            if post.event_ts is None:
                post.changed_ts = changed_ts(branch, post)


def upgrade(post: Post) -> None:
    """Marks for a post restored from a snapshot taken before posts kept them.

    Its staff checked in, in list order, and its last staff left, at its last
    event; negative seqs put them before any real event of that second.
    """
    if post.marks or post.cleared or not (post.staff or post.last_staff):
        return
    at = post.changed_ts if post.event_ts is None else post.event_ts
    for n, staff in enumerate(post.last_staff):
        if staff not in post.staff:
            post.marks[staff] = StaffMark(on=(at, n - 2 * MAX_STAFF_PER_POST), off=(at, -1))
    for n, staff in enumerate(post.staff):
        post.marks[staff] = StaffMark(on=(at, n - MAX_STAFF_PER_POST))


def _newest_open_change(branch: BranchState, key: EventKey) -> bool:
    """True when ``key`` is newer than every opened/closed known: it says open or closed."""
    known = branch.open_changed_ts
    if known is not None and key <= (known, branch.open_changed_seq):
        return False
    branch.open_changed_ts, branch.open_changed_seq = key
    return True


def on_opened(rules: FloorRules, branch: BranchState, _: AgentState, e: BranchOpened) -> str | None:
    if branch.opened_ts is None or e.ts > branch.opened_ts:
        branch.opened_ts = e.ts
        for post in branch.posts.values():
            post.changed_ts = changed_ts(branch, post)
    if _newest_open_change(branch, (e.ts, e.seq)):
        # A new day. An opening older than a closing already known only moves the
        # day's start: clearing now would drop tickets of the day after it.
        branch.open = True
        clear_tickets(branch)
    return None


def on_closed(rules: FloorRules, branch: BranchState, _: AgentState, e: BranchClosed) -> str | None:
    if _newest_open_change(branch, (e.ts, e.seq)):
        branch.open = False
        lose_waiting(rules, branch, e.ts)
    return None


def on_staffed(
    rules: FloorRules, branch: BranchState, agent: AgentState, e: PositionStaffed
) -> str | None:
    post = branch.posts.get(e.position)
    if post is None:
        return "unknown_position"
    staff = ANONYMOUS_STAFF if e.staff is None else sys.intern(e.staff)
    key = (e.ts, e.seq)
    mark = post.marks.get(staff)
    if mark is None or _newer(key, mark.on):
        off = None if mark is None else mark.off
        joins = (
            staff not in post.staff
            and _newer(key, off)
            and (not post.cleared or key > post.cleared[-1])
        )
        if joins and len(post.staff) >= MAX_STAFF_PER_POST:
            return "too_many_staff"
        if mark is None:
            mark = post.marks[staff] = StaffMark()
        mark.on = key
    _reported(branch, post, agent, key)
    return None


def on_vacated(
    rules: FloorRules, branch: BranchState, agent: AgentState, e: PositionVacated
) -> str | None:
    post = branch.posts.get(e.position)
    if post is None:
        return "unknown_position"
    key = (e.ts, e.seq)
    if e.staff is None:
        if key not in post.cleared:
            cleared = list(post.cleared)
            insort(cleared, key)
            post.cleared = tuple(cleared[-MAX_CLEARED:])
    else:
        mark = post.marks.get(e.staff)
        if mark is None:
            mark = post.marks[sys.intern(e.staff)] = StaffMark()
        if _newer(key, mark.off):
            mark.off = key
    _reported(branch, post, agent, key)
    return None
