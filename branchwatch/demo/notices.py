"""The demo's ``notices`` line: what the collector is telling the branch's staff.

Reads one branch of the collector's JSON: the branch detail's ``notices``
(``GET /api/v1/branches/R/B``: the open episodes, each with its chain of
notices: post told, when, acknowledged when and by which post) and, when the
demo added them from ``/metrics``, ``notice_totals`` (outcome → count, over
every kind, of ``branchwatch_notices_total``). An episode ends when its cause
does (post staffed again, the customer spoken to, the queue short): at 30×
that is a second or two of wall time, so the totals say what happened in
between. Times and durations are simulated (:class:`SimClock`).

    post 1 empty 1m00s — notice to post 3 (sent 10:04), acked after 20s by post 3
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from branchwatch.demo.clock import SimClock
from branchwatch.demo.text import as_list, count, duration, number, text
from collector.notices.state import OUTCOMES

NO_NOTICES: Final = "(floor notices: none)"
NONE_OPEN: Final = "none open"


class EpisodeText(NamedTuple):
    text: str
    unanswered: bool  # the chain is exhausted: on-call's turn


def episode_texts(b: Mapping[str, Any], now: float | None, clock: SimClock) -> list[EpisodeText]:
    """One text per open episode of the branch detail's ``notices`` (absent: none)."""
    return [
        _episode(episode, now, clock)
        for episode in as_list(b.get("notices"))
        if isinstance(episode, Mapping)
    ]


def totals_text(b: Mapping[str, Any]) -> str | None:
    """``so far: 5 sent · 4 acked · …`` from ``notice_totals``; None without them."""
    totals = b.get("notice_totals")
    if not isinstance(totals, Mapping) or not totals:
        return None
    shown = [f"{count(totals.get(outcome)) or 0} {outcome}" for outcome in OUTCOMES]
    return "so far: " + " · ".join(shown)


def _episode(e: Mapping[str, Any], now: float | None, clock: SimClock) -> EpisodeText:
    kind = e.get("kind")
    if kind == "post_empty":
        about = f"post {text(e.get('position'))} empty"
    elif kind == "unsatisfied":
        about = f"unsatisfied customer at {text(e.get('counter'))}, ticket {text(e.get('ticket'))}"
        waited = number(e.get("waited"))
        if waited is not None:
            about += f" (waited {duration(clock.span(waited))})"
    elif kind == "queue_long":
        about = f"{text(e.get('service'))} queue too long"
    else:
        about = text(kind).replace("_", " ")
    since = number(e.get("since"))
    if since is not None and now is not None and kind != "unsatisfied":
        about += f" {duration(clock.span(max(now - since, 0.0)))}"
    parts = [
        about,
        *(_notice(n, clock) for n in as_list(e.get("notices")) if isinstance(n, Mapping)),
    ]
    unanswered = e.get("stage") == "unanswered"
    if unanswered:
        parts.append("unanswered: on-call's turn")
    return EpisodeText(" — ".join(parts), unanswered)


def _notice(n: Mapping[str, Any], clock: SimClock) -> str:
    line = f"notice to post {text(n.get('position'))}"
    sent = number(n.get("sent_ts"))
    at = None if sent is None else clock.time_text(sent)
    if at is not None:
        line += f" (sent {at})"
    acked = number(n.get("acked_ts"))
    if acked is None or sent is None:
        return f"{line}, not acked"
    line += f", acked after {duration(clock.span(max(acked - sent, 0.0)))}"
    by = n.get("acked_by")
    return f"{line} by post {text(by)}" if by is not None else line
