"""A simulated branch floor: the pure model behind ``branchwatch simulate``.

No I/O and no clock: :meth:`BranchSim.advance` is told the simulated time to
run to and returns the contract events that happened by then, in ``seq``
order (the engine, the mapping of simulated time to ``ts`` and the agenda are
in :mod:`branchwatch.sim.base`; posts and intercom in :mod:`branchwatch.sim.staff`;
answering floor notices in :mod:`branchwatch.sim.notices`).
This module is the day: opening and closing, arrivals on the time-of-day
curve, queues and counters, every ticket path, evaluator pads, the printer.

Devices of the one agent (``edge-1``) of a branch: ``queue-1`` (ticket machine
and counter terminals, whose printer faults), ``pad-cN`` (an evaluator pad per
counter) and ``intercom-1`` (post check-ins and intercom calls).
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import Unpack

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
    ServiceEnded,
    ServiceStarted,
    TicketCalled,
    TicketIssued,
    TicketNoShow,
    TicketTransferred,
    TicketWalkout,
)
from branchwatch.contract.ids import CounterKind, Rating
from branchwatch.sim.base import (
    AGENT,
    CALLED,
    CLOSED,
    DEFAULT_TS_ORIGIN,
    DONE,
    OPEN,
    PAUSED,
    QUEUE_DEVICE,
    WAITING,
    SimCounter,
    SimOptions,
    SimTicket,
)
from branchwatch.sim.profile import (
    DAY,
    HOUR,
    MINUTE,
    POST_GREETER,
    POST_SELF_SERVICE,
    POST_WEALTH,
    RATING_NAMES,
    SERVICE_POST,
    TICKET_LETTER,
)
from branchwatch.sim.realism import RealisticFloor

__all__ = ["AGENT", "DEFAULT_TS_ORIGIN", "BranchSim"]


class BranchSim(RealisticFloor):
    """One branch, one agent: a seeded day after day of floor events."""

    def __init__(self, region: str, branch: str, **options: Unpack[SimOptions]) -> None:
        super().__init__(region, branch, **options)
        rng = self._rng
        profile = self.profile
        start_hour = self.start_hour
        for kind, (low, high) in profile.counters.items():
            for _ in range(rng.randint(low, high)):
                self._add_counter(kind, flex=False)
        for kind in profile.flex_counters:
            self._add_counter(kind, flex=True)
        self._peak_per_second = rng.uniform(*profile.peak_arrivals_per_hour) / HOUR
        self._peak_today = self._peak_per_second
        self._curve_max = max(m for _, m in profile.arrival_curve)
        mix = profile.service_mix
        self._services = tuple(mix)
        self._mix_weights = tuple(mix[s] for s in self._services)

        self._queues: dict[str, deque[tuple[int, SimTicket]]] = {s: deque() for s in mix}
        self._numbers: dict[str, int] = dict.fromkeys(mix, 0)

        if not 0.0 <= start_hour < 24.0:
            raise ValueError(f"start_hour {start_hour} is not within 0..24")
        if start_hour >= profile.close_hour:
            self._at(self.now, self._next_day)
        else:
            self._at(max(self.now, profile.open_hour * HOUR), self._open_branch)

    # -- the day --------------------------------------------------------------------------------

    def _add_counter(self, kind: CounterKind, flex: bool) -> None:
        tiers = self.profile.tiers(kind)
        self._counters.append(SimCounter(len(self._counters) + 1, kind, flex, tiers))

    def _next_day(self) -> None:
        p = self.profile
        self._dates_passed += 1
        if p.real_nights:  # the next opening is on the next date
            self._origin += DAY
            self._at(self._origin + p.open_hour * HOUR, self._open_branch)
            return
        self._origin = self.now + p.night - p.open_hour * HOUR
        self._at(self.now + p.night, self._open_branch)

    def _open_branch(self) -> None:
        self._day += 1
        self.is_open = True
        self._closing = False
        self._numbers = dict.fromkeys(self._numbers, 0)
        p = self.profile
        for post, who in p.lobby_staff.items():
            self._staff(post, who)
        hour = (self.now - self._origin) / HOUR
        self._peak_today = self._peak_per_second * self._day_factor()
        for counter in self._counters:
            counter.closing = False
            counter.pause = None
            if not counter.flex:
                self._open_counter(counter)
            elif p.queue_counters is None and hour < p.flex_hours[1]:
                start = p.flex_hours[0] + self._rng.uniform(-0.25, 0.25)
                self._at_hour(max(start, hour), self._open_flex, counter)
                self._at_hour(p.flex_hours[1] + self._rng.uniform(0, 0.5), self._close, counter)
        self._emit(BranchOpened, QUEUE_DEVICE)
        self._start_queue_checks()
        self._plan_day(hour)
        if self._day == 1:
            self._plan_incidents()

    def _open_flex(self, counter: SimCounter) -> None:
        """A flexible counter's hours begin (unless a notice had it opened already)."""
        if counter.state == CLOSED:
            self._open_counter(counter)

    def _plan_day(self, hour: float) -> None:
        p, rng = self.profile, self._rng
        greeter, deputy = p.lobby_staff[POST_GREETER], p.lobby_staff[POST_SELF_SERVICE]
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
                self._at_hour(at, self._leave_post, POST_GREETER, greeter, False)
        self._at_hour(rng.uniform(12.0, 12.5), self._leave_post, POST_GREETER, greeter, True)
        for _ in range(rng.randint(*p.deputy_absences)):
            self._at_hour(
                rng.uniform(9.5, 16.5), self._leave_post, POST_SELF_SERVICE, deputy, False
            )
        self._at_hour(rng.uniform(13.0, 13.5), self._leave_post, POST_SELF_SERVICE, deputy, True)
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

    def _plan_incidents(self) -> None:
        """The profile's scripted trouble, counted from this (the first) opening."""
        incidents, rng = self.profile.incidents, self._rng
        if incidents.greeter_away is not None:
            after, away = incidents.greeter_away
            greeter = self.profile.lobby_staff[POST_GREETER]
            self._later(after, self._step_away, POST_GREETER, greeter, away)
        if incidents.rush is not None:
            within, customers, service = incidents.rush
            if service in self._queues:
                for _ in range(customers):
                    self._later(rng.uniform(0, within), self._issue, service)
        if incidents.paper_out is not None:
            after, lasting = incidents.paper_out
            self._later(after / 2, self._fault, "paper_low")
            self._later(after, self._fault, "paper_out")
            self._later(after + lasting, self._recover, "paper_out", "paper_low")

    def _closeout(self) -> None:
        self._closing = True
        for counter in self._counters:
            self._close(counter)
        self._maybe_close_branch()

    def _maybe_close_branch(self) -> None:
        if not self._closing or any(c.state != CLOSED for c in self._counters):
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
            t += rng.expovariate(self._peak_today * self._curve_max)
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
        if self._printer_down():
            return  # no ticket printed: the customer is helped at the door
        service = self._rng.choices(self._services, self._mix_weights)[0]
        if not self._uses_machine(service):
            self._issue(service)

    def _waiting_by_service(self) -> dict[str, int]:
        waiting = dict.fromkeys(self._queues, 0)
        for service, queue in self._queues.items():
            for gen, ticket in queue:
                if ticket.state == WAITING and ticket.gen == gen:
                    waiting[service] += 1
        return waiting

    def _printer_down(self) -> bool:
        return "paper_out" in self._faults or "paper_jam" in self._faults

    def _issue(self, service: str) -> None:
        """A customer takes a ticket for ``service`` (when the printer can print one)."""
        if self._printer_down():
            return
        rng = self._rng
        self._numbers[service] += 1
        number = self._numbers[service]
        ticket = SimTicket(
            f"{TICKET_LETTER.get(service, 'X')}{number:03d}-d{self._day}", service, 0
        )
        vip = service == "vip"
        self._emit(TicketIssued, QUEUE_DEVICE, ticket=ticket.id, service=service, vip=vip)
        if vip and self._posts.get(POST_GREETER) and rng.random() < 0.6:
            self._intercom(POST_GREETER, POST_WEALTH, "vip")
        self._enqueue(ticket)

    def _enqueue(self, ticket: SimTicket) -> None:
        p = self.profile
        ticket.gen += 1
        ticket.since = self.now
        ticket.state = WAITING
        self._queues[ticket.service].append((ticket.gen, ticket))
        self._waiting += 1
        patience = p.patience_min + self._rng.expovariate(1.0 / p.patience_mean_extra)
        self._later(patience, self._walkout, ticket, ticket.gen)
        self._dispatch()

    def _walkout(self, ticket: SimTicket, gen: int) -> None:
        if ticket.state == WAITING and ticket.gen == gen:
            ticket.state = DONE
            self._waiting -= 1
            self._emit(TicketWalkout, QUEUE_DEVICE, ticket=ticket.id)

    def _dispatch(self) -> None:
        if self._closing:
            return
        for counter in self._counters:
            if counter.state == OPEN and not counter.busy and not counter.closing:
                ticket = self._pick(counter)
                if ticket is not None:
                    self._call(counter, ticket)

    def _pick(self, counter: SimCounter) -> SimTicket | None:
        for tier in counter.tiers:
            best: deque[tuple[int, SimTicket]] | None = None
            for service in tier:
                queue = self._queues[service]
                while queue and (queue[0][1].state != WAITING or queue[0][1].gen != queue[0][0]):
                    queue.popleft()  # walked out, or re-queued elsewhere after a transfer
                if queue and (best is None or queue[0][1].since < best[0][1].since):
                    best = queue
            if best is not None:
                return best.popleft()[1]
        return None

    def _call(self, counter: SimCounter, ticket: SimTicket) -> None:
        p, rng = self.profile, self._rng
        ticket.state = CALLED
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

    def _no_show(self, counter: SimCounter, ticket: SimTicket) -> None:
        ticket.state = DONE
        self._emit(TicketNoShow, QUEUE_DEVICE, ticket=ticket.id)
        self._free(counter)

    def _transfer(self, counter: SimCounter, ticket: SimTicket, service: str) -> None:
        ticket.service = service
        ticket.transferred = True
        self._emit(TicketTransferred, QUEUE_DEVICE, ticket=ticket.id, service=service)
        self._intercom(counter.post, SERVICE_POST.get(service), "handoff")
        self._enqueue(ticket)  # before the counter frees: that may close the branch
        self._free(counter)

    def _start_service(self, counter: SimCounter, ticket: SimTicket) -> None:
        self._emit(
            ServiceStarted,
            QUEUE_DEVICE,
            ticket=ticket.id,
            counter=counter.id,
            teller=counter.teller,
        )
        low, high = self.profile.service_time.get(ticket.service, (5 * MINUTE, 10 * MINUTE))
        self._later(self._rng.triangular(low, high), self._end_service, counter, ticket)

    def _end_service(self, counter: SimCounter, ticket: SimTicket) -> None:
        ticket.state = DONE
        self._emit(ServiceEnded, QUEUE_DEVICE, ticket=ticket.id, counter=counter.id)
        rng = self._rng
        if rng.random() < self.profile.evaluation_request:
            self._later(rng.uniform(1, 3), self._request_evaluation, counter, ticket)
        else:
            self._later(rng.uniform(5, 15), self._free, counter)

    # -- evaluator pads -------------------------------------------------------------------------

    def _request_evaluation(self, counter: SimCounter, ticket: SimTicket) -> None:
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

    def _submit_evaluation(self, counter: SimCounter, ticket: SimTicket) -> None:
        weights = self._rating_weights(counter.teller, ticket.waited)
        rating: Rating = self._rng.choices(RATING_NAMES, weights)[0]
        if rating == "unsatisfied":
            self._unsatisfied.append((self.now, ticket.id))
        self._emit(
            EvaluationSubmitted,
            counter.pad,
            counter=counter.id,
            rating=rating,
            ticket=ticket.id,
            teller=counter.teller,
        )
        self._later(self._rng.uniform(2, 6), self._free, counter)

    def _expire_evaluation(self, counter: SimCounter, ticket: SimTicket) -> None:
        self._emit(EvaluationExpired, counter.pad, counter=counter.id, ticket=ticket.id)
        self._later(self._rng.uniform(2, 6), self._free, counter)

    # -- counters -------------------------------------------------------------------------------

    def _free(self, counter: SimCounter) -> None:
        counter.busy = False
        if counter.closing or self._closing:
            self._close(counter)
            self._maybe_close_branch()
        elif counter.pause is not None:
            self._pause(counter)
        else:
            self._dispatch()

    def _open_counter(self, counter: SimCounter) -> None:
        if counter.state == OPEN or self._closing:
            return
        self._take_teller(counter)
        counter.state = OPEN
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

    def _request_pause(self, counter: SimCounter, reason: str, duration: float | None) -> None:
        if counter.state != OPEN or counter.closing or counter.pause is not None:
            return
        counter.pause = (reason, duration)
        if not counter.busy:
            self._pause(counter)

    def _pause(self, counter: SimCounter) -> None:
        assert counter.pause is not None
        reason, duration = counter.pause
        counter.pause = None
        counter.state = PAUSED
        counter.paused_for = reason
        self._emit(CounterPaused, QUEUE_DEVICE, counter=counter.id, reason=reason)
        if self._where.get(counter.teller) == counter.post:
            self._vacate(counter.post, counter.teller)
        if duration is not None:
            self._later(duration, self._resume, counter, reason)

    def _resume(self, counter: SimCounter, reason: str) -> None:
        if counter.state == PAUSED and counter.paused_for == reason and not counter.closing:
            self._open_counter(counter)

    def _close(self, counter: SimCounter) -> None:
        """Close now if idle, else when the current customer is done."""
        if counter.state == CLOSED:
            return
        if counter.busy:
            counter.closing = True
            return
        counter.state = CLOSED
        counter.closing = False
        counter.pause = None
        self._emit(CounterClosed, QUEUE_DEVICE, counter=counter.id)
        if self._where.get(counter.teller) == counter.post:
            self._vacate(counter.post, counter.teller)

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
