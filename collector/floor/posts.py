"""Lobby posts and the branch's opening hours.

State moves forward in event time only: a staffed/vacated/opened/closed
older than the last change applied to the same thing leaves it as it is.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from branchwatch.contract.events import (
    BranchClosed,
    BranchOpened,
    IntercomAck,
    IntercomCall,
    PositionStaffed,
    PositionVacated,
)
from collector.floor.branch import ANONYMOUS_STAFF, AgentState, BranchState
from collector.floor.config import FloorRules
from collector.floor.tickets import clear_tickets, lose_waiting

MAX_STAFF_PER_POST: Final = 32


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


def on_opened(rules: FloorRules, branch: BranchState, _: AgentState, e: BranchOpened) -> str | None:
    if branch.open_changed_ts is not None and e.ts < branch.open_changed_ts:
        return None
    branch.open = True
    branch.open_changed_ts = branch.opened_ts = e.ts
    clear_tickets(branch)
    for post in branch.posts.values():
        # An empty post is empty "since opening", unless a later vacate says otherwise.
        if not post.staff and (post.event_ts is None or post.event_ts < e.ts):
            post.changed_ts = e.ts
    return None


def on_closed(rules: FloorRules, branch: BranchState, _: AgentState, e: BranchClosed) -> str | None:
    if branch.open_changed_ts is not None and e.ts < branch.open_changed_ts:
        return None
    branch.open = False
    branch.open_changed_ts = e.ts
    lose_waiting(rules, branch, e.ts)
    return None


def on_staffed(
    rules: FloorRules, branch: BranchState, agent: AgentState, e: PositionStaffed
) -> str | None:
    post = branch.posts.get(e.position)
    if post is None:
        return "unknown_position"
    if post.event_ts is not None and e.ts < post.event_ts:
        return None
    staff = ANONYMOUS_STAFF if e.staff is None else e.staff
    if staff not in post.staff:
        if len(post.staff) >= MAX_STAFF_PER_POST:
            return "too_many_staff"
        post.staff.append(staff)
    post.changed_ts = post.event_ts = e.ts
    post.agent = agent.name
    return None


def on_vacated(
    rules: FloorRules, branch: BranchState, agent: AgentState, e: PositionVacated
) -> str | None:
    post = branch.posts.get(e.position)
    if post is None:
        return "unknown_position"
    if post.event_ts is not None and e.ts < post.event_ts:
        return None
    if e.staff is None:
        if post.staff:
            post.last_staff = list(post.staff)
        post.staff.clear()
    elif e.staff in post.staff:
        post.staff.remove(e.staff)
        post.last_staff = [e.staff]
    post.changed_ts = post.event_ts = e.ts
    post.agent = agent.name
    return None


def on_intercom_call(
    rules: FloorRules, branch: BranchState, _: AgentState, e: IntercomCall
) -> str | None:
    # Notices are the notice engine's job (collector.notices); the model only checks posts.
    if e.from_position not in branch.posts or (
        e.to_position is not None and e.to_position not in branch.posts
    ):
        return "unknown_position"
    return None


def on_intercom_ack(
    rules: FloorRules, branch: BranchState, _: AgentState, e: IntercomAck
) -> str | None:
    return None if e.position in branch.posts else "unknown_position"
