"""Operations centre wall: the whole region on one 1080p screen, read from across a room.

Top row: six big tiles, each coloured at its target, among them the bank's
own figure, the average wait today (and in the last hour). Middle: region
tiles, the evaluation rate, devices down, the branches whose floor notices
went unanswered (on-call's turn) and the notices sent per hour. Bottom: the
branches that need someone now (post 1 empty, longest waits, longest average
wait today), the regions below target, devices down and the alerts firing.
24 rows of grid, nothing below the fold.

Two data sources. The tiles and the by-region bars read the region recording rules
(``region:…``, alerts/region.py) from ``$global``: the global Prometheus that federates
them from every region's (deploy/prometheus/global.yml), or the one Prometheus of a
small site, which evaluates them itself. The lists that name branches, devices and
alerts read the per-branch series from ``$datasource``, a regional Prometheus. Both
merge the two copies an HA pair of collectors exports: the rules before summing, the
lists by ``max by`` the labels that name a row.
"""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.models import dashboard

from alerts import region as rules
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
    label_variable,
    listing,
    minutes,
    new_board,
    none_is_good,
    percent,
    steps,
    tiles,
    wait_thresholds,
)
from dashboards.figures import average_wait_colours, worst_average_waits

UID: Final = "branchwatch-wall"
R: Final = 'region=~"$region"'

GLOBAL_VARIABLE: Final = "global"
GLOBAL: Final = dashboard.DataSourceRef(type_val="prometheus", uid="${global}")

OPEN: Final = f"{metrics.BRANCH_OPEN.name}{{{R}}} == 1"
POST1_EMPTY_SECONDS: Final = (
    f'time() - {metrics.POSITION_CHANGED.name}{{position="1",{R}}}'
    f' and {metrics.POSITION_STAFFED.name}{{position="1",{R}}} == 0'
    f" and on(region, branch) {OPEN}"
)
OLDEST_WAIT: Final = f"time() - {metrics.QUEUE_OLDEST_ISSUED.name}{{{R}}}"
# One row per device and fault whichever twin of an HA pair exported it.
DEVICES_DOWN: Final = (
    "max by (region, branch, agent, device, kind, fault) ("
    f"({metrics.DEVICE_UP.name}{{{R}}} == 0) or ({metrics.DEVICE_FAULT.name}{{{R}}} == 1))"
)


def per_region(record: str) -> str:
    """One value per region of a region rule (a region federated twice counts once)."""
    return f"max by (region) ({record}{{{R}}})"


def bank(record: str) -> str:
    """The bank-wide figure: the sum of the regions'."""
    return f"sum({per_region(record)})"


def bank_share(numerator: str, denominator: str) -> str:
    return f"{bank(numerator)} / ({bank(denominator)} > 0)"


def global_variable() -> builders.DatasourceVariable:
    return (
        builders.DatasourceVariable(GLOBAL_VARIABLE)
        .type("prometheus")
        .label("Global Prometheus (region rules)")
    )


def region_variable() -> builders.QueryVariable:
    """The regions the global tier knows (every region, whichever $datasource is)."""
    return (
        label_variable("region", "Region", f"label_values({rules.BRANCHES_OPEN}, region)")
        .datasource(GLOBAL)
        .multi(True)
        .include_all(True)
        .all_value(".*")
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
    ).with_variable(global_variable())
    board = board.with_variable(region_variable())
    top = [
        big_stat(
            "Branches with post 1 empty",
            f"{bank(rules.GREETER_POST_EMPTY)} or vector(0)",
            "none",
            none_is_good(),
        ),
        big_stat(
            "Longest wait now",
            f"max({per_region(rules.OLDEST_WAIT)}) or vector(0)",
            "s",
            wait_thresholds(limits),
        ),
        big_stat(
            "Average wait today",
            bank_share(rules.WAITED_TODAY, rules.CALLED_TODAY),
            "s",
            average_wait_colours(limits),
        ),
        big_stat(
            "Average wait (1 h)",
            bank_share(rules.WAITED_1H, rules.CALLED_1H),
            "s",
            average_wait_colours(limits),
        ),
        big_stat(
            called_within,
            bank_share(rules.WITHIN_TARGET_1H, rules.CALLED_1H),
            "percentunit",
            at_least(limits.service_level_target),
        ).description(SERVICE_LEVEL_IS_OURS),
        big_stat(
            "Satisfaction",
            bank_share(rules.SATISFIED_12H, rules.RATINGS_12H),
            "percentunit",
            at_least(limits.satisfaction_target),
        ),
    ]
    middle = [
        tiles(
            "Customers waiting, by region",
            per_region(rules.QUEUE_WAITING),
            "{{region}}",
            "none",
            steps(GREEN),
        ),
        tiles(
            "Branches open, by region",
            per_region(rules.BRANCHES_OPEN),
            "{{region}}",
            "none",
            steps(GREEN),
        ),
        big_stat(
            "Evaluation rate",
            bank_share(rules.RATINGS_12H, rules.REQUESTS_12H),
            "percentunit",
            at_least(limits.evaluation_rate_target),
        ),
        big_stat(
            "Devices down or faulty",
            f"{bank(rules.DEVICES_DOWN)} or vector(0)",
            "none",
            none_is_good(),
        ),
        big_stat(
            "Branches with an unanswered notice chain",
            f"{bank(rules.NOTICE_UNANSWERED)} or vector(0)",
            "none",
            none_is_good(),
        ),
        big_stat(
            "Floor notices sent (1 h)",
            f"{bank(rules.NOTICES_SENT_1H)} or vector(0)",
            "none",
            steps(GREEN),
        ),
    ]
    for row, panels in enumerate((top, middle)):
        for column, panel in enumerate(panels):
            placed = at(4 * column, 5 * row, 4, 5)
            board = board.with_panel(panel.datasource(GLOBAL).grid_pos(placed))
    board = (
        board.with_panel(
            bars(
                "Post 1 empty: for how long",
                f"topk(8, max by (region, branch) ({POST1_EMPTY_SECONDS}))",
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
                per_region(rules.SERVICE_LEVEL),
                "{{region}}",
                "percentunit",
                at_least(limits.service_level_target),
            )
            .datasource(GLOBAL)
            .max(1)
            .grid_pos(at(18, 10, 6, 8))
        )
        .with_panel(
            bars(
                "Satisfaction, by region",
                per_region(rules.SATISFACTION),
                "{{region}}",
                "percentunit",
                at_least(limits.satisfaction_target),
            )
            .datasource(GLOBAL)
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
