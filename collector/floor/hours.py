"""Opening hours: ``branch.opened`` and ``branch.closed`` for the floor and for the day.

The posts and the branch's open state are :mod:`collector.floor.posts`' job;
these handlers also start the business day's figures (``BranchState.today``,
see :mod:`collector.floor.day`) at a newer opening and mark its end at closing.
"""

from __future__ import annotations

from branchwatch.contract.events import BranchClosed, BranchOpened
from collector.floor import posts
from collector.floor.branch import AgentState, BranchState
from collector.floor.config import FloorRules
from collector.floor.figures import new_day


def on_opened(
    rules: FloorRules, branch: BranchState, agent: AgentState, e: BranchOpened
) -> str | None:
    before = branch.opened_ts
    reason = posts.on_opened(rules, branch, agent, e)
    opened = branch.opened_ts
    if opened is not None and opened != before:
        branch.today = new_day(opened, rules.services)
    return reason


def on_closed(
    rules: FloorRules, branch: BranchState, agent: AgentState, e: BranchClosed
) -> str | None:
    reason = posts.on_closed(rules, branch, agent, e)
    today = branch.today
    if (
        today is not None
        and e.ts >= today.opened_ts
        and (today.closed_ts is None or e.ts > today.closed_ts)
    ):
        today.closed_ts = e.ts
    return reason
