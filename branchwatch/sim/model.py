"""A simulated branch floor: the pure model behind ``branchwatch simulate``.

No I/O and no clock: :meth:`BranchSim.advance` is told the simulated time to
run to and returns the contract events that happened by then, in ``seq``
order. Simulated time is seconds since the simulation's day 0 midnight; each
event's ``ts`` is mapped from it as ``ts_origin + (t - start) / speed``, so the
edge that publishes in real time passes its wall-clock start as ``ts_origin``.

The model is a discrete-event simulation: an agenda (heap) of actions, each
drawing from one seeded :class:`random.Random` when it runs. Results depend only
on the seed and the profile, never on how ``advance`` is chunked.

Devices of the one agent (``edge-1``) of a branch: ``queue-1`` (ticket machine
and counter terminals, whose printer faults), ``pad-cN`` (an evaluator pad per
counter) and ``intercom-1`` (post check-ins and intercom calls).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from branchwatch.contract.events import (
    BranchClosed,
    BranchOpened,
    CounterClosed,
    CounterOpened,
    CounterPaused,
    DeviceFault,
    DeviceRecovered,
    EvaluationExpired,
    EvaluationRequested,
    EvaluationSubmitted,
    Event,
    IntercomAck,
    IntercomCall,
    PositionStaffed,
    PositionVacated,
    ServiceEnded,
    ServiceStarted,
    TicketCalled,
    TicketIssued,
    TicketNoShow,
    TicketTransferred,
    TicketWalkout,
)
from branchwatch.contract.ids import CounterKind, IntercomReason, Rating
from branchwatch.sim.profile import (
    COUNTER_POST,
    DEFAULT_PROFILE,
    HOUR,
    MINUTE,
    POST_FORMS,
    POST_GREETER,
    POST_LOW,
    POST_SELF_SERVICE,
    POST_WEALTH,
    RATING_NAMES,
    RATINGS_BY_WAIT,
    SERVICE_POST,
    TICKET_LETTER,
    Profile,
)

AGENT: Final = "edge-1"
QUEUE_DEVICE: Final = "queue-1"
INTERCOM_DEVICE: Final = "intercom-1"
MANAGER: Final = "mgr"  # lobby manager, post 1
DEPUTY: Final = "deputy"  # deputy lobby manager, post 2
DIRECTOR: Final = "director"  # lobby director, post 3
ADVISER: Final = "rm"  # relationship manager, post 7
DEFAULT_TS_ORIGIN: Final = 1_767_258_000.0  # 2026-01-01 09:00 UTC

_WAITING, _CALLED, _DONE = 0, 1, 2
_OPEN, _PAUSED, _CLOSED = "open", "paused", "closed"
_COVER = "covering"  # pause reason while a teller covers post 1 or 2


class _Ticket:
    __slots__ = ("gen", "id", "service", "since", "state", "transferred", "waited")

    def __init__(self, ticket_id: str, service: str, since: float) -> None:
        self.id = ticket_id
        self.service = service
        self.since = since
        self.gen = 0
        self.state = _WAITING
        self.waited = 0.0
        self.transferred = False


class _Counter:
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
        self.state = _CLOSED
        self.busy = False
        self.closing = False
        self.pause: tuple[str, float | None] | None = None
        self.paused_for: str | None = None


class BranchSim:
    """One branch, one agent: a seeded day after day of floor events."""

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
        self._t0 = start_hour * HOUR
        self._ts0 = ts_origin
        self._speed = speed
        self.now = self._t0
        self.next_seq = seq_base
        self._out: list[Event] = []
        self._agenda: list[tuple[float, int, int, Callable[..., None], tuple[Any, ...]]] = []
        self._order = 0
        self._day = 0
        self.is_open = False  # between branch.opened and branch.closed
        self._closing = False  # close-out: counters close as they finish
        self._origin = 0.0  # simulated time of this day's midnight

        rng = self._rng
        self._counters: list[_Counter] = []
        for kind, (low, high) in profile.counters.items():
            for _ in range(rng.randint(low, high)):
                self._add_counter(kind, flex=False)
        for kind in profile.flex_counters:
            self._add_counter(kind, flex=True)
        self._peak_per_second = rng.uniform(*profile.peak_arrivals_per_hour) / HOUR
        self._curve_max = max(m for _, m in profile.arrival_curve)
        mix = profile.service_mix
        self._services = tuple(mix)
        self._mix_weights = tuple(mix[s] for s in self._services)

        self._queues: dict[str, deque[tuple[int, _Ticket]]] = {s: deque() for s in mix}
        self._numbers: dict[str, int] = dict.fromkeys(mix, 0)
        self._waiting = 0
        self._posts: dict[int, list[str]] = {}
        self._where: dict[str, int] = {}
        self._covering: dict[int, tuple[str, int, _Counter | None]] = {}
        self._faults: set[str] = set()

        if not 0.0 <= start_hour < 24.0:
            raise ValueError(f"start_hour {start_hour} is not within 0..24")
        if start_hour >= profile.close_hour:
            self._at(self.now, self._next_day)
        else:
            self._at(max(self.now, profile.open_hour * HOUR), self._open_branch)

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

    def sim_time(self, ts: float) -> float:
        """The simulated time that maps to event time ``ts``."""
        return self._t0 + (ts - self._ts0) * self._speed

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

    def receive_notice(self, notice: str, position: int) -> None:
        """A floor notice from the collector reached the intercom at ``position``."""
        rng = random.Random(f"{self._seed}/notice/{notice}")
        if rng.random() < 0.9:
            self._later(rng.uniform(10.0, 45.0), self._ack, position, notice)

    # -- agenda ---------------------------------------------------------------------------------

    def _at(self, t: float, action: Callable[..., None], *args: Any, day: int = 0) -> None:
        self._order += 1
        heapq.heappush(self._agenda, (t, self._order, day, action, args))

    def _later(self, delay: float, action: Callable[..., None], *args: Any) -> None:
        """Run ``action`` after ``delay`` seconds if this day is still open then."""
        self._at(self.now + delay, action, *args, day=self._day)

    def _at_hour(self, hour: float, action: Callable[..., None], *args: Any) -> None:
        t = self._origin + hour * HOUR
        if t >= self.now - 1e-6:  # not in the past (a mid-day start skips the morning)
            self._at(max(t, self.now), action, *args, day=self._day)

    def _emit(self, cls: type[Event], device: str, **fields: Any) -> None:
        ts = self._ts0 + (self.now - self._t0) / self._speed
        self._out.append(cls(v=1, seq=self.next_seq, ts=ts, device=device, **fields))
        self.next_seq += 1

    # -- the day --------------------------------------------------------------------------------

    def _add_counter(self, kind: CounterKind, flex: bool) -> None:
        tiers = self.profile.tiers(kind)
        self._counters.append(_Counter(len(self._counters) + 1, kind, flex, tiers))

    def _next_day(self) -> None:
        p = self.profile
        self._origin = self.now + p.night - p.open_hour * HOUR
        self._at(self.now + p.night, self._open_branch)

    def _open_branch(self) -> None:
        self._day += 1
        self.is_open = True
        self._closing = False
        self._numbers = dict.fromkeys(self._numbers, 0)
        for post, who in (
            (POST_GREETER, MANAGER),
            (POST_SELF_SERVICE, DEPUTY),
            (POST_FORMS, DIRECTOR),
            (POST_WEALTH, ADVISER),
        ):
            self._staff(post, who)
        p = self.profile
        hour = (self.now - self._origin) / HOUR
        for counter in self._counters:
            counter.closing = False
            counter.pause = None
            if not counter.flex:
                self._open_counter(counter)
            elif hour < p.flex_hours[1]:
                start = p.flex_hours[0] + self._rng.uniform(-0.25, 0.25)
                self._at_hour(max(start, hour), self._open_counter, counter)
                self._at_hour(p.flex_hours[1] + self._rng.uniform(0, 0.5), self._close, counter)
        self._emit(BranchOpened, QUEUE_DEVICE)
        self._plan_day(hour)

    def _plan_day(self, hour: float) -> None:
        p, rng = self.profile, self._rng
        self._schedule_arrival()
        core = [c for c in self._counters if not c.flex]
        lunch_span = (p.lunch_window[1] - p.lunch_window[0]) * HOUR - p.lunch_minutes * MINUTE
        for i, counter in enumerate(core):
            start = p.lunch_window[0] + (i * lunch_span / len(core) + rng.uniform(0, 300)) / HOUR
            self._at_hour(start, self._request_pause, counter, "lunch", p.lunch_minutes * MINUTE)
            if rng.random() < p.break_probability:
                minutes = rng.uniform(*p.break_minutes)
                at = rng.choice((rng.uniform(9.75, 11.25), rng.uniform(14.25, 16.25)))
                self._at_hour(at, self._request_pause, counter, "break", minutes * MINUTE)
        for _ in range(rng.randint(*p.greeter_absences)):
            at = rng.uniform(9.5, 16.5)
            if not 12.0 <= at <= 13.0:
                self._at_hour(at, self._leave_post, POST_GREETER, MANAGER, False)
        self._at_hour(rng.uniform(12.0, 12.5), self._leave_post, POST_GREETER, MANAGER, True)
        for _ in range(rng.randint(*p.deputy_absences)):
            self._at_hour(
                rng.uniform(9.5, 16.5), self._leave_post, POST_SELF_SERVICE, DEPUTY, False
            )
        self._at_hour(rng.uniform(13.0, 13.5), self._leave_post, POST_SELF_SERVICE, DEPUTY, True)
        for _ in range(rng.randint(*p.assist_calls)):
            self._at_hour(rng.uniform(9.25, 16.75), self._assist_call)
        for half_hour in range(int(p.open_hour * 2) + 2, int(p.close_hour * 2)):
            self._at_hour(half_hour / 2, self._crowd_check)
        if rng.random() < p.paper_low:
            self._at_hour(rng.uniform(10.0, 16.0), self._paper_low)
        jams = 0
        while rng.random() < p.paper_jams_per_day / (jams + 1) and jams < 4:
            jams += 1
            self._at_hour(rng.uniform(9.25, 16.75), self._paper_jam)
        self._at_hour(max(p.close_hour, hour) + p.closeout / HOUR, self._closeout)

    def _closeout(self) -> None:
        self._closing = True
        for counter in self._counters:
            self._close(counter)
        self._maybe_close_branch()

    def _maybe_close_branch(self) -> None:
        if not self._closing or any(c.state != _CLOSED for c in self._counters):
            return
        for fault in sorted(self._faults):  # staff clear the printer before they leave
            self._emit(DeviceRecovered, QUEUE_DEVICE, fault=fault)
        self._faults.clear()
        self._emit(BranchClosed, QUEUE_DEVICE)  # still-waiting tickets end as "closed"
        self.is_open = False
        for post in sorted(self._posts):
            for who in list(self._posts[post]):
                self._vacate(post, who)
        self._covering.clear()
        for queue in self._queues.values():
            queue.clear()
        self._waiting = 0
        self._next_day()

    # -- tickets --------------------------------------------------------------------------------

    def _schedule_arrival(self) -> None:
        p, rng = self.profile, self._rng
        close = self._origin + p.close_hour * HOUR
        t = self.now
        while True:
            t += rng.expovariate(self._peak_per_second * self._curve_max)
            if t >= close:
                return
            if rng.random() * self._curve_max < self._rate((t - self._origin) / HOUR):
                self._at(t, self._arrive, day=self._day)
                return

    def _rate(self, hour: float) -> float:
        curve = self.profile.arrival_curve
        if hour <= curve[0][0]:
            return curve[0][1]
        for (h0, m0), (h1, m1) in itertools.pairwise(curve):
            if hour <= h1:
                return m0 + (m1 - m0) * (hour - h0) / (h1 - h0)
        return curve[-1][1]

    def _arrive(self) -> None:
        self._schedule_arrival()
        if "paper_out" in self._faults or "paper_jam" in self._faults:
            return  # no ticket printed: the customer is helped at the door
        rng = self._rng
        service = rng.choices(self._services, self._mix_weights)[0]
        self._numbers[service] += 1
        number = self._numbers[service]
        ticket = _Ticket(f"{TICKET_LETTER.get(service, 'X')}{number:03d}-d{self._day}", service, 0)
        vip = service == "vip"
        self._emit(TicketIssued, QUEUE_DEVICE, ticket=ticket.id, service=service, vip=vip)
        if vip and self._posts.get(POST_GREETER) and rng.random() < 0.6:
            self._intercom(POST_GREETER, POST_WEALTH, "vip")
        self._enqueue(ticket)

    def _enqueue(self, ticket: _Ticket) -> None:
        p = self.profile
        ticket.gen += 1
        ticket.since = self.now
        ticket.state = _WAITING
        self._queues[ticket.service].append((ticket.gen, ticket))
        self._waiting += 1
        patience = p.patience_min + self._rng.expovariate(1.0 / p.patience_mean_extra)
        self._later(patience, self._walkout, ticket, ticket.gen)
        self._dispatch()

    def _walkout(self, ticket: _Ticket, gen: int) -> None:
        if ticket.state == _WAITING and ticket.gen == gen:
            ticket.state = _DONE
            self._waiting -= 1
            self._emit(TicketWalkout, QUEUE_DEVICE, ticket=ticket.id)

    def _dispatch(self) -> None:
        if self._closing:
            return
        for counter in self._counters:
            if counter.state == _OPEN and not counter.busy and not counter.closing:
                ticket = self._pick(counter)
                if ticket is not None:
                    self._call(counter, ticket)

    def _pick(self, counter: _Counter) -> _Ticket | None:
        for tier in counter.tiers:
            best: deque[tuple[int, _Ticket]] | None = None
            for service in tier:
                queue = self._queues[service]
                while queue and (queue[0][1].state != _WAITING or queue[0][1].gen != queue[0][0]):
                    queue.popleft()  # walked out, or re-queued elsewhere after a transfer
                if queue and (best is None or queue[0][1].since < best[0][1].since):
                    best = queue
            if best is not None:
                return best.popleft()[1]
        return None

    def _call(self, counter: _Counter, ticket: _Ticket) -> None:
        p, rng = self.profile, self._rng
        ticket.state = _CALLED
        ticket.waited += self.now - ticket.since
        self._waiting -= 1
        counter.busy = True
        self._emit(TicketCalled, QUEUE_DEVICE, ticket=ticket.id, counter=counter.id)
        draw = rng.random()
        transfer = p.transfers.get(ticket.service)
        if draw < p.no_show:
            self._later(rng.uniform(60, 120), self._no_show, counter, ticket)
        elif (
            transfer is not None
            and not ticket.transferred
            and transfer[0] in self._queues
            and draw < p.no_show + transfer[1]
        ):
            self._later(rng.uniform(45, 120), self._transfer, counter, ticket, transfer[0])
        else:
            self._later(rng.uniform(15, 45), self._start_service, counter, ticket)

    def _no_show(self, counter: _Counter, ticket: _Ticket) -> None:
        ticket.state = _DONE
        self._emit(TicketNoShow, QUEUE_DEVICE, ticket=ticket.id)
        self._free(counter)

    def _transfer(self, counter: _Counter, ticket: _Ticket, service: str) -> None:
        ticket.service = service
        ticket.transferred = True
        self._emit(TicketTransferred, QUEUE_DEVICE, ticket=ticket.id, service=service)
        self._intercom(counter.post, SERVICE_POST.get(service), "handoff")
        self._enqueue(ticket)  # before the counter frees: that may close the branch
        self._free(counter)

    def _start_service(self, counter: _Counter, ticket: _Ticket) -> None:
        self._emit(
            ServiceStarted,
            QUEUE_DEVICE,
            ticket=ticket.id,
            counter=counter.id,
            teller=counter.teller,
        )
        low, high = self.profile.service_time.get(ticket.service, (5 * MINUTE, 10 * MINUTE))
        self._later(self._rng.triangular(low, high), self._end_service, counter, ticket)

    def _end_service(self, counter: _Counter, ticket: _Ticket) -> None:
        ticket.state = _DONE
        self._emit(ServiceEnded, QUEUE_DEVICE, ticket=ticket.id, counter=counter.id)
        rng = self._rng
        if rng.random() < self.profile.evaluation_request:
            self._later(rng.uniform(1, 3), self._request_evaluation, counter, ticket)
        else:
            self._later(rng.uniform(5, 15), self._free, counter)

    # -- evaluator pads -------------------------------------------------------------------------

    def _request_evaluation(self, counter: _Counter, ticket: _Ticket) -> None:
        p, rng = self.profile, self._rng
        self._emit(
            EvaluationRequested,
            counter.pad,
            counter=counter.id,
            ticket=ticket.id,
            teller=counter.teller,
        )
        if rng.random() < p.evaluation_submit:
            delay = rng.uniform(2, p.evaluation_window - 1)
            self._later(delay, self._submit_evaluation, counter, ticket)
        else:
            self._later(p.evaluation_window, self._expire_evaluation, counter, ticket)

    def _submit_evaluation(self, counter: _Counter, ticket: _Ticket) -> None:
        weights = next(w for limit, w in RATINGS_BY_WAIT if ticket.waited <= limit)
        rating: Rating = self._rng.choices(RATING_NAMES, weights)[0]
        self._emit(
            EvaluationSubmitted,
            counter.pad,
            counter=counter.id,
            rating=rating,
            ticket=ticket.id,
            teller=counter.teller,
        )
        self._later(self._rng.uniform(2, 6), self._free, counter)

    def _expire_evaluation(self, counter: _Counter, ticket: _Ticket) -> None:
        self._emit(EvaluationExpired, counter.pad, counter=counter.id, ticket=ticket.id)
        self._later(self._rng.uniform(2, 6), self._free, counter)

    # -- counters -------------------------------------------------------------------------------

    def _free(self, counter: _Counter) -> None:
        counter.busy = False
        if counter.closing or self._closing:
            self._close(counter)
            self._maybe_close_branch()
        elif counter.pause is not None:
            self._pause(counter)
        else:
            self._dispatch()

    def _open_counter(self, counter: _Counter) -> None:
        if counter.state == _OPEN or self._closing:
            return
        counter.state = _OPEN
        counter.paused_for = None
        self._emit(
            CounterOpened,
            QUEUE_DEVICE,
            counter=counter.id,
            kind=counter.kind,
            teller=counter.teller,
        )
        self._staff(counter.post, counter.teller)
        self._dispatch()

    def _request_pause(self, counter: _Counter, reason: str, duration: float | None) -> None:
        if counter.state != _OPEN or counter.closing or counter.pause is not None:
            return
        counter.pause = (reason, duration)
        if not counter.busy:
            self._pause(counter)

    def _pause(self, counter: _Counter) -> None:
        assert counter.pause is not None
        reason, duration = counter.pause
        counter.pause = None
        counter.state = _PAUSED
        counter.paused_for = reason
        self._emit(CounterPaused, QUEUE_DEVICE, counter=counter.id, reason=reason)
        if self._where.get(counter.teller) == counter.post:
            self._vacate(counter.post, counter.teller)
        if duration is not None:
            self._later(duration, self._resume, counter, reason)

    def _resume(self, counter: _Counter, reason: str) -> None:
        if counter.state == _PAUSED and counter.paused_for == reason and not counter.closing:
            self._open_counter(counter)

    def _close(self, counter: _Counter) -> None:
        """Close now if idle, else when the current customer is done."""
        if counter.state == _CLOSED:
            return
        if counter.busy:
            counter.closing = True
            return
        counter.state = _CLOSED
        counter.closing = False
        counter.pause = None
        self._emit(CounterClosed, QUEUE_DEVICE, counter=counter.id)
        if self._where.get(counter.teller) == counter.post:
            self._vacate(counter.post, counter.teller)

    # -- posts and intercom ---------------------------------------------------------------------

    def _staff(self, post: int, who: str) -> None:
        self._posts.setdefault(post, []).append(who)
        self._where[who] = post
        self._emit(PositionStaffed, INTERCOM_DEVICE, position=post, staff=who)

    def _vacate(self, post: int, who: str) -> None:
        staff = self._posts.get(post, [])
        if who in staff:
            staff.remove(who)
        if self._where.get(who) == post:
            del self._where[who]
        self._emit(PositionVacated, INTERCOM_DEVICE, position=post, staff=who)

    def _intercom(self, source: int, target: int | None, reason: IntercomReason) -> None:
        self._emit(
            IntercomCall, INTERCOM_DEVICE, from_position=source, reason=reason, to_position=target
        )
        rng = self._rng
        if rng.random() < 0.92:
            self._later(rng.uniform(4, 25), self._ack, target, None)

    def _ack(self, position: int | None, notice: str | None) -> None:
        if position is None:  # a call to all posts: whoever is free answers
            position = next(
                (p for p in (POST_FORMS, POST_SELF_SERVICE, POST_WEALTH) if self._posts.get(p)),
                None,
            )
        if position is not None and self._posts.get(position):
            self._emit(IntercomAck, INTERCOM_DEVICE, position=position, notice=notice)

    def _assist_call(self) -> None:
        tellers = [p for p in (POST_LOW, COUNTER_POST["high"]) if self._posts.get(p)]
        if tellers:
            self._intercom(self._rng.choice(tellers), POST_SELF_SERVICE, "assist")

    def _crowd_check(self) -> None:
        if self._waiting >= 12 and self._posts.get(POST_GREETER):
            self._intercom(POST_GREETER, None, "backup")

    def _leave_post(self, post: int, owner: str, long_break: bool) -> None:
        """``owner`` leaves ``post``; someone from 3, 4 or 7 may cover it, or nobody."""
        if self._where.get(owner) != post or post in self._covering:
            return
        rng = self._rng
        cover = None
        if long_break or rng.random() < self.profile.greeter_backfill:
            cover = self._find_cover()
        if long_break and cover is None:
            if self.now - self._origin < 15 * HOUR:  # nobody to cover yet: try again later
                self._later(10 * MINUTE, self._leave_post, post, owner, True)
            return
        if cover is not None:
            self._intercom(post, cover[0], "backup")
        self._vacate(post, owner)
        if long_break:
            away = self.profile.lunch_minutes * MINUTE
        elif cover is not None:
            away = rng.uniform(4, 12) * MINUTE
        else:
            away = rng.uniform(1.5, 6) * MINUTE
        if cover is not None:
            self._later(rng.uniform(15, 60), self._cover, post, *cover)
        self._later(away, self._return_to_post, post, owner)

    def _find_cover(self) -> tuple[int, str, _Counter | None] | None:
        rng = self._rng
        if DIRECTOR in self._posts.get(POST_FORMS, ()) and rng.random() < 0.55:
            return POST_FORMS, DIRECTOR, None
        idle_low = [
            c
            for c in self._counters
            if c.kind == "low" and c.state == _OPEN and not c.busy and c.pause is None
        ]
        if idle_low and rng.random() < 0.9:
            return POST_LOW, idle_low[0].teller, idle_low[0]
        if ADVISER in self._posts.get(POST_WEALTH, ()) and rng.random() < 0.7:
            return POST_WEALTH, ADVISER, None
        return None

    def _cover(self, post: int, home: int, who: str, counter: _Counter | None) -> None:
        if self._where.get(who) != home or self._posts.get(post) or post in self._covering:
            return
        if counter is not None:
            if counter.state != _OPEN or counter.busy or counter.closing or counter.pause:
                return  # called a customer meanwhile: the post stays empty
            counter.pause = (_COVER, None)
            self._pause(counter)  # vacates the teller's post 4
        else:
            self._vacate(home, who)
        self._staff(post, who)
        self._covering[post] = (who, home, counter)

    def _return_to_post(self, post: int, owner: str) -> None:
        if owner in self._where:
            return
        self._staff(post, owner)
        cover = self._covering.pop(post, None)
        if cover is None:
            return
        who, home, counter = cover
        self._vacate(post, who)
        if counter is None:
            self._staff(home, who)
        elif counter.state == _PAUSED and counter.paused_for == _COVER:
            self._open_counter(counter)

    # -- ticket printer -------------------------------------------------------------------------

    def _fault(self, fault: str) -> bool:
        if fault in self._faults:
            return False
        self._faults.add(fault)
        self._emit(DeviceFault, QUEUE_DEVICE, fault=fault)
        return True

    def _recover(self, *faults: str) -> None:
        for fault in faults:
            if fault in self._faults:
                self._faults.discard(fault)
                self._emit(DeviceRecovered, QUEUE_DEVICE, fault=fault)

    def _paper_low(self) -> None:
        rng = self._rng
        if not self._fault("paper_low"):
            return
        if rng.random() < self.profile.paper_runs_out:
            self._later(rng.uniform(10, 25) * MINUTE, self._paper_out)
        else:
            self._later(rng.uniform(5, 20) * MINUTE, self._recover, "paper_low")

    def _paper_out(self) -> None:
        if self._fault("paper_out"):
            self._later(self._rng.uniform(2, 6) * MINUTE, self._recover, "paper_out", "paper_low")

    def _paper_jam(self) -> None:
        if self._fault("paper_jam"):
            self._later(self._rng.uniform(1, 6) * MINUTE, self._recover, "paper_jam")
