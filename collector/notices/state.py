"""What the notice engine remembers per branch, as plain msgspec structs.

The book lives inside the branch state (``BranchState.notices``), so a store
snapshot carries open episodes, their chains and the notice totals across a
restart, and an older snapshot without it still loads (every field here has a
default). Data only: the rules are in :mod:`collector.notices.engine`.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from collector.floor.histogram import Histogram

NoticeKind = Literal["post_empty", "unsatisfied", "queue_long"]
Outcome = Literal["sent", "acked", "escalated", "unanswered", "resolved"]
KINDS: Final[tuple[NoticeKind, ...]] = ("post_empty", "unsatisfied", "queue_long")
OUTCOMES: Final[tuple[Outcome, ...]] = ("sent", "acked", "escalated", "unanswered", "resolved")
# The outcomes each kind can have (the others never move, so they are not exported):
# only a post chain escalates; an unsatisfied follow-up ends acked or unanswered;
# a long queue ends when it is short again.
KIND_OUTCOMES: Final[dict[NoticeKind, tuple[Outcome, ...]]] = {
    "post_empty": OUTCOMES,
    "unsatisfied": ("sent", "acked", "unanswered"),
    "queue_long": ("sent", "acked", "resolved"),
}
# Why an intercom ack acknowledged no notice: its notice id is unknown (or too old to be
# kept), it came from a post the notice was not addressed to, the notice was acked
# already, or (no id given) no notice awaits an ack from that post.
IgnoredAck = Literal["unknown_notice", "wrong_post", "already_acked", "no_notice"]
IGNORED_ACK_REASONS: Final[tuple[IgnoredAck, ...]] = (
    "unknown_notice",
    "wrong_post",
    "already_acked",
    "no_notice",
)
# Notice -> ack latency bounds (seconds); around the default 60 s ack timeout.
ACK_BUCKETS: Final[tuple[float, ...]] = (5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

# Where a post-empty chain stands.
#   waiting     the post is empty, the threshold has not passed yet
#   backfill    a backfill post was told (one notice), waiting for its ack
#   renotified  the acking post was told again once, waiting for its ack
#   escalation  the escalation posts / all-call were told, waiting for an ack
#   acked       someone acknowledged; the post gets ack_timeout to be staffed
#   unanswered  the chain is exhausted: on-call's turn (until an ack or restaffing)
#   notified    unsatisfied / queue_long: told, nothing further to escalate
Stage = Literal[
    "waiting", "backfill", "renotified", "escalation", "acked", "unanswered", "notified"
]


class Notice(msgspec.Struct, gc=False, omit_defaults=True):
    """One ``notify`` command sent: who was told, when, and who acknowledged it."""

    id: str
    position: int
    agent: str
    sent_ts: float
    acked_ts: float | None = None  # event time of the ack
    acked_by: int | None = None  # the post that acknowledged


class Episode(msgspec.Struct, gc=False, omit_defaults=True):
    """One thing the branch is told about, from its start to its end."""

    kind: NoticeKind
    since: float  # post empty since / rating time / queue first found too long
    stage: Stage = "waiting"
    due: float | None = None  # when the engine next acts on it; None: waits for an event
    notices: list[Notice] = msgspec.field(default_factory=list)
    step_ts: float | None = None  # when the current step's notices were sent
    escalated: bool = False  # the escalation posts / all-call have been told
    renotified: list[int] = msgspec.field(default_factory=list)  # posts re-notified once
    acked_by: int | None = None  # post whose ack stopped the escalation
    unanswered_ts: float | None = None  # present while the chain is exhausted
    ended_ts: float | None = None
    # The event time its notice ids are named by, when not ``since`` (queue_long: the
    # oldest waiting ticket's, as both collectors of an HA pair see it; see book.notice_id).
    origin: float | None = None
    # What the notice is about (by kind).
    position: int | None = None  # post_empty: the empty post
    service: str | None = None  # queue_long
    counter: str | None = None  # unsatisfied
    teller: str | None = None
    ticket: str | None = None
    waited: float | None = None  # unsatisfied: how long that customer waited (s)


class NoticeBook(msgspec.Struct, gc=False, omit_defaults=True):
    open: list[Episode] = msgspec.field(default_factory=list)
    # The last few ended episodes: a late ack of their notices still counts.
    ended: list[Episode] = msgspec.field(default_factory=list)
    totals: dict[str, int] = msgspec.field(default_factory=dict)  # "kind/outcome" -> count
    ack: dict[str, Histogram] = msgspec.field(default_factory=dict)  # kind -> ack latency
    # Acks that acknowledged nothing, by reason (unknown_notice, wrong_post, ...).
    ignored_acks: dict[str, int] = msgspec.field(default_factory=dict)
    # Episodes refused because MAX_OPEN_EPISODES were open.
    dropped: int = 0
    queue_sent: dict[str, float] = msgspec.field(default_factory=dict)  # service -> last notice
    queue_due: float | None = None  # when a queue may next need a notice
    next_due: float | None = None  # min of every open episode's due and queue_due


def total_key(kind: NoticeKind, outcome: Outcome) -> str:
    return f"{kind}/{outcome}"


def new_ack_histogram() -> Histogram:
    return Histogram(counts=[0] * (len(ACK_BUCKETS) + 1))


def repair(book: NoticeBook, positions: tuple[int, ...], services: tuple[str, ...]) -> None:
    """Make a restored book safe to use with this floor layout and this version.

    Episodes about posts or services that are not configured are dropped, and
    ack histograms with other buckets start over: a snapshot must neither crash
    the engine nor be refused whole for its notices.
    """
    book.open = [
        e
        for e in book.open
        if (e.kind != "post_empty" or e.position in positions)
        and (e.kind != "queue_long" or e.service in services)
    ]
    for kind, histogram in list(book.ack.items()):
        if len(histogram.counts) != len(ACK_BUCKETS) + 1:
            book.ack[kind] = new_ack_histogram()
