"""A branch's finished tickets as one log of entries and one sorted index, both bytes.

A dict of ticket ids to records cost a ``str``, a ``bytes`` and a dict slot a
ticket (~165 B, most of it object headers, at thousands of tickets a day); an
entry here costs its bytes and 8 of index (~60 B). The operations take ids as
text and records as bytes: :mod:`collector.floor.finished` makes the tickets.

Entry layout, in :attr:`FinishedLog.entries` oldest first::

    id length (1 byte) | record length (1 byte) | id (UTF-8) | record | entry length (1 byte)

the last byte so the log can be read newest first. The index holds one 64-bit
word an entry, ascending: the low 32 bits of the id's ``hash()`` << 32 | the
entry's offset, which counts from the start of the day (``base`` is the offset
of the first entry still held). ``hash()`` of a string is kept by the string,
so a lookup of an id the model already used as a dict key hashes nothing. It
differs from one process to the next, so a snapshot does not keep the index:
:func:`rebuild` makes it from the entries at a restore (and so it can never
point anywhere but at an entry).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterator
from typing import Final

from collector.floor.branch import FinishedLog, LogIndex, new_log_index

_HEAD: Final = 2  # id length, record length
_FRAME: Final = _HEAD + 1  # and the entry length at the end
_MAX_ENTRY: Final = 255  # an entry's length is one byte
_OFFSET_MASK: Final = (1 << 32) - 1
_MAX_OFFSET: Final = _OFFSET_MASK  # offsets since the day began, 32 bits in a key
_HASH_MASK: Final = (1 << 32) - 1


def _hash(ticket_id: str) -> int:  # a name of its own, so a test can make ids collide
    return hash(ticket_id) & _HASH_MASK


def fits(ticket_id: str, record: bytes) -> bool:
    """Whether an entry can hold them (always, for the ids the contract allows)."""
    return (
        len(ticket_id) > 0
        and ticket_id.isascii()
        and len(ticket_id) + len(record) + _FRAME <= _MAX_ENTRY
    )


def _entry(ticket_id: bytes, record: bytes) -> bytes:
    size = len(ticket_id) + len(record) + _FRAME
    return bytes((len(ticket_id), len(record))) + ticket_id + record + bytes((size,))


def _id_at(entries: bytearray, pos: int) -> bytes:
    """The id of the entry at ``pos``."""
    return bytes(entries[pos + _HEAD : pos + _HEAD + entries[pos]])


def _id_and_record(entries: bytearray, pos: int) -> tuple[bytes, bytes]:
    """The id and the record of the entry at ``pos``."""
    start = pos + _HEAD + entries[pos]
    return bytes(entries[pos + _HEAD : start]), bytes(entries[start : start + entries[pos + 1]])


def _key(ticket_id: bytes, offset: int) -> int:
    return _hash(ticket_id.decode()) << 32 | offset


def find(log: FinishedLog, ticket_id: str) -> int | None:
    """The position in ``entries`` of the id's entry, if the log holds it."""
    pos, _ = _locate(log, ticket_id, _hash(ticket_id))
    return pos


def _locate(log: FinishedLog, ticket_id: str, hashed: int) -> tuple[int | None, int]:
    """The id's entry position (None: not held), and where in the index a new key of
    this hash goes (after those the hash has: a new entry's offset is the highest)."""
    keys = log.index
    at = bisect_left(keys, hashed << 32)
    if at == len(keys) or keys[at] >> 32 != hashed:
        return None, at  # most lookups: an id never finished today
    entries, base = log.entries, log.base
    encoded = ticket_id.encode()
    size = len(encoded)
    while at < len(keys) and keys[at] >> 32 == hashed:
        pos = (keys[at] & _OFFSET_MASK) - base
        if entries[pos] == size and entries.startswith(encoded, pos + _HEAD):
            return pos, at
        at += 1
    return None, at


def record_at(log: FinishedLog, pos: int) -> bytes:
    """The record of the entry at ``pos``."""
    entries = log.entries
    start = pos + _HEAD + entries[pos]
    return bytes(entries[start : start + entries[pos + 1]])


def _remove_key(log: FinishedLog, key: int) -> None:
    del log.index[bisect_left(log.index, key)]


