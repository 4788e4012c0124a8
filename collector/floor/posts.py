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


def _on(mark: StaffMark) -> EventKey | None:
    return None if mark.on_ts is None else (mark.on_ts, mark.on_seq)


def _off(mark: StaffMark) -> EventKey | None:
    return None if mark.off_ts is None else (mark.off_ts, mark.off_seq)


def _is_on(on: EventKey | None, off: EventKey | None, cleared: tuple[EventKey, ...]) -> bool:
    """Whether a staff member with these newest check-in and check-out is on the post."""
    return on is not None and _newer(on, off) and (not cleared or on > cleared[-1])


def _left_at(
    on: EventKey | None, off: EventKey | None, cleared: tuple[EventKey, ...]
) -> EventKey | None:
    """When a staff member not on the post left it after its newest check-in (``on``).

    None when it never checked in, or checked in before every anonymous vacate
    still remembered (an older one, forgotten, may have been where it left).
    """
    if on is None or (len(cleared) >= MAX_CLEARED and on < cleared[0]):
        return None
    ends = [] if off is None or off < on else [off]
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
    for mark in post.staff_marks:
        checked_in = _on(mark)
        if checked_in is None:
            continue  # never on the post: neither on it nor who left it
        checked_out = _off(mark)
        if _is_on(checked_in, checked_out, cleared):
            on.append((checked_in, mark.staff))
        else:
            at = _left_at(checked_in, checked_out, cleared)
            if at is not None:
                left.append((at, checked_in, mark.staff))
    on.sort()
    post.staff = tuple([staff for _, staff in on])
    last = max((at for at, _, _ in left), default=None)
    post.last_staff = tuple([staff for at, _, staff in sorted(left) if at == last])
    post.changed_ts = changed_ts(branch, post)


def _forget_departed(post: Post) -> None:
    """Drop marks that can no longer matter, then the oldest beyond the bound."""
    cleared, marks = post.cleared, post.staff_marks
    if len(cleared) >= MAX_CLEARED:
        # Older than every remembered anonymous vacate: off the post, and never "who left
        # last" again, whatever else arrives (see _left_at).
        oldest = cleared[0]
        marks = tuple([m for m in marks if max(_keys(m)) >= oldest])
    if len(marks) > MAX_DEPARTED_PER_POST:  # else fewer departed than the bound
        departed = [(max(_keys(m)), m.staff) for m in marks if not _is_on(_on(m), _off(m), cleared)]
        if len(departed) > MAX_DEPARTED_PER_POST:
            departed.sort()
            gone = {staff for _, staff in departed[: len(departed) - MAX_DEPARTED_PER_POST]}
            marks = tuple([m for m in marks if m.staff not in gone])
    if len(marks) != len(post.staff_marks):
        post.staff_marks = marks


def _keys(mark: StaffMark) -> list[EventKey]:
    return [key for key in (_on(mark), _off(mark)) if key is not None]


def _mark(post: Post, staff: str) -> StaffMark | None:
    for mark in post.staff_marks:
        if mark.staff == staff:
            return mark
    return None


def _new_mark(post: Post, staff: str) -> StaffMark:
    mark = StaffMark(sys.intern(staff))
    post.staff_marks = (*post.staff_marks, mark)
    return mark


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
    """A post restored from a snapshot: its staff marks in today's form.

    A snapshot kept them in a dict by staff (``Post.marks``), or, older, not at all
    (:func:`_marks_of_staff`).
    """
    if post.marks is not None:
        post.staff_marks = tuple(
            StaffMark(staff, *(mark.on or (None, 0)), *(mark.off or (None, 0)))
            for staff, mark in post.marks.items()
        )
        post.marks = None
    elif not (post.staff_marks or post.cleared) and (post.staff or post.last_staff):
        post.staff_marks = _marks_of_staff(post)
    _share(post)


def _marks_of_staff(post: Post) -> tuple[StaffMark, ...]:
    """Marks for a post known only by its staff and last staff: its staff checked in, in
    list order, and its last staff left, at its last event; negative seqs put them
    before any real event of that second."""
    at = post.changed_ts if post.event_ts is None else post.event_ts
    left = [
        StaffMark(staff, at, n - 2 * MAX_STAFF_PER_POST, at, -1)
        for n, staff in enumerate(post.last_staff)
        if staff not in post.staff
    ]
    on = [StaffMark(staff, at, n - MAX_STAFF_PER_POST) for n, staff in enumerate(post.staff)]
    return (*left, *on)


def _share(post: Post) -> None:
    """One object per name and per time, as a post fed by events holds: a decode makes
    each anew (a restored region's posts took 35 % more memory)."""
    times: dict[float, float] = {}
    if post.event_ts is not None:
        post.event_ts = times.setdefault(post.event_ts, post.event_ts)
    post.changed_ts = times.setdefault(post.changed_ts, post.changed_ts)
    for mark in post.staff_marks:
        mark.staff = sys.intern(mark.staff)
        if mark.on_ts is not None:
            mark.on_ts = times.setdefault(mark.on_ts, mark.on_ts)
        if mark.off_ts is not None:
            mark.off_ts = times.setdefault(mark.off_ts, mark.off_ts)
    post.staff = tuple([sys.intern(staff) for staff in post.staff])
    post.last_staff = tuple([sys.intern(staff) for staff in post.last_staff])
    if post.agent is not None:
        post.agent = sys.intern(post.agent)


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
    mark = _mark(post, staff)
    if mark is None or _newer(key, _on(mark)):
        off = None if mark is None else _off(mark)
        joins = (
            staff not in post.staff
            and _newer(key, off)
            and (not post.cleared or key > post.cleared[-1])
        )
        if joins and len(post.staff) >= MAX_STAFF_PER_POST:
            return "too_many_staff"
        if mark is None:
            mark = _new_mark(post, staff)
        mark.on_ts, mark.on_seq = key
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
        mark = _mark(post, e.staff)
        if mark is None:
            mark = _new_mark(post, e.staff)
        if _newer(key, _off(mark)):
            mark.off_ts, mark.off_seq = key
    _reported(branch, post, agent, key)
    return None
