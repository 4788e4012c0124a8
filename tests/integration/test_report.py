"""``branchwatch report`` against a real Prometheus that scraped a simulated day.

A real Mosquitto, an HA pair of collectors and Prometheus scraping both (1 s); the
simulator (demo scenario: a thin-staffed branch that leaves post 1 empty, a busy one,
one whose printer runs out) plays 06:30 to the close of simulated time at 600× (about
65 s) and stops before the next day. The report for that calendar day is then made by the real
command and checked against what the collector itself says (its API and /metrics).

The day is read in a fixed-offset zone where it is about noon now, so the simulated
day never straddles that zone's midnight, whenever the suite runs.

Tolerances: counts come from Prometheus' ``increase()``, which extrapolates a
counter's rise a little past its last scrape and cannot see what a series counted
before its first scrape (a counter opened and rated within one scrape interval):
counts must be within 2 % + 3 of the collector's, ratios within 0.01.
"""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from branchwatch.broker import MOSQUITTO_PATHS, EmbeddedBroker
from branchwatch.config import parse_broker_url
from branchwatch.contract import metrics
from branchwatch.report.figures import NO_TELLER_DATA
from branchwatch.sim.profile import HOUR, SCENARIOS
from branchwatch.sim.publisher import SimPublisher, SimSettings
from collector.floor.config import FloorConfig
from tests.browser import open_page, screenshot_is_blank
from tests.promstack import PrometheusProcess
from tests.support import (
    CollectorProcess,
    Samples,
    rebuilt,
    require_binary,
    run_cli,
    wait_until,
)

pytestmark = pytest.mark.integration

SPEED = 600.0
# Simulated 06:30 (15 s of wall-clock time before the branches open at 09:00): a fresh
# collector holds an agent's events until its replay is in, which for a quiet agent is 10 s
# after the ask (collector/rebuild.py); the day must start on rebuilt collectors.
START_HOUR = 6.5
OPEN_HOUR = 9.0
REGIONS = ("north", "south")
BRANCHES = 3  # br-0001 north (post 1 left empty), br-0002 south (busy), br-0003 north
# Notices after 5 s of wall-clock time (50 simulated minutes): br-0001's 30 simulated
# minutes of post 1 empty (3 s) pass untold, so the sampled minutes have a spell to see.
NOTICES = "[notices]\npost_empty_seconds = 5\nack_timeout_seconds = 1\n"
NO_NOTICES = "[notices]\nenabled = false\n"
STEP = 1.0  # the report's sampling step: a simulated day lasts under a minute


def zone_at_noon(now: float) -> str:
    """A fixed-offset IANA zone in which ``now`` is between about 10:00 and 14:00."""
    offset = 12 - dt.datetime.fromtimestamp(now, dt.UTC).hour  # -11..12: zones that exist
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"  # POSIX signs: GMT-5 is UTC+5


