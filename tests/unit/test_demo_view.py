"""The demo's terminal view: a pure function from branch summaries to lines."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from branchwatch.demo.view import render

NOW = 1_800_000_000.0
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
        "issued_total": 130,
        "served_total": 123,
        "lost_total": 4,
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


def line(lines: list[str], label: str) -> str:
    return next(x for x in lines if x.strip().startswith(label))


def test_an_open_branch_reads_at_a_glance() -> None:
    lines = render({"now": NOW, "branches": [summary()]}, title="branchwatch demo")
    assert lines[0] == "branchwatch demo"
    head, posts, queues, counters, ratings, devices = block(lines, "br-0001")
    assert head == "br-0001  north  OPEN for 1h02m   edge-1 up · last event 2s ago"
    assert posts.split() == ["posts", "1:1", "2:1", "3:1", "4:2", "5:1", "6:0", "7:0"]
    assert queues.split()[1:9] == ["cash", "4", "non_cash", "2", "vip", "0", "corporate", "1"]
    assert "waiting 7 · longest 6m02s" in queues
    assert "5 open · 1 paused · 1 closed" in counters
    assert "issued 130 · served 123 · lost 4" in counters
    assert "satisfaction 91% (112 ratings, 3 unsatisfied) · evaluated 86%" in ratings
    assert "2/2 up · no faults" in devices


def test_empty_post_1_is_marked_with_how_long() -> None:
    data = empty_post(summary(), 1, 133)
    posts = line(render({"now": NOW, "branches": [data]}), "posts")
    assert "1:EMPTY 2m13s !" in posts
    assert "2:1" in posts
    colored = line(render({"now": NOW, "branches": [data]}, color=True), "posts")
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
    assert render({"now": NOW, "branches": []}, title="t")[0] == "t"
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
