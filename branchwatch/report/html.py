"""The report as one self-contained HTML page: tables, inline SVG charts, print styles.

Nothing is loaded at view time (no script, font, stylesheet or image from anywhere):
the file can be mailed, archived and printed. Every text from Prometheus (region,
branch and teller ids) is escaped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from html import escape
from typing import Final

from branchwatch.report.charts import Bar, Chart, chart_svg
from branchwatch.report.figures import (
    NO_TELLER_DATA,
    RANKING_RULE,
    TELLER_RULE,
    BranchFigures,
    Check,
    Report,
    TargetName,
)
from branchwatch.report.query import GREETER_POST

TELLERS_SHOWN: Final = 50  # the rest are in the CSV and JSON
NONE: Final = "—"
STYLE: Final = """
body { font-family: sans-serif; margin: 24px auto; max-width: 1200px; color: #111;
       background: #fff; line-height: 1.4; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #999; margin-top: 1.6em; }
.meta { color: #444; margin: 0.2em 0; }
.partial { background: #fff3cd; padding: 4px 8px; display: inline-block; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.85em; }
th, td { border: 1px solid #bbb; padding: 3px 6px; text-align: right; }
th { background: #eee; text-align: left; vertical-align: bottom; }
td.name, th.name { text-align: left; }
td.miss { color: #b3261e; font-weight: bold; }
.star { border: 2px solid #111; padding: 8px 12px; display: inline-block; }
figure { margin: 0.8em 0; }
figure svg { width: 100%; max-width: 900px; height: auto; }
dt { font-weight: bold; margin-top: 0.4em; }
@page { margin: 12mm; }
@media print {
  body { margin: 0; max-width: none; }
  section, figure, tr { break-inside: avoid; }
  .partial { border: 1px solid #000; }
}
"""
TARGET_NAMES: Final[dict[TargetName, str]] = {
    "average_wait": "Average wait",
    "service_level": "Service level",
    "satisfaction": "Satisfaction",
    "evaluation_rate": "Evaluation rate",
}


def minutes(seconds: float | None) -> str:
    return NONE if seconds is None else f"{seconds / 60:.1f} min"


def percent(share: float | None) -> str:
    return NONE if share is None else f"{share * 100:.1f} %"


def sampled(value: float) -> str:
    """Sampled minutes: a decimal while small (a short spell is still seen)."""
    return f"{value:.1f} min" if value < 10 else f"{value:.0f} min"


def count(value: float | None) -> str:
    return NONE if value is None else f"{value:,.0f}"


def _when(instant: dt.datetime) -> str:
    return instant.strftime("%a %d %b %Y %H:%M")


def _cells(values: Sequence[str], classes: Sequence[str] = ()) -> str:
    padded = [*classes, *[""] * (len(values) - len(classes))]
    return "".join(
        f'<td class="{c}">{escape(v)}</td>' if c else f"<td>{escape(v)}</td>"
        for v, c in zip(values, padded, strict=True)
    )


def _table(head: Sequence[str], rows: Sequence[str]) -> str:
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _checked(check: Check, show: Callable[[float | None], str]) -> tuple[str, str]:
    """The value's text and its cell class: a missed target is marked in words too (print)."""
    text = show(check.value)
    return (f"{text} ✗", "miss") if check.met is False else (text, "num")


FIGURE_HEAD: Final = (
    "Targets missed",
    "Average wait",
    "Service level*",
    "Satisfaction",
    "Ratings ÷ requests",
    "Ratings ÷ served",
    "Walkouts",
    f"Post {GREETER_POST} empty",
    "Notices unanswered",
    "Devices down",
    "Tickets issued",
)


def _figure_cells(f: BranchFigures) -> tuple[list[str], list[str]]:
    c = f.counts
    checked = [
        _checked(f.checks["average_wait"], minutes),
        _checked(f.checks["service_level"], percent),
        _checked(f.checks["satisfaction"], percent),
        _checked(f.checks["evaluation_rate"], percent),
    ]
    values = [
        f"{f.missed} of {len(f.checks)}",
        *(text for text, _ in checked),
        percent(f.ratings_per_served),
        count(c.walkouts),
        sampled(c.post1_empty_minutes),
        count(c.notices_unanswered),
        f"{sampled(c.device_down_minutes)} ({c.devices_down})",
        count(c.issued),
    ]
    classes = ["num", *(cls for _, cls in checked)]
    return values, classes


def _branch_rows(figures: Sequence[BranchFigures]) -> list[str]:
    rows = []
    for f in figures:
        values, classes = _figure_cells(f)
        cells = _cells([str(f.rank), f.counts.region, f.counts.branch], ["", "name", "name"])
        rows.append(f"<tr>{cells}{_cells(values, classes)}</tr>")
    return rows


def _region_rows(report: Report) -> list[str]:
    branches: dict[str, int] = {}
    for f in report.branches:
        branches[f.counts.region] = branches.get(f.counts.region, 0) + 1
    rows = []
    for f in report.regions_figures:
        values, classes = _figure_cells(f)
        head = _cells([f.counts.region, str(branches.get(f.counts.region, 0))], ["name"])
        rows.append(f"<tr>{head}{_cells(values, classes)}</tr>")
    return rows


def _targets(report: Report) -> str:
    th = report.thresholds
    bank = "the bank's plan"
    rows = [
        ("Average wait per customer", f"≤ {minutes(th.average_wait_target_seconds)}", bank),
        (
            f"Service level: share called within {minutes(th.wait_target_seconds)}",
            f"≥ {percent(th.service_level_target)}",
            "our addition (not in the bank's plan)",
        ),
        ("Satisfaction (branches and tellers)", f"≥ {percent(th.satisfaction_target)}", bank),
        ("Evaluation rate: ratings ÷ requests", f"≥ {percent(th.evaluation_rate_target)}", bank),
    ]
    body = [f"<tr>{_cells(row, ['name', '', 'name'])}</tr>" for row in rows]
    return _table(("Figure", "Target", "Whose"), body)


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else value * scale


def _charts(report: Report) -> str:
    shown = report.branches[: report.worst]
    th = report.thresholds

    def bars(value: Callable[[BranchFigures], float | None], scale: float) -> list[Bar]:
        return [
            Bar(f"{f.counts.region}/{f.counts.branch}", _scaled(value(f), scale)) for f in shown
        ]

    charts = [
        Chart(
            "Average wait (the worst branches)",
            bars(lambda f: f.average_wait_seconds, 1 / 60),
            "min",
            digits=1,
            target=th.average_wait_target_seconds / 60,
        ),
        Chart(
            "Satisfaction: very satisfied or satisfied (the worst branches)",
            bars(lambda f: f.satisfaction, 100),
            "%",
            target=th.satisfaction_target * 100,
            lower_is_better=False,
        ),
        Chart(
            f"Post {GREETER_POST} empty while open, sampled (the worst branches)",
            bars(lambda f: f.counts.post1_empty_minutes, 1),
            "min",
            digits=1,
        ),
    ]
    if report.tellers:
        charts.append(
            Chart(
                "Tellers by satisfaction (the best)",
                [
                    Bar(f"{t.counts.teller} ({t.counts.branch})", _scaled(t.satisfaction, 100))
                    for t in report.tellers[: report.worst]
                ],
                "%",
                target=th.satisfaction_target * 100,
                lower_is_better=False,
            )
        )
    return "".join(
        f"<figure>{chart_svg(chart, f'chart{i}')}</figure>" for i, chart in enumerate(charts, 1)
    )


def _tellers(report: Report) -> str:
    if not report.has_teller_data:
        return f"<p>{escape(NO_TELLER_DATA.capitalize())}.</p>"
    parts = []
    star = report.service_star
    if star is not None:
        parts.append(
            f'<p class="star">Service star: <strong>{escape(star.counts.teller)}</strong> '
            f"({escape(star.counts.region)}/{escape(star.counts.branch)}), satisfaction "
            f"{percent(star.satisfaction)} over {count(star.counts.ratings)} ratings</p>"
        )
    rows = []
    for t in report.tellers[:TELLERS_SHOWN]:
        c = t.counts
        satisfaction = f"{percent(t.satisfaction)}{'' if t.meets_target else ' ✗'}"
        names = _cells([str(t.rank), c.region, c.branch, c.teller], ["", "name", "name", "name"])
        figures = _cells(
            [satisfaction, count(c.ratings), count(c.served), percent(t.ratings_per_served)],
            ["num" if t.meets_target else "miss"],
        )
        rows.append(f"<tr>{names}{figures}</tr>")
    head = ("Rank", "Region", "Branch", "Teller", "Satisfaction", "Ratings", "Served")
    parts.append(_table((*head, "Ratings ÷ served"), rows))
    if len(report.tellers) > TELLERS_SHOWN:
        parts.append(f"<p>{len(report.tellers)} tellers ranked; the CSV and JSON list all.</p>")
    parts.append(
        f"<p>Ranked: {escape(TELLER_RULE)}, among tellers with at least {report.min_ratings} "
        f"ratings; {len(report.tellers_unranked)} had fewer and are not ranked.</p>"
    )
    return "".join(parts)


def _definitions(report: Report) -> str:
    th = report.thresholds
    items = [
        (
            "Average wait",
            "wait from ticket issued (or transferred) to called, summed and "
            "divided by the tickets called in the period (the collector's wait histogram).",
        ),
        (
            "Service level*",
            f"share of called tickets called within "
            f"{minutes(th.wait_target_seconds)}. Our addition to the bank's figures.",
        ),
        ("Satisfaction", "ratings very satisfied or satisfied ÷ all ratings."),
        (
            "Evaluation rate",
            "ratings ÷ ratings requested on the evaluator pads (the bank's "
            "figure); ratings ÷ served counts ratings per ticket served.",
        ),
        (
            "Tellers",
            "satisfaction and ratings per teller (the pad's teller, else whoever "
            "served the rated ticket), and ratings ÷ the transactions the teller served.",
        ),
        ("Walkouts", "customers who left before being called."),
        (
            f"Post {GREETER_POST} empty",
            f"minutes the branch was open with nobody checked in at "
            f"post {GREETER_POST}, sampled every {report.step_seconds:g} s: each spell is exact to "
            "within one sample at each end.",
        ),
        ("Notices unanswered", "floor notice chains that ended with nobody acknowledging."),
        (
            "Devices down",
            "device-minutes a device or its agent was down while the branch was "
            "open (sampled like post 1), and how many devices were ever down.",
        ),
        (
            "Counts",
            "Prometheus' increase() over the period: it extrapolates to the period's "
            "edges, so counts may differ slightly from the collector's own totals.",
        ),
        ("Ranking", RANKING_RULE + "."),
    ]
    body = "".join(f"<dt>{escape(a)}</dt><dd>{escape(b)}</dd>" for a, b in items)
    return f"<dl>{body}</dl>"


def render_html(report: Report) -> str:
    period = report.period
    title = f"Branch service report, {period.kind} {period.label}"
    until = dt.datetime.fromtimestamp(report.window_end, period.start.tzinfo)
    scope = ", ".join(report.regions) if report.regions else "all regions"
    partial = (
        ""
        if report.complete
        else f'<p class="partial">The period is still running: figures up to {_when(until)}.</p>'
    )
    worst = report.branches[: report.worst]
    name_head = ("Rank", "Region", "Branch")
    sections = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">{escape(_when(period.start))} to {escape(_when(period.end))} '
        f"({escape(period.zone)}); {escape(scope)}; from {escape(report.prometheus)}</p>",
        partial,
        f"<section><h2>Targets</h2>{_targets(report)}</section>",
        "<section><h2>Regions</h2>"
        + _table(("Region", "Branches", *FIGURE_HEAD), _region_rows(report))
        + "</section>",
        f"<section><h2>The worst {len(worst)} branches</h2>"
        + _table((*name_head, *FIGURE_HEAD), _branch_rows(worst))
        + f"<p>Ranked {escape(RANKING_RULE)}. ✗ marks a missed target.</p></section>",
        f"<section><h2>Charts</h2>{_charts(report)}</section>",
        f"<section><h2>Tellers: the service star</h2>{_tellers(report)}</section>",
        "<section><h2>All branches, worst first</h2>"
        + _table((*name_head, *FIGURE_HEAD), _branch_rows(report.branches))
        + "</section>",
        f"<section><h2>What the figures mean</h2>{_definitions(report)}</section>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<link rel="icon" href="data:,"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>\n"
    )
