"""The notice engine: floor events in, ``notify`` commands out. No I/O, no clock.

The store calls :meth:`NoticeEngine.observe` for every event it applied to a
branch (live, or late: a replay filling a seq gap), and the runtime's tick
calls :meth:`NoticeEngine.due` (through ``Store.due_notices``) for each branch
whose ``notices.next_due`` has passed. Everything the engine knows is in the
branch's :class:`~collector.notices.state.NoticeBook`, so it survives snapshots.

Rules that hold whatever the event order:

- A required post's episode follows the floor state, which is the same whatever
  order events arrive in: a post that is empty now while the branch is open has an
  episode, even when a replay (a rebuild, a gap filled) is what showed it empty; a
  post staffed by now has none. So a replay never sends a notice about the past,
  and a post found empty by a rebuild is not left untold until its next event.
  Follow-ups of unsatisfied ratings come from live events only.
- A closed branch is told nothing: closing ends every episode (post and queue
  episodes count as resolved; a pending follow-up ends without an outcome).
- Times: ``now`` and event ``ts`` are both Unix seconds (agents keep NTP time).
  A post's empty time and an ack are event times; a send is ``now``.

Acks: an ``intercom.ack`` naming a notice counts when it comes from the post
that notice was addressed to; one without a notice id counts for the newest
unacknowledged notice of the current step addressed to that post. Anything
else is ignored and counted in ``book.ignored_acks`` by reason
(:data:`~collector.notices.state.IGNORED_ACK_REASONS`); the exposition sums them into
the collector's ``branchwatch_collector_notice_acks_ignored_total``.
"""

from __future__ import annotations

from typing import Final

from branchwatch.contract import events as ev
from branchwatch.thresholds import DEFAULT_THRESHOLDS, Thresholds
from collector.floor.branch import BranchState
from collector.floor.config import FloorRules
from collector.floor.tickets import observe as observe_histogram
from collector.notices import chain, followups
from collector.notices.book import (
    Outbound,
    Policy,
    Tick,
    count,
    end_episode,
    is_open,
    open_episode,
    schedule,
)
from collector.notices.config import NoticesConfig
from collector.notices.state import (
    ACK_BUCKETS,
    Episode,
    IgnoredAck,
    Notice,
    NoticeBook,
    new_ack_histogram,
)

# An ack without a notice id may precede the notice by this much (clock skew).
ACK_CLOCK_SLACK: Final = 5.0
# Stages in which an episode waits for an ack of its current step.
_AWAITING_ACK: Final = frozenset({"backfill", "renotified", "escalation", "notified"})

# Events that can make a queue long (more waiting, fewer counters of a kind) and those
# that can only make it shorter. The queues are looked at on the next tick, not per
# event: a burst of tickets costs one look.
_QUEUE_GROWS: Final[frozenset[type[ev.Event]]] = frozenset(
    {
        ev.TicketIssued,
        ev.TicketTransferred,
        ev.CounterOpened,  # may change a counter's kind
        ev.CounterPaused,
        ev.CounterClosed,
    }
)
_QUEUE_SHRINKS: Final[frozenset[type[ev.Event]]] = frozenset(
    {ev.TicketCalled, ev.TicketNoShow, ev.TicketWalkout, ev.ServiceStarted}
)

_WATCHED: Final[frozenset[type[ev.Event]]] = (
    _QUEUE_GROWS
    | _QUEUE_SHRINKS
    | {
        ev.BranchOpened,
        ev.BranchClosed,
        ev.PositionStaffed,
        ev.PositionVacated,
        ev.IntercomAck,
        ev.EvaluationSubmitted,
    }
)


