"""The demo's terminal view: a pure function from branch summaries to lines."""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from branchwatch.demo import alerts, notices, view
from branchwatch.demo.clock import SimClock
from branchwatch.demo.view import render
from branchwatch.sim.profile import HOUR, MINUTE
from branchwatch.thresholds import (
    DEFAULT_THRESHOLDS,
    GREETER_EMPTY_SECONDS_WITHOUT_NOTICES,
    Thresholds,
)
from collector.notices.view import EpisodeView, NoticeView

NOW = 1_800_000_000.0
# A deployment without floor notices: post 1 pages after 2 min (with notices: 10 min).
NOTICES_OFF = DEFAULT_THRESHOLDS.replace(
    greeter_empty_seconds=GREETER_EMPTY_SECONDS_WITHOUT_NOTICES
)
ANSI = re.compile(r"\x1b\[[0-9;]*m")

POST_NAMES = {
    1: "greeting and ticket desk",
    2: "self-service machines",
    3: "form desk and waiting area",
    4: "low counters",
    5: "high counters",
    6: "VIP high counter",
    7: "VIP wealth-management room",
}


def summary(branch: str = "br-0001", region: str = "north", **changes: Any) -> dict[str, Any]:
    """A branch summary as ``GET /api/v1/branches`` returns it."""
    staff = {1: ["mgr"], 2: ["deputy"], 3: ["director"], 4: ["t3", "t4"], 5: ["t1"], 6: [], 7: []}
    data: dict[str, Any] = {
        "region": region,
        "branch": branch,
        "open": True,
        "opened_ts": NOW - 3720,
        "last_event_ts": NOW - 2,
        "waiting_total": 7,
        "waiting": {"cash": 4, "non_cash": 2, "vip": 0, "corporate": 1},
        "oldest_wait_since": NOW - 362,
        "longest_wait_seconds": 362.0,
        "positions": [
            {
                "position": n,
                "name": POST_NAMES[n],
                "staff": people,
                "staffed": len(people),
                "since": NOW - 600,
                "required": n in (1, 2),
            }
            for n, people in staff.items()
        ],
        "empty_required": [],
        "counters": {"open": 5, "paused": 1, "closed": 1},
        # Running totals carry over across days; the view shows the business day's.
        "issued_total": 1130,
        "served_total": 1123,
        "lost_total": 40,
        "today": {
            "issued": 130,
            "served": 123,
            "lost": {"no_show": 1, "walkout": 3, "closed": 0},
            "avg_wait": 10.0,
        },
        "ratings": {"very_satisfied": 80, "satisfied": 22, "neutral": 7, "unsatisfied": 3},
        "satisfaction": 102 / 112,
        "evaluation_rate": 0.86,
        "agents": [
            {
                "agent": "edge-1",
                "up": True,
                "session": 3,
                "version": "0.1.0-sim",
                "spool_depth": 0,
                "last_seen": NOW - 2,
                "last_seq": 4711,
            }
        ],
        "devices": [
            {"agent": "edge-1", "device": "queue-1", "kind": "queue", "up": True, "faults": []},
            {"agent": "edge-1", "device": "pad-c1", "kind": "pad", "up": True, "faults": []},
        ],
    }
    data.update(changes)
    return data


def empty_post(data: dict[str, Any], post: int, for_seconds: float) -> dict[str, Any]:
    data = copy.deepcopy(data)
    for position in data["positions"]:
        if position["position"] == post:
            position.update(staff=[], staffed=0, since=NOW - for_seconds)
    data["empty_required"] = sorted({*data["empty_required"], post} & {1, 2})
    return data


def block(lines: list[str], branch: str) -> list[str]:
    start = next(i for i, line in enumerate(lines) if line.startswith(branch))
    return lines[start : start + 6]


def whole_block(lines: list[str], branch: str) -> list[str]:
    """The branch's lines: head, posts … devices, alerts and notices."""
    start = next(i for i, line in enumerate(lines) if ANSI.sub("", line).startswith(branch))
    return lines[start : start + 8]


def line(lines: list[str], label: str) -> str:
    return next(x for x in lines if x.strip().startswith(label))


