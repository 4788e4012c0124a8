"""Report periods: calendar days, ISO weeks, months and quarters, in a zone or the local one."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest

from branchwatch.errors import ConfigError
from branchwatch.report.period import midnight, parse_date, period_of, zone_named

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")


def test_a_day_runs_from_midnight_to_midnight_in_its_zone() -> None:
    day = period_of("day", dt.date(2025, 3, 14), SHANGHAI)
    assert day.label == "2025-03-14"
    assert day.zone == "Asia/Shanghai"
    assert day.start.isoformat() == "2025-03-14T00:00:00+08:00"
    assert day.end.isoformat() == "2025-03-15T00:00:00+08:00"
    # Shanghai's midnight is 16:00 UTC the evening before.
    assert day.start.timestamp() == dt.datetime(2025, 3, 13, 16, tzinfo=dt.UTC).timestamp()
    assert day.seconds == 86400


@pytest.mark.parametrize(
    ("date", "hours"),
    [(dt.date(2025, 3, 30), 23), (dt.date(2025, 10, 26), 25), (dt.date(2025, 7, 1), 24)],
)
def test_a_day_across_a_clock_change_lasts_23_or_25_hours(date: dt.date, hours: int) -> None:
    assert period_of("day", date, BERLIN).seconds == hours * 3600


@pytest.mark.parametrize(
    ("date", "label", "monday"),
    [
        (dt.date(2025, 3, 16), "2025-W11", dt.date(2025, 3, 10)),  # a Sunday
        (dt.date(2025, 3, 10), "2025-W11", dt.date(2025, 3, 10)),  # its Monday
        (dt.date(2024, 12, 31), "2025-W01", dt.date(2024, 12, 30)),  # ISO year ahead
        (dt.date(2021, 1, 3), "2020-W53", dt.date(2020, 12, 28)),  # ISO year behind
    ],
)
def test_a_week_is_the_iso_week_monday_first(date: dt.date, label: str, monday: dt.date) -> None:
    week = period_of("week", date, UTC)
    assert week.label == label
    assert week.start.date() == monday
    assert week.end.date() == monday + dt.timedelta(days=7)
    assert week.start.weekday() == 0


def test_a_week_across_the_spring_change_lasts_one_hour_less() -> None:
    assert period_of("week", dt.date(2025, 3, 30), BERLIN).seconds == 7 * 86400 - 3600


@pytest.mark.parametrize(
    ("date", "label", "first", "after"),
    [
        (dt.date(2025, 2, 14), "2025-Q1", dt.date(2025, 1, 1), dt.date(2025, 4, 1)),
        (dt.date(2025, 6, 30), "2025-Q2", dt.date(2025, 4, 1), dt.date(2025, 7, 1)),
        (dt.date(2025, 11, 15), "2025-Q4", dt.date(2025, 10, 1), dt.date(2026, 1, 1)),
    ],
)
def test_a_quarter_is_the_calendar_quarter(
    date: dt.date, label: str, first: dt.date, after: dt.date
) -> None:
    quarter = period_of("quarter", date, SHANGHAI)
    assert (quarter.label, quarter.start.date(), quarter.end.date()) == (label, first, after)
    assert quarter.start == midnight(first, SHANGHAI)


def test_december_runs_into_january() -> None:
    month = period_of("month", dt.date(2025, 12, 24), UTC)
    assert (month.label, month.start.date(), month.end.date()) == (
        "2025-12",
        dt.date(2025, 12, 1),
        dt.date(2026, 1, 1),
    )


@pytest.fixture
def local_zone_is_new_york() -> Iterator[None]:
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        yield
    finally:
        if previous is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = previous
        time.tzset()


@pytest.mark.usefixtures("local_zone_is_new_york")
def test_without_a_zone_the_machines_rules_for_that_date_apply() -> None:
    assert zone_named("local") is None
    winter = period_of("day", dt.date(2025, 1, 15), None)
    summer = period_of("day", dt.date(2025, 7, 15), None)
    assert winter.start.utcoffset() == dt.timedelta(hours=-5)
    assert summer.start.utcoffset() == dt.timedelta(hours=-4)  # not today's offset
    assert winter.zone == "EST"
    assert period_of("day", dt.date(2025, 3, 9), None).seconds == 23 * 3600


def test_until_is_the_end_or_now_while_the_period_runs() -> None:
    day = period_of("day", dt.date(2025, 3, 14), UTC)
    noon = day.start.timestamp() + 12 * 3600
    assert day.until(noon) == noon
    assert day.until(day.end.timestamp() + 99) == day.end.timestamp()


@pytest.mark.parametrize("text", ["2025-02-30", "14/03/2025", "yesterday", ""])
def test_a_bad_date_is_a_config_error_naming_it(text: str) -> None:
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        parse_date(text)


def test_an_unknown_zone_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        zone_named("Mars/Olympus")
    assert zone_named("Asia/Shanghai") == SHANGHAI
