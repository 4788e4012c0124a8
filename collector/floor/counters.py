"""Counters (open/paused/closed) and the evaluator pads' ratings (DESIGN §2).

Counter ids become label values, so a branch holds at most
``max_counters`` of them (known from counter or evaluation events alike).
"""

from __future__ import annotations

from branchwatch.contract.events import (
    CounterClosed,
    CounterOpened,
    CounterPaused,
    EvaluationExpired,
    EvaluationRequested,
    EvaluationSubmitted,
)
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
        counter = branch.counters[counter_id] = new_counter()
    return counter


def _move(counter: CounterState, state: CounterStateName, ts: float) -> bool:
    """Forward in event time only; True when the state was changed."""
    if counter.since is not None and ts < counter.since:
        return False
    counter.state = state
    counter.since = ts
    return True


def on_opened(
    rules: FloorRules, branch: BranchState, _: AgentState, e: CounterOpened
) -> str | None:
    counter = _counter(rules, branch, e.counter)
    if counter is None:
        return "too_many_counters"
    if _move(counter, "open", e.ts):
        if e.kind is not None:
            counter.kind = e.kind
        if e.teller is not None:
            counter.teller = e.teller
    return None


def on_paused(
    rules: FloorRules, branch: BranchState, _: AgentState, e: CounterPaused
) -> str | None:
    counter = _counter(rules, branch, e.counter)
    if counter is None:
        return "too_many_counters"
    _move(counter, "paused", e.ts)
    return None


def on_closed(
    rules: FloorRules, branch: BranchState, _: AgentState, e: CounterClosed
) -> str | None:
    counter = _counter(rules, branch, e.counter)
    if counter is None:
        return "too_many_counters"
    _move(counter, "closed", e.ts)
    return None


def on_requested(
    rules: FloorRules, branch: BranchState, _: AgentState, e: EvaluationRequested
) -> str | None:
    counter = _counter(rules, branch, e.counter)
    if counter is None:
        return "too_many_counters"
    counter.requested += 1
    return None


def on_submitted(
    rules: FloorRules, branch: BranchState, _: AgentState, e: EvaluationSubmitted
) -> str | None:
    counter = _counter(rules, branch, e.counter)
    if counter is None:
        return "too_many_counters"
    counter.ratings[e.rating] += 1
    return None


def on_expired(
    rules: FloorRules, branch: BranchState, _: AgentState, e: EvaluationExpired
) -> str | None:
    counter = _counter(rules, branch, e.counter)
    if counter is None:
        return "too_many_counters"
    counter.expired += 1
    return None
