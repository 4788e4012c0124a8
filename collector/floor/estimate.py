"""How long a ticket taken now would wait, per service, from the live floor. Pure: no I/O.

The model hands the queue to the counters the floor has now, oldest ticket first,
the way the queue machine calls them (list scheduling):

1. **Counter time per ticket**, per service: how long a counter is taken by one
   ticket, from the call to the end of service (to the no-show for a customer who
   never came), plus a short turnaround (the rating pad, the next call). It is the
   median of the service's latest finished tickets today; until the day has a few,
   it leans on a prior: the mean service time of the branch's service-time
   histogram (every day so far), or :attr:`EstimateModel.default_counter_seconds`
   before the branch has served anyone.
2. **Counters**: an idle open counter is free now; one with a called or served
   ticket is free when that ticket's counter time has passed (at least a share of
   it: a long service is not over just because the median is). A paused counter is
   not serving now but may be back soon: it is expected back
   :attr:`EstimateModel.pause_seconds` after it paused (once that has passed,
   :attr:`EstimateModel.overdue_seconds` from now). Closed counters do not count.
3. **Which counters take a service**: the counter kinds of the floor notices
   (:func:`collector.notices.followups.serves`: cash → high, non-cash and corporate
   → low, VIP → VIP; another service, or a counter of unknown kind, any counter).
4. **The queue ahead**: every waiting ticket, oldest first, goes to the counter
   that takes its service and is free first. Tickets of other services that share
   those counters are ahead too.
5. **Customers ahead who give up**: a ticket ahead keeps its counter for its
   counter time times the chance that its customer is still there when called,
   from how long today's customers waited before they walked out (a Kaplan-Meier
   survival curve: walkouts are seen patience, every other wait only says the
   customer's patience was longer). Until :attr:`EstimateModel.min_walkouts`
   customers have walked out today, everybody ahead is expected to stay.
6. A ticket taken now is next in line: its wait is the time until the first counter
   that takes its service is free (0 while one stands idle).

The wait is None when the branch is closed or no open or paused counter takes the
service. What the model cannot know: counters that open or pause later, and
counters that help another queue when idle.
"""

from __future__ import annotations

import bisect
import itertools
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

from collector.floor import finished
from collector.floor.branch import BranchState, CounterState, Ticket
from collector.notices.followups import serves

# How many finished tickets are read back (newest first) for the service times.
MAX_FINISHED_READ: Final = 400


@dataclass(frozen=True)
class EstimateModel:
    """The model's constants (seconds, except the counts and shares)."""

    # Counter time per ticket before the branch has served anyone.
    default_counter_seconds: float = 300.0
    # The median of this many latest finished tickets of a service (today).
    recent_samples: int = 15
    # The prior counts as this many samples until the day has its own.
    prior_weight: float = 3.0
    # A counter's time between one customer's end of service and the next call.
    turnaround_seconds: float = 15.0
    # A ticket in service is expected to take at least this share of its counter time
    # from now, however long it has been at the counter.
    min_residual_share: float = 0.2
    # A paused counter is expected back this long after it paused ...
    pause_seconds: float = 900.0
    # ... and, once that has passed, this long from now.
    overdue_seconds: float = 300.0
    # Customers ahead give up as today's did, once this many have.
    min_walkouts: int = 5


DEFAULT_MODEL: Final = EstimateModel()


class WaitEstimate(NamedTuple):
    """One service's line on the lobby screen, and the inputs of its estimate."""

    waiting: int  # tickets waiting in this service's queue
    seconds: float | None  # estimated wait of a ticket taken now; None: nobody serves it
    counters_open: int  # open counters that take this service
    counters_paused: int  # paused counters that take it
    counter_seconds: float  # counter time per ticket of this service


def counter_seconds(
    branch: BranchState,
    model: EstimateModel = DEFAULT_MODEL,
    done: Sequence[Ticket] | None = None,
) -> dict[str, float]:
    """Counter time per ticket of each service (step 1 of the model).

    ``done``: the branch's finished tickets, oldest first, if already unpacked.
    """
    wanted = model.recent_samples
    samples: dict[str, list[float]] = {service: [] for service in branch.services}
    newest = reversed(done) if done is not None else (t for _, t in finished.newest(branch))
    # Newest first; a bounded read keeps the cost flat however long the day.
    for read, ticket in enumerate(newest):
        if read >= MAX_FINISHED_READ:
            break
        taken = _taken(ticket)
        if taken is None or ticket.service not in samples:
            continue
        own = samples[ticket.service]
        if len(own) < wanted:
            own.append(taken)
    times = {}
    for service, stats in branch.services.items():
        histogram = stats.service
        prior = (
            histogram.sum / histogram.count if histogram.count else model.default_counter_seconds
        )
        own = samples[service]
        if own:
            weight = model.prior_weight
            blended = (len(own) * statistics.median(own) + weight * prior) / (len(own) + weight)
        else:
            blended = prior
        times[service] = blended + model.turnaround_seconds
    return times


def _taken(ticket: Ticket) -> float | None:
    """How long a finished ticket held its counter, from the call; None: it never did."""
    if ticket.called_ts is None:
        return None
    if ticket.ended_ts is not None:
        return max(ticket.ended_ts - ticket.called_ts, 0.0)
    if ticket.lost == "no_show" and ticket.done_ts is not None:
        return max(ticket.done_ts - ticket.called_ts, 0.0)
    return None


