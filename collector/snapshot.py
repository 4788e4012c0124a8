"""Snapshot format of the store: versioned msgpack of every branch's state.

A snapshot carries everything needed to continue exactly: floor state, totals,
histograms, seq tracking and missing sets. It records the floor layout it was
taken with (services, posts, buckets); restoring it under another layout, or
restoring anything corrupt, raises :class:`SnapshotError` with the reason.

It is made branch by branch (:func:`chunks`: a :func:`head`, then each branch's
:func:`encode_branch`), so the collector encodes one branch at a time under its
lock and writes each piece before the next is made, never holding the whole; one
after another they are the bytes of one encode of the whole document.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterator, Mapping, Sequence
from typing import Final

import msgspec

from collector.errors import SnapshotError
from collector.exposition import NO_LOCK, BranchKey, Lock
from collector.floor.branch import BranchState, new_log_index
from collector.floor.config import FloorRules
from collector.floor.figures import repair as repair_figures
from collector.floor.finished import upgrade as upgrade_finished
from collector.floor.posts import upgrade as upgrade_post
from collector.notices.state import repair as repair_notices

FORMAT: Final = 1
MAGIC: Final = b"branchwatch-snapshot\n"


class Layout(msgspec.Struct, frozen=True):
    services: tuple[str, ...]
    positions: tuple[int, ...]
    wait_buckets: tuple[float, ...]
    service_buckets: tuple[float, ...]

    @classmethod
    def of(cls, rules: FloorRules) -> Layout:
        return cls(
            services=rules.services,
            positions=tuple(rules.post_names),
            wait_buckets=rules.wait_buckets,
            service_buckets=rules.service_buckets,
        )


class _Header(msgspec.Struct):
    format: int


class _Snapshot(msgspec.Struct):
    format: int
    layout: Layout
    # Each decoded on its own (decode): a branch's copies of strings a restore shares are
    # freed before the next branch is made, and the next one's objects take their place.
    branches: list[msgspec.Raw]


class _Head(msgspec.Struct):
    """:class:`_Snapshot`'s fields, in order, its branches each :data:`_NOTHING`: encodes
    to every byte of a snapshot before the first branch's."""

    format: int
    layout: Layout
    branches: Sequence[msgspec.Raw]


# Encodes to nothing: a list of it gives the msgpack header of an array of that length.
_NOTHING: Final = msgspec.Raw(b"")


def encode_hook(value: object) -> object:
    """A finished log's index is not kept: a restore makes it from the log's entries."""
    if isinstance(value, array):
        return b""
    raise NotImplementedError(f"a snapshot cannot hold a {type(value).__name__}")


def decode_hook(kind: type, value: object) -> object:
    if kind is array:
        return new_log_index()  # filled from the entries (collector.floor.finished.upgrade)
    raise NotImplementedError(f"a snapshot cannot hold a {kind.__name__}")


_encoder: Final = msgspec.msgpack.Encoder(enc_hook=encode_hook)
_header_decoder: Final = msgspec.msgpack.Decoder(_Header)
_decoder: Final = msgspec.msgpack.Decoder(_Snapshot)
_branch_decoder: Final = msgspec.msgpack.Decoder(BranchState, dec_hook=decode_hook)


def encode_branch(branch: BranchState) -> bytes:
    """One branch's part of a snapshot (tens of microseconds)."""
    return _encoder.encode(branch)


def head(rules: FloorRules, count: int) -> bytes:
    """Every byte of a snapshot of ``count`` branches before the first branch's: the
    branches (each from :func:`encode_branch`) follow it one after another, so a
    snapshot is written as it is encoded, never held whole (a region's is tens of MB)."""
    return MAGIC + _encoder.encode(
        _Head(format=FORMAT, layout=Layout.of(rules), branches=[_NOTHING] * count)
    )


def chunks(
    rules: FloorRules, branches: Mapping[BranchKey, BranchState], lock: Lock = NO_LOCK
) -> Iterator[bytes]:
    """The snapshot of ``branches`` as chunks to write one after another, each made as
    it is asked for, under ``lock``.

    ``lock`` is the runtime's lock: taken to list the branches, then around each
    branch's encode, and released in between, so messages and the API wait for one
    branch (tens of microseconds), not for the whole store. That is as exact as one
    encode under the lock because no state in a snapshot spans branches: each branch's
    own agents carry the seqs its state was built from, and its notices are named from
    its own notice book; what the store keeps beside the branches (replays asked,
    notice deadlines, the exposition) is not in a snapshot (a restore makes it again).
    A branch that appears meanwhile is in the next snapshot. The head gives the number
    of branches first, so none may go meanwhile: the runtime expires branches on the
    thread that takes snapshots, and a branch gone anyway is a :class:`SnapshotError`
    (the file is not replaced).
    """
    with lock:
        keys = list(branches)
    yield head(rules, len(keys))
    for key in keys:
        with lock:
            state = branches.get(key)
            if state is None:
                raise SnapshotError(
                    f"branch {key[0]}/{key[1]} was removed while a snapshot was being "
                    "written; the next snapshot has the store as it is then"
                )
            piece = encode_branch(state)
        yield piece


