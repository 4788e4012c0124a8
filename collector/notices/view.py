"""What the API and the exposition read of a branch's notices (field names are stable).

:func:`notices_view` is the ``notices`` list of ``GET /api/v1/branches/R/B``;
:func:`notice_metrics` gives the values of the ``branchwatch_notice*`` families.
"""

from __future__ import annotations

from typing import Final, NamedTuple

import msgspec

from collector.floor.histogram import Histogram
from collector.notices.state import (
    ACK_BUCKETS,
    KIND_OUTCOMES,
    KINDS,
    NoticeBook,
    NoticeKind,
    Outcome,
    Stage,
    new_ack_histogram,
    total_key,
)


class NoticeView(msgspec.Struct):
    id: str
    position: int  # the post told
    agent: str  # the agent whose intercom carried it
    sent_ts: float
    acked_ts: float | None  # event time of the ack; None: not acknowledged
    acked_by: int | None  # the post that acknowledged


class EpisodeView(msgspec.Struct, kw_only=True):
    kind: NoticeKind
    stage: Stage
    since: float  # post empty since / rating time / queue found too long
    due: float | None  # when the engine acts next (None: it waits for an event)
    unanswered_ts: float | None  # set while the chain is exhausted (on-call's turn)
    acked_by: int | None  # the post whose ack stopped the escalation
    # What it is about: position for post_empty; counter, teller, ticket, waited
    # (seconds) for unsatisfied; service for queue_long. None elsewhere.
    position: int | None
    counter: str | None
    teller: str | None
    ticket: str | None
    waited: float | None
    service: str | None
    notices: list[NoticeView]  # the chain, oldest first


def notices_view(book: NoticeBook) -> list[EpisodeView]:
    """The open episodes, each with its chain (who was told when, who acknowledged)."""
    return [
        EpisodeView(
            kind=e.kind,
            stage=e.stage,
            since=e.since,
            due=e.due,
            unanswered_ts=e.unanswered_ts,
            acked_by=e.acked_by,
            position=e.position,
            counter=e.counter,
            teller=e.teller,
            ticket=e.ticket,
            waited=e.waited,
            service=e.service,
            notices=[
                NoticeView(n.id, n.position, n.agent, n.sent_ts, n.acked_ts, n.acked_by)
                for n in e.notices
            ],
        )
        for e in book.open
    ]


class NoticeMetrics(NamedTuple):
    # branchwatch_notices_total: every (kind, outcome) of KIND_OUTCOMES.
    totals: dict[tuple[NoticeKind, Outcome], int]
    # branchwatch_notice_open: every kind; an episode is open from its first notice
    # (a post still within post_empty_seconds is not) until it ends.
    open: dict[NoticeKind, int]
    # branchwatch_notice_unanswered_timestamp_seconds: only kinds with an exhausted
    # chain (the oldest one's time), of UNANSWERED_KINDS.
    unanswered_since: dict[NoticeKind, float]
    # branchwatch_notice_ack_seconds: every kind, buckets ACK_BUCKETS (non-cumulative).
    ack_seconds: dict[NoticeKind, Histogram]
    # Intercom acks that acknowledged no notice, by reason (unknown_notice, wrong_post,
    # already_acked, no_notice); only reasons seen.
    ignored_acks: dict[str, int]


# The kinds whose chain can stay open unanswered (the others end when unanswered).
UNANSWERED_KINDS: Final[tuple[NoticeKind, ...]] = ("post_empty",)
# The most series a branch renders for notices (its share of the series budget): every
# total, every kind's open gauge, the unanswered gauges, every kind's histogram (its
# buckets, +Inf, _sum and _count).
NOTICE_SERIES: Final = (
    sum(len(outcomes) for outcomes in KIND_OUTCOMES.values())
    + len(KINDS)
    + len(UNANSWERED_KINDS)
    + len(KINDS) * (len(ACK_BUCKETS) + 3)
)


def notice_metrics(book: NoticeBook) -> NoticeMetrics:
    totals = {
        (kind, outcome): book.totals.get(total_key(kind, outcome), 0)
        for kind in KINDS
        for outcome in KIND_OUTCOMES[kind]
    }
    open_ = dict.fromkeys(KINDS, 0)
    unanswered: dict[NoticeKind, float] = {}
    for episode in book.open:
        if episode.stage != "waiting":
            open_[episode.kind] += 1
        ts = episode.unanswered_ts
        if ts is None or episode.kind not in UNANSWERED_KINDS:
            continue
        if ts < unanswered.get(episode.kind, ts + 1):
            unanswered[episode.kind] = ts
    ack = {kind: book.ack.get(kind) or new_ack_histogram() for kind in KINDS}
    return NoticeMetrics(totals, open_, unanswered, ack, dict(book.ignored_acks))
