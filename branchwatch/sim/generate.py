"""Many branches at once: identities, and pre-generated events for tests and benchmarks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Final, TypedDict, Unpack

from branchwatch.contract.events import Event
from branchwatch.contract.ids import is_site_id
from branchwatch.sim.model import DEFAULT_TS_ORIGIN, BranchSim
from branchwatch.sim.profile import DEFAULT_SCENARIO, HOUR, MINUTE, Profile, scenario_profiles

DEFAULT_REGIONS: Final = ("north", "south", "east", "west", "central")


def branch_ids(count: int, regions: Sequence[str] = DEFAULT_REGIONS) -> list[tuple[str, str]]:
    """``(region, branch)`` for ``count`` branches: ``br-0001``…, regions round-robin."""
    if not regions:
        raise ValueError("at least one region is needed")
    for region in regions:
        if not is_site_id(region):
            raise ValueError(f"region {region!r} is not a valid id (a-z, 0-9, _ and -)")
    return [(regions[i % len(regions)], f"br-{i + 1:04d}") for i in range(count)]


def make_branches(
    count: int,
    seed: int | str,
    *,
    regions: Sequence[str] = DEFAULT_REGIONS,
    start_hour: float = 9.0,
    ts_origin: float = DEFAULT_TS_ORIGIN,
    speed: float = 1.0,
    seq_base: int = 1,
    scenario: str = DEFAULT_SCENARIO,
    day_hours: tuple[float, float] | None = None,
    night_minutes: float | None = None,
) -> list[BranchSim]:
    """The simulated branches, each with its profile in ``scenario`` (``normal``, ``demo``…).

    ``day_hours`` (opening, closing) gives every branch a real-length day: those hours,
    and a night until the next date's opening. None keeps each profile's own day.
    ``night_minutes`` makes every night that long instead (with ``day_hours``: short
    business days one after the other, as a long run needs to see days end).
    """
    ids = branch_ids(count, regions)
    profiles = scenario_profiles(scenario, len(ids))
    if day_hours is not None:
        profiles = [with_day_hours(profile, day_hours) for profile in profiles]
    if night_minutes is not None:
        profiles = [with_night(profile, night_minutes) for profile in profiles]
    return [
        BranchSim(
            region,
            branch,
            seed=seed,
            start_hour=start_hour,
            ts_origin=ts_origin,
            speed=speed,
            seq_base=seq_base,
            profile=profile,
        )
        for (region, branch), profile in zip(ids, profiles, strict=True)
    ]


def with_day_hours(profile: Profile, day_hours: tuple[float, float]) -> Profile:
    """``profile`` open from ``day_hours[0]`` to ``day_hours[1]``, each day on its own date."""
    opening, closing = day_hours
    if not 0.0 <= opening < closing < 24.0:
        raise ValueError(f"day hours {opening:g}-{closing:g}: expected 0 <= opening < closing < 24")
    return replace(profile, open_hour=opening, close_hour=closing, real_nights=True)


def with_night(profile: Profile, minutes: float) -> Profile:
    """``profile`` with a night of ``minutes`` between one day's close and the next opening."""
    if not 0.0 < minutes <= 24 * 60:
        raise ValueError(f"night of {minutes:g} minutes: expected more than 0, at most a day")
    return replace(profile, night=minutes * MINUTE, real_nights=False)


class BranchOptions(TypedDict, total=False):
    """The keyword options of :func:`make_branches`, for the layers that pass them on."""

    regions: Sequence[str]
    start_hour: float
    ts_origin: float
    speed: float
    seq_base: int
    scenario: str
    day_hours: tuple[float, float] | None
    night_minutes: float | None


def generate_batches(
    branches: int,
    seed: int | str,
    sim_seconds: float,
    *,
    step: float = 60.0,
    **options: Unpack[BranchOptions],
) -> Iterator[tuple[str, str, str, list[Event]]]:
    """Each branch's events ``step`` simulated seconds at a time, for ``sim_seconds``.

    Within an agent the events are in ``seq`` order; across branches the
    stream is in time order to within one ``step``. Event ``ts`` starts at
    ``ts_origin`` and runs ``speed`` times faster than simulated time.
    """
    sims = make_branches(branches, seed, **options)
    if not sims:
        return
    start = sims[0].start_hour * HOUR
    end = start + sim_seconds
    t = start
    while t < end:
        t = min(t + step, end)
        for sim in sims:
            events = sim.advance(t)
            if events:
                yield sim.region, sim.branch, sim.agent, events


class GenerateOptions(BranchOptions, total=False):
    """The keyword options of :func:`generate_batches`, for :func:`generate`."""

    step: float


def generate(
    branches: int, seed: int | str, sim_seconds: float, **options: Unpack[GenerateOptions]
) -> Iterator[tuple[str, str, str, Event]]:
    """``(region, branch, agent, event)`` for N branches over ``sim_seconds``: see
    :func:`generate_batches`."""
    for region, branch, agent, events in generate_batches(branches, seed, sim_seconds, **options):
        for event in events:
            yield region, branch, agent, event
