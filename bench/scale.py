"""``make bench-scale``: the bank at scale on this machine, with a broker node killed mid-run.

A 3-node NATS cluster (the shipped kit), one collector per region (``--twins``: two),
a Prometheus per region with every rule file and a global Prometheus federating the
regions' ``region:*`` rules, all real processes on free loopback ports. The simulator
publishes ``--branches`` branches at ``--rate`` events/s in total (default: the
bank's peak rate per branch, 6,000 events/s over 23,433 branches), ``--shards``
processes per region, each one MQTT connection standing for its branches' agents and
starting on another node than its region's collector. A probe branch per region has
one agent on every node.

Phases (``--seconds`` of traffic): a warm-up (the collectors rebuild every agent from
its replay), a steady window that gives the per-collector figures, then ``--kills``
times a ``kill -9`` of a node (first ``--victim``, by default mq1 where the first
collector starts, then the next), watched for 30 s and started again; then quiet
until every collector shows exactly what the shards made.

Reported per collector: CPU share (/proc/PID/stat), RSS per branch, ingest lag p50/p99
(its own histogram, through Prometheus), scrape duration and samples per region,
publish → API visible p50/p99 of the probe events (polled on the API with keep-alive);
after each kill its stall (the longest time with no probe event becoming visible), its
own failover and the clients'; at the end exact totals (0 lost, 0 double-counted).
Exits 1 when a collector's totals are not exact. ``--find`` instead adds load step by
step up to the largest this machine keeps up with (:mod:`bench.scale_find`).
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from bench.scale_measure import (
    CpuMeter,
    branches_of,
    caught_up,
    check,
    collector_failover,
    collector_self_metrics,
    lag_quantiles,
    scrape_figures,
    whose,
)
from bench.scale_probe import Poller, ProbeAgent, longest_gap, probe_agent_id
from bench.scale_report import led_text, print_report
from bench.scale_run import KILL_OBSERVE, Load, Plan, calibrate, wait_for
from bench.scale_stack import Stack, rotated, rss_bytes

NODES: Final = 3
PROBE_INTERVAL: Final = 0.25  # each of the three probe agents of a region
SETTLE_TIMEOUT: Final = 240.0


def percentile(values: list[float], q: float) -> float | None:
    if len(values) < 2:
        return values[0] if values else None
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def wait_for_condition(condition: Callable[[], bool], deadline: float) -> bool:
    """Poll every 5 s until ``condition()`` holds (True) or the monotonic ``deadline``."""
    while True:
        try:
            if condition():
                return True
        except OSError:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(5.0)


class Bench:
    """The stack with its probes and pollers; the phases of a run fill :attr:`report`."""

    def __init__(self, plan: Plan, workdir: Path) -> None:
        self.plan, self.workdir = plan, workdir
        self.stack = Stack(workdir, plan.regions, twins=plan.twins, nats_mqtt=plan.nats_mqtt)
        self.probe_names = [probe_agent_id(f"mq{i + 1}") for i in range(NODES)]
        self.probes: list[ProbeAgent] = []
        self.pollers: list[Poller] = []
        self.loads: list[Load] = []
        self.report: dict[str, Any] = {"plan": plan.describe(), "probe_rate": 0.0}

    def start(self, probes: bool = True) -> None:
        print("starting: NATS cluster, collectors, Prometheus tiers …", flush=True)
        stack = self.stack
        stack.start(self.probe_names)
        self.report["nodes"] = {n.url: n.name for n in stack.cluster.nodes}
        self.report["empty_rss"] = {c.name: rss_bytes(c.pid) for c in stack.collectors}
        if not probes:
            return
        self.report["probe_rate"] = len(self.probe_names) / PROBE_INTERVAL
        for region in self.plan.regions:
            for node, agent in enumerate(self.probe_names):
                password = stack.cluster.passwords[f"{region}/probe/{agent}"]
                self.probes.append(
                    ProbeAgent(
                        region,
                        agent,
                        rotated(stack.urls, node),
                        password,
                        PROBE_INTERVAL,
                        self.plan.publish_timeout,
                    )
                )
        for collector in stack.collectors:
            host, _, port = collector.process.url.removeprefix("http://").partition(":")
            self.pollers.append(Poller(collector.name, host, int(port), collector.region))
        for probe in self.probes:
            probe.start()
        for poller in self.pollers:
            poller.start()

    def pids(self) -> dict[str, int]:
        stack = self.stack
        pids = {c.name: c.pid for c in stack.collectors}
        pids |= {n.name: n.proc.pid for n in stack.cluster.nodes if n.proc is not None}
        for load in self.loads:
            pids |= load.pids()
        pids |= {f"prometheus-{r}": p.proc.pid for r, p in stack.region_proms.items() if p.proc}
        if stack.global_prom is not None and stack.global_prom.proc is not None:
            pids["prometheus-global"] = stack.global_prom.proc.pid
        return pids | {"bench (probes, pollers)": os.getpid()}

    def measure(self, meter: CpuMeter, start: float, end: float) -> dict[str, Any]:
        """The steady figures of [start, end] (end: now, the last scrape waited for)."""
        figures: dict[str, Any] = {"cpu": meter.shares(), "load_average": os.getloadavg()}
        figures["rss"] = {c.name: rss_bytes(c.pid) for c in self.stack.collectors}
        figures["window"] = [start, end]
        figures["lag"], figures["scrape"] = {}, {}
        wait_for(end + 1.0)
        for region, prom in self.stack.region_proms.items():
            figures["lag"] |= lag_quantiles(prom, end, end - start)
            figures["scrape"][region] = scrape_figures(prom, end, end - start)
        if self.stack.global_prom is not None:
            figures["global"] = scrape_figures(self.stack.global_prom, end, end - start)
            figures["global_series"] = len(self.stack.global_prom.query('{__name__=~"region:.*"}'))
        return figures

    def kill(self, victim: int) -> None:
        """``kill -9`` of node ``victim``, with what it led (by whose it was)."""
        cluster = self.stack.cluster
        led = cluster.leaderships(victim)
        killed = time.time()
        cluster.kill(victim)
        clients = [c.name for c in self.stack.collectors]
        clients += [f"probe-{p.region}-{p.agent}" for p in self.probes]
        clients += [client for load in self.loads for client in load.client_ids()]
        clients += [node.name for node in cluster.nodes]
        kill = {"node": cluster.nodes[victim].name, "led": whose(led, clients), "killed": killed}
        self.report.setdefault("kills", []).append(kill)
        print(f"killed {kill['node']} (kill -9); it led: {led_text(kill)}", flush=True)

    def kills(self, start: float) -> None:
        """Each node in turn from ``victim``: killed, watched, started again (not the last).

        A node started again must serve before the next kill: killing a second node while
        the first still catches up would leave the streams without a quorum, which is
        not the loss of one node. If it is not back in time, the kills stop there.
        """
        plan, cluster = self.plan, self.stack.cluster
        for k, at in enumerate(plan.kill_times()):
            victim = (plan.victim + k) % len(cluster.nodes)
            if k:
                back = (plan.victim + k - 1) % len(cluster.nodes)
                try:
                    cluster.wait_ready(back, max(1.0, start + at - time.time()))
                except AssertionError:
                    self.report["kills"][-1]["restarted"] = None
                    name = cluster.nodes[back].name
                    print(f"{name} not serving again in time: no more kills", flush=True)
                    return
                self.report["kills"][-1]["restarted"] = time.time()
            wait_for(start + at)
            self.kill(victim)
            wait_for(start + at + KILL_OBSERVE)
            if k < plan.kills - 1:
                cluster.start_node(victim, wait=False)

    def settle(self, truths: dict[str, dict[str, Any]]) -> None:
        """Until every collector shows its region's truth (or the timeout); then check."""
        print(
            "traffic over; waiting until every collector shows what the shards sent …", flush=True
        )
        began, deadline = time.time(), time.monotonic() + SETTLE_TIMEOUT
        settle, exactness, own = {}, {}, {}
        for collector in self.stack.collectors:
            url, truth = collector.process.url, truths[collector.region]
            done = wait_for_condition(lambda: caught_up(branches_of(url), truth), deadline)  # noqa: B023
            settle[collector.name] = round(time.time() - began, 1) if done else None
            result = check(branches_of(url), truth)
            exactness[collector.name] = result.__dict__ | {"exact": result.exact}
            own[collector.name] = collector_self_metrics(url)
        self.report |= {"settle": settle, "exactness": exactness, "self": own}

    def probe_figures(self, start: float, end: float) -> None:
        """publish → visible in the steady window; after each kill, stalls and failovers."""
        e2e: dict[str, Any] = {}
        for poller in self.pollers:
            probes = [p for p in self.probes if p.region == poller.region]
            steady = poller.latencies(probes, start, end)
            e2e[poller.name] = {
                "p50": percentile(steady, 0.5),
                "p99": percentile(steady, 0.99),
                "count": len(steady),
                "gap_steady": poller.longest_gap(start + 1, end),
            }
        self.report["e2e"] = e2e
        kills = self.report.get("kills", [])
        for kill, later in itertools.zip_longest(kills, kills[1:]):
            after = (kill["killed"], kill["killed"] + KILL_OBSERVE)
            until = later["killed"] if later else time.time()
            seen: dict[str, Any] = {}
            for poller in self.pollers:
                probes = [p for p in self.probes if p.region == poller.region]
                collector = next(c for c in self.stack.collectors if c.name == poller.name)
                seen[poller.name] = {
                    "stall": poller.longest_gap(*after),
                    "stall_by_probe": {
                        p.agent: poller.longest_gap(*after, agent=p.agent) for p in probes
                    },
                    "max_after_kill": max(poller.latencies(probes, *after), default=None),
                    "failover": collector_failover(
                        collector.process.log_path, kill["killed"], until
                    ),
                }
            kill["collectors"] = seen
            kill["until"] = until
            if self.plan.twins:  # the region's view: stale only while both twins are
                kill["pairs"] = {
                    region: longest_gap(
                        [t for p in self.pollers if p.region == region for t in p.times()], *after
                    )
                    for region in self.plan.regions
                }
        self.report["probes"] = {f"{p.region}/{p.agent}": p.connects for p in self.probes}

    def collectors(self) -> dict[str, Any]:
        load = self.loads[0]
        return {
            c.name: {
                "region": c.region,
                "node": self.stack.cluster.nodes[c.node].name,
                "url": c.process.url.removeprefix("http://"),
                "branches": load.branches_of(c.region),
            }
            for c in self.stack.collectors
        }

    def stop_probes(self) -> None:
        for poller in self.pollers:
            poller.stop()
        for probe in self.probes:
            probe.stop()

    def close(self) -> None:
        self.stop_probes()
        for load in self.loads:
            load.kill()
        self.stack.close()


