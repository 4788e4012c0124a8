"""The lobby screen's answers, views and settings (the browser test is in integration/)."""

from __future__ import annotations

import json
import threading
from typing import Any

import msgspec
import pytest

from branchwatch.contract import events as ev
from branchwatch.errors import ConfigError
from collector.config import CollectorConfig, ScreenConfig
from collector.floor.config import FloorConfig
from collector.notices.config import NoticesConfig
from collector.notices.texts import Language
from collector.screen import LobbyScreen, screen_name
from collector.store import Store

NOW = 2000.0


class Floor:
    """A store with one branch r1/b1, opened at 1000, fed one event at a time."""

    def __init__(self) -> None:
        self.store = Store(FloorConfig())
        self.seq = 0
        self(ev.BranchOpened, 1000)

    def __call__(self, cls: type[ev.Event], ts: float, **fields: Any) -> None:
        self.seq += 1
        event = cls(v=1, seq=self.seq, ts=float(ts), device="q1", **fields)
        assert not self.store.apply_events("r1", "b1", "a1", [event], received=ts).rejected

    def get(self, screen: LobbyScreen, path: str, query: str = "") -> tuple[int, bytes, str]:
        answer = screen.answer(path, query, self.store, threading.Lock(), NOW)
        return answer.status, answer.body, answer.content_type

    def json(self, screen: LobbyScreen, query: str = "") -> Any:
        status, body, content_type = self.get(screen, "/screen/r1/b1.json", query)
        assert (status, content_type) == (200, "application/json")
        return json.loads(body)


@pytest.fixture
def floor() -> Floor:
    f = Floor()
    f(ev.CounterOpened, 1001, counter="c1", kind="high", teller="teller-wang")
    f(ev.PositionStaffed, 1002, position=5, staff="teller-wang")
    for n in range(1, 9):  # A1..A8 called and served in turn on c1, 100 s each
        f(ev.TicketIssued, 1000 + 100 * n, ticket=f"A{n}", service="cash")
        f(ev.TicketCalled, 1010 + 100 * n, ticket=f"A{n}", counter="c1")
        f(ev.ServiceStarted, 1020 + 100 * n, ticket=f"A{n}", counter="c1", teller="teller-wang")
        f(ev.ServiceEnded, 1100 + 100 * n, ticket=f"A{n}", counter="c1")
    f(ev.TicketIssued, 1950, ticket="A9", service="cash")
    f(ev.TicketIssued, 1960, ticket="A10", service="cash")
    return f


def test_the_json_has_each_service_the_latest_calls_and_no_staff(floor: Floor) -> None:
    view = floor.json(LobbyScreen(ScreenConfig(recent_calls=3)))
    cash = view["services"][0]
    # Counter time: call -> end 90 s each, median 90; histogram mean 80 (8 samples, prior 3):
    # (8 x 90 + 3 x 80) / 11 = 87.27 + 15 = 102.27; A9, A10 on c1 (idle): 204.5 s.
    assert cash["service"] == "cash" and cash["name"] == "Cash" and cash["waiting"] == 2
    assert cash["wait_seconds"] == pytest.approx(204.545, abs=0.01)
    assert cash["wait_minutes"] == 4 and cash["long"] is False
    assert [line["service"] for line in view["services"]] == [
        "cash",
        "non_cash",
        "vip",
        "corporate",
    ]
    assert view["services"][1]["wait_seconds"] is None  # no low counter
    assert [call["ticket"] for call in view["called"]] == ["A8", "A7", "A6"]
    assert view["called"][0] == {
        "ticket": "A8",
        "counter": "c1",
        "service": "cash",
        "called": 1810.0,
    }
    assert (view["known"], view["open"], view["self_service"]) == (True, True, False)
    assert "teller-wang" not in json.dumps(view)


def test_a_long_queue_suggests_the_self_service_machines(floor: Floor) -> None:
    screen = LobbyScreen(notices=NoticesConfig(waiting_per_counter=1.0))
    view = floor.json(screen)  # 2 waiting for 1 open high counter: more than 1 per counter
    assert view["services"][0]["long"] is True and view["self_service"] is True
    # The same queue with the notices' default (8 per counter) is not long.
    assert floor.json(LobbyScreen())["self_service"] is False