def put(log: FinishedLog, ticket_id: str, record: bytes) -> None:
    """The id's record as the newest entry (any entry it had is forgotten first)."""
    hashed = _hash(ticket_id)
    pos, at = _locate(log, ticket_id, hashed)
    if pos is not None:
        remove(log, pos)
        _, at = _locate(log, ticket_id, hashed)
    offset = log.base + len(log.entries)
    if offset + _MAX_ENTRY > _MAX_OFFSET:
        _restart_offsets(log)
        offset = len(log.entries)
        _, at = _locate(log, ticket_id, hashed)
    log.entries += _entry(ticket_id.encode(), record)
    log.count += 1
    log.index.insert(at, hashed << 32 | offset)


def replace(log: FinishedLog, pos: int, record: bytes) -> None:
    """A new record for the entry at ``pos``, which keeps its place in the log."""
    entries = log.entries
    id_length, old_length = entries[pos], entries[pos + 1]
    ticket_id = _id_at(entries, pos)
    if len(record) == old_length:
        start = pos + _HEAD + id_length
        entries[start : start + old_length] = record
        return
    # A late event changed the record's length (rare): the entries after it move.
    old_size = id_length + old_length + _FRAME
    entries[pos : pos + old_size] = _entry(ticket_id, record)
    _shift_after(log.index, log.base + pos, len(ticket_id) + len(record) + _FRAME - old_size)


def remove(log: FinishedLog, pos: int) -> None:
    """Forget the entry at ``pos`` (its id is used again, or it is the oldest)."""
    if pos == 0:
        _drop_oldest(log)
        return
    entries = log.entries
    size = entries[pos] + entries[pos + 1] + _FRAME
    _remove_key(log, _key(_id_at(entries, pos), log.base + pos))
    del entries[pos : pos + size]
    log.count -= 1
    _shift_after(log.index, log.base + pos, -size)


def _shift_after(keys: LogIndex, offset: int, by: int) -> None:
    """Move the entries after ``offset`` by ``by`` bytes (a rare path: late events)."""
    for at, key in enumerate(keys):
        if key & _OFFSET_MASK > offset:
            keys[at] = key + by


def _drop_oldest(log: FinishedLog) -> None:
    entries = log.entries
    size = entries[0] + entries[1] + _FRAME
    _remove_key(log, _key(_id_at(entries, 0), log.base))
    del entries[:size]
    log.base += size
    log.count -= 1


def drop_oldest(log: FinishedLog) -> None:
    """Forget the oldest entry (the log is over its bound)."""
    if log.entries:
        _drop_oldest(log)


def clear(log: FinishedLog) -> None:
    """A new day: every entry forgotten, offsets from 0 again."""
    log.entries = bytearray()
    log.index = new_log_index()
    log.base = 0
    log.count = 0


def oldest_first(log: FinishedLog) -> Iterator[tuple[bytes, bytes]]:
    """(id, record) of each entry, oldest first."""
    entries = log.entries
    pos, end = 0, len(entries)
    while pos < end:
        yield _id_and_record(entries, pos)
        pos += entries[pos] + entries[pos + 1] + _FRAME


def newest_first(log: FinishedLog) -> Iterator[tuple[bytes, bytes]]:
    """(id, record) of each entry, newest first."""
    entries = log.entries
    pos = len(entries)
    while pos > 0:
        pos -= entries[pos - 1]
        yield _id_and_record(entries, pos)


def _restart_offsets(log: FinishedLog) -> None:
    """Offsets from 0 again, for a log that held entries for ~4 GiB without a new day."""
    log.base = 0
    _index_entries(log)


def _index_entries(log: FinishedLog) -> None:
    keys: list[int] = []
    entries, base = log.entries, log.base
    pos, end = 0, len(entries)
    while pos < end:
        keys.append(_key(_id_at(entries, pos), base + pos))
        pos += entries[pos] + entries[pos + 1] + _FRAME
    keys.sort()
    log.index = array("Q", keys)
    log.count = len(keys)


def rebuild(log: FinishedLog) -> None:
    """Check a restored log and index it again: entries from the first that does not
    frame (a tampered snapshot) on are forgotten, and so are repeated ids."""
    entries = log.entries
    pos, end = 0, len(entries)
    seen: set[bytes] = set()
    kept = bytearray()
    while pos + _FRAME <= end:
        id_length, record_length = entries[pos], entries[pos + 1]
        size = id_length + record_length + _FRAME
        if id_length == 0 or pos + size > end or entries[pos + size - 1] != size:
            break
        ticket_id = _id_at(entries, pos)
        if not ticket_id.isascii():
            break  # ids are ASCII: the rest of the log is not to be trusted
        if ticket_id not in seen:
            seen.add(ticket_id)
            kept += entries[pos : pos + size]
        pos += size
    log.entries = kept
    log.base = 0
    _index_entries(log)