def decode(rules: FloorRules, data: bytes) -> list[BranchState]:
    if not data.startswith(MAGIC):
        raise SnapshotError("not a branchwatch snapshot (missing header)")
    body = memoryview(data)[len(MAGIC) :]
    try:
        version = _header_decoder.decode(body).format
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError too
        raise SnapshotError(f"corrupt snapshot: {exc}") from exc
    if version != FORMAT:
        raise SnapshotError(f"snapshot format {version} is not supported (this reads {FORMAT})")
    try:
        document = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"corrupt snapshot: {exc}") from exc
    expected = Layout.of(rules)
    if document.layout != expected:
        raise SnapshotError(
            "snapshot was taken with another floor layout "
            f"(services/posts/buckets {msgspec.structs.asdict(document.layout)}, "
            f"configured now {msgspec.structs.asdict(expected)})"
        )
    seen: set[tuple[str, str]] = set()
    branches = []
    for number, raw in enumerate(document.branches):
        try:
            branch = _branch_decoder.decode(raw)
        except msgspec.DecodeError as exc:
            raise SnapshotError(f"corrupt snapshot: branch {number + 1}: {exc}") from exc
        key = (branch.region, branch.branch)
        if key in seen:
            raise SnapshotError(f"corrupt snapshot: branch {key[0]}/{key[1]} appears twice")
        seen.add(key)
        _check(expected, branch)
        branches.append(branch)
    return branches


def _check(layout: Layout, b: BranchState) -> None:
    """The invariants the model relies on, so a tampered snapshot cannot crash it later."""
    where = f"branch {b.region}/{b.branch}"
    if tuple(b.services) != layout.services or tuple(b.posts) != layout.positions:
        raise SnapshotError(f"corrupt snapshot: {where} has other services or posts")
    for name, stats in b.services.items():
        if (
            len(stats.wait.counts) != len(layout.wait_buckets) + 1
            or len(stats.service.counts) != len(layout.service_buckets) + 1
        ):
            raise SnapshotError(f"corrupt snapshot: {where} histogram of {name} has other buckets")
        for ticket_id in stats.queue:
            ticket = b.tickets.get(ticket_id)
            if ticket is None or ticket.state != "waiting" or ticket.service != name:
                raise SnapshotError(f"corrupt snapshot: {where} queue {name} holds {ticket_id}")
    for name, agent in b.agents.items():
        agent.name = name  # snapshots before notices did not record it
    _share_strings(b)
    for post in b.posts.values():
        upgrade_post(post)  # older snapshots' staff marks in the form kept now
    upgrade_finished(b)  # snapshots before finished tickets were kept as records
    repair_notices(b.notices, layout.positions, layout.services)
    b.today = repair_figures(
        b.tellers, b.transfers, b.intercom, b.today, layout.services, layout.positions
    )
    b.refused = {}
    for ticket_id, ticket in b.tickets.items():
        if ticket.state == "done" or (
            ticket.state == "waiting"
            and (ticket.service is None or ticket_id not in b.services[ticket.service].queue)
        ):
            raise SnapshotError(f"corrupt snapshot: {where} ticket {ticket_id} is inconsistent")


def _share(text: str | None) -> str | None:
    return None if text is None else sys.intern(text)


def _share_strings(b: BranchState) -> None:
    """The names branches repeat (region, services, counter kinds, counters, tellers) as
    one string each, as the ingest keeps them: a decode makes a copy of each, ~2 KiB a
    branch."""
    b.region = sys.intern(b.region)
    for counter in b.counters.values():
        counter.kind = _share(counter.kind)
        counter.teller = _share(counter.teller)
    for ticket in b.tickets.values():
        ticket.service = _share(ticket.service)
        ticket.counter = _share(ticket.counter)
        ticket.teller = _share(ticket.teller)
        ticket.transfer_owed = _share(ticket.transfer_owed)