class NoticeEngine:
    def __init__(
        self,
        config: NoticesConfig,
        rules: FloorRules,
        thresholds: Thresholds = DEFAULT_THRESHOLDS,
    ) -> None:
        self.policy: Final = Policy(config, rules, thresholds)
        self.enabled: Final = config.enabled
        # The event classes observe() needs to see (the store skips the rest).
        self.watches: Final = _WATCHED if config.enabled else frozenset()

    # events ----------------------------------------------------------------------------

    def observe(
        self, branch: BranchState, event: ev.Event, *, live: bool, now: float
    ) -> str | None:
        """Take note of an event the floor model applied to ``branch``.

        ``now`` is when it was received. Returns why an ack was ignored, else
        None. Afterwards ``branch.notices.next_due`` says when :meth:`due` is
        next needed.
        """
        if not self.enabled:
            return None
        book = branch.notices
        ignored = None
        if isinstance(event, ev.IntercomAck):
            ignored = self._ack(branch, event)
        elif not branch.open:
            if book.open or book.queue_due is not None:
                self._close(book, event.ts)
        elif isinstance(event, ev.BranchOpened):
            if live:
                # A new day (the floor model empties the queues): yesterday's episodes end.
                self._close(book, event.ts)
                book.queue_sent.clear()
            for position in self.policy.required:
                self._watch_post(branch, position)
        elif isinstance(event, ev.PositionStaffed | ev.PositionVacated):
            if event.position in branch.posts:
                self._watch_post(branch, event.position)
        elif isinstance(event, ev.EvaluationSubmitted):
            if (
                live
                and event.rating == "unsatisfied"
                and now - event.ts <= followups.FOLLOW_UP_MAX_AGE
            ):
                open_episode(book, followups.unsatisfied(branch, event, now))
        elif type(event) in _QUEUE_GROWS or (
            book.open and any(e.kind == "queue_long" for e in book.open)
        ):  # most branches have no open episode: no generator built per event
            _look_at_queues(book, now)
        schedule(book)
        return ignored

    def _watch_post(self, branch: BranchState, position: int) -> None:
        """Start or resolve the episode of a required post after its state changed.

        The floor state is order-independent, so it is the truth whichever way the event
        came: a post that is empty now while the branch is open has an episode, even when
        a replay (a rebuild, a gap filled) is what showed it empty. What a replay cannot
        do is notify about the past: a post staffed again by now has no episode.
        """
        if position not in self.policy.rules.required_posts:
            return
        book = branch.notices
        post = branch.posts[position]
        episode = _post_episode(book, position)
        if post.staff:
            if episode is not None:
                _resolve(book, episode, post.changed_ts)
        elif episode is None:
            open_episode(book, chain.start(self.policy, position, post.changed_ts))

    def _close(self, book: NoticeBook, ts: float) -> None:
        for episode in list(book.open):
            if episode.kind == "unsatisfied":
                end_episode(book, episode, ts, None)
            else:
                _resolve(book, episode, ts)
        book.queue_due = None

    # acks ------------------------------------------------------------------------------

    def _ack(self, branch: BranchState, e: ev.IntercomAck) -> IgnoredAck | None:
        book = branch.notices
        found = _acked_notice(book, e)
        if isinstance(found, str):
            book.ignored_acks[found] = book.ignored_acks.get(found, 0) + 1
            return found
        episode, notice = found
        notice.acked_ts = e.ts
        notice.acked_by = e.position
        count(book, episode.kind, "acked")
        histogram = book.ack.get(episode.kind)
        if histogram is None:
            histogram = book.ack[episode.kind] = new_ack_histogram()
        observe_histogram(histogram, ACK_BUCKETS, e.ts - notice.sent_ts)
        if is_open(book, episode):
            if episode.kind == "unsatisfied":
                end_episode(book, episode, e.ts, None)
            elif episode.kind == "post_empty" and episode.stage != "acked":
                episode.stage = "acked"
                episode.acked_by = e.position
                episode.unanswered_ts = None
                episode.due = e.ts + self.policy.config.ack_timeout_seconds
        return None

    # the tick --------------------------------------------------------------------------

    def due(self, branch: BranchState, now: float) -> list[Outbound]:
        """Take every step due at ``now`` for one branch; the notices to publish."""
        book = branch.notices
        if not self.enabled:
            return []
        if not branch.open:
            self._close(book, now)
            schedule(book)
            return []
        tick = Tick(branch, now)
        # Post episodes first, post 1 before post 2; then the follow-ups, oldest first.
        order = {position: rank for rank, position in enumerate(self.policy.required)}
        for episode in sorted(
            book.open, key=lambda e: (e.kind != "post_empty", order.get(e.position or 0, 99))
        ):
            if episode.due is None or episode.due > now or not is_open(book, episode):
                continue
            if episode.kind == "post_empty":
                assert episode.position is not None
                if branch.posts[episode.position].staff:
                    _resolve(book, episode, now)
                else:
                    chain.advance(self.policy, tick, episode)
            elif episode.kind == "unsatisfied":
                followups.advance_unsatisfied(self.policy, tick, episode)
        if book.queue_due is not None and book.queue_due <= now:
            followups.review_queues(self.policy, tick)
        schedule(book)
        return tick.out


def _look_at_queues(book: NoticeBook, now: float) -> None:
    """Have the next tick look at the queues (resolving, notifying, next deadline)."""
    if book.queue_due is None or book.queue_due > now:
        book.queue_due = now


def _post_episode(book: NoticeBook, position: int) -> Episode | None:
    return next(
        (e for e in book.open if e.kind == "post_empty" and e.position == position),
        None,
    )


def _resolve(book: NoticeBook, episode: Episode, ts: float) -> None:
    """End an episode whose cause is gone; one that never told anyone leaves no trace."""
    told = episode.stage != "waiting"
    end_episode(book, episode, ts, "resolved" if told else None)


def _find_notice(book: NoticeBook, notice_id: str) -> tuple[Episode, Notice] | None:
    for episode in (*book.open, *book.ended):
        for notice in episode.notices:
            if notice.id == notice_id:
                return episode, notice
    return None


def _acked_notice(book: NoticeBook, e: ev.IntercomAck) -> tuple[Episode, Notice] | IgnoredAck:
    """The notice an ack acknowledges, or why it acknowledges none."""
    if e.notice is None:
        found = _current_notice(book, e.position, e.ts)
        return "no_notice" if found is None else found
    found = _find_notice(book, e.notice)
    if found is None:
        return "unknown_notice"
    if found[1].position != e.position:
        return "wrong_post"
    if found[1].acked_ts is not None:
        return "already_acked"
    return found


def _current_notice(book: NoticeBook, position: int, ts: float) -> tuple[Episode, Notice] | None:
    """The newest unacknowledged notice of a current step addressed to ``position``."""
    best: tuple[Episode, Notice] | None = None
    for episode in book.open:
        if episode.stage not in _AWAITING_ACK:
            continue
        for notice in episode.notices:
            if (
                notice.position == position
                and notice.acked_ts is None
                and notice.sent_ts == episode.step_ts
                and ts >= notice.sent_ts - ACK_CLOCK_SLACK
                and (best is None or notice.sent_ts > best[1].sent_ts)
            ):
                best = episode, notice
    return best