def test_an_open_branch_reads_at_a_glance() -> None:
    lines = render({"now": NOW, "branches": [summary()]}, header=["branchwatch demo", "  API x"])
    assert lines[:2] == ["branchwatch demo", "  API x"]
    head, posts, queues, counters, ratings, devices = block(lines, "br-0001")
    assert head == "br-0001  north  OPEN for 1h02m   edge-1 up · last event 2s ago"
    assert posts.split() == ["posts", "1:1", "2:1", "3:1", "4:2", "5:1", "6:0", "7:0"]
    assert queues.split()[1:9] == ["cash", "4", "non_cash", "2", "vip", "0", "corporate", "1"]
    assert "waiting 7 · longest 6m02s" in queues
    assert "5 open · 1 paused · 1 closed" in counters
    assert "today: issued 130 · served 123 · lost 4" in counters
    assert "satisfaction 91% (112 ratings, 3 unsatisfied) · evaluated 86%" in ratings
    assert "2/2 up · no faults" in devices


def test_empty_post_1_is_marked_with_how_long() -> None:
    data = empty_post(summary(), 1, 133)
    posts = line(render({"now": NOW, "branches": [data]}), "posts")
    assert "1:EMPTY 2m13s !" in posts
    assert "2:1" in posts
    colored = line(
        render({"now": NOW, "branches": [data]}, color=True, thresholds=NOTICES_OFF), "posts"
    )
    assert "\x1b[1;31m1:EMPTY 2m13s !" in colored, "bold red once it would page (> 2 min)"
    short = line(render({"now": NOW, "branches": [empty_post(summary(), 1, 30)]}), "posts")
    assert "1:EMPTY 30s !" in short


def test_empty_post_2_and_optional_posts() -> None:
    posts = line(render({"now": NOW, "branches": [empty_post(summary(), 2, 400)]}), "posts")
    assert "2:EMPTY 6m40s !" in posts
    assert "6:0" in posts and "6:EMPTY" not in posts, "post 6 is not required"


def test_a_closed_branch_does_not_flag_its_empty_posts() -> None:
    data = empty_post(summary(open=False), 1, 5000)
    lines = render({"now": NOW, "branches": [data]})
    head = block(lines, "br-0001")[0]
    assert "CLOSED" in head and "OPEN" not in head
    assert "EMPTY" not in "\n".join(lines)
    assert line(lines, "posts").split()[1] == "1:0"


def test_missing_and_malformed_fields_render_as_dashes() -> None:
    lines = render({"now": NOW, "branches": [{"branch": "br-0009"}]})
    text = "\n".join(lines)
    head, posts, queues, counters, ratings, devices = block(lines, "br-0009")
    assert head == "br-0009  –  –   agent – · last event –"
    assert posts.split() == ["posts", "–"]
    assert "waiting – · longest –" in queues
    assert "– open · – paused · – closed" in counters
    assert "satisfaction – · evaluated –" in ratings
    assert devices.split() == ["devices", "–"]
    assert "None" not in text and "null" not in text

    odd = summary(
        open="yes",
        waiting="lots",
        counters=None,
        positions=[{"position": 1}, "post 2", {"position": 2, "staff": ["x"]}],
        satisfaction=float("nan"),
        longest_wait_seconds=float("inf"),
        agents=[{"agent": "edge-1"}],
        devices=[{"device": "queue-1", "faults": ["paper_out", 3]}],
    )
    odd_lines = render({"now": NOW, "branches": [odd]})
    head, posts, queues, counters, ratings, devices = block(odd_lines, "br-0001")
    assert "north  –" in head and "edge-1 –" in head
    assert posts.split() == ["posts", "1:–", "2:1"]
    assert queues.split()[1] == "–"
    assert "satisfaction – (112 ratings" in ratings
    assert "queue-1 paper_out" in devices


def test_no_data_yet() -> None:
    assert render(None) == ["no branches reported yet: waiting for the first events…"]
    assert render({"now": NOW, "branches": []}, header=["t"])[0] == "t"
    assert len(render({"branches": "nope"})) == 1


def test_branches_sorted_and_problems_shown() -> None:
    down = summary(
        "br-0002",
        "south",
        agents=[{"agent": "edge-1", "up": False, "last_seen": NOW - 400, "spool_depth": 12}],
        devices=[
            {"device": "queue-1", "kind": "queue", "up": True, "faults": ["paper_jam"]},
            {"device": "pad-c1", "kind": "pad", "up": False, "faults": []},
        ],
        longest_wait_seconds=25 * 60.0,
        satisfaction=0.8,
    )
    lines = render({"now": NOW, "branches": [down, summary()]})
    heads = [x for x in lines if x.startswith("br-")]
    assert [h.split()[0] for h in heads] == ["br-0001", "br-0002"]
    two = block(lines, "br-0002")
    assert "edge-1 DOWN (seen 6m40s ago) spool 12" in two[0]
    assert "longest 25m00s !" in two[2]
    assert "1/2 up (down: pad-c1) · faults: queue-1 paper_jam" in two[5]
    colored = block(render({"now": NOW, "branches": [down]}, color=True), "\x1b[1mbr-0002")
    assert "\x1b[31m80%\x1b[0m" in colored[4], "satisfaction below the 90 % target in red"


