"""``branchwatch report``: a day's, week's, month's or quarter's figures from Prometheus."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from branchwatch.errors import ConfigError
from branchwatch.report.figures import DEFAULT_MIN_RATINGS, DEFAULT_WORST, Report, build_report
from branchwatch.report.html import render_html
from branchwatch.report.period import (
    LOCAL_ZONE,
    PERIOD_KINDS,
    Period,
    PeriodKind,
    parse_date,
    period_of,
    zone_named,
)
from branchwatch.report.query import (
    DEFAULT_TIMEOUT,
    Prometheus,
    Window,
    branch_counts,
    region_matcher,
    teller_counts,
)
from branchwatch.report.tables import report_csv, report_json
from branchwatch.thresholds import DEFAULT_THRESHOLDS, Thresholds, load_thresholds

log = logging.getLogger(__name__)

# Sampling step of the minute figures (post 1 empty, devices down, open time): each spell
# is exact to within one step at each end; a longer period takes a coarser step so a
# quarter of a region stays one affordable query.
DEFAULT_STEPS: Final[dict[PeriodKind, float]] = {
    "day": 60.0,
    "week": 300.0,
    "month": 600.0,
    "quarter": 900.0,
}
RENDERERS: Final[dict[str, Callable[[Report], str]]] = {
    "html": render_html,
    "csv": report_csv,
    "json": report_json,
}

EPILOG = """\
The period is the calendar day, the ISO week (Monday to Sunday), the month or the
calendar quarter that contains --date, from midnight to midnight in --timezone. A
period still running is reported up to now (the report says so).

examples:
  # last week's review, as HTML
  branchwatch report --prometheus http://prometheus:9090 --period week \\
      --date "$(date -d '7 days ago' +%F)" --timezone Asia/Shanghai --out review.html
  # this quarter's ranking of two regions, as CSV, with the deployment's targets
  branchwatch report --prometheus http://prometheus:9090 --period quarter \\
      --region north --region east --config /etc/branchwatch/collector.toml \\
      --format csv --out ranking.csv

See docs/reports.md for what each figure means and the ranking rule.
"""


def _date(text: str) -> dt.date:
    try:
        return parse_date(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--date ")) from None


def _positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be greater than 0, not {text}")
        return value

    return parse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument(
        "--prometheus", required=True, metavar="URL", help="Prometheus, e.g. http://host:9090"
    )
    parser.add_argument("--period", required=True, choices=PERIOD_KINDS, help="what to report")
    parser.add_argument(
        "--date",
        type=_date,
        metavar="YYYY-MM-DD",
        help="a day within the period (default: today in --timezone)",
    )
    parser.add_argument(
        "--timezone",
        default=LOCAL_ZONE,
        metavar="ZONE",
        help="where the period's midnights are, e.g. Asia/Shanghai (default: this machine's)",
    )
    parser.add_argument(
        "--region",
        action="append",
        metavar="R",
        help="only this region; repeat for more (default: every region)",
    )
    parser.add_argument(
        "--format",
        choices=tuple(RENDERERS),
        default="html",
        help="html: one self-contained page with charts; csv: one table; json (default: html)",
    )
    parser.add_argument("--out", metavar="FILE", help="write here (default: standard output)")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="the collector's config: its [thresholds] are the targets (default: the defaults)",
    )
    parser.add_argument(
        "--step",
        type=_positive(float),
        metavar="SECONDS",
        help="sampling step of the minute figures (default: "
        + ", ".join(f"{kind} {step:g}" for kind, step in DEFAULT_STEPS.items())
        + ")",
    )
    for flag, kind, default, metavar, what in (
        ("--min-ratings", int, DEFAULT_MIN_RATINGS, "N", "ratings a teller needs to be ranked"),
        ("--worst", int, DEFAULT_WORST, "N", "branches in the worst-first table and charts"),
        ("--timeout", float, DEFAULT_TIMEOUT, "SECONDS", "for each Prometheus query"),
    ):
        parser.add_argument(
            flag,
            type=_positive(kind),
            default=default,
            metavar=metavar,
            help=f"{what} (default: {default:g})",
        )


def make_report(
    prom: Prometheus,
    period: Period,
    *,
    now: float,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    regions: tuple[str, ...] = (),
    step: float | None = None,
    min_ratings: int = DEFAULT_MIN_RATINGS,
    worst: int = DEFAULT_WORST,
) -> Report:
    """Ask ``prom`` for ``period``'s figures (up to ``now`` while it runs) and rank them."""
    start = period.start.timestamp()
    if start >= now:
        raise ConfigError(f"the {period.kind} {period.label} has not started yet")
    at = period.until(now)
    step = step or DEFAULT_STEPS[period.kind]
    window = Window(prom, start, at, step, region_matcher(regions))
    branches = branch_counts(window, thresholds)
    tellers = teller_counts(window)
    return build_report(
        branches,
        tellers,
        period=period,
        window_end=at,
        prometheus=prom.url,
        regions=regions,
        thresholds=thresholds,
        step_seconds=step,
        min_ratings=int(min_ratings),
        worst=int(worst),
    )


def write_text(text: str, out: str | None) -> None:
    """To ``out`` whole (a reader never sees half a report), or to standard output."""
    if out is None:
        sys.stdout.write(text)
        return
    target = Path(out)
    temp: str | None = None
    try:
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(temp, target)
    except OSError as exc:
        if temp is not None:
            Path(temp).unlink(missing_ok=True)
        raise ConfigError(f"--out {out}: cannot write it: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    thresholds = load_thresholds(args.config) if args.config else DEFAULT_THRESHOLDS
    zone = zone_named(args.timezone)
    now = time.time()
    day = args.date or dt.datetime.fromtimestamp(now, zone).date()
    period = period_of(args.period, day, zone)
    prom = Prometheus(args.prometheus, args.timeout)
    report = make_report(
        prom,
        period,
        now=now,
        thresholds=thresholds,
        regions=tuple(args.region or ()),
        step=args.step,
        min_ratings=args.min_ratings,
        worst=args.worst,
    )
    write_text(RENDERERS[args.format](report), args.out)
    log.info(
        "%s %s: %d branches, %d tellers ranked%s",
        period.kind,
        period.label,
        len(report.branches),
        len(report.tellers),
        f", written to {args.out}" if args.out else "",
    )
    return 0
