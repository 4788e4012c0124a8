"""The lobby screen in headless chromium: a real collector fed over a real Mosquitto.

The collector runs with basic auth on (the API refuses anonymous requests) and the
screen refreshing every second; the scripted branch day of tests/integration/scenario.py
is published up to just before closing. Estimates are worked out by hand below.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from branchwatch.broker import EmbeddedBroker
from branchwatch.contract import events as ev
from collector.httpsecurity import hash_password
from tests.browser import open_page, screenshot_is_blank
from tests.integration import scenario
from tests.integration.scenario import AGENT, BRANCH, REGION, T0
from tests.support import CollectorProcess, FakeAgent, wait_until

pytestmark = pytest.mark.integration
_ids = itertools.count()

SCREEN: Final = f"/screen/{REGION}/{BRANCH}"
# Staff ids and teller names the scenario puts on the floor: none may reach the screen.
STAFF: Final = sorted(
    {
        value
        for _, _, fields in scenario.SCRIPT
        for key, value in fields.items()
        if key in ("teller", "staff")
    }
)
# Before closing: waiting cash A004, vip C001, corporate D001; c1 (high) open and idle,
# c2 (low) paused since T0 + 730, long enough ago to be overdue.
# Cash counter time: call -> end of A001 190, A002 (no-show) 20, B001 70: median 70; the
# service-time histogram's mean (180 + 60) / 2 = 120; (3 x 70 + 3 x 120) / 6 + 15 = 110 s.
# Cash: A004 on c1 (idle): a ticket taken now waits 110 s: "about 2 min".
# Corporate and non-cash (low counters): c2 back 300 s from now (overdue), D001 takes it
# for 300 + 15 s (no corporate data): 615 s, "about 11 min". VIP: no VIP counter.
EXPECTED: Final = {
    "cash": ("1", "about 2 min"),
    "non_cash": ("0", "about 11 min"),
    "vip": ("1", "not served now"),
    "corporate": ("1", "about 11 min"),
}


@pytest.fixture
def collector(mosquitto: EmbeddedBroker, tmp_path: Path) -> Iterator[CollectorProcess]:
    config = tmp_path / "collector.toml"
    config.write_text(
        "[screen]\nrefresh_seconds = 1.0\n"
        f'[http.basic_auth_users]\nprometheus = "{hash_password(b"secret", cost=4)}"\n'
    )
    extra = ["--config", str(config)]
    proc = CollectorProcess(mosquitto.url, tmp_path, f"test-screen-{next(_ids)}", extra).start()
    yield proc
    proc.kill()


@pytest.fixture
def agent(mosquitto: EmbeddedBroker, collector: CollectorProcess) -> Iterator[FakeAgent]:
    fake = FakeAgent(mosquitto.port, REGION, BRANCH, AGENT)
    fake.publish(scenario.events(1, scenario.OPEN_PART))
    wait_until(lambda: waiting(collector) == {"cash": 1, "non_cash": 0, "vip": 1, "corporate": 1})
    yield fake
    fake.close()


def screen_json(collector: CollectorProcess, query: str = "") -> Any:
    status, body = collector.get(f"{SCREEN}.json{query}")
    assert status == 200, body
    return json.loads(body)


def waiting(collector: CollectorProcess) -> dict[str, int]:
    return {line["service"]: line["waiting"] for line in screen_json(collector)["services"]}


def row_text(page: Any, service: str, column: str) -> str:
    text: str = page.inner_text(f'tr[data-service="{service}"] td.{column}')
    return " ".join(text.split())


def staff_named(text: str) -> list[str]:
    return [who for who in STAFF if re.search(rf"(?<![\w-]){re.escape(who)}(?![\w-])", text)]


def test_the_screen_shows_each_queue_and_follows_the_floor_without_reload(
    collector: CollectorProcess, agent: FakeAgent
) -> None:
    assert STAFF == ["s1", "t1", "t2"]
    with open_page(collector.url + SCREEN) as (page, log):
        assert not screenshot_is_blank(page.screenshot())
        for service, (count, estimate) in EXPECTED.items():
            assert row_text(page, service, "waiting") == f"{count} waiting", service
            assert row_text(page, service, "estimate") == estimate, service
        assert page.inner_text("#calls li:first-child").split() == ["B001", "counter", "c1"]
        assert page.is_hidden("#status")
        # A004 has waited past the warning threshold: the hint, whole on screen.
        hint = page.locator("#hint").bounding_box()
        assert hint is not None and hint["y"] + hint["height"] <= 1080
        # Numbers in large type: at least 5 % of the viewport's height.
        # Queried and measured in one step of the page's own thread: a poll that redraws
        # the rows in between would leave a detached element (no computed size).
        size = page.evaluate(
            """() => parseFloat(getComputedStyle(
                document.querySelector('tr[data-service="cash"] td.waiting .num')).fontSize)"""
        )
        assert size >= 0.05 * 1080

        # A new cash ticket: two waiting, and the second waits twice 110 s (220 s).
        issued = ev.TicketIssued(
            v=1, seq=scenario.OPEN_PART + 1, ts=T0 + 800, device="queue-1", ticket="A005",
            service="cash",
        )  # fmt: skip
        agent.publish([issued])
        page.wait_for_function(
            """() => document.querySelector('tr[data-service="cash"] td.waiting .num')
                .textContent === "2" """,
            timeout=10_000,
        )
        assert row_text(page, "cash", "estimate") == "about 4 min"
        text = page.inner_text("body")
        assert log.console_errors == []
        assert log.outside_requests == []
        assert log.failed_requests == []
    assert staff_named(text) == []
    raw = json.dumps(screen_json(collector))
    assert staff_named(raw) == [] and "teller" not in raw and "staff" not in raw


def test_the_screen_speaks_chinese_when_asked(
    collector: CollectorProcess, agent: FakeAgent
) -> None:
    with open_page(collector.url + SCREEN + "?lang=zh") as (page, log):
        assert page.get_attribute("html", "lang") == "zh-CN"
        assert row_text(page, "cash", "name") == "现金"
        assert row_text(page, "cash", "waiting") == "1人等候"
        assert row_text(page, "cash", "estimate") == "约2分钟"
        assert row_text(page, "vip", "estimate") == "暂停办理"
        assert page.inner_text("#calling") == "正在叫号"
        assert "自助设备" in page.inner_text("#hint")
        # Its refreshes keep the language (the JSON is asked with the page's query).
        page.wait_for_function(
            "() => performance.getEntriesByType('resource')"
            ".some(e => e.name.endsWith('.json?lang=zh'))",
            timeout=10_000,
        )
        assert row_text(page, "cash", "waiting") == "1人等候"
        assert log.console_errors == []
        assert log.outside_requests == []
    assert screen_json(collector, "?lang=zh")["services"][0]["name"] == "现金"


def test_the_screen_is_open_while_the_api_needs_credentials(
    collector: CollectorProcess, agent: FakeAgent
) -> None:
    assert collector.get(f"/api/v1/branches/{REGION}/{BRANCH}")[0] == 401
    assert collector.get("/metrics")[0] == 401
    status, body = collector.get(SCREEN)
    assert status == 200 and body.startswith(b"<!doctype html>")
    assert screen_json(collector)["open"] is True
    # An unknown branch gets a page that says so; a bad id or language, a clear refusal.
    with open_page(collector.url + f"/screen/{REGION}/br-9999") as (page, log):
        assert page.inner_text("#status") == "No figures for this branch yet."
        assert log.console_errors == []
    assert collector.get("/screen/North/x")[0] == 404
    status, body = collector.get(SCREEN + "?lang=fr")
    assert (status, body) == (400, b"lang must be one of en, zh, got 'fr'\n")
