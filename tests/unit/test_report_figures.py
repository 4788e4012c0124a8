"""The report's figures and rankings, from counts (no Prometheus here)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from branchwatch.report.figures import (
    BranchCounts,
    TellerCounts,
    build_report,
    figures_of,
    rank_branches,
    rank_tellers,
    region_totals,
    teller_figures,
)
from branchwatch.report.period import period_of
from branchwatch.thresholds import DEFAULT_THRESHOLDS

TH = DEFAULT_THRESHOLDS  # average wait 15 min, service level 80 %, satisfaction 90 %, rate 80 %


def good_branch(branch: str, region: str = "north", **changes: float) -> BranchCounts:
    """100 customers called, all within target, 5 min average wait, every target met."""
    counts = BranchCounts(
        region=region,
        branch=branch,
        issued=110,
        served=100,
        waits=100,
        wait_seconds=100 * 300,
        within_target=100,
        ratings=90,
        good_ratings=85,
        requested=100,
        open_minutes=480,
    )
    for name, value in changes.items():
        setattr(counts, name, value)
    return counts


def test_figures_are_ratios_of_the_counts() -> None:
    f = figures_of(good_branch("b1", within_target=80, good_ratings=81), TH)
    assert f.average_wait_seconds == 300
    assert f.service_level == 0.8
    assert f.satisfaction == pytest.approx(0.9)
    assert f.ratings_per_request == 0.9
    assert f.ratings_per_served == 0.9
    assert f.post1_empty_share == 0
    assert {name: c.met for name, c in f.checks.items()} == {
        "average_wait": True,
        "service_level": True,  # 80 % meets "at least 80 %"
        "satisfaction": True,
        "evaluation_rate": True,
    }
    assert f.missed == 0


def test_no_data_is_not_zero_and_misses_nothing() -> None:
    f = figures_of(BranchCounts(region="north", branch="quiet"), TH)
    assert f.average_wait_seconds is None
    assert f.satisfaction is None
    assert f.ratings_per_request is None
    assert f.service_level is None
    assert all(check.met is None for check in f.checks.values())
    assert f.missed == 0


def test_a_missing_bucket_at_the_target_leaves_the_service_level_unknown() -> None:
    f = figures_of(good_branch("b1", within_target=None), TH)  # type: ignore[arg-type]
    assert f.service_level is None
    assert f.checks["service_level"].met is None


def test_targets_come_from_the_thresholds() -> None:
    strict = TH.replace(average_wait_target_seconds=240.0, satisfaction_target=0.95)
    f = figures_of(good_branch("b1"), strict)
    assert f.checks["average_wait"].met is False  # 5 min > 4 min
    assert f.checks["satisfaction"].met is False  # 94 % < 95 %
    assert f.missed == 2


def test_branches_rank_worst_first_by_the_documented_rule() -> None:
    branches = [
        good_branch("fine"),
        # Two targets missed: a 20 min wait and 70 % satisfaction.
        good_branch("two-missed", wait_seconds=100 * 1200, good_ratings=63),
        # One missed each; the tie goes to the higher wait against its target...
        good_branch("slow", wait_seconds=100 * 1500),
        good_branch("slower", wait_seconds=100 * 1800),
        # ...and among equal waits to the larger share of open time with post 1 empty,
        good_branch("unrated", ratings=50, good_ratings=50, post1_empty_minutes=48),
        good_branch("unrated-empty", ratings=50, good_ratings=50, post1_empty_minutes=96),
        # then the lower satisfaction, then more walkouts.
        good_branch("fine-but-walkouts", walkouts=9),
        good_branch("fine-less-satisfied", good_ratings=82),
    ]
    ranked = rank_branches(figures_of(b, TH) for b in branches)
    assert [f.counts.branch for f in ranked] == [
        "two-missed",
        "slower",
        "slow",
        "unrated-empty",
        "unrated",
        "fine-less-satisfied",
        "fine-but-walkouts",
        "fine",
    ]
    assert [f.rank for f in ranked] == list(range(1, 9))


def test_ties_fall_back_to_region_and_branch_names() -> None:
    branches = [good_branch("b2", "south"), good_branch("b1", "south"), good_branch("b9")]
    ranked = rank_branches(figures_of(b, TH) for b in branches)
    assert [(f.counts.region, f.counts.branch) for f in ranked] == [
        ("north", "b9"),
        ("south", "b1"),
        ("south", "b2"),
    ]


def test_a_region_adds_its_branches_counts() -> None:
    branches = [
        figures_of(good_branch("b1"), TH),
        figures_of(good_branch("b2", waits=50, wait_seconds=50 * 1200, within_target=10), TH),
        figures_of(good_branch("b3", "south", devices_down=2, device_down_minutes=30), TH),
    ]
    north, south = region_totals(branches, TH)
    assert (north.counts.region, north.counts.branch) == ("north", "")
    assert north.counts.waits == 150
    assert north.average_wait_seconds == (100 * 300 + 50 * 1200) / 150
    assert north.service_level == 110 / 150
    assert north.checks["service_level"].met is False
    assert south.counts.devices_down == 2 and south.counts.device_down_minutes == 30


def test_a_region_share_is_unknown_when_a_branch_with_waits_has_none() -> None:
    unknown = good_branch("b2", within_target=None)  # type: ignore[arg-type]
    quiet = BranchCounts(region="north", branch="b3")  # no waits, no bucket: no harm
    [north] = region_totals([figures_of(b, TH) for b in (good_branch("b1"), unknown)], TH)
    assert north.service_level is None
    [north] = region_totals([figures_of(b, TH) for b in (good_branch("b1"), quiet)], TH)
    assert north.service_level == 1.0


def teller(name: str, ratings: float, good: float, served: float = 100) -> TellerCounts:
    return TellerCounts("north", "b1", name, ratings=ratings, good_ratings=good, served=served)


def test_tellers_rank_by_satisfaction_among_those_rated_enough() -> None:
    tellers = [
        teller("ann", 20, 19),  # 95 %
        teller("bob", 40, 38),  # 95 %, more ratings: ahead of ann
        teller("cy", 30, 24),  # 80 %
        teller("dee", 5, 5),  # 100 % but too few ratings
        teller("eve", 0, 0, served=12),  # served, never rated
    ]
    ranked, unranked = rank_tellers((teller_figures(t, TH) for t in tellers), min_ratings=10)
    assert [t.counts.teller for t in ranked] == ["bob", "ann", "cy"]
    assert [t.rank for t in ranked] == [1, 2, 3]
    assert [t.meets_target for t in ranked] == [True, True, False]
    assert [t.counts.teller for t in unranked] == ["dee", "eve"]
    assert all(t.rank == 0 for t in unranked)
    assert ranked[0].ratings_per_served == 0.4


def test_the_report_names_the_service_star_or_says_there_is_no_teller_data() -> None:
    period = period_of("month", dt.date(2025, 3, 3), ZoneInfo("UTC"))

    rated = build_report(
        [good_branch("b1")],
        [teller("ann", 20, 19), teller("bob", 3, 3)],
        period=period,
        window_end=period.start.timestamp() + 3600,
        prometheus="http://prom:9090",
        regions=("north",),
        thresholds=TH,
        step_seconds=600,
    )
    assert rated.service_star is not None and rated.service_star.counts.teller == "ann"
    assert rated.has_teller_data
    assert not rated.complete
    silent = build_report(
        [good_branch("b1")],
        [],
        period=period,
        window_end=period.end.timestamp(),
        prometheus="http://prom:9090",
        regions=(),
        thresholds=TH,
        step_seconds=600,
    )
    assert silent.service_star is None
    assert not silent.has_teller_data
    assert silent.complete
