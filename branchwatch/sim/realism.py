"""What the realistic scenario adds to a branch day, each part a profile setting.

- The date: the day's arrival rate follows the weekday (Monday busiest) and
  the first business days of a month (:class:`~branchwatch.sim.profile.Calendar`).
  Day 1 falls on the UTC date of the simulation's start, each later day on
  the next date.
- Self-service: some cash customers use the machines instead of taking a
  ticket, more of them when the cash queue is long.
- Flexible counters open for a queue and close once it has drained, instead
  of keeping the flexible teller's fixed hours.
- Tellers rotate: a counter that opens, or reopens after a lunch or a break,
  takes a free teller of the branch's pool (one or two more tellers than
  counters), and every teller has their own rating tendency.

A profile without these settings never reaches a draw here, so the events of
the other scenarios are exactly what they were.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from branchwatch.sim.base import CLOSED, OPEN, SimCounter
from branchwatch.sim.notices import NoticeStaff
from branchwatch.sim.profile import MINUTE, RATINGS_BY_WAIT

# A counter reopened after these pauses may have another teller (not after covering a
# post: the teller who left it comes back to it).
ROTATE_AFTER: Final = frozenset({"lunch", "break"})
# Cash customers waiting per open cash counter, in buckets 0..QUEUE_BUCKETS-1 (the last
# bucket holds every longer queue): what the self-service tallies are kept by.
QUEUE_BUCKETS: Final = 10


def day_factor(day: date, weekday: tuple[float, ...], month_start_days: int, boost: float) -> float:
    """How much busier than usual ``day`` is: its weekday's factor, times ``boost`` on the
    first ``month_start_days`` business days (Monday to Friday) of its month."""
    factor = weekday[day.weekday()]
    if day.weekday() < 5:
        business_days_before = sum(1 for d in range(1, day.day) if day.replace(day=d).weekday() < 5)
        if business_days_before < month_start_days:
            factor *= boost
    return factor


class RealisticFloor(NoticeStaff):
    """The date, self-service, queue-driven flexible counters and rotating tellers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._dates_passed = 0  # simulated days begun after the first date
        self._walking: set[str] = set()  # flexible tellers on their way to open a counter
        self._tendencies: dict[str, float] = {}
        # Cash arrivals and those who used a machine, by the queue per counter they saw.
        self.cash_arrivals_by_queue = [0] * QUEUE_BUCKETS
        self.self_served_by_queue = [0] * QUEUE_BUCKETS

    @property
    def sim_date(self) -> date:
        """The calendar date of the current (or next) simulated day."""
        start = datetime.fromtimestamp(self._ts0, UTC).date()
        return start + timedelta(days=self._dates_passed)

    def _day_factor(self) -> float:
        calendar = self.profile.calendar
        if calendar is None:
            return 1.0
        return day_factor(
            self.sim_date, calendar.weekday, calendar.month_start_days, calendar.month_start
        )

    # -- self-service ---------------------------------------------------------------------------

    def _uses_machine(self, service: str) -> bool:
        """Whether this arriving customer uses a self-service machine instead of a ticket."""
        machines = self.profile.self_service
        if machines is None or service != "cash":
            return False
        counters = sum(1 for c in self._counters if c.kind == "high" and c.state == OPEN)
        per_counter = self._waiting_by_service().get("cash", 0) / max(1, counters)
        share = min(machines.most, machines.base + machines.per_waiting * per_counter)
        bucket = min(int(per_counter), QUEUE_BUCKETS - 1)
        self.cash_arrivals_by_queue[bucket] += 1
        used = self._rng.random() < share
        self.self_served_by_queue[bucket] += used
        return used

    # -- flexible counters opened for queues ----------------------------------------------------

    def _start_queue_checks(self) -> None:
        rule = self.profile.queue_counters
        if rule is not None:
            self._walking.clear()
            self._later(rule.check_minutes * MINUTE, self._queue_check)

    def _queue_check(self) -> None:
        rule = self.profile.queue_counters
        assert rule is not None
        self._later(rule.check_minutes * MINUTE, self._queue_check)
        if self._closing:
            return
        waiting = self._waiting_by_service()
        for counter in self._counters:
            if not counter.flex or counter.id in self._walking:
                continue
            queue = sum(waiting.get(service, 0) for service in counter.tiers[0])
            if counter.state == CLOSED:
                serving = sum(
                    1
                    for c in self._counters
                    if c.kind == counter.kind and c.state == OPEN and not c.closing
                )
                if queue / max(1, serving) > rule.open_above:
                    self._walking.add(counter.id)
                    walk = self._rng.uniform(*rule.walk_minutes) * MINUTE
                    self._later(walk, self._open_for_queue, counter)
            elif counter.state == OPEN and not queue and counter.pause is None:
                self._close(counter)  # the queue has drained (after the current customer)

    def _open_for_queue(self, counter: SimCounter) -> None:
        self._walking.discard(counter.id)
        if counter.state == CLOSED and not self._closing:
            self._open_counter(counter)

    # -- tellers --------------------------------------------------------------------------------

    def _take_teller(self, counter: SimCounter) -> None:
        """A counter opening (or reopening after a lunch or break) takes a free teller."""
        tellers = self.profile.tellers
        if tellers is None or not (counter.state == CLOSED or counter.paused_for in ROTATE_AFTER):
            return
        held = {c.teller for c in self._counters if c is not counter and c.state != CLOSED}
        pool = (f"teller-{n}" for n in range(1, len(self._counters) + tellers.relief + 1))
        free = [t for t in pool if t not in held and t not in self._where]
        rng = self._rng
        if not free or (counter.teller in free and rng.random() < 0.5):
            return  # back at their own counter
        counter.teller = rng.choice(free)

    def _rating_weights(self, teller: str, waited: float) -> tuple[float, float, float, float]:
        """Weights of the four ratings for a customer of ``teller`` who waited ``waited`` s."""
        very, good, neutral, unsatisfied = next(
            w for limit, w in RATINGS_BY_WAIT if waited <= limit
        )
        if self.profile.tellers is None:
            return very, good, neutral, unsatisfied
        tendency = self._tendency(teller)
        return very, good, neutral * tendency, unsatisfied * tendency

    def _tendency(self, teller: str) -> float:
        """The teller's factor on neutral and unsatisfied ratings (drawn once, log-uniform)."""
        if teller not in self._tendencies:
            assert self.profile.tellers is not None
            low, high = self.profile.tellers.tendency
            rng = random.Random(f"{self._seed}/teller/{teller}")
            self._tendencies[teller] = math.exp(rng.uniform(math.log(low), math.log(high)))
        return self._tendencies[teller]
