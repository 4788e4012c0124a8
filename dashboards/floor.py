"""Branch floor: one branch, live — posts, queues, counters, waits against target, ratings,
the floor notices the collector sent the branch (open, acknowledged, unanswered), and the
bank's own figures: average wait today and in the last hour, tellers, transfers, hand-offs.

The collector annotates this board (``[grafana]`` in its config) when a
required post is emptied or filled again; the annotations show on every
time-series panel, filtered to the branch on screen by their tags.
"""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import bargauge, statetimeline, timeseries
from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.models import dashboard

from branchwatch.contract import metrics
from branchwatch.contract.metrics import MetricFamily, bucket_label
from branchwatch.thresholds import Thresholds
from collector.notices.config import NoticesConfig
from dashboards.common import (
    BLUE,
    DATASOURCE,
    GREEN,
    ORANGE,
    RED,
    SERVICE_LEVEL_IS_OURS,
    YELLOW,
    at,
    at_least,
    bars,
    big_stat,
    label_variable,
    minutes,
    new_board,
    one_per_pair,
    query,
    region_variable,
    steps,
    tiles,
    trend,
    wait_buckets,
    wait_target_le,
    wait_thresholds,
)
from dashboards.figures import (
    DAY,
    GOOD,
    average_wait,
    average_wait_by_service,
    average_wait_colours,
    intercom_handoffs,
    tellers_today,
    transfers,
)

UID: Final = "branchwatch-floor"
B: Final = 'region="$region",branch="$branch"'
ANNOTATION_TAG: Final = "branchwatch"  # every annotation the collector posts carries it
# A notice unacknowledged this long escalates (the collector's default): red from there.
ACK_TIMEOUT: Final = NoticesConfig().ack_timeout_seconds
# How the outcomes of a notice are coloured wherever they are listed.
OUTCOME_COLOURS: Final = {
    "sent": BLUE,
    "acked": GREEN,
    "escalated": ORANGE,
    "unanswered": RED,
    "resolved": "purple",
}


def now(family: MetricFamily) -> str:
    """The branch's current series of a gauge family, an HA pair's two copies taken once."""
    return one_per_pair(family, f"{family.name}{{{B}}}")


def over_range(
    family: MetricFamily, series: str = "", matchers: str = "", window: str = "$__range"
) -> str:
    """The increase of a counter (or of a histogram's ``series``) over ``window`` (the time
    range), an HA pair's two copies taken once (per bucket for ``…_bucket``)."""
    series = series or family.name
    inside = f"{matchers},{B}" if matchers else B
    return one_per_pair(
        family,
        f"increase({series}{{{inside}}}[{window}])",
        bucket=series.endswith("_bucket"),
    )


def branch_variable() -> builders.QueryVariable:
    return label_variable(
        "branch", "Branch", f'label_values({metrics.BRANCH_OPEN.name}{{region="$region"}}, branch)'
    )


