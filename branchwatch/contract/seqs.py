"""Where an agent's seqs and sessions start, so a new spool never reuses them.

An agent's ``seq`` must rise over its whole life, but its spool can be lost
(a corrupt file set aside, a new disk, a reinstalled PC) and with it the
counter. So a spool created empty does not start at 1: it starts above a base
taken from the clock, ``unix_seconds << SPOOL_EPOCH_BITS``. A spool that
existed before took at most one seq per event, far fewer than
``2**SPOOL_EPOCH_BITS`` (about a million) per second of its life, so the new
base is above every seq it used; sessions (one per connection) start at the
unix second the same way.

The collector sees a new spool as a forward jump of more than
:data:`NEW_SPOOL_JUMP` in an agent's seq: no spool skips that many of its own
events. The seqs the old spool never delivered went with it (lost), and the
first seq of the new spool follows from the seq that revealed it
(:func:`spool_start`), as long as the spool had not used a million seqs yet.
"""

from __future__ import annotations

from typing import Final

SPOOL_EPOCH_BITS: Final = 20
# A jump in an agent's seq larger than this is a new spool, not a gap.
NEW_SPOOL_JUMP: Final = 1 << SPOOL_EPOCH_BITS
# A fresh spool on a machine whose clock reads earlier than this (a dead CMOS
# battery: 1970) still starts above every spool made with a set clock before
# this date's releases; later spools need a set clock.
EARLIEST_BASE_SECONDS: Final = 1_767_225_600  # 2026-01-01T00:00:00Z


def _base_seconds(now: float) -> int:
    return max(int(now), EARLIEST_BASE_SECONDS)


def fresh_seq_base(now: float) -> int:
    """The last seq of a spool created empty at ``now``: its first event takes base + 1."""
    return _base_seconds(now) << SPOOL_EPOCH_BITS


def fresh_session_base(now: float) -> int:
    """The session count of a spool created empty at ``now``: its first connection is base + 1."""
    return _base_seconds(now)


def is_new_spool(last_seq: int, seq: int) -> bool:
    """Whether ``seq``, after ``last_seq`` of the same agent, comes from a new spool."""
    return seq - last_seq > NEW_SPOOL_JUMP


def spool_start(seq: int) -> int:
    """The first seq of the fresh spool ``seq`` belongs to (exact while it is < 2**20 in)."""
    return (((seq - 1) >> SPOOL_EPOCH_BITS) << SPOOL_EPOCH_BITS) + 1
