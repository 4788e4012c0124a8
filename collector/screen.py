"""The lobby screen: ``/screen/REGION/BRANCH`` (a full-screen page) and its ``.json``.

A TV by the door shows, per service, how many people wait, the estimated wait of a
ticket taken now (:mod:`collector.floor.estimate`), the latest tickets called to a
counter, and a hint to use the self-service machines while a queue is long (the
floor notices' notion of a long queue). The page is one file with inline CSS and
JS, loads nothing else, and asks for the JSON every ``screen.refresh_seconds``.

What customers see holds no staff id and no teller name: only ticket numbers,
counter ids, service names and counts. So both URLs are open without credentials,
like ``/healthz``, even when basic auth protects ``/metrics`` and the API.
"""

from __future__ import annotations

import html
import math
import string
import threading
from importlib import resources
from typing import Final, NamedTuple
from urllib.parse import parse_qs

import msgspec

from branchwatch.contract.ids import is_site_id
from branchwatch.thresholds import DEFAULT_THRESHOLDS, Thresholds
from collector.config import CollectorConfig, ScreenConfig
from collector.floor import finished
from collector.floor.branch import BranchState, Ticket
from collector.floor.config import FloorConfig, FloorRules
from collector.floor.estimate import estimate_waits
from collector.notices.book import Policy
from collector.notices.config import NoticesConfig
from collector.notices.followups import queue_load
from collector.notices.texts import LANGUAGES, Language, service_name
from collector.store import Store

HTML_TYPE: Final = "text/html; charset=utf-8"
JSON_TYPE: Final = "application/json"
TEXT_TYPE: Final = "text/plain; charset=utf-8"
# Finished tickets read back (newest first) for the latest calls: hours of a busy day.
CALLS_READ: Final = 200

# What the page says, per language. ``{n}`` is a number the page sets in large type.
LABELS: Final[dict[Language, dict[str, str]]] = {
    "en": {
        "title": "Welcome",
        "service": "Service",
        "waiting": "{n} waiting",
        "estimate": "about {n} min",
        "no_wait": "no wait",
        "not_served": "not served now",
        "calling": "Now calling",
        "to_counter": "counter {n}",
        "self_service": "Simple business? Please use the self-service machines.",
        "closed": "The branch is closed.",
        "unknown": "No figures for this branch yet.",
        "offline": "Reconnecting…",
        "note": "Estimated wait for a ticket taken now.",
    },
    "zh": {
        "title": "欢迎光临",
        "service": "业务",
        "waiting": "{n}人等候",
        "estimate": "约{n}分钟",
        "no_wait": "无需等候",
        "not_served": "暂停办理",
        "calling": "正在叫号",
        "to_counter": "{n}号窗口",
        "self_service": "简单业务？请使用自助设备办理。",
        "closed": "本网点已停止营业。",
        "unknown": "暂无本网点数据。",
        "offline": "正在重新连接…",
        "note": "现在取号的预计等候时间。",
    },
}


class ServiceLine(msgspec.Struct):
    service: str
    name: str  # in the screen's language
    waiting: int
    wait_seconds: float | None  # None: no counter takes this service now
    wait_minutes: int | None  # what the page shows: whole minutes, rounded up
    long: bool  # the queue is long (the self-service hint)


class CalledTicket(msgspec.Struct):
    ticket: str
    counter: str
    service: str | None
    called: float  # event time of the call


class ScreenView(msgspec.Struct):
    """The JSON the page polls. Nothing in it names a member of staff."""

    region: str
    branch: str
    language: Language
    now: float
    known: bool  # the collector has heard of this branch
    open: bool
    services: list[ServiceLine]
    called: list[CalledTicket]  # newest first
    self_service: bool  # some queue is long: suggest the machines


class Answer(NamedTuple):
    status: int
    body: bytes
    content_type: str


_json: Final = msgspec.json.Encoder()


def _template() -> string.Template:
    text = resources.files("collector").joinpath("static/lobby-screen.html").read_text("utf-8")
    return string.Template(text)


def screen_name(service: str, language: Language) -> str:
    """A service's built-in name on the screen: the notices' name, capitalised."""
    name = service_name(service, language)
    return name[:1].upper() + name[1:]


def _embedded(value: object) -> str:
    """JSON safe inside an HTML ``<script>`` (no ``</script>`` can close it early)."""
    return _json.encode(value).decode().replace("<", "\\u003c")