class Patience:
    """How long customers wait before they give up: today's walkouts (Kaplan-Meier).

    A walkout is a customer's patience seen; a ticket called, still waiting, or
    closed at the end of the day only says its patience was longer (censored).
    """

    def __init__(self, gave_up: list[float], stayed: list[float]) -> None:
        self._times: list[float] = []  # waits at which someone gave up, ascending
        self._survival: list[float] = []  # share still there just after each
        waits = sorted(gave_up + stayed)
        survival = 1.0
        for wait, left in sorted(Counter(gave_up).items()):
            at_risk = len(waits) - bisect.bisect_left(waits, wait)  # waited this long at least
            survival *= 1.0 - left / at_risk
            self._times.append(wait)
            self._survival.append(survival)

    @classmethod
    def of(
        cls,
        branch: BranchState,
        now: float,
        model: EstimateModel,
        done: Sequence[Ticket] | None = None,
    ) -> Patience:
        """From the branch's tickets today; nobody gives up before ``min_walkouts`` did.

        ``done``: the branch's finished tickets, if already unpacked.
        """
        gave_up: list[float] = []
        stayed: list[float] = []
        ended = finished.every(branch) if done is None else done
        for ticket in itertools.chain(ended, branch.tickets.values()):
            since = ticket.wait_since
            if since is None:
                continue
            if ticket.lost == "walkout" and ticket.done_ts is not None:
                gave_up.append(ticket.done_ts - since)
            elif ticket.called_ts is not None:
                stayed.append(ticket.called_ts - since)
            elif ticket.state == "waiting":
                stayed.append(now - since)
            elif ticket.done_ts is not None:
                stayed.append(ticket.done_ts - since)
        if len(gave_up) < model.min_walkouts:
            return cls([], [])
        return cls(gave_up, stayed)

    def survival(self, wait: float) -> float:
        """The share of customers who are still waiting after ``wait`` seconds."""
        index = bisect.bisect_right(self._times, wait) - 1
        return 1.0 if index < 0 else self._survival[index]

    def stays(self, waited: float, until: float) -> float:
        """The chance that a customer who has waited ``waited`` is still there at ``until``."""
        before = self.survival(waited)
        return 1.0 if before <= 0.0 else self.survival(until) / before


class _Slot:
    """A counter that can take tickets, and when it is next free."""

    __slots__ = ("counter", "free_at")

    def __init__(self, counter: CounterState, free_at: float) -> None:
        self.counter = counter
        self.free_at = free_at


def _slots(
    branch: BranchState, now: float, times: dict[str, float], model: EstimateModel
) -> list[_Slot]:
    """Every open or paused counter and when it is free (step 2)."""
    at_counter: dict[str, Ticket] = {}
    for ticket in branch.tickets.values():
        if ticket.state in ("called", "serving") and ticket.counter is not None:
            at_counter[ticket.counter] = ticket
    slots = []
    for counter_id, counter in sorted(branch.counters.items()):
        if counter.state == "open":
            busy = at_counter.get(counter_id)
            free_at = now if busy is None else now + _residual(busy, now, times, model)
        elif counter.state == "paused":
            back = (counter.since if counter.since is not None else now) + model.pause_seconds
            free_at = back if back > now else now + model.overdue_seconds
        else:
            continue
        slots.append(_Slot(counter, free_at))
    return slots


def _residual(ticket: Ticket, now: float, times: dict[str, float], model: EstimateModel) -> float:
    """How much longer the ticket at a counter is expected to keep it."""
    expected = times.get(ticket.service or "", model.default_counter_seconds)
    since = ticket.called_ts if ticket.called_ts is not None else ticket.started_ts
    elapsed = 0.0 if since is None else max(now - since, 0.0)
    return max(expected - elapsed, model.min_residual_share * expected)


def estimate_waits(
    branch: BranchState, now: float, model: EstimateModel = DEFAULT_MODEL
) -> dict[str, WaitEstimate]:
    """The estimated wait of a ticket taken at ``now``, for every service of the branch."""
    done = list(finished.every(branch))  # unpacked once for both readers
    times = counter_seconds(branch, model, done)
    slots = _slots(branch, now, times, model) if branch.open else []
    queue = sorted(
        (since, ticket_id, service)
        for service, stats in branch.services.items()
        for ticket_id, since in stats.queue.items()
    )
    takers = {
        service: [slot for slot in slots if serves(slot.counter, service)]
        for service in branch.services
    }
    patience = Patience.of(branch, now, model, done)
    for since, _, service in queue:
        eligible = takers[service]
        if eligible:
            first = min(eligible, key=_free_at)
            stays = patience.stays(now - since, first.free_at - since)
            first.free_at += stays * times[service]
    estimates = {}
    for service, stats in branch.services.items():
        eligible = takers[service]
        seconds = max(min(s.free_at for s in eligible) - now, 0.0) if eligible else None
        estimates[service] = WaitEstimate(
            waiting=len(stats.queue),
            seconds=seconds,
            counters_open=sum(1 for s in eligible if s.counter.state == "open"),
            counters_paused=sum(1 for s in eligible if s.counter.state == "paused"),
            counter_seconds=times[service],
        )
    return estimates


def _free_at(slot: _Slot) -> float:
    return slot.free_at
