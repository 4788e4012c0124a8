"""State of the bank's own service figures, as plain msgspec structs.

Per-teller ratings and transactions, ticket transfers, intercom hand-off times
and the business day's figures (the API's ``today``). A leaf module like
:mod:`collector.floor.histogram`: the branch state embeds these structs, and
every field has a default, so a snapshot taken before they existed still loads.
The rules that fill them are in :mod:`collector.floor.tellers`,
:mod:`collector.floor.day` and :mod:`collector.floor.intercom`.
"""

from __future__ import annotations

from typing import Final

import msgspec

from collector.floor.histogram import Histogram
from collector.floor.tallies import Losses, Ratings

# Intercom call -> ack bounds (seconds): a hand-off answered within half a minute, within
# two, or later. Few on purpose: 5 series per post pair of every branch.
INTERCOM_ACK_BUCKETS: Final[tuple[float, ...]] = (30.0, 120.0)
# The ``to_position`` of a call to every post (an all-call): the first ack of any post ends it.
ALL_POSTS: Final = "all"


class TellerFigures(msgspec.Struct, gc=False):
    """One teller's ratings and transactions (totals, or one business day's)."""

    ratings: Ratings = msgspec.field(default_factory=Ratings)
    requested: int = 0  # ratings asked for on the pad
    served: int = 0  # service.ended of tickets whose service the teller started
    # Event time of the teller's newest event (the totals only): a teller not seen since
    # the day's opening may give its series to a new one (collector.floor.tellers).
    last_ts: float | None = None


class ServiceDay(msgspec.Struct, gc=False):
    """One service's figures of one business day."""

    lost: Losses = msgspec.field(default_factory=Losses)
    issued: int = 0
    served: int = 0  # service started
    called: int = 0  # waits observed (called tickets)
    wait_sum: float = 0.0
    within_target: int = 0  # called within thresholds.wait_target_seconds
    ended: int = 0  # transactions: service ended (start known)


class DayFigures(msgspec.Struct, gc=False):
    """The figures of one business day: from its ``branch.opened`` until the next one.

    Only events stamped at or after the opening count, so a late event of an
    earlier day never does; after ``branch.closed`` the block keeps the day's
    final figures until the branch opens again.
    """

    opened_ts: float
    services: dict[str, ServiceDay]
    closed_ts: float | None = None
    ratings: Ratings = msgspec.field(default_factory=Ratings)
    requested: int = 0
    expired: int = 0
    tellers: dict[str, TellerFigures] = msgspec.field(default_factory=dict)


class IntercomFigures(msgspec.Struct, gc=False):
    """Intercom call -> first ack from the called post, per (from post, to post).

    ``to`` keys are a position as text, or :data:`ALL_POSTS`. ``pending`` holds the
    first unanswered call of each pair; ``acks`` the newest acks of each post
    (bounded), so a call replayed after its ack still finds it; ``called`` the newest
    call of each exported pair.
    """

    ack_seconds: dict[int, dict[str, Histogram]] = msgspec.field(default_factory=dict)
    # Event time of each exported pair's newest call: who may give its place to a new pair.
    called: dict[int, dict[str, float]] = msgspec.field(default_factory=dict)
    pending: dict[int, dict[str, float]] = msgspec.field(default_factory=dict)
    acks: dict[int, list[float]] = msgspec.field(default_factory=dict)


def new_intercom_histogram() -> Histogram:
    return Histogram(counts=[0] * (len(INTERCOM_ACK_BUCKETS) + 1))


def new_day(opened_ts: float, services: tuple[str, ...]) -> DayFigures:
    return DayFigures(opened_ts=opened_ts, services={s: ServiceDay() for s in services})


def repair(
    tellers: dict[str, TellerFigures],
    transfers: dict[str, dict[str, int]],
    intercom: IntercomFigures,
    today: DayFigures | None,
    services: tuple[str, ...],
    positions: tuple[int, ...],
) -> DayFigures | None:
    """Make restored figures safe to use with this floor layout; returns the day to keep.

    Parts that name services or posts no longer configured are dropped (a day that
    does not fit is forgotten): a snapshot must neither crash the model nor be refused
    whole for them. (Ratings and losses are tallies with every name: none can lack one.)
    """
    for source in list(transfers):
        if source not in services:
            del transfers[source]
            continue
        for target in [t for t in transfers[source] if t not in services]:
            del transfers[source][target]
    known = {str(p) for p in positions} | {ALL_POSTS}
    intercom.ack_seconds = {
        source: {
            target: h
            if len(h.counts) == len(INTERCOM_ACK_BUCKETS) + 1
            else new_intercom_histogram()
            for target, h in targets.items()
            if target in known
        }
        for source, targets in intercom.ack_seconds.items()
        if source in positions
    }
    intercom.pending = {
        source: {target: ts for target, ts in calls.items() if target in known}
        for source, calls in intercom.pending.items()
        if source in positions
    }
    intercom.called = {
        source: {target: ts for target, ts in calls.items() if target in known}
        for source, calls in intercom.called.items()
        if source in positions
    }
    intercom.acks = {p: sorted(acks) for p, acks in intercom.acks.items() if p in positions}
    if today is None:
        return None
    return today if tuple(today.services) == services else None
