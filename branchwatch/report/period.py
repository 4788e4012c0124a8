"""Report periods: a calendar day, ISO week, month or quarter in a time zone, as instants.

A period is bounded by local midnights of the zone it is read in, so a day across a
daylight-saving change lasts 23 or 25 hours and a report for it covers exactly that.
Without a zone the machine's local zone applies (its rules for that date, not today's
offset).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from branchwatch.errors import ConfigError

PeriodKind = Literal["day", "week", "month", "quarter"]
PERIOD_KINDS: Final[tuple[PeriodKind, ...]] = get_args(PeriodKind)
LOCAL_ZONE: Final = "local"  # --timezone's default: the machine's zone


@dataclass(frozen=True)
class Period:
    """``[start, end)`` of one calendar period, both timezone-aware."""

    kind: PeriodKind
    label: str  # "2025-03-14", "2025-W11", "2025-03", "2025-Q1"
    zone: str  # the zone's name as given, or the local zone's abbreviation
    start: dt.datetime
    end: dt.datetime

    @property
    def seconds(self) -> float:
        return self.end.timestamp() - self.start.timestamp()

    def until(self, now: float) -> float:
        """Where the report's window ends: the period's end, or ``now`` while it runs."""
        return min(self.end.timestamp(), now)


def parse_date(text: str) -> dt.date:
    """``YYYY-MM-DD`` (a calendar date) or :class:`ConfigError` naming what is wrong."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--date {text!r} is not a date: use YYYY-MM-DD") from None


def zone_named(name: str) -> dt.tzinfo | None:
    """The IANA zone ``name`` (``Asia/Shanghai``, ``UTC``); ``local``: None (the machine's)."""
    if name == LOCAL_ZONE:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"--timezone {name!r} is not a known time zone (e.g. Asia/Shanghai, UTC)"
        ) from None


def midnight(day: dt.date, zone: dt.tzinfo | None) -> dt.datetime:
    """The first instant of ``day`` in ``zone`` (None: the machine's zone, its rules that day)."""
    naive = dt.datetime(day.year, day.month, day.day)
    # astimezone() on a naive time reads it as local time with that date's offset.
    return naive.astimezone() if zone is None else naive.replace(tzinfo=zone)


def _first_of_month(year: int, month: int) -> dt.date:
    """Month ``month`` of ``year``, where month 13 is January of the next year."""
    return dt.date(year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


def period_of(kind: PeriodKind, day: dt.date, zone: dt.tzinfo | None) -> Period:
    """The ``kind`` period containing ``day``: the day itself, its ISO week (Monday first),
    its month or its calendar quarter."""
    if kind == "day":
        first, after, label = day, day + dt.timedelta(days=1), day.isoformat()
    elif kind == "week":
        year, week, weekday = day.isocalendar()
        first = day - dt.timedelta(days=weekday - 1)
        after, label = first + dt.timedelta(days=7), f"{year}-W{week:02d}"
    elif kind == "month":
        first = dt.date(day.year, day.month, 1)
        after, label = _first_of_month(day.year, day.month + 1), f"{day.year}-{day.month:02d}"
    elif kind == "quarter":
        quarter = (day.month - 1) // 3 + 1
        first = dt.date(day.year, 3 * quarter - 2, 1)
        after, label = _first_of_month(day.year, 3 * quarter + 1), f"{day.year}-Q{quarter}"
    else:
        raise ConfigError(f"--period {kind!r}: expected one of {', '.join(PERIOD_KINDS)}")
    start, end = midnight(first, zone), midnight(after, zone)
    zone_name = str(zone) if zone is not None else start.tzname() or LOCAL_ZONE
    return Period(kind=kind, label=label, zone=zone_name, start=start, end=end)
