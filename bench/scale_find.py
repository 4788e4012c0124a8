"""``make bench-scale ARGS=--find``: the largest load this machine keeps up with, measured.

The same stack as a run, no node killed. Load is added in steps of ``--branches``
branches at the run's rate per branch (so ``--rate`` sets the rate of one step): every
step starts more simulator shards, with branch numbers beyond the earlier steps', and
the earlier ones keep publishing. After a warm-up (the collectors rebuild the new
agents from their replays), a window of each step says whether everything kept up:

- the collectors applied what the shards generated (live events, within 10 %: the two
  rates are read over slightly different spans, Prometheus' scrapes and the shards'
  samples);
- the shards' unacknowledged messages stayed under two seconds of their traffic (the
  broker stored what it was given);
- the ingest lag stayed bounded: p50 under 1 s, p99 under 10 s (a collector that falls
  behind sees its lag grow without end; one that keeps up has spikes of a few seconds
  while it renders a scrape or writes a snapshot).

The first step that misses one ends the search; the step before is the answer.
Totals are not checked here: a run at that size does that.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Final

from bench.scale import Bench
from bench.scale_measure import CpuMeter
from bench.scale_report import ms, steady_figures, table
from bench.scale_run import Load, Plan, wait_for

MAX_STEPS: Final = 6
STEP_WARMUP: Final = 45.0  # the new agents' rebuilds (a replay from seq 0 each) are done
STEP_WINDOW: Final = 45.0
APPLIED_SHARE: Final = 0.9
BACKLOG_SECONDS: Final = 2.0
LAG_P50_LIMIT: Final = 1.0
LAG_P99_LIMIT: Final = 10.0


def _rates(first: list[list[float]], last: list[list[float]]) -> tuple[float, float, int]:
    """Events/s and messages/s of the shards between two readings; unacknowledged now."""
    seconds = max(row[0] for row in last) - max(row[0] for row in first)
    events = sum(row[1] for row in last) - sum(row[1] for row in first)
    messages = sum(row[2] for row in last) - sum(row[2] for row in first)
    outstanding = int(sum(row[3] for row in last))
    return events / seconds, messages / seconds, outstanding


def find(plan: Plan, workdir: Path) -> dict[str, Any]:
    step_plan = dataclasses.replace(plan, seconds=MAX_STEPS * (STEP_WARMUP + STEP_WINDOW + 30))
    bench = Bench(step_plan, workdir)
    steps: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    try:
        bench.start()
        for step in range(MAX_STEPS):
            load = Load(step_plan, bench.stack, workdir, step)
            bench.loads.append(load)
            load.start()
            branches = plan.branches * (step + 1)
            print(
                f"step {step + 1}: {branches:,} branches (~{plan.rate * (step + 1):,.0f} "
                "events/s asked)",
                flush=True,
            )
            wait_for(time.time() + STEP_WARMUP)
            start, meter = time.time(), CpuMeter(bench.pids())
            first = [row for load in bench.loads for row in load.live()]
            wait_for(start + STEP_WINDOW)
            end = time.time()
            last = [row for load in bench.loads for row in load.live()]
            figures = bench.measure(meter, start, end)
            generated, published, outstanding = _rates(first, last)
            totals = steady_figures(
                {**figures, "probe_rate": bench.report["probe_rate"], "sims": {}}
            )
            p50s = [f.get("p50", 0.0) for f in figures["lag"].values()]
            lags = [f.get("p99", 0.0) for f in figures["lag"].values()]
            result = {
                "branches": branches,
                "rate": plan.rate * (step + 1),
                "generated": generated,
                "published": published,
                "applied": totals["applied"],
                "outstanding": outstanding,
                "lag_p50": max(p50s, default=None),
                "lag_p99": max(lags, default=None),
                "cpu_all": totals["cpu_all"],
                "cpu": figures["cpu"],
                "load_average": os.getloadavg(),
            }
            result["kept_up"] = bool(
                totals["applied"] >= APPLIED_SHARE * generated
                and outstanding <= BACKLOG_SECONDS * max(published, 1.0)
                and result["lag_p99"] is not None
                and result["lag_p50"] < LAG_P50_LIMIT
                and result["lag_p99"] < LAG_P99_LIMIT
            )
            steps.append(result)
            print(
                f"  generated {generated:,.0f}/s, applied {totals['applied']:,.0f}/s, "
                f"unacknowledged {outstanding:,}, lag p50 {result['lag_p50']} s, "
                f"p99 {result['lag_p99']} s, CPU of all parts {totals['cpu_all']:.2f} cores: "
                f"{'kept up' if result['kept_up'] else 'did not keep up'}",
                flush=True,
            )
            if not result["kept_up"]:
                break
            best = result
    finally:
        bench.close()
    return {"plan": plan.describe(), "steps": steps, "best": best}


def print_find(report: dict[str, Any]) -> int:
    rows = [
        [
            f"{s['branches']:,}",
            f"{s['rate']:,.0f}",
            f"{s['generated']:,.0f} / {s['applied']:,.0f}",
            f"{ms(s['lag_p50'])} / {ms(s['lag_p99'])}",
            f"{s['outstanding']:,}",
            f"{s['cpu_all'] * 100:.0f} %",
            ", ".join(f"{x:.1f}" for x in s["load_average"]),
            "yes" if s["kept_up"] else "no",
        ]
        for s in report["steps"]
    ]
    table(
        [
            "branches",
            "asked events/s",
            "generated / applied events/s",
            "ingest lag p50 / p99 (worst collector)",
            "shards' unacknowledged (max)",
            "CPU of all parts (of one core)",
            "load average",
            "kept up",
        ],
        rows,
    )
    best = report.get("best")
    print(
        f"largest load kept up with: {best['branches']:,} branches, {best['rate']:,.0f} events/s"
        if best
        else "no step kept up"
    )
    return 0 if best else 1
