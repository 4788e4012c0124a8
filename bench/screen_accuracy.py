"""How right the lobby screen's wait estimate is: ``python -m bench.screen_accuracy``.

In-process and seeded: the simulator's branch models run a business day on a simulated
clock and their events go, one at a time, into a real :class:`collector.store.Store`.
Just before each ``ticket.issued`` is applied, the estimate the lobby screen would show
for that service at that moment is recorded (a ticket taken now, the queue as it
stands); the ticket's first ``ticket.called`` gives the wait it really had. Walkouts and
tickets still waiting at closing time have no actual wait and are counted apart, as are
tickets issued while no counter served their service (the screen shows no estimate).

Per scenario and service: median and p90 of the absolute error, the median actual wait,
and the target: median absolute error within 3 minutes or within 25 % of the median
actual wait, whichever is larger. Most tickets wait no time at all (and the estimate says
so), so the tickets that waited 5 minutes or more are shown apart too, with the median
signed error (bias: + is an estimate too long). Exits 1 if a service with at
least ``--min-tickets`` tickets misses it. Floor notices are off (no counter opens on a
notice); the simulator's flexible counters keep their hours.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from branchwatch.contract.events import (
    BranchClosed,
    Event,
    TicketCalled,
    TicketIssued,
    TicketWalkout,
)
from branchwatch.sim import BranchSim, make_branches
from branchwatch.sim.profile import MINUTE, SCENARIOS
from collector.floor.config import FloorConfig
from collector.floor.estimate import DEFAULT_MODEL, EstimateModel, estimate_waits
from collector.store import Store

TARGET_SECONDS: Final = 3 * MINUTE
TARGET_SHARE: Final = 0.25
LONG_WAIT: Final = 5 * MINUTE  # the error of these is shown apart: most waits are 0
STEP: Final = 30.0  # simulated seconds per advance (events are applied one by one)


@dataclass
class Issued:
    service: str
    ts: float
    estimate: float | None


@dataclass
class ServiceResult:
    """One service's tickets in one scenario: estimate and actual wait of each."""

    pairs: list[tuple[float, float]] = field(default_factory=list)  # (estimate, actual)
    walkouts: int = 0
    not_called: int = 0  # still waiting at closing time
    no_estimate: int = 0

    def errors(self) -> list[float]:
        return sorted(abs(estimate - actual) for estimate, actual in self.pairs)

    def allowance(self) -> float:
        return max(TARGET_SECONDS, TARGET_SHARE * self.actual_median())

    def actual_median(self) -> float:
        return statistics.median(actual for _, actual in self.pairs)

    def long_waits(self) -> str:
        """Tickets that waited ``LONG_WAIT`` or more: how many, median error and bias."""
        long = [(e, a) for e, a in self.pairs if a >= LONG_WAIT]
        if not long:
            return "0"
        error = statistics.median(abs(e - a) for e, a in long)
        bias = statistics.median(e - a for e, a in long)
        return f"{len(long)} / {minutes(error)} / {bias / MINUTE:+.1f}"

    def met(self) -> bool:
        return statistics.median(self.errors()) <= self.allowance()


def quantile(values: Sequence[float], share: float) -> float:
    """The nearest-rank quantile of sorted ``values``."""
    rank = max(int(-(-share * len(values) // 1)) - 1, 0)
    return values[rank]


def run_branch(sim: BranchSim, store: Store, model: EstimateModel) -> dict[str, ServiceResult]:
    """One simulated business day of one branch: every ticket's estimate and actual wait."""
    results: dict[str, ServiceResult] = {}
    issued: dict[str, Issued] = {}
    t = sim.now
    closed = False
    while not closed:
        t += STEP
        for event in sim.advance(t):
            if isinstance(event, TicketIssued):
                estimate = _estimate(store, sim, event, model)
                issued[event.ticket] = Issued(event.service, event.ts, estimate)
            elif isinstance(event, TicketCalled) and event.ticket in issued:
                ticket = issued.pop(event.ticket)
                result = results.setdefault(ticket.service, ServiceResult())
                if ticket.estimate is None:
                    result.no_estimate += 1
                else:
                    result.pairs.append((ticket.estimate, event.ts - ticket.ts))
            elif isinstance(event, TicketWalkout) and event.ticket in issued:
                ticket = issued.pop(event.ticket)
                results.setdefault(ticket.service, ServiceResult()).walkouts += 1
            elif isinstance(event, BranchClosed):
                closed = True
            _apply(store, sim, event)
    for ticket in issued.values():
        results.setdefault(ticket.service, ServiceResult()).not_called += 1
    return results


def _apply(store: Store, sim: BranchSim, event: Event) -> None:
    store.apply_events(sim.region, sim.branch, sim.agent, [event], received=event.ts)


def _estimate(
    store: Store, sim: BranchSim, event: TicketIssued, model: EstimateModel
) -> float | None:
    state = store.branch_state(sim.region, sim.branch)
    if state is None:
        return None
    return estimate_waits(state, event.ts, model)[event.service].seconds


def run_scenario(
    scenario: str, branches: int, seed: int, model: EstimateModel = DEFAULT_MODEL
) -> dict[str, ServiceResult]:
    """Every branch of ``scenario`` for one business day; the results merged per service."""
    store = Store(FloorConfig())
    merged: dict[str, ServiceResult] = {}
    for sim in make_branches(branches, seed, scenario=scenario, start_hour=8.5):
        for service, result in run_branch(sim, store, model).items():
            into = merged.setdefault(service, ServiceResult())
            into.pairs += result.pairs
            into.walkouts += result.walkouts
            into.not_called += result.not_called
            into.no_estimate += result.no_estimate
    return merged


def minutes(seconds: float) -> str:
    return f"{seconds / MINUTE:.1f}"


def machine() -> str:
    return (
        f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"{datetime.date.today().isoformat()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.screen_accuracy", description=__doc__)
    parser.add_argument("--branches", type=int, default=20, help="branches per scenario")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS),
        help="repeatable (default: every scenario)",
    )
    parser.add_argument(
        "--min-tickets", type=int, default=30, help="services with fewer are shown, not judged"
    )
    args = parser.parse_args(argv)
    scenarios = args.scenario or list(SCENARIOS)

    started = time.perf_counter()
    print(f"lobby screen estimate accuracy: {machine()}")
    print(
        f"{args.branches} branches per scenario, one business day each, seed {args.seed}; minutes\n"
    )
    print(
        "| scenario | service | tickets | median wait | median error | p90 error "
        "| target (median error) | met | waited ≥ 5 min: tickets / median error / bias "
        "| walkouts / not called / no estimate |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    failed = False
    for scenario in scenarios:
        results = run_scenario(scenario, args.branches, args.seed)
        for service, result in sorted(results.items()):
            if not result.pairs:
                continue
            errors = result.errors()
            judged = len(result.pairs) >= args.min_tickets
            met = result.met()
            failed |= judged and not met
            verdict = ("yes" if met else "**no**") if judged else "(too few)"
            print(
                f"| {scenario} | {service} | {len(result.pairs)} "
                f"| {minutes(result.actual_median())} | {minutes(statistics.median(errors))} "
                f"| {minutes(quantile(errors, 0.9))} "
                f"| ≤ {minutes(result.allowance())} | {verdict} | {result.long_waits()} "
                f"| {result.walkouts} / {result.not_called} / {result.no_estimate} |"
            )
    print(f"\n{time.perf_counter() - started:.0f} s; result:", "FAIL" if failed else "pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
