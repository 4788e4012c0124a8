"""``python -m tests.faults`` (``make faults``): every fault at full size, each on a fresh rig.

Prints a table of what the devices produced, what the agents recorded, what
the collector counted, lost or counted twice, and how long recovery took; then
each fault's own figures, checks and what an operator saw. ``--out FILE`` also
writes that report (Markdown). Exit status 1 when a fault failed a check (the
fault of a known bug fails until the bug is fixed).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from branchwatch.broker import find_mosquitto
from tests.faults.catalog import BY_NAME, FAULTS, Fault
from tests.faults.load import Rates
from tests.faults.report import Outcome, details, table, write
from tests.faults.rig import Rig, RigSettings
from tests.faults.scenarios import FULL, QUICK, Size


def run_fault(fault: Fault, size: Size, workdir: Path) -> Outcome:
    rig = Rig(workdir, RigSettings(branches=size.branches))
    try:
        if fault.started:
            rig.start()
        return fault.run(rig, size)
    except Exception as exc:  # a fault that broke the harness is a failed fault, not a stop
        outcome = Outcome(fault.name)
        outcome.check("ran to the end", False, f"{type(exc).__name__}: {exc}")
        traceback.print_exc()
        return outcome
    finally:
        if fault.started:
            rig.close()


def machine() -> str:
    mosquitto = find_mosquitto() or "mosquitto"
    version = subprocess.run([mosquitto, "-h"], capture_output=True, text=True, check=False)
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()},"
        f" Python {platform.python_version()}, {version.stdout.splitlines()[0]}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the quick sizes of make test")
    parser.add_argument("--only", nargs="+", choices=list(BY_NAME), metavar="FAULT",
                        help=f"only these ({', '.join(BY_NAME)})")  # fmt: skip
    parser.add_argument("--out", type=Path, metavar="FILE", help="write the report here too")
    parser.add_argument("--keep", action="store_true", help="keep the rigs' logs and state")
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    chosen = [BY_NAME[name] for name in args.only] if args.only else list(FAULTS)
    root = Path(tempfile.mkdtemp(prefix="branchwatch-faults-"))
    started = datetime.datetime.now(datetime.UTC)
    outcomes: list[Outcome] = []
    failed: list[str] = []
    for fault in chosen:
        began = time.monotonic()
        print(f"== {fault.name} ({size.label})", flush=True)
        outcome = run_fault(fault, size, root / fault.name)
        outcome.figures["ran for"] = f"{time.monotonic() - began:.0f} s"
        if fault.bug:
            verdict = "passes now: drop its bug mark" if outcome.ok else "still there"
            outcome.gaps.append(f"{fault.bug}: {verdict}")
        if not outcome.ok:
            failed.append(fault.name)
        outcomes.append(outcome)
        print(details([outcome]), flush=True)
    rates = Rates()
    header = (
        f"# Fault run, {size.label} sizes, {started:%Y-%m-%d %H:%M} UTC\n\n"
        f"Machine: {machine()}. Branches: {size.branches}; load per branch: {rates.tickets:g}"
        f" tickets/s (4 queue lines each), {rates.evaluations:g} evaluations/s (a request and"
        f" a rating), {rates.staff_moves:g} staff moves/s."
    )
    print(header + "\n\n" + table(outcomes))
    if args.out:
        write(outcomes, args.out, header)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"rigs kept in {root}")
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