@dataclass
class Day:
    prom: PrometheusProcess
    collector_api: dict[tuple[str, str], dict[str, Any]]
    collector_metrics: Samples
    zone: str
    workdir: Path
    open_seconds: dict[str, float]  # per branch, as the simulator played it

    made: dict[tuple[str, ...], Any] = field(default_factory=dict)

    def report(self, *extra: str, fmt: str = "json") -> Any:
        """The real command's output (JSON parsed, else the file); made once per arguments."""
        if (fmt, *extra) not in self.made:
            self.made[fmt, *extra] = self._run(fmt, extra)
        return self.made[fmt, *extra]

    def _run(self, fmt: str, extra: tuple[str, ...]) -> Any:
        out = self.workdir / f"report-{len(self.made)}.{fmt}"
        result = run_cli(
            "report", "--prometheus", self.prom.url, "--period", "day",
            "--timezone", self.zone, "--step", str(STEP), "--format", fmt,
            "--out", str(out), *extra,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return json.loads(out.read_text()) if fmt == "json" else out


def play_the_day(broker_url: str, rebuilt: Callable[[], bool]) -> dict[str, float]:
    """Run the simulator until every branch has opened and closed once; how long (wall-clock
    seconds, to within one tick) each branch was open. ``rebuilt`` must be true before the
    branches open."""
    settings = SimSettings(
        broker=parse_broker_url(broker_url),
        branches=BRANCHES,
        regions=REGIONS,
        speed=SPEED,
        seed=7,
        start_hour=START_HOUR,
        scenario="demo",
        tick=0.05,
    )
    # A long simulated night: a branch that closed early must not reopen while the last
    # one is still closing.
    nights = tuple(replace(p, night=12 * HOUR) for p in SCENARIOS["demo"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(SCENARIOS, "demo", nights)
        publisher = SimPublisher(settings)
    opened: dict[str, float] = {}
    closed: dict[str, float] = {}
    publisher.start()
    try:
        ready = False
        while len(closed) < BRANCHES:
            ready = ready or rebuilt()
            assert ready or publisher.sim_now() < OPEN_HOUR * HOUR, "collectors still rebuilding"
            assert publisher.sim_now() < 19 * HOUR, f"branches still open: {opened}, {closed}"
            publisher.tick()
            now = time.time()
            for (_, branch), agent in publisher.agents.items():
                if agent.sim.is_open:
                    opened.setdefault(branch, now)
                elif branch in opened:
                    closed.setdefault(branch, now)
            time.sleep(settings.tick)
    finally:
        publisher.stop()
    return {branch: closed[branch] - opened[branch] for branch in closed}


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Day]:
    require_binary("mosquitto", *MOSQUITTO_PATHS)
    workdir = tmp_path_factory.mktemp("report")
    with EmbeddedBroker("mosquitto") as mosquitto:
        # An HA pair: both collectors take every event, Prometheus scrapes both (every
        # series twice, one per instance); only the first sends floor notices.
        collectors = [
            collector_of(mosquitto.url, workdir / name, notices)
            for name, notices in (("primary", NOTICES), ("standby", NO_NOTICES))
        ]
        primary = collectors[0]
        try:
            scraped = [c.url for c in collectors]
            with PrometheusProcess(scraped, workdir=workdir / "prom") as prom:
                prom.wait_for_target_up()
                open_seconds = play_the_day(
                    mosquitto.url, lambda: all(rebuilt(c.metrics()) for c in collectors)
                )

                def all_closed() -> list[dict[str, Any]]:
                    branches: list[dict[str, Any]] = primary.api("/branches")["branches"]
                    closed = len(branches) == BRANCHES and not any(b["open"] for b in branches)
                    return branches if closed else []

                branches = wait_until(all_closed, 10, "the collector to see every branch closed")
                done = time.time()
                wait_until(
                    lambda: float(prom.query("min(timestamp(up))")[0]["value"][1]) >= done + 2,
                    10,
                    "two scrapes of both collectors after the day closed",
                )
                api = {
                    (b["region"], b["branch"]): primary.api(
                        f"/branches/{b['region']}/{b['branch']}"
                    )["branch"]
                    for b in branches
                }
                yield Day(prom, api, primary.metrics(), zone_at_noon(done), workdir, open_seconds)
        finally:
            for collector in collectors:
                collector.kill()


def collector_of(broker_url: str, state_dir: Path, config: str) -> CollectorProcess:
    state_dir.mkdir()
    (state_dir / "collector.toml").write_text(config)
    extra = ["--config", str(state_dir / "collector.toml")]
    return CollectorProcess(broker_url, state_dir, f"report-{state_dir.name}", extra).start()


def near(reported: float, actual: float) -> bool:
    return abs(reported - actual) <= 3 + 0.02 * abs(actual)


def metric_sum(samples: Samples, name: str, branch: str, **labels: str) -> float:
    return sum(
        value
        for (sample, pairs), value in samples.items()
        if sample == name
        and dict(pairs).get("branch") == branch
        and all(dict(pairs).get(k) == v for k, v in labels.items())
    )


def test_the_figures_match_the_collector(day: Day) -> None:
    report = day.report()
    rows = {(r["region"], r["branch"]): r for r in report["branches"]}
    assert set(rows) == set(day.collector_api)
    for key, api in day.collector_api.items():
        row, branch = rows[key], key[1]
        assert near(row["issued"], api["issued_total"]), (key, row, api)
        assert near(row["served"], api["served_total"]), (key, row, api)
        waits = sum(s["wait_count"] for s in api["services"])
        wait_seconds = sum(s["wait_sum"] for s in api["services"])
        assert waits > 0
        assert row["average_wait_seconds"] == pytest.approx(wait_seconds / waits, rel=0.02)
        walkouts = sum(s["lost"].get("walkout", 0) for s in api["services"])
        assert near(row["walkouts"], walkouts), (key, row, walkouts)
        assert near(row["ratings"], sum(api["ratings"].values())), (key, row, api["ratings"])
        assert row["satisfaction"] == pytest.approx(api["satisfaction"], abs=0.01)
        assert row["ratings_per_request"] == pytest.approx(api["evaluation_rate"], abs=0.01)
        assert row["ratings_per_served"] == pytest.approx(
            sum(api["ratings"].values()) / api["served_total"], abs=0.01
        )
        within = metric_sum(day.collector_metrics, metrics.WAIT_SECONDS.bucket, branch, le="900.0")
        assert row["service_level"] == pytest.approx(within / waits, abs=0.01)
        unanswered = metric_sum(
            day.collector_metrics, metrics.NOTICES.name, branch, outcome="unanswered"
        )
        assert near(row["notices_unanswered"], unanswered), (key, row, unanswered)


def test_an_ha_pair_is_counted_once(day: Day) -> None:
    copies = day.prom.query(f"count by (region, branch) ({metrics.TICKETS_ISSUED.name})")
    assert {float(c["value"][1]) for c in copies} == {2.0 * len(FloorConfig().services)}
    report = day.report()
    for row in report["branches"]:
        issued = day.collector_api[row["region"], row["branch"]]["issued_total"]
        assert near(row["issued"], issued), (row, issued)  # not twice as many


def test_sampled_minutes_cover_the_open_day(day: Day) -> None:
    report = day.report()
    step_minutes = STEP / 60
    for row in report["branches"]:
        open_minutes = day.open_seconds[row["branch"]] / 60
        assert row["open_minutes"] == pytest.approx(open_minutes, abs=2 * step_minutes), row
        assert 0 <= row["post1_empty_minutes"] <= row["open_minutes"]
        assert row["device_down_minutes"] == 0 and row["devices_down"] == 0  # the sim's stay up
    thin = next(r for r in report["branches"] if r["branch"] == "br-0001")
    # Its lobby manager leaves post 1 for 30 simulated minutes (3 s) a minute after opening:
    # at least 2 samples (rounded to 0.01 min).
    assert thin["post1_empty_minutes"] >= 2 * step_minutes - 0.005, thin


def test_branches_are_ranked_worst_first(day: Day) -> None:
    report = day.report("--worst", "2")
    ranked = report["branches"]
    assert [r["rank"] for r in ranked] == list(range(1, BRANCHES + 1))
    missed = [r["targets_missed"] for r in ranked]
    assert missed == sorted(missed, reverse=True)
    assert report["ranking"]["worst"] == 2
    regions = {r["region"]: r for r in report["regions"]}
    assert set(regions) == set(REGIONS)
    north = [r for r in ranked if r["region"] == "north"]
    assert regions["north"]["issued"] == pytest.approx(sum(r["issued"] for r in north), abs=0.2)
    assert report["period"]["complete"] is False  # the day in that zone is still running
    assert report["period"]["timezone"] == day.zone


def test_tellers_match_the_collector_and_rank_by_satisfaction(day: Day) -> None:
    report = day.report("--min-ratings", "1")
    tellers = report["tellers"]
    api = {
        (region, branch, t["teller"]): t
        for (region, branch), detail in day.collector_api.items()
        for t in detail["tellers"]
        if sum(t["ratings"].values()) or t["served"]
    }
    if not api:  # a collector without per-teller families: said, not failed
        assert tellers["note"] == NO_TELLER_DATA
        assert tellers["ranked"] == tellers["unranked"] == []
        return
    every = [*tellers["ranked"], *tellers["unranked"]]
    rows = {(t["region"], t["branch"], t["teller"]): t for t in every}
    assert set(rows) == set(api)
    for key, teller in api.items():
        row = rows[key]
        assert near(row["ratings"], sum(teller["ratings"].values())), (row, teller)
        assert near(row["served"], teller["served"]), (row, teller)
        if teller["satisfaction"] is not None:
            # increase() may miss or extrapolate a rating at the window's edges (the counts
            # above allow a few): with a teller's ~20 ratings one is 0.05 of the ratio.
            rated = sum(teller["ratings"].values())
            slack = max(0.01, 2 / rated)
            assert row["satisfaction"] == pytest.approx(teller["satisfaction"], abs=slack)
    satisfaction = [t["satisfaction"] for t in tellers["ranked"]]
    assert satisfaction == sorted(satisfaction, reverse=True)
    assert tellers["service_star"] == tellers["ranked"][0]
    assert tellers["note"] is None


def test_the_quarter_so_far_counts_the_day_once(day: Day) -> None:
    """A quarter is asked a day at a time (range query) plus the rest: the same counts."""
    by_day = {r["branch"]: r for r in day.report()["branches"]}
    result = run_cli(
        "report", "--prometheus", day.prom.url, "--period", "quarter", "--timezone", day.zone,
        "--format", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    quarter = json.loads(result.stdout)
    assert quarter["period"]["kind"] == "quarter"
    assert {r["branch"] for r in quarter["branches"]} == set(by_day)
    for row in quarter["branches"]:
        for figure in ("issued", "served", "ratings", "walkouts"):
            assert near(row[figure], by_day[row["branch"]][figure]), (figure, row)
        assert row["satisfaction"] == pytest.approx(by_day[row["branch"]]["satisfaction"], abs=0.01)


def test_one_region_only(day: Day) -> None:
    report = day.report("--region", "south")
    assert {r["region"] for r in report["branches"]} == {"south"}
    assert [r["region"] for r in report["regions"]] == ["south"]


def test_a_day_prometheus_holds_nothing_for_is_an_empty_report(day: Day) -> None:
    report = day.report("--date", "2020-01-01")
    assert report["branches"] == [] and report["regions"] == []
    assert report["period"]["complete"] is True
    page = day.report("--date", "2020-01-01", fmt="html").read_text()
    assert "no data in this period" in page


def test_an_unwritable_out_exits_2_after_asking_prometheus(day: Day) -> None:
    result = run_cli(
        "report", "--prometheus", day.prom.url, "--period", "day", "--timezone", day.zone,
        "--out", "/proc/branchwatch-report.html",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("branchwatch: error: --out /proc/branchwatch-report.html")


def test_csv_has_a_row_per_region_branch_and_teller(day: Day) -> None:
    text = day.report(fmt="csv").read_text()
    lines = text.splitlines()
    assert lines[0].startswith("period,level,rank,region,branch,teller,")
    levels = [line.split(",")[1] for line in lines[1:]]
    assert levels.count("region") == len(REGIONS)
    assert levels.count("branch") == BRANCHES


def test_the_html_report_renders_in_chromium(day: Day) -> None:
    page_path = day.report(fmt="html")
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(page_path.parent)
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{page_path.name}"
        with open_page(url) as (page, log):
            assert page.title().startswith("Branch service report, day ")
            # Average wait, satisfaction and post 1 charts (and tellers' when they exist).
            assert page.locator("figure svg").count() >= 3
            for chart in page.locator("figure svg").all():
                box = chart.bounding_box()
                assert box is not None and box["width"] > 300 and box["height"] > 100
            assert page.locator("figure svg rect, figure svg path").count() > 20  # bars drawn
            # Targets, regions, the worst branches and all branches at least.
            assert page.locator("table").count() >= 4
            rows = page.locator("section:has(h2:text('All branches')) tbody tr")
            assert rows.count() == BRANCHES
            assert "br-0001" in page.locator("body").inner_text()
            assert not screenshot_is_blank(page.screenshot(full_page=True))
            assert log.console_errors == []
            assert log.outside_requests == []
            assert log.failed_requests == []
    finally:
        server.shutdown()
        server.server_close()
