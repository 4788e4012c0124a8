"""Counters (open/paused/closed) and the evaluator pads' ratings.

Counter ids become label values, so a branch holds at most
``max_counters`` of them (known from counter or evaluation events alike).
Ratings and requests also count for the rated teller
(:mod:`collector.floor.tellers`) and the business day (:mod:`collector.floor.day`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Protocol, TypeVar

from branchwatch.contract.events import (
    CounterClosed,
    CounterOpened,
    CounterPaused,
    EvaluationExpired,
    EvaluationRequested,
    EvaluationSubmitted,
)
from collector.floor import day, tellers
from collector.floor.branch import (
    AgentState,
    BranchState,
    CounterState,
    CounterStateName,
    new_counter,
)
from collector.floor.config import FloorRules


def _counter(rules: FloorRules, branch: BranchState, counter_id: str) -> CounterState | None:
    counter = branch.counters.get(counter_id)
    if counter is None:
        if len(branch.counters) >= rules.max_counters:
            return None
        counter = branch.counters[sys.intern(counter_id)] = new_counter()
    return counter


def _move(counter: CounterState, state: CounterStateName, ts: float) -> bool:
    """Forward in event time only; True when the state was changed."""
    if counter.since is not None and ts < counter.since:
        return False
    counter.state = state
    counter.since = ts
    return True


class _CounterEvent(Protocol):
    @property
    def counter(self) -> str: ...
    @property
    def ts(self) -> float: ...


E = TypeVar("E", bound=_CounterEvent)
Apply = Callable[[FloorRules, BranchState, CounterState, E], None]


def _for_counter(apply: Apply[E]) -> Callable[[FloorRules, BranchState, AgentState, E], str | None]:
    """A model handler for an event about one counter: find or create it, then apply."""

    def handler(rules: FloorRules, branch: BranchState, _: AgentState, e: E) -> str | None:
        counter = _counter(rules, branch, e.counter)
        if counter is None:
            return "too_many_counters"
        apply(rules, branch, counter, e)
        return None

    return handler


def _opened(
    rules: FloorRules, branch: BranchState, counter: CounterState, e: CounterOpened
) -> None:
    if _move(counter, "open", e.ts):
        if e.kind is not None:
            counter.kind = sys.intern(e.kind)
        if e.teller is not None:
            counter.teller = sys.intern(e.teller)
    tellers.seen(rules, branch, e.teller, e.ts)


def _paused(
    rules: FloorRules, branch: BranchState, counter: CounterState, e: CounterPaused
) -> None:
    _move(counter, "paused", e.ts)


def _closed(
    rules: FloorRules, branch: BranchState, counter: CounterState, e: CounterClosed
) -> None:
    _move(counter, "closed", e.ts)


def _requested(
    rules: FloorRules, branch: BranchState, counter: CounterState, e: EvaluationRequested
) -> None:
    counter.requested += 1
    day.count_evaluation(branch, e.ts, None, expired=False)
    teller = tellers.rated_teller(branch, counter, e.teller, e.ticket)
    tellers.count_rating(rules, branch, teller, None, e.ts)


def _submitted(
    rules: FloorRules, branch: BranchState, counter: CounterState, e: EvaluationSubmitted
) -> None:
    counter.ratings.add(e.rating)
    day.count_evaluation(branch, e.ts, e.rating, expired=False)
    teller = tellers.rated_teller(branch, counter, e.teller, e.ticket)
    tellers.count_rating(rules, branch, teller, e.rating, e.ts)


def _expired(
    rules: FloorRules, branch: BranchState, counter: CounterState, e: EvaluationExpired
) -> None:
    counter.expired += 1
    day.count_evaluation(branch, e.ts, None, expired=True)


on_opened = _for_counter(_opened)
on_paused = _for_counter(_paused)
on_closed = _for_counter(_closed)
on_requested = _for_counter(_requested)
on_submitted = _for_counter(_submitted)
on_expired = _for_counter(_expired)
