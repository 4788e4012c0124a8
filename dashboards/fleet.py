"""Fleet health: are the agents, devices and the collector itself reporting?

For field installers (is my new branch reporting?) and for whoever runs the
collector. Agent versions are not in the metrics (no version label: it would
spend the per-branch series budget): the collector's API lists them,
``/api/v1/branches`` → ``agents[].version``; the board's description says so.
"""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import dashboard as builders

from branchwatch.contract import metrics
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
    query,
    region_variable,
    steps,
    trend,
)

UID: Final = "branchwatch-fleet"
R: Final = 'region=~"$region"'
SPOOL_WARNING: Final = 100  # events an agent holds unsent: the broker is out of reach
SPOOL_CRITICAL: Final = 1000
# An agent reports its status every 60 s: two missed reports turn its bar yellow.
LATE_SECONDS: Final = 120


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
        big_stat("Agents up", f"sum({metrics.AGENT_UP.name}{{{R}}})", "none", steps(GREEN)),
        big_stat(
            "Agents down",
            f"count({metrics.AGENT_UP.name}{{{R}}} == 0) or vector(0)",
            "none",
            none_is_good(),
        ),
        big_stat(
            "Active device faults",
            f"count({metrics.DEVICE_FAULT.name}{{{R}}} == 1) or vector(0)",
            "none",
            none_is_good(),
        ),
        big_stat(
            "Events spooled at the edge",
            f"sum({metrics.AGENT_SPOOL_DEPTH.name}{{{R}}})",
            "none",
            steps(GREEN, (SPOOL_WARNING, YELLOW), (SPOOL_CRITICAL, RED)),
        ),
        big_stat(
            "Collector connected to the broker",
            f"min({metrics.COLLECTOR_MQTT_CONNECTED.name})",
            "none",
            steps(RED, (1, GREEN)),
        ),
        big_stat(
            "Messages accepted /s",
            f'sum(rate({metrics.COLLECTOR_MESSAGES.name}{{result="accepted"}}[$__rate_interval]))',
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
                f"topk(15, time() - {metrics.AGENT_LAST_SEEN.name}{{{R}}})",
                "{{region}} / {{branch}} / {{agent}}",
                "s",
                steps(GREEN, (LATE_SECONDS, YELLOW), (limits.device_offline_seconds, RED)),
            ).grid_pos(at(0, 4, 12, 8))
        )
        .with_panel(
            bars(
                "Spool depth, by agent",
                f"topk(15, {metrics.AGENT_SPOOL_DEPTH.name}{{{R}}})",
                "{{region}} / {{branch}} / {{agent}}",
                "none",
                steps(GREEN, (SPOOL_WARNING, YELLOW), (SPOOL_CRITICAL, RED)),
            ).grid_pos(at(12, 4, 12, 8))
        )
        .with_panel(
            listing(
                "Devices down", f"{metrics.DEVICE_UP.name}{{{R}}} == 0", none_is_good()
            ).grid_pos(at(0, 12, 12, 7))
        )
        .with_panel(
            listing(
                "Device faults (active)", f"{metrics.DEVICE_FAULT.name}{{{R}}} == 1", none_is_good()
            ).grid_pos(at(12, 12, 12, 7))
        )
        .with_panel(
            trend(
                "Collector messages /s, by result",
                f"sum by (result) (rate({metrics.COLLECTOR_MESSAGES.name}[$__rate_interval]))",
                "{{result}}",
                "reqps",
            ).grid_pos(at(0, 19, 8, 8))
        )
        .with_panel(
            trend(
                "Rejected /s, by reason",
                f"sum by (reason) (rate({metrics.COLLECTOR_REJECTED.name}[$__rate_interval]))",
                "{{reason}}",
                "reqps",
            ).grid_pos(at(8, 19, 8, 8))
        )
        .with_panel(
            trend(
                "Ingest lag (receive − event time)",
                "histogram_quantile(0.5, sum by (le) "
                f"(rate({metrics.COLLECTOR_INGEST_LAG.bucket}[$__rate_interval])))",
                "p50",
                "s",
            )
            .with_target(
                query(
                    "histogram_quantile(0.95, sum by (le) "
                    f"(rate({metrics.COLLECTOR_INGEST_LAG.bucket}[$__rate_interval])))",
                    "p95",
                    ref_id="B",
                    instant=False,
                )
            )
            .thresholds(steps(GREEN, (5, ORANGE), (30, RED)))
            .grid_pos(at(16, 19, 8, 8))
        )
        .with_panel(
            bars(
                "Events refused at the edge (disk full), by agent (time range)",
                "topk(15, max by (region, branch, agent) "
                f"(increase({metrics.AGENT_EVENTS_REFUSED.name}{{{R}}}[$__range])) > 0)",
                "{{region}} / {{branch}} / {{agent}}",
                "none",
                none_is_good(),
            ).grid_pos(at(0, 27, 12, 8))
        )
        .with_panel(
            big_stat(
                "Collector snapshots failed (time range)",
                f"sum(increase({metrics.COLLECTOR_SNAPSHOT_FAILURES.name}[$__range]))",
                "none",
                none_is_good(),
            ).grid_pos(at(12, 27, 4, 8))
        )
        .with_panel(
            trend(
                "HTTP connections refused /s, by reason",
                f"sum by (reason) (rate({metrics.COLLECTOR_HTTP_REFUSED.name}[$__rate_interval]))",
                "{{reason}}",
                "reqps",
            ).grid_pos(at(16, 27, 8, 8))
        )
    )
