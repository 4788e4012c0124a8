"""Seq gaps: when to ask an agent to replay them again, and when they are lost for good.

An agent's *missing* seqs (``AgentState.missing``) are the ones skipped by a jump
in its ``seq``: the collector has not had them, and the agent may still hold
them. The collector asks it to ``replay`` from the first missing one, and asks
again with a growing delay (``mqtt.replay_min_interval_seconds``, doubled each
time the same seq is still missing, up to :data:`LONGEST_WAIT`) while the agent
is not known offline (an offline agent's broker session queues the ask already).

A missing seq is *lost* once the agent shows it no longer holds it: an agent
answers ``replay from N`` with every event it holds from N on, in seq order, so
an answer whose first event is above N skips exactly the seqs it does not hold
(past its retention, or dropped from a full spool). The first event of an answer
is an event that is not new (a late one or a duplicate) arriving after the ask,
at or above N, and at or below the previous such event (the earlier answer, if
one is still arriving, climbs above it). One skip is taken as a hint and the
agent is asked again at once; the same skip in the next answer makes the skipped
seqs lost: counted (``AgentState.events_lost``) and dropped from the missing set.
Twice, because a broker can redeliver a message once more after a reconnect, and
that alone must not write anything off.

A new spool of the agent (its seq jumped past ``NEW_SPOOL_JUMP``, see
:func:`collector.floor.agents.new_spool`) leaves only the new spool's seqs
missing; what the asks knew of the old spool's answers means nothing for the
new one, so they start over: asked at once, from the new spool's first missing seq.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from branchwatch.contract.events import Event
from branchwatch.retry import Backoff
from collector.floor.branch import AgentState

LONGEST_WAIT: Final = 600.0


class GapAsks:
    """One agent's replay asks for its missing seqs."""

    __slots__ = (
        "asked_at",
        "asked_from",
        "backoff",
        "due",
        "hint",
        "last_old",
        "spool",
        "wanted_from",
    )

    def __init__(self, first_wait: float, spool: int = 0) -> None:
        self.backoff = Backoff(first_wait, max(first_wait, LONGEST_WAIT))
        self.spool = spool  # the agent's spools_started these asks are about
        self._start()

    def _start(self) -> None:
        self.backoff.reset()
        self.due = 0.0  # when to ask next for the same first missing seq
        self.asked_at = float("-inf")
        self.wanted_from: int | None = None  # from_seq of the previous ask
        self.asked_from: int | None = None  # an ask whose answer has not started yet
        self.last_old: int | None = None  # seq of the latest event that was not new
        self.hint: int | None = None  # the first seq a previous answer skipped

    def follow(self, agent: AgentState) -> None:
        """Start over if the agent began a new spool since: its answers are the new spool's."""
        if agent.spools_started != self.spool:
            self.spool = agent.spools_started
            self._start()

    def due_at(self, first_missing: int, now: float) -> bool:
        """Whether to ask now: the delay passed, or (progress) the first missing seq moved
        on and the shortest delay passed since the previous ask."""
        if now >= self.due:
            return True
        return first_missing != self.wanted_from and now >= self.asked_at + self.backoff.first

    def ask(self, first_missing: int, now: float) -> None:
        """An ask from ``first_missing`` goes out at ``now``; the next one waits longer."""
        if first_missing != self.wanted_from:
            self.backoff.reset()  # progress: start the delays over
            self.wanted_from = first_missing
        self.due = now + self.backoff.next()
        self.asked_at = now
        self.asked_from = first_missing

    def answer_starts(
        self, events: Sequence[Event], last_seq: int | None
    ) -> tuple[int, int] | None:
        """``(from_seq, start)`` when the answer to the pending ask starts in ``events``.

        ``last_seq``: the agent's last applied seq before ``events`` (events above it
        are new, so not an answer). Called for every message of the agent.
        """
        asked = self.asked_from
        found = None
        newest = -1 if last_seq is None else last_seq
        for event in events:
            seq = event.seq
            if seq > newest:
                newest = seq
                continue
            previous, self.last_old = self.last_old, seq
            if asked is not None and seq >= asked and (previous is None or seq <= previous):
                found, asked = (asked, seq), None
        if found is not None:
            self.asked_from = None
        return found

    def skipped(self, agent: AgentState, asked: int, start: int, now: float) -> int:
        """The answer to ``replay from asked`` started at ``start``; how many seqs are lost."""
        gone = [seq for seq in _missing_below(agent, start) if seq >= asked]
        if not gone:
            self.hint = None
            return 0
        if self.hint != gone[0]:
            self.hint = gone[0]
            self.due = now  # a hint: ask again at once
            return 0
        self.hint = None
        for seq in gone:
            del agent.missing[seq]
        agent.events_lost += len(gone)
        return len(gone)


def _missing_below(agent: AgentState, bound: int) -> list[int]:
    below = []
    for seq in agent.missing:  # oldest first
        if seq >= bound:
            break
        below.append(seq)
    return below