def test_plain_output_has_no_escape_codes_and_color_only_adds_them() -> None:
    data = {"now": NOW, "branches": [empty_post(summary(), 1, 200), summary("br-0002")]}
    plain = render(data)
    colored = render(data, color=True)
    assert not any("\x1b" in x for x in plain)
    assert [ANSI.sub("", x) for x in colored] == plain


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (59.9, "59s"), (61, "1m01s"), (7322, "2h02m")]
)
def test_durations(seconds: float, text: str) -> None:
    data = summary(longest_wait_seconds=seconds)
    assert f"longest {text}" in line(render({"now": NOW, "branches": [data]}), "queues")


# -- simulated time, thresholds, alerts and notices -------------------------------------------

AT_30X = SimClock(speed=30.0, wall_start=NOW - 120, start_hour=10.0)


def detail(**changes: Any) -> dict[str, Any]:
    """A branch detail (``GET /api/v1/branches/R/B``): a summary and what it adds."""
    data = summary(
        longest_wait_seconds=42.0,
        oldest_wait_since=NOW - 42,
        tickets=[
            {"ticket": "A001", "service": "cash", "state": "waiting", "wait_since": NOW - 42},
            {"ticket": "A002", "service": "cash", "state": "waiting", "wait_since": NOW - 10},
            {"ticket": "B001", "service": "non_cash", "state": "waiting", "wait_since": NOW - 8},
            {"ticket": "A000", "service": "cash", "state": "called", "wait_since": NOW - 900},
        ],
        services=[
            {"service": "cash", "wait_count": 3, "wait_sum": 30.0, "avg_wait": 10.0},
            {"service": "vip", "wait_count": 0, "wait_sum": 0.0, "avg_wait": None},
        ],
        evaluations=[
            {"counter": "c1", "requested": 7, "ratings": {"satisfied": 4}, "expired": 3},
            {"counter": "c2", "requested": 4, "ratings": {"unsatisfied": 3}, "expired": 0},
        ],
    )
    data.update(changes)
    return data


def lines_of(branch: dict[str, Any], **options: Any) -> dict[str, str]:
    """Label -> line body (colours kept) of one rendered branch; ``head`` is its first line."""
    rendered = whole_block(render({"now": NOW, "branches": [branch]}, **options), "br-0001")
    labelled = {"head": rendered[0]}
    for row in rendered[1:]:
        label, body = row.strip().split(" ", 1)  # labels are never coloured
        labelled[label] = body.strip()
    return labelled


def test_durations_are_simulated_time_and_the_clock_follows_the_simulator() -> None:
    data = empty_post(summary(longest_wait_seconds=42.0), 1, 6)
    shown = lines_of(data, clock=AT_30X)
    assert "OPEN for 31h00m" in shown["head"], "3720 wall seconds at 30x"
    assert "last event 1m00s ago" in shown["head"]
    assert shown["posts"].startswith("1:EMPTY 3m00s !")
    assert "longest 21m00s !" in shown["queues"]
    assert AT_30X.clock_text(NOW) == "day 1 11:00", "two wall minutes at 30x from 10:00"


def test_the_clock_runs_through_the_simulated_days() -> None:
    clock = SimClock(speed=60.0, wall_start=0.0, start_hour=10.0)
    assert clock.clock_text(0.0) == "day 1 10:00"
    assert clock.clock_text(7 * HOUR / 60) == "day 1 17:00"
    # 17:00 close, 2 min close-out, 5 min night: day 2 opens 7 simulated minutes later.
    assert clock.clock_text((7 * HOUR + 7 * MINUTE) / 60) == "day 2 09:00"
    assert clock.clock_text((7 * HOUR + 7 * MINUTE + 1.5 * HOUR) / 60) == "day 2 10:30"
    evening = SimClock(speed=1.0, wall_start=0.0, start_hour=18.0)
    assert evening.clock_text(60.0) == "day 1 08:56", "the night before the first opening"
    assert evening.clock_text(5 * MINUTE) == "day 1 09:00"
    assert SimClock().clock_text(NOW) is None, "no start known: no time of day"


