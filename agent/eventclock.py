"""The agent's event clock: Unix seconds that never go back.

The collector orders a post's check-ins and check-outs by ``(ts, seq)``. If the
branch PC's clock were followed blindly, setting it back an hour would make every
event of the next hour older than the ones before it, and each would lose to them.
So an event is stamped ``max(wall clock, last stamp + real time since it)``, the
real time measured by the monotonic clock, which nobody sets: a step back is
ignored (time runs on from the last stamp) and a step forward is followed at once.
A restart cannot go back either: the agent resumes from the last stamp its spool kept.

One refinement: while the stamps are ahead of the wall clock they run at
``1 - SLEW`` of real time. Without it a clock that ran ahead and was then corrected
(a BIOS clock in local time, put right by a time server) would leave every later
stamp ahead by the correction for good, restarts included, and the alerts that
compute "empty since" as ``time() - ts`` would be late by as much, forever. With it
the stamps meet the wall clock again (an hour ahead: after 20 hours), still never
going back; durations between the agent's own stamps read 5 % short meanwhile.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from branchwatch.logthrottle import ThrottledLog

log = logging.getLogger(__name__)

# The wall clock may trail the stamps by rounding and scheduling noise; a step back
# smaller than this is not worth a warning.
STEP_TOLERANCE: Final = 1.0
STEP_LOG_INTERVAL: Final = 600.0
# How much slower than real time the stamps run while they are ahead of the wall clock.
SLEW: Final = 0.05


class EventClock:
    """``clock()`` → Unix seconds, never less than the value it returned before.

    ``wall`` is the clock followed while it moves forward (the system clock, or a
    test's); ``since`` is a stamp handed out before (by an earlier run of the agent)
    that the clock must not go below.
    """

    __slots__ = ("_behind", "_last", "_last_mono", "_log", "_monotonic", "_wall")

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        since: float | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._wall = wall
        self._monotonic = monotonic
        self._last = since
        self._last_mono = monotonic()
        self._behind = 0.0  # how far the wall clock trailed the last stamp
        self._log = ThrottledLog(log, STEP_LOG_INTERVAL, clock=monotonic)

    @property
    def latest(self) -> float | None:
        """The last stamp handed out (or the ``since`` it started from); None before any."""
        return self._last

    def __call__(self) -> float:
        wall = self._wall()
        mono = self._monotonic()
        last = self._last
        rate = 1.0 - SLEW if self._behind > 0 else 1.0
        floor = wall if last is None else last + (mono - self._last_mono) * rate
        if wall >= floor:
            stamp = wall
            if self._behind > STEP_TOLERANCE:
                # Throttled too: a clock flapping back and forth must not flood the log.
                self._log.log(
                    logging.INFO,
                    "system clock caught up with the event times; following it again",
                    key="caught up",
                )
            self._behind = 0.0
        else:
            stamp = floor
            behind = floor - wall
            if behind > self._behind + STEP_TOLERANCE:
                self._log.warning(
                    "system clock went back: it is %.1f s behind the last event time; event"
                    " times run on from there, %.0f %% slower than real time, until they meet"
                    " it (in about %.1f h, unless it is put forward)",
                    behind, SLEW * 100, behind / SLEW / 3600,
                )  # fmt: skip
            # Report a new step, not every stamp while the clock trails by the same amount.
            self._behind = behind
        self._last, self._last_mono = stamp, mono
        return stamp
