"""Intercom hand-offs: how long a called post takes to acknowledge a call.

An ``intercom.call`` from post A to post B opens a call of the pair (A, B); the
first ``intercom.ack`` from B at or after it closes it, and the time between is
observed in that pair's histogram. A call without ``to_position`` is an
all-call, the pair (A, ``all``): the first ack from any post closes it. A post
that calls again before the ack does not restart the clock: the customer has
waited since the first call. An ack closes every open call it answers.

Acks that carry a ``notice`` id answer a floor notice (measured by the notice
engine), not a call, so they close nothing here. A call unanswered for
:data:`MAX_CALL_SECONDS` is forgotten without an observation, so an ack long
after it does not record an hour-long hand-off.

Order: each post keeps its newest :data:`MAX_ACKS_PER_POST` acks, so a call
replayed after its ack (a gap filled late) still finds the ack it had. An ack
replayed after a later one already closed the call changes nothing.

Pairs become label values: at most ``max_intercom_pairs`` per branch; a call of
another pair is refused for the label (``too_many_intercom_pairs``) and counted.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import Final

from branchwatch.contract.events import IntercomAck, IntercomCall
from collector.floor.agents import count
from collector.floor.branch import AgentState, BranchState
from collector.floor.config import FloorRules
from collector.floor.figures import (
    ALL_POSTS,
    INTERCOM_ACK_BUCKETS,
    IntercomFigures,
    new_intercom_histogram,
)
from collector.floor.histogram import Histogram
from collector.floor.tickets import observe

MAX_CALL_SECONDS: Final = 600.0
MAX_ACKS_PER_POST: Final = 8
TOO_MANY_PAIRS: Final = "too_many_intercom_pairs"


def _pairs(figures: IntercomFigures) -> int:
    return sum(len(targets) for targets in figures.ack_seconds.values())


def _histogram(
    rules: FloorRules, branch: BranchState, source: int, target: str
) -> Histogram | None:
    """The pair's histogram (made if there is room); None: refused, and counted."""
    figures = branch.intercom
    targets = figures.ack_seconds.get(source)
    histogram = None if targets is None else targets.get(target)
    if histogram is not None:
        return histogram
    if _pairs(figures) >= rules.max_intercom_pairs:
        count(branch.refused, TOO_MANY_PAIRS)
        return None
    histogram = figures.ack_seconds.setdefault(source, {})[target] = new_intercom_histogram()
    return histogram


def _first_ack(figures: IntercomFigures, target: str, ts: float) -> float | None:
    """The first ack known at or after ``ts`` that answers a call to ``target``."""
    if target == ALL_POSTS:
        lists = list(figures.acks.values())
    else:
        lists = [figures.acks.get(int(target), [])]
    found = [acks[i] for acks in lists if (i := bisect_left(acks, ts)) < len(acks)]
    return min(found, default=None)


def _answered(histogram: Histogram, call_ts: float, ack_ts: float) -> None:
    if ack_ts - call_ts <= MAX_CALL_SECONDS:
        observe(histogram, INTERCOM_ACK_BUCKETS, ack_ts - call_ts)


def on_call(rules: FloorRules, branch: BranchState, _: AgentState, e: IntercomCall) -> str | None:
    if e.from_position not in branch.posts or (
        e.to_position is not None and e.to_position not in branch.posts
    ):
        return "unknown_position"
    target = ALL_POSTS if e.to_position is None else str(e.to_position)
    histogram = _histogram(rules, branch, e.from_position, target)
    if histogram is None:
        return None  # the call happened; only its pair's label has no room
    figures = branch.intercom
    ack = _first_ack(figures, target, e.ts)
    if ack is not None and ack - e.ts <= MAX_CALL_SECONDS:
        _answered(histogram, e.ts, ack)  # a replayed call whose ack came first
        return None
    pending = figures.pending.setdefault(e.from_position, {})
    if target not in pending or e.ts < pending[target]:
        pending[target] = e.ts
    return None


def on_ack(rules: FloorRules, branch: BranchState, _: AgentState, e: IntercomAck) -> str | None:
    if e.position not in branch.posts:
        return "unknown_position"
    if e.notice is not None:
        return None  # answers a floor notice, not a call
    figures = branch.intercom
    acks = figures.acks.setdefault(e.position, [])
    insort(acks, e.ts)
    del acks[:-MAX_ACKS_PER_POST]
    answered = {str(e.position), ALL_POSTS}
    for source, pending in list(figures.pending.items()):
        for target in [t for t, ts in pending.items() if t in answered and ts <= e.ts]:
            _answered(figures.ack_seconds[source][target], pending.pop(target), e.ts)
        for target in [t for t, ts in pending.items() if e.ts - ts > MAX_CALL_SECONDS]:
            del pending[target]  # never answered in time: forgotten
        if not pending:
            del figures.pending[source]
    return None
