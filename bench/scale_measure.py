"""What ``make bench-scale`` reads off the running processes, and the exactness check.

- CPU shares from ``/proc/PID/stat`` between two readings; RSS from ``/proc/PID/status``;
- ingest lag quantiles from each collector's ``branchwatch_collector_ingest_lag_seconds``
  histogram and the scrape figures (``scrape_duration_seconds``,
  ``scrape_samples_scraped``), both through the region's Prometheus over the window;
- a collector's failover from its own log (``disconnected from …``, ``subscribed to …``);
- exactness: each collector's ``/api/v1/branches`` against the shards' truths.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from bench.scale_stack import cpu_seconds
from branchwatch.sim.model import AGENT as SIM_AGENT
from tests.promstack import PrometheusProcess

LAG: Final = "branchwatch_collector_ingest_lag_seconds"
LOG_TIME: Final = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
HASH_DIGITS: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class CpuMeter:
    """CPU seconds of named processes at one moment; :meth:`shares` since then."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        self.wall = time.monotonic()
        self.cpu = {name: _cpu_or_zero(pid) for name, pid in self.pids.items()}

    def shares(self) -> dict[str, float]:
        """Share of one core each process used since the reading (1.0 = one core busy)."""
        elapsed = time.monotonic() - self.wall
        return {
            name: (_cpu_or_zero(pid) - self.cpu[name]) / elapsed for name, pid in self.pids.items()
        }


