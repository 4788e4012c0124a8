"""The demo's terminal view: the collector's branches as lines of text.

:func:`render` is pure (JSON in, lines out) so it is tested with sample data.
Every field is optional: whatever is missing or malformed renders as "–". A
branch *detail* (``GET /api/v1/branches/R/B``) adds per-service oldest waits,
the average wait, the evaluation rate of finished requests and the open floor
notices to what a summary shows; the demo adds the notice totals from
``/metrics``. Durations are simulated time (``clock``); colours and alerts
follow ``thresholds``.

    br-0001  north  OPEN for 1h12m   edge-1 up · last event 2s ago
      posts     1:EMPTY 1m13s !  2:1  3:0  4:3  5:2  6:1  7:1
      queues    cash 4  non_cash 2  vip 0  corporate 1   waiting 7 · longest 6m02s · avg 4m10s
      counters  5 open · 1 paused · 1 closed   today: issued 130 · served 123 · lost 4
      ratings   satisfaction 91% (112 ratings, 3 unsatisfied) · evaluated 86%
      devices   11/11 up · faults: queue-1 paper_jam
      alerts    queue-1 paper_jam
      notices   post 1 empty 1m13s — notice to post 4 (sent 11:12), acked after 9s by post 4
                  ·  so far: 7 sent · 6 acked · 1 escalated · 0 unanswered · 4 resolved

(the notices line is one line; it is wrapped here.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from branchwatch.demo.alerts import (
    Crossed,
    average_wait,
    crossed,
    finished_evaluation_rate,
    post_empty_limit,
    wait_severity,
)
from branchwatch.demo.clock import REAL_TIME, SimClock
from branchwatch.demo.notices import NO_NOTICES, NONE_OPEN, episode_texts, totals_text
from branchwatch.demo.text import (
    BOLD,
    BOLD_RED,
    DIM,
    GREEN,
    MISSING,
    RED,
    YELLOW,
    as_list,
    count_text,
    duration,
    number,
    paint,
    percent,
    text,
)
from branchwatch.thresholds import DEFAULT_THRESHOLDS, Thresholds

LABEL_WIDTH = 10
SEVERITY_COLOR = {"critical": BOLD_RED, "warning": YELLOW}


def render(
    data: Mapping[str, Any] | None,
    *,
    now: float | None = None,
    color: bool = False,
    header: Sequence[str] = (),
    clock: SimClock = REAL_TIME,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> list[str]:
    """Lines for ``GET /api/v1/branches`` JSON (``{"now": …, "branches": […]}``).

    Each branch may be a summary or a detail. ``header`` lines come first, the
    first of them in bold.
    """
    data = data if isinstance(data, Mapping) else {}
    if now is None:
        now = number(data.get("now"))
    lines = [paint(line, BOLD, color) if i == 0 else line for i, line in enumerate(header)]
    branches = [b for b in as_list(data.get("branches")) if isinstance(b, Mapping)]
    if not branches:
        lines.append("no branches reported yet: waiting for the first events…")
        return lines
    branches.sort(key=lambda b: (str(b.get("branch", "")), str(b.get("region", ""))))
    view = _BranchView(now, color, clock, thresholds)
    for branch in branches:
        lines.append("")
        lines.extend(view.render(branch))
    return lines


class _BranchView:
    """The lines of one branch, with what every line shares."""

    def __init__(
        self, now: float | None, color: bool, clock: SimClock, thresholds: Thresholds
    ) -> None:
        self.now = now
        self.color = color
        self.clock = clock
        self.thresholds = thresholds

    def render(self, b: Mapping[str, Any]) -> list[str]:
        is_open = b.get("open")
        if is_open is True:
            opened = self._since(number(b.get("opened_ts")))
            state = paint("OPEN", GREEN, self.color) + (f" for {opened}" if opened else "")
        elif is_open is False:
            state = paint("CLOSED", DIM, self.color)
        else:
            state = MISSING
        name = paint(f"{text(b.get('branch'))}  {text(b.get('region'))}", BOLD, self.color)
        rows = [
            ("posts", self._posts(b, is_open is True)),
            ("queues", self._queues(b)),
            ("counters", _counters(b)),
            ("ratings", self._ratings(b)),
            ("devices", self._devices(b)),
            ("alerts", self._alerts(crossed(b, self.now, self.clock, self.thresholds))),
            ("notices", self._notices(b)),
        ]
        head = f"{name}  {state}   {self._agents(b)}"
        return [head, *(f"  {label:<{LABEL_WIDTH}}{body}" for label, body in rows)]

    # -- time -----------------------------------------------------------------------------------

    def _since(self, ts: float | None) -> str | None:
        """Simulated time since wall-clock ``ts``."""
        if ts is None or self.now is None:
            return None
        return duration(self.clock.span(self.now - ts))

    def _ago(self, ts: float | None) -> str | None:
        since = self._since(ts)
        return None if since is None else f"{since} ago"

    # -- one line each --------------------------------------------------------------------------

    def _agents(self, b: Mapping[str, Any]) -> str:
        parts = []
        for agent in (a for a in as_list(b.get("agents")) if isinstance(a, Mapping)):
            up, label = agent.get("up"), text(agent.get("agent"))
            if up is True:
                parts.append(f"{label} {paint('up', GREEN, self.color)}")
            elif up is False:
                seen = self._ago(number(agent.get("last_seen")))
                down = paint("DOWN", RED, self.color)
                parts.append(f"{label} {down}" + (f" (seen {seen})" if seen else ""))
            else:
                parts.append(f"{label} {MISSING}")
            spool = number(agent.get("spool_depth"))
            if spool:
                parts[-1] += f" spool {int(spool)}"
        agent_text = ", ".join(parts) if parts else f"agent {MISSING}"
        return f"{agent_text} · last event {self._ago(number(b.get('last_event_ts'))) or MISSING}"

    def _posts(self, b: Mapping[str, Any], is_open: bool) -> str:
        positions = [p for p in as_list(b.get("positions")) if isinstance(p, Mapping)]
        empty_required = {n for n in as_list(b.get("empty_required")) if isinstance(n, int)}
        if not positions:
            if empty_required and is_open:
                flagged = "  ".join(f"{n}:EMPTY !" for n in sorted(empty_required))
                return paint(flagged, RED, self.color)
            return MISSING
        parts = []
        for post in sorted(positions, key=lambda p: number(p.get("position")) or 0):
            label = text(post.get("position"))
            staffed = post.get("staffed")
            if not isinstance(staffed, int):
                staff = post.get("staff")
                staffed = len(staff) if isinstance(staff, list) else None
            required = post.get("required") is True or post.get("position") in empty_required
            if staffed == 0 and required and is_open:
                since = number(post.get("since"))
                empty_for = self._since(since)
                shown = f"{label}:EMPTY {empty_for} !" if empty_for else f"{label}:EMPTY !"
                rule = post_empty_limit(self.thresholds, post.get("position"))
                past = (
                    rule is not None
                    and since is not None
                    and self.now is not None
                    and self.clock.span(self.now - since) > rule[0]
                )
                parts.append(paint(shown, BOLD_RED if past else RED, self.color))
            elif staffed is None:
                parts.append(f"{label}:{MISSING}")
            else:
                shown = f"{label}:{staffed}"
                parts.append(paint(shown, DIM, self.color) if staffed == 0 else shown)
        return "  ".join(parts)

    def _queues(self, b: Mapping[str, Any]) -> str:
        waiting = b.get("waiting")
        if isinstance(waiting, Mapping) and waiting:
            per_service = "  ".join(f"{text(s)} {count_text(n)}" for s, n in waiting.items())
        else:
            per_service = MISSING
        longest = number(b.get("longest_wait_seconds"))
        if longest is None:
            oldest = number(b.get("oldest_wait_since"))
            longest = None if oldest is None or self.now is None else max(0.0, self.now - oldest)
        if longest is None:
            longest_text = MISSING
        else:
            wait = self.clock.span(longest)
            longest_text = duration(wait)
            passed = wait_severity(self.thresholds, wait)
            if passed is not None:
                longest_text = paint(longest_text + " !", SEVERITY_COLOR[passed[1]], self.color)
            elif wait >= self.thresholds.wait_target_seconds:
                longest_text = paint(longest_text, YELLOW, self.color)
        line = (
            f"{per_service}   waiting {count_text(b.get('waiting_total'))} · longest {longest_text}"
        )
        if "services" not in b:
            return line  # a summary: no average to show
        average = average_wait(b)
        if average is None:
            return f"{line} · avg {MISSING}"
        avg_wait = self.clock.span(average)
        avg_text = duration(avg_wait)
        if avg_wait > self.thresholds.average_wait_target_seconds:
            avg_text = paint(avg_text, YELLOW, self.color)
        return f"{line} · avg {avg_text}"

    def _ratings(self, b: Mapping[str, Any]) -> str:
        satisfaction = number(b.get("satisfaction"))
        rate = finished_evaluation_rate(b)
        sat_text = percent(satisfaction)
        if satisfaction is not None:
            good = satisfaction >= self.thresholds.satisfaction_target
            sat_text = paint(sat_text, GREEN if good else RED, self.color)
        rate_text = percent(rate)
        if rate is not None and rate < self.thresholds.evaluation_rate_target:
            rate_text = paint(rate_text, YELLOW, self.color)
        ratings = b.get("ratings")
        counted = ""
        if isinstance(ratings, Mapping):
            total = sum(n for n in ratings.values() if isinstance(n, int))
            unsatisfied = ratings.get("unsatisfied")
            counted = f" ({total} rating{'' if total == 1 else 's'}"
            if isinstance(unsatisfied, int) and unsatisfied:
                counted += f", {unsatisfied} unsatisfied"
            counted += ")"
        return f"satisfaction {sat_text}{counted} · evaluated {rate_text}"

    def _devices(self, b: Mapping[str, Any]) -> str:
        devices = [d for d in as_list(b.get("devices")) if isinstance(d, Mapping)]
        if not devices:
            return MISSING
        reporting = [d for d in devices if isinstance(d.get("up"), bool)]
        up = sum(1 for d in reporting if d.get("up") is True)
        summary = f"{up}/{len(reporting)} up"
        if up < len(reporting):
            down = ", ".join(text(d.get("device")) for d in reporting if d.get("up") is False)
            summary = paint(f"{summary} (down: {down})", RED, self.color)
        faults = [
            f"{text(d.get('device'))} {text(f)}"
            for d in devices
            for f in as_list(d.get("faults"))
            if isinstance(f, str)
        ]
        if faults:
            return f"{summary} · faults: " + paint(", ".join(faults), YELLOW, self.color)
        return f"{summary} · no faults"

    def _notices(self, b: Mapping[str, Any]) -> str:
        episodes = [
            paint(e.text, BOLD_RED, self.color) if e.unanswered else e.text
            for e in episode_texts(b, self.now, self.clock)
        ]
        totals = totals_text(b)
        if totals is None:
            return "  ·  ".join(episodes) or NO_NOTICES
        return "  ·  ".join([*(episodes or [NONE_OPEN]), paint(totals, DIM, self.color)])

    def _alerts(self, found: list[Crossed]) -> str:
        if not found:
            return paint("none", GREEN, self.color)
        return " · ".join(paint(c.text, SEVERITY_COLOR[c.severity], self.color) for c in found)


def _counters(b: Mapping[str, Any]) -> str:
    counters = b.get("counters")
    counters = counters if isinstance(counters, Mapping) else {}
    states = " · ".join(f"{count_text(counters.get(s))} {s}" for s in ("open", "paused", "closed"))
    # The business day's figures (reset at opening), not the running totals that carry
    # over from one day to the next; "–" before the first opening is seen.
    today = b.get("today")
    today = today if isinstance(today, Mapping) else {}
    lost = today.get("lost")
    lost_total = (
        sum(n for n in lost.values() if isinstance(n, int)) if isinstance(lost, Mapping) else None
    )
    totals = " · ".join(f"{label} {count_text(today.get(label))}" for label in ("issued", "served"))
    return f"{states}   today: {totals} · lost {count_text(lost_total)}"
