"""The state of one branch floor as plain msgspec structs.

Everything here is data (no behaviour beyond construction), so a snapshot is
one msgpack encode of :class:`BranchState` values and a restore one decode.
No struct references another twice, so ``gc=False`` is safe and keeps the
garbage collector off thousands of long-lived objects.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING, Final, Literal

import msgspec

from collector.floor import histogram, tallies
from collector.floor.config import FloorRules
from collector.floor.figures import DayFigures, IntercomFigures, TellerFigures
from collector.notices.state import NoticeBook

TicketState = Literal["waiting", "called", "serving", "done"]
LostReason = tallies.LostReason
CounterStateName = Literal["open", "paused", "closed"]
LOST_REASONS: Final = tallies.LOST_REASONS
COUNTER_STATES: Final[tuple[CounterStateName, ...]] = ("open", "paused", "closed")
# Shown for a post staffed by a ``position.staffed`` without a staff id (never a valid id).
ANONYMOUS_STAFF: Final = "(anonymous)"


# Defined in leaf modules so the notice and figure states (embedded below) can use them too.
Histogram = histogram.Histogram
Ratings = tallies.Ratings
Losses = tallies.Losses


class ServiceState(msgspec.Struct, gc=False):
    queue: dict[str, float]  # waiting ticket -> waiting since (event ts)
    wait: Histogram
    service: Histogram
    lost: Losses
    issued: int = 0
    served: int = 0


class Ticket(msgspec.Struct, gc=False, omit_defaults=True):
    """What is known of one ticket, and which of its totals have been counted.

    Events may arrive in any order (replays fill gaps late), so handlers record
    facts and :func:`collector.floor.tickets.settle` counts each total once,
    as soon as the ticket's service is known.
    """

    service: str | None = None  # current service; None until issued/transferred is seen
    state: TicketState = "waiting"
    vip: bool = False
    issued_ts: float | None = None
    wait_since: float | None = None  # issued ts, or the ts of the latest transfer
    transferred_ts: float | None = None
    called_ts: float | None = None  # first call of the current waiting segment
    counter: str | None = None
    teller: str | None = None
    started_ts: float | None = None
    ended_ts: float | None = None
    lost: LostReason | None = None
    done_ts: float | None = None
    wait_counted: bool = False
    served_counted: bool = False
    service_counted: bool = False
    lost_counted: bool = False
    # The service of a transfer seen before the ticket's earlier service was known: the
    # issue counts the transfer (from the service to this one).
    transfer_owed: str | None = None


# An event's place in time: (ts, seq). Equal times are ordered by the agent's seq, so
# a check-in and a check-out in the same second keep the order they happened in.
EventKey = tuple[float, int]


class StaffMark(msgspec.Struct, array_like=True, gc=False):
    """The newest check-in and the newest named check-out of one staff member at one post.

    Each key as its two numbers, not an :data:`EventKey` tuple: a tuple is one more
    object for every mark of every post of every branch.
    """

    staff: str
    on_ts: float | None = None  # None: no check-in known
    on_seq: int = 0
    off_ts: float | None = None  # None: no named check-out known
    off_seq: int = 0


class KeyedStaffMark(msgspec.Struct, array_like=True, gc=False):
    """A :class:`StaffMark` as snapshots kept them before marks held their staff (in
    ``Post.marks``, a dict by staff), read only to restore such a snapshot."""

    on: EventKey | None = None
    off: EventKey | None = None


class Post(msgspec.Struct, gc=False, omit_defaults=True):
    """One lobby post. ``staff_marks`` and ``cleared`` are what is known; the rest follows
    from them (:func:`collector.floor.posts.derive`), whatever order the events came in."""

    # Tuples, not lists: each is replaced whole, and an empty one costs nothing.
    staff: tuple[str, ...]  # on the post now, by check-in time, each once
    changed_ts: float  # exported: when last staffed or vacated (or the day opened, if empty)
    event_ts: float | None = None  # ts of the newest staffed/vacated
    # Who left last (of those not on the post now): on-call's first question when a post
    # stands empty.
    last_staff: tuple[str, ...] = ()
    # The agent whose intercom reported this post's newest event: where its notices go.
    agent: str | None = None
    event_seq: int = -1  # with event_ts: the newest event's key
    # One per staff member seen at the post, in the order first seen. A tuple, not a dict
    # by staff: most posts hold one or two, and a dict costs 224 bytes from its first.
    staff_marks: tuple[StaffMark, ...] = ()
    # Keys of the newest vacates without a staff id (each empties the post), oldest first.
    cleared: tuple[EventKey, ...] = ()
    # The marks as snapshots kept them before ``staff_marks``: moved there when such a
    # snapshot is restored (collector.floor.posts.upgrade), None otherwise.
    marks: dict[str, KeyedStaffMark] | None = None


class CounterState(msgspec.Struct, gc=False):
    ratings: Ratings = msgspec.field(default_factory=Ratings)
    state: CounterStateName | None = None  # None: known from evaluations only
    kind: str | None = None
    teller: str | None = None
    since: float | None = None  # ts of the last state change
    requested: int = 0
    expired: int = 0


class FaultState(msgspec.Struct, gc=False):
    active: bool
    since: float


class DeviceState(msgspec.Struct, gc=False):
    faults: dict[str, FaultState]
    kind: str | None = None  # from status; None: known from fault events only
    link: Literal["up", "down"] | None = None  # latest online status; None: not in it
    # Bad frames by reason, the agent's running totals from its latest online status;
    # only reasons within the branch's series cap (floor.max_bad_frame_series).
    bad_frames: dict[str, int] = msgspec.field(default_factory=dict)
    bad_frames_refused: int = 0  # reasons of the latest status left out for the cap


class AgentState(msgspec.Struct, gc=False):
    devices: dict[str, DeviceState]
    missing: dict[int, None]  # seqs skipped by a gap, oldest first (an ordered set)
    last_seen: float
    # Its key in BranchState.agents, so handlers know which agent reported an event.
    name: str = ""
    session: int | None = None
    up: bool = False
    version: str | None = None
    status_ts: float | None = None
    spool_depth: int = 0
    spool_oldest_ts: float | None = None
    spool_dropped: int = 0
    last_seq: int | None = None
    # Its events are held until its replay came (collector/rebuild.py): the collector
    # had no seq of it. A snapshot taken meanwhile restarts the rebuild when restored.
    rebuilding: bool = False
    # Missing seqs the agent no longer holds (its replay skipped them): counted, forgotten.
    events_lost: int = 0
    # New spools seen (a jump in seq past contract.seqs.NEW_SPOOL_JUMP: the agent lost its
    # spool and began a fresh one), and the first seq of the newest.
    spools_started: int = 0
    spool_first_seq: int | None = None
    # Events the agent could not store (its spool's disk full), from its latest status.
    events_refused: int = 0


# A finished log's index: native unsigned 64-bit words. Named apart because msgspec reads
# the annotation at runtime, where array takes no type argument before Python 3.12.
if TYPE_CHECKING:
    LogIndex = array[int]
else:
    LogIndex = array


def new_log_index() -> LogIndex:
    return array("Q")


class FinishedLog(msgspec.Struct, gc=False):
    """A branch's finished tickets (collector.floor.finished_log): the entries, oldest
    first, in one byte string, and an index sorted by the ids' hashes. Held so, not as a
    dict of ids, because thousands of ids and records a day cost objects of their own.
    A snapshot keeps the entries; the index is rebuilt from them at a restore."""

    entries: bytearray = msgspec.field(default_factory=bytearray)
    # Each entry's key, ascending: crc32 of the id << 32 | the entry's offset since the
    # day began (``base`` is that of the first entry, after the oldest were forgotten).
    index: LogIndex = msgspec.field(default_factory=new_log_index)
    base: int = 0
    count: int = 0


class BranchState(msgspec.Struct, gc=False):
    region: str
    branch: str
    first_ts: float  # ts of the first event or status seen
    last_received: float  # receive time of the latest message (staleness)
    services: dict[str, ServiceState]
    posts: dict[int, Post]
    counters: dict[str, CounterState]
    tickets: dict[str, Ticket]  # live: waiting, called, serving
    agents: dict[str, AgentState]
    open: bool = False
    open_changed_ts: float | None = None  # ts of the newest opened/closed
    opened_ts: float | None = None  # ts of the newest branch.opened: the day's start
    last_event_ts: float | None = None
    # Floor notices: open episodes, their chains and the notice totals.
    notices: NoticeBook = msgspec.field(default_factory=NoticeBook)
    open_changed_seq: int = -1  # with open_changed_ts: the newest opened/closed's key
    # The bank's service figures (collector.floor.figures): per-teller totals (at most
    # floor.max_tellers), transfers from -> to service, intercom hand-off times, and the
    # business day's figures (None until a branch.opened is seen).
    tellers: dict[str, TellerFigures] = msgspec.field(default_factory=dict)
    transfers: dict[str, dict[str, int]] = msgspec.field(default_factory=dict)
    intercom: IntercomFigures = msgspec.field(default_factory=IntercomFigures)
    today: DayFigures | None = None
    # Labels left out of events being applied, for a series cap (reason -> count); the
    # store moves them to its result after each message, so it is empty between calls.
    refused: dict[str, int] = msgspec.field(default_factory=dict)
    # Recently finished tickets, oldest first (bounded), each a compact record
    # (collector.floor.finished).
    finished_log: FinishedLog = msgspec.field(default_factory=FinishedLog)
    # Finished tickets as snapshots kept them before the log: whole structs (the oldest),
    # then one record each. Moved into finished_log when such a snapshot is restored.
    finished: dict[str, Ticket] | None = None
    finished_records: dict[str, bytes] | None = None


def new_histogram(buckets: tuple[float, ...]) -> Histogram:
    return Histogram(counts=[0] * (len(buckets) + 1))


def new_branch(
    rules: FloorRules, region: str, branch: str, ts: float, received: float
) -> BranchState:
    services = {
        service: ServiceState(
            queue={},
            wait=new_histogram(rules.wait_buckets),
            service=new_histogram(rules.service_buckets),
            lost=Losses(),
        )
        for service in rules.services
    }
    posts = {position: Post(staff=(), changed_ts=ts) for position in rules.post_names}
    return BranchState(
        region=region,
        branch=branch,
        first_ts=ts,
        last_received=received,
        services=services,
        posts=posts,
        counters={},
        tickets={},
        agents={},
    )


def new_counter() -> CounterState:
    return CounterState()


def new_agent(name: str, last_seen: float) -> AgentState:
    return AgentState(devices={}, missing={}, last_seen=last_seen, name=name)
