"""Staff answering the collector's floor notices, as the branch's people would.

A ``notify`` reaches the intercom at one post; the notice does not say its
kind on the wire, so the staff read it as a person would, from what they see:
a notice naming the ticket of a customer who just rated the service
unsatisfied is that customer's follow-up; otherwise, with post 1 or 2 empty,
it asks them to cover it; otherwise it is about the queues.

- Post empty: whoever is at the told post and free to go acknowledges (after
  the profile's ack delay; some never do), leaves their post (a teller pauses
  the counter) and walks to the empty post, where they check in and stay until
  its holder is back. An acknowledgement means "on my way": a teller serving a
  customer does not leave them and does not acknowledge (the chain moves on to
  the next post), nor does someone holding post 1 or 2 (they stay put), except
  that post 2 answers for post 1 (the greeting post comes first).
- Unsatisfied: the told post acknowledges; someone goes to the customer.
- Queue long: the told post acknowledges and, sometimes, a flexible teller
  opens a closed counter for the longest queue.

Every draw comes from a generator seeded by the notice id, never from the
branch's own: a branch that is sent no notice makes exactly the events it made
before staff reacted to notices.
"""

from __future__ import annotations

import random
from typing import Final

from branchwatch.contract.events import IntercomAck
from branchwatch.sim.base import CLOSED, COVER, INTERCOM_DEVICE, OPEN, PAUSED, SimCounter
from branchwatch.sim.profile import MINUTE, POST_GREETER, POST_SELF_SERVICE
from branchwatch.sim.staff import FloorStaff

# Posts that must not be left empty, the greeting post first.
REQUIRED: Final = (POST_GREETER, POST_SELF_SERVICE)
# An unsatisfied rating this old (simulated) is no longer expected to be followed up.
FOLLOW_UP_WINDOW: Final = 10 * MINUTE


class NoticeStaff(FloorStaff):
    """The branch's staff, answering the floor notices that reach their intercoms."""

    def receive_notice(self, notice: str, position: int, text: str = "") -> None:
        """A floor notice from the collector reached the intercom at ``position``."""
        rng = random.Random(f"{self._seed}/notice/{notice}")
        response = self.profile.notices
        kind = self._read_notice(text)
        if rng.random() < response.never_share:
            return
        if rng.random() < response.busy_share:
            delay = rng.uniform(*response.busy_seconds)
        else:
            low, mode, high = response.ack_seconds
            delay = rng.triangular(low, high, mode)
        self._later(delay, self._answer_notice, notice, position, kind, rng)

    def _read_notice(self, text: str) -> str:
        """What a notice is about: ``unsatisfied``, ``post_empty`` or ``queue_long``."""
        recent = [
            (t, ticket) for t, ticket in self._unsatisfied if self.now - t <= FOLLOW_UP_WINDOW
        ]
        self._unsatisfied = recent
        named = next((entry for entry in recent if entry[1] in text), None)
        if named is not None:
            recent.remove(named)
            return "unsatisfied"
        if self._empty_required() is not None:
            return "post_empty"
        if recent:
            recent.pop(0)
            return "unsatisfied"
        return "queue_long"

    def _empty_required(self) -> int | None:
        return next((post for post in REQUIRED if not self._posts.get(post)), None)

    def _answer_notice(self, notice: str, position: int, kind: str, rng: random.Random) -> None:
        if not self._posts.get(position):
            return  # whoever was there has left: nobody hears it
        empty = self._empty_required() if kind == "post_empty" else None
        responder = None if empty is None else self._responder(position, empty)
        if empty is not None and responder is None:
            return  # nobody there can leave now: no "on my way"
        self._emit(IntercomAck, INTERCOM_DEVICE, position=position, notice=notice)
        if empty is not None and responder is not None:
            self._leave_for(empty, position, *responder, rng)
        elif kind == "queue_long" and rng.random() < self.profile.notices.open_counter_share:
            counter = self._closed_flex_counter()
            if counter is not None:
                self._later(rng.uniform(*self.profile.notices.walk_seconds), self._open, counter)

    # -- covering an empty post -------------------------------------------------------------

    def _responder(self, position: int, empty: int) -> tuple[str, SimCounter | None] | None:
        """Who at ``position`` goes to cover ``empty`` now (a teller with their counter)."""
        staff = self._posts.get(position, [])
        if position in REQUIRED:
            # Post 2 answers for post 1; nobody leaves a required post otherwise, and a
            # cover stays where they were asked to be.
            post_2 = self.profile.lobby_staff[POST_SELF_SERVICE]
            mover = post_2 if (position, empty) == (POST_SELF_SERVICE, POST_GREETER) else None
            return (mover, None) if mover in staff and position not in self._covering else None
        tellers = {c.teller: c for c in self._counters if c.post == position}
        for who in staff:
            counter = tellers.get(who)
            if counter is None:
                return who, None
            if _can_leave(counter):
                return who, counter
        return None

    def _leave_for(
        self, empty: int, home: int, who: str, counter: SimCounter | None, rng: random.Random
    ) -> None:
        """``who`` leaves ``home`` (a teller pausing the counter) and walks to ``empty``."""
        if counter is not None:
            counter.pause = (COVER, None)
            self._pause(counter)  # vacates the teller's post
        else:
            self._vacate(home, who)
        walk = rng.uniform(*self.profile.notices.walk_seconds)
        self._later(walk, self._check_in, empty, home, who, counter)

    def _check_in(self, empty: int, home: int, who: str, counter: SimCounter | None) -> None:
        """At the empty post: cover it until its holder is back, or go back if it is not empty."""
        if who in self._where:
            return  # back at a post already (their counter was reopened)
        if self._posts.get(empty) or empty in self._covering:
            self._go_back(home, who, counter)
            return
        self._staff(empty, who)
        self._covering[empty] = (who, home, counter)

    def _go_back(self, home: int, who: str, counter: SimCounter | None) -> None:
        if counter is None:
            self._return_to_post(home, who)
        elif counter.state == PAUSED and counter.paused_for == COVER and not counter.closing:
            self._open_counter(counter)

    # -- a long queue ---------------------------------------------------------------------------

    def _closed_flex_counter(self) -> SimCounter | None:
        """A closed flexible counter that serves the service with the most waiting."""
        waiting = self._waiting_by_service()
        best: tuple[int, SimCounter] | None = None
        for counter in self._counters:
            if not counter.flex or counter.state != CLOSED:
                continue
            served = max((waiting.get(s, 0) for tier in counter.tiers for s in tier), default=0)
            if served and (best is None or served > best[0]):
                best = served, counter
        return None if best is None else best[1]

    def _open(self, counter: SimCounter) -> None:
        if counter.state == CLOSED and not self._closing:
            self._open_counter(counter)


def _can_leave(counter: SimCounter) -> bool:
    """A teller may pause the counter now: open, no customer, nothing else planned."""
    return counter.state == OPEN and not counter.busy and not counter.closing and not counter.pause
