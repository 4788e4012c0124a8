"""The bank's own service figures: the business day and the last hour, per branch, service and
teller, as recording rules, and the alert on the bank's average-wait target.

The collector's counters only grow (Prometheus needs that), so a day's figure is
``increase()`` over ``day_window`` (12 h): from before the opening up to now, the
whole day of a branch open at most that long and closed at least that long
overnight. A day rule reports only while the window still reaches back to the
day's opening (``branchwatch_branch_opened_timestamp_seconds``), so it never
shows a window that cut the morning off; it stays after closing until then,
with the day's final figure. The hour's rules are the last 60 minutes. The
API's ``today`` block (the collector's own count from the opening) is exact
whatever the hours; see docs/architecture.md.
"""

from __future__ import annotations

from typing import Final

from alerts.config import AlertConfig
from alerts.promql import BRANCH, duration, metric, number, ratio_beyond
from alerts.rule import WHERE, Rule, alert
from branchwatch.contract import metrics
from branchwatch.contract.metrics import bucket_label

HOUR: Final = 3600  # the "_1h" rules: their names say the window, so it is not configurable
GOOD: Final = 'rating=~"very_satisfied|satisfied"'
SERVICE: Final = f"{BRANCH}, service"
TELLER: Final = f"{BRANCH}, teller"


def day_started(cfg: AlertConfig) -> str:
    """The join that keeps a day figure while its window reaches back to the opening."""
    opened = metric(cfg, metrics.BRANCH_OPENED.name)
    return f"and on({BRANCH}) (time() - max by ({BRANCH}) ({opened}) <= {cfg.day_window})\n"


def _ratio(num: str, den: str, by: str) -> str:
    return f"sum by ({by}) ({num})\n/\n(sum by ({by}) ({den}) > 0)\n"


def _record(name: str, expr: str) -> Rule:
    return {"record": name, "expr": expr}


def _windows(cfg: AlertConfig) -> tuple[tuple[str, str, str], ...]:
    """(name suffix, range, extra join) of the hour's and the day's rules."""
    return (("1h", duration(HOUR), ""), ("day", duration(cfg.day_window), day_started(cfg)))


def wait_rules(cfg: AlertConfig) -> list[Rule]:
    """Average wait (``_sum`` / ``_count`` of the wait histogram) and the service level."""
    le = f'le="{bucket_label(cfg.thresholds.wait_target_seconds)}"'
    rules = []
    for suffix, window, join in _windows(cfg):
        waited = f"increase({metric(cfg, metrics.WAIT_SECONDS.sum)}[{window}])"
        called = f"increase({metric(cfg, metrics.WAIT_SECONDS.count)}[{window}])"
        within = f"increase({metric(cfg, metrics.WAIT_SECONDS.bucket, le)}[{window}])"
        rules += [
            _record(
                f"branch_service:branchwatch_wait_seconds:avg_{suffix}",
                _ratio(waited, called, SERVICE) + join,
            ),
            _record(
                f"branch:branchwatch_wait_seconds:avg_{suffix}",
                _ratio(waited, called, BRANCH) + join,
            ),
            _record(
                f"branch:branchwatch_service_level:ratio_{suffix}",
                _ratio(within, called, BRANCH) + join,
            ),
        ]
    return rules


def rating_rules(cfg: AlertConfig) -> list[Rule]:
    """Satisfaction and evaluation rates of the day, per branch and per teller."""
    day, join = duration(cfg.day_window), day_started(cfg)

    def inc(name: str, *matchers: str) -> str:
        return f"increase({metric(cfg, name, *matchers)}[{day}])"

    ratings = inc(metrics.EVALUATIONS.name)
    teller_ratings = inc(metrics.TELLER_EVALUATIONS.name)
    good = inc(metrics.EVALUATIONS.name, GOOD)
    teller_good = inc(metrics.TELLER_EVALUATIONS.name, GOOD)
    requested = inc(metrics.EVALUATIONS_REQUESTED.name)
    served = inc(metrics.TELLER_SERVED.name)
    transactions = inc(metrics.SERVICE_SECONDS.count)
    # record -> (numerator, denominator, per): each a ratio over the day, joined to its start.
    ratios = {
        "branch:branchwatch_satisfaction:ratio_day": (good, ratings, BRANCH),
        "branch:branchwatch_evaluation_rate:ratio_day": (ratings, requested, BRANCH),
        "branch:branchwatch_evaluations_per_transaction:ratio_day": (ratings, transactions, BRANCH),
        "branch_teller:branchwatch_teller_satisfaction:ratio_day": (
            teller_good,
            teller_ratings,
            TELLER,
        ),
        "branch_teller:branchwatch_teller_evaluations_per_transaction:ratio_day": (
            teller_ratings,
            served,
            TELLER,
        ),
    }
    return [_record(name, _ratio(num, den, per) + join) for name, (num, den, per) in ratios.items()]


def average_wait_alert(cfg: AlertConfig) -> Rule:
    target = cfg.thresholds.average_wait_target_seconds
    day = duration(cfg.day_window)
    waited = f"increase({metric(cfg, metrics.WAIT_SECONDS.sum)}[{day}])"
    called = f"increase({metric(cfg, metrics.WAIT_SECONDS.count)}[{day}])"
    expr = ratio_beyond(
        waited, called, BRANCH, f"> {number(target)}", cfg.average_wait_min_tickets, cfg
    )
    return alert(
        cfg,
        "BranchwatchAverageWaitHigh",
        expr + day_started(cfg),
        cfg.average_wait_for_seconds,
        "warning",
        "service",
        f"{WHERE}: customers waited {{{{ $value | humanizeDuration }}}} on average today "
        f"(target {duration(int(target))})",
        f"The average wait of the tickets called at branch {WHERE} since it opened today is "
        f"{{{{ $value | humanizeDuration }}}}, above the bank's target of {duration(int(target))} "
        f"(at least {cfg.average_wait_min_tickets} tickets called). Open more counters, move "
        "simple business to the self-service machines; the floor board shows the waits per "
        "service for the day and the last hour.",
    )


def rules(cfg: AlertConfig) -> Rule:
    group: Rule = {"name": "branchwatch-day"}
    if cfg.recording_interval_seconds is not None:
        group["interval"] = duration(cfg.recording_interval_seconds)
    group["rules"] = [*wait_rules(cfg), *rating_rules(cfg), average_wait_alert(cfg)]
    return group
