"""The collector's floor state per branch, in memory: ``python -m bench.state_memory``.

N simulated branches of one region live through the first ``--hours`` of a
9-hour business day (09:00-18:00); their events are encoded as arrays of up to 200 (as agents send
them), then decoded and applied to a :class:`collector.store.Store` one array
at a time, as the collector does. ``tracemalloc`` measures what the store holds
afterwards (after a full garbage collection) against what was allocated before
the first array: the floor state, without the cached exposition (nothing is
rendered) and without the encoded arrays (made before the measure starts).
Reported: KiB a branch, and the source lines that allocated most of it.

Exits 1 when the state is above ``--target-kib`` a branch (issue 11: the
collector's RSS <= 30 KiB a branch with its cached exposition, so the state's
share is about 20 KiB in the first two hours of the day).
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import tracemalloc
from typing import Final

from branchwatch.contract import decode_events, encode
from branchwatch.sim.generate import generate_batches
from collector.floor.config import FloorConfig
from collector.notices.config import NoticesConfig
from collector.store import Store

TARGET_KIB: Final = 20.0
DAY_HOURS: Final = (9.0, 18.0)  # the business day simulated
ARRAY_EVENTS: Final = 200
REGION: Final = "north"
TOP_SITES: Final = 15


def payloads(branches: int, hours: float, seed: int) -> list[tuple[str, str, str, bytes]]:
    """The day so far of every branch, as encoded arrays (time order within a branch)."""
    seconds = hours * 3600.0
    origin = time.time() - seconds
    day = generate_batches(
        branches,
        seed,
        sim_seconds=seconds,
        step=seconds,
        ts_origin=origin,
        regions=(REGION,),
        start_hour=DAY_HOURS[0],
        day_hours=DAY_HOURS,
    )
    return [
        (region, branch, agent, encode(events[i : i + ARRAY_EVENTS]))
        for region, branch, agent, events in day
        for i in range(0, len(events), ARRAY_EVENTS)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.state_memory", description=__doc__)
    parser.add_argument("--branches", type=int, default=300)
    parser.add_argument("--hours", type=float, default=2.0, help="of the business day")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--target-kib", type=float, default=TARGET_KIB, help="a branch")
    args = parser.parse_args(argv)
    day_length = DAY_HOURS[1] - DAY_HOURS[0]
    if args.branches < 1 or not 0 < args.hours <= day_length:
        parser.error(f"--branches must be >= 1 and --hours within 0-{day_length:g}")

    arrays = payloads(args.branches, args.hours, args.seed)
    events = 0
    gc.collect()
    tracemalloc.start(1)
    before = tracemalloc.take_snapshot()
    store = Store(FloorConfig(), notices=NoticesConfig())
    for region, branch, agent, payload in arrays:
        batch = decode_events(payload)
        events += len(batch)
        store.apply_events(region, branch, agent, batch, time.time())
        del batch
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()

    sites = after.compare_to(before, "lineno")
    held = sum(site.size_diff for site in sites)
    per_branch = held / args.branches / 1024
    print(
        f"{args.branches} branches, {args.hours:g} h of the day, seed {args.seed}: "
        f"{events / args.branches:.0f} events a branch; "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(f"floor state: {per_branch:.1f} KiB a branch (target <= {args.target_kib:g})")
    print("largest allocation sites (KiB and objects a branch):")
    for site in sites[:TOP_SITES]:
        frame = site.traceback[0]
        print(
            f"  {site.size_diff / args.branches / 1024:6.2f} KiB "
            f"{site.count_diff / args.branches:7.1f}  {frame.filename}:{frame.lineno}"
        )
    if per_branch > args.target_kib:
        print(f"MISSED: {per_branch:.1f} KiB a branch > {args.target_kib:g}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
