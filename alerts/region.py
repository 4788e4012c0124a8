"""Region aggregates: the recording rules the wall board and a global Prometheus read.

A regional Prometheus scrapes an HA pair of collectors, so it holds every floor series
twice, once per ``instance``. Every rule here first keeps one copy of each series
(``max by`` the labels that name it: branch and service, counter, device…) and only
then sums over the region, so a pair counts once and losing one twin changes no value.

Shares are recorded with their numerator and denominator (``…:increase_1h``,
``…:increase_12h``, ``…:increase_day``): the bank-wide share is then a ratio of sums
of the regions' figures, where a mean of the regions' shares would weigh a region of
ten branches like one of two thousand. A global Prometheus federates exactly these
series (``match[]={__name__=~"region:.*"}``, ``deploy/prometheus/global.yml``), a few
per region; the names are therefore an interface, like the metric names.

Windows: ``1h`` the last hour; ``12h`` the alert config's ``day_window`` (the wall's
satisfaction and evaluation rate); ``day`` the same window, kept per branch only while
it reaches back to the branch's opening (the bank's average wait today, as in
:mod:`alerts.day`).
"""

from __future__ import annotations

from typing import Final

from alerts.config import AlertConfig
from alerts.day import GOOD, HOUR, day_started
from alerts.promql import BRANCH, duration, metric
from alerts.rule import Rule
from branchwatch.contract import metrics
from branchwatch.contract.metrics import bucket_label

SERVICE: Final = f"{BRANCH}, service"
# The recorded names (the wall board reads them, dashboards/wall.py).
# Recorded first: the count rules add a 0 for every region that has branches, so a
# region with nothing wrong shows 0 rather than no tile at all.
BRANCHES_OPEN: Final = "region:branchwatch_branches_open:sum"
QUEUE_WAITING: Final = "region:branchwatch_queue_waiting:sum"
GREETER_POST_EMPTY: Final = "region:branchwatch_branches_greeter_post_empty:sum"
OLDEST_WAIT: Final = "region:branchwatch_queue_oldest_wait_seconds:max"
CALLED_1H: Final = "region:branchwatch_wait_seconds_count:increase_1h"
WITHIN_TARGET_1H: Final = "region:branchwatch_wait_seconds_within_target:increase_1h"
WAITED_1H: Final = "region:branchwatch_wait_seconds_sum:increase_1h"
CALLED_TODAY: Final = "region:branchwatch_wait_seconds_count:increase_day"
WAITED_TODAY: Final = "region:branchwatch_wait_seconds_sum:increase_day"
RATINGS_12H: Final = "region:branchwatch_evaluations:increase_12h"
SATISFIED_12H: Final = "region:branchwatch_evaluations_satisfied:increase_12h"
REQUESTS_12H: Final = "region:branchwatch_evaluations_requested:increase_12h"
SERVICE_LEVEL: Final = "region:branchwatch_service_level:ratio"
SATISFACTION: Final = "region:branchwatch_satisfaction:ratio"
DEVICES_DOWN: Final = "region:branchwatch_devices_down_or_faulty:count"
NOTICE_UNANSWERED: Final = "region:branchwatch_branches_notice_unanswered:count"
NOTICES_SENT_1H: Final = "region:branchwatch_notices_sent:increase_1h"


def _one_copy(by: str, expr: str, join: str = "") -> str:
    """The region's sum of ``expr`` with an HA pair's two copies of a series taken once."""
    if join:
        return f"sum by (region) (\n  max by ({by}) ({expr})\n  {join}\n)\n"
    return f"sum by (region) (max by ({by}) ({expr}))\n"


def _or_zero(expr: str) -> str:
    return f"{expr.rstrip()}\nor 0 * {BRANCHES_OPEN}\n"


def _ratio(num: str, den: str) -> str:
    return f"{num}\n/\n({den} > 0)\n"