class LobbyScreen:
    """Answers the screen's two URLs from the store (under its lock)."""

    def __init__(
        self,
        config: ScreenConfig | None = None,
        floor: FloorConfig | None = None,
        thresholds: Thresholds = DEFAULT_THRESHOLDS,
        notices: NoticesConfig | None = None,
    ) -> None:
        self.config: Final = config or ScreenConfig()
        rules = FloorRules(floor or FloorConfig(), thresholds)
        self.config.validate(rules.services)
        # The queue-long notion of the floor notices (its thresholds), on or off.
        self._policy: Final = Policy(notices or NoticesConfig(), rules, thresholds)
        self._services: Final = rules.services
        self._template: Final = _template()

    @classmethod
    def from_config(cls, config: CollectorConfig) -> LobbyScreen:
        return cls(config.screen, config.floor, config.thresholds, config.notices)

    def name(self, service: str, language: Language) -> str:
        configured = self.config.service_names.get(language, {})
        return configured.get(service) or screen_name(service, language)

    # requests ----------------------------------------------------------------------------

    def answer(
        self, path: str, query: str, store: Store, lock: threading.Lock, now: float
    ) -> Answer:
        """The answer to ``GET path?query`` (``path`` starts with ``/screen/``)."""
        if not self.config.enabled:
            return _text(404, "the lobby screen is off (screen.enabled = false)")
        parts = path.split("/")
        if len(parts) != 4:
            return _text(404, "not found: the lobby screen is at /screen/REGION/BRANCH")
        region, branch = parts[2], parts[3]
        as_json = branch.endswith(".json")
        branch = branch.removesuffix(".json")
        if not (is_site_id(region) and is_site_id(branch)):
            return _text(404, "not found: REGION and BRANCH are ids (a-z, 0-9, _ and -)")
        asked = parse_qs(query).get("lang", [self.config.language])[-1]
        if asked not in LANGUAGES:
            return _text(400, f"lang must be one of {', '.join(LANGUAGES)}, got {asked[:20]!r}")
        language: Language = "zh" if asked == "zh" else "en"
        with lock:
            view = self.view(store.branch_state(region, branch), region, branch, language, now)
        if as_json:
            return Answer(200, _json.encode(view), JSON_TYPE)
        return Answer(200, self.page(view), HTML_TYPE)

    # the view --------------------------------------------------------------------------

    def view(
        self,
        state: BranchState | None,
        region: str,
        branch: str,
        language: Language,
        now: float,
    ) -> ScreenView:
        """What the screen shows of one branch (``state`` None: not heard of yet)."""
        lines = []
        estimates = estimate_waits(state, now) if state is not None else {}
        for service in self._services:
            estimate = estimates.get(service)
            seconds = None if estimate is None else estimate.seconds
            load = None if state is None else queue_load(self._policy, state, service, now)
            lines.append(
                ServiceLine(
                    service=service,
                    name=self.name(service, language),
                    waiting=0 if estimate is None else estimate.waiting,
                    wait_seconds=seconds,
                    wait_minutes=None if seconds is None else math.ceil(seconds / 60.0),
                    long=load is not None and load.long,
                )
            )
        is_open = state is not None and state.open
        return ScreenView(
            region=region,
            branch=branch,
            language=language,
            now=now,
            known=state is not None,
            open=is_open,
            services=lines,
            called=self._called(state) if is_open and state is not None else [],
            self_service=is_open and any(line.long for line in lines),
        )

    def _called(self, state: BranchState) -> list[CalledTicket]:
        """The latest calls of today: live tickets and the newest finished ones."""
        recent: list[tuple[float, str, Ticket]] = []
        for ticket_id, ticket in state.tickets.items():
            if ticket.called_ts is not None and ticket.counter is not None:
                recent.append((ticket.called_ts, ticket_id, ticket))
        for read, (ticket_id, ticket) in enumerate(finished.newest(state)):
            if read >= CALLS_READ:
                break
            if ticket.called_ts is not None and ticket.counter is not None:
                recent.append((ticket.called_ts, ticket_id, ticket))
        recent.sort(key=_newest_first)
        return [
            CalledTicket(ticket=ticket_id, counter=t.counter or "", service=t.service, called=ts)
            for ts, ticket_id, t in recent[: self.config.recent_calls]
        ]

    # the page --------------------------------------------------------------------------

    def page(self, view: ScreenView) -> bytes:
        """The full-screen page, with ``view`` as its first figures."""
        labels = LABELS[view.language]
        page = self._template.substitute(
            lang="zh-CN" if view.language == "zh" else "en",
            title=html.escape(labels["title"]),
            labels=_embedded(labels),
            initial=_embedded(view),
            refresh_ms=str(int(self.config.refresh_seconds * 1000)),
        )
        return page.encode()


def _newest_first(entry: tuple[float, str, Ticket]) -> tuple[float, str]:
    return -entry[0], entry[1]


def _text(status: int, message: str) -> Answer:
    return Answer(status, f"{message}\n".encode(), TEXT_TYPE)
