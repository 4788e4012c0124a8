"""Operations centre wall: the whole region on one 1080p screen, read from across a room.

Top row: six big tiles, each coloured at its target, among them the bank's
own figure, the average wait today (and in the last hour). Middle: region
tiles, the evaluation rate, devices down, the branches whose floor notices
went unanswered (on-call's turn) and the notices sent per hour. Bottom: the
branches that need someone now (post 1 empty, longest waits, longest average
wait today), the regions below target, devices down and the alerts firing.
24 rows of grid, nothing below the fold.
"""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import dashboard as builders

from branchwatch.contract import metrics
from branchwatch.thresholds import Thresholds
from dashboards.common import (
    GREEN,
    RED,
    SERVICE_LEVEL_IS_OURS,
    YELLOW,
    at,
    at_least,
    bars,
    big_stat,
    listing,
    minutes,
    new_board,
    none_is_good,
    percent,
    region_variable,
    steps,
    tiles,
    wait_target_le,
    wait_thresholds,
)
from dashboards.figures import DAY, average_wait, average_wait_colours, worst_average_waits

UID: Final = "branchwatch-wall"
R: Final = 'region=~"$region"'

OPEN: Final = f"{metrics.BRANCH_OPEN.name}{{{R}}} == 1"
POST1_EMPTY_SECONDS: Final = (
    f'time() - {metrics.POSITION_CHANGED.name}{{position="1",{R}}}'
    f' and {metrics.POSITION_STAFFED.name}{{position="1",{R}}} == 0'
    f" and on(region, branch) {OPEN}"
)
OLDEST_WAIT: Final = f"time() - {metrics.QUEUE_OLDEST_ISSUED.name}{{{R}}}"
# One series per open branch with an exhausted notice chain (an HA pair counted once).
UNANSWERED_CHAINS: Final = (
    f"max by (region, branch) ({metrics.NOTICE_UNANSWERED.name}{{{R}}})"
    f" and on(region, branch) {OPEN}"
)
NOTICES_PER_HOUR: Final = (
    "sum(max by (region, branch, kind) "
    f'(increase({metrics.NOTICES.name}{{outcome="sent",{R}}}[1h])))'
)


def _share(numerator: str, denominator: str, by: str = "") -> str:
    group = f" by ({by})" if by else ""
    return f"sum{group}({numerator}) / sum{group}({denominator})"


def service_level(limits: Thresholds, by: str = "") -> str:
    return _share(
        f'increase({metrics.WAIT_SECONDS.bucket}{{le="{wait_target_le(limits)}",{R}}}[1h])',
        f"increase({metrics.WAIT_SECONDS.count}{{{R}}}[1h])",
        by,
    )


def satisfaction(by: str = "") -> str:
    return _share(
        f'increase({metrics.EVALUATIONS.name}{{rating=~"very_satisfied|satisfied",{R}}}[$__range])',
        f"increase({metrics.EVALUATIONS.name}{{{R}}}[$__range])",
        by,
    )


def evaluation_rate() -> str:
    return _share(
        f"increase({metrics.EVALUATIONS.name}{{{R}}}[$__range])",
        f"increase({metrics.EVALUATIONS_REQUESTED.name}{{{R}}}[$__range])",
    )


DEVICES_DOWN: Final = (
    f"({metrics.DEVICE_UP.name}{{{R}}} == 0) or ({metrics.DEVICE_FAULT.name}{{{R}}} == 1)"
)