def incidents_annotation() -> builders.AnnotationQuery:
    """Grafana's own annotation store, this branch's floor incidents only (by tag)."""
    return (
        builders.AnnotationQuery()
        .name("Floor incidents")
        .datasource(dashboard.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
        .enable(True)
        .icon_color("red")
        .target(
            builders.AnnotationTarget()
            .type("tags")
            .tags([ANNOTATION_TAG, "region:$region", "branch:$branch"])
            .match_any(False)
            .limit(200)
        )
    )


def posts_timeline() -> statetimeline.Panel:
    return (
        statetimeline.Panel()
        .title("Posts 1–7: staffed or empty")
        .description(
            "Staff checked in at each post. Posts 1 (greeting) and 2 (self-service) must "
            "never be empty while the branch is open."
        )
        .datasource(DATASOURCE)
        .with_target(query(now(metrics.POSITION_STAFFED), "post {{position}}", instant=False))
        .thresholds(steps(RED, (1, GREEN)))
        .color_scheme(builders.FieldColor().mode(dashboard.FieldColorModeId.THRESHOLDS))
        .mappings(
            [
                dashboard.ValueMap(
                    options={"0": dashboard.ValueMappingResult(text="empty", color=RED)}
                ),
                dashboard.RangeMap(
                    options=dashboard.DashboardRangeMapOptions(
                        from_val=1,
                        to=99,
                        result=dashboard.ValueMappingResult(text="staffed", color=GREEN),
                    )
                ),
            ]
        )
        .merge_values(True)
        .row_height(0.85)
    )


def _fixed(colour: str) -> dashboard.DynamicConfigValue:
    return dashboard.DynamicConfigValue(
        id_val="color", value={"mode": "fixed", "fixedColor": colour}
    )


def within(le: str) -> str:
    """The tickets called within the bucket ``le`` over the time range, a pair counted once."""
    return over_range(metrics.WAIT_SECONDS, metrics.WAIT_SECONDS.bucket, f'le="{le}"')


def wait_distribution(limits: Thresholds, called: str) -> bargauge.Panel:
    """Share of tickets called within each wait bucket, one query per bucket, in order.

    One query per bound (not ``sum by (le)``) so the bars come in numeric order with
    readable names; the bound of the wait target is marked.
    """
    panel = bars(
        "Called within … (share of tickets, time range)",
        "",
        "",
        "percentunit",
        at_least(limits.service_level_target),
    ).targets(
        [
            query(
                f"sum({within(bucket_label(bound))}) / sum({called})",
                f"≤ {minutes(bound)}"
                + (" (target)" if bound == limits.wait_target_seconds else ""),
                ref_id=chr(ord("A") + index),
            )
            for index, bound in enumerate(wait_buckets(limits))
        ]
    )
    return panel.max(1).description(
        "Cumulative share of tickets called within each bound over the time range. The "
        f"{minutes(limits.wait_target_seconds)} (target) bar is the service level: red below "
        f"{limits.service_level_target:.0%}."
    )


def notice_outcomes() -> timeseries.Panel:
    panel = trend(
        "Floor notices, by outcome",
        f"sum by (outcome) ({over_range(metrics.NOTICES, window='$__rate_interval')})",
        "{{outcome}}",
        "none",
    ).description(
        "Notices the collector sent the branch's intercoms (all kinds), and what became of "
        "them: acknowledged, escalated to the next post, unanswered (the chain ended: "
        "on-call is paged for an empty post), resolved (the post was staffed again)."
    )
    for outcome, colour in OUTCOME_COLOURS.items():
        panel = panel.override_by_name(outcome, [_fixed(colour)])
    return panel


def notices_by_kind() -> bargauge.Panel:
    panel = bars(
        "Notices by kind and outcome (time range)",
        f"sum by (kind, outcome) ({over_range(metrics.NOTICES)})",
        "{{kind}} · {{outcome}}",
        "none",
        steps(GREEN),
    ).description(
        "post_empty: backfill notices for an empty required post; unsatisfied: follow-ups "
        "of an unsatisfied rating (acked = someone went to the customer); queue_long: "
        "'open a counter'."
    )
    for outcome, colour in OUTCOME_COLOURS.items():
        panel = panel.override_by_regexp(f".* · {outcome}", [_fixed(colour)])
    return panel


def ack_latency() -> bargauge.Panel:
    """p50 and p90 from notice to acknowledgement per kind; kinds never acknowledged drop
    out (``>= 0`` filters the NaN a quantile of no observations is)."""
    buckets = over_range(metrics.NOTICE_ACK_SECONDS, metrics.NOTICE_ACK_SECONDS.bucket)
    return (
        bars(
            "Notice → acknowledgement (time range)",
            "",
            "",
            "s",
            steps(GREEN, (ACK_TIMEOUT / 2, YELLOW), (ACK_TIMEOUT, RED)),
        )
        .targets(
            [
                query(
                    f"histogram_quantile({quantile}, sum by (kind, le) ({buckets})) >= 0",
                    f"{{{{kind}}}} p{round(quantile * 100)}",
                    ref_id=ref_id,
                )
                for ref_id, quantile in (("A", 0.5), ("B", 0.9))
            ]
        )
        .description(
            "How long staff take to acknowledge a notice on the intercom, per kind. Red at "
            f"the default ack timeout ({ACK_TIMEOUT:g} s): a notice not acknowledged by then "
            "escalates."
        )
    )


def build(limits: Thresholds) -> builders.Dashboard:
    ratings = over_range(metrics.EVALUATIONS)
    good = over_range(metrics.EVALUATIONS, matchers=GOOD)
    requested = over_range(metrics.EVALUATIONS_REQUESTED)
    called = over_range(metrics.WAIT_SECONDS, metrics.WAIT_SECONDS.count)
    waiting = now(metrics.QUEUE_WAITING)
    oldest = now(metrics.QUEUE_OLDEST_ISSUED)
    top = [
        big_stat(
            "Branch",
            now(metrics.BRANCH_OPEN),
            "none",
            steps(RED, (1, GREEN)),
        ).mappings(
            [
                dashboard.ValueMap(
                    options={
                        "0": dashboard.ValueMappingResult(text="closed", color="blue"),
                        "1": dashboard.ValueMappingResult(text="open", color=GREEN),
                    }
                )
            ]
        ),
        big_stat("Waiting now", f"sum({waiting})", "none", steps(GREEN)),
        big_stat(
            "Longest wait now",
            f"max(time() - {oldest}) or vector(0)",
            "s",
            wait_thresholds(limits),
        ),
        big_stat("Average wait today", average_wait(B, DAY), "s", average_wait_colours(limits)),
        big_stat("Average wait (1 h)", average_wait(B, "1h"), "s", average_wait_colours(limits)),
        big_stat(
            f"Called within {minutes(limits.wait_target_seconds)}",
            f"sum({within(wait_target_le(limits))}) / sum({called})",
            "percentunit",
            at_least(limits.service_level_target),
        ).description(SERVICE_LEVEL_IS_OURS),
        big_stat(
            "Satisfaction",
            f"sum({good}) / sum({ratings})",
            "percentunit",
            at_least(limits.satisfaction_target),
        ),
        big_stat(
            "Evaluation rate",
            f"sum({ratings}) / sum({requested})",
            "percentunit",
            at_least(limits.evaluation_rate_target),
        ),
    ]
    board = (
        new_board(
            "Branch floor",
            UID,
            (
                "One branch live: posts, queues, counters, waits against the "
                f"{minutes(limits.wait_target_seconds)} target, ratings. Red marks: the "
                "collector's floor incidents (required post emptied/filled)."
            ),
            tag="floor",
            refresh="10s",
            since="now-3h",
        )
        .with_variable(region_variable(multi=False))
        .with_variable(branch_variable())
        .annotation(incidents_annotation())
    )
    for column, panel in enumerate(top):
        board = board.with_panel(panel.grid_pos(at(3 * column, 0, 3, 4)))
    return (
        board.with_panel(posts_timeline().grid_pos(at(0, 4, 24, 7)))
        .with_panel(
            trend(
                "Customers waiting, by service",
                waiting,
                "{{service}}",
                "none",
            ).grid_pos(at(0, 11, 12, 8))
        )
        .with_panel(
            bars(
                "Oldest waiting ticket, by service",
                f"time() - {oldest}",
                "{{service}}",
                "s",
                wait_thresholds(limits),
            ).grid_pos(at(12, 11, 12, 8))
        )
        .with_panel(
            bars(
                "Counters",
                now(metrics.COUNTERS),
                "{{state}}",
                "none",
                steps(GREEN),
            ).grid_pos(at(0, 19, 6, 8))
        )
        .with_panel(wait_distribution(limits, called).grid_pos(at(6, 19, 9, 8)))
        .with_panel(
            bars(
                "Ratings per counter (time range)",
                f"sum by (counter, rating) ({ratings})",
                "{{counter}} · {{rating}}",
                "none",
                steps(GREEN),
            )
            .override_by_regexp(".* · unsatisfied", [_fixed(RED)])
            .override_by_regexp(".* · neutral", [_fixed(YELLOW)])
            .grid_pos(at(15, 19, 9, 8))
        )
        .with_panel(
            tiles(
                "Notices open now, by kind",
                now(metrics.NOTICE_OPEN),
                "{{kind}}",
                "none",
                steps(GREEN, (1, YELLOW)),
            ).grid_pos(at(0, 27, 6, 6))
        )
        .with_panel(
            big_stat(
                "Notice chain unanswered for",
                f"max(time() - {now(metrics.NOTICE_UNANSWERED)}) or vector(0)",
                "s",
                steps(GREEN, (1, RED)),
            ).grid_pos(at(6, 27, 4, 6))
        )
        .with_panel(notice_outcomes().grid_pos(at(10, 27, 14, 6)))
        .with_panel(notices_by_kind().grid_pos(at(0, 33, 12, 8)))
        .with_panel(ack_latency().grid_pos(at(12, 33, 12, 8)))
        .with_panel(average_wait_by_service(B, limits).grid_pos(at(0, 41, 8, 8)))
        .with_panel(tellers_today(B, limits).grid_pos(at(8, 41, 10, 8)))
        .with_panel(transfers(B).grid_pos(at(18, 41, 6, 8)))
        .with_panel(intercom_handoffs(B).grid_pos(at(0, 49, 12, 7)))
    )
