"""Fleet health: are the agents, devices and the collector itself reporting?

For field installers (is my new branch reporting?) and for whoever runs the
collector. Agent versions are not in the metrics (no version label: it would
spend the per-branch series budget): the collector's API lists them,
``/api/v1/branches`` → ``agents[].version``; the board's description says so.

An HA pair of collectors exports every agent and device twice: the agent and device
panels take one copy of each (``one_per_pair``). The collector panels show each
collector apart, by ``instance``: each twin has its own broker connection, ingest lag
and refusals, and a sum would hide the one that is failing.
"""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import dashboard as builders

from branchwatch.contract import metrics
from branchwatch.contract.metrics import MetricFamily
from branchwatch.thresholds import Thresholds
from dashboards.common import (
    GREEN,
    ORANGE,
    RED,
    YELLOW,
    at,
    bars,
    big_stat,
    listing,
    new_board,
    none_is_good,
    one_per_pair,
    per_collector,
    query,
    region_variable,
    steps,
    tiles,
    trend,
)

UID: Final = "branchwatch-fleet"
R: Final = 'region=~"$region"'
SPOOL_WARNING: Final = 100  # events an agent holds unsent: the broker is out of reach
SPOOL_CRITICAL: Final = 1000
# An agent reports its status every 60 s: two missed reports turn its bar yellow.
LATE_SECONDS: Final = 120
EACH: Final = "{{instance}}"  # the legend of a collector's own figure


def now(family: MetricFamily) -> str:
    """The region's current series of an agent or device family, a pair's copies taken once."""
    return one_per_pair(family, f"{family.name}{{{R}}}")


def lag(quantile: float) -> str:
    """A quantile of each collector's ingest lag (the buckets of one collector only)."""
    buckets = f"rate({metrics.COLLECTOR_INGEST_LAG.bucket}[$__rate_interval])"
    return f"histogram_quantile({quantile}, {per_collector('sum', buckets, 'le')})"


def build(limits: Thresholds) -> builders.Dashboard:
    board = new_board(
        "Fleet health",
        UID,
        (
            "Agents, devices and the collector. Agent versions are not exported as metrics: "
            "see the collector's /api/v1/branches (agents[].version)."
        ),
        tag="fleet",
        refresh="30s",
        since="now-6h",
    ).with_variable(region_variable(multi=True))
    top = [
        big_stat("Agents up", f"sum({now(metrics.AGENT_UP)})", "none", steps(GREEN)),
        big_stat(
            "Agents down",
            f"count({now(metrics.AGENT_UP)} == 0) or vector(0)",
            "none",
            none_is_good(),
        ),
        big_stat(
            "Active device faults",
            f"count({now(metrics.DEVICE_FAULT)} == 1) or vector(0)",
            "none",
            none_is_good(),
        ),
        big_stat(
            "Events spooled at the edge",
            f"sum({now(metrics.AGENT_SPOOL_DEPTH)})",
            "none",
            steps(GREEN, (SPOOL_WARNING, YELLOW), (SPOOL_CRITICAL, RED)),
        ),
        tiles(
            "Collector connected to the broker",
            per_collector("min", metrics.COLLECTOR_MQTT_CONNECTED.name),
            EACH,
            "none",
            steps(RED, (1, GREEN)),
        ),
        tiles(
            "Messages accepted /s",
            per_collector(
                "sum",
                f'rate({metrics.COLLECTOR_MESSAGES.name}{{result="accepted"}}[$__rate_interval])',
            ),
            EACH,
            "reqps",
            steps(GREEN),
        ),
    ]
    for column, panel in enumerate(top):
        board = board.with_panel(panel.grid_pos(at(4 * column, 0, 4, 4)))
    return (
        board.with_panel(
            bars(
                "Agents: time since last heard",
                f"topk(15, time() - {now(metrics.AGENT_LAST_SEEN)})",
                "{{region}} / {{branch}} / {{agent}}",
                "s",
                steps(GREEN, (LATE_SECONDS, YELLOW), (limits.device_offline_seconds, RED)),
            ).grid_pos(at(0, 4, 12, 8))
        )
        .with_panel(
            bars(
                "Spool depth, by agent",
                f"topk(15, {now(metrics.AGENT_SPOOL_DEPTH)})",
                "{{region}} / {{branch}} / {{agent}}",
                "none",
                steps(GREEN, (SPOOL_WARNING, YELLOW), (SPOOL_CRITICAL, RED)),
            ).grid_pos(at(12, 4, 12, 8))
        )
        .with_panel(
            listing("Devices down", f"{now(metrics.DEVICE_UP)} == 0", none_is_good()).grid_pos(
                at(0, 12, 12, 7)
            )
        )
        .with_panel(
            listing(
                "Device faults (active)", f"{now(metrics.DEVICE_FAULT)} == 1", none_is_good()
            ).grid_pos(at(12, 12, 12, 7))
        )
        .with_panel(
            trend(
                "Collector messages /s, by result",
                per_collector(
                    "sum", f"rate({metrics.COLLECTOR_MESSAGES.name}[$__rate_interval])", "result"
                ),
                f"{EACH} · {{{{result}}}}",
                "reqps",
            ).grid_pos(at(0, 19, 8, 8))
        )
        .with_panel(
            trend(
                "Rejected /s, by reason",
                per_collector(
                    "sum", f"rate({metrics.COLLECTOR_REJECTED.name}[$__rate_interval])", "reason"
                ),
                f"{EACH} · {{{{reason}}}}",
                "reqps",
            ).grid_pos(at(8, 19, 8, 8))
        )
        .with_panel(
            trend("Ingest lag (receive − event time)", lag(0.5), f"{EACH} p50", "s")
            .with_target(query(lag(0.95), f"{EACH} p95", ref_id="B", instant=False))
            .thresholds(steps(GREEN, (5, ORANGE), (30, RED)))
            .grid_pos(at(16, 19, 8, 8))
        )
        .with_panel(
            bars(
                "Events refused at the edge (disk full), by agent (time range)",
                "topk(15, "
                + one_per_pair(
                    metrics.AGENT_EVENTS_REFUSED,
                    f"increase({metrics.AGENT_EVENTS_REFUSED.name}{{{R}}}[$__range])",
                )
                + " > 0)",
                "{{region}} / {{branch}} / {{agent}}",
                "none",
                none_is_good(),
            ).grid_pos(at(0, 27, 12, 8))
        )
        .with_panel(
            tiles(
                "Collector snapshots failed (time range)",
                per_collector(
                    "sum", f"increase({metrics.COLLECTOR_SNAPSHOT_FAILURES.name}[$__range])"
                ),
                EACH,
                "none",
                none_is_good(),
            ).grid_pos(at(12, 27, 4, 8))
        )
        .with_panel(
            trend(
                "HTTP connections refused /s, by reason",
                per_collector(
                    "sum",
                    f"rate({metrics.COLLECTOR_HTTP_REFUSED.name}[$__rate_interval])",
                    "reason",
                ),
                f"{EACH} · {{{{reason}}}}",
                "reqps",
            ).grid_pos(at(16, 27, 8, 8))
        )
    )
