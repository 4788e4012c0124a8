"""The report as rows (one place for column names and rounding), CSV and JSON.

CSV is one table a spreadsheet can filter: ``level`` says what a row is (``region``,
``branch`` in rank order, worst first, or ``teller`` in rank order), and every row
carries the ``period`` so weekly files can be appended. JSON holds the same rows
under ``regions``, ``branches`` and ``tellers``, with the period, the targets and the
ranking rule beside them.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any, Final

from branchwatch.report.figures import (
    NO_TELLER_DATA,
    RANKING_RULE,
    TARGETS,
    TELLER_RULE,
    BranchFigures,
    Report,
    TellerFigures,
)

Cell = str | int | float | bool | None
Row = dict[str, Cell]

BRANCH_COLUMNS: Final = (
    "rank",
    "region",
    "branch",
    "targets_missed",
    "issued",
    "served",
    "walkouts",
    "average_wait_seconds",
    "service_level",
    "satisfaction",
    "ratings",
    "ratings_per_request",
    "ratings_per_served",
    "open_minutes",
    "post1_empty_minutes",
    "post1_empty_share",
    "notices_unanswered",
    "device_down_minutes",
    "devices_down",
    *(f"{target}_met" for target in TARGETS),
)
TELLER_COLUMNS: Final = (
    "rank",
    "region",
    "branch",
    "teller",
    "ratings",
    "satisfaction",
    "served",
    "ratings_per_served",
    "satisfaction_met",
)
CSV_COLUMNS: Final = (
    "period",
    "level",
    *dict.fromkeys((*BRANCH_COLUMNS[:3], "teller", *BRANCH_COLUMNS[3:], *TELLER_COLUMNS[4:])),
)


def _share(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _minutes(value: float) -> float:
    return round(value, 2)


def _count(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def branch_row(f: BranchFigures) -> Row:
    """A branch's (or, with an empty ``branch``, a region's) figures."""
    c = f.counts
    row: Row = {
        "rank": f.rank or None,
        "region": c.region,
        "branch": c.branch or None,
        "targets_missed": f.missed,
        "issued": _count(c.issued),
        "served": _count(c.served),
        "walkouts": _count(c.walkouts),
        "average_wait_seconds": _seconds(f.average_wait_seconds),
        "service_level": _share(f.service_level),
        "satisfaction": _share(f.satisfaction),
        "ratings": _count(c.ratings),
        "ratings_per_request": _share(f.ratings_per_request),
        "ratings_per_served": _share(f.ratings_per_served),
        "open_minutes": _minutes(c.open_minutes),
        "post1_empty_minutes": _minutes(c.post1_empty_minutes),
        "post1_empty_share": _share(f.post1_empty_share),
        "notices_unanswered": _count(c.notices_unanswered),
        "device_down_minutes": _minutes(c.device_down_minutes),
        "devices_down": c.devices_down,
    }
    for target, check in f.checks.items():
        row[f"{target}_met"] = check.met
    return row


def teller_row(t: TellerFigures) -> Row:
    c = t.counts
    return {
        "rank": t.rank or None,
        "region": c.region,
        "branch": c.branch,
        "teller": c.teller,
        "ratings": _count(c.ratings),
        "satisfaction": _share(t.satisfaction),
        "served": _count(c.served),
        "ratings_per_served": _share(t.ratings_per_served),
        "satisfaction_met": t.meets_target,
    }


def _iso(instant: float, zone: dt.tzinfo | None) -> str:
    return dt.datetime.fromtimestamp(instant, zone).isoformat()


def report_json(report: Report) -> str:
    th = report.thresholds
    star = report.service_star
    body: dict[str, Any] = {
        "period": {
            "kind": report.period.kind,
            "label": report.period.label,
            "timezone": report.period.zone,
            "start": report.period.start.isoformat(),
            "end": report.period.end.isoformat(),
            "until": _iso(report.window_end, report.period.start.tzinfo),
            "complete": report.complete,
        },
        "source": {
            "prometheus": report.prometheus,
            "regions": list(report.regions),
            "sample_step_seconds": report.step_seconds,
        },
        "targets": {
            "average_wait_seconds": th.average_wait_target_seconds,
            "wait_target_seconds": th.wait_target_seconds,
            "service_level": th.service_level_target,
            "satisfaction": th.satisfaction_target,
            "evaluation_rate": th.evaluation_rate_target,
        },
        "ranking": {
            "worst": report.worst,
            "rule": RANKING_RULE,
        },
        "regions": [branch_row(f) for f in report.regions_figures],
        "branches": [branch_row(f) for f in report.branches],
        "tellers": {
            "min_ratings": report.min_ratings,
            "rule": TELLER_RULE,
            "service_star": teller_row(star) if star else None,
            "ranked": [teller_row(t) for t in report.tellers],
            "unranked": [teller_row(t) for t in report.tellers_unranked],
            "note": None if report.has_teller_data else NO_TELLER_DATA,
        },
    }
    return json.dumps(body, indent=2, ensure_ascii=False) + "\n"


def _csv_cell(value: Cell) -> Cell:
    """Booleans as JSON writes them (``true``/``false``), not Python's ``True``."""
    return str(value).lower() if isinstance(value, bool) else value


def report_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    rows: list[tuple[str, Row]] = [
        *(("region", branch_row(f)) for f in report.regions_figures),
        *(("branch", branch_row(f)) for f in report.branches),
        *(("teller", teller_row(t)) for t in (*report.tellers, *report.tellers_unranked)),
    ]
    for level, row in rows:
        cells = {name: _csv_cell(value) for name, value in row.items()}
        writer.writerow({"period": report.period.label, "level": level, **cells})
    return out.getvalue()
