"""The report's CSV, JSON and HTML shapes (the browser test is in tests/integration)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from zoneinfo import ZoneInfo

from branchwatch.report.charts import Bar, Chart, chart_svg
from branchwatch.report.figures import (
    NO_TELLER_DATA,
    RANKING_RULE,
    BranchCounts,
    Report,
    TellerCounts,
    build_report,
)
from branchwatch.report.html import render_html
from branchwatch.report.period import period_of
from branchwatch.report.tables import BRANCH_COLUMNS, CSV_COLUMNS, report_csv, report_json
from branchwatch.thresholds import DEFAULT_THRESHOLDS

HOSTILE = '<script>alert("x")</script>'


def branch(name: str, region: str = "north", wait: float = 300, good: float = 85) -> BranchCounts:
    return BranchCounts(
        region=region,
        branch=name,
        issued=110.4,
        served=100,
        walkouts=2,
        waits=100,
        wait_seconds=100 * wait,
        within_target=95,
        ratings=90,
        good_ratings=good,
        requested=100,
        open_minutes=480,
        post1_empty_minutes=12.5,
        notices_unanswered=1,
        device_down_minutes=7,
        devices_down=1,
    )


def make_report(tellers: list[TellerCounts] | None = None, **extra: str) -> Report:
    period = period_of("week", dt.date(2025, 3, 12), ZoneInfo("Asia/Shanghai"))
    branches = [branch("b1"), branch("b2", wait=1500), branch("b3", "south", good=60)]
    return build_report(
        branches,
        tellers if tellers is not None else [TellerCounts("north", "b1", "t-01", 20, 19, 40)],
        period=period,
        window_end=period.end.timestamp(),
        prometheus=extra.get("prometheus", "http://prom:9090"),
        regions=(),
        thresholds=DEFAULT_THRESHOLDS,
        step_seconds=300,
    )


def test_csv_is_one_table_of_regions_branches_and_tellers() -> None:
    rows = list(csv.DictReader(io.StringIO(report_csv(make_report()))))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [(r["level"], r["region"], r["branch"], r["teller"]) for r in rows] == [
        ("region", "north", "", ""),
        ("region", "south", "", ""),
        ("branch", "north", "b2", ""),  # worst first: misses the wait target
        ("branch", "south", "b3", ""),  # misses satisfaction, a shorter wait
        ("branch", "north", "b1", ""),
        ("teller", "north", "b1", "t-01"),
    ]
    assert {r["period"] for r in rows} == {"2025-W11"}
    worst = rows[2]
    assert (worst["rank"], worst["targets_missed"], worst["average_wait_met"]) == (
        "1",
        "1",
        "false",
    )
    assert worst["average_wait_seconds"] == "1500.0"
    assert worst["issued"] == "110.4"
    assert rows[5]["satisfaction"] == "0.95" and rows[5]["satisfaction_met"] == "true"


def test_json_holds_the_period_targets_rule_and_rows() -> None:
    body = json.loads(report_json(make_report()))
    assert body["period"] == {
        "kind": "week",
        "label": "2025-W11",
        "timezone": "Asia/Shanghai",
        "start": "2025-03-10T00:00:00+08:00",
        "end": "2025-03-17T00:00:00+08:00",
        "until": "2025-03-17T00:00:00+08:00",
        "complete": True,
    }
    assert body["targets"]["average_wait_seconds"] == 900
    assert body["ranking"] == {"worst": 10, "rule": RANKING_RULE}
    assert [b["branch"] for b in body["branches"]] == ["b2", "b3", "b1"]
    assert set(body["branches"][0]) == set(BRANCH_COLUMNS)
    assert body["regions"][0]["branch"] is None
    assert body["tellers"]["service_star"]["teller"] == "t-01"
    assert body["tellers"]["note"] is None


def test_no_teller_data_is_said_not_failed() -> None:
    report = make_report(tellers=[])
    assert json.loads(report_json(report))["tellers"]["note"] == NO_TELLER_DATA
    assert "No per-teller data in this period." in render_html(report)
    assert not [r for r in csv.DictReader(io.StringIO(report_csv(report))) if r["teller"]]


def test_the_html_is_self_contained_and_escapes_what_prometheus_said() -> None:
    tellers = [TellerCounts("north", "b1", HOSTILE, 20, 19, 40)]
    page = render_html(make_report(tellers, prometheus="http://prom:9090/?q=<b>"))
    assert HOSTILE not in page
    assert "&lt;script&gt;" in page
    assert "<b>" not in page
    # Nothing to fetch at view time: no script, no external stylesheet, image or font.
    assert "<script" not in page
    assert not re.search(r"""(src|href)=["'](?!#|data:)""", page)
    assert page.count("<svg") == 4  # wait, satisfaction, post 1 and the tellers
    assert page.count("<table") == 5  # targets, regions, worst, tellers, all branches
    assert "our addition" in page  # the service level is not the bank's figure
    assert "Service star" in page


def test_chart_ids_are_unique_across_one_page() -> None:
    page = render_html(make_report())
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)) > 20
    for ref in re.findall(r'href="#([^"]+)"|url\(#([^)]+)\)', page):
        assert (ref[0] or ref[1]) in ids


def test_a_chart_marks_missed_targets_and_shows_no_data() -> None:
    chart = Chart(
        "Average wait",
        [Bar("north/b1", 21.0), Bar("north/b2", 5.0), Bar("north/b3", None)],
        "min",
        digits=1,
        target=15.0,
    )
    svg = chart_svg(chart, "c")
    assert svg.startswith('<svg role="img" aria-label="Average wait"')
    assert "21.0 min" in svg and "target 15.0 min" in svg and "no data" in svg
    assert svg.count("fill: #b3261e") == 1  # one bar over target
    empty = chart_svg(Chart("Nothing", [], "%"), "e")
    assert "no data in this period" in empty
