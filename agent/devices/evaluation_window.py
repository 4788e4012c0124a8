"""The evaluator's rating window: a pure state machine, time passed in.

Per counter: a request opens a window (default 10 s); the first rating
inside it is accepted (``evaluation.submitted``); the window closing without
one gives ``evaluation.expired`` stamped at its deadline. A rating without an
open request, or a second rating for the same request, is a counted bad frame
(the pad's key bounces or a customer presses twice), never an event.

The events are built directly: every value was checked where it entered
(counters in the device's options, ticket and teller ids in the pad frame).
"""

from __future__ import annotations

from typing import NamedTuple

from agent.devices.base import UNSTAMPED
from agent.devices.frames import BadFrame, Result
from branchwatch.contract.events import (
    EvaluationExpired,
    EvaluationRequested,
    EvaluationSubmitted,
)
from branchwatch.contract.ids import Rating


class _Open(NamedTuple):
    since: float
    ticket: str | None
    teller: str | None


class EvaluationWindows:
    """Open requests per counter; every method returns the results in order."""

    def __init__(self, window: float = 10.0) -> None:
        if not window > 0:
            raise ValueError(f"window {window} must be > 0")
        self.window = window
        self._open: dict[str, _Open] = {}
        # counter -> what a rating now would be, once its last request has closed
        self._closed: dict[str, str] = {}

    def next_deadline(self) -> float | None:
        """When the next open window expires (for the device's timer), or None."""
        return min((o.since + self.window for o in self._open.values()), default=None)

    def expire(self, now: float) -> list[Result]:
        """``evaluation.expired`` for every window that closed before ``now``."""
        out: list[Result] = []
        for counter in [c for c, o in self._open.items() if now - o.since > self.window]:
            request = self._open.pop(counter)
            self._closed[counter] = "late_rating"
            out.append(self._expired(counter, request.since + self.window, request.ticket))
        return out

    def request(
        self, counter: str, now: float, ticket: str | None = None, teller: str | None = None
    ) -> list[Result]:
        out = self.expire(now)
        if counter in self._open:
            # A new request replaces an unanswered one: that one ends as expired now.
            out.append(self._expired(counter, now, self._open.pop(counter).ticket))
        self._open[counter] = _Open(now, ticket, teller)
        self._closed.pop(counter, None)
        out.append(
            EvaluationRequested(**UNSTAMPED, ts=now, counter=counter, ticket=ticket, teller=teller)
        )
        return out

    def rating(self, counter: str, rating: Rating, now: float) -> list[Result]:
        out = self.expire(now)
        request = self._open.pop(counter, None)
        if request is not None:
            self._closed[counter] = "duplicate_rating"
            ticket, teller = request.ticket, request.teller
            out.append(
                EvaluationSubmitted(
                    **UNSTAMPED,
                    ts=now,
                    counter=counter,
                    rating=rating,
                    ticket=ticket,
                    teller=teller,
                )
            )
        else:
            reason = self._closed.get(counter, "rating_without_request")
            out.append(BadFrame(reason, f"counter {counter}: {rating}"))
        return out

    def cancel(self, counter: str, now: float) -> list[Result]:
        """The teller withdrew the request: it ends as expired (requested = rated + expired)."""
        out = self.expire(now)
        request = self._open.pop(counter, None)
        if request is None:
            out.append(BadFrame("cancel_without_request", f"counter {counter}"))
        else:
            self._closed[counter] = "late_rating"
            out.append(self._expired(counter, now, request.ticket))
        return out

    def _expired(self, counter: str, ts: float, ticket: str | None) -> EvaluationExpired:
        return EvaluationExpired(**UNSTAMPED, ts=ts, counter=counter, ticket=ticket)
