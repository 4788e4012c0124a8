"""What is wrong on a branch floor right now: the thresholds it has crossed.

Pure functions over one branch of the collector's JSON (a summary, or a detail
with its tickets and services). Every duration is measured in wall
seconds by the collector and compared in simulated time (:class:`SimClock`),
against the deployment's :class:`Thresholds`, so the demo shows a post empty
"3m12s > 2m" at any speed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from branchwatch.demo.clock import SimClock
from branchwatch.demo.text import as_list, duration, limit, number, text
from branchwatch.sim.profile import POST_GREETER, POST_SELF_SERVICE
from branchwatch.thresholds import Thresholds

Severity = Literal["critical", "warning"]


@dataclass(frozen=True)
class Crossed:
    """One threshold crossed (or one fault), as the view prints it."""

    text: str
    severity: Severity


def post_empty_limit(thresholds: Thresholds, post: object) -> tuple[float, Severity] | None:
    """How long a required post may stay empty, and how bad it is past that."""
    if post == POST_GREETER:
        return thresholds.greeter_empty_seconds, "critical"
    if post == POST_SELF_SERVICE:
        return thresholds.lobby_empty_seconds, "warning"
    return None


def wait_severity(thresholds: Thresholds, wait: float) -> tuple[float, Severity] | None:
    """The wait threshold ``wait`` (simulated seconds) has passed, if any."""
    if wait >= thresholds.wait_critical_seconds:
        return thresholds.wait_critical_seconds, "critical"
    if wait >= thresholds.wait_warning_seconds:
        return thresholds.wait_warning_seconds, "warning"
    return None


def oldest_waits(b: Mapping[str, Any], now: float | None) -> dict[str, float]:
    """Wall seconds the oldest waiting ticket of each service has waited (detail only)."""
    oldest: dict[str, float] = {}
    if now is None:
        return oldest
    for ticket in as_list(b.get("tickets")):
        if not isinstance(ticket, Mapping) or ticket.get("state") != "waiting":
            continue
        service, since = ticket.get("service"), number(ticket.get("wait_since"))
        if isinstance(service, str) and since is not None:
            oldest[service] = max(oldest.get(service, 0.0), now - since)
    return oldest


def average_wait(b: Mapping[str, Any]) -> float | None:
    """Wall seconds waited on average by today's called tickets (None: none yet).

    The collector's ``today`` block resets at the branch's opening: the bank's figure is
    per business day, and the running totals carry over from one day to the next.
    """
    today = b.get("today")
    return number(today.get("avg_wait")) if isinstance(today, Mapping) else None


def finished_evaluation_rate(b: Mapping[str, Any]) -> float | None:
    """Ratings ÷ finished requests (rated or expired), from the detail's evaluations.

    A request still open on the pad is neither: counting it would dip the rate
    every time a teller asks for a rating.
    """
    rated = expired = 0
    listed = False
    for counter in as_list(b.get("evaluations")):
        if not isinstance(counter, Mapping):
            continue
        listed = True
        ratings = counter.get("ratings")
        if isinstance(ratings, Mapping):
            rated += sum(n for n in ratings.values() if isinstance(n, int))
        if isinstance(counter.get("expired"), int):
            expired += counter["expired"]
    if not listed:
        return number(b.get("evaluation_rate"))  # a summary: the collector's own figure
    return rated / (rated + expired) if rated + expired else None


def crossed(
    b: Mapping[str, Any], now: float | None, clock: SimClock, thresholds: Thresholds
) -> list[Crossed]:
    """Every threshold the open branch ``b`` is past at ``now``, and its device faults."""
    if b.get("open") is not True:
        return []
    found: list[Crossed] = []
    for post in as_list(b.get("positions")):
        if not isinstance(post, Mapping) or post.get("staffed") != 0 or now is None:
            continue
        rule, since = post_empty_limit(thresholds, post.get("position")), number(post.get("since"))
        if rule is not None and since is not None and clock.span(now - since) > rule[0]:
            empty = duration(clock.span(now - since))
            found.append(
                Crossed(f"post {post['position']} empty {empty} > {limit(rule[0])}", rule[1])
            )
    waits = oldest_waits(b, now)
    if not waits and number(b.get("longest_wait_seconds")) is not None:
        waits = {"": number(b.get("longest_wait_seconds")) or 0.0}
    for service, wait in sorted(waits.items()):
        passed = wait_severity(thresholds, clock.span(wait))
        if passed is not None:
            label = f"{service} oldest wait" if service else "oldest wait"
            found.append(
                Crossed(
                    f"{label} {duration(clock.span(wait))} > {limit(passed[0])} {passed[1]}",
                    passed[1],
                )
            )
    average = average_wait(b)
    if average is not None and clock.span(average) > thresholds.average_wait_target_seconds:
        found.append(
            Crossed(
                f"average wait {duration(clock.span(average))} > "
                f"{limit(thresholds.average_wait_target_seconds)} target",
                "warning",
            )
        )
    found += _equipment(b, now, clock, thresholds)
    return found


def _equipment(
    b: Mapping[str, Any], now: float | None, clock: SimClock, thresholds: Thresholds
) -> list[Crossed]:
    found: list[Crossed] = []
    down_agents = set()
    for agent in as_list(b.get("agents")):
        if isinstance(agent, Mapping) and agent.get("up") is False:
            down_agents.add(agent.get("agent"))
            seen = number(agent.get("last_seen"))
            if now is not None and seen is not None:
                down = clock.span(now - seen)
                if down > thresholds.device_offline_seconds:
                    found.append(
                        Crossed(
                            f"{text(agent.get('agent'))} down {duration(down)} > "
                            f"{limit(thresholds.device_offline_seconds)}",
                            "critical",
                        )
                    )
    for device in as_list(b.get("devices")):
        if not isinstance(device, Mapping):
            continue
        name = text(device.get("device"))
        if device.get("up") is False and device.get("agent") not in down_agents:
            found.append(Crossed(f"{name} down", "warning"))
        for fault in as_list(device.get("faults")):
            if isinstance(fault, str):
                found.append(Crossed(f"{name} {fault}", "warning"))
    return found
