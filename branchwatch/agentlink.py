"""Speaking as an agent on the broker: what the edge agent and the simulator both do.

An agent, real or simulated, numbers its connections (``session``), retains its
status under that number and leaves a will with the same number, so the
collector can tell a late will of an old connection from news about this one.
It answers the collector's commands: ``replay`` from the events it still holds,
``notify`` for the intercom at a post. Events go out as one object, or as
arrays within the contract's bounds, always in seq order.

The edge agent keeps its events and its session counter in its spool; the
simulator keeps them in memory. Both speak through this module, so the two
cannot drift apart on the wire.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Final, NamedTuple, Protocol

import msgspec

from branchwatch import __version__
from branchwatch.contract.codec import decode_command, encode
from branchwatch.contract.ids import MAX_BATCH_EVENTS, MAX_MESSAGE_BYTES
from branchwatch.contract.messages import DeviceStatus, Notify, Replay, SpoolStatus, Status
from branchwatch.errors import ContractError

log = logging.getLogger(__name__)

STATUS_VERSION: Final = 1
_encoder: Final = msgspec.json.Encoder()

# -- sessions and status --------------------------------------------------------------------------


class SessionCounter(Protocol):
    """Where an agent takes the number of its next connection.

    The number must be above every one this agent used before, also across
    restarts, and fixed before connecting: it goes into the will.
    """

    def next_session(self) -> int: ...


class ClockSessions:
    """Session numbers for a publisher that keeps nothing between runs.

    The first is the wall-clock second it started at: a restarted publisher
    numbers its connections above the previous run's (which counted up from an
    earlier second), as a persisted counter would.
    """

    def __init__(self, now: float) -> None:
        self.session = int(now)

    def next_session(self) -> int:
        self.session += 1
        return self.session


def online_status(
    session: int,
    ts: float,
    devices: Mapping[str, DeviceStatus],
    spool: SpoolStatus,
    version: str = __version__,
) -> bytes:
    """The retained status of a connected agent."""
    status = Status(
        v=STATUS_VERSION,
        state="online",
        session=session,
        ts=ts,
        version=version,
        devices=dict(devices),
        spool=spool,
    )
    return encode(status)


def will(session: int) -> bytes:
    """Exactly ``{"v":1,"state":"offline","session":N}``: what the broker sends if we vanish."""
    return _encoder.encode({"v": STATUS_VERSION, "state": "offline", "session": session})


def offline_status(session: int, ts: float) -> bytes:
    """The explicit offline of a clean stop; ``ts`` orders it after our last online."""
    return _encoder.encode({"v": STATUS_VERSION, "state": "offline", "session": session, "ts": ts})


# -- commands -------------------------------------------------------------------------------------


def read_command(payload: object) -> Replay | Notify:
    """The command in a ``cmd`` message; :class:`ContractError` if there is none we know."""
    if not isinstance(payload, bytes | bytearray):
        raise ContractError("bad_shape", f"a command payload must be bytes, not {type(payload)}")
    command = decode_command(payload)
    if not isinstance(command, Replay | Notify):  # pragma: no cover - a command type added later
        raise ContractError("unknown_type", type(command).__name__)
    return command


# -- events out: batches and replays --------------------------------------------------------------


class Batch(NamedTuple):
    """Consecutive events as one MQTT payload (an object, or an array)."""

    first_seq: int
    last_seq: int
    event_count: int
    payload: bytes


def batches(
    rows: Sequence[tuple[int, bytes]],
    max_events: int = MAX_BATCH_EVENTS,
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> Iterator[Batch]:
    """``(seq, encoded event)`` rows, in order, in as few payloads as the bounds allow.

    One event alone goes out as an object, more as an array.
    """
    start = 0
    while start < len(rows):
        parts = [rows[start][1]]
        size = 2 + len(parts[0])  # the brackets
        for _seq, payload in rows[start + 1 : start + max_events]:
            size += 1 + len(payload)
            if size > max_bytes:
                break
            parts.append(payload)
        first, last = rows[start][0], rows[start + len(parts) - 1][0]
        message = parts[0] if len(parts) == 1 else b"[" + b",".join(parts) + b"]"
        yield Batch(first, last, len(parts), bytes(message))
        start += len(parts)


def first_batch(
    rows: Sequence[tuple[int, bytes]],
    max_events: int = MAX_BATCH_EVENTS,
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> Batch | None:
    """The leading rows that fit one payload; None for no rows."""
    return next(batches(rows, max_events, max_bytes), None)


class HeldEvents(Protocol):
    """What an agent keeps of the events it sent, to answer ``replay``."""

    def oldest_held_seq(self) -> int | None: ...

    def last_sent_seq(self) -> int: ...

    def held_batches(self, from_seq: int, to_seq: int) -> Iterator[Batch]: ...


def replay_batches(held: HeldEvents, from_seq: int, agent: str = "") -> Iterator[Batch]:
    """What ``replay from_seq`` republishes: every held event from ``from_seq`` on, up to
    the last one sent (one not sent yet goes out with the normal flow anyway).

    Events asked for but no longer held are said in the log: the collector counts
    them as missing, and whoever reads the log should know why.
    """
    oldest, last_sent = held.oldest_held_seq(), held.last_sent_seq()
    where = f" for {agent}" if agent else ""
    if oldest is not None and from_seq < oldest:
        log.warning(
            "replay%s from seq %d: events before %d are no longer held", where, from_seq, oldest
        )
    elif oldest is None and from_seq <= last_sent:
        log.warning("replay%s from seq %d: no sent events are held any more", where, from_seq)
    yield from held.held_batches(from_seq, last_sent)
