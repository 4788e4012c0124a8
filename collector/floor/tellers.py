"""Per-teller figures: ratings, rating requests and transactions, within the series cap.

Ratings belong to tellers, not only to counters. A rating or request is the
teller's named in the event, else the teller who started the rated ticket's
service, else the teller the counter opened with. A transaction
(``service.ended``) is the teller's who started that service.

Teller ids become label values, so a branch keeps at most ``max_tellers`` of
them. Staff rotate, so the cap is per day, not for ever: when it is full, a
new teller takes the place of the one seen least recently, provided that one
has not been seen since the day's opening (its series ends; Prometheus'
``increase()`` copes with a counter that ends and later starts again from 0).
Otherwise the teller is refused for the label (``too_many_tellers``, counted
with the collector's rejections) while the counter's and branch's figures
still count the event.
"""

from __future__ import annotations

import sys
from typing import Final

from collector.floor import finished
from collector.floor.agents import count
from collector.floor.branch import BranchState, CounterState, Ticket
from collector.floor.config import FloorRules
from collector.floor.figures import TellerFigures

TOO_MANY_TELLERS: Final = "too_many_tellers"


def _evictable(branch: BranchState) -> str | None:
    """The teller seen least recently, if it was not seen since the day's opening."""
    opened = branch.opened_ts
    if opened is None:
        return None
    oldest = min(
        branch.tellers.items(), key=lambda item: (item[1].last_ts or 0.0, item[0]), default=None
    )
    if oldest is None or (oldest[1].last_ts or 0.0) >= opened:
        return None
    return oldest[0]


def teller_figures(
    rules: FloorRules, branch: BranchState, teller: str, ts: float
) -> TellerFigures | None:
    """The teller's totals (a place taken for it if need be); None: refused (counted)."""
    figures = branch.tellers.get(teller)
    if figures is None:
        if len(branch.tellers) >= rules.max_tellers:
            idle = _evictable(branch)
            if idle is None:
                count(branch.refused, TOO_MANY_TELLERS)
                return None
            del branch.tellers[idle]
        figures = branch.tellers[sys.intern(teller)] = TellerFigures()
    if figures.last_ts is None or ts > figures.last_ts:
        figures.last_ts = ts
    return figures


def teller_today(branch: BranchState, teller: str, ts: float) -> TellerFigures | None:
    """The teller's figures of the business day, if ``ts`` belongs to it.

    Call only for a teller :func:`teller_figures` accepted: a teller with an event
    of the day is never given up, so the day holds no more than ``max_tellers``.
    """
    today = branch.today
    if today is None or ts < today.opened_ts:
        return None
    figures = today.tellers.get(teller)
    if figures is None:
        figures = today.tellers[sys.intern(teller)] = TellerFigures()
    return figures


def seen(rules: FloorRules, branch: BranchState, teller: str | None, ts: float) -> None:
    """A teller at work (a counter opened, a service started): its series start at 0."""
    if teller is not None and teller_figures(rules, branch, teller, ts) is not None:
        teller_today(branch, teller, ts)


def rated_teller(
    branch: BranchState, counter: CounterState, teller: str | None, ticket_id: str | None
) -> str | None:
    """Whose rating (or request) it is: the event's teller, the ticket's, the counter's."""
    if teller is not None:
        return teller
    if ticket_id is not None:
        ticket = branch.tickets.get(ticket_id) or finished.get(branch, ticket_id)
        if ticket is not None and ticket.teller is not None:
            return ticket.teller
    return counter.teller


def count_rating(
    rules: FloorRules, branch: BranchState, teller: str | None, rating: str | None, ts: float
) -> None:
    """A rating (``rating``) or a request for one (None) of ``teller``'s."""
    if teller is None:
        return
    figures = teller_figures(rules, branch, teller, ts)
    if figures is None:
        return
    for tally in (figures, teller_today(branch, teller, ts)):
        if tally is None:
            continue
        if rating is None:
            tally.requested += 1
        else:
            tally.ratings.add(rating)


def count_served(rules: FloorRules, branch: BranchState, ticket: Ticket, ended_ts: float) -> None:
    """A transaction ended: the teller who started it served one more customer."""
    teller = ticket.teller
    if teller is None:
        return
    figures = teller_figures(rules, branch, teller, ended_ts)
    if figures is None:
        return
    figures.served += 1
    day = teller_today(branch, teller, ended_ts)
    if day is not None:
        day.served += 1