def _cpu_or_zero(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except FileNotFoundError:  # it ended (a killed broker node)
        return 0.0


def query_at(prom: PrometheusProcess, promql: str, at: float) -> dict[str, float]:
    """An instant query at ``at``: {instance (or ""): value}."""
    body = prom.get_json("/api/v1/query", {"query": promql, "time": f"{at:.3f}"})
    rows = body["data"]["result"]
    return {row["metric"].get("instance", ""): float(row["value"][1]) for row in rows}


def lag_quantiles(prom: PrometheusProcess, at: float, window: float) -> dict[str, dict[str, float]]:
    """Per collector (instance): p50, p99 of the ingest lag and live events/s in the window.

    Prometheus interpolates within a bucket (…, 0.05, 0.1, 0.25, 0.5, 1, 2.5 s): a quantile
    is as fine as the bucket it falls in.
    """
    w = f"{window:.0f}s"
    out: dict[str, dict[str, float]] = {}
    for name, promql in (
        ("p50", f"histogram_quantile(0.5, sum by (instance, le) (increase({LAG}_bucket[{w}])))"),
        ("p99", f"histogram_quantile(0.99, sum by (instance, le) (increase({LAG}_bucket[{w}])))"),
        ("events_per_s", f"rate({LAG}_count[{w}])"),
    ):
        for instance, value in query_at(prom, promql, at).items():
            out.setdefault(instance, {})[name] = value
    return out


def scrape_figures(
    prom: PrometheusProcess, at: float, window: float
) -> dict[str, dict[str, float]]:
    """Per scraped process (instance): the mean and max scrape duration (s) of its slowest
    target and the samples of its last scrape. A collector is scraped as shard targets
    (deploy/prometheus/region.yml), each with its own ``shard`` label: their samples add
    up, their durations run side by side."""
    w = f"{window:.0f}s"
    out: dict[str, dict[str, float]] = {}
    for name, promql in (
        ("duration_avg", f"max by (instance) (avg_over_time(scrape_duration_seconds[{w}]))"),
        ("duration_max", f"max by (instance) (max_over_time(scrape_duration_seconds[{w}]))"),
        ("samples", "sum by (instance) (scrape_samples_scraped)"),
    ):
        for instance, value in query_at(prom, promql, at).items():
            out.setdefault(instance, {})[name] = value
    return out


def nats_hash(name: str) -> str:
    """NATS' 8-character hash of a name (its server's ``getHash``). An MQTT session's
    consumers are named after the hash of its client id, the retained-message consumer
    of a node after the node's name: the hash says whose subscription a Raft group is."""
    digest = hashlib.sha256(name.encode()).digest()
    return "".join(HASH_DIGITS[byte % len(HASH_DIGITS)] for byte in digest[:8])


def whose(led: list[str], names: Iterable[str]) -> dict[str, int]:
    """What a node led (:meth:`NatsCluster.leaderships`), by whose it is: the streams and the meta
    group by their names, each consumer by its session's client id (or node) and kind."""
    by_hash = {nats_hash(name): name for name in names}
    out: Counter[str] = Counter()
    for item in led:
        stream, sep, consumer = item.partition(" consumer ")
        if not sep:
            out[stream] += 1
            continue
        durable, _, kind = consumer.partition(" ")
        key = durable.removeprefix("$MQTT_rmsgs_").split("_")[0]
        out[f"{stream} consumer of {by_hash.get(key, key)}{f' ({kind})' if kind else ''}"] += 1
    return dict(out)


def log_times(path: Path, since: float) -> list[tuple[float, str]]:
    """(Unix time, line) of the log's timestamped lines at or after ``since``."""
    lines: list[tuple[float, str]] = []
    for line in path.read_text(errors="replace").splitlines():
        match = LOG_TIME.match(line)
        if match:
            when = datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if when >= since:
                lines.append((when, line))
    return lines


def collector_failover(log: Path, since: float, until: float) -> dict[str, Any]:
    """Within [since, until): when the collector lost its broker and was subscribed again
    (and where); ``on``: the broker it was on before."""
    lost = back = None
    broker = on = ""
    for when, line in log_times(log, 0.0):
        if when >= until:
            break
        if "connected to " in line and "disconnected" not in line:
            url = line.split("connected to ", 1)[1].split(" ")[0]
            if when < since:
                on = url
            elif lost is not None:
                broker = url
        elif when < since:
            continue
        elif lost is None and ("disconnected from" in line or "unusable" in line):
            lost = when
        elif lost is not None and "subscribed to" in line:
            back = when
            break
    return {"lost": lost, "subscribed": back, "broker": broker, "on": on}


def collector_self_metrics(url: str) -> dict[str, float]:
    """The collector's own counters (``branchwatch_collector_*``) from its /metrics."""
    with urllib.request.urlopen(url + "/metrics", timeout=60) as response:
        text = response.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("branchwatch_collector_") and "_bucket" not in line:
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def branches_of(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(url + "/api/v1/branches", timeout=60) as response:
        branches: list[dict[str, Any]] = json.load(response)["branches"]
    return branches


@dataclass
class Exactness:
    """A collector against the truth of its region's shards."""

    agents: int = 0
    events: int = 0  # generated by the shards: seq 1..last of every agent
    expected: int = 0  # tickets issued + served + ratings the truth predicts
    counted: int = 0
    lost: int = 0
    duplicated: int = 0
    behind: list[str] = field(default_factory=list)  # agents whose last seq is short (or ahead)
    missing: int = 0  # seqs the collector still waits for, or gave up on

    @property
    def exact(self) -> bool:
        return not (self.lost or self.duplicated or self.behind or self.missing)


def check(branches: list[dict[str, Any]], truth: Mapping[str, Mapping[str, Any]]) -> Exactness:
    """``truth``: branch -> the shard's figures (``bench.scale_sim.ShardSim.truth``)."""
    result = Exactness()
    shown = {b["branch"]: b for b in branches}
    for name, want in truth.items():
        result.agents += 1
        result.events += want["events"]
        got = shown.get(name)
        agent = next((a for a in (got or {}).get("agents", []) if a["agent"] == SIM_AGENT), None)
        if got is None or agent is None:
            result.behind.append(f"{name}: not shown")
            result.expected += want["issued"] + want["served"] + want["rated"]
            result.lost += want["issued"] + want["served"] + want["rated"]
            continue
        if agent["last_seq"] != want["last_seq"]:
            result.behind.append(f"{name}: seq {agent['last_seq']} of {want['last_seq']}")
        result.missing += agent.get("events_missing", 0) + agent.get("events_lost", 0)
        for expected, counted in (
            (want["issued"], got["issued_total"]),
            (want["served"], got["served_total"]),
            (want["rated"], sum(got["ratings"].values())),
        ):
            result.expected += expected
            result.counted += counted
            result.lost += max(0, expected - counted)
            result.duplicated += max(0, counted - expected)
    return result


def caught_up(branches: list[dict[str, Any]], truth: Mapping[str, Mapping[str, Any]]) -> bool:
    """Every agent's last seq applied, nothing missing, nothing held for a rebuild."""
    return check(branches, truth).exact and not any(b.get("rebuilding") for b in branches)