def run(plan: Plan, workdir: Path) -> dict[str, Any]:
    bench = Bench(plan, workdir)
    try:
        bench.start()
        load = Load(plan, bench.stack, workdir)
        bench.loads.append(load)
        start = load.start()
        print(
            f"traffic: {plan.branches} branches at {plan.speed:.2f}x "
            f"(~{plan.rate:.0f} events/s) for {plan.seconds:.0f} s",
            flush=True,
        )
        wait_for(start + plan.warmup)
        steady_start = time.time()
        meter = CpuMeter(bench.pids())
        wait_for(start + plan.steady_end)
        steady_end = time.time()
        bench.report |= bench.measure(meter, steady_start, steady_end)
        bench.kills(start)
        bench.settle(load.wait_truths(start + plan.seconds + 60))
        bench.stop_probes()
        bench.report["sims"] = load.stop()
        bench.report["collectors"] = bench.collectors()
        bench.probe_figures(steady_start, steady_end)
        return bench.report
    finally:
        bench.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    Plan.add_arguments(parser)
    parser.add_argument("--out", type=Path, metavar="FILE", help="also write the report (JSON)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)
    plan = Plan.from_args(args, calibrate)
    workdir = Path(tempfile.mkdtemp(prefix="branchwatch-scale-"))
    print(f"work directory: {workdir}", flush=True)
    # --find's module imports this one: it is imported only when asked for.
    from bench.scale_find import find, print_find  # noqa: PLC0415

    measure, show = (find, print_find) if args.find else (run, print_report)
    try:
        report = measure(plan, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    report["date"] = f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC"
    report["machine"] = {"cores": os.cpu_count(), "load_average_end": os.getloadavg()}
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return show(report)


if __name__ == "__main__":
    sys.exit(main())
