"""What the three boards share: the datasource variable, targets, queries and panel styles.

The targets are not written here: every board is built from a
:class:`~branchwatch.thresholds.Thresholds` (the ``[thresholds]`` table of the
collector's config; ``branchwatch grafana build --config FILE``), so its colours,
titles and the ``le`` of its service-level queries match the collector and the
alert rules of the same deployment.
"""

from __future__ import annotations

from typing import Final

from grafana_foundation_sdk.builders import bargauge, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as builders
from grafana_foundation_sdk.models import common, dashboard
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from branchwatch.contract import metrics
from branchwatch.contract.metrics import MetricFamily, bucket_label
from branchwatch.thresholds import Thresholds
from collector.floor.config import FloorConfig

DATASOURCE_VARIABLE: Final = "datasource"
DATASOURCE: Final = dashboard.DataSourceRef(type_val="prometheus", uid="${datasource}")
TAGS: Final = ["branchwatch"]

BLUE: Final = "blue"
GREEN: Final = "green"
YELLOW: Final = "yellow"
ORANGE: Final = "orange"
RED: Final = "red"


# Shown wherever the service level is: the bank's plan measures the average wait.
SERVICE_LEVEL_IS_OURS: Final = (
    "Share of the called tickets that waited at most the wait target. Our addition: the "
    "bank's own figure is the average wait per business day (the average-wait tiles)."
)


def new_board(
    title: str, uid: str, description: str, *, tag: str, refresh: str, since: str
) -> builders.Dashboard:
    """A branchwatch board: tagged, read-only, browser time, the data source variable first."""
    return (
        builders.Dashboard(f"branchwatch · {title}")
        .uid(uid)
        .description(description)
        .tags([*TAGS, tag])
        .refresh(refresh)
        .time(since, "now")
        .timezone("browser")
        .readonly()
        .with_variable(datasource_variable())
    )


def datasource_variable() -> builders.DatasourceVariable:
    return builders.DatasourceVariable(DATASOURCE_VARIABLE).type("prometheus").label("Prometheus")


def label_variable(name: str, label: str, values_query: str) -> builders.QueryVariable:
    """A variable picking one of the values ``values_query`` (``label_values(...)``) lists."""
    return (
        builders.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(values_query)
        .refresh(dashboard.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard.VariableSort.ALPHABETICAL_ASC)
    )


def region_variable(multi: bool) -> builders.QueryVariable:
    variable = label_variable(
        "region", "Region", f"label_values({metrics.BRANCH_OPEN.name}, region)"
    )
    if multi:
        variable = variable.multi(True).include_all(True).all_value(".*")
    return variable


# The label Prometheus gives each scraped collector: the collector's own metrics are per
# collector on purpose (each twin of an HA pair has its own connection, lag, refusals).
INSTANCE: Final = "instance"


def one_per_pair(family: MetricFamily, expr: str, *, bucket: bool = False) -> str:
    """``max by (<the labels naming one thing>) (expr)``: one series per post, queue, agent…

    An HA pair of collectors exports every floor series twice, once per scraped
    ``instance``; keeping only the family's own labels (region, branch and what it adds,
    ``le`` for ``bucket`` series) makes the two copies one. ``expr`` reads the family
    alone (a selector, its ``rate``/``increase``, ``time() -`` it): merge before any sum
    or quantile, so the pair is counted once, never added up.
    """
    if family.scope != "branch":
        raise ValueError(f"{family.name} is per collector: keep it by {INSTANCE}")
    labels = (*family.all_labels, "le") if bucket else family.all_labels
    return f"max by ({', '.join(labels)}) ({expr})"


def per_collector(aggregation: str, expr: str, *labels: str) -> str:
    """``aggregation by (instance, labels…) (expr)``: a collector self-metric, one series per
    collector (legends name ``{{instance}}``), never merged across an HA pair."""
    return f"{aggregation} by ({', '.join((INSTANCE, *labels))}) ({expr})"


def query(
    expr: str, legend: str = "", ref_id: str = "A", instant: bool = True
) -> prometheus.Dataquery:
    built = prometheus.Dataquery().expr(expr).ref_id(ref_id)
    built = built.instant() if instant else built.range()
    if legend:
        built = built.legend_format(legend)
    return built


def steps(base: str, *levels: tuple[float, str]) -> builders.ThresholdsConfig:
    """Absolute thresholds: ``base`` below the first level, then each (value, colour)."""
    return (
        builders.ThresholdsConfig()
        .mode(dashboard.ThresholdsMode.ABSOLUTE)
        .steps(
            [
                dashboard.Threshold(value=None, color=base),
                *(dashboard.Threshold(value=value, color=colour) for value, colour in levels),
            ]
        )
    )


