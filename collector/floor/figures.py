"""State of the bank's own service figures, as plain msgspec structs.

Per-teller ratings and transactions, ticket transfers, intercom hand-off times
and the business day's figures (the API's ``today``). A leaf module like
:mod:`collector.floor.histogram`: the branch state embeds these structs, and
every field has a default, so a snapshot taken before they existed still loads.
The rules that fill them are in :mod:`collector.floor.tellers`,
:mod:`collector.floor.day` and :mod:`collector.floor.intercom`.
"""

from __future__ import annotations

import sys
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


class IntercomPair(msgspec.Struct, array_like=True, gc=False):
    """One exported (calling post, called post) pair: its hand-off times and its calls."""

    source: int  # the calling post
    target: str  # the called post as text, or ALL_POSTS
    seconds: Histogram  # call -> first ack from the called post
    called: float  # event time of the newest call: who may give its place to a new pair
    pending: float | None = None  # the first call not answered yet


class IntercomFigures(msgspec.Struct, gc=False, omit_defaults=True):
    """Intercom call -> first ack from the called post, per (from post, to post).

    ``pairs`` are the exported pairs, sorted by (source, target) as their series are
    exported. ``acks`` holds the newest acks of each post (bounded, oldest first), so a
    call replayed after its ack still finds it: ``ack_ts`` in time order and, in
    ``ack_posts``, the post of each (a byte: positions are 1-99). One flat tuple, not a
    dict of lists: a branch holds a few acks, and objects cost more than their numbers.
    """

    pairs: tuple[IntercomPair, ...] = ()
    ack_ts: tuple[float, ...] = ()
    ack_posts: bytes = b""
    # The figures as snapshots kept them before the pairs: nested dicts keyed by source
    # then target, and each post's acks in a list. Moved into the fields above when such
    # a snapshot is restored (:func:`repair`), None otherwise.
    ack_seconds: dict[int, dict[str, Histogram]] | None = None
    called: dict[int, dict[str, float]] | None = None
    pending: dict[int, dict[str, float]] | None = None
    acks: dict[int, list[float]] | None = None


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
    _repair_intercom(intercom, positions)
    if today is None:
        return None
    return today if tuple(today.services) == services else None


def _repair_intercom(intercom: IntercomFigures, positions: tuple[int, ...]) -> None:
    """Keep the pairs and acks of configured posts; figures of a snapshot taken before
    the pairs (nested dicts, lists of acks) are moved into them."""
    if intercom.ack_seconds is not None:
        called, pending = intercom.called or {}, intercom.pending or {}
        intercom.pairs = tuple(
            IntercomPair(
                source,
                target,
                seconds,
                called=called.get(source, {}).get(target, 0.0),
                pending=pending.get(source, {}).get(target),
            )
            for source, targets in intercom.ack_seconds.items()
            for target, seconds in targets.items()
        )  # calls of a pair without a histogram: never kept by that code, so none to move
    if len(intercom.ack_ts) == len(intercom.ack_posts):
        acks = list(zip(intercom.ack_ts, intercom.ack_posts, strict=True))
    else:
        acks = []  # tampered: whose ack is which is not known
    if intercom.acks is not None:
        acks = [(ts, post) for post, times in intercom.acks.items() for ts in times]
    intercom.ack_seconds = intercom.called = intercom.pending = intercom.acks = None

    known = {str(p) for p in positions} | {ALL_POSTS}
    pairs = sorted(
        (p for p in intercom.pairs if p.source in positions and p.target in known),
        key=lambda p: (p.source, p.target),
    )
    for pair in pairs:
        pair.target = sys.intern(pair.target)  # one "all" for every branch, not one each
        if len(pair.seconds.counts) != len(INTERCOM_ACK_BUCKETS) + 1:
            pair.seconds = new_intercom_histogram()
    intercom.pairs = tuple(pairs)
    kept = sorted((ts, post) for ts, post in acks if post in positions)
    intercom.ack_ts = tuple([ts for ts, _ in kept])
    intercom.ack_posts = bytes([post for _, post in kept])