def test_the_page_embeds_its_labels_and_first_figures_safely(floor: Floor) -> None:
    names: dict[Language, dict[str, str]] = {
        "en": {"cash": "Cash </script><script>alert(1)</script>"}
    }
    screen = LobbyScreen(ScreenConfig(service_names=names, refresh_seconds=2.5))
    status, body, content_type = floor.get(screen, "/screen/r1/b1")
    page = body.decode()
    assert (status, content_type) == (200, "text/html; charset=utf-8")
    assert page.count("</script>") == 3  # the labels, the first figures and the script
    assert "\\u003c/script>\\u003cscript>alert(1)" in page
    assert "var refresh = 2500;" in page
    assert '<link rel="icon" href="data:,">' in page
    assert "http://" not in page and "https://" not in page  # nothing from elsewhere
    assert "teller-wang" not in page


def test_language_from_the_config_or_the_query(floor: Floor) -> None:
    zh = LobbyScreen(ScreenConfig(language="zh", service_names={"zh": {"cash": "现金业务"}}))
    assert floor.json(zh)["services"][0]["name"] == "现金业务"
    assert floor.json(zh)["language"] == "zh"
    assert floor.json(zh, "lang=en")["services"][0]["name"] == "Cash"
    status, body, _ = floor.get(zh, "/screen/r1/b1", "lang=en")
    assert status == 200 and '<html lang="en">' in body.decode()
    assert screen_name("non_cash", "en") == "Non-cash"
    assert screen_name("vip", "zh") == "贵宾"
    assert screen_name("loans", "en") == "Loans"  # a service without a built-in name


@pytest.mark.parametrize(
    ("path", "query", "status", "message"),
    [
        ("/screen/r1", "", 404, "the lobby screen is at /screen/REGION/BRANCH"),
        ("/screen/r1/b1/x", "", 404, "the lobby screen is at /screen/REGION/BRANCH"),
        ("/screen/R1/b1", "", 404, "REGION and BRANCH are ids"),
        ("/screen/r1/b1.json", "lang=fr", 400, "lang must be one of en, zh, got 'fr'"),
    ],
)
def test_bad_addresses_get_a_clear_refusal(
    floor: Floor, path: str, query: str, status: int, message: str
) -> None:
    got, body, content_type = floor.get(LobbyScreen(), path, query)
    assert (got, content_type) == (status, "text/plain; charset=utf-8")
    assert message in body.decode()


def test_an_unknown_branch_and_a_closed_one_show_no_figures(floor: Floor) -> None:
    status, body, _ = floor.get(LobbyScreen(), "/screen/r1/b2.json")
    unknown = json.loads(body)
    assert status == 200 and (unknown["known"], unknown["open"]) == (False, False)
    assert all(line["wait_seconds"] is None for line in unknown["services"])
    floor(ev.BranchClosed, 1990)
    closed = floor.json(LobbyScreen())
    assert (closed["known"], closed["open"], closed["called"]) == (True, False, [])


def test_a_screen_turned_off_is_not_found(floor: Floor) -> None:
    status, body, _ = floor.get(LobbyScreen(ScreenConfig(enabled=False)), "/screen/r1/b1")
    assert (status, body) == (404, b"the lobby screen is off (screen.enabled = false)\n")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"refresh_seconds": 0.5}, "screen.refresh_seconds must be within 1..300"),
        ({"recent_calls": 21}, "screen.recent_calls must be within 0..20"),
        ({"service_names": {"en": {"loans": "Loans"}}}, "names services ['loans'] that are not"),
        ({"service_names": {"zh": {"cash": " "}}}, "screen.service_names.zh.cash must be 1 to"),
    ],
)
def test_unusable_settings_are_config_errors(table: dict[str, Any], message: str) -> None:
    config = msgspec.convert({"screen": table}, CollectorConfig)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config.validate()


def test_an_unknown_language_is_refused_when_the_config_is_read() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"screen\.service_names"):
        msgspec.convert({"screen": {"service_names": {"fr": {}}}}, CollectorConfig)
