"""Simulated time for the demo's view.

The simulator runs ``speed`` times faster than the wall clock while the
collector stamps and measures everything in wall-clock seconds: a post empty
for 6 s at 30× has been empty for 3 simulated minutes. The view shows every
duration, and the time of day in its header, in simulated time, because that
is the time the floor's targets and thresholds are written in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from branchwatch.sim.profile import DEFAULT_PROFILE, HOUR, Profile

DAY_SECONDS = 24 * HOUR


@dataclass(frozen=True)
class SimClock:
    """Wall-clock spans to simulated spans, and the simulated time of day.

    ``wall_start`` is when the simulation started at ``start_hour`` (the demo
    takes the moment it started the simulator: the clock may run a fraction of
    a second of wall time ahead). Without it there is no time of day to show.
    """

    speed: float = 1.0
    wall_start: float | None = None
    start_hour: float = 9.0
    profile: Profile = DEFAULT_PROFILE

    def span(self, wall_seconds: float) -> float:
        """The simulated seconds that ``wall_seconds`` of wall-clock time stand for."""
        return wall_seconds * self.speed

    def time_of_day(self, wall_now: float) -> tuple[int, float] | None:
        """``(day, seconds since that day's midnight)`` of the simulation at ``wall_now``.

        Follows the simulator's day: open from ``open_hour`` to ``close_hour``, the
        close-out, a short night, then the next day opens at ``open_hour``. Each
        branch closes when its last customer is done, so after the first day this
        is within a few simulated minutes of every branch's own clock.
        """
        if self.wall_start is None or not math.isfinite(wall_now):
            return None
        p = self.profile
        t = self.start_hour * HOUR + self.span(wall_now - self.wall_start)
        if self.start_hour < p.close_hour:
            first_midnight = 0.0
        else:  # started in the evening: the first day opens after the night
            first_midnight = self.start_hour * HOUR + p.night - p.open_hour * HOUR
        day_length = (p.close_hour - p.open_hour) * HOUR + p.closeout + p.night
        days_after_first = max(
            0, math.floor((t - first_midnight - p.open_hour * HOUR) / day_length)
        )
        midnight = first_midnight + days_after_first * day_length
        return 1 + days_after_first, (t - midnight) % DAY_SECONDS

    def clock_text(self, wall_now: float) -> str | None:
        """``day 1 10:23``, or None when the start is not known."""
        when = self.time_of_day(wall_now)
        if when is None:
            return None
        return f"day {when[0]} {_hh_mm(when[1])}"

    def time_text(self, wall: float) -> str | None:
        """The simulated time of day at ``wall``, ``10:23``; None when the start is not known."""
        when = self.time_of_day(wall)
        return None if when is None else _hh_mm(when[1])


def _hh_mm(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


REAL_TIME = SimClock()
