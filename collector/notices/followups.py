"""Follow-up notices: an unsatisfied customer, a queue too long for the counters open.

Both go to the first staffed post of ``follow_up_positions`` (failing that,
the first of them whose intercom is known) and never escalate.

- Unsatisfied: one notice per rating; the episode ends acked, or unanswered
  when ``ack_timeout_seconds`` passes without an ack (or nobody can be told).
- Queue long: a service whose oldest waiting ticket reached the wait warning
  threshold, or with more than ``waiting_per_counter`` waiting per open counter
  of its kind. Notified at most once per ``repeat_seconds`` per service while it
  stays long; the episode is resolved when the queue is short again.

Counter kinds per service: ``cash`` → high, ``non_cash`` and ``corporate`` → low
(corporate business is done at the low counters), ``vip`` → vip; any other service
counts every open counter. A counter whose kind is unknown
counts for every service.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from branchwatch.contract.events import EvaluationSubmitted
from collector.floor import finished
from collector.floor.branch import BranchState, CounterState
from collector.notices.book import (
    BUSY,
    Policy,
    Target,
    Tick,
    end_episode,
    first_reachable,
    open_episode,
)
from collector.notices.state import Episode, NoticeBook

SERVICE_COUNTER_KINDS: Final[dict[str, str]] = {
    "cash": "high",
    "non_cash": "low",
    "corporate": "low",
    "vip": "vip",
}
# A rating older than this when it arrives is not followed up: the customer has left.
FOLLOW_UP_MAX_AGE: Final = 300.0


def follow_up_target(policy: Policy, tick: Tick) -> Target | None:
    """Whom a follow-up goes to: the first staffed follow-up post, else the first whose
    intercom is known; :data:`BUSY` or None (nobody can be reached) as :func:`first_reachable`.
    """
    positions = policy.config.follow_up_positions
    target = first_reachable(tick, positions)
    return target if target is not None else first_reachable(tick, positions, staffed_only=False)


# -- unsatisfied ratings ---------------------------------------------------------------


def unsatisfied(branch: BranchState, e: EvaluationSubmitted, now: float) -> Episode:
    """The episode of an unsatisfied rating: what staff need to find the customer."""
    ticket = None
    if e.ticket is not None:
        ticket = branch.tickets.get(e.ticket) or finished.get(branch, e.ticket)
    teller = e.teller
    waited = None
    if ticket is not None:
        teller = teller or ticket.teller
        start = ticket.issued_ts if ticket.issued_ts is not None else ticket.wait_since
        if start is not None and ticket.called_ts is not None:
            waited = max(ticket.called_ts - start, 0.0)
    if teller is None and (counter := branch.counters.get(e.counter)) is not None:
        teller = counter.teller
    return Episode(
        kind="unsatisfied",
        since=e.ts,
        due=now,
        counter=e.counter,
        teller=teller,
        ticket=e.ticket,
        waited=waited,
    )


def advance_unsatisfied(policy: Policy, tick: Tick, episode: Episode) -> None:
    book = tick.branch.notices
    if episode.stage == "notified":  # the ack timeout passed
        end_episode(book, episode, tick.now, "unanswered")
        return
    target = follow_up_target(policy, tick)
    if target is BUSY:
        episode.due = tick.now
        return
    if target is None:
        end_episode(book, episode, tick.now, "unanswered")
        return
    texts = policy.texts
    text = texts.render(
        "unsatisfied",
        counter=episode.counter,
        teller=episode.teller,
        ticket=episode.ticket,
        waited=None if episode.waited is None else texts.duration(episode.waited),
    )
    tick.send(episode, target.position, target.agent, text)
    episode.stage = "notified"
    episode.step_ts = tick.now
    episode.due = tick.now + policy.config.ack_timeout_seconds


# -- long queues -----------------------------------------------------------------------


class QueueLoad(NamedTuple):
    waiting: int
    oldest: float  # waiting since (event time) of the oldest ticket
    counters: int  # open counters of the service's kind
    long: bool


def serves(counter: CounterState, service: str) -> bool:
    """Whether ``counter`` takes tickets of ``service`` (by the kinds above)."""
    kind = SERVICE_COUNTER_KINDS.get(service)
    return kind is None or counter.kind in (None, kind)


def open_counters(branch: BranchState, service: str) -> int:
    return sum(
        1
        for counter in branch.counters.values()
        if counter.state == "open" and serves(counter, service)
    )


def queue_load(policy: Policy, branch: BranchState, service: str, now: float) -> QueueLoad | None:
    """How loaded a service's queue is; None when nobody waits."""
    queue = branch.services[service].queue
    if not queue:
        return None
    waiting = len(queue)
    oldest = min(queue.values())
    counters = open_counters(branch, service)
    long = (
        now - oldest >= policy.wait_warning_seconds
        or waiting > policy.config.waiting_per_counter * max(counters, 1)
    )
    return QueueLoad(waiting, oldest, counters, long)


def _episode_of(book: NoticeBook, service: str) -> Episode | None:
    return next(
        (e for e in book.open if e.kind == "queue_long" and e.service == service),
        None,
    )


def review_queues(policy: Policy, tick: Tick) -> None:
    """End the episodes of queues short again, notify the long ones.

    Sets ``book.queue_due``: when a queue next needs a look without any event
    (it grows long by time alone when its oldest ticket reaches the warning
    wait; a long one may be told again after ``repeat_seconds``).
    """
    branch, now = tick.branch, tick.now
    book = branch.notices
    repeat = policy.config.repeat_seconds
    next_check: float | None = None
    for service in policy.rules.services:
        load = queue_load(policy, branch, service, now)
        episode = _episode_of(book, service)
        last = book.queue_sent.get(service)
        allowed_at = now if last is None else max(now, last + repeat)
        if load is None or not load.long:
            if episode is not None:
                end_episode(book, episode, now, "resolved")
            if load is None:
                continue
            check = max(load.oldest + policy.wait_warning_seconds, allowed_at)
        elif allowed_at > now:
            check = allowed_at
        elif _notify_queue(policy, tick, service, load, episode):
            check = now + repeat
        else:
            check = now  # the follow-up posts were busy in this pass: the next one
        next_check = check if next_check is None else min(next_check, check)
    book.queue_due = next_check


def _notify_queue(
    policy: Policy, tick: Tick, service: str, load: QueueLoad, episode: Episode | None
) -> bool:
    """Tell the follow-up post; False when its posts were busy in this pass."""
    book = tick.branch.notices
    target = follow_up_target(policy, tick)
    if target is BUSY:
        return False
    book.queue_sent[service] = tick.now  # nobody to tell counts too: retry after repeat
    if target is None:
        return True
    if episode is None:
        # Named by the oldest ticket's wait (event time), which both twins of a pair see.
        episode = Episode(kind="queue_long", since=tick.now, service=service, origin=load.oldest)
        if not open_episode(book, episode):
            return True
    texts = policy.texts
    text = texts.render(
        "queue_long",
        service=texts.service(service),
        waiting=str(load.waiting),
        oldest=texts.duration(tick.now - load.oldest),
        counters=str(load.counters),
    )
    tick.send(episode, target.position, target.agent, text)
    episode.stage = "notified"
    episode.step_ts = tick.now
    return True
