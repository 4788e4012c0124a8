"""Ticket lifecycle: queues, wait and service times, issued/served/lost totals.

Handlers record what each event says about its ticket; :func:`settle` then
counts every total at most once, as soon as the ticket's service is known.
So a late ``issued`` (a replay filling a gap) still counts and observes its
wait, but nothing late ever puts a ticket back into a queue: only the live,
forward path enqueues.

Finished tickets are kept as compact records (:mod:`collector.floor.finished`):
a handler works on a copy of one and keeps what it changed (:func:`_keep`).
Strings a ticket keeps are interned: every ticket of a service, counter or
teller shares one copy instead of its event's own.

Each handler returns ``None`` when applied, or the reason it was refused.
"""

from __future__ import annotations

import sys
from bisect import bisect_left
from typing import Final

from branchwatch.contract.events import (
    ServiceEnded,
    ServiceStarted,
    TicketCalled,
    TicketIssued,
    TicketNoShow,
    TicketTransferred,
    TicketWalkout,
)
from collector.floor import day, finished, tellers
from collector.floor.agents import count
from collector.floor.branch import (
    AgentState,
    BranchState,
    Histogram,
    LostReason,
    Ticket,
    TicketState,
)
from collector.floor.config import FloorRules

MAX_LIVE_TICKETS: Final = 10_000  # waiting, called or serving, per branch
TOO_MANY_TRANSFER_PAIRS: Final = "too_many_transfer_pairs"


def observe(histogram: Histogram, buckets: tuple[float, ...], value: float) -> None:
    """One observation; ``le`` is inclusive, so ``bisect_left`` finds the bucket."""
    value = max(value, 0.0)
    histogram.counts[bisect_left(buckets, value)] += 1
    histogram.sum += value
    histogram.count += 1


def settle(rules: FloorRules, branch: BranchState, ticket: Ticket) -> None:
    """Count what the ticket's known facts owe its service's totals, each once.

    The business day's figures (:mod:`collector.floor.day`) and the teller's count
    with the totals, when the event that completes the figure belongs to the day.
    """
    service = ticket.service
    if service is None:
        return
    stats = branch.services[service]
    called = ticket.called_ts
    if called is not None and not ticket.wait_counted and ticket.wait_since is not None:
        ticket.wait_counted = True
        observe(stats.wait, rules.wait_buckets, called - ticket.wait_since)
        day.count_wait(rules, branch, service, called, called - ticket.wait_since)
    started = ticket.started_ts
    if started is not None:
        if not ticket.served_counted:
            ticket.served_counted = True
            stats.served += 1
            day.count_served(branch, service, started)
        ended = ticket.ended_ts
        if ended is not None and not ticket.service_counted:
            ticket.service_counted = True
            observe(stats.service, rules.service_buckets, ended - started)
            day.count_ended(branch, service, ended)
            tellers.count_served(rules, branch, ticket, ended)
    if ticket.lost is not None and not ticket.lost_counted:
        ticket.lost_counted = True
        stats.lost.add(ticket.lost)
        day.count_lost(branch, service, ticket.lost, ticket.done_ts)


def _is_stale(branch: BranchState, ts: float) -> bool:
    """Before the current opening: a previous day's ticket, never queued again."""
    return branch.opened_ts is not None and ts < branch.opened_ts


def _new(branch: BranchState, ticket_id: str, ts: float, state: TicketState) -> Ticket | None:
    """A ticket first heard of now; live unless it is a previous day's. None: cap reached.

    A finished one is remembered now (the newest); the caller keeps what it adds."""
    if state == "done" or _is_stale(branch, ts):
        ticket = Ticket(state="done", done_ts=ts)
        finished.add(branch, ticket_id, ticket)
        return ticket
    if len(branch.tickets) >= MAX_LIVE_TICKETS:
        return None
    ticket = Ticket(state=state)
    branch.tickets[ticket_id] = ticket
    return ticket


def _keep(branch: BranchState, ticket_id: str, ticket: Ticket, live: bool) -> None:
    """Keep what a handler changed of a finished ticket (a live one is changed in place)."""
    if not live:
        finished.update(branch, ticket_id, ticket)


def _finish(
    rules: FloorRules, branch: BranchState, ticket_id: str, ticket: Ticket, ts: float
) -> None:
    """Take a live ticket off the floor (and out of its queue), count it, remember it."""
    if ticket.state == "waiting" and ticket.service is not None:
        _dequeue(branch, ticket.service, ticket_id)
    del branch.tickets[ticket_id]
    ticket.state = "done"
    ticket.done_ts = ts
    settle(rules, branch, ticket)
    finished.add(branch, ticket_id, ticket)


def _leave_queue(branch: BranchState, ticket_id: str, ticket: Ticket, state: TicketState) -> None:
    if ticket.state == "waiting" and ticket.service is not None:
        _dequeue(branch, ticket.service, ticket_id)
    ticket.state = state


