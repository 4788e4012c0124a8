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

Pairs become label values: at most ``max_intercom_pairs`` per branch. When they are
all taken, a new pair takes the place of the one called least recently, provided it
was not called since the day's opening (its series ends, as a teller's does);
otherwise the call is refused for the label (``too_many_intercom_pairs``) and counted.
So each day the first pairs called keep their series.
"""

from __future__ import annotations

import sys
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


def _idle_pair(branch: BranchState) -> tuple[int, str] | None:
    """The pair called least recently, if it was not called since the day's opening."""
    opened, figures = branch.opened_ts, branch.intercom
    if opened is None:
        return None
    calls = [
        (figures.called.get(source, {}).get(target, 0.0), source, target)
        for source, targets in figures.ack_seconds.items()
        for target in targets
    ]
    last, source, target = min(calls, default=(opened, 0, ""))
    return None if last >= opened else (source, target)


def _forget(figures: IntercomFigures, source: int, target: str) -> None:
    for table in (figures.ack_seconds, figures.called, figures.pending):
        targets = table.get(source)
        if targets is not None:
            targets.pop(target, None)
            if not targets:
                del table[source]


def _histogram(
    rules: FloorRules, branch: BranchState, source: int, target: str, ts: float
) -> Histogram | None:
    """The pair's histogram (made if there is room); None: refused, and counted."""
    figures = branch.intercom
    targets = figures.ack_seconds.get(source)
    histogram = None if targets is None else targets.get(target)
    if histogram is None:
        if _pairs(figures) >= rules.max_intercom_pairs:
            idle = _idle_pair(branch)
            if idle is None:
                count(branch.refused, TOO_MANY_PAIRS)
                return None
            _forget(figures, *idle)
        histogram = figures.ack_seconds.setdefault(source, {})[target] = new_intercom_histogram()
    called = figures.called.setdefault(source, {})
    called[target] = max(called.get(target, ts), ts)
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
    target = ALL_POSTS if e.to_position is None else sys.intern(str(e.to_position))
    histogram = _histogram(rules, branch, e.from_position, target, e.ts)
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
    if not figures.pending:
        figures.pending.clear()  # an emptied dict keeps its table until cleared
    return None
