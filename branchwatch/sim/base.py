"""The engine under the branch model: identity, clock mapping, agenda, event output.

Simulated time is seconds since the simulation's day 0 midnight; each event's
``ts`` is ``ts_origin + (t - start) / speed``. Actions wait on an agenda (a heap)
and draw from one seeded :class:`random.Random` when they run, so the events
depend on the seed alone, never on how :meth:`SimBase.advance` is chunked.
Actions scheduled with ``_later`` or ``_at_hour`` belong to the current day and
are dropped once that day's branch has closed.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from typing import Any, Final, Required, TypedDict

from branchwatch.contract.events import Event
from branchwatch.contract.ids import CounterKind
from branchwatch.sim.profile import (
    COUNTER_POST,
    DEFAULT_PROFILE,
    HOUR,
    Profile,
)

AGENT: Final = "edge-1"
QUEUE_DEVICE: Final = "queue-1"
INTERCOM_DEVICE: Final = "intercom-1"
DEFAULT_TS_ORIGIN: Final = 1_767_258_000.0  # 2026-01-01 09:00 UTC

WAITING, CALLED, DONE = 0, 1, 2
OPEN, PAUSED, CLOSED = "open", "paused", "closed"
COVER = "covering"  # pause reason while a teller covers post 1 or 2


class SimTicket:
    __slots__ = ("gen", "id", "service", "since", "state", "transferred", "waited")

    def __init__(self, ticket_id: str, service: str, since: float) -> None:
        self.id = ticket_id
        self.service = service
        self.since = since
        self.gen = 0
        self.state = WAITING
        self.waited = 0.0
        self.transferred = False


class SimCounter:
    __slots__ = (
        "busy",
        "closing",
        "flex",
        "id",
        "kind",
        "pad",
        "pause",
        "paused_for",
        "post",
        "state",
        "teller",
        "tiers",
    )

    def __init__(
        self, number: int, kind: CounterKind, flex: bool, tiers: tuple[tuple[str, ...], ...]
    ) -> None:
        self.id = f"c{number}"
        self.kind: CounterKind = kind
        self.post = COUNTER_POST[kind]
        self.teller = f"teller-{number}"
        self.pad = f"pad-c{number}"
        self.flex = flex
        self.tiers = tiers
        self.state = CLOSED
        self.busy = False
        self.closing = False
        self.pause: tuple[str, float | None] | None = None
        self.paused_for: str | None = None


class SimOptions(TypedDict, total=False):
    """:class:`SimBase`'s keyword options, for the layers that only pass them on."""

    seed: Required[int | str]
    start_hour: float
    ts_origin: float
    speed: float
    seq_base: int
    profile: Profile


class SimBase:
    """Identity, simulated clock, agenda and event output of one simulated agent."""

    def __init__(
        self,
        region: str,
        branch: str,
        *,
        seed: int | str,
        start_hour: float = 9.0,
        ts_origin: float = DEFAULT_TS_ORIGIN,
        speed: float = 1.0,
        seq_base: int = 1,
        profile: Profile = DEFAULT_PROFILE,
    ) -> None:
        self.region = region
        self.branch = branch
        self.agent = AGENT
        self.profile = profile
        self._seed = f"{seed}/{branch}"
        self._rng = random.Random(self._seed)
        self.start_hour = start_hour
        self._t0 = start_hour * HOUR
        self._ts0 = ts_origin
        self._speed = speed
        self.now = self._t0
        self.next_seq = seq_base
        self._out: list[Event] = []
        self._agenda: list[tuple[float, int, int, Callable[..., object], tuple[Any, ...]]] = []
        self._order = 0
        self._day = 0
        self.is_open = False  # between branch.opened and branch.closed
        self._closing = False  # close-out: counters close as they finish
        self._origin = 0.0  # simulated time of this day's midnight
        self._counters: list[SimCounter] = []
        self._waiting = 0
        self._posts: dict[int, list[str]] = {}
        self._where: dict[str, int] = {}
        self._covering: dict[int, tuple[str, int, SimCounter | None]] = {}
        self._faults: set[str] = set()
        # Unsatisfied ratings not followed up yet: (simulated time, ticket), oldest first.
        self._unsatisfied: list[tuple[float, str]] = []

    # -- public surface -------------------------------------------------------------------------

    @property
    def devices(self) -> dict[str, str]:
        """Device id -> kind, for the agent's status."""
        devices = {QUEUE_DEVICE: "queue", INTERCOM_DEVICE: "intercom"}
        devices.update((c.pad, "pad") for c in self._counters)
        return devices

    @property
    def day(self) -> int:
        return self._day

    @property
    def next_action_at(self) -> float | None:
        """Simulated time of the next action on the agenda (None: nothing planned).

        A driver with many branches advances only those with something due.
        """
        return self._agenda[0][0] if self._agenda else None

    def sim_time(self, ts: float) -> float:
        """The simulated time that maps to event time ``ts``."""
        return self._t0 + (ts - self._ts0) * self._speed

    def ts_at(self, t: float) -> float:
        """The event time of simulated time ``t`` (the inverse of :meth:`sim_time`)."""
        return self._ts0 + (t - self._t0) / self._speed

    def advance(self, until: float) -> list[Event]:
        """Run every action up to simulated time ``until``; the events, in seq order."""
        agenda = self._agenda
        while agenda and agenda[0][0] <= until:
            t, _, day, action, args = heapq.heappop(agenda)
            if day and (day != self._day or not self.is_open):
                continue  # left over from a day that has closed
            self.now = t
            action(*args)
        self.now = max(self.now, until)
        out, self._out = self._out, []
        return out

    # -- agenda ---------------------------------------------------------------------------------

    def _at(self, t: float, action: Callable[..., object], *args: Any, day: int = 0) -> None:
        self._order += 1
        heapq.heappush(self._agenda, (t, self._order, day, action, args))

    def _later(self, delay: float, action: Callable[..., object], *args: Any) -> None:
        """Run ``action`` after ``delay`` seconds if this day is still open then."""
        self._at(self.now + delay, action, *args, day=self._day)

    def _at_hour(self, hour: float, action: Callable[..., object], *args: Any) -> None:
        t = self._origin + hour * HOUR
        if t >= self.now - 1e-6:  # not in the past (a mid-day start skips the morning)
            self._at(max(t, self.now), action, *args, day=self._day)

    def _emit(self, cls: type[Event], device: str, **fields: Any) -> None:
        ts = self.ts_at(self.now)
        self._out.append(cls(v=1, seq=self.next_seq, ts=ts, device=device, **fields))
        self.next_seq += 1

    # -- what the floor model implements (the staff move counters in and out of pause) ---------

    def _pause(self, counter: SimCounter) -> None:
        raise NotImplementedError

    def _open_counter(self, counter: SimCounter) -> None:
        raise NotImplementedError

    def _close(self, counter: SimCounter) -> None:
        raise NotImplementedError

    def _waiting_by_service(self) -> dict[str, int]:
        """Tickets waiting now, per service."""
        raise NotImplementedError
