"""The plan of a ``make bench-scale`` run (its options) and the load: the simulator's shards.

The rate is the simulator's, measured, not assumed: :func:`calibrate` runs a sample of
the run's branches (same seed, scenario and hour) for one simulated hour in process
and counts their events; the speed is what turns that into the asked rate.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from bench.scale_sim import ShardSpec, client_id, connection_slices
from bench.scale_stack import SIM_USER, Stack, rotated
from branchwatch.sim.generate import DEFAULT_REGIONS, make_branches
from branchwatch.sim.profile import HOUR
from tests.support import LoggedProcess, wait_until

BANK_BRANCHES: Final = 23_433
BANK_PEAK_RATE: Final = 6_000.0  # events/s at the morning peak
CALIBRATION_BRANCHES: Final = 300
KILL_OBSERVE: Final = 30.0  # seconds after a kill that its stall is looked for in
CALIBRATION_ROUNDS: Final = 4


def wait_for(when: float) -> None:
    """Sleep until the wall-clock time ``when`` (a phase boundary)."""
    time.sleep(max(0.0, when - time.time()))


def _setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f'{text!r}: expected KEY=VALUE, e.g. ack_wait="2s"')
    return key.strip(), value.strip()


@dataclass
class Plan:
    branches: int
    rate: float  # events/s, all branches together
    regions: list[str]
    seconds: float
    warmup: float
    kill_at: float
    victim: int
    kills: int = 3
    kill_every: float = 60.0
    twins: bool = False
    shards: int = 1  # per region
    connections: int = 8  # per shard
    publish_timeout: float = 5.0
    seed: int = 11
    start_hour: float = 11.5
    scenario: str = "normal"
    nats_mqtt: dict[str, str] = field(default_factory=dict)
    find: bool = False
    per_branch_rate: float = 0.0  # the simulator's, at speed 1 (calibrated)

    @property
    def speed(self) -> float:
        return self.rate / (self.branches * self.per_branch_rate)

    @property
    def steady_end(self) -> float:
        """Seconds into the traffic when the steady window ends."""
        return self.kill_at if self.kills else self.seconds

    def kill_times(self) -> list[float]:
        """Seconds into the traffic of each kill."""
        return [self.kill_at + k * self.kill_every for k in range(self.kills)]

    def describe(self) -> dict[str, Any]:
        return {**self.__dict__, "speed": round(self.speed, 3)}

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        add = parser.add_argument
        add("--branches", type=int, default=1500, help="simulated branches (default 1500)")
        add(
            "--rate",
            type=float,
            metavar="EV/S",
            help="events/s of all branches together (default: the bank's peak per branch, "
            f"{BANK_PEAK_RATE:,.0f} over {BANK_BRANCHES:,} branches, times --branches)",
        )
        add("--regions", type=int, default=3, help="regions, one collector each (default 3)")
        add("--seconds", type=float, default=240.0, help="seconds of traffic (default 240)")
        add("--warmup", type=float, default=60.0, help="seconds before measuring (default 60)")
        add(
            "--kill-at",
            type=float,
            default=150.0,
            help="seconds into the traffic when a node is killed (default 150)",
        )
        add(
            "--victim",
            type=int,
            default=1,
            choices=(1, 2, 3),
            help="the node killed first: mqN (default 1, where the first collector starts)",
        )
        add(
            "--kills",
            type=int,
            default=3,
            help="nodes killed one after another, each the next node, each started again "
            f"{KILL_OBSERVE:.0f} s after its kill (the last one is not); 0: none (default 3)",
        )
        add(
            "--kill-every",
            type=float,
            default=60.0,
            help=f"seconds between kills (default 60; at least {KILL_OBSERVE + 20:.0f})",
        )
        add("--twins", action="store_true", help="two collectors per region (an HA pair)")
        add("--shards", type=int, default=1, help="simulator processes per region (default 1)")
        add(
            "--connections",
            type=int,
            default=8,
            help="MQTT connections per simulator process, sharing its branches (default 8)",
        )
        add(
            "--publish-timeout",
            type=float,
            default=5.0,
            help="seconds the shards and probes wait for a PUBACK (agents: "
            "publish_timeout_seconds; default 5)",
        )
        add(
            "--nats-mqtt",
            type=_setting,
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="set a key of the kit's mqtt block in this run's copy, e.g. ack_wait='\"2s\"'",
        )
        add("--seed", type=int, default=11)
        add("--start-hour", type=float, default=11.5, help="simulated hour (default 11.5)")
        add("--scenario", default="normal", help="the simulator's scenario (default normal)")
        add(
            "--find",
            action="store_true",
            help="raise the load step by step to the largest rate sustained, then stop",
        )

    @classmethod
    def from_args(cls, args: argparse.Namespace, calibrate: Callable[[Plan], float]) -> Plan:
        if not 1 <= args.regions <= len(DEFAULT_REGIONS):
            raise SystemExit(f"--regions: 1..{len(DEFAULT_REGIONS)}")
        if args.kill_at >= args.seconds or args.warmup >= args.kill_at:
            raise SystemExit("need --warmup < --kill-at < --seconds")
        if args.kill_every < KILL_OBSERVE + 20:
            raise SystemExit(f"--kill-every: at least {KILL_OBSERVE + 20:.0f} s")
        last_kill = args.kill_at + max(0, args.kills - 1) * args.kill_every
        # The traffic runs until the last kill has been watched.
        seconds = max(args.seconds, last_kill + KILL_OBSERVE + 10) if args.kills else args.seconds
        rate = args.rate or args.branches * BANK_PEAK_RATE / BANK_BRANCHES
        plan = cls(
            branches=args.branches,
            rate=rate,
            regions=list(DEFAULT_REGIONS[: args.regions]),
            seconds=seconds,
            warmup=args.warmup,
            kill_at=args.kill_at,
            victim=args.victim - 1,
            kills=max(0, args.kills),
            kill_every=args.kill_every,
            twins=args.twins,
            shards=args.shards,
            connections=args.connections,
            publish_timeout=args.publish_timeout,
            seed=args.seed,
            start_hour=args.start_hour,
            scenario=args.scenario,
            nats_mqtt=dict(args.nats_mqtt),
            find=args.find,
        )
        plan.per_branch_rate = calibrate(plan)
        return plan


def calibrate(plan: Plan) -> float:
    """The simulator's events per branch per second at speed 1 over the steady window.

    A day started mid-morning fills its queues over the first simulated half hour, so the
    rate depends on which simulated minutes the window covers, and those on the speed:
    a few rounds of rate → speed → window settle it.
    """
    sample = min(plan.branches, CALIBRATION_BRANCHES)
    start = plan.start_hour * HOUR
    window = (1.0, HOUR)  # simulated seconds after the start: first a plain hour
    rate = 0.0
    for _ in range(CALIBRATION_ROUNDS):
        sims = make_branches(
            sample,
            plan.seed,
            regions=plan.regions,
            start_hour=plan.start_hour,
            scenario=plan.scenario,
        )
        for sim in sims:
            sim.advance(start + window[0])
        events = sum(len(sim.advance(start + window[1])) for sim in sims)
        rate = events / sample / (window[1] - window[0])
        speed = plan.rate / (plan.branches * rate)
        window = (max(1.0, plan.warmup * speed), plan.steady_end * speed)
    return rate


def region_slices(branches: int, regions: int, shards: int) -> list[list[tuple[int, int]]]:
    """Per region, per shard: its branch numbers (first, last), br-0001 being 1."""
    out: list[list[tuple[int, int]]] = []
    for r in range(regions):
        count = branches // regions + (1 if r < branches % regions else 0)
        bounds = [1 + count * s // shards for s in range(shards + 1)]
        out.append(
            [(bounds[s], bounds[s + 1] - 1) for s in range(shards) if bounds[s + 1] > bounds[s]]
        )
    return out


class Load:
    """The simulator's shards as processes: started together, their truths read back."""

    def __init__(self, plan: Plan, stack: Stack, workdir: Path, step: int = 0) -> None:
        """``step`` > 0 (``--find``): another slice of branch numbers, beyond the earlier steps'."""
        self.plan, self.workdir = plan, workdir
        self.shards: list[tuple[ShardSpec, Path, LoggedProcess]] = []
        slices = region_slices(plan.branches, len(plan.regions), plan.shards)
        offset = step * -(-plan.branches // len(plan.regions))  # the largest region's count
        for r, (region, shards) in enumerate(zip(plan.regions, slices, strict=True)):
            for s, (first, last) in enumerate(shards):
                spec = ShardSpec(
                    region=region,
                    first=offset + first,
                    last=offset + last,
                    # Each shard starts on another node than its region's collector.
                    brokers=rotated(stack.urls, r + 1 + s),
                    user=SIM_USER,
                    password_file=str(stack.sim_password),
                    speed=plan.speed,
                    seed=plan.seed + r + 100 * step,
                    start_hour=plan.start_hour,
                    seconds=plan.seconds,
                    scenario=plan.scenario,
                    publish_timeout=plan.publish_timeout,
                    connections=plan.connections,
                )
                path = workdir / f"shard-{region}-{s}{f'-step{step}' if step else ''}.json"
                spec.dump(path)
                self.shards.append((spec, path, LoggedProcess(path.with_suffix(".log"))))

    def client_ids(self) -> list[str]:
        return [
            client_id(dataclasses.replace(spec, first=first, last=last))
            for spec, _, _ in self.shards
            for first, last in connection_slices(spec)
        ]

    def branches_of(self, region: str) -> int:
        return sum(
            spec.last - spec.first + 1 for spec, _, _ in self.shards if spec.region == region
        )

    def start(self) -> float:
        for _, path, process in self.shards:
            process.spawn([sys.executable, "-m", "bench.scale_sim", str(path)])
        return time.time()

    def pids(self) -> dict[str, int]:
        return {
            f"sim {path.stem}": process.proc.pid
            for _, path, process in self.shards
            if process.proc is not None
        }

    def live(self) -> list[list[float]]:
        """Each shard's latest sample: [time, events, messages, unacknowledged]."""
        out = []
        for _, path, _ in self.shards:
            live = path.with_suffix(".live.json")
            if live.exists():
                out.append(json.loads(live.read_text()))
        return out

    def wait_truths(self, deadline: float) -> dict[str, dict[str, Any]]:
        """{region: {branch: figures}} once every shard wrote its truth."""
        paths = [path.with_suffix(".truth.json") for _, path, _ in self.shards]
        wait_until(
            lambda: all(p.exists() for p in paths),
            max(1.0, deadline - time.time()),
            "every shard's truth",
        )
        truths: dict[str, dict[str, Any]] = {}
        for (spec, _, _), path in zip(self.shards, paths, strict=True):
            truths.setdefault(spec.region, {}).update(json.loads(path.read_text())["branches"])
        return truths

    def stop(self) -> dict[str, Any]:
        """SIGTERM every shard (they stop answering replays); their reports."""
        reports: dict[str, Any] = {}
        for _, _, process in self.shards:
            if process.proc is not None:
                process.proc.terminate()
        for _, path, process in self.shards:
            if process.proc is not None:
                try:
                    process.proc.wait(30)
                except subprocess.TimeoutExpired:
                    print(f"{path.stem} did not stop within 30 s: killed", flush=True)
                process.kill()
            final = path.with_suffix(".final.json")
            reports[path.stem] = json.loads(final.read_text()) if final.exists() else None
        return reports

    def kill(self) -> None:
        for _, _, process in self.shards:
            process.kill()