def test_crossed_thresholds_are_listed_with_the_threshold() -> None:
    data = empty_post(detail(), 1, 192 / 30)  # 3m12s simulated
    data["devices"][0]["faults"] = ["paper_out"]
    shown = lines_of(data, clock=AT_30X, thresholds=NOTICES_OFF)
    assert shown["alerts"].split(" · ") == [
        "post 1 empty 3m12s > 2m",
        "cash oldest wait 21m00s > 20m warning",
        "queue-1 paper_out",
    ]
    assert "non_cash" not in shown["alerts"], "4 simulated minutes: nothing crossed"
    assert lines_of(detail(), clock=SimClock(speed=1.0))["alerts"] == "none"
    critical = lines_of(detail(), clock=SimClock(speed=45.0))["alerts"]
    assert "cash oldest wait 31m30s > 30m critical" in critical
    assert "average wait 7m30s > 15m" not in critical, "the average is 10 s x 45: below target"
    closed = lines_of(empty_post(detail(open=False), 1, 600), clock=AT_30X)
    assert closed["alerts"] == "none", "a closed branch crosses nothing"


def test_every_threshold_comes_from_the_thresholds_given() -> None:
    data = empty_post(detail(), 1, 192 / 30)
    relaxed = DEFAULT_THRESHOLDS.replace(
        greeter_empty_seconds=600.0,
        wait_target_seconds=1500.0,
        wait_warning_seconds=1500.0,
        wait_critical_seconds=3000.0,
        satisfaction_target=0.5,
        evaluation_rate_target=0.5,
    )
    strict = Thresholds(
        greeter_empty_seconds=60.0,
        wait_target_seconds=300.0,
        wait_warning_seconds=600.0,
        wait_critical_seconds=1200.0,
        average_wait_target_seconds=60.0,
        satisfaction_target=0.99,
        evaluation_rate_target=0.95,
    )
    as_default = lines_of(data, clock=AT_30X, color=True, thresholds=NOTICES_OFF)
    as_relaxed = lines_of(data, clock=AT_30X, color=True, thresholds=relaxed)
    as_strict = lines_of(data, clock=AT_30X, thresholds=strict)
    assert "\x1b[1;31m1:EMPTY 3m12s !" in as_default["posts"], "past 2 min: bold red"
    assert "\x1b[31m1:EMPTY 3m12s !" in as_relaxed["posts"], "not yet past 10 min: red only"
    assert "\x1b[33m21m00s !" in as_default["queues"], "past the 20-minute warning"
    assert "21m00s !" not in as_relaxed["queues"], "below a 25-minute warning"
    assert "\x1b[32m91%" in as_default["ratings"] and "\x1b[32m91%" in as_relaxed["ratings"]
    assert "\x1b[31m91%" in lines_of(data, color=True, thresholds=strict)["ratings"]
    assert "\x1b[33m70%" in as_default["ratings"], "7 of 10 finished requests < 80 %"
    assert "\x1b[33m70%" not in as_relaxed["ratings"]
    assert as_relaxed["alerts"] == "\x1b[32mnone\x1b[0m"
    assert as_strict["alerts"].split(" · ") == [
        "post 1 empty 3m12s > 1m",
        "cash oldest wait 21m00s > 20m critical",
        "average wait 5m00s > 1m target",
    ]


def test_view_modules_write_no_threshold_of_their_own() -> None:
    defaults = {getattr(DEFAULT_THRESHOLDS, name) for name in Thresholds.__struct_fields__}
    for module in (view, alerts, notices):
        tree = ast.parse(Path(str(module.__file__)).read_text())
        literals = {
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, int | float)
            and not isinstance(node.value, bool)
        }
        assert not literals & defaults, f"{module.__name__} repeats a threshold: use Thresholds"


def test_average_wait_shows_a_dash_until_a_ticket_is_called() -> None:
    none_called = detail(today={"issued": 1, "served": 0, "lost": {}, "avg_wait": None})
    assert lines_of(none_called)["queues"].endswith("· avg –")
    assert lines_of(detail(), clock=AT_30X)["queues"].endswith("· avg 5m00s")
    assert "avg" not in lines_of(summary())["queues"], "a summary has no average to show"