def wait_thresholds(limits: Thresholds) -> builders.ThresholdsConfig:
    """Green within the wait target, then yellow, orange from the warning, red when critical."""
    return steps(
        GREEN,
        (limits.wait_target_seconds, YELLOW),
        (limits.wait_warning_seconds, ORANGE),
        (limits.wait_critical_seconds, RED),
    )


def wait_buckets(limits: Thresholds) -> tuple[float, ...]:
    """The wait histogram's bounds as a default floor exports them (thresholds included)."""
    return FloorConfig().effective_wait_buckets(limits)


def wait_target_le(limits: Thresholds) -> str:
    """The ``le`` of the wait target's bucket, spelled as the collector exports it."""
    return bucket_label(limits.wait_target_seconds)


def minutes(seconds: float) -> str:
    """``900`` → ``15 min``: how the boards name a wait."""
    return f"{seconds / 60:g} min"


def percent(share: float) -> str:
    """``0.9`` → ``90 %``."""
    return f"{share * 100:g} %"


def at_least(target: float) -> builders.ThresholdsConfig:
    """Red below ``target``, green from it on (a share that must reach a target)."""
    return steps(RED, (target, GREEN))


def none_is_good() -> builders.ThresholdsConfig:
    """Green at 0, red from 1 (a count of problems)."""
    return steps(GREEN, (1, RED))


def _last() -> common_builders.ReduceDataOptions:
    return common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def big_stat(title: str, expr: str, unit: str, thresholds: builders.ThresholdsConfig) -> stat.Panel:
    """A tile readable from across a room: one number, the background in its colour."""
    return (
        stat.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .with_target(query(expr))
        .unit(unit)
        .thresholds(thresholds)
        .color_scheme(builders.FieldColor().mode(dashboard.FieldColorModeId.THRESHOLDS))
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(common.BigValueTextMode.VALUE)
        .justify_mode(common.BigValueJustifyMode.CENTER)
        .reduce_options(_last())
    )


def tiles(
    title: str, expr: str, legend: str, unit: str, thresholds: builders.ThresholdsConfig
) -> stat.Panel:
    """One tile per series (per region, per service…), name and value."""
    return (
        big_stat(title, expr, unit, thresholds)
        .targets([query(expr, legend)])
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
        .orientation(common.VizOrientation.HORIZONTAL)
    )


def bars(
    title: str, expr: str, legend: str, unit: str, thresholds: builders.ThresholdsConfig
) -> bargauge.Panel:
    """A ranked list of bars (worst first), coloured by threshold."""
    return (
        bargauge.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .with_target(query(expr, legend))
        .unit(unit)
        .min(0)
        .thresholds(thresholds)
        .color_scheme(builders.FieldColor().mode(dashboard.FieldColorModeId.THRESHOLDS))
        .display_mode(common.BarGaugeDisplayMode.BASIC)
        .orientation(common.VizOrientation.HORIZONTAL)
        .reduce_options(_last())
        .show_unfilled(True)
    )


def listing(title: str, expr: str, thresholds: builders.ThresholdsConfig) -> table.Panel:
    """The current series of an instant query as a table (labels as columns)."""
    return (
        table.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .with_target(query(expr).format(PromQueryFormat.TABLE))
        .thresholds(thresholds)
        .show_header(True)
        .cell_height(common.TableCellHeight.SM)
        .with_transformation(
            dashboard.DataTransformerConfig(
                id_val="organize",
                options={"excludeByName": {"Time": True, "__name__": True, "job": True}},
            )
        )
    )


def trend(title: str, expr: str, legend: str, unit: str) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .with_target(query(expr, legend, instant=False))
        .unit(unit)
        .min(0)
        .thresholds(steps(GREEN))
        .legend(_legend())
        .tooltip(_tooltip())
    )


def _legend() -> common_builders.VizLegendOptions:
    return (
        common_builders.VizLegendOptions()
        .display_mode(common.LegendDisplayMode.LIST)
        .placement(common.LegendPlacement.BOTTOM)
        .show_legend(True)
    )


def _tooltip() -> common_builders.VizTooltipOptions:
    return (
        common_builders.VizTooltipOptions()
        .mode(common.TooltipDisplayMode.MULTI)
        .sort(common.SortOrder.DESCENDING)
    )


def at(x: int, y: int, w: int, h: int) -> dashboard.GridPos:
    """A grid position: boards are laid out explicitly (24 columns), never flowed."""
    return dashboard.GridPos(x=x, y=y, w=w, h=h)
