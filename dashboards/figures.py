"""The bank's own figures on the boards: average wait today and in the last hour, tellers,
transfers and intercom hand-offs.

"Today" is the same window as the recording rules of ``alerts/day.py``: an
``increase()`` over the alert config's ``day_window`` (12 h), kept only while that
window still reaches back to the branch's opening. The boards compute it inline, so
they work against a Prometheus without the rule files. Every series is taken once per
thing (:func:`~dashboards.common.one_per_pair`) before it is summed, so an HA pair of
collectors counts once.
"""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import bargauge, table
from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.models import common, dashboard
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from alerts.config import DEFAULT as ALERT_DEFAULTS
from alerts.promql import duration
from branchwatch.contract import metrics
from branchwatch.contract.metrics import MetricFamily
from branchwatch.thresholds import Thresholds
from dashboards.common import (
    DATASOURCE,
    GREEN,
    RED,
    YELLOW,
    at_least,
    bars,
    one_per_pair,
    query,
    steps,
)

DAY_SECONDS: Final = ALERT_DEFAULTS.day_window
DAY: Final = duration(DAY_SECONDS)
GOOD: Final = 'rating=~"very_satisfied|satisfied"'


def today(expr: str, selector: str) -> str:
    """``expr`` (series with region and branch) while the day window reaches the opening."""
    opened = one_per_pair(metrics.BRANCH_OPENED, f"{metrics.BRANCH_OPENED.name}{{{selector}}}")
    return f"({expr} and on(region, branch) (time() - {opened} <= {DAY_SECONDS}))"


def _increase(
    family: MetricFamily, selector: str, window: str, series: str = "", matchers: str = ""
) -> str:
    """The increase of ``family`` (or its histogram ``series``) over ``window``, per thing."""
    inside = f"{matchers},{selector}" if matchers else selector
    increase = one_per_pair(family, f"increase({series or family.name}{{{inside}}}[{window}])")
    return today(increase, selector) if window == DAY else increase


def ratio(num: str, den: str, by: str = "") -> str:
    group = f" by ({by})" if by else ""
    return f"sum{group}({num}) / (sum{group}({den}) > 0)"


def average_wait(selector: str, window: str, by: str = "") -> str:
    """Average wait of the tickets called in ``window`` (``DAY``: today), seconds."""
    return ratio(
        _increase(metrics.WAIT_SECONDS, selector, window, metrics.WAIT_SECONDS.sum),
        _increase(metrics.WAIT_SECONDS, selector, window, metrics.WAIT_SECONDS.count),
        by,
    )


def average_wait_colours(limits: Thresholds) -> builders.ThresholdsConfig:
    """Green within the bank's average-wait target, red above it."""
    return steps(GREEN, (limits.average_wait_target_seconds, RED))


def worst_average_waits(selector: str, limits: Thresholds) -> bargauge.Panel:
    """The branches with the longest average wait today, worst first."""
    return bars(
        "Average wait today: longest",
        f"topk(8, {average_wait(selector, DAY, 'region, branch')})",
        "{{region}} / {{branch}}",
        "s",
        average_wait_colours(limits),
    ).description(
        "Average wait of the tickets called since each branch opened today: the bank's own "
        "figure, red above its target."
    )


def average_wait_by_service(selector: str, limits: Thresholds) -> bargauge.Panel:
    """Per service: the day's average wait and the last hour's, against the target."""
    return (
        bars("Average wait by service: today, last hour", "", "", "s", average_wait_colours(limits))
        .targets(
            [
                query(average_wait(selector, DAY, "service"), "{{service}} today", "A"),
                query(average_wait(selector, "1h", "service"), "{{service}} last hour", "B"),
            ]
        )
        .description(
            "Average wait of the tickets called since the branch opened, and in the last hour, "
            "per service; red above the bank's average-wait target."
        )
    )


def tellers_today(selector: str, limits: Thresholds) -> table.Panel:
    """One row per teller: satisfaction, ratings, transactions, ratings per transaction."""
    rated = _increase(metrics.TELLER_EVALUATIONS, selector, DAY)
    good = _increase(metrics.TELLER_EVALUATIONS, selector, DAY, matchers=GOOD)
    served = _increase(metrics.TELLER_SERVED, selector, DAY)
    columns = [
        ("Satisfaction", ratio(good, rated, "teller")),
        ("Ratings", f"sum by (teller) ({rated})"),
        ("Transactions", f"sum by (teller) ({served})"),
        ("Ratings per transaction", ratio(rated, served, "teller")),
    ]
    names = {f"Value #{chr(ord('A') + n)}": title for n, (title, _) in enumerate(columns)}
    return (
        table.Panel()
        .title("Tellers today")
        .description(
            "Per teller since the branch opened: satisfaction (very satisfied + satisfied ÷ "
            f"ratings; the bank's target {limits.satisfaction_target:.0%} colours it), "
            "ratings, transactions (services the teller started and ended) and ratings per "
            "transaction. The service star of the month is ranked by satisfaction."
        )
        .datasource(DATASOURCE)
        .targets(
            [
                query(expr, ref_id=chr(ord("A") + n)).format(PromQueryFormat.TABLE)
                for n, (_, expr) in enumerate(columns)
            ]
        )
        .show_header(True)
        .cell_height(common.TableCellHeight.SM)
        .thresholds(at_least(limits.satisfaction_target))
        .with_transformation(dashboard.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            dashboard.DataTransformerConfig(
                id_val="organize",
                options={"excludeByName": {"Time": True}, "renameByName": names},
            )
        )
        .override_by_name(
            "Satisfaction",
            [
                dashboard.DynamicConfigValue(id_val="unit", value="percentunit"),
                dashboard.DynamicConfigValue(
                    id_val="custom.cellOptions", value={"type": "color-background"}
                ),
            ],
        )
    )


def transfers(selector: str) -> bargauge.Panel:
    moved = _increase(metrics.TICKETS_TRANSFERRED, selector, "$__range")
    expr = f"sum by (from_service, to_service) ({moved})"
    return bars(
        "Transfers (time range)", expr, "{{from_service}} → {{to_service}}", "none", steps(GREEN)
    ).description("Tickets referred from one service's queue to another's, where they wait again.")


def intercom_handoffs(selector: str) -> bargauge.Panel:
    family = metrics.INTERCOM_ACK_SECONDS
    by = "from_position, to_position"
    return bars(
        "Intercom call → acknowledgement (time range)",
        ratio(
            _increase(family, selector, "$__range", family.sum),
            _increase(family, selector, "$__range", family.count),
            by,
        ),
        "post {{from_position}} → {{to_position}}",
        "s",
        steps(GREEN, (30, YELLOW), (120, RED)),
    ).description(
        "Average time from a post's intercom call to the called post's acknowledgement "
        "(the greeter's VIP hand-off to post 7, a call for help); 'all': an all-call, "
        "answered by any post."
    )
