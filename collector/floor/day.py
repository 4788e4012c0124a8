"""The business day: a branch's day runs from ``branch.opened`` to ``branch.closed``.

The exported counters stay monotonic (Prometheus computes a day's figures
from them with its own windows); the API's ``today`` block is counted here:
each figure counts an event whose time is at or after the day's opening, so a
late event of an earlier day never does, and a late one of today still does.
A newer ``branch.opened`` starts a new block; ``branch.closed`` only marks the
day's end, so its figures stay readable until the next opening
(:mod:`collector.floor.hours`).

Limit: a day's opening that reaches the collector after later events of that
day (a replay after a restart) starts the block at its arrival, so those
events are missing from the block (never from the exported counters).
"""

from __future__ import annotations

from collector.floor.branch import BranchState, LostReason
from collector.floor.config import FloorRules
from collector.floor.figures import DayFigures, ServiceDay


def service_day(branch: BranchState, service: str, ts: float | None) -> ServiceDay | None:
    """The day's figures of ``service`` when an event at ``ts`` belongs to the day."""
    today = branch.today
    if today is None or ts is None or ts < today.opened_ts:
        return None
    return today.services[service]


def branch_day(branch: BranchState, ts: float) -> DayFigures | None:
    today = branch.today
    return None if today is None or ts < today.opened_ts else today


def count_issued(branch: BranchState, service: str, ts: float) -> None:
    day = service_day(branch, service, ts)
    if day is not None:
        day.issued += 1


def count_wait(
    rules: FloorRules, branch: BranchState, service: str, ts: float, wait: float
) -> None:
    """A called ticket waited ``wait`` seconds (called at ``ts``)."""
    day = service_day(branch, service, ts)
    if day is not None:
        wait = max(wait, 0.0)
        day.called += 1
        day.wait_sum += wait
        if wait <= rules.thresholds.wait_target_seconds:
            day.within_target += 1


def count_served(branch: BranchState, service: str, started_ts: float) -> None:
    day = service_day(branch, service, started_ts)
    if day is not None:
        day.served += 1


def count_ended(branch: BranchState, service: str, ended_ts: float) -> None:
    day = service_day(branch, service, ended_ts)
    if day is not None:
        day.ended += 1


def count_lost(branch: BranchState, service: str, reason: LostReason, ts: float | None) -> None:
    day = service_day(branch, service, ts)
    if day is not None:
        day.lost.add(reason)


def count_evaluation(branch: BranchState, ts: float, rating: str | None, *, expired: bool) -> None:
    """A request (``rating`` None, not ``expired``), a rating, or an expired request."""
    day = branch_day(branch, ts)
    if day is None:
        return
    if expired:
        day.expired += 1
    elif rating is None:
        day.requested += 1
    else:
        day.ratings.add(rating)
