"""How fast the soak runs: ten times a busy branch's rate, in short business days.

A busy branch is the simulator's own: the realistic scenario's busy city branch, on an
ordinary weekday (a mid-month Wednesday: neither Monday's nor a month start's extra
customers), at its busiest hour; its events per second are averaged over such branches.
The soak plays the normal scenario (a steady fleet) in short days, opening at
:data:`DAY_HOURS`\\[0], closing at :data:`DAY_HOURS`\\[1], with :data:`NIGHT_MINUTES` of
night; its speed is chosen so that a branch's events per second, nights included, are
:data:`TIMES` that busy rate. Both rates are measured here from the simulator's models
(no broker, a few seconds), so the soak follows the simulator if its profiles change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from branchwatch.sim.generate import make_branches
from branchwatch.sim.profile import HOUR, REALISTIC_BUSY

TIMES: Final = 10.0
# Late morning to the start of lunch: the normal day's busy hours, kept short so that
# a 30-minute run sees whole days open and close (about 105 simulated minutes a day).
DAY_HOURS: Final = (11.0, 12.5)
NIGHT_MINUTES: Final = 5.0
SAMPLE_BRANCHES: Final = 40
ORDINARY_DAY: Final = datetime(2026, 11, 18, 9, tzinfo=UTC)  # a Wednesday mid-month
MEASURED_DAYS: Final = 4  # short days (with their nights) the day rate is averaged over


@dataclass(frozen=True)
class SoakRate:
    busy: float  # events/s of a busy branch at its busiest hour
    busiest_hour: int  # the hour it starts
    short_day: float  # events/s of a soak branch at 1x, nights included
    speed: float  # times real time: short_day x speed = TIMES x busy

    @property
    def per_branch(self) -> float:
        return self.short_day * self.speed

    def describe(self) -> str:
        return (
            f"a busy branch (the realistic scenario's busy city branch, a mid-month"
            f" Wednesday, {self.busiest_hour}:00-{self.busiest_hour + 1}:00) sends"
            f" {self.busy:.4f} events/s; a soak branch (normal scenario, open"
            f" {_hhmm(DAY_HOURS[0])}-{_hhmm(DAY_HOURS[1])}, {NIGHT_MINUTES:g}-minute nights)"
            f" {self.short_day:.4f} events/s at 1x; speed {self.speed:.2f} gives"
            f" {self.per_branch:.3f} events/s per branch, {TIMES:g}x the busy branch"
        )


def busy_rate(seed: int) -> tuple[float, int]:
    """Events per second of a busy branch in its busiest hour, and that hour."""
    sims = make_branches(
        SAMPLE_BRANCHES * 5 // 2, seed, scenario="realistic",
        ts_origin=ORDINARY_DAY.timestamp(), start_hour=9.0,
    )  # fmt: skip
    busy = [sim for sim in sims if sim.profile is REALISTIC_BUSY]
    by_hour: dict[int, float] = {}
    for hour in range(9, 17):
        events = sum(len(sim.advance((hour + 1) * HOUR)) for sim in busy)
        by_hour[hour] = events / len(busy) / HOUR
    hour = max(by_hour, key=by_hour.__getitem__)
    return by_hour[hour], hour


def short_day_rate(seed: int) -> float:
    """Events per second of a soak branch at 1x, over several whole days and nights."""
    opening = DAY_HOURS[0]
    sims = make_branches(
        SAMPLE_BRANCHES, seed, start_hour=opening, day_hours=DAY_HOURS,
        night_minutes=NIGHT_MINUTES,
    )  # fmt: skip
    span = MEASURED_DAYS * ((DAY_HOURS[1] - opening) * HOUR + NIGHT_MINUTES * 60)
    events = sum(len(sim.advance(opening * HOUR + span)) for sim in sims)
    return events / len(sims) / span


def soak_rate(seed: int) -> SoakRate:
    busy, hour = busy_rate(seed)
    short_day = short_day_rate(seed)
    return SoakRate(busy, hour, short_day, TIMES * busy / short_day)


def _hhmm(hour: float) -> str:
    return f"{int(hour):02d}:{round(hour % 1 * 60):02d}"