def rules(cfg: AlertConfig) -> list[Rule]:
    """The region rules in evaluation order (a rule may read the ones before it)."""
    hour, twelve = duration(HOUR), duration(cfg.day_window)
    today = day_started(cfg).rstrip("\n")
    within = f'le="{bucket_label(cfg.thresholds.wait_target_seconds)}"'
    greeter = f'position="{cfg.greeter_post}"'
    rated = f"{BRANCH}, counter, rating"
    counter = f"{BRANCH}, counter"

    def inc(name: str, window: str, *matchers: str) -> str:
        return f"increase({metric(cfg, name, *matchers)}[{window}])"

    wait = metrics.WAIT_SECONDS
    down = f"{metric(cfg, metrics.DEVICE_UP.name)} == 0"
    faulty = f"{metric(cfg, metrics.DEVICE_FAULT.name)} == 1"
    open_now = f"{metric(cfg, metrics.BRANCH_OPEN.name)} == 1"
    sent = inc(metrics.NOTICES.name, hour, 'outcome="sent"')
    record = {
        BRANCHES_OPEN: _one_copy(BRANCH, metric(cfg, metrics.BRANCH_OPEN.name)),
        QUEUE_WAITING: _one_copy(SERVICE, metric(cfg, metrics.QUEUE_WAITING.name)),
        GREETER_POST_EMPTY: (
            "sum by (region) (\n"
            f"  max by ({BRANCH}) ({metric(cfg, metrics.POSITION_STAFFED.name, greeter)}"
            " == bool 0)\n"
            f"  * on({BRANCH}) max by ({BRANCH}) ({metric(cfg, metrics.BRANCH_OPEN.name)})\n"
            ")\n"
        ),
        # The longest wait of a ticket still waiting (no copy issue: a max of a max).
        OLDEST_WAIT: _or_zero(
            f"max by (region) (time() - {metric(cfg, metrics.QUEUE_OLDEST_ISSUED.name)})"
        ),
        CALLED_1H: _one_copy(SERVICE, inc(wait.count, hour)),
        WITHIN_TARGET_1H: _one_copy(SERVICE, inc(wait.bucket, hour, within)),
        WAITED_1H: _one_copy(SERVICE, inc(wait.sum, hour)),
        CALLED_TODAY: _one_copy(SERVICE, inc(wait.count, twelve), today),
        WAITED_TODAY: _one_copy(SERVICE, inc(wait.sum, twelve), today),
        RATINGS_12H: _one_copy(rated, inc(metrics.EVALUATIONS.name, twelve)),
        SATISFIED_12H: _one_copy(rated, inc(metrics.EVALUATIONS.name, twelve, GOOD)),
        REQUESTS_12H: _one_copy(counter, inc(metrics.EVALUATIONS_REQUESTED.name, twelve)),
        SERVICE_LEVEL: _ratio(WITHIN_TARGET_1H, CALLED_1H),
        SATISFACTION: _ratio(SATISFIED_12H, RATINGS_12H),
        # A device down and each of its faults count apart.
        DEVICES_DOWN: _or_zero(
            "count by (region) (\n"
            f"  max by ({BRANCH}, agent, device, kind, fault) (({down}) or ({faulty}))\n)"
        ),
        NOTICE_UNANSWERED: _or_zero(
            "count by (region) (\n"
            f"  max by ({BRANCH}) ({metric(cfg, metrics.NOTICE_UNANSWERED.name)})\n"
            f"  and on({BRANCH}) {open_now}\n)"
        ),
        NOTICES_SENT_1H: _or_zero(_one_copy(f"{BRANCH}, kind", sent)),
    }
    return [{"record": name, "expr": expr} for name, expr in record.items()]


def region(cfg: AlertConfig) -> Rule:
    """The ``branchwatch-region`` group (``alerts/rules/region.rules.yml``)."""
    group: Rule = {"name": "branchwatch-region"}
    if cfg.recording_interval_seconds is not None:
        group["interval"] = duration(cfg.recording_interval_seconds)
    group["rules"] = rules(cfg)
    return group