def _dequeue(branch: BranchState, service: str, ticket_id: str) -> None:
    queue = branch.services[service].queue
    queue.pop(ticket_id, None)
    if not queue:
        queue.clear()  # an emptied dict keeps its table (most queues are empty) until cleared


def _before_segment(ticket: Ticket, ts: float) -> bool:
    """An event older than the ticket's latest transfer belongs to an earlier segment."""
    return ticket.transferred_ts is not None and ts < ticket.transferred_ts


def _find(branch: BranchState, ticket_id: str) -> tuple[Ticket | None, bool]:
    ticket = branch.tickets.get(ticket_id)
    if ticket is not None:
        return ticket, True
    return finished.get(branch, ticket_id), False


def _find_or_new(
    branch: BranchState, ticket_id: str, ts: float, state: TicketState
) -> tuple[Ticket | None, bool]:
    """The ticket and whether it is live; one first heard of now starts in ``state`` (with
    no transfer and no loss yet). No ticket: the cap on live tickets is reached."""
    ticket, live = _find(branch, ticket_id)
    if ticket is None:
        ticket = _new(branch, ticket_id, ts, state)
        live = ticket is not None and ticket.state != "done"
    return ticket, live


def on_issued(rules: FloorRules, branch: BranchState, _: AgentState, e: TicketIssued) -> str | None:
    stats = branch.services.get(e.service)
    if stats is None:
        return "unknown_service"
    ticket, live = _find(branch, e.ticket)
    if ticket is not None and ticket.issued_ts is not None:
        if live or (ticket.done_ts is not None and e.ts < ticket.done_ts):
            return "duplicate_ticket"
        finished.forget(branch, e.ticket)  # the id is reused after the old ticket ended
        ticket = None
    service = sys.intern(e.service)
    if ticket is None:
        ticket = _new(branch, e.ticket, e.ts, "waiting")
        if ticket is None:
            return "too_many_tickets"
        stats.issued += 1
        day.count_issued(branch, service, e.ts)
        ticket.service = service
        ticket.vip = e.vip
        ticket.issued_ts = ticket.wait_since = e.ts
        if ticket.state == "waiting":
            stats.queue[e.ticket] = e.ts
        else:
            finished.update(branch, e.ticket, ticket)  # a previous day's
        return None
    # Later events of this ticket came first: count the issue, never enqueue.
    stats.issued += 1
    day.count_issued(branch, service, e.ts)
    if ticket.transfer_owed is not None:
        count_transfer(rules, branch, service, ticket.transfer_owed)
        ticket.transfer_owed = None
    ticket.issued_ts = e.ts
    ticket.vip = e.vip
    if ticket.wait_since is None:
        ticket.wait_since = e.ts
    if ticket.service is None:
        ticket.service = service
    settle(rules, branch, ticket)
    _keep(branch, e.ticket, ticket, live)
    return None


def on_called(rules: FloorRules, branch: BranchState, _: AgentState, e: TicketCalled) -> str | None:
    ticket, live = _find_or_new(branch, e.ticket, e.ts, "called")
    if ticket is None:
        return "too_many_tickets"
    if _before_segment(ticket, e.ts):
        return None  # the call that led to the transfer, arriving late: already past
    if live:
        if ticket.state in ("waiting", "called"):
            # A recall may move the ticket to another counter.
            ticket.counter = sys.intern(e.counter)
        if ticket.state == "waiting":
            _leave_queue(branch, e.ticket, ticket, "called")
    if ticket.called_ts is None:
        ticket.called_ts = e.ts
    settle(rules, branch, ticket)
    _keep(branch, e.ticket, ticket, live)
    return None


def on_transferred(
    rules: FloorRules, branch: BranchState, _: AgentState, e: TicketTransferred
) -> str | None:
    stats = branch.services.get(e.service)
    if stats is None:
        return "unknown_service"
    service = sys.intern(e.service)
    ticket, live = _find(branch, e.ticket)
    if ticket is None:
        ticket = _new(branch, e.ticket, e.ts, "waiting")
        if ticket is None:
            return "too_many_tickets"
        ticket.service = ticket.transfer_owed = service
        ticket.wait_since = ticket.transferred_ts = e.ts
        if ticket.state == "waiting":
            stats.queue[e.ticket] = e.ts
        else:
            finished.update(branch, e.ticket, ticket)  # a previous day's
        return None
    if _before_segment(ticket, e.ts):
        return None  # an earlier transfer, replayed: where from is not known any more
    _count_transfer_of(rules, branch, ticket, service)
    if not live:
        _keep(branch, e.ticket, ticket, live)  # a finished ticket is never queued again
        return None
    last_move = max(ticket.called_ts or 0.0, ticket.started_ts or 0.0)
    if e.ts < last_move:
        # Called (or served) after this transfer already: it is where it belongs.
        ticket.service = service
        ticket.transferred_ts = e.ts
        settle(rules, branch, ticket)
        return None
    _leave_queue(branch, e.ticket, ticket, "waiting")
    ticket.service = service
    ticket.wait_since = ticket.transferred_ts = e.ts
    ticket.called_ts = ticket.started_ts = ticket.ended_ts = None
    ticket.counter = None
    ticket.wait_counted = ticket.service_counted = False
    stats.queue[e.ticket] = e.ts
    settle(rules, branch, ticket)  # a served count still owed from before the issue was seen
    return None