def test_evaluated_counts_finished_requests_so_a_pending_one_does_not_flicker() -> None:
    before = detail()
    after = copy.deepcopy(before)
    after["evaluations"][0]["requested"] += 1  # a rating asked for, not given yet
    after["evaluation_rate"] = 7 / 11  # the collector's figure dips meanwhile
    assert lines_of(before)["ratings"].endswith("evaluated 70%")
    assert lines_of(after)["ratings"].endswith("evaluated 70%")
    rated = copy.deepcopy(after)
    rated["evaluations"][0]["ratings"]["satisfied"] += 1
    assert lines_of(rated)["ratings"].endswith("evaluated 73%"), "8 of 11 finished"
    nothing_finished = detail(evaluations=[{"counter": "c1", "requested": 1, "ratings": {}}])
    assert lines_of(nothing_finished)["ratings"].endswith("evaluated –")


def episode(kind: str, since: float, *notices: NoticeView, **about: Any) -> dict[str, Any]:
    """An open episode as the branch detail's ``notices`` carries it (the API's own struct)."""
    fields: dict[str, Any] = dict.fromkeys(
        ("due", "unanswered_ts", "acked_by", "position", "counter", "teller", "ticket",
         "waited", "service")
    )  # fmt: skip
    fields.update({"stage": "backfill", **about})
    view = EpisodeView(kind=kind, since=since, notices=list(notices), **fields)  # type: ignore[arg-type]
    built: dict[str, Any] = msgspec.to_builtins(view)
    return built


def test_notices_area_shows_none_until_the_collector_sends_some() -> None:
    assert lines_of(summary())["notices"] == "(floor notices: none)", "field absent"
    assert lines_of(detail(notices=[]))["notices"] == "(floor notices: none)"
    assert lines_of(detail(notices="bad"))["notices"] == "(floor notices: none)"


def test_notices_show_each_open_episode_with_its_chain_in_simulated_time() -> None:
    told_3 = NoticeView("n1-1", 3, "edge-1", NOW - 2, NOW - 2 + 20 / 30, 3)
    told_4 = NoticeView("n2-1", 4, "edge-1", NOW - 1, None, None)
    post_1 = episode("post_empty", NOW - 2, told_3, told_4, position=1)
    shown = lines_of(detail(notices=[post_1]), clock=AT_30X)
    assert shown["notices"] == (
        "post 1 empty 1m00s — notice to post 3 (sent 10:59), acked after 20s by post 3"
        " — notice to post 4 (sent 10:59), not acked"
    )
    rating = episode(
        "unsatisfied", NOW - 1, NoticeView("n3-1", 3, "edge-1", NOW - 1, None, None),
        counter="c2", teller="teller-2", ticket="A012-d1", waited=40.0, stage="notified",
    )  # fmt: skip
    queue = episode(
        "queue_long", NOW - 4, NoticeView("n4-1", 3, "edge-1", NOW - 4, NOW - 3.5, 3),
        service="cash", stage="notified",
    )  # fmt: skip
    gone = episode("post_empty", NOW - 10, told_4, position=2, stage="unanswered")
    shown = lines_of(detail(notices=[rating, queue, gone]), clock=AT_30X, color=True)
    assert ANSI.sub("", shown["notices"]).split("  ·  ") == [
        "unsatisfied customer at c2, ticket A012-d1 (waited 20m00s)"
        " — notice to post 3 (sent 10:59), not acked",
        "cash queue too long 2m00s — notice to post 3 (sent 10:58), acked after 15s by post 3",
        "post 2 empty 5m00s — notice to post 4 (sent 10:59), not acked"
        " — unanswered: on-call's turn",
    ]
    assert "\x1b[1;31mpost 2 empty" in shown["notices"], "an exhausted chain is bold red"
    real_time = lines_of(detail(notices=[post_1]))["notices"]
    assert real_time.startswith("post 1 empty 2s — notice to post 3, acked after 0s by post 3")


def test_notice_totals_say_what_happened_between_two_looks() -> None:
    totals = {"sent": 7, "acked": 6, "escalated": 1, "resolved": 4}
    assert lines_of(detail(notice_totals=totals))["notices"] == (
        "none open  ·  so far: 7 sent · 6 acked · 1 escalated · 0 unanswered · 4 resolved"
    )
    post_1 = episode("post_empty", NOW - 2, position=1)
    shown = lines_of(detail(notices=[post_1], notice_totals=totals), clock=AT_30X)
    assert shown["notices"].startswith("post 1 empty 1m00s  ·  so far: 7 sent")
    assert lines_of(detail(notice_totals={}))["notices"] == "(floor notices: none)"
