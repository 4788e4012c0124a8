"""Finished tickets, each kept as one compact record (``bytes``) until the next opening.

A branch remembers up to thousands of finished tickets a day: for the late and
replayed events of their ids, the service-time and patience estimates, the
teller a rating belongs to and the lobby screen's latest calls. As whole
:class:`~collector.floor.branch.Ticket` structs, with their own copies of
strings and float objects, they were most of a branch's memory. A record packs
the same facts into one object; :func:`unpack` gives back an equal ``Ticket``
(state ``done``) to read or change, and a changed one is packed again.

Record layout: one little-endian 32-bit word (for each of :data:`TIMES`, 3 bits:
0 for None or the 1-based index of its value among the distinct ones; then vip,
the four counted flags and the loss), the distinct times as doubles (a ticket's
wait usually starts at its issue and it is done when its service ends: the same
float, kept once), then service, counter, teller and the owed transfer as
UTF-8, joined by NUL, ``\x01`` standing for None (no id holds either).

A record that cannot be read (a tampered snapshot) is treated as unknown: the
model forgets that ticket rather than fail on it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from math import copysign
from operator import itemgetter
from typing import Final, NamedTuple

from collector.floor import finished_log
from collector.floor.branch import BranchState, LostReason, Ticket

MAX_FINISHED_TICKETS: Final = 5_000  # finished ids remembered per branch (cleared at opening)

# The ticket's times, in record order.
TIMES: Final = (
    "issued_ts",
    "wait_since",
    "transferred_ts",
    "called_ts",
    "started_ts",
    "ended_ts",
    "done_ts",
)
_LOSSES: Final[tuple[LostReason | None, ...]] = (None, "no_show", "walkout", "closed")
_LOSS_CODES: Final = {reason: code for code, reason in enumerate(_LOSSES)}
_SLOT_BITS: Final = 3
_SLOTS_MASK: Final = (1 << (_SLOT_BITS * len(TIMES))) - 1
_SHIFTS: Final = tuple(range(0, _SLOT_BITS * len(TIMES), _SLOT_BITS))
# Flags above the time slots, then the loss.
_FLAGS_SHIFT: Final = _SLOT_BITS * len(TIMES)
_VIP, _WAIT, _SERVED, _SERVICE, _LOST = (1 << (_FLAGS_SHIFT + bit) for bit in range(5))
_LOSS_SHIFT: Final = _FLAGS_SHIFT + 5


class _Flags(NamedTuple):
    vip: bool
    wait_counted: bool
    served_counted: bool
    service_counted: bool
    lost_counted: bool
    lost: LostReason | None


def _flags(high: int) -> _Flags | None:
    if high >> 5 >= len(_LOSSES):
        return None
    vip, wait, served, service, lost = (bool(high >> bit & 1) for bit in range(5))
    return _Flags(vip, wait, served, service, lost, _LOSSES[high >> 5])


# What the bits above the slots say, for every value they can take (None: no such loss).
_FLAGS: Final = tuple(_flags(high) for high in range(1 << (32 - _FLAGS_SHIFT)))
_WORD: Final = struct.Struct("<I")
_RECORDS: Final = tuple(struct.Struct(f"<I{count}d") for count in range(len(TIMES) + 1))
_SEPARATOR: Final = "\x00"
_NONE: Final = "\x01"


class _Pattern(NamedTuple):
    pick: Callable[[tuple[float | None, ...]], tuple[float | None, ...]]  # None + distinct
    values: struct.Struct  # the distinct times, after the word
    end: int  # where the strings start


# Time patterns met so far (canonical ones number 4,140 at most: the Bell number B8).
_PATTERNS: Final[dict[int, _Pattern]] = {}
_MAX_PATTERNS: Final = 8192


def _pattern(code: int) -> _Pattern:
    pattern = _PATTERNS.get(code)
    if pattern is None:
        slots = [(code >> (_SLOT_BITS * i)) & 7 for i in range(len(TIMES))]
        values = struct.Struct(f"<{max(slots)}d")
        pattern = _Pattern(itemgetter(*slots), values, _WORD.size + values.size)
        if len(_PATTERNS) < _MAX_PATTERNS:
            _PATTERNS[code] = pattern
    return pattern


def pack(ticket: Ticket) -> bytes:
    """The record of a finished ticket (any ticket: its state is not kept).

    ValueError: a string no record holds (NUL, or ``\x01`` alone: never a valid id).
    """
    times = (
        ticket.issued_ts,
        ticket.wait_since,
        ticket.transferred_ts,
        ticket.called_ts,
        ticket.started_ts,
        ticket.ended_ts,
        ticket.done_ts,
    )
    if 0.0 in times:
        word, distinct = _slots_keeping_zero_signs(times)
    else:
        # Equal times are kept once (a wait from the issue, done at the end).
        distinct = []
        word = 0
        for shift, value in zip(_SHIFTS, times, strict=True):
            if value is not None:
                if value in distinct:
                    word |= (distinct.index(value) + 1) << shift
                else:
                    distinct.append(value)
                    word |= len(distinct) << shift
    if ticket.vip:
        word |= _VIP
    if ticket.wait_counted:
        word |= _WAIT
    if ticket.served_counted:
        word |= _SERVED
    if ticket.service_counted:
        word |= _SERVICE
    if ticket.lost_counted:
        word |= _LOST
    word |= _LOSS_CODES[ticket.lost] << _LOSS_SHIFT
    texts = _encoded(ticket.service, ticket.counter, ticket.teller, ticket.transfer_owed)
    return _RECORDS[len(distinct)].pack(word, *distinct) + texts


def _slots_keeping_zero_signs(times: tuple[float | None, ...]) -> tuple[int, list[float]]:
    """:func:`pack`'s time slots when a time is zero: a zero equals a zero of the other
    sign only in value, so its sign is compared too."""
    distinct: list[float] = []
    word = 0
    for shift, value in zip(_SHIFTS, times, strict=True):
        if value is not None:
            slot = 1
            for seen in distinct:
                if seen == value and (value or copysign(1.0, seen) == copysign(1.0, value)):
                    break
                slot += 1
            else:
                distinct.append(value)
            word |= slot << shift
    return word, distinct


# The strings of a record repeat (a branch has a few services, counters and tellers), so
# their encoding and decoding are cached; each cache is bounded.
@lru_cache(maxsize=4096)
def _encoded(*texts: str | None) -> bytes:
    if _NONE in texts:
        raise ValueError("a string that stands for None in a record")
    text = _SEPARATOR.join([_NONE if t is None else t for t in texts])
    if text.count(_SEPARATOR) != len(texts) - 1:
        raise ValueError("a string with a NUL")
    return text.encode()


@lru_cache(maxsize=4096)
def _decoded(encoded: bytes) -> tuple[str | None, ...] | None:
    try:
        texts = encoded.decode().split(_SEPARATOR)
    except UnicodeDecodeError:
        return None
    if len(texts) != 4:
        return None
    return tuple(None if t == _NONE else t for t in texts)


def unpack(record: bytes, services: Mapping[str, object]) -> Ticket | None:
    """The ticket of a record; None if it cannot be read or names a service not in
    ``services`` (the branch's)."""
    try:
        (word,) = _WORD.unpack_from(record)
        pattern = _pattern(word & _SLOTS_MASK)
        values = pattern.values.unpack_from(record, _WORD.size)
    except struct.error:
        return None
    flags = _FLAGS[word >> _FLAGS_SHIFT]
    texts = _decoded(record[pattern.end :])
    if texts is None or flags is None:
        return None
    service, counter, teller, owed = texts
    if (service is not None and service not in services) or (
        owed is not None and owed not in services
    ):
        return None
    issued, wait_since, transferred, called, started, ended, done = pattern.pick((None, *values))
    vip, wait_counted, served_counted, service_counted, lost_counted, lost = flags
    # Positional: ten times faster than keywords (the round-trip tests hold the order).
    return Ticket(
        service,
        "done",
        vip,
        issued,
        wait_since,
        transferred,
        called,
        counter,
        teller,
        started,
        ended,
        lost,
        done,
        wait_counted,
        served_counted,
        service_counted,
        lost_counted,
        owed,
    )


# -- a branch's finished tickets ----------------------------------------------------------


def get(branch: BranchState, ticket_id: str) -> Ticket | None:
    """A finished ticket of the branch, as a ``Ticket`` (a copy: :func:`update` keeps changes)."""
    log = branch.finished_log
    pos = finished_log.find(log, ticket_id)
    return None if pos is None else unpack(finished_log.record_at(log, pos), branch.services)


def add(branch: BranchState, ticket_id: str, ticket: Ticket) -> None:
    """A ticket finished now: the newest, the oldest forgotten beyond the cap."""
    log = branch.finished_log
    record = pack(ticket)
    if not finished_log.fits(ticket_id, record):
        return  # not an id the contract allows: not remembered
    finished_log.put(log, ticket_id, record)  # an unreadable record of the id is replaced
    if log.count > MAX_FINISHED_TICKETS:
        finished_log.drop_oldest(log)


def update(branch: BranchState, ticket_id: str, ticket: Ticket) -> None:
    """Keep what a late event changed of a finished ticket (it keeps its place)."""
    log = branch.finished_log
    pos = finished_log.find(log, ticket_id)
    if pos is None:
        add(branch, ticket_id, ticket)
        return
    record = pack(ticket)
    if finished_log.fits(ticket_id, record):
        finished_log.replace(log, pos, record)


def forget(branch: BranchState, ticket_id: str) -> None:
    """The id is used again by a new ticket: its finished one is forgotten."""
    log = branch.finished_log
    pos = finished_log.find(log, ticket_id)
    if pos is not None:
        finished_log.remove(log, pos)


def clear(branch: BranchState) -> None:
    """A new day: every finished ticket forgotten."""
    finished_log.clear(branch.finished_log)


def newest(branch: BranchState) -> Iterator[tuple[str, Ticket]]:
    """The finished tickets, newest first (the unreadable left out)."""
    services = branch.services
    for ticket_id, record in finished_log.newest_first(branch.finished_log):
        ticket = unpack(record, services)
        if ticket is not None:
            yield ticket_id.decode(), ticket


def every(branch: BranchState) -> Iterator[Ticket]:
    """The finished tickets, oldest first (the unreadable left out)."""
    services = branch.services
    for _, record in finished_log.oldest_first(branch.finished_log):
        ticket = unpack(record, services)
        if ticket is not None:
            yield ticket


def upgrade(branch: BranchState) -> None:
    """A restored branch's finished tickets, as the log: the log checked and indexed again,
    after the tickets of snapshots taken before it (whole structs, then one record an id),
    oldest first."""
    log = branch.finished_log
    finished_log.rebuild(log)
    legacy, records = branch.finished, branch.finished_records
    branch.finished = branch.finished_records = None
    if not legacy and not records:
        return
    older: dict[str, bytes] = {}
    for ticket_id, ticket in (legacy or {}).items():
        try:
            older[ticket_id] = pack(ticket)
        except ValueError:
            continue  # a string no record holds (tampered): the ticket is forgotten
    older.update(records or {})
    newer = [(ticket_id.decode(), record) for ticket_id, record in finished_log.oldest_first(log)]
    newer_ids = {ticket_id for ticket_id, _ in newer}
    finished_log.clear(log)
    for ticket_id, record in older.items():
        if ticket_id not in newer_ids and finished_log.fits(ticket_id, record):
            finished_log.put(log, ticket_id, record)
    for ticket_id, record in newer:
        finished_log.put(log, ticket_id, record)
    while log.count > MAX_FINISHED_TICKETS:
        finished_log.drop_oldest(log)
