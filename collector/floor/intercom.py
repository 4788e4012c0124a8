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
from bisect import bisect_left, bisect_right
from typing import Final

from branchwatch.contract.events import IntercomAck, IntercomCall
from collector.floor.agents import count
from collector.floor.branch import AgentState, BranchState
from collector.floor.config import FloorRules
from collector.floor.figures import (
    ALL_POSTS,
    INTERCOM_ACK_BUCKETS,
    IntercomFigures,
    IntercomPair,
    new_intercom_histogram,
)
from collector.floor.tickets import observe

MAX_CALL_SECONDS: Final = 600.0
MAX_ACKS_PER_POST: Final = 8
TOO_MANY_PAIRS: Final = "too_many_intercom_pairs"


def _idle_pair(branch: BranchState) -> IntercomPair | None:
    """The pair called least recently, if it was not called since the day's opening."""
    opened, pairs = branch.opened_ts, branch.intercom.pairs
    if opened is None or not pairs:
        return None
    idle = min(pairs, key=lambda p: (p.called, p.source, p.target))
    return None if idle.called >= opened else idle


def _pair(
    rules: FloorRules, branch: BranchState, source: int, target: str, ts: float
) -> IntercomPair | None:
    """The pair of a call at ``ts`` (made if there is room); None: refused, and counted."""
    figures = branch.intercom
    pair = next((p for p in figures.pairs if p.source == source and p.target == target), None)
    if pair is None:
        pairs = figures.pairs
        if len(pairs) >= rules.max_intercom_pairs:
            idle = _idle_pair(branch)
            if idle is None:
                count(branch.refused, TOO_MANY_PAIRS)
                return None
            pairs = tuple([p for p in pairs if p is not idle])
        pair = IntercomPair(source, target, new_intercom_histogram(), called=ts)
        # Kept in the order the series are exported, so rendering needs no sort.
        at = bisect_left([(p.source, p.target) for p in pairs], (source, target))
        figures.pairs = (*pairs[:at], pair, *pairs[at:])
    pair.called = max(pair.called, ts)
    return pair


def _first_ack(figures: IntercomFigures, target: str, ts: float) -> float | None:
    """The first ack known at or after ``ts`` that answers a call to ``target``."""
    at = bisect_left(figures.ack_ts, ts)
    if target != ALL_POSTS:
        at = figures.ack_posts.find(int(target), at)
    return figures.ack_ts[at] if 0 <= at < len(figures.ack_ts) else None


def _keep_ack(figures: IntercomFigures, position: int, ts: float) -> None:
    """Add an ack; a post's oldest goes when it holds more than its bound."""
    times, posts = list(figures.ack_ts), bytearray(figures.ack_posts)
    at = bisect_right(times, ts)
    times.insert(at, ts)
    posts.insert(at, position)
    if posts.count(position) > MAX_ACKS_PER_POST:
        oldest = posts.index(position)
        del times[oldest], posts[oldest]
    figures.ack_ts, figures.ack_posts = tuple(times), bytes(posts)


def _answered(pair: IntercomPair, call_ts: float, ack_ts: float) -> None:
    if ack_ts - call_ts <= MAX_CALL_SECONDS:
        observe(pair.seconds, INTERCOM_ACK_BUCKETS, ack_ts - call_ts)


def on_call(rules: FloorRules, branch: BranchState, _: AgentState, e: IntercomCall) -> str | None:
    if e.from_position not in branch.posts or (
        e.to_position is not None and e.to_position not in branch.posts
    ):
        return "unknown_position"
    target = ALL_POSTS if e.to_position is None else sys.intern(str(e.to_position))
    pair = _pair(rules, branch, e.from_position, target, e.ts)
    if pair is None:
        return None  # the call happened; only its pair's label has no room
    ack = _first_ack(branch.intercom, target, e.ts)
    if ack is not None and ack - e.ts <= MAX_CALL_SECONDS:
        _answered(pair, e.ts, ack)  # a replayed call whose ack came first
        return None
    if pair.pending is None or e.ts < pair.pending:
        pair.pending = e.ts
    return None


def on_ack(rules: FloorRules, branch: BranchState, _: AgentState, e: IntercomAck) -> str | None:
    if e.position not in branch.posts:
        return "unknown_position"
    if e.notice is not None:
        return None  # answers a floor notice, not a call
    figures = branch.intercom
    _keep_ack(figures, e.position, e.ts)
    answered = {str(e.position), ALL_POSTS}
    for pair in figures.pairs:
        call = pair.pending
        if call is None:
            continue
        if pair.target in answered and call <= e.ts:
            _answered(pair, call, e.ts)
            pair.pending = None
        elif e.ts - call > MAX_CALL_SECONDS:
            pair.pending = None  # never answered in time: forgotten
    return None