def build(limits: Thresholds) -> builders.Dashboard:
    waits = "/".join(
        f"{seconds / 60:g}"
        for seconds in (
            limits.wait_target_seconds,
            limits.wait_warning_seconds,
            limits.wait_critical_seconds,
        )
    )
    called_within = f"Called within {minutes(limits.wait_target_seconds)} (1 h)"
    board = new_board(
        "Operations centre wall",
        UID,
        (
            "Region overview for the operations-centre wall: every tile is coloured at its "
            f"target (wait {waits} min, satisfaction {percent(limits.satisfaction_target)}, "
            f"evaluation rate {percent(limits.evaluation_rate_target)}, the bank's average "
            f"wait {minutes(limits.average_wait_target_seconds)} per day)."
        ),
        tag="wall",
        refresh="30s",
        since="now-12h",
    ).with_variable(region_variable(multi=True))
    top = [
        big_stat(
            "Branches with post 1 empty",
            f"count({POST1_EMPTY_SECONDS}) or vector(0)",
            "none",
            none_is_good(),
        ),
        big_stat(
            "Longest wait now", f"max({OLDEST_WAIT}) or vector(0)", "s", wait_thresholds(limits)
        ),
        big_stat("Average wait today", average_wait(R, DAY), "s", average_wait_colours(limits)),
        big_stat("Average wait (1 h)", average_wait(R, "1h"), "s", average_wait_colours(limits)),
        big_stat(
            called_within,
            service_level(limits),
            "percentunit",
            at_least(limits.service_level_target),
        ).description(SERVICE_LEVEL_IS_OURS),
        big_stat(
            "Satisfaction", satisfaction(), "percentunit", at_least(limits.satisfaction_target)
        ),
    ]
    middle = [
        tiles(
            "Customers waiting, by region",
            f"sum by (region) ({metrics.QUEUE_WAITING.name}{{{R}}})",
            "{{region}}",
            "none",
            steps(GREEN),
        ),
        tiles(
            "Branches open, by region",
            f"sum by (region) ({metrics.BRANCH_OPEN.name}{{{R}}})",
            "{{region}}",
            "none",
            steps(GREEN),
        ),
        big_stat(
            "Evaluation rate",
            evaluation_rate(),
            "percentunit",
            at_least(limits.evaluation_rate_target),
        ),
        big_stat(
            "Devices down or faulty", f"count({DEVICES_DOWN}) or vector(0)", "none", none_is_good()
        ),
        big_stat(
            "Branches with an unanswered notice chain",
            f"count({UNANSWERED_CHAINS}) or vector(0)",
            "none",
            none_is_good(),
        ),
        big_stat(
            "Floor notices sent (1 h)",
            f"{NOTICES_PER_HOUR} or vector(0)",
            "none",
            steps(GREEN),
        ),
    ]
    for row, panels in enumerate((top, middle)):
        for column, panel in enumerate(panels):
            board = board.with_panel(panel.grid_pos(at(4 * column, 5 * row, 4, 5)))
    board = (
        board.with_panel(
            bars(
                "Post 1 empty: for how long",
                f"topk(8, {POST1_EMPTY_SECONDS})",
                "{{region}} / {{branch}}",
                "s",
                steps(YELLOW, (limits.greeter_empty_seconds, RED)),
            ).grid_pos(at(0, 10, 6, 8))
        )
        .with_panel(
            bars(
                "Longest waits",
                f"topk(8, max by (region, branch) ({OLDEST_WAIT}))",
                "{{region}} / {{branch}}",
                "s",
                wait_thresholds(limits),
            ).grid_pos(at(6, 10, 6, 8))
        )
        .with_panel(worst_average_waits(R, limits).grid_pos(at(12, 10, 6, 8)))
        .with_panel(
            bars(
                f"{called_within}, by region",
                service_level(limits, "region"),
                "{{region}}",
                "percentunit",
                at_least(limits.service_level_target),
            )
            .max(1)
            .grid_pos(at(18, 10, 6, 8))
        )
        .with_panel(
            bars(
                "Satisfaction, by region",
                satisfaction("region"),
                "{{region}}",
                "percentunit",
                at_least(limits.satisfaction_target),
            )
            .max(1)
            .grid_pos(at(0, 18, 8, 6))
        )
        .with_panel(
            listing("Devices down or faulty", DEVICES_DOWN, none_is_good()).grid_pos(
                at(8, 18, 8, 6)
            )
        )
        .with_panel(
            listing(
                "Alerts firing (all regions)", 'ALERTS{alertstate="firing"}', none_is_good()
            ).grid_pos(at(16, 18, 8, 6))
        )
    )
    return board
