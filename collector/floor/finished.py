"""Finished tickets, each kept as one compact record (``bytes``) until the next opening.

A branch remembers up to thousands of finished tickets a day: for the late and
replayed events of their ids, the service-time and patience estimates, the
teller a rating belongs to and the lobby screen's latest calls. As whole
:class:`~collector.floor.branch.Ticket` structs, with their own copies of
strings and float objects, they were most of a branch's memory. A record packs
the same facts into one object; :func:`unpack` gives back an equal ``Ticket``
(state ``done``) to read or change, and a changed one is packed again.

Record layout: a flag byte (vip, the four counted flags, the loss), the time
pattern (3 bytes: for each of :data:`TIMES`, 0 for None or the 1-based index of
its value among the distinct ones), the distinct times as little-endian
doubles (a ticket's wait usually starts at its issue and it is done when its
service ends: one double for both), then service, counter, teller and the
owed transfer as length-prefixed UTF-8 (length + 1; 0 is None).

A record that cannot be read (a tampered snapshot) is treated as unknown: the
model forgets that ticket rather than fail on it.
"""

from __future__ import annotations

import math
import struct
import sys
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Final, NamedTuple

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
_VIP, _WAIT, _SERVED, _SERVICE, _LOST = 1, 2, 4, 8, 16
_LOSS_SHIFT: Final = 5
_HEAD: Final = 4  # flag byte + time pattern
_SLOT_BITS: Final = 3
_MAX_TEXT: Final = 254  # bytes of one string (its length byte holds length + 1)


class _Pattern(NamedTuple):
    slots: tuple[int, ...]  # per time: 0 (None) or the 1-based index of its value
    values: struct.Struct  # the distinct times


@lru_cache(maxsize=4096)  # canonical patterns number 4,140 at most (the Bell number B8)
def _pattern(code: int) -> _Pattern:
    slots = tuple((code >> (_SLOT_BITS * i)) & 7 for i in range(len(TIMES)))
    return _Pattern(slots, struct.Struct(f"<{max(slots)}d"))


def pack(ticket: Ticket) -> bytes:
    """The record of a finished ticket (any ticket: its state is not kept)."""
    flags = (
        (_VIP if ticket.vip else 0)
        | (_WAIT if ticket.wait_counted else 0)
        | (_SERVED if ticket.served_counted else 0)
        | (_SERVICE if ticket.service_counted else 0)
        | (_LOST if ticket.lost_counted else 0)
        | _LOSS_CODES[ticket.lost] << _LOSS_SHIFT
    )
    distinct: list[float] = []
    code = 0
    for i, name in enumerate(TIMES):
        value: float | None = getattr(ticket, name)
        if value is None:
            continue
        slot = _index(distinct, value)
        if slot == 0:
            distinct.append(value)
            slot = len(distinct)
        code |= slot << (_SLOT_BITS * i)
    parts = [
        bytes((flags, code & 0xFF, (code >> 8) & 0xFF, code >> 16)),
        struct.pack(f"<{len(distinct)}d", *distinct),
    ]
    for text in (ticket.service, ticket.counter, ticket.teller, ticket.transfer_owed):
        parts.append(_text(text))
    return b"".join(parts)


def _index(distinct: list[float], value: float) -> int:
    """The 1-based index of a time equal to ``value`` (sign of zero too), 0 if none."""
    for i, seen in enumerate(distinct, 1):
        if seen == value and math.copysign(1.0, seen) == math.copysign(1.0, value):
            return i
    return 0


def _text(text: str | None) -> bytes:
    if text is None:
        return b"\x00"
    encoded = text.encode()
    if len(encoded) > _MAX_TEXT:
        raise ValueError(f"{text[:40]!r}…: longer than a record holds")
    return bytes((len(encoded) + 1,)) + encoded


def unpack(record: bytes, services: Mapping[str, object]) -> Ticket | None:
    """The ticket of a record; None if it cannot be read or names a service not in
    ``services`` (the branch's)."""
    try:
        flags = record[0]
        pattern = _pattern(record[1] | record[2] << 8 | record[3] << 16)
        values = (None, *pattern.values.unpack_from(record, _HEAD))
        at = _HEAD + pattern.values.size
        texts: list[str | None] = []
        for _ in range(4):
            length = record[at] - 1
            at += 1
            if length < 0:
                texts.append(None)
                continue
            texts.append(sys.intern(record[at : at + length].decode()))
            at += length
        if at != len(record):
            return None
        lost = _LOSSES[flags >> _LOSS_SHIFT]
    except (IndexError, struct.error, UnicodeDecodeError):
        return None
    service, counter, teller, transfer_owed = texts
    if (service is not None and service not in services) or (
        transfer_owed is not None and transfer_owed not in services
    ):
        return None
    issued, wait_since, transferred, called, started, ended, done = (
        values[slot] for slot in pattern.slots
    )
    return Ticket(
        service=service,
        state="done",
        vip=bool(flags & _VIP),
        issued_ts=issued,
        wait_since=wait_since,
        transferred_ts=transferred,
        called_ts=called,
        counter=counter,
        teller=teller,
        started_ts=started,
        ended_ts=ended,
        lost=lost,
        done_ts=done,
        wait_counted=bool(flags & _WAIT),
        served_counted=bool(flags & _SERVED),
        service_counted=bool(flags & _SERVICE),
        lost_counted=bool(flags & _LOST),
        transfer_owed=transfer_owed,
    )


# -- a branch's finished tickets ----------------------------------------------------------


def get(branch: BranchState, ticket_id: str) -> Ticket | None:
    """A finished ticket of the branch, as a ``Ticket`` (a copy: :func:`update` keeps changes)."""
    record = branch.finished_records.get(ticket_id)
    return None if record is None else unpack(record, branch.services)


def add(branch: BranchState, ticket_id: str, ticket: Ticket) -> None:
    """A ticket finished now: the newest, the oldest forgotten beyond the cap."""
    records = branch.finished_records
    records.pop(ticket_id, None)  # an unreadable record of the id: the new one is newest
    records[ticket_id] = pack(ticket)
    if len(records) > MAX_FINISHED_TICKETS:
        del records[next(iter(records))]


def update(branch: BranchState, ticket_id: str, ticket: Ticket) -> None:
    """Keep what a late event changed of a finished ticket (it keeps its place)."""
    branch.finished_records[ticket_id] = pack(ticket)


def newest(branch: BranchState) -> Iterator[tuple[str, Ticket]]:
    """The finished tickets, newest first (the unreadable left out)."""
    services = branch.services
    for ticket_id, record in reversed(branch.finished_records.items()):
        ticket = unpack(record, services)
        if ticket is not None:
            yield ticket_id, ticket


def every(branch: BranchState) -> Iterator[Ticket]:
    """The finished tickets, oldest first (the unreadable left out)."""
    services = branch.services
    for record in branch.finished_records.values():
        ticket = unpack(record, services)
        if ticket is not None:
            yield ticket


def upgrade(branch: BranchState) -> None:
    """Finished tickets of a snapshot taken before records: packed, oldest first."""
    legacy = branch.finished
    branch.finished = None
    if not legacy:
        return
    records: dict[str, bytes] = {}
    for ticket_id, ticket in legacy.items():
        try:
            records[ticket_id] = pack(ticket)
        except ValueError:
            continue  # a string no record holds (tampered): the ticket is forgotten
    records.update(branch.finished_records)
    branch.finished_records = records
