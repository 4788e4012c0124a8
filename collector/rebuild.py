"""Rebuilding an agent's business day from its replay, when the collector has no seq of it.

A collector that starts without a snapshot (new machine, lost disk), or hears
from an agent for the first time, knows nothing of what the agent sent
before. Every agent keeps its sent events for a retention window (24 h by
default) and republishes them on ``replay``, so the collector asks it to
replay from seq 0 (everything it still holds: the contract's own command, no
extension) and *holds* every event of that agent (replayed or live, which the
wire cannot tell apart) until the answer is in. Then it applies them in seq
order, once, as one stream, and lets the agent's later events through as usual.

Which of them count. The answer reaches back up to 24 h: yesterday's tickets
must not be counted again, nor merged with today's (ticket ids start over
every day). So the day-scoped events (tickets, service, evaluations: the ones
that count) are applied only from the current business day on, which starts
at the branch's newest ``branch.opened``: from the seq after it for the agent
that sent it, and from its ``ts`` for the branch's other agents (their seqs
are their own). Every other event sets state that the newest event decides
whatever the order (open/closed, posts, counters, devices), so it is applied
from the whole retention: a greeter who checked in before the opening is on
the post. With no opening in the retention, nothing is cut.

What is news. Events applied from a rebuild are late (they start no floor notice
about the past), except those that were at most :data:`NEWS` seconds old (event
time) when they arrived: the floor is happening now, whether they came live
during the rebuild or in the answer.

When the answer is in. The wire has no end-of-replay mark, so an agent's
rebuild is ready when one of these holds:

- after the ask, a duplicate came of the newest event held when the ask went out,
  or of a newer one: an event the agent sent live, which its answer (in seq order,
  up to the last event sent) repeats, so everything it holds below it is in (an
  agent sending live events);
- the answer came and then no old event (older than :data:`NEWS`) for
  :data:`SETTLE` seconds: live events go on, but the answer is over (an agent
  whose answer is all old, and that sends nothing or a trickle now);
- no old event came for :data:`NO_ANSWER` seconds after the ask while the agent
  is not known offline: it holds nothing old;
- :data:`LONGEST` seconds passed since the ask (an agent that never stops
  sending old events).

An agent whose status says offline waits, however long: the broker queues the
ask for it, and it is asked again when it is back. A branch is rebuilt when all
of its agents being rebuilt are ready, together, so the day's start is known
from whichever agent sent the opening. Seqs missing between the events held
(a hole in the answer) then become ordinary gaps: replayed, or counted lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, NamedTuple

from branchwatch.contract import events as ev

SETTLE: Final = 3.0
NO_ANSWER: Final = 10.0
LONGEST: Final = 60.0
NEWS: Final = 60.0
# Events held per agent: a busy branch sends a few thousand a day. Beyond, the
# lowest seqs are let go (the oldest of the retention, before the day's start).
MAX_HELD: Final = 20_000

# The events that count (tickets, service, ratings): only the current business day's.
DAY_SCOPED: Final[frozenset[type[ev.Event]]] = frozenset(
    {
        ev.TicketIssued,
        ev.TicketCalled,
        ev.TicketTransferred,
        ev.TicketNoShow,
        ev.TicketWalkout,
        ev.ServiceStarted,
        ev.ServiceEnded,
        ev.EvaluationRequested,
        ev.EvaluationSubmitted,
        ev.EvaluationExpired,
    }
)


class Rebuild:
    """One agent's rebuild in progress: the events held and when the ask went out."""

    __slots__ = ("asked_at", "complete", "events", "heard_at", "let_go", "news", "top_at_ask")

    def __init__(self) -> None:
        self.events: dict[int, ev.Event] = {}  # seq -> event
        self.news: set[int] = set()  # seqs that were news when they arrived (see NEWS)
        self.asked_at: float | None = None  # None: to be asked (again)
        self.top_at_ask = -1  # the newest seq held when the ask went out (-1: none)
        self.heard_at: float | None = None  # receive time of the newest old event since the ask
        self.complete = False  # the answer passed top_at_ask
        self.let_go = 0  # events beyond MAX_HELD

    def hold(self, events: Iterable[ev.Event], received: float) -> tuple[int, int]:
        """Keep ``events``; (held, duplicates)."""
        held = duplicate = 0
        kept = self.events
        asked = self.asked_at is not None
        top = self.top_at_ask
        for event in events:
            seq = event.seq
            if seq in kept:
                duplicate += 1
                if asked and seq >= top:
                    self.complete = True
                continue
            kept[seq] = event
            held += 1
            if received - event.ts <= NEWS:
                self.news.add(seq)
            elif asked:
                self.heard_at = received
        if len(kept) > MAX_HELD:
            excess = sorted(kept)[: len(kept) - MAX_HELD * 9 // 10]
            for seq in excess:
                del kept[seq]
                self.news.discard(seq)
            self.let_go += len(excess)
        return held, duplicate

    def asked(self, now: float) -> None:
        self.asked_at = now
        self.top_at_ask = max(self.events, default=-1)
        self.heard_at = None
        self.complete = False

    def ask_again(self, *, even_if_answering: bool) -> None:
        """Ask again at the next chance: the agent is back online (no need if it is already
        answering), or the broker lost our session (an answer may have been cut short)."""
        if even_if_answering or self.heard_at is None:
            self.asked_at = None

    def ready(self, now: float, offline: bool) -> bool:
        """Whether the answer is in (see the module's rules); ``offline``: its status says so."""
        asked = self.asked_at
        if asked is None:
            return False
        if self.complete:
            return True
        if self.heard_at is None:
            return not offline and now - asked >= NO_ANSWER
        return now - self.heard_at >= SETTLE or now - asked >= LONGEST

    def in_order(self) -> list[ev.Event]:
        return [self.events[seq] for seq in sorted(self.events)]


class DayStart(NamedTuple):
    """Where the current business day starts: its opening's ts, agent and seq."""

    ts: float
    agent: str | None  # None: known from the branch's state, not from an answer
    seq: int

    def counts(self, agent: str, event: ev.Event) -> bool:
        """Whether a held event is applied: any but a day-scoped one from before the day."""
        if type(event) not in DAY_SCOPED:
            return True
        if agent == self.agent:
            return event.seq > self.seq
        return event.ts >= self.ts


def day_start(opened_ts: float | None, held: Mapping[str, list[ev.Event]]) -> DayStart | None:
    """The newest opening among the events held and the branch's own (``opened_ts``)."""
    best = None if opened_ts is None else DayStart(opened_ts, None, -1)
    for agent, events in held.items():
        for event in reversed(events):  # in seq order: the agent's newest opening is last
            if type(event) is ev.BranchOpened:
                if best is None or event.ts > best.ts:
                    best = DayStart(event.ts, agent, event.seq)
                break
    return best