def _count_transfer_of(rules: FloorRules, branch: BranchState, ticket: Ticket, to: str) -> None:
    """Count a transfer from the ticket's current service, or once its issue is seen."""
    if ticket.service is not None:
        count_transfer(rules, branch, ticket.service, to)
    elif ticket.transfer_owed is None:
        ticket.transfer_owed = to


def count_transfer(rules: FloorRules, branch: BranchState, source: str, to: str) -> None:
    """One more transfer ``source`` -> ``to``; a new pair beyond the cap is counted as refused."""
    targets = branch.transfers.get(source)
    if targets is None or to not in targets:
        if sum(len(t) for t in branch.transfers.values()) >= rules.max_transfer_pairs:
            count(branch.refused, TOO_MANY_TRANSFER_PAIRS)
            return
        targets = branch.transfers.setdefault(source, {})
        targets[to] = 0
    targets[to] += 1


def on_no_show(
    rules: FloorRules, branch: BranchState, _: AgentState, e: TicketNoShow
) -> str | None:
    return _lose(rules, branch, e.ticket, e.ts, "no_show", waiting_only=False)


def on_walkout(
    rules: FloorRules, branch: BranchState, _: AgentState, e: TicketWalkout
) -> str | None:
    return _lose(rules, branch, e.ticket, e.ts, "walkout", waiting_only=True)


def _lose(
    rules: FloorRules,
    branch: BranchState,
    ticket_id: str,
    ts: float,
    reason: LostReason,
    *,
    waiting_only: bool,
) -> str | None:
    ticket, live = _find(branch, ticket_id)
    if ticket is None:
        ticket = _new(branch, ticket_id, ts, "done")
        assert ticket is not None  # a finished record is never capped
        ticket.lost = reason
        finished.update(branch, ticket_id, ticket)
        return None
    if not live or _before_segment(ticket, ts):
        return None  # already finished: a replayed duplicate
    if waiting_only and ticket.state != "waiting":
        return "bad_transition"  # a walkout after the ticket was called
    ticket.lost = reason
    _finish(rules, branch, ticket_id, ticket, ts)
    return None


def lose_waiting(rules: FloorRules, branch: BranchState, ts: float) -> None:
    """Branch closed: every still-waiting ticket ends as lost ``closed``."""
    for stats in branch.services.values():
        for ticket_id in list(stats.queue):
            ticket = branch.tickets[ticket_id]
            ticket.lost = "closed"
            _finish(rules, branch, ticket_id, ticket, ts)
        stats.queue.clear()


def clear_tickets(branch: BranchState) -> None:
    """Branch opened: a new day, leftover tickets and remembered ids are forgotten."""
    branch.tickets.clear()
    finished.clear(branch)
    for stats in branch.services.values():
        stats.queue.clear()


def on_started(
    rules: FloorRules, branch: BranchState, _: AgentState, e: ServiceStarted
) -> str | None:
    ticket, live = _find_or_new(branch, e.ticket, e.ts, "serving")
    if ticket is None:
        return "too_many_tickets"
    if _before_segment(ticket, e.ts):
        return None
    if not live and ticket.lost is not None:
        return None  # lost already: a start cannot follow
    # Whose transaction it is: the event's teller, else whoever the counter opened with.
    counter = branch.counters.get(e.counter)
    teller = e.teller if e.teller is not None or counter is None else counter.teller
    if live:
        _leave_queue(branch, e.ticket, ticket, "serving")
        ticket.counter = sys.intern(e.counter)
    if teller is not None and (live or ticket.teller is None):
        ticket.teller = teller = sys.intern(teller)
        tellers.seen(rules, branch, teller, e.ts)
    if ticket.started_ts is None:
        ticket.started_ts = e.ts
    settle(rules, branch, ticket)
    _keep(branch, e.ticket, ticket, live)
    return None


def on_ended(rules: FloorRules, branch: BranchState, _: AgentState, e: ServiceEnded) -> str | None:
    ticket, live = _find(branch, e.ticket)
    if ticket is None:
        ticket = _new(branch, e.ticket, e.ts, "done")
        assert ticket is not None  # a finished record is never capped
        ticket.ended_ts = e.ts
        finished.update(branch, e.ticket, ticket)
        return None
    if _before_segment(ticket, e.ts) or ticket.ended_ts is not None or ticket.lost is not None:
        return None
    ticket.ended_ts = e.ts
    if live:
        ticket.counter = sys.intern(e.counter)
        _finish(rules, branch, e.ticket, ticket, e.ts)
        return None
    settle(rules, branch, ticket)
    _keep(branch, e.ticket, ticket, live)
    return None
