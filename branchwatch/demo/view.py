"""The demo's terminal view: the collector's branch summaries as lines of text.

:func:`render` is pure (JSON in, lines out) so it is tested with sample data.
Every field is optional: whatever is missing or malformed renders as "–".

    br-0001  north  OPEN for 1h12m   edge-1 up · last event 2s ago
      posts     1:EMPTY 2m13s !  2:1  3:1  4:3  5:2  6:1  7:1
      queues    cash 4  non_cash 2  vip 0  corporate 1   waiting 7 · longest 6m02s
      counters  5 open · 1 paused · 1 closed   issued 130 · served 123 · lost 4
      ratings   satisfaction 91% (112 ratings, 3 unsatisfied) · evaluated 86%
      devices   11/11 up · faults: queue-1 paper_jam
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

MISSING: Final = "–"
RED: Final = "31"
YELLOW: Final = "33"
GREEN: Final = "32"
DIM: Final = "2"
BOLD: Final = "1"

# Thresholds of DESIGN §2 (defaults): a wait alerts at 20 min, satisfaction target 90 %.
WAIT_WARN: Final = 15 * 60.0
WAIT_ALERT: Final = 20 * 60.0
SATISFACTION_TARGET: Final = 0.90
EVALUATION_TARGET: Final = 0.80
GREETER_PAGE: Final = 120.0  # post 1 empty this long pages on-call


def render(
    data: Mapping[str, Any] | None,
    *,
    now: float | None = None,
    color: bool = False,
    title: str | None = None,
) -> list[str]:
    """Lines for ``GET /api/v1/branches`` JSON (``{"now": …, "branches": […]}``)."""
    data = data if isinstance(data, Mapping) else {}
    if now is None:
        now = _number(data.get("now"))
    lines = [_paint(title, BOLD, color)] if title else []
    branches = [b for b in _list(data.get("branches")) if isinstance(b, Mapping)]
    if not branches:
        lines.append("no branches reported yet: waiting for the first events…")
        return lines
    branches.sort(key=lambda b: (str(b.get("branch", "")), str(b.get("region", ""))))
    for branch in branches:
        lines.append("")
        lines.extend(render_branch(branch, now=now, color=color))
    return lines


def render_branch(b: Mapping[str, Any], *, now: float | None, color: bool) -> list[str]:
    is_open = b.get("open")
    if is_open is True:
        opened = _number(b.get("opened_ts"))
        since = f" for {_duration(now - opened)}" if opened is not None and now else ""
        state = _paint("OPEN", GREEN, color) + since
    elif is_open is False:
        state = _paint("CLOSED", DIM, color)
    else:
        state = MISSING
    name = _paint(f"{_text(b.get('branch'))}  {_text(b.get('region'))}", BOLD, color)
    head = f"{name}  {state}   {_agents(b, now, color)}"
    return [
        head,
        "  posts     " + _posts(b, now, color, is_open is True),
        "  queues    " + _queues(b, now, color),
        "  counters  " + _counters(b),
        "  ratings   " + _ratings(b, color),
        "  devices   " + _devices(b, color),
    ]


# -- one line each ----------------------------------------------------------------------------


def _agents(b: Mapping[str, Any], now: float | None, color: bool) -> str:
    agents = [a for a in _list(b.get("agents")) if isinstance(a, Mapping)]
    parts = []
    for agent in agents:
        up = agent.get("up")
        label = _text(agent.get("agent"))
        if up is True:
            parts.append(f"{label} {_paint('up', GREEN, color)}")
        elif up is False:
            seen = _ago(now, _number(agent.get("last_seen")))
            parts.append(
                f"{label} {_paint('DOWN', RED, color)}" + (f" (seen {seen})" if seen else "")
            )
        else:
            parts.append(f"{label} {MISSING}")
        spool = _number(agent.get("spool_depth"))
        if spool:
            parts[-1] += f" spool {int(spool)}"
    agent_text = ", ".join(parts) if parts else f"agent {MISSING}"
    last = _ago(now, _number(b.get("last_event_ts")))
    return f"{agent_text} · last event {last or MISSING}"


def _posts(b: Mapping[str, Any], now: float | None, color: bool, is_open: bool) -> str:
    positions = [p for p in _list(b.get("positions")) if isinstance(p, Mapping)]
    empty_required = {n for n in _list(b.get("empty_required")) if isinstance(n, int)}
    if not positions:
        if empty_required and is_open:
            flagged = "  ".join(f"{n}:EMPTY !" for n in sorted(empty_required))
            return _paint(flagged, RED, color)
        return MISSING
    parts = []
    for post in sorted(positions, key=lambda p: _number(p.get("position")) or 0):
        number = _text(post.get("position"))
        staffed = post.get("staffed")
        if not isinstance(staffed, int):
            staff = post.get("staff")
            staffed = len(staff) if isinstance(staff, list) else None
        required = post.get("required") is True or post.get("position") in empty_required
        if staffed == 0 and required and is_open:
            empty_for = _duration_since(now, _number(post.get("since")))
            text = f"{number}:EMPTY {empty_for} !" if empty_for else f"{number}:EMPTY !"
            since = _number(post.get("since"))
            long_empty = now is not None and since is not None and now - since >= GREETER_PAGE
            parts.append(_paint(text, f"{BOLD};{RED}" if long_empty else RED, color))
        elif staffed is None:
            parts.append(f"{number}:{MISSING}")
        else:
            text = f"{number}:{staffed}"
            parts.append(_paint(text, DIM, color) if staffed == 0 else text)
    return "  ".join(parts)


def _queues(b: Mapping[str, Any], now: float | None, color: bool) -> str:
    waiting = b.get("waiting")
    if isinstance(waiting, Mapping) and waiting:
        per_service = "  ".join(f"{_text(s)} {_count(n)}" for s, n in waiting.items())
    else:
        per_service = MISSING
    total = _count(b.get("waiting_total"))
    longest = _number(b.get("longest_wait_seconds"))
    if longest is None:
        oldest = _number(b.get("oldest_wait_since"))
        longest = None if oldest is None or now is None else max(0.0, now - oldest)
    if longest is None:
        longest_text = MISSING
    else:
        longest_text = _duration(longest)
        if longest >= WAIT_ALERT:
            longest_text = _paint(longest_text + " !", RED, color)
        elif longest >= WAIT_WARN:
            longest_text = _paint(longest_text, YELLOW, color)
    return f"{per_service}   waiting {total} · longest {longest_text}"


def _counters(b: Mapping[str, Any]) -> str:
    counters = b.get("counters")
    counters = counters if isinstance(counters, Mapping) else {}
    states = " · ".join(f"{_count(counters.get(s))} {s}" for s in ("open", "paused", "closed"))
    totals = " · ".join(
        f"{label} {_count(b.get(key))}"
        for label, key in (("issued", "issued_total"), ("served", "served_total"))
    )
    return f"{states}   {totals} · lost {_count(b.get('lost_total'))}"


def _ratings(b: Mapping[str, Any], color: bool) -> str:
    satisfaction = _number(b.get("satisfaction"))
    rate = _number(b.get("evaluation_rate"))
    sat_text = _percent(satisfaction)
    if satisfaction is not None:
        sat_text = _paint(sat_text, GREEN if satisfaction >= SATISFACTION_TARGET else RED, color)
    rate_text = _percent(rate)
    if rate is not None and rate < EVALUATION_TARGET:
        rate_text = _paint(rate_text, YELLOW, color)
    ratings = b.get("ratings")
    count = ""
    if isinstance(ratings, Mapping):
        total = sum(n for n in ratings.values() if isinstance(n, int))
        unsatisfied = ratings.get("unsatisfied")
        count = f" ({total} rating{'' if total == 1 else 's'}"
        if isinstance(unsatisfied, int) and unsatisfied:
            count += f", {unsatisfied} unsatisfied"
        count += ")"
    return f"satisfaction {sat_text}{count} · evaluated {rate_text}"


def _devices(b: Mapping[str, Any], color: bool) -> str:
    devices = [d for d in _list(b.get("devices")) if isinstance(d, Mapping)]
    if not devices:
        return MISSING
    reporting = [d for d in devices if isinstance(d.get("up"), bool)]
    up = sum(1 for d in reporting if d.get("up") is True)
    summary = f"{up}/{len(reporting)} up"
    if up < len(reporting):
        down = ", ".join(_text(d.get("device")) for d in reporting if d.get("up") is False)
        summary = _paint(f"{summary} (down: {down})", RED, color)
    faults = [
        f"{_text(d.get('device'))} {_text(f)}"
        for d in devices
        for f in _list(d.get("faults"))
        if isinstance(f, str)
    ]
    if faults:
        return f"{summary} · faults: " + _paint(", ".join(faults), YELLOW, color)
    return f"{summary} · no faults"


# -- helpers ----------------------------------------------------------------------------------


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


def _list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list) else []


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _text(value: Any) -> str:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return MISSING


def _count(value: Any) -> str:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else MISSING


def _percent(value: float | None) -> str:
    return MISSING if value is None else f"{value * 100:.0f}%"


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _duration_since(now: float | None, since: float | None) -> str | None:
    return None if now is None or since is None else _duration(now - since)


def _ago(now: float | None, ts: float | None) -> str | None:
    since = _duration_since(now, ts)
    return None if since is None else f"{since} ago"
